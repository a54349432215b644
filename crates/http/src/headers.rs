//! Validation of the status line and headers a WSGI application hands to start_response.

/// Why a status or header given by the application was refused. The texts are mod_wsgi
/// 6's (the offending value as a Python bytes literal), so code and tests written against
/// it read the same; hop-by-hop headers and text outside ISO-8859-1 are refusals of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("status code must be a 3 digit integer: {}", bytes_repr(.0))]
    StatusNotThreeDigits(String),
    #[error("no space following status code: {}", bytes_repr(.0))]
    StatusNoSpace(String),
    #[error("invalid status code {0}: must be 100 to 999")]
    BadStatusCode(u16),
    #[error("control character in status reason phrase: {}", bytes_repr(.0))]
    StatusControlChar(String),
    #[error("header name is empty")]
    EmptyName,
    #[error("space character in header name: {}", bytes_repr(.0))]
    SpaceInName(String),
    #[error("control character in header name: {}", bytes_repr(.0))]
    ControlInName(String),
    #[error("invalid character in header name: {} (a header name is an HTTP token)", bytes_repr(.0))]
    BadName(String),
    #[error("carriage return/line feed character in header value: {}", bytes_repr(.0))]
    CrLfInValue(String),
    #[error("control character in header value: {}", bytes_repr(.0))]
    ControlInValue(String),
    #[error(
        "header {0:?} refused: applications must not set hop-by-hop headers (PEP 3333); the server manages the connection"
    )]
    HopByHop(String),
    #[error(
        "{0} holds a character outside ISO-8859-1 (PEP 3333: headers and status are latin-1 text; encode other text, e.g. RFC 8187 or percent-encoding)"
    )]
    NotLatin1(String),
}

/// Text as Python writes the bytes literal of its ISO-8859-1 encoding: `b'200 OK\r\n'`.
pub fn bytes_repr(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(text.len() + 3);
    out.push('b');
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            c => {
                use std::fmt::Write;
                let _ = write!(out, "\\x{:02x}", u32::from(c) & 0xff);
            }
        }
    }
    out.push(quote);
    out
}

/// A PEP 3333 "native string" as the bytes that go on the wire: each character is one
/// ISO-8859-1 byte. None if a character is above U+00FF.
pub fn latin1_bytes(text: &str) -> Option<Vec<u8>> {
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect()
}

/// A validated status code and reason, as the app wrote them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub code: u16,
    pub status_line: String,
}

/// Checks `"200 OK"`-style status strings (PEP 3333: code, space, reason).
pub fn validate_status(status: &str) -> Result<ResponseHead, HeaderError> {
    let chars: Vec<char> = status.chars().take(4).collect();
    let digits = chars.len() >= 3 && chars[..3].iter().all(char::is_ascii_digit);
    if !digits || chars.get(3).is_some_and(char::is_ascii_digit) {
        return Err(HeaderError::StatusNotThreeDigits(status.to_owned()));
    }
    if chars.get(3).is_some_and(|&c| c != ' ') {
        return Err(HeaderError::StatusNoSpace(status.to_owned()));
    }
    if status.chars().any(|c| c.is_control()) {
        return Err(HeaderError::StatusControlChar(status.to_owned()));
    }
    if latin1_bytes(status).is_none() {
        return Err(HeaderError::NotLatin1(format!("status line {status:?}")));
    }
    let code: u16 = status[..3]
        .parse()
        .map_err(|_| HeaderError::StatusNotThreeDigits(status.to_owned()))?;
    if code < 100 {
        return Err(HeaderError::BadStatusCode(code));
    }
    Ok(ResponseHead {
        code,
        status_line: status.to_owned(),
    })
}

/// Hop-by-hop headers (RFC 9110 7.6.1; `Trailers` as PEP 3333 and RFC 2616 spell it,
/// `Trailer` as HTTP/1.1 does): they describe the connection, which belongs to the
/// server. An application's `Transfer-Encoding: chunked` beside chunks it writes itself
/// would let it end the response early and smuggle a second one onto a kept-alive
/// connection.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
];

/// Whether `name` is a hop-by-hop header (case-insensitive), which PEP 3333 forbids an
/// application to set.
pub fn is_hop_by_hop(name: &str) -> bool {
    // Every name is 2 to 19 bytes long: most headers are ruled out by length alone.
    (2..=19).contains(&name.len()) && HOP_BY_HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Checks one response header: the name is an RFC 9110 token and not a hop-by-hop
/// header, the value has no control characters other than horizontal tab.
pub fn validate_header(name: &str, value: &str) -> Result<(), HeaderError> {
    if name.is_empty() {
        return Err(HeaderError::EmptyName);
    }
    if !name.chars().all(is_token_char) {
        return Err(if name.contains(' ') {
            HeaderError::SpaceInName(name.to_owned())
        } else if name.chars().any(|c| c.is_control()) {
            HeaderError::ControlInName(name.to_owned())
        } else {
            HeaderError::BadName(name.to_owned())
        });
    }
    if is_hop_by_hop(name) {
        return Err(HeaderError::HopByHop(name.to_owned()));
    }
    if value.contains(['\r', '\n']) {
        return Err(HeaderError::CrLfInValue(value.to_owned()));
    }
    if value
        .chars()
        .any(|c| (c.is_control() && c != '\t') || c == '\u{7f}')
    {
        return Err(HeaderError::ControlInValue(value.to_owned()));
    }
    if latin1_bytes(value).is_none() {
        return Err(HeaderError::NotLatin1(format!("header {name:?}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(validate_status("200 OK").unwrap().code, 200);
        assert_eq!(validate_status("404 Not Found").unwrap().code, 404);
        assert_eq!(validate_status("204").unwrap().code, 204);
        for bad in ["OK", "20 OK", "2000 OK", "200OK", "abc def", "", "099 Low"] {
            assert!(validate_status(bad).is_err(), "{bad:?} accepted");
        }
        assert!(matches!(
            validate_status("200 OK\r\nX-Evil: 1"),
            Err(HeaderError::StatusControlChar(_))
        ));
    }

    #[test]
    fn refusals_read_as_mod_wsgi_6_writes_them() {
        let status = |s: &str| validate_status(s).unwrap_err().to_string();
        assert_eq!(status("OK"), "status code must be a 3 digit integer: b'OK'");
        assert_eq!(
            status("2000 OK"),
            "status code must be a 3 digit integer: b'2000 OK'"
        );
        assert_eq!(status("200OK"), "no space following status code: b'200OK'");
        assert_eq!(
            status("200 OK\r\nX-Injected: yes"),
            "control character in status reason phrase: b'200 OK\\r\\nX-Injected: yes'"
        );
        let header = |n: &str, v: &str| validate_header(n, v).unwrap_err().to_string();
        assert_eq!(header("", "v"), "header name is empty");
        assert_eq!(
            header("X Foo", "v"),
            "space character in header name: b'X Foo'"
        );
        assert_eq!(
            header("X\tFoo", "v"),
            "control character in header name: b'X\\tFoo'"
        );
        assert_eq!(
            header("X-A", "line1\nline2"),
            "carriage return/line feed character in header value: b'line1\\nline2'"
        );
        assert_eq!(bytes_repr("it's"), "b\"it's\"");
        assert_eq!(bytes_repr("a'\"\u{7f}\u{e9}\\"), "b'a\\'\"\\x7f\\xe9\\\\'");
    }

    #[test]
    fn native_strings_are_latin1() {
        assert_eq!(latin1_bytes("café").unwrap(), b"caf\xe9");
        assert_eq!(latin1_bytes("\u{00e4}").unwrap(), [0xe4]);
        assert_eq!(latin1_bytes("€"), None);
        assert!(validate_header("X-Name", "café").is_ok());
        assert!(matches!(
            validate_header("X-Price", "5 €"),
            Err(HeaderError::NotLatin1(_))
        ));
        assert!(validate_status("200 Café").is_ok());
        assert!(matches!(
            validate_status("200 €"),
            Err(HeaderError::NotLatin1(_))
        ));
    }

    #[test]
    fn headers() {
        assert!(validate_header("Content-Type", "text/plain; charset=utf-8").is_ok());
        assert!(validate_header("X-Tab", "a\tb").is_ok());
        assert!(validate_header("X-Evil", "a\r\nSet-Cookie: x").is_err());
        assert!(validate_header("X-Nul", "a\0b").is_err());
        assert!(validate_header("Bad Name", "v").is_err());
        assert!(validate_header("Bad:Name", "v").is_err());
        assert!(validate_header("", "v").is_err());
    }

    #[test]
    fn hop_by_hop_headers_are_refused_in_any_case() {
        let names = [
            "Connection",
            "Keep-Alive",
            "Proxy-Authenticate",
            "Proxy-Authorization",
            "TE",
            "Trailer",
            "Trailers",
            "Transfer-Encoding",
            "Upgrade",
        ];
        for name in names {
            for spelled in [
                name.to_owned(),
                name.to_ascii_lowercase(),
                name.to_ascii_uppercase(),
            ] {
                assert!(is_hop_by_hop(&spelled), "{spelled}");
                assert_eq!(
                    validate_header(&spelled, "chunked"),
                    Err(HeaderError::HopByHop(spelled.clone())),
                    "{spelled}"
                );
            }
        }
        let message = validate_header("transfer-encoding", "chunked")
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("\"transfer-encoding\"")
                && message.contains("must not set hop-by-hop headers (PEP 3333)"),
            "{message}"
        );
    }

    #[test]
    fn end_to_end_headers_that_look_alike_pass() {
        for name in [
            "Content-Type",
            "Te-Custom",
            "X-Connection",
            "Connections",
            "Upgrade-Insecure-Requests",
            "Proxy-Authentication-Info",
            "Trailer-X",
            "Transfer-Encodings",
            "T",
            "Keep-Alive-X",
        ] {
            assert!(!is_hop_by_hop(name), "{name}");
            assert_eq!(validate_header(name, "v"), Ok(()), "{name}");
        }
    }
}
