//! A process whose CPython was never started (its initialisation failed): entering an
//! interpreter is an error, a request fails with a 500 before anything is sent and the
//! reason reaches the request's log, and a phase script denies; nothing crashes.

mod common;

use common::{FAILED_BEFORE_HEAD, RecordingSink, request, scratch, serve_with};
use mod_wsgi_engine::python::{self, with_interpreter};
use mod_wsgi_engine::wsgi::phases::{self, PhaseCall, PhaseFailed};

const NOT_STARTED: &str = "Python is not initialised in this process";

#[test]
fn entering_an_interpreter_is_an_error() {
    assert!(!python::is_initialized());
    for group in ["", "group"] {
        let entered = with_interpreter(group, |_, _| ());
        assert_eq!(
            entered.map_err(|e| e.to_string()),
            Err(NOT_STARTED.to_owned())
        );
    }
    let preloaded = python::preload(&scratch().join("app.wsgi"), "");
    assert_eq!(preloaded, Err(NOT_STARTED.to_owned()));
}

#[test]
fn a_request_fails_before_anything_is_sent() {
    let path = scratch().join("app.wsgi");
    let (sink, record) = RecordingSink::new();
    let (outcome, record) = serve_with(request(&path, ""), b"body", 100, sink, record);
    assert_eq!(outcome, FAILED_BEFORE_HEAD);
    assert!(record.head.is_none());
    assert_eq!(record.log_text(), format!("WSGI1023: {NOT_STARTED}"));
}

#[test]
fn a_phase_script_denies() {
    let path = scratch().join("auth.wsgi");
    let call = PhaseCall {
        script: &path,
        application_group: "",
        reload: false,
        environ: mod_wsgi_wire::Environ::new(),
    };
    assert_eq!(
        phases::check_password(call, "ann", "secret"),
        Err(PhaseFailed)
    );
}
