//! WSGITelemetryService, WSGISlowRequests and WSGITelemetryOptions against mod_wsgi 6.1's
//! own ingester, mod-wsgi-telemetry 1.1.0 (installed by `scripts/install-deps.sh --test`
//! into /opt/mod_wsgi-telemetry-venv, or MOD_WSGI_TELEMETRY_VENV): what its HTTP API
//! shows of our processes in embedded and daemon mode, and that a missing ingester
//! neither slows requests nor floods the error log.

mod common;
use common::{Apache, Mode, Mpm, Scratch, free_port};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn ingester_program() -> PathBuf {
    let venv = std::env::var("MOD_WSGI_TELEMETRY_VENV")
        .unwrap_or_else(|_| "/opt/mod_wsgi-telemetry-venv".into());
    let exe = PathBuf::from(venv).join("bin/mod_wsgi-telemetry");
    assert!(
        exe.exists(),
        "{} is missing: run scripts/install-deps.sh --test",
        exe.display()
    );
    exe
}

/// The ingester, listening on a socket the Apache children (www-data) may write to.
struct Ingester {
    child: Child,
    http_port: u16,
    log: PathBuf,
}

impl Ingester {
    fn start(socket: &str, log: PathBuf) -> Ingester {
        let http_port = free_port();
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(ingester_program())
            .args(["serve", "--listen", &format!("unix:{socket}")])
            .args(["--socket-mode", "0666", "--http-host", "127.0.0.1"])
            .args(["--http-port", &http_port.to_string()])
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let ingester = Ingester {
            child,
            http_port,
            log,
        };
        ingester.wait_for("its HTTP API", |_| true);
        ingester
    }

    fn state(&self) -> Option<Value> {
        let stream = std::net::TcpStream::connect(("127.0.0.1", self.http_port)).ok()?;
        drop(stream);
        let r = common::get(self.http_port, "/api/state");
        (r.status == 200).then(|| serde_json::from_str(&r.text()).ok())?
    }

    /// Polls the ingester's state (for at most 15 s) until `found` holds.
    fn wait_for(&self, what: &str, found: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(state) = self.state()
                && found(&state)
            {
                return state;
            }
            assert!(
                Instant::now() < deadline,
                "the ingester never showed {what}; its state: {}\nits log: {}",
                self.state().map(|s| s.to_string()).unwrap_or_default(),
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Ingester {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const APP: &str = r#"
import os, time, mod_wsgi
def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/slow":
        time.sleep(1.5)
    if path == "/missing":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"no"]
    if path == "/metrics":
        body = "%r|%r" % (mod_wsgi.request_metrics(), mod_wsgi.process_metrics())
    else:
        body = str(os.getpid())
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]
"#;

fn processes(state: &Value) -> &Vec<Value> {
    state["processes"].as_array().unwrap()
}

fn process(state: &Value, pid: u64) -> Option<&Value> {
    processes(state).iter().find(|p| p["pid"] == pid)
}

fn all_slow(state: &Value) -> Vec<&Value> {
    state["slow_requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["entry"])
        .collect()
}

fn slow_entries(state: &Value, pid: u64) -> Vec<&Value> {
    all_slow(state)
        .into_iter()
        .filter(|e| e["pid"] == pid)
        .collect()
}

fn lifecycle(state: &Value, kind: &str, pid: u64) -> Option<Value> {
    state["lifecycle_events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == kind && e["pid"] == pid)
        .cloned()
}

/// The requests the ingester counted (every process), and those with a 2xx and a 4xx
/// status.
fn counted(state: &Value) -> (u64, u64, u64) {
    let mut sums = (0, 0, 0);
    let samples = processes(state)
        .iter()
        .flat_map(|p| p["samples"].as_array().unwrap());
    for s in samples {
        let f = &s["fields"];
        sums.0 += f["request_count"].as_u64().unwrap_or(0);
        sums.1 += f["status_2xx_total"].as_u64().unwrap_or(0);
        sums.2 += f["status_4xx_total"].as_u64().unwrap_or(0);
    }
    sums
}

fn the_ingester_shows_our_processes_samples_and_slow_requests(mode: Mode) {
    let place = Scratch::new("telemetry-ingester");
    let socket = place.path("telemetry.sock");
    let ingester = Ingester::start(&socket, place.dir.join("ingester.log"));
    let conf = format!(
        "WSGITelemetryService unix:{socket} interval=0.5\n\
         WSGISlowRequests 0.5\n\
         WSGITelemetryOptions +CaptureUserAgent\n\
         {}WSGIScriptAlias / {{root}}/app/app.wsgi application-group=%{{GLOBAL}}\n",
        mode.config()
    );
    let mut apache = Apache::start(Mpm::Event, &conf, &[("app/app.wsgi", APP)]);
    // As mod_wsgi 6: the reporter consumes the metrics, the Python functions say None.
    assert_eq!(apache.get_ok("/metrics"), "None|None");
    assert_eq!(apache.get("/missing").status, 404);
    apache.get_ok("/pid");
    let port = apache.port;
    let slow = std::thread::spawn(move || {
        common::request(
            port,
            "GET",
            "/slow?secret=1",
            &[("User-Agent", "probe/1.0")],
            b"",
        )
    });
    // While it runs: an active record (state 0) after WSGISlowRequests' 0.5 s.
    let state = ingester.wait_for("the running slow request", |s| {
        all_slow(s).iter().any(|e| e["state"] == 0)
    });
    let running = all_slow(&state)[0].clone();
    let pid = running["pid"].as_u64().unwrap();
    assert_eq!(running["path_info"], "/slow", "{running}");
    assert_eq!(running["status"], 0, "{running}");
    assert!(running["duration"].as_f64().unwrap() >= 0.5, "{running}");
    assert_eq!(slow.join().unwrap().status, 200);
    let state = ingester.wait_for("the finished slow request", |s| {
        slow_entries(s, pid).iter().any(|e| e["state"] == 1)
    });
    let done = slow_entries(&state, pid)
        .into_iter()
        .find(|e| e["state"] == 1)
        .unwrap()
        .clone();
    for (key, expected) in [
        ("method", "GET"),
        ("path_info", "/slow"),
        ("scheme", "http"),
        ("protocol", "HTTP/1.1"),
        ("peer_ip", "127.0.0.1"),
        ("user_agent", "probe/1.0"),
    ] {
        assert_eq!(done[key], expected, "{key}: {done}");
    }
    assert_eq!(done["status"], 200, "{done}");
    let took = done["duration"].as_f64().unwrap();
    assert!((1.4..5.0).contains(&took), "{done}");
    assert!(done["application_time"].as_f64().unwrap() >= 1.4, "{done}");
    assert!(done["output_bytes"].as_u64().unwrap() > 0, "{done}");
    if mode == Mode::Daemon {
        assert_ne!(
            done["server_pid"], pid,
            "the Apache child that took it: {done}"
        );
    } else {
        assert_eq!(done["server_pid"], pid, "{done}");
    }
    // The periodic samples count the four requests, by status class.
    let state = ingester.wait_for("the requests in the samples", |s| counted(s) == (4, 3, 1));
    let p = process(&state, pid).unwrap();
    assert_eq!(p["mod_wsgi_version"], "6.1.1", "{p}");
    assert_eq!(p["mpm_name"], "event", "{p}");
    assert!(
        p["apache_version"]
            .as_str()
            .unwrap()
            .starts_with("Apache/2.4."),
        "{p}"
    );
    assert!(
        p["python_version"].as_str().unwrap().starts_with("3."),
        "{p}"
    );
    let group = if mode == Mode::Daemon { "suite" } else { "" };
    assert_eq!(p["process_group"], group, "{p}");
    let sample = &p["samples"].as_array().unwrap().last().unwrap()["fields"];
    assert_eq!(sample["telemetry_interval"], 0.5, "{sample}");
    assert_eq!(sample["slow_requests_threshold"], 0.5, "{sample}");
    let threads = if mode == Mode::Daemon { 4 } else { 8 };
    assert_eq!(sample["request_threads_maximum"], threads, "{sample}");
    assert_eq!(
        sample["request_time_buckets"].as_array().map(Vec::len),
        Some(65),
        "{sample}"
    );
    assert!(sample["memory_rss"].as_u64().unwrap() > 0, "{sample}");
    assert!(
        !p["gc_snapshots"].as_object().unwrap().is_empty(),
        "the collector's counters: {p}"
    );
    assert_eq!(state["decode_errors"], 0);
    assert!(lifecycle(&state, "process_started", pid).is_some());
    apache.stop();
    let state = ingester.wait_for("the process stopping", |s| {
        lifecycle(s, "process_stopped", pid).is_some()
    });
    let stopped = lifecycle(&state, "process_stopped", pid).unwrap();
    let lifetime = stopped["lifetime_request_count"].as_u64().unwrap();
    if mode == Mode::Daemon {
        assert_eq!(lifetime, 4, "{stopped}");
    } else {
        assert!(lifetime >= 1, "{stopped}");
    }
    assert_eq!(stopped["graceful_drain"], 1, "{stopped}");
    assert!(lifecycle(&state, "process_stopping", pid).is_some());
    if mode == Mode::Daemon {
        assert_eq!(stopped["shutdown_reason"], "shutdown_signal", "{stopped}");
    }
}

in_both_modes!(the_ingester_shows_our_processes_samples_and_slow_requests);

#[test]
fn without_an_ingester_requests_go_on_and_the_log_says_so_once_per_process() {
    let place = Scratch::new("telemetry-absent");
    let socket = place.path("telemetry.sock");
    let conf = format!(
        "WSGITelemetryService unix:{socket} interval=0.5\n\
         WSGIDaemonProcess quiet threads=2\n\
         WSGIScriptAlias /d {{root}}/app/app.wsgi process-group=quiet application-group=%{{GLOBAL}}\n\
         WSGIScriptAlias /e {{root}}/app/app.wsgi application-group=%{{GLOBAL}}\n"
    );
    let mut apache = Apache::start(Mpm::Prefork, &conf, &[("app/app.wsgi", APP)]);
    let started = Instant::now();
    for _ in 0..20 {
        apache.get_ok("/e/pid");
        apache.get_ok("/d/pid");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    let log = apache.wait_for_log("WSGI1160");
    let warnings = log.lines().filter(|l| l.contains("WSGI1160")).count();
    let processes = log.lines().filter(|l| l.contains("WSGI1162")).count();
    assert!(
        warnings <= processes,
        "{warnings} warnings from {processes} processes:\n{log}"
    );
    assert!(log.contains("start the ingester"), "{log}");
    // The ingester comes: sending resumes, and says so.
    let ingester = Ingester::start(&socket, place.dir.join("ingester.log"));
    apache.wait_for_log("WSGI1161");
    let pid: u64 = apache.get_ok("/d/pid").parse().unwrap();
    ingester.wait_for("the daemon process", |s| process(s, pid).is_some());
    apache.stop();
}
