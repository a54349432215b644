//! An Apache child's idle connections to a daemon group's sockets, kept for its next
//! request after the daemon answered `EndKeepAlive` (one pool per socket: the group's
//! shared one and each session-affinity lane).
#![forbid(unsafe_code)]

use std::os::unix::net::UnixStream;
use std::sync::Mutex;

/// Idle connections kept per socket and Apache child; more are closed.
const MAX_IDLE: usize = 16;

pub struct IdleConnections {
    /// Index 0: the group's shared socket; 1 + i: lane i.
    sockets: Vec<Mutex<Vec<UnixStream>>>,
}

impl IdleConnections {
    pub fn new(lanes: usize) -> Self {
        IdleConnections {
            sockets: (0..=lanes).map(|_| Mutex::new(Vec::new())).collect(),
        }
    }

    fn pool(&self, lane: Option<usize>) -> Option<&Mutex<Vec<UnixStream>>> {
        self.sockets.get(lane.map_or(0, |l| l + 1))
    }

    /// The most recently used idle connection, if any.
    pub fn take(&self, lane: Option<usize>) -> Option<UnixStream> {
        self.pool(lane)?.lock().ok()?.pop()
    }

    /// Keeps `stream` for a later request, or closes it if enough are kept.
    pub fn put(&self, lane: Option<usize>, stream: UnixStream) {
        if let Some(Ok(mut idle)) = self.pool(lane).map(Mutex::lock)
            && idle.len() < MAX_IDLE
        {
            idle.push(stream);
        }
    }

    pub fn count(&self) -> usize {
        self.sockets
            .iter()
            .map(|s| s.lock().map_or(0, |v| v.len()))
            .sum()
    }
}

impl std::fmt::Debug for IdleConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdleConnections({})", self.count())
    }
}
