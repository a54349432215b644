//! start_response() and write() as PEP 3333 defines them, through `wsgi::run`: a second
//! call before any output replaces the first, after output only with exc_info (which
//! re-raises), headers are checked (ISO-8859-1, no hop-by-hop, a list of 2-tuples,
//! a numeric Content-Length), start_response may wait for the first iteration, write()
//! sends ahead of the iterable, and a body without start_response is refused.

mod common;

use common::{FAILED_BEFORE_HEAD, get, python, request, script, serve};
use mod_wsgi_engine::wsgi::Outcome;

#[test]
fn a_second_start_response_before_any_output_wins() {
    let (outcome, record) = get(
        "twice.wsgi",
        r#"
def application(environ, start_response):
    start_response("200 OK", [("X-First", "1")])
    start_response("404 Not Found", [("X-Second", "2")])
    return [b"gone"]
"#,
    );
    assert_eq!(outcome, Outcome::Complete);
    assert_eq!(record.status(), Some(404));
    assert_eq!(record.header("X-Second"), Some("2"));
    assert_eq!(record.header("X-First"), None);
    assert_eq!(record.body, b"gone");
}

#[test]
fn start_response_again_after_output_without_exc_info_fails_the_request() {
    let (outcome, record) = get(
        "late.wsgi",
        r#"
def application(environ, start_response):
    start_response("200 OK", [])
    yield b"partial"
    start_response("500 Oops", [])
    yield b"never"
"#,
    );
    assert_eq!(outcome, Outcome::Failed { headers_sent: true });
    assert_eq!(record.status(), Some(200));
    assert_eq!(record.body, b"partial");
    record.assert_logged("start_response() called more than once");
}

#[test]
fn exc_info_replaces_the_head_before_output_and_re_raises_after() {
    let source = r#"
import sys
def application(environ, start_response):
    start_response("200 OK", [("X-Stage", "first")])
    if environ["PATH_INFO"] == "/after":
        yield b"sent"
    try:
        raise LookupError("the original error")
    except LookupError:
        start_response("500 Internal Server Error", [("X-Stage", "error")], sys.exc_info())
    yield b"error page"
"#;
    python();
    let path = script("exc_info.wsgi", source);
    let run = |path_info: &str| {
        let mut req = request(&path, "");
        req.environ.set("PATH_INFO", path_info);
        serve(req, b"")
    };
    let (outcome, before) = run("/before");
    assert_eq!(outcome, Outcome::Complete);
    assert_eq!(before.status(), Some(500));
    assert_eq!(before.header("X-Stage"), Some("error"));
    assert_eq!(before.body, b"error page");
    let (outcome, after) = run("/after");
    assert_eq!(outcome, Outcome::Failed { headers_sent: true });
    assert_eq!(after.status(), Some(200), "the head already sent stays");
    assert_eq!(after.body, b"sent");
    assert!(
        after.log_text().contains("LookupError: the original error"),
        "the original exception is re-raised: {}",
        after.log_text()
    );
}

#[test]
fn a_header_value_outside_latin_1_is_refused_with_unicode_encode_error() {
    let (outcome, record) = get(
        "latin1.wsgi",
        r#"
def application(environ, start_response):
    try:
        start_response("200 OK", [("X-Price", "10 \u20ac")])
    except UnicodeEncodeError as e:
        refused = type(e).__name__
    start_response("200 OK", [("X-Refused", refused), ("X-Cafe", "caf\u00e9")])
    return [b"answered"]
"#,
    );
    assert_eq!(outcome, Outcome::Complete);
    assert_eq!(record.header("X-Refused"), Some("UnicodeEncodeError"));
    assert_eq!(
        record.header("X-Price"),
        None,
        "the refused header never went out"
    );
    assert_eq!(
        record.header("X-Cafe"),
        Some("caf\u{e9}"),
        "ISO-8859-1 is fine"
    );
    assert_eq!(record.body, b"answered");
}

#[test]
fn an_uncaught_header_refusal_fails_the_request_before_any_header_is_sent() {
    let (outcome, record) = get(
        "latin1_uncaught.wsgi",
        r#"
def application(environ, start_response):
    start_response("200 OK", [("X-Name", "\u0436")])
    return [b"body"]
"#,
    );
    assert_eq!(outcome, FAILED_BEFORE_HEAD);
    assert!(record.head.is_none());
    assert!(record.log_text().contains("UnicodeEncodeError"));
}

#[test]
fn malformed_headers_are_refused_with_the_reason() {
    let (outcome, record) = get(
        "malformed.wsgi",
        r#"
def application(environ, start_response):
    attempts = [
        ("200 OK", (("X-A", "1"),)),
        ("200 OK", [("X-A", "1", "2")]),
        ("200 OK", [("X-A", 1)]),
        ("200 OK", [("Content-Length", "ten")]),
        ("200 OK", [("Connection", "close")]),
        ("200 OK", [("X-A", "one\r\nX-Injected: 1")]),
        ("OK", []),
    ]
    refusals = []
    for status, headers in attempts:
        try:
            start_response(status, headers)
            refusals.append("accepted")
        except (TypeError, ValueError) as e:
            refusals.append(type(e).__name__)
    start_response("200 OK", [])
    return [" ".join(refusals).encode()]
"#,
    );
    assert_eq!(outcome, Outcome::Complete);
    assert_eq!(
        record.body_text(),
        "TypeError ValueError TypeError ValueError ValueError ValueError ValueError"
    );
    assert!(
        record
            .log_text()
            .contains("WSGI1026: start_response() header \"Connection\" refused"),
        "a hop-by-hop header is logged even when caught: {}",
        record.log_text()
    );
}

#[test]
fn start_response_may_wait_for_the_first_iteration() {
    let (outcome, record) = get(
        "lazy.wsgi",
        r#"
def application(environ, start_response):
    def body():
        start_response("202 Accepted", [("X-Lazy", "yes")])
        yield b"later"
    return body()
"#,
    );
    assert_eq!(outcome, Outcome::Complete);
    assert_eq!(record.status(), Some(202));
    assert_eq!(record.header("X-Lazy"), Some("yes"));
    assert_eq!(record.body, b"later");
}

#[test]
fn write_sends_ahead_of_the_iterable() {
    let (outcome, record) = get(
        "write.wsgi",
        r#"
def application(environ, start_response):
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"written,")
    write(b"")
    return [b"returned"]
"#,
    );
    assert_eq!(outcome, Outcome::Complete);
    assert_eq!(record.body, b"written,returned");
    assert_eq!(record.heads_sent, 1);
}

#[test]
fn a_write_kept_past_its_request_cannot_reach_another_one() {
    python();
    let path = script(
        "leaked_write.wsgi",
        r#"
kept = []
def application(environ, start_response):
    write = start_response("200 OK", [])
    if kept:
        try:
            kept[0](b"into the next request")
            outcome = b"written"
        except RuntimeError as e:
            outcome = str(e).encode()
        return [outcome]
    write(b"first")
    kept.append(write)
    return []
"#,
    );
    let (_, first) = serve(request(&path, ""), b"");
    assert_eq!(first.body, b"first");
    let (outcome, second) = serve(request(&path, ""), b"");
    assert_eq!(outcome, Outcome::Complete);
    assert_eq!(second.body_text(), "the request has already finished");
}

#[test]
fn a_body_without_start_response_fails_before_anything_is_sent() {
    for (name, returned) in [
        ("no_start.wsgi", "[b'body']"),
        ("no_start_empty.wsgi", "[]"),
    ] {
        let source = format!("def application(environ, start_response):\n    return {returned}\n");
        let (outcome, record) = get(name, &source);
        assert_eq!(outcome, FAILED_BEFORE_HEAD, "{name}");
        assert!(record.head.is_none());
        assert!(
            record
                .log_text()
                .contains("without calling start_response()"),
            "{name}: {}",
            record.log_text()
        );
    }
}
