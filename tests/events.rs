//! mod_wsgi 6's request events and process hooks, in embedded and daemon mode:
//! `subscribe_events()` callbacks hear every stage of a request with mod_wsgi 6's payload
//! keys, a `request_started` callback can hand back a wrapper that runs instead of the
//! application, `request_data()` is private to a request and listed in
//! `mod_wsgi.active_requests` under the request's id, `request_metrics()` reports the
//! requests since its previous call, `process_stopping` says why the process stops, and a
//! daemon passes SIGHUP/SIGUSR2 to `subscribe_signals()` callbacks.

mod common;
use common::{Apache, Mpm};
use std::time::{Duration, Instant};

const APP: &str = r#"
import json, os, threading
import mod_wsgi

seen = []
finished = []
lock = threading.Lock()

@mod_wsgi.subscribe_events
def on_event(name, **event):
    if name in ("process_stopping", "process_signal"):
        return
    data = event["request_data"]
    with lock:
        if name == "request_started":
            data["path"] = event["request_environ"]["PATH_INFO"]
            ok = event["application_start"] >= event["request_start"] > 1e9
            seen.append([name, data["path"], ok])
        elif name == "response_started":
            seen.append([name, data["path"], event["response_status"]])
        elif name == "request_exception":
            seen.append([name, data["path"], event["exception_info"][0].__name__])
        elif name == "request_finished":
            sane = event["application_time"] >= 0 and event["cpu_user_time"] >= 0
            seen.append([name, data["path"], event["response_status"],
                         event["input_length"], event["output_length"], sane])
            finished.append({k: v for k, v in event.items() if k != "request_data"})

DECORATED = on_event is mod_wsgi.event_callbacks[0]

def wrap(name, **event):
    # A middleware injected through the event: runs instead of the application.
    if name != "request_started" or event["request_environ"]["PATH_INFO"] != "/wrapped":
        return None
    inner = event["application_object"]
    def wrapper(environ, start_response):
        def start(status, headers, exc_info=None):
            return start_response(status, headers + [("X-Wrapped", "yes")])
        return [b"wrapped:"] + list(inner(environ, start))
    return {"application_object": wrapper}

mod_wsgi.subscribe_events(wrap)

def stopping(event, **details):
    marker = os.path.join(os.path.dirname(__file__), "..", "stopped-%d" % os.getpid())
    with open(marker, "w") as f:
        f.write("%s:%s:%s" % (event, details["shutdown_reason"], mod_wsgi.process_group))

mod_wsgi.subscribe_shutdown(stopping)

def on_signal(name, **event):
    marker = os.path.join(os.path.dirname(__file__), "..", "signal-%d" % os.getpid())
    with open(marker, "a") as f:
        f.write("%s:%s:%s\n" % (name, event["signame"], event["signum"]))

SIGNALS_RETURN = mod_wsgi.subscribe_signals(on_signal) is on_signal

def application(environ, start_response):
    path = environ["PATH_INFO"]
    status, body = "200 OK", b"hello"
    if path == "/events":
        with lock:
            body = json.dumps([e for e in seen if e[1] != "/events"]).encode()
            seen.clear()
    elif path == "/finished":
        with lock:
            body = json.dumps(finished[-1]).encode()
    elif path == "/environ":
        keys = ["mod_wsgi.request_id", "mod_wsgi.thread_id", "mod_wsgi.request_start",
                "mod_wsgi.queue_start", "mod_wsgi.daemon_start", "mod_wsgi.server_pid"]
        body = json.dumps({k: environ[k] for k in keys}).encode()
    elif path == "/metrics":
        m = mod_wsgi.request_metrics()
        body = json.dumps(m).encode()
    elif path == "/missing":
        status = "404 Not Found"
    elif path == "/boom":
        raise ValueError("boom")
    elif path == "/upload":
        body = str(len(environ["wsgi.input"].read())).encode()
    elif path == "/data":
        data = mod_wsgi.request_data()
        rid = environ["mod_wsgi.request_id"]
        body = json.dumps([data.get("path"), data is mod_wsgi.request_data(),
                           mod_wsgi.active_requests.get(rid) is data, rid != "",
                           DECORATED, SIGNALS_RETURN, os.getpid()]).encode()
    elif path == "/active":
        body = json.dumps(sorted(mod_wsgi.active_requests)).encode()
    start_response(status, [("Content-Type", "text/plain")])
    return [body]
"#;

const CONF: &str = "WSGIDaemonProcess one processes=1 threads=2
WSGIScriptAlias /d {root}/app/app.wsgi process-group=one
WSGIScriptAlias /e {root}/app/app.wsgi
";

fn json(apache: &Apache, path: &str) -> serde_json::Value {
    let r = apache.get(path);
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    serde_json::from_str(&r.text()).unwrap_or_else(|e| panic!("{path}: {e}: {}", r.text()))
}

fn allow_boom(apache: &mut Apache) {
    for line in [
        "WSGI1020",
        "Traceback",
        "app.wsgi\", line",
        "raise ValueError",
        "ValueError: boom",
    ] {
        apache.allow_log(line);
    }
}

fn exercise(apache: &Apache, prefix: &str) {
    assert_eq!(apache.get(&format!("{prefix}/hello")).status, 200);
    assert_eq!(apache.get(&format!("{prefix}/missing")).status, 404);
    assert_eq!(apache.get(&format!("{prefix}/boom")).status, 500);
    let upload = apache.request("POST", &format!("{prefix}/upload"), &[], &[b'x'; 1000]);
    assert_eq!(upload.text(), "1000");
}

#[test]
fn event_callbacks_hear_every_stage_of_a_request() {
    for prefix in ["/d", "/e"] {
        let mut apache = Apache::start(Mpm::Event, CONF, &[("app/app.wsgi", APP)]);
        allow_boom(&mut apache);
        json(&apache, &format!("{prefix}/events"));
        exercise(&apache, prefix);
        let events = json(&apache, &format!("{prefix}/events"));
        let want = serde_json::json!([
            ["request_started", "/hello", true],
            ["response_started", "/hello", "200 OK"],
            ["request_finished", "/hello", 200, 0, 5, true],
            ["request_started", "/missing", true],
            ["response_started", "/missing", "404 Not Found"],
            ["request_finished", "/missing", 404, 0, 5, true],
            ["request_started", "/boom", true],
            ["request_exception", "/boom", "ValueError"],
            ["request_finished", "/boom", 500, 0, 0, true],
            ["request_started", "/upload", true],
            ["response_started", "/upload", "200 OK"],
            ["request_finished", "/upload", 200, 1000, 4, true],
        ]);
        assert_eq!(events, want, "{prefix}");
        let data = json(&apache, &format!("{prefix}/data"));
        assert_eq!(
            data.as_array().unwrap()[..6],
            serde_json::json!(["/data", true, true, true, true, true])
                .as_array()
                .unwrap()[..],
            "{prefix}: request_data() is active_requests[request_id]; subscribe_* return \
             their callback"
        );
    }
}

/// The keys mod_wsgi 6.1.1's `request_finished` event carries (besides `request_data`).
const FINISHED_KEYS: [&str; 20] = [
    "application_finish",
    "application_time",
    "cpu_system_time",
    "cpu_time",
    "cpu_user_time",
    "daemon_start",
    "gil_wait_count",
    "gil_wait_time",
    "input_length",
    "input_reads",
    "input_time",
    "output_length",
    "output_time",
    "output_writes",
    "queue_start",
    "request_id",
    "request_start",
    "server_pid",
    "status",
    "thread_id",
];

#[test]
fn request_finished_carries_mod_wsgi_6s_keys_and_values() {
    let apache = Apache::start(Mpm::Event, CONF, &[("app/app.wsgi", APP)]);
    for prefix in ["/d", "/e"] {
        let environ = json(&apache, &format!("{prefix}/environ"));
        let upload = apache.request("POST", &format!("{prefix}/upload"), &[], &[b'x'; 5000]);
        assert_eq!(upload.text(), "5000");
        let event = json(&apache, &format!("{prefix}/finished"));
        for key in FINISHED_KEYS {
            assert!(event.get(key).is_some(), "{prefix}: no {key} in {event}");
        }
        let f = |k: &str| event[k].as_f64().unwrap_or_else(|| panic!("{k}: {event}"));
        // Apache's log id of the request (each request has its own).
        let id = event["request_id"].as_str().unwrap();
        assert!(
            !id.is_empty() && id != environ["mod_wsgi.request_id"],
            "{event}"
        );
        assert!(!environ["mod_wsgi.request_id"].as_str().unwrap().is_empty());
        assert_eq!(event["status"], 200, "{event}");
        assert_eq!(event["input_length"], 5000, "{event}");
        assert!(f("input_reads") >= 1.0 && f("input_time") >= 0.0, "{event}");
        assert_eq!(event["output_writes"], 1, "{prefix}: {event}");
        assert!(f("output_time") >= 0.0, "{event}");
        assert!(
            f("gil_wait_count") >= 1.0 && f("gil_wait_time") >= 0.0,
            "{event}"
        );
        assert!(f("cpu_time") <= f("application_time") + 1e-9, "{event}");
        assert!(event["thread_id"].as_u64().unwrap() >= 1, "{event}");
        let start = f("request_start");
        assert!(start > 1e9 && start <= f("application_finish"), "{event}");
        if prefix == "/d" {
            assert!(f("queue_start") >= start, "{event}");
            assert!(f("daemon_start") >= f("queue_start"), "{event}");
            assert_ne!(
                event["server_pid"],
                json(&apache, "/d/data")[6],
                "the Apache child's pid, not the daemon's"
            );
        } else {
            assert_eq!((f("queue_start"), f("daemon_start")), (0.0, 0.0), "{event}");
        }
    }
}

#[test]
fn a_request_started_callback_can_replace_the_application() {
    let apache = Apache::start(Mpm::Event, CONF, &[("app/app.wsgi", APP)]);
    for prefix in ["/d", "/e"] {
        let r = apache.get(&format!("{prefix}/wrapped"));
        assert_eq!(r.status, 200, "{prefix}");
        assert_eq!(r.text(), "wrapped:hello", "{prefix}");
        assert_eq!(r.header("X-Wrapped"), Some("yes"), "{prefix}");
        assert_eq!(apache.get(&format!("{prefix}/hello")).text(), "hello");
    }
}

#[test]
fn active_requests_lists_the_requests_in_flight_only() {
    let apache = Apache::start(Mpm::Event, CONF, &[("app/app.wsgi", APP)]);
    for prefix in ["/d", "/e"] {
        apache.get(&format!("{prefix}/hello"));
        let active = json(&apache, &format!("{prefix}/active"));
        let active = active.as_array().unwrap();
        assert_eq!(active.len(), 1, "{prefix}: only this request: {active:?}");
        assert!(!active[0].as_str().unwrap().is_empty());
    }
}

#[test]
fn request_metrics_reports_the_requests_since_the_last_call() {
    for prefix in ["/d", "/e"] {
        let mut apache = Apache::start(Mpm::Event, CONF, &[("app/app.wsgi", APP)]);
        allow_boom(&mut apache);
        json(&apache, &format!("{prefix}/metrics"));
        exercise(&apache, prefix);
        let m = json(&apache, &format!("{prefix}/metrics"));
        // The first /metrics call finished after it took its sample, so it counts now.
        assert_eq!(m["request_count"], 5, "{m}");
        assert_eq!(m["status_2xx"], 3, "{m}");
        assert_eq!(m["status_4xx"], 1, "{m}");
        assert_eq!(m["status_5xx"], 1, "{m}");
        let period = m["sample_period"].as_f64().unwrap();
        assert!(period > 0.0 && period < 30.0, "{m}");
        let throughput = m["request_throughput"].as_f64().unwrap();
        assert!((throughput - 5.0 / period).abs() < 1e-6, "{m}");
        assert_eq!(m["input_bytes"], 1000, "{m}");
        assert!(m["input_reads"].as_u64().unwrap() >= 1, "{m}");
        assert!(m["output_writes"].as_u64().unwrap() >= 4, "{m}");
        assert!(m["gil_wait_count"].as_u64().unwrap() >= 5, "{m}");
        for phase in [
            "server_time",
            "application_time",
            "request_time",
            "gil_wait_time",
            "input_read_time",
            "output_write_time",
            "queue_time",
            "daemon_time",
        ] {
            let buckets = m[format!("{phase}_buckets")].as_array().unwrap();
            assert_eq!(buckets.len(), 65, "{phase}: {m}");
            let counted: u64 = buckets.iter().map(|b| b.as_u64().unwrap()).sum();
            let daemon_only = phase == "queue_time" || phase == "daemon_time";
            if prefix == "/e" && daemon_only {
                assert!(m[phase].is_null(), "{phase} is None in embedded mode: {m}");
                assert!(m[format!("{phase}_min_us")].is_null(), "{m}");
            } else {
                assert_eq!(counted, 5, "{phase}: {m}");
                assert!(m[phase].as_f64().unwrap() >= 0.0, "{phase}: {m}");
                let (min, max) = (
                    m[format!("{phase}_min_us")].as_u64().unwrap(),
                    m[format!("{phase}_max_us")].as_u64().unwrap(),
                );
                assert!(min <= max, "{phase}: {m}");
            }
        }
        let maximum = m["request_threads_maximum"].as_u64().unwrap() as usize;
        let completed = m["request_threads_completed"].as_array().unwrap();
        assert_eq!(completed.len(), maximum, "{m}");
        let done: u64 = completed.iter().map(|n| n.as_u64().unwrap()).sum();
        assert_eq!(done, 5, "{m}");
        // Read once request_metrics() was first called.
        let cpu: f64 = m["request_threads_cpu_time"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_f64().unwrap())
            .sum();
        assert!(cpu > 0.0, "{m}");
        if prefix == "/d" {
            assert_eq!(maximum, 2, "the group's threads: {m}");
        }
        let again = json(&apache, &format!("{prefix}/metrics"));
        assert_eq!(
            again["request_count"], 1,
            "only the previous /metrics: {again}"
        );
    }
}

fn markers(apache: &Apache, prefix: &str) -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir(&apache.scratch.dir)
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            name.starts_with(prefix)
                .then(|| std::fs::read_to_string(e.path()).unwrap())
        })
        .collect();
    found.sort();
    found.dedup();
    found
}

#[test]
fn process_stopping_says_why_the_process_stops() {
    let mut apache = Apache::start(Mpm::Event, CONF, &[("app/app.wsgi", APP)]);
    assert_eq!(apache.get("/d/hello").status, 200);
    assert_eq!(apache.get("/e/hello").status, 200);
    apache.stop();
    assert_eq!(
        markers(&apache, "stopped-"),
        ["process_stopping::", "process_stopping:shutdown_signal:one"],
        "the embedded child (no reason, as in mod_wsgi 6) and the daemon"
    );

    let mut apache = Apache::start(
        Mpm::Event,
        "WSGIDaemonProcess one processes=1 threads=2 maximum-requests=2
WSGIScriptAlias /d {root}/app/app.wsgi process-group=one
",
        &[("app/app.wsgi", APP)],
    );
    for _ in 0..2 {
        assert_eq!(apache.get("/d/hello").status, 200);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while markers(&apache, "stopped-").is_empty() {
        assert!(Instant::now() < deadline, "{}", apache.error_log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        markers(&apache, "stopped-"),
        ["process_stopping:maximum_requests:one"]
    );
    apache.stop();
}

#[test]
fn a_daemon_passes_sighup_and_sigusr2_to_signal_callbacks() {
    let mut apache = Apache::start(Mpm::Event, CONF, &[("app/app.wsgi", APP)]);
    apache.allow_log("subscribe_signals() called outside daemon mode");
    let pid = json(&apache, "/d/data")[6].as_u64().unwrap();
    for signal in ["-HUP", "-USR2"] {
        let sent = std::process::Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        std::thread::sleep(Duration::from_millis(300));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let seen = markers(&apache, "signal-");
        // Each signal's callbacks run on a thread of their own: in either order.
        let mut lines: Vec<&str> = seen.iter().flat_map(|m| m.lines()).collect();
        lines.sort_unstable();
        if lines == ["process_signal:SIGHUP:1", "process_signal:SIGUSR2:12"] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{seen:?}\n{}",
            apache.error_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        json(&apache, "/d/data")[6].as_u64(),
        Some(pid),
        "the daemon kept serving"
    );
    let data = json(&apache, "/e/data");
    assert_eq!(
        data[5], true,
        "subscribe_signals returns its callback in embedded mode"
    );
    apache.stop();
}
