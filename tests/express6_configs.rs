//! Drop-in for mod_wsgi 6: configurations mod_wsgi-express 6.1.1 itself writes
//! (`setup-server`, with many of its options) start and serve with only the
//! `LoadModule wsgi_module` line pointed at this module, in daemon and embedded mode.
//! mod_wsgi 6.1.1 comes from PyPI (`scripts/install-deps.sh --test` puts it in
//! /opt/mod_wsgi6-venv, or MOD_WSGI6_VENV).

mod common;
use common::{Scratch, free_port, get};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn mod_wsgi_express() -> PathBuf {
    let venv = std::env::var("MOD_WSGI6_VENV").unwrap_or_else(|_| "/opt/mod_wsgi6-venv".into());
    let exe = PathBuf::from(venv).join("bin/mod_wsgi-express");
    assert!(
        exe.exists(),
        "{} is missing: run scripts/install-deps.sh --test (it installs mod_wsgi 6.1.1 from PyPI)",
        exe.display()
    );
    exe
}

const APP: &str = r#"
import os
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("%s|%s" % (environ.get("mod_wsgi.process_group"), environ["wsgi.multiprocess"])).encode()]
"#;

struct Server {
    root: PathBuf,
}

impl Server {
    fn apachectl(&self, verb: &str) -> std::process::Output {
        Command::new(self.root.join("apachectl"))
            .arg(verb)
            .stdin(Stdio::null())
            // Apache signals its process group on shutdown; keep the test out of it.
            .process_group(0)
            .output()
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.apachectl("stop");
        let pid_file = self.root.join("httpd.pid");
        let deadline = Instant::now() + Duration::from_secs(20);
        while pid_file.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Writes a server root with mod_wsgi-express 6.1.1, points its LoadModule line at this
/// module and starts Apache on it.
fn setup_and_start(scratch: &Scratch, port: u16, options: &[&str]) -> Server {
    let script = scratch.write("app/app.wsgi", APP);
    let root = scratch.dir.join("root");
    let port = port.to_string();
    let mut args = vec![
        "setup-server",
        script.to_str().unwrap(),
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--server-root",
        root.to_str().unwrap(),
        "--user",
        "www-data",
        "--group",
        "www-data",
    ];
    args.extend_from_slice(options);
    let out = Command::new(mod_wsgi_express())
        .args(&args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "setup-server: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let conf = root.join("httpd.conf");
    let text = std::fs::read_to_string(&conf).unwrap();
    let ours = common::module_path();
    let mut replaced = 0;
    let text: String = text
        .lines()
        .map(|line| {
            if line.starts_with("LoadModule wsgi_module ") {
                replaced += 1;
                format!("LoadModule wsgi_module '{}'\n", ours.display())
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    assert_eq!(replaced, 1, "one LoadModule wsgi_module line in:\n{text}");
    std::fs::write(&conf, text).unwrap();
    // Started as mod_wsgi-express's own apachectl starts it (its envvars name Apache's
    // module directory and the user).
    let server = Server { root };
    let out = server.apachectl("start");
    assert!(
        out.status.success(),
        "apachectl start: {}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        error_log(&server)
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).is_err() {
        assert!(
            Instant::now() < deadline,
            "not listening:\n{}",
            error_log(&server)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

fn error_log(server: &Server) -> String {
    std::fs::read_to_string(server.root.join("error_log")).unwrap_or_default()
}

fn serves(port: u16, server: &Server, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = get(port, "/");
        if r.status == 200 {
            assert_eq!(r.text(), expected, "{}", error_log(server));
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{}: {}\n{}",
            r.status,
            r.text(),
            error_log(server)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_mod_wsgi_express_6_daemon_configuration_serves_with_only_loadmodule_changed() {
    let scratch = Scratch::new("express6-daemon");
    let port = free_port();
    let server = setup_and_start(
        &scratch,
        port,
        &[
            "--processes",
            "2",
            "--threads",
            "4",
            "--maximum-requests",
            "1000",
            "--request-timeout",
            "60",
            "--graceful-timeout",
            "10",
            "--connect-timeout",
            "10",
            "--socket-timeout",
            "30",
            "--queue-timeout",
            "30",
            "--inactivity-timeout",
            "600",
            "--header-buffer-size",
            "0",
            "--response-buffer-size",
            "0",
            "--response-socket-timeout",
            "0",
            "--server-metrics",
            "--switch-interval",
            "0.01",
            "--python-warnings",
            "ignore::DeprecationWarning",
            "--chunked-request",
            "--trust-proxy-header",
            "X-Forwarded-For",
            "--trust-proxy",
            "127.0.0.1",
            "--map-head-to-get",
            "Auto",
            "--log-level",
            "info",
        ],
    );
    serves(port, &server, &format!("127.0.0.1:{port}|True"));
}

#[test]
fn a_mod_wsgi_express_6_embedded_configuration_serves_with_only_loadmodule_changed() {
    let scratch = Scratch::new("express6-embedded");
    let port = free_port();
    let server = setup_and_start(
        &scratch,
        port,
        &[
            "--embedded-mode",
            "--python-warnings",
            "default",
            "--enable-sendfile",
        ],
    );
    serves(port, &server, "|True");
}
