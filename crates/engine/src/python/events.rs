//! One request's bookkeeping, as mod_wsgi 6 keeps it: the request's entry in
//! `mod_wsgi.active_requests` (its `request_data()` dict, under its request id), the
//! `request_started`, `response_started`, `request_exception` and `request_finished`
//! events for `subscribe_events()` callbacks (nothing is built while an interpreter has
//! none), and the phase timings, GIL waits and I/O recorded for `request_metrics()`.

use super::interpreters::Interpreter;
use super::request_stats::{self, Tally};
use crate::telemetry::slow;
use mod_wsgi_metrics::telemetry::{Instants, SlowRequest};
use mod_wsgi_metrics::{Phase, RequestSample, ThreadStats};
use mod_wsgi_wire::Environ;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use std::cell::RefCell;
use std::time::Instant;

thread_local! {
    /// The `active_requests` key of the request this thread is running ("" when none).
    static CURRENT: RefCell<String> = const { RefCell::new(String::new()) };
}

/// The key of the request this thread is running, if any.
pub(crate) fn current_request_key() -> Option<String> {
    CURRENT.with(|c| {
        let key = c.borrow();
        (!key.is_empty()).then(|| key.clone())
    })
}

/// What the environ and the events say about a request's timing and its thread.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts {
    /// Apache accepted the request (µs since the epoch).
    pub request_start_us: u64,
    /// Handed to the daemon group, and started by a daemon thread (0 in embedded mode).
    pub queue_start_us: u64,
    pub daemon_start_us: u64,
    pub application_start_us: u64,
    /// The Apache child that took the request.
    pub server_pid: u64,
    pub thread_id: u64,
    pub thread_requests: u64,
    pub total_requests: u64,
}

/// The request's `mod_wsgi.request_start`, `queue_start`, `daemon_start` and `server_pid`
/// (in µs for the instants), found in one pass over the environ.
fn instants(environ: &Environ) -> [u64; 4] {
    const NAMES: [&str; 4] = ["request_start", "queue_start", "daemon_start", "server_pid"];
    let mut found = [0; 4];
    for (key, value) in environ.iter() {
        if let Some(name) = key.strip_prefix("mod_wsgi.")
            && let Some(i) = NAMES.iter().position(|n| *n == name)
        {
            found[i] = value.parse().unwrap_or(0);
        }
    }
    found
}

fn seconds(us: u64) -> f64 {
    us as f64 / 1e6
}

/// One request, from before the application is called to after close().
pub struct RequestTrace<'py> {
    started: Instant,
    /// The thread's (user, system) CPU seconds at the start, when anyone wants them.
    cpu_start: Option<(f64, f64)>,
    pub facts: RequestFacts,
    thread: &'static ThreadStats,
    /// This request's `request_data()` dict and its key in `active_requests`.
    data: Option<(Bound<'py, PyString>, Bound<'py, PyDict>)>,
    active: Bound<'py, PyDict>,
    /// The interpreter's `_publish`, when it has subscribers.
    publish: Option<Bound<'py, PyAny>>,
    request_id: Option<Bound<'py, PyAny>>,
    /// Counted as running for the telemetry reporter, until it finishes.
    running: bool,
}

impl<'py> RequestTrace<'py> {
    pub fn begin(py: Python<'py>, interp: &Interpreter, environ: &Environ) -> RequestTrace<'py> {
        let thread = request_stats::this_thread(py);
        let now = crate::epoch_us();
        thread.begin(now);
        let subscribed = !interp.shim.event_callbacks.bind(py).is_empty();
        let [
            request_start_us,
            queue_start_us,
            daemon_start_us,
            server_pid,
        ] = instants(environ);
        slow::begin(
            || SlowRequest {
                start_us: now,
                thread_id: thread.thread_id,
                server_pid,
                instants: Instants {
                    request_start: request_start_us,
                    queue_start: queue_start_us,
                    daemon_start: daemon_start_us,
                    application_start: now,
                    application_finish: 0,
                },
                ..SlowRequest::default()
            },
            environ,
        );
        RequestTrace {
            started: Instant::now(),
            cpu_start: thread_cpu(subscribed || slow::tracking()),
            facts: RequestFacts {
                request_start_us,
                queue_start_us,
                daemon_start_us,
                application_start_us: now,
                server_pid,
                thread_id: thread.thread_id,
                thread_requests: thread.started(),
                total_requests: request_stats::count_request(),
            },
            thread,
            data: None,
            active: interp.shim.active_requests.bind(py).clone(),
            publish: subscribed.then(|| interp.shim.publish_event.bind(py).clone()),
            request_id: None,
            running: true,
        }
    }

    fn daemon_mode(&self) -> bool {
        self.facts.queue_start_us != 0
    }

    /// Publishes `name` with the payload `fill` writes; returns the event after every
    /// callback ran (a callback returning a dict has it merged in, as in mod_wsgi 6).
    fn publish(
        &self,
        name: &str,
        fill: impl FnOnce(&Bound<'py, PyDict>) -> PyResult<()>,
    ) -> Option<Bound<'py, PyDict>> {
        let publish = self.publish.as_ref()?;
        let py = publish.py();
        let sent = (|| {
            let event = PyDict::new(py);
            if let Some(id) = &self.request_id {
                event.set_item("request_id", id)?;
            }
            fill(&event)?;
            match &self.data {
                Some((_, data)) => event.set_item("request_data", data)?,
                None => event.set_item("request_data", PyDict::new(py))?,
            }
            publish.call1((name, &event))?;
            Ok(event)
        })();
        sent.map_err(|e: PyErr| {
            tracing::error!(
                "WSGI0112: publishing the '{name}' event failed: {}",
                super::format_exception(py, &e)
            );
        })
        .ok()
    }

    /// The request's environ is built: registers it in `active_requests` and publishes
    /// `request_started`. Returns `start_response` (wrapped to publish `response_started`
    /// when there are subscribers) and the application to call, which a callback may
    /// have replaced by returning `{"application_object": wrapper}`.
    pub fn started(
        &mut self,
        interp: &Interpreter,
        environ: &Bound<'py, PyDict>,
        start_response: Bound<'py, PyAny>,
        application: Bound<'py, PyAny>,
        callable: &str,
    ) -> (Bound<'py, PyAny>, Bound<'py, PyAny>) {
        let py = environ.py();
        let id = environ
            .get_item(interp.shim.environ_keys.get(py, "mod_wsgi.request_id"))
            .ok()
            .flatten()
            .and_then(|id| id.cast_into::<PyString>().ok())
            .filter(|id| id.to_str().is_ok_and(|s| !s.is_empty()));
        let key = id.clone().unwrap_or_else(|| {
            PyString::new(
                py,
                &format!("{}-{}", std::process::id(), self.facts.total_requests),
            )
        });
        let data = PyDict::new(py);
        if self.active.set_item(&key, &data).is_ok() {
            CURRENT.with(|c| {
                let mut current = c.borrow_mut();
                current.clear();
                current.push_str(key.to_str().unwrap_or_default());
            });
            self.data = Some((key, data));
        }
        self.request_id = id.map(Bound::into_any);
        if self.publish.is_none() {
            return (start_response, application);
        }
        let f = self.facts;
        let daemon = self.daemon_mode();
        let event = self.publish("request_started", |e| {
            e.set_item("thread_id", f.thread_id)?;
            e.set_item("daemon_connects", u32::from(daemon))?;
            e.set_item("daemon_restarts", 0)?;
            e.set_item("server_pid", f.server_pid)?;
            e.set_item("request_start", seconds(f.request_start_us))?;
            e.set_item("queue_start", seconds(f.queue_start_us))?;
            e.set_item("daemon_start", seconds(f.daemon_start_us))?;
            e.set_item("application_object", &application)?;
            e.set_item("callable_object", callable)?;
            e.set_item("request_environ", environ)?;
            e.set_item("application_start", seconds(f.application_start_us))
        });
        let application = event
            .and_then(|e| e.get_item("application_object").ok().flatten())
            .unwrap_or(application);
        let observe = interp.shim.observe_start_response.bind(py);
        let wrapped = match &self.request_id {
            Some(id) => observe.call1((&start_response, id)),
            None => observe.call1((&start_response, py.None())),
        };
        (wrapped.unwrap_or(start_response), application)
    }

    /// `request_exception`, with the exception as a (type, value, traceback) tuple.
    pub fn exception(&self, e: &PyErr) {
        if let Some(publish) = &self.publish {
            let py = publish.py();
            self.publish("request_exception", |ev| {
                let info = (e.get_type(py), e.value(py), e.traceback(py));
                ev.set_item("exception_info", info)
            });
        }
    }

    /// Records the request for `request_metrics()` and publishes `request_finished`.
    pub fn finished(mut self, status: u16, input_length: u64, output_length: u64) {
        let now = crate::epoch_us();
        let application_us = self.started.elapsed().as_micros() as u64;
        // (user, system) seconds this request used, when anyone wants them.
        let cpu = self.cpu_start.and_then(|(user, system)| {
            let (user_end, system_end) = thread_cpu(self.publish.is_some() || slow::tracking())?;
            Some(((user_end - user).max(0.0), (system_end - system).max(0.0)))
        });
        let cpu_us = cpu.map_or(0, |(user, system)| ((user + system) * 1e6) as u64);
        let io: Tally = request_stats::take_tally();
        let f = self.facts;
        let (server_us, queue_us, daemon_us) = if self.daemon_mode() {
            (
                f.queue_start_us.saturating_sub(f.request_start_us),
                f.daemon_start_us.saturating_sub(f.queue_start_us),
                f.application_start_us.saturating_sub(f.daemon_start_us),
            )
        } else {
            (
                f.application_start_us.saturating_sub(f.request_start_us),
                0,
                0,
            )
        };
        let mut sample = RequestSample {
            status,
            counters: [
                io.gil_waits,
                io.input_bytes,
                io.input_reads,
                io.output_bytes,
                io.output_writes,
            ],
            cpu_us,
            ..RequestSample::default()
        };
        let phases = &mut sample.phases_us;
        phases[Phase::Server as usize] = server_us;
        phases[Phase::Queue as usize] = queue_us;
        phases[Phase::Daemon as usize] = daemon_us;
        phases[Phase::Application as usize] = application_us;
        phases[Phase::Request as usize] = server_us + queue_us + daemon_us + application_us;
        phases[Phase::GilWait as usize] = io.gil_wait_us;
        phases[Phase::InputRead as usize] = io.input_us;
        phases[Phase::OutputWrite as usize] = io.output_us;
        self.thread.finish(&sample, now);
        self.running = false;
        slow::finish(now, |r| {
            r.status = status;
            r.input_bytes = io.input_bytes;
            r.input_reads = io.input_reads;
            r.output_bytes = io.output_bytes;
            r.output_writes = io.output_writes;
            r.input_read_us = io.input_us;
            r.output_write_us = io.output_us;
            r.gil_wait_us = io.gil_wait_us;
            r.gil_wait_count = io.gil_waits;
            let (user, system) = cpu.unwrap_or_default();
            r.cpu_user_us = (user * 1e6) as u64;
            r.cpu_system_us = (system * 1e6) as u64;
        });
        if self.publish.is_some() {
            let took = seconds(application_us);
            // As mod_wsgi 6: the thread's CPU time, scaled down to the application's
            // time when the clock's granularity makes it larger.
            let (mut user, mut system) = cpu.unwrap_or_default();
            if user + system > took {
                user = user / (user + system) * took;
                system = took - user;
            }
            self.publish("request_finished", |e| {
                e.set_item("thread_id", f.thread_id)?;
                e.set_item("server_pid", f.server_pid)?;
                e.set_item("request_start", seconds(f.request_start_us))?;
                e.set_item("queue_start", seconds(f.queue_start_us))?;
                e.set_item("daemon_start", seconds(f.daemon_start_us))?;
                e.set_item("input_reads", io.input_reads)?;
                e.set_item("input_length", input_length)?;
                e.set_item("input_time", seconds(io.input_us))?;
                e.set_item("output_length", output_length)?;
                e.set_item("output_writes", io.output_writes)?;
                e.set_item("output_time", seconds(io.output_us))?;
                e.set_item("cpu_user_time", user)?;
                e.set_item("cpu_system_time", system)?;
                e.set_item("cpu_time", user + system)?;
                e.set_item("application_start", seconds(f.application_start_us))?;
                e.set_item("application_finish", seconds(f.application_start_us) + took)?;
                e.set_item("application_time", took)?;
                e.set_item("status", status)?;
                e.set_item("response_status", status)?;
                e.set_item("gil_wait_time", seconds(io.gil_wait_us))?;
                e.set_item("gil_wait_count", io.gil_waits)
            });
        }
        self.leave();
    }

    /// Takes the request out of `active_requests`.
    fn leave(&mut self) {
        if let Some((key, _)) = self.data.take() {
            let _ = self.active.del_item(key);
            CURRENT.with(|c| c.borrow_mut().clear());
        }
    }
}

impl Drop for RequestTrace<'_> {
    fn drop(&mut self) {
        if self.running {
            slow::finish(crate::epoch_us(), |_| {});
        }
        self.leave();
    }
}

/// This thread's CPU time so far as (user, system) seconds: split, for the events of an
/// interpreter with subscribers; as a total (in the first place) when only
/// `request_metrics()` wants it; None (no system call) when nobody does.
fn thread_cpu(subscribed: bool) -> Option<(f64, f64)> {
    if subscribed {
        Some(thread_cpu_split())
    } else if request_stats::thread_cpu_wanted() {
        Some((request_stats::thread_cpu_us() as f64 / 1e6, 0.0))
    } else {
        None
    }
}

/// This thread's CPU time so far: (user, system) seconds.
fn thread_cpu_split() -> (f64, f64) {
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into `usage`, which lives on this stack frame for the call.
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) } != 0 {
        return (0.0, 0.0);
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (seconds(usage.ru_utime), seconds(usage.ru_stime))
}
