//! Validation of the status line and headers a WSGI application hands to start_response.

/// Why a status or header given by the application was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("invalid status line {0:?}: expected three digits, a space and a reason phrase")]
    BadStatus(String),
    #[error("invalid status code {0}: must be 100 to 999")]
    BadStatusCode(u16),
    #[error("status line {0:?} contains a control character")]
    StatusControlChar(String),
    #[error("invalid header name {0:?}: must be a non-empty HTTP token")]
    BadName(String),
    #[error("header {name:?} has a value containing a control character (CR/LF injection?)")]
    BadValue { name: String },
}

/// A validated status code and reason, as the app wrote them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub code: u16,
    pub status_line: String,
}

/// Checks `"200 OK"`-style status strings (PEP 3333: code, space, reason).
pub fn validate_status(status: &str) -> Result<ResponseHead, HeaderError> {
    if status.chars().any(|c| c.is_control()) {
        return Err(HeaderError::StatusControlChar(status.to_owned()));
    }
    let bytes = status.as_bytes();
    let digits_ok = bytes.len() >= 3 && bytes[..3].iter().all(u8::is_ascii_digit);
    if !digits_ok || (bytes.len() > 3 && bytes[3] != b' ') {
        return Err(HeaderError::BadStatus(status.to_owned()));
    }
    let code: u16 = status[..3]
        .parse()
        .map_err(|_| HeaderError::BadStatus(status.to_owned()))?;
    if code < 100 {
        return Err(HeaderError::BadStatusCode(code));
    }
    Ok(ResponseHead {
        code,
        status_line: status.to_owned(),
    })
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Checks one response header: the name is an RFC 9110 token, the value has no control
/// characters other than horizontal tab.
pub fn validate_header(name: &str, value: &str) -> Result<(), HeaderError> {
    if name.is_empty() || !name.chars().all(is_token_char) {
        return Err(HeaderError::BadName(name.to_owned()));
    }
    if value
        .chars()
        .any(|c| (c.is_control() && c != '\t') || c == '\u{7f}')
    {
        return Err(HeaderError::BadValue {
            name: name.to_owned(),
        });
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
    fn headers() {
        assert!(validate_header("Content-Type", "text/plain; charset=utf-8").is_ok());
        assert!(validate_header("X-Tab", "a\tb").is_ok());
        assert!(validate_header("X-Evil", "a\r\nSet-Cookie: x").is_err());
        assert!(validate_header("X-Nul", "a\0b").is_err());
        assert!(validate_header("Bad Name", "v").is_err());
        assert!(validate_header("Bad:Name", "v").is_err());
        assert!(validate_header("", "v").is_err());
    }
}
