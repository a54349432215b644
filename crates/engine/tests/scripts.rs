//! Loading WSGI scripts through `wsgi::run` and `python::preload`: a script runs once per
//! interpreter (also when its first requests arrive together) and is kept; its source
//! may declare its encoding; missing scripts, missing callables and scripts that raise
//! fail the request with the reason logged, and a fixed script loads on the next
//! request; with reloading, a changed modification time or `reload_required()` loads
//! the new code, or in daemon mode reports the change and keeps serving the old code.

mod common;

use common::{FAILED_BEFORE_HEAD, python, request, script, serve};
use mod_wsgi_engine::wsgi::{OnScriptChange, Outcome};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A script answering with its version and how many times its module code ran in this
/// interpreter.
fn versioned(version: &str) -> String {
    format!(
        r#"
import builtins
counts = builtins.__dict__.setdefault("engine_loads", {{}})
counts[__file__] = loads = counts.get(__file__, 0) + 1

def application(environ, start_response):
    start_response("200 OK", [])
    return [("{version} load=%d file=%s" % (loads, __file__)).encode()]
"#
    )
}

#[test]
fn a_script_is_loaded_once_per_interpreter_and_kept() {
    python();
    let path = script("kept.wsgi", &versioned("v1"));
    let file = path.display().to_string();
    for group in ["kept-one", "kept-two"] {
        for _ in 0..3 {
            let (outcome, record) = serve(request(&path, group), b"");
            assert_eq!(outcome, Outcome::Complete, "{}", record.log_text());
            assert_eq!(
                record.body_text(),
                format!("v1 load=1 file={file}"),
                "{group}"
            );
        }
    }
}

#[test]
fn a_missing_script_fails_the_request_with_the_reason_logged() {
    python();
    let path = common::scratch().join("never-written.wsgi");
    let (outcome, record) = serve(request(&path, ""), b"");
    assert_eq!(outcome, FAILED_BEFORE_HEAD);
    assert!(record.head.is_none());
    let log = record.log_text();
    assert!(
        log.starts_with("WSGI1021: cannot read WSGI script"),
        "{log}"
    );
    assert!(log.contains(&path.display().to_string()), "{log}");
}

#[test]
fn the_callable_is_found_by_its_configured_name() {
    python();
    let path = script(
        "named_callable.wsgi",
        r#"
def app(environ, start_response):
    start_response("200 OK", [])
    return [b"from app"]
"#,
    );
    let (outcome, record) = serve(request(&path, ""), b"");
    assert_eq!(outcome, FAILED_BEFORE_HEAD);
    record.assert_logged("does not contain WSGI application 'application'");
    let mut req = request(&path, "");
    req.callable = "app".to_owned();
    let (outcome, record) = serve(req, b"");
    assert_eq!(outcome, Outcome::Complete);
    assert_eq!(record.body, b"from app");
}

#[test]
fn a_script_that_raises_is_retried_once_fixed() {
    python();
    let path = script("broken.wsgi", "import engine_module_that_does_not_exist\n");
    let (outcome, record) = serve(request(&path, "broken"), b"");
    assert_eq!(outcome, FAILED_BEFORE_HEAD);
    let log = record.log_text();
    assert!(log.contains("failed to exec Python script file"), "{log}");
    assert!(log.contains("ModuleNotFoundError"), "{log}");
    script("broken.wsgi", &versioned("fixed"));
    let (outcome, record) = serve(request(&path, "broken"), b"");
    assert_eq!(outcome, Outcome::Complete, "{}", record.log_text());
    assert!(record.body_text().starts_with("fixed load=1 "));
}

#[test]
fn with_reloading_a_changed_script_is_loaded_again() {
    python();
    let path = script("reloaded.wsgi", &versioned("v1"));
    let at = |mtime: f64, reload: bool| {
        let mut req = request(&path, "reloading");
        req.script_mtime = mtime;
        req.reload = reload;
        let (outcome, record) = serve(req, b"");
        assert_eq!(outcome, Outcome::Complete, "{}", record.log_text());
        record.body_text()
    };
    assert!(at(1.0, true).starts_with("v1 load=1 "));
    script("reloaded.wsgi", &versioned("v2"));
    assert!(at(1.0, true).starts_with("v1 load=1 "), "same mtime: kept");
    assert!(
        at(2.0, false).starts_with("v1 load=1 "),
        "no reloading: kept"
    );
    assert!(
        at(2.0, true).starts_with("v2 load=2 "),
        "new mtime: reloaded"
    );
    assert!(at(2.0, true).starts_with("v2 load=2 "));
}

#[test]
fn reload_required_asks_for_a_reload_of_a_current_script() {
    python();
    let path = script(
        "reload_required.wsgi",
        r#"
import builtins
builtins.engine_hook_loads = getattr(builtins, "engine_hook_loads", 0) + 1
loads = builtins.engine_hook_loads
asked = []

def reload_required(resource):
    asked.append(resource)
    return environ_wants_reload[0]

environ_wants_reload = [False]

def application(environ, start_response):
    environ_wants_reload[0] = environ["PATH_INFO"] == "/reload"
    start_response("200 OK", [])
    return [("load=%d asked=%s" % (loads, asked == [__file__] * len(asked))).encode()]
"#,
    );
    let run = |path_info: &str| {
        let mut req = request(&path, "hook");
        req.reload = true;
        req.environ.set("PATH_INFO", path_info);
        serve(req, b"").1.body_text()
    };
    assert_eq!(run("/"), "load=1 asked=True");
    assert_eq!(run("/reload"), "load=1 asked=True", "the hook said no");
    assert_eq!(run("/"), "load=2 asked=True", "the hook said yes");
}

#[test]
fn in_daemon_mode_a_changed_script_is_reported_and_the_old_code_serves() {
    python();
    let path = script("reported.wsgi", &versioned("old"));
    let reports = Arc::new(AtomicUsize::new(0));
    let at = |mtime: f64| {
        let counter = reports.clone();
        let mut req = request(&path, "reporting");
        req.script_mtime = mtime;
        req.reload = true;
        req.on_script_change = OnScriptChange::Report(Arc::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        }));
        serve(req, b"").1.body_text()
    };
    assert!(at(1.0).starts_with("old load=1 "));
    assert_eq!(reports.load(Ordering::SeqCst), 0);
    script("reported.wsgi", &versioned("new"));
    assert!(at(2.0).starts_with("old load=1 "), "a successor loads it");
    assert!(at(2.0).starts_with("old load=1 "));
    assert_eq!(
        reports.load(Ordering::SeqCst),
        2,
        "each request that noticed"
    );
}

#[test]
fn preloading_loads_the_script_before_the_first_request() {
    python();
    let path = script("preloaded.wsgi", &versioned("pre"));
    mod_wsgi_engine::python::preload(&path, "preloaded").expect("preloaded");
    mod_wsgi_engine::python::preload(&path, "preloaded").expect("preloading again is fine");
    let mut req = request(&path, "preloaded");
    req.reload = true;
    let (_, record) = serve(req, b"");
    assert!(
        record.body_text().starts_with("pre load=1 "),
        "not loaded again by a request with reloading on: {}",
        record.body_text()
    );
    let broken = script("preload_broken.wsgi", "raise SystemError('bad deploy')\n");
    let error = mod_wsgi_engine::python::preload(&broken, "preloaded").expect_err("fails");
    assert!(error.contains("SystemError: bad deploy"), "{error}");
}

#[test]
fn a_script_runs_once_when_its_first_requests_arrive_together() {
    python();
    let path = script(
        "slow_import.wsgi",
        r#"
import builtins, time
builtins.engine_slow_imports = getattr(builtins, "engine_slow_imports", 0) + 1
time.sleep(0.05)

def application(environ, start_response):
    start_response("200 OK", [])
    return [str(builtins.engine_slow_imports).encode()]
"#,
    );
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || serve(request(&path, "together"), b"").1.body_text())
        })
        .collect();
    for thread in threads {
        assert_eq!(thread.join().expect("answered"), "1");
    }
}

#[test]
fn a_script_may_declare_its_source_encoding() {
    python();
    let mut source = b"# -*- coding: latin-1 -*-\n".to_vec();
    source.extend_from_slice(b"GREETING = '\xe9t\xe9'\n");
    source.extend_from_slice(
        b"def application(environ, start_response):\n    start_response('200 OK', [])\n    return [GREETING.encode('utf-8')]\n",
    );
    let path = common::scratch().join("latin1_source.wsgi");
    std::fs::write(&path, &source).expect("script written");
    let (outcome, record) = serve(request(&path, ""), b"");
    assert_eq!(outcome, Outcome::Complete, "{}", record.log_text());
    assert_eq!(record.body_text(), "\u{e9}t\u{e9}");
}

#[test]
fn a_script_with_a_nul_byte_fails_with_the_reason_logged() {
    python();
    let path = script("nul.wsgi", "X = 1\0\n");
    let (outcome, record) = serve(request(&path, ""), b"");
    assert_eq!(outcome, FAILED_BEFORE_HEAD);
    record.assert_logged("source code string cannot contain null bytes");
}
