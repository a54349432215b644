//! The Apache child <-> daemon proxy: both directions stream at once, a client that
//! stalls mid-body gets a 408 after Apache's Timeout (sooner under mod_reqtimeout), and
//! daemon-mode configuration mistakes are configtest errors that name the directive.

mod common;
use common::{Apache, Mpm, configtest};
use std::io::{Read, Write};
use std::net::TcpStream;

/// `/count` reads the whole body, then answers how much it read; any other path first
/// sends 4 MiB, then reads the body.
const APP: &str = r#"
def count(environ):
    n = 0
    while True:
        data = environ["wsgi.input"].read(65536)
        if not data:
            return n
        n += len(data)

def application(environ, start_response):
    if environ["PATH_INFO"] == "/count":
        n = count(environ)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"read=%d" % n]
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    def body():
        for _ in range(64):
            yield b"x" * 65536
        yield ("\nread=%d" % count(environ)).encode()
    return body()
"#;

/// Starts Apache with `conf`, sends 70,000 of a declared 100,000-byte body to `/count`
/// and stalls: the answer must be `status`, well before the client's own 25 s read
/// timeout (within `secs`, the bound being `bound`), with `logged` in the error log; the
/// group then takes a whole upload. The app's read fails when the relay gives up: its
/// traceback is allowed in the log.
fn a_stalled_body_is_answered(conf: &str, status: u16, secs: u64, bound: &str, logged: &str) {
    let mut apache = Apache::start(Mpm::Event, conf, &[("app/app.wsgi", APP)]);
    for line in [
        "WSGI1020",
        "Traceback",
        "  File ",
        "^^^",
        "    ",
        "request body",
        "Request body read timeout",
    ] {
        apache.allow_log(line);
    }
    let mut stream = TcpStream::connect(("127.0.0.1", apache.port)).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(25)))
        .unwrap();
    let started = std::time::Instant::now();
    stream
        .write_all(b"POST /count HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n")
        .unwrap();
    stream.write_all(&[b'x'; 70000]).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let waited = started.elapsed();
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with(&format!("HTTP/1.1 {status}")), "{text}");
    assert!(
        waited < std::time::Duration::from_secs(secs),
        "answered after {waited:?}, not after {bound}"
    );
    apache.wait_for_log(logged);
    let r = apache.request("POST", "/count", &[], &[b'y'; 100000]);
    assert_eq!(r.text(), "read=100000", "the group keeps serving");
    apache.stop();
}

#[test]
fn a_client_that_stalls_mid_body_gets_408_after_the_server_timeout() {
    // Apache's Timeout bounds the wait for the client's body, not the group's (longer)
    // socket-timeout, as it does for Apache's own reads.
    let conf = "Timeout 2\n\
        WSGIDaemonProcess stall threads=2 socket-timeout=60\n\
        WSGIScriptAlias / {root}/app/app.wsgi process-group=stall\n";
    let logged = "waiting for more of the request body from the client";
    a_stalled_body_is_answered(conf, 408, 20, "Timeout", logged);
}

#[test]
fn mod_reqtimeout_still_bounds_a_stalled_body() {
    // The relay waits in poll, but mod_reqtimeout's body deadline (2 s here) is checked
    // on every read, and the relay tries one at least every second. The app's read
    // raises, as in embedded mode: a 500.
    let mods = common::apache_modules_dir().display().to_string();
    let conf = format!(
        "LoadModule reqtimeout_module {mods}/mod_reqtimeout.so\n\
         RequestReadTimeout header=20 body=2\n\
         Timeout 30\n\
         WSGIDaemonProcess stall threads=2 socket-timeout=60\n\
         WSGIScriptAlias / {{root}}/app/app.wsgi process-group=stall\n"
    );
    let logged = "request body read failed";
    a_stalled_body_is_answered(&conf, 500, 15, "mod_reqtimeout's 2 s", logged);
}

#[test]
fn an_app_that_writes_before_it_reads_does_not_deadlock() {
    let body = "WSGIDaemonProcess duplex threads=2 socket-timeout=10\n\
        WSGIScriptAlias / {root}/app/app.wsgi process-group=duplex\n";
    let mut apache = Apache::start(Mpm::Event, body, &[("app/app.wsgi", APP)]);
    let upload = 10 * 1024 * 1024;
    let mut stream = TcpStream::connect(("127.0.0.1", apache.port)).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "POST /up HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {upload}\r\nConnection: close\r\n\r\n"
    );
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        writer.write_all(head.as_bytes()).unwrap();
        let chunk = vec![b'u'; 65536];
        for _ in 0..upload / chunk.len() {
            writer.write_all(&chunk).unwrap();
        }
    });
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    sender.join().unwrap();
    let text = String::from_utf8_lossy(&response);
    assert!(
        text.starts_with("HTTP/1.1 200"),
        "{}",
        &text[..text.len().min(200)]
    );
    assert!(
        text.contains(&format!("\nread={upload}")),
        "tail: {:?}",
        &text[text.len().saturating_sub(300)..]
    );
    apache.stop();
}

#[test]
fn daemon_mistakes_fail_configtest_naming_the_directive() {
    let cases = [
        ("WSGIDaemonProcess a bogus=1", "unknown option 'bogus'"),
        ("WSGIDaemonProcess a threads=2000", "threads"),
        (
            "WSGIDaemonProcess a\nWSGIDaemonProcess a",
            "duplicates previous WSGI daemon definition",
        ),
        (
            "WSGIDaemonProcess a user=no-such-user-here",
            "no such user 'no-such-user-here'",
        ),
        (
            "WSGIScriptAlias / {root}/app/app.wsgi process-group=missing",
            "process-group 'missing' is not defined",
        ),
        (
            "WSGISocketPrefix /tmp/a-very-long-directory-name-that-goes-on-and-on-and-on-and-on-and-on-and-on-and-on/wsgi\nWSGIDaemonProcess a",
            "socket path",
        ),
    ];
    for (conf, expected) in cases {
        let (ok, output) = configtest(conf, &[("app/app.wsgi", "")]);
        assert!(!ok, "configtest accepted:\n{conf}");
        assert!(
            output.contains(expected),
            "configtest of {conf:?} said:\n{output}"
        );
    }
    let (ok, output) = configtest(
        "WSGIDaemonProcess good processes=2 threads=3 display-name=%{GROUP} maximum-requests=10\nWSGIProcessGroup good",
        &[],
    );
    assert!(ok, "{output}");
}

/// mod_wsgi's option syntax: a value may be quoted on its own (`name='a b'`), as
/// mod_wsgi-express writes them; a lang=/locale= this system lacks is a warning (mod_wsgi
/// starts, and mod_wsgi-express always writes en_US.UTF-8).
#[test]
fn quoted_option_values_and_missing_locales_start_as_in_mod_wsgi() {
    let app = r#"
import os, mod_wsgi
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    title = open("/proc/self/cmdline", "rb").read().split(b"\0")[0].decode()
    return [("%s|%s|%s" % (title, mod_wsgi.process_group, os.environ.get("LANG"))).encode()]
"#;
    let conf = "WSGIDaemonProcess 'quoted:8000' processes=1 threads=2 \
                display-name='(wsgi:site a)' lang='xx_NOPE.UTF-8' locale=\"xx_NOPE.UTF-8\"\n\
                WSGIScriptAlias / {root}/app/app.wsgi process-group='quoted:8000'\n";
    let mut apache = Apache::start(Mpm::Event, conf, &[("app/app.wsgi", app)]);
    let answer = apache.get_ok("/");
    assert!(
        answer.starts_with("(wsgi:site a)") && answer.ends_with("|quoted:8000|xx_NOPE.UTF-8"),
        "{answer}"
    );
    let log = apache.wait_for_log("WSGI0079");
    assert!(
        log.contains("lang='xx_NOPE.UTF-8' is not a locale"),
        "{log}"
    );
    apache.stop();
}

const STATUS_APP: &str = r#"
import os, time
def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/slow":
        time.sleep(3)
    if path == "/mark":
        open(os.path.join(os.path.dirname(__file__), "marker"), "a").write("ran\n")
    status = "404 Not Found" if path == "/missing" else "200 OK"
    start_response(status, [("Content-Type", "text/plain")])
    return [b"from the application"]
"#;

#[test]
fn error_override_serves_apaches_error_document() {
    let body = "WSGIDaemonProcess err threads=2\n\
        WSGIScriptAlias /over {root}/app/app.wsgi process-group=err\n\
        WSGIScriptAlias /plain {root}/app/app.wsgi process-group=err\n\
        <Location /over>\n  WSGIErrorOverride On\n</Location>\n\
        ErrorDocument 404 \"apache's own not-found page\"\n";
    let mut apache = Apache::start(Mpm::Event, body, &[("app/app.wsgi", STATUS_APP)]);
    let overridden = apache.get("/over/missing");
    assert_eq!(overridden.status, 404);
    assert_eq!(overridden.text(), "apache's own not-found page");
    let passed = apache.get("/plain/missing");
    assert_eq!(passed.status, 404);
    assert_eq!(passed.text(), "from the application");
    let ok = apache.get("/over/fine");
    assert_eq!(ok.status, 200);
    assert_eq!(ok.text(), "from the application");
    apache.stop();
}

/// `/forge` writes, on its own connection to the Apache child, a response head with
/// `Transfer-Encoding: chunked` and hand-made chunks, as an application that bypasses
/// start_response could; any other path answers normally.
const FORGING_APP: &str = r#"
import os, socket, stat, struct

def frame(kind, payload):
    return bytes([kind]) + struct.pack(">I", len(payload)) + payload

def text(s):
    b = s.encode()
    return struct.pack(">I", len(b)) + b

def connection_to_child():
    # The one accepted unix stream socket whose local name is a listener's (threads=1:
    # no other connection is open).
    listeners, accepted = [], []
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            s = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        with s:
            if s.family != socket.AF_UNIX or s.type != socket.SOCK_STREAM:
                continue
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                listeners.append(s.getsockname())
            else:
                accepted.append((fd, s.getsockname()))
    found = [fd for fd, local in accepted if local in listeners]
    assert len(found) == 1, (listeners, accepted)
    return found[0]

def application(environ, start_response):
    if environ["PATH_INFO"] == "/forge":
        headers = [("Content-Type", "text/plain"), ("Transfer-Encoding", "chunked")]
        head = struct.pack(">H", 200) + text("200 OK") + struct.pack(">I", len(headers))
        head += b"".join(text(n) + text(v) for n, v in headers)
        chunks = b"6\r\nforged\r\n0\r\n\r\n"
        os.write(connection_to_child(), frame(0x11, head) + frame(0x12, chunks) + frame(0x13, b""))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"from the application"]
"#;

#[test]
fn the_child_refuses_a_forged_head_with_a_hop_by_hop_header() {
    let body = "WSGIDaemonProcess forge processes=1 threads=1\n\
        WSGIScriptAlias / {root}/app/app.wsgi process-group=forge\n";
    let mut apache = Apache::start(Mpm::Event, body, &[("app/app.wsgi", FORGING_APP)]);
    let forged = apache.get("/forge");
    assert_eq!(
        forged.status,
        502,
        "a daemon's head carrying Transfer-Encoding must not reach the client: {:?} {:?}\n{}",
        forged.headers,
        forged.text(),
        apache.error_log()
    );
    apache.wait_for_log(
        "WSGI1040: daemon process group 'forge' sent a response head it must not send: header \"Transfer-Encoding\" refused",
    );
    assert_eq!(apache.get_ok("/fine"), "from the application");
    apache.allow_log("WSGI1040");
    apache.stop();
}

#[test]
fn queue_timeout_answers_503_without_running_the_app() {
    let body = "WSGIDaemonProcess q processes=1 threads=1 queue-timeout=1\n\
        WSGIScriptAlias / {root}/app/app.wsgi process-group=q\n";
    let mut apache = Apache::start(Mpm::Event, body, &[("app/app.wsgi", STATUS_APP)]);
    apache.allow_log("queue-timeout");
    let port = apache.port;
    let slow = std::thread::spawn(move || common::http::get(port, "/slow"));
    std::thread::sleep(std::time::Duration::from_millis(500));
    let queued = apache.get("/mark");
    assert_eq!(queued.status, 503, "{}", apache.error_log());
    assert_eq!(queued.header("Retry-After"), Some("5"));
    assert_eq!(slow.join().unwrap().status, 200);
    assert!(
        !apache.scratch.dir.join("app/marker").exists(),
        "the queued request ran the application after its queue-timeout"
    );
    let log = apache.wait_for_log("queue-timeout");
    assert!(log.contains("WSGI1040"), "{log}");
    let after = apache.get("/mark");
    assert_eq!(after.status, 200, "{}", apache.error_log());
    apache.stop();
}

#[test]
fn a_missing_socket_is_a_503_that_says_why() {
    let body = "WSGISocketPrefix {root}/sock\n\
        WSGIDaemonProcess gone threads=1 connect-timeout=1\n\
        WSGIScriptAlias / {root}/app/app.wsgi process-group=gone\n";
    let mut apache = Apache::start(Mpm::Event, body, &[("app/app.wsgi", STATUS_APP)]);
    assert_eq!(apache.get("/").status, 200);
    let sockets: Vec<_> = std::fs::read_dir(&apache.scratch.dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".sock"))
        .collect();
    assert_eq!(sockets.len(), 1, "{sockets:?}");
    std::fs::remove_file(&sockets[0]).unwrap();
    apache.allow_log("the socket does not exist");
    let started = std::time::Instant::now();
    let r = apache.get("/");
    assert_eq!(r.status, 503);
    assert_eq!(r.header("Retry-After"), Some("5"), "{:?}", r.headers);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "connect-timeout=1 took {:?}",
        started.elapsed()
    );
    let log = apache.wait_for_log("the socket does not exist");
    assert!(log.contains("'gone'"), "{log}");
    apache.stop();
}

const FILE_APP: &str = r#"
import os
def application(environ, start_response):
    if environ["PATH_INFO"] == "/pid":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(os.getpid()).encode()]
    f = open(os.path.join(os.path.dirname(__file__), "payload.bin"), "rb")
    f.seek(int(environ.get("QUERY_STRING") or 0))
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](f)
"#;

/// A daemon's wsgi.file_wrapper response is sent by the Apache child from the file
/// itself (its descriptor is passed over the socket), not copied through the daemon.
#[test]
fn file_wrapper_responses_are_not_copied_through_the_daemon() {
    let body = "WSGIDaemonProcess files processes=1 threads=2\n\
        WSGIScriptAlias / {root}/app/app.wsgi process-group=files application-group=%{GLOBAL}\n\
        <Directory {root}/app>\n  WSGIEnableSendfile On\n</Directory>\n";
    let payload: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let mut apache = Apache::start(Mpm::Event, body, &[("app/app.wsgi", FILE_APP)]);
    std::fs::write(apache.scratch.dir.join("app/payload.bin"), &payload).unwrap();
    let pid = apache.get("/pid").text();
    // The daemon cannot read its own /proc entry after dropping privileges; the test can.
    let rchar = |_: &Apache| -> u64 {
        let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap();
        io.lines()
            .find_map(|l| l.strip_prefix("rchar: "))
            .unwrap()
            .parse()
            .unwrap()
    };
    let before = rchar(&apache);
    for _ in 0..4 {
        let r = apache.get("/file");
        assert_eq!(r.status, 200, "{}", apache.error_log());
        assert_eq!(r.header("Content-Length"), Some("8388608"));
        assert!(r.body == payload, "file body differs");
    }
    let r = apache.get("/file?5000000");
    assert!(r.body == payload[5_000_000..], "from the file position on");
    let read_by_daemon = rchar(&apache) - before;
    assert!(
        read_by_daemon < 1024 * 1024,
        "the daemon read {read_by_daemon} bytes to send 37 MB of file"
    );
    apache.stop();
}

const BLOCKS_APP: &str = r#"
def pattern(n, seed):
    return bytes((i * 7 + seed) % 251 for i in range(n))
BIG = pattern(3 * 1024 * 1024 + 17, 1)
TAIL = pattern(300001, 2)
def application(environ, start_response):
    small = [b"%06d|" % i for i in range(1000)]
    blocks = [BIG] + small + [TAIL]
    headers = [("Content-Type", "application/octet-stream")]
    if environ["QUERY_STRING"] == "length":
        headers.append(("Content-Length", str(sum(map(len, blocks)))))
    start_response("200 OK", headers)
    return blocks
"#;

fn pattern(n: usize, seed: usize) -> Vec<u8> {
    (0..n).map(|i| ((i * 7 + seed) % 251) as u8).collect()
}

/// Blocks far larger than a frame and a thousand tiny ones, with and without a
/// Content-Length, arrive byte for byte over kept-alive daemon connections (the Apache
/// child relays large frames in pieces as they arrive).
#[test]
fn large_and_small_blocks_arrive_intact() {
    let body = "WSGIDaemonProcess blocks processes=1 threads=4\n\
        WSGIScriptAlias / {root}/app/app.wsgi process-group=blocks application-group=%{GLOBAL}\n";
    let mut apache = Apache::start(Mpm::Event, body, &[("app/app.wsgi", BLOCKS_APP)]);
    let mut expected = pattern(3 * 1024 * 1024 + 17, 1);
    for i in 0..1000 {
        expected.extend_from_slice(format!("{i:06}|").as_bytes());
    }
    expected.extend_from_slice(&pattern(300001, 2));
    for round in 0..3 {
        for query in ["", "?length"] {
            let r = apache.get(&format!("/blocks{query}"));
            assert_eq!(r.status, 200, "{}", apache.error_log());
            assert_eq!(r.body.len(), expected.len(), "round {round} {query}");
            assert!(r.body == expected, "round {round} {query}: body differs");
        }
    }
    apache.stop();
}

/// Reports, for the daemon's side of its connections (the group's socket name, not
/// listening): the largest SO_SNDBUF, and on `/upload`, after a first read (so the child
/// was told to send the rest) and a pause, the most body bytes queued for reading.
const BUFFER_APP: &str = r#"
import fcntl, os, socket, struct, termios, time

def connections():
    for fd in os.listdir("/proc/self/fd"):
        try:
            s = socket.fromfd(int(fd), socket.AF_UNIX, socket.SOCK_STREAM)
        except OSError:
            continue
        with s:
            try:
                if s.family != socket.AF_UNIX or s.type != socket.SOCK_STREAM:
                    continue
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                    continue
                if not str(s.getsockname()).endswith(".sock"):
                    continue
                queued = struct.unpack("i", fcntl.ioctl(s.fileno(), termios.FIONREAD, b"\0" * 4))[0]
                yield s.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF), queued
            except OSError:
                continue

def application(environ, start_response):
    queued = 0
    if environ["PATH_INFO"] == "/upload":
        environ["wsgi.input"].read(65537)
        time.sleep(1)
        queued = max(q for _, q in connections())
        while environ["wsgi.input"].read(65536):
            pass
    sndbuf = max(b for b, _ in connections())
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"%d %d" % (sndbuf, queued)]
"#;

fn sysctl(name: &str) -> u64 {
    let path = format!("/proc/sys/net/core/{name}");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn buffer_size_options_size_the_daemon_connection() {
    let conf = "WSGIDaemonProcess plain threads=1\n\
        WSGIDaemonProcess system threads=1 send-buffer-size=0\n\
        WSGIDaemonProcess sized threads=1 send-buffer-size=300000 receive-buffer-size=1000000\n\
        WSGIScriptAlias /plain {root}/app/app.wsgi process-group=plain\n\
        WSGIScriptAlias /system {root}/app/app.wsgi process-group=system\n\
        WSGIScriptAlias /sized {root}/app/app.wsgi process-group=sized\n";
    let mut apache = Apache::start(Mpm::Event, conf, &[("app/app.wsgi", BUFFER_APP)]);
    let (default, max) = (sysctl("wmem_default"), sysctl("wmem_max"));
    // What the kernel makes of a requested SO_SNDBUF.
    let granted = |requested: u64| 2 * requested.min(max);
    let answer = |path: &str, body: &[u8]| -> (u64, u64) {
        let r = apache.request("POST", path, &[], body);
        let text = r.text();
        let mut numbers = text.split(' ').map(|n| n.parse::<u64>().expect(&text));
        (numbers.next().unwrap(), numbers.next().unwrap())
    };
    // Not given: ours is 1 MiB (mod_wsgi leaves the system's); 0 asks for the system's.
    assert_eq!(answer("/plain", b"").0, granted(1 << 20));
    assert_eq!(answer("/system", b"").0, default);
    assert_eq!(answer("/sized", b"").0, granted(300000));
    // receive-buffer-size sizes the child's side: how much of an upload can wait for
    // the daemon.
    let upload = vec![b'u'; 4 << 20];
    let (_, queued_plain) = answer("/plain/upload", &upload);
    let (_, queued_sized) = answer("/sized/upload", &upload);
    assert!(
        queued_plain <= default,
        "{queued_plain} queued with the system's {default}-byte buffer"
    );
    assert!(
        queued_sized > default && queued_sized <= granted(1000000),
        "{queued_sized} queued with receive-buffer-size=1000000 (granted {})",
        granted(1000000)
    );
    apache.stop();
}

/// Apache's request limits raised so a request carries 20 MiB of headers: the daemon
/// takes an environ as large as Apache lets through (its bound follows those limits)
/// instead of refusing it as a broken head.
#[test]
fn an_environ_as_large_as_apaches_limits_reaches_the_daemon() {
    let app = r#"
def application(environ, start_response):
    total = sum(len(v) for k, v in environ.items() if k.startswith("HTTP_X_BIG_"))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(total).encode()]
"#;
    let conf = "LimitRequestFieldSize 1100000\n\
                WSGIDaemonProcess big threads=2\n\
                WSGIScriptAlias / {root}/app/app.wsgi process-group=big\n";
    let mut apache = Apache::start(Mpm::Event, conf, &[("app/app.wsgi", app)]);
    let value = "v".repeat(1 << 20);
    let names: Vec<String> = (0..20).map(|i| format!("X-Big-{i}")).collect();
    let headers: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), value.as_str())).collect();
    let r = apache.request("GET", "/", &headers, b"");
    assert_eq!(r.status, 200, "{}", apache.error_log());
    assert_eq!(r.text(), (20usize << 20).to_string());
    apache.stop();
}

/// mod_wsgi 6's timing keys in daemon mode, as APM agents read them: the request's start,
/// when it was handed to the group, when a daemon started it, when the application ran.
#[test]
fn daemon_mode_reports_queue_and_daemon_start_as_mod_wsgi_6() {
    let app = r#"
def application(environ, start_response):
    keys = ("request_start", "queue_start", "daemon_start", "application_start")
    values = [environ["mod_wsgi." + k] for k in keys]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [" ".join(repr(v) for v in values).encode()]
"#;
    let conf = "WSGIDaemonProcess timing threads=2\n\
                WSGIScriptAlias / {root}/app/app.wsgi process-group=timing\n";
    let mut apache = Apache::start(Mpm::Event, conf, &[("app/app.wsgi", app)]);
    let text = apache.get_ok("/");
    let values: Vec<f64> = text.split(' ').map(|v| v.parse().unwrap()).collect();
    assert!(values[0] > 1.7e9, "{text}");
    for pair in values.windows(2) {
        assert!(pair[0] <= pair[1] + 1e-6, "not in order: {text}");
    }
    apache.stop();
}

#[test]
fn response_headers_larger_than_header_buffer_size_are_a_500() {
    let app = r#"
def application(environ, start_response):
    size = int(environ["QUERY_STRING"])
    if environ["PATH_INFO"] == "/many":
        headers = [("X-Part-%d" % i, "v" * size) for i in range(3)]
    else:
        headers = [("X-Big", "v" * size)]
    start_response("200 OK", headers + [("Content-Type", "text/plain")])
    return [b"sent"]
"#;
    let conf = "WSGIDaemonProcess small threads=2
WSGIDaemonProcess large threads=2 header-buffer-size=65536
WSGIScriptAlias /small {root}/app/app.wsgi process-group=small
WSGIScriptAlias /large {root}/app/app.wsgi process-group=large
";
    let mut apache = Apache::start(Mpm::Event, conf, &[("app/app.wsgi", app)]);
    apache.allow_log("WSGI1040");
    assert_eq!(
        apache.get_ok("/small?30000"),
        "sent",
        "within the default 32768"
    );
    let r = apache.get("/small?40000");
    assert_eq!(r.status, 500);
    assert!(r.header("x-big").is_none());
    apache.wait_for_log("response header X-Big is 40007 bytes, more than header-buffer-size=32768");
    assert_eq!(
        apache.get_ok("/large?40000"),
        "sent",
        "header-buffer-size=65536"
    );
    // The limit is per header line, as mod_wsgi's: headers may add up to more.
    assert_eq!(apache.get_ok("/small/many?20000"), "sent");
    assert_eq!(
        apache.get_ok("/small?10"),
        "sent",
        "the group keeps serving"
    );
}

#[test]
fn response_socket_timeout_bounds_a_client_that_stops_reading() {
    let app = r#"
import os
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    def body():
        try:
            for _ in range(2000):
                yield b"x" * 65536
        finally:
            open(environ["MARKER"], "w").write("closed")
    return body()
"#;
    let conf = "LoadModule env_module {mods}/mod_env.so
SetEnv MARKER {root}/app/closed
WSGIDaemonProcess slow threads=2 response-socket-timeout=1
WSGIScriptAlias / {root}/app/app.wsgi process-group=slow
"
    .replace(
        "{mods}",
        &common::apache_modules_dir().display().to_string(),
    );
    let mut apache = Apache::start(Mpm::Event, &conf, &[("app/app.wsgi", app)]);
    apache.allow_log("WSGI");
    apache.allow_log("AH0");
    let marker = apache.scratch.dir.join("app/closed");
    let mut stream = TcpStream::connect(("127.0.0.1", apache.port)).unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    // The client never reads: once the socket buffers are full, each write waits.
    let started = std::time::Instant::now();
    while !marker.exists() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(8),
            "the response was still being written after 8 s (Apache's Timeout is 20 s)"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    drop(stream);
    assert_eq!(apache.get("/").status, 200, "the group keeps serving");
}
