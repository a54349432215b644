//! The environ an application gets through `wsgi::run`, and wsgi.errors: CGI variables
//! as ISO-8859-1 text, the `wsgi.*` keys PEP 3333 requires, HTTPS turned into
//! wsgi.url_scheme, and lines written to wsgi.errors reaching the transport's log with
//! the request.

mod common;

use common::{get, python, request, script, serve};
use mod_wsgi_engine::wsgi::Outcome;
use tracing::Level;

/// An application answering with `repr()` of the environ values `keys` names.
const REPORT: &str = r#"
def application(environ, start_response):
    keys = environ["QUERY_STRING"].split(",")
    start_response("200 OK", [])
    return [repr([environ.get(k, "<absent>") for k in keys]).encode("ascii", "backslashreplace")]
"#;

fn report(keys: &str, tune: impl FnOnce(&mut mod_wsgi_engine::wsgi::WsgiRequest)) -> String {
    python();
    let path = script("report.wsgi", REPORT);
    let mut req = request(&path, "");
    req.environ.set("QUERY_STRING", keys);
    tune(&mut req);
    let (outcome, record) = serve(req, b"");
    assert_eq!(outcome, Outcome::Complete, "{}", record.log_text());
    record.body_text()
}

#[test]
fn cgi_variables_arrive_as_latin_1_text() {
    let seen = report("REQUEST_METHOD,HTTP_X_NAME,PATH_INFO,SERVER_PORT", |req| {
        req.environ.set("REQUEST_METHOD", "PUT");
        // Header bytes 0xC3 0xA9 (UTF-8 é) as Apache hands them: one char per byte.
        req.environ.push("HTTP_X_NAME", "caf\u{c3}\u{a9}");
        req.environ.set("PATH_INFO", "/a b/\u{ff}");
    });
    assert_eq!(seen, r"['PUT', 'caf\xc3\xa9', '/a b/\xff', '80']");
}

#[test]
fn the_wsgi_keys_describe_the_request_and_the_server() {
    let keys = "wsgi.version,wsgi.url_scheme,wsgi.multithread,wsgi.multiprocess,\
                wsgi.run_once,wsgi.input_terminated,mod_wsgi.version";
    let seen = report(keys, |req| {
        req.multithread = false;
        req.multiprocess = true;
        req.run_once = true;
    });
    assert_eq!(seen, "[(1, 0), 'http', False, True, True, True, (6, 1, 1)]");
}

#[test]
fn https_becomes_the_url_scheme_and_leaves_the_environ() {
    for (value, scheme) in [("on", "https"), ("1", "https"), ("off", "http")] {
        let seen = report("wsgi.url_scheme,HTTPS", |req| {
            req.environ.push("HTTPS", value);
        });
        assert_eq!(seen, format!("['{scheme}', '<absent>']"), "HTTPS={value}");
    }
}

#[test]
fn the_input_errors_and_file_wrapper_objects_are_usable() {
    let (outcome, record) = get(
        "objects.wsgi",
        r#"
import io
def application(environ, start_response):
    checks = [
        callable(environ["wsgi.input"].read),
        callable(environ["wsgi.input"].readline),
        isinstance(environ["wsgi.errors"], io.TextIOBase),
        callable(environ["wsgi.file_wrapper"]),
    ]
    start_response("200 OK", [])
    return [repr(checks).encode()]
"#,
    );
    assert_eq!(outcome, Outcome::Complete);
    assert_eq!(record.body_text(), "[True, True, True, True]");
}

#[test]
fn wsgi_errors_lines_reach_the_log_of_their_request_in_order() {
    let (outcome, record) = get(
        "errors.wsgi",
        r#"
def application(environ, start_response):
    errors = environ["wsgi.errors"]
    errors.write("first line\n")
    print("printed", 42, file=errors)
    errors.writelines(["joined ", "pieces\n", "two\nlines\n"])
    errors.write("unfinished")
    start_response("200 OK", [])
    return [b"ok"]
"#,
    );
    assert_eq!(outcome, Outcome::Complete);
    let lines: Vec<&str> = record.log.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(
        lines,
        [
            "first line",
            "printed 42",
            "joined pieces",
            "two",
            "lines",
            "unfinished"
        ],
        "the unfinished last line is written when the request ends"
    );
    assert!(record.log.iter().all(|(level, _)| *level == Level::ERROR));
}

#[test]
fn a_kept_wsgi_errors_writes_to_the_request_running_now() {
    python();
    let path = script(
        "kept_errors.wsgi",
        r#"
kept = []
def application(environ, start_response):
    if not kept:
        kept.append(environ["wsgi.errors"])
    kept[0].write("from %s\n" % environ["PATH_INFO"])
    start_response("200 OK", [])
    return [b""]
"#,
    );
    let mut first = request(&path, "");
    first.environ.set("PATH_INFO", "/first");
    let mut second = request(&path, "");
    second.environ.set("PATH_INFO", "/second");
    let (_, first) = serve(first, b"");
    let (_, second) = serve(second, b"");
    assert_eq!(first.log_text(), "from /first");
    assert_eq!(second.log_text(), "from /second");
}

#[test]
fn a_request_rec_capsule_cannot_be_set_from_the_configuration() {
    let seen = report("apache.request_rec,mod_wsgi.thread_id", |req| {
        req.environ.push("apache.request_rec", "spoofed by SetEnv");
    });
    assert!(seen.starts_with("['<absent>', "), "{seen}");
}

#[test]
fn a_request_that_detaches_or_closes_wsgi_errors_does_not_break_the_next_ones() {
    let path = script(
        "detach.wsgi",
        r#"
def application(environ, start_response):
    errors = environ["wsgi.errors"]
    what = environ["QUERY_STRING"]
    if what == "detach":
        errors.detach()
    elif what == "close":
        errors.close()
    else:
        errors.write("still logging\n")
    start_response("200 OK", [])
    return [b"ok"]
"#,
    );
    for spoil in ["detach", "close"] {
        let mut req = request(&path, "");
        req.environ.push("QUERY_STRING", spoil);
        let (outcome, _) = serve(req, b"");
        assert_eq!(outcome, Outcome::Complete, "{spoil}");
        let (outcome, record) = serve(request(&path, ""), b"");
        assert_eq!(outcome, Outcome::Complete, "after {spoil}");
        let lines: Vec<&str> = record.log.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(lines, ["still logging"], "after {spoil}");
    }
}
