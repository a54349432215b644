//! The Apache parent's decisions about its daemon processes, as plain functions over what
//! it knows: what to do when a process dies (respawn now or after a crash-loop delay, let
//! its successor serve, or nothing while Apache stops), when a live process gets its
//! successor, and in which order a graceful restart hands processes over. The APR glue
//! (`apache/daemons.rs`) gathers the facts, calls these and carries the answer out.
#![forbid(unsafe_code)]

use super::server::{INIT_FAILURE_STATUS, RETRY_NOW_STATUS};
use std::time::Duration;

/// A death within this long after the start, with a non-zero status, counts as part of
/// a crash loop.
const CRASH_WINDOW: Duration = Duration::from_secs(10);
/// The longest crash-loop delay.
const MAX_DELAY: Duration = Duration::from_secs(30);

/// How a daemon process ended, from its exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Status 0: it chose to stop (recycled, drained) and logged why.
    Chose,
    /// It could not initialise and already waited out its retry delay.
    InitFailed,
    /// It could not initialise and saw a file it watched change: retry at once.
    FileChanged,
    /// Anything else: a crash, a signal, a failed setup.
    Crashed,
}

impl Exit {
    pub fn of(status: i32) -> Exit {
        match status {
            0 => Exit::Chose,
            INIT_FAILURE_STATUS => Exit::InitFailed,
            RETRY_NOW_STATUS => Exit::FileChanged,
            _ => Exit::Crashed,
        }
    }
}

/// What the parent knows when one of its daemon processes has died.
#[derive(Debug, Clone, Copy)]
pub struct Death {
    pub status: i32,
    /// How long it ran (from its start, after any crash-loop delay).
    pub lived: Duration,
    /// Apache is stopping or restarting hard: nothing is replaced.
    pub stopping: bool,
    /// It had said it was serving (its preloads ran).
    pub was_serving: bool,
    /// Its slot's crash count before this death.
    pub crashes: u32,
    /// It was being replaced by its partner slot's process.
    pub retiring: bool,
    /// The partner slot's live process, if any.
    pub partner_pid: Option<i32>,
    /// The partner's process is itself being replaced (by this slot's process).
    pub partner_retiring: bool,
    /// A live process of the previous generation this slot takes over from.
    pub handover_pid: Option<i32>,
}

/// What to do about a death.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Apache is stopping: nothing.
    Nothing,
    /// Its successor (the partner's process) serves in its place; the partner may be
    /// due for its own successor.
    SuccessorServes,
    /// Start a new process in the slot after `delay`; it retires `predecessor` once
    /// ready (a process still serving in the pair, or the previous generation's).
    Respawn {
        delay: Duration,
        crashes: u32,
        predecessor: Option<i32>,
        /// It died before it was ready and did not report why itself: the group's
        /// health says that a start failed.
        start_failed: bool,
    },
}

/// The WSGI1122 line that reports daemon process `pid` of `group` exiting with `status`
/// after `lived`, and what `action` is taken.
pub fn death_message(
    pid: i32,
    group: &str,
    status: i32,
    lived: Duration,
    action: &Action,
) -> String {
    format!(
        "WSGI1122: daemon process {pid} of group '{group}' exited with status {status} after {:.1} s{}",
        lived.as_secs_f64(),
        match action {
            Action::Nothing => "",
            Action::SuccessorServes => "; replaced by the process that is serving in its place",
            Action::Respawn { .. } => "; starting a new one",
        }
    )
}

/// The decision, with how to report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub action: Action,
    /// Logged as an error (else as information).
    pub error: bool,
    /// The restart reason counted in the metrics, if the death counts as one.
    pub restart_reason: Option<&'static str>,
}

/// The delay before the next start after `crashes` crashes in a row: none for the
/// first two, then 1, 2, 4 … 30 s.
pub fn crash_delay(crashes: u32) -> Duration {
    match crashes {
        0 | 1 => Duration::ZERO,
        n => Duration::from_secs(1u64 << (n - 2).min(5)).min(MAX_DELAY),
    }
}

pub fn on_death(death: &Death) -> Decision {
    let exit = Exit::of(death.status);
    let init_failure = matches!(exit, Exit::InitFailed | Exit::FileChanged);
    let restart_reason = match exit {
        _ if death.stopping => None,
        Exit::Chose => None,
        Exit::InitFailed | Exit::FileChanged => Some("init-failure"),
        Exit::Crashed => Some("crash"),
    };
    let error = !death.stopping && matches!(exit, Exit::InitFailed | Exit::Crashed);
    let action = if death.retiring && death.partner_pid.is_some() {
        Action::SuccessorServes
    } else if death.stopping {
        Action::Nothing
    } else {
        // A process that could not load its application has already waited (watching
        // the files its traceback names) before exiting: it is restarted at once and
        // waits longer the next time. One that saw such a file change starts over.
        let crashes = match exit {
            Exit::InitFailed => death.crashes + 1,
            Exit::Crashed if death.lived < CRASH_WINDOW => death.crashes + 1,
            _ => 0,
        };
        let delay = if init_failure {
            Duration::ZERO
        } else {
            crash_delay(crashes)
        };
        // A successor that died before its predecessor retired is retried while the
        // predecessor keeps serving; so is the first process of a generation while the
        // one it takes over from serves.
        let predecessor = if death.partner_retiring {
            death.partner_pid
        } else {
            death.handover_pid
        };
        // Requests are answered 503 at once while nothing serves because the process
        // died before it was ready, or because a crash loop delays the next start.
        Action::Respawn {
            delay,
            crashes,
            predecessor,
            start_failed: exit == Exit::Crashed && (!death.was_serving || !delay.is_zero()),
        }
    };
    Decision {
        action,
        error,
        restart_reason,
    }
}

/// Whether a live process gets its successor now: its pair's flag is up, it is not
/// already being replaced, its partner slot is free and Apache is not stopping.
pub fn wants_successor(
    retiring: bool,
    partner_running: bool,
    flag_raised: bool,
    stopping: bool,
) -> bool {
    !retiring && !partner_running && flag_raised && !stopping
}

/// A process left serving across a graceful restart, for the next generation to retire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandedOver {
    pub group: String,
    pub pid: i32,
    /// Being replaced already, or still handing over from an earlier generation: taken
    /// over last.
    pub last: bool,
}

/// The order the next generation takes processes over in: serving ones first (each new
/// process retires one), those already on their way out last. Stable within each kind.
pub fn handover_order(mut processes: Vec<HandedOver>) -> Vec<HandedOver> {
    processes.sort_by_key(|p| p.last);
    processes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn death(status: i32) -> Death {
        Death {
            status,
            lived: Duration::from_secs(60),
            stopping: false,
            was_serving: true,
            crashes: 0,
            retiring: false,
            partner_pid: None,
            partner_retiring: false,
            handover_pid: None,
        }
    }

    #[test]
    fn death_messages_tell_what_is_done() {
        let lived = Duration::from_millis(1300);
        assert_eq!(
            death_message(42, "app", 0, lived, &Action::Nothing),
            "WSGI1122: daemon process 42 of group 'app' exited with status 0 after 1.3 s"
        );
        assert_eq!(
            death_message(
                42,
                "app",
                9,
                Duration::from_secs(60),
                &Action::SuccessorServes
            ),
            "WSGI1122: daemon process 42 of group 'app' exited with status 9 after 60.0 s; replaced by the process that is serving in its place"
        );
        let respawn = Action::Respawn {
            delay: Duration::ZERO,
            crashes: 1,
            predecessor: None,
            start_failed: false,
        };
        assert!(
            death_message(7, "g", 256, Duration::ZERO, &respawn)
                .ends_with("exited with status 256 after 0.0 s; starting a new one")
        );
    }

    fn respawn(d: &Decision) -> (Duration, u32, Option<i32>, bool) {
        match d.action {
            Action::Respawn {
                delay,
                crashes,
                predecessor,
                start_failed,
            } => (delay, crashes, predecessor, start_failed),
            ref other => panic!("expected a respawn, got {other:?}"),
        }
    }

    #[test]
    fn crash_delays_double_up_to_thirty_seconds() {
        let delays: Vec<u64> = (0..10).map(|n| crash_delay(n).as_secs()).collect();
        assert_eq!(delays, [0, 0, 1, 2, 4, 8, 16, 30, 30, 30]);
    }

    #[test]
    fn a_crash_loop_backs_off_and_a_long_life_resets_it() {
        let mut d = death(139);
        d.lived = Duration::from_secs(1);
        let mut crashes = 0;
        let mut delays = Vec::new();
        for _ in 0..4 {
            d.crashes = crashes;
            let decision = on_death(&d);
            assert!(decision.error);
            assert_eq!(decision.restart_reason, Some("crash"));
            let (delay, c, _, _) = respawn(&decision);
            delays.push(delay.as_secs());
            crashes = c;
        }
        assert_eq!(delays, [0, 1, 2, 4]);
        d.crashes = crashes;
        d.lived = Duration::from_secs(11);
        assert_eq!(respawn(&on_death(&d)).0, Duration::ZERO);
        assert_eq!(respawn(&on_death(&d)).1, 0);
    }

    #[test]
    fn an_init_failure_restarts_at_once_and_counts_a_file_change_as_a_fresh_start() {
        let mut d = death(INIT_FAILURE_STATUS);
        d.crashes = 4;
        d.lived = Duration::from_secs(20);
        let decision = on_death(&d);
        assert_eq!(decision.restart_reason, Some("init-failure"));
        assert!(decision.error);
        let (delay, crashes, _, start_failed) = respawn(&decision);
        assert_eq!((delay, crashes, start_failed), (Duration::ZERO, 5, false));
        d.status = RETRY_NOW_STATUS;
        let decision = on_death(&d);
        assert!(!decision.error);
        assert_eq!(respawn(&decision), (Duration::ZERO, 0, None, false));
    }

    #[test]
    fn a_process_that_dies_before_it_is_ready_marks_a_failed_start() {
        let mut d = death(1);
        d.was_serving = false;
        assert!(respawn(&on_death(&d)).3);
        d.was_serving = true;
        assert!(!respawn(&on_death(&d)).3);
        // A ready process in a crash loop: the next start waits, so requests get 503.
        d.lived = Duration::from_secs(1);
        d.crashes = 2;
        assert!(respawn(&on_death(&d)).3);
        let mut chose = death(0);
        chose.was_serving = false;
        let decision = on_death(&chose);
        assert!(!respawn(&decision).3);
        assert!(!decision.error);
        assert_eq!(decision.restart_reason, None);
    }

    #[test]
    fn a_retiring_process_is_not_replaced_when_its_successor_runs() {
        let mut d = death(0);
        d.retiring = true;
        d.partner_pid = Some(42);
        assert_eq!(on_death(&d).action, Action::SuccessorServes);
        // Its successor died first: it is replaced like any other.
        d.partner_pid = None;
        assert!(matches!(on_death(&d).action, Action::Respawn { .. }));
    }

    #[test]
    fn nothing_is_started_while_apache_stops() {
        let mut d = death(139);
        d.stopping = true;
        let decision = on_death(&d);
        assert_eq!(decision.action, Action::Nothing);
        assert!(!decision.error);
        assert_eq!(decision.restart_reason, None);
    }

    #[test]
    fn a_new_process_retires_the_one_still_serving_in_its_place() {
        let mut d = death(INIT_FAILURE_STATUS);
        d.partner_pid = Some(7);
        d.partner_retiring = true;
        d.handover_pid = Some(9);
        assert_eq!(respawn(&on_death(&d)).2, Some(7));
        d.partner_retiring = false;
        assert_eq!(respawn(&on_death(&d)).2, Some(9));
        d.handover_pid = None;
        assert_eq!(respawn(&on_death(&d)).2, None);
    }

    #[test]
    fn a_successor_starts_only_when_asked_and_the_partner_is_free() {
        assert!(wants_successor(false, false, true, false));
        assert!(!wants_successor(true, false, true, false));
        assert!(!wants_successor(false, true, true, false));
        assert!(!wants_successor(false, false, false, false));
        assert!(!wants_successor(false, false, true, true));
    }

    #[test]
    fn handover_takes_serving_processes_first() {
        let p = |group: &str, pid, last| HandedOver {
            group: group.to_owned(),
            pid,
            last,
        };
        let order = handover_order(vec![p("a", 1, true), p("a", 2, false), p("b", 3, false)]);
        assert_eq!(
            order,
            vec![p("a", 2, false), p("b", 3, false), p("a", 1, true)]
        );
    }
}
