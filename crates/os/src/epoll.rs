//! A minimal epoll wrapper for a daemon process's waiting threads: the group's listener
//! and the process's idle (kept-alive) connections in one interest set, each idle
//! connection armed for one event at a time.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

pub struct Epoll {
    fd: OwnedFd,
}

/// How a descriptor is watched.
#[derive(Debug, Clone, Copy)]
pub enum Interest {
    /// Level-triggered readability, waking one waiter of one process (EPOLLEXCLUSIVE):
    /// a listener shared by the group's processes.
    SharedListener,
    /// Readability (or hang-up), reported once: the thread that takes the event owns the
    /// descriptor until it arms it again.
    Once,
}

impl Interest {
    fn events(self) -> u32 {
        match self {
            Interest::SharedListener => (libc::EPOLLIN | libc::EPOLLEXCLUSIVE) as u32,
            Interest::Once => (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLONESHOT) as u32,
        }
    }
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

impl Epoll {
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: plain syscall; the returned descriptor is owned by the OwnedFd below.
        let fd = check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: fd was just created and is owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Epoll { fd })
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, interest: Interest, token: u64) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events: interest.events(),
            u64: token,
        };
        // SAFETY: event is a valid epoll_event for the call; both descriptors are open
        // (the caller owns `fd` for the duration of the call).
        check(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, fd, &mut event) }).map(drop)
    }

    /// Starts watching `fd`; events carry `token`.
    pub fn add(&self, fd: RawFd, interest: Interest, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, interest, token)
    }

    /// Stops watching `fd`.
    pub fn delete(&self, fd: RawFd) -> io::Result<()> {
        // SAFETY: plain syscall on two open descriptors; the event argument may be null
        // for EPOLL_CTL_DEL.
        check(unsafe {
            libc::epoll_ctl(
                self.fd.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd,
                std::ptr::null_mut(),
            )
        })
        .map(drop)
    }

    /// Re-arms a watched `fd` (after its one-shot event was taken).
    pub fn rearm(&self, fd: RawFd, interest: Interest, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, interest, token)
    }

    /// Waits up to `timeout` for one event; its token, or `None` on timeout or a signal.
    pub fn wait_one(&self, timeout: Duration) -> io::Result<Option<u64>> {
        let mut event = libc::epoll_event { events: 0, u64: 0 };
        let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: event is room for the one event asked for.
        let n = unsafe { libc::epoll_wait(self.fd.as_raw_fd(), &mut event, 1, ms) };
        match check(n) {
            Ok(0) => Ok(None),
            Ok(_) => Ok(Some(event.u64)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(None),
            Err(e) => Err(e),
        }
    }
}
