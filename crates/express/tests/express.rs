//! wsgi-express for real: each test runs the built binary, which execs a real apache2 with
//! the mod_wsgi_rs module built next to it, and talks HTTP to it on 127.0.0.1.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const EXE: &str = env!("CARGO_BIN_EXE_wsgi-express");

const PID_APP: &str = "import os\ndef application(environ, start_response):\n    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [b'script %d' % os.getpid()]\n";

/// A program from PATH or the sbin directories (often not on a non-login PATH).
fn program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} is not installed (Debian: apache2, apache2-dev)"))
}

use mod_wsgi_test_ports::free_port;

/// A directory the test owns, readable by Apache's children (www-data).
struct Scratch(PathBuf);

impl Scratch {
    fn new(label: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "wsgi-express-test-{label}-{}-{}",
            std::process::id(),
            free_port()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        Scratch(dir)
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.0.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        for dir in path
            .ancestors()
            .skip(1)
            .take_while(|d| d.starts_with(&self.0))
        {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn express(args: &[&str]) -> Command {
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

fn run(args: &[&str]) -> Output {
    express(args).output().unwrap()
}

/// A started server: the wsgi-express process, which became apache2 by exec.
struct Server {
    child: Option<Child>,
    port: u16,
    root: PathBuf,
}

impl Server {
    fn start(scratch: &Scratch, extra: &[&str]) -> Server {
        Self::start_with_stderr(scratch, extra, Stdio::inherit())
    }

    fn start_with_stderr(scratch: &Scratch, extra: &[&str], stderr: Stdio) -> Server {
        let port_text = free_port().to_string();
        // A --port in `extra` comes later, so it is the one served on.
        let port = extra
            .windows(2)
            .rfind(|w| w[0] == "--port")
            .map_or(&port_text[..], |w| w[1])
            .parse()
            .unwrap();
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
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut server = Server {
            child: Some(child),
            port,
            root,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = server.child.as_mut().unwrap().try_wait().unwrap() {
                server.child = None;
                panic!(
                    "wsgi-express exited ({status}) before serving; error log:\n{}",
                    server.error_log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "not listening after 15 s:\n{}",
                server.error_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.root.join("error_log")).unwrap_or_default()
    }

    fn get(&self, path: &str) -> (u16, String) {
        get(self.port, path)
    }

    /// SIGTERM, as Ctrl-C or systemd would; returns what wsgi-express printed.
    fn stop(&mut self) -> String {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "apache2 did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        out
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

fn get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_owned())
}

/// PIDs of processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(needle) {
            found.push(pid);
        }
    }
    found
}

fn assert_nothing_left(port: u16, root: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<u32> = processes_mentioning(root.to_str().unwrap())
            .into_iter()
            .chain(processes_mentioning(&format!("(wsgi:127.0.0.1:{port})")))
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "processes left after stop: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn start_server_serves_a_script_on_two_processes_and_stops_cleanly() {
    let scratch = Scratch::new("script");
    let script = scratch.write("app/app.wsgi", PID_APP);
    let mut server = Server::start(
        &scratch,
        &[
            script.to_str().unwrap(),
            "--processes",
            "2",
            "--threads",
            "2",
        ],
    );
    let mut pids = std::collections::HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while pids.len() < 2 {
        // Concurrent requests so both daemon processes take some.
        let port = server.port;
        let batch: Vec<_> = (0..6)
            .map(|_| std::thread::spawn(move || get(port, "/")))
            .collect();
        for b in batch {
            let (status, body) = b.join().unwrap();
            assert_eq!(status, 200, "{body}\n{}", server.error_log());
            pids.insert(body.strip_prefix("script ").unwrap().to_owned());
        }
        assert!(
            Instant::now() < deadline,
            "only PIDs {pids:?} with --processes 2"
        );
    }
    assert_eq!(pids.len(), 2, "{pids:?}");
    // The daemons show their whole display name in ps, not one cut to argv[0]'s length.
    let titled = processes_mentioning(&format!("(wsgi:127.0.0.1:{})", server.port));
    assert_eq!(titled.len(), 2, "daemon titles: {titled:?}");
    let summary = server.stop();
    assert!(
        summary.contains(&format!("http://127.0.0.1:{}/", server.port)),
        "{summary}"
    );
    assert!(summary.contains("2 processes x 2 threads"), "{summary}");
    assert_nothing_left(server.port, &server.root);
}

#[test]
fn module_entry_point_with_mount_point() {
    let scratch = Scratch::new("module");
    scratch.write("proj/mysite/__init__.py", "");
    scratch.write(
        "proj/mysite/wsgi.py",
        "def app(environ, start_response):\n    start_response('200 OK', [])\n    return [('module %s %s' % (environ['SCRIPT_NAME'], environ['PATH_INFO'])).encode()]\n",
    );
    let proj = scratch.0.join("proj");
    let mut server = Server::start(
        &scratch,
        &[
            "--application-type",
            "module",
            "--entry-point",
            "mysite.wsgi",
            "--callable-object",
            "app",
            "--mount-point",
            "/site",
            "--working-directory",
            proj.to_str().unwrap(),
        ],
    );
    let (status, body) = server.get("/site/page");
    assert_eq!(status, 200, "{body}\n{}", server.error_log());
    assert_eq!(body, "module /site /page");
    server.stop();
}

#[test]
fn url_alias_is_served_by_apache_beside_the_app() {
    let scratch = Scratch::new("alias");
    let script = scratch.write("app/app.wsgi", PID_APP);
    scratch.write("static/style.css", "body { color: red }\n");
    let static_dir = scratch.0.join("static");
    let mut server = Server::start(
        &scratch,
        &[
            script.to_str().unwrap(),
            "--url-alias",
            "/static",
            static_dir.to_str().unwrap(),
        ],
    );
    let (status, body) = server.get("/static/style.css");
    assert_eq!(status, 200, "{}", server.error_log());
    assert_eq!(body, "body { color: red }\n");
    let (status, body) = server.get("/anything");
    assert_eq!(status, 200);
    assert!(body.starts_with("script "), "{body}");
    server.stop();
}

#[test]
fn reload_on_changes_picks_up_an_edited_module() {
    let scratch = Scratch::new("reload");
    let module = scratch.write("app/greeting.py", "TEXT = 'first'\n");
    let script = scratch.write(
        "app/app.wsgi",
        "import os, sys\nsys.path.insert(0, os.path.dirname(__file__))\nimport greeting\ndef application(environ, start_response):\n    start_response('200 OK', [])\n    return [greeting.TEXT.encode()]\n",
    );
    let mut server = Server::start(
        &scratch,
        &[
            script.to_str().unwrap(),
            "--reload-on-changes",
            "--reload-interval",
            "0.2",
        ],
    );
    assert_eq!(server.get("/"), (200, "first".to_owned()));
    // Not within the same coarse file-clock tick as the process start (a few ms).
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(&module, "TEXT = 'second'\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = server.get("/");
        assert_eq!(status, 200, "{body}\n{}", server.error_log());
        if body == "second" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {body:?} after editing the module:\n{}",
            server.error_log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(server.error_log().contains("greeting.py changed"));
    server.stop();
}

#[test]
fn reload_on_changes_keeps_the_old_code_serving_through_a_typo() {
    let scratch = Scratch::new("reload-typo");
    let module = scratch.write("app/greeting.py", "TEXT = 'first'\n");
    let script = scratch.write(
        "app/app.wsgi",
        "import os, sys\nsys.path.insert(0, os.path.dirname(__file__))\nimport greeting\ndef application(environ, start_response):\n    start_response('200 OK', [])\n    return [greeting.TEXT.encode()]\n",
    );
    let mut server = Server::start(
        &scratch,
        &[
            script.to_str().unwrap(),
            "--reload-on-changes",
            "--reload-interval",
            "0.2",
        ],
    );
    assert_eq!(server.get("/"), (200, "first".to_owned()));
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(&module, "TEXT = = 'broken'\n").unwrap();
    // The replacement fails to load the module; the old code answers meanwhile.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.error_log().contains("WSGI1113") {
        assert_eq!(
            server.get("/"),
            (200, "first".to_owned()),
            "{}",
            server.error_log()
        );
        assert!(
            Instant::now() < deadline,
            "no failed replacement:\n{}",
            server.error_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for _ in 0..10 {
        assert_eq!(
            server.get("/"),
            (200, "first".to_owned()),
            "{}",
            server.error_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Fixed: the new code serves within a couple of seconds, not after the backoff.
    std::fs::write(&module, "TEXT = 'third'\n").unwrap();
    let fixed = Instant::now();
    loop {
        let (status, body) = server.get("/");
        assert_eq!(status, 200, "{body}\n{}", server.error_log());
        if body == "third" {
            break;
        }
        assert_eq!(body, "first");
        assert!(
            fixed.elapsed() < Duration::from_secs(3),
            "the fix was not served within 3 s:\n{}",
            server.error_log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server.stop();
}

#[test]
fn a_broken_script_answers_500_at_once_and_the_terminal_shows_why() {
    let scratch = Scratch::new("broken");
    let script = scratch.write(
        "app.wsgi",
        "VERSION = = 3\ndef application(environ, start_response):\n    start_response('200 OK', [])\n    return [b'fixed']\n",
    );
    let terminal = scratch.0.join("terminal.txt");
    let mut server = Server::start_with_stderr(
        &scratch,
        &[script.to_str().unwrap(), "--log-to-terminal"],
        Stdio::from(std::fs::File::create(&terminal).unwrap()),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut shown = String::new();
    while !shown.contains("WSGI1113") {
        assert!(Instant::now() < deadline, "terminal:\n{shown}");
        std::thread::sleep(Duration::from_millis(50));
        shown = std::fs::read_to_string(&terminal).unwrap_or_default();
    }
    assert!(
        shown.contains("app.wsgi\", line 1") && shown.contains("SyntaxError"),
        "{shown}"
    );
    for _ in 0..3 {
        let started = Instant::now();
        let (status, _) = server.get("/");
        assert_eq!(status, 500);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }
    scratch.write(
        "app.wsgi",
        "def application(environ, start_response):\n    start_response('200 OK', [])\n    return [b'fixed']\n",
    );
    let fixed = Instant::now();
    while server.get("/") != (200, "fixed".to_owned()) {
        assert!(
            fixed.elapsed() < Duration::from_secs(3),
            "not fixed after 3 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server.stop();
}

/// Stops an Apache started with `apachectl start` if the test fails before it does.
struct StopOnDrop(PathBuf);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = Command::new(&self.0).arg("stop").process_group(0).status();
        }
    }
}

#[test]
fn setup_server_writes_an_apachectl_that_starts_and_stops() {
    let scratch = Scratch::new("setup");
    let script = scratch.write("app/app.wsgi", PID_APP);
    let root = scratch.0.join("root");
    let port = free_port().to_string();
    let out = run(&[
        "setup-server",
        script.to_str().unwrap(),
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--server-root",
        root.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).is_err());
    let apachectl = root.join("apachectl");
    let ctl = |verb: &str| {
        let o = Command::new(&apachectl)
            .arg(verb)
            .process_group(0)
            .output()
            .unwrap();
        assert!(o.status.success(), "apachectl {verb}: {o:?}");
    };
    ctl("configtest");
    ctl("start");
    let _stop_on_panic = StopOnDrop(apachectl.clone());
    let port: u16 = port.parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "apachectl start did not serve");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, body) = get(port, "/");
    assert_eq!(status, 200);
    assert!(body.starts_with("script "), "{body}");
    ctl("stop");
    assert_nothing_left(port, &root);
}

#[test]
fn module_config_is_accepted_by_apache() {
    let out = run(&["module-config"]);
    assert!(out.status.success(), "{out:?}");
    let lines = String::from_utf8(out.stdout).unwrap();
    assert!(lines.starts_with("LoadModule wsgi_module \""), "{lines}");
    let scratch = Scratch::new("module-config");
    let modules = String::from_utf8(
        Command::new(program("apxs"))
            .args(["-q", "LIBEXECDIR"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let conf = scratch.write(
        "httpd.conf",
        &format!(
            "ServerRoot {root}\nListen 127.0.0.1:{port}\nServerName 127.0.0.1\nPidFile {root}/httpd.pid\nErrorLog {root}/error.log\n\
             LoadModule mpm_event_module {m}/mod_mpm_event.so\nLoadModule authz_core_module {m}/mod_authz_core.so\n{lines}\
             <IfModule mod_wsgi.c>\nWSGIDaemonProcess check\n</IfModule>\n",
            root = scratch.0.display(),
            port = free_port(),
            m = modules.trim(),
        ),
    );
    let test = Command::new(program("apache2"))
        .args(["-t", "-f", conf.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(test.status.success(), "apache2 -t: {test:?}");
}

#[test]
fn install_module_then_a2enmod_in_a_scratch_layout() {
    let scratch = Scratch::new("install");
    let modules = scratch.0.join("modules");
    let conf_dir = scratch.0.join("etc");
    std::fs::create_dir_all(&modules).unwrap();
    std::fs::create_dir_all(conf_dir.join("mods-enabled")).unwrap();
    let install = |envs: &[(&str, &Path)]| {
        let mut cmd = express(&[
            "install-module",
            "--modules-directory",
            modules.to_str().unwrap(),
        ]);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let out = install(&[("APACHE_CONFDIR", &conf_dir)]);
    assert!(out.status.success(), "{out:?}");
    assert!(modules.join("mod_wsgi_rs.so").is_file());
    let load = std::fs::read_to_string(conf_dir.join("mods-available/wsgi_rs.load")).unwrap();
    assert!(
        load.contains(&format!(
            "LoadModule wsgi_module \"{}\"",
            modules.join("mod_wsgi_rs.so").display()
        )),
        "{load}"
    );
    let a2enmod = Command::new(program("a2enmod"))
        .args(["-q", "wsgi_rs"])
        .env("APACHE_CONFDIR", &conf_dir)
        .output()
        .unwrap();
    assert!(a2enmod.status.success(), "{a2enmod:?}");
    assert!(conf_dir.join("mods-enabled/wsgi_rs.load").exists());
    assert!(conf_dir.join("mods-enabled/wsgi_rs.conf").exists());

    // With the C mod_wsgi enabled too, both would define wsgi_module: refused.
    std::fs::write(conf_dir.join("mods-enabled/wsgi.load"), "").unwrap();
    let out = install(&[("APACHE_CONFDIR", &conf_dir)]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the C mod_wsgi is enabled"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn bad_input_is_one_line_and_a_nonzero_exit() {
    let scratch = Scratch::new("bad");
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port().to_string();
    let script = scratch.write("app/app.wsgi", PID_APP);
    let root = scratch.0.join("root");
    let root = root.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["start-server", "/no/such/app.wsgi", "--server-root", root],
            "no such WSGI script file: /no/such/app.wsgi",
        ),
        (
            vec![
                "start-server",
                script.to_str().unwrap(),
                "--host",
                "127.0.0.1",
                "--port",
                &busy_port,
                "--server-root",
                root,
            ],
            "is already in use",
        ),
        (
            vec!["start-server", "--no-such-option"],
            "unexpected argument '--no-such-option'",
        ),
        (
            vec![
                "start-server",
                script.to_str().unwrap(),
                "--httpd-executable",
                "/no/such/httpd",
            ],
            "--httpd-executable /no/such/httpd: not an executable file",
        ),
        (
            vec![
                "start-server",
                "--application-type",
                "module",
                "not a module",
            ],
            "is not a Python module name",
        ),
    ];
    for (args, expected) in cases {
        let out = run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("backtrace"),
            "{err}"
        );
        if !expected.starts_with("unexpected argument") {
            assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        }
    }
    drop(busy);
}

/// Copies `examples/<rel>` (a file or a tree) into the scratch directory, readable by
/// Apache's children wherever the checkout lives.
fn copy_example(scratch: &Scratch, rel: &str) -> PathBuf {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    fn copy(from: &Path, to: &Path) {
        if from.is_dir() {
            std::fs::create_dir_all(to).unwrap();
            std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755)).unwrap();
            for entry in std::fs::read_dir(from).unwrap().flatten() {
                if entry.file_name() != "__pycache__" {
                    copy(&entry.path(), &to.join(entry.file_name()));
                }
            }
        } else {
            std::fs::copy(from, to).unwrap();
            std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    let to = scratch.0.join(rel);
    copy(&examples.join(rel), &to);
    to
}

#[test]
fn the_flask_example_runs_unchanged() {
    let scratch = Scratch::new("flask");
    let script = copy_example(&scratch, "flask_app.wsgi");
    let mut server = Server::start(&scratch, &[script.to_str().unwrap()]);
    let (status, body) = server.get("/");
    assert_eq!(status, 200, "{body}\n{}", server.error_log());
    assert_eq!(body, "Hello from Flask under mod_wsgi_rs");
    server.stop();
}

#[test]
fn the_django_example_runs_unchanged() {
    let scratch = Scratch::new("django");
    let project = copy_example(&scratch, "django_project");
    let mut server = Server::start(
        &scratch,
        &[
            "--application-type",
            "module",
            "mysite.wsgi",
            "--working-directory",
            project.to_str().unwrap(),
            "--mount-point",
            "/app/",
        ],
    );
    let (status, body) = server.get("/app/");
    assert_eq!(status, 200, "{body}\n{}", server.error_log());
    assert_eq!(body, "Hello from Django under mod_wsgi_rs\n");
    let (status, body) = server.get("/app/info");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"script_name\": \"/app\""), "{body}");
    assert!(
        body.contains(&format!("\"process_group\": \"127.0.0.1:{}\"", server.port)),
        "{body}"
    );
    server.stop();
}

#[test]
fn embedded_mode_and_access_log() {
    let scratch = Scratch::new("embedded");
    let script = scratch.write(
        "app/app.wsgi",
        "import os\ndef application(environ, start_response):\n    start_response('200 OK', [])\n    return [('%s|%d|%s' % (environ['mod_wsgi.process_group'], os.getpid(), environ.get('STAGE'))).encode()]\n",
    );
    let mut server = Server::start(
        &scratch,
        &[
            script.to_str().unwrap(),
            "--embedded-mode",
            "--access-log",
            "--setenv",
            "STAGE",
            "testing",
        ],
    );
    let (status, body) = server.get("/hello");
    assert_eq!(status, 200, "{body}\n{}", server.error_log());
    let parts: Vec<&str> = body.split('|').collect();
    assert_eq!(parts[0], "", "embedded mode has no process group: {body}");
    assert_eq!(parts[2], "testing");
    let pid: u32 = parts[1].parse().unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        String::from_utf8_lossy(&cmdline).contains("httpd.conf"),
        "served by an Apache child"
    );
    server.stop();
    let access = std::fs::read_to_string(server.root.join("access_log")).unwrap();
    assert!(access.contains("\"GET /hello HTTP/1.0\" 200"), "{access}");
}

/// An app that imports a module next to it, as a new user's first app does.
const SIBLING_APP: &str = "import helper\ndef application(environ, start_response):\n    start_response('200 OK', [])\n    return [helper.TEXT.encode()]\n";

#[test]
fn embedded_mode_puts_the_script_directory_on_sys_path() {
    let scratch = Scratch::new("embedded-path");
    scratch.write("app/helper.py", "TEXT = 'from helper'\n");
    let script = scratch.write("app/app.wsgi", SIBLING_APP);
    for mode in [&[][..], &["--embedded-mode"][..]] {
        let mut args = vec![script.to_str().unwrap()];
        args.extend_from_slice(mode);
        let mut server = Server::start(&scratch, &args);
        let (status, body) = server.get("/");
        assert_eq!(
            (status, body.as_str()),
            (200, "from helper"),
            "{mode:?}:\n{}",
            server.error_log()
        );
        server.stop();
    }
}

#[test]
fn a_repeated_option_takes_the_last_value_and_long_options_abbreviate() {
    let scratch = Scratch::new("options");
    let script = scratch.write("app/app.wsgi", PID_APP);
    // Server::start passes a --port of its own first; this one comes later and wins.
    let last_port = free_port().to_string();
    let mut server = Server::start(
        &scratch,
        &[
            script.to_str().unwrap(),
            "--port",
            &last_port,
            "--processe",
            "3",
            "--processe",
            "2",
            "--thr",
            "3",
        ],
    );
    assert_eq!(server.port.to_string(), last_port);
    let (status, body) = server.get("/");
    assert_eq!(status, 200, "{body}\n{}", server.error_log());
    let summary = server.stop();
    assert!(summary.contains(&format!(":{last_port}/")), "{summary}");
    assert!(summary.contains("2 processes x 3 threads"), "{summary}");
    let conf = std::fs::read_to_string(server.root.join("httpd.conf")).unwrap();
    let listens: Vec<&str> = conf.lines().filter(|l| l.starts_with("Listen ")).collect();
    assert_eq!(listens, [format!("Listen 127.0.0.1:{last_port}")]);

    for (given, candidates) in [
        (
            "--p",
            &["--port", "--processes", "--python-path", "--python-home"][..],
        ),
        (
            "--log",
            &["--log-to-terminal", "--log-level", "--log-directory"][..],
        ),
    ] {
        let out = run(&["start-server", given, "9000"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{given} was accepted: {out:?}");
        assert!(
            err.starts_with(&format!(
                "wsgi-express: error: ambiguous option {given}: could be "
            )),
            "{err}"
        );
        for c in candidates {
            assert!(err.contains(c), "{given}: {c} not named in {err}");
        }
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
}

#[test]
fn serve_script_takes_options_alone_and_cleans_up_on_ctrl_c() {
    let scratch = Scratch::new("serve-sh");
    let tmp = scratch.0.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = scratch.0.join("server-root");
    let port = free_port();
    let serve = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/serve.sh");
    // Options without a script: the default example, on the port asked for.
    let mut child = Command::new("bash")
        .arg(&serve)
        .args(["--port", &port.to_string(), "--server-root"])
        .arg(&root)
        .env("WSGI_EXPRESS", EXE)
        .env("TMPDIR", &tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let group = child.id();
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("serve.sh --port {port} exited ({status}) before serving");
        }
        assert!(Instant::now() < deadline, "serve.sh is not listening");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, _) = get(port, "/");
    assert_eq!(status, 200);
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        1,
        "the served copy"
    );
    // Ctrl-C: the terminal signals the whole foreground process group.
    let sent = Command::new("kill")
        .args(["-s", "INT", "--", &format!("-{group}")])
        .status()
        .unwrap();
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "serve.sh did not stop on Ctrl-C");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_nothing_left(port, &root);
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().flatten().collect();
    assert!(left.is_empty(), "temporary copy left behind: {left:?}");
}

#[test]
fn wsgi_multiprocess_is_false_with_one_daemon_process() {
    let scratch = Scratch::new("multiprocess");
    let script = scratch.write(
        "app/app.wsgi",
        "def application(environ, start_response):\n    start_response('200 OK', [])\n    return [repr((environ['wsgi.multiprocess'], environ['wsgi.multithread'])).encode()]\n",
    );
    for (extra, expected) in [
        (&[][..], "(False, True)"),
        (&["--processes", "2"][..], "(True, True)"),
    ] {
        let mut args = vec![script.to_str().unwrap()];
        args.extend_from_slice(extra);
        let mut server = Server::start(&scratch, &args);
        let (status, body) = server.get("/");
        assert_eq!(status, 200, "{body}\n{}", server.error_log());
        assert_eq!(body, expected, "multiprocess, multithread with {extra:?}");
        server.stop();
    }
}

/// The output of a command that should end by itself, or None (and the command's
/// process group stopped) when it is still running after `limit`.
fn output_within(mut cmd: Command, limit: Duration) -> Option<Output> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = Command::new("kill")
                .args(["-s", "TERM", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(child.wait_with_output().unwrap())
}

/// The Python the module is built for: cargo's PYO3_PYTHON (.cargo/config.toml) when the
/// tests were compiled.
fn build_python() -> &'static str {
    option_env!("PYO3_PYTHON").unwrap_or("python3")
}

#[test]
fn a_virtual_environment_of_another_python_is_refused_and_one_of_the_same_serves() {
    let scratch = Scratch::new("venv");
    let script = scratch.write(
        "app/app.wsgi",
        "import sys\ndef application(environ, start_response):\n    start_response('200 OK', [])\n    return [sys.prefix.encode()]\n",
    );
    let venv = scratch.0.join("venv");
    let made = Command::new(build_python())
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let version = Command::new(venv.join("bin/python"))
        .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        .output()
        .unwrap();
    let version = String::from_utf8(version.stdout).unwrap().trim().to_owned();
    let other = if version == "3.9" { "3.8" } else { "3.9" };
    scratch.write(
        "old-venv/pyvenv.cfg",
        &format!("home = /usr/bin\nversion = {other}.18\n"),
    );
    let root = scratch.0.join("root");
    let port = free_port().to_string();
    let mut start = express(&[
        "start-server",
        script.to_str().unwrap(),
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--server-root",
        root.to_str().unwrap(),
    ]);
    start.env("VIRTUAL_ENV", scratch.0.join("old-venv"));
    let out = output_within(start, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("start-server took a Python {other} venv and started"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        err.contains(&format!("is Python {other}, but the module"))
            && err.contains(&format!("is built for Python {version}")),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");

    let mut server = Server::start(
        &scratch,
        &[
            script.to_str().unwrap(),
            "--python-home",
            venv.to_str().unwrap(),
        ],
    );
    let (status, body) = server.get("/");
    assert_eq!(status, 200, "{body}\n{}", server.error_log());
    assert_eq!(Path::new(&body), venv.canonicalize().unwrap());
    server.stop();
}

#[test]
fn an_app_in_a_directory_apache_cannot_enter_is_refused_with_the_fix() {
    let scratch = Scratch::new("private");
    let script = scratch.write("home/app/app.wsgi", PID_APP);
    let home = scratch.0.join("home");
    // Debian 12's home directories: mode 700, so www-data cannot pass.
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
    let root = scratch.0.join("root");
    let port = free_port().to_string();
    let start = express(&[
        "start-server",
        script.to_str().unwrap(),
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--server-root",
        root.to_str().unwrap(),
    ]);
    let out = output_within(start, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("start-server started with {} mode 700", home.display()));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        err.starts_with(&format!(
            "wsgi-express: error: user 'www-data' cannot reach the WSGI script {}: {} (mode 700, owner root) does not let it in; fix with `chmod o+x {}`",
            script.display(),
            home.display(),
            home.display()
        )) && err.contains("--user/--group"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(!root.join("httpd.conf").exists(), "nothing written");

    // The fix it names works.
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o701)).unwrap();
    let mut server = Server::start(&scratch, &[script.to_str().unwrap()]);
    let (status, body) = server.get("/");
    assert_eq!(status, 200, "{body}\n{}", server.error_log());
    server.stop();
}

/// The whole response (head and body) to a raw HTTP/1.0 request.
fn exchange(port: u16, request: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    String::from_utf8_lossy(&raw).into_owned()
}

fn help_mentions(option: &str) {
    let out = run(&["start-server", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains(option), "--help has no {option}:\n{help}");
}

#[test]
fn shared_store_option_shares_keys_between_requests_and_processes() {
    help_mentions("--shared-store <NAME> <SIZE>");
    let scratch = Scratch::new("shared-store");
    let script = scratch.write(
        "app/app.wsgi",
        "import mod_wsgi\ndef application(environ, start_response):\n    start_response('200 OK', [])\n    n = mod_wsgi.shared('visits').incr('count')\n    mod_wsgi.shared('notes').set('last', 'visit %d' % n)\n    return [b'%d' % n]\n",
    );
    let mut server = Server::start(
        &scratch,
        &[
            script.to_str().unwrap(),
            "--processes",
            "2",
            "--shared-store",
            "visits",
            "1M",
            "--shared-store",
            "notes",
            "256K",
        ],
    );
    for expected in 1..=6 {
        let (status, body) = server.get("/");
        assert_eq!(status, 200, "{body}\n{}", server.error_log());
        assert_eq!(body, expected.to_string(), "{}", server.error_log());
    }
    server.stop();
    let conf = std::fs::read_to_string(server.root.join("httpd.conf")).unwrap();
    assert!(
        conf.contains("WSGISharedStore visits size=1M\nWSGISharedStore notes size=256K\n"),
        "{conf}"
    );

    let out = run(&["start-server", "--shared-store", "tiny", "1K"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("--shared-store tiny 1K:") && err.contains("at least 128K"),
        "{err}"
    );
}

#[test]
fn metrics_url_option_serves_prometheus_text_beside_the_app() {
    help_mentions("--metrics-url <URL-PATH>");
    let scratch = Scratch::new("metrics-url");
    let script = scratch.write("app/app.wsgi", PID_APP);
    let mut server = Server::start(
        &scratch,
        &[script.to_str().unwrap(), "--metrics-url", "/metrics"],
    );
    let (status, body) = server.get("/hello");
    assert_eq!(status, 200, "{body}\n{}", server.error_log());
    let response = exchange(
        server.port,
        "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
    );
    assert!(
        response.starts_with("HTTP/1.1 200 "),
        "{response}\n{}",
        server.error_log()
    );
    assert!(
        response.contains("Content-Type: text/plain; version=0.0.4"),
        "{response}"
    );
    assert!(
        response.contains("# TYPE mod_wsgi_requests_total counter")
            && response.contains("mod_wsgi_requests_total{"),
        "{response}"
    );
    server.stop();
}

#[test]
fn session_affinity_option_pins_a_client_to_one_process() {
    help_mentions("--session-affinity <COOKIE>");
    let scratch = Scratch::new("affinity");
    let script = scratch.write("app/app.wsgi", PID_APP);
    let mut server = Server::start(
        &scratch,
        &[
            script.to_str().unwrap(),
            "--processes",
            "2",
            "--session-affinity",
            "PIN",
        ],
    );
    let first = exchange(server.port, "GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    let cookie = first
        .lines()
        .find_map(|l| l.strip_prefix("Set-Cookie: PIN="))
        .and_then(|v| v.split(';').next())
        .unwrap_or_else(|| panic!("no PIN cookie:\n{first}\n{}", server.error_log()))
        .to_owned();
    let pid = |response: &str| {
        response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap()
    };
    let with_cookie = |slot: &str| {
        pid(&exchange(
            server.port,
            &format!("GET / HTTP/1.0\r\nHost: 127.0.0.1\r\nCookie: PIN={slot}\r\n\r\n"),
        ))
    };
    assert_eq!(
        with_cookie(&cookie),
        pid(&first),
        "the first response's process"
    );
    // Each slot keeps its process; the two slots are two processes.
    let slot0: std::collections::HashSet<String> = (0..4).map(|_| with_cookie("0")).collect();
    let slot1: std::collections::HashSet<String> = (0..4).map(|_| with_cookie("1")).collect();
    assert_eq!((slot0.len(), slot1.len()), (1, 1), "{slot0:?} {slot1:?}");
    assert_ne!(slot0, slot1);
    server.stop();

    let out = run(&["start-server", "--session-affinity", "a;b"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--session-affinity a;b:"), "{err}");
}

#[test]
fn the_readme_metrics_snippet_works_as_an_include_file() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    let start = readme.find("<Location /metrics>").unwrap();
    let end = start + readme[start..].find("</Location>").unwrap() + "</Location>".len();
    let scratch = Scratch::new("readme-metrics");
    let script = scratch.write("app/app.wsgi", PID_APP);
    let include = scratch.write("metrics.conf", &readme[start..end]);
    let mut server = Server::start(
        &scratch,
        &[
            script.to_str().unwrap(),
            "--include-file",
            include.to_str().unwrap(),
        ],
    );
    let (status, body) = server.get("/metrics");
    assert_eq!(status, 200, "{body}\n{}", server.error_log());
    assert!(
        body.contains("# TYPE mod_wsgi_requests_total counter"),
        "{body}"
    );
    server.stop();
}
