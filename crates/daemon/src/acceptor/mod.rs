//! How a daemon process takes requests: its free worker threads wait in one epoll set
//! holding the group's listening socket and the process's idle, kept-alive connections.
//! A thread takes whichever is ready (a new connection, or the next request on a kept
//! one), reads the request and runs it itself: no hand-off between threads on the hot
//! path. A process only takes a new connection when a thread is free to run it (the rest
//! stay in the shared backlog for the group's other processes); it keeps a connection
//! open for the Apache child's next request only while it has threads to spare, so a
//! loaded process hands new work back to the shared backlog. With own-GIL interpreters,
//! a free thread may look past requests of busy GILs for one of a GIL left without a
//! thread, parking up to four (see `gil_spread`).
#![forbid(unsafe_code)]

mod spreading;

use self::spreading::Spreading;
use crate::buffers::apply_buffer_option;
use crate::epoll::{Epoll, Interest};
use crate::group::DaemonGroup;
use crate::python;
use crate::socket::{recv_append, set_accept_timeout};
use crate::transport::send_frame;
use mod_wsgi_wire::{Decoder, ErrorKind, Frame, RequestHead};
use std::collections::HashMap;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

const HEAD_CHUNK: usize = 4 * 1024;
/// Buffer memory an idle kept-alive connection holds on to.
const IDLE_BUFFER: usize = 16 * 1024;
/// How long a free thread waits before it checks whether its process stops.
const WAKE: Duration = Duration::from_millis(200);
/// The accept timeout with own-GIL interpreters: a thread looking for a request of a
/// starved GIL while others are parked must not wait in accept() when another thread or
/// process took the connection it was told of.
const GLANCE: Duration = Duration::from_millis(1);
/// The listener's and the bell's tokens in the epoll set; kept connections use their
/// descriptor.
const LISTENER: u64 = u64::MAX;
const BELL: u64 = u64::MAX - 1;

/// A connection from an Apache child; with keep-alive it carries several requests, one
/// at a time.
pub struct Connection {
    pub stream: Arc<UnixStream>,
    /// Bytes read but not yet decoded; kept with the connection so its buffer is reused.
    pub decoder: Arc<Mutex<Decoder>>,
    /// Already in the epoll set (it served a request before).
    registered: bool,
}

/// A connection whose next request head has been read and checked.
pub struct Job {
    pub connection: Connection,
    pub head: Box<RequestHead>,
}

pub struct Acceptor {
    listener: UnixListener,
    epoll: Epoll,
    closed: AtomicBool,
    /// Threads waiting for work; `close` waits for them to leave.
    waiting: AtomicUsize,
    /// Threads between taking a connection and finishing its request.
    busy: AtomicUsize,
    /// Kept-alive connections waiting for their next request, by descriptor.
    idle: Mutex<HashMap<RawFd, Connection>>,
    threads: usize,
    /// Serialises `go_last` between threads that accepted at the same time.
    rotating: Mutex<()>,
    /// With own-GIL interpreters: the requests running and parked per GIL.
    spreading: Option<Spreading>,
}

/// What a free thread found.
enum Taken {
    Connection(Connection, bool),
    Nothing,
    Closed,
}

/// Marks its thread busy until dropped (when the request is finished or abandoned), for
/// the process's draining and in the server metrics.
pub struct Busy<'a> {
    count: &'a AtomicUsize,
    /// The metrics' view (active requests): released once the application is done,
    /// before the response's end frame lets the child send its next request, which
    /// another thread may take before this one finishes up.
    metrics: Option<crate::shared::metrics::Busy>,
    /// The GIL the request runs under, with own-GIL interpreters; released with
    /// `metrics`.
    gil: Option<(&'a Spreading, Arc<str>)>,
}

impl Busy<'_> {
    pub fn application_done(&mut self) {
        self.metrics = None;
        if let Some((spreading, gil)) = self.gil.take() {
            lock(&spreading.state).finished(&gil, Instant::now());
        }
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.application_done();
        self.count.fetch_sub(1, Ordering::SeqCst);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Acceptor {
    /// The listener stays blocking, with an accept timeout, as every process of the
    /// group (old generations included) expects of the shared socket: a thread that
    /// loses the race for a connection after its wake-up waits at most that long in
    /// accept() (taking the next connection if one comes), 200 ms, or 1 ms in a group
    /// with own-GIL interpreters (the timeout belongs to the socket, which all the
    /// group's processes share). `place`: this process's place in its group.
    pub fn new(listener: UnixListener, group: &DaemonGroup, place: usize) -> io::Result<Acceptor> {
        let threads = group.spec.threads as usize;
        let own_gils = threads > 1 && python::own_gils_configured();
        listener.set_nonblocking(false)?;
        set_accept_timeout(listener.as_raw_fd(), if own_gils { GLANCE } else { WAKE })?;
        let epoll = Epoll::new()?;
        epoll.add(listener.as_raw_fd(), Interest::SharedListener, LISTENER)?;
        let spreading = if own_gils {
            Some(Spreading::new(group, &epoll, place)?)
        } else {
            None
        };
        Ok(Acceptor {
            listener,
            epoll,
            closed: AtomicBool::new(false),
            waiting: AtomicUsize::new(0),
            busy: AtomicUsize::new(0),
            idle: Mutex::new(HashMap::new()),
            threads,
            rotating: Mutex::new(()),
            spreading,
        })
    }

    /// Stops taking connections and requests. On return, every connection taken is
    /// counted in `busy`, no thread will take another, and the idle kept-alive
    /// connections were closed without losing a request (see `retire`).
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        while self.waiting.load(Ordering::SeqCst) > 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.retire_idle();
    }

    /// Connections taken whose request is not finished.
    pub fn busy_count(&self) -> usize {
        self.busy.load(Ordering::SeqCst)
    }

    /// No request taken and unfinished.
    pub fn is_idle(&self) -> bool {
        self.busy.load(Ordering::SeqCst) == 0
    }

    /// Whether a connection that just finished a request may wait for the child's next
    /// one here: only while another thread of this process is free (a single-threaded
    /// process never keeps one, so its group's backlog spreads the load), and within a
    /// bound on idle connections.
    pub fn may_keep(&self) -> bool {
        !self.closed.load(Ordering::Relaxed)
            && self.busy.load(Ordering::Relaxed) < self.threads
            && lock(&self.idle).len() < 2 * self.threads.max(8)
    }

    /// Puts a connection that answered `EndKeepAlive` back into the epoll set for its
    /// next request; once the acceptor is closed, retires it instead.
    pub fn keep(&self, mut connection: Connection) {
        let fd = connection.stream.as_raw_fd();
        // An upload grew the buffer; an idle connection keeps only room for a head.
        lock(&connection.decoder).shrink_to(IDLE_BUFFER);
        let mut idle = lock(&self.idle);
        if self.closed.load(Ordering::SeqCst) {
            drop(idle);
            return retire(connection);
        }
        let armed = if connection.registered {
            self.epoll.rearm(fd, Interest::Once, fd as u64)
        } else {
            self.epoll.add(fd, Interest::Once, fd as u64)
        };
        match armed {
            Ok(()) => {
                connection.registered = true;
                idle.insert(fd, connection);
            }
            Err(e) => {
                drop(idle);
                tracing::error!("WSGI1108: cannot keep a daemon connection: {e}");
                retire(connection);
            }
        }
    }

    /// Waits for the next request; `None` once the acceptor is closed.
    pub fn next(&self, group: &DaemonGroup) -> Option<(Job, Busy<'_>)> {
        if let Some(spreading) = &self.spreading {
            return self.next_spread(group, spreading);
        }
        loop {
            let (connection, reused) = loop {
                match self.take(group, WAKE) {
                    Taken::Connection(connection, reused) => break (connection, reused),
                    Taken::Nothing => {}
                    Taken::Closed => return None,
                }
            };
            match read_head(group, connection, reused) {
                Some(job) => return Some((job, self.busy(None))),
                None => self.untake(),
            }
        }
    }

    fn busy<'a>(&'a self, gil: Option<(&'a Spreading, Arc<str>)>) -> Busy<'a> {
        Busy {
            count: &self.busy,
            metrics: Some(crate::shared::metrics::busy()),
            gil,
        }
    }

    /// A connection taken gave no request.
    fn untake(&self) {
        self.busy.fetch_sub(1, Ordering::SeqCst);
    }

    /// Waits up to `patience` for a new connection or a kept one with a request
    /// arriving; a connection taken counts as busy.
    fn take(&self, group: &DaemonGroup, patience: Duration) -> Taken {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let parked = self
            .spreading
            .as_ref()
            .is_some_and(|s| s.parked.load(Ordering::SeqCst) > 0);
        if self.closed.load(Ordering::SeqCst) || (parked && !patience.is_zero()) {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return if parked {
                Taken::Nothing
            } else {
                Taken::Closed
            };
        }
        let taken = match self.epoll.wait_one(patience) {
            Ok(Some(LISTENER)) => self.accept(group).map(|c| (c, false)),
            Ok(Some(BELL)) => {
                if let Some(spreading) = &self.spreading {
                    spreading.bell.silence();
                }
                None
            }
            Ok(Some(fd)) => lock(&self.idle).remove(&(fd as RawFd)).map(|c| (c, true)),
            Ok(None) => None,
            Err(e) => {
                tracing::error!(
                    "WSGI1108: epoll_wait failed in group '{}': {e}",
                    group.spec.name
                );
                std::thread::sleep(Duration::from_millis(100));
                None
            }
        };
        // Closed while this thread waited: what it took goes back to the child (a
        // request that arrived is answered "restarting" and sent elsewhere).
        if self.closed.load(Ordering::SeqCst) {
            if let Some((connection, _)) = taken {
                retire(connection);
            }
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Taken::Closed;
        }
        let saturated =
            taken.is_some() && self.busy.fetch_add(1, Ordering::SeqCst) + 1 >= self.threads;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        if saturated {
            self.retire_idle();
        }
        match taken {
            Some((connection, reused)) => Taken::Connection(connection, reused),
            None => Taken::Nothing,
        }
    }

    /// Every thread is busy: a request arriving on one of the idle kept-alive connections
    /// would wait here for a thread while the group's other processes may have free ones.
    /// The connections are retired (see `retire`: a request the child is sending on one
    /// goes back to it and on to the shared backlog), as C mod_wsgi's one connection per
    /// request would queue it; the child connects anew next time.
    fn retire_idle(&self) {
        let idle: Vec<Connection> = lock(&self.idle).drain().map(|(_, c)| c).collect();
        for connection in idle {
            retire(connection);
        }
    }

    /// Moves this process to the back of the listener's queue of waiting processes.
    /// EPOLLEXCLUSIVE wakes the first process in that queue with a free thread, which
    /// would otherwise take every new connection until it is saturated; rotating spreads
    /// connections (and so the kept-alive ones) over the group's processes, as threads
    /// blocked in accept() took turns before.
    fn go_last(&self, group: &DaemonGroup) {
        let fd = self.listener.as_raw_fd();
        let _one_at_a_time = lock(&self.rotating);
        let moved = self
            .epoll
            .delete(fd)
            .and_then(|()| self.epoll.add(fd, Interest::SharedListener, LISTENER));
        if let Err(e) = moved {
            tracing::error!(
                "WSGI1108: group '{}': cannot re-register the listener: {e}",
                group.spec.name
            );
        }
    }

    fn accept(&self, group: &DaemonGroup) -> Option<Connection> {
        let stream = match self.listener.accept() {
            Ok((stream, _)) => {
                self.go_last(group);
                stream
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return None;
            }
            Err(e) => {
                tracing::error!(
                    "WSGI1108: accept failed in group '{}': {e}",
                    group.spec.name
                );
                std::thread::sleep(Duration::from_millis(100));
                return None;
            }
        };
        let timeout = Some(group.socket_timeout);
        if let Err(e) = stream
            .set_read_timeout(timeout)
            .and_then(|()| stream.set_write_timeout(timeout))
        {
            tracing::error!("WSGI1108: group '{}': {e}", group.spec.name);
            return None;
        }
        // The daemon's side bounds how much of a response waits for the child.
        apply_buffer_option(
            stream.as_raw_fd(),
            group.spec.send_buffer_size,
            "send-buffer-size",
            &group.spec.name,
        );
        crate::shared::metrics::record_connection(&group.spec.name);
        Some(Connection {
            stream: Arc::new(stream),
            decoder: Arc::new(Mutex::new(Decoder::new(group.max_request_head))),
            registered: false,
        })
    }
}

/// Closes a kept-alive connection without losing a request the child may be sending on
/// it right now: after shutting down this side's reading, the child's writes fail
/// (EPIPE), which tells it that nothing arrived and it may send the request elsewhere;
/// anything that did arrive before is answered with "restarting", which the child also
/// retries. Reading drains what is queued so the close does not reset the connection
/// under that answer.
pub fn retire(connection: Connection) {
    let mut stream = &*connection.stream;
    let _ = stream.shutdown(std::net::Shutdown::Read);
    let mut arrived = lock(&connection.decoder).buffered() > 0;
    let mut buf = [0u8; HEAD_CHUNK];
    while let Ok(1..) = stream.read(&mut buf) {
        arrived = true;
    }
    if arrived {
        send_frame(
            &connection.stream,
            &Frame::Error(
                ErrorKind::Restarting,
                "daemon process is shutting down".into(),
            ),
        );
    }
}

/// Reads and checks the next request head; `None` if the connection is closed (logged,
/// unless the child just closed an idle kept-alive connection).
fn read_head(group: &DaemonGroup, connection: Connection, reused: bool) -> Option<Job> {
    let name = &group.spec.name;
    let fd = connection.stream.as_raw_fd();
    let mut decoder = lock(&connection.decoder);
    let head = loop {
        match decoder.next_frame() {
            Ok(Some(Frame::RequestHead(head))) => break Ok(head),
            Ok(Some(other)) => {
                break Err(format!("expected a request head, got {:?}", other.kind()));
            }
            Ok(None) => {}
            Err(e) => break Err(e.to_string()),
        }
        // The head's first body block may follow: read what fits in the buffer.
        let read = decoder.receive(HEAD_CHUNK, |buf| recv_append(fd, buf, usize::MAX));
        match read {
            Ok(0) if reused && decoder.buffered() == 0 => return None,
            Ok(0) => break Err("connection closed before the request head".to_owned()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if reused && e.kind() == io::ErrorKind::ConnectionReset => return None,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                break Err(format!("no request head within {:?}", group.socket_timeout));
            }
            Err(e) => break Err(e.to_string()),
        }
    };
    drop(decoder);
    let head = match head {
        Ok(head) => head,
        Err(e) => {
            tracing::error!("WSGI1104: group '{name}': refused a connection: {e}");
            return None;
        }
    };
    if !group.accepts_secret(&head.secret) {
        tracing::error!(
            "WSGI1105: group '{name}': refused a request without this server's secret (another local process tried to talk to the daemon socket?)"
        );
        send_frame(
            &connection.stream,
            &Frame::Error(ErrorKind::Refused, "bad secret".into()),
        );
        return None;
    }
    Some(Job { connection, head })
}
