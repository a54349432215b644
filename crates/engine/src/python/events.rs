//! mod_wsgi's request events and interval metrics: `subscribe_events()` callbacks hear
//! `request_started`, `response_started`, `request_exception` and `request_finished` for
//! every request of their interpreter, `request_data()` is a dict private to the current
//! request, and `request_metrics()` reports this process's requests since its last call.
//! Nothing is built for events while an interpreter has no subscriber.

use super::interpreters::Interpreter;
use super::shim::add_native;
use mod_wsgi_metrics::Interval;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

static INTERVAL: Interval = Interval::new();
static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The request this thread is running (0: none), so request_data() can tell requests apart.
    static SERIAL: Cell<u64> = const { Cell::new(0) };
}

fn epoch_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// This thread's CPU time so far: (user, system) seconds.
fn thread_cpu() -> (f64, f64) {
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into `usage`, which lives on this stack frame for the call.
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) } != 0 {
        return (0.0, 0.0);
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (seconds(usage.ru_utime), seconds(usage.ru_stime))
}

/// One request's bookkeeping, from before the application is called to after close().
pub struct RequestTrace<'py> {
    started: Instant,
    started_epoch: f64,
    /// The interpreter's `_publish_event`, when it has subscribers.
    publish: Option<Bound<'py, PyAny>>,
    /// The interpreter's `_observe_start_response`, when it has subscribers.
    observe: Option<Bound<'py, PyAny>>,
    cpu: (f64, f64),
}

impl<'py> RequestTrace<'py> {
    pub fn begin(py: Python<'py>, interp: &Interpreter) -> RequestTrace<'py> {
        SERIAL.with(|s| s.set(NEXT_SERIAL.fetch_add(1, Ordering::Relaxed)));
        let now = epoch_us();
        INTERVAL.start(now);
        let subscribed = !interp.shim.event_callbacks.bind(py).is_empty();
        RequestTrace {
            started: Instant::now(),
            started_epoch: now as f64 / 1e6,
            publish: subscribed.then(|| interp.shim.publish_event.bind(py).clone()),
            observe: subscribed.then(|| interp.shim.observe_start_response.bind(py).clone()),
            cpu: if subscribed { thread_cpu() } else { (0.0, 0.0) },
        }
    }

    fn publish(&self, name: &str, event: impl FnOnce(&Bound<'py, PyDict>) -> PyResult<()>) {
        let Some(publish) = &self.publish else { return };
        let py = publish.py();
        let sent = (|| {
            let kwargs = PyDict::new(py);
            event(&kwargs)?;
            publish.call((name,), Some(&kwargs)).map(drop)
        })();
        if let Err(e) = sent {
            tracing::error!(
                "WSGI0137: publishing the '{name}' event failed: {}",
                super::format_exception(py, &e)
            );
        }
    }

    /// `request_started`; returns `start_response`, wrapped to publish `response_started`
    /// when there are subscribers.
    pub fn started(
        &self,
        environ: &Bound<'py, PyDict>,
        start_response: Bound<'py, PyAny>,
    ) -> Bound<'py, PyAny> {
        let Some(observe) = &self.observe else {
            return start_response;
        };
        let request_start = environ
            .get_item("mod_wsgi.request_start")
            .ok()
            .flatten()
            .and_then(|v| v.extract::<String>().ok())
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(self.started_epoch, |us| us / 1e6);
        self.publish("request_started", |e| {
            e.set_item("request_environ", environ)?;
            e.set_item("request_start", request_start)?;
            e.set_item("application_start", self.started_epoch)
        });
        observe.call1((&start_response,)).unwrap_or(start_response)
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

    /// Counts the request in `request_metrics()` and publishes `request_finished`.
    pub fn finished(self, status: u16, input_length: u64, output_length: u64) {
        let took = self.started.elapsed().as_secs_f64();
        INTERVAL.record(status, took);
        if self.publish.is_some() {
            let (user, system) = thread_cpu();
            self.publish("request_finished", |e| {
                e.set_item("response_status", status)?;
                e.set_item("application_start", self.started_epoch)?;
                e.set_item("application_finish", self.started_epoch + took)?;
                e.set_item("application_time", took)?;
                e.set_item("input_length", input_length)?;
                e.set_item("output_length", output_length)?;
                e.set_item("cpu_user_time", user - self.cpu.0)?;
                e.set_item("cpu_system_time", system - self.cpu.1)
            });
        }
        SERIAL.with(|s| s.set(0));
    }
}

/// `mod_wsgi.request_metrics()`: this process's requests since the previous call.
fn request_metrics(py: Python<'_>) -> PyResult<Py<PyAny>> {
    let threads = u64::from(super::runtime::settings().threads_per_process).max(1);
    let r = INTERVAL.take(epoch_us(), threads);
    let d = PyDict::new(py);
    d.set_item("start_time", r.start_time)?;
    d.set_item("stop_time", r.stop_time)?;
    d.set_item("sample_period", r.sample_period)?;
    d.set_item("request_threads", threads)?;
    d.set_item("request_count", r.request_count)?;
    d.set_item("request_rate", r.request_rate)?;
    d.set_item("application_time", r.application_time)?;
    d.set_item("capacity_utilization", r.capacity_utilization)?;
    for (class, n) in ["1xx", "2xx", "3xx", "4xx", "5xx", "other"]
        .iter()
        .zip(r.status)
    {
        d.set_item(format!("status_{class}"), n)?;
    }
    let buckets = PyList::empty(py);
    for (bound, n) in r.buckets {
        buckets.append((bound, n))?;
    }
    d.set_item("application_time_buckets", buckets)?;
    Ok(d.into_any().unbind())
}

/// Adds `_request_serial` and `_request_metrics` to the module namespace `ns`.
pub(crate) fn install(ns: &Bound<'_, PyDict>) -> PyResult<()> {
    add_native(ns, c"_request_serial", |_| Ok(SERIAL.with(Cell::get)))?;
    add_native(ns, c"_request_metrics", |args| request_metrics(args.py()))
}
