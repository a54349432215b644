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
///
/// Two ways to read: [`Decoder::next_frame`] returns whole frames; [`Decoder::next_item`]
/// returns the payloads of `Body` and `Data` frames in pieces as they arrive, so a
/// relay never holds a whole large frame.
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    start: usize,
    max_frame: usize,
    /// A `Body` or `Data` frame whose header `next_item` consumed: its kind and how many
    /// payload bytes are still to come.
    streaming: Option<(Kind, usize)>,
}

/// What [`Decoder::next_item`] returns: a piece of a `Body` or `Data` payload, borrowed
/// from the decoder until the next call, or any other frame whole.
#[derive(Debug, PartialEq)]
pub enum Item<'a> {
    Body(&'a [u8]),
    Data(&'a [u8]),
    Frame(Frame),
}

/// What [`Decoder::next_run`] returns: the payloads of the `Data` frames buffered next,
/// joined, and what ended the run.
#[derive(Debug, PartialEq)]
pub struct Run<'a> {
    pub data: &'a [u8],
    pub end: RunEnd,
}

/// What ended a [`Run`].
#[derive(Debug, PartialEq)]
pub enum RunEnd {
    /// Nothing more is buffered (or only part of a frame's header or of a frame).
    NeedMore,
    /// A frame other than `Data` or `Body`, consumed.
    Frame(Frame),
    /// A `Body` frame is next, left unconsumed.
    Body,
}

/// Consumed bytes are moved out of the buffer once this many have piled up.
const COMPACT_AFTER: usize = 64 * 1024;

impl Decoder {
    pub fn new(max_frame: usize) -> Self {
        Decoder {
            buf: Vec::new(),
            start: 0,
            max_frame,
            streaming: None,
        }
    }

    /// A decoder that reuses `buf`'s memory (its contents are discarded).
    pub fn with_buffer(max_frame: usize, mut buf: Vec<u8>) -> Self {
        buf.clear();
        Decoder {
            buf,
            ..Decoder::new(max_frame)
        }
    }

    /// The buffer's memory, for the next `with_buffer`.
    pub fn into_buffer(self) -> Vec<u8> {
        self.buf
    }

    /// Adds received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.compact();
        self.buf.extend_from_slice(bytes);
    }

    /// Lets `read` append received bytes to the buffer directly (no copy through a
    /// scratch buffer), with room for about `reserve` more made first (see `make_room`:
    /// at least half of it). `read` must only append; what it returns is passed back.
    pub fn receive<T, E>(
        &mut self,
        reserve: usize,
        read: impl FnOnce(&mut Vec<u8>) -> Result<T, E>,
    ) -> Result<T, E> {
        self.make_room(reserve);
        let result = read(&mut self.buf);
        self.start = self.start.min(self.buf.len());
        result
    }

    /// Frees the buffer's memory beyond `capacity` bytes (for a connection going idle
    /// after a large request).
    pub fn shrink_to(&mut self, capacity: usize) {
        self.compact();
        if self.buf.capacity() > capacity.max(self.buf.len()) {
            self.buf.shrink_to(capacity);
        }
    }

    /// Room for `reserve` more bytes, less what is still undecoded when that is under
    /// half of it (usually a frame's first bytes, which the read completes): with the
    /// undecoded rest moved to the front, a buffer sized for one read keeps that size
    /// instead of doubling whenever a read ends mid-frame.
    fn make_room(&mut self, reserve: usize) {
        self.compact();
        let pending = self.buffered();
        let room = if pending < reserve / 2 {
            reserve - pending
        } else {
            reserve
        };
        if self.start > 0 && self.buf.capacity() - self.buf.len() < room {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.reserve(room);
    }

    fn compact(&mut self) {
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > COMPACT_AFTER {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }

    /// Bytes received but not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// How many more bytes the next frame needs before `next` can return it (at least 1
    /// when nothing is buffered); lets a reader size its read without over-buffering.
    pub fn wanted(&self) -> usize {
        let pending = &self.buf[self.start..];
        if let Some((_, left)) = self.streaming {
            return left.saturating_sub(pending.len()).max(1);
        }
        if pending.len() < HEADER_LEN {
            return HEADER_LEN - pending.len();
        }
        let len = u32::from_be_bytes([pending[1], pending[2], pending[3], pending[4]]) as usize;
        (HEADER_LEN + len.min(self.max_frame))
            .saturating_sub(pending.len())
            .max(1)
    }

    /// Inside a `Body` or `Data` payload with none of it buffered: its kind and how many
    /// of its bytes are still to come. [`Decoder::receive_past`] can then receive them
    /// straight into the reader's own memory instead of through the buffer.
    pub fn unbuffered_payload(&self) -> Option<(Kind, usize)> {
        self.streaming.filter(|_| self.buffered() == 0)
    }

    /// Receives while inside a payload with none of it buffered: `read` is told how many
    /// payload bytes are still to come; it puts up to that many in its own memory and
    /// appends whatever follows them to the buffer (as with [`Decoder::receive`], room
    /// for `reserve` bytes is made first), and returns how many it kept. Returns `read`'s
    /// (kept, appended) counts.
    pub fn receive_past<E>(
        &mut self,
        reserve: usize,
        read: impl FnOnce(usize, &mut Vec<u8>) -> Result<usize, E>,
    ) -> Result<(usize, usize), E> {
        let Some((kind, left)) = self.unbuffered_payload() else {
            return Ok((0, 0));
        };
        self.make_room(reserve);
        let before = self.buf.len();
        let kept = read(left, &mut self.buf)?;
        assert!(kept <= left, "BUG: kept {kept} payload bytes of {left}");
        // Anything appended follows the kept bytes: the rest of this payload, then frames.
        self.streaming = (left > kept).then_some((kind, left - kept));
        Ok((kept, self.buf.len() - before))
    }

    /// The kind of the next frame if all of it is buffered (and its kind is known).
    pub fn next_kind(&self) -> Option<Kind> {
        if self.streaming.is_some() {
            return None;
        }
        let pending = &self.buf[self.start..];
        let kind = Kind::from_byte(*pending.first()?).ok()?;
        let len = u32::from_be_bytes(pending.get(1..HEADER_LEN)?.try_into().ok()?) as usize;
        (len <= self.max_frame && pending.len() >= HEADER_LEN + len).then_some(kind)
    }

    /// The next frame's kind and payload length once its header is buffered.
    fn header(&self) -> Result<Option<(Kind, usize)>, WireError> {
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
        Ok(Some((kind, len)))
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, WireError> {
        if self.streaming.is_some() {
            return Err(WireError::Malformed(
                "whole frame asked for inside a payload",
            ));
        }
        let Some((kind, len)) = self.header()? else {
            return Ok(None);
        };
        let payload = self.start + HEADER_LEN;
        if self.buf.len() < payload + len {
            return Ok(None);
        }
        let frame = Frame::parse(kind, &self.buf[payload..payload + len])?;
        self.start = payload + len;
        Ok(Some(frame))
    }

    /// The next piece of a `Body` or `Data` payload (at most `max_piece` bytes, never
    /// empty except for an empty frame), or the next whole frame of any other kind;
    /// `Ok(None)` if more bytes are needed.
    pub fn next_item(&mut self, max_piece: usize) -> Result<Option<Item<'_>>, WireError> {
        let (kind, left) = match self.streaming {
            Some(streaming) => streaming,
            None => match self.header()? {
                None => return Ok(None),
                Some((kind @ (Kind::Body | Kind::Data), len)) => {
                    self.start += HEADER_LEN;
                    (kind, len)
                }
                Some(_) => return Ok(self.next_frame()?.map(Item::Frame)),
            },
        };
        let n = left.min(max_piece).min(self.buffered());
        if n == 0 && left > 0 {
            self.streaming = Some((kind, left));
            return Ok(None);
        }
        self.streaming = (left > n).then_some((kind, left - n));
        let piece = &self.buf[self.start..self.start + n];
        self.start += n;
        Ok(Some(if kind == Kind::Body {
            Item::Body(piece)
        } else {
            Item::Data(piece)
        }))
    }

    /// For a relay: every `Data` payload byte buffered before the next other frame,
    /// joined in place (each piece is moved down over the frame headers between it and
    /// the one before, into bytes already decoded), so that many small blocks leave as
    /// one write without a second buffer. A first piece is never moved.
    pub fn next_run(&mut self) -> Result<Run<'_>, WireError> {
        let mut joined: Option<(usize, usize)> = None;
        let end = loop {
            let left = match self.streaming {
                Some((Kind::Data, left)) => left,
                Some(_) => break RunEnd::Body,
                None => match self.header()? {
                    None => break RunEnd::NeedMore,
                    Some((Kind::Data, len)) => {
                        self.start += HEADER_LEN;
                        len
                    }
                    Some((Kind::Body, _)) => break RunEnd::Body,
                    Some(_) => match self.next_frame()? {
                        Some(frame) => break RunEnd::Frame(frame),
                        None => break RunEnd::NeedMore,
                    },
                },
            };
            let n = left.min(self.buffered());
            self.streaming = (left > n).then_some((Kind::Data, left - n));
            let piece = self.start..self.start + n;
            self.start += n;
            match &mut joined {
                None => joined = Some((piece.start, n)),
                Some((at, len)) => {
                    self.buf.copy_within(piece, *at + *len);
                    *len += n;
                }
            }
            if self.streaming.is_some() {
                break RunEnd::NeedMore;
            }
        };
        let (at, len) = joined.unwrap_or((self.start, 0));
        Ok(Run {
            data: &self.buf[at..at + len],
            end,
        })
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
            environ: [("REQUEST_METHOD", "GET"), ("PATH_INFO", "/caf\u{e9}")]
                .into_iter()
                .collect(),
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
    fn reads_ending_mid_frame_do_not_grow_the_buffer() {
        const READ: usize = 8000;
        let mut bytes = Vec::new();
        for i in 0..2000u32 {
            encode(&Frame::Data(vec![i as u8; 64]), &mut bytes);
        }
        let mut d = Decoder::with_buffer(1 << 20, Vec::with_capacity(READ));
        let (mut sent, mut data) = (0, Vec::new());
        while sent < bytes.len() {
            let n = d
                .receive(READ, |buf| {
                    let n = READ.min(bytes.len() - sent);
                    buf.extend_from_slice(&bytes[sent..sent + n]);
                    Ok::<_, ()>(n)
                })
                .unwrap();
            sent += n;
            assert!(d.buf.capacity() < 2 * READ, "grew to {}", d.buf.capacity());
            while let Some(item) = d.next_item(READ).unwrap() {
                match item {
                    Item::Data(piece) => data.extend_from_slice(piece),
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        let expected: Vec<u8> = (0..2000u32).flat_map(|i| [i as u8; 64]).collect();
        assert_eq!(data, expected);
    }

    #[test]
    fn a_run_stops_before_a_body_frame() {
        let mut bytes = Vec::new();
        encode(&Frame::Data(b"abc".to_vec()), &mut bytes);
        encode(&Frame::Data(b"de".to_vec()), &mut bytes);
        encode(&Frame::Body(b"x".to_vec()), &mut bytes);
        let mut d = Decoder::new(100);
        d.push(&bytes);
        let run = d.next_run().unwrap();
        assert_eq!((run.data, run.end), (&b"abcde"[..], RunEnd::Body));
        assert_eq!(d.next_frame(), Ok(Some(Frame::Body(b"x".to_vec()))));
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

    /// Decodes `bytes` pushed in `chunk`-byte pieces with `next_item`, joining the
    /// payload pieces back into whole frames.
    fn items_joined(bytes: &[u8], chunk: usize, max_piece: usize) -> Vec<Frame> {
        let mut d = Decoder::new(1 << 20);
        let mut out = Vec::new();
        let mut payload: Option<(Kind, Vec<u8>)> = None;
        for piece in bytes.chunks(chunk) {
            d.push(piece);
            loop {
                let (kind, data) = match d.next_item(max_piece).unwrap() {
                    None => break,
                    Some(Item::Frame(f)) => {
                        match payload.take() {
                            Some((Kind::Body, p)) => out.push(Frame::Body(p)),
                            Some((_, p)) => out.push(Frame::Data(p)),
                            None => {}
                        }
                        out.push(f);
                        continue;
                    }
                    Some(Item::Body(p)) => (Kind::Body, p.to_vec()),
                    Some(Item::Data(p)) => (Kind::Data, p.to_vec()),
                };
                assert!(data.len() <= max_piece);
                match &mut payload {
                    Some((k, p)) if *k == kind => p.extend_from_slice(&data),
                    _ => payload = Some((kind, data)),
                }
            }
        }
        out
    }

    #[test]
    fn items_carry_payloads_in_bounded_pieces() {
        let frames = vec![
            Frame::ResponseHead(ResponseHead {
                status: 200,
                status_line: "200 OK".into(),
                headers: vec![],
            }),
            Frame::Data((0..70_000u32).map(|i| i as u8).collect()),
            Frame::End,
            Frame::Body(b"abc".to_vec()),
            Frame::BodyEnd,
        ];
        let mut bytes = Vec::new();
        for f in &frames {
            encode(f, &mut bytes);
        }
        for (chunk, max_piece) in [(1, 10), (7, 4096), (65536, 1000), (bytes.len(), 1 << 20)] {
            assert_eq!(
                items_joined(&bytes, chunk, max_piece),
                frames,
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn a_large_data_frame_is_never_buffered_whole() {
        let mut bytes = Vec::new();
        encode(&Frame::Data(vec![1; 256 * 1024]), &mut bytes);
        let mut d = Decoder::new(1 << 20);
        let mut seen = 0;
        for piece in bytes.chunks(16 * 1024) {
            d.push(piece);
            while let Some(Item::Data(p)) = d.next_item(1 << 20).unwrap() {
                seen += p.len();
            }
            assert!(d.buffered() < 16 * 1024, "decoded pieces leave the buffer");
        }
        assert_eq!(seen, 256 * 1024);
        assert_eq!(d.next_item(1).unwrap(), None);
    }

    #[test]
    fn an_empty_payload_is_one_empty_piece() {
        let mut bytes = Vec::new();
        encode(&Frame::Data(Vec::new()), &mut bytes);
        encode(&Frame::End, &mut bytes);
        let mut d = Decoder::new(100);
        d.push(&bytes);
        assert_eq!(d.next_item(10).unwrap(), Some(Item::Data(&[])));
        assert_eq!(d.next_item(10).unwrap(), Some(Item::Frame(Frame::End)));
        assert_eq!(d.next_item(10).unwrap(), None);
    }

    #[test]
    fn streamed_frames_keep_the_length_limit_and_frame_boundaries() {
        let mut d = Decoder::new(100);
        d.push(&frame_header(Kind::Data, 101));
        assert_eq!(
            d.next_item(1000),
            Err(WireError::TooLong {
                len: 101,
                limit: 100
            })
        );
        let mut d = Decoder::new(100);
        d.push(&frame_header(Kind::Body, 10));
        d.push(b"12345");
        assert_eq!(d.next_item(100).unwrap(), Some(Item::Body(b"12345")));
        assert_eq!(d.next_kind(), None);
        assert!(
            d.next_frame().is_err(),
            "a whole frame cannot start inside a payload"
        );
        assert_eq!(d.wanted(), 5);
    }

    /// The bytes of a Body frame carrying `payload` and a BodyEnd, and a decoder.
    fn body_then_end(payload: Vec<u8>) -> (Vec<u8>, Decoder) {
        let mut bytes = Vec::new();
        encode(&Frame::Body(payload), &mut bytes);
        encode(&Frame::BodyEnd, &mut bytes);
        (bytes, Decoder::new(1 << 20))
    }

    #[test]
    fn payload_received_past_the_buffer_continues_with_the_next_frame() {
        let (bytes, mut d) = body_then_end(vec![7; 1000]);
        d.push(&bytes[..HEADER_LEN + 100]);
        assert_eq!(
            d.unbuffered_payload(),
            None,
            "the header is not consumed yet"
        );
        assert_eq!(d.next_item(64).unwrap(), Some(Item::Body(&[7; 64][..])));
        assert_eq!(
            d.unbuffered_payload(),
            None,
            "36 payload bytes are still buffered"
        );
        assert_eq!(d.next_item(64).unwrap(), Some(Item::Body(&[7; 36][..])));
        assert_eq!(d.next_item(64).unwrap(), None);
        assert_eq!(d.unbuffered_payload(), Some((Kind::Body, 900)));
        // The reader keeps 850 of the 900 payload bytes; the 50 left and the end frame
        // go to the buffer.
        let mut kept = Vec::new();
        let rest = &bytes[HEADER_LEN + 100..];
        let counts = d.receive_past(0, |left, buf| -> Result<usize, ()> {
            assert_eq!(left, 900);
            kept.extend_from_slice(&rest[..850]);
            buf.extend_from_slice(&rest[850..]);
            Ok(850)
        });
        assert_eq!(counts, Ok((850, rest.len() - 850)));
        assert_eq!(kept, vec![7; 850]);
        assert_eq!(d.unbuffered_payload(), None);
        assert_eq!(d.next_item(1000).unwrap(), Some(Item::Body(&[7; 50][..])));
        assert_eq!(
            d.next_item(1000).unwrap(),
            Some(Item::Frame(Frame::BodyEnd))
        );
        assert_eq!(d.buffered(), 0);
        // Outside a payload there is nothing to receive past.
        assert_eq!(
            d.receive_past(0, |_, _| -> Result<usize, ()> { Ok(1) }),
            Ok((0, 0))
        );
    }

    #[test]
    fn a_payload_kept_whole_leaves_the_next_frame_in_the_buffer() {
        let (bytes, mut d) = body_then_end(vec![1; 10]);
        d.push(&bytes[..HEADER_LEN]);
        assert_eq!(d.next_item(64).unwrap(), None);
        let counts = d.receive_past(0, |left, buf| -> Result<usize, ()> {
            buf.extend_from_slice(&bytes[HEADER_LEN + left..]);
            Ok(left)
        });
        assert_eq!(counts, Ok((10, HEADER_LEN)));
        assert_eq!(d.next_item(64).unwrap(), Some(Item::Frame(Frame::BodyEnd)));
    }

    #[test]
    fn receive_appends_and_shrink_frees() {
        let mut d = Decoder::new(1 << 20);
        let mut bytes = Vec::new();
        encode(&Frame::Data(vec![9; 100_000]), &mut bytes);
        let n = d
            .receive(bytes.len(), |buf| {
                buf.extend_from_slice(&bytes);
                Ok::<_, ()>(bytes.len())
            })
            .unwrap();
        assert_eq!(n, bytes.len());
        assert_eq!(d.next_frame().unwrap(), Some(Frame::Data(vec![9; 100_000])));
        d.shrink_to(4096);
        assert!(d.buf.capacity() <= 4096);
        d.push(&frame_header(Kind::End, 0));
        assert_eq!(d.next_frame().unwrap(), Some(Frame::End));
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
        fn items_rejoin_into_the_frames(
            sizes in proptest::collection::vec(0usize..3000, 1..6),
            chunk in 1usize..5000,
            max_piece in 1usize..2000,
        ) {
            let mut frames = Vec::new();
            for (i, size) in sizes.iter().enumerate() {
                let payload = vec![i as u8; *size];
                frames.push(if i % 2 == 0 { Frame::Data(payload) } else { Frame::Body(payload) });
                frames.push(Frame::End);
            }
            let mut bytes = Vec::new();
            for f in &frames { encode(f, &mut bytes); }
            prop_assert_eq!(items_joined(&bytes, chunk, max_piece), frames);
        }

        #[test]
        fn runs_join_data_between_frames(
            sizes in proptest::collection::vec(0usize..3000, 1..12),
            chunk in 1usize..9000,
        ) {
            let mut frames = Vec::new();
            for (i, size) in sizes.iter().enumerate() {
                frames.push(Frame::Data((0..*size).map(|j| (i * 31 + j) as u8).collect()));
                if i % 3 == 2 {
                    frames.push(Frame::Continue);
                }
            }
            frames.push(Frame::End);
            let mut bytes = Vec::new();
            for f in &frames { encode(f, &mut bytes); }
            // What a relay should write: adjacent Data payloads joined, empty ones dropped.
            let mut expected: Vec<Frame> = Vec::new();
            for f in frames {
                match (expected.last_mut(), f) {
                    (_, Frame::Data(p)) if p.is_empty() => {}
                    (Some(Frame::Data(joined)), Frame::Data(p)) => joined.extend_from_slice(&p),
                    (_, f) => expected.push(f),
                }
            }
            let mut d = Decoder::with_buffer(1 << 20, Vec::with_capacity(chunk));
            let (mut out, mut sent) = (Vec::<Frame>::new(), 0);
            while sent < bytes.len() {
                sent += d.receive(chunk, |buf| {
                    let n = chunk.min(bytes.len() - sent).min(buf.capacity() - buf.len());
                    buf.extend_from_slice(&bytes[sent..sent + n]);
                    Ok::<_, ()>(n)
                }).unwrap();
                loop {
                    let run = d.next_run().unwrap();
                    if !run.data.is_empty() {
                        match out.last_mut() {
                            Some(Frame::Data(joined)) => joined.extend_from_slice(run.data),
                            _ => out.push(Frame::Data(run.data.to_vec())),
                        }
                    }
                    match run.end {
                        RunEnd::NeedMore => break,
                        RunEnd::Frame(f) => out.push(f),
                        RunEnd::Body => panic!("no Body frame was sent"),
                    }
                }
            }
            prop_assert_eq!(out, expected);
            prop_assert_eq!(d.buffered(), 0);
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
                    environ: env.into_iter().collect(),
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
