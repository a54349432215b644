//! Daemon process lifecycle: recycling by maximum-requests, script change, inactivity and
//! rss-limit (each without a gap), preloading, recovery from a crashed daemon, graceful restarts that lose no request,
//! request-timeout, and the daemon socket's secret.

mod common;
use common::{Apache, Mpm};
use std::collections::HashSet;
use std::time::{Duration, Instant};

const PID_APP: &str = r#"
import os, time
def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/crash":
        os._exit(1)
    if path == "/slow":
        time.sleep(0.3)
    if path == "/stuck":
        for _ in range(300):
            time.sleep(0.1)
    if path == "/stuck-in-c":
        time.sleep(30)
    if path == "/hold-gil":
        # libc's sleep through a PyDLL keeps the GIL for the whole call.
        import ctypes
        ctypes.PyDLL(None).sleep(8)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
"#;

fn conf(options: &str) -> String {
    format!(
        "WSGIDaemonProcess life {options}\nWSGIScriptAlias / {{root}}/app/app.wsgi\nWSGIProcessGroup life\n"
    )
}

fn maximum_requests_recycles(mpm: Mpm) {
    let mut apache = Apache::start(
        mpm,
        &conf("threads=1 maximum-requests=3"),
        &[("app/app.wsgi", PID_APP)],
    );
    // A process due for recycling serves on until its replacement is ready (the parent
    // looks once a second), so recycling shows over time, not at request 3 exactly.
    let mut pids = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while pids.iter().collect::<HashSet<_>>().len() < 2 && Instant::now() < deadline {
        let r = apache.get("/");
        assert_eq!(
            r.status,
            200,
            "request {}: {}",
            pids.len(),
            apache.error_log()
        );
        pids.push(r.text());
        std::thread::sleep(Duration::from_millis(50));
    }
    let distinct: HashSet<_> = pids.iter().collect();
    assert!(
        distinct.len() >= 2,
        "maximum-requests=3 never recycled: PIDs {distinct:?}\n{}",
        apache.error_log()
    );
    apache.wait_for_log("stopping: maximum-requests");
    apache.stop();
}

#[test]
fn maximum_requests_recycles_event() {
    maximum_requests_recycles(Mpm::Event);
}

#[test]
fn maximum_requests_recycles_prefork() {
    maximum_requests_recycles(Mpm::Prefork);
}

/// Touching the script replaces the daemon without a gap: the old process answers with
/// the old code (the request that noticed the change included) until its successor has
/// loaded the new code, then the successor serves it; no request fails on the way.
#[test]
fn touching_the_script_replaces_the_daemon_with_new_code() {
    let v1 = "import os\ndef application(e, sr):\n    sr('200 OK', [])\n    return [b'v1 %d' % os.getpid()]\n";
    let mut apache = Apache::start(Mpm::Event, &conf("threads=2"), &[("app/app.wsgi", v1)]);
    let first = apache.get("/").text();
    assert!(first.starts_with("v1 "), "{first}");
    rewrite_script(&apache, &v1.replace("v1", "v2"));
    let results = load(&apache, 2, |r| {
        r.iter().any(|(_, t, _)| t.starts_with("v2 "))
    });
    let failed: Vec<_> = results.iter().filter(|(s, _, _)| *s != 200).collect();
    assert!(failed.is_empty(), "{failed:?}\n{}", apache.error_log());
    assert!(
        results[0].1 == first,
        "the request that noticed the change was answered by the old process: {results:?}"
    );
    let second = results
        .iter()
        .find(|(_, t, _)| t.starts_with("v2 "))
        .map(|(_, t, _)| t.clone())
        .unwrap_or_else(|| panic!("no v2 within 30 s\n{}", apache.error_log()));
    assert_ne!(first[3..], second[3..], "a new process serves the new code");
    // Both accept for a moment while the old one is told to drain.
    apache.wait_for_log(&format!(
        "daemon process {} of group 'life' exiting",
        &first[3..]
    ));
    for _ in 0..5 {
        assert_eq!(apache.get("/").text(), second, "the old process is retired");
    }
    apache.wait_for_log("due for recycling (script reload)");
    apache.wait_for_log("stopping: script reload");
    apache.stop();
}

/// Replaces app.wsgi with `source`, its mtime pushed ahead so the change is seen even
/// within the filesystem's timestamp granularity.
fn rewrite_script(apache: &Apache, source: &str) {
    let script = apache.scratch.dir.join("app/app.wsgi");
    std::fs::write(&script, source).unwrap();
    let later = std::time::SystemTime::now() + Duration::from_secs(2);
    std::fs::File::options()
        .write(true)
        .open(&script)
        .unwrap()
        .set_modified(later)
        .unwrap();
}

/// A large upload arriving as the script changes is read whole by the process that takes
/// it, whichever code answers it: the body is never cut at a reload.
#[test]
fn a_large_upload_that_meets_a_script_reload_is_read_whole() {
    let v1 = "import hashlib\ndef application(e, sr):\n    data = e['wsgi.input'].read()\n    sr('200 OK', [])\n    return [b'v1 %d %s' % (len(data), hashlib.md5(data).hexdigest().encode())]\n";
    let mut apache = Apache::start(Mpm::Event, &conf("threads=2"), &[("app/app.wsgi", v1)]);
    assert!(apache.get("/").text().starts_with("v1 0 "));
    rewrite_script(&apache, &v1.replace("v1", "v2"));
    let body: Vec<u8> = (0..3 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let digest = python_md5(&body);
    for _ in 0..3 {
        let response = apache.request("POST", "/", &[], &body);
        assert_eq!(response.status, 200, "{}", apache.error_log());
        let text = response.text();
        assert!(
            text == format!("v1 {} {digest}", body.len())
                || text == format!("v2 {} {digest}", body.len()),
            "{text}"
        );
    }
    apache.wait_for_log("due for recycling (script reload)");
    apache.stop();
}

fn python_md5(data: &[u8]) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import hashlib,sys; print(hashlib.md5(sys.stdin.buffer.read()).hexdigest())",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn import_script_runs_before_the_first_request() {
    let preload = "import os, time\nopen(os.path.join(os.path.dirname(__file__), 'marker-%d' % os.getpid()), 'w').write(str(time.time()))\n";
    let app = "import os\ndef application(e, sr):\n    sr('200 OK', [])\n    return [str(os.getpid()).encode()]\n";
    let body = "WSGIDaemonProcess pre threads=2\n\
        WSGIImportScript {root}/app/preload.py process-group=pre application-group=%{GLOBAL}\n\
        WSGIScriptAlias / {root}/app/app.wsgi process-group=pre application-group=%{GLOBAL}\n";
    let mut apache = Apache::start(
        Mpm::Event,
        body,
        &[("app/preload.py", preload), ("app/app.wsgi", app)],
    );
    // The preload ran without any request being made.
    let deadline = Instant::now() + Duration::from_secs(5);
    let marker = loop {
        let found = std::fs::read_dir(apache.scratch.dir.join("app"))
            .unwrap()
            .flatten()
            .find(|e| e.file_name().to_string_lossy().starts_with("marker-"));
        if let Some(m) = found {
            break m.file_name().to_string_lossy().into_owned();
        }
        assert!(
            Instant::now() < deadline,
            "WSGIImportScript did not run at start:\n{}",
            apache.error_log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let pid = apache.get("/").text();
    assert_eq!(
        marker,
        format!("marker-{pid}"),
        "preloaded in the process that serves"
    );
    // The aliased script was preloaded too (static process-group and application-group).
    assert_eq!(
        apache.error_log().matches("Loading WSGI script").count(),
        2,
        "{}",
        apache.error_log()
    );
    apache.stop();
}

fn crash_recovers(mpm: Mpm) {
    let mut apache = Apache::start(mpm, &conf("threads=2"), &[("app/app.wsgi", PID_APP)]);
    apache.allow_log("WSGI1040");
    apache.allow_log("WSGI1122");
    let before = apache.get("/").text();
    let crash = apache.get("/crash");
    assert_eq!(
        crash.status, 502,
        "a daemon dying mid-request is a bad gateway"
    );
    let after = apache.get("/");
    assert_eq!(after.status, 200, "{}", apache.error_log());
    assert_ne!(after.text(), before, "a new daemon process serves");
    apache.wait_for_log("exited with status 1");
    apache.stop();
}

#[test]
fn crashed_daemon_is_replaced_event() {
    crash_recovers(Mpm::Event);
}

#[test]
fn crashed_daemon_is_replaced_prefork() {
    crash_recovers(Mpm::Prefork);
}

#[test]
fn graceful_restart_under_load_loses_no_request() {
    let mut apache = Apache::start(
        Mpm::Event,
        &conf("processes=2 threads=4"),
        &[("app/app.wsgi", PID_APP)],
    );
    let port = apache.port;
    let stop_at = Instant::now() + Duration::from_secs(4);
    let clients: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || {
                let mut statuses = Vec::new();
                while Instant::now() < stop_at {
                    let path = if i % 2 == 0 { "/slow" } else { "/" };
                    statuses.push(common::get(port, path).status);
                }
                statuses
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(800));
    apache.signal("-USR1");
    std::thread::sleep(Duration::from_millis(1500));
    apache.signal("-USR1");
    let mut total = 0;
    for c in clients {
        let statuses = c.join().unwrap();
        total += statuses.len();
        assert!(
            statuses.iter().all(|s| *s == 200),
            "statuses during graceful restarts: {statuses:?}"
        );
    }
    assert!(total > 20, "only {total} requests were made");
    // The old generation's processes exit as other children the parent knows, not as
    // unknown pids the MPM reaps.
    apache.wait_for_log("of the previous generation exited");
    std::thread::sleep(Duration::from_millis(1500));
    let log = apache.error_log();
    assert!(!log.contains("AH00488"), "{log}");
    apache.stop();
}

#[test]
fn request_timeout_interrupts_only_the_stuck_request() {
    let mut apache = Apache::start(
        Mpm::Event,
        &conf("threads=2 request-timeout=2 interrupt-timeout=2"),
        &[("app/app.wsgi", PID_APP)],
    );
    apache.allow_log("WSGI1111");
    apache.allow_log("WSGI1028");
    apache.allow_log("WSGI1020");
    apache.allow_log("WSGI1040");
    for traceback_line in [
        "Traceback",
        "app.wsgi\", line",
        "time.sleep(0.1)",
        "mod_wsgi.RequestTimeout",
    ] {
        apache.allow_log(traceback_line);
    }
    let pid = apache.get("/").text();
    let started = Instant::now();
    let r = apache.get("/stuck");
    assert_eq!(r.status, 504, "{}", apache.error_log());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    // The log says what happened in mod_wsgi 6's words, without a traceback.
    let log = apache.wait_for_log("Request interrupted by RequestTimeout; thread recovered.");
    assert!(log.contains("Injected RequestTimeout into thread"), "{log}");
    assert!(!log.contains("Traceback"), "{log}");
    assert_eq!(
        apache.get("/").text(),
        pid,
        "the process survived the interrupted request"
    );
    apache.stop();
}

/// mod_wsgi 6's rule: without interrupt-timeout nothing is injected; a request past
/// request-timeout x (1 + ln(threads)) gets its process replaced, and the old process does
/// not wait for it (it is wedged) before it exits.
#[test]
fn without_interrupt_timeout_a_stuck_request_replaces_its_process() {
    let mut apache = Apache::start(
        Mpm::Event,
        &conf("processes=1 threads=1 request-timeout=1 graceful-timeout=20"),
        &[("app/app.wsgi", PID_APP)],
    );
    for needle in ["WSGI1040", "WSGI1041"] {
        apache.allow_log(needle);
    }
    let first = apache.get_ok("/");
    let port = apache.port;
    let stuck = std::thread::spawn(move || common::get(port, "/stuck").status);
    let log = apache.wait_for_log("is due for recycling (request-timeout)");
    assert!(
        !log.contains("RequestTimeout"),
        "nothing is injected:\n{log}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = apache.get("/");
        if r.status == 200 && r.text() != first {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not replaced:\n{}",
            apache.error_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The old process did not wait graceful-timeout (20 s) for the wedged request.
    apache.wait_for_log(&format!("daemon process {first} of group 'life' exiting"));
    assert_ne!(stuck.join().unwrap(), 200);
    apache.stop();
}

/// deadlock-timeout: C code that keeps the GIL stops the whole process; once the GIL has
/// not been free for deadlock-timeout, a replacement takes the requests.
#[test]
fn a_process_whose_gil_is_held_is_replaced_after_deadlock_timeout() {
    let mut apache = Apache::start(
        Mpm::Event,
        &conf("processes=1 threads=4 deadlock-timeout=2 graceful-timeout=2"),
        &[("app/app.wsgi", PID_APP)],
    );
    for needle in ["WSGI1116", "WSGI1040", "WSGI1041"] {
        apache.allow_log(needle);
    }
    let first = apache.get_ok("/");
    let port = apache.port;
    let holder = std::thread::spawn(move || common::get(port, "/hold-gil").status);
    apache.wait_for_log("the Python GIL has not been free");
    // From then on the stuck process takes nothing: requests go to its replacement.
    let started = Instant::now();
    let answered_by = apache.get_ok("/");
    assert_ne!(
        answered_by, first,
        "answered by the process holding the GIL"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the replacement took {:?}",
        started.elapsed()
    );
    let _ = holder.join();
    apache.stop();
}

#[test]
fn a_request_stuck_in_c_code_gets_a_replacement_without_a_gap() {
    let mut apache = Apache::start(
        Mpm::Event,
        &conf("processes=1 threads=4 request-timeout=1 graceful-timeout=4"),
        &[("app/app.wsgi", PID_APP)],
    );
    for needle in ["WSGI1111", "WSGI1040", "WSGI1041"] {
        apache.allow_log(needle);
    }
    let first = apache.get_ok("/");
    let port = apache.port;
    // time.sleep in C: the injected RequestTimeout cannot land until it returns.
    let stuck = std::thread::spawn(move || common::get(port, "/stuck-in-c").status);
    let started = Instant::now();
    let mut pids = HashSet::new();
    while started.elapsed() < Duration::from_secs(9) {
        let sent = Instant::now();
        let r = apache.get("/");
        assert_eq!(r.status, 200, "{}", apache.error_log());
        assert!(
            sent.elapsed() < Duration::from_secs(1),
            "a request waited {:?} at {:?}:\n{}",
            sent.elapsed(),
            started.elapsed(),
            apache.error_log()
        );
        pids.insert(r.text());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        pids.len() >= 2 && pids.contains(&first),
        "served by {pids:?}"
    );
    apache.wait_for_log("is due for recycling (request-timeout)");
    assert_ne!(stuck.join().unwrap(), 200);
    apache.stop();
}

#[test]
fn a_request_without_the_secret_is_refused() {
    use std::io::{Read, Write};
    let mut apache = Apache::start(Mpm::Event, &conf("threads=1"), &[("app/app.wsgi", PID_APP)]);
    apache.allow_log("WSGI1105");
    assert_eq!(apache.get("/").status, 200);
    let socket = std::fs::read_dir(&apache.scratch.dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".sock"))
        .expect("daemon socket in DefaultRuntimeDir");
    let mut bytes = Vec::new();
    let head = mod_wsgi_wire::RequestHead {
        secret: [0; 32],
        reload: false,
        header_only: false,
        keep_alive: false,
        request_start_us: 0,
        script_mtime: 0.0,
        application_group: String::new(),
        script: apache
            .scratch
            .dir
            .join("app/app.wsgi")
            .display()
            .to_string(),
        callable: "application".into(),
        environ: [("REQUEST_METHOD", "GET")].into_iter().collect(),
    };
    mod_wsgi_wire::encode(
        &mod_wsgi_wire::Frame::RequestHead(Box::new(head)),
        &mut bytes,
    );
    mod_wsgi_wire::encode(&mod_wsgi_wire::Frame::BodyEnd, &mut bytes);
    let mut s = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    s.write_all(&bytes).unwrap();
    let mut reply = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.read_to_end(&mut reply);
    let mut d = mod_wsgi_wire::Decoder::new(1 << 20);
    d.push(&reply);
    assert!(
        matches!(
            d.next_frame(),
            Ok(Some(mod_wsgi_wire::Frame::Error(
                mod_wsgi_wire::ErrorKind::Refused,
                _
            )))
        ),
        "reply: {reply:?}"
    );
    apache.wait_for_log("WSGI1105");
    apache.stop();
}

fn live(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

fn sockets(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".sock"))
        .collect()
}

#[test]
fn hard_restart_replaces_busy_daemons_and_leaves_one_socket() {
    hard_restart_replaces_busy_daemons(Mpm::Event);
}

/// Prefork's hard restart sends SIGHUP to the whole process group, daemons included,
/// which pass SIGHUP to `subscribe_signals()` callbacks instead of dying: the parent
/// must still replace them.
#[test]
fn hard_restart_under_prefork_replaces_the_daemons() {
    hard_restart_replaces_busy_daemons(Mpm::Prefork);
}

fn hard_restart_replaces_busy_daemons(mpm: Mpm) {
    let body = format!(
        "WSGISocketPrefix {{root}}/sock\n{}",
        conf("processes=2 threads=2 shutdown-timeout=2")
    );
    let mut apache = Apache::start(mpm, &body, &[("app/app.wsgi", PID_APP)]);
    let old: HashSet<u32> = (0..20)
        .map(|_| apache.get("/").text().parse().unwrap())
        .collect();
    assert!(!old.is_empty());
    // A request stuck in the application while Apache restarts.
    let port = apache.port;
    let stuck = std::thread::spawn(move || {
        let mut c = common::http::Connection::open(port);
        c.send(b"GET /stuck HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    });
    std::thread::sleep(Duration::from_millis(300));
    // The stuck request is cut by the restart (as with C mod_wsgi); the child says so.
    apache.allow_log("closed the connection before sending a response");
    apache.signal("-HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let gone = old.iter().all(|p| !live(*p));
        if gone {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "old daemons {old:?} still alive after apachectl restart:\n{}",
            apache.error_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    stuck.join().unwrap();
    let r = apache.get("/");
    assert_eq!(r.status, 200, "{}", apache.error_log());
    let new: u32 = r.text().parse().unwrap();
    assert!(!old.contains(&new), "served by an old daemon {new}");
    assert_eq!(sockets(&apache.scratch.dir).len(), 1);
    apache.stop();
    assert_eq!(
        sockets(&apache.scratch.dir),
        Vec::<std::path::PathBuf>::new(),
        "sockets left after stop"
    );
}

const SLOW_PRELOAD: &str = r#"
import os, time
here = os.path.dirname(__file__)
if os.path.exists(os.path.join(here, "fail")):
    raise RuntimeError("initialisation failed on purpose")
with open(os.path.join(here, "preload-%d" % os.getpid()), "w") as f:
    f.write(repr(time.time()))
time.sleep(1.0)
"#;

/// What a failing SLOW_PRELOAD logs, and nothing else, is expected in its tests.
const PRELOAD_FAILURE_LOG: [&str; 9] = [
    "WSGI1103",
    "WSGI1113",
    "WSGI1122",
    "WSGI1123",
    "Traceback (most recent call last)",
    "app/preload.py\", line",
    "raise RuntimeError(",
    "^^^^",
    "RuntimeError: initialisation failed on purpose",
];

fn preload_conf(options: &str) -> String {
    format!(
        "WSGIDaemonProcess life {options}\n\
         WSGIImportScript {{root}}/app/preload.py process-group=life application-group=%{{GLOBAL}}\n\
         WSGIScriptAlias / {{root}}/app/app.wsgi process-group=life application-group=%{{GLOBAL}}\n"
    )
}

/// Sends requests from `clients` threads until `done` says so (or 30 s pass); returns
/// (status, pid text, seconds since the epoch at the response) for each.
fn load(
    apache: &Apache,
    clients: usize,
    done: impl Fn(&[(u16, String, f64)]) -> bool + Sync,
) -> Vec<(u16, String, f64)> {
    let results = std::sync::Mutex::new(Vec::new());
    let deadline = Instant::now() + Duration::from_secs(30);
    std::thread::scope(|scope| {
        for _ in 0..clients {
            scope.spawn(|| {
                while Instant::now() < deadline && !done(&results.lock().unwrap()) {
                    let r = apache.get("/");
                    let at = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_secs_f64();
                    results.lock().unwrap().push((r.status, r.text(), at));
                    std::thread::sleep(Duration::from_millis(10));
                }
            });
        }
    });
    results.into_inner().unwrap()
}

fn distinct_pids(results: &[(u16, String, f64)]) -> Vec<String> {
    let mut pids: Vec<String> = Vec::new();
    for (_, pid, _) in results {
        if !pids.contains(pid) {
            pids.push(pid.clone());
        }
    }
    pids
}

/// processes=1, recycled by maximum-requests under a steady stream of requests: the
/// replacement imports its app (1 s) while the old process still serves, so no request
/// fails and none waits for the import.
#[test]
fn a_single_process_group_recycles_without_a_gap() {
    let mut apache = Apache::start(
        Mpm::Event,
        &preload_conf("processes=1 threads=4 maximum-requests=40"),
        &[("app/app.wsgi", PID_APP), ("app/preload.py", SLOW_PRELOAD)],
    );
    let results = load(&apache, 4, |r| distinct_pids(r).len() >= 2);
    let failed: Vec<_> = results.iter().filter(|(s, _, _)| *s != 200).collect();
    assert!(failed.is_empty(), "{failed:?}\n{}", apache.error_log());
    let pids = distinct_pids(&results);
    assert!(
        pids.len() >= 2,
        "recycled: {pids:?}\n{}",
        apache.error_log()
    );
    // The old process answered while its successor was still importing the app.
    let successor = &pids[1];
    let import_started: f64 =
        std::fs::read_to_string(apache.scratch.dir.join(format!("app/preload-{successor}")))
            .unwrap()
            .parse()
            .unwrap();
    let served_during_import = results
        .iter()
        .filter(|(_, pid, at)| *pid == pids[0] && *at > import_started + 0.5)
        .count();
    assert!(
        served_during_import > 0,
        "the old process stopped serving before its successor was ready"
    );
    apache.wait_for_log("due for recycling (maximum-requests)");
    apache.stop();
}

/// The parent starts a replacement as soon as a process asks (the recycling bell), not at
/// its next maintenance round (about every 10 s): each of three recycles in a row takes
/// over within a few seconds of the request that made the process due.
#[test]
fn replacements_start_promptly() {
    let mut apache = Apache::start(
        Mpm::Event,
        &conf("processes=1 threads=2 maximum-requests=5"),
        &[("app/app.wsgi", PID_APP)],
    );
    let mut current = apache.get("/").text();
    let mut waits = Vec::new();
    for _ in 0..3 {
        for _ in 0..5 {
            assert_eq!(apache.get("/").status, 200, "{}", apache.error_log());
        }
        let due = Instant::now();
        loop {
            let r = apache.get("/");
            assert_eq!(r.status, 200, "{}", apache.error_log());
            if r.text() != current {
                current = r.text();
                break;
            }
            assert!(
                due.elapsed() < Duration::from_secs(5),
                "no replacement 5 s after the process became due (earlier: {waits:?})\n{}",
                apache.error_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        waits.push(due.elapsed());
    }
    apache.stop();
}

/// inactivity-timeout replaces an idle process (its memory is released) by a fresh one
/// that ran its preloads; requests keep being answered throughout.
#[test]
fn inactivity_timeout_replaces_an_idle_process() {
    let mut apache = Apache::start(
        Mpm::Event,
        &preload_conf("processes=1 threads=2 inactivity-timeout=1"),
        &[("app/app.wsgi", PID_APP), ("app/preload.py", SLOW_PRELOAD)],
    );
    let first = apache.get("/").text();
    apache.wait_for_log("due for recycling (inactivity-timeout)");
    served_by_a_new_process(&apache, &first);
    apache.wait_for_log("stopping: inactivity-timeout");
    apache.stop();
}

/// Requests `/` until a process other than `first` answers (20 s at most); every answer
/// must be a 200.
fn served_by_a_new_process(apache: &Apache, first: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = apache.get("/");
        assert_eq!(r.status, 200, "{}", apache.error_log());
        if r.text() != first {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{first} was not replaced\n{}",
            apache.error_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// rss-limit (our extension): a process whose resident memory grows past the limit is
/// replaced without a gap.
#[test]
fn rss_limit_replaces_a_grown_process() {
    let app = "import os\nhoard = []\ndef application(e, sr):\n    if e['PATH_INFO'] == '/grow':\n        hoard.append(b'x' * (96 << 20))\n    sr('200 OK', [])\n    return [str(os.getpid()).encode()]\n";
    let mut apache = Apache::start(
        Mpm::Event,
        &conf("processes=1 threads=2 rss-limit=80M"),
        &[("app/app.wsgi", app)],
    );
    let first = apache.get("/").text();
    for _ in 0..5 {
        assert_eq!(
            apache.get("/").text(),
            first,
            "below the limit: not recycled"
        );
    }
    assert_eq!(apache.get("/grow").status, 200);
    served_by_a_new_process(&apache, &first);
    apache.wait_for_log("due for recycling (rss-limit)");
    apache.stop();
}

/// `apachectl graceful` hands a processes=1 group over without a gap: the old process
/// keeps serving until the new generation's process has run its preloads, then drains.
#[test]
fn a_graceful_restart_hands_over_without_a_gap() {
    let mut apache = Apache::start(
        Mpm::Event,
        &preload_conf("processes=1 threads=4"),
        &[("app/app.wsgi", PID_APP), ("app/preload.py", SLOW_PRELOAD)],
    );
    let first = apache.get("/").text();
    let results = std::thread::scope(|scope| {
        let running = scope.spawn(|| load(&apache, 4, |r| distinct_pids(r).len() >= 2));
        std::thread::sleep(Duration::from_millis(300));
        apache.signal("-USR1");
        running.join().unwrap()
    });
    let failed: Vec<_> = results.iter().filter(|(s, _, _)| *s != 200).collect();
    assert!(failed.is_empty(), "{failed:?}\n{}", apache.error_log());
    let pids = distinct_pids(&results);
    assert_eq!(pids.len(), 2, "{pids:?}\n{}", apache.error_log());
    assert_eq!(pids[0], first);
    let import_started: f64 =
        std::fs::read_to_string(apache.scratch.dir.join(format!("app/preload-{}", pids[1])))
            .unwrap()
            .parse()
            .unwrap();
    assert!(
        results
            .iter()
            .any(|(_, pid, at)| *pid == first && *at > import_started + 0.5),
        "the old process stopped serving before the new generation's was ready"
    );
    // Both accept for a moment while the old one is told to drain.
    apache.wait_for_log(&format!("daemon process {first} of group 'life' exiting"));
    for _ in 0..5 {
        assert_eq!(
            apache.get("/").text(),
            pids[1],
            "the old process was retired"
        );
    }
    apache.stop();
}

/// A replacement whose initialisation fails is retried with backoff while the process
/// it would replace keeps serving; once initialisation works again, it takes over.
#[test]
fn a_failing_replacement_is_retried_while_the_old_process_serves() {
    let mut apache = Apache::start(
        Mpm::Event,
        &preload_conf("processes=1 threads=2 maximum-requests=5"),
        &[("app/app.wsgi", PID_APP), ("app/preload.py", SLOW_PRELOAD)],
    );
    for expected in PRELOAD_FAILURE_LOG {
        apache.allow_log(expected);
    }
    let first = apache.get("/").text();
    std::fs::write(apache.scratch.dir.join("app/fail"), "").unwrap();
    let log_failures = || apache.error_log().matches("WSGI1113").count();
    let results = load(&apache, 2, |_| log_failures() >= 2);
    assert!(log_failures() >= 2, "{}", apache.error_log());
    assert!(
        results.iter().all(|(s, pid, _)| *s == 200 && *pid == first),
        "the first process served everything while its replacement failed: {:?}",
        distinct_pids(&results)
    );
    std::fs::remove_file(apache.scratch.dir.join("app/fail")).unwrap();
    let results = load(&apache, 2, |r| distinct_pids(r).iter().any(|p| *p != first));
    assert!(results.iter().all(|(s, _, _)| *s == 200));
    assert!(
        distinct_pids(&results).iter().any(|p| *p != first),
        "a replacement took over once initialisation worked: {}",
        apache.error_log()
    );
    apache.stop();
}

/// A process is not ready until its preloads succeed: at first start, an initialisation
/// that fails is retried with backoff; a request sent meanwhile is answered 500 at once
/// (not queued until socket-timeout), and once the cause is gone the process that
/// initialised serves. No request ever meets a broken application.
#[test]
fn a_failing_first_start_is_retried_and_never_serves_a_broken_app() {
    let scratch = common::Scratch::new("failing-start");
    scratch.write("app/app.wsgi", PID_APP);
    scratch.write("app/preload.py", SLOW_PRELOAD);
    scratch.write("app/fail", "");
    let mut apache = Apache::start_in(Mpm::Event, scratch, &preload_conf("processes=1 threads=2"));
    for expected in PRELOAD_FAILURE_LOG {
        apache.allow_log(expected);
    }
    apache.allow_log("WSGI1040");
    let port = apache.port;
    let waiting = std::thread::spawn(move || common::get(port, "/"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while apache.error_log().matches("WSGI1113").count() < 2 {
        assert!(Instant::now() < deadline, "{}", apache.error_log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        waiting.join().unwrap().status,
        500,
        "{}",
        apache.error_log()
    );
    std::fs::remove_file(apache.scratch.dir.join("app/fail")).unwrap();
    let answered = loop {
        let r = apache.get("/");
        if r.status == 200 {
            break r;
        }
        assert_eq!(r.status, 500);
        assert!(Instant::now() < deadline, "{}", apache.error_log());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        apache
            .scratch
            .dir
            .join(format!("app/preload-{}", answered.text()))
            .exists(),
        "answered by a process that ran its preload"
    );
    apache.stop();
}

/// restart-interval recycles a processes=1 group under load without a failed request.
#[test]
fn restart_interval_recycles_without_a_gap() {
    let mut apache = Apache::start(
        Mpm::Event,
        &preload_conf("processes=1 threads=4 restart-interval=2"),
        &[("app/app.wsgi", PID_APP), ("app/preload.py", SLOW_PRELOAD)],
    );
    let results = load(&apache, 2, |r| distinct_pids(r).len() >= 2);
    assert!(
        results.iter().all(|(s, _, _)| *s == 200),
        "{}",
        apache.error_log()
    );
    assert!(distinct_pids(&results).len() >= 2, "{}", apache.error_log());
    apache.wait_for_log("due for recycling (restart-interval)");
    apache.stop();
}

/// maximum-requests-jitter: each process draws its own recycling point, so the processes
/// of a group do not all recycle at the same moment.
#[test]
fn maximum_requests_jitter_spreads_recycling_points() {
    let mut apache = Apache::start(
        Mpm::Event,
        &conf("processes=4 threads=1 maximum-requests=5 maximum-requests-jitter=1000"),
        &[("app/app.wsgi", PID_APP)],
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let limits = loop {
        let limits: Vec<u64> = apache
            .error_log()
            .lines()
            .filter_map(|l| l.split("recycled after ").nth(1))
            .map(|rest| rest.split(' ').next().unwrap().parse().unwrap())
            .collect();
        if limits.len() >= 4 || Instant::now() > deadline {
            break limits;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(limits.len(), 4, "{}", apache.error_log());
    assert!(limits.iter().all(|n| (5..=1005).contains(n)), "{limits:?}");
    assert!(
        limits.iter().collect::<HashSet<_>>().len() > 1,
        "four processes drew the same recycling point: {limits:?}"
    );
    apache.stop();
}
