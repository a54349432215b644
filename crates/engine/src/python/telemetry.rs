//! What the telemetry reporter asks of Python and of the request threads' counters:
//! Python's version and switch interval, the requests since the previous sample (a
//! reader of its own over the threads' counters, so `request_metrics()` keeps its own
//! periods), and each interpreter's garbage collector counters and pauses, recorded by
//! a `gc.callbacks` entry that the `mod_wsgi` module installs when telemetry is on.

use super::interpreters::{interpreter_names, with_interpreter};
use super::request_stats;
use mod_wsgi_metrics::telemetry::{GcCounters, GcEvent};
use mod_wsgi_metrics::{Baseline, PhaseReport};
use pyo3::prelude::*;

/// A pause as shim.py records it: start, duration, generation, collected, uncollectable.
type PauseTuple = (f64, f64, u64, u64, u64);

/// Python's version ("3.11.7") and `sys.getswitchinterval()` in the main interpreter.
pub fn facts() -> (String, f64) {
    with_interpreter("", |py, _| {
        let version = Python::version_str()
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned();
        let switch = py
            .import("sys")
            .and_then(|s| s.call_method0("getswitchinterval"))
            .and_then(|v| v.extract::<f64>())
            .unwrap_or(0.0);
        (version, switch)
    })
    .unwrap_or_default()
}

/// What the request threads did since `reader` last looked.
pub fn report(reader: &mut Baseline, now_us: u64) -> PhaseReport {
    reader.take(&request_stats::threads_unattached(), now_us)
}

/// Requests this process finished.
pub fn finished_requests() -> u64 {
    request_stats::threads_unattached()
        .iter()
        .map(|t| t.completed())
        .sum()
}

/// The request threads this process has.
pub fn threads_maximum() -> usize {
    super::metrics_api::threads_maximum()
}

/// Whether this is a daemon process.
pub fn is_daemon() -> bool {
    super::is_initialized() && !super::runtime::settings().process_group.is_empty()
}

/// Each interpreter's garbage collector: its name, counters and the pauses recorded
/// since the previous call (at most 64 per interpreter).
pub fn gc_samples() -> Vec<(String, GcCounters, Vec<GcEvent>)> {
    let mut samples = Vec::new();
    for name in interpreter_names() {
        let read = with_interpreter(&name, |py, _| -> PyResult<_> {
            let read = py.import("mod_wsgi")?.call_method0("_telemetry_gc_read")?;
            if read.is_none() {
                return Ok(None);
            }
            let (counters, events): (Vec<u64>, Vec<PauseTuple>) = read.extract()?;
            let mut fixed: GcCounters = [0; 18];
            for (slot, v) in fixed.iter_mut().zip(counters) {
                *slot = v;
            }
            let events = events
                .into_iter()
                .map(
                    |(start, duration, generation, collected, uncollectable)| GcEvent {
                        start,
                        duration,
                        generation,
                        collected,
                        uncollectable,
                    },
                )
                .collect();
            Ok(Some((fixed, events)))
        });
        if let Ok(Ok(Some((counters, events)))) = read {
            samples.push((name, counters, events));
        }
    }
    samples
}
