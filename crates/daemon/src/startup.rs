//! startup-timeout, as mod_wsgi: the first request a daemon process runs starts a timer,
//! which stops once a request has loaded the application's WSGI script; a process whose
//! script has not loaded (still importing, or failing each time) when the timer runs out
//! is replaced (the monitor asks for the replacement).
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a request calls once its script is loaded.
pub type OnLoaded = Arc<dyn Fn() + Send + Sync>;

pub struct StartupTimer {
    timeout: Duration,
    /// When the timer runs out; None until the first request.
    deadline: Mutex<Option<Instant>>,
    /// A script loaded, or the timer ran out: nothing more to watch.
    over: AtomicBool,
}

impl StartupTimer {
    /// A zero `timeout` is no timer.
    pub fn new(timeout: Duration) -> Arc<Self> {
        Arc::new(StartupTimer {
            timeout,
            deadline: Mutex::new(None),
            over: AtomicBool::new(timeout.is_zero()),
        })
    }

    /// A request is about to run: the first one starts the timer. Returns what the
    /// request calls once its script is loaded, or None when nothing is watched (any
    /// more).
    pub fn request(self: &Arc<Self>) -> Option<OnLoaded> {
        if self.over.load(Ordering::Acquire) {
            return None;
        }
        let mut deadline = self.deadline.lock().unwrap_or_else(|p| p.into_inner());
        if deadline.is_none() {
            *deadline = Some(Instant::now() + self.timeout);
            tracing::debug!(
                "application startup timer started in daemon process {} ({} s)",
                std::process::id(),
                self.timeout.as_secs()
            );
        }
        let timer = self.clone();
        Some(Arc::new(move || timer.loaded()))
    }

    fn loaded(&self) {
        if !self.over.swap(true, Ordering::AcqRel) {
            tracing::debug!(
                "application startup timer cancelled in daemon process {}: the script loaded",
                std::process::id()
            );
        }
    }

    /// True once, when the timer has run out without a script loaded.
    pub fn expired(&self) -> bool {
        if self.over.load(Ordering::Acquire) {
            return false;
        }
        let deadline = *self.deadline.lock().unwrap_or_else(|p| p.into_inner());
        deadline.is_some_and(|d| Instant::now() >= d) && !self.over.swap(true, Ordering::AcqRel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_timeout_nothing_is_watched() {
        let timer = StartupTimer::new(Duration::ZERO);
        assert!(timer.request().is_none());
        assert!(!timer.expired());
    }

    #[test]
    fn the_timer_runs_from_the_first_request_until_a_script_loads() {
        let timer = StartupTimer::new(Duration::from_millis(500));
        assert!(!timer.expired(), "not started before a request");
        let loaded = timer.request().expect("watched");
        std::thread::sleep(Duration::from_millis(20));
        let _second = timer.request().expect("still watched");
        assert!(!timer.expired());
        loaded();
        std::thread::sleep(Duration::from_millis(600));
        assert!(!timer.expired(), "the script loaded in time");
        assert!(timer.request().is_none(), "nothing to watch after a load");
    }

    #[test]
    fn the_timer_expires_once() {
        let timer = StartupTimer::new(Duration::from_millis(20));
        let loaded = timer.request().expect("watched");
        std::thread::sleep(Duration::from_millis(30));
        assert!(timer.expired());
        assert!(!timer.expired(), "reported once");
        loaded();
        assert!(timer.request().is_none());
    }
}
