//! mod_wsgi 6's telemetry datagram: a 24-byte little-endian header (`WSGI`, version 1,
//! kind, flags 0, pid, sequence number, stamp as f64 seconds since the epoch) followed
//! by type-length-value fields (u16 id, u8 type, a u16 length for bytes and arrays, the
//! value). Field ids and kinds are those of its `wsgi_telemetry.h` and of the
//! `mod_wsgi-telemetry` ingester's decoder, which must read these datagrams unchanged.

/// The kinds of datagram sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The periodic sample ("request_metrics" to the ingester).
    Request = 2,
    SlowRequest = 4,
    ProcessStarted = 5,
    ProcessStopping = 6,
    ProcessStopped = 7,
    GcSnapshot = 8,
    GcEvent = 9,
}

const MAGIC: &[u8; 4] = b"WSGI";
const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 24;

const T_U64: u8 = 0x01;
const T_F64: u8 = 0x02;
const T_BYTES: u8 = 0x04;
const T_I32_ARRAY: u8 = 0x05;
const T_F64_ARRAY: u8 = 0x06;

/// Field ids, as numbered by mod_wsgi 6.
pub mod field {
    pub const MOD_WSGI_VERSION: u16 = 1;
    pub const PYTHON_VERSION: u16 = 2;
    pub const APACHE_VERSION: u16 = 3;
    pub const MPM_NAME: u16 = 4;
    pub const HOSTNAME: u16 = 5;
    pub const PROCESS_GROUP: u16 = 6;
    pub const PROCESS_PARENT_PID: u16 = 7;
    pub const INTERPRETER_NAME: u16 = 8;
    pub const SAMPLE_PERIOD: u16 = 10;
    pub const TELEMETRY_INTERVAL: u16 = 11;
    pub const SLOW_REQUESTS_THRESHOLD: u16 = 12;
    pub const SWITCH_INTERVAL: u16 = 13;
    pub const REQUEST_COUNT: u16 = 20;
    pub const REQUEST_THROUGHPUT: u16 = 21;
    pub const CAPACITY_UTILIZATION: u16 = 22;
    pub const CPU_USER_UTILIZATION: u16 = 30;
    pub const CPU_SYSTEM_UTILIZATION: u16 = 31;
    pub const CPU_UTILIZATION: u16 = 32;
    pub const MEMORY_RSS: u16 = 40;
    pub const MEMORY_MAX_RSS: u16 = 41;
    pub const REQUEST_THREADS_MAXIMUM: u16 = 50;
    pub const REQUEST_THREADS_STARTED: u16 = 51;
    pub const REQUEST_THREADS_ACTIVE: u16 = 52;
    /// Per phase, in `Phase` order: mean (60+), minimum (70+), maximum (80+),
    /// histogram (90+).
    pub const PHASE_MEAN: u16 = 60;
    pub const PHASE_MIN: u16 = 70;
    pub const PHASE_MAX: u16 = 80;
    pub const PHASE_BUCKETS: u16 = 90;
    pub const INPUT_BYTES_TOTAL: u16 = 100;
    pub const INPUT_READS_TOTAL: u16 = 101;
    pub const OUTPUT_BYTES_TOTAL: u16 = 102;
    pub const OUTPUT_WRITES_TOTAL: u16 = 103;
    pub const REQUEST_THREADS_COMPLETED: u16 = 110;
    pub const REQUEST_THREADS_BUSY_TIME: u16 = 111;
    pub const REQUEST_THREADS_CPU_TIME: u16 = 112;
    pub const REQUEST_THREADS_CURRENT_ELAPSED: u16 = 113;
    pub const REQUEST_THREADS_MAX_DURATION: u16 = 114;
    /// 1xx to 5xx: 120 to 124.
    pub const STATUS_1XX_TOTAL: u16 = 120;
    pub const SHUTDOWN_REASON: u16 = 130;
    pub const PROCESS_UPTIME: u16 = 131;
    pub const LIFETIME_REQUEST_COUNT: u16 = 132;
    pub const ACTIVE_REQUESTS_AT_DECISION: u16 = 133;
    pub const ACTIVE_REQUESTS_AT_EXIT: u16 = 134;
    pub const GRACEFUL_DRAIN: u16 = 135;
    pub const SLOW_RECORD_STATE: u16 = 200;
    pub const SLOW_START_STAMP: u16 = 201;
    pub const SLOW_DURATION: u16 = 202;
    pub const SLOW_THREAD_ID: u16 = 203;
    pub const SLOW_LOG_ID: u16 = 204;
    pub const SLOW_SERVER_PID: u16 = 205;
    pub const SLOW_METHOD: u16 = 210;
    pub const SLOW_SCHEME: u16 = 211;
    pub const SLOW_HOSTNAME: u16 = 212;
    pub const SLOW_SCRIPT_NAME: u16 = 213;
    pub const SLOW_PATH_INFO: u16 = 214;
    pub const SLOW_PROTOCOL: u16 = 215;
    pub const SLOW_PEER_IP: u16 = 216;
    pub const SLOW_USER_AGENT: u16 = 217;
    pub const SLOW_SERVER_TIME: u16 = 220;
    pub const SLOW_QUEUE_TIME: u16 = 221;
    pub const SLOW_DAEMON_TIME: u16 = 222;
    pub const SLOW_APPLICATION_TIME: u16 = 223;
    pub const SLOW_GIL_WAIT_TIME: u16 = 224;
    pub const SLOW_GIL_WAIT_COUNT: u16 = 225;
    pub const SLOW_INPUT_BYTES: u16 = 230;
    pub const SLOW_INPUT_READS: u16 = 231;
    pub const SLOW_OUTPUT_BYTES: u16 = 232;
    pub const SLOW_OUTPUT_WRITES: u16 = 233;
    pub const SLOW_INPUT_READ_TIME: u16 = 234;
    pub const SLOW_OUTPUT_WRITE_TIME: u16 = 235;
    pub const SLOW_STATUS: u16 = 240;
    pub const SLOW_CPU_USER_TIME: u16 = 250;
    pub const SLOW_CPU_SYSTEM_TIME: u16 = 251;
    pub const SLOW_ACTIVE_AT_START: u16 = 260;
    pub const SLOW_ACTIVE_AT_COMPLETION: u16 = 261;
    /// gc_count0..2, gc_threshold0..2, gc_collections0..2, gc_collected0..2,
    /// gc_uncollectable0..2, gc_is_enabled, gc_freeze_count, gc_dropped_events: 300-317.
    pub const GC_FIRST: u16 = 300;
    pub const GC_EVENT_START_STAMP: u16 = 320;
    pub const GC_EVENT_DURATION: u16 = 321;
    pub const GC_EVENT_GENERATION: u16 = 322;
    pub const GC_EVENT_COLLECTED: u16 = 323;
    pub const GC_EVENT_UNCOLLECTABLE: u16 = 324;
}

/// Builds one datagram.
pub struct Datagram {
    buf: Vec<u8>,
}

impl Datagram {
    pub fn new(kind: Kind, pid: u32, seq: u32, stamp: f64) -> Datagram {
        let mut buf = Vec::with_capacity(2048);
        buf.extend_from_slice(MAGIC);
        buf.push(VERSION);
        buf.push(kind as u8);
        buf.extend_from_slice(&0u16.to_le_bytes());
        buf.extend_from_slice(&pid.to_le_bytes());
        buf.extend_from_slice(&seq.to_le_bytes());
        buf.extend_from_slice(&stamp.to_le_bytes());
        Datagram { buf }
    }

    fn tag(&mut self, id: u16, kind: u8) {
        self.buf.extend_from_slice(&id.to_le_bytes());
        self.buf.push(kind);
    }

    pub fn u64(&mut self, id: u16, value: u64) -> &mut Self {
        self.tag(id, T_U64);
        self.buf.extend_from_slice(&value.to_le_bytes());
        self
    }

    pub fn f64(&mut self, id: u16, value: f64) -> &mut Self {
        self.tag(id, T_F64);
        self.buf.extend_from_slice(&value.to_le_bytes());
        self
    }

    /// A bytes field, left out when empty (as mod_wsgi 6 does).
    pub fn bytes(&mut self, id: u16, value: &[u8]) -> &mut Self {
        if value.is_empty() {
            return self;
        }
        let value = &value[..value.len().min(usize::from(u16::MAX))];
        self.tag(id, T_BYTES);
        self.buf
            .extend_from_slice(&(value.len() as u16).to_le_bytes());
        self.buf.extend_from_slice(value);
        self
    }

    pub fn i32_array(&mut self, id: u16, values: impl ExactSizeIterator<Item = i32>) -> &mut Self {
        self.tag(id, T_I32_ARRAY);
        self.buf
            .extend_from_slice(&(values.len() as u16).to_le_bytes());
        for v in values {
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
        self
    }

    pub fn f64_array(&mut self, id: u16, values: impl ExactSizeIterator<Item = f64>) -> &mut Self {
        self.tag(id, T_F64_ARRAY);
        self.buf
            .extend_from_slice(&(values.len() as u16).to_le_bytes());
        for v in values {
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
        self
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_and_fields_are_little_endian_tlv() {
        let mut d = Datagram::new(Kind::Request, 0x0102_0304, 7, 1.5);
        d.u64(field::REQUEST_COUNT, 3)
            .bytes(field::HOSTNAME, b"")
            .bytes(field::MPM_NAME, b"event")
            .i32_array(field::PHASE_BUCKETS, [1, -1].into_iter())
            .f64(field::SAMPLE_PERIOD, 0.25);
        let b = d.into_bytes();
        assert_eq!(&b[..8], b"WSGI\x01\x02\x00\x00");
        assert_eq!(&b[8..16], &[4, 3, 2, 1, 7, 0, 0, 0]);
        assert_eq!(f64::from_le_bytes(b[16..24].try_into().unwrap()), 1.5);
        let rest = &b[HEADER_LEN..];
        assert_eq!(&rest[..11], &[20, 0, 1, 3, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&rest[11..21], b"\x04\x00\x04\x05\x00event");
        assert_eq!(
            &rest[21..34],
            &[90, 0, 5, 2, 0, 1, 0, 0, 0, 255, 255, 255, 255]
        );
        assert_eq!(&rest[34..37], &[10, 0, 2]);
        assert_eq!(rest.len(), 45);
    }
}
