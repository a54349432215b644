//! A daemon group whose application cannot load answers at once instead of leaving
//! requests in its backlog until socket-timeout: 500 while the last start failed loading
//! the application (the traceback names file and line in the log), and serving resumes by
//! itself as soon as the script is fixed, without a restart.

mod common;
use common::{Apache, Mpm, Response, get};
use std::time::{Duration, Instant};

const GOOD: &str = r#"
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"fixed"]
"#;

const CONF: &str = r#"
WSGIDaemonProcess broken processes=1 threads=2 socket-timeout=30
WSGIScriptAlias / {root}/app/app.wsgi process-group=broken application-group=%{GLOBAL}
"#;

fn timed_get(apache: &Apache, path: &str) -> (Response, Duration) {
    let started = Instant::now();
    let r = get(apache.port, path);
    (r, started.elapsed())
}

/// Polls until the app answers 200 with `body`; fails after `within`.
fn wait_for_200(apache: &Apache, body: &str, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let r = apache.get("/");
        if r.status == 200 {
            assert_eq!(r.text(), body);
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "still {} after {within:?}:\n{}",
            r.status,
            apache.error_log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn allow_failure_lines(apache: &mut Apache) {
    for needle in [
        "WSGI1103",
        "WSGI1113",
        "WSGI1040",
        "WSGI1122",
        "Error",
        "Traceback",
        "File \"",
        "^",
    ] {
        apache.allow_log(needle);
    }
    apache.allow_log("VERSION = = 3");
    apache.allow_log("import missing_module_for_test");
}

#[test]
fn syntax_error_answers_500_at_once_and_a_fix_serves_without_restart() {
    let broken = format!("VERSION = = 3\n{GOOD}");
    let mut apache = Apache::start(Mpm::Event, CONF, &[("app/app.wsgi", &broken)]);
    allow_failure_lines(&mut apache);
    let log = apache.wait_for_log("WSGI1113");
    for _ in 0..3 {
        let (r, took) = timed_get(&apache, "/");
        assert_eq!(r.status, 500, "{}", r.text());
        assert!(took < Duration::from_secs(1), "500 took {took:?}");
    }
    assert!(
        log.contains("app/app.wsgi\", line 1") && log.contains("SyntaxError"),
        "the log names the file and line:\n{log}"
    );
    assert!(
        apache
            .error_log()
            .contains("has no process serving: process"),
        "{}",
        apache.error_log()
    );
    // The fix is tried as soon as the file changes, not after the retry delay.
    apache.scratch.write("app/app.wsgi", GOOD);
    let took = wait_for_200(&apache, "fixed", Duration::from_secs(3));
    assert!(took < Duration::from_millis(2500), "recovery took {took:?}");
    apache.stop();
}

#[test]
fn import_error_and_unreadable_script_answer_500_at_once() {
    let missing = format!("import missing_module_for_test\n{GOOD}");
    let mut apache = Apache::start(Mpm::Prefork, CONF, &[("app/app.wsgi", &missing)]);
    allow_failure_lines(&mut apache);
    apache.allow_log("Permission denied");
    apache.allow_log("WSGI1115");
    apache.wait_for_log("ModuleNotFoundError");
    let (r, took) = timed_get(&apache, "/");
    assert_eq!(r.status, 500);
    assert!(took < Duration::from_secs(1), "500 took {took:?}");

    // A script the daemon's user cannot read: the same answer.
    let script = apache.scratch.write("app/app.wsgi", GOOD);
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let (r, took) = timed_get(&apache, "/");
    assert_eq!(r.status, 500, "{}", apache.error_log());
    assert!(took < Duration::from_secs(1), "500 took {took:?}");
    // Made readable: served after the next retry (a mode change leaves mtime alone).
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    wait_for_200(&apache, "fixed", Duration::from_secs(10));
    apache.stop();
}

#[test]
fn requests_waiting_for_a_start_that_fails_are_answered_within_a_second() {
    // The import takes 2 s, then fails: requests sent meanwhile wait in the backlog
    // and are answered once it has failed, not after socket-timeout (30 s).
    let slow =
        format!("import time\ntime.sleep(2)\nraise RuntimeError('database not ready')\n{GOOD}");
    let mut apache = Apache::start(Mpm::Worker, CONF, &[("app/app.wsgi", &slow)]);
    allow_failure_lines(&mut apache);
    apache.allow_log("RuntimeError");
    let started = Instant::now();
    let waiting: Vec<_> = (0..3)
        .map(|_| {
            let port = apache.port;
            std::thread::spawn(move || get(port, "/").status)
        })
        .collect();
    for w in waiting {
        assert_eq!(w.join().unwrap(), 500, "{}", apache.error_log());
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(3500),
        "waiting requests were answered after {took:?}"
    );
    apache.stop();
}

#[test]
fn startup_timeout_bounds_the_wait_between_failed_starts() {
    let broken = format!("VERSION = = 3\n{GOOD}");
    let conf = CONF.replace("socket-timeout=30", "socket-timeout=30 startup-timeout=2");
    let mut apache = Apache::start(Mpm::Event, &conf, &[("app/app.wsgi", &broken)]);
    allow_failure_lines(&mut apache);
    let started = Instant::now();
    // Without startup-timeout the third and fourth tries wait 4 s and 8 s; with it, 2 s.
    while apache.error_log().matches("failed its preloads").count() < 4 {
        assert!(
            started.elapsed() < Duration::from_secs(12),
            "{}",
            apache.error_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = apache.error_log();
    assert!(log.contains("tries again in 2.0 s"), "{log}");
    assert!(!log.contains("tries again in 4.0 s"), "{log}");
    apache.stop();
}

/// A process that cannot set itself up (here: its home= is a directory its user may not
/// enter) never serves: requests get 503 with Retry-After at once, and the log says why.
#[test]
fn a_group_whose_processes_cannot_start_answers_503_at_once() {
    let conf = "WSGIDaemonProcess locked processes=1 threads=2 user=www-data home={root}/locked socket-timeout=30\n\
                WSGIScriptAlias / {root}/app/app.wsgi process-group=locked application-group=%{GLOBAL}\n";
    let scratch = common::Scratch::new("locked-home");
    scratch.write("app/app.wsgi", GOOD);
    scratch.write("locked/marker", "");
    let locked = scratch.dir.join("locked");
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let mut apache = Apache::start_in(Mpm::Event, scratch, conf);
    for needle in [
        "WSGI1101",
        "WSGI1122",
        "WSGI1040",
        "WSGI1041",
        "WSGI1123",
        "could not start",
    ] {
        apache.allow_log(needle);
    }
    apache.wait_for_log("WSGI1101");
    let (r, took) = timed_get(&apache, "/");
    assert_eq!(r.status, 503, "{}\n{}", r.text(), apache.error_log());
    assert_eq!(r.header("Retry-After"), Some("5"), "{:?}", r.headers);
    assert!(took < Duration::from_secs(2), "took {took:?}");
    let log = apache.error_log();
    let line = log.lines().find(|l| l.contains("WSGI1101")).unwrap();
    assert!(line.contains("'locked'"), "{line}");
    apache.stop();
}
