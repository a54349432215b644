//! `SetHandler wsgi-metrics`: the Prometheus endpoint, parsed with the reference parser
//! (Python's prometheus_client), counts requests by group and status class exactly,
//! aggregates application metrics across processes; `mod_wsgi.process_metrics()` and
//! `mod_wsgi.server_metrics()` with mod_wsgi 6's keys.

mod common;
use common::{Apache, Mpm};
use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};

const APP: &str = r#"
import json, os, urllib.parse
import mod_wsgi

orders = mod_wsgi.metrics.counter("shop_orders_total", "Orders placed")
in_cart = mod_wsgi.metrics.gauge("shop_items_in_cart", "Items in carts")
latency = mod_wsgi.metrics.histogram("shop_checkout_seconds", "Checkout time", buckets=[0.1, 1])

def application(environ, start_response):
    q = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", "")))
    path = environ["PATH_INFO"]
    status, body = "200 OK", "ok"
    if path == "/missing":
        status = "404 Not Found"
    elif path == "/boom":
        raise RuntimeError("boom")
    elif path == "/order":
        orders.inc(kind=q["kind"])
        in_cart.inc(2)
        latency.observe(float(q.get("took", "0.05")))
    elif path == "/names":
        verdicts = []
        for name in ["ok_name:total", "_x", "1st", "has-dash", "", "caf\u00e9", 7]:
            try:
                mod_wsgi.metrics.counter(name)
                verdicts.append("ok")
            except ValueError:
                verdicts.append("bad")
        for label in ["kind", "_k2", "2k", "a-b", "__reserved"]:
            try:
                orders.inc(**{label: "x"})
                verdicts.append("ok")
            except ValueError:
                verdicts.append("bad")
        body = " ".join(verdicts)
    elif path == "/forge":
        # Past the public API, straight to the native writer the shim uses.
        verdicts = []
        for family, sample in [("shop_orders_total", "shop_orders_total\nforged_line 1"),
                               ("forged\nfamily 1", "forged\nfamily 1")]:
            try:
                mod_wsgi._metric_declare(family, "counter", "")
                mod_wsgi._metric_update(family, [(sample, 1.0, False)])
                verdicts.append("stored")
            except Exception as e:
                verdicts.append(type(e).__name__)
        body = " ".join(verdicts)
    elif path == "/process":
        body = json.dumps(mod_wsgi.process_metrics())
    elif path == "/server":
        m = mod_wsgi.server_metrics()
        if m is not None:
            m["child"] = int(environ["mod_wsgi.server_pid"])
        body = json.dumps(m)
    elif path == "/bad":
        try:
            mod_wsgi.metrics.gauge("shop_orders_total")
            body = "no error"
        except ValueError as e:
            body = str(e)
    start_response(status, [("Content-Type", "text/plain")])
    return [body.encode()]
"#;

const CONF: &str = "WSGIDaemonProcess shop processes=2 threads=2
WSGIScriptAlias /d {root}/app/app.wsgi process-group=shop
WSGIScriptAlias /e {root}/app/app.wsgi
<Location /metrics>
  SetHandler wsgi-metrics
  Require all granted
</Location>
";

/// (name, sorted labels) -> value, as prometheus_client parses the exposition.
type Samples = HashMap<(String, Vec<(String, String)>), f64>;

fn parse(text: &str) -> Samples {
    // One sample per line: name TAB k=v (joined by 0x1f) TAB value.
    let script = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = "\x1f".join(k + "=" + v for k, v in sorted(s.labels.items()))
        print(s.name + "\t" + labels + "\t" + repr(s.value))
"#;
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 with prometheus_client (scripts/install-deps.sh installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Prometheus parser rejected the exposition: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let mut f = line.split('\t');
            let name = f.next().unwrap().to_owned();
            let mut labels: Vec<(String, String)> = f
                .next()
                .unwrap()
                .split('\x1f')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap();
                    (k.to_owned(), v.to_owned())
                })
                .collect();
            labels.sort();
            ((name, labels), f.next().unwrap().parse().unwrap())
        })
        .collect()
}

fn sample(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut key: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    key.sort();
    *samples
        .get(&(name.to_owned(), key.clone()))
        .unwrap_or_else(|| panic!("no sample {name}{key:?}"))
}

fn scrape(apache: &Apache) -> (String, Samples) {
    let r = apache.get("/metrics");
    assert_eq!(r.status, 200, "{}", apache.error_log());
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = r.text();
    let samples = parse(&text);
    (text, samples)
}

#[test]
fn the_endpoint_counts_requests_by_group_and_status_and_sums_app_metrics() {
    let mut apache = Apache::start(Mpm::Prefork, CONF, &[("app/app.wsgi", APP)]);
    apache.allow_log("RuntimeError: boom");
    apache.allow_log("WSGI1020");
    apache.allow_log("Traceback");
    apache.allow_log("File \"");
    apache.allow_log("raise RuntimeError");
    apache.allow_log("^^^^");
    let get = |path: &str, status: u16| {
        let r = apache.get(path);
        assert_eq!(r.status, status, "{path}: {}", apache.error_log());
    };
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                for _ in 0..10 {
                    get("/d/", 200);
                }
            });
        }
    });
    for _ in 0..20 {
        get("/e/", 200);
    }
    for _ in 0..5 {
        get("/d/missing", 404);
    }
    for _ in 0..3 {
        get("/e/boom", 500);
    }
    for i in 0..4 {
        get(
            &format!(
                "/d/order?kind=book&took={}",
                if i == 0 { "2" } else { "0.05" }
            ),
            200,
        );
    }
    for _ in 0..3 {
        get("/e/order?kind=pen", 200);
    }
    // A request is counted when Apache logs it, just after its response was sent: the
    // last ones may still be on their way when the scrape arrives.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let (text, samples) = loop {
        let (text, samples) = scrape(&apache);
        let counted = |group: &str, status: &str| {
            let key = vec![
                ("group".to_owned(), group.to_owned()),
                ("status".to_owned(), status.to_owned()),
            ];
            samples
                .get(&("mod_wsgi_requests_total".to_owned(), key))
                .copied()
        };
        let settled = counted("embedded", "2xx") >= Some(23.0)
            && counted("embedded", "5xx") >= Some(3.0)
            && counted("shop", "2xx") >= Some(34.0)
            && counted("shop", "4xx") >= Some(5.0);
        if settled || std::time::Instant::now() > deadline {
            break (text, samples);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let requests = |group: &str, status: &str| {
        sample(
            &samples,
            "mod_wsgi_requests_total",
            &[("group", group), ("status", status)],
        )
    };
    assert_eq!(requests("shop", "2xx"), 34.0, "{text}");
    assert_eq!(requests("shop", "4xx"), 5.0);
    assert_eq!(requests("embedded", "2xx"), 23.0);
    assert_eq!(requests("embedded", "5xx"), 3.0);
    assert_eq!(
        sample(
            &samples,
            "mod_wsgi_request_duration_seconds_count",
            &[("group", "shop")]
        ),
        39.0
    );
    assert_eq!(
        sample(
            &samples,
            "mod_wsgi_queue_wait_seconds_count",
            &[("group", "shop")]
        ),
        39.0,
        "every daemon request's queue wait is observed"
    );
    assert_eq!(
        sample(&samples, "shop_orders_total", &[("kind", "book")]),
        4.0,
        "summed over both daemon processes"
    );
    assert_eq!(
        sample(&samples, "shop_orders_total", &[("kind", "pen")]),
        3.0
    );
    assert_eq!(sample(&samples, "shop_items_in_cart", &[]), 14.0);
    assert_eq!(
        sample(&samples, "shop_checkout_seconds_bucket", &[("le", "0.1")]),
        6.0
    );
    assert_eq!(
        sample(&samples, "shop_checkout_seconds_bucket", &[("le", "+Inf")]),
        7.0
    );
    assert_eq!(sample(&samples, "shop_checkout_seconds_count", &[]), 7.0);
    // Per-process gauges: both daemon processes, with their threads and memory.
    let daemon_threads: Vec<_> = samples
        .iter()
        .filter(|((name, labels), _)| {
            name == "mod_wsgi_process_threads" && labels.contains(&("group".into(), "shop".into()))
        })
        .collect();
    assert_eq!(daemon_threads.len(), 2, "{text}");
    assert!(daemon_threads.iter().all(|(_, v)| **v == 2.0));
    assert!(
        samples
            .iter()
            .any(|((n, _), v)| n == "mod_wsgi_process_resident_memory_bytes" && *v > 1e6)
    );
    // Scrapes are not WSGI requests: they do not move the counts.
    let (_, again) = scrape(&apache);
    assert_eq!(
        sample(
            &again,
            "mod_wsgi_requests_total",
            &[("group", "shop"), ("status", "2xx")]
        ),
        34.0
    );
    let bad = apache.get("/d/bad").text();
    assert!(bad.contains("already declared as a counter"), "{bad}");
    // Prometheus name syntax: metric names may hold colons, label names may not start
    // with "__"; neither may start with a digit or hold other characters.
    assert_eq!(
        apache.get("/d/names").text(),
        "ok ok bad bad bad bad bad ok ok bad bad bad"
    );
}

#[test]
fn a_sample_name_with_a_line_break_cannot_add_lines_to_the_exposition() {
    let apache = Apache::start(Mpm::Prefork, CONF, &[("app/app.wsgi", APP)]);
    for prefix in ["/d", "/e"] {
        let r = apache.get(&format!("{prefix}/forge"));
        assert_eq!(r.status, 200, "{}", apache.error_log());
        assert_eq!(r.text(), "ValueError ValueError", "{prefix}");
    }
    let (text, _) = scrape(&apache);
    assert!(!text.contains("forged"), "{text}");
}

#[test]
fn process_metrics_reports_this_process_as_mod_wsgi_6_does() {
    let apache = Apache::start(Mpm::Event, CONF, &[("app/app.wsgi", APP)]);
    for prefix in ["/d", "/e"] {
        for _ in 0..3 {
            apache.get(&format!("{prefix}/"));
        }
        let text = apache.get_ok(&format!("{prefix}/process"));
        let m: serde_json::Value = serde_json::from_str(&text).unwrap();
        for key in [
            "pid",
            "request_count",
            "request_busy_time",
            "active_requests",
            "request_threads",
            "cpu_user_time",
            "cpu_system_time",
            "cpu_time",
            "memory_rss",
            "memory_max_rss",
            "restart_time",
            "current_time",
            "running_time",
        ] {
            assert!(m.get(key).is_some(), "{prefix}: {key} missing from {text}");
        }
        assert_eq!(m["active_requests"], 1, "{prefix}: this request: {text}");
        assert!(m["request_busy_time"].as_f64().unwrap() > 0.0, "{text}");
        assert!(m["restart_time"].as_f64().unwrap() <= m["current_time"].as_f64().unwrap());
        // mod_wsgi 6: `threads` lists the request threads with their request counts.
        let threads = m["threads"].as_array().unwrap();
        assert_eq!(threads.len() as u64, m["request_threads"].as_u64().unwrap());
        let counted: u64 = threads
            .iter()
            .map(|t| {
                assert!(t["thread_id"].as_u64().unwrap() >= 1, "{text}");
                t["request_count"].as_u64().unwrap()
            })
            .sum();
        assert_eq!(counted, m["request_count"].as_u64().unwrap(), "{text}");
        if prefix == "/d" {
            assert!(threads.len() <= 2, "the group has 2 threads: {text}");
        }
    }
}

#[test]
fn server_metrics_is_none_unless_enabled() {
    let apache = Apache::start(Mpm::Event, CONF, &[("app/app.wsgi", APP)]);
    for prefix in ["/d", "/e"] {
        assert_eq!(
            apache.get_ok(&format!("{prefix}/server")),
            "null",
            "{prefix}"
        );
    }
}

#[test]
fn server_metrics_lists_the_apache_children_when_enabled() {
    let conf = "WSGIServerMetrics On
WSGIDaemonProcess shop processes=2 threads=2 server-metrics=On
WSGIDaemonProcess plain threads=2
WSGIScriptAlias /d {root}/app/app.wsgi process-group=shop
WSGIScriptAlias /p {root}/app/app.wsgi process-group=plain
WSGIScriptAlias /e {root}/app/app.wsgi
";
    let apache = Apache::start(Mpm::Event, conf, &[("app/app.wsgi", APP)]);
    assert_eq!(
        apache.get_ok("/p/server"),
        "null",
        "server-metrics is per group"
    );
    for prefix in ["/d", "/e"] {
        let text = apache.get_ok(&format!("{prefix}/server"));
        let m: serde_json::Value = serde_json::from_str(&text).unwrap();
        for key in [
            "server_limit",
            "thread_limit",
            "running_generation",
            "restart_time",
            "current_time",
            "running_time",
        ] {
            assert!(m.get(key).is_some(), "{prefix}: {key} missing from {text}");
        }
        let processes = m["processes"].as_array().unwrap();
        assert!(!processes.is_empty(), "{text}");
        let child = m["child"].as_u64().unwrap();
        let me = processes
            .iter()
            .find(|p| p["pid"].as_u64() == Some(child))
            .unwrap_or_else(|| panic!("{prefix}: Apache child {child} not listed: {text}"));
        let workers = me["workers"].as_array().unwrap();
        assert_eq!(
            workers.len() as u64,
            m["thread_limit"].as_u64().unwrap(),
            "{text}"
        );
        let busy = workers.iter().filter(|w| w["status"] == "W").count();
        assert!(
            busy >= 1,
            "{prefix}: the worker relaying this request: {text}"
        );
        for key in ["thread_num", "access_count", "client", "request", "vhost"] {
            assert!(workers[0].get(key).is_some(), "{key} missing: {text}");
        }
    }
}

#[test]
fn recycling_is_counted_by_reason() {
    let apache = Apache::start(
        Mpm::Event,
        "WSGIDaemonProcess shop processes=1 threads=2 maximum-requests=5\n\
         WSGIScriptAlias /d {root}/app/app.wsgi process-group=shop\n\
         <Location /metrics>\n  SetHandler wsgi-metrics\n  Require all granted\n</Location>\n",
        &[("app/app.wsgi", APP)],
    );
    for _ in 0..5 {
        apache.get("/d/");
    }
    apache.wait_for_log("WSGI1112");
    let (text, samples) = scrape(&apache);
    assert_eq!(
        sample(
            &samples,
            "mod_wsgi_restarts_total",
            &[("group", "shop"), ("reason", "maximum-requests")]
        ),
        1.0,
        "{text}"
    );
}
