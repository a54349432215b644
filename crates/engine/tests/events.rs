//! mod_wsgi 6's request events through `wsgi::run`: `subscribe_events()` callbacks see
//! request_started, response_started and request_finished (request_exception when the
//! application raises) with the request's figures, `request_data()` is shared with them
//! and the request is listed in `active_requests` only while it runs, a request_started
//! callback can wrap the application, and a failing callback does not fail the request.

mod common;

use common::{FAILED_BEFORE_HEAD, eval, python, request, script, serve};
use mod_wsgi_engine::python::with_interpreter;
use mod_wsgi_engine::wsgi::Outcome;

/// A script recording each event in `builtins.engine_events` as (name, summary).
const RECORDER: &str = r#"
import builtins, mod_wsgi
builtins.engine_events = events = []

def summary(name, event):
    if name == "request_started":
        return (event["request_environ"]["PATH_INFO"], event["callable_object"],
                event["application_object"] is application)
    if name == "response_started":
        return (event["response_status"], event["response_headers"])
    if name == "request_exception":
        return event["exception_info"][0].__name__
    if name == "request_finished":
        return (event["status"], event["input_length"], event["output_length"],
                dict(event["request_data"]))
    return None

@mod_wsgi.subscribe_events
def record(name, **event):
    events.append((name, summary(name, event)))

def application(environ, start_response):
    mod_wsgi.request_data()["user"] = "ann"
    running = len(mod_wsgi.active_requests)
    body = environ["wsgi.input"].read()
    if environ["PATH_INFO"] == "/raise":
        raise ZeroDivisionError("bad maths")
    start_response("201 Created", [("X-Running", str(running))])
    return [body.upper()]
"#;

fn recorded(group: &str) -> String {
    with_interpreter(group, |py, _| {
        eval(
            py,
            "import builtins, mod_wsgi\n\
             result = repr((builtins.engine_events, mod_wsgi.active_requests))",
        )
    })
    .expect("entered")
}

#[test]
fn subscribers_see_each_stage_of_a_request_with_its_figures() {
    python();
    let path = script("events.wsgi", RECORDER);
    let mut req = request(&path, "events");
    req.environ.set("PATH_INFO", "/upload");
    let (outcome, record) = serve(req, b"hello");
    assert_eq!(outcome, Outcome::Complete, "{}", record.log_text());
    assert_eq!(record.body, b"HELLO");
    assert_eq!(
        record.header("X-Running"),
        Some("1"),
        "listed while it runs"
    );
    assert_eq!(
        recorded("events"),
        "([('request_started', ('/upload', 'application', True)), \
         ('response_started', ('201 Created', [('X-Running', '1')])), \
         ('request_finished', (201, 5, 5, {'user': 'ann'}))], {})"
    );
}

#[test]
fn an_application_that_raises_is_reported_and_finishes_as_500() {
    python();
    let path = script("events_raise.wsgi", RECORDER);
    let mut req = request(&path, "events-raise");
    req.environ.set("PATH_INFO", "/raise");
    let (outcome, _) = serve(req, b"");
    assert_eq!(outcome, FAILED_BEFORE_HEAD);
    assert_eq!(
        recorded("events-raise"),
        "([('request_started', ('/raise', 'application', True)), \
         ('request_exception', 'ZeroDivisionError'), \
         ('request_finished', (500, 0, 0, {'user': 'ann'}))], {})"
    );
}

#[test]
fn a_request_started_callback_can_wrap_the_application() {
    python();
    let path = script(
        "events_wrap.wsgi",
        r#"
import mod_wsgi

def wrap(application):
    def wrapper(environ, start_response):
        def tagged(status, headers, exc_info=None):
            return start_response(status, headers + [("X-Wrapped", "yes")], exc_info)
        return application(environ, tagged)
    return wrapper

@mod_wsgi.subscribe_events
def failing(name, **event):
    raise RuntimeError("a broken monitoring hook")

@mod_wsgi.subscribe_events
def wrapping(name, **event):
    if name == "request_started":
        return {"application_object": wrap(event["application_object"])}

def application(environ, start_response):
    start_response("200 OK", [])
    return [b"inner"]
"#,
    );
    let (outcome, record) = serve(request(&path, "events-wrap"), b"");
    assert_eq!(outcome, Outcome::Complete, "{}", record.log_text());
    assert_eq!(record.header("X-Wrapped"), Some("yes"));
    assert_eq!(record.body, b"inner");
}
