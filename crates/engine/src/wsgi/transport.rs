//! The two traits a transport implements to carry one WSGI request.

use mod_wsgi_http::ResponseHead;
use std::mem::MaybeUninit;
use std::os::fd::RawFd;

/// Why the response could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("client closed the connection")]
    ClientGone,
    #[error("{0}")]
    Failed(String),
}

/// What a transport reports when the client's body could not be read to its end.
pub fn body_aborted() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::ConnectionAborted,
        "error reading the request body (client went away, timed out or sent a malformed body)",
    )
}

/// The request body as the transport streams it.
pub trait BodyReader: Send {
    /// Reads into `buf`; `Ok(0)` is the end of the body.
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize>;

    /// Like `read`, into memory that need not be initialised (a new bytes object's
    /// buffer): the bytes it returns are written, nothing is zeroed first.
    fn read_uninit(&mut self, buf: &mut [MaybeUninit<u8>]) -> std::io::Result<usize>;

    /// Reads at most `max` bytes onto the end of `out` (a relay's outgoing buffer);
    /// `Ok(0)` is the end of the body. A transport that can read into the vector's spare
    /// capacity overrides this to save zero-filling it first.
    fn read_append(&mut self, out: &mut Vec<u8>, max: usize) -> std::io::Result<usize> {
        let start = out.len();
        out.resize(start + max, 0);
        let read = self.read(&mut out[start..]);
        out.truncate(start + *read.as_ref().unwrap_or(&0));
        read
    }

    /// Like `read_append`, without waiting for the client: `Ok(None)` when no body
    /// bytes are available now; the caller then waits for `readable_fd` and asks again.
    /// A transport that cannot tell reads as `read_append` does (the default).
    fn read_append_now(&mut self, out: &mut Vec<u8>, max: usize) -> std::io::Result<Option<usize>> {
        self.read_append(out, max).map(Some)
    }

    /// The descriptor that becomes readable when more of the body may be available,
    /// for a transport whose `read_append_now` can answer `Ok(None)`, and how long a
    /// blocking read would wait for it.
    fn readable_fd(&self) -> Option<(RawFd, std::time::Duration)> {
        None
    }
}

/// Where the response goes. Calls happen with the GIL released, except where a method
/// says otherwise.
pub trait ResponseSink: Send {
    fn send_head(
        &mut self,
        head: &ResponseHead,
        headers: &[(String, String)],
    ) -> Result<(), SinkError>;
    /// Writes and flushes one block of body.
    fn write(&mut self, data: &[u8]) -> Result<(), SinkError>;
    /// Passes one block of body on without flushing it: the transport may hold it until
    /// `flush` or the next `write`. A transport that cannot hold data writes and flushes
    /// it (the default).
    fn write_unflushed(&mut self, data: &[u8]) -> Result<(), SinkError> {
        self.write(data)
    }
    /// Whether `flush` has anything to send (asked with the GIL held, so that a
    /// response with nothing left to send does not release it for nothing).
    fn needs_flush(&self) -> bool {
        false
    }
    /// Sends whatever the transport still holds or queues; the response is complete
    /// only once this succeeded.
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
    /// Sends `len` bytes of the open file `fd` from `offset`; the fd is only borrowed for
    /// the call (the sink duplicates it if it needs it longer).
    fn send_file(&mut self, fd: RawFd, offset: u64, len: u64) -> Result<(), SinkError>;
    /// Logs a line attached to this request (client address etc.).
    fn log(&self, level: tracing::Level, message: &str);
    /// Logs a line attached to this request at Apache's `crit` level (`mod_wsgi.LogHandler`
    /// for Python's CRITICAL), where the transport has it; `error` otherwise.
    fn log_critical(&self, message: &str) {
        self.log(tracing::Level::ERROR, message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands over `data` at most `chunk` bytes per read, then fails if `fail_at_end`.
    struct Pieces {
        data: Vec<u8>,
        chunk: usize,
        fail_at_end: bool,
    }

    impl BodyReader for Pieces {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.data.is_empty() && self.fail_at_end {
                return Err(body_aborted());
            }
            let n = buf.len().min(self.chunk).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data.drain(..n);
            Ok(n)
        }

        fn read_uninit(&mut self, _: &mut [MaybeUninit<u8>]) -> std::io::Result<usize> {
            unreachable!("the defaults read through `read`")
        }
    }

    #[test]
    fn read_append_adds_at_most_max_bytes_and_nothing_at_the_end() {
        let mut body = Pieces {
            data: b"abcdefgh".to_vec(),
            chunk: 5,
            fail_at_end: false,
        };
        let mut out = b"head:".to_vec();
        assert_eq!(body.read_append(&mut out, 3).unwrap(), 3);
        assert_eq!(body.read_append(&mut out, 100).unwrap(), 5);
        assert_eq!(body.read_append(&mut out, 100).unwrap(), 0);
        assert_eq!(out, b"head:abcdefgh", "no zeroes left behind");
    }

    #[test]
    fn a_failed_read_appends_nothing_and_the_defaults_never_wait() {
        let mut body = Pieces {
            data: b"ab".to_vec(),
            chunk: 8,
            fail_at_end: true,
        };
        let mut out = Vec::new();
        assert_eq!(body.read_append_now(&mut out, 8).unwrap(), Some(2));
        let error = body.read_append(&mut out, 8).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::ConnectionAborted);
        assert_eq!(out, b"ab");
        assert!(body.readable_fd().is_none());
    }
}
