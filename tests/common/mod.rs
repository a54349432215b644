//! Test harness: starts a real apache2 with this module on a free 127.0.0.1 port from a
//! generated config in a temporary directory, talks raw HTTP/1.1 to it, and fails the test
//! on unexpected `[error]`, `[crit]` or `panicked` lines in its error log.
#![allow(dead_code)]

pub mod http;
pub mod redis;

use std::fs;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub use http::{Response, get, request};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// How the test starts Apache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Launch {
    /// `-DFOREGROUND`: the test's own child is the Apache parent.
    Foreground,
    /// `-k start`: the parent detaches (daemonizes), as init scripts start it.
    Detached,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mpm {
    Prefork,
    Worker,
    Event,
}

pub const ALL_MPMS: [Mpm; 3] = [Mpm::Prefork, Mpm::Worker, Mpm::Event];

impl Mpm {
    fn module(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Mpm::Prefork => (
                "mpm_prefork_module",
                "mod_mpm_prefork.so",
                "StartServers 2\nMinSpareServers 1\nMaxSpareServers 4\nMaxRequestWorkers 16\n",
            ),
            Mpm::Worker => (
                "mpm_worker_module",
                "mod_mpm_worker.so",
                "StartServers 1\nServerLimit 2\nThreadsPerChild 8\nMaxRequestWorkers 16\nMinSpareThreads 1\nMaxSpareThreads 16\n",
            ),
            Mpm::Event => (
                "mpm_event_module",
                "mod_mpm_event.so",
                "StartServers 1\nServerLimit 2\nThreadsPerChild 8\nMaxRequestWorkers 16\nMinSpareThreads 1\nMaxSpareThreads 16\n",
            ),
        }
    }
}

/// Where Apache's modules live (apxs -q LIBEXECDIR), overridable by APACHE_MODULES_DIR.
pub fn apache_modules_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("APACHE_MODULES_DIR") {
        return dir.into();
    }
    let out = Command::new("apxs").args(["-q", "LIBEXECDIR"]).output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().into(),
        _ => panic!(
            "cannot find Apache's modules directory: install apache2-dev (apxs) or set APACHE_MODULES_DIR"
        ),
    }
}

/// The apache2 binary, overridable by APACHE_BIN. Missing Apache fails the test loudly.
pub fn apache_bin() -> String {
    let bin = std::env::var("APACHE_BIN").unwrap_or_else(|_| "apache2".to_owned());
    let found = Command::new("sh")
        .args([
            "-c",
            &format!("command -v {bin} >/dev/null || test -x /usr/sbin/{bin}"),
        ])
        .status();
    if !found.map(|s| s.success()).unwrap_or(false) {
        panic!(
            "apache2 is not installed (or APACHE_BIN is wrong): the integration tests need a real Apache httpd; run .ci/run or `apt-get install apache2 apache2-dev`"
        );
    }
    bin
}

/// The module under test: MOD_WSGI_RS_SO, else the cdylib next to the test binary.
pub fn module_path() -> PathBuf {
    if let Ok(p) = std::env::var("MOD_WSGI_RS_SO") {
        return p.into();
    }
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let so = profile_dir.join("libmod_wsgi_rs.so");
    assert!(
        so.exists(),
        "module not built at {} (run `cargo build` before `cargo test`)",
        so.display()
    );
    assert_not_stale(&so);
    so
}

fn newest_source(dir: &Path) -> std::time::SystemTime {
    let mut newest = std::time::UNIX_EPOCH;
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let t = if path.is_dir() {
            newest_source(&path)
        } else {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH)
        };
        newest = newest.max(t);
    }
    newest
}

/// `cargo test` does not rebuild the cdylib (no test links it): refuse to test an old one.
fn assert_not_stale(so: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let built = fs::metadata(so).and_then(|m| m.modified()).unwrap();
    // The crates the module links (not crates/express, a separate program).
    let newest = [
        "src",
        "crates/config/src",
        "crates/daemon/src",
        "crates/engine/src",
        "crates/http/src",
        "crates/metrics/src",
        "crates/redis/src",
        "crates/store/src",
        "crates/wire/src",
    ]
    .iter()
    .map(|dir| newest_source(&root.join(dir)))
    .max()
    .unwrap();
    assert!(
        built >= newest,
        "{} is older than the sources: run `cargo build` before `cargo test`",
        so.display()
    );
}

pub use mod_wsgi_test_ports::free_port;

/// The (major, minor) version of the CPython the module under test is built against
/// (PYO3_PYTHON, as the build saw it).
pub fn python_version() -> (u32, u32) {
    static VERSION: std::sync::OnceLock<(u32, u32)> = std::sync::OnceLock::new();
    *VERSION.get_or_init(|| {
        let python = std::env::var("PYO3_PYTHON").unwrap_or_else(|_| env!("PYO3_PYTHON").into());
        let out = Command::new(&python)
            .args(["-c", "import sys; print(*sys.version_info[:2])"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut parts = text.split_whitespace().map(|p| p.parse().unwrap());
        (parts.next().unwrap(), parts.next().unwrap())
    })
}

/// A scratch directory readable by Apache's children (which run as www-data).
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn new(label: &str) -> Scratch {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("mod_wsgi_rs-{label}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        Scratch { dir }
    }

    /// The directory of an earlier scratch, to start a server in it again.
    #[allow(dead_code)]
    pub fn reuse(dir: &str) -> Scratch {
        Scratch {
            dir: PathBuf::from(dir),
        }
    }

    /// Writes `content` to `rel` (creating world-readable directories as needed).
    pub fn write(&self, rel: &str, content: &str) -> PathBuf {
        let path = self.dir.join(rel);
        let mut parent = path.parent().unwrap().to_path_buf();
        fs::create_dir_all(&parent).unwrap();
        while parent.starts_with(&self.dir) {
            let _ = fs::set_permissions(&parent, fs::Permissions::from_mode(0o777));
            if !parent.pop() {
                break;
            }
        }
        fs::write(&path, content).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        path
    }

    pub fn path(&self, rel: &str) -> String {
        self.dir.join(rel).display().to_string()
    }
}

pub struct Apache {
    pub port: u16,
    pub scratch: Scratch,
    child: Option<Child>,
    /// The parent of a server started with `-k start` (then `child` is None).
    detached_pid: Option<u32>,
    allowed: Vec<String>,
    checked: bool,
}

/// Builds a config: `body` is appended after the common directives; `{root}` in it is
/// replaced by the scratch directory.
pub fn config_text(mpm: Mpm, scratch: &Scratch, port: u16, body: &str) -> String {
    let (mpm_name, mpm_file, mpm_tuning) = mpm.module();
    let mods = apache_modules_dir().display().to_string();
    let root = scratch.dir.display();
    format!(
        "ServerRoot {root}\nListen 127.0.0.1:{port}\nServerName 127.0.0.1\nPidFile {root}/httpd.pid\n\
         ErrorLog {root}/error.log\nLogLevel info\nDefaultRuntimeDir {root}\nMutex file:{root} default\n\
         ServerTokens Full\nTimeout 20\n\
         LoadModule {mpm_name} {mods}/{mpm_file}\n{mpm_tuning}\
         LoadModule authz_core_module {mods}/mod_authz_core.so\n\
         LoadModule wsgi_module {so}\n\
         User www-data\nGroup www-data\n\
         <Directory />\n  Require all denied\n  AllowOverride None\n</Directory>\n\
         <Directory {root}/app>\n  Require all granted\n</Directory>\n{body}\n",
        so = module_path().display(),
        body = body.replace("{root}", &root.to_string()),
    )
}

impl Apache {
    /// Starts Apache with `body` config; `files` are (relative path, content) written first.
    pub fn start(mpm: Mpm, body: &str, files: &[(&str, &str)]) -> Apache {
        let scratch = Scratch::new(&format!("{mpm:?}").to_lowercase());
        for (rel, content) in files {
            scratch.write(rel, content);
        }
        Self::start_in(mpm, scratch, body)
    }

    pub fn start_in(mpm: Mpm, scratch: Scratch, body: &str) -> Apache {
        Self::launch(mpm, scratch, body, Launch::Foreground)
    }

    /// Starts Apache as `apache2 -k start` does in production: the parent detaches and
    /// is found through its PidFile.
    pub fn start_detached(mpm: Mpm, body: &str, files: &[(&str, &str)]) -> Apache {
        let scratch = Scratch::new(&format!("{mpm:?}-detached").to_lowercase());
        for (rel, content) in files {
            scratch.write(rel, content);
        }
        Self::launch(mpm, scratch, body, Launch::Detached)
    }

    fn launch(mpm: Mpm, scratch: Scratch, body: &str, launch: Launch) -> Apache {
        let bin = apache_bin();
        let port = free_port();
        let conf = scratch.dir.join("httpd.conf");
        fs::write(&conf, config_text(mpm, &scratch, port, body)).unwrap();
        let mode: &[&str] = match launch {
            Launch::Foreground => &["-DFOREGROUND"],
            Launch::Detached => &["-k", "start"],
        };
        let mut command = Command::new(&bin);
        command
            .args(["-f", conf.to_str().unwrap()])
            .args(mode)
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            // Where the checkout lives must not matter (a clone under a mode-700 home):
            // Apache starts from a directory its children can read.
            .current_dir(&scratch.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            // Apache signals its whole process group on shutdown; keep the test out of it.
            .process_group(0);
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"));
        let mut detached_pid = None;
        if launch == Launch::Detached {
            let status = child.wait().unwrap();
            let log = fs::read_to_string(scratch.dir.join("error.log")).unwrap_or_default();
            assert!(
                status.success(),
                "apache2 -k start failed ({status}):\n{log}"
            );
            let pid_file = scratch.dir.join("httpd.pid");
            wait_for_file(&pid_file, "apache2 -k start");
            let deadline = Instant::now() + Duration::from_secs(5);
            let pid = loop {
                if let Ok(pid) = fs::read_to_string(&pid_file)
                    .unwrap_or_default()
                    .trim()
                    .parse()
                {
                    break pid;
                }
                assert!(
                    Instant::now() < deadline,
                    "no pid in {}",
                    pid_file.display()
                );
                std::thread::sleep(Duration::from_millis(20));
            };
            detached_pid = Some(pid);
        }
        let mut apache = Apache {
            port,
            scratch,
            child: (launch == Launch::Foreground).then_some(child),
            detached_pid,
            allowed: Vec::new(),
            checked: false,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if !apache.parent_alive() {
                apache.child = None;
                apache.detached_pid = None;
                apache.checked = true;
                panic!(
                    "apache2 exited at start; error log:\n{}",
                    apache.error_log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "apache2 did not listen within 15 s:\n{}",
                apache.error_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        apache
    }

    /// The Apache parent's pid.
    pub fn parent_pid(&self) -> u32 {
        match (&self.child, self.detached_pid) {
            (Some(child), _) => child.id(),
            (None, Some(pid)) => pid,
            (None, None) => panic!("apache is not running"),
        }
    }

    fn parent_alive(&mut self) -> bool {
        if let Some(child) = self.child.as_mut() {
            return child.try_wait().unwrap().is_none();
        }
        self.detached_pid.is_some_and(pid_running)
    }

    /// Declares an error-log line (by substring) that this test expects.
    pub fn allow_log(&mut self, needle: &str) {
        self.allowed.push(needle.to_owned());
    }

    pub fn error_log(&self) -> String {
        fs::read_to_string(self.scratch.dir.join("error.log")).unwrap_or_default()
    }

    /// Waits until the error log contains `needle` (log lines can trail the response).
    pub fn wait_for_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let log = self.error_log();
            if log.contains(needle) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "error log never contained {needle:?}; log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn get(&self, path: &str) -> Response {
        get(self.port, path)
    }

    /// GETs `path` and returns the body; fails the test (with the error log) unless the
    /// answer is 200.
    pub fn get_ok(&self, path: &str) -> String {
        let r = self.get(path);
        assert_eq!(r.status, 200, "{path}: {}\n{}", r.text(), self.error_log());
        r.text()
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        request(self.port, method, path, headers, body)
    }

    /// Sends a signal (as `kill` spells it, e.g. "-USR1") to the Apache parent.
    pub fn signal(&self, signal: &str) {
        let pid = self.parent_pid().to_string();
        let status = Command::new("kill").args([signal, &pid]).status().unwrap();
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// Stops Apache (SIGTERM, then waits) and checks the error log.
    pub fn stop(&mut self) {
        let stop_began = self.error_log().len();
        if let Some(pid) = self.detached_pid.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while pid_running(pid) {
                if Instant::now() > deadline {
                    let _ = Command::new("kill")
                        .args(["-KILL", &pid.to_string()])
                        .status();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while child.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        if !self.checked {
            self.checked = true;
            let log = self.error_log();
            // The event MPM's own shutdown race: a worker finishing a keep-alive request
            // (AH03093) or a lingering close (AH03092) while the child's pollset is being
            // torn down logs EBADF.
            let during_stop = log.get(stop_began..).unwrap_or("");
            let shutdown_race = |l: &str| {
                (l.contains("AH03093") || l.contains("AH03092")) && during_stop.contains(l)
            };
            let bad: Vec<&str> = log
                .lines()
                .filter(|l| !shutdown_race(l))
                .filter(|l| {
                    l.contains(":error]")
                        || l.contains(":crit]")
                        || l.contains(":emerg]")
                        || l.contains(":alert]")
                        || l.contains("panicked")
                })
                .filter(|l| !self.allowed.iter().any(|a| l.contains(a.as_str())))
                .collect();
            assert!(
                bad.is_empty(),
                "unexpected error-log lines:\n{}\n--- full log ---\n{log}",
                bad.join("\n")
            );
        }
    }
}

impl Drop for Apache {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.checked = true;
        }
        self.stop();
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.scratch.dir);
        }
    }
}

/// Whether a process exists and has not exited (a zombie nobody reaped counts as gone).
pub fn pid_running(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat.rsplit_once(") ")?.1.chars().next()?;
            Some(state != 'Z' && state != 'X')
        })
        .unwrap_or(false)
}

/// Waits up to 5 s for `path` to exist (a marker an application writes); fails with `what`.
pub fn wait_for_file(path: &Path, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{what}: {} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `apache2 -t` on a config and returns (success, output).
pub fn configtest(body: &str, files: &[(&str, &str)]) -> (bool, String) {
    let scratch = Scratch::new("configtest");
    for (rel, content) in files {
        scratch.write(rel, content);
    }
    let conf = scratch.dir.join("httpd.conf");
    fs::write(&conf, config_text(Mpm::Event, &scratch, free_port(), body)).unwrap();
    let out = Command::new(apache_bin())
        .args(["-t", "-f", conf.to_str().unwrap()])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = fs::remove_dir_all(&scratch.dir);
    (out.status.success(), text)
}

/// Where the application runs: in Apache's children or in a daemon process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Embedded,
    Daemon,
}

impl Mode {
    /// Config lines that route every request of the test to this mode.
    pub fn config(self) -> &'static str {
        match self {
            Mode::Embedded => "",
            Mode::Daemon => {
                "WSGIDaemonProcess suite processes=1 threads=4
WSGIProcessGroup suite
"
            }
        }
    }
}

/// Declares `#[test]`s running each named `fn(Mode)` in embedded and in daemon mode.
#[macro_export]
macro_rules! in_both_modes {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[test]
                fn embedded() {
                    super::$name(super::common::Mode::Embedded)
                }
                #[test]
                fn daemon() {
                    super::$name(super::common::Mode::Daemon)
                }
            }
        )+
    };
}
