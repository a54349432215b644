//! wsgi.input: every read method, Content-Length bounds, chunked bodies (411 unless
//! allowed), unsupported transfer codings, large streamed uploads, a body sent in turns
//! with the response, and a client that goes away mid-upload.
//! Every test runs twice: in embedded mode and through a daemon process group.

mod common;
use common::http::Connection;
use common::{Apache, Mode, Mpm};

const INPUT_APP: &str = r##"
import hashlib
def application(environ, start_response):
    inp = environ["wsgi.input"]
    mode = environ["PATH_INFO"]
    if mode == "/read":
        parts = [inp.read()]
    elif mode == "/read-n":
        parts = []
        while True:
            block = inp.read(3)
            if not block:
                break
            parts.append(block + b"|")
    elif mode == "/readline":
        parts = [inp.readline(), b"#", inp.readline(4), b"#", inp.readline()]
    elif mode == "/readlines":
        parts = [b"%d:" % len(x) + x for x in inp.readlines()]
    elif mode == "/iter":
        parts = [b"<" + line + b">" for line in inp]
    elif mode == "/twice":
        first = inp.read()
        parts = [first, b"/", repr(inp.read()).encode()]
    elif mode == "/echo-lines":
        # Answers each line as it arrives: the client sends the next only after that.
        def answers():
            while True:
                line = inp.readline()
                if not line:
                    return
                yield b"got " + line
        start_response("200 OK", [("Content-Type", "text/plain")])
        return answers()
    elif mode in ("/hash", "/hash-mixed"):
        # Mixed sizes switch between reads served from the buffer and reads received
        # straight into the bytes object, mid-frame.
        sizes = [65536] if mode == "/hash" else [3, 40000, 100, 65536, 17000, 1, 16384]
        h = hashlib.sha256()
        total = 0
        i = 0
        while True:
            block = inp.read(sizes[i % len(sizes)])
            i += 1
            if not block:
                break
            total += len(block)
            h.update(block)
        parts = [b"%d %s" % (total, h.hexdigest().encode())]
    body = b"".join(parts)
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(body)))])
    return [body]
"##;

fn start(mode: Mode, extra: &str) -> Apache {
    Apache::start(
        Mpm::Event,
        &format!(
            "WSGIScriptAlias /in {{root}}/app/input.wsgi\n{}{extra}",
            mode.config()
        ),
        &[("app/input.wsgi", INPUT_APP)],
    )
}

fn read_methods(mode: Mode) {
    let mut apache = start(mode, "");
    let body = b"line one\nline two\nlast";
    let post = |path: &str| apache.request("POST", path, &[], body).text();
    assert_eq!(post("/in/read"), "line one\nline two\nlast");
    assert_eq!(post("/in/read-n"), "lin|e o|ne\n|lin|e t|wo\n|las|t|");
    assert_eq!(
        post("/in/readline"),
        "line one\n#line# two\n",
        "readline(4) stops at 4 bytes"
    );
    assert_eq!(post("/in/readlines"), "9:line one\n9:line two\n4:last");
    assert_eq!(post("/in/iter"), "<line one\n><line two\n><last>");
    assert_eq!(post("/in/twice"), "line one\nline two\nlast/b''");
    assert_eq!(
        apache.request("POST", "/in/read", &[], b"").text(),
        "",
        "no body reads as empty"
    );
    apache.stop();
}

fn never_reads_past_content_length(mode: Mode) {
    let mut apache = start(mode, "");
    // The bytes after the declared length are the next pipelined request, not this body.
    let mut conn = Connection::open(apache.port);
    let port = apache.port;
    conn.send(format!("POST /in/twice HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 5\r\n\r\nhelloGET /in/read HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes());
    let first = conn.read_response("POST");
    assert_eq!(first.text(), "hello/b''");
    let second = conn.read_response("GET");
    assert_eq!(
        second.status, 200,
        "the pipelined request was not swallowed"
    );
    apache.stop();
}

fn chunked_bodies_need_wsgi_chunked_request(mode: Mode) {
    let mut apache = start(
        mode,
        "<Location /in/read>\n  WSGIChunkedRequest On\n</Location>\n",
    );
    let chunked = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    let te = [("Transfer-Encoding", "chunked")];
    let ok = apache.request("POST", "/in/read", &te, chunked);
    assert_eq!((ok.status, ok.text().as_str()), (200, "hello world"));
    let refused = apache.request("POST", "/in/read-n", &te, chunked);
    assert_eq!(
        refused.status, 411,
        "chunked body without WSGIChunkedRequest On"
    );
    apache.wait_for_log("WSGI0139");
    apache.allow_log("WSGI0139");
    apache.stop();
}

fn unsupported_transfer_encoding_is_501(mode: Mode) {
    let mut apache = start(mode, "");
    let r = apache.request(
        "POST",
        "/in/read",
        &[("Transfer-Encoding", "gzip"), ("Content-Length", "3")],
        b"abc",
    );
    // Apache's HTTP input layer may refuse first (400/501); the app never runs either way.
    assert!(r.status == 501 || r.status == 400, "got {}", r.status);
    apache.allow_log("WSGI0138");
    apache.allow_log("AH");
    apache.stop();
}

fn large_upload_is_streamed_through(mode: Mode) {
    let mut apache = start(mode, "");
    let body: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let r = apache.request("POST", "/in/hash", &[], &body);
    let expect = std::process::Command::new("python3")
        .args(["-c", "import hashlib,sys; print(hashlib.sha256(bytes(i % 251 for i in range(3*1024*1024))).hexdigest())"])
        .output()
        .unwrap();
    let digest = String::from_utf8_lossy(&expect.stdout).trim().to_owned();
    assert_eq!(r.text(), format!("{} {digest}", body.len()));
    let r = apache.request("POST", "/in/hash-mixed", &[], &body);
    assert_eq!(r.text(), format!("{} {digest}", body.len()));
    apache.stop();
}

fn a_client_gone_mid_upload_fails_the_read_and_the_server_keeps_serving(mode: Mode) {
    let mut apache = start(mode, "");
    // The app's read raises; its traceback is logged.
    for line in [
        "WSGI1020",
        "Traceback",
        "  File ",
        "inp.read(",
        "^^^",
        "read failed",
    ] {
        apache.allow_log(line);
    }
    let port = apache.port;
    let body: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    {
        // A third of the declared body, then the client is gone.
        let mut conn = Connection::open(port);
        conn.send(
            format!(
                "POST /in/hash HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        conn.send(&body[..body.len() / 3]);
    }
    let log = apache.wait_for_log("request body read failed");
    assert!(log.contains("WSGI1020"), "the app's read raised: {log}");
    // The process that saw it serves the next uploads whole.
    for _ in 0..3 {
        let r = apache.request("POST", "/in/hash", &[], &body);
        assert_eq!(r.status, 200);
        assert!(
            r.text().starts_with(&format!("{} ", body.len())),
            "{}",
            r.text()
        );
    }
    apache.stop();
}

fn a_body_sent_in_turns_with_the_response_is_relayed_as_it_arrives(mode: Mode) {
    let mut apache = start(mode, "");
    let port = apache.port;
    let lines = ["first\n", "second\n", "third\n"];
    let mut conn = Connection::open(port);
    conn.send(
        format!(
            "POST /in/echo-lines HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n\r\n",
            lines.concat().len()
        )
        .as_bytes(),
    );
    conn.send(lines[0].as_bytes());
    let (status, _) = conn.read_head();
    assert_eq!(status, 200);
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            conn.send(line.as_bytes());
        }
        let answer = conn
            .read_chunk()
            .unwrap_or_else(|| panic!("no answer to {line:?}"));
        assert_eq!(String::from_utf8_lossy(&answer), format!("got {line}"));
    }
    assert_eq!(conn.read_chunk(), Some(vec![]), "clean end");
    apache.stop();
}

in_both_modes!(
    a_body_sent_in_turns_with_the_response_is_relayed_as_it_arrives,
    a_client_gone_mid_upload_fails_the_read_and_the_server_keeps_serving,
    read_methods,
    never_reads_past_content_length,
    chunked_bodies_need_wsgi_chunked_request,
    unsupported_transfer_encoding_is_501,
    large_upload_is_streamed_through,
);
