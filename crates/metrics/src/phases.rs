//! Per request thread statistics behind mod_wsgi 6's `request_metrics()` and
//! `process_metrics()`: how long each phase of a request took (server, queue, daemon,
//! application, whole request, GIL waits, body reads, response writes) in 65-bucket
//! histograms, byte and call counts, status classes, and each thread's busy and CPU time.
//!
//! Each request thread owns one `ThreadStats` and is its only writer, so recording a
//! request is plain loads and stores (no locked instruction, no cache line shared between
//! threads). The counters only grow; a reader (`Baseline`) keeps the totals it saw last
//! and reports the difference, so readers never reset what a writer is adding to. Only the
//! per-interval minimum and maximum are reset by the reader (an atomic swap; the writer
//! updates them with compare-and-swap, and only when a value is a new extreme).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Buckets of every phase histogram, as mod_wsgi 6 lays them out: under 1 ms, then 16
/// octaves from 1 ms to 65.536 s each split into 4 equal parts, then 65.536 s and more.
pub const TIME_BUCKETS: usize = 65;
/// Status classes: 1xx to 5xx, then anything else.
pub const STATUS_CLASSES: usize = 6;

/// The phases of a request, in the order of `PHASE_NAMES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// From Apache accepting the request to the daemon queue (daemon mode) or to the
    /// application (embedded mode).
    Server = 0,
    /// Waiting for a free daemon thread (daemon mode).
    Queue,
    /// From a daemon thread taking the request to the application (daemon mode).
    Daemon,
    Application,
    /// The sum of the four above.
    Request,
    GilWait,
    InputRead,
    OutputWrite,
}

pub const PHASES: usize = 8;
/// `request_metrics()`'s key of each phase's mean; `_buckets`, `_min_us` and `_max_us`
/// are added for the others.
pub const PHASE_NAMES: [&str; PHASES] = [
    "server_time",
    "queue_time",
    "daemon_time",
    "application_time",
    "request_time",
    "gil_wait_time",
    "input_read_time",
    "output_write_time",
];

/// Counts kept per request besides the phases, in the order of `COUNTER_NAMES`.
pub const COUNTERS: usize = 5;
pub const COUNTER_NAMES: [&str; COUNTERS] = [
    "gil_wait_count",
    "input_bytes",
    "input_reads",
    "output_bytes",
    "output_writes",
];

/// The histogram bucket of a duration.
pub fn time_bucket(seconds: f64) -> usize {
    let ms = seconds * 1000.0;
    if ms.is_nan() || ms < 1.0 {
        return 0;
    }
    if ms >= 65536.0 {
        return TIME_BUCKETS - 1;
    }
    // ms in [2^octave, 2^(octave+1)): which quarter of that octave.
    let octave = ms.log2().floor().clamp(0.0, 15.0);
    let low = octave.exp2();
    let quarter = (((ms - low) / low) * 4.0).floor().clamp(0.0, 3.0);
    octave as usize * 4 + quarter as usize
}

/// One finished request, as its thread records it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RequestSample {
    pub phases_us: [u64; PHASES],
    /// The status sent (0 when the application failed before starting a response).
    pub status: u16,
    /// In the order of `COUNTER_NAMES`.
    pub counters: [u64; COUNTERS],
    /// CPU time of the thread during the request.
    pub cpu_us: u64,
}

fn status_class(status: u16) -> usize {
    match status {
        // As mod_wsgi 6: no status means the application failed, which the client saw as 500.
        0 => 4,
        100..=599 => usize::from(status / 100) - 1,
        _ => 5,
    }
}

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicU64 = AtomicU64::new(0);
#[allow(clippy::declare_interior_mutable_const)]
const NO_MIN: AtomicU64 = AtomicU64::new(u64::MAX);
#[allow(clippy::declare_interior_mutable_const)]
const NO_BUCKETS: [AtomicU64; TIME_BUCKETS] = [ZERO; TIME_BUCKETS];

/// Adds `n` to a counter only the calling thread writes.
fn bump(word: &AtomicU64, n: u64) {
    word.store(word.load(Relaxed).wrapping_add(n), Relaxed);
}

/// One request thread's counters. Written by that thread only.
pub struct ThreadStats {
    /// mod_wsgi's thread number (from 1, in the order threads first ran a request).
    pub thread_id: u64,
    /// When the running request started (µs since the epoch), 0 while idle.
    in_flight_since: AtomicU64,
    started: AtomicU64,
    completed: AtomicU64,
    busy_us: AtomicU64,
    cpu_us: AtomicU64,
    status: [AtomicU64; STATUS_CLASSES],
    counters: [AtomicU64; COUNTERS],
    totals_us: [AtomicU64; PHASES],
    buckets: [[AtomicU64; TIME_BUCKETS]; PHASES],
    /// Since the last report: longest request, and each phase's extremes.
    max_duration_us: AtomicU64,
    min_us: [AtomicU64; PHASES],
    max_us: [AtomicU64; PHASES],
}

impl ThreadStats {
    pub const fn new(thread_id: u64) -> ThreadStats {
        ThreadStats {
            thread_id,
            in_flight_since: ZERO,
            started: ZERO,
            completed: ZERO,
            busy_us: ZERO,
            cpu_us: ZERO,
            status: [ZERO; STATUS_CLASSES],
            counters: [ZERO; COUNTERS],
            totals_us: [ZERO; PHASES],
            buckets: [NO_BUCKETS; PHASES],
            max_duration_us: ZERO,
            min_us: [NO_MIN; PHASES],
            max_us: [ZERO; PHASES],
        }
    }

    /// A request starts on this thread at `now_us`.
    pub fn begin(&self, now_us: u64) {
        bump(&self.started, 1);
        self.in_flight_since.store(now_us.max(1), Relaxed);
    }

    /// The running request finished at `now_us`.
    pub fn finish(&self, sample: &RequestSample, now_us: u64) {
        let began = self.in_flight_since.swap(0, Relaxed);
        let busy = now_us.saturating_sub(if began == 0 { now_us } else { began });
        bump(&self.busy_us, busy);
        bump(&self.cpu_us, sample.cpu_us);
        if busy > self.max_duration_us.load(Relaxed) {
            self.max_duration_us.fetch_max(busy, Relaxed);
        }
        bump(&self.status[status_class(sample.status)], 1);
        for (word, n) in self.counters.iter().zip(sample.counters) {
            bump(word, n);
        }
        for (phase, &us) in sample.phases_us.iter().enumerate() {
            bump(&self.totals_us[phase], us);
            bump(&self.buckets[phase][time_bucket(us as f64 / 1e6)], 1);
            if us < self.min_us[phase].load(Relaxed) {
                self.min_us[phase].fetch_min(us, Relaxed);
            }
            if us > self.max_us[phase].load(Relaxed) {
                self.max_us[phase].fetch_max(us, Relaxed);
            }
        }
        // Last, so a reader that sees the count sees what it counts.
        bump(&self.completed, 1);
    }

    /// Requests this thread started.
    pub fn started(&self) -> u64 {
        self.started.load(Relaxed)
    }

    /// Requests this thread finished.
    pub fn completed(&self) -> u64 {
        self.completed.load(Relaxed)
    }

    /// Seconds this thread spent in requests up to `now_us`, the running one included.
    pub fn busy_us(&self, now_us: u64) -> u64 {
        let since = self.in_flight_since.load(Relaxed);
        let tail = if since == 0 {
            0
        } else {
            now_us.saturating_sub(since)
        };
        self.busy_us.load(Relaxed) + tail
    }

    /// How long the running request has been running (0 when idle).
    pub fn current_elapsed_us(&self, now_us: u64) -> u64 {
        match self.in_flight_since.load(Relaxed) {
            0 => 0,
            since => now_us.saturating_sub(since),
        }
    }

    fn totals(&self, now_us: u64) -> Totals {
        let load = |w: &AtomicU64| w.load(Relaxed);
        Totals {
            completed: load(&self.completed),
            busy_us: self.busy_us(now_us),
            cpu_us: load(&self.cpu_us),
            status: self.status.each_ref().map(load),
            counters: self.counters.each_ref().map(load),
            totals_us: self.totals_us.each_ref().map(load),
            buckets: self.buckets.each_ref().map(|b| b.each_ref().map(load)),
        }
    }
}

/// What a thread's counters held when a reader last looked.
#[derive(Clone, Copy)]
struct Totals {
    completed: u64,
    busy_us: u64,
    cpu_us: u64,
    status: [u64; STATUS_CLASSES],
    counters: [u64; COUNTERS],
    totals_us: [u64; PHASES],
    buckets: [[u64; TIME_BUCKETS]; PHASES],
}

impl Totals {
    const ZERO: Totals = Totals {
        completed: 0,
        busy_us: 0,
        cpu_us: 0,
        status: [0; STATUS_CLASSES],
        counters: [0; COUNTERS],
        totals_us: [0; PHASES],
        buckets: [[0; TIME_BUCKETS]; PHASES],
    };
}

/// One request thread in a report.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ThreadReport {
    pub thread_id: u64,
    pub completed: u64,
    pub busy_us: u64,
    pub cpu_us: u64,
    pub current_elapsed_us: u64,
    pub max_duration_us: u64,
}

/// The requests that finished since the previous report.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseReport {
    pub request_count: u64,
    /// Time the threads spent in requests during the period, running ones included.
    pub busy_us: u64,
    pub status: [u64; STATUS_CLASSES],
    pub counters: [u64; COUNTERS],
    pub totals_us: [u64; PHASES],
    /// Each phase's (minimum, maximum) in µs; None without requests.
    pub extremes_us: [Option<(u64, u64)>; PHASES],
    pub buckets: [[u64; TIME_BUCKETS]; PHASES],
    /// Every thread that ever ran a request, by thread id.
    pub threads: Vec<ThreadReport>,
}

impl PhaseReport {
    /// Mean seconds of `phase` per request (0 without requests).
    pub fn mean(&self, phase: Phase) -> f64 {
        if self.request_count == 0 {
            return 0.0;
        }
        self.totals_us[phase as usize] as f64 / 1e6 / self.request_count as f64
    }
}

/// A reader's view: the totals each thread had at the previous report.
#[derive(Default)]
pub struct Baseline {
    seen: Vec<(u64, Totals)>,
}

impl Baseline {
    /// Reports what `threads` did since the previous call, and remembers their totals.
    pub fn take(&mut self, threads: &[&ThreadStats], now_us: u64) -> PhaseReport {
        let mut report = PhaseReport {
            request_count: 0,
            busy_us: 0,
            status: [0; STATUS_CLASSES],
            counters: [0; COUNTERS],
            totals_us: [0; PHASES],
            extremes_us: [None; PHASES],
            buckets: [[0; TIME_BUCKETS]; PHASES],
            threads: Vec::with_capacity(threads.len()),
        };
        let mut extremes = [(u64::MAX, 0u64); PHASES];
        for stats in threads {
            let now = stats.totals(now_us);
            let before = match self.seen.iter_mut().find(|(id, _)| *id == stats.thread_id) {
                Some((_, seen)) => std::mem::replace(seen, now),
                None => {
                    self.seen.push((stats.thread_id, now));
                    Totals::ZERO
                }
            };
            let diff = |a: u64, b: u64| a.saturating_sub(b);
            let completed = diff(now.completed, before.completed);
            report.request_count += completed;
            let busy = diff(now.busy_us, before.busy_us);
            report.busy_us += busy;
            for i in 0..STATUS_CLASSES {
                report.status[i] += diff(now.status[i], before.status[i]);
            }
            for i in 0..COUNTERS {
                report.counters[i] += diff(now.counters[i], before.counters[i]);
            }
            for p in 0..PHASES {
                report.totals_us[p] += diff(now.totals_us[p], before.totals_us[p]);
                for b in 0..TIME_BUCKETS {
                    report.buckets[p][b] += diff(now.buckets[p][b], before.buckets[p][b]);
                }
            }
            for ((lowest, highest), (min, max)) in extremes
                .iter_mut()
                .zip(stats.min_us.iter().zip(&stats.max_us))
            {
                *lowest = (*lowest).min(min.swap(u64::MAX, Relaxed));
                *highest = (*highest).max(max.swap(0, Relaxed));
            }
            report.threads.push(ThreadReport {
                thread_id: stats.thread_id,
                completed,
                busy_us: busy,
                cpu_us: diff(now.cpu_us, before.cpu_us),
                current_elapsed_us: stats.current_elapsed_us(now_us),
                max_duration_us: stats.max_duration_us.swap(0, Relaxed),
            });
        }
        for (p, (min, max)) in extremes.into_iter().enumerate() {
            report.extremes_us[p] = (min != u64::MAX).then_some((min, max));
        }
        report.threads.sort_by_key(|t| t.thread_id);
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_follow_mod_wsgi_6s_layout() {
        let cases = [
            (0.0, 0),
            (0.000_999, 0),
            (0.001, 0),
            (0.001_25, 1),
            (0.001_5, 2),
            (0.001_99, 3),
            (0.002, 4),
            (0.003, 6),
            (0.1, 26),
            (1.0, 39),
            (65.535, 63),
            (65.536, 64),
            (1e9, 64),
            (f64::NAN, 0),
        ];
        for (seconds, bucket) in cases {
            assert_eq!(time_bucket(seconds), bucket, "{seconds} s");
        }
    }

    fn sample(app_us: u64, status: u16) -> RequestSample {
        let mut s = RequestSample {
            status,
            ..Default::default()
        };
        s.phases_us[Phase::Server as usize] = 100;
        s.phases_us[Phase::Application as usize] = app_us;
        s.phases_us[Phase::Request as usize] = 100 + app_us;
        s.counters = [2, 10, 1, 5, 1];
        s.cpu_us = 7;
        s
    }

    #[test]
    fn a_report_covers_what_finished_since_the_previous_one() {
        let a = ThreadStats::new(1);
        let b = ThreadStats::new(2);
        let mut reader = Baseline::default();
        a.begin(1_000_000);
        a.finish(&sample(2_000, 200), 1_002_000);
        b.begin(1_000_000);
        b.finish(&sample(50_000, 0), 1_050_000);
        b.begin(1_100_000);
        let r = reader.take(&[&a, &b], 1_200_000);
        assert_eq!(r.request_count, 2);
        assert_eq!(r.status, [0, 1, 0, 0, 1, 0]);
        assert_eq!(r.counters, [4, 20, 2, 10, 2]);
        assert_eq!(r.totals_us[Phase::Application as usize], 52_000);
        assert!((r.mean(Phase::Application) - 0.026).abs() < 1e-9);
        assert_eq!(
            r.extremes_us[Phase::Application as usize],
            Some((2_000, 50_000))
        );
        assert_eq!(r.extremes_us[Phase::Queue as usize], Some((0, 0)));
        assert_eq!(r.buckets[Phase::Application as usize][4], 1);
        // The request still running on b counts toward busy time.
        assert_eq!(r.busy_us, 2_000 + 50_000 + 100_000);
        assert_eq!(r.threads[1].current_elapsed_us, 100_000);
        assert_eq!(r.threads[1].max_duration_us, 50_000);

        b.finish(&sample(150_000, 404), 1_250_000);
        let r = reader.take(&[&a, &b], 1_300_000);
        assert_eq!(r.request_count, 1);
        assert_eq!(r.status, [0, 0, 0, 1, 0, 0]);
        assert_eq!(r.busy_us, 50_000, "only the part after the previous report");
        assert_eq!(
            r.extremes_us[Phase::Application as usize],
            Some((150_000, 150_000))
        );
        assert_eq!(r.threads[0].completed, 0);

        let r = reader.take(&[&a, &b], 1_400_000);
        assert_eq!(r.request_count, 0);
        assert_eq!(r.extremes_us[Phase::Application as usize], None);
        assert_eq!(r.mean(Phase::Application), 0.0);
    }

    #[test]
    fn a_thread_first_seen_reports_everything_it_did() {
        let a = ThreadStats::new(3);
        a.begin(10);
        a.finish(&sample(1, 200), 20);
        let r = Baseline::default().take(&[&a], 30);
        assert_eq!((r.request_count, r.busy_us), (1, 10));
        assert_eq!(r.threads[0].thread_id, 3);
    }
}
