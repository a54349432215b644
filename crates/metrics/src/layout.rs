//! Where each counter lives in the shared words, and the lock-free updates.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Most process groups counted (embedded mode is one); more are counted under the last.
pub const MAX_GROUPS: usize = 64;
/// Most live processes with their own record.
pub const MAX_PROCESSES: usize = 1024;
/// Upper bounds (seconds) of the latency and queue-wait histogram buckets; +Inf is the count.
pub const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Restart reasons, as labels.
pub const REASONS: [&str; 11] = [
    "maximum-requests",
    "restart-interval",
    "inactivity-timeout",
    "rss-limit",
    "script-reload",
    "request-timeout",
    "cpu-time-limit",
    "crash",
    "init-failure",
    "shutdown",
    "other",
];

const NAME_WORDS: usize = 8;
const STATUS_CLASSES: usize = 6;
const HISTOGRAM_WORDS: usize = BUCKETS.len() + 3; // buckets, +Inf, sum (µs), count
const GROUP_WORDS: usize = 64;
const G_NAME: usize = 0;
const G_STATUS: usize = G_NAME + NAME_WORDS;
const G_LATENCY: usize = G_STATUS + STATUS_CLASSES;
const G_QUEUE: usize = G_LATENCY + HISTOGRAM_WORDS;
const G_REASONS: usize = G_QUEUE + HISTOGRAM_WORDS;
const G_GIL_US: usize = G_REASONS + REASONS.len();
const G_GIL_COUNT: usize = G_GIL_US + 1;
const G_CONNECTIONS: usize = G_GIL_COUNT + 1;
const _: () = assert!(G_CONNECTIONS < GROUP_WORDS);

const PROCESS_WORDS: usize = 8;
const P_PID: usize = 0;
const P_GROUP: usize = 1;
const P_THREADS: usize = 2;
const P_BUSY: usize = 3;
const P_REQUESTS: usize = 4;
const P_STARTED: usize = 5;
const P_GIL_US: usize = 6;

const HEADER_WORDS: usize = 8;
const H_MAGIC: usize = 0;
const H_GROUPS: usize = 1;
const MAGIC: u64 = 0x6d77_7367_696d_6574;
const GROUPS_AT: usize = HEADER_WORDS;
const PROCESSES_AT: usize = GROUPS_AT + MAX_GROUPS * GROUP_WORDS;
/// Words the layout needs.
pub const WORDS: usize = PROCESSES_AT + MAX_PROCESSES * PROCESS_WORDS;

/// The label a free-form stop or recycle reason is counted under.
pub fn reason_label(reason: &str) -> &'static str {
    const BY_WORD: [(&str, &str); 10] = [
        ("maximum-requests", "maximum-requests"),
        ("restart-interval", "restart-interval"),
        ("inactivity", "inactivity-timeout"),
        ("rss", "rss-limit"),
        ("script", "script-reload"),
        ("request-timeout", "request-timeout"),
        ("cpu", "cpu-time-limit"),
        ("init", "init-failure"),
        ("crash", "crash"),
        ("shutdown", "shutdown"),
    ];
    let r = reason.to_ascii_lowercase();
    BY_WORD
        .iter()
        .find(|(word, _)| r.contains(word))
        .map_or("other", |(_, label)| label)
}

/// What is kept of a group name: its first 64 bytes, cut at a character boundary so the
/// stored name reads back as the same text.
fn stored_name(name: &str) -> &str {
    let mut end = name.len().min(NAME_WORDS * 8);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// The metrics words, laid out.
#[derive(Clone, Copy)]
pub struct Metrics<'a> {
    words: &'a [AtomicU64],
}

/// One process's record, as read for rendering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: u32,
    pub group: usize,
    pub threads: u64,
    pub busy: u64,
    pub requests: u64,
    pub started_unix: u64,
    pub gil_wait_us: u64,
}

impl<'a> Metrics<'a> {
    /// Lays the metrics over `words` (at least `WORDS` long); formats them if they are
    /// not laid out yet. None if too short.
    pub fn new(words: &'a [AtomicU64]) -> Option<Metrics<'a>> {
        if words.len() < WORDS {
            return None;
        }
        let _ = words[H_MAGIC].compare_exchange(0, MAGIC, Relaxed, Relaxed);
        Some(Metrics { words })
    }

    fn group_base(&self, group: usize) -> usize {
        GROUPS_AT + group.min(MAX_GROUPS - 1) * GROUP_WORDS
    }

    pub fn group_count(&self) -> usize {
        (self.words[H_GROUPS].load(Relaxed) as usize).min(MAX_GROUPS)
    }

    pub fn group_name(&self, group: usize) -> String {
        let base = self.group_base(group) + G_NAME;
        let mut bytes = Vec::with_capacity(NAME_WORDS * 8);
        for w in &self.words[base..base + NAME_WORDS] {
            bytes.extend_from_slice(&w.load(Relaxed).to_le_bytes());
        }
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        String::from_utf8_lossy(&bytes[..end]).into_owned()
    }

    /// The index of group `name`, adding it if new (only the Apache parent adds, before
    /// forking; names longer than 64 bytes are cut at a character boundary).
    pub fn group_index_or_add(&self, name: &str) -> usize {
        if let Some(i) = self.group_index(name) {
            return i;
        }
        let i = self.group_count().min(MAX_GROUPS - 1);
        let mut bytes = [0u8; NAME_WORDS * 8];
        let cut = stored_name(name);
        bytes[..cut.len()].copy_from_slice(cut.as_bytes());
        let base = self.group_base(i) + G_NAME;
        for (w, chunk) in bytes.chunks(8).enumerate() {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            self.words[base + w].store(u64::from_le_bytes(b), Relaxed);
        }
        if self.group_count() < MAX_GROUPS {
            self.words[H_GROUPS].fetch_add(1, Relaxed);
        }
        i
    }

    pub fn group_index(&self, name: &str) -> Option<usize> {
        let cut = stored_name(name);
        (0..self.group_count()).find(|&i| self.group_name(i) == cut)
    }

    fn word(&self, group: usize, offset: usize) -> &AtomicU64 {
        &self.words[self.group_base(group) + offset]
    }

    fn observe(&self, group: usize, at: usize, seconds: f64) {
        let bucket = BUCKETS
            .iter()
            .position(|&le| seconds <= le)
            .unwrap_or(BUCKETS.len());
        self.word(group, at + bucket).fetch_add(1, Relaxed);
        let micros = (seconds.max(0.0) * 1e6) as u64;
        self.word(group, at + BUCKETS.len() + 1)
            .fetch_add(micros, Relaxed);
        self.word(group, at + BUCKETS.len() + 2)
            .fetch_add(1, Relaxed);
    }

    /// A request of `group` answered with `status` after `seconds`.
    pub fn record_request(&self, group: usize, status: u16, seconds: f64) {
        let class = match status {
            100..=599 => usize::from(status / 100) - 1,
            _ => STATUS_CLASSES - 1,
        };
        self.word(group, G_STATUS + class).fetch_add(1, Relaxed);
        self.observe(group, G_LATENCY, seconds);
    }

    /// A daemon request of `group` waited `seconds` between Apache and a daemon thread.
    pub fn record_queue_wait(&self, group: usize, seconds: f64) {
        self.observe(group, G_QUEUE, seconds);
    }

    pub fn record_restart(&self, group: usize, reason: &str) {
        let label = reason_label(reason);
        let i = REASONS
            .iter()
            .position(|r| *r == label)
            .unwrap_or(REASONS.len() - 1);
        self.word(group, G_REASONS + i).fetch_add(1, Relaxed);
    }

    pub fn record_gil_wait(&self, group: usize, micros: u64) {
        self.word(group, G_GIL_US).fetch_add(micros, Relaxed);
        self.word(group, G_GIL_COUNT).fetch_add(1, Relaxed);
    }

    /// A daemon process of `group` accepted a connection from an Apache child.
    pub fn record_connection(&self, group: usize) {
        self.word(group, G_CONNECTIONS).fetch_add(1, Relaxed);
    }

    pub(crate) fn connections(&self, group: usize) -> u64 {
        self.word(group, G_CONNECTIONS).load(Relaxed)
    }

    pub(crate) fn status_counts(&self, group: usize) -> [u64; STATUS_CLASSES] {
        std::array::from_fn(|c| self.word(group, G_STATUS + c).load(Relaxed))
    }

    /// (non-cumulative bucket counts incl. +Inf, sum in µs, count).
    pub(crate) fn histogram(&self, group: usize, queue: bool) -> (Vec<u64>, u64, u64) {
        let at = if queue { G_QUEUE } else { G_LATENCY };
        let buckets = (0..=BUCKETS.len())
            .map(|b| self.word(group, at + b).load(Relaxed))
            .collect();
        (
            buckets,
            self.word(group, at + BUCKETS.len() + 1).load(Relaxed),
            self.word(group, at + BUCKETS.len() + 2).load(Relaxed),
        )
    }

    pub(crate) fn restarts(&self, group: usize) -> [u64; REASONS.len()] {
        std::array::from_fn(|i| self.word(group, G_REASONS + i).load(Relaxed))
    }

    pub(crate) fn gil_wait(&self, group: usize) -> (u64, u64) {
        (
            self.word(group, G_GIL_US).load(Relaxed),
            self.word(group, G_GIL_COUNT).load(Relaxed),
        )
    }

    fn process_word(&self, slot: usize, offset: usize) -> &AtomicU64 {
        &self.words[PROCESSES_AT + slot * PROCESS_WORDS + offset]
    }

    /// Claims a process record for `pid`: a free one, or one whose owner `is_dead`.
    pub fn claim_process(
        &self,
        pid: u32,
        group: usize,
        threads: u64,
        started_unix: u64,
        is_dead: impl Fn(u32) -> bool,
    ) -> Option<ProcessSlot<'a>> {
        for slot in 0..MAX_PROCESSES {
            let owner = self.process_word(slot, P_PID);
            let current = owner.load(Relaxed);
            let free = current == 0 || (current != u64::from(pid) && is_dead(current as u32));
            if free
                && owner
                    .compare_exchange(current, u64::from(pid), Relaxed, Relaxed)
                    .is_ok()
            {
                for (offset, value) in [
                    (P_GROUP, group as u64),
                    (P_THREADS, threads),
                    (P_BUSY, 0),
                    (P_REQUESTS, 0),
                    (P_STARTED, started_unix),
                    (P_GIL_US, 0),
                ] {
                    self.process_word(slot, offset).store(value, Relaxed);
                }
                return Some(ProcessSlot {
                    metrics: *self,
                    slot,
                    group,
                });
            }
        }
        None
    }

    /// The records of processes that claimed one.
    pub fn processes(&self) -> Vec<ProcessInfo> {
        (0..MAX_PROCESSES)
            .filter_map(|slot| {
                let pid = self.process_word(slot, P_PID).load(Relaxed) as u32;
                (pid != 0).then(|| ProcessInfo {
                    pid,
                    group: self.process_word(slot, P_GROUP).load(Relaxed) as usize,
                    threads: self.process_word(slot, P_THREADS).load(Relaxed),
                    busy: self.process_word(slot, P_BUSY).load(Relaxed),
                    requests: self.process_word(slot, P_REQUESTS).load(Relaxed),
                    started_unix: self.process_word(slot, P_STARTED).load(Relaxed),
                    gil_wait_us: self.process_word(slot, P_GIL_US).load(Relaxed),
                })
            })
            .collect()
    }
}

/// This process's record.
#[derive(Clone, Copy)]
pub struct ProcessSlot<'a> {
    metrics: Metrics<'a>,
    slot: usize,
    pub group: usize,
}

impl<'a> ProcessSlot<'a> {
    pub fn metrics(&self) -> Metrics<'a> {
        self.metrics
    }

    pub fn request_started(&self) {
        self.metrics
            .process_word(self.slot, P_BUSY)
            .fetch_add(1, Relaxed);
    }

    pub fn request_finished(&self) {
        let busy = self.metrics.process_word(self.slot, P_BUSY);
        let _ = busy.fetch_update(Relaxed, Relaxed, |b| Some(b.saturating_sub(1)));
        self.metrics
            .process_word(self.slot, P_REQUESTS)
            .fetch_add(1, Relaxed);
    }

    pub fn record_gil_wait(&self, micros: u64) {
        self.metrics
            .process_word(self.slot, P_GIL_US)
            .fetch_add(micros, Relaxed);
        self.metrics.record_gil_wait(self.group, micros);
    }

    pub fn info(&self) -> Option<ProcessInfo> {
        let pid = self.metrics.process_word(self.slot, P_PID).load(Relaxed) as u32;
        self.metrics.processes().into_iter().find(|p| p.pid == pid)
    }

    /// Gives the record up (the process is exiting).
    pub fn release(&self) {
        self.metrics
            .process_word(self.slot, P_PID)
            .store(0, Relaxed);
    }
}
