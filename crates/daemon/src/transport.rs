//! The WSGI transport traits over a daemon connection: the body arrives as `Body` frames,
//! the response leaves as `ResponseHead`/`Data` frames and ends with `End`, or with
//! `EndKeepAlive` when the connection can carry the child's next request.

use super::outbox::{OutboxHandle, QueueError};
use crate::wsgi::{BodyReader, ResponseSink, SinkError};
use mod_wsgi_http::ResponseHead;
use mod_wsgi_wire::{self as wire, Decoder, Frame, HEADER_LEN, Item, Kind, MAX_BODY_FRAME};
use std::io::{self, IoSlice, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Writes one frame; a failure means the Apache child went away, which the caller learns
/// anyway from its next read or write.
pub fn send_frame(mut stream: &UnixStream, frame: &Frame) {
    let mut out = Vec::new();
    wire::encode(frame, &mut out);
    let _ = stream.write_all(&out);
}

/// Whether the process can wait for another request on a connection just now.
pub type KeepAlivePolicy = Arc<dyn Fn() -> bool + Send + Sync>;

/// How one request's response ends, shared by its body reader, its sink and the worker:
/// the connection is kept for the child's next request only if the child offered it,
/// the whole body was read with nothing after it, and the process has room.
pub struct Ending {
    offered: bool,
    policy: KeepAlivePolicy,
    body_complete: AtomicBool,
    ended: AtomicBool,
    kept: AtomicBool,
}

impl Ending {
    pub fn new(offered: bool, policy: KeepAlivePolicy) -> Arc<Ending> {
        Arc::new(Ending {
            offered,
            policy,
            body_complete: AtomicBool::new(false),
            ended: AtomicBool::new(false),
            kept: AtomicBool::new(false),
        })
    }

    /// The frame that ends the response now; decides whether the connection is kept.
    pub fn end_frame(&self) -> Kind {
        if self.offered && self.body_complete.load(Ordering::Acquire) && (self.policy)() {
            self.kept.store(true, Ordering::Release);
            Kind::EndKeepAlive
        } else {
            Kind::End
        }
    }

    /// The end frame went out with the last body block.
    pub fn ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// The end frame told the child that the connection stays open.
    pub fn kept(&self) -> bool {
        self.kept.load(Ordering::Acquire)
    }
}

/// What one decoding step of the body produced.
enum BodyStep {
    Copied(usize),
    End,
    NeedMore,
    Aborted,
    Unexpected(Kind),
    Bad(wire::WireError),
}

/// One request's body as the Apache child sends it (Body frames), copied piece by piece
/// into the application's reads, or received straight into them when none of it is
/// buffered.
pub struct DaemonBody {
    stream: Arc<UnixStream>,
    decoder: Arc<Mutex<Decoder>>,
    ending: Arc<Ending>,
    done: bool,
    continued: bool,
}

/// Most bytes one read of the body takes from the socket.
const BODY_READ: usize = 64 * 1024;
/// Reads at least this large receive straight into the application's memory; smaller
/// ones are served from the decoder's buffer (one syscall for many of them).
const DIRECT_READ_MIN: usize = 16 * 1024;

impl DaemonBody {
    /// A body whose end came with the request head (a GET) is complete at once.
    pub fn new(stream: Arc<UnixStream>, decoder: Arc<Mutex<Decoder>>, ending: Arc<Ending>) -> Self {
        let mut body = DaemonBody {
            stream,
            decoder,
            ending,
            done: false,
            continued: false,
        };
        let at_end = {
            let mut decoder = body.decoder();
            let at_end = decoder.next_kind() == Some(Kind::BodyEnd);
            if at_end {
                let _ = decoder.next_frame();
            }
            at_end.then(|| decoder.buffered() == 0)
        };
        if let Some(nothing_after) = at_end {
            body.reached_end(nothing_after);
        }
        body
    }

    fn decoder(&self) -> MutexGuard<'_, Decoder> {
        self.decoder.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn reached_end(&mut self, nothing_after: bool) {
        self.done = true;
        self.ending
            .body_complete
            .store(nothing_after, Ordering::Release);
    }

    /// Asks the child for the rest of the body, the first time the application wants
    /// more than came with the head.
    fn ask_for_more(&mut self) -> io::Result<()> {
        if !self.continued {
            self.continued = true;
            (&*self.stream).write_all(&wire::frame_header(Kind::Continue, 0))?;
        }
        Ok(())
    }

    /// Receives more of the body into the decoder, at most `limit` bytes.
    fn receive(&mut self, limit: usize) -> io::Result<()> {
        self.ask_for_more()?;
        let fd = self.stream.as_raw_fd();
        let n = self
            .decoder()
            .receive(limit, |buf| crate::socket::recv_append(fd, buf, limit))?;
        if n == 0 {
            return Err(closed_early());
        }
        Ok(())
    }

    /// Inside a Body frame with none of it buffered, receives its next bytes straight
    /// into `dest` (what follows them goes to the decoder): an upload's bytes are copied
    /// once, by the kernel, into the application's bytes object. `None` when not inside a
    /// Body frame's payload.
    fn receive_into(&mut self, dest: &mut [MaybeUninit<u8>]) -> io::Result<Option<usize>> {
        if !matches!(self.decoder().unbuffered_payload(), Some((Kind::Body, _))) {
            return Ok(None);
        }
        self.ask_for_more()?;
        let fd = self.stream.as_raw_fd();
        let (kept, appended) = self.decoder().receive_past(HEADER_LEN, |left, buf| {
            let first = left.min(dest.len());
            // Past the payload's end only the next frame's header: the payload after it
            // can come straight into `dest` as well.
            let header = if left > first { 0 } else { HEADER_LEN };
            crate::socket::recv_split(fd, &mut dest[..first], buf, header).map(|(k, _)| k)
        })?;
        if kept == 0 && appended == 0 {
            return Err(closed_early());
        }
        Ok(Some(kept))
    }

    /// Hands the next buffered piece of the body (at most `dest.len()` bytes) to `dest`.
    fn step(&self, dest: &mut Dest<'_>) -> BodyStep {
        match self.decoder().next_item(dest.len()) {
            Ok(Some(Item::Body(piece))) => {
                dest.copy(piece);
                BodyStep::Copied(piece.len())
            }
            Ok(Some(Item::Frame(Frame::BodyEnd))) => BodyStep::End,
            Ok(Some(Item::Frame(Frame::BodyAbort))) => BodyStep::Aborted,
            Ok(Some(Item::Frame(other))) => BodyStep::Unexpected(other.kind()),
            Ok(Some(Item::Data(_))) => BodyStep::Unexpected(Kind::Data),
            Ok(None) => BodyStep::NeedMore,
            Err(e) => BodyStep::Bad(e),
        }
    }

    /// Reads the next piece of the body into `dest`.
    fn read_into(&mut self, mut dest: Dest<'_>) -> io::Result<usize> {
        loop {
            if self.done || dest.len() == 0 {
                return Ok(0);
            }
            match self.step(&mut dest) {
                // An empty Body frame carries nothing; 0 would read as the end.
                BodyStep::Copied(0) => {}
                BodyStep::Copied(n) => return Ok(n),
                BodyStep::End => {
                    let nothing_after = self.decoder().buffered() == 0;
                    self.reached_end(nothing_after);
                }
                BodyStep::NeedMore => match &mut dest {
                    Dest::Uninit(buf) if buf.len() >= DIRECT_READ_MIN => {
                        match self.receive_into(buf)? {
                            Some(0) => {}
                            Some(n) => return Ok(n),
                            // Between frames, only the next header: a Body frame's payload
                            // can then come straight into `buf`.
                            None => {
                                let header = self.decoder().wanted().min(BODY_READ);
                                self.receive(header)?;
                            }
                        }
                    }
                    _ => self.receive(BODY_READ)?,
                },
                BodyStep::Aborted => {
                    self.done = true;
                    return Err(crate::wsgi::body_aborted());
                }
                BodyStep::Unexpected(kind) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("unexpected {kind:?} frame in the request body"),
                    ));
                }
                BodyStep::Bad(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
        }
    }
}

fn closed_early() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "Apache closed the connection before the end of the request body",
    )
}

/// Where a read of the body goes.
enum Dest<'a> {
    Init(&'a mut [u8]),
    Uninit(&'a mut [MaybeUninit<u8>]),
}

impl Dest<'_> {
    fn len(&self) -> usize {
        match self {
            Dest::Init(buf) => buf.len(),
            Dest::Uninit(buf) => buf.len(),
        }
    }

    fn copy(&mut self, piece: &[u8]) {
        match self {
            Dest::Init(buf) => buf[..piece.len()].copy_from_slice(piece),
            Dest::Uninit(buf) => {
                buf[..piece.len()].write_copy_of_slice(piece);
            }
        }
    }
}

impl BodyReader for DaemonBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_into(Dest::Init(buf))
    }

    fn read_uninit(&mut self, buf: &mut [MaybeUninit<u8>]) -> io::Result<usize> {
        self.read_into(Dest::Uninit(buf))
    }
}

/// Blocks from this size on are always written by the worker itself (no copy).
const QUEUE_BELOW: usize = 16 * 1024;

/// Response frames towards the Apache child. The response head is held back and leaves
/// with the first body block (one syscall for both); body blocks are never held back,
/// so streamed responses stream. The first block is written at once; later small
/// blocks go through the worker's outbox (see `outbox`), which sends what is queued
/// together while the application produces more. The block that completes the declared
/// Content-Length carries the End frame with it: the Apache child finishes the request
/// at once, before the application's close() runs. The WSGI core flushes the sink before
/// it reports the response complete; whatever is still held or queued after a failure is
/// sent when the sink is dropped, before `wsgi::run` returns.
pub struct DaemonSink {
    stream: Arc<UnixStream>,
    group: String,
    held: Vec<u8>,
    /// Body bytes still due under the declared Content-Length.
    remaining: Option<u64>,
    ending: Arc<Ending>,
    outbox: OutboxHandle,
    /// Some block of this response went through the outbox.
    queued_any: bool,
    /// A body block was written: the next small one is queued.
    streaming: bool,
}

impl DaemonSink {
    pub fn new(
        stream: Arc<UnixStream>,
        group: &str,
        ending: Arc<Ending>,
        outbox: OutboxHandle,
    ) -> Self {
        DaemonSink {
            stream,
            group: group.to_owned(),
            held: Vec::new(),
            remaining: None,
            ending,
            outbox,
            queued_any: false,
            streaming: false,
        }
    }

    /// Waits until the outbox sent what this response queued; everything written
    /// directly goes after it.
    fn drain_outbox(&mut self) -> io::Result<()> {
        if self.queued_any {
            self.queued_any = false;
            self.outbox.drain()?;
        }
        Ok(())
    }

    /// Writes the held bytes and then `parts` (at most three: a Data header, its payload,
    /// an end frame), with as few syscalls as the kernel allows.
    fn send(&mut self, parts: &[&[u8]]) -> io::Result<()> {
        self.drain_outbox()?;
        let held = std::mem::take(&mut self.held);
        let empty = IoSlice::new(&[]);
        let mut slices = [empty; 4];
        let mut count = 0;
        for part in std::iter::once(held.as_slice()).chain(parts.iter().copied()) {
            if !part.is_empty() {
                slices[count] = IoSlice::new(part);
                count += 1;
            }
        }
        let mut pending = &mut slices[..count];
        while !pending.is_empty() {
            match (&*self.stream).write_vectored(pending) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut pending, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Whether `len` more body bytes complete the declared Content-Length.
    fn completes(&self, len: u64) -> bool {
        self.remaining.is_some_and(|r| r <= len)
    }

    /// Accounts for `len` body bytes sent (with the end frame if `complete`).
    fn sent(&mut self, len: u64, complete: bool) {
        if let Some(r) = &mut self.remaining {
            *r = r.saturating_sub(len);
        }
        if complete {
            self.ending.ended.store(true, Ordering::Release);
        }
    }

    /// The end frame to send with a block of `len` bytes, if that block completes the
    /// response.
    fn end_with(&self, len: u64) -> Option<[u8; wire::HEADER_LEN]> {
        self.completes(len)
            .then(|| wire::frame_header(self.ending.end_frame(), 0))
    }

    fn data(&mut self, data: &[u8]) -> Result<(), SinkError> {
        if self.ending.ended() {
            return Ok(());
        }
        let end = self.end_with(data.len() as u64);
        let complete = end.is_some();
        if self.streaming && !complete && data.len() < QUEUE_BELOW {
            self.queue(data)?;
        } else {
            self.write_data(data, end)?;
            self.streaming = true;
        }
        self.sent(data.len() as u64, complete);
        Ok(())
    }

    fn queue(&mut self, data: &[u8]) -> Result<(), SinkError> {
        match self.outbox.queue(&self.stream, data) {
            Ok(()) => {
                self.queued_any = true;
                Ok(())
            }
            Err(QueueError::Failed) => Err(SinkError::ClientGone),
            Err(QueueError::NoHelper) => self.write_data(data, None),
        }
    }

    /// Writes `data` as Data frames, the last one followed by `end`.
    fn write_data(
        &mut self,
        data: &[u8],
        end: Option<[u8; wire::HEADER_LEN]>,
    ) -> Result<(), SinkError> {
        let mut chunks = data.chunks(MAX_BODY_FRAME).peekable();
        while let Some(chunk) = chunks.next() {
            let header = wire::frame_header(Kind::Data, chunk.len());
            let last = chunks.peek().is_none();
            let sent = match &end {
                Some(end) if last => self.send(&[&header, chunk, end]),
                _ => self.send(&[&header, chunk]),
            };
            if sent.is_err() {
                return Err(SinkError::ClientGone);
            }
        }
        Ok(())
    }

    fn pass_file(&mut self, fd: RawFd, offset: u64, len: u64) -> Result<(), PassError> {
        let mut frame = Vec::with_capacity(wire::HEADER_LEN + 16);
        wire::encode(&Frame::File { offset, len }, &mut frame);
        let end = self.end_with(len);
        let complete = end.is_some();
        let held = std::mem::take(&mut self.held);
        let parts: Vec<&[u8]> = [held.as_slice(), &frame, end.as_ref().map_or(&[], |e| e)]
            .into_iter()
            .filter(|p| !p.is_empty())
            .collect();
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let sent = match crate::socket::send_with_fd(self.stream.as_raw_fd(), &parts, fd) {
            Ok(n) => n,
            Err(e) => {
                self.held = held;
                return Err(PassError::NotSent(e));
            }
        };
        if sent < total {
            (&*self.stream)
                .write_all(&parts.concat()[sent..])
                .map_err(PassError::Sent)?;
        }
        self.sent(len, complete);
        Ok(())
    }
}

enum PassError {
    /// Nothing went out: the caller can fall back to copying.
    NotSent(io::Error),
    /// Part of the frames went out: the response is broken.
    Sent(io::Error),
}

impl Drop for DaemonSink {
    fn drop(&mut self) {
        // Only after a failure is anything left: the worker sends an error frame or
        // closes the connection either way.
        let _ = self.send(&[]);
    }
}

impl ResponseSink for DaemonSink {
    fn send_head(
        &mut self,
        head: &ResponseHead,
        headers: &[(String, String)],
    ) -> Result<(), SinkError> {
        wire::encode_response_head(head.code, &head.status_line, headers, &mut self.held);
        self.remaining = headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, value)| value.trim().parse().ok());
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> Result<(), SinkError> {
        self.data(data)
    }

    fn needs_flush(&self) -> bool {
        !self.held.is_empty() || self.queued_any
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.send(&[]).map_err(|_| SinkError::ClientGone)
    }

    /// The file itself goes to the Apache child (its descriptor passed with a File
    /// frame), which sends it with Apache's file buckets (sendfile): no copy through
    /// this process. Copying is the fallback if the descriptor cannot be passed.
    fn send_file(&mut self, fd: RawFd, offset: u64, len: u64) -> Result<(), SinkError> {
        if self.ending.ended() || len == 0 {
            return Ok(());
        }
        self.drain_outbox().map_err(|_| SinkError::ClientGone)?;
        match self.pass_file(fd, offset, len) {
            Ok(()) => return Ok(()),
            Err(PassError::Sent(e)) => {
                return Err(SinkError::Failed(format!("passing the file failed: {e}")));
            }
            Err(PassError::NotSent(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
                return Err(SinkError::ClientGone);
            }
            Err(PassError::NotSent(_)) => {}
        }
        let mut buf = vec![0u8; MAX_BODY_FRAME];
        let mut done = 0u64;
        while done < len {
            let want = (len - done).min(buf.len() as u64) as usize;
            let n = crate::socket::pread(fd, &mut buf[..want], offset + done)
                .map_err(|e| SinkError::Failed(format!("reading the file failed: {e}")))?;
            if n == 0 {
                return Err(SinkError::Failed(
                    "the file became shorter while it was being sent".to_owned(),
                ));
            }
            self.data(&buf[..n])?;
            done += n as u64;
        }
        Ok(())
    }

    fn log(&self, level: tracing::Level, message: &str) {
        let group = &self.group;
        match level {
            tracing::Level::ERROR => tracing::error!("[daemon {group}] {message}"),
            tracing::Level::WARN => tracing::warn!("[daemon {group}] {message}"),
            tracing::Level::INFO => tracing::info!("[daemon {group}] {message}"),
            _ => tracing::debug!("[daemon {group}] {message}"),
        }
    }

    fn log_critical(&self, message: &str) {
        let group = &self.group;
        tracing::error!(apache_crit = true, "[daemon {group}] {message}");
    }
}
