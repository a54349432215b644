//! The WSGI environ dict: CGI variables from the transport plus the `wsgi.*` keys.

use super::WsgiRequest;
use crate::python::{Interpreter, MOD_WSGI_API_VERSION};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

/// Keys nearly every environ carries, in byte order (binary-searched). Each interpreter
/// makes them into Python strings once (`EnvironKeys`), so a request reuses them with
/// their hashes instead of creating and hashing some fifty keys.
const COMMON_KEYS: [&str; 57] = [
    "CONTENT_LENGTH",
    "CONTENT_TYPE",
    "CONTEXT_DOCUMENT_ROOT",
    "CONTEXT_PREFIX",
    "DOCUMENT_ROOT",
    "GATEWAY_INTERFACE",
    "HTTPS",
    "HTTP_ACCEPT",
    "HTTP_ACCEPT_ENCODING",
    "HTTP_ACCEPT_LANGUAGE",
    "HTTP_CACHE_CONTROL",
    "HTTP_CONNECTION",
    "HTTP_COOKIE",
    "HTTP_HOST",
    "HTTP_REFERER",
    "HTTP_USER_AGENT",
    "PATH",
    "PATH_INFO",
    "QUERY_STRING",
    "REMOTE_ADDR",
    "REMOTE_PORT",
    "REQUEST_METHOD",
    "REQUEST_SCHEME",
    "REQUEST_URI",
    "SCRIPT_FILENAME",
    "SCRIPT_NAME",
    "SERVER_ADDR",
    "SERVER_ADMIN",
    "SERVER_NAME",
    "SERVER_PORT",
    "SERVER_PROTOCOL",
    "SERVER_SIGNATURE",
    "SERVER_SOFTWARE",
    "mod_wsgi.application_group",
    "mod_wsgi.callable_object",
    "mod_wsgi.connection_id",
    "mod_wsgi.enable_sendfile",
    "mod_wsgi.handler_script",
    "mod_wsgi.ignore_activity",
    "mod_wsgi.listener_host",
    "mod_wsgi.listener_port",
    "mod_wsgi.process_group",
    "mod_wsgi.request_handler",
    "mod_wsgi.request_id",
    "mod_wsgi.request_start",
    "mod_wsgi.script_reloading",
    "mod_wsgi.script_start",
    "mod_wsgi.version",
    "wsgi.errors",
    "wsgi.file_wrapper",
    "wsgi.input",
    "wsgi.input_terminated",
    "wsgi.multiprocess",
    "wsgi.multithread",
    "wsgi.run_once",
    "wsgi.url_scheme",
    "wsgi.version",
];

/// One interpreter's Python strings for `COMMON_KEYS`.
pub struct EnvironKeys(Vec<Py<PyString>>);

impl EnvironKeys {
    pub fn new(py: Python<'_>) -> Self {
        EnvironKeys(
            COMMON_KEYS
                .iter()
                .map(|k| {
                    // Not interned: CPython 3.11 shares its interned strings between
                    // interpreters. Hashing once stores the hash in the string.
                    let key = PyString::new(py, k);
                    let _ = key.hash();
                    key.unbind()
                })
                .collect(),
        )
    }

    fn get<'py>(&self, py: Python<'py>, key: &str) -> Bound<'py, PyString> {
        match COMMON_KEYS.binary_search(&key) {
            Ok(i) => self.0[i].bind(py).clone(),
            Err(_) => PyString::new(py, key),
        }
    }
}

fn url_scheme(req: &WsgiRequest) -> &'static str {
    let https = req
        .environ
        .get("HTTPS")
        .is_some_and(|v| v.eq_ignore_ascii_case("on") || v == "1");
    if https { "https" } else { "http" }
}

/// Builds the environ dict. CGI values arrive already decoded as ISO-8859-1 (one char per
/// byte), so every Python str here holds exactly the bytes Apache saw.
pub(crate) fn build<'py>(
    py: Python<'py>,
    interp: &Interpreter,
    req: &WsgiRequest,
    input: Bound<'py, PyAny>,
    errors: Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    let env = PyDict::new(py);
    let keys = &interp.shim.environ_keys;
    let key = |k: &str| keys.get(py, k);
    for (k, value) in req.environ.iter() {
        env.set_item(key(k), value)?;
    }
    env.set_item(key("wsgi.version"), PyTuple::new(py, [1, 0])?)?;
    env.set_item(key("wsgi.url_scheme"), url_scheme(req))?;
    env.set_item(key("wsgi.input"), input)?;
    env.set_item(key("wsgi.input_terminated"), true)?;
    env.set_item(key("wsgi.errors"), errors)?;
    env.set_item(key("wsgi.multithread"), req.multithread)?;
    env.set_item(key("wsgi.multiprocess"), req.multiprocess)?;
    env.set_item(key("wsgi.run_once"), req.run_once)?;
    env.set_item(
        key("wsgi.file_wrapper"),
        interp.shim.file_wrapper_class.bind(py),
    )?;
    let (a, b, c) = MOD_WSGI_API_VERSION;
    env.set_item(key("mod_wsgi.version"), PyTuple::new(py, [a, b, c])?)?;
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::COMMON_KEYS;

    #[test]
    fn common_keys_are_sorted_and_unique_for_binary_search() {
        assert!(COMMON_KEYS.windows(2).all(|w| w[0] < w[1]));
    }
}
