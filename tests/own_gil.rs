//! WSGIPerInterpreterGIL: from Python 3.12, sub-interpreters with their own GIL run in
//! parallel inside one process (a request holding its interpreter's GIL does not stop a
//! request of another own-GIL interpreter), keep their own ids and state, refuse
//! extensions that do not support them (CPython's ImportError, a 500, nothing else
//! affected), and serve mixed traffic with shared-GIL and main-interpreter groups beside
//! them. Before 3.12 the directive is a warning (WSGI0198) and interpreters share one GIL.
//! Daemon mode and embedded mode (one event-MPM child). A daemon thread that is free
//! takes a request of an interpreter whose GIL no thread has before one that would wait
//! for a busy GIL, and runs each GIL's requests on its own share of the CPUs.

mod common;
use common::{Apache, Mpm};
use std::time::{Duration, Instant};

const APP: &str = r#"
import mmap, os, sys, mod_wsgi
try:
    import _interpreters as interpreters  # Python 3.13
except ImportError:
    import _xxsubinterpreters as interpreters
FLAG = os.path.join(os.path.dirname(__file__), "flag")
hits = 0

def ident(i):
    return i[0] if isinstance(i, tuple) else i  # 3.13: (id, whence)

def flag():
    with open(FLAG, "r+b") as f:
        return mmap.mmap(f.fileno(), 1)

def application(environ, start_response):
    global hits
    hits += 1
    path = environ["PATH_INFO"]
    status = "200 OK"
    if path == "/hold":
        # Keeps this interpreter's GIL (no switch is asked for 100 s, and neither the
        # loop nor mmap indexing releases it) until /release has run, or for 30 million
        # turns (seconds).
        m = flag()
        interval = sys.getswitchinterval()
        sys.setswitchinterval(100)
        m[0] = 1
        n = 0
        while m[0] != 2 and n < 30_000_000:
            n += 1
        body = "released" if m[0] == 2 else "held alone"
        sys.setswitchinterval(interval)
        m[0] = 0
    elif path == "/wedge":
        # As /hold, until the test writes 2 into the flag file.
        m = flag()
        sys.setswitchinterval(100)
        m[0] = 1
        n = 0
        while m[0] != 2 and n < 1_000_000_000:
            n += 1
        body = "unwedged"
    elif path == "/cpus":
        body = "%s|%s" % (
            ",".join(map(str, sorted(os.sched_getaffinity(0)))),
            ",".join(map(str, sorted(os.sched_getaffinity(os.getpid())))),
        )
    elif path == "/wait":
        # Sleeps (its GIL free) until the test writes 2 into flag2, for 60 s at most.
        import time
        with open(FLAG + "2", "r+b") as f:
            m = mmap.mmap(f.fileno(), 1)
        m[0] = 1
        deadline = time.time() + 60
        while m[0] != 2 and time.time() < deadline:
            time.sleep(0.01)
        body = "waited"
    elif path == "/release":
        flag()[0] = 2
        body = "ok"
    elif path == "/single":
        import _testsinglephase
        body = "imported"
    else:
        body = "%s|%d|%d" % (mod_wsgi.application_group, ident(interpreters.get_current()), os.getpid())
    body = body + "|" + str(hits) if path == "/count" else body
    start_response(status, [("Content-Type", "text/plain")])
    return [body.encode()]
"#;

/// Four groups: `a` and `b` with their own GIL, `shared` withheld one by a block, and the
/// main interpreter. `daemon` routes them all to one daemon process.
fn config(daemon: bool) -> String {
    let (define, group) = if daemon {
        (
            "WSGIDaemonProcess d processes=1 threads=4\n",
            " process-group=d",
        )
    } else {
        (
            "ServerLimit 1\nThreadsPerChild 16\nMaxRequestWorkers 16\n",
            "",
        )
    };
    let mut conf = format!(
        "WSGIPerInterpreterGIL On\n\
         <WSGIInterpreterOptions application-group=shared>\n  WSGIPerInterpreterGIL Off\n</WSGIInterpreterOptions>\n\
         {define}"
    );
    for (mount, app_group) in [
        ("a", "a"),
        ("b", "b"),
        ("shared", "shared"),
        ("main", "%{GLOBAL}"),
    ] {
        conf.push_str(&format!(
            "WSGIScriptAlias /{mount} {{root}}/app/app.wsgi{group} application-group={app_group}\n"
        ));
    }
    conf
}

/// Apache under the event MPM with `conf`, the app and its two flag files.
fn start_with(conf: &str) -> Apache {
    let mut apache = Apache::start(
        Mpm::Event,
        conf,
        &[
            ("app/app.wsgi", APP),
            ("app/flag", "\0"),
            ("app/flag2", "\0"),
        ],
    );
    // Written by the app, which runs as www-data.
    for name in ["app/flag", "app/flag2"] {
        let path = apache.scratch.path(name);
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .unwrap();
    }
    apache.allow_log("WSGI0198");
    apache
}

fn start(daemon: bool) -> Apache {
    let mut apache = start_with(&config(daemon));
    apache.allow_log("WSGI1020");
    // Eight clients with kept-alive connections may fill the one child's threads.
    apache.allow_log("AH00484");
    apache.allow_log("_testsinglephase");
    apache.allow_log("subinterpreters");
    apache.allow_log("Traceback");
    apache.allow_log("File \"");
    apache.allow_log("import _testsinglephase");
    apache.allow_log("ImportError");
    apache
}

fn own_gil_expected() -> bool {
    common::python_version() >= (3, 12)
}

/// (application group, interpreter id, pid) of a mount.
fn identity(apache: &Apache, mount: &str) -> (String, i64, u32) {
    let body = apache.get_ok(&format!("/{mount}/id"));
    let parts: Vec<&str> = body.split('|').collect();
    (
        parts[0].to_owned(),
        parts[1].parse().unwrap(),
        parts[2].parse().unwrap(),
    )
}

/// Writes 2 into the flag file in place: the application reads it through a mapping,
/// which a truncating write would make fault (SIGBUS) for a moment.
fn let_go(flag: impl AsRef<std::path::Path>) {
    set_flag(flag, 2);
}

fn set_flag(flag: impl AsRef<std::path::Path>, value: u8) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().write(true).open(flag).unwrap();
    file.write_all(&[value]).unwrap();
}

/// Waits until the application wrote 1 into `flag`.
fn wait_for(flag: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read(flag).unwrap()[0] != 1 {
        assert!(Instant::now() < deadline, "{what} never started");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// /a/hold keeps a's GIL while /b/release runs in b: with own GILs b runs at once and
/// releases a; with one GIL b waits until a gives up.
fn parallel_while_holding(apache: &Apache) {
    let port = apache.port;
    let holder = std::thread::spawn(move || common::http::get(port, "/a/hold"));
    wait_for(&apache.scratch.path("app/flag"), "/a/hold");
    assert_eq!(apache.get_ok("/b/release"), "ok");
    let held = holder.join().unwrap();
    assert_eq!(held.status, 200, "{}", held.text());
    let expected = if own_gil_expected() {
        "released"
    } else {
        "held alone"
    };
    assert_eq!(
        held.text(),
        expected,
        "Python {:?}",
        common::python_version()
    );
}

fn ids_and_refusal(apache: &Apache) {
    let ids: Vec<(String, i64, u32)> = ["a", "b", "shared", "main"]
        .iter()
        .map(|m| identity(apache, m))
        .collect();
    let names: Vec<&str> = ids.iter().map(|i| i.0.as_str()).collect();
    assert_eq!(names, ["a", "b", "shared", ""]);
    let mut distinct: Vec<i64> = ids.iter().map(|i| i.1).collect();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 4, "four interpreters: {ids:?}");
    assert_eq!(ids[3].1, 0, "%{{GLOBAL}} is the main interpreter");
    assert!(ids.iter().all(|i| i.2 == ids[0].2), "one process: {ids:?}");

    // Module state stays in its interpreter.
    let a1 = apache.get_ok("/a/count");
    let b1 = apache.get_ok("/b/count");
    let a2 = apache.get_ok("/a/count");
    let hits = |s: &str| s.rsplit('|').next().unwrap().parse::<u32>().unwrap();
    assert_eq!(hits(&a2), hits(&a1) + 1, "{a1} {a2}");
    assert_eq!(hits(&b1), 2, "b saw its own requests only: {b1}");

    // A single-phase extension (CPython's test module, which Debian's Python leaves
    // out): CPython refuses it in an own-GIL interpreter. (Not imported anywhere else
    // afterwards: CPython ran its init in the refusing interpreter, and this module
    // frees that state when initialised again.)
    if own_gil_expected() {
        let single = apache.get("/a/single");
        assert_eq!(single.status, 500, "{}", single.text());
        let log = apache.wait_for_log("does not support loading in subinterpreters");
        assert!(log.contains("_testsinglephase"), "{log}");
    }
    assert_eq!(identity(apache, "a"), ids[0], "a keeps serving");
    assert_eq!(identity(apache, "b"), ids[1]);

    let log = apache.error_log();
    if own_gil_expected() {
        for name in ["a", "b"] {
            let line = format!("WSGI1010: created Python interpreter '{name}' with own GIL");
            assert!(log.contains(&line), "no {line:?} in:\n{log}");
        }
        assert!(log.contains("created Python interpreter 'shared'"), "{log}");
        assert!(!log.contains("'shared' with own GIL"), "{log}");
    } else {
        assert!(log.contains("WSGI0198"), "{log}");
    }
}

/// 1,000 requests from 8 clients across the four groups, every one answered by the right
/// interpreter.
fn mixed_traffic(apache: &Apache) {
    let expected: Vec<(String, (String, i64, u32))> = ["a", "b", "shared", "main"]
        .iter()
        .map(|m| (m.to_string(), identity(apache, m)))
        .collect();
    let port = apache.port;
    let clients: Vec<_> = (0..8)
        .map(|client| {
            let expected = expected.clone();
            std::thread::spawn(move || {
                for n in 0..125 {
                    let (mount, (group, id, pid)) = &expected[(client + n) % expected.len()];
                    let r = common::http::get(port, &format!("/{mount}/id"));
                    assert_eq!(r.status, 200, "/{mount}: {}", r.text());
                    assert_eq!(r.text(), format!("{group}|{id}|{pid}"), "/{mount}");
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
}

#[test]
fn daemon_own_gil_interpreters_run_in_parallel_isolated_and_mixed() {
    let mut apache = start(true);
    ids_and_refusal(&apache);
    parallel_while_holding(&apache);
    mixed_traffic(&apache);
    apache.stop();
}

#[test]
fn embedded_own_gil_interpreters_run_in_parallel_isolated_and_mixed() {
    let mut apache = start(false);
    ids_and_refusal(&apache);
    parallel_while_holding(&apache);
    mixed_traffic(&apache);
    apache.stop();
}

/// deadlock-timeout watches every GIL of a daemon process: an own-GIL interpreter whose GIL
/// is never given up gets its process replaced (the log names the interpreter), while the
/// other groups' requests go on being answered.
#[test]
fn a_wedged_own_gil_interpreter_gets_its_process_replaced() {
    let conf = config(true).replace(
        "processes=1 threads=4",
        "processes=1 threads=4 deadlock-timeout=2 graceful-timeout=2",
    );
    let mut apache = start_with(&conf);
    let flag = apache.scratch.path("app/flag");
    // The replaced process may be killed at graceful-timeout while still wedged.
    for needle in ["WSGI1116", "WSGI1040", "WSGI1041", "WSGI1122", "WSGI1124"] {
        apache.allow_log(needle);
    }
    let (_, _, first_pid) = identity(&apache, "a");
    let _ = identity(&apache, "b");
    let port = apache.port;
    let wedged = std::thread::spawn(move || common::http::get(port, "/a/wedge").status);
    wait_for(&apache.scratch.path("app/flag"), "/a/wedge");
    if own_gil_expected() {
        assert_eq!(
            identity(&apache, "b").2,
            first_pid,
            "b answers beside the wedged a"
        );
        apache.wait_for_log("the GIL of interpreter 'a' has not been free");
    } else {
        apache.wait_for_log("the Python GIL has not been free");
    }
    let (_, _, pid) = identity(&apache, "a");
    assert_ne!(pid, first_pid, "a replacement answers");
    let_go(&flag);
    let _ = wedged.join();
    apache.stop();
}

/// Two daemon threads: one runs /a/wedge (a's GIL held until the test lets go), the other
/// /b/wait. While both are busy, a request for a (sent first) and one for b queue; then
/// /b/wait ends, and its thread takes the b request: first come, first served it would
/// take the a request and wait with it for a's GIL, and the b request would wait for
/// /a/wedge. Before 3.12 the one GIL is held by /a/wedge and nothing else runs until it
/// ends.
#[test]
fn a_free_daemon_thread_takes_a_request_of_an_unused_gil_first() {
    let conf = config(true).replace("processes=1 threads=4", "processes=1 threads=2");
    let mut apache = start_with(&conf);
    let flag = apache.scratch.path("app/flag");
    let flag2 = apache.scratch.path("app/flag2");
    let _ = identity(&apache, "a");
    let _ = identity(&apache, "b");
    let port = apache.port;
    let get = move |path: &'static str| std::thread::spawn(move || common::http::get(port, path));
    let holder = get("/a/wedge");
    wait_for(&flag, "/a/wedge");
    let waiter = get("/b/wait");
    if own_gil_expected() {
        wait_for(&flag2, "/b/wait");
    } else {
        // One GIL, held by /a/wedge: /b/wait cannot start yet.
        std::thread::sleep(Duration::from_millis(500));
    }
    let waiting_for_a = get("/a/id");
    std::thread::sleep(Duration::from_millis(300));
    let (done, answered) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(common::http::get(port, "/b/id"));
    });
    // Both requests reach the daemon's queue well within this.
    std::thread::sleep(Duration::from_millis(1500));
    let_go(&flag2);
    let released = Instant::now();
    let first_wait = answered.recv_timeout(Duration::from_secs(4));
    let b_took = released.elapsed();
    let_go(&flag);
    if !own_gil_expected() {
        // /b/wait could start only now.
        wait_for(&flag2, "/b/wait");
        let_go(&flag2);
    }
    let b = first_wait
        .or_else(|_| answered.recv_timeout(Duration::from_secs(60)))
        .expect("the b request is answered");
    assert_eq!(b.status, 200, "{}", b.text());
    assert!(b.text().starts_with("b|"), "{}", b.text());
    if own_gil_expected() {
        assert!(
            b_took < Duration::from_secs(3),
            "the b request waited {b_took:?} after /b/wait ended, behind the one for a's held GIL"
        );
    } else {
        assert!(
            b_took >= Duration::from_secs(4),
            "one GIL: b ran beside /a/wedge"
        );
    }
    assert_eq!(holder.join().unwrap().text(), "unwedged");
    assert_eq!(waiter.join().unwrap().text(), "waited");
    assert!(waiting_for_a.join().unwrap().text().starts_with("a|"));
    apache.stop();
}

/// (CPUs of the thread that ran the request, CPUs of the process) for `path`.
fn cpus(apache: &Apache, path: &str) -> (Vec<u32>, Vec<u32>) {
    let body = apache.get_ok(path);
    let list = |s: &str| -> Vec<u32> { s.split(',').map(|c| c.parse().unwrap()).collect() };
    let (thread, process) = body.split_once('|').unwrap();
    (list(thread), list(process))
}

/// gil-cpu-affinity (On by default): while two own-GIL interpreters have a request
/// running, each one's requests run on its own CPUs, so that the two GILs' threads do not
/// queue on one CPU; with one busy, anywhere again; `gil-cpu-affinity=Off` leaves them
/// wherever the process may run.
#[test]
fn each_busy_own_gil_runs_on_its_own_cpus() {
    for (option, placed) in [("", true), (" gil-cpu-affinity=Off", false)] {
        let conf = format!(
            "WSGIPerInterpreterGIL On\n\
             WSGIDaemonProcess d processes=1 threads=2{option}\n\
             WSGIScriptAlias /a {{root}}/app/app.wsgi process-group=d application-group=a\n\
             WSGIScriptAlias /b {{root}}/app/app.wsgi process-group=d application-group=b\n"
        );
        let mut apache = start_with(&conf);
        let flag2 = apache.scratch.path("app/flag2");
        let _ = identity(&apache, "a");
        let _ = identity(&apache, "b");
        // The CPUs of a request of one group while the other has one waiting.
        let beside = |busy: &'static str, path: &str| {
            set_flag(&flag2, 0);
            let port = apache.port;
            let waiter = std::thread::spawn(move || common::http::get(port, busy));
            wait_for(&flag2, busy);
            let found = cpus(&apache, path);
            let_go(&flag2);
            assert_eq!(waiter.join().unwrap().text(), "waited");
            found
        };
        let (a, all) = beside("/b/wait", "/a/cpus");
        let (b, _) = beside("/a/wait", "/b/cpus");
        let (alone, _) = cpus(&apache, "/a/cpus");
        if placed && own_gil_expected() && all.len() >= 2 {
            assert!(!a.is_empty() && !b.is_empty(), "{a:?} {b:?}");
            assert!(
                a.iter().all(|c| !b.contains(c)),
                "a {a:?} and b {b:?} share CPUs"
            );
            assert!(
                a.iter().chain(&b).all(|c| all.contains(c)),
                "{a:?} {b:?} {all:?}"
            );
            assert_eq!(alone, all, "one busy GIL runs anywhere");
        } else {
            assert_eq!((&a, &b, &alone), (&all, &all, &all), "{option:?}");
        }
        apache.stop();
    }
}
