//! Session affinity (`session-affinity=COOKIE`, our extension): a cookie pins a client to
//! one process slot of a daemon group; clients without it are spread over the slots and
//! given one; when the pinned process recycles or dies, the slot's next process serves
//! the client.

mod common;
use common::{Apache, Mpm};
use std::collections::HashSet;
use std::time::{Duration, Instant};

const APP: &str = r#"
import os
def application(environ, start_response):
    if environ["PATH_INFO"] == "/crash":
        os._exit(1)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Set-Cookie", "app=1")])
    return [str(os.getpid()).encode()]
"#;

fn start(options: &str) -> Apache {
    let conf = format!(
        "WSGIDaemonProcess pin processes=3 threads=2 session-affinity=PIN {options}\n\
         WSGIScriptAlias / {{root}}/app/app.wsgi process-group=pin\n"
    );
    Apache::start(Mpm::Event, &conf, &[("app/app.wsgi", APP)])
}

fn set_cookies(r: &common::http::Response) -> Vec<&str> {
    r.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// A first request gets the cookie (beside the application's own); returns "PIN=n".
fn pin(apache: &Apache) -> String {
    let r = apache.get("/");
    assert_eq!(r.status, 200, "{}", apache.error_log());
    let cookies = set_cookies(&r);
    assert!(cookies.contains(&"app=1"), "{cookies:?}");
    let ours = cookies
        .iter()
        .find(|c| c.starts_with("PIN="))
        .unwrap_or_else(|| panic!("no affinity cookie: {cookies:?}"));
    assert!(ours.ends_with("; Path=/; HttpOnly; SameSite=Lax"), "{ours}");
    ours.split(';').next().unwrap().to_owned()
}

fn pinned_get(apache: &Apache, cookie: &str, path: &str) -> common::http::Response {
    let r = apache.request("GET", path, &[("Cookie", cookie)], b"");
    assert!(
        !set_cookies(&r).iter().any(|c| c.starts_with("PIN=")),
        "a pinned client is not re-pinned"
    );
    r
}

#[test]
fn a_cookie_pins_a_client_to_one_process_until_it_recycles() {
    let mut apache = start("maximum-requests=150");
    let cookie = pin(&apache);
    let first = pinned_get(&apache, &cookie, "/").text();
    for _ in 0..100 {
        let r = pinned_get(&apache, &format!("other=x; {cookie}"), "/");
        assert_eq!((r.status, r.text()), (200, first.clone()));
    }
    let unpinned: HashSet<String> = (0..30).map(|_| apache.get("/").text()).collect();
    assert!(
        unpinned.len() >= 2,
        "clients without the cookie are spread over the processes: {unpinned:?}"
    );
    // The pinned process reaches maximum-requests; its successor serves the client.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut now = first.clone();
    while now == first && Instant::now() < deadline {
        let r = pinned_get(&apache, &cookie, "/");
        assert_eq!(r.status, 200, "{}", apache.error_log());
        now = r.text();
    }
    assert_ne!(now, first, "recycled\n{}", apache.error_log());
    // Both accept on the slot's socket for a moment while the old one is told to drain.
    apache.wait_for_log(&format!("daemon process {first} of group 'pin' exiting"));
    for _ in 0..10 {
        assert_eq!(pinned_get(&apache, &cookie, "/").text(), now);
    }
    apache.stop();
}

#[test]
fn a_pinned_client_is_served_after_its_process_dies() {
    let mut apache = start("");
    apache.allow_log("WSGI1040");
    apache.allow_log("WSGI1122");
    let cookie = pin(&apache);
    let before = pinned_get(&apache, &cookie, "/").text();
    assert_eq!(pinned_get(&apache, &cookie, "/crash").status, 502);
    let after = pinned_get(&apache, &cookie, "/");
    assert_eq!(after.status, 200, "{}", apache.error_log());
    assert_ne!(after.text(), before, "the slot's new process serves");
    assert_eq!(pinned_get(&apache, &cookie, "/").text(), after.text());
    // A cookie naming a slot the group does not have is replaced.
    let r = apache.request("GET", "/", &[("Cookie", "PIN=7")], b"");
    assert_eq!(r.status, 200);
    assert!(
        set_cookies(&r).iter().any(|c| c.starts_with("PIN=")),
        "{:?}",
        r.headers
    );
    apache.stop();
}
