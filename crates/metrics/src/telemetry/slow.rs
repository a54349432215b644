//! Slow-request records (kind 4), as mod_wsgi 6.1 sends them: one each sample for every
//! request running longer than WSGISlowRequests (state 0, partial figures), and one
//! when such a request finishes (state 1, final figures). Finished records wait in a
//! bounded queue for the next sample; when it is full the oldest is dropped, so memory
//! never grows with a slow or absent ingester.

use super::wire::{Datagram, Kind, field};
use std::collections::VecDeque;

/// What identifies the request, each field cut to mod_wsgi 6's length with "..." at the
/// cut. The query string is never included.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestIdentity {
    pub log_id: Vec<u8>,
    pub method: Vec<u8>,
    pub scheme: Vec<u8>,
    pub hostname: Vec<u8>,
    pub script_name: Vec<u8>,
    pub path_info: Vec<u8>,
    pub protocol: Vec<u8>,
    pub peer_ip: Vec<u8>,
    /// Only with WSGITelemetryOptions +CaptureUserAgent.
    pub user_agent: Vec<u8>,
}

/// The room mod_wsgi 6 gives each field (its C buffers, terminating NUL included).
pub mod room {
    pub const LOG_ID: usize = 64;
    pub const METHOD: usize = 16;
    pub const SCHEME: usize = 16;
    pub const HOSTNAME: usize = 256;
    pub const SCRIPT_NAME: usize = 256;
    pub const PATH_INFO: usize = 512;
    pub const PEER_IP: usize = 46;
    pub const PROTOCOL: usize = 16;
    pub const USER_AGENT: usize = 512;
}

/// `value` cut to fit `room` bytes with a terminating NUL: a longer value keeps its first
/// `room - 4` bytes and ends in "...".
pub fn clip(value: &[u8], room: usize) -> Vec<u8> {
    if value.len() < room {
        return value.to_vec();
    }
    let mut out = value[..room.saturating_sub(4)].to_vec();
    out.extend_from_slice(b"...");
    out
}

/// When a request's phases began and ended (µs since the epoch; 0 when it has not
/// happened). `queue_start` is 0 in embedded mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Instants {
    pub request_start: u64,
    pub queue_start: u64,
    pub daemon_start: u64,
    pub application_start: u64,
    /// 0 while the application runs.
    pub application_finish: u64,
}

impl Instants {
    /// (server, queue, daemon, application) µs at `now`: a phase still running counts
    /// up to `now`.
    pub fn phases(&self, now: u64) -> [u64; 4] {
        let d = |a: u64, b: u64| a.saturating_sub(b);
        let finish = match (self.application_finish, self.application_start) {
            (0, 0) => 0,
            (0, _) => now,
            (f, _) => f,
        };
        let application = if self.application_start == 0 {
            0
        } else {
            d(finish, self.application_start)
        };
        if self.queue_start != 0 {
            let daemon_end = if self.application_start == 0 {
                now
            } else {
                self.application_start
            };
            [
                d(self.queue_start, self.request_start),
                d(self.daemon_start, self.queue_start),
                d(daemon_end, self.daemon_start),
                application,
            ]
        } else {
            let server = match (self.application_start, self.request_start) {
                (0, 0) => 0,
                (0, start) => d(now, start),
                (app, start) => d(app, start),
            };
            [server, 0, 0, application]
        }
    }
}

/// One slow request, running or finished.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlowRequest {
    pub completed: bool,
    /// When it started (µs since the epoch) and how long it has run or ran.
    pub start_us: u64,
    pub duration_us: u64,
    pub thread_id: u64,
    /// The Apache child that took it.
    pub server_pid: u64,
    pub instants: Instants,
    pub input_bytes: u64,
    pub input_reads: u64,
    pub output_bytes: u64,
    pub output_writes: u64,
    pub input_read_us: u64,
    pub output_write_us: u64,
    pub cpu_user_us: u64,
    pub cpu_system_us: u64,
    pub gil_wait_us: u64,
    pub gil_wait_count: u64,
    /// Requests running in the process when it started (itself included) and when it
    /// finished (0 while running).
    pub active_at_start: u64,
    pub active_at_completion: u64,
    /// 0 while running.
    pub status: u16,
    pub who: RequestIdentity,
}

fn seconds(us: u64) -> f64 {
    us as f64 / 1e6
}

/// The datagram of a slow request seen at `now_us` (phases still running count to it).
pub fn encode_slow(pid: u32, r: &SlowRequest, now_us: u64, seq: u32, stamp: f64) -> Vec<u8> {
    let [server, queue, daemon, application] = r.instants.phases(now_us);
    let mut d = Datagram::new(Kind::SlowRequest, pid, seq, stamp);
    d.u64(field::SLOW_RECORD_STATE, u64::from(r.completed))
        .f64(field::SLOW_START_STAMP, seconds(r.start_us))
        .f64(field::SLOW_DURATION, seconds(r.duration_us))
        .u64(field::SLOW_THREAD_ID, r.thread_id)
        .u64(field::SLOW_SERVER_PID, r.server_pid)
        .u64(field::SLOW_INPUT_BYTES, r.input_bytes)
        .u64(field::SLOW_INPUT_READS, r.input_reads)
        .u64(field::SLOW_OUTPUT_BYTES, r.output_bytes)
        .u64(field::SLOW_OUTPUT_WRITES, r.output_writes)
        .f64(field::SLOW_CPU_USER_TIME, seconds(r.cpu_user_us))
        .f64(field::SLOW_CPU_SYSTEM_TIME, seconds(r.cpu_system_us))
        .f64(field::SLOW_SERVER_TIME, seconds(server))
        .f64(field::SLOW_QUEUE_TIME, seconds(queue))
        .f64(field::SLOW_DAEMON_TIME, seconds(daemon))
        .f64(field::SLOW_APPLICATION_TIME, seconds(application))
        .f64(field::SLOW_GIL_WAIT_TIME, seconds(r.gil_wait_us))
        .u64(field::SLOW_GIL_WAIT_COUNT, r.gil_wait_count)
        .f64(field::SLOW_INPUT_READ_TIME, seconds(r.input_read_us))
        .f64(field::SLOW_OUTPUT_WRITE_TIME, seconds(r.output_write_us))
        .u64(field::SLOW_ACTIVE_AT_START, r.active_at_start)
        .u64(field::SLOW_ACTIVE_AT_COMPLETION, r.active_at_completion)
        .u64(field::SLOW_STATUS, u64::from(r.status));
    let w = &r.who;
    d.bytes(field::SLOW_LOG_ID, &w.log_id)
        .bytes(field::SLOW_METHOD, &w.method)
        .bytes(field::SLOW_SCHEME, &w.scheme)
        .bytes(field::SLOW_HOSTNAME, &w.hostname)
        .bytes(field::SLOW_SCRIPT_NAME, &w.script_name)
        .bytes(field::SLOW_PATH_INFO, &w.path_info)
        .bytes(field::SLOW_PROTOCOL, &w.protocol)
        .bytes(field::SLOW_PEER_IP, &w.peer_ip)
        .bytes(field::SLOW_USER_AGENT, &w.user_agent);
    d.into_bytes()
}

/// At most this many running slow requests are reported per sample.
pub const MAX_ACTIVE_PER_TICK: usize = 16;

/// Finished slow requests waiting for the next sample.
pub struct SlowQueue {
    records: VecDeque<SlowRequest>,
    capacity: usize,
    /// Records dropped because the queue was full.
    pub dropped: u64,
}

impl SlowQueue {
    /// Room for what `threads` threads can finish in one `interval` when each slow
    /// request takes at least `threshold` seconds, five times over; 32 to 4096 records.
    pub fn new(threads: usize, interval: f64, threshold: f64) -> SlowQueue {
        let per_thread = if threshold > 0.0 {
            (interval.max(0.0) / threshold).ceil().max(1.0)
        } else {
            1.0
        };
        let sized = (threads.max(1) as f64 * per_thread * 5.0).min(4096.0) as usize;
        let capacity = sized.clamp(32, 4096);
        SlowQueue {
            records: VecDeque::with_capacity(capacity.min(64)),
            capacity,
            dropped: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Queues a finished record; when full, the oldest is dropped.
    pub fn push(&mut self, r: SlowRequest) {
        if self.records.len() >= self.capacity {
            self.records.pop_front();
            self.dropped += 1;
        }
        self.records.push_back(r);
    }

    /// Everything queued, oldest first.
    pub fn drain(&mut self) -> Vec<SlowRequest> {
        self.records.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_field_is_cut_with_an_ellipsis_as_mod_wsgi_6_does() {
        assert_eq!(clip(b"GET", room::METHOD), b"GET");
        let long = [b'x'; 20];
        let cut = clip(&long, room::METHOD);
        assert_eq!(cut.len(), 15);
        assert!(cut.ends_with(b"...") && cut.starts_with(b"xxxxxxxxxxxx"));
        assert_eq!(clip(&[b'y'; 15], 16).len(), 15, "fits with its NUL");
    }

    #[test]
    fn phases_of_running_and_finished_requests() {
        let embedded = Instants {
            request_start: 100,
            application_start: 150,
            ..Instants::default()
        };
        assert_eq!(embedded.phases(1_000), [50, 0, 0, 850]);
        let finished = Instants {
            application_finish: 400,
            ..embedded
        };
        assert_eq!(finished.phases(1_000), [50, 0, 0, 250]);
        let daemon = Instants {
            request_start: 100,
            queue_start: 120,
            daemon_start: 160,
            application_start: 170,
            application_finish: 0,
        };
        assert_eq!(daemon.phases(500), [20, 40, 10, 330]);
    }

    #[test]
    fn the_queue_is_bounded_and_drops_the_oldest() {
        let mut q = SlowQueue::new(1, 1.0, 10.0);
        assert_eq!(q.capacity(), 32);
        for i in 0..40 {
            q.push(SlowRequest {
                thread_id: i,
                ..SlowRequest::default()
            });
        }
        let kept = q.drain();
        assert_eq!((kept.len(), q.dropped), (32, 8));
        assert_eq!(kept[0].thread_id, 8);
        assert_eq!(SlowQueue::new(100, 1.0, 0.01).capacity(), 4096);
        assert_eq!(SlowQueue::new(25, 1.0, 0.5).capacity(), 250);
    }
}
