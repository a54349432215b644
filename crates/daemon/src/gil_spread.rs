//! Spreading a daemon process's threads over its GILs. With own-GIL interpreters
//! (WSGIPerInterpreterGIL), the threads running one interpreter take turns on its GIL;
//! taking requests first come, first served can put every thread on one GIL while the
//! requests of another wait in the backlog behind them, its GIL (a core) unused. So when
//! a thread is free and some GIL that had requests lately has no thread, the thread looks
//! past the requests of busy GILs for one of that GIL: those it passes are parked here,
//! in order, and free threads take them first. What is parked is bounded, and nothing
//! parked waits while a thread is free: when no request of a starved GIL is at hand, the
//! oldest parked one runs.
#![forbid(unsafe_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The most requests parked: in a group of several processes, requests another process
/// might have run sooner.
const MOST_PARKED: usize = 4;
/// How recently a GIL must have been used for a thread to look for a request of it.
const RECENT: Duration = Duration::from_secs(1);
/// GILs remembered past this many are forgotten when idle and not recent (names can
/// follow the Host header).
const REMEMBERED: usize = 64;

/// A request chosen to run, with the GIL it runs under.
pub type Chosen<J> = (Arc<str>, J);

#[derive(Debug)]
struct Gil {
    running: usize,
    seen: Instant,
}

/// The running and parked requests of one process, by the GIL they run under (an
/// application group's name, or "" for the shared GIL).
#[derive(Debug)]
pub struct Spread<J> {
    gils: HashMap<Arc<str>, Gil>,
    parked: VecDeque<(Arc<str>, J)>,
    limit: usize,
}

impl<J> Spread<J> {
    /// For a process of `threads` threads.
    pub fn new(threads: usize) -> Spread<J> {
        Spread {
            gils: HashMap::new(),
            parked: VecDeque::new(),
            limit: threads.clamp(1, MOST_PARKED),
        }
    }

    pub fn parked(&self) -> usize {
        self.parked.len()
    }

    fn running(&self, gil: &str) -> usize {
        self.gils.get(gil).map_or(0, |g| g.running)
    }

    /// Some GIL was used within `RECENT` and has no thread now.
    fn starved(&self, now: Instant) -> bool {
        self.gils
            .values()
            .any(|g| g.running == 0 && now.saturating_duration_since(g.seen) < RECENT)
    }

    fn start(&mut self, gil: &Arc<str>, now: Instant) {
        self.note_seen(gil, now);
        if let Some(state) = self.gils.get_mut(gil) {
            state.running += 1;
        }
    }

    fn note_seen(&mut self, gil: &Arc<str>, now: Instant) {
        match self.gils.get_mut(gil) {
            Some(state) => state.seen = now,
            None => {
                self.forget_idle(now);
                self.gils.insert(
                    gil.clone(),
                    Gil {
                        running: 0,
                        seen: now,
                    },
                );
            }
        }
    }

    fn forget_idle(&mut self, now: Instant) {
        if self.gils.len() >= REMEMBERED {
            self.gils
                .retain(|_, g| g.running > 0 || now.saturating_duration_since(g.seen) < RECENT);
        }
    }

    /// Where `gil` stands among the GILs with a thread now: (its rank by name, how many).
    pub fn busy_rank(&self, gil: &str) -> (usize, usize) {
        let busy = self.gils.iter().filter(|(_, g)| g.running > 0);
        busy.fold((0, 0), |(rank, count), (name, _)| {
            (rank + usize::from(&**name < gil), count + 1)
        })
    }

    /// The parked request a free thread runs now (counted as running): the oldest of a
    /// GIL without a thread, else the oldest when no GIL is starved or the process is
    /// closing. `None`: the thread looks for another request.
    pub fn next_parked(&mut self, now: Instant, closing: bool) -> Option<Chosen<J>> {
        let index = match self
            .parked
            .iter()
            .position(|(gil, _)| self.running(gil) == 0)
        {
            Some(i) => i,
            None if !self.parked.is_empty() && (closing || !self.starved(now)) => 0,
            None => return None,
        };
        let (gil, job) = self.parked.remove(index)?;
        self.start(&gil, now);
        Some((gil, job))
    }

    /// A request just taken: what the thread runs now (counted as running), or `None`
    /// when it was parked and the thread should look further.
    pub fn offer(&mut self, gil: Arc<str>, job: J, now: Instant) -> Option<Chosen<J>> {
        self.note_seen(&gil, now);
        if self.running(&gil) == 0 {
            self.start(&gil, now);
            return Some((gil, job));
        }
        if self.starved(now) && self.parked.len() < self.limit {
            self.parked.push_back((gil, job));
            return None;
        }
        // No better request to look for: first come, first served.
        self.parked.push_back((gil, job));
        self.oldest(now)
    }

    /// Nothing more at hand: the oldest parked request, counted as running.
    pub fn oldest(&mut self, now: Instant) -> Option<Chosen<J>> {
        let (gil, job) = self.parked.pop_front()?;
        self.start(&gil, now);
        Some((gil, job))
    }

    /// A request of `gil` finished running: its GIL counts as lately used from now.
    pub fn finished(&mut self, gil: &str, now: Instant) {
        if let Some(state) = self.gils.get_mut(gil) {
            state.running = state.running.saturating_sub(1);
            state.seen = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gil(name: &str) -> Arc<str> {
        Arc::from(name)
    }

    fn run(spread: &mut Spread<u32>, name: &str, job: u32, now: Instant) -> Option<u32> {
        spread.offer(gil(name), job, now).map(|(_, j)| j)
    }

    #[test]
    fn a_request_of_a_gil_without_a_thread_runs_at_once() {
        let now = Instant::now();
        let mut spread = Spread::new(4);
        assert_eq!(run(&mut spread, "a", 1, now), Some(1));
        assert_eq!(run(&mut spread, "b", 2, now), Some(2));
        assert_eq!(spread.parked(), 0);
    }

    #[test]
    fn while_a_gil_is_starved_requests_of_busy_gils_are_parked_until_one_of_it_comes() {
        let now = Instant::now();
        let mut spread = Spread::new(4);
        assert_eq!(run(&mut spread, "a", 1, now), Some(1));
        assert_eq!(run(&mut spread, "b", 2, now), Some(2));
        spread.finished("b", now);
        // "b" has no thread: the next "a" waits while the thread looks further.
        assert_eq!(run(&mut spread, "a", 3, now), None);
        assert_eq!(run(&mut spread, "a", 4, now), None);
        assert_eq!(run(&mut spread, "b", 5, now), Some(5));
        // No GIL starved now: the parked ones go in their order.
        assert_eq!(spread.next_parked(now, false).map(|(_, j)| j), Some(3));
        assert_eq!(spread.next_parked(now, false).map(|(_, j)| j), Some(4));
        assert_eq!(spread.next_parked(now, false).map(|(_, j)| j), None);
    }

    #[test]
    fn nothing_else_at_hand_runs_the_oldest_parked() {
        let now = Instant::now();
        let mut spread = Spread::new(4);
        run(&mut spread, "a", 1, now);
        run(&mut spread, "b", 2, now);
        spread.finished("b", now);
        assert_eq!(run(&mut spread, "a", 3, now), None);
        // A free thread does not take it while "b" is starved...
        assert_eq!(spread.next_parked(now, false).map(|(_, j)| j), None);
        // ...unless the process closes, or nothing else was found.
        assert_eq!(spread.next_parked(now, true).map(|(_, j)| j), Some(3));
        assert_eq!(run(&mut spread, "a", 4, now), None);
        assert_eq!(spread.oldest(now).map(|(_, j)| j), Some(4));
        assert_eq!(spread.oldest(now), None);
    }

    #[test]
    fn a_parked_request_whose_gil_became_free_goes_first() {
        let now = Instant::now();
        let mut spread = Spread::new(4);
        run(&mut spread, "a", 1, now);
        run(&mut spread, "b", 2, now);
        run(&mut spread, "c", 3, now);
        spread.finished("c", now);
        assert_eq!(run(&mut spread, "a", 4, now), None);
        assert_eq!(run(&mut spread, "b", 5, now), None);
        spread.finished("b", now);
        // "b" lost its thread: its parked request runs before the older "a".
        assert_eq!(spread.next_parked(now, false).map(|(_, j)| j), Some(5));
    }

    #[test]
    fn parking_is_bounded_and_then_first_come_first_served() {
        let now = Instant::now();
        let mut spread = Spread::new(2);
        run(&mut spread, "a", 1, now);
        run(&mut spread, "b", 2, now);
        spread.finished("b", now);
        assert_eq!(run(&mut spread, "a", 3, now), None);
        assert_eq!(run(&mut spread, "a", 4, now), None);
        assert_eq!(run(&mut spread, "a", 5, now), Some(3));
        assert_eq!(spread.parked(), 2);
    }

    #[test]
    fn a_gil_without_recent_requests_is_not_waited_for() {
        let then = Instant::now();
        let later = then + RECENT + Duration::from_millis(1);
        let mut spread = Spread::new(4);
        run(&mut spread, "a", 1, then);
        run(&mut spread, "b", 2, then);
        spread.finished("b", then);
        assert_eq!(run(&mut spread, "a", 3, later), Some(3));
        assert_eq!(spread.parked(), 0);
    }

    #[test]
    fn no_more_than_four_are_parked_whatever_the_threads() {
        let now = Instant::now();
        let mut spread = Spread::new(16);
        run(&mut spread, "a", 1, now);
        run(&mut spread, "b", 2, now);
        spread.finished("b", now);
        for job in 3..7 {
            assert_eq!(run(&mut spread, "a", job, now), None);
        }
        assert_eq!(run(&mut spread, "a", 7, now), Some(3));
    }

    #[test]
    fn a_gil_ranks_among_the_busy_ones_by_name() {
        let now = Instant::now();
        let mut spread = Spread::new(4);
        run(&mut spread, "b", 1, now);
        run(&mut spread, "", 2, now);
        assert_eq!(spread.busy_rank("b"), (1, 2));
        assert_eq!(spread.busy_rank(""), (0, 2));
        run(&mut spread, "a", 3, now);
        spread.finished("", now);
        assert_eq!(spread.busy_rank("b"), (1, 2));
        assert_eq!(spread.busy_rank("a"), (0, 2));
    }

    #[test]
    fn idle_gils_are_forgotten_past_a_bound() {
        let then = Instant::now();
        let later = then + RECENT + Duration::from_millis(1);
        let mut spread = Spread::new(4);
        for i in 0..100 {
            run(&mut spread, &format!("g{i}"), i, then);
            spread.finished(&format!("g{i}"), then);
        }
        run(&mut spread, "last", 100, later);
        assert_eq!(spread.gils.len(), 1);
    }
}
