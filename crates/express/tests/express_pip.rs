//! The project as a Python package: a fresh `python3 -m venv`, `pip install` of the
//! repository (which builds the module against the venv's interpreter with
//! setuptools-rust), then `mod_wsgi-express start-server` serving a Flask app and
//! `manage.py runmodwsgi` serving the Django example, both from that venv. pip fetches
//! setuptools-rust, Flask and Django from its index (or PIP_FIND_LINKS). The build
//! reuses this test run's target directory and dev profile, so it takes seconds.

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `cmd`, killing it after `limit`; panics with its output on failure.
fn run_within(what: &str, mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("{what}: not done within {limit:?}: {out:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Makes every directory and file below `dir` readable by Apache's children.
fn open_up(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            open_up(&path);
        } else if meta.is_file() {
            let mode = meta.permissions().mode() | 0o444;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_name() == "__pycache__" {
            continue;
        }
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn wait_listening(port: u16, child: &mut std::process::Child, logs: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "exited ({status}) before serving:\n{}",
                std::fs::read_to_string(logs.join("error_log")).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "not listening after 20 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stop(mut child: std::process::Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("apache2 did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn pip_install_into_a_fresh_venv_serves_flask_and_django() {
    let scratch = Scratch::new("pip");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // target/PROFILE/wsgi-express: the target directory and profile this test run built
    // with, so the module's build is reused.
    let profile_dir = Path::new(EXE).parent().unwrap();
    let target_dir: PathBuf = profile_dir.parent().unwrap().to_owned();
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_owned(),
        Some(other) => other.to_owned(),
    };
    let venv = scratch.0.join("venv");
    let mut make = Command::new("/usr/bin/python3");
    make.args(["-m", "venv"]).arg(&venv);
    run_within(
        "python3 -m venv (Debian: python3-venv)",
        make,
        Duration::from_secs(60),
    );

    let started = Instant::now();
    let mut pip = Command::new(venv.join("bin/pip"));
    pip.args(["install", "--disable-pip-version-check", "-q"])
        .arg(&repo)
        .args(["flask", "django"])
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("SETUPTOOLS_RUST_CARGO_PROFILE", &profile);
    run_within("pip install of the project", pip, Duration::from_secs(170));
    eprintln!("pip install took {:?}", started.elapsed());
    open_up(&scratch.0);

    let location = run_within(
        "mod_wsgi_rs.module_location()",
        {
            let mut c = Command::new(venv.join("bin/python"));
            c.args([
                "-c",
                "import mod_wsgi_rs; print(mod_wsgi_rs.module_location())",
            ]);
            c
        },
        Duration::from_secs(30),
    );
    let location = String::from_utf8_lossy(&location.stdout).trim().to_owned();
    assert!(
        location.starts_with(venv.to_str().unwrap()) && location.ends_with(".so"),
        "{location}"
    );

    let app = scratch.write(
        "flaskapp/app.py",
        "import sys\nfrom flask import Flask\napp = Flask(__name__)\n\n@app.route('/')\ndef index():\n    return 'flask from ' + sys.prefix\n",
    );
    let port = free_port();
    let root = scratch.0.join("flask-root");
    let mut flask = Command::new(venv.join("bin/mod_wsgi-express"))
        .args(["start-server", "--application-type", "module", "app"])
        .args(["--callable-object", "app", "--host", "127.0.0.1"])
        .args(["--port", &port.to_string(), "--server-root"])
        .arg(&root)
        .current_dir(app.parent().unwrap())
        .env_remove("VIRTUAL_ENV")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    wait_listening(port, &mut flask, &root);
    let answer = exchange(port, "GET / HTTP/1.0\r\nHost: 127.0.0.1");
    stop(flask);
    assert_eq!(status_of(&answer), 200, "{answer}");
    assert_eq!(
        body_of(&answer),
        format!("flask from {}", venv.display()),
        "the venv is the Python home"
    );

    let project = scratch.0.join("django_project");
    copy_tree(&repo.join("examples/django_project"), &project);
    let settings = project.join("mysite/settings.py");
    let mut text = std::fs::read_to_string(&settings).unwrap();
    text.push_str("\nINSTALLED_APPS = [*INSTALLED_APPS, 'mod_wsgi_rs.express']\n");
    std::fs::write(&settings, text).unwrap();
    open_up(&scratch.0);
    let port = free_port();
    let root = scratch.0.join("django-root");
    let mut django = Command::new(venv.join("bin/python"))
        .args(["manage.py", "runmodwsgi", "--host", "127.0.0.1"])
        .args(["--port", &port.to_string(), "--server-root"])
        .arg(&root)
        .current_dir(&project)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    wait_listening(port, &mut django, &root);
    let answer = exchange(port, "GET / HTTP/1.0\r\nHost: 127.0.0.1");
    stop(django);
    assert_eq!(status_of(&answer), 200, "{answer}");
    assert_eq!(body_of(&answer), "Hello from Django under mod_wsgi_rs\n");
}
