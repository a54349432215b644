//! Giving each busy GIL of a daemon process its own share of the process's CPUs. With two
//! own-GIL interpreters busy, Linux may queue both GILs' running threads on one CPU while
//! another stays idle for milliseconds at a time (a GIL handover wakes the next thread
//! near the one giving up, and the idle CPU does not pull it): measured on two cores,
//! 12% of the CPU time idle in daemon mode. A thread that starts a request is placed on
//! the share of that request's GIL, so two busy GILs never wait on one CPU while another
//! has none.
//!
//! The shares split the process's allowed CPUs among the GILs that have a thread at that
//! moment (own-GIL interpreters and the shared GIL), in the order of their names: every
//! B-th CPU, B busy GILs, from the GIL's rank, offset by the process's place in its group
//! (so that a group's processes put a given GIL on different CPUs). No placement while
//! one GIL is busy, or more GILs than the process has CPUs: a thread's next request
//! widens it again. The `gil-cpu-affinity=Off` daemon option turns it off.
#![forbid(unsafe_code)]

/// The CPUs of one GIL: every `of`-th allowed CPU from the `place`-th.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    of: usize,
    place: usize,
}

/// Where a request runs whose GIL is the `rank`-th (by name) of the `busy` GILs that have
/// a thread, in a process allowed `cpus` CPUs and `offset`-th in its group: `None` for
/// anywhere the process may run.
pub fn share(rank: usize, busy: usize, cpus: usize, offset: usize) -> Option<Share> {
    (busy >= 2 && busy <= cpus).then_some(Share {
        of: busy,
        place: (rank + offset) % busy,
    })
}

/// The CPUs of `share` among `allowed`: all of them for `None`, or when the allowed set
/// shrank under the share.
pub fn cpus(allowed: &[usize], share: Option<Share>) -> Vec<usize> {
    let Some(Share { of, place }) = share else {
        return allowed.to_vec();
    };
    let mine: Vec<usize> = allowed
        .iter()
        .enumerate()
        .filter(|(i, _)| i % of == place)
        .map(|(_, cpu)| *cpu)
        .collect();
    if mine.is_empty() {
        allowed.to_vec()
    } else {
        mine
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(allowed: &[usize], rank: usize, busy: usize, offset: usize) -> Vec<usize> {
        cpus(allowed, share(rank, busy, allowed.len(), offset))
    }

    #[test]
    fn one_busy_gil_runs_anywhere() {
        assert_eq!(share(0, 1, 2, 0), None);
        assert_eq!(on(&[0, 1], 0, 1, 0), [0, 1]);
    }

    #[test]
    fn two_busy_gils_on_two_cpus_get_one_each() {
        assert_eq!(on(&[0, 1], 0, 2, 0), [0]);
        assert_eq!(on(&[0, 1], 1, 2, 0), [1]);
    }

    #[test]
    fn shares_split_many_cpus_evenly() {
        let allowed: Vec<usize> = (0..8).collect();
        assert_eq!(on(&allowed, 0, 2, 0), [0, 2, 4, 6]);
        assert_eq!(on(&allowed, 1, 2, 0), [1, 3, 5, 7]);
        assert_eq!(on(&allowed, 2, 3, 0), [2, 5]);
    }

    #[test]
    fn more_busy_gils_than_cpus_run_anywhere() {
        assert_eq!(share(0, 3, 2, 0), None);
        assert_eq!(on(&[2, 3], 2, 3, 0), [2, 3]);
    }

    #[test]
    fn the_processes_of_a_group_place_a_gil_differently() {
        assert_eq!(on(&[0, 1], 0, 2, 0), [0]);
        assert_eq!(on(&[0, 1], 0, 2, 1), [1]);
    }

    #[test]
    fn a_share_the_allowed_cpus_no_longer_hold_is_all_of_them() {
        assert_eq!(cpus(&[5], share(1, 2, 2, 0)), [5]);
    }
}
