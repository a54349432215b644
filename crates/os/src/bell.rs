//! A bell for threads waiting in an epoll set: an eventfd that is readable once rung,
//! until a thread silences it.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

pub struct Bell {
    fd: OwnedFd,
}

impl Bell {
    pub fn new() -> io::Result<Bell> {
        // SAFETY: plain syscall; the returned descriptor is owned by the OwnedFd below.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd was just created and is owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Bell { fd })
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Makes the bell readable. Cannot fail short of the counter's overflow, which
    /// silencing prevents.
    pub fn ring(&self) {
        let one: u64 = 1;
        // SAFETY: writes the 8 bytes of `one` to an eventfd this struct owns.
        unsafe {
            libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8);
        }
    }

    /// Makes the bell unreadable again until the next ring.
    pub fn silence(&self) {
        let mut count: u64 = 0;
        // SAFETY: reads at most 8 bytes into `count`; the descriptor is non-blocking.
        unsafe {
            libc::read(self.fd.as_raw_fd(), (&mut count as *mut u64).cast(), 8);
        }
    }
}
