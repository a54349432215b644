//! Whether a daemon group can take requests, as the Apache children need to know it: one
//! word per process slot holding the pid of a process that is serving (set by the
//! process once its preloads ran, cleared by the parent when it dies) and one word saying
//! why the group's last start failed. The words live in an anonymous shared mapping the
//! parent made before forking daemons and children, so every process of the generation
//! reads the same state without a system call.
use std::sync::atomic::{AtomicU64, Ordering};

/// Why the group's last process start failed (the failure word's upper half; its lower
/// half is the pid that failed).
const FAILED_APPLICATION: u64 = 1;
const FAILED_START: u64 = 2;

/// What a request to the group can expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    /// A process is serving.
    Serving,
    /// No process serves yet and none has failed: the first ones are starting.
    Starting,
    /// No process serves: the last one failed loading the application (its preloads
    /// raised); it is retried in the background.
    ApplicationFailed { pid: u32 },
    /// No process serves: the last one could not start (Python failed to initialise, or
    /// it died before it was ready); it is retried in the background.
    StartFailed { pid: u32 },
}

/// A group's view into the generation's health words: `[failure, slot 0, slot 1, ...]`.
#[derive(Debug)]
pub struct GroupHealth {
    words: &'static [AtomicU64],
}

impl GroupHealth {
    /// Words needed for a group with `slots` process slots.
    pub fn words_for(slots: usize) -> usize {
        1 + slots
    }

    /// `words` must hold `words_for(slots)` words, all zero at first.
    pub fn new(words: &'static [AtomicU64]) -> GroupHealth {
        GroupHealth { words }
    }

    /// Health that no process shares (a group outside any generation, in tests).
    pub fn detached() -> GroupHealth {
        GroupHealth { words: &[] }
    }

    fn slot(&self, index: usize) -> Option<&AtomicU64> {
        self.words.get(1 + index)
    }

    /// The process in slot `index` is serving; the group's failure is over.
    pub fn mark_ready(&self, index: usize, pid: u32) {
        if let Some(word) = self.slot(index) {
            word.store(u64::from(pid), Ordering::Release);
        }
        if let Some(failure) = self.words.first() {
            failure.store(0, Ordering::Release);
        }
    }

    /// The process in slot `index` is gone (the parent reaped it). Returns whether it had
    /// been serving.
    pub fn clear_slot(&self, index: usize, pid: u32) -> bool {
        self.slot(index).is_some_and(|word| {
            word.compare_exchange(u64::from(pid), 0, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        })
    }

    /// Whether process `pid` is the one serving in slot `index`.
    pub fn is_serving(&self, index: usize, pid: u32) -> bool {
        pid != 0
            && self
                .slot(index)
                .is_some_and(|word| word.load(Ordering::Acquire) == u64::from(pid))
    }

    /// A process of the previous generation still serves in slot `index` (graceful
    /// restart) until this generation's process there is ready.
    pub fn mark_handed_over(&self, index: usize, pid: u32) {
        if let Some(word) = self.slot(index) {
            word.store(u64::from(pid), Ordering::Release);
        }
    }

    pub fn mark_application_failed(&self, pid: u32) {
        self.mark_failed(FAILED_APPLICATION, pid);
    }

    pub fn mark_start_failed(&self, pid: u32) {
        self.mark_failed(FAILED_START, pid);
    }

    fn mark_failed(&self, why: u64, pid: u32) {
        if let Some(failure) = self.words.first() {
            failure.store((why << 32) | u64::from(pid), Ordering::Release);
        }
    }

    /// What a request can expect now; `alive` says whether a pid still runs (a serving
    /// process killed outright is only cleared once the parent reaps it).
    pub fn availability(&self, alive: impl Fn(u32) -> bool) -> Availability {
        let Some((failure, slots)) = self.words.split_first() else {
            return Availability::Serving;
        };
        let serving = slots.iter().any(|word| {
            let pid = word.load(Ordering::Acquire);
            pid != 0 && u32::try_from(pid).is_ok_and(&alive)
        });
        if serving {
            return Availability::Serving;
        }
        let failure = failure.load(Ordering::Acquire);
        let pid = (failure & 0xffff_ffff) as u32;
        match failure >> 32 {
            FAILED_APPLICATION => Availability::ApplicationFailed { pid },
            FAILED_START => Availability::StartFailed { pid },
            _ => Availability::Starting,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(n: usize) -> &'static [AtomicU64] {
        Box::leak((0..n).map(|_| AtomicU64::new(0)).collect())
    }

    #[test]
    fn a_new_group_is_starting_until_a_process_is_ready() {
        let health = GroupHealth::new(words(GroupHealth::words_for(2)));
        assert_eq!(health.availability(|_| true), Availability::Starting);
        health.mark_ready(1, 42);
        assert_eq!(health.availability(|_| true), Availability::Serving);
    }

    #[test]
    fn a_failure_shows_only_while_no_process_serves() {
        let health = GroupHealth::new(words(GroupHealth::words_for(2)));
        health.mark_application_failed(7);
        assert_eq!(
            health.availability(|_| true),
            Availability::ApplicationFailed { pid: 7 }
        );
        health.mark_handed_over(0, 5);
        assert_eq!(health.availability(|_| true), Availability::Serving);
        // The serving process was killed and not yet reaped: the failure shows again.
        assert_eq!(
            health.availability(|pid| pid != 5),
            Availability::ApplicationFailed { pid: 7 }
        );
        assert!(health.clear_slot(0, 5));
        health.mark_start_failed(8);
        assert_eq!(
            health.availability(|_| true),
            Availability::StartFailed { pid: 8 }
        );
        health.mark_ready(0, 9);
        assert_eq!(health.availability(|_| false), Availability::Starting);
    }

    #[test]
    fn a_slot_serves_only_with_its_own_pid() {
        let health = GroupHealth::new(words(GroupHealth::words_for(2)));
        health.mark_ready(1, 42);
        assert!(health.is_serving(1, 42));
        assert!(!health.is_serving(1, 43));
        assert!(!health.is_serving(0, 42));
        assert!(!health.is_serving(1, 0));
    }

    #[test]
    fn clearing_a_slot_needs_its_own_pid() {
        let health = GroupHealth::new(words(GroupHealth::words_for(1)));
        health.mark_ready(0, 10);
        // A successor took the slot over: the old pid's death leaves it alone.
        assert!(!health.clear_slot(0, 11));
        assert_eq!(health.availability(|_| true), Availability::Serving);
        assert!(health.clear_slot(0, 10));
        assert!(!health.clear_slot(0, 10));
    }

    #[test]
    fn detached_health_always_serves() {
        let health = GroupHealth::detached();
        health.mark_application_failed(1);
        assert_eq!(health.availability(|_| false), Availability::Serving);
    }
}
