//! mod_wsgi-express's start-server options beyond the basics, against a real apache2:
//! --server-status, --compress-responses, --rotate-logs, --trust-proxy-header,
//! --locale, --service-script, options for features this module lacks, and optparse
//! parsing (unique abbreviations, the last of a repeated option wins).

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

#[test]
fn server_status_and_compressed_responses() {
    let scratch = Scratch::new("status");
    let text = "compress me ".repeat(200);
    let script = scratch.write("app/app.wsgi", &echo_app(&format!("{text:?}")));
    let mut server = Server::start(
        &scratch,
        &[
            script.to_str().unwrap(),
            "--server-status",
            "--compress-responses",
        ],
        None,
    );
    let status = server.request("GET /server-status?auto HTTP/1.0\r\nHost: 127.0.0.1");
    assert_eq!(status_of(&status), 200, "{status}\n{}", server.logs());
    assert!(
        body_of(&status).contains("ServerUptimeSeconds:"),
        "{status}"
    );
    assert!(
        body_of(&status).contains("Total Accesses:"),
        "ExtendedStatus: {status}"
    );

    let gzip = server.request("GET / HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept-Encoding: gzip");
    assert_eq!(status_of(&gzip), 200, "{gzip}");
    assert!(gzip.contains("\r\nContent-Encoding: gzip\r\n"), "{gzip}");
    assert!(
        gzip.len() < text.len() / 2,
        "not compressed: {} bytes",
        gzip.len()
    );
    let plain = server.request("GET / HTTP/1.0\r\nHost: 127.0.0.1");
    assert_eq!(body_of(&plain), text);
    server.stop();
}

#[test]
fn rotate_logs_writes_dated_files_through_rotatelogs() {
    let scratch = Scratch::new("rotate");
    let script = scratch.write("app/app.wsgi", &echo_app("'logged'"));
    let mut server = Server::start(
        &scratch,
        &[
            script.to_str().unwrap(),
            "--rotate-logs",
            "--max-log-size",
            "1",
            "--access-log",
            "--error-log-name",
            "errors",
            "--access-log-name",
            "hits",
        ],
        None,
    );
    let answer = server.request("GET /rotated HTTP/1.0\r\nHost: 127.0.0.1");
    assert_eq!(body_of(&answer), "logged", "{answer}");
    let conf = std::fs::read_to_string(server.root.join("httpd.conf")).unwrap();
    assert!(
        conf.contains("ErrorLog \"|/usr/bin/rotatelogs ")
            && conf.contains("/errors.%Y-%m-%d-%H_%M_%S 1M\""),
        "{conf}"
    );
    let root = server.root.clone();
    let dated = |prefix: &str| -> Vec<String> {
        std::fs::read_dir(&root)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(prefix))
            .collect()
    };
    wait_for(
        "a dated access log with the request",
        Duration::from_secs(10),
        || {
            dated("hits.").iter().any(|n| {
                std::fs::read_to_string(root.join(n)).is_ok_and(|t| t.contains("GET /rotated"))
            })
        },
    );
    let errors = dated("errors.");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].len() == "errors.2026-01-01-00_00_00".len(),
        "{errors:?}"
    );
    assert!(!root.join("errors").exists() && !root.join("error_log").exists());
    server.stop();
}

#[test]
fn trust_proxy_header_believes_the_proxy_and_trust_proxy_limits_who() {
    let scratch = Scratch::new("proxy");
    let script = scratch.write(
        "app/app.wsgi",
        &echo_app("environ['REMOTE_ADDR'] + ' ' + environ['wsgi.url_scheme']"),
    );
    let forwarded = "GET / HTTP/1.0\r\nHost: 127.0.0.1\r\nX-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https";
    let mut server = Server::start(
        &scratch,
        &[
            script.to_str().unwrap(),
            "--trust-proxy-header",
            "X-Forwarded-For",
            "--trust-proxy-header",
            "X-Forwarded-Proto",
        ],
        None,
    );
    let answer = server.request(forwarded);
    assert_eq!(
        body_of(&answer),
        "203.0.113.7 https",
        "{answer}\n{}",
        server.logs()
    );
    server.stop();

    let scratch = Scratch::new("proxy-untrusted");
    let script = scratch.write("app/app.wsgi", &echo_app("environ['REMOTE_ADDR']"));
    let mut server = Server::start(
        &scratch,
        &[
            script.to_str().unwrap(),
            "--trust-proxy-header",
            "X-Forwarded-For",
            "--trust-proxy",
            "10.9.9.0/24",
        ],
        None,
    );
    let answer = server.request(forwarded);
    assert_eq!(body_of(&answer), "127.0.0.1", "{answer}");
    server.stop();
}

#[test]
fn locale_option_sets_the_locale_of_the_daemons() {
    let scratch = Scratch::new("locale");
    let script = scratch.write(
        "app/app.wsgi",
        &echo_app("os.environ.get('LANG') + ' ' + locale.setlocale(locale.LC_CTYPE)"),
    );
    let mut server = Server::start(
        &scratch,
        &[script.to_str().unwrap(), "--locale", "C.utf8"],
        None,
    );
    let answer = server.request("GET / HTTP/1.0\r\nHost: 127.0.0.1");
    assert_eq!(
        body_of(&answer),
        "C.utf8 C.utf8",
        "{answer}\n{}",
        server.logs()
    );
    server.stop();
    let out = run(&["setup-server", "--locale", "en US"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a locale name"));
}

#[test]
fn service_script_runs_in_a_daemon_of_its_own() {
    let scratch = Scratch::new("service");
    let out_dir = scratch.0.join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    // The service runs as www-data.
    std::fs::set_permissions(&out_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let marker = out_dir.join("started");
    let service = scratch.write(
        "app/service.py",
        &format!(
            "import os, mod_wsgi\nwith open({:?}, 'w') as f:\n    f.write(mod_wsgi.process_group)\n",
            marker.to_str().unwrap()
        ),
    );
    let script = scratch.write("app/app.wsgi", &echo_app("'app'"));
    let mut server = Server::start(
        &scratch,
        &[
            script.to_str().unwrap(),
            "--service-script",
            "writer",
            service.to_str().unwrap(),
        ],
        None,
    );
    wait_for("the service's file", Duration::from_secs(15), || {
        marker.exists()
    });
    wait_for("the service's file content", Duration::from_secs(5), || {
        std::fs::read_to_string(&marker).is_ok_and(|t| t == "service:writer")
    });
    let answer = server.request("GET / HTTP/1.0\r\nHost: 127.0.0.1");
    assert_eq!(body_of(&answer), "app", "{answer}");
    server.stop();
}

#[test]
fn auth_scripts_protect_the_site_and_add_handler_serves_a_file_type() {
    let scratch = Scratch::new("auth");
    let script = scratch.write("app/app.wsgi", &echo_app("environ.get('REMOTE_USER', '-')"));
    let auth = scratch.write(
        "app/auth.py",
        "def check_password(environ, user, password):\n    return password == 'pw' if user in ('ann', 'bob') else None\n\
         def groups_for_user(environ, user):\n    return ['staff'] if user == 'ann' else []\n\
         def allow_access(environ, host):\n    return not environ['PATH_INFO'].startswith('/private')\n",
    );
    let handler = scratch.write(
        "app/page.py",
        "def handle_request(environ, start_response):\n    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [('page ' + environ['SCRIPT_NAME']).encode()]\n",
    );
    let docs = scratch.path("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(format!("{docs}/hello.page"), "not served raw").unwrap();
    let mut server = Server::start(
        &scratch,
        &[
            script.to_str().unwrap(),
            "--auth-user-script",
            auth.to_str().unwrap(),
            "--auth-group-script",
            auth.to_str().unwrap(),
            "--auth-group",
            "staff",
            "--host-access-script",
            auth.to_str().unwrap(),
            "--document-root",
            &docs,
            "--url-alias",
            "/docs",
            &docs,
            "--add-handler",
            ".page",
            handler.to_str().unwrap(),
        ],
        None,
    );
    let get = |path: &str, credentials: &str| {
        let auth = if credentials.is_empty() {
            String::new()
        } else {
            format!("\r\nAuthorization: Basic {credentials}")
        };
        server.request(&format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1{auth}"))
    };
    // ann:pw, bob:pw, ann:no in base64.
    let (ann, bob, wrong) = ("YW5uOnB3", "Ym9iOnB3", "YW5uOm5v");
    assert_eq!(status_of(&get("/", "")), 401, "{}", server.logs());
    assert!(get("/", "").contains("WWW-Authenticate: Basic realm="));
    let r = get("/", ann);
    assert_eq!(
        (status_of(&r), body_of(&r)),
        (200, "ann"),
        "{}",
        server.logs()
    );
    assert_eq!(status_of(&get("/", bob)), 401, "bob is not in staff");
    assert_eq!(status_of(&get("/", wrong)), 401, "wrong password");
    assert_eq!(
        status_of(&get("/private", ann)),
        403,
        "the access script refuses"
    );
    let r = get("/docs/hello.page", ann);
    assert_eq!(body_of(&r), "page /docs/hello.page", "{}", server.logs());
    server.stop();
}

/// --enable-telemetry runs mod_wsgi 6.1's ingester (mod-wsgi-telemetry, from the venv
/// `scripts/install-deps.sh --test` makes) as a service, and the daemon reports to it.
#[test]
fn enable_telemetry_runs_the_ingester_as_a_service_and_the_daemon_reports_to_it() {
    let venv = std::env::var("MOD_WSGI_TELEMETRY_VENV")
        .unwrap_or_else(|_| "/opt/mod_wsgi-telemetry-venv".into());
    assert!(
        std::path::Path::new(&venv)
            .join("bin/mod_wsgi-telemetry")
            .exists(),
        "{venv}: run scripts/install-deps.sh --test"
    );
    let scratch = Scratch::new("telemetry");
    let script = scratch.write("app/app.wsgi", &echo_app("'app'"));
    let ui = free_port().to_string();
    let mut server = Server::start(
        &scratch,
        &[
            script.to_str().unwrap(),
            "--enable-telemetry",
            "--python-home",
            &venv,
            "--telemetry-ui-port",
            &ui,
            "--telemetry-interval",
            "0.5",
        ],
        None,
    );
    let group = format!("127.0.0.1:{}", server.port);
    let ui: u16 = ui.parse().unwrap();
    wait_for("the ingester's UI", Duration::from_secs(15), || {
        std::net::TcpStream::connect(("127.0.0.1", ui)).is_ok()
    });
    let answer = server.request("GET / HTTP/1.0\r\nHost: 127.0.0.1");
    assert_eq!(body_of(&answer), "app", "{answer}");
    let reported = |state: &str| {
        state.contains(&format!("\"process_group\": \"{group}\""))
            && state.contains("\"status_2xx_total\": 1")
    };
    let mut state = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !reported(&state) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        state = exchange(ui, "GET /api/state HTTP/1.0\r\nHost: 127.0.0.1");
    }
    assert!(reported(&state), "{state}\n{}", server.logs());
    let conf = std::fs::read_to_string(scratch.0.join("server-root/httpd.conf")).unwrap();
    assert!(
        conf.contains("WSGIDaemonProcess \"service:telemetry\""),
        "{conf}"
    );
    assert!(conf.contains("telemetry.sock\" interval=0.5"), "{conf}");
    server.stop();
}

#[test]
fn options_for_missing_features_are_refused_by_name() {
    let scratch = Scratch::new("missing");
    let root = scratch.path("root");
    for (option, names) in [
        (
            &["--auth-group-script", "/x.py"][..],
            "add --auth-user-script",
        ),
        (
            &["--auth-user-script", "/x.py", "--auth-type", "NTLM"][..],
            "Basic or Digest",
        ),
        (
            &["--add-handler", "php", "/x.wsgi"][..],
            "starts with a dot",
        ),
        // Debian's Python has no mod_wsgi-telemetry.
        (
            &["--enable-telemetry", "--python-home", "/usr"][..],
            "pip install mod_wsgi-telemetry",
        ),
        (
            &["--slow-requests", "5"][..],
            "requires --telemetry-service",
        ),
        (
            &["--application-type", "paste"][..],
            "name the deployment file",
        ),
    ] {
        let mut args = vec!["setup-server", "--server-root", &root];
        args.extend_from_slice(option);
        let out = run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{option:?} accepted: {err}");
        assert!(err.contains(names), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
    let out = run(&[
        "setup-server",
        "--server-root",
        &root,
        "--telemetry-service",
        "unix:/run/t.sock",
        "--slow-requests",
        "5",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("warning"), "{err}");
    let conf = std::fs::read_to_string(std::path::Path::new(&root).join("httpd.conf")).unwrap();
    assert!(conf.contains("WSGISlowRequests 5"), "{conf}");
}

#[test]
fn new_options_abbreviate_and_the_last_repeat_wins() {
    let scratch = Scratch::new("optparse");
    let root = scratch.path("root");
    let out = run(&[
        "setup-server",
        "--server-root",
        &root,
        "--max-log-s",
        "3",
        "--rotate-l",
        "--max-log-size",
        "7",
        "--server-alias",
        "a.test",
        "--server-al",
        "b.test",
        "--server-name",
        "site.test",
        "--trust-proxy-h",
        "X-Forwarded-For",
        "--ssl-port",
        "9443",
        "--ssl-certificate-file",
        "/nonexistent.crt",
        "--ssl-certificate-k",
        "/nonexistent.key",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    // Every option was parsed; the certificate check is the first to refuse.
    assert!(
        err.contains("--ssl-certificate-file /nonexistent.crt: no such file"),
        "{err}"
    );
    let out = run(&[
        "setup-server",
        "--server-root",
        &root,
        "--max-log-s",
        "3",
        "--rotate-l",
        "--max-log-size",
        "7",
        "--server-alias",
        "a.test",
        "--server-al",
        "b.test",
        "--server-name",
        "site.test",
        "--trust-proxy-h",
        "X-Forwarded-For",
        "--processe",
        "3",
        "--max-cl",
        "40",
        "--max-clients",
        "60",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let conf = std::fs::read_to_string(scratch.0.join("root/httpd.conf")).unwrap();
    assert!(conf.contains(".%Y-%m-%d-%H_%M_%S 7M\""), "{conf}");
    assert!(conf.contains("ServerAlias a.test b.test\n"), "{conf}");
    assert!(
        conf.contains("WSGITrustedProxyHeaders X-Forwarded-For\n"),
        "{conf}"
    );
    assert!(conf.contains("MaxRequestWorkers 60\n"), "{conf}");

    for (given, candidates) in [
        (
            "--ssl-c",
            &[
                "--ssl-certificate-file",
                "--ssl-ca-certificate-file",
                "--ssl-certificate-chain-file",
            ][..],
        ),
        ("--https", &["--https-port", "--https-only"][..]),
    ] {
        let out = run(&["start-server", given, "x"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{given}: {err}");
        for c in candidates {
            assert!(err.contains(c), "{given}: {c} not named in {err}");
        }
    }
}

#[test]
fn envvars_passenv_pid_file_startup_log_process_name_and_proxying() {
    let scratch = Scratch::new("envvars");
    let files = scratch.write("static/a.txt", "static file\n");
    let backend_root = scratch.path("backend-root");
    let backend_port = free_port();
    let backend_port_text = backend_port.to_string();
    let mut backend = express(&[
        "start-server",
        "--application-type",
        "static",
        files.parent().unwrap().to_str().unwrap(),
        "--host",
        "127.0.0.1",
        "--port",
        &backend_port_text,
        "--server-root",
        &backend_root,
        "--directory-listing",
    ])
    .stdout(std::process::Stdio::null())
    .spawn()
    .unwrap();

    let script = scratch.write("app/app.wsgi", &echo_app("environ.get('FROM_ENVVARS')"));
    let envvars = scratch.write("envvars.sh", "FROM_ENVVARS=sourced\nexport FROM_ENVVARS\n");
    let pid_file = scratch.path("site.pid");
    let mut server = Server::start(
        &scratch,
        &[
            script.to_str().unwrap(),
            "--envvars-script",
            envvars.to_str().unwrap(),
            "--passenv",
            "FROM_ENVVARS",
            "--pid-file",
            &pid_file,
            "--startup-log",
            "--process-name",
            "site-under-test",
            "--proxy-mount-point",
            "/files",
            &format!("http://127.0.0.1:{backend_port}/"),
        ],
        None,
    );
    let answer = server.request("GET / HTTP/1.0\r\nHost: 127.0.0.1");
    assert_eq!(body_of(&answer), "sourced", "{answer}\n{}", server.logs());
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", pid.trim())).unwrap();
    assert!(
        cmdline.starts_with(b"site-under-test\0"),
        "{}",
        String::from_utf8_lossy(&cmdline)
    );
    assert!(server.root.join("startup_log").exists());
    assert!(!server.root.join("httpd.pid").exists());

    wait_for("the static backend", Duration::from_secs(15), || {
        std::net::TcpStream::connect(("127.0.0.1", backend_port)).is_ok()
    });
    let proxied = server.request("GET /files/a.txt HTTP/1.0\r\nHost: 127.0.0.1");
    assert_eq!(
        body_of(&proxied),
        "static file\n",
        "{proxied}\n{}",
        server.logs()
    );
    let listing = exchange(backend_port, "GET / HTTP/1.0\r\nHost: 127.0.0.1");
    assert!(listing.contains("a.txt"), "{listing}");
    server.stop();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &backend.id().to_string()])
        .status();
    let _ = backend.wait();
}

#[test]
fn debug_mode_runs_pdb_on_the_terminal_and_writes_profile_and_recordings() {
    use std::io::{Read, Write};
    let scratch = Scratch::new("debug");
    let script = scratch.write(
        "app/app.wsgi",
        "def application(environ, start_response):\n    if environ['PATH_INFO'] == '/boom':\n        secret = 6 * 7\n        raise ValueError('boom')\n    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [b'debugged']\n",
    );
    let port = free_port();
    let port_text = port.to_string();
    let root = scratch.0.join("server-root");
    let mut child = express(&[
        "start-server",
        script.to_str().unwrap(),
        "--host",
        "127.0.0.1",
        "--port",
        &port_text,
        "--server-root",
        root.to_str().unwrap(),
        "--enable-debugger",
        "--enable-profiler",
        "--enable-recorder",
    ])
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    // What a developer types at the post-mortem prompt.
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"p secret * 10\nc\n")
        .unwrap();
    wait_for("Apache listening", Duration::from_secs(15), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let ok = exchange(port, "GET / HTTP/1.0\r\nHost: 127.0.0.1");
    assert_eq!(body_of(&ok), "debugged", "{ok}");
    let boom = exchange(port, "GET /boom HTTP/1.0\r\nHost: 127.0.0.1");
    assert_eq!(status_of(&boom), 500, "{boom}");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let mut terminal = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut terminal)
        .unwrap();
    child.wait().unwrap();
    assert!(terminal.contains("debug mode:"), "{terminal}");
    assert!(
        terminal.contains("-> raise ValueError('boom')"),
        "{terminal}"
    );
    assert!(terminal.contains("(Pdb) 420\n"), "{terminal}");

    let names = |dir: &str| -> Vec<String> {
        std::fs::read_dir(root.join(dir))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let profiles = names("profiler");
    assert!(
        profiles.len() == 1 && profiles[0].ends_with(".pstats"),
        "{profiles:?}"
    );
    let recorded = names("recorder");
    assert!(
        recorded.iter().any(|n| n.ends_with("-1.response-body"))
            && recorded.iter().any(|n| n.ends_with("-2.exception")),
        "{recorded:?}"
    );
}

#[test]
fn document_root_files_are_served_under_the_mount_point() {
    let scratch = Scratch::new("docroot");
    let script = scratch.write("app/app.wsgi", &echo_app("'app ' + environ['PATH_INFO']"));
    let docs = scratch.path("docs");
    std::fs::create_dir_all(format!("{docs}/css")).unwrap();
    std::fs::create_dir_all(format!("{docs}/guide")).unwrap();
    std::fs::write(format!("{docs}/robots.txt"), "User-agent: *").unwrap();
    std::fs::write(format!("{docs}/css/site.css"), "body {}").unwrap();
    std::fs::write(format!("{docs}/guide/index.html"), "the guide").unwrap();
    let mut server = Server::start(
        &scratch,
        &[
            script.to_str().unwrap(),
            "--document-root",
            &docs,
            "--directory-index",
            "index.html",
            // The site is then served from a <VirtualHost>, which must see the rules.
            "--server-name",
            "127.0.0.1",
        ],
        None,
    );
    let body = |path: &str| {
        body_of(&server.request(&format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1"))).to_owned()
    };
    assert_eq!(body("/robots.txt"), "User-agent: *", "{}", server.logs());
    assert_eq!(body("/css/site.css"), "body {}");
    assert_eq!(body("/guide/"), "the guide", "a directory with its index");
    assert_eq!(body("/"), "app /", "the root goes to the application");
    assert_eq!(body("/css/missing.css"), "app /css/missing.css");
    assert_eq!(body("/users/42"), "app /users/42");
    for escape in [
        "/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/css/..%2f..%2f..%2fetc/passwd",
    ] {
        assert!(
            !body(escape).contains("root:"),
            "{escape} left the document root"
        );
    }
    server.stop();
}

#[test]
fn a_paste_deployment_file_is_served() {
    let scratch = Scratch::new("paste");
    scratch.write(
        "app/shop.py",
        "def make_app(global_conf, greeting='hi'):\n    def app(environ, start_response):\n        start_response('200 OK', [('Content-Type', 'text/plain')])\n        return [greeting.encode()]\n    return app\n",
    );
    let ini = scratch.write(
        "app/site.ini",
        "[app:main]\nuse = call:shop:make_app\ngreeting = hello from paste\n",
    );
    let mut server = Server::start(
        &scratch,
        &["--application-type", "paste", ini.to_str().unwrap()],
        None,
    );
    let answer = server.request("GET / HTTP/1.0\r\nHost: 127.0.0.1");
    assert_eq!(
        body_of(&answer),
        "hello from paste",
        "{answer}\n{}",
        server.logs()
    );
    server.stop();
}
