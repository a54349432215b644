//! The reporter of a process (an Apache child serving embedded mode, or a daemon
//! process with request threads), as mod_wsgi 6.1's: `process_started` at once, then
//! every interval a thread of its own sends the sample of the period, the slow requests
//! (finished, then still running) and each interpreter's garbage collector figures.
//! When the process stops it sends `process_stopping`, then (after the drain) a last
//! sample for the partial period and `process_stopped`.

use super::sender::Sender;
use super::slow;
use crate::python::telemetry as py;
use mod_wsgi_metrics::Baseline;
use mod_wsgi_metrics::telemetry::{
    Ending, Identity, Tick, encode_gc_event, encode_gc_snapshot, encode_slow, encode_started,
    encode_stopped, encode_stopping, encode_tick,
};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;

struct Reporter {
    sender: Sender,
    identity: Identity,
    target: String,
    interval: f64,
    slow_threshold: f64,
    started_us: u64,
    daemon: bool,
    threads_maximum: usize,
    seq: AtomicU32,
    period: Mutex<Period>,
    /// Set when the process stops; the thread sets `done` when it has left its loop.
    stop: Mutex<bool>,
    wake: Condvar,
    done: Mutex<bool>,
    left: Condvar,
    stopped_sent: AtomicBool,
}

/// Where the current sampling period started.
struct Period {
    since_us: u64,
    cpu: (f64, f64),
    reader: Baseline,
}

static REPORTER: OnceLock<Reporter> = OnceLock::new();

fn seconds(us: u64) -> f64 {
    us as f64 / 1e6
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

/// Starts this process's reporter when WSGITelemetryService is set (once; Python must be
/// initialised). Call before the process takes requests.
pub fn start() {
    if !crate::python::is_initialized() || REPORTER.get().is_some() {
        return;
    }
    let settings = crate::python::settings_for_telemetry();
    let config = &settings.telemetry;
    let Some(target) = config.socket.clone() else {
        return;
    };
    let sender = match Sender::open(&target) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(
                "WSGI0132: telemetry reporter could not open target 'unix:{target}' ({e}); metrics will not be sent. Use a socket path of at most 107 bytes"
            );
            return;
        }
    };
    let (python_version, switch_interval) = py::facts();
    let (a, b, c) = crate::python::MOD_WSGI_API_VERSION;
    let (x, y, z) = settings.apache.version;
    let identity = Identity {
        pid: std::process::id(),
        parent_pid: std::os::unix::process::parent_id(),
        hostname: hostname(),
        process_group: settings.process_group.clone(),
        mod_wsgi_version: format!("{a}.{b}.{c}"),
        python_version,
        apache_version: format!("Apache/{x}.{y}.{z}"),
        mpm_name: settings.apache.mpm_name.clone(),
        switch_interval,
    };
    let interval = config.interval_seconds();
    let slow_threshold = config.slow_requests.unwrap_or(0.0);
    let threads_maximum = py::threads_maximum();
    crate::python::want_thread_cpu();
    slow::configure(
        slow_threshold,
        config.capture_user_agent,
        threads_maximum,
        interval,
    );
    let started_us = crate::epoch_us();
    let cpu = crate::shared::metrics::resource_usage();
    let reporter = Reporter {
        sender,
        identity,
        target: target.clone(),
        interval,
        slow_threshold,
        started_us,
        daemon: py::is_daemon(),
        threads_maximum,
        seq: AtomicU32::new(0),
        period: Mutex::new(Period {
            since_us: started_us,
            cpu: (cpu.user_seconds, cpu.system_seconds),
            reader: Baseline::default(),
        }),
        stop: Mutex::new(false),
        wake: Condvar::new(),
        done: Mutex::new(false),
        left: Condvar::new(),
        stopped_sent: AtomicBool::new(false),
    };
    // Requests that already ran (none, normally) belong to no period.
    py::report(&mut lock(&reporter.period).reader, started_us);
    let reporter = REPORTER.get_or_init(|| reporter);
    let seq = reporter.next_seq();
    reporter.sender.send(&encode_started(
        &reporter.identity,
        seq,
        seconds(started_us),
    ));
    let spawned = std::thread::Builder::new()
        .name("wsgi-telemetry".into())
        .spawn(|| {
            if let Some(r) = REPORTER.get() {
                r.run();
            }
        });
    match spawned {
        Ok(_) => tracing::info!(
            "WSGI1162: telemetry reporter of process {} sends to 'unix:{target}' every {interval} s",
            std::process::id()
        ),
        Err(e) => {
            tracing::warn!(
                "WSGI0133: unable to create the telemetry reporter thread ({e}); metrics will not be sent"
            );
            *lock(&reporter.done) = true;
        }
    }
}

/// The process decided to stop (`reason` as mod_wsgi 6 names it; "" in embedded mode).
pub fn stopping(reason: &str) {
    if let Some(r) = REPORTER.get() {
        let seq = r.next_seq();
        let datagram = encode_stopping(
            &r.identity,
            reason,
            slow::active(),
            seq,
            seconds(crate::epoch_us()),
        );
        r.sender.send(&datagram);
    }
}

/// The process is about to exit: the reporter thread stops; when it did and no request
/// runs any more, the partial period is sent as a last sample; then `process_stopped`.
/// Never waits for Python when requests are still running (they may hold the GIL).
pub fn stopped(reason: &str) {
    let Some(r) = REPORTER.get() else {
        return;
    };
    *lock(&r.stop) = true;
    r.wake.notify_all();
    let done = lock(&r.done);
    let (done, _) = r
        .left
        .wait_timeout_while(done, Duration::from_secs(2), |d| !*d)
        .unwrap_or_else(|p| p.into_inner());
    let quiet = *done && slow::active() == 0;
    drop(done);
    if quiet {
        r.tick(true);
    }
    if r.stopped_sent.swap(true, Ordering::AcqRel) {
        return;
    }
    let now = crate::epoch_us();
    let active = slow::active();
    let ending = Ending {
        reason,
        uptime: seconds(now.saturating_sub(r.started_us)),
        lifetime_requests: py::finished_requests(),
        active,
        graceful: active == 0,
    };
    let seq = r.next_seq();
    r.sender
        .send(&encode_stopped(&r.identity, &ending, seq, seconds(now)));
}

impl Reporter {
    fn next_seq(&self) -> u32 {
        self.seq.fetch_add(1, Ordering::Relaxed).wrapping_add(1)
    }

    fn run(&self) {
        let every = Duration::from_secs_f64(self.interval.max(0.1));
        loop {
            let stop = lock(&self.stop);
            let (stop, _) = self
                .wake
                .wait_timeout_while(stop, every, |s| !*s)
                .unwrap_or_else(|p| p.into_inner());
            if *stop {
                break;
            }
            drop(stop);
            self.tick(false);
        }
        *lock(&self.done) = true;
        self.left.notify_all();
        tracing::debug!("telemetry reporter to 'unix:{}' stopped", self.target);
    }

    /// Sends the sample of the period now ending, the slow requests and the collectors.
    fn tick(&self, last: bool) {
        let now = crate::epoch_us();
        let usage = crate::shared::metrics::resource_usage();
        let (report, since, cpu) = {
            let mut period = lock(&self.period);
            let report = py::report(&mut period.reader, now);
            let since = std::mem::replace(&mut period.since_us, now);
            let cpu =
                std::mem::replace(&mut period.cpu, (usage.user_seconds, usage.system_seconds));
            (report, since, cpu)
        };
        let tick = Tick {
            report: &report,
            sample_period: seconds(now.saturating_sub(since)).max(1e-9),
            interval: self.interval,
            slow_threshold: self.slow_threshold,
            cpu_user: usage.user_seconds - cpu.0,
            cpu_system: usage.system_seconds - cpu.1,
            memory_rss: usage.rss_bytes,
            memory_max_rss: usage.max_rss_bytes,
            threads_maximum: self.threads_maximum,
            daemon: self.daemon,
        };
        let seq = self.next_seq();
        self.sender
            .send(&encode_tick(&self.identity, &tick, seq, seconds(now)));
        let pid = self.identity.pid;
        if slow::tracking() {
            // Finished ones first, so their final figures come before a running one ages out.
            let stamp = crate::epoch_us();
            for r in slow::take_finished()
                .into_iter()
                .chain(slow::running_slow(stamp))
            {
                let seq = self.next_seq();
                self.sender
                    .send(&encode_slow(pid, &r, stamp, seq, seconds(stamp)));
            }
        }
        if last && slow::active() > 0 {
            return;
        }
        let samples = py::gc_samples();
        let named = samples.len() > 1;
        for (name, counters, events) in samples {
            let name = if named { name.as_str() } else { "" };
            let stamp = seconds(crate::epoch_us());
            let seq = self.next_seq();
            self.sender
                .send(&encode_gc_snapshot(pid, &counters, name, seq, stamp));
            for e in &events {
                let seq = self.next_seq();
                self.sender.send(&encode_gc_event(pid, e, name, seq, stamp));
            }
        }
    }
}
