//! mod_wsgi 6's metrics functions, with its keys and shapes: `request_metrics()` (this
//! process's requests since the previous call: phase means, extremes and 65-bucket
//! histograms, I/O, status classes, per-thread lists), `process_metrics()` (this process
//! since it started) and `server_metrics()` (the Apache children, from the shared metrics
//! records instead of Apache's scoreboard; None unless WSGIServerMetrics/server-metrics).

use super::request_stats;
use super::shim::add_native;
use crate::epoch_us;
use crate::shared;
use mod_wsgi_metrics::{COUNTER_NAMES, PHASE_NAMES, Phase, PhaseReport, STATUS_CLASSES};
use pyo3::prelude::*;
use pyo3::sync::MutexExt;
use pyo3::types::{PyDict, PyList};
use std::sync::{Mutex, OnceLock};

/// Process CPU seconds (user, system) at the previous `request_metrics()` call.
static CPU_BASELINE: Mutex<Option<(f64, f64)>> = Mutex::new(None);

fn seconds(us: u64) -> f64 {
    us as f64 / 1e6
}

/// When this process started, in µs since the epoch (from /proc: boot time + start ticks).
fn process_start_us() -> u64 {
    static START: OnceLock<u64> = OnceLock::new();
    *START.get_or_init(|| {
        let boot = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("btime ")?.trim().parse::<u64>().ok())
            })
            .unwrap_or(0);
        // Field 22 of stat (index 19 after the command): start time in USER_HZ (100).
        let ticks = crate::procfs::stat_fields("self")
            .and_then(|f| f.get(19)?.parse::<u64>().ok())
            .unwrap_or(0);
        if boot == 0 {
            epoch_us()
        } else {
            boot * 1_000_000 + ticks * 10_000
        }
    })
}

/// The request threads a process has: its daemon group's threads, or the MPM's.
pub(crate) fn threads_maximum() -> usize {
    let s = super::runtime::settings();
    let n = if s.threads_per_process > 0 {
        i64::from(s.threads_per_process)
    } else {
        s.apache.threads_per_process
    };
    n.max(1) as usize
}

fn per_thread<'py, T: IntoPyObject<'py> + Copy + Default>(
    py: Python<'py>,
    report: &PhaseReport,
    length: usize,
    value: impl Fn(&mod_wsgi_metrics::ThreadReport) -> T,
) -> PyResult<Bound<'py, PyList>> {
    let mut values = vec![T::default(); length];
    for t in &report.threads {
        if let Some(slot) = values.get_mut(t.thread_id as usize - 1) {
            *slot = value(t);
        }
    }
    PyList::new(py, values)
}

/// As mod_wsgi 6: with WSGITelemetryService the external reporter is the metrics'
/// consumer, and `request_metrics()`/`process_metrics()` answer None.
fn telemetry_consumes() -> bool {
    super::runtime::settings().telemetry.socket.is_some()
}

/// `mod_wsgi.request_metrics()`.
fn request_metrics(py: Python<'_>) -> PyResult<Py<PyAny>> {
    if telemetry_consumes() {
        return Ok(py.None());
    }
    request_stats::want_thread_cpu();
    let usage = py.detach(shared::metrics::resource_usage);
    let now = epoch_us();
    let (r, since) = request_stats::take_report(py, now, process_start_us());
    let previous_cpu = CPU_BASELINE
        .lock_py_attached(py)
        .unwrap_or_else(|p| p.into_inner())
        .replace((usage.user_seconds, usage.system_seconds))
        .unwrap_or((0.0, 0.0));
    let period = (seconds(now) - seconds(since)).max(1e-6);
    let maximum = threads_maximum().max(r.threads.len());
    let daemon = !super::runtime::settings().process_group.is_empty();
    let d = PyDict::new(py);
    d.set_item("pid", std::process::id())?;
    d.set_item("start_time", seconds(since))?;
    d.set_item("stop_time", seconds(now))?;
    d.set_item("sample_period", period)?;
    let user = (usage.user_seconds - previous_cpu.0).max(0.0) / period;
    let system = (usage.system_seconds - previous_cpu.1).max(0.0) / period;
    for (name, value) in [
        ("cpu_user_utilization", user),
        ("cpu_user_time", user),
        ("cpu_system_utilization", system),
        ("cpu_system_time", system),
        ("cpu_utilization", user + system),
        ("cpu_time", user + system),
    ] {
        d.set_item(name, value)?;
    }
    d.set_item("memory_max_rss", usage.max_rss_bytes)?;
    d.set_item("memory_rss", usage.rss_bytes)?;
    d.set_item("request_threads_maximum", maximum)?;
    d.set_item("request_threads_started", r.threads.len())?;
    let active = r
        .threads
        .iter()
        .filter(|t| t.completed > 0 || t.current_elapsed_us > 0)
        .count();
    d.set_item("request_threads_active", active)?;
    d.set_item(
        "capacity_utilization",
        seconds(r.busy_us) / period / maximum as f64,
    )?;
    d.set_item("request_count", r.request_count)?;
    let throughput = r.request_count as f64 / period;
    d.set_item("request_throughput", throughput)?;
    // Kept from earlier releases of this module: the same value under its old name.
    d.set_item("request_rate", throughput)?;
    d.set_item("request_threads", maximum)?;
    for (class, n) in ["1xx", "2xx", "3xx", "4xx", "5xx", "other"]
        .iter()
        .zip(r.status)
        .take(STATUS_CLASSES)
    {
        d.set_item(format!("status_{class}"), n)?;
    }
    for (name, n) in COUNTER_NAMES.iter().zip(r.counters) {
        d.set_item(*name, n)?;
    }
    for (p, name) in PHASE_NAMES.iter().enumerate() {
        d.set_item(format!("{name}_buckets"), PyList::new(py, r.buckets[p])?)?;
    }
    d.set_item(
        "request_threads_completed",
        per_thread(py, &r, maximum, |t| t.completed)?,
    )?;
    d.set_item(
        "request_threads_buckets",
        per_thread(py, &r, maximum, |t| t.completed)?,
    )?;
    d.set_item(
        "request_threads_busy_time",
        per_thread(py, &r, maximum, |t| seconds(t.busy_us))?,
    )?;
    d.set_item(
        "request_threads_cpu_time",
        per_thread(py, &r, maximum, |t| seconds(t.cpu_us))?,
    )?;
    d.set_item(
        "request_threads_current_elapsed",
        per_thread(py, &r, maximum, |t| seconds(t.current_elapsed_us))?,
    )?;
    d.set_item(
        "request_threads_max_duration",
        per_thread(py, &r, maximum, |t| seconds(t.max_duration_us))?,
    )?;
    let daemon_only = [Phase::Queue as usize, Phase::Daemon as usize];
    for (p, name) in PHASE_NAMES.iter().enumerate() {
        let embedded_gap = !daemon && daemon_only.contains(&p);
        let phase = [
            Phase::Server,
            Phase::Queue,
            Phase::Daemon,
            Phase::Application,
            Phase::Request,
            Phase::GilWait,
            Phase::InputRead,
            Phase::OutputWrite,
        ][p];
        if embedded_gap {
            d.set_item(*name, py.None())?;
        } else {
            d.set_item(*name, r.mean(phase))?;
        }
        let (min, max) = match r.extremes_us[p] {
            Some((min, max)) if !embedded_gap => (Some(min), Some(max)),
            _ => (None, None),
        };
        d.set_item(format!("{name}_min_us"), min)?;
        d.set_item(format!("{name}_max_us"), max)?;
    }
    Ok(d.into_any().unbind())
}

/// `mod_wsgi.process_metrics()`.
fn process_metrics(py: Python<'_>) -> PyResult<Py<PyAny>> {
    if telemetry_consumes() {
        return Ok(py.None());
    }
    let usage = py.detach(shared::metrics::resource_usage);
    let now = epoch_us();
    let start = process_start_us();
    let threads = request_stats::threads(py);
    let d = PyDict::new(py);
    d.set_item("pid", std::process::id())?;
    let busy: u64 = threads.iter().map(|t| t.busy_us(now)).sum();
    d.set_item("request_busy_time", seconds(busy))?;
    d.set_item("request_count", request_stats::total_requests())?;
    d.set_item("memory_max_rss", usage.max_rss_bytes)?;
    d.set_item("memory_rss", usage.rss_bytes)?;
    d.set_item("cpu_user_time", usage.user_seconds)?;
    d.set_item("cpu_system_time", usage.system_seconds)?;
    d.set_item("cpu_time", usage.user_seconds + usage.system_seconds)?;
    d.set_item("restart_time", seconds(start))?;
    d.set_item("current_time", seconds(now))?;
    d.set_item("running_time", now.saturating_sub(start) / 1_000_000)?;
    d.set_item("request_threads", threads.len())?;
    let active = threads
        .iter()
        .filter(|t| t.current_elapsed_us(now) > 0)
        .count();
    d.set_item("active_requests", active)?;
    let list = PyList::empty(py);
    for t in &threads {
        let entry = PyDict::new(py);
        entry.set_item("thread_id", t.thread_id)?;
        entry.set_item("request_count", t.started())?;
        list.append(entry)?;
    }
    d.set_item("threads", list)?;
    // Ours: when the process started (whole seconds) and its GIL waits.
    d.set_item("start_time", start / 1_000_000)?;
    if let Some(info) = shared::metrics::process().and_then(|p| p.info()) {
        d.set_item("gil_wait_time", seconds(info.gil_wait_us))?;
    }
    Ok(d.into_any().unbind())
}

/// `mod_wsgi.server_metrics()`: mod_wsgi 6 reads Apache's scoreboard; this module has the
/// per-process records of the shared metrics instead, so each Apache child is listed with
/// its pid and as many busy ('W') and idle ('_') workers as its record counts. What only
/// the scoreboard knows (each worker's client, request line, vhost, access count and
/// bytes) is left empty or zero.
fn server_metrics(py: Python<'_>) -> PyResult<Py<PyAny>> {
    let s = super::runtime::settings();
    let Some(metrics) = shared::metrics::metrics().filter(|_| s.server_metrics) else {
        return Ok(py.None());
    };
    let now = epoch_us();
    let embedded = metrics.group_index("");
    let children: Vec<_> = metrics
        .processes()
        .into_iter()
        .filter(|p| Some(p.group) == embedded)
        .collect();
    let restart = children
        .iter()
        .map(|p| p.started_unix)
        .min()
        .unwrap_or(now / 1_000_000);
    let thread_limit = s.apache.threads_per_process.max(1);
    let d = PyDict::new(py);
    d.set_item("server_limit", s.apache.maximum_processes.max(1))?;
    d.set_item("thread_limit", thread_limit)?;
    d.set_item("running_generation", 0)?;
    d.set_item("restart_time", restart as f64)?;
    d.set_item("current_time", seconds(now))?;
    d.set_item("running_time", (now / 1_000_000).saturating_sub(restart))?;
    let processes = PyList::empty(py);
    for (num, p) in children.iter().enumerate() {
        let process = PyDict::new(py);
        process.set_item("process_num", num)?;
        process.set_item("pid", p.pid)?;
        process.set_item("generation", 0)?;
        process.set_item("quiescing", false)?;
        process.set_item("request_count", p.requests)?;
        let workers = PyList::empty(py);
        for thread in 0..p.threads.max(1) {
            let worker = PyDict::new(py);
            worker.set_item("thread_num", thread)?;
            worker.set_item("generation", 0)?;
            worker.set_item("status", if thread < p.busy { "W" } else { "_" })?;
            worker.set_item("access_count", 0)?;
            worker.set_item("bytes_served", 0)?;
            for key in ["start_time", "stop_time", "last_used"] {
                worker.set_item(key, 0.0)?;
            }
            for key in ["client", "request", "vhost"] {
                worker.set_item(key, "")?;
            }
            workers.append(worker)?;
        }
        process.set_item("workers", workers)?;
        processes.append(process)?;
    }
    d.set_item("processes", processes)?;
    Ok(d.into_any().unbind())
}

/// Adds the metrics functions' native halves to the module namespace `ns`.
pub(crate) fn install(ns: &Bound<'_, PyDict>) -> PyResult<()> {
    add_native(ns, c"_request_metrics", |args| request_metrics(args.py()))?;
    add_native(ns, c"_process_metrics", |args| process_metrics(args.py()))?;
    add_native(ns, c"_server_metrics", |args| server_metrics(args.py()))?;
    add_native(ns, c"_start_recording_metrics", |_| {
        request_stats::want_thread_cpu();
        Ok(())
    })?;
    add_native(ns, c"_request_key", |_| {
        Ok(super::events::current_request_key())
    })
}
