//! Inside one daemon process: start Python, run the preloads, watch signals on a tokio
//! runtime, start the worker threads (which accept and run requests themselves, see
//! `acceptor`), then wait for a signal or a recycling policy to stop the process;
//! in-flight requests are drained first.
#![forbid(unsafe_code)]

use super::acceptor::Acceptor;
use super::group::DaemonGroup;
use super::process::Lineage;
use super::worker::{Shared, StopKind};
use crate::python;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::signal::unix::{SignalKind, signal};

/// The exit status of a daemon process that could not initialise (Python or its
/// preloads) and waited out its retry delay: the parent counts it as an initialisation
/// failure, not a crash, and starts the next one at once.
pub const INIT_FAILURE_STATUS: i32 = 3;
/// The exit status of such a process that saw a file of its traceback change while it
/// waited: the parent starts the next one at once, with the shortest delay again.
pub const RETRY_NOW_STATUS: i32 = 4;
/// How often a failed process looks at the files it watches.
const WATCH_INTERVAL: Duration = Duration::from_millis(200);

/// Serves until told to stop; returns the process exit code.
pub fn run(group: Arc<DaemonGroup>, lineage: Lineage) -> i32 {
    let name = group.spec.name.clone();
    let pid = std::process::id();
    if let Err(e) = python::initialize(group.python.clone()) {
        tracing::error!("WSGI1102: daemon process of group '{name}': {e}");
        group.health.mark_start_failed(pid);
        return hold_after_failure(&lineage, group.spec.startup_timeout, &[]);
    }
    crate::shared::metrics::claim_process(&name, u64::from(group.spec.threads));
    if let Err(failures) = preload(&group) {
        // A process is ready only once its preloads ran, so no request meets a
        // half-initialised application. A process it would replace serves on meanwhile;
        // without one, the Apache children answer 500 at once instead of queueing.
        let delay = retry_delay(lineage.failed_starts, group.spec.startup_timeout);
        tracing::error!(
            "WSGI1113: daemon process {pid} of group '{name}' failed its preloads; {}; it tries again in {:.1} s, or as soon as a file of the traceback changes",
            if lineage.predecessor.is_some() {
                "the running process keeps serving"
            } else {
                "requests are answered 500 until a process loads the application"
            },
            delay.as_secs_f64()
        );
        group.health.mark_application_failed(pid);
        let mut watched: Vec<PathBuf> = group.preloads.iter().map(|p| p.script.clone()).collect();
        for failure in &failures {
            watched.extend(
                mod_wsgi_config::files_named_in_traceback(failure)
                    .into_iter()
                    .map(PathBuf::from),
            );
        }
        return hold_after_failure(&lineage, group.spec.startup_timeout, &watched);
    }
    let acceptor = Acceptor::new(
        crate::socket::listener_from_fd(group.serving_fd(lineage.lane)),
        &group,
        lineage.lane,
    );
    let acceptor = match acceptor {
        Ok(a) => a,
        Err(e) => {
            tracing::error!("WSGI1102: daemon process of group '{name}': bad listener: {e}");
            return 1;
        }
    };
    let shared = Shared::new(group.clone(), acceptor, lineage.replace_flag, lineage.slot);
    let weak = Arc::downgrade(&shared);
    python::set_recycle(move || {
        if let Some(shared) = weak.upgrade() {
            shared.recycle("mod_wsgi.recycle()");
        }
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("WSGI1102: daemon process of group '{name}': cannot start tokio: {e}");
            return 1;
        }
    };
    // Signals are watched before the first request can be accepted.
    {
        let _context = runtime.enter();
        watch_signals(&shared);
    }
    // As mod_wsgi 6: a service process (threads=0) takes no requests and reports nothing.
    if group.spec.threads != 0 {
        crate::telemetry::start();
    }
    let workers = super::worker::start(&shared);
    if let Err(e) = super::worker::start_gil_watch(&shared) {
        tracing::warn!(
            "WSGI1114: daemon process of group '{name}': no deadlock-timeout watch: {e}"
        );
    }
    let monitor = match super::worker::start_monitor(&shared) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(
                "WSGI1102: daemon process of group '{name}': cannot start its monitor thread: {e}"
            );
            return 1;
        }
    };
    let recycling = match shared.maximum_requests {
        0 => String::new(),
        n => format!(", recycled after {n} requests"),
    };
    group.health.mark_ready(lineage.slot, pid);
    tracing::info!(
        "WSGI1100: daemon process {pid} of group '{name}' serving ({} threads{recycling})",
        group.spec.threads
    );
    if let Some(predecessor) = lineage.predecessor {
        // Ready: the process this one replaces stops taking requests and drains.
        super::process::retire(predecessor);
    }
    runtime.block_on(wait_and_drain(shared.clone()));
    let stop = shared.stop_state();
    let drained = shared.is_idle();
    if drained {
        for w in workers {
            let _ = w.join();
        }
        let _ = monitor.join();
        let reason = stop.map_or("", |s| shutdown_reason(s.reason));
        if stop.is_some() {
            python::set_shutdown_reason(reason);
        }
        crate::telemetry::stopped(reason);
        python::run_exit_handlers();
    } else {
        crate::telemetry::stopped(stop.map_or("", |s| shutdown_reason(s.reason)));
    }
    tracing::info!(
        "WSGI1106: daemon process {} of group '{name}' exiting ({}{})",
        std::process::id(),
        stop.map_or("stopped", |s| s.reason),
        if drained {
            ""
        } else {
            "; requests still running were cut off"
        }
    );
    0
}

/// How long a process that failed to initialise waits before the next try: 1 s after
/// the first failure, doubling up to 30 s, and never longer than the group's
/// startup-timeout when one is set (mod_wsgi restarts a process that could not load its
/// application within it).
fn retry_delay(failed_starts: u32, startup_timeout: Duration) -> Duration {
    let delay = Duration::from_secs((1u64 << failed_starts.min(5)).min(30));
    if startup_timeout.is_zero() {
        delay
    } else {
        delay.min(startup_timeout)
    }
}

/// Waits out the retry delay of a process that failed to initialise, returning early
/// when one of `watched` changes (the fix is tried at once); returns the exit status.
fn hold_after_failure(lineage: &Lineage, startup_timeout: Duration, watched: &[PathBuf]) -> i32 {
    let modified = |path: &PathBuf| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let before: Vec<_> = watched.iter().map(modified).collect();
    let until = Instant::now() + retry_delay(lineage.failed_starts, startup_timeout);
    while Instant::now() < until {
        std::thread::sleep(WATCH_INTERVAL);
        if let Some(changed) = watched
            .iter()
            .zip(&before)
            .find(|&(path, was)| modified(path) != *was)
        {
            tracing::info!(
                "WSGI1115: daemon process {}: '{}' changed; trying again now",
                std::process::id(),
                changed.0.display()
            );
            return RETRY_NOW_STATUS;
        }
    }
    INIT_FAILURE_STATUS
}

/// Runs the preloads; the failures (each also logged) if any failed.
fn preload(group: &DaemonGroup) -> Result<(), Vec<String>> {
    let mut failures = Vec::new();
    for p in &group.preloads {
        let Err(failure) = python::preload(&p.script, &p.application_group) else {
            continue;
        };
        tracing::error!(
            "WSGI1103: preloading '{}' into group '{}' failed: {failure}",
            p.script.display(),
            group.spec.name
        );
        failures.push(failure);
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures)
    }
}

/// mod_wsgi 6's name for why a process stops (`process_stopping`'s `shutdown_reason`);
/// the reasons mod_wsgi 6 does not have keep ours, spelt its way.
pub(crate) fn shutdown_reason(reason: &str) -> &str {
    match reason {
        "shutdown signal" => "shutdown_signal",
        "graceful signal" => "graceful_signal",
        "maximum-requests" => "maximum_requests",
        "restart-interval" => "restart_interval",
        "inactivity-timeout" => "inactivity_timeout",
        "request-timeout" => "request_timeout",
        "startup-timeout" => "startup_timeout",
        "deadlock-timeout" => "deadlock_timeout",
        "cpu-time-limit" => "cpu_time_limit",
        "script reload" => "script_reload",
        "rss-limit" => "rss_limit",
        "mod_wsgi.recycle()" => "recycle",
        "the Apache parent process exited" => "parent_exited",
        other => other,
    }
}

/// SIGHUP and SIGUSR2 become `process_signal` events for `mod_wsgi.subscribe_signals()`
/// callbacks, as in mod_wsgi 6 (they do not end the process). The callbacks run on a
/// thread of their own, never on the runtime's.
fn watch_event_signals() {
    for (signum, signame) in [(libc::SIGHUP, "SIGHUP"), (libc::SIGUSR2, "SIGUSR2")] {
        match signal(SignalKind::from_raw(signum)) {
            Ok(mut s) => {
                tokio::spawn(async move {
                    while s.recv().await.is_some() {
                        let _ = std::thread::Builder::new()
                            .name("wsgi-signal".into())
                            .spawn(move || python::publish_process_signal(signum, signame));
                    }
                });
            }
            Err(e) => tracing::warn!("WSGI1107: cannot watch signal: {e}"),
        }
    }
}

/// Turns signals into stops. Needs the runtime's context; the watching tasks run once
/// the runtime does.
fn watch_signals(shared: &Arc<Shared>) {
    watch_event_signals();
    let shutdown = |s: &Shared| s.request_stop("shutdown signal", StopKind::Immediate);
    type Action = fn(&Shared);
    let signals: [(SignalKind, Action); 4] = [
        (SignalKind::terminate(), shutdown),
        (SignalKind::interrupt(), shutdown),
        // An Apache graceful restart, or this process's successor is ready.
        (SignalKind::user_defined1(), Shared::graceful_signal),
        (SignalKind::from_raw(libc::SIGXCPU), |s| {
            s.request_stop("cpu-time-limit", StopKind::Graceful)
        }),
    ];
    for (kind, action) in signals {
        match signal(kind) {
            Ok(mut s) => {
                let shared = shared.clone();
                tokio::spawn(async move {
                    if s.recv().await.is_some() {
                        action(&shared);
                    }
                });
            }
            Err(e) => tracing::warn!("WSGI1107: cannot watch signal: {e}"),
        }
    }
}

/// Waits for a stop (a signal, or a recycling policy in a worker or the monitor), then
/// closes the acceptor and lets running requests finish within the stop's grace time.
async fn wait_and_drain(shared: Arc<Shared>) {
    let stop = loop {
        if let Some(stop) = shared.stop_state() {
            break stop;
        }
        shared.stopped.notified().await;
    };
    shared.acceptor.close();
    let spec = &shared.group.spec;
    let grace = match stop.kind {
        StopKind::Graceful
            if stop.reason == "graceful signal" && !spec.eviction_timeout.is_zero() =>
        {
            spec.eviction_timeout
        }
        StopKind::Graceful => spec.graceful_timeout,
        StopKind::Immediate => spec.shutdown_timeout,
    };
    let deadline = Instant::now() + grace;
    while shared.has_unwedged_requests() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_starts_wait_longer_each_time_within_startup_timeout() {
        let none = Duration::ZERO;
        let waits: Vec<u64> = (0..7).map(|n| retry_delay(n, none).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
        let capped = Duration::from_secs(5);
        assert_eq!(retry_delay(0, capped), Duration::from_secs(1));
        assert_eq!(retry_delay(6, capped), capped);
        assert_eq!(
            retry_delay(6, Duration::from_millis(500)),
            Duration::from_millis(500)
        );
    }
}
