//! How a daemon process takes requests: its worker threads accept straight from the
//! group's listening socket, so a process only takes a connection when a thread is free
//! to run it (the rest stay in the shared backlog for the group's other processes), and
//! the request is read and run on the thread that accepted it: no hand-off between
//! threads on the hot path.
#![forbid(unsafe_code)]

use super::group::DaemonGroup;
use super::socket::set_accept_timeout;
use super::transport::send_frame;
use mod_wsgi_wire::{Decoder, ErrorKind, Frame, RequestHead};
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// Largest request head accepted (environ included).
const MAX_HEAD: usize = 16 * 1024 * 1024;
const HEAD_CHUNK: usize = 4 * 1024;
/// How long a thread blocks in accept() before it checks whether its process stops.
const ACCEPT_WAKE: Duration = Duration::from_millis(200);

/// An accepted connection whose head has been read and checked.
pub struct Job {
    pub stream: UnixStream,
    pub head: Box<RequestHead>,
    /// Holds whatever arrived after the head (the start of the body).
    pub decoder: Decoder,
}

pub struct Acceptor {
    listener: UnixListener,
    closed: AtomicBool,
    /// Threads inside accept(); `close` waits for them to leave.
    accepting: AtomicUsize,
    /// Threads between accepting a connection and finishing its request.
    busy: AtomicUsize,
}

/// Marks its thread busy until dropped (when the request is finished or abandoned), for
/// the process's draining and in the server metrics.
pub struct Busy<'a> {
    count: &'a AtomicUsize,
    _metrics: crate::shared::metrics::Busy,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Acceptor {
    /// Makes the group's listener blocking with an accept timeout: every thread of every
    /// process of the group blocks in accept(), and the kernel hands each connection to
    /// exactly one of them (an exclusive wake-up); the timeout lets a stopping thread
    /// notice in time. The listener's flags are shared by the group's processes, which
    /// all set the same.
    pub fn new(listener: UnixListener) -> io::Result<Acceptor> {
        listener.set_nonblocking(false)?;
        set_accept_timeout(listener.as_raw_fd(), ACCEPT_WAKE)?;
        Ok(Acceptor {
            listener,
            closed: AtomicBool::new(false),
            accepting: AtomicUsize::new(0),
            busy: AtomicUsize::new(0),
        })
    }

    /// Stops taking connections. On return, every accepted connection is counted in
    /// `busy` and no thread will accept another.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        while self.accepting.load(Ordering::SeqCst) > 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// No request accepted and unfinished.
    pub fn is_idle(&self) -> bool {
        self.busy.load(Ordering::SeqCst) == 0
    }

    /// Waits for the next request; `None` once the acceptor is closed.
    pub fn next(&self, group: &DaemonGroup) -> Option<(Job, Busy<'_>)> {
        loop {
            let (stream, busy) = self.accept(group)?;
            if let Some(job) = read_head(group, stream) {
                return Some((job, busy));
            }
        }
    }

    fn accept(&self, group: &DaemonGroup) -> Option<(UnixStream, Busy<'_>)> {
        loop {
            self.accepting.fetch_add(1, Ordering::SeqCst);
            if self.closed.load(Ordering::SeqCst) {
                self.accepting.fetch_sub(1, Ordering::SeqCst);
                return None;
            }
            let accepted = self.listener.accept();
            if accepted.is_ok() {
                self.busy.fetch_add(1, Ordering::SeqCst);
            }
            self.accepting.fetch_sub(1, Ordering::SeqCst);
            match accepted {
                Ok((stream, _)) => {
                    let busy = Busy {
                        count: &self.busy,
                        _metrics: crate::shared::metrics::busy(),
                    };
                    return Some((stream, busy));
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => {
                    tracing::error!(
                        "WSGI0108: accept failed in group '{}': {e}",
                        group.spec.name
                    );
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }
}

/// Reads and checks the request head; `None` (logged) if the connection is refused.
fn read_head(group: &DaemonGroup, mut stream: UnixStream) -> Option<Job> {
    let name = &group.spec.name;
    let timeout = group.socket_timeout;
    let setup = stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)));
    if let Err(e) = setup {
        tracing::error!("WSGI0108: group '{name}': {e}");
        return None;
    }
    let mut decoder = Decoder::new(MAX_HEAD);
    let mut buf = [0u8; HEAD_CHUNK];
    let head = loop {
        match decoder.next_frame() {
            Ok(Some(Frame::RequestHead(head))) => break Ok(head),
            Ok(Some(other)) => {
                break Err(format!("expected a request head, got {:?}", other.kind()));
            }
            Ok(None) => {}
            Err(e) => break Err(e.to_string()),
        }
        match stream.read(&mut buf) {
            Ok(0) => break Err("connection closed before the request head".to_owned()),
            Ok(n) => decoder.push(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                break Err(format!("no request head within {timeout:?}"));
            }
            Err(e) => break Err(e.to_string()),
        }
    };
    let head = match head {
        Ok(head) => head,
        Err(e) => {
            tracing::error!("WSGI0104: group '{name}': refused a connection: {e}");
            return None;
        }
    };
    if !group.accepts_secret(&head.secret) {
        tracing::error!(
            "WSGI0105: group '{name}': refused a request without this server's secret (another local process tried to talk to the daemon socket?)"
        );
        send_frame(
            &stream,
            &Frame::Error(ErrorKind::Refused, "bad secret".into()),
        );
        return None;
    }
    Some(Job {
        stream,
        head,
        decoder,
    })
}
