//! The acceptor with own-GIL interpreters: which request a free thread runs (parked
//! requests first, see `gil_spread`) and on which CPUs (`gil_cpus`).
#![forbid(unsafe_code)]

use super::{Acceptor, BELL, Busy, Job, Taken, WAKE, lock, read_head};
use crate::epoll::{Epoll, Interest};
use crate::gil_cpus::{self, Share};
use crate::gil_spread::{Chosen, Spread};
use crate::group::DaemonGroup;
use crate::python;
use mod_wsgi_os::bell::Bell;
use std::cell::Cell;
use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Application groups whose GIL is remembered.
const KNOWN_GROUPS: usize = 1024;

thread_local! {
    /// The CPUs this worker thread was last placed on (`None`: all of the process's).
    static PLACED: Cell<Option<Share>> = const { Cell::new(None) };
}

pub(super) struct Spreading {
    pub(super) state: Mutex<Spread<Job>>,
    /// How many requests are parked, read without the lock against `waiting`: a thread
    /// about to wait sees a request parked meanwhile, or its parker sees the thread
    /// waiting and rings the bell.
    pub(super) parked: AtomicUsize,
    /// Wakes a waiting thread to take a parked request.
    pub(super) bell: Bell,
    /// Where each GIL's requests run (`gil-cpu-affinity`).
    placing: Option<Placing>,
    /// The GIL of the application groups seen.
    gil_of: Mutex<HashMap<String, Arc<str>>>,
}

impl Spreading {
    pub(super) fn new(group: &DaemonGroup, epoll: &Epoll, place: usize) -> io::Result<Spreading> {
        let bell = Bell::new()?;
        epoll.add(bell.fd(), Interest::Once, BELL)?;
        let placing = group.spec.gil_cpu_affinity.then(|| Placing {
            offset: place,
            cpus: AtomicUsize::new(0),
            off: AtomicBool::new(false),
        });
        Ok(Spreading {
            state: Mutex::new(Spread::new(group.spec.threads as usize)),
            parked: AtomicUsize::new(0),
            bell,
            placing,
            gil_of: Mutex::new(HashMap::new()),
        })
    }

    fn gil_of(&self, application_group: &str) -> Arc<str> {
        let mut known = lock(&self.gil_of);
        if let Some(gil) = known.get(application_group) {
            return gil.clone();
        }
        let gil: Arc<str> = Arc::from(python::gil_of(application_group));
        // Names that follow the Host header (%{HOST}) are not bounded by the configuration.
        if known.len() >= KNOWN_GROUPS {
            known.clear();
        }
        known.insert(application_group.to_owned(), gil.clone());
        gil
    }
}

impl Acceptor {
    /// `next` with own-GIL interpreters: parked requests first (see `Spread`); while some
    /// are parked, the thread only looks at what is at hand, without waiting.
    pub(super) fn next_spread<'a>(
        &'a self,
        group: &DaemonGroup,
        spreading: &'a Spreading,
    ) -> Option<(Job, Busy<'a>)> {
        loop {
            let now = Instant::now();
            let closing = self.closed.load(Ordering::SeqCst);
            let parked = self.decide(group, spreading, |state| state.next_parked(now, closing));
            if parked.is_some() || closing {
                return parked;
            }
            let looking = spreading.parked.load(Ordering::SeqCst) > 0;
            let patience = if looking { Duration::ZERO } else { WAKE };
            let (connection, reused) = match self.take(group, patience) {
                Taken::Connection(connection, reused) => (connection, reused),
                Taken::Nothing if looking => {
                    match self.decide(group, spreading, |state| state.oldest(now)) {
                        Some(chosen) => return Some(chosen),
                        None => continue,
                    }
                }
                Taken::Nothing | Taken::Closed => continue,
            };
            let Some(job) = read_head(group, connection, reused) else {
                self.untake();
                continue;
            };
            let gil = spreading.gil_of(&job.head.application_group);
            let offered = self.decide(group, spreading, |state| state.offer(gil, job, now));
            if offered.is_some() {
                return offered;
            }
        }
    }

    /// Applies `choose` to the running and parked requests; what it chose runs on this
    /// thread. A request left parked while another thread waits rings the bell for it.
    fn decide<'a>(
        &'a self,
        group: &DaemonGroup,
        spreading: &'a Spreading,
        choose: impl FnOnce(&mut Spread<Job>) -> Option<Chosen<Job>>,
    ) -> Option<(Job, Busy<'a>)> {
        let mut state = lock(&spreading.state);
        let chosen = choose(&mut state);
        let rank = chosen.as_ref().map(|(gil, _)| state.busy_rank(gil));
        let parked = state.parked();
        spreading.parked.store(parked, Ordering::SeqCst);
        drop(state);
        if parked > 0 && self.waiting.load(Ordering::SeqCst) > 0 {
            spreading.bell.ring();
            if let Err(e) = self.epoll.rearm(spreading.bell.fd(), Interest::Once, BELL) {
                tracing::error!(
                    "WSGI1108: group '{}': cannot re-arm the bell: {e}",
                    group.spec.name
                );
            }
        }
        let (gil, job) = chosen?;
        if let (Some(placing), Some((rank, busy))) = (&spreading.placing, rank) {
            placing.place_thread(group, rank, busy);
        }
        Some((job, self.busy(Some((spreading, gil)))))
    }
}

/// `gil-cpu-affinity`: where this process's worker threads run (see `gil_cpus`).
pub(super) struct Placing {
    /// The process's place in its group.
    offset: usize,
    /// How many CPUs the process may use, as last read (0: not read yet).
    cpus: AtomicUsize,
    /// A placement failed: threads run anywhere from then on.
    off: AtomicBool,
}

impl Placing {
    /// Puts this worker thread on the CPUs of a request whose GIL is the `rank`-th of the
    /// `busy` GILs that have a thread, unless it is there already.
    fn place_thread(&self, group: &DaemonGroup, rank: usize, busy: usize) {
        let share = |cpus| {
            if self.off.load(Ordering::Relaxed) {
                None
            } else {
                gil_cpus::share(rank, busy, cpus, self.offset)
            }
        };
        let known = self.cpus.load(Ordering::Relaxed);
        if known != 0 && PLACED.get() == share(known) {
            return;
        }
        let allowed = match mod_wsgi_os::sched::process_cpus() {
            Ok(allowed) => allowed,
            Err(e) => return self.fail(group, &e),
        };
        self.cpus.store(allowed.len(), Ordering::Relaxed);
        let share = share(allowed.len());
        if PLACED.get() == share {
            return;
        }
        match mod_wsgi_os::sched::run_thread_on(&gil_cpus::cpus(&allowed, share)) {
            Ok(()) => PLACED.set(share),
            Err(e) => {
                let _ = mod_wsgi_os::sched::run_thread_on(&allowed);
                PLACED.set(None);
                self.fail(group, &e);
            }
        }
    }

    fn fail(&self, group: &DaemonGroup, e: &io::Error) {
        if !self.off.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "WSGI1147: group '{}': cannot place worker threads on their GIL's CPUs ({e}); gil-cpu-affinity is off in this process",
                group.spec.name
            );
        }
    }
}
