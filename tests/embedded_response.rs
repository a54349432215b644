//! The response: start_response (exc_info, validation, hop-by-hop headers refused),
//! write(), Content-Length truncation, streaming generators, close(), HEAD and
//! wsgi.file_wrapper. Every test runs twice: in embedded mode and through a daemon
//! process group.

mod common;
use common::http::Connection;
use common::{Apache, Mode, Mpm};

const APP: &str = r##"
import io, os, sys, time

def application(environ, start_response):
    path = environ["PATH_INFO"]
    marker_dir = environ["MARKER_DIR"]

    if path == "/exc-info":
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("changed my mind")
        except ValueError:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")], sys.exc_info())
        return [b"replaced"]

    if path == "/exc-info-after-send":
        start_response("200 OK", [("Content-Type", "text/plain")])
        def gen():
            yield b"partial"
            try:
                raise KeyError("too late")
            except KeyError:
                start_response("500 Oops", [], sys.exc_info())
            yield b"never"
        return gen()

    if path == "/latin1":
        start_response("200 Caf\u00e9", [("Content-Type", "text/plain"),
            ("X-Name", "caf\u00e9"),
            ("X-Utf8-Idiom", "\u00e4".encode("utf-8").decode("latin-1"))])
        return [b"ok"]

    if path == "/not-latin1":
        where = environ["QUERY_STRING"]
        headers = [("Content-Type", "text/plain")]
        status = "200 OK"
        if where == "value":
            headers.append(("X-Price", "5 \u20ac"))
        else:
            status = "200 \u20ac"
        start_response(status, headers)
        return [b"not sent"]

    if path == "/twice":
        start_response("500 Oops", [("X-First", "1")])
        start_response("201 Created", [("Content-Type", "text/plain"), ("X-Second", "2")])
        return [b"second wins"]

    if path == "/malformed-arguments":
        caught = []
        for headers, exc_info in [
            ([("Content-Type", "text/plain")], "not a tuple"),
            ([("X-A", "1", "extra")], None),
            (["X-A: 1"], None),
        ]:
            try:
                start_response("200 OK", headers, exc_info)
            except Exception as e:
                caught.append(type(e).__name__)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [" ".join(caught).encode()]

    if path == "/twice-after-output":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"out;")
        try:
            start_response("500 Oops", [])
        except RuntimeError as e:
            return [str(e).encode()]
        return [b"accepted"]

    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"from write, ")
        return [b"from iterable"]

    if path == "/bad-header":
        start_response("200 OK", [("X-Evil", "a\r\nSet-Cookie: stolen=1")])
        return [b"x"]

    if path == "/bad-header-name":
        start_response("200 OK", [("Bad Name", "v")])
        return [b"x"]

    if path == "/hop-by-hop":
        # The header named in the query string; with Transfer-Encoding the body is
        # hand-made chunks followed by a second response, which would be smuggled onto
        # the kept-alive connection if the header went out.
        name = environ["QUERY_STRING"]
        if name.lower() == "transfer-encoding":
            start_response("200 OK", [("Content-Type", "text/plain"), (name, "chunked")])
            return [b"5\r\nfirst\r\n0\r\n\r\n"
                    b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled"]
        start_response("200 OK", [("Content-Type", "text/plain"), (name, "x")])
        return [b"sent with " + name.encode()]

    if path == "/bad-status":
        start_response("OK", [])
        return [b"x"]

    if path == "/str-body":
        start_response("200 OK", [])
        return ["not bytes"]

    if path == "/long":
        start_response("200 OK", [("Content-Length", "5")])
        return [b"12345", b"67890"]

    if path == "/short":
        start_response("200 OK", [("Content-Length", "10")])
        return [b"12345"]

    if path in ("/stream", "/burst"):
        # Blocks, then a wait for the test's signal, then one more block.
        if path == "/stream":
            flag, blocks = os.path.join(marker_dir, "flag"), [b"first;"]
        else:
            # Small blocks with a few large ones among them (joined and relayed whole).
            blocks = [b"%04d;" % i * (5000 if i % 125 == 60 else 1) for i in range(500)]
            flag = os.path.join(marker_dir, "burst-flag")
        def gen():
            yield from blocks
            deadline = time.time() + 10
            while not os.path.exists(flag) and time.time() < deadline:
                time.sleep(0.02)
            yield b"after-signal" if os.path.exists(flag) else b"timeout"
        start_response("200 OK", [("Content-Type", "text/plain")])
        return gen()

    if path == "/close-raises-after-body":
        class Finished:
            def __iter__(self):
                yield b"whole "
                yield b"body"
            def close(self):
                raise RuntimeError("a request_finished handler failed")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Finished()

    if path in ("/close", "/close-raising"):
        class Body:
            def __iter__(self):
                yield b"a"
                if path == "/close-raising":
                    raise RuntimeError("boom in iteration")
                yield b"b"
            def close(self):
                open(os.path.join(marker_dir, path.strip("/")), "w").write("closed")
        start_response("200 OK", [])
        return Body()

    if path in ("/endless", "/endless-small"):
        small = path == "/endless-small"
        class Endless:
            def __iter__(self):
                while True:
                    if small:
                        yield b"x" * 100
                    else:
                        yield b"x" * 65536
                        time.sleep(0.01)
            def close(self):
                open(os.path.join(marker_dir, path.strip("/") + "-closed"), "w").write("closed")
        start_response("200 OK", [])
        return Endless()

    if path == "/head":
        body = environ["REQUEST_METHOD"].encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-Method", environ["REQUEST_METHOD"])])
        return [body]

    if path == "/file":
        f = open(os.path.join(marker_dir, "payload.bin"), "rb")
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](f, 65536)

    if path == "/file-offset":
        f = open(os.path.join(marker_dir, "payload.bin"), "rb")
        f.seek(1000)
        start_response("200 OK", [("Content-Length", "24")])
        return environ["wsgi.file_wrapper"](f)

    if path == "/file-bytesio":
        start_response("200 OK", [])
        return environ["wsgi.file_wrapper"](io.BytesIO(b"in-memory file"), 4)

    start_response("404 Not Found", [])
    return [b"no route"]
"##;

fn start(mode: Mode, extra: &str) -> Apache {
    let conf = format!(
        "LoadModule env_module {}/mod_env.so\nSetEnv MARKER_DIR {{root}}/markers\nWSGIScriptAlias /r {{root}}/app/app.wsgi\n{}{extra}",
        common::apache_modules_dir().display(),
        mode.config()
    );
    let apache = Apache::start(
        Mpm::Event,
        &conf,
        &[("app/app.wsgi", APP), ("markers/.keep", "")],
    );
    let payload: Vec<u8> = (0..1024 * 1024u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(apache.scratch.dir.join("markers/payload.bin"), payload).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        apache.scratch.dir.join("markers/payload.bin"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    apache
}

fn start_response_exc_info_and_write(mode: Mode) {
    let mut apache = start(mode, "");
    let r = apache.get("/r/exc-info");
    assert_eq!(
        (r.status, r.text().as_str()),
        (503, "replaced"),
        "exc_info before the body replaces the status"
    );
    let r = apache.get("/r/write");
    assert_eq!(r.text(), "from write, from iterable");
    // PEP 3333: headers and status are latin-1 text: each character goes out as one
    // byte (the harness decodes the head as ISO-8859-1).
    let r = apache.get("/r/latin1");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("x-name"),
        Some("caf\u{e9}"),
        "one byte E9, not UTF-8's C3 A9"
    );
    assert_eq!(
        r.header("x-utf8-idiom"),
        Some("\u{c3}\u{a4}"),
        "the UTF-8 bytes, once"
    );
    for place in ["value", "status"] {
        let r = apache.get(&format!("/r/not-latin1?{place}"));
        assert_eq!(r.status, 500, "a character above U+00FF in the {place}");
    }
    // A value: Python's own UnicodeEncodeError, as mod_wsgi raises it; the status: ours.
    apache.wait_for_log("UnicodeEncodeError: 'latin-1' codec can't encode character");
    apache.wait_for_log("outside ISO-8859-1");
    apache.allow_log("ValueError");
    apache.allow_log("UnicodeEncodeError");
    // Called twice before any output: the second call wins (C mod_wsgi 4.9 and 6.1).
    let r = apache.get("/r/twice");
    assert_eq!((r.status, r.text().as_str()), (201, "second wins"));
    assert_eq!(r.header("x-second"), Some("2"));
    assert_eq!(r.header("x-first"), None);
    // exc_info that is not sys.exc_info()'s triple, a header of three items and one that
    // is not a tuple are refused with mod_wsgi 6's exception types.
    assert_eq!(
        apache.get("/r/malformed-arguments").text(),
        "RuntimeError ValueError TypeError"
    );
    // ... but not once output has started.
    assert_eq!(
        apache.get("/r/twice-after-output").text(),
        "out;start_response() called more than once without exc_info"
    );
    // exc_info after the headers went out re-raises: the response must look incomplete.
    let r = apache.get("/r/exc-info-after-send");
    assert_eq!(r.status, 200);
    assert!(
        !r.complete,
        "a response that failed mid-stream must not end cleanly: {:?}",
        r.text()
    );
    assert!(!r.text().contains("never"));
    apache.wait_for_log("too late");
    apache.allow_log("WSGI1020");
    apache.allow_log("Traceback");
    apache.allow_log("  File ");
    apache.allow_log("    ");
    apache.allow_log("KeyError");
    apache.allow_log("^^^");
    apache.stop();
}

fn invalid_status_and_headers_are_500(mode: Mode) {
    let mut apache = start(mode, "");
    for (path, needle) in [
        // (Apache's log doubles the backslashes of the literal: b'a\\r\\nSet-Cookie...)
        (
            "/r/bad-header",
            "carriage return/line feed character in header value: b'a",
        ),
        (
            "/r/bad-header-name",
            "space character in header name: b'Bad Name'",
        ),
        (
            "/r/bad-status",
            "status code must be a 3 digit integer: b'OK'",
        ),
        ("/r/str-body", "byte string values expected"),
    ] {
        let r = apache.get(path);
        assert_eq!(r.status, 500, "{path}");
        assert!(r.header("Set-Cookie").is_none());
        apache.wait_for_log(needle);
    }
    assert_eq!(
        apache.get("/r/write").status,
        200,
        "the child keeps serving"
    );
    for allowed in ["WSGI1020", "Traceback", "  File ", "    ", "Error:", "^^^"] {
        apache.allow_log(allowed);
    }
    apache.stop();
}

/// PEP 3333 forbids applications to set hop-by-hop headers; each is refused (500, logged
/// with its name; Apache closes the connection after a 500, so nothing the application
/// wrote can follow on it), and the server goes on serving normal responses.
fn hop_by_hop_headers_are_refused(mode: Mode) {
    let mut apache = start(mode, "");
    let names = [
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "TE",
        "Trailer",
        "Trailers",
        "Transfer-Encoding",
        "Upgrade",
        "transfer-encoding",
        "CONNECTION",
    ];
    for name in names {
        let r = apache.get(&format!("/r/hop-by-hop?{name}"));
        assert_eq!(
            r.status,
            500,
            "an application setting {name} must get a 500; got {} {:?} {:?}",
            r.status,
            r.headers,
            r.text()
        );
        assert!(
            !r.text().contains("first") && !r.text().contains("sent with"),
            "{name}: the application's body went out: {:?}",
            r.text()
        );
        apache.wait_for_log(&format!(
            "WSGI1026: start_response() header \"{name}\" refused: applications must not set hop-by-hop headers (PEP 3333)"
        ));
        let next = apache.get("/r/write");
        assert_eq!(
            (next.status, next.text().as_str()),
            (200, "from write, from iterable"),
            "after refusing {name}, a normal response"
        );
    }
    for allowed in [
        "WSGI1026",
        "WSGI1020",
        "Traceback",
        "  File ",
        "    ",
        "Error:",
        "^^^",
    ] {
        apache.allow_log(allowed);
    }
    apache.stop();
}

fn content_length_truncates_and_short_bodies_abort(mode: Mode) {
    let mut apache = start(mode, "");
    let r = apache.get("/r/long");
    assert_eq!(
        r.text(),
        "12345",
        "output is cut at the declared Content-Length"
    );
    assert!(r.complete);
    let r = apache.get("/r/short");
    assert!(
        !r.complete,
        "a body shorter than Content-Length must not look complete"
    );
    apache.wait_for_log("WSGI1025");
    apache.allow_log("WSGI1025");
    apache.stop();
}

/// A GET of `path` whose 200 head has been read; the body is left to the caller.
fn open_stream(apache: &Apache, path: &str) -> (Connection, Vec<(String, String)>) {
    let mut conn = Connection::open(apache.port);
    conn.send_request("GET", path, &[], b"");
    let (status, headers) = conn.read_head();
    assert_eq!(status, 200, "{path}");
    (conn, headers)
}

fn generators_stream_before_the_app_finishes(mode: Mode) {
    let mut apache = start(mode, "");
    let (mut conn, headers) = open_stream(&apache, "/r/stream");
    assert!(
        headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v == "chunked")
    );
    // The app waits for this flag after its first block: if the first block were held
    // back until the app finished, this read would only return after a 10 s timeout.
    let first = conn.read_chunk().expect("first chunk");
    assert_eq!(first, b"first;");
    std::fs::write(apache.scratch.dir.join("markers/flag"), "go").unwrap();
    let second = conn.read_chunk().expect("second chunk");
    assert_eq!(second, b"after-signal");
    assert_eq!(
        conn.read_chunk(),
        Some(vec![]),
        "clean end of the chunked body"
    );
    apache.stop();
}

/// Blocks yielded back to back may leave together, but none may wait for the next one:
/// all 500 must reach the client while the app is still waiting for the signal.
fn a_burst_of_small_blocks_arrives_before_the_app_pauses(mode: Mode) {
    let mut apache = start(mode, "");
    let (mut conn, _) = open_stream(&apache, "/r/burst");
    let expected: String = (0..500)
        .map(|i| format!("{i:04};").repeat(if i % 125 == 60 { 5000 } else { 1 }))
        .collect();
    let mut received = Vec::new();
    while received.len() < expected.len() {
        let chunk = conn.read_chunk().expect("a chunk of the burst");
        assert!(!chunk.is_empty(), "the body ended early");
        received.extend_from_slice(&chunk);
    }
    assert_eq!(String::from_utf8_lossy(&received), expected);
    std::fs::write(apache.scratch.dir.join("markers/burst-flag"), "go").unwrap();
    assert_eq!(conn.read_chunk(), Some(b"after-signal".to_vec()));
    assert_eq!(conn.read_chunk(), Some(vec![]), "clean end");
    apache.stop();
}

fn close_is_always_called(mode: Mode) {
    let mut apache = start(mode, "");
    assert_eq!(apache.get("/r/close").text(), "ab");
    let r = apache.get("/r/close-raising");
    assert!(!r.complete);
    // close() raising after the whole body (Django's request_finished handlers): logged,
    // and the chunked response still ends properly on a connection that stays open.
    let mut conn = Connection::open(apache.port);
    for _ in 0..2 {
        conn.send_request("GET", "/r/close-raises-after-body", &[], b"");
        let r = conn.read_response("GET");
        assert_eq!((r.status, r.text().as_str()), (200, "whole body"));
        assert!(r.complete, "the final chunk was sent");
    }
    apache.wait_for_log("a request_finished handler failed");
    let markers = apache.scratch.dir.join("markers");
    common::wait_for_file(&markers.join("close"), "close() after a complete response");
    common::wait_for_file(
        &markers.join("close-raising"),
        "close() after the iterable raised",
    );
    apache.wait_for_log("boom in iteration");
    for allowed in [
        "WSGI1020",
        "Traceback",
        "  File ",
        "    ",
        "RuntimeError",
        "^^^",
    ] {
        apache.allow_log(allowed);
    }
    apache.stop();
}

fn head_requests_and_map_head_to_get(mode: Mode) {
    let mut apache = start(
        mode,
        "<Location /r/head>\n  WSGIMapHEADToGET Off\n</Location>\n\
                            WSGIScriptAlias /mapped {root}/app/app.wsgi\n<Location /mapped>\n  WSGIMapHEADToGET On\n</Location>\n",
    );
    let r = apache.request("HEAD", "/r/head", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("X-Method"), Some("HEAD"));
    assert!(r.body.is_empty());
    let r = apache.request("HEAD", "/mapped/head", &[], b"");
    assert_eq!(
        r.header("X-Method"),
        Some("GET"),
        "WSGIMapHEADToGET On shows HEAD as GET"
    );
    assert!(r.body.is_empty(), "Apache still sends no body for HEAD");
    apache.stop();
}

fn file_wrapper_serves_files(mode: Mode) {
    let mut apache = start(
        mode,
        "<Location /r/file>\n  WSGIEnableSendfile On\n</Location>\n",
    );
    let expect: Vec<u8> = (0..1024 * 1024u32).map(|i| (i * 7 % 256) as u8).collect();
    let r = apache.get("/r/file");
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), expect.len());
    assert!(r.body == expect, "file body differs");
    assert_eq!(
        r.header("Content-Length"),
        Some("1048576"),
        "file length becomes Content-Length: {:?}",
        r.headers
    );
    let r = apache.get("/r/file-offset");
    assert_eq!(
        r.body,
        expect[1000..1024].to_vec(),
        "starts at the file position, stops at Content-Length"
    );
    let r = apache.get("/r/file-bytesio");
    assert_eq!(r.text(), "in-memory file", "non-file objects are iterated");
    apache.stop();
}

fn client_disconnect_stops_the_app_and_calls_close(mode: Mode) {
    let mut apache = start(mode, "");
    // Large blocks are written by the app's thread; small ones fast enough to be
    // queued are sent by the daemon worker's outbox: both must notice the client left.
    for path in ["/r/endless", "/r/endless-small"] {
        {
            let (mut conn, _) = open_stream(&apache, path);
            assert!(conn.read_chunk().is_some_and(|c| !c.is_empty()));
        } // the client goes away mid-stream
        let marker = apache
            .scratch
            .dir
            .join(format!("markers{}-closed", path.trim_start_matches("/r")));
        common::wait_for_file(&marker, "close() once the client is gone");
    }
    assert_eq!(
        apache.get("/r/write").status,
        200,
        "the server keeps serving"
    );
    apache.stop();
}

in_both_modes!(
    start_response_exc_info_and_write,
    invalid_status_and_headers_are_500,
    hop_by_hop_headers_are_refused,
    content_length_truncates_and_short_bodies_abort,
    generators_stream_before_the_app_finishes,
    a_burst_of_small_blocks_arrives_before_the_app_pauses,
    close_is_always_called,
    head_requests_and_map_head_to_get,
    file_wrapper_serves_files,
    client_disconnect_stops_the_app_and_calls_close,
);
