//! `mod_wsgi.LogHandler`, as in mod_wsgi 6: a `logging.Handler` writing each record to
//! Apache's error log at the level matching Python's (CRITICAL crit, ERROR error,
//! WARNING warn, INFO info, lower debug; levels between round down), against the request
//! the thread runs, or the server outside requests, filtered by Apache's LogLevel.

mod common;
use common::{Apache, Mode, Mpm};

const APP: &str = r#"
import logging, threading, mod_wsgi
log = logging.getLogger("app")
log.propagate = False
handler = mod_wsgi.LogHandler()
handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
log.addHandler(handler)
log.setLevel(logging.DEBUG)

def application(environ, start_response):
    log.debug("debug record")
    log.info("info record")
    log.warning("warning record")
    log.log(35, "level-35 record")
    log.error("error record\nits second line")
    log.critical("critical record")
    background = threading.Thread(target=log.critical, args=("background record",))
    background.start()
    background.join()
    body = "%s|%s" % (isinstance(handler, logging.Handler), type(handler).__module__)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]
"#;

fn line_with<'a>(log: &'a str, needle: &str) -> &'a str {
    log.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no {needle:?} in:\n{log}"))
}

fn records_go_to_the_error_log_at_their_level(mode: Mode) {
    let conf = format!(
        "{}WSGIScriptAlias / {{root}}/app/app.wsgi application-group=%{{GLOBAL}}\n",
        mode.config()
    );
    let mut apache = Apache::start(Mpm::Event, &conf, &[("app/app.wsgi", APP)]);
    for line in [
        "error record",
        "its second line",
        "critical record",
        "background record",
    ] {
        apache.allow_log(line);
    }
    assert_eq!(apache.get_ok("/"), "True|mod_wsgi");
    let log = apache.wait_for_log("background record");
    for (needle, level) in [
        ("app info record", ":info]"),
        ("app warning record", ":warn]"),
        ("app level-35 record", ":warn]"),
        ("app error record", ":error]"),
        ("its second line", ":error]"),
        ("app critical record", ":crit]"),
        ("app background record", ":crit]"),
    ] {
        let line = line_with(&log, needle);
        assert!(line.contains(level), "{needle} not at {level}: {line}");
    }
    // LogLevel info (the harness's): debug records are dropped.
    assert!(!log.contains("debug record"), "{log}");
    // A request's records name its client (embedded) or its daemon group; a background
    // thread's are the server's.
    let request_mark = match mode {
        Mode::Embedded => "[client 127.0.0.1",
        Mode::Daemon => "[daemon suite]",
    };
    assert!(line_with(&log, "app critical record").contains(request_mark));
    assert!(!line_with(&log, "app background record").contains(request_mark));
    apache.stop();
}

in_both_modes!(records_go_to_the_error_log_at_their_level);
