//! Application groups: %{GLOBAL} is the main interpreter, %{RESOURCE} (default) gives
//! each mount its own sub-interpreter, named/%{SERVER}/%{HOST}/%{ENV:} groups share one.

mod common;
use common::{Apache, Mpm};

const APP: &str = r#"
import os, sys, threading, mod_wsgi
try:
    import _interpreters as interpreters  # Python 3.13
except ImportError:
    import _xxsubinterpreters as interpreters
counter = 0
local = threading.local()
def application(environ, start_response):
    global counter
    counter += 1
    local.hits = getattr(local, "hits", 0) + 1
    ident = lambda i: i[0] if isinstance(i, tuple) else i  # 3.13: (id, whence)
    is_main = ident(interpreters.get_current()) == ident(interpreters.get_main())
    body = "%s\t%s\t%s\t%d\t%d\t%d" % (mod_wsgi.application_group, environ["mod_wsgi.application_group"],
                               "main" if is_main else "sub", counter, os.getpid(), local.hits)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]
"#;

fn fields(apache: &Apache, path: &str) -> Vec<String> {
    let r = apache.get(path);
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    r.text().split("\t").map(str::to_owned).collect()
}

#[test]
fn group_names_and_interpreter_identity() {
    let mods = common::apache_modules_dir().display().to_string();
    let conf = format!(
        "LoadModule env_module {mods}/mod_env.so\nServerLimit 1\nMaxRequestWorkers 8\n\
         WSGIScriptAlias /global {{root}}/app/app.wsgi application-group=%{{GLOBAL}}\n\
         WSGIScriptAlias /res1 {{root}}/app/app.wsgi\n\
         WSGIScriptAlias /res2 {{root}}/app/app.wsgi\n\
         WSGIScriptAlias /named1 {{root}}/app/app.wsgi application-group=shared\n\
         WSGIScriptAlias /named2 {{root}}/app/app.wsgi application-group=shared\n\
         WSGIScriptAlias /server {{root}}/app/app.wsgi application-group=%{{SERVER}}\n\
         WSGIScriptAlias /host {{root}}/app/app.wsgi application-group=%{{HOST}}\n\
         WSGIScriptAlias /env {{root}}/app/app.wsgi\n\
         <Location /env>\n  SetEnv APP_GROUP from-env\n  WSGIApplicationGroup %{{ENV:APP_GROUP}}\n</Location>\n\
         WSGIScriptAlias /dirglobal {{root}}/app/app.wsgi\n<Location /dirglobal>\n  WSGIApplicationGroup %{{GLOBAL}}\n</Location>\n"
    );
    let mut apache = Apache::start(Mpm::Event, &conf, &[("app/app.wsgi", APP)]);
    let port = apache.port;

    let g = fields(&apache, "/global");
    assert_eq!(
        (&g[0][..], &g[1][..], &g[2][..]),
        ("", "", "main"),
        "%{{GLOBAL}} runs in the main interpreter"
    );
    let g2 = fields(&apache, "/dirglobal");
    assert_eq!(g2[2], "main");
    assert_eq!(
        g2[3], "2",
        "one script file is one module per interpreter, whatever the mount"
    );

    let r1 = fields(&apache, "/res1");
    assert_eq!(r1[1], format!("127.0.0.1:{port}|/res1"));
    assert_eq!(r1[2], "sub");
    let r2 = fields(&apache, "/res2");
    assert_eq!(r2[1], format!("127.0.0.1:{port}|/res2"));
    assert_eq!(
        (r1[3].as_str(), r2[3].as_str()),
        ("1", "1"),
        "%{{RESOURCE}} isolates each mount"
    );

    let n1 = fields(&apache, "/named1");
    let n2 = fields(&apache, "/named2");
    assert_eq!((n1[0].as_str(), n2[0].as_str()), ("shared", "shared"));
    assert_eq!(
        (n1[3].as_str(), n2[3].as_str()),
        ("1", "2"),
        "a named group is one interpreter"
    );

    assert_eq!(fields(&apache, "/server")[1], format!("127.0.0.1:{port}"));
    assert_eq!(fields(&apache, "/host")[1], format!("127.0.0.1:{port}"));
    assert_eq!(fields(&apache, "/env")[1], "from-env");
    apache.stop();
}

#[test]
fn interpreters_survive_many_threaded_requests() {
    let mut apache = Apache::start(
        Mpm::Worker,
        "WSGIScriptAlias /a {root}/app/app.wsgi\nWSGIScriptAlias /b {root}/app/app.wsgi application-group=%{GLOBAL}\n",
        &[("app/app.wsgi", APP)],
    );
    let port = apache.port;
    let workers: Vec<_> = (0..6)
        .map(|i| {
            std::thread::spawn(move || {
                for _ in 0..25 {
                    let path = if i % 2 == 0 { "/a" } else { "/b" };
                    let r = common::get(port, path);
                    assert_eq!(r.status, 200, "{}", r.text());
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("client thread");
    }
    apache.stop();
}

#[test]
fn thread_state_persists_between_requests() {
    // Under prefork each process has one request thread, so per process the
    // threading.local counter must keep growing: the sub-interpreter thread state is
    // created once and reused, not rebuilt per request.
    let mut apache = Apache::start(
        Mpm::Prefork,
        "WSGIScriptAlias /a {root}/app/app.wsgi\n",
        &[("app/app.wsgi", APP)],
    );
    let mut per_pid: std::collections::HashMap<String, Vec<u32>> = Default::default();
    for _ in 0..12 {
        let f = fields(&apache, "/a");
        assert_eq!(f[2], "sub");
        per_pid
            .entry(f[4].clone())
            .or_default()
            .push(f[5].parse().unwrap());
    }
    for (pid, hits) in per_pid {
        let expected: Vec<u32> = (1..=hits.len() as u32).collect();
        assert_eq!(hits, expected, "threading.local in process {pid}");
    }
    apache.stop();
}

/// Appends "pid group" to loads.txt beside it each time an interpreter imports it, and
/// answers its group, how many interpreters the process has and its pid.
const COUNTING_APP: &str = r#"
import os, mod_wsgi
try:
    import _interpreters as interpreters  # Python 3.13
except ImportError:
    import _xxsubinterpreters as interpreters
with open(os.path.join(os.path.dirname(__file__), "loads.txt"), "a") as f:
    f.write("%d %s\n" % (os.getpid(), mod_wsgi.application_group))
def application(environ, start_response):
    body = "%s\t%d\t%d" % (environ["mod_wsgi.application_group"], len(interpreters.list_all()),
                           os.getpid())
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]
"#;

/// GETs `path` with `Host: host`; returns (group, interpreters in the process, pid).
fn group_seen_with_host(apache: &Apache, path: &str, host: &str) -> (String, usize, String) {
    let mut conn = common::http::Connection::open(apache.port);
    conn.send(
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    let r = conn.read_response("GET");
    assert_eq!(r.status, 200, "Host: {host}: {}", r.text());
    let f: Vec<String> = r.text().split('\t').map(str::to_owned).collect();
    (f[0].clone(), f[1].parse().unwrap(), f[2].clone())
}

/// `%{RESOURCE}` (the default) names the interpreter after the virtual host's ServerName,
/// not the client's Host header, as mod_wsgi does: host names a client makes up, and
/// ports the server does not listen on, create no interpreter.
#[test]
fn invented_host_headers_create_no_interpreters() {
    let conf = "ServerLimit 1\nMaxRequestWorkers 8\n\
                WSGIScriptAlias /env {root}/app/count.wsgi\n\
                WSGIScriptAlias /host-group {root}/app/count.wsgi application-group=%{HOST}\n";
    let mut apache = Apache::start(Mpm::Event, conf, &[("app/count.wsgi", COUNTING_APP)]);
    let port = apache.port;

    // Without a port in Host, Apache reports the default port (ServerName has none), so
    // mod_wsgi's name has no port either.
    let (group, interpreters, pid) = group_seen_with_host(&apache, "/env", "example.com");
    assert_eq!(group, "127.0.0.1|/env");
    let mut hosts: Vec<String> = vec![
        "[::1]:8080".into(),
        "[::1]".into(),
        "EXAMPLE.org".into(),
        "example.com:8081".into(),
        "localhost:1".into(),
        "127.0.0.1:65535".into(),
    ];
    hosts.extend((0..194).map(|i| match i % 3 {
        0 => format!("h{i}.example.com"),
        1 => format!("h{i}.example.net:{}", 1000 + i),
        _ => format!("10.0.{}.{}", i / 250, i % 250),
    }));
    assert_eq!(hosts.len(), 200);
    for host in &hosts {
        let seen = group_seen_with_host(&apache, "/env", host);
        assert_eq!(
            seen,
            (group.clone(), interpreters, pid.clone()),
            "Host: {host} must reach the same interpreter, and create none"
        );
    }

    // Host with the port the client connected to: mod_wsgi's name carries it.
    let with_port = format!("127.0.0.1:{port}|/env");
    let (g, n, p) = group_seen_with_host(&apache, "/env", &format!("127.0.0.1:{port}"));
    assert_eq!(
        (g.as_str(), n, &p),
        (with_port.as_str(), interpreters + 1, &pid)
    );
    let (g, n, _) = group_seen_with_host(&apache, "/env", &format!("other.example:{port}"));
    assert_eq!((g.as_str(), n), (with_port.as_str(), interpreters + 1));

    // %{HOST} is the request's host name, by definition (mod_wsgi's too).
    let (g, _, _) = group_seen_with_host(&apache, "/host-group", "Alias.Example");
    assert_eq!(g, "alias.example");

    let loads = std::fs::read_to_string(apache.scratch.dir.join("app/loads.txt")).unwrap();
    let expected = format!("{pid} 127.0.0.1|/env\n{pid} {with_port}\n{pid} alias.example\n");
    assert_eq!(loads, expected, "one import per interpreter");
    apache.stop();
}

/// C code that takes the GIL through the GILState API (as pybind11 and Cython do) while
/// its thread already holds it works in the main interpreter: in a prefork child, whose
/// one thread also started Python, and in a daemon's preload and requests.
#[test]
fn gilstate_ensure_from_c_code_works_in_the_main_interpreter() {
    let app = r#"
import ctypes
def ensure():
    api = ctypes.pythonapi
    state = api.PyGILState_Ensure()
    api.PyGILState_Release(state)
ensure()
def application(environ, start_response):
    ensure()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ensured"]
"#;
    let conf = "WSGIScriptAlias /e {root}/app/app.wsgi application-group=%{GLOBAL}\n\
                WSGIDaemonProcess g processes=1 threads=2\n\
                WSGIImportScript {root}/app/app.wsgi process-group=g application-group=%{GLOBAL}\n\
                WSGIScriptAlias /d {root}/app/app.wsgi process-group=g application-group=%{GLOBAL}\n";
    let mut apache = Apache::start(Mpm::Prefork, conf, &[("app/app.wsgi", app)]);
    for path in ["/e", "/e", "/d", "/d"] {
        assert_eq!(apache.get_ok(path), "ensured");
    }
    apache.stop();
}
