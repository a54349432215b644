//! The Apache child <-> daemon proxy: both directions stream at once, and daemon-mode
//! configuration mistakes are configtest errors that name the directive.

mod common;
use common::{Apache, Mpm, configtest};
use std::io::{Read, Write};
use std::net::TcpStream;

const DUPLEX_APP: &str = r#"
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    def body():
        for _ in range(64):
            yield b"x" * 65536
        n = 0
        while True:
            data = environ["wsgi.input"].read(65536)
            if not data:
                break
            n += len(data)
        yield ("\nread=%d" % n).encode()
    return body()
"#;

#[test]
fn an_app_that_writes_before_it_reads_does_not_deadlock() {
    let body = "WSGIDaemonProcess duplex threads=2 socket-timeout=10\n\
        WSGIScriptAlias / {root}/app/app.wsgi process-group=duplex\n";
    let mut apache = Apache::start(Mpm::Event, body, &[("app/app.wsgi", DUPLEX_APP)]);
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
        ("WSGIDaemonProcess a threads=0", "threads"),
        (
            "WSGIDaemonProcess a\nWSGIDaemonProcess a",
            "duplicates previous WSGI daemon definition",
        ),
        (
            "WSGIDaemonProcess a user=no-such-user-here",
            "no such user 'no-such-user-here'",
        ),
        ("WSGIDaemonProcess a locale=xx_NOPE.UTF-8", "unknown locale"),
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
