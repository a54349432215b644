//! Server metrics every process of the server adds to, and their Prometheus text form.
//!
//! The counters are plain `AtomicU64` words in memory the Apache parent maps before it
//! forks (the mapping itself is `mod_wsgi_store::SharedWords`); this crate only lays them
//! out and reads them, so it is safe code, unit tested on a `Vec`. Counters per process
//! group (requests by status class, latency and queue-wait histograms, restarts by
//! reason, time spent waiting for the GIL) never go backwards while the server runs;
//! per-process records (threads, busy threads, requests) are claimed by each process when
//! it starts and taken over by a later process once their owner is dead. `phases` holds
//! the per request thread statistics of one process (not shared memory); `telemetry`
//! encodes them, and what else a process reports, as mod_wsgi 6's telemetry datagrams.
#![forbid(unsafe_code)]

mod app;
mod layout;
mod phases;
mod render;
pub mod telemetry;
#[cfg(test)]
mod tests;

pub use app::{
    AppSample, META_PREFIX, SAMPLE_PREFIX, meta_key, render_app_metrics, sample_key,
    valid_metric_name, valid_sample,
};
pub use layout::{BUCKETS, Metrics, ProcessInfo, ProcessSlot, REASONS, WORDS, reason_label};
pub use phases::{
    Baseline, COUNTER_NAMES, COUNTERS, PHASE_NAMES, PHASES, Phase, PhaseReport, RequestSample,
    STATUS_CLASSES, TIME_BUCKETS, ThreadReport, ThreadStats, time_bucket,
};
pub use render::ProcessFacts;
