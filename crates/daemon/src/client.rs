//! The Apache-child side of daemon mode: take a kept-alive connection to the group's
//! socket or connect (retrying with bounded backoff), send the request head, and relay
//! body and response in both directions at once on the request thread, so an
//! application that writes before it reads cannot deadlock the proxy. A connection the
//! daemon ends with `EndKeepAlive` is kept for the next request.
#![forbid(unsafe_code)]

use super::group::DaemonGroup;
use crate::buffers::apply_buffer_option;
use crate::flush::FlushPolicy;
use crate::socket::{Polled, poll_fd, recv_with_fds, send_nowait};
use crate::wsgi::{BodyReader, ResponseSink, SinkError};
use mod_wsgi_store::Availability;
use mod_wsgi_wire::{self as wire, Decoder, ErrorKind, Frame, Kind, RequestHead, RunEnd};
use std::collections::VecDeque;
use std::io;
use std::os::fd::AsRawFd;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Largest frame accepted from a daemon (a response head with all its headers).
const MAX_RESPONSE_FRAME: usize = 4 * 1024 * 1024;
/// Most bytes one read moves in either direction; a response's body is relayed in
/// pieces of at most this size, however large the daemon's frames.
const READ_CHUNK: usize = 64 * 1024;
/// While waiting for more of the client's body, the relay tries a read this often even
/// when its socket stays quiet: the input filters' own deadlines (mod_reqtimeout's body
/// timeout and minimum rate) are checked on every read, not in the relay's poll.
const CLIENT_CHECK: Duration = Duration::from_secs(1);
/// While waiting for a daemon's answer, the relay looks this often whether the group
/// still has a process that can give one (see `refusal`).
const HEALTH_CHECK: Duration = Duration::from_secs(1);
/// A request sent whole in one write of at most this many bytes is taken whole by the
/// daemon's first read of a head (which reads at least this much), so a kept-alive
/// connection reset before any answer means the daemon never read it: the request has
/// not run and is sent again on a new connection. (A unix stream socket closed with
/// unread data resets its peer; one closed with nothing unread ends with EOF.)
const UNREAD_IF_RESET: usize = 4 * 1024;

/// The answer for a request to a group that has no process serving because its last
/// start failed; None while a process serves or the first ones are starting.
fn refusal(group: &DaemonGroup) -> Option<ProxyOutcome> {
    let name = &group.spec.name;
    match group.health.availability(super::process::process_exists) {
        Availability::Serving | Availability::Starting => None,
        Availability::ApplicationFailed { pid } => Some(ProxyOutcome::Failed {
            status: 500,
            message: format!(
                "daemon process group '{name}' has no process serving: process {pid} failed to load the application (its traceback is in the error log); it is tried again in the background and as soon as a file of the traceback changes"
            ),
        }),
        Availability::StartFailed { pid } => Some(ProxyOutcome::Failed {
            status: 503,
            message: format!(
                "daemon process group '{name}' has no process serving: process {pid} could not start (see the error log); it is tried again in the background"
            ),
        }),
    }
}

/// Buffers kept across requests (allocating and faulting in fresh ones per request
/// showed up in profiles), shared by the process's threads so that only as many exist
/// as requests were proxied at once, up to `MAX_SPARE_BUFFERS` kept.
struct Buffers {
    /// What the daemon sent, decoded in place: the body blocks of one read are joined
    /// in it and written from it.
    received: Vec<u8>,
    /// Request bytes on their way to the daemon.
    out: Vec<u8>,
}

static SPARE_BUFFERS: Mutex<Vec<Buffers>> = Mutex::new(Vec::new());
const MAX_SPARE_BUFFERS: usize = 8;

fn take_buffers() -> Buffers {
    let spare = SPARE_BUFFERS.lock().ok().and_then(|mut s| s.pop());
    spare.unwrap_or_else(|| Buffers {
        received: Vec::with_capacity(READ_CHUNK),
        out: Vec::new(),
    })
}

fn give_back_buffers(buffers: Buffers) {
    // A buffer grown by an unusually large frame (a huge response head) is not kept.
    let oversized = |b: &Vec<u8>| b.capacity() > 2 * READ_CHUNK;
    if [&buffers.received, &buffers.out].into_iter().any(oversized) {
        return;
    }
    if let Ok(mut spare) = SPARE_BUFFERS.lock()
        && spare.len() < MAX_SPARE_BUFFERS
    {
        spare.push(buffers);
    }
}

/// How a proxied request ended.
#[derive(Debug, PartialEq, Eq)]
pub enum ProxyOutcome {
    Complete,
    ClientGone,
    /// Nothing was sent to the client: answer with `status`, log `message`.
    Failed {
        status: u16,
        message: String,
    },
    /// WSGIErrorOverride: the application answered `status` (4xx/5xx); nothing was sent,
    /// so Apache serves its own error page for it.
    Overridden {
        status: u16,
    },
    /// The application raised; the daemon logged its traceback. Like embedded mode: 500
    /// if nothing was sent yet, else the response is aborted.
    AppFailed {
        headers_sent: bool,
    },
    /// The response had started: the connection must be aborted so the client sees it is
    /// incomplete.
    Aborted {
        message: String,
    },
}

enum Exchange {
    Done(ProxyOutcome),
    /// Complete, and the connection can carry the next request.
    Reusable(UnixStream),
    /// The daemon refused to start the request because it is restarting.
    Retry(String),
    /// A kept-alive connection was closed by its daemon before the request reached it
    /// (the first write failed): nothing was delivered, so sending it elsewhere is safe.
    Stale,
}

fn connect(
    group: &DaemonGroup,
    lane: Option<usize>,
    deadline: Instant,
) -> Result<UnixStream, String> {
    let path = group.socket_for(lane);
    let mut delay = Duration::from_millis(10);
    let started = Instant::now();
    loop {
        let err = match UnixStream::connect(path) {
            Ok(s) => {
                // The child's side bounds how much of a request body waits for the
                // daemon (SO_RCVBUF bounds nothing on a unix stream socket, and
                // mod_wsgi's, set on the daemon's listener, is not inherited).
                let bytes = group.spec.receive_buffer_size;
                apply_buffer_option(
                    s.as_raw_fd(),
                    bytes,
                    "receive-buffer-size",
                    &group.spec.name,
                );
                return Ok(s);
            }
            Err(e) => e,
        };
        let why = match err.raw_os_error() {
            Some(libc::ENOENT) => {
                "the socket does not exist (daemon group not started, or Apache restarted)"
            }
            Some(libc::ECONNREFUSED) => "connection refused (no daemon process is listening)",
            Some(libc::EAGAIN) => "the daemon's listen backlog is full",
            Some(libc::EACCES) | Some(libc::EPERM) => {
                return Err(format!(
                    "permission denied connecting to '{}' ({err}); check the WSGISocketPrefix directory permissions and socket-user",
                    path.display()
                ));
            }
            _ => {
                return Err(format!("cannot connect to '{}': {err}", path.display()));
            }
        };
        if Instant::now() + delay > deadline {
            return Err(format!(
                "unable to connect to daemon process group '{}' at '{}' within {:.1} s: {why} ({err})",
                group.spec.name,
                path.display(),
                started.elapsed().as_secs_f64()
            ));
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(500));
    }
}

/// Proxies one request to `group` (to one process slot's socket with session affinity).
pub fn proxy(
    group: &DaemonGroup,
    lane: Option<usize>,
    mut head: RequestHead,
    error_override: bool,
    body: &mut dyn BodyReader,
    sink: &mut dyn ResponseSink,
) -> ProxyOutcome {
    head.keep_alive = true;
    let mut transfer = Transfer {
        group,
        lane,
        body_state: BodyState {
            replayable: true,
            done: false,
            waiting: false,
            failed: false,
            pollable: None,
        },
        buffers: take_buffers(),
        body,
        sink,
        error_override,
    };
    // The first piece of body leaves with the head; for a request without a body that
    // is the end frame, so the whole request is one write.
    let out = &mut transfer.buffers.out;
    out.clear();
    wire::encode(&Frame::RequestHead(Box::new(head)), out);
    transfer.body_state.next_frame(transfer.body, out, true);
    let outcome = attempt_all(&mut transfer);
    give_back_buffers(transfer.buffers);
    outcome
}

/// One proxied request's state across connection attempts.
struct Transfer<'a> {
    group: &'a DaemonGroup,
    lane: Option<usize>,
    body_state: BodyState,
    buffers: Buffers,
    body: &'a mut dyn BodyReader,
    sink: &'a mut dyn ResponseSink,
    error_override: bool,
}

fn attempt_all(t: &mut Transfer<'_>) -> ProxyOutcome {
    let group = t.group;
    let deadline = Instant::now() + group.spec.connect_timeout;
    let max_attempts = 2 * group.spec.processes as usize + 2;
    let mut attempts = 0;
    loop {
        if let Some(refused) = refusal(group) {
            return refused;
        }
        let kept = group.idle.take(t.lane);
        let reused = kept.is_some();
        let stream = match kept.map_or_else(|| connect(group, t.lane, deadline), Ok) {
            Ok(s) => s,
            Err(message) => {
                return ProxyOutcome::Failed {
                    status: 503,
                    message,
                };
            }
        };
        // Stale kept connections are dropped as found; they do not count as attempts.
        attempts += usize::from(!reused);
        match exchange(t, stream, reused) {
            Exchange::Done(outcome) => return outcome,
            Exchange::Reusable(stream) => {
                group.idle.put(t.lane, stream);
                return ProxyOutcome::Complete;
            }
            Exchange::Stale if !reused && attempts >= max_attempts => {
                return ProxyOutcome::Failed {
                    status: 503,
                    message: format!(
                        "daemon process group '{}' handed the request back {attempts} times",
                        group.spec.name
                    ),
                };
            }
            Exchange::Stale => {}
            Exchange::Retry(why) if t.body_state.replayable && attempts < max_attempts => {
                tracing::debug!(
                    "daemon group '{}' asked for a retry: {why}",
                    group.spec.name
                );
            }
            Exchange::Retry(why) => {
                return ProxyOutcome::Failed {
                    status: 503,
                    message: format!(
                        "daemon process group '{}' could not take the request: {why}",
                        group.spec.name
                    ),
                };
            }
        }
    }
}

struct BodyState {
    /// Until the daemon sends Continue it can still refuse the request for a retry, and
    /// the rest of the body waits: the head and the body's first frame stay in the
    /// out buffer for a retry to resend.
    replayable: bool,
    done: bool,
    /// The client had no more body ready: the relay waits for its socket as well as for
    /// the daemon's, instead of blocking in a read while the daemon may be answering.
    waiting: bool,
    /// Reading the client's body failed after the bytes now on their way: the next frame
    /// aborts the body.
    failed: bool,
    /// Whether the body's transport can say when more is ready (`readable_fd`); asked
    /// once, and only for a body read without waiting (a GET never asks).
    pollable: Option<bool>,
}

impl BodyState {
    /// Reads what the client's body has ready and appends it, framed, to `out`: up to
    /// `READ_CHUNK` bytes, waiting for the first of them only with `wait` (or when the
    /// transport cannot tell whether any are ready). False when the client had none
    /// ready: nothing was appended, and `waiting` is set.
    fn next_frame(&mut self, body: &mut dyn BodyReader, out: &mut Vec<u8>, wait: bool) -> bool {
        // The body is read straight after a placeholder header, then the header is set.
        let start = out.len();
        out.extend_from_slice(&[0; wire::HEADER_LEN]);
        let first = if self.failed {
            Err(crate::wsgi::body_aborted())
        } else if wait || !self.pollable(body) {
            body.read_append(out, READ_CHUNK).map(Some)
        } else {
            body.read_append_now(out, READ_CHUNK)
        };
        let (kind, n) = match first {
            Ok(None) => {
                out.truncate(start);
                self.waiting = true;
                return false;
            }
            Ok(Some(0)) => (Kind::BodyEnd, 0),
            Ok(Some(mut n)) => {
                // What else has already arrived joins the frame (fewer, larger frames
                // for an upload); nothing more is waited for.
                while n < READ_CHUNK && self.pollable(body) {
                    match body.read_append_now(out, READ_CHUNK - n) {
                        Ok(Some(0) | None) => break,
                        Ok(Some(more)) => n += more,
                        Err(_) => {
                            self.failed = true;
                            break;
                        }
                    }
                }
                (Kind::Body, n)
            }
            Err(_) => (Kind::BodyAbort, 0),
        };
        if kind != Kind::Body {
            self.done = true;
        }
        out.truncate(start + wire::HEADER_LEN + n);
        out[start..start + wire::HEADER_LEN].copy_from_slice(&wire::frame_header(kind, n));
        true
    }

    fn pollable(&mut self, body: &dyn BodyReader) -> bool {
        *self
            .pollable
            .get_or_insert_with(|| body.readable_fd().is_some())
    }

    /// More of the body may be read and sent now.
    fn may_send_more(&self) -> bool {
        !self.done && !self.replayable
    }

    /// The daemon's Continue: the application is running and reading the body.
    fn continued(&mut self) {
        self.replayable = false;
    }
}

fn exchange(t: &mut Transfer<'_>, stream: UnixStream, reused: bool) -> Exchange {
    // The socket stays blocking with a read timeout: when there is nothing left to send,
    // the read itself waits for the daemon (no poll first); every other read and every
    // write is non-blocking (MSG_DONTWAIT).
    let read_timeout = t.group.socket_timeout.min(HEALTH_CHECK);
    if !reused && let Err(e) = stream.set_read_timeout(Some(read_timeout)) {
        return Exchange::Done(ProxyOutcome::Failed {
            status: 503,
            message: format!("cannot use daemon socket: {e}"),
        });
    }
    let received = std::mem::take(&mut t.buffers.received);
    let mut decoder = Decoder::with_buffer(MAX_RESPONSE_FRAME, received);
    let mut response = Response {
        sink: &mut *t.sink,
        name: &t.group.spec.name,
        error_override: t.error_override,
        head_limit: t.group.spec.header_buffer_size as usize,
        head_sent: false,
        keep_alive: false,
        fds: VecDeque::new(),
        flush: FlushPolicy::new(
            t.group.spec.response_flush_delay,
            t.group.spec.response_buffer_size,
        ),
    };
    let resend_if_reset = reused && t.body_state.done && t.buffers.out.len() <= UNREAD_IF_RESET;
    let mut relay = Relay {
        group: t.group,
        body_state: &mut t.body_state,
        body: &mut *t.body,
        out: &mut t.buffers.out,
        out_pos: 0,
        peer_reading: true,
        client_deadline: None,
        heard: false,
        waiting_since: None,
        resend_if_reset,
    };
    let end = relay.run(&stream, &mut decoder, &mut response);
    t.buffers.received = decoder.into_buffer();
    match end {
        Exchange::Done(ProxyOutcome::Complete) if response.keep_alive => Exchange::Reusable(stream),
        end => end,
    }
}

/// The request side of one exchange: what is still to be sent to the daemon.
struct Relay<'a> {
    group: &'a DaemonGroup,
    body_state: &'a mut BodyState,
    body: &'a mut dyn BodyReader,
    /// The request bytes on their way: first the head with the body's first frame
    /// (kept until the daemon continues, for a retry), then each further body frame.
    out: &'a mut Vec<u8>,
    out_pos: usize,
    peer_reading: bool,
    /// When the wait for more of the client's body, which its socket has not ended,
    /// runs out (Apache's Timeout after it began).
    client_deadline: Option<Instant>,
    /// Whether the daemon has sent anything on this exchange.
    heard: bool,
    /// Since when a blocking read has waited for the daemon without news (the read
    /// timeout is a slice of socket-timeout, see `HEALTH_CHECK`).
    waiting_since: Option<Instant>,
    /// A reset before any answer proves the request unread (see `UNREAD_IF_RESET`).
    resend_if_reset: bool,
}

impl Relay<'_> {
    /// Sends the request and relays the response until it ends. `Complete` with the
    /// response's `keep_alive` set means the connection carried nothing else.
    fn run(
        &mut self,
        stream: &UnixStream,
        decoder: &mut Decoder,
        response: &mut Response<'_>,
    ) -> Exchange {
        let group = self.group;
        let name = &group.spec.name;
        let fd = stream.as_raw_fd();
        // A fresh or idle connection has room for the head: the first round writes it
        // without polling.
        let mut fresh = true;
        loop {
            let first = std::mem::take(&mut fresh);
            let more_body = self.peer_reading && self.body_state.may_send_more();
            let drained = self.out_pos == self.out.len();
            let want_write =
                self.peer_reading && (!drained || (more_body && !self.body_state.waiting));
            let client_fd = if more_body && drained && self.body_state.waiting {
                self.body.readable_fd()
            } else {
                None
            };
            let deadline = client_fd.map(|(_, timeout)| {
                *self
                    .client_deadline
                    .get_or_insert_with(|| Instant::now() + timeout)
            });
            let wait_for = deadline.map_or(group.socket_timeout, |d| {
                d.saturating_duration_since(Instant::now())
                    .min(CLIENT_CHECK)
            });
            // With nothing pending and more of the body ready to go, the next frame is
            // sent without asking first: poll reports a unix socket writable only while
            // less than a quarter of its send buffer is queued, so asking after every
            // frame of an upload would wait for the daemon to drain each one (a sleep
            // and a wake-up on both sides per frame). A send that finds no room leaves
            // bytes pending, and the next round polls for room and for the daemon.
            let send_unasked = want_write && drained;
            // Body went down unflushed: the daemon is waited for only until the flush
            // is due (response-flush-delay).
            let linger = response.flush.wait();
            let polled = if first || send_unasked {
                Ok(Polled {
                    writable: true,
                    ..Polled::default()
                })
            } else if let Some(left) = linger {
                poll_fd(
                    fd,
                    want_write,
                    client_fd.map(|(c, _)| c),
                    left.min(wait_for),
                )
            } else if !want_write && client_fd.is_none() {
                Ok(Polled {
                    readable: true,
                    ..Polled::default()
                })
            } else {
                poll_fd(fd, want_write, client_fd.map(|(c, _)| c), wait_for)
            };
            let Polled {
                readable,
                writable,
                other_readable: client_ready,
            } = match polled {
                Ok(p) => p,
                Err(e) => {
                    return Exchange::Done(ProxyOutcome::Failed {
                        status: 502,
                        message: format!("poll on daemon socket failed: {e}"),
                    });
                }
            };
            let quiet = !readable && !writable && !client_ready;
            // The daemon stayed quiet for the flush delay: what went down leaves now.
            let lingered = quiet && linger.is_some_and(|left| left <= wait_for);
            if !readable && (lingered || response.flush.due()) {
                if let Some(end) = response.flush() {
                    return end;
                }
                if quiet {
                    continue;
                }
            }
            let timed_out = || {
                if let Some((_, timeout)) = client_fd {
                    let message = format!(
                        "timeout after {} s waiting for more of the request body from the \
                         client (daemon process group '{name}')",
                        timeout.as_secs()
                    );
                    return broken(response.head_sent, 408, message);
                }
                let secs = group.socket_timeout.as_secs();
                let message =
                    format!("timeout after {secs} s waiting for daemon process group '{name}'");
                broken(response.head_sent, 504, message)
            };
            // A quiet slice of the wait for the client: try a read anyway (see CLIENT_CHECK).
            let client_due = quiet && deadline.is_some_and(|d| Instant::now() < d);
            if quiet && !client_due {
                return timed_out();
            }
            if client_ready || client_due {
                self.body_state.waiting = false;
            }
            if readable {
                let wait = !want_write && client_fd.is_none();
                let fds = &mut response.fds;
                let read = decoder.receive(READ_CHUNK, |buf| {
                    recv_with_fds(fd, buf, READ_CHUNK, fds, wait)
                });
                match read {
                    Ok(0) => return daemon_closed(name, response.head_sent),
                    Err(e) if wait && e.kind() == io::ErrorKind::WouldBlock => {
                        let since = *self.waiting_since.get_or_insert_with(Instant::now);
                        // Nothing came yet: the process that took the request, or the
                        // one it waits in the backlog for, may have failed to start.
                        if !self.heard
                            && let Some(refused) = refusal(group)
                        {
                            return Exchange::Done(refused);
                        }
                        // `since` is the end of the first slice: a further slice
                        // still fits in socket-timeout?
                        let slice = HEALTH_CHECK.min(group.socket_timeout);
                        if since.elapsed() + 2 * slice <= group.socket_timeout {
                            continue;
                        }
                        return timed_out();
                    }
                    // A daemon killed with bytes it never read resets the connection.
                    Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                        if self.resend_if_reset && !self.heard {
                            tracing::debug!(
                                "a kept-alive connection to daemon process group '{name}' was reset with the request unread; sending it again"
                            );
                            return Exchange::Stale;
                        }
                        return daemon_closed(name, response.head_sent);
                    }
                    Ok(_) => {
                        self.heard = true;
                        self.waiting_since = None;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let message =
                            format!("reading from daemon process group '{name}' failed: {e}");
                        return broken(response.head_sent, 502, message);
                    }
                }
                if let Some(end) = self.take_response(decoder, response) {
                    return end;
                }
            }
            if (writable || client_ready || client_due)
                && self.peer_reading
                // A first write that finds the daemon's side shut (a kept connection it
                // retired, or a new one a closing process took and handed back) delivered
                // nothing: the request goes elsewhere.
                && let Some(stale) = self.send_more(fd, first)
            {
                return stale;
            }
            if !self.body_state.waiting {
                // The client sent more (or was not being waited for): Timeout starts over.
                self.client_deadline = None;
            }
        }
    }

    /// Applies every decoded item to the response; `Some` ends the exchange.
    fn take_response(
        &mut self,
        decoder: &mut Decoder,
        response: &mut Response<'_>,
    ) -> Option<Exchange> {
        loop {
            let run = match decoder.next_run() {
                Ok(run) => run,
                Err(e) => {
                    let name = response.name;
                    let message = format!("bad response from daemon process group '{name}': {e}");
                    return Some(broken(response.head_sent, 502, message));
                }
            };
            // The body blocks of one read, joined, go down in one write: a streaming
            // app's small blocks are not passed one by one. With the end of the
            // response they are flushed at once; otherwise when the daemon goes quiet
            // (see `FlushPolicy`).
            let last = matches!(run.end, RunEnd::Frame(Frame::End | Frame::EndKeepAlive));
            if !run.data.is_empty()
                && let Some(end) = response.on_data(run.data, last)
            {
                return Some(end);
            }
            let end = match run.end {
                RunEnd::NeedMore => return None,
                RunEnd::Frame(frame) => response.on_frame(frame, self.body_state),
                RunEnd::Body => response.protocol("a request body frame"),
            };
            if let Some(end) = end {
                // Kept only if the connection carries nothing more in either direction.
                response.keep_alive &= decoder.buffered() == 0
                    && response.fds.is_empty()
                    && self.body_state.done
                    && self.out_pos == self.out.len();
                return Some(end);
            }
        }
    }

    /// Writes what the socket takes of the request; `Some(Stale)` if the first write on a
    /// reused connection found it closed by its daemon.
    fn send_more(&mut self, fd: std::os::fd::RawFd, may_be_stale: bool) -> Option<Exchange> {
        if self.out_pos == self.out.len() && self.body_state.may_send_more() {
            self.out.clear();
            self.out_pos = 0;
            self.body_state.next_frame(&mut *self.body, self.out, false);
        }
        if self.out_pos == self.out.len() {
            return None;
        }
        match send_nowait(fd, &self.out[self.out_pos..]) {
            Err(e)
                if may_be_stale
                    && matches!(
                        e.kind(),
                        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                    ) =>
            {
                return Some(Exchange::Stale);
            }
            Ok(n) => self.out_pos += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // The daemon stopped reading (it answered without consuming the body, or it
            // died); what it sends back decides the outcome.
            Err(_) => self.peer_reading = false,
        }
        None
    }
}

/// The response side of one exchange: frames from the daemon applied to the sink.
struct Response<'a> {
    sink: &'a mut dyn ResponseSink,
    name: &'a str,
    error_override: bool,
    /// header-buffer-size: the longest response header line ("Name: value") taken.
    head_limit: usize,
    head_sent: bool,
    /// The daemon ended the response with `EndKeepAlive`.
    keep_alive: bool,
    /// Descriptors of files the daemon passed, in the order of their File frames.
    fds: VecDeque<OwnedFd>,
    /// When body passed down is flushed (response-flush-delay, response-buffer-size).
    flush: FlushPolicy,
}

/// Maps a sink call's result; `Some` ends the exchange.
fn sunk(result: Result<(), SinkError>) -> Option<Exchange> {
    match result {
        Ok(()) => None,
        Err(SinkError::ClientGone) => Some(Exchange::Done(ProxyOutcome::ClientGone)),
        Err(SinkError::Failed(message)) => Some(Exchange::Done(ProxyOutcome::Aborted { message })),
    }
}

impl Response<'_> {
    /// The daemon broke the protocol. After the head a 502 can no longer be sent: the
    /// response is aborted instead.
    fn protocol(&self, what: &str) -> Option<Exchange> {
        let message = format!("daemon process group '{}' sent {what}", self.name);
        Some(broken(self.head_sent, 502, message))
    }

    /// Passes body bytes on to the client, flushed with `last` (the end of the response
    /// came with them) or when more than response-buffer-size went unflushed; `Some`
    /// ends the exchange.
    fn on_data(&mut self, data: &[u8], last: bool) -> Option<Exchange> {
        if !self.head_sent {
            return self.protocol("body data before the response head");
        }
        if last {
            self.flush.flushed();
            return sunk(self.sink.write(data));
        }
        let result = self.sink.write_unflushed(data);
        if result.is_ok() && self.flush.passed(data.len()) {
            return self.flush();
        }
        sunk(result)
    }

    /// Flushes what went down unflushed; `Some` ends the exchange.
    fn flush(&mut self) -> Option<Exchange> {
        self.flush.flushed();
        sunk(self.sink.flush())
    }

    /// The response is complete: what went down unflushed leaves now.
    fn complete(&mut self) -> Option<Exchange> {
        if self.flush.pending()
            && let Some(end) = self.flush()
        {
            return Some(end);
        }
        Some(Exchange::Done(ProxyOutcome::Complete))
    }

    /// Applies one frame from the daemon; `Some` ends the exchange.
    fn on_frame(&mut self, frame: Frame, body_state: &mut BodyState) -> Option<Exchange> {
        if let Frame::Continue = frame {
            body_state.continued();
            return None;
        }
        let name = self.name;
        let done = |o| Some(Exchange::Done(o));
        let protocol = |what: &str| self.protocol(what);
        match frame {
            Frame::ResponseHead(h) if !self.head_sent && self.error_override && h.status >= 400 => {
                done(ProxyOutcome::Overridden { status: h.status })
            }
            Frame::ResponseHead(h) if !self.head_sent => {
                // As mod_wsgi: each header line ("Name: value") must fit the buffer.
                if let Some((name, value)) = h
                    .headers
                    .iter()
                    .find(|(name, value)| name.len() + 2 + value.len() > self.head_limit)
                {
                    let message = format!(
                        "daemon process group '{name_of_group}': the application's response header {name} is {} bytes, more than header-buffer-size={}; raise it or send a shorter header",
                        name.len() + 2 + value.len(),
                        self.head_limit,
                        name_of_group = self.name,
                    );
                    return Some(broken(false, 500, message));
                }
                // The daemon's core refuses these already; a head that still carries
                // one (a hop-by-hop header, CR/LF in a value) did not come from it.
                if let Some(e) = h
                    .headers
                    .iter()
                    .find_map(|(name, value)| mod_wsgi_http::validate_header(name, value).err())
                {
                    return protocol(&format!("a response head it must not send: {e}"));
                }
                self.head_sent = true;
                let head = mod_wsgi_http::ResponseHead {
                    code: h.status,
                    status_line: h.status_line,
                };
                sunk(self.sink.send_head(&head, &h.headers))
            }
            Frame::ResponseHead(_) => protocol("a second response head"),
            Frame::Data(_) => protocol("body data before the response head"),
            Frame::File { offset, len } if self.head_sent => {
                let Some(fd) = self.fds.pop_front() else {
                    let message = format!(
                        "daemon process group '{name}' sent a file frame without its descriptor"
                    );
                    return Some(broken(true, 502, message));
                };
                sunk(self.sink.send_file(fd.as_raw_fd(), offset, len))
            }
            Frame::End if self.head_sent => self.complete(),
            Frame::EndKeepAlive if self.head_sent => {
                self.keep_alive = true;
                self.complete()
            }
            Frame::End | Frame::EndKeepAlive => {
                protocol("an end of response without a response head")
            }
            Frame::Error(ErrorKind::Application, _) => done(ProxyOutcome::AppFailed {
                headers_sent: self.head_sent,
            }),
            Frame::Error(kind, message) => {
                let message = format!("daemon process group '{name}': {message}");
                if self.head_sent {
                    return done(ProxyOutcome::Aborted { message });
                }
                let status = match kind {
                    ErrorKind::Restarting => return Some(Exchange::Retry(message)),
                    // Waited too long for a free daemon thread: overload or a restart,
                    // which a client may retry (503 carries Retry-After).
                    ErrorKind::QueueTimeout => 503,
                    ErrorKind::RequestTimeout => 504,
                    ErrorKind::Application | ErrorKind::Refused => 500,
                };
                done(ProxyOutcome::Failed { status, message })
            }
            other => protocol(&format!("an unexpected {:?} frame", other.kind())),
        }
    }
}

fn daemon_closed(name: &str, head_sent: bool) -> Exchange {
    let message = format!(
        "daemon process of group '{name}' closed the connection {} (did it crash or exit?)",
        if head_sent {
            "in the middle of the response"
        } else {
            "before sending a response"
        }
    );
    broken(head_sent, 502, message)
}

/// The exchange failed: before the response head the client gets `status`, after it the
/// response is aborted.
fn broken(head_sent: bool, status: u16, message: String) -> Exchange {
    Exchange::Done(if head_sent {
        ProxyOutcome::Aborted { message }
    } else {
        ProxyOutcome::Failed { status, message }
    })
}
