//! Daemon mode: requests run in forked daemon processes (not Apache's children), as the
//! configured user, with the configured processes and threads, routed by WSGIProcessGroup.

mod common;
use common::{Apache, Mpm};
use std::collections::HashSet;
use std::time::{Duration, Instant};

const APP: &str = r#"
import os, time, threading, mod_wsgi
def application(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        time.sleep(1.0)
    body = "%d %d %s %s %s %s %s %s" % (
        os.getpid(), os.getuid(), mod_wsgi.process_group, environ["mod_wsgi.process_group"],
        environ["wsgi.multithread"], environ["wsgi.multiprocess"], environ["wsgi.run_once"],
        threading.get_ident())
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]
"#;

fn words(text: &str) -> Vec<String> {
    text.split(' ').map(str::to_owned).collect()
}

/// Processes of this test server (children of its parent) whose name is the group's title.
fn daemon_pids(apache: &Apache, group: &str) -> HashSet<u32> {
    let mut pids = HashSet::new();
    for pid in children_of(parent_pid(apache)) {
        // display-name sets the thread name (15 bytes) and argv[0] (truncated to its
        // original length, as C mod_wsgi does).
        if let Ok(comm) = std::fs::read_to_string(format!("/proc/{pid}/comm")) {
            let title = format!("(wsgi:{group})");
            if comm.trim_end() == &title[..title.len().min(15)] {
                pids.insert(pid);
            }
        }
    }
    pids
}

fn runs_in_daemons(mpm: Mpm) {
    let conf = r#"
WSGIDaemonProcess basics-app processes=2 threads=4 display-name=%{GROUP}
WSGIDaemonProcess basics-admin threads=1 user=nobody
WSGIScriptAlias / {root}/app/app.wsgi
WSGIProcessGroup basics-app
<Location /admin>
  WSGIProcessGroup basics-admin
</Location>
"#;
    let mut apache = Apache::start(mpm, conf, &[("app/app.wsgi", APP)]);
    let r = apache.get("/hello");
    assert_eq!(r.status, 200, "{}", apache.error_log());
    let w = words(&r.text());
    let pid: u32 = w[0].parse().unwrap();
    let apache_children: HashSet<u32> = common_children(&apache);
    assert!(
        !apache_children.contains(&pid),
        "request ran in an Apache child {pid}"
    );
    assert_eq!(w[1], "33", "runs as www-data");
    assert_eq!(w[2], "basics-app");
    assert_eq!(w[3], "basics-app");
    assert_eq!(w[4], "True", "threads=4: multithread");
    assert_eq!(w[5], "True", "processes=2 given: multiprocess");
    assert_eq!(w[6], "False");

    // <Location /admin> routes to the second group, which runs as nobody.
    let admin = words(&apache.get("/admin/x").text());
    assert_eq!(admin[2], "basics-admin", "{admin:?}");
    assert_eq!(admin[1], "65534", "user=nobody");
    assert_eq!(admin[4], "False", "threads=1: not multithread");
    assert_eq!(admin[5], "False", "processes not given: not multiprocess");

    // 8 concurrent 1 s requests on 2 processes x 4 threads run in parallel on exactly
    // 2 PIDs.
    let started = Instant::now();
    let port = apache.port;
    let handles: Vec<_> = (0..8)
        .map(|_| std::thread::spawn(move || common::get(port, "/slow")))
        .collect();
    let mut pids = HashSet::new();
    for h in handles {
        let r = h.join().unwrap();
        assert_eq!(r.status, 200);
        pids.insert(words(&r.text())[0].clone());
    }
    let took = started.elapsed();
    assert_eq!(
        pids.len(),
        2,
        "8 slow requests spread over exactly 2 daemon processes: {pids:?}"
    );
    assert!(
        took < Duration::from_millis(3500),
        "8 x 1 s requests took {took:?}: not parallel"
    );
    assert_eq!(
        daemon_pids(&apache, "basics-app").len(),
        2,
        "display-name shows (wsgi:basics-app) twice"
    );
    let daemons = daemon_pids(&apache, "basics-app");
    apache.stop();
    std::thread::sleep(Duration::from_millis(200));
    let alive: Vec<_> = daemons
        .iter()
        .filter(|p| std::path::Path::new(&format!("/proc/{p}")).exists())
        .collect();
    assert!(
        alive.is_empty(),
        "daemon processes left after stop: {alive:?}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&apache.scratch.dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".sock"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "sockets left after stop: {leftovers:?}"
    );
}

fn parent_pid(apache: &Apache) -> u32 {
    std::fs::read_to_string(apache.scratch.dir.join("httpd.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn children_of(parent: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let ppid: u32 = stat
            .rsplit(") ")
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        if ppid == parent {
            out.push(pid);
        }
    }
    out
}

/// PIDs of Apache's own processes (parent and MPM children) of this test server.
fn common_children(apache: &Apache) -> HashSet<u32> {
    let parent = parent_pid(apache);
    let mut out = HashSet::from([parent]);
    for pid in children_of(parent) {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if !comm.starts_with("(wsgi:") {
            out.insert(pid);
        }
    }
    out
}

#[test]
fn daemons_under_event() {
    runs_in_daemons(Mpm::Event);
}

#[test]
fn daemons_under_prefork() {
    runs_in_daemons(Mpm::Prefork);
}

/// WSGIProcessGroup `%{SERVER}` (and `%{HOST}`) select the daemon group named after the
/// virtual host's ServerName (the request's host name), with the port when it is not
/// 80/443, as in mod_wsgi.
#[test]
fn process_group_can_be_named_after_the_server_or_host() {
    let conf = "WSGIDaemonProcess 127.0.0.1 threads=1\n\
                WSGIDaemonProcess app.example threads=1\n\
                WSGIScriptAlias /server {root}/app/app.wsgi process-group=%{SERVER}\n\
                WSGIScriptAlias /host {root}/app/app.wsgi process-group=%{HOST}\n";
    let mut apache = Apache::start(Mpm::Event, conf, &[("app/app.wsgi", APP)]);
    let group_for = |path: &str, host: &str| {
        let mut conn = common::http::Connection::open(apache.port);
        conn.send(
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        let r = conn.read_response("GET");
        (
            r.status,
            words(&r.text()).get(2).cloned().unwrap_or_default(),
        )
    };
    assert_eq!(
        group_for("/server", "app.example"),
        (200, "127.0.0.1".to_owned())
    );
    assert_eq!(
        group_for("/host", "app.example"),
        (200, "app.example".to_owned())
    );
    // With the port the client connected to, the name carries it: no such group here.
    let port = apache.port;
    assert_eq!(group_for("/server", &format!("127.0.0.1:{port}")).0, 500);
    apache.wait_for_log(&format!(
        "WSGI0150: no WSGI daemon process called '127.0.0.1:{port}'"
    ));
    apache.allow_log("WSGI0150");
    apache.stop();
}
