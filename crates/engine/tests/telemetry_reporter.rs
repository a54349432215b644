//! The telemetry reporter of a process (WSGITelemetryService, WSGISlowRequests), with a
//! datagram socket standing in for the `mod_wsgi-telemetry` ingester: process_started
//! with the process's identity, process_stopping with the reason, then the last sample
//! (the requests, their statuses and bytes), the slow requests with who asked for what,
//! and process_stopped with the lifetime count.

mod common;

use common::{request, scratch, script, serve, settings, start_python};
use mod_wsgi_config::TelemetryConfig;
use mod_wsgi_engine::telemetry;
use mod_wsgi_engine::wsgi::Outcome;
use mod_wsgi_metrics::telemetry::field;
use std::collections::HashMap;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// A field's value as the ingester decodes it.
#[derive(Debug, Clone, PartialEq)]
enum FieldValue {
    U64(u64),
    F64(f64),
    Bytes(Vec<u8>),
    Array(usize),
}

/// One datagram: its kind, pid and fields by id.
struct Received {
    kind: u8,
    pid: u32,
    fields: HashMap<u16, FieldValue>,
}

impl Received {
    fn u64(&self, id: u16) -> Option<u64> {
        match self.fields.get(&id)? {
            FieldValue::U64(v) => Some(*v),
            _ => None,
        }
    }

    fn text(&self, id: u16) -> Option<String> {
        match self.fields.get(&id)? {
            FieldValue::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }
}

/// Decodes mod_wsgi 6's datagram: a 24-byte little-endian header, then fields of
/// (u16 id, u8 type, value).
fn decode(datagram: &[u8]) -> Received {
    assert_eq!(&datagram[..5], b"WSGI\x01", "magic and version");
    let u16_at = |at: usize| u16::from_le_bytes([datagram[at], datagram[at + 1]]);
    let eight = |at: usize| -> [u8; 8] { datagram[at..at + 8].try_into().expect("8 bytes") };
    let mut fields = HashMap::new();
    let mut at = 24;
    while at < datagram.len() {
        let id = u16_at(at);
        let kind = datagram[at + 2];
        at += 3;
        let value = match kind {
            1 => {
                at += 8;
                FieldValue::U64(u64::from_le_bytes(eight(at - 8)))
            }
            2 => {
                at += 8;
                FieldValue::F64(f64::from_le_bytes(eight(at - 8)))
            }
            4 => {
                let len = usize::from(u16_at(at));
                at += 2 + len;
                FieldValue::Bytes(datagram[at - len..at].to_vec())
            }
            5 | 6 => {
                let count = usize::from(u16_at(at));
                at += 2 + count * if kind == 5 { 4 } else { 8 };
                FieldValue::Array(count)
            }
            other => panic!("unknown field type {other} of field {id}"),
        };
        fields.insert(id, value);
    }
    assert_eq!(at, datagram.len(), "fields end with the datagram");
    Received {
        kind: datagram[5],
        pid: u32::from_le_bytes(datagram[8..12].try_into().expect("4 bytes")),
        fields,
    }
}

fn receive(ingester: &UnixDatagram) -> Received {
    let mut buf = vec![0u8; 64 * 1024];
    let n = ingester.recv(&mut buf).expect("a datagram arrives");
    decode(&buf[..n])
}

const PROCESS_STARTED: u8 = 5;
const PROCESS_STOPPING: u8 = 6;
const PROCESS_STOPPED: u8 = 7;
const REQUEST_METRICS: u8 = 2;
const SLOW_REQUEST: u8 = 4;

#[test]
fn a_process_reports_its_start_its_requests_and_its_end() {
    let socket = scratch().join("ingester.sock");
    let ingester = UnixDatagram::bind(&socket).expect("ingester socket");
    // A guard against a hang only: every datagram below is sent before it is awaited.
    ingester
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout set");
    start_python(mod_wsgi_engine::python::PythonSettings {
        process_group: "reporting-group".to_owned(),
        telemetry: TelemetryConfig {
            socket: Some(socket.display().to_string()),
            // No periodic sample during the test: the last one comes when it stops.
            interval: Some(3600.0),
            slow_requests: Some(0.001),
            capture_user_agent: false,
        },
        ..settings()
    });
    telemetry::start();
    let started = receive(&ingester);
    assert_eq!(started.kind, PROCESS_STARTED);
    assert_eq!(started.pid, std::process::id());
    assert_eq!(
        started.text(field::PROCESS_GROUP).as_deref(),
        Some("reporting-group")
    );
    assert_eq!(
        started.text(field::MOD_WSGI_VERSION).as_deref(),
        Some("6.1.1")
    );
    let python = started.text(field::PYTHON_VERSION).expect("python version");
    assert!(
        python.starts_with(mod_wsgi_engine::PYTHON_VERSION),
        "{python}"
    );

    let path = script(
        "reported.wsgi",
        r#"
import time
def application(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        time.sleep(0.01)
    status = "404 Not Found" if environ["PATH_INFO"] == "/missing" else "200 OK"
    start_response(status, [])
    return [b"12345"]
"#,
    );
    for path_info in ["/", "/slow", "/missing"] {
        let mut req = request(&path, "");
        req.environ.set("PATH_INFO", path_info);
        let (outcome, record) = serve(req, b"");
        assert_eq!(outcome, Outcome::Complete, "{}", record.log_text());
    }

    telemetry::stopping("maximum-requests");
    let stopping = receive(&ingester);
    assert_eq!(stopping.kind, PROCESS_STOPPING);
    assert_eq!(
        stopping.text(field::SHUTDOWN_REASON).as_deref(),
        Some("maximum-requests")
    );
    assert_eq!(stopping.u64(field::ACTIVE_REQUESTS_AT_DECISION), Some(0));

    telemetry::stopped("maximum-requests");
    let mut rest = Vec::new();
    loop {
        let datagram = receive(&ingester);
        let last = datagram.kind == PROCESS_STOPPED;
        rest.push(datagram);
        if last {
            break;
        }
    }
    let sample = rest
        .iter()
        .find(|d| d.kind == REQUEST_METRICS)
        .expect("the last sample is sent");
    assert_eq!(sample.u64(field::REQUEST_COUNT), Some(3));
    assert_eq!(sample.u64(field::STATUS_1XX_TOTAL + 1), Some(2), "2xx");
    assert_eq!(sample.u64(field::STATUS_1XX_TOTAL + 3), Some(1), "4xx");
    assert_eq!(sample.u64(field::OUTPUT_BYTES_TOTAL), Some(15));
    let slow = rest
        .iter()
        .filter(|d| d.kind == SLOW_REQUEST)
        .find(|d| d.text(field::SLOW_PATH_INFO).as_deref() == Some("/slow"))
        .expect("the slow request is described");
    assert_eq!(slow.text(field::SLOW_METHOD).as_deref(), Some("GET"));
    assert_eq!(slow.text(field::SLOW_PEER_IP).as_deref(), Some("127.0.0.1"));
    assert_eq!(slow.u64(field::SLOW_STATUS), Some(200));
    assert_eq!(slow.u64(field::SLOW_RECORD_STATE), Some(1), "completed");
    let stopped = rest.last().expect("process_stopped");
    assert_eq!(
        stopped.text(field::SHUTDOWN_REASON).as_deref(),
        Some("maximum-requests")
    );
    assert_eq!(stopped.u64(field::LIFETIME_REQUEST_COUNT), Some(3));
    assert_eq!(stopped.u64(field::ACTIVE_REQUESTS_AT_EXIT), Some(0));
    assert_eq!(stopped.u64(field::GRACEFUL_DRAIN), Some(1));
}
