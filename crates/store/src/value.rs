//! The values a store holds, and the kinds a key may have: exactly what Python code puts
//! in comes back out (bytes stay bytes, str stays str, int stays int).

/// A value read out of the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Bytes(Vec<u8>),
    Str(String),
    Int(i64),
}

/// A value on its way into the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueRef<'a> {
    Bytes(&'a [u8]),
    Str(&'a str),
    Int(i64),
}

/// Whether a key was given as text or as bytes; `keys()` hands each back as it came.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeyKind {
    Bytes,
    Str,
}

pub(crate) const KIND_BYTES: u8 = 1;
pub(crate) const KIND_STR: u8 = 2;
pub(crate) const KIND_INT: u8 = 3;

impl ValueRef<'_> {
    pub(crate) fn kind(&self) -> u8 {
        match self {
            ValueRef::Bytes(_) => KIND_BYTES,
            ValueRef::Str(_) => KIND_STR,
            ValueRef::Int(_) => KIND_INT,
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            ValueRef::Bytes(b) => b.len(),
            ValueRef::Str(s) => s.len(),
            ValueRef::Int(_) => 8,
        }
    }

    pub(crate) fn write_to(&self, out: &mut [u8]) {
        match self {
            ValueRef::Bytes(b) => out.copy_from_slice(b),
            ValueRef::Str(s) => out.copy_from_slice(s.as_bytes()),
            ValueRef::Int(i) => out.copy_from_slice(&i.to_ne_bytes()),
        }
    }

    pub(crate) fn matches(&self, kind: u8, stored: &[u8]) -> bool {
        kind == self.kind()
            && match self {
                ValueRef::Bytes(b) => *b == stored,
                ValueRef::Str(s) => s.as_bytes() == stored,
                ValueRef::Int(i) => i.to_ne_bytes() == stored,
            }
    }
}

impl Value {
    pub fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Bytes(b) => ValueRef::Bytes(b),
            Value::Str(s) => ValueRef::Str(s),
            Value::Int(i) => ValueRef::Int(*i),
        }
    }

    /// None when the stored bytes do not form a value of `kind` (damaged memory).
    pub(crate) fn decode(kind: u8, stored: &[u8]) -> Option<Value> {
        Some(match kind {
            KIND_BYTES => Value::Bytes(stored.to_vec()),
            KIND_STR => Value::Str(String::from_utf8(stored.to_vec()).ok()?),
            KIND_INT => Value::Int(i64::from_ne_bytes(stored.try_into().ok()?)),
            _ => return None,
        })
    }
}

impl KeyKind {
    pub(crate) fn code(self) -> u8 {
        match self {
            KeyKind::Bytes => KIND_BYTES,
            KeyKind::Str => KIND_STR,
        }
    }

    pub(crate) fn from_code(code: u8) -> KeyKind {
        if code == KIND_STR {
            KeyKind::Str
        } else {
            KeyKind::Bytes
        }
    }
}
