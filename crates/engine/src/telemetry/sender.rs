//! The reporter's socket: an unbound AF_UNIX datagram socket, non-blocking, sending to
//! the ingester's path. A datagram that cannot be sent (no ingester, or one not keeping
//! up) is dropped at once, never queued: requests never wait for telemetry and memory
//! does not grow. The first failure is logged with what to do, then nothing until
//! sending works again, which is logged with the count of datagrams lost.

use std::io::ErrorKind;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::Mutex;

pub struct Sender {
    socket: UnixDatagram,
    target: PathBuf,
    /// Datagrams dropped since sending last worked; Some while failing.
    failing: Mutex<Option<u64>>,
}

/// The longest path a `sockaddr_un` holds, its NUL excluded.
const MAX_PATH: usize = 107;

impl Sender {
    pub fn open(target: &str) -> std::io::Result<Sender> {
        if target.len() > MAX_PATH {
            return Err(std::io::Error::new(
                ErrorKind::InvalidInput,
                format!("the socket path is longer than {MAX_PATH} bytes"),
            ));
        }
        let socket = UnixDatagram::unbound()?;
        socket.set_nonblocking(true)?;
        Ok(Sender {
            socket,
            target: PathBuf::from(target),
            failing: Mutex::new(None),
        })
    }

    pub fn send(&self, datagram: &[u8]) {
        let result = self.socket.send_to(datagram, &self.target);
        let mut failing = self.failing.lock().unwrap_or_else(|p| p.into_inner());
        match (result, failing.as_mut()) {
            (Ok(_), None) => {}
            (Ok(_), Some(dropped)) => {
                tracing::info!(
                    "WSGI1161: telemetry to '{}' is sent again; {dropped} datagrams were dropped meanwhile",
                    self.target.display()
                );
                *failing = None;
            }
            (Err(_), Some(dropped)) => *dropped += 1,
            (Err(e), None) => {
                tracing::warn!(
                    "WSGI1160: telemetry datagrams to '{}' are dropped: {}; requests are not affected, and this is logged again only once sending works",
                    self.target.display(),
                    advice(&e)
                );
                *failing = Some(1);
            }
        }
    }
}

fn advice(e: &std::io::Error) -> String {
    match e.kind() {
        ErrorKind::NotFound => {
            "no socket there: start the ingester (mod_wsgi-telemetry serve --listen unix:PATH)"
                .to_owned()
        }
        ErrorKind::ConnectionRefused => {
            "nothing listens on the socket: the ingester stopped; start it again".to_owned()
        }
        ErrorKind::WouldBlock => {
            "the ingester is not keeping up (its socket buffer is full)".to_owned()
        }
        ErrorKind::PermissionDenied => format!(
            "this process (uid {}) may not write to the socket: give it write permission (the ingester's --socket-group/--socket-mode)",
            std::fs::metadata("/proc/self")
                .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
                .unwrap_or(0)
        ),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_arrive_and_a_missing_or_full_ingester_never_blocks() {
        let dir = std::env::temp_dir().join(format!("telemetry-sender-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.sock");
        let sender = Sender::open(path.to_str().unwrap()).unwrap();
        sender.send(b"lost");
        assert_eq!(*sender.failing.lock().unwrap(), Some(1));
        let ingester = UnixDatagram::bind(&path).unwrap();
        sender.send(b"hello");
        assert_eq!(*sender.failing.lock().unwrap(), None);
        let mut buf = [0u8; 16];
        let n = ingester.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello");
        // Nobody reads: the socket's queue fills and sends fail at once, never wait.
        let started = std::time::Instant::now();
        for _ in 0..10_000 {
            sender.send(&[0u8; 1024]);
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert!(sender.failing.lock().unwrap().is_some_and(|n| n > 0));
        assert!(Sender::open(&"/x".repeat(60)).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
