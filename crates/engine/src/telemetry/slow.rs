//! What the reporter knows about running requests: how many run (while telemetry is on),
//! and with WSGISlowRequests, each request thread's running request (when it started,
//! its phases' instants, who asked for what) so that the reporter can describe it once
//! it has run longer than the threshold, and a bounded queue of slow requests that
//! finished since the last sample. A request thread only locks its own record.

use mod_wsgi_metrics::telemetry::{
    MAX_ACTIVE_PER_TICK, RequestIdentity, SlowQueue, SlowRequest, clip, room,
};
use mod_wsgi_wire::Environ;
use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static COUNTING: AtomicBool = AtomicBool::new(false);
static ACTIVE: AtomicU64 = AtomicU64::new(0);
static THRESHOLD_US: AtomicU64 = AtomicU64::new(0);
static CAPTURE_USER_AGENT: AtomicBool = AtomicBool::new(false);
/// Every request thread's record of its running request.
static RUNNING: Mutex<Vec<&'static Mutex<Option<SlowRequest>>>> = Mutex::new(Vec::new());
static FINISHED: Mutex<Option<SlowQueue>> = Mutex::new(None);

thread_local! {
    static MINE: Cell<Option<&'static Mutex<Option<SlowRequest>>>> = const { Cell::new(None) };
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Turns the bookkeeping on (the reporter starts): running requests are counted, and
/// with a threshold over 0 s, described.
pub(crate) fn configure(threshold: f64, capture_user_agent: bool, threads: usize, interval: f64) {
    if threshold > 0.0 {
        *lock(&FINISHED) = Some(SlowQueue::new(threads, interval, threshold));
        CAPTURE_USER_AGENT.store(capture_user_agent, Ordering::Relaxed);
        THRESHOLD_US.store((threshold * 1e6) as u64, Ordering::Relaxed);
    }
    COUNTING.store(true, Ordering::Release);
}

/// Whether requests are described (WSGISlowRequests is on).
pub(crate) fn tracking() -> bool {
    THRESHOLD_US.load(Ordering::Relaxed) > 0
}

/// Requests running now.
pub(crate) fn active() -> u64 {
    ACTIVE.load(Ordering::Relaxed)
}

/// The host the client asked for, without its port (Apache's `r->hostname`).
fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

fn latin1(s: &str) -> Vec<u8> {
    s.chars().map(|c| c as u32 as u8).collect()
}

/// What the environ says about who asked for what; the query string is left out.
fn identity(environ: &Environ) -> RequestIdentity {
    let mut w = RequestIdentity::default();
    let (mut host, mut server_name, mut https) = ("", "", false);
    for (key, value) in environ.iter() {
        let (field, size) = match key {
            "REQUEST_METHOD" => (&mut w.method, room::METHOD),
            "SCRIPT_NAME" => (&mut w.script_name, room::SCRIPT_NAME),
            "PATH_INFO" => (&mut w.path_info, room::PATH_INFO),
            "SERVER_PROTOCOL" => (&mut w.protocol, room::PROTOCOL),
            "REMOTE_ADDR" => (&mut w.peer_ip, room::PEER_IP),
            "mod_wsgi.request_id" => (&mut w.log_id, room::LOG_ID),
            "HTTP_USER_AGENT" if CAPTURE_USER_AGENT.load(Ordering::Relaxed) => {
                (&mut w.user_agent, room::USER_AGENT)
            }
            "HTTP_HOST" => {
                host = value;
                continue;
            }
            "SERVER_NAME" => {
                server_name = value;
                continue;
            }
            "HTTPS" => {
                https = value.eq_ignore_ascii_case("on") || value == "1";
                continue;
            }
            _ => continue,
        };
        *field = clip(&latin1(value), size);
    }
    let host = if host.is_empty() {
        server_name
    } else {
        host_without_port(host)
    };
    w.hostname = clip(&latin1(host), room::HOSTNAME);
    w.scheme = if https {
        b"https".to_vec()
    } else {
        b"http".to_vec()
    };
    w
}

/// A request starts on this thread: counted, and described when tracking. `record`
/// gives its thread, instants and start; the identity is read from `environ`.
pub(crate) fn begin(record: impl FnOnce() -> SlowRequest, environ: &Environ) {
    if !COUNTING.load(Ordering::Relaxed) {
        return;
    }
    let mut record = record();
    record.active_at_start = ACTIVE.fetch_add(1, Ordering::Relaxed) + 1;
    if !tracking() {
        return;
    }
    record.who = identity(environ);
    let mine = MINE.with(|m| {
        m.get().unwrap_or_else(|| {
            let slot: &'static Mutex<Option<SlowRequest>> = Box::leak(Box::new(Mutex::new(None)));
            lock(&RUNNING).push(slot);
            m.set(Some(slot));
            slot
        })
    });
    *lock(mine) = Some(record);
}

/// The request of this thread finished at `now_us`; `fill` completes its record (I/O,
/// CPU, status) when it was slow.
pub(crate) fn finish(now_us: u64, fill: impl FnOnce(&mut SlowRequest)) {
    if !COUNTING.load(Ordering::Relaxed) {
        return;
    }
    let before = ACTIVE
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            Some(n.saturating_sub(1))
        })
        .unwrap_or(0);
    let Some(mine) = MINE.with(Cell::get) else {
        return;
    };
    let Some(mut record) = lock(mine).take() else {
        return;
    };
    record.duration_us = now_us.saturating_sub(record.start_us);
    if record.duration_us < THRESHOLD_US.load(Ordering::Relaxed) {
        return;
    }
    record.completed = true;
    record.active_at_completion = before;
    record.instants.application_finish = now_us;
    fill(&mut record);
    if let Some(queue) = lock(&FINISHED).as_mut() {
        queue.push(record);
    }
}

/// The slow requests that finished since the last call, oldest first.
pub(crate) fn take_finished() -> Vec<SlowRequest> {
    lock(&FINISHED)
        .as_mut()
        .map(SlowQueue::drain)
        .unwrap_or_default()
}

/// Up to 16 requests running at `now_us` for at least the threshold.
pub(crate) fn running_slow(now_us: u64) -> Vec<SlowRequest> {
    let threshold = THRESHOLD_US.load(Ordering::Relaxed);
    if threshold == 0 {
        return Vec::new();
    }
    let slots = lock(&RUNNING).clone();
    let mut found = Vec::new();
    for slot in slots {
        if found.len() == MAX_ACTIVE_PER_TICK {
            break;
        }
        if let Some(r) = lock(slot).as_ref()
            && now_us.saturating_sub(r.start_us) >= threshold
        {
            let mut r = r.clone();
            r.duration_us = now_us.saturating_sub(r.start_us);
            found.push(r);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_identity_comes_from_the_environ_without_its_query() {
        let mut env = Environ::with_capacity(8, 256);
        for (k, v) in [
            ("REQUEST_METHOD", "POST"),
            ("SCRIPT_NAME", "/app"),
            ("PATH_INFO", "/slow"),
            ("QUERY_STRING", "secret=1"),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
            ("REMOTE_ADDR", "127.0.0.1"),
            ("HTTP_HOST", "example.com:8080"),
            ("HTTP_USER_AGENT", "curl"),
        ] {
            env.push(k, v);
        }
        let w = identity(&env);
        assert_eq!(w.method, b"POST");
        assert_eq!(
            (w.script_name, w.path_info),
            (b"/app".to_vec(), b"/slow".to_vec())
        );
        assert_eq!(
            (w.hostname, w.scheme),
            (b"example.com".to_vec(), b"http".to_vec())
        );
        assert!(w.user_agent.is_empty(), "only with +CaptureUserAgent");
        assert_eq!(host_without_port("[::1]:80"), "[::1]");
        assert_eq!(host_without_port("h"), "h");
    }

    #[test]
    fn the_host_falls_back_to_the_server_name_and_https_gives_the_scheme() {
        let mut env = Environ::with_capacity(8, 256);
        for (k, v) in [
            ("SERVER_NAME", "www.example.org"),
            ("HTTPS", "1"),
            ("PATH_INFO", "/caf\u{e9}"),
        ] {
            env.push(k, v);
        }
        let w = identity(&env);
        assert_eq!(w.hostname, b"www.example.org");
        assert_eq!(w.scheme, b"https");
        assert_eq!(
            w.path_info, b"/caf\xe9",
            "one byte per ISO-8859-1 character"
        );
        env.push("HTTP_HOST", "[::1]:8443");
        assert_eq!(identity(&env).hostname, b"[::1]", "the Host header wins");
    }

    #[test]
    fn long_values_are_cut_to_the_room_mod_wsgi_gives_them() {
        let mut env = Environ::with_capacity(2, 1024);
        let path = format!("/{}", "p".repeat(600));
        env.push("PATH_INFO", &path);
        env.push("REQUEST_METHOD", "PROPFIND-EXTENDED-LONG");
        let w = identity(&env);
        assert_eq!(w.path_info.len(), room::PATH_INFO - 1);
        assert!(w.path_info.ends_with(b"..."));
        assert_eq!(w.method, b"PROPFIND-EXT...");
    }
}
