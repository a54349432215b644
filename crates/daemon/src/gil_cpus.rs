//! Giving each GIL of a daemon process its own share of the process's CPUs. With two
//! own-GIL interpreters busy, Linux may queue both GILs' running threads on one CPU while
//! another stays idle for milliseconds at a time (a GIL handover wakes the next thread
//! near the one giving up, and the idle CPU does not pull it): measured on two cores,
//! 12% of the CPU time idle in daemon mode. A thread that runs a request is placed on the
//! share of that request's GIL, so two GILs never wait on one CPU while another has none.
//!
//! Shares are every G-th CPU of the process's allowed set, G the GILs the process has run
//! requests under (its own-GIL interpreters and the shared GIL); the process's place in
//! its group offsets them, so the processes of a group put a given GIL on different CPUs.
//! No placement while the process has used a single GIL, or more GILs than it has CPUs.
//! The `gil-cpu-affinity=Off` daemon option turns it off.
#![forbid(unsafe_code)]

use std::sync::Arc;

/// The CPUs of one GIL: every `of`-th CPU from `place`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    of: usize,
    place: usize,
}

#[derive(Debug)]
pub struct CpuPlan {
    cpus: Vec<usize>,
    offset: usize,
    /// The GILs used so far, in order of first use; one more than `cpus` at most (past
    /// that, no placement).
    gils: Vec<Arc<str>>,
}

impl CpuPlan {
    /// For a process allowed on `cpus`, the `offset`-th of its group.
    pub fn new(cpus: Vec<usize>, offset: usize) -> CpuPlan {
        CpuPlan {
            cpus,
            offset,
            gils: Vec::new(),
        }
    }

    /// Where a request of `gil` runs: `None` for anywhere the process may run.
    pub fn share(&mut self, gil: &Arc<str>) -> Option<Share> {
        let index = match self.gils.iter().position(|g| g == gil) {
            Some(i) => i,
            None if self.gils.len() <= self.cpus.len() => {
                self.gils.push(gil.clone());
                self.gils.len() - 1
            }
            None => return None,
        };
        let of = self.gils.len();
        (of >= 2 && of <= self.cpus.len()).then_some(Share {
            of,
            place: (index + self.offset) % of,
        })
    }

    /// The CPUs of `share`, or all of the process's.
    pub fn cpus(&self, share: Option<Share>) -> Vec<usize> {
        match share {
            None => self.cpus.clone(),
            Some(Share { of, place }) => self
                .cpus
                .iter()
                .enumerate()
                .filter(|(i, _)| i % of == place)
                .map(|(_, cpu)| *cpu)
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(plan: &mut CpuPlan, gil: &str) -> Vec<usize> {
        let share = plan.share(&Arc::from(gil));
        plan.cpus(share)
    }

    #[test]
    fn one_gil_runs_anywhere() {
        let mut plan = CpuPlan::new(vec![0, 1], 0);
        assert_eq!(plan.share(&Arc::from("a")), None);
        assert_eq!(on(&mut plan, "a"), [0, 1]);
    }

    #[test]
    fn two_gils_on_two_cpus_get_one_each() {
        let mut plan = CpuPlan::new(vec![0, 1], 0);
        on(&mut plan, "a");
        assert_eq!(on(&mut plan, "b"), [1]);
        assert_eq!(on(&mut plan, "a"), [0]);
    }

    #[test]
    fn shares_split_many_cpus_evenly() {
        let mut plan = CpuPlan::new((0..8).collect(), 0);
        on(&mut plan, "a");
        on(&mut plan, "");
        assert_eq!(on(&mut plan, "a"), [0, 2, 4, 6]);
        assert_eq!(on(&mut plan, ""), [1, 3, 5, 7]);
        on(&mut plan, "c");
        assert_eq!(on(&mut plan, "c"), [2, 5]);
    }

    #[test]
    fn more_gils_than_cpus_run_anywhere() {
        let mut plan = CpuPlan::new(vec![2, 3], 0);
        for gil in ["a", "b", "c", "d"] {
            on(&mut plan, gil);
        }
        assert_eq!(on(&mut plan, "a"), [2, 3]);
        assert_eq!(on(&mut plan, "d"), [2, 3]);
        assert!(plan.gils.len() <= 3);
    }

    #[test]
    fn the_processes_of_a_group_place_a_gil_differently() {
        let mut first = CpuPlan::new(vec![0, 1], 0);
        let mut second = CpuPlan::new(vec![0, 1], 1);
        for plan in [&mut first, &mut second] {
            on(plan, "a");
            on(plan, "b");
        }
        assert_eq!(on(&mut first, "a"), [0]);
        assert_eq!(on(&mut second, "a"), [1]);
    }
}
