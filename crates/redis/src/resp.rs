//! RESP2, the Redis wire format: commands go out as arrays of bulk strings; replies come
//! back as one of five types and are parsed from a buffer that may hold only part of one.

/// One reply from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Simple(Vec<u8>),
    Error(String),
    Int(i64),
    /// None is the null bulk string (a missing key).
    Bulk(Option<Vec<u8>>),
    /// None is the null array (an aborted transaction).
    Array(Option<Vec<Reply>>),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed reply from the Redis server: {0}")]
pub struct ProtocolError(pub &'static str);

/// Deepest nesting of arrays accepted; our commands never get more than two levels back.
const MAX_DEPTH: usize = 8;
/// Largest bulk string or array accepted (Redis's own limit for a bulk string).
const MAX_LEN: i64 = 512 << 20;

/// Appends `args` to `out` as one command.
pub fn encode(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.push(b'*');
    out.extend_from_slice(args.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for arg in args {
        out.push(b'$');
        out.extend_from_slice(arg.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// Parses one reply from the front of `buf`: the reply and the bytes it took, or None when
/// `buf` does not hold all of it yet.
pub fn parse(buf: &[u8]) -> Result<Option<(Reply, usize)>, ProtocolError> {
    parse_at(buf, 0, 0)
}

fn line(buf: &[u8], from: usize) -> Option<(&[u8], usize)> {
    let end = buf[from..].windows(2).position(|w| w == b"\r\n")?;
    Some((&buf[from..from + end], from + end + 2))
}

fn number(text: &[u8]) -> Result<i64, ProtocolError> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or(ProtocolError("a length or integer is not a number"))
}

fn parse_at(buf: &[u8], at: usize, depth: usize) -> Result<Option<(Reply, usize)>, ProtocolError> {
    if depth > MAX_DEPTH {
        return Err(ProtocolError("arrays nested too deeply"));
    }
    let Some(&kind) = buf.get(at) else {
        return Ok(None);
    };
    let Some((text, next)) = line(buf, at + 1) else {
        return Ok(None);
    };
    match kind {
        b'+' => Ok(Some((Reply::Simple(text.to_vec()), next))),
        b'-' => Ok(Some((
            Reply::Error(String::from_utf8_lossy(text).into_owned()),
            next,
        ))),
        b':' => Ok(Some((Reply::Int(number(text)?), next))),
        b'$' => {
            let len = number(text)?;
            if len == -1 {
                return Ok(Some((Reply::Bulk(None), next)));
            }
            if !(0..=MAX_LEN).contains(&len) {
                return Err(ProtocolError("bad bulk string length"));
            }
            let end = next + len as usize;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err(ProtocolError("bulk string not followed by CRLF"));
            }
            Ok(Some((Reply::Bulk(Some(buf[next..end].to_vec())), end + 2)))
        }
        b'*' => {
            let len = number(text)?;
            if len == -1 {
                return Ok(Some((Reply::Array(None), next)));
            }
            if !(0..=MAX_LEN).contains(&len) {
                return Err(ProtocolError("bad array length"));
            }
            let mut items = Vec::with_capacity((len as usize).min(1024));
            let mut at = next;
            for _ in 0..len {
                match parse_at(buf, at, depth + 1)? {
                    Some((item, after)) => {
                        items.push(item);
                        at = after;
                    }
                    None => return Ok(None),
                }
            }
            Ok(Some((Reply::Array(Some(items)), at)))
        }
        _ => Err(ProtocolError("unknown reply type")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        encode(&mut out, &[b"SET", b"k", b"a\r\nb"]);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n");
        encode(&mut out, &[b"GET", b""]);
        assert!(out.ends_with(b"*2\r\n$3\r\nGET\r\n$0\r\n\r\n"));
    }

    #[test]
    fn every_reply_type_parses() {
        let cases: &[(&[u8], Reply)] = &[
            (b"+OK\r\n", Reply::Simple(b"OK".to_vec())),
            (b"-ERR no\r\n", Reply::Error("ERR no".into())),
            (b":-42\r\n", Reply::Int(-42)),
            (b"$-1\r\n", Reply::Bulk(None)),
            (b"$0\r\n\r\n", Reply::Bulk(Some(Vec::new()))),
            (b"$4\r\na\r\nb\r\n", Reply::Bulk(Some(b"a\r\nb".to_vec()))),
            (b"*-1\r\n", Reply::Array(None)),
            (
                b"*2\r\n$1\r\n0\r\n*1\r\n:7\r\n",
                Reply::Array(Some(vec![
                    Reply::Bulk(Some(b"0".to_vec())),
                    Reply::Array(Some(vec![Reply::Int(7)])),
                ])),
            ),
        ];
        for (wire, want) in cases {
            assert_eq!(
                parse(wire),
                Ok(Some((want.clone(), wire.len()))),
                "{wire:?}"
            );
        }
    }

    #[test]
    fn a_partial_reply_waits_for_more_bytes_at_every_cut() {
        let wire = b"*3\r\n$5\r\nhello\r\n:1\r\n+OK\r\n:9\r\n";
        let whole = wire.len() - 4;
        for cut in 0..whole {
            assert_eq!(parse(&wire[..cut]), Ok(None), "cut at {cut}");
        }
        let (reply, used) = parse(wire).unwrap().unwrap();
        assert_eq!(used, whole);
        assert!(matches!(reply, Reply::Array(Some(ref v)) if v.len() == 3));
    }

    #[test]
    fn garbage_is_an_error_not_a_hang() {
        assert!(parse(b"?what\r\n").is_err());
        assert!(parse(b":x\r\n").is_err());
        assert!(parse(b"$3\r\nabcde\r\n").is_err());
        assert!(parse(b"$-5\r\n").is_err());
        let deep = "*1\r\n".repeat(20) + ":1\r\n";
        assert!(parse(deep.as_bytes()).is_err());
    }
}
