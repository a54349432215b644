//! Free 127.0.0.1 ports for servers the tests start (Apache, redis-server).
//!
//! Ports come from below Linux's ephemeral range (32768 and up): a port asked of the
//! kernel with `bind(0)` and released can be taken, before the server binds it (or
//! while a server restarts on it), as the local port of an outgoing connection of a test
//! running beside it. A port is never handed out twice by one process.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};

const FIRST: u32 = 20_000;
const COUNT: u32 = 12_000;

/// A port nothing listens on now, distinct from every other this process got.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Processes that run at once (test binaries under nextest) start apart.
    let start = std::process::id() % 600 * 20;
    for _ in 0..COUNT {
        let port = (FIRST + (start + NEXT.fetch_add(1, Ordering::SeqCst)) % COUNT) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!(
        "no free 127.0.0.1 port between {FIRST} and {}",
        FIRST + COUNT
    );
}
