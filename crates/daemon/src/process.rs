//! Forking one daemon process and turning it into a clean, unprivileged server, and
//! forking the recycling bell: the only fork/setuid code of the crate. A child never
//! returns into Apache: it leaves with `_exit`, so the parent's pools and atexit handlers
//! never run twice.

use super::group::{DaemonGroup, current_groups};
use mod_wsgi_engine::procfs::stat_fields;
use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What the Apache layer does in a fresh daemon before anything else.
pub struct ChildSetup {
    /// Closes Apache's listening sockets and points logging at the error log.
    pub prepare: fn(),
    /// argv[0] of the process, overwritten in place by `display-name`.
    pub argv0: Option<(*mut libc::c_char, usize)>,
    /// The user Apache's children run as (shared stores default to its processes).
    pub apache_uid: u32,
}

/// Where a daemon process stands in its slot's succession (zero-gap recycling).
#[derive(Clone, Copy)]
pub struct Lineage {
    /// Shared with the parent (an anonymous shared mapping made before any fork): the
    /// process sets it to ask for a successor instead of stopping.
    pub replace_flag: &'static AtomicU64,
    /// The process this one replaces: told to drain (SIGUSR1) once this one is ready.
    pub predecessor: Option<i32>,
    /// The process's slot pair in its group: with session affinity, the lane it serves.
    pub lane: usize,
    /// The process's own slot in its group (two per pair): where it says it serves.
    pub slot: usize,
    /// How many starts of this slot failed in a row: a process that cannot load its
    /// application waits longer before it tries again.
    pub failed_starts: u32,
}

/// Forks a daemon of `group`; in the parent returns the child's pid. The child waits
/// `delay` first (crash-loop backoff) and then serves until it decides to exit.
pub fn spawn(
    group: &Arc<DaemonGroup>,
    delay: Duration,
    setup: &ChildSetup,
    lineage: Lineage,
) -> io::Result<i32> {
    // SAFETY: the Apache parent is single-threaded (no Python, no tokio there), so the
    // child may run arbitrary code after fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid > 0 {
        return Ok(pid);
    }
    let code = match become_daemon(group, delay, setup, &lineage) {
        // A panic must not unwind out of the forked child back into Apache's code.
        Ok(()) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            super::server::run(group.clone(), lineage)
        }))
        .unwrap_or_else(|_| {
            tracing::error!(
                "WSGI1001: internal error (panic) in a daemon process of group '{}'; it exits",
                group.spec.name
            );
            70
        }),
        Err(e) => {
            tracing::error!(
                "WSGI1101: daemon process of group '{}' could not start: {e}",
                group.spec.name
            );
            1
        }
    };
    // SAFETY: leaving the forked child without running the parent's exit handlers.
    unsafe { libc::_exit(code) }
}

fn check(rc: libc::c_int, what: &str) -> io::Result<()> {
    if rc != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("{what}: {e}")));
    }
    Ok(())
}

fn reset_signals() {
    // SAFETY: plain signal disposition and mask changes in a single-threaded child.
    unsafe {
        for sig in [
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGINT,
            libc::SIGUSR1,
            libc::SIGUSR2,
            libc::SIGCHLD,
            libc::SIGPIPE,
            libc::SIGALRM,
            libc::SIGXCPU,
        ] {
            libc::signal(sig, libc::SIG_DFL);
        }
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        // Importing Python's `signal` module takes over a SIGINT left at SIG_DFL (the
        // KeyboardInterrupt handler), whatever install_signal_handlers says; ignored
        // here, it stays ours until the serving loop installs its own handler. Ctrl-C on
        // a foreground Apache then drains the daemons instead of raising in them.
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
}

fn set_title(group: &DaemonGroup, setup: &ChildSetup) {
    let Some(title) = group.spec.process_title() else {
        return;
    };
    if let Some((argv0, len)) = setup.argv0
        && len > 0
    {
        let bytes = title.as_bytes();
        let n = bytes.len().min(len);
        // SAFETY: argv0 points at the process's own argv[0] string of `len` bytes plus its
        // NUL; we write at most `len` bytes and a NUL within that region.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), argv0.cast::<u8>(), n);
            std::ptr::write_bytes(argv0.add(n), 0, len + 1 - n);
        }
    }
    if let Ok(name) = CString::new(title.chars().take(15).collect::<String>()) {
        // SAFETY: PR_SET_NAME copies at most 16 bytes from a NUL-terminated string.
        unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
    }
}

fn set_limits(group: &DaemonGroup) -> io::Result<()> {
    let spec = &group.spec;
    let limits = [
        (libc::RLIMIT_DATA, spec.memory_limit, "memory-limit"),
        (
            libc::RLIMIT_AS,
            spec.virtual_memory_limit,
            "virtual-memory-limit",
        ),
        (libc::RLIMIT_CPU, spec.cpu_time_limit, "cpu-time-limit"),
    ];
    for (resource, value, what) in limits {
        if value == 0 {
            continue;
        }
        let limit = libc::rlimit {
            rlim_cur: value,
            rlim_max: value,
        };
        // SAFETY: setrlimit reads one struct.
        check(unsafe { libc::setrlimit(resource, &limit) }, what)?;
    }
    if spec.cpu_priority != 0 {
        check(
            // SAFETY: setpriority on this process; no memory is passed.
            unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, spec.cpu_priority) },
            "cpu-priority",
        )?;
    }
    Ok(())
}

fn drop_privileges(group: &DaemonGroup) -> io::Result<()> {
    // SAFETY: identity calls with no memory arguments except the gid list, which lives
    // across the call.
    unsafe {
        if libc::geteuid() != 0 {
            return Ok(());
        }
        check(libc::setgid(group.gid), "setgid")?;
        if group.supplementary_gids.is_empty() {
            let user = CString::new(group.user_name.as_str()).map_err(io::Error::other)?;
            check(libc::initgroups(user.as_ptr(), group.gid), "initgroups")?;
        } else {
            check(
                libc::setgroups(
                    group.supplementary_gids.len(),
                    group.supplementary_gids.as_ptr(),
                ),
                "setgroups",
            )?;
        }
        check(libc::setuid(group.uid), "setuid")?;
    }
    Ok(())
}

fn set_environment(group: &DaemonGroup) {
    let spec = &group.spec;
    // SAFETY: set_var is sound here: the child is single-threaded until the server starts.
    unsafe {
        if let Some(lang) = &spec.lang {
            std::env::set_var("LANG", lang);
        }
        if let Some(locale) = &spec.locale {
            std::env::set_var("LC_ALL", locale);
        }
        std::env::set_var("HOME", &group.home);
        std::env::set_var("USER", &group.user_name);
        std::env::set_var("LOGNAME", &group.user_name);
        if let Some(eggs) = &spec.python_eggs {
            std::env::set_var("PYTHON_EGG_CACHE", eggs);
        }
    }
    // SAFETY: setlocale with an empty string reads the environment just set.
    unsafe { libc::setlocale(libc::LC_ALL, c"".as_ptr()) };
}

fn become_daemon(
    group: &DaemonGroup,
    delay: Duration,
    setup: &ChildSetup,
    lineage: &Lineage,
) -> io::Result<()> {
    reset_signals();
    (setup.prepare)();
    // Stores this group may not use, and other users' internal memory, are unmapped
    // before any of the group's code runs.
    crate::shared::restrict_to(Some(&group.spec.name), group.uid, setup.apache_uid);
    for other in current_groups() {
        if other.spec.name != group.spec.name {
            unshare_words(other.control);
        }
    }
    // Only the socket this process serves stays open.
    close_group_listeners(Some(group.serving_fd(lineage.lane)));
    if !delay.is_zero() {
        std::thread::sleep(delay);
    }
    set_title(group, setup);
    set_limits(group)?;
    if let Some(mask) = group.spec.umask {
        // SAFETY: sets this process's creation mask.
        unsafe { libc::umask(mask) };
    }
    if let Some(jail) = &group.spec.chroot {
        enter_chroot(jail)?;
    }
    drop_privileges(group)?;
    if group.enter_home {
        std::env::set_current_dir(&group.home).map_err(|e| {
            io::Error::new(e.kind(), format!("chdir to home '{}': {e}", group.home))
        })?;
    }
    set_environment(group);
    Ok(())
}

/// Closes this process's inherited copies of every group's listening sockets, but `keep`.
pub fn close_group_listeners(keep: Option<RawFd>) {
    for group in current_groups() {
        for fd in group.listener_fds().filter(|&fd| Some(fd) != keep) {
            crate::socket::close(fd);
        }
    }
}

/// Tells `predecessor` (a sibling daemon: same parent) to drain and exit; a pid that is no
/// longer our sibling (it died and the number was reused) is left alone.
pub fn retire(predecessor: i32) {
    if !is_live_child_of(predecessor, std::os::unix::process::parent_id()) {
        return;
    }
    // SAFETY: signalling a sibling process checked just above.
    unsafe { libc::kill(predecessor, libc::SIGUSR1) };
}

/// `chroot=`: confines the process to `dir` (still root here; privileges drop after).
fn enter_chroot(dir: &str) -> io::Result<()> {
    let path = CString::new(dir).map_err(|_| io::Error::other("chroot path contains a NUL"))?;
    // SAFETY: chroot reads the NUL-terminated path; this forked process is single-threaded.
    if unsafe { libc::chroot(path.as_ptr()) } != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("chroot to '{dir}': {e}")));
    }
    std::env::set_current_dir("/")
}

/// Takes another group's shared words out of this process: the pages are replaced by
/// private zero pages (read-only) at the same address, so this process, whatever its
/// application does (mprotect included), can neither see nor change that group's
/// health and recycling flags (a hostile tenant could otherwise mark another group failed,
/// or recycle it endlessly). Nothing in a daemon reads another group's words.
fn unshare_words(words: &'static [AtomicU64]) {
    if words.is_empty() {
        return;
    }
    // SAFETY: sysconf has no preconditions.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    let len = std::mem::size_of_val(words).div_ceil(page) * page;
    // SAFETY: the words start their own anonymous mapping (page-aligned, made by the
    // parent for this group alone, `len` rounded as the kernel rounded it); MAP_FIXED
    // replaces exactly those pages, and the references into them stay valid (zeros).
    let mapped = unsafe {
        libc::mmap(
            words.as_ptr().cast_mut().cast(),
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
            -1,
            0,
        )
    };
    if mapped == libc::MAP_FAILED {
        tracing::warn!(
            "WSGI1128: cannot take another group's shared words out of this process: {}",
            io::Error::last_os_error()
        );
    }
}

/// Whether process `pid` exists (whoever owns it: a daemon may run as another user).
pub fn process_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Whether `pid` is a live (not zombie) child of `parent`.
pub fn is_live_child_of(pid: i32, parent: u32) -> bool {
    stat_fields(&pid.to_string()).is_some_and(|f| {
        f.first().is_some_and(|state| state != "Z")
            && f.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(parent)
    })
}

/// How often the bell looks at the recycling flags.
const BELL_INTERVAL: Duration = Duration::from_millis(100);

/// Forks the recycling bell: a tiny unprivileged process (as `user`: uid, gid) that exits
/// as soon as a daemon raises a recycling flag it had not seen raised. Its exit is the
/// Apache parent's doorbell: the MPM reaps children about once a second, while it runs the
/// monitor hook (where the flags are otherwise read) only about every ten. A flag already
/// up when the bell starts (its slot could not be answered yet) does not ring it again.
/// The bell dies with the parent (PR_SET_PDEATHSIG, and a parent check each round).
pub fn spawn_bell(
    flags: &[&'static AtomicU64],
    setup: &ChildSetup,
    user: (u32, u32),
) -> io::Result<i32> {
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    // Taken before the fork, so that any flag the parent has not looked at yet (it looks
    // right after starting the bell) is either seen by it or rings the bell.
    let mut raised: Vec<bool> = flags
        .iter()
        .map(|f| f.load(Ordering::Acquire) != 0)
        .collect();

    // SAFETY: as in `spawn`: the Apache parent is single-threaded.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid > 0 {
        return Ok(pid);
    }
    reset_signals();
    (setup.prepare)();
    close_group_listeners(None);
    // SAFETY: prctl with integer arguments and a NUL-terminated name; identity calls with
    // no memory arguments. Failure to drop privileges ends the bell before it loops.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        libc::prctl(libc::PR_SET_NAME, c"wsgi-bell".as_ptr());
        if libc::geteuid() == 0
            && (libc::setgid(user.1) != 0
                || libc::setgroups(0, std::ptr::null()) != 0
                || libc::setuid(user.0) != 0)
        {
            libc::_exit(1);
        }
    }
    loop {
        std::thread::sleep(BELL_INTERVAL);
        // SAFETY: getppid has no preconditions.
        if unsafe { libc::getppid() } != parent {
            break;
        }
        let mut ring = false;
        for (flag, was) in flags.iter().zip(raised.iter_mut()) {
            let up = flag.load(Ordering::Acquire) != 0;
            ring |= up && !*was;
            *was = up;
        }
        if ring {
            break;
        }
    }
    // SAFETY: leaving the forked child without running the parent's exit handlers.
    unsafe { libc::_exit(0) }
}

/// Tells a daemon process (our child) to finish its requests and exit.
pub fn drain(pid: i32) {
    // SAFETY: signalling our own child (checked by the caller): it finishes its requests
    // within graceful-timeout and exits.
    unsafe { libc::kill(pid, libc::SIGUSR1) };
}

/// Waits for stopped daemon processes (our children) to exit, killing those still
/// running after `limit`.
pub fn reap(pids: &[i32], limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut left: Vec<i32> = pids.to_vec();
    while !left.is_empty() {
        left.retain(|&pid| {
            let mut st = 0;
            // SAFETY: non-blocking wait for our own child.
            let r = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
            r == 0
        });
        if left.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            for &pid in &left {
                tracing::error!("WSGI1124: daemon process {pid} did not stop in time; killing it");
                // SAFETY: signalling and reaping our own child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, std::ptr::null_mut(), 0);
                }
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
