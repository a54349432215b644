//! What `mod_wsgi.request_metrics()` reports: this process's requests since the previous
//! call (count, rate, mean application time, how busy its threads were, status classes,
//! a latency histogram). Lock-free adds on the request path; a call swaps the counters
//! out, so two callers in one process split the traffic between them.

use crate::layout::BUCKETS;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct Interval {
    started_us: AtomicU64,
    requests: AtomicU64,
    busy_us: AtomicU64,
    /// 1xx..5xx, then anything else.
    status: [AtomicU64; 6],
    /// One per `BUCKETS` bound, then +Inf (not cumulative).
    buckets: [AtomicU64; BUCKETS.len() + 1],
}

/// One sample period, as `request_metrics()` returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct IntervalReport {
    pub start_time: f64,
    pub stop_time: f64,
    pub sample_period: f64,
    pub request_count: u64,
    pub request_rate: f64,
    /// Mean seconds in the application per request (0 without requests).
    pub application_time: f64,
    /// Share of `threads` x `sample_period` spent in requests (0..=1 in steady state).
    pub capacity_utilization: f64,
    pub status: [u64; 6],
    /// (upper bound in seconds, requests that took up to it and more than the previous).
    pub buckets: Vec<(f64, u64)>,
}

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicU64 = AtomicU64::new(0);

impl Interval {
    pub const fn new() -> Interval {
        Interval {
            started_us: ZERO,
            requests: ZERO,
            busy_us: ZERO,
            status: [ZERO; 6],
            buckets: [ZERO; BUCKETS.len() + 1],
        }
    }

    /// Starts the first period at `now_us` (microseconds since the epoch) if none has.
    pub fn start(&self, now_us: u64) {
        // Called per request: a plain load keeps the usual case off the cache line's
        // exclusive ownership.
        if self.started_us.load(Ordering::Relaxed) == 0 {
            let _ =
                self.started_us
                    .compare_exchange(0, now_us, Ordering::AcqRel, Ordering::Acquire);
        }
    }

    pub fn record(&self, status: u16, seconds: f64) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.busy_us
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
        let class = match status {
            100..=599 => usize::from(status / 100) - 1,
            _ => 5,
        };
        self.status[class].fetch_add(1, Ordering::Relaxed);
        let bucket = BUCKETS
            .iter()
            .position(|&b| seconds <= b)
            .unwrap_or(BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
    }

    /// Ends the period at `now_us` and starts the next one there.
    pub fn take(&self, now_us: u64, threads: u64) -> IntervalReport {
        let started = self.started_us.swap(now_us, Ordering::AcqRel);
        let started = if started == 0 || started > now_us {
            now_us
        } else {
            started
        };
        let requests = self.requests.swap(0, Ordering::AcqRel);
        let busy = self.busy_us.swap(0, Ordering::AcqRel) as f64 / 1e6;
        let period = (now_us - started) as f64 / 1e6;
        let per_second = |n: f64| if period > 0.0 { n / period } else { 0.0 };
        IntervalReport {
            start_time: started as f64 / 1e6,
            stop_time: now_us as f64 / 1e6,
            sample_period: period,
            request_count: requests,
            request_rate: per_second(requests as f64),
            application_time: if requests > 0 {
                busy / requests as f64
            } else {
                0.0
            },
            capacity_utilization: per_second(busy) / threads.max(1) as f64,
            status: std::array::from_fn(|i| self.status[i].swap(0, Ordering::AcqRel)),
            buckets: BUCKETS
                .iter()
                .copied()
                .chain([f64::INFINITY])
                .zip(&self.buckets)
                .map(|(bound, n)| (bound, n.swap(0, Ordering::AcqRel)))
                .collect(),
        }
    }
}

impl Default for Interval {
    fn default() -> Self {
        Interval::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_reports_its_requests_then_starts_afresh() {
        let interval = Interval::new();
        interval.start(10_000_000);
        interval.record(200, 0.004);
        interval.record(201, 0.2);
        interval.record(404, 0.2);
        interval.record(503, 40.0);
        let report = interval.take(12_000_000, 4);
        assert_eq!(report.sample_period, 2.0);
        assert_eq!(report.request_count, 4);
        assert_eq!(report.request_rate, 2.0);
        assert!((report.application_time - 40.404 / 4.0).abs() < 1e-6);
        assert!((report.capacity_utilization - 40.404 / 2.0 / 4.0).abs() < 1e-6);
        assert_eq!(report.status, [0, 2, 0, 1, 1, 0]);
        assert_eq!(report.buckets[0], (0.005, 1));
        assert_eq!(report.buckets[5], (0.25, 2));
        assert_eq!(report.buckets.last(), Some(&(f64::INFINITY, 1)));

        let next = interval.take(13_000_000, 4);
        assert_eq!(next.start_time, 12.0);
        assert_eq!(next.request_count, 0);
        assert_eq!(next.application_time, 0.0);
        assert!(next.buckets.iter().all(|&(_, n)| n == 0));
    }

    #[test]
    fn a_first_call_without_a_start_has_an_empty_period() {
        let report = Interval::new().take(5_000_000, 1);
        assert_eq!((report.sample_period, report.request_rate), (0.0, 0.0));
    }
}
