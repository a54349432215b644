//! The Unix listening socket of a daemon group: created by the Apache parent (as root)
//! before any fork, owned by the user Apache's children run as, mode 0700.

use std::ffi::CString;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{IntoRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

/// Longest path a `sockaddr_un` holds on Linux, without the terminating NUL.
pub const MAX_SOCKET_PATH: usize = 107;

/// A bound and listening socket; the fd is inherited by every daemon of the group.
#[derive(Debug, Clone, Copy)]
pub struct ListenerSocket {
    pub fd: RawFd,
}

/// Binds `path` (removing a stale file first), listens with `backlog`, and hands the
/// socket file to `owner` with mode 0700.
pub fn bind_listener(path: &Path, backlog: u32, owner: (u32, u32)) -> io::Result<ListenerSocket> {
    if path.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "socket path '{}' is longer than {MAX_SOCKET_PATH} bytes",
                path.display()
            ),
        ));
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    // SAFETY: umask only changes this process's file creation mask; the parent is
    // single-threaded while it reads its configuration.
    let old = unsafe { libc::umask(0o077) };
    let bound = UnixListener::bind(path);
    // SAFETY: restores the mask saved above.
    unsafe { libc::umask(old) };
    let listener = bound?;
    let fd = listener.into_raw_fd();
    // SAFETY: fd is the listening socket just created and owned here; listen() on a
    // listening socket only updates its backlog.
    if unsafe { libc::listen(fd, backlog as libc::c_int) } != 0 {
        let e = io::Error::last_os_error();
        close(fd);
        return Err(e);
    }
    let c_path = CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: c_path is a NUL-terminated path that outlives the call.
    if unsafe { libc::chown(c_path.as_ptr(), owner.0, owner.1) } != 0 {
        let e = io::Error::last_os_error();
        // Only root can give the file away; an unprivileged test server keeps it.
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            close(fd);
            return Err(e);
        }
    }
    Ok(ListenerSocket { fd })
}

/// Closes a descriptor this process owns.
pub fn close(fd: RawFd) {
    // SAFETY: the caller owns fd and does not use it afterwards.
    unsafe { libc::close(fd) };
}

/// Reads from `fd` at `offset` without moving its file position.
pub fn pread(fd: RawFd, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    // SAFETY: buf is a valid writable region of buf.len() bytes; fd is borrowed for the
    // call from a file the application keeps open until the response ends.
    let n = unsafe {
        libc::pread(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            offset as libc::off_t,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// What `poll_fd` found; nothing set means the timeout passed.
#[derive(Debug, Default, Clone, Copy)]
pub struct Polled {
    pub readable: bool,
    pub writable: bool,
    /// The other descriptor (`also_readable`) is readable.
    pub other_readable: bool,
}

/// Waits until `fd` is readable or (with `want_write`) writable, or `also_readable` is
/// readable, for at most `timeout`.
pub fn poll_fd(
    fd: RawFd,
    want_write: bool,
    also_readable: Option<RawFd>,
    timeout: std::time::Duration,
) -> io::Result<Polled> {
    let mut pfds = [
        libc::pollfd {
            fd,
            events: libc::POLLIN | if want_write { libc::POLLOUT } else { 0 },
            revents: 0,
        },
        libc::pollfd {
            fd: also_readable.unwrap_or(-1),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    let count = if also_readable.is_some() { 2 } else { 1 };
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    let input = libc::POLLIN | libc::POLLHUP | libc::POLLERR;
    loop {
        // SAFETY: pfds holds `count` valid pollfds for the call.
        let rc = unsafe { libc::poll(pfds.as_mut_ptr(), count, ms) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        return Ok(Polled {
            readable: pfds[0].revents & input != 0,
            writable: pfds[0].revents & (libc::POLLOUT | libc::POLLERR) != 0,
            other_readable: count == 2 && pfds[1].revents & input != 0,
        });
    }
}

/// Takes this process's inherited copy of a group's listening socket.
pub fn listener_from_fd(fd: RawFd) -> UnixListener {
    // SAFETY: a daemon owns its inherited copy of the listener fd and hands it over once;
    // the parent's copy is a separate descriptor.
    unsafe { <UnixListener as std::os::fd::FromRawFd>::from_raw_fd(fd) }
}

/// Sets SO_SNDBUF of `fd` to `bytes` (the kernel doubles it, capped at twice
/// net.core.wmem_max): how much the socket queues before a write waits for its peer.
pub fn set_send_buffer(fd: RawFd, bytes: u32) -> io::Result<()> {
    let value = bytes.min(i32::MAX as u32) as libc::c_int;
    set_socket_option(fd, libc::SO_SNDBUF, &value)
}

/// Bounds how long a blocking accept() on `fd` waits (SO_RCVTIMEO applies to accept).
pub fn set_accept_timeout(fd: RawFd, timeout: std::time::Duration) -> io::Result<()> {
    let tv = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: timeout.subsec_micros() as libc::suseconds_t,
    };
    set_socket_option(fd, libc::SO_RCVTIMEO, &tv)
}

/// setsockopt(fd, SOL_SOCKET, name, value): `T` must be the option's C type.
fn set_socket_option<T>(fd: RawFd, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: value points to a live T of size_of::<T>() bytes for the call; fd is the
    // caller's open socket (a bad one is an error return, not undefined behaviour).
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Most descriptors taken from one recvmsg (a daemon passes one per file frame).
const MAX_FDS_PER_READ: usize = 8;

/// Sends `parts` on the stream socket `sock` as one message carrying `fd` (SCM_RIGHTS).
/// Returns how many bytes went out; the descriptor travels with the first of them.
pub fn send_with_fd(sock: RawFd, parts: &[&[u8]], fd: RawFd) -> io::Result<usize> {
    let mut iov: Vec<libc::iovec> = parts
        .iter()
        .map(|p| libc::iovec {
            iov_base: p.as_ptr() as *mut libc::c_void,
            iov_len: p.len(),
        })
        .collect();
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
    let mut control = vec![0u8; space];
    // SAFETY: an all-zero msghdr is valid; every pointer set below outlives the sendmsg.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_mut_ptr();
    msg.msg_iovlen = iov.len();
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space;
    // SAFETY: msg_control points at `space` bytes, room for one header carrying one fd;
    // CMSG_FIRSTHDR is therefore non-null and CMSG_DATA has room for the fd.
    let rc = unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
        loop {
            let rc = libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL);
            if rc >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                break rc;
            }
        }
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc as usize)
}

/// Writes what the stream socket `sock` takes now, without blocking (EAGAIN if nothing).
pub fn send_nowait(sock: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: buf is a valid readable region for the call.
    let n = unsafe {
        libc::send(
            sock,
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// Reads from the stream socket `sock` into `buf`'s spare capacity (appending, at most
/// `max` bytes: the caller reserves the room), keeping any descriptors that came with
/// the data (close-on-exec) in `fds`, in the order they were sent. Without `wait` it
/// does not block (EAGAIN if nothing is there); with it, it blocks up to the socket's
/// read timeout (then EAGAIN).
pub fn recv_with_fds(
    sock: RawFd,
    buf: &mut Vec<u8>,
    max: usize,
    fds: &mut std::collections::VecDeque<std::os::fd::OwnedFd>,
    wait: bool,
) -> io::Result<usize> {
    let spare = buf.spare_capacity_mut();
    let mut iov = libc::iovec {
        iov_base: spare.as_mut_ptr().cast(),
        iov_len: spare.len().min(max),
    };
    // SAFETY: CMSG_SPACE only computes a size.
    let space =
        unsafe { libc::CMSG_SPACE((MAX_FDS_PER_READ * std::mem::size_of::<RawFd>()) as u32) };
    // On the stack (this runs for every read of a proxied response), aligned for cmsghdr.
    let mut control = [0u64; 16];
    assert!(space as usize <= std::mem::size_of_val(&control));
    // SAFETY: an all-zero msghdr is valid; every pointer set below outlives the recvmsg.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as usize;
    let flags = libc::MSG_CMSG_CLOEXEC | if wait { 0 } else { libc::MSG_DONTWAIT };
    // SAFETY: buf and control are valid writable regions described by msg.
    let n = unsafe { libc::recvmsg(sock, &mut msg, flags) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel filled msg_control with msg_controllen bytes of well-formed
    // headers; each SCM_RIGHTS header's data holds fds now owned by this process.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg);
                let header = libc::CMSG_LEN(0) as usize;
                let count = ((*cmsg).cmsg_len - header) / std::mem::size_of::<RawFd>();
                for i in 0..count {
                    let fd = std::ptr::read_unaligned(data.cast::<RawFd>().add(i));
                    fds.push_back(
                        <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd),
                    );
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    // SAFETY: the kernel initialised the first n bytes of the spare capacity.
    unsafe { buf.set_len(buf.len() + n as usize) };
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err(io::Error::other(
            "more file descriptors arrived than expected (truncated)",
        ));
    }
    Ok(n as usize)
}

/// Reads from the stream socket `sock` into `buf`'s spare capacity (appending, at most
/// `max` bytes), blocking up to the socket's read timeout.
pub fn recv_append(sock: RawFd, buf: &mut Vec<u8>, max: usize) -> io::Result<usize> {
    let spare = buf.spare_capacity_mut();
    let len = spare.len().min(max);
    let n = recv_into(sock, &mut spare[..len])?;
    // SAFETY: the kernel initialised the first n bytes of the spare capacity.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// Reads from the stream socket `sock` into `dest` (the first n bytes returned are then
/// initialised), blocking up to the socket's read timeout.
fn recv_into(sock: RawFd, dest: &mut [MaybeUninit<u8>]) -> io::Result<usize> {
    loop {
        // SAFETY: dest is a writable region of dest.len() bytes borrowed for the call;
        // sock is the caller's open socket.
        let n = unsafe { libc::recv(sock, dest.as_mut_ptr().cast(), dest.len(), 0) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// One read from the stream socket `sock` that fills `first`, then appends what follows
/// to `rest` (at most `max` bytes, within its spare capacity); returns how many bytes
/// went to each. Blocks up to the socket's read timeout.
pub fn recv_split(
    sock: RawFd,
    first: &mut [MaybeUninit<u8>],
    rest: &mut Vec<u8>,
    max: usize,
) -> io::Result<(usize, usize)> {
    let spare = rest.spare_capacity_mut();
    let spare_len = spare.len().min(max);
    let mut iov = [
        libc::iovec {
            iov_base: first.as_mut_ptr().cast(),
            iov_len: first.len(),
        },
        libc::iovec {
            iov_base: spare.as_mut_ptr().cast(),
            iov_len: spare_len,
        },
    ];
    let n = loop {
        // SAFETY: both iovecs describe writable memory borrowed for the call (`first`,
        // and the spare capacity of `rest`); sock is the caller's open socket.
        let n = unsafe { libc::readv(sock, iov.as_mut_ptr(), 2) };
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    let kept = n.min(first.len());
    let appended = n - kept;
    // SAFETY: a stream read fills the iovecs in order: the kernel initialised the first
    // `appended` bytes of the spare capacity.
    unsafe { rest.set_len(rest.len() + appended) };
    Ok((kept, appended))
}

fn name_hash(name: &str) -> u32 {
    name.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The socket of group `name` for the Apache parent `parent_pid`:
/// `<prefix>.<pid>.<hash of the name>.sock` (names may hold any character).
pub fn socket_path(prefix: &str, parent_pid: u32, name: &str) -> PathBuf {
    PathBuf::from(format!(
        "{prefix}.{parent_pid}.{:08x}.sock",
        name_hash(name)
    ))
}

/// Lane `index`'s socket beside the group's: `<prefix>...<hash>.<index>.sock`.
pub fn lane_path(group_socket: &Path, index: usize) -> PathBuf {
    group_socket.with_extension(format!("{index}.sock"))
}

/// A group's socket at `path`: the one the previous generation left open there (with
/// its secret) if its descriptor is still open and the file still exists, else a newly
/// bound one (no secret yet). `previous` maps paths to (descriptor, secret).
pub fn keep_or_bind(
    path: &Path,
    previous: &mut std::collections::HashMap<PathBuf, (RawFd, [u8; 32])>,
    backlog: u32,
    owner: (u32, u32),
) -> io::Result<(RawFd, Option<[u8; 32]>)> {
    match previous.remove(path) {
        // SAFETY: fcntl(F_GETFD) only checks that the descriptor is still open.
        Some((fd, old)) if unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0 && path.exists() => {
            Ok((fd, Some(old)))
        }
        _ => bind_listener(path, backlog, owner).map(|l| (l.fd, None)),
    }
}
