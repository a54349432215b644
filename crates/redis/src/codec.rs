//! How store values and keys look inside Redis. Integers are plain decimal strings (so
//! INCRBY works on them and other Redis clients read numbers), text is stored as it is,
//! and the two cases that would read back as something else carry a tag: bytes always
//! (`\0b` + bytes) and text that looks like an integer or starts with NUL (`\0s` + text).
//! Whatever another client wrote decodes the same way: a canonical integer is an int,
//! UTF-8 is str, anything else is bytes.

use mod_wsgi_store::{KeyKind, Value, ValueRef};

const TAG_BYTES: &[u8] = b"\0b";
const TAG_STR: &[u8] = b"\0s";

/// The integer `raw` spells in canonical decimal (no sign on 0, no leading zeros).
fn canonical_int(raw: &[u8]) -> Option<i64> {
    let n: i64 = std::str::from_utf8(raw).ok()?.parse().ok()?;
    (n.to_string().as_bytes() == raw).then_some(n)
}

pub fn encode_value(value: ValueRef<'_>) -> Vec<u8> {
    match value {
        ValueRef::Int(i) => i.to_string().into_bytes(),
        ValueRef::Bytes(b) => [TAG_BYTES, b].concat(),
        ValueRef::Str(s) if canonical_int(s.as_bytes()).is_some() || s.starts_with('\0') => {
            [TAG_STR, s.as_bytes()].concat()
        }
        ValueRef::Str(s) => s.as_bytes().to_vec(),
    }
}

pub fn decode_value(raw: Vec<u8>) -> Value {
    if let Some(bytes) = raw.strip_prefix(TAG_BYTES) {
        return Value::Bytes(bytes.to_vec());
    }
    if let Some(text) = raw.strip_prefix(TAG_STR)
        && let Ok(text) = std::str::from_utf8(text)
    {
        return Value::Str(text.to_owned());
    }
    if let Some(i) = canonical_int(&raw) {
        return Value::Int(i);
    }
    match String::from_utf8(raw) {
        Ok(text) => Value::Str(text),
        Err(e) => Value::Bytes(e.into_bytes()),
    }
}

/// A key's kind as `keys()` reports it: Redis keeps no kind, so UTF-8 keys come back as str.
pub fn key_kind(key: &[u8]) -> KeyKind {
    if std::str::from_utf8(key).is_ok() {
        KeyKind::Str
    } else {
        KeyKind::Bytes
    }
}

/// A SCAN MATCH pattern for every key starting with `prefix`, glob characters escaped.
pub fn prefix_pattern(prefix: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(prefix.len() + 1);
    for &b in prefix {
        if b"*?[]\\".contains(&b) {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'*');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_reads_back_as_it_went_in() {
        let values = [
            Value::Int(0),
            Value::Int(-42),
            Value::Int(i64::MAX),
            Value::Int(i64::MIN),
            Value::Str(String::new()),
            Value::Str("café".into()),
            Value::Str("42".into()),
            Value::Str("-0".into()),
            Value::Str("007".into()),
            Value::Str("\0b-not-bytes".into()),
            Value::Bytes(Vec::new()),
            Value::Bytes(b"42".to_vec()),
            Value::Bytes(vec![0xff, 0, 0x80]),
        ];
        for v in values {
            assert_eq!(decode_value(encode_value(v.as_ref())), v);
        }
    }

    #[test]
    fn integers_and_plain_text_are_stored_as_other_clients_expect() {
        assert_eq!(encode_value(ValueRef::Int(-7)), b"-7");
        assert_eq!(encode_value(ValueRef::Str("hello")), b"hello");
        assert_eq!(encode_value(ValueRef::Str("12")), b"\0s12");
        assert_eq!(decode_value(b"17".to_vec()), Value::Int(17));
        assert_eq!(decode_value(b"+17".to_vec()), Value::Str("+17".into()));
        assert_eq!(decode_value(vec![0xc3]), Value::Bytes(vec![0xc3]));
    }

    #[test]
    fn scan_patterns_escape_glob_characters() {
        assert_eq!(prefix_pattern(b"app:"), b"app:*");
        assert_eq!(prefix_pattern(b"a*b?[c]\\"), b"a\\*b\\?\\[c\\]\\\\*");
    }
}
