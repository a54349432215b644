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
    // mod_wsgi-express makes its working directory the daemon's home=: the scratch
    // directory, which www-data can enter wherever the checkout lives.
    let out = Command::new(mod_wsgi_express())
        .args(&args)
        .current_dir(&scratch.dir)
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
    serves_with(port, server, &[], expected);
}

/// As `serves`, sending `headers`.
fn serves_with(port: u16, server: &Server, headers: &[(&str, &str)], expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = common::http::request(port, "GET", "/", headers, b"");
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

const ALLOW: &str = r#"
def allow_access(environ, host):
    return True
"#;

const USERS: &str = r#"
def check_password(environ, user, password):
    return user == "ann" and password == "secret"
def groups_for_user(environ, user):
    return ["admins"] if user == "ann" else []
"#;

const SERVICE: &str = r#"
import os, time
with open(os.path.join(os.path.dirname(__file__), "service-ran"), "w") as f:
    f.write(str(os.getpid()))
"#;

const HANDLER: &str = r#"
def handle_request(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"handled " + environ["SCRIPT_NAME"].encode()]
"#;

/// mod_wsgi-express 6.1.1 with every daemon, timeout, buffer, auth, handler, service and
/// logging option it writes as a directive of mod_wsgi: the configuration starts with only
/// the LoadModule line changed, and each feature does its job.
#[test]
fn a_mod_wsgi_express_6_configuration_with_every_wsgi_option_serves() {
    let scratch = Scratch::new("express6-every");
    let port = free_port();
    let allow = scratch.write("auth/allow.py", ALLOW);
    let users = scratch.write("auth/users.py", USERS);
    let service = scratch.write("service/service.py", SERVICE);
    let handler = scratch.write("app/handler.py", HANDLER);
    scratch.write("app/page.foo", "");
    let eggs = scratch.dir.join("eggs");
    std::fs::create_dir_all(&eggs).unwrap();
    std::fs::set_permissions(&eggs, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let app_dir = scratch.dir.join("app").display().to_string();
    let paths = [allow, users, service, handler].map(|p| p.display().to_string());
    let eggs = eggs.display().to_string();
    let server = setup_and_start(
        &scratch,
        port,
        &[
            "--processes",
            "2",
            "--threads",
            "4",
            "--max-clients",
            "20",
            "--initial-workers",
            "0.2",
            "--maximum-requests",
            "1000",
            "--startup-timeout",
            "15",
            "--shutdown-timeout",
            "5",
            "--restart-interval",
            "3600",
            "--cpu-time-limit",
            "3600",
            "--graceful-timeout",
            "10",
            "--eviction-timeout",
            "5",
            "--deadlock-timeout",
            "60",
            "--inactivity-timeout",
            "600",
            "--ignore-activity",
            "/health",
            "--request-timeout",
            "60",
            "--interrupt-timeout",
            "5",
            "--connect-timeout",
            "10",
            "--socket-timeout",
            "30",
            "--queue-timeout",
            "30",
            "--server-backlog",
            "200",
            "--daemon-backlog",
            "200",
            "--send-buffer-size",
            "1048576",
            "--receive-buffer-size",
            "1048576",
            "--header-buffer-size",
            "65536",
            "--response-buffer-size",
            "65536",
            "--response-socket-timeout",
            "30",
            "--response-flush-delay",
            "5",
            "--limit-request-body",
            "1000000",
            "--keep-alive-timeout",
            "2",
            "--disable-reloading",
            "--callable-object",
            "application",
            "--host-access-script",
            &paths[0],
            "--auth-user-script",
            &paths[1],
            "--auth-type",
            "Basic",
            "--auth-group-script",
            &paths[1],
            "--auth-group",
            "admins",
            "--service-script",
            "svc",
            &paths[2],
            "--add-handler",
            ".foo",
            &paths[3],
            "--document-root",
            &app_dir,
            "--orphan-interpreter",
            "--server-metrics",
            "--server-status",
            "--switch-interval",
            "0.01",
            "--python-eggs",
            &eggs,
            "--python-warnings",
            "ignore::DeprecationWarning",
            "--locale",
            "C.UTF-8",
            "--setenv",
            "EXPRESS_TEST",
            "1",
            "--passenv",
            "HOME",
            "--trust-proxy-header",
            "X-Forwarded-For",
            "--trust-proxy",
            "127.0.0.1",
            "--chunked-request",
            "--map-head-to-get",
            "Auto",
            "--log-level",
            "info",
        ],
    );
    let basic = [("Authorization", "Basic YW5uOnNlY3JldA==")]; // ann:secret
    serves_with(port, &server, &basic, &format!("127.0.0.1:{port}|True"));
    assert_eq!(get(port, "/").status, 401, "no credentials, no entry");
    let page = common::http::request(port, "GET", "/page.foo", &basic, b"");
    assert_eq!(page.text(), "handled /page.foo", "{}", error_log(&server));
    common::wait_for_file(
        &scratch.dir.join("service/service-ran"),
        "the service script",
    );
}
