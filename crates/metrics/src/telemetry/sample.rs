//! The datagrams a process sends about itself, field for field as mod_wsgi 6.1 sends
//! them: the periodic sample (kind 2, from a `PhaseReport` and the process's CPU and
//! memory), the lifecycle events (started, stopping, stopped) and the garbage
//! collector's counters and pauses (kinds 8 and 9).

use super::wire::{Datagram, Kind, field};
use crate::{Phase, PhaseReport};

/// Who is sending: fixed for the life of the process.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    pub pid: u32,
    pub parent_pid: u32,
    pub hostname: String,
    /// The daemon process group; empty in embedded mode.
    pub process_group: String,
    pub mod_wsgi_version: String,
    pub python_version: String,
    /// "Apache/2.4.62", whatever ServerTokens says.
    pub apache_version: String,
    pub mpm_name: String,
    /// `sys.getswitchinterval()` at start; 0 leaves the field out.
    pub switch_interval: f64,
}

/// One sampling period of a process.
pub struct Tick<'a> {
    pub report: &'a PhaseReport,
    /// Measured seconds since the previous sample.
    pub sample_period: f64,
    /// Configured seconds between samples.
    pub interval: f64,
    /// WSGISlowRequests (0 when not set).
    pub slow_threshold: f64,
    /// CPU seconds of the process during the period.
    pub cpu_user: f64,
    pub cpu_system: f64,
    pub memory_rss: u64,
    pub memory_max_rss: u64,
    /// Request threads the process has (daemon threads=, or the MPM's per child).
    pub threads_maximum: usize,
    /// A daemon process: queue and daemon phases are sent when requests finished.
    pub daemon: bool,
}

/// At most this many request threads are described one by one.
pub const MAX_SLOTS: usize = 128;

/// Phases in the order mod_wsgi 6 sends their means, extremes and histograms.
const MEAN_ORDER: [Phase; 6] = [
    Phase::Server,
    Phase::Application,
    Phase::Request,
    Phase::GilWait,
    Phase::InputRead,
    Phase::OutputWrite,
];
const DAEMON_PHASES: [Phase; 2] = [Phase::Queue, Phase::Daemon];
const BUCKET_ORDER: [Phase; 8] = [
    Phase::Server,
    Phase::Application,
    Phase::Queue,
    Phase::Daemon,
    Phase::Request,
    Phase::GilWait,
    Phase::InputRead,
    Phase::OutputWrite,
];

fn identity_fields(d: &mut Datagram, id: &Identity) {
    d.bytes(field::MOD_WSGI_VERSION, id.mod_wsgi_version.as_bytes())
        .bytes(field::PYTHON_VERSION, id.python_version.as_bytes())
        .bytes(field::APACHE_VERSION, id.apache_version.as_bytes())
        .bytes(field::MPM_NAME, id.mpm_name.as_bytes())
        .bytes(field::HOSTNAME, id.hostname.as_bytes())
        .bytes(field::PROCESS_GROUP, id.process_group.as_bytes())
        .u64(field::PROCESS_PARENT_PID, u64::from(id.parent_pid));
}

fn seconds(us: u64) -> f64 {
    us as f64 / 1e6
}

/// The periodic sample.
pub fn encode_tick(id: &Identity, t: &Tick<'_>, seq: u32, stamp: f64) -> Vec<u8> {
    let r = t.report;
    let period = t.sample_period.max(1e-9);
    let maximum = t.threads_maximum.max(1);
    let mut d = Datagram::new(Kind::Request, id.pid, seq, stamp);
    identity_fields(&mut d, id);
    d.f64(field::SAMPLE_PERIOD, t.sample_period)
        .f64(field::TELEMETRY_INTERVAL, t.interval)
        .f64(field::SLOW_REQUESTS_THRESHOLD, t.slow_threshold);
    if id.switch_interval > 0.0 {
        d.f64(field::SWITCH_INTERVAL, id.switch_interval);
    }
    let slots = maximum.min(MAX_SLOTS);
    let in_range = |thread_id: u64| (1..=slots as u64).contains(&thread_id);
    let active = r
        .threads
        .iter()
        .filter(|th| in_range(th.thread_id) && (th.completed > 0 || th.current_elapsed_us > 0))
        .count();
    let user = t.cpu_user.max(0.0) / period;
    let system = t.cpu_system.max(0.0) / period;
    d.u64(field::REQUEST_COUNT, r.request_count)
        .f64(field::REQUEST_THROUGHPUT, r.request_count as f64 / period)
        .f64(
            field::CAPACITY_UTILIZATION,
            seconds(r.busy_us) / period / maximum as f64,
        )
        .f64(field::CPU_USER_UTILIZATION, user)
        .f64(field::CPU_SYSTEM_UTILIZATION, system)
        .f64(field::CPU_UTILIZATION, user + system)
        .u64(field::MEMORY_RSS, t.memory_rss)
        .u64(field::MEMORY_MAX_RSS, t.memory_max_rss)
        .u64(field::REQUEST_THREADS_MAXIMUM, maximum as u64)
        .u64(field::REQUEST_THREADS_STARTED, r.threads.len() as u64)
        .u64(field::REQUEST_THREADS_ACTIVE, active as u64);
    // As mod_wsgi 6: the queue and daemon phases only when a daemon finished requests.
    let daemon_timing = t.daemon && r.request_count > 0;
    let mut phases: Vec<Phase> = MEAN_ORDER.to_vec();
    if daemon_timing {
        phases.extend(DAEMON_PHASES);
    }
    for &p in &phases {
        d.f64(field::PHASE_MEAN + p as u16, r.mean(p));
    }
    for &p in &phases {
        if let Some((min, max)) = r.extremes_us[p as usize] {
            d.f64(field::PHASE_MIN + p as u16, seconds(min))
                .f64(field::PHASE_MAX + p as u16, seconds(max));
        }
    }
    for p in BUCKET_ORDER {
        if DAEMON_PHASES.contains(&p) && !daemon_timing {
            continue;
        }
        let buckets = r.buckets[p as usize].iter().map(|&n| n as i32);
        d.i32_array(field::PHASE_BUCKETS + p as u16, buckets);
    }
    let [_, input_bytes, input_reads, output_bytes, output_writes] = r.counters;
    d.u64(field::INPUT_BYTES_TOTAL, input_bytes)
        .u64(field::INPUT_READS_TOTAL, input_reads)
        .u64(field::OUTPUT_BYTES_TOTAL, output_bytes)
        .u64(field::OUTPUT_WRITES_TOTAL, output_writes);
    for class in 0..5 {
        d.u64(field::STATUS_1XX_TOTAL + class as u16, r.status[class]);
    }
    // Per thread, by thread id; mod_wsgi 6 keeps times in whole µs and ms as i32.
    let mut completed = vec![0i32; slots];
    let mut busy_us = vec![0i32; slots];
    let mut cpu_us = vec![0i32; slots];
    let mut elapsed_ms = vec![0i32; slots];
    let mut longest_ms = vec![0i32; slots];
    for th in r.threads.iter().filter(|th| in_range(th.thread_id)) {
        let i = th.thread_id as usize - 1;
        completed[i] = th.completed as i32;
        busy_us[i] = th.busy_us as i32;
        cpu_us[i] = th.cpu_us as i32;
        elapsed_ms[i] = (th.current_elapsed_us / 1000) as i32;
        longest_ms[i] = (th.max_duration_us / 1000) as i32;
    }
    let us = |v: &Vec<i32>| v.iter().map(|&x| f64::from(x) / 1e6).collect::<Vec<_>>();
    let ms = |v: &Vec<i32>| v.iter().map(|&x| f64::from(x) / 1e3).collect::<Vec<_>>();
    d.i32_array(field::REQUEST_THREADS_COMPLETED, completed.into_iter())
        .f64_array(field::REQUEST_THREADS_BUSY_TIME, us(&busy_us).into_iter())
        .f64_array(field::REQUEST_THREADS_CPU_TIME, us(&cpu_us).into_iter())
        .f64_array(
            field::REQUEST_THREADS_CURRENT_ELAPSED,
            ms(&elapsed_ms).into_iter(),
        )
        .f64_array(
            field::REQUEST_THREADS_MAX_DURATION,
            ms(&longest_ms).into_iter(),
        );
    d.into_bytes()
}

/// The process started (stamped with its start): its whole identity.
pub fn encode_started(id: &Identity, seq: u32, start_stamp: f64) -> Vec<u8> {
    let mut d = Datagram::new(Kind::ProcessStarted, id.pid, seq, start_stamp);
    identity_fields(&mut d, id);
    if id.switch_interval > 0.0 {
        d.f64(field::SWITCH_INTERVAL, id.switch_interval);
    }
    d.into_bytes()
}

/// The process decided to stop, with `active` requests running.
pub fn encode_stopping(id: &Identity, reason: &str, active: u64, seq: u32, stamp: f64) -> Vec<u8> {
    let mut d = Datagram::new(Kind::ProcessStopping, id.pid, seq, stamp);
    d.bytes(field::HOSTNAME, id.hostname.as_bytes())
        .bytes(field::PROCESS_GROUP, id.process_group.as_bytes())
        .bytes(field::SHUTDOWN_REASON, reason.as_bytes())
        .u64(field::ACTIVE_REQUESTS_AT_DECISION, active);
    d.into_bytes()
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ending<'a> {
    pub reason: &'a str,
    pub uptime: f64,
    /// Requests it finished in its life.
    pub lifetime_requests: u64,
    /// Requests still running as it exits (cut off).
    pub active: u64,
    /// Every request finished before it exited.
    pub graceful: bool,
}

/// The process is exiting.
pub fn encode_stopped(id: &Identity, e: &Ending<'_>, seq: u32, stamp: f64) -> Vec<u8> {
    let mut d = Datagram::new(Kind::ProcessStopped, id.pid, seq, stamp);
    d.bytes(field::HOSTNAME, id.hostname.as_bytes())
        .bytes(field::PROCESS_GROUP, id.process_group.as_bytes())
        .bytes(field::SHUTDOWN_REASON, e.reason.as_bytes())
        .f64(field::PROCESS_UPTIME, e.uptime)
        .u64(field::LIFETIME_REQUEST_COUNT, e.lifetime_requests)
        .u64(field::ACTIVE_REQUESTS_AT_EXIT, e.active)
        .u64(field::GRACEFUL_DRAIN, u64::from(e.graceful));
    d.into_bytes()
}

/// One interpreter's garbage collector: `gc.get_count()`, `get_threshold()`, per
/// generation `collections`, `collected` and `uncollectable` of `get_stats()`,
/// `isenabled()`, `get_freeze_count()`, and the pause events lost since the last sample.
pub type GcCounters = [u64; 18];

/// An interpreter's garbage collector counters; `interpreter` is left out when empty
/// (the process has a single interpreter).
pub fn encode_gc_snapshot(
    pid: u32,
    counters: &GcCounters,
    interpreter: &str,
    seq: u32,
    stamp: f64,
) -> Vec<u8> {
    let mut d = Datagram::new(Kind::GcSnapshot, pid, seq, stamp);
    for (i, &v) in counters.iter().enumerate() {
        d.u64(field::GC_FIRST + i as u16, v);
    }
    d.bytes(field::INTERPRETER_NAME, interpreter.as_bytes());
    d.into_bytes()
}

/// One collection: when it began, how long it paused, its generation and outcome.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GcEvent {
    pub start: f64,
    pub duration: f64,
    pub generation: u64,
    pub collected: u64,
    pub uncollectable: u64,
}

pub fn encode_gc_event(pid: u32, e: &GcEvent, interpreter: &str, seq: u32, stamp: f64) -> Vec<u8> {
    let mut d = Datagram::new(Kind::GcEvent, pid, seq, stamp);
    d.f64(field::GC_EVENT_START_STAMP, e.start)
        .f64(field::GC_EVENT_DURATION, e.duration)
        .u64(field::GC_EVENT_GENERATION, e.generation)
        .u64(field::GC_EVENT_COLLECTED, e.collected)
        .u64(field::GC_EVENT_UNCOLLECTABLE, e.uncollectable)
        .bytes(field::INTERPRETER_NAME, interpreter.as_bytes());
    d.into_bytes()
}
