//! The operations a store offers, as plain data, so that every backend takes the same
//! requests and Python sees one set of answers and errors.

use mod_wsgi_store::{KeyKind, Stats, Value};

pub enum Op {
    Get(Vec<u8>),
    Set {
        key: Vec<u8>,
        kind: KeyKind,
        value: Value,
        ttl_ms: Option<i64>,
    },
    Delete(Vec<u8>),
    Incr {
        key: Vec<u8>,
        kind: KeyKind,
        delta: i64,
    },
    CompareAndSet {
        key: Vec<u8>,
        kind: KeyKind,
        expected: Option<Value>,
        new: Value,
        ttl_ms: Option<i64>,
    },
    Keys(Vec<u8>),
    Clear,
    Stats,
}

pub enum Reply {
    Value(Option<Value>),
    Done,
    Bool(bool),
    Int(i64),
    Keys(Vec<(Vec<u8>, KeyKind)>),
    /// What `stats()` returns, which differs by backend.
    Stats(Vec<(&'static str, StatValue)>),
}

pub enum StatValue {
    Int(u64),
    Text(String),
}

impl Reply {
    /// A shared-memory table's figures as `stats()` reports them.
    pub fn memory_stats(s: Stats) -> Reply {
        Reply::Stats(vec![
            ("backend", StatValue::Text("memory".into())),
            ("keys", StatValue::Int(s.keys)),
            ("key_capacity", StatValue::Int(s.key_capacity)),
            ("used_bytes", StatValue::Int(s.used_bytes)),
            ("capacity_bytes", StatValue::Int(s.capacity_bytes)),
        ])
    }
}

/// Why an operation did not happen; each maps to one Python exception.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("no WSGISharedStore named '{0}' (configured: {names})", names = if .1.is_empty() { "none".to_owned() } else { .1.join(", ") })]
    Unknown(String, Vec<String>),
    #[error("{0}")]
    Full(String),
    #[error("{0}")]
    NotAnInteger(String),
    #[error("{0}")]
    Overflow(String),
    #[error("{0}")]
    BadKey(String),
    #[error("{0}")]
    Unavailable(String),
    /// The store exists but this process's group may not use it.
    #[error("{0}")]
    Denied(String),
}
