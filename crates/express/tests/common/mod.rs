//! Shared harness of the option tests: a scratch directory Apache's children can read,
//! a wsgi-express server started on free 127.0.0.1 ports and stopped with SIGTERM, and
//! raw HTTP exchanges.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const EXE: &str = env!("CARGO_BIN_EXE_wsgi-express");

pub use mod_wsgi_test_ports::free_port;

/// A directory the test owns under the system temporary directory (mode 755, so
/// www-data can read it), removed unless the test failed.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(label: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "wsgi-express-opt-{label}-{}-{}",
            std::process::id(),
            free_port()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        Scratch(dir)
    }

    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.0.join(rel);
        let parent = path.parent().unwrap();
        std::fs::create_dir_all(parent).unwrap();
        std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        path
    }

    pub fn path(&self, rel: &str) -> String {
        self.0.join(rel).to_str().unwrap().to_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub fn express(args: &[&str]) -> Command {
    let mut cmd = Command::new(EXE);
    // From a directory Apache's user can enter, wherever the checkout lives (the working
    // directory is the default for several options).
    cmd.args(args)
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        // Apache signals its process group on shutdown; keep the test out of it.
        .process_group(0);
    cmd
}

pub fn run(args: &[&str]) -> Output {
    express(args).output().unwrap()
}

/// A running wsgi-express (apache2 after exec) on 127.0.0.1:`port`.
pub struct Server {
    child: Option<Child>,
    pub port: u16,
    pub root: PathBuf,
}

impl Server {
    /// Starts on a free port with the server root in `scratch`; waits until `wait_port`
    /// (the plain HTTP port when None) accepts connections.
    pub fn start(scratch: &Scratch, extra: &[&str], wait_port: Option<u16>) -> Server {
        let port = free_port();
        let port_text = port.to_string();
        let root = scratch.0.join("server-root");
        let mut args = vec![
            "start-server",
            "--host",
            "127.0.0.1",
            "--port",
            &port_text,
            "--server-root",
            root.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let child = express(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut server = Server {
            child: Some(child),
            port,
            root,
        };
        let wait = wait_port.unwrap_or(port);
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", wait)).is_err() {
            if let Some(status) = server.child.as_mut().unwrap().try_wait().unwrap() {
                server.child = None;
                panic!(
                    "wsgi-express exited ({status}) before serving:\n{}",
                    server.logs()
                );
            }
            assert!(
                Instant::now() < deadline,
                "not listening after 15 s:\n{}",
                server.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// Every log file in the server root, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for entry in std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.contains("_log") {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                out.push_str(&format!("--- {name}\n{text}"));
            }
        }
        out
    }

    pub fn request(&self, head: &str) -> String {
        exchange(self.port, head)
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while child.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("apache2 did not stop on SIGTERM");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            std::thread::sleep(Duration::from_secs(1));
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Sends `head` (a request without the final blank line's CRLFs added) and returns the
/// whole response.
pub fn exchange(port: u16, head: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "{head}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    String::from_utf8_lossy(&raw).into_owned()
}

pub fn status_of(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {response:?}"))
}

pub fn body_of(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

/// A WSGI script answering with `expression` (Python, over `environ`) as text.
pub fn echo_app(expression: &str) -> String {
    format!(
        "import os, locale\ndef application(environ, start_response):\n    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [str({expression}).encode()]\n"
    )
}

pub fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
