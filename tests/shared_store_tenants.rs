//! Shared stores between tenants: a daemon group running as another Unix user neither
//! reads nor writes a store it is not given (the memory is not even mapped in its
//! processes), a store can be shared with it on purpose (`process-groups=`), and garbage
//! it writes into every shared mapping it has leaves the other groups serving.

mod common;
use common::{Apache, Mpm, configtest};
use std::process::Command;
use std::time::{Duration, Instant};

/// A second Unix user for the other tenant (created once; the tests run as root).
const TENANT: &str = "mod-wsgi-rs-tenant";

fn ensure_tenant_user() {
    let exists = Command::new("id")
        .arg(TENANT)
        .output()
        .unwrap()
        .status
        .success();
    if !exists {
        let status = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                TENANT,
            ])
            .status()
            .expect("useradd (the tests run as root)");
        // 9: created meanwhile by another test binary.
        assert!(
            status.success() || status.code() == Some(9),
            "useradd {TENANT}"
        );
    }
}

const APP: &str = r#"
import ctypes, os
import mod_wsgi

def smash():
    # What a hostile tenant can do: overwrite every shared mapping it can write.
    count = 0
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            if fields[1] != "rw-s":
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            ctypes.memset(start, 0x5a, end - start)
            count += 1
    return count

def application(environ, start_response):
    path = environ["PATH_INFO"]
    name = environ.get("QUERY_STRING") or "sess"
    try:
        if path.endswith("/set"):
            mod_wsgi.shared(name)["k"] = mod_wsgi.process_group
            out = "set"
        elif path.endswith("/get"):
            out = "got %s" % mod_wsgi.shared(name).get("k")
        elif path.endswith("/smash"):
            out = "smashed %d" % smash()
        else:
            out = "pid %d" % os.getpid()
    except Exception as e:
        out = "%s: %s" % (type(e).__name__, e)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [out.encode()]
"#;

fn conf() -> String {
    format!(
        "WSGISharedStore sess size=1M\n\
         WSGISharedStore both size=1M process-groups=victim,evil\n\
         WSGIDaemonProcess victim threads=2\n\
         WSGIDaemonProcess evil threads=2 user={TENANT}\n\
         WSGIScriptAlias /victim {{root}}/app/app.wsgi process-group=victim\n\
         WSGIScriptAlias /evil {{root}}/app/app.wsgi process-group=evil\n\
         WSGIScriptAlias /embedded {{root}}/app/app.wsgi\n"
    )
}

#[test]
fn another_users_group_cannot_reach_a_store_it_was_not_given() {
    ensure_tenant_user();
    let mut apache = Apache::start(Mpm::Event, &conf(), &[("app/app.wsgi", APP)]);
    assert_eq!(apache.get_ok("/victim/set"), "set");
    assert_eq!(apache.get_ok("/victim/get"), "got victim");
    assert_eq!(apache.get_ok("/embedded/get"), "got victim");
    for path in ["/evil/get", "/evil/set"] {
        let answer = apache.get_ok(path);
        assert!(
            answer.starts_with("PermissionError: shared store 'sess' is not available to process group 'evil': WSGISharedStore sess (")
                && answer.contains("process-groups="),
            "{path}: {answer}"
        );
    }
    assert_eq!(
        apache.get_ok("/victim/get"),
        "got victim",
        "the owner's value is intact"
    );
    // Shared on purpose: both groups use it.
    assert_eq!(apache.get_ok("/evil/set?both"), "set");
    assert_eq!(apache.get_ok("/victim/get?both"), "got evil");
    // embedded= defaults to On: Apache's children use it too.
    assert_eq!(apache.get_ok("/embedded/get?both"), "got evil");
    apache.stop();
}

#[test]
fn garbage_written_by_one_tenant_leaves_the_others_serving() {
    ensure_tenant_user();
    let mut apache = Apache::start(Mpm::Event, &conf(), &[("app/app.wsgi", APP)]);
    for needle in ["WSGI", "evil"] {
        apache.allow_log(needle);
    }
    assert_eq!(apache.get_ok("/victim/set"), "set");
    let smashed = apache.get("/evil/smash");
    assert!(
        smashed.status != 200 || smashed.text().starts_with("smashed"),
        "{}",
        smashed.text()
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        for path in ["/victim/get", "/embedded/get"] {
            let sent = Instant::now();
            assert_eq!(apache.get_ok(path), "got victim", "{path}");
            assert!(
                sent.elapsed() < Duration::from_secs(1),
                "{path} took {:?}",
                sent.elapsed()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    apache.stop();
}

#[test]
fn process_groups_must_name_defined_groups() {
    let (ok, out) = configtest("WSGISharedStore sess size=1M process-groups=nosuch\n", &[]);
    assert!(!ok);
    assert!(
        out.contains("WSGISharedStore sess") && out.contains("'nosuch'"),
        "{out}"
    );
}
