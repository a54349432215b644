//! The WSGI environ dict: CGI variables from the transport plus the `wsgi.*` keys.

use super::WsgiRequest;
use crate::python::{Interpreter, MOD_WSGI_API_VERSION};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};
use std::sync::Mutex;

/// Keys nearly every environ carries. Each interpreter makes them into Python strings
/// once (`EnvironKeys`), so a request reuses them with their hashes instead of creating
/// and hashing some fifty keys; `common_key_index` finds one with a single comparison.
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

const SLOTS: usize = 256;
const EMPTY: u8 = u8::MAX;
// Indices are stored as u8 next to the EMPTY marker; at most a quarter full keeps probing short.
const _: () = assert!(COMMON_KEYS.len() <= SLOTS / 4);

/// A cheap hash of a key: its length and four of its bytes spread these keys well.
const fn key_hash(key: &[u8]) -> usize {
    let n = key.len();
    if n == 0 {
        return 0;
    }
    let h = n.wrapping_mul(0x9E37_79B9)
        ^ ((key[0] as usize) << 3)
        ^ ((key[n / 2] as usize) << 9)
        ^ ((key[n * 3 / 4] as usize) << 15)
        ^ ((key[n - 1] as usize) << 21);
    (h ^ (h >> 13)).wrapping_mul(0x85EB_CA6B) >> 8
}

/// `COMMON_KEYS` indices by `key_hash`, open addressing with linear probing.
const KEY_SLOTS: [u8; SLOTS] = {
    let mut table = [EMPTY; SLOTS];
    let mut i = 0;
    while i < COMMON_KEYS.len() {
        let mut slot = key_hash(COMMON_KEYS[i].as_bytes()) % SLOTS;
        while table[slot] != EMPTY {
            slot = (slot + 1) % SLOTS;
        }
        table[slot] = i as u8;
        i += 1;
    }
    table
};

fn common_key_index(key: &str) -> Option<usize> {
    let mut slot = key_hash(key.as_bytes()) % SLOTS;
    loop {
        let i = KEY_SLOTS[slot];
        if i == EMPTY {
            return None;
        }
        if COMMON_KEYS[usize::from(i)] == key {
            return Some(usize::from(i));
        }
        slot = (slot + 1) % SLOTS;
    }
}

/// One interpreter's Python strings for `COMMON_KEYS`, and the value each key had last:
/// most CGI values (server name, document root, protocol, script name, ...) repeat from
/// request to request, and a repeated value reuses the last one's (immutable) str.
pub struct EnvironKeys {
    keys: Vec<Py<PyString>>,
    last_values: Mutex<Vec<Option<Py<PyString>>>>,
}

impl EnvironKeys {
    pub fn new(py: Python<'_>) -> Self {
        let keys = COMMON_KEYS
            .iter()
            .map(|k| {
                // Not interned: CPython 3.11 shares its interned strings between
                // interpreters. Hashing once stores the hash in the string.
                let key = PyString::new(py, k);
                let _ = key.hash();
                key.unbind()
            })
            .collect();
        EnvironKeys {
            keys,
            last_values: Mutex::new(COMMON_KEYS.iter().map(|_| None).collect()),
        }
    }

    pub(crate) fn get<'py>(&self, py: Python<'py>, key: &str) -> Bound<'py, PyString> {
        match common_key_index(key) {
            Some(i) => self.keys[i].bind(py).clone(),
            None => PyString::new(py, key),
        }
    }
}

/// Sets the CGI variables, reusing `last` values where they repeat. `last` is None when
/// another thread of the interpreter is building an environ at the same moment (it ran
/// Python code, which let this thread take the GIL): then every value is new.
fn set_cgi_variables<'py>(
    env: &Bound<'py, PyDict>,
    keys: &EnvironKeys,
    mut last: Option<&mut [Option<Py<PyString>>]>,
    req: &WsgiRequest,
) -> PyResult<()> {
    let py = env.py();
    for (k, value) in req.environ.iter() {
        let Some(i) = common_key_index(k) else {
            env.set_item(PyString::new(py, k), value)?;
            continue;
        };
        let key = keys.keys[i].bind(py);
        let Some(slot) = last.as_deref_mut().map(|values| &mut values[i]) else {
            env.set_item(key, value)?;
            continue;
        };
        match slot {
            Some(cached) if cached.bind(py).to_str().is_ok_and(|c| c == value) => {
                env.set_item(key, cached.bind(py))?;
            }
            _ => {
                let fresh = PyString::new(py, value);
                env.set_item(key, &fresh)?;
                *slot = Some(fresh.unbind());
            }
        }
    }
    Ok(())
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
    facts: &crate::python::RequestFacts,
    input: Bound<'py, PyAny>,
    errors: Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    let env = PyDict::new(py);
    let keys = &interp.shim.environ_keys;
    let key = |k: &str| keys.get(py, k);
    let mut last = keys.last_values.try_lock().ok();
    set_cgi_variables(&env, keys, last.as_deref_mut().map(Vec::as_mut_slice), req)?;
    drop(last);
    env.set_item(key("wsgi.version"), PyTuple::new(py, [1, 0])?)?;
    env.set_item(key("wsgi.url_scheme"), url_scheme(req))?;
    // As mod_wsgi: HTTPS (also one set with SetEnv) becomes wsgi.url_scheme and leaves.
    if req.environ.get("HTTPS").is_some() {
        env.del_item(key("HTTPS"))?;
    }
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
    let (a, b, c) = crate::python::apache_version();
    env.set_item("apache.version", PyTuple::new(py, [a, b, c])?)?;
    // Only this module puts the capsule there: a variable of that name from SetEnv goes.
    match req.apache_request {
        Some(request_rec) => env.set_item(
            "apache.request_rec",
            crate::python::request_capsule(py, request_rec)?,
        )?,
        None => {
            if req.environ.get("apache.request_rec").is_some() {
                env.del_item("apache.request_rec")?;
            }
        }
    }
    env.set_item("mod_wsgi.thread_id", facts.thread_id)?;
    env.set_item("mod_wsgi.thread_requests", facts.thread_requests)?;
    env.set_item("mod_wsgi.total_requests", facts.total_requests)?;
    // mod_wsgi 6 gives the timing instants as float seconds since the epoch; the
    // transport hands them over in microseconds.
    let seconds = |us: u64| us as f64 / 1e6;
    env.set_item(
        "mod_wsgi.application_start",
        seconds(facts.application_start_us),
    )?;
    env.set_item("mod_wsgi.request_start", seconds(facts.request_start_us))?;
    env.set_item("mod_wsgi.queue_start", seconds(facts.queue_start_us))?;
    env.set_item("mod_wsgi.daemon_start", seconds(facts.daemon_start_us))?;
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::{COMMON_KEYS, common_key_index};

    #[test]
    fn every_common_key_is_found_at_its_index_and_others_are_not() {
        for (i, key) in COMMON_KEYS.iter().enumerate() {
            assert_eq!(common_key_index(key), Some(i), "{key}");
        }
        for other in [
            "",
            "HTTP_X_FORWARDED_FOR",
            "HTTP_HOSTS",
            "http_host",
            "wsgi.",
        ] {
            assert_eq!(common_key_index(other), None, "{other}");
        }
    }
}
