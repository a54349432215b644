//! When the Apache child flushes a proxied response, as mod_wsgi decides it with
//! `response-flush-delay` and `response-buffer-size`: body blocks go down Apache's filter
//! chain without a flush while the daemon keeps sending; the chain is flushed once the
//! daemon has been quiet for the flush delay, whenever more than the buffer size passed
//! down since the last flush, and at the end of the response. So a momentary gap in a
//! bulk transfer does not force a short write (a pacing filter such as mod_ratelimit
//! keeps its rate), while a stream that pauses reaches the client within the delay.
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

/// mod_wsgi's response-buffer-size when it is 0 (not given).
pub const DEFAULT_BUFFER_SIZE: usize = 8 * 1024 * 1024;

#[derive(Debug)]
pub struct FlushPolicy {
    delay: Duration,
    buffer_size: usize,
    /// Body bytes passed down since the last flush.
    unflushed: usize,
    /// With bytes unflushed: when the flush is due if the daemon stays quiet (set when
    /// the relay first waits after the last bytes arrived).
    due: Option<Instant>,
}

impl FlushPolicy {
    /// `buffer_size` 0 is mod_wsgi's default.
    pub fn new(delay: Duration, buffer_size: u32) -> Self {
        FlushPolicy {
            delay,
            buffer_size: match buffer_size {
                0 => DEFAULT_BUFFER_SIZE,
                n => n as usize,
            },
            unflushed: 0,
            due: None,
        }
    }

    /// `n` body bytes went down without a flush; true when more than the buffer size
    /// has since the last flush, and the sink is to be flushed now.
    pub fn passed(&mut self, n: usize) -> bool {
        self.unflushed += n;
        self.due = None;
        self.unflushed > self.buffer_size
    }

    /// The sink was flushed.
    pub fn flushed(&mut self) {
        self.unflushed = 0;
        self.due = None;
    }

    /// Bytes went down since the last flush.
    pub fn pending(&self) -> bool {
        self.unflushed > 0
    }

    /// With bytes unflushed, how much longer the relay waits for the daemon before it
    /// flushes: the flush delay counts from the first wait after the last bytes arrived.
    pub fn wait(&mut self) -> Option<Duration> {
        if self.unflushed == 0 {
            return None;
        }
        let now = Instant::now();
        let due = *self.due.get_or_insert(now + self.delay);
        Some(due.saturating_duration_since(now))
    }

    /// The flush delay has run out.
    pub fn due(&self) -> bool {
        self.unflushed > 0 && self.due.is_some_and(|d| Instant::now() >= d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_than_the_buffer_size_unflushed_asks_for_a_flush() {
        let mut policy = FlushPolicy::new(Duration::from_millis(5), 65536);
        assert!(!policy.pending());
        assert!(!policy.passed(65536), "exactly the buffer size is not more");
        assert!(policy.pending());
        assert!(policy.passed(1));
        policy.flushed();
        assert!(!policy.pending());
        assert_eq!(
            policy.wait(),
            None,
            "nothing unflushed: no flush to wait for"
        );
    }

    #[test]
    fn zero_is_mod_wsgis_eight_mib() {
        let mut policy = FlushPolicy::new(Duration::ZERO, 0);
        assert!(!policy.passed(DEFAULT_BUFFER_SIZE));
        assert!(policy.passed(1));
    }

    #[test]
    fn the_delay_counts_from_the_first_wait_and_restarts_with_new_bytes() {
        let delay = Duration::from_millis(200);
        let mut policy = FlushPolicy::new(delay, 0);
        policy.passed(10);
        let first = policy.wait().unwrap();
        assert!(first <= delay && first > delay / 2, "{first:?}");
        assert!(!policy.due());
        std::thread::sleep(Duration::from_millis(20));
        let later = policy.wait().unwrap();
        assert!(later < first, "the same deadline: {later:?} < {first:?}");
        policy.passed(10);
        assert!(
            policy.wait().unwrap() > later,
            "new bytes start the delay again"
        );
        let mut now = FlushPolicy::new(Duration::ZERO, 0);
        now.passed(1);
        assert_eq!(now.wait(), Some(Duration::ZERO));
        assert!(now.due());
    }
}
