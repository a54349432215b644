//! mod_wsgi's request events and interval metrics, as C mod_wsgi offers them:
//! `subscribe_events()` callbacks hear every stage of a request with its timings and
//! sizes, `request_data()` is private to a request and shared with the callbacks, and
//! `request_metrics()` reports the requests since its previous call.

mod common;
use common::{Apache, Mpm};

const APP: &str = r#"
import json, os, threading
import mod_wsgi

seen = []
lock = threading.Lock()

def on_event(name, **event):
    if name == "process_stopping":
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

mod_wsgi.subscribe_events(on_event)

def stopping(event, **details):
    marker = os.path.join(os.path.dirname(__file__), "..", "stopped-%d" % os.getpid())
    with open(marker, "w") as f:
        f.write("%s:%s:%s" % (event, details["shutdown_reason"], mod_wsgi.process_group))

mod_wsgi.subscribe_shutdown(stopping)

def application(environ, start_response):
    path = environ["PATH_INFO"]
    status, body = "200 OK", b"hello"
    if path == "/events":
        with lock:
            body = json.dumps([e for e in seen if e[1] != "/events"]).encode()
            seen.clear()
    elif path == "/metrics":
        m = mod_wsgi.request_metrics()
        m["application_time_buckets"] = [[str(b), n] for b, n in m["application_time_buckets"]]
        body = json.dumps(m).encode()
    elif path == "/missing":
        status = "404 Not Found"
    elif path == "/boom":
        raise ValueError("boom")
    elif path == "/upload":
        body = str(len(environ["wsgi.input"].read())).encode()
    elif path == "/data":
        data = mod_wsgi.request_data()
        body = json.dumps([data.get("path"), data is mod_wsgi.request_data()]).encode()
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
        "WSGI0020",
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
        assert_eq!(data, serde_json::json!(["/data", true]), "{prefix}");
    }
}

#[test]
fn request_metrics_reports_the_requests_since_the_last_call() {
    let mut apache = Apache::start(Mpm::Event, CONF, &[("app/app.wsgi", APP)]);
    allow_boom(&mut apache);
    json(&apache, "/d/metrics");
    exercise(&apache, "/d");
    let m = json(&apache, "/d/metrics");
    // The first /metrics call finished after it took its sample, so it counts now.
    assert_eq!(m["request_count"], 5, "{m}");
    assert_eq!(m["status_2xx"], 3, "{m}");
    assert_eq!(m["status_4xx"], 1, "{m}");
    assert_eq!(m["status_5xx"], 1, "{m}");
    assert_eq!(m["request_threads"], 2, "{m}");
    let period = m["sample_period"].as_f64().unwrap();
    assert!(period > 0.0 && period < 30.0, "{m}");
    let rate = m["request_rate"].as_f64().unwrap();
    assert!((rate - 5.0 / period).abs() < 1e-6, "{m}");
    let buckets: u64 = m["application_time_buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b[1].as_u64().unwrap())
        .sum();
    assert_eq!(buckets, 5, "{m}");
    let again = json(&apache, "/d/metrics");
    assert_eq!(
        again["request_count"], 1,
        "only the previous /metrics: {again}"
    );
}

#[test]
fn shutdown_callbacks_run_when_processes_stop() {
    let mut apache = Apache::start(Mpm::Event, CONF, &[("app/app.wsgi", APP)]);
    assert_eq!(apache.get("/d/hello").status, 200);
    assert_eq!(apache.get("/e/hello").status, 200);
    apache.stop();
    let mut reports: Vec<String> = std::fs::read_dir(&apache.scratch.dir)
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            name.starts_with("stopped-")
                .then(|| std::fs::read_to_string(e.path()).unwrap())
        })
        .collect();
    reports.sort();
    reports.dedup();
    assert_eq!(
        reports,
        ["process_stopping:exit:", "process_stopping:exit:one"],
        "the embedded child and the daemon each ran the callback"
    );
}
