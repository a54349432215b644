//! `mod_wsgi.request_metrics()` and `process_metrics()` after requests served through
//! `wsgi::run`: the requests since the previous call with their status classes and
//! bytes in and out, the next call starting afresh, and the process's lifetime count.

mod common;

use common::{FAILED_BEFORE_HEAD, eval, python, request, script, serve};
use mod_wsgi_engine::python::with_interpreter;
use mod_wsgi_engine::wsgi::Outcome;

const METRICS: &str = r#"
import mod_wsgi
m = mod_wsgi.request_metrics()
result = [m["request_count"], m["status_2xx"], m["status_4xx"], m["status_5xx"],
          m["input_bytes"], m["output_bytes"], sum(m["request_threads_completed"]),
          m["queue_time"], m["daemon_time"]]
"#;

fn request_metrics() -> Vec<Option<u64>> {
    with_interpreter("", |py, _| eval(py, METRICS)).expect("entered")
}

#[test]
fn the_requests_since_the_previous_call_are_counted() {
    python();
    assert_eq!(request_metrics()[0], Some(0), "nothing served yet");
    let path = script(
        "measured.wsgi",
        r#"
def application(environ, start_response):
    body = environ["wsgi.input"].read()
    if environ["PATH_INFO"] == "/fail":
        raise ValueError("broken")
    status = "404 Not Found" if environ["PATH_INFO"] == "/missing" else "200 OK"
    start_response(status, [])
    return [b"12345", body]
"#,
    );
    for (path_info, body, expected) in [
        ("/", &b""[..], Outcome::Complete),
        ("/upload", &b"0123456789"[..], Outcome::Complete),
        ("/missing", &b""[..], Outcome::Complete),
        ("/fail", &b""[..], FAILED_BEFORE_HEAD),
    ] {
        let mut req = request(&path, "measured");
        req.environ.set("PATH_INFO", path_info);
        assert_eq!(serve(req, body).0, expected, "{path_info}");
    }
    // Counts, then the daemon-only phases (None in embedded mode).
    assert_eq!(
        request_metrics(),
        [
            Some(4),
            Some(2),
            Some(1),
            Some(1),
            Some(10),
            Some(25),
            Some(4),
            None,
            None
        ]
    );
    assert_eq!(request_metrics()[..2], [Some(0), Some(0)], "a new period");
    let lifetime: u64 = with_interpreter("measured", |py, _| {
        eval(
            py,
            "import mod_wsgi\nresult = mod_wsgi.process_metrics()['request_count']",
        )
    })
    .expect("entered");
    assert_eq!(lifetime, 4);
}
