//! Framing: encoding frames into bytes and an incremental, bounded decoder.

use crate::frame::{Frame, HEADER_LEN, Kind, WireError, put_response_head};

/// The 5 header bytes of a frame of `kind` carrying `len` payload bytes.
pub fn frame_header(kind: Kind, len: usize) -> [u8; HEADER_LEN] {
    let len = u32::try_from(len).expect("BUG: frame payload longer than 4 GiB");
    let l = len.to_be_bytes();
    [kind as u8, l[0], l[1], l[2], l[3]]
}

/// Appends `frame`, header and payload, to `out`.
pub fn encode(frame: &Frame, out: &mut Vec<u8>) {
    encode_with(frame.kind(), out, |out| frame.write_payload(out));
}

/// Appends a response head frame from borrowed parts: the same bytes as encoding
/// `Frame::ResponseHead`, without copying the headers into one first.
pub fn encode_response_head(
    status: u16,
    status_line: &str,
    headers: &[(String, String)],
    out: &mut Vec<u8>,
) {
    encode_with(Kind::ResponseHead, out, |out| {
        put_response_head(out, status, status_line, headers)
    });
}

fn encode_with(kind: Kind, out: &mut Vec<u8>, payload: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_LEN]);
    payload(out);
    let header = frame_header(kind, out.len() - start - HEADER_LEN);
    out[start..start + HEADER_LEN].copy_from_slice(&header);
}

/// Turns a byte stream into frames. Bytes are pushed in as they arrive; a frame whose
/// declared length exceeds `max_frame` is an error before any of it is buffered.
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    start: usize,
    max_frame: usize,
}

impl Decoder {
    pub fn new(max_frame: usize) -> Self {
        Decoder {
            buf: Vec::new(),
            start: 0,
            max_frame,
        }
    }

    /// Adds received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// How many more bytes the next frame needs before `next` can return it (at least 1
    /// when nothing is buffered); lets a reader size its read without over-buffering.
    pub fn wanted(&self) -> usize {
        let pending = &self.buf[self.start..];
        if pending.len() < HEADER_LEN {
            return HEADER_LEN - pending.len();
        }
        let len = u32::from_be_bytes([pending[1], pending[2], pending[3], pending[4]]) as usize;
        (HEADER_LEN + len.min(self.max_frame))
            .saturating_sub(pending.len())
            .max(1)
    }

    /// The kind of the next frame if all of it is buffered (and its kind is known).
    pub fn next_kind(&self) -> Option<Kind> {
        let pending = &self.buf[self.start..];
        let kind = Kind::from_byte(*pending.first()?).ok()?;
        let len = u32::from_be_bytes(pending.get(1..HEADER_LEN)?.try_into().ok()?) as usize;
        (len <= self.max_frame && pending.len() >= HEADER_LEN + len).then_some(kind)
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, WireError> {
        let pending = &self.buf[self.start..];
        if pending.len() < HEADER_LEN {
            return Ok(None);
        }
        let kind = Kind::from_byte(pending[0])?;
        let len = u32::from_be_bytes([pending[1], pending[2], pending[3], pending[4]]) as usize;
        if len > self.max_frame {
            return Err(WireError::TooLong {
                len,
                limit: self.max_frame,
            });
        }
        if pending.len() < HEADER_LEN + len {
            return Ok(None);
        }
        let frame = Frame::parse(kind, &pending[HEADER_LEN..HEADER_LEN + len])?;
        self.start += HEADER_LEN + len;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 64 * 1024 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        Ok(Some(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{ErrorKind, RequestHead, ResponseHead};
    use proptest::prelude::*;

    fn request_head() -> Frame {
        Frame::RequestHead(Box::new(RequestHead {
            secret: [7; 32],
            reload: true,
            header_only: false,
            keep_alive: true,
            request_start_us: 1_700_000_000_000_000,
            script_mtime: 1234.5,
            application_group: "".into(),
            script: "/srv/app.wsgi".into(),
            callable: "application".into(),
            environ: vec![
                ("REQUEST_METHOD".into(), "GET".into()),
                ("PATH_INFO".into(), "/caf\u{e9}".into()),
            ],
        }))
    }

    fn all_frames() -> Vec<Frame> {
        vec![
            request_head(),
            Frame::Body(b"hello".to_vec()),
            Frame::BodyEnd,
            Frame::BodyAbort,
            Frame::ResponseHead(ResponseHead {
                status: 200,
                status_line: "200 OK".into(),
                headers: vec![("Content-Type".into(), "text/plain".into())],
            }),
            Frame::Data(vec![0; 1000]),
            Frame::End,
            Frame::EndKeepAlive,
            Frame::Continue,
            Frame::File {
                offset: 4096,
                len: 10 << 20,
            },
            Frame::Error(ErrorKind::QueueTimeout, "waited 3 s".into()),
        ]
    }

    #[test]
    fn response_head_from_borrowed_parts_matches_the_frame() {
        let headers = vec![("Content-Type".to_owned(), "text/plain".to_owned())];
        let mut borrowed = Vec::new();
        encode_response_head(404, "404 Not Found", &headers, &mut borrowed);
        let mut framed = Vec::new();
        encode(
            &Frame::ResponseHead(ResponseHead {
                status: 404,
                status_line: "404 Not Found".into(),
                headers,
            }),
            &mut framed,
        );
        assert_eq!(borrowed, framed);
    }

    #[test]
    fn every_frame_round_trips_byte_by_byte() {
        let mut bytes = Vec::new();
        for f in all_frames() {
            encode(&f, &mut bytes);
        }
        let mut d = Decoder::new(1 << 20);
        let mut out = Vec::new();
        for b in &bytes {
            d.push(std::slice::from_ref(b));
            while let Some(f) = d.next_frame().unwrap() {
                out.push(f);
            }
        }
        assert_eq!(out, all_frames());
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn header_is_big_endian() {
        assert_eq!(frame_header(Kind::Data, 0x0102_0304), [0x12, 1, 2, 3, 4]);
    }

    #[test]
    fn next_kind_names_only_a_complete_frame() {
        let mut d = Decoder::new(100);
        assert_eq!(d.next_kind(), None);
        let mut bytes = Vec::new();
        encode(&Frame::Body(b"abc".to_vec()), &mut bytes);
        encode(&Frame::BodyEnd, &mut bytes);
        d.push(&bytes[..HEADER_LEN + 2]);
        assert_eq!(d.next_kind(), None);
        d.push(&bytes[HEADER_LEN + 2..]);
        assert_eq!(d.next_kind(), Some(Kind::Body));
        assert_eq!(d.next_frame(), Ok(Some(Frame::Body(b"abc".to_vec()))));
        assert_eq!(d.next_kind(), Some(Kind::BodyEnd));
        assert_eq!(d.next_frame(), Ok(Some(Frame::BodyEnd)));
        assert_eq!(d.next_kind(), None);
        d.push(&frame_header(Kind::Body, 101));
        assert_eq!(d.next_kind(), None, "an oversized frame is never complete");
    }

    #[test]
    fn oversized_frame_is_refused_before_buffering() {
        let mut d = Decoder::new(100);
        d.push(&frame_header(Kind::Body, 101));
        assert_eq!(
            d.next_frame(),
            Err(WireError::TooLong {
                len: 101,
                limit: 100
            })
        );
    }

    #[test]
    fn wrong_version_and_trailing_bytes_are_refused() {
        let mut bytes = Vec::new();
        encode(&request_head(), &mut bytes);
        let mut bad_version = bytes.clone();
        bad_version[HEADER_LEN + 1] = 9;
        let mut d = Decoder::new(1 << 20);
        d.push(&bad_version);
        assert_eq!(d.next_frame(), Err(WireError::Version(9)));

        let mut trailing = Vec::new();
        encode(&Frame::End, &mut trailing);
        trailing[4] = 1;
        trailing.push(0);
        let mut d = Decoder::new(1 << 20);
        d.push(&trailing);
        assert!(matches!(d.next_frame(), Err(WireError::Malformed(_))));
    }

    #[test]
    fn huge_pair_count_is_refused_without_allocating() {
        let mut payload = Vec::new();
        payload.extend_from_slice(&200u16.to_be_bytes());
        payload.extend_from_slice(&0u32.to_be_bytes());
        payload.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(Frame::parse(Kind::ResponseHead, &payload).is_err());
    }

    proptest! {
        #[test]
        fn decoder_never_panics(chunks in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..64), 0..16)) {
            let mut d = Decoder::new(4096);
            for c in &chunks {
                d.push(c);
                while let Ok(Some(_)) = d.next_frame() {}
            }
        }

        #[test]
        fn heads_round_trip(
            status in 100u16..1000,
            line in "[ -~]{0,40}",
            headers in proptest::collection::vec(("[A-Za-z-]{1,20}", "\\PC{0,40}"), 0..10),
            env in proptest::collection::vec(("[A-Z_]{1,20}", "\\PC{0,40}"), 0..20),
            mtime in any::<f64>().prop_filter("not NaN", |f| !f.is_nan()),
            split in 0usize..4096,
        ) {
            let frames = vec![
                Frame::ResponseHead(ResponseHead { status, status_line: line, headers }),
                Frame::RequestHead(Box::new(RequestHead {
                    secret: [1; 32], reload: false, header_only: true, keep_alive: false,
                    request_start_us: 42, script_mtime: mtime,
                    application_group: "g".into(), script: "s".into(), callable: "c".into(),
                    environ: env,
                })),
            ];
            let mut bytes = Vec::new();
            for f in &frames { encode(f, &mut bytes); }
            let cut = split.min(bytes.len());
            let mut d = Decoder::new(1 << 20);
            d.push(&bytes[..cut]);
            let mut out = Vec::new();
            while let Some(f) = d.next_frame().unwrap() { out.push(f); }
            d.push(&bytes[cut..]);
            while let Some(f) = d.next_frame().unwrap() { out.push(f); }
            prop_assert_eq!(out, frames);
        }
    }
}
