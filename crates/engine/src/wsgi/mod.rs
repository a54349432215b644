//! PEP 3333 semantics, independent of how the request arrived: environ, start_response
//! with header validation, wsgi.input, response iteration, file_wrapper, wsgi.errors.
//!
//! The transport is reached only through [`BodyReader`] and [`ResponseSink`], so the same
//! code serves embedded mode (Apache request) and daemon mode (socket).
#![forbid(unsafe_code)]

mod environ;
mod input;
pub mod phases;
mod response;
mod run;
mod transport;

pub use environ::EnvironKeys;
pub(crate) use run::emit_error_line;
pub(crate) use run::log_for_request;
pub use run::{OnScriptChange, Outcome, WsgiRequest, run};
pub use transport::{BodyReader, ResponseSink, SinkError, body_aborted};
