//! wsgi.input through `wsgi::run`, over a request body the transport hands over in
//! pieces: read() and read(n) return the body exactly, readline/readlines/iteration
//! split it at newlines, the end of the body reads as b"", and a transport failure
//! reaches the application as OSError.

mod common;

use common::{RecordingSink, python, request, script, serve_with};
use mod_wsgi_engine::wsgi::{BodyReader, Outcome, body_aborted};
use std::mem::MaybeUninit;

fn body(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 256) as u8).collect()
}

/// POSTs `data` to a script called `name` whose application is `source`, the body
/// handed over in pieces of `chunk` bytes.
fn post_in(chunk: usize, name: &str, source: &str, data: &[u8]) -> (Outcome, common::Record) {
    python();
    let path = script(name, source);
    let mut req = request(&path, "");
    req.environ.set("REQUEST_METHOD", "POST");
    req.environ.set("CONTENT_LENGTH", &data.len().to_string());
    let (sink, record) = RecordingSink::new();
    serve_with(req, data, chunk, sink, record)
}

fn post(name: &str, source: &str, data: &[u8]) -> (Outcome, common::Record) {
    post_in(1000, name, source, data)
}

#[test]
fn read_returns_the_whole_body_exactly() {
    let data = body(200_000);
    let (outcome, record) = post(
        "read_all.wsgi",
        r#"
def application(environ, start_response):
    data = environ["wsgi.input"].read()
    after = environ["wsgi.input"].read()
    start_response("200 OK", [("X-After", repr(after))])
    return [data]
"#,
        &data,
    );
    assert_eq!(outcome, Outcome::Complete);
    assert_eq!(record.body.len(), data.len());
    assert!(record.body == data, "the body came back changed");
    assert_eq!(
        record.header("X-After"),
        Some("b''"),
        "the end reads as b''"
    );
}

#[test]
fn reads_of_any_size_reassemble_the_body() {
    // Sizes below and above the largest read answered in one preallocated object (1 MiB).
    let data = body(2_500_000);
    let (outcome, record) = post_in(
        64 * 1024,
        "read_sizes.wsgi",
        r#"
def application(environ, start_response):
    stream = environ["wsgi.input"]
    parts = []
    for size in (0, 1, 7, 65536, 1500000, 3000000, 10):
        parts.append(stream.read(size))
    sizes = ",".join(str(len(p)) for p in parts)
    start_response("200 OK", [("X-Sizes", sizes)])
    return [b"".join(parts)]
"#,
        &data,
    );
    assert_eq!(outcome, Outcome::Complete);
    assert_eq!(
        record.header("X-Sizes"),
        Some("0,1,7,65536,1500000,934456,0"),
        "each read returns what was asked while the body lasts"
    );
    assert!(record.body == data, "the body came back changed");
}

#[test]
fn lines_are_split_at_newlines_however_they_are_read() {
    let (outcome, record) = post(
        "lines.wsgi",
        r#"
def application(environ, start_response):
    stream = environ["wsgi.input"]
    first = stream.readline()
    capped = stream.readline(3)
    rest_of_line = stream.readline()
    some = stream.readlines(1)
    iterated = list(stream)
    start_response("200 OK", [])
    return [repr([first, capped, rest_of_line, some, iterated]).encode()]
"#,
        b"alpha\nbravo\ncharlie\n\ndelta\necho",
    );
    assert_eq!(outcome, Outcome::Complete);
    assert_eq!(
        record.body_text(),
        "[b'alpha\\n', b'bra', b'vo\\n', [b'charlie\\n'], [b'\\n', b'delta\\n', b'echo']]"
    );
}

#[test]
fn readline_and_read_share_one_position() {
    let (outcome, record) = post(
        "mixed.wsgi",
        r#"
def application(environ, start_response):
    stream = environ["wsgi.input"]
    parts = [stream.readline(), stream.read(4), stream.readline(), stream.read()]
    start_response("200 OK", [])
    return [repr(parts).encode()]
"#,
        b"head\nbody-one\ntail",
    );
    assert_eq!(outcome, Outcome::Complete);
    assert_eq!(
        record.body_text(),
        "[b'head\\n', b'body', b'-one\\n', b'tail']"
    );
}

/// A body whose transport fails after `good` bytes (the client went away).
struct AbortedBody {
    good: usize,
}

impl BodyReader for AbortedBody {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.good == 0 {
            return Err(body_aborted());
        }
        let n = buf.len().min(self.good);
        buf[..n].fill(b'x');
        self.good -= n;
        Ok(n)
    }

    fn read_uninit(&mut self, buf: &mut [MaybeUninit<u8>]) -> std::io::Result<usize> {
        if self.good == 0 {
            return Err(body_aborted());
        }
        let n = buf.len().min(self.good);
        for slot in &mut buf[..n] {
            slot.write(b'x');
        }
        self.good -= n;
        Ok(n)
    }
}

#[test]
fn a_body_the_transport_cannot_finish_reading_raises_os_error() {
    python();
    let path = script(
        "aborted.wsgi",
        r#"
def application(environ, start_response):
    stream = environ["wsgi.input"]
    try:
        stream.read(100)
        outcome = "no error"
    except OSError as e:
        outcome = str(e)
    start_response("200 OK", [])
    return [outcome.encode()]
"#,
    );
    let (sink, record) = RecordingSink::new();
    let outcome = mod_wsgi_engine::wsgi::run(
        request(&path, ""),
        Box::new(AbortedBody { good: 10 }),
        Box::new(sink),
    );
    assert_eq!(outcome, Outcome::Complete, "the application handled it");
    let text = record.lock().expect("record").body_text();
    assert!(text.starts_with("request body read failed: "), "{text}");
    assert!(text.contains("client went away"), "{text}");
}

#[test]
fn a_body_handed_over_one_byte_at_a_time_reads_the_same() {
    python();
    let data = body(5_000);
    let path = script(
        "trickle.wsgi",
        r#"
def application(environ, start_response):
    stream = environ["wsgi.input"]
    data = stream.readline() + stream.read(2000) + stream.read()
    start_response("200 OK", [])
    return [data]
"#,
    );
    let (sink, record) = RecordingSink::new();
    let (outcome, record) = serve_with(request(&path, ""), &data, 1, sink, record);
    assert_eq!(outcome, Outcome::Complete);
    assert!(record.body == data, "the body came back changed");
}
