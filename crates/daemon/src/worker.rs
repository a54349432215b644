//! The Python side of a daemon process: `threads` worker threads that take requests from
//! the acceptor and run them through the WSGI core, and a monitor thread that enforces
//! request-timeout, startup-timeout and the recycling policies (restart-interval,
//! inactivity-timeout, rss-limit).
#![forbid(unsafe_code)]

use super::acceptor::{Acceptor, Busy, Job};
use super::group::DaemonGroup;
use super::outbox::{Outbox, OutboxHandle};
use super::startup::StartupTimer;
use super::transport::{DaemonBody, DaemonSink, Ending, KeepAlivePolicy, send_frame};
use crate::python;
use crate::wsgi::{self, OnScriptChange, Outcome, WsgiRequest};
use mod_wsgi_wire::{self as wire, ErrorKind, Frame};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopKind {
    /// Finish what is running (graceful-timeout), then exit.
    Graceful,
    /// Exit as soon as running requests end, at most shutdown-timeout.
    Immediate,
}

#[derive(Debug, Clone, Copy)]
pub struct Stop {
    pub reason: &'static str,
    pub kind: StopKind,
}

/// A request a worker is running, as the monitor sees it.
struct Active {
    started: Instant,
    thread_ident: u64,
    application_group: String,
    interrupted_at: Option<Instant>,
}

pub struct Shared {
    pub group: Arc<DaemonGroup>,
    pub acceptor: Acceptor,
    active: Mutex<Vec<Option<Active>>>,
    served: AtomicU64,
    started: Instant,
    last_activity: Mutex<Instant>,
    stop: Mutex<Option<Stop>>,
    pub stopped: tokio::sync::Notify,
    /// Set to ask the Apache parent for a successor (see `recycle`).
    replace_flag: &'static AtomicU64,
    /// maximum-requests plus this process's draw of maximum-requests-jitter.
    pub maximum_requests: u64,
    /// Why a successor was asked for: the reason logged when it retires this process.
    replacement_reason: Mutex<Option<&'static str>>,
    /// When the GIL watch last got the main interpreter's GIL (deadlock-timeout).
    gil_seen: Mutex<Instant>,
    /// The own-GIL interpreter the GIL watch is entering ("" for the main one).
    gil_waited_for: Mutex<String>,
    /// This process's slot in its group (its health word).
    pub slot: usize,
    /// startup-timeout: from the first request until the script has loaded.
    startup: Arc<StartupTimer>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub fn new(
        group: Arc<DaemonGroup>,
        acceptor: Acceptor,
        replace_flag: &'static AtomicU64,
        slot: usize,
    ) -> Arc<Self> {
        let threads = group.spec.threads as usize;
        let maximum_requests =
            group.spec.maximum_requests + jitter(group.spec.maximum_requests_jitter);
        let startup = StartupTimer::new(group.spec.startup_timeout);
        Arc::new(Shared {
            group,
            acceptor,
            active: Mutex::new((0..threads).map(|_| None).collect()),
            served: AtomicU64::new(0),
            started: Instant::now(),
            last_activity: Mutex::new(Instant::now()),
            stop: Mutex::new(None),
            stopped: tokio::sync::Notify::new(),
            maximum_requests,
            replace_flag,
            replacement_reason: Mutex::new(None),
            gil_seen: Mutex::new(Instant::now()),
            gil_waited_for: Mutex::new(String::new()),
            slot,
            startup,
        })
    }

    pub fn stop_state(&self) -> Option<Stop> {
        *lock(&self.stop)
    }

    /// Decides that this process stops; an immediate stop overrides a graceful one.
    pub fn request_stop(&self, reason: &'static str, kind: StopKind) {
        let mut stop = lock(&self.stop);
        let first = stop.is_none();
        if first
            || (kind == StopKind::Immediate && stop.is_some_and(|s| s.kind == StopKind::Graceful))
        {
            *stop = Some(Stop { reason, kind });
            drop(stop);
            // A recycle was counted when the successor was asked for.
            if first && lock(&self.replacement_reason).is_none() {
                crate::shared::metrics::record_restart(&self.group.spec.name, reason);
            }
            if first {
                tracing::info!(
                    "WSGI1109: daemon process {} of group '{}' stopping: {reason}",
                    std::process::id(),
                    self.group.spec.name
                );
                crate::telemetry::stopping(super::server::shutdown_reason(reason));
            }
            self.stopped.notify_one();
        }
    }

    /// A recycling policy fired. The process asks the Apache parent for a successor and
    /// keeps serving; the successor, once its preloads ran, tells it to drain (SIGUSR1).
    /// So even a single-process group never stops taking requests.
    pub fn recycle(&self, reason: &'static str) {
        {
            let mut asked = lock(&self.replacement_reason);
            if asked.is_some() || self.stop_state().is_some() {
                return;
            }
            *asked = Some(reason);
        }
        crate::shared::metrics::record_restart(&self.group.spec.name, reason);
        self.replace_flag.store(1, Ordering::Release);
        tracing::info!(
            "WSGI1112: daemon process {} of group '{}' is due for recycling ({reason}); it serves until its replacement is ready",
            std::process::id(),
            self.group.spec.name
        );
    }

    /// SIGUSR1: an Apache graceful restart, or this process's successor is ready.
    pub fn graceful_signal(&self) {
        let reason = lock(&self.replacement_reason).unwrap_or("graceful signal");
        self.request_stop(reason, StopKind::Graceful);
    }

    /// No request accepted and unfinished.
    pub fn is_idle(&self) -> bool {
        self.acceptor.is_idle()
    }
}

/// Starts the worker threads.
pub fn start(shared: &Arc<Shared>) -> Vec<JoinHandle<()>> {
    (0..shared.group.spec.threads as usize)
        .filter_map(|slot| {
            let shared = shared.clone();
            let mut builder = std::thread::Builder::new().name(format!("wsgi-worker-{slot}"));
            if shared.group.spec.stack_size > 0 {
                builder = builder.stack_size(shared.group.spec.stack_size as usize);
            }
            builder
                .spawn(move || {
                    let report = {
                        let shared = shared.clone();
                        OnScriptChange::Report(Arc::new(move || shared.recycle("script reload")))
                    };
                    let keep_alive: KeepAlivePolicy = {
                        let shared = shared.clone();
                        Arc::new(move || {
                            shared.stop_state().is_none() && shared.acceptor.may_keep()
                        })
                    };
                    let outbox = Outbox::new(format!("wsgi-out-{slot}"));
                    let queue = outbox.handle();
                    while let Some((job, mut busy)) = shared.acceptor.next(&shared.group) {
                        handle(&shared, slot, job, &report, &keep_alive, &queue, &mut busy);
                    }
                })
                .map_err(|e| tracing::error!("WSGI1108: cannot start a worker thread: {e}"))
                .ok()
        })
        .collect()
}

fn refuse(stream: &UnixStream, kind: ErrorKind, message: &str) {
    send_frame(stream, &Frame::Error(kind, message.to_owned()));
    linger_close(stream);
}

/// Closes a connection whose request body may still be arriving without resetting it:
/// closing a Unix socket with unread data makes the peer's read fail with ECONNRESET,
/// which would hide the error frame just sent. Reads and discards until the Apache child
/// hangs up (it does on receiving the frame), for at most a second.
fn linger_close(mut stream: &UnixStream) {
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut buf = [0u8; 16 * 1024];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        if stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .is_err()
        {
            return;
        }
        match std::io::Read::read(&mut stream, &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

fn handle(
    shared: &Shared,
    slot: usize,
    job: Job,
    on_script_change: &OnScriptChange,
    keep_alive: &KeepAlivePolicy,
    outbox: &OutboxHandle,
    busy: &mut Busy<'_>,
) {
    let group = &shared.group;
    let spec = &group.spec;
    let Job { connection, head } = job;
    let stream = &connection.stream;
    if shared
        .stop_state()
        .is_some_and(|s| s.kind == StopKind::Immediate)
    {
        return refuse(
            stream,
            ErrorKind::Restarting,
            "daemon process is shutting down",
        );
    }
    let waited =
        Duration::from_micros(mod_wsgi_engine::epoch_us().saturating_sub(head.request_start_us));
    crate::shared::metrics::record_queue_wait(&spec.name, waited);
    if !spec.queue_timeout.is_zero() && waited > spec.queue_timeout {
        tracing::error!(
            "WSGI0084: group '{}': request waited {:.1} s for a daemon thread (queue-timeout {} s); not run",
            spec.name,
            waited.as_secs_f64(),
            spec.queue_timeout.as_secs()
        );
        return refuse(stream, ErrorKind::QueueTimeout, "queue-timeout exceeded");
    }
    // WSGIIgnoreActivity: such requests (health checks, say) keep inactivity-timeout running.
    let counts_as_activity = head.environ.get("mod_wsgi.ignore_activity") != Some("1");
    let ending = Ending::new(head.keep_alive, keep_alive.clone());
    lock(&shared.active)[slot] = Some(Active {
        started: Instant::now(),
        thread_ident: python::current_thread_ident(),
        application_group: head.application_group.clone(),
        interrupted_at: None,
    });
    let mut environ = head.environ;
    // When this daemon started the request (mod_wsgi.daemon_start).
    environ.push_with("mod_wsgi.daemon_start", |text| {
        let _ = std::fmt::Write::write_fmt(text, format_args!("{}", mod_wsgi_engine::epoch_us()));
    });
    let request = WsgiRequest {
        environ,
        application_group: head.application_group,
        script: PathBuf::from(head.script),
        script_mtime: head.script_mtime,
        callable: head.callable,
        reload: head.reload,
        header_only: head.header_only,
        multithread: spec.threads > 1,
        multiprocess: spec.processes_given || spec.processes > 1,
        run_once: spec.run_once(),
        on_script_change: on_script_change.clone(),
        on_script_loaded: shared.startup.request(),
        apache_request: None,
    };
    let sink = DaemonSink::new(stream.clone(), &spec.name, ending.clone(), outbox.clone());
    let body = DaemonBody::new(stream.clone(), connection.decoder.clone(), ending.clone());
    let outcome = wsgi::run(request, Box::new(body), Box::new(sink));
    busy.application_done();
    let interrupted = lock(&shared.active)[slot]
        .take()
        .is_some_and(|a| a.interrupted_at.is_some());
    // A response that reached its Content-Length already went out with its end frame;
    // what happened after (close() raising, say) was logged and changes nothing for the
    // client.
    let kept = match outcome {
        _ if ending.ended() => ending.kept(),
        Outcome::Complete => {
            let end = ending.end_frame();
            let frame = wire::frame_header(end, 0);
            std::io::Write::write_all(&mut &**stream, &frame).is_ok()
                && end == mod_wsgi_wire::Kind::EndKeepAlive
        }
        Outcome::ClientGone => false,
        Outcome::Failed { .. } if interrupted => {
            send_frame(
                stream,
                &Frame::Error(ErrorKind::RequestTimeout, "request-timeout exceeded".into()),
            );
            false
        }
        Outcome::Failed { .. } => {
            send_frame(
                stream,
                &Frame::Error(ErrorKind::Application, "application failed".into()),
            );
            false
        }
    };
    if kept {
        shared.acceptor.keep(connection);
    }
    if counts_as_activity {
        *lock(&shared.last_activity) = Instant::now();
    }
    let served = shared.served.fetch_add(1, Ordering::Relaxed) + 1;
    if spec.maximum_requests > 0 && served >= shared.maximum_requests {
        shared.recycle("maximum-requests");
    }
}

/// deadlock-timeout: a thread takes every GIL of the process about once a second (the
/// main one, then each own-GIL interpreter's); when one cannot be had for
/// deadlock-timeout, something holds it without ever giving it up (C code that does not
/// release it) and the process is replaced. Ends with the process.
pub fn start_gil_watch(shared: &Arc<Shared>) -> std::io::Result<()> {
    if shared.group.spec.deadlock_timeout.is_zero() || shared.group.spec.threads == 0 {
        return Ok(());
    }
    let shared = shared.clone();
    std::thread::Builder::new()
        .name("wsgi-gil-watch".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(Duration::from_secs(1));
                *lock(&shared.gil_waited_for) = String::new();
                let mut free = python::with_interpreter("", |_, _| ()).is_ok();
                for name in python::own_gil_interpreters() {
                    *lock(&shared.gil_waited_for) = name.clone();
                    free &= python::with_interpreter(&name, |_, _| ()).is_ok();
                }
                if free {
                    *lock(&shared.gil_seen) = Instant::now();
                }
            }
        })
        .map(drop)
}

/// Starts the thread that watches timeouts; it ends once the process is stopping and idle.
pub fn start_monitor(shared: &Arc<Shared>) -> std::io::Result<JoinHandle<()>> {
    let shared = shared.clone();
    std::thread::Builder::new()
        .name("wsgi-monitor".to_owned())
        .spawn(move || monitor(&shared))
}

fn monitor(shared: &Shared) {
    let spec = &shared.group.spec;
    let apache_parent = std::os::unix::process::parent_id();
    let mut rounds: u64 = 0;
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let stopping = shared.stop_state().is_some();
        if stopping && shared.is_idle() {
            return;
        }
        if !spec.restart_interval.is_zero() && shared.started.elapsed() >= spec.restart_interval {
            shared.recycle("restart-interval");
        }
        if !spec.inactivity_timeout.is_zero()
            && shared.is_idle()
            && lock(&shared.last_activity).elapsed() >= spec.inactivity_timeout
        {
            shared.recycle("inactivity-timeout");
        }
        if std::os::unix::process::parent_id() != apache_parent {
            // Apache went away without stopping us (killed, or a graceful restart whose
            // new configuration failed): nobody would ever retire or replace this process.
            shared.request_stop("the Apache parent process exited", StopKind::Graceful);
        }
        rounds += 1;
        let resident = || mod_wsgi_engine::procfs::status_bytes("self", "VmRSS").unwrap_or(0);
        if spec.rss_limit > 0 && rounds.is_multiple_of(10) && resident() > spec.rss_limit {
            shared.recycle("rss-limit");
        }
        if !spec.request_timeout.is_zero() {
            enforce_request_timeout(shared);
        }
        if shared.startup.expired() {
            tracing::warn!(
                "WSGI1146: daemon process {} of group '{}': the WSGI script has not loaded within startup-timeout ({} s) of the first request; the process is replaced. Look for an import that hangs or keeps failing (a failing one logs its traceback), or raise startup-timeout",
                std::process::id(),
                spec.name,
                spec.startup_timeout.as_secs()
            );
            shared.recycle("startup-timeout");
        }
        let gil_stuck = lock(&shared.gil_seen).elapsed();
        if !spec.deadlock_timeout.is_zero()
            && spec.threads > 0
            && gil_stuck >= spec.deadlock_timeout + Duration::from_secs(1)
            && shared.stop_state().is_none()
            && lock(&shared.replacement_reason).is_none()
        {
            // Its threads could not run a request anyway: new ones wait in the group's
            // backlog for the replacement instead, and the children no longer count this
            // process as serving (if the replacement cannot start, they answer at once).
            shared.acceptor.close();
            spec_health_clear(shared);
            let which = match lock(&shared.gil_waited_for).as_str() {
                "" => "the Python GIL".to_owned(),
                name => format!("the GIL of interpreter '{name}'"),
            };
            tracing::error!(
                "WSGI1116: daemon process {} of group '{}': {which} has not been free for {} s (deadlock-timeout); the process is replaced",
                std::process::id(),
                spec.name,
                gil_stuck.as_secs()
            );
            shared.recycle("deadlock-timeout");
        }
    }
}

/// mod_wsgi 6's request-timeout rule: a request counts as stuck once it ran
/// request-timeout x (1 + ln(threads)) (a busy process's requests share its threads).
/// With interrupt-timeout, `mod_wsgi.RequestTimeout` is raised in its thread first and
/// the process is replaced only if the request has not ended interrupt-timeout later;
/// without, the process is replaced at once. Replaced means recycled: the replacement
/// takes new requests as soon as it is ready, this process drains behind it.
fn enforce_request_timeout(shared: &Shared) {
    let spec = &shared.group.spec;
    let limit = stuck_after(spec.request_timeout, spec.threads);
    let interrupt = spec.interrupt_timeout;
    let mut to_interrupt = Vec::new();
    let mut stuck = false;
    for active in lock(&shared.active).iter_mut().flatten() {
        match active.interrupted_at {
            None if active.started.elapsed() >= limit => {
                if interrupt.is_zero() {
                    stuck = true;
                } else {
                    active.interrupted_at = Some(Instant::now());
                    to_interrupt.push((active.application_group.clone(), active.thread_ident));
                }
            }
            Some(at) if at.elapsed() >= interrupt => stuck = true,
            _ => {}
        }
    }
    for (application_group, ident) in to_interrupt {
        tracing::error!(
            "WSGI1111: group '{}': a request ran longer than request-timeout ({:.1} s with {} threads); Injected RequestTimeout into thread {ident}",
            spec.name,
            limit.as_secs_f64(),
            spec.threads
        );
        // Raising needs the GIL, which C code may be holding: on a thread of its own, so
        // the monitor's other checks (deadlock-timeout among them) go on meanwhile.
        let spawned = std::thread::Builder::new()
            .name("wsgi-interrupt".to_owned())
            .spawn(move || {
                let _ = python::with_interpreter(&application_group, |py, _| {
                    python::raise_request_timeout(py, ident)
                });
            });
        if let Err(e) = spawned {
            tracing::warn!("WSGI1114: cannot start a thread to raise RequestTimeout: {e}");
        }
    }
    if stuck {
        shared.recycle("request-timeout");
    }
}

/// This process no longer counts as serving in its group's health words.
fn spec_health_clear(shared: &Shared) {
    shared
        .group
        .health
        .clear_slot(shared.slot, std::process::id());
}

/// request-timeout x (1 + ln(threads)), as mod_wsgi 6 scales it.
pub(crate) fn stuck_after(request_timeout: Duration, threads: u32) -> Duration {
    let scale = 1.0 + f64::from(threads.max(1)).ln();
    request_timeout.mul_f64(scale)
}

/// Requests a stopping process waits for: not those already past request-timeout plus
/// interrupt-timeout, which would only hold the drain up (mod_wsgi 6 ignores them too).
impl Shared {
    pub fn has_unwedged_requests(&self) -> bool {
        let spec = &self.group.spec;
        if spec.request_timeout.is_zero() {
            return !self.is_idle();
        }
        // Every connection taken counts (busy), from before its head is read until its
        // end frame is written; only requests running past the wedge age are left out.
        let wedge_age = spec.request_timeout + spec.interrupt_timeout;
        let wedged = lock(&self.active)
            .iter()
            .flatten()
            .filter(|a| a.started.elapsed() >= wedge_age)
            .count();
        self.acceptor.busy_count() > wedged
    }
}

/// A number in 0..=max that differs between processes (pid and clock mixed; no need for
/// a cryptographic source to spread recycling points).
fn jitter(max: u64) -> u64 {
    if max == 0 {
        return 0;
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(&(std::process::id(), mod_wsgi_engine::epoch_us()), &mut h);
    std::hash::Hasher::finish(&h) % (max + 1)
}

#[cfg(test)]
mod timeout_tests {
    use super::*;

    #[test]
    fn the_stuck_threshold_grows_with_the_threads() {
        let secs = |threads| stuck_after(Duration::from_secs(10), threads).as_secs_f64();
        assert!((secs(1) - 10.0).abs() < 1e-9);
        assert!((secs(10) - 33.0).abs() < 0.1, "{}", secs(10));
        assert!((secs(25) - 42.2).abs() < 0.1, "{}", secs(25));
        assert_eq!(secs(0), secs(1));
    }
}
