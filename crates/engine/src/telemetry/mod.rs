//! mod_wsgi 6's telemetry (WSGITelemetryService, WSGISlowRequests, WSGITelemetryOptions):
//! each process serving requests runs a reporter that sends datagrams, encoded as
//! mod_wsgi 6.1 encodes them, to the `mod_wsgi-telemetry` ingester's UNIX socket. The
//! request threads only count what they did (as they do for `request_metrics()`); with
//! WSGISlowRequests they also note who asked for what, for the slow-request records.

mod reporter;
mod sender;
pub(crate) mod slow;

pub use reporter::{start, stopped, stopping};
