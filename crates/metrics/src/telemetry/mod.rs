//! The datagrams of mod_wsgi 6's telemetry (WSGITelemetryService), encoded as mod_wsgi
//! 6.1 encodes them so that its `mod_wsgi-telemetry` ingester reads them: the wire
//! format, the periodic sample and lifecycle events of a process, and slow requests.

mod sample;
mod slow;
#[cfg(test)]
mod tests;
mod wire;

pub use sample::{
    Ending, GcCounters, GcEvent, Identity, MAX_SLOTS, Tick, encode_gc_event, encode_gc_snapshot,
    encode_started, encode_stopped, encode_stopping, encode_tick,
};
pub use slow::{
    Instants, MAX_ACTIVE_PER_TICK, RequestIdentity, SlowQueue, SlowRequest, clip, encode_slow, room,
};
pub use wire::{Datagram, HEADER_LEN, Kind, field};
