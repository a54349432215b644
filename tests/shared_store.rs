//! `WSGISharedStore` and `mod_wsgi.shared()` against a real Apache: one store seen by
//! prefork children (embedded mode) and two daemon groups, exact counts under concurrent
//! clients, values that keep their type across processes, TTL, a full store, a daemon
//! killed in the middle of an increment loop, survival across a graceful restart and
//! (with file=) across a full stop, and configuration errors with file and line.

mod common;
use common::{Apache, Mpm, configtest};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const APP: &str = r#"
import os, time, urllib.parse
import mod_wsgi

store = mod_wsgi.shared("counters")

def application(environ, start_response):
    q = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", "")))
    path = environ["PATH_INFO"]
    status = "200 OK"
    if path == "/incr":
        body = "%d %d" % (store.incr("hits"), os.getpid())
    elif path == "/get":
        value = store.get(q["key"], "<missing>")
        body = "%s:%r" % (type(value).__name__, value)
    elif path == "/set":
        kind = q.get("type", "str")
        convert = {"str": str, "bytes": str.encode, "int": int}[kind]
        value = convert(q["value"])
        ttl = float(q["ttl"]) if "ttl" in q else None
        store.set(q["key"], value, ttl=ttl)
        body = "ok"
    elif path == "/keys":
        body = ",".join(sorted(store.keys(q.get("prefix", ""))))
    elif path == "/cas":
        expected = q.get("expected")
        body = str(store.cas(q["key"], expected, q["new"]))
    elif path == "/fill":
        small = mod_wsgi.shared("small")
        small["keep"] = "me"
        n = 0
        try:
            while True:
                small.set("k%d" % n, b"x" * 1000)
                n += 1
        except mod_wsgi.SharedStoreFull as e:
            assert isinstance(e, MemoryError)
            body = "full after %d: %s; keep=%s; stats=%r" % (n, e, small["keep"], small.stats())
    elif path == "/spin":
        # Increments until killed: the test SIGKILLs this process mid-loop.
        open(q["marker"], "w").write(str(os.getpid()))
        while True:
            store.incr("spin")
    elif path == "/unknown":
        try:
            mod_wsgi.shared("nope")
            body = "no error"
        except KeyError as e:
            body = str(e)
    else:
        body = str(os.getpid())
    start_response(status, [("Content-Type", "text/plain")])
    return [body.encode()]
"#;

/// Two daemon groups and embedded mode (prefork: several children) on one store.
const CONF: &str = "WSGISharedStore counters size=1M
WSGISharedStore small size=128K
WSGIDaemonProcess one processes=2 threads=2
WSGIDaemonProcess two processes=2 threads=2
WSGIScriptAlias /one {root}/app/app.wsgi process-group=one application-group=%{GLOBAL}
WSGIScriptAlias /two {root}/app/app.wsgi process-group=two
WSGIScriptAlias /embedded {root}/app/app.wsgi
";

fn start() -> Apache {
    Apache::start(Mpm::Prefork, CONF, &[("app/app.wsgi", APP)])
}

#[test]
fn increments_from_every_process_and_mode_add_up_exactly() {
    let apache = start();
    let prefixes = ["/one", "/two", "/embedded"];
    let pids = std::sync::Mutex::new(HashMap::<&str, Vec<String>>::new());
    std::thread::scope(|s| {
        for client in 0..8 {
            let (apache, pids) = (&apache, &pids);
            s.spawn(move || {
                for i in 0..1000 {
                    let prefix = prefixes[(client + i) % 3];
                    let reply = apache.get_ok(&format!("{prefix}/incr"));
                    let pid = reply.split(' ').nth(1).unwrap().to_string();
                    let mut pids = pids.lock().unwrap();
                    let seen = pids.entry(prefix).or_default();
                    if !seen.contains(&pid) {
                        seen.push(pid);
                    }
                }
            });
        }
    });
    assert_eq!(apache.get_ok("/two/get?key=hits"), "int:8000");
    let pids = pids.into_inner().unwrap();
    for prefix in prefixes {
        assert!(
            pids[prefix].len() >= 2,
            "{prefix} was served by one process only: {pids:?}"
        );
    }
}

#[test]
fn values_keep_their_type_expire_and_compare_across_processes() {
    let apache = start();
    assert_eq!(apache.get_ok("/one/set?key=s&value=caf%C3%A9"), "ok");
    assert_eq!(apache.get_ok("/embedded/get?key=s"), "str:'café'");
    apache.get_ok("/two/set?key=b&value=raw&type=bytes");
    assert_eq!(apache.get_ok("/one/get?key=b"), "bytes:b'raw'");
    apache.get_ok("/embedded/set?key=n&value=-42&type=int");
    assert_eq!(apache.get_ok("/two/get?key=n"), "int:-42");
    assert_eq!(apache.get_ok("/one/keys"), "b,n,s");

    assert_eq!(apache.get_ok("/one/cas?key=c&new=1"), "True", "absent: set");
    assert_eq!(
        apache.get_ok("/two/cas?key=c&new=2"),
        "False",
        "present now"
    );
    assert_eq!(
        apache.get_ok("/embedded/cas?key=c&expected=1&new=2"),
        "True"
    );
    assert_eq!(apache.get_ok("/one/get?key=c"), "str:'2'");

    apache.get_ok("/one/set?key=short&value=v&ttl=0.5");
    assert_eq!(apache.get_ok("/two/get?key=short"), "str:'v'");
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(apache.get_ok("/embedded/get?key=short"), "str:'<missing>'");
    assert_eq!(apache.get_ok("/two/keys?prefix=sh"), "");

    let unknown = apache.get_ok("/one/unknown");
    assert!(
        unknown.contains("no WSGISharedStore named 'nope'"),
        "{unknown}"
    );
    assert!(unknown.contains("counters, small"), "{unknown}");
}

#[test]
fn a_full_store_raises_and_keeps_its_keys() {
    let apache = start();
    let text = apache.get_ok("/two/fill");
    assert!(text.starts_with("full after "), "{text}");
    let n: usize = text["full after ".len()..]
        .split(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(n > 10, "{text}");
    assert!(text.contains("shared store is full"), "{text}");
    assert!(text.contains("keep=me"), "{text}");
    // Still usable from another process: a delete makes room again.
    let again = apache.get_ok("/embedded/fill");
    assert!(again.starts_with("full after 0"), "{again}");
}

#[test]
fn a_daemon_killed_mid_increment_leaves_the_store_usable() {
    let mut apache = start();
    let marker = apache.scratch.path("spinning");
    let port = apache.port;
    let spinner =
        std::thread::spawn(move || common::http::get(port, &format!("/one/spin?marker={marker}")));
    let marker = std::path::PathBuf::from(apache.scratch.path("spinning"));
    common::wait_for_file(&marker, "spinning request");
    std::thread::sleep(Duration::from_millis(300));
    let pid: i32 = std::fs::read_to_string(&marker)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: pid is a daemon process of this test's Apache.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let killed = spinner.join().unwrap();
    assert_ne!(killed.status, 200, "the spinning request never finished");
    apache.allow_log("WSGI1130");
    apache.allow_log("WSGI1040: daemon process of group 'one' closed the connection");
    apache.allow_log(&format!(
        "WSGI1122: daemon process {pid} of group 'one' exited"
    ));
    let spun: i64 = apache
        .get_ok("/two/get?key=spin")
        .trim_start_matches("int:")
        .parse()
        .unwrap();
    assert!(spun > 100, "the loop ran: {spun}");
    let deadline = Instant::now() + Duration::from_secs(5);
    for _ in 0..50 {
        apache.get_ok("/embedded/incr");
        apache.get_ok("/one/incr");
    }
    assert_eq!(apache.get_ok("/two/get?key=hits"), "int:100");
    assert!(
        Instant::now() < deadline,
        "the store was slow after the kill"
    );
}

#[test]
fn keys_survive_a_graceful_restart() {
    let apache = start();
    apache.get_ok("/one/set?key=kept&value=yes");
    for _ in 0..3 {
        apache.get_ok("/embedded/incr");
    }
    apache.signal("-USR1");
    apache.wait_for_log("resuming normal operations");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = apache.get("/two/get?key=kept");
        if r.status == 200 {
            assert_eq!(r.text(), "str:'yes'");
            break;
        }
        assert!(Instant::now() < deadline, "{}", apache.error_log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(apache.get_ok("/embedded/get?key=hits"), "int:3");
    assert!(apache.error_log().contains("kept across the restart"));
}

#[test]
fn a_file_backed_store_keeps_its_keys_across_a_full_stop() {
    let scratch = common::Scratch::new("store-file");
    scratch.write("app/app.wsgi", APP);
    let conf = "WSGISharedStore counters size=256K file={root}/counters.store\n\
                WSGISharedStore small size=128K\n\
                WSGIScriptAlias / {root}/app/app.wsgi\n";
    let dir = scratch.path("");
    let mut apache = Apache::start_in(Mpm::Event, scratch, conf);
    apache.get_ok("/set?key=durable&value=1&type=int");
    apache.get_ok("/incr");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(format!("{dir}/counters.store"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(
        mode & 0o777,
        0o600,
        "the keys are not readable by other users"
    );
    apache.stop();
    let scratch = common::Scratch::reuse(&dir);
    let apache = Apache::start_in(Mpm::Event, scratch, conf);
    assert_eq!(apache.get_ok("/get?key=durable"), "int:1");
    assert_eq!(apache.get_ok("/get?key=hits"), "int:1");
    apache.wait_for_log("keys kept from its file");
}

#[test]
fn store_mistakes_are_reported_with_file_and_line() {
    let (ok, out) = configtest(
        "WSGISharedStore a size=1M\nWSGISharedStore a size=2M\n",
        &[],
    );
    assert!(!ok);
    assert!(out.contains("store 'a' is already defined at"), "{out}");
    assert!(out.contains("httpd.conf"), "{out}");
    let (ok, out) = configtest("WSGISharedStore b size=10\n", &[]);
    assert!(!ok);
    assert!(out.contains("a store needs at least 128K"), "{out}");
    let (ok, out) = configtest(
        "<VirtualHost *:80>\nWSGISharedStore c\n</VirtualHost>\n",
        &[],
    );
    assert!(!ok);
    assert!(out.contains("cannot occur within"), "{out}");
}

const BROADCAST_APP: &str = r#"
import os, time, urllib.parse
import mod_wsgi

config = {"colour": "red", "calls": 0}
LOADED = time.time()

def changed(topic, message):
    config["colour"] = message
    config["calls"] += 1

def broken(topic, message):
    raise RuntimeError("subscriber bug")

mod_wsgi.subscribe("colour", changed)
mod_wsgi.subscribe("boom", broken)

def application(environ, start_response):
    q = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", "")))
    if environ["PATH_INFO"] == "/send":
        body = str(mod_wsgi.broadcast(q["topic"], q.get("message")))
    else:
        time.sleep(float(q.get("sleep", 0)))
        body = "%d:%s:%d:%f" % (os.getpid(), config["colour"], config["calls"], LOADED)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]
"#;

/// Concurrent sleeping requests, so that each lands in a different process; returns
/// pid -> (colour, calls) as each process reports it.
fn survey(apache: &Apache, prefix: &str) -> HashMap<String, (String, u32)> {
    survey_with_load_times(apache, prefix)
        .into_iter()
        .map(|(pid, colour, calls, _)| (pid, (colour, calls)))
        .collect()
}

/// As `survey`, with when each process imported the application (seconds since the
/// epoch).
fn survey_with_load_times(apache: &Apache, prefix: &str) -> Vec<(String, String, u32, f64)> {
    let mut seen = Vec::new();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|_| s.spawn(|| apache.get_ok(&format!("{prefix}/?sleep=0.3"))))
            .collect();
        for h in handles {
            let text = h.join().unwrap();
            let mut f = text.split(':');
            let pid = f.next().unwrap().to_owned();
            let colour = f.next().unwrap().to_owned();
            let calls = f.next().unwrap().parse().unwrap();
            let loaded = f.next().unwrap().parse().unwrap();
            seen.push((pid, colour, calls, loaded));
        }
    });
    seen
}

/// Surveys until every process in `pids` reported `colour`, and returns their reports.
fn until_all_report(
    apache: &Apache,
    prefix: &str,
    pids: &[String],
    colour: &str,
) -> HashMap<String, (String, u32)> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut latest: HashMap<String, (String, u32)> = HashMap::new();
    while !pids
        .iter()
        .all(|p| latest.get(p).is_some_and(|(c, _)| c == colour))
    {
        assert!(
            Instant::now() < deadline,
            "{prefix}: not every process saw '{colour}': {latest:?}"
        );
        latest.extend(survey(apache, prefix));
    }
    latest
}

#[test]
fn a_broadcast_reaches_every_process_once_before_its_next_request() {
    let mut apache = Apache::start(
        Mpm::Prefork,
        "WSGIDaemonProcess d processes=3 threads=1\n\
         WSGIScriptAlias /d {root}/app/app.wsgi process-group=d\n\
         WSGIScriptAlias /e {root}/app/app.wsgi\n",
        &[("app/app.wsgi", BROADCAST_APP)],
    );
    let mut processes: HashMap<&str, Vec<String>> = HashMap::new();
    for (prefix, want) in [("/d", 3), ("/e", 2)] {
        let deadline = Instant::now() + Duration::from_secs(15);
        let pids = processes.entry(prefix).or_default();
        while pids.len() < want {
            assert!(Instant::now() < deadline, "{prefix}: {pids:?}");
            for (pid, (colour, _)) in survey(&apache, prefix) {
                assert_eq!(colour, "red");
                if !pids.contains(&pid) {
                    pids.push(pid);
                }
            }
        }
    }
    assert_eq!(apache.get_ok("/e/send?topic=colour&message=blue"), "1");
    for (prefix, pids) in &processes {
        for (pid, (colour, calls)) in until_all_report(&apache, prefix, pids, "blue") {
            // A process started since (prefork spawns children) caught up at import.
            let expected_calls = if pids.contains(&pid) { 1 } else { calls };
            assert_eq!(
                (colour.as_str(), calls),
                ("blue", expected_calls),
                "{prefix} pid {pid}"
            );
        }
    }
    assert_eq!(apache.get_ok("/d/send?topic=colour&message=green"), "2");
    for (prefix, pids) in &processes {
        for (pid, (colour, calls)) in until_all_report(&apache, prefix, pids, "green") {
            // A process started since (prefork spawns children) caught up at import.
            let expected_calls = if pids.contains(&pid) { 2 } else { calls };
            assert_eq!(
                (colour.as_str(), calls),
                ("green", expected_calls),
                "{prefix} pid {pid}"
            );
        }
    }
    // After a graceful restart the application is imported again: each process that
    // imports it catches up once when it subscribes. (A child of the old generation may
    // still answer for a moment: only imports after the restart count.)
    let restarted = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    apache.signal("-USR1");
    apache.wait_for_log("resuming normal operations");
    for prefix in processes.keys() {
        let deadline = Instant::now() + Duration::from_secs(15);
        let fresh = loop {
            assert!(
                Instant::now() < deadline,
                "{prefix}: no process imported the app again"
            );
            if let Some(report) = survey_with_load_times(&apache, prefix)
                .into_iter()
                .find(|(_, _, _, loaded)| *loaded > restarted)
            {
                break report;
            }
        };
        assert_eq!(
            (fresh.1.as_str(), fresh.2),
            ("green", 1),
            "{prefix}: {fresh:?}"
        );
    }
    apache.allow_log("WSGI1134");
    apache.allow_log("subscriber bug");
    apache.allow_log("Traceback");
    apache.allow_log("File \"");
    apache.allow_log("raise RuntimeError");
    apache.allow_log("^^^^");
    apache.get_ok("/d/send?topic=boom");
    apache.get_ok("/d/");
    apache.wait_for_log("WSGI1134: broadcast subscriber");
    // Processes started after the bad message catch up on it when the app subscribes at
    // import: the raising subscriber is logged and the application still loads.
    let mut seen: HashMap<&str, Vec<String>> = HashMap::new();
    for prefix in ["/d", "/e"] {
        seen.insert(prefix, survey(&apache, prefix).into_keys().collect());
    }
    let generations = apache
        .error_log()
        .matches("resuming normal operations")
        .count();
    apache.signal("-USR1");
    let deadline = Instant::now() + Duration::from_secs(15);
    while apache
        .error_log()
        .matches("resuming normal operations")
        .count()
        == generations
    {
        assert!(Instant::now() < deadline, "no restart after SIGUSR1");
        std::thread::sleep(Duration::from_millis(50));
    }
    for (prefix, old) in &seen {
        let deadline = Instant::now() + Duration::from_secs(15);
        while survey(&apache, prefix).keys().all(|pid| old.contains(pid)) {
            assert!(Instant::now() < deadline, "{prefix}: no new process");
        }
    }
}
