//! The protocol between an Apache child and a daemon process, as pure functions.
//!
//! Every message is a frame: a 5-byte header (kind, then the payload length as a big-endian
//! u32) followed by the payload. The Apache child sends one [`RequestHead`] and the first
//! body frame ([`Frame::Body`], or [`Frame::BodyEnd`] for an empty body); the rest of the
//! body ([`Frame::Body`] frames, then [`Frame::BodyEnd`] or [`Frame::BodyAbort`]) follows
//! once the daemon sends [`Frame::Continue`] (when the application starts reading it). The
//! daemon answers with one [`ResponseHead`], [`Frame::Data`] and [`Frame::File`] frames
//! (a file region whose descriptor is passed with the frame) and one [`Frame::End`], or an
//! [`Frame::Error`] at any point. Both directions flow at the same time on one
//! connection. A child that sets [`RequestHead::keep_alive`] may get
//! [`Frame::EndKeepAlive`] instead of `End`: the daemon read the whole request and waits
//! for the next one on the same connection.
//!
//! Decoding never panics and never allocates more than the caller's limit.
#![forbid(unsafe_code)]

mod codec;
mod environ;
mod frame;
mod secret;

pub use codec::{Decoder, Item, Run, RunEnd, encode, encode_response_head, frame_header};
pub use environ::Environ;
pub use frame::{
    ErrorKind, Frame, HEADER_LEN, Kind, MAX_BODY_FRAME, RequestHead, ResponseHead, SECRET_LEN,
    VERSION, WireError,
};
pub use secret::{SecretError, new_secret, secret_from};
