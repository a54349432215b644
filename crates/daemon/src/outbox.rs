//! A worker's outbox for streamed responses: small body blocks are queued and a helper
//! thread sends whatever is queued as soon as it can, so the blocks an application yields
//! while a send is in flight leave together, as one Data frame and one write. No block
//! waits for the application (PEP 3333 forbids that): the helper keeps transmitting while
//! the application produces its next block. The queue is bounded: an application that
//! outruns its client waits once `QUEUE_LIMIT` bytes are queued.
#![forbid(unsafe_code)]

use mod_wsgi_wire::{self as wire, Kind, MAX_BODY_FRAME};
use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// Queued bytes at which the application waits for the helper to take them.
const QUEUE_LIMIT: usize = 16 * 1024;
/// The helper keeps a send buffer up to this size between bursts.
const KEEP_CAPACITY: usize = 2 * QUEUE_LIMIT;
/// The helper's stack: it only writes to a socket.
const HELPER_STACK: usize = 128 * 1024;

struct State {
    /// The connection of the response being sent (one request at a time per worker).
    stream: Option<Arc<UnixStream>>,
    queued: Vec<u8>,
    /// Offset and payload length of the last Data frame in `queued`: the next block is
    /// appended to it rather than given a header of its own.
    open_frame: Option<(usize, usize)>,
    /// The helper took bytes off the queue and is writing them.
    sending: bool,
    helper_waiting: bool,
    owner_waiting: bool,
    /// A send failed: what was queued is dropped and nothing more is taken until the
    /// owner learns of it from `drain`.
    failed: Option<io::ErrorKind>,
    helper: Option<JoinHandle<()>>,
    /// The helper thread could not be started: blocks are sent by their worker.
    helper_unavailable: bool,
    stop: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the helper: something was queued, or stop.
    work: Condvar,
    /// Wakes the owner: the helper took the queue or finished a send.
    progress: Condvar,
    /// The helper thread's name.
    name: String,
}

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared.state.lock().unwrap_or_else(|p| p.into_inner())
}

/// Owned by one worker thread; stops its helper thread when dropped.
pub struct Outbox {
    shared: Arc<Shared>,
}

/// The handle a response sink queues through (its worker's outbox).
#[derive(Clone)]
pub struct OutboxHandle {
    shared: Arc<Shared>,
}

impl Outbox {
    pub fn new(name: String) -> Outbox {
        Outbox {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    stream: None,
                    queued: Vec::new(),
                    open_frame: None,
                    sending: false,
                    helper_waiting: false,
                    owner_waiting: false,
                    failed: None,
                    helper: None,
                    helper_unavailable: false,
                    stop: false,
                }),
                work: Condvar::new(),
                progress: Condvar::new(),
                name,
            }),
        }
    }

    pub fn handle(&self) -> OutboxHandle {
        OutboxHandle {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        let helper = {
            let mut state = lock(&self.shared);
            state.stop = true;
            state.helper.take()
        };
        self.shared.work.notify_all();
        if let Some(helper) = helper {
            let _ = helper.join();
        }
    }
}

/// Why a block was not queued.
pub enum QueueError {
    /// An earlier send failed: the client is gone or stopped reading.
    Failed,
    /// No helper thread could be started; the caller sends the block itself.
    NoHelper,
}

impl OutboxHandle {
    /// Queues `data` as Data frames on `stream`, waking the helper if it sleeps; waits
    /// while `QUEUE_LIMIT` bytes or more are queued.
    pub fn queue(&self, stream: &Arc<UnixStream>, data: &[u8]) -> Result<(), QueueError> {
        let mut state = lock(&self.shared);
        if state.failed.is_some() {
            return Err(QueueError::Failed);
        }
        if state.helper_unavailable {
            return Err(QueueError::NoHelper);
        }
        if state.helper.is_none() {
            match self.start_helper() {
                Ok(helper) => state.helper = Some(helper),
                Err(e) => {
                    state.helper_unavailable = true;
                    tracing::warn!(
                        "WSGI1114: cannot start a thread to send streamed responses ({e}); this worker sends each block itself"
                    );
                    return Err(QueueError::NoHelper);
                }
            }
        }
        if state.stream.is_none() {
            state.stream = Some(stream.clone());
        }
        append_data(&mut state, data);
        if state.helper_waiting {
            state.helper_waiting = false;
            self.shared.work.notify_one();
        }
        let state = self.wait_while(state, |s| {
            s.queued.len() >= QUEUE_LIMIT && s.failed.is_none()
        });
        if state.failed.is_some() {
            // What was queued, this block included, was dropped with the failed send.
            return Err(QueueError::Failed);
        }
        Ok(())
    }

    /// Waits until everything queued was sent; reports (and forgets) a failed send.
    pub fn drain(&self) -> io::Result<()> {
        let state = lock(&self.shared);
        let mut state = self.wait_while(state, |s| !s.queued.is_empty() || s.sending);
        state.stream = None;
        match state.failed.take() {
            Some(kind) => Err(kind.into()),
            None => Ok(()),
        }
    }

    /// Waits for the helper's progress while `busy` holds.
    fn wait_while<'a>(
        &self,
        mut state: MutexGuard<'a, State>,
        busy: impl Fn(&State) -> bool,
    ) -> MutexGuard<'a, State> {
        while busy(&state) {
            state.owner_waiting = true;
            state = self
                .shared
                .progress
                .wait(state)
                .unwrap_or_else(|p| p.into_inner());
        }
        state
    }

    fn start_helper(&self) -> io::Result<JoinHandle<()>> {
        let shared = self.shared.clone();
        std::thread::Builder::new()
            .name(self.shared.name.clone())
            .stack_size(HELPER_STACK)
            .spawn(move || send_queued(&shared))
    }
}

/// Appends `data` to the queue, extending the open Data frame while it has room.
fn append_data(state: &mut State, mut data: &[u8]) {
    while !data.is_empty() {
        let (at, len) = match state.open_frame {
            Some((at, len)) if len < MAX_BODY_FRAME => (at, len),
            _ => {
                let at = state.queued.len();
                state
                    .queued
                    .extend_from_slice(&wire::frame_header(Kind::Data, 0));
                (at, 0)
            }
        };
        let take = data.len().min(MAX_BODY_FRAME - len);
        state.queued.extend_from_slice(&data[..take]);
        let len = len + take;
        state.queued[at..at + wire::HEADER_LEN]
            .copy_from_slice(&wire::frame_header(Kind::Data, len));
        state.open_frame = Some((at, len));
        data = &data[take..];
    }
}

/// The helper thread: takes the whole queue, writes it, repeats; sleeps when it is empty.
fn send_queued(shared: &Shared) {
    let mut sending = Vec::new();
    let mut state = lock(shared);
    loop {
        while state.queued.is_empty() {
            if state.stop {
                return;
            }
            state.helper_waiting = true;
            state = shared.work.wait(state).unwrap_or_else(|p| p.into_inner());
            state.helper_waiting = false;
        }
        std::mem::swap(&mut state.queued, &mut sending);
        state.open_frame = None;
        state.sending = true;
        let stream = state.stream.clone();
        wake_owner(shared, &mut state);
        drop(state);
        let result = match &stream {
            Some(stream) => (&**stream).write_all(&sending),
            None => Ok(()),
        };
        sending.clear();
        if sending.capacity() > KEEP_CAPACITY {
            sending = Vec::new();
        }
        state = lock(shared);
        state.sending = false;
        if let Err(e) = result {
            state.failed.get_or_insert(e.kind());
            state.queued.clear();
            state.open_frame = None;
        }
        wake_owner(shared, &mut state);
    }
}

fn wake_owner(shared: &Shared, state: &mut State) {
    if state.owner_waiting {
        state.owner_waiting = false;
        shared.progress.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mod_wsgi_wire::{Decoder, Frame};
    use std::io::Read;

    /// The Data payloads read until the writer closed, joined, and how many frames.
    fn read_all_data(mut reader: UnixStream) -> (Vec<u8>, usize) {
        let mut raw = Vec::new();
        reader.read_to_end(&mut raw).unwrap();
        let mut decoder = Decoder::new(MAX_BODY_FRAME);
        decoder.push(&raw);
        let (mut body, mut frames) = (Vec::new(), 0);
        while let Some(frame) = decoder.next_frame().unwrap() {
            match frame {
                Frame::Data(piece) => body.extend_from_slice(&piece),
                other => panic!("unexpected {other:?}"),
            }
            frames += 1;
        }
        assert_eq!(decoder.buffered(), 0);
        (body, frames)
    }

    #[test]
    fn queued_blocks_arrive_in_order_and_join_frames() {
        let (writer, reader) = UnixStream::pair().unwrap();
        let writer = Arc::new(writer);
        let reading = std::thread::spawn(move || read_all_data(reader));
        let outbox = Outbox::new("test".to_owned());
        let handle = outbox.handle();
        let mut expected = Vec::new();
        for i in 0..5000u32 {
            let block = i.to_be_bytes().repeat(1 + (i % 7) as usize);
            expected.extend_from_slice(&block);
            assert!(handle.queue(&writer, &block).is_ok());
        }
        handle.drain().unwrap();
        drop(outbox);
        drop(writer);
        let (body, frames) = reading.join().unwrap();
        assert_eq!(body, expected);
        assert!(frames < 5000, "{frames} frames for 5000 blocks");
    }

    #[test]
    fn a_failed_send_is_reported_once() {
        let (writer, reader) = UnixStream::pair().unwrap();
        drop(reader);
        let writer = Arc::new(writer);
        let outbox = Outbox::new("test".to_owned());
        let handle = outbox.handle();
        let _ = handle.queue(&writer, b"lost");
        assert!(handle.drain().is_err());
        assert!(handle.drain().is_ok());
    }
}
