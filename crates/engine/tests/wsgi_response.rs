//! The response side of PEP 3333 through `wsgi::run`, with a recording sink for the
//! transport: status and headers, a streamed body, applications that raise, close()
//! however the response ends (a client that went away, a transport that broke),
//! Content-Length, and wsgi.file_wrapper over a file or any file-like object.

mod common;

use common::{FAILED_BEFORE_HEAD, RecordingSink, get, python, request, script, serve, serve_with};
use mod_wsgi_engine::wsgi::Outcome;

#[test]
fn status_headers_and_a_streamed_body_reach_the_transport() {
    let (outcome, record) = get(
        "streamed.wsgi",
        r#"
def application(environ, start_response):
    start_response("201 Created", [("Content-Type", "text/plain"), ("X-Trace", "a b")])
    yield b"first,"
    yield b""
    yield b"second,"
    yield b"third"
"#,
    );
    assert_eq!(outcome, Outcome::Complete);
    let head = record.head.clone().expect("head sent");
    assert_eq!((head.code, head.status_line.as_str()), (201, "201 Created"));
    assert_eq!(
        head.headers,
        vec![
            ("Content-Type".to_owned(), "text/plain".to_owned()),
            ("X-Trace".to_owned(), "a b".to_owned()),
        ]
    );
    assert_eq!(record.heads_sent, 1);
    assert_eq!(record.body, b"first,second,third");
    assert_eq!(
        record.writes, 3,
        "each non-empty block is written as it comes"
    );
}

#[test]
fn an_empty_body_still_sends_the_head() {
    let (outcome, record) = get(
        "empty.wsgi",
        r#"
def application(environ, start_response):
    start_response("204 No Content", [])
    return []
"#,
    );
    assert_eq!(outcome, Outcome::Complete);
    assert_eq!(record.status(), Some(204));
    assert!(record.body.is_empty());
}

#[test]
fn an_application_that_raises_fails_with_headers_not_sent_and_its_traceback_logged() {
    let (outcome, record) = get(
        "raises.wsgi",
        r#"
def application(environ, start_response):
    start_response("200 OK", [])
    raise KeyError("missing-setting")
"#,
    );
    assert_eq!(outcome, FAILED_BEFORE_HEAD);
    assert!(record.head.is_none(), "start_response alone sends nothing");
    assert!(record.body.is_empty());
    let log = record.log_text();
    assert!(log.contains("WSGI1020"), "{log}");
    assert!(log.contains("raises.wsgi"), "the script is named: {log}");
    assert!(log.contains("KeyError: 'missing-setting'"), "{log}");
}

#[test]
fn an_iterable_that_raises_midway_fails_with_headers_sent() {
    let (outcome, record) = get(
        "raises_midway.wsgi",
        r#"
def application(environ, start_response):
    start_response("200 OK", [])
    yield b"half"
    raise RuntimeError("stream broke")
"#,
    );
    assert_eq!(outcome, Outcome::Failed { headers_sent: true });
    assert_eq!(record.status(), Some(200));
    assert_eq!(record.body, b"half");
    assert!(record.log_text().contains("RuntimeError: stream broke"));
}

#[test]
fn a_body_of_str_instead_of_bytes_is_refused() {
    let (outcome, record) = get(
        "text_body.wsgi",
        r#"
def application(environ, start_response):
    start_response("200 OK", [])
    return ["text"]
"#,
    );
    assert_eq!(outcome, FAILED_BEFORE_HEAD);
    record.assert_logged("sequence of byte string values expected, value of type str found");
}

/// A script whose iterable records close() in `engine_closes` (a module of its
/// interpreter), with `body` as the generator's body.
const CLOSING: &str = r#"
import sys, types
closes = sys.modules.setdefault("engine_closes", types.ModuleType("engine_closes"))
closes.calls = getattr(closes, "calls", [])

class Body:
    def __init__(self, name, blocks, fail):
        self.name, self.blocks, self.fail = name, blocks, fail
    def __iter__(self):
        for block in self.blocks:
            yield block
        if self.fail:
            raise ValueError("failed while streaming")
    def close(self):
        closes.calls.append(self.name)

def application(environ, start_response):
    start_response("200 OK", [])
    name = environ["PATH_INFO"]
    return Body(name, [b"a", b"b", b"c"], name.endswith("fail"))
"#;

fn closes(group: &str) -> Vec<String> {
    mod_wsgi_engine::python::with_interpreter(group, |py, _| {
        common::eval(py, "import engine_closes\nresult = engine_closes.calls")
    })
    .expect("entered")
}

#[test]
fn close_is_called_once_however_the_response_ends() {
    python();
    let path = script("closing.wsgi", CLOSING);
    let group = "closing";
    let run = |path_info: &str, sink: RecordingSink, record| {
        let mut req = request(&path, group);
        req.environ.set("PATH_INFO", path_info);
        serve_with(req, b"", 1000, sink, record)
    };
    let (sink, record) = RecordingSink::new();
    let (outcome, done) = run("/done", sink, record);
    assert_eq!(
        (outcome, done.body.as_slice()),
        (Outcome::Complete, &b"abc"[..])
    );
    let (sink, record) = RecordingSink::new();
    let (outcome, _) = run("/fail", sink, record);
    assert_eq!(outcome, Outcome::Failed { headers_sent: true });
    let (sink, record) = RecordingSink::new();
    let (outcome, gone) = run("/gone", sink.client_gone_after(1), record);
    assert_eq!(outcome, Outcome::ClientGone);
    assert_eq!(
        gone.body, b"a",
        "nothing is written once the client is gone"
    );
    let (sink, record) = RecordingSink::new();
    let (outcome, broken) = run("/broken", sink.failing_after(2), record);
    assert_eq!(outcome, Outcome::Failed { headers_sent: true });
    assert_eq!(broken.body, b"ab");
    broken.assert_logged("WSGI1024: failed to write response: the transport broke");
    assert_eq!(closes(group), ["/done", "/fail", "/gone", "/broken"]);
}

#[test]
fn a_body_longer_than_content_length_is_cut_and_a_shorter_one_fails() {
    let source = r#"
def application(environ, start_response):
    declared = environ["PATH_INFO"].strip("/")
    start_response("200 OK", [("Content-Length", declared)])
    return [b"0123456789"]
"#;
    let path = script("content_length.wsgi", source);
    let run = |declared: &str, header_only: bool| {
        let mut req = request(&path, "");
        req.environ.set("PATH_INFO", &format!("/{declared}"));
        req.header_only = header_only;
        serve(req, b"")
    };
    let (outcome, cut) = run("4", false);
    assert_eq!(
        (outcome, cut.body.as_slice()),
        (Outcome::Complete, &b"0123"[..])
    );
    let (outcome, short) = run("12", false);
    assert_eq!(outcome, Outcome::Failed { headers_sent: true });
    assert_eq!(short.body, b"0123456789");
    short.assert_logged("WSGI1025");
    let (outcome, head) = run("12", true);
    assert_eq!(outcome, Outcome::Complete, "a HEAD response may be shorter");
    assert!(!head.log_text().contains("WSGI1025"));
}

#[test]
fn a_file_wrapper_over_a_file_is_sent_from_where_the_file_stands() {
    python();
    let data = common::scratch().join("payload.bin");
    let payload: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&data, &payload).expect("payload written");
    let source = format!(
        r#"
def application(environ, start_response):
    f = open({:?}, "rb")
    f.seek(100)
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](f, 4096)
"#,
        data.display().to_string()
    );
    let (outcome, record) = get("file_wrapper.wsgi", &source);
    assert_eq!(outcome, Outcome::Complete);
    assert_eq!(
        record.files,
        [(100, 19_900)],
        "one send_file from the offset"
    );
    assert_eq!(record.header("Content-Length"), Some("19900"));
    assert_eq!(record.body, &payload[100..]);
}

#[test]
fn a_file_wrapper_is_cut_at_the_declared_content_length() {
    python();
    let data = common::scratch().join("cut.bin");
    std::fs::write(&data, b"0123456789").expect("payload written");
    let source = format!(
        r#"
def application(environ, start_response):
    start_response("200 OK", [("Content-Length", "4")])
    return environ["wsgi.file_wrapper"](open({:?}, "rb"))
"#,
        data.display().to_string()
    );
    let (outcome, record) = get("file_wrapper_cut.wsgi", &source);
    assert_eq!(outcome, Outcome::Complete);
    assert_eq!(record.files, [(0, 4)]);
    assert_eq!(record.body, b"0123");
}

#[test]
fn a_file_wrapper_over_a_file_like_object_is_iterated_in_blocks() {
    let (outcome, record) = get(
        "file_wrapper_bytesio.wsgi",
        r#"
import io
def application(environ, start_response):
    start_response("200 OK", [])
    return environ["wsgi.file_wrapper"](io.BytesIO(b"x" * 10000), 4096)
"#,
    );
    assert_eq!(outcome, Outcome::Complete);
    assert!(record.files.is_empty(), "no descriptor to send from");
    assert_eq!(record.writes, 3, "blocks of 4096 bytes");
    assert_eq!(record.body, vec![b'x'; 10000]);
}

#[test]
fn close_raising_after_the_whole_body_leaves_the_response_complete() {
    let (outcome, record) = get(
        "close_raises.wsgi",
        r#"
class Body(list):
    def close(self):
        raise RuntimeError("request_finished handler failed")

def application(environ, start_response):
    start_response("200 OK", [])
    return Body([b"all of it"])
"#,
    );
    assert_eq!(outcome, Outcome::Complete);
    assert_eq!(record.body, b"all of it");
    record.assert_logged("RuntimeError: request_finished handler failed");
}
