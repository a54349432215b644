//! The CPUs a thread may run on.

use std::io;

/// The CPUs the process's main thread may run on (its affinity), in order: the process's
/// own set, which `taskset -p` and cpusets change.
pub fn process_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: an all-zero cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let main_thread = std::process::id() as libc::pid_t;
    // SAFETY: `set` is room for a cpu_set_t of the size passed; the process's id names its
    // main thread.
    let rc = unsafe {
        libc::sched_getaffinity(
            main_thread,
            std::mem::size_of::<libc::cpu_set_t>(),
            &mut set,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: CPU_ISSET reads the set initialised above, within CPU_SETSIZE.
    Ok((0..libc::CPU_SETSIZE as usize)
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect())
}

/// Lets this thread run on `cpus` only.
pub fn run_thread_on(cpus: &[usize]) -> io::Result<()> {
    // SAFETY: an all-zero cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus.iter().filter(|&&c| c < libc::CPU_SETSIZE as usize) {
        // SAFETY: `cpu` is below CPU_SETSIZE.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is this thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_can_be_narrowed_and_widened_within_the_process_cpus() {
        let all = process_cpus().unwrap();
        assert!(!all.is_empty());
        std::thread::spawn(move || {
            run_thread_on(&all[..1]).unwrap();
            run_thread_on(&all).unwrap();
            assert_eq!(
                process_cpus().unwrap(),
                all,
                "the main thread keeps its set"
            );
        })
        .join()
        .unwrap();
    }
}
