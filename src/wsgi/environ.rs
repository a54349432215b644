//! The WSGI environ dict: CGI variables from the transport plus the `wsgi.*` keys.

use super::WsgiRequest;
use crate::python::{Interpreter, MOD_WSGI_API_VERSION};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

fn url_scheme(req: &WsgiRequest) -> &'static str {
    let https = req
        .environ
        .iter()
        .find(|(k, _)| k == "HTTPS")
        .is_some_and(|(_, v)| v.eq_ignore_ascii_case("on") || v == "1");
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
    for (key, value) in &req.environ {
        env.set_item(key, value)?;
    }
    env.set_item("wsgi.version", PyTuple::new(py, [1, 0])?)?;
    env.set_item("wsgi.url_scheme", url_scheme(req))?;
    env.set_item("wsgi.input", input)?;
    env.set_item("wsgi.input_terminated", true)?;
    env.set_item("wsgi.errors", errors)?;
    env.set_item("wsgi.multithread", req.multithread)?;
    env.set_item("wsgi.multiprocess", req.multiprocess)?;
    env.set_item("wsgi.run_once", req.run_once)?;
    env.set_item("wsgi.file_wrapper", interp.shim.file_wrapper_class.bind(py))?;
    let (a, b, c) = MOD_WSGI_API_VERSION;
    env.set_item("mod_wsgi.version", PyTuple::new(py, [a, b, c])?)?;
    Ok(env)
}
