//! Frame kinds, the two head messages and how their payloads are laid out.

use crate::Environ;

/// Protocol version carried in every request head; a daemon refuses any other.
pub const VERSION: u16 = 2;
/// Kind byte plus big-endian u32 payload length.
pub const HEADER_LEN: usize = 5;
/// Largest body payload a sender puts in one frame.
pub const MAX_BODY_FRAME: usize = 256 * 1024;
/// Length of the per-generation secret that authenticates a request.
pub const SECRET_LEN: usize = 32;

/// What went wrong while reading the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("unknown frame kind {0:#04x}")]
    UnknownKind(u8),
    #[error("frame of {len} bytes exceeds the limit of {limit}")]
    TooLong { len: usize, limit: usize },
    #[error("malformed {0} frame")]
    Malformed(&'static str),
    #[error("protocol version {0} is not supported (expected {VERSION})")]
    Version(u16),
}

/// The kind byte of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    RequestHead = 0x01,
    Body = 0x02,
    BodyEnd = 0x03,
    BodyAbort = 0x04,
    ResponseHead = 0x11,
    Data = 0x12,
    End = 0x13,
    Error = 0x14,
    Continue = 0x15,
    File = 0x16,
    EndKeepAlive = 0x17,
}

impl Kind {
    pub fn from_byte(b: u8) -> Result<Self, WireError> {
        Ok(match b {
            0x01 => Kind::RequestHead,
            0x02 => Kind::Body,
            0x03 => Kind::BodyEnd,
            0x04 => Kind::BodyAbort,
            0x11 => Kind::ResponseHead,
            0x12 => Kind::Data,
            0x13 => Kind::End,
            0x14 => Kind::Error,
            0x15 => Kind::Continue,
            0x16 => Kind::File,
            0x17 => Kind::EndKeepAlive,
            other => return Err(WireError::UnknownKind(other)),
        })
    }
}

/// Why a daemon ended a request without a normal response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ErrorKind {
    /// The application failed; before the response head this becomes a 500, after it the
    /// client connection is aborted.
    Application = 1,
    /// The request waited longer than queue-timeout for a thread (504, app not run).
    QueueTimeout = 2,
    /// request-timeout interrupted the application (504).
    RequestTimeout = 3,
    /// The process is shutting down and did not run the request; try another connection.
    Restarting = 4,
    /// Bad secret or protocol violation (the daemon logs it; 500).
    Refused = 5,
}

impl ErrorKind {
    fn from_byte(b: u8) -> Result<Self, WireError> {
        Ok(match b {
            1 => ErrorKind::Application,
            2 => ErrorKind::QueueTimeout,
            3 => ErrorKind::RequestTimeout,
            4 => ErrorKind::Restarting,
            5 => ErrorKind::Refused,
            _ => return Err(WireError::Malformed("error")),
        })
    }
}

/// Everything the daemon needs to run one request.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestHead {
    pub secret: [u8; SECRET_LEN],
    pub reload: bool,
    pub header_only: bool,
    /// The child can send further requests on this connection: the daemon may answer
    /// with `EndKeepAlive` instead of `End` (a daemon that does not know the flag ignores
    /// it and closes, as before).
    pub keep_alive: bool,
    /// When Apache accepted the request, microseconds since the epoch (for queue-timeout).
    pub request_start_us: u64,
    pub script_mtime: f64,
    pub application_group: String,
    pub script: String,
    pub callable: String,
    pub environ: Environ,
}

/// Status line and headers of a response, as the application gave them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    pub status_line: String,
    pub headers: Vec<(String, String)>,
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    RequestHead(Box<RequestHead>),
    Body(Vec<u8>),
    BodyEnd,
    /// The client's body could not be read to its end.
    BodyAbort,
    ResponseHead(ResponseHead),
    Data(Vec<u8>),
    End,
    /// Daemon to child: the end of the response, and the connection stays open for the
    /// child's next request (the whole request body was read and nothing is pending).
    EndKeepAlive,
    Error(ErrorKind, String),
    /// Daemon to child: the application is reading the body, send the rest. Until
    /// then the child sends only the body's first block, so a daemon that refuses the
    /// request (restarting) has taken nothing the child cannot resend elsewhere.
    Continue,
    /// Daemon to child: send `len` bytes from `offset` of the file whose descriptor
    /// travels with this frame (SCM_RIGHTS), so the child can sendfile() it.
    File {
        offset: u64,
        len: u64,
    },
}

/// Appends a response head's payload built from borrowed parts.
pub(crate) fn put_response_head(
    out: &mut Vec<u8>,
    status: u16,
    status_line: &str,
    headers: &[(String, String)],
) {
    out.extend_from_slice(&status.to_be_bytes());
    put_str(out, status_line);
    put_pairs(out, headers);
}

impl Frame {
    pub fn kind(&self) -> Kind {
        match self {
            Frame::RequestHead(_) => Kind::RequestHead,
            Frame::Body(_) => Kind::Body,
            Frame::BodyEnd => Kind::BodyEnd,
            Frame::BodyAbort => Kind::BodyAbort,
            Frame::ResponseHead(_) => Kind::ResponseHead,
            Frame::Data(_) => Kind::Data,
            Frame::End => Kind::End,
            Frame::EndKeepAlive => Kind::EndKeepAlive,
            Frame::Error(..) => Kind::Error,
            Frame::Continue => Kind::Continue,
            Frame::File { .. } => Kind::File,
        }
    }

    /// Appends this frame's payload (without the header) to `out`.
    pub(crate) fn write_payload(&self, out: &mut Vec<u8>) {
        match self {
            Frame::RequestHead(h) => {
                out.extend_from_slice(&VERSION.to_be_bytes());
                out.extend_from_slice(&h.secret);
                out.push(
                    u8::from(h.reload)
                        | (u8::from(h.header_only) << 1)
                        | (u8::from(h.keep_alive) << 2),
                );
                out.extend_from_slice(&h.request_start_us.to_be_bytes());
                out.extend_from_slice(&h.script_mtime.to_bits().to_be_bytes());
                put_str(out, &h.application_group);
                put_str(out, &h.script);
                put_str(out, &h.callable);
                put_environ(out, &h.environ);
            }
            Frame::ResponseHead(h) => {
                put_response_head(out, h.status, &h.status_line, &h.headers);
            }
            Frame::Body(data) | Frame::Data(data) => out.extend_from_slice(data),
            Frame::BodyEnd
            | Frame::BodyAbort
            | Frame::End
            | Frame::EndKeepAlive
            | Frame::Continue => {}
            Frame::File { offset, len } => {
                out.extend_from_slice(&offset.to_be_bytes());
                out.extend_from_slice(&len.to_be_bytes());
            }
            Frame::Error(kind, message) => {
                out.push(*kind as u8);
                out.extend_from_slice(message.as_bytes());
            }
        }
    }

    /// Decodes a payload of `kind`; the whole payload must be consumed.
    pub fn parse(kind: Kind, payload: &[u8]) -> Result<Frame, WireError> {
        let mut c = Cursor {
            buf: payload,
            what: kind_name(kind),
        };
        let frame = match kind {
            Kind::RequestHead => {
                let version = c.u16()?;
                if version != VERSION {
                    return Err(WireError::Version(version));
                }
                let secret = c.array::<SECRET_LEN>()?;
                let flags = c.u8()?;
                Frame::RequestHead(Box::new(RequestHead {
                    secret,
                    reload: flags & 1 != 0,
                    header_only: flags & 2 != 0,
                    keep_alive: flags & 4 != 0,
                    request_start_us: c.u64()?,
                    script_mtime: f64::from_bits(c.u64()?),
                    application_group: c.string()?,
                    script: c.string()?,
                    callable: c.string()?,
                    environ: c.environ()?,
                }))
            }
            Kind::ResponseHead => Frame::ResponseHead(ResponseHead {
                status: c.u16()?,
                status_line: c.string()?,
                headers: c.pairs()?,
            }),
            Kind::Body => return Ok(Frame::Body(payload.to_vec())),
            Kind::Data => return Ok(Frame::Data(payload.to_vec())),
            Kind::BodyEnd => Frame::BodyEnd,
            Kind::BodyAbort => Frame::BodyAbort,
            Kind::End => Frame::End,
            Kind::EndKeepAlive => Frame::EndKeepAlive,
            Kind::Continue => Frame::Continue,
            Kind::File => Frame::File {
                offset: c.u64()?,
                len: c.u64()?,
            },
            Kind::Error => {
                let kind = ErrorKind::from_byte(c.u8()?)?;
                let message = String::from_utf8_lossy(c.rest()).into_owned();
                Frame::Error(kind, message)
            }
        };
        if !c.buf.is_empty() {
            return Err(WireError::Malformed(c.what));
        }
        Ok(frame)
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::RequestHead => "request head",
        Kind::Body => "body",
        Kind::BodyEnd => "end of body",
        Kind::BodyAbort => "body abort",
        Kind::ResponseHead => "response head",
        Kind::Data => "data",
        Kind::End => "end",
        Kind::EndKeepAlive => "end (keep-alive)",
        Kind::Error => "error",
        Kind::Continue => "continue",
        Kind::File => "file",
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let len = u32::try_from(s.len()).expect("BUG: string longer than 4 GiB on the wire");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_pairs(out: &mut Vec<u8>, pairs: &[(String, String)]) {
    let count = u32::try_from(pairs.len()).expect("BUG: more than 4G pairs");
    out.extend_from_slice(&count.to_be_bytes());
    for (k, v) in pairs {
        put_str(out, k);
        put_str(out, v);
    }
}

fn put_environ(out: &mut Vec<u8>, environ: &Environ) {
    let count = u32::try_from(environ.len()).expect("BUG: more than 4G variables");
    out.extend_from_slice(&count.to_be_bytes());
    for (k, v) in environ.iter() {
        put_str(out, k);
        put_str(out, v);
    }
}

struct Cursor<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.buf.len() < n {
            return Err(WireError::Malformed(self.what));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, WireError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn string(&mut self) -> Result<String, WireError> {
        self.text().map(str::to_owned)
    }

    /// The number of (key, value) pairs that follow. Each takes at least 8 bytes, so a
    /// count the payload cannot hold is rejected before anything is allocated for it.
    fn pair_count(&mut self) -> Result<usize, WireError> {
        let count = self.u32()? as usize;
        if count > self.buf.len() / 8 {
            return Err(WireError::Malformed(self.what));
        }
        Ok(count)
    }

    fn pairs(&mut self) -> Result<Vec<(String, String)>, WireError> {
        let count = self.pair_count()?;
        let mut pairs = Vec::with_capacity(count);
        for _ in 0..count {
            pairs.push((self.string()?, self.string()?));
        }
        Ok(pairs)
    }

    fn text(&mut self) -> Result<&'a str, WireError> {
        let len = self.u32()? as usize;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes).map_err(|_| WireError::Malformed(self.what))
    }

    /// Same layout as `pairs`, into one packed string (two allocations in all).
    fn environ(&mut self) -> Result<Environ, WireError> {
        let count = self.pair_count()?;
        let mut environ = Environ::with_capacity(count, self.buf.len() - 8 * count);
        for _ in 0..count {
            let key = self.text()?;
            let value = self.text()?;
            environ.push(key, value);
        }
        Ok(environ)
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }
}
