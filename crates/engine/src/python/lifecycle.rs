//! Why this process stops (the `shutdown_reason` of the `process_stopping` event), and
//! the signals a daemon process passes to `subscribe_signals()` callbacks as
//! `process_signal` events, as mod_wsgi 6 does.

use super::shim::add_native;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::sync::Mutex;

static REASON: Mutex<String> = Mutex::new(String::new());

/// Says why this process is stopping; the first reason given is kept. Embedded mode
/// gives none (an empty reason, as in mod_wsgi 6).
pub fn set_shutdown_reason(reason: &str) {
    let mut current = REASON.lock().unwrap_or_else(|p| p.into_inner());
    if current.is_empty() {
        current.push_str(reason);
    }
}

fn shutdown_reason() -> String {
    REASON.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Publishes `process_signal` (`signum`, `signame`) in every interpreter of this process.
/// Called from a thread that is not attached to Python.
pub fn publish_process_signal(signum: i32, signame: &str) {
    if !super::is_initialized() {
        return;
    }
    for name in super::interpreters::interpreter_names() {
        let _ = super::with_interpreter(&name, |py, _| {
            let published = py
                .import("mod_wsgi")
                .and_then(|m| m.call_method1("_process_signal", (signum, signame)));
            if let Err(e) = published {
                tracing::error!(
                    "WSGI0112: publishing the 'process_signal' event in interpreter '{name}' failed: {}",
                    super::format_exception(py, &e)
                );
            }
        });
    }
}

pub(crate) fn install(ns: &Bound<'_, PyDict>) -> PyResult<()> {
    add_native(ns, c"_shutdown_reason", |_| Ok(shutdown_reason()))
}
