//! Daemon groups beside virtual hosts, as Debian lays a server out (a group in a
//! conf-enabled file next to the stock `000-default.conf` site): a group defined at server
//! level serves the main server and every virtual host; a group defined in a virtual host
//! serves that host only, and any other server is refused with a clear log line. Checked
//! under `-DFOREGROUND` and under `apache2 -k start`.

mod common;
use common::{Apache, Launch, Mpm, free_port, get};
use std::collections::HashSet;

const APP: &str = r#"
import os
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("%d %s" % (os.getpid(), environ["mod_wsgi.process_group"])).encode()]
"#;

/// (pid, process group) of a 200 answer; fails with the log otherwise.
fn served_by(apache: &Apache, port: u16, path: &str) -> (u32, String) {
    let r = get(port, path);
    assert_eq!(
        r.status,
        200,
        "port {port} {path}: {}\n{}",
        r.text(),
        apache.error_log()
    );
    let text = r.text();
    let (pid, group) = text.split_once(' ').expect("pid and group");
    (pid.parse().unwrap(), group.to_owned())
}

fn groups_beside_virtual_hosts(launch: Launch) {
    let (site_a, site_b, plain) = (free_port(), free_port(), free_port());
    let conf = format!(
        r#"
WSGIDaemonProcess top processes=1 threads=4
WSGIScriptAlias / {{root}}/app/app.wsgi
WSGIProcessGroup top
<Location /use-a>
  WSGIProcessGroup site-a-group
</Location>

Listen 127.0.0.1:{site_a}
<VirtualHost 127.0.0.1:{site_a}>
  ServerName site-a
  WSGIDaemonProcess site-a-group processes=1 threads=2
</VirtualHost>

Listen 127.0.0.1:{site_b}
<VirtualHost 127.0.0.1:{site_b}>
  ServerName site-b
  WSGIScriptAlias / {{root}}/app/app.wsgi
</VirtualHost>

Listen 127.0.0.1:{plain}
<VirtualHost 127.0.0.1:{plain}>
  ServerName plain
</VirtualHost>
"#
    );
    let files = [("app/app.wsgi", APP)];
    let mut apache = match launch {
        Launch::Foreground => Apache::start(Mpm::Event, &conf, &files),
        Launch::Detached => Apache::start_detached(Mpm::Event, &conf, &files),
    };
    apache.allow_log("WSGI0152");

    // A server-level group, from the main server and from each virtual host: one process
    // (processes=1) answers all of them.
    let mut pids = HashSet::new();
    for port in [apache.port, site_a, site_b, plain] {
        for _ in 0..3 {
            let (pid, group) = served_by(&apache, port, "/");
            assert_eq!(group, "top", "port {port}");
            pids.insert(pid);
        }
    }
    assert_eq!(
        pids.len(),
        1,
        "group 'top' (processes=1) answered from {pids:?}"
    );

    // A group defined in a virtual host, from that host.
    let (_, group) = served_by(&apache, site_a, "/use-a");
    assert_eq!(group, "site-a-group");

    // ... and from the main server and another virtual host: refused, named in the log.
    for port in [apache.port, site_b, plain] {
        let r = get(port, "/use-a");
        assert_eq!(r.status, 500, "port {port}: {}", r.text());
    }
    let log = apache.wait_for_log("WSGI0152");
    assert!(
        log.contains("'site-a-group' was defined in virtual host 'site-a' and cannot be used by server 'site-b'"),
        "{log}"
    );
    assert!(!log.contains("secret"), "{log}");
    apache.stop();
}

#[test]
fn server_level_and_virtual_host_groups_in_the_foreground() {
    groups_beside_virtual_hosts(Launch::Foreground);
}

#[test]
fn server_level_and_virtual_host_groups_under_k_start() {
    groups_beside_virtual_hosts(Launch::Detached);
}
