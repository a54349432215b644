//! Reaching a Python thread from another thread: its identity, and raising an exception
//! in it asynchronously (request-timeout).

use pyo3::ffi;
use pyo3::prelude::*;

/// The calling thread's identity as Python's `threading.get_ident()` reports it.
pub fn current_thread_ident() -> u64 {
    // SAFETY: PyThread_get_thread_ident needs no GIL and only reads the calling thread's id.
    let ident = unsafe { ffi::PyThread_get_thread_ident() };
    #[allow(clippy::useless_conversion)] // c_ulong is u32 on some targets
    u64::from(ident)
}

/// Schedules `mod_wsgi.RequestTimeout` in thread `ident` of the current interpreter. It
/// is raised the next time that thread runs Python bytecode. Returns whether a thread
/// state was found.
pub fn raise_request_timeout(py: Python<'_>, ident: u64) -> bool {
    let exc = py
        .import("mod_wsgi")
        .and_then(|m| m.getattr("RequestTimeout"));
    let Ok(exc) = exc else {
        return false;
    };
    // SAFETY: the GIL is held (py) and the current thread state belongs to the
    // interpreter the target thread runs in; exc is a live class object for the call.
    let found = unsafe { ffi::PyThreadState_SetAsyncExc(ident as _, exc.as_ptr()) };
    found > 0
}

/// Whether `e` is the `mod_wsgi.RequestTimeout` raised in a request's thread.
pub fn is_request_timeout(py: Python<'_>, e: &PyErr) -> bool {
    py.import("mod_wsgi")
        .and_then(|m| m.getattr("RequestTimeout"))
        .is_ok_and(|class| e.is_instance(py, &class))
}
