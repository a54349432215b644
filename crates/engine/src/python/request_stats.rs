//! What the requests of this process did, for mod_wsgi 6's `request_metrics()`,
//! `process_metrics()` and `request_finished` event: each request thread's counters
//! (`mod_wsgi_metrics::ThreadStats`, written only by that thread), and per request the
//! time spent waiting for the GIL, reading the body and writing the response, measured
//! around each release of the GIL (`detach_timed`) into a thread-local tally.

use mod_wsgi_metrics::{Baseline, PhaseReport, ThreadStats};
use pyo3::marker::Ungil;
use pyo3::prelude::*;
use pyo3::sync::MutexExt;
use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// Every thread that ran a request in this process, in thread id order. A thread's
/// counters live as long as the process (threads are few and long-lived).
static THREADS: Mutex<Vec<&'static ThreadStats>> = Mutex::new(Vec::new());
/// `request_metrics()`'s view of the previous call.
static BASELINE: Mutex<Option<(u64, Baseline)>> = Mutex::new(None);
static TOTAL_REQUESTS: AtomicU64 = AtomicU64::new(0);
/// Whether requests read their thread's CPU time (two system calls per request) for
/// `request_threads_cpu_time`: from the first `request_metrics()` or
/// `start_recording_metrics()` call on, as mod_wsgi 6 records only once asked to.
static THREAD_CPU_WANTED: AtomicBool = AtomicBool::new(false);

thread_local! {
    static MINE: Cell<Option<&'static ThreadStats>> = const { Cell::new(None) };
    static TALLY: Cell<Tally> = const { Cell::new(Tally::ZERO) };
}

/// The GIL waits and I/O of the request this thread is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub gil_wait_us: u64,
    pub gil_waits: u64,
    pub input_reads: u64,
    pub input_bytes: u64,
    pub input_us: u64,
    pub output_writes: u64,
    pub output_bytes: u64,
    pub output_us: u64,
}

impl Tally {
    const ZERO: Tally = Tally {
        gil_wait_us: 0,
        gil_waits: 0,
        input_reads: 0,
        input_bytes: 0,
        input_us: 0,
        output_writes: 0,
        output_bytes: 0,
        output_us: 0,
    };
}

fn tally(change: impl FnOnce(&mut Tally)) {
    TALLY.with(|t| {
        let mut now = t.get();
        change(&mut now);
        t.set(now);
    });
}

/// The tally of the request this thread ran, restarted for the next one.
pub(crate) fn take_tally() -> Tally {
    TALLY.with(|t| t.replace(Tally::ZERO))
}

/// Counts a wait for the GIL on this thread.
pub(crate) fn record_gil_wait(micros: u64) {
    tally(|t| {
        t.gil_wait_us += micros;
        t.gil_waits += 1;
    });
}

/// What a GIL release is for, so its time lands in the right phase.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Io {
    /// Reading the request body; `bytes` come from the result.
    Input,
    /// Writing `bytes` of the response.
    Output(u64),
    /// Flushing or finishing the response: time, but not a write.
    OutputFlush,
}

/// `py.detach(f)`, counting the time `f` took as body reading or response writing and
/// the time it then took to get the GIL back as a GIL wait.
pub fn detach_timed<T, F>(py: Python<'_>, io: Io, f: F) -> T
where
    F: Ungil + Send + FnOnce() -> T,
    T: Ungil + Send,
{
    let started = Instant::now();
    let (result, done) = py.detach(|| {
        let result = f();
        (result, Instant::now())
    });
    let waited = done.elapsed().as_micros() as u64;
    let took = done.duration_since(started).as_micros() as u64;
    tally(|t| {
        t.gil_wait_us += waited;
        t.gil_waits += 1;
        match io {
            Io::Input => t.input_us += took,
            Io::Output(bytes) => {
                t.output_us += took;
                t.output_writes += 1;
                t.output_bytes += bytes;
            }
            Io::OutputFlush => t.output_us += took,
        }
    });
    result
}

/// Counts `reads` reads of the request body that returned `bytes` in all.
pub fn record_input_reads(reads: u64, bytes: u64) {
    tally(|t| {
        t.input_reads += reads;
        t.input_bytes += bytes;
    });
}

/// This thread's counters, registered on its first request.
pub(crate) fn this_thread(py: Python<'_>) -> &'static ThreadStats {
    MINE.with(|mine| {
        if let Some(stats) = mine.get() {
            return stats;
        }
        let mut threads = THREADS
            .lock_py_attached(py)
            .unwrap_or_else(|p| p.into_inner());
        let stats: &'static ThreadStats =
            Box::leak(Box::new(ThreadStats::new(threads.len() as u64 + 1)));
        threads.push(stats);
        mine.set(Some(stats));
        stats
    })
}

/// Counts a request in this process; returns how many there were, this one included.
pub(crate) fn count_request() -> u64 {
    TOTAL_REQUESTS.fetch_add(1, Ordering::Relaxed) + 1
}

pub(crate) fn total_requests() -> u64 {
    TOTAL_REQUESTS.load(Ordering::Relaxed)
}

pub(crate) fn threads(py: Python<'_>) -> Vec<&'static ThreadStats> {
    THREADS
        .lock_py_attached(py)
        .unwrap_or_else(|p| p.into_inner())
        .clone()
}

/// The request threads, for a reader not attached to Python (the telemetry reporter):
/// the lock is held only to copy the list, never while waiting for the GIL.
pub(crate) fn threads_unattached() -> Vec<&'static ThreadStats> {
    THREADS.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

pub(crate) fn want_thread_cpu() {
    THREAD_CPU_WANTED.store(true, Ordering::Relaxed);
}

pub(crate) fn thread_cpu_wanted() -> bool {
    THREAD_CPU_WANTED.load(Ordering::Relaxed)
}

/// CPU time this thread has used, in µs.
pub(crate) fn thread_cpu_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into `ts`, which lives on this stack frame for the call.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

/// The requests since the previous call (the first call: since the process started),
/// and the period's start.
pub(crate) fn take_report(
    py: Python<'_>,
    now_us: u64,
    process_start_us: u64,
) -> (PhaseReport, u64) {
    let threads = threads(py);
    let mut baseline = BASELINE
        .lock_py_attached(py)
        .unwrap_or_else(|p| p.into_inner());
    let (since, reader) = baseline.get_or_insert_with(|| (process_start_us, Baseline::default()));
    let report = reader.take(&threads, now_us);
    let start = std::mem::replace(since, now_us);
    (report, start)
}
