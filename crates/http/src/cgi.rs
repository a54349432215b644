//! The CGI environ's text: bytes decoded as ISO-8859-1, as PEP 3333 prescribes, and the
//! request-line variables Apache's request gives.

use mod_wsgi_wire::Environ;

/// Decodes bytes as ISO-8859-1: one char per byte, as PEP 3333 prescribes for the environ.
pub fn latin1(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len());
    push_latin1(&mut text, bytes);
    text
}

/// `bytes` as text if they are ASCII, which reads the same in Latin-1 and UTF-8: no
/// per-character work.
pub fn as_ascii(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes).ok().filter(|s| s.is_ascii())
}

/// Appends `bytes` decoded as ISO-8859-1 to `text`.
pub fn push_latin1(text: &mut String, bytes: &[u8]) {
    match as_ascii(bytes) {
        Some(ascii) => text.push_str(ascii),
        None => text.extend(bytes.iter().map(|&b| char::from(b))),
    }
}

/// The ISO-8859-1 bytes of text that came from latin-1 (or was checked to fit it): each
/// character's low byte.
pub fn to_latin1(text: &str) -> Vec<u8> {
    text.chars().map(|c| c as u32 as u8).collect()
}

/// A request's line as the CGI variables take it (each already decoded).
#[derive(Debug, Clone, Default)]
pub struct RequestLine {
    pub protocol: String,
    pub method: String,
    /// The query string (`r->args`), without '?'.
    pub args: String,
    /// The URI as the client sent it.
    pub unparsed_uri: String,
    /// The decoded path.
    pub uri: String,
    pub path_info: String,
}

impl RequestLine {
    /// Sets the request-line variables (GATEWAY_INTERFACE, SERVER_PROTOCOL,
    /// REQUEST_METHOD, QUERY_STRING, REQUEST_URI, SCRIPT_NAME, PATH_INFO) in `env`,
    /// replacing what it had under those names.
    pub fn apply(self, env: &mut Environ) {
        let script_name = crate::script_name(&self.uri, &self.path_info).to_owned();
        let vars = [
            ("GATEWAY_INTERFACE", "CGI/1.1".to_owned()),
            ("SERVER_PROTOCOL", self.protocol),
            ("REQUEST_METHOD", self.method),
            ("QUERY_STRING", self.args),
            ("REQUEST_URI", self.unparsed_uri),
            ("SCRIPT_NAME", script_name),
            ("PATH_INFO", self.path_info),
        ];
        for (key, value) in vars {
            env.remove(key);
            env.push(key, &value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_is_one_character() {
        assert_eq!(latin1(b""), "");
        assert_eq!(latin1(b"/plain?a=1"), "/plain?a=1");
        assert_eq!(latin1(b"caf\xe9"), "caf\u{e9}");
        // UTF-8 input is not decoded as UTF-8: each byte stays a character.
        assert_eq!(latin1("é".as_bytes()), "\u{c3}\u{a9}");
        assert_eq!(latin1(b"\xff\x00"), "\u{ff}\u{0}");
    }

    #[test]
    fn latin1_text_goes_back_to_its_bytes() {
        assert_eq!(to_latin1(""), b"");
        assert_eq!(to_latin1("caf\u{e9}"), b"caf\xe9");
        assert_eq!(to_latin1(&latin1(b"\x00\x7f\x80\xff")), b"\x00\x7f\x80\xff");
    }

    #[test]
    fn ascii_is_borrowed_and_anything_else_is_not() {
        assert_eq!(as_ascii(b"abc"), Some("abc"));
        assert_eq!(as_ascii(b""), Some(""));
        assert_eq!(as_ascii(b"caf\xe9"), None);
        assert_eq!(as_ascii("é".as_bytes()), None);
        let mut text = "x=".to_owned();
        push_latin1(&mut text, b"\xe9t\xe9");
        assert_eq!(text, "x=\u{e9}t\u{e9}");
    }

    #[test]
    fn request_line_variables_replace_apaches() {
        let mut env = Environ::default();
        env.push("PATH_INFO", "stale");
        env.push("HTTP_HOST", "example.com");
        RequestLine {
            protocol: "HTTP/1.1".to_owned(),
            method: "POST".to_owned(),
            args: "a=1".to_owned(),
            unparsed_uri: "/app/x%2Fy?a=1".to_owned(),
            uri: "/app/x/y".to_owned(),
            path_info: "/x/y".to_owned(),
        }
        .apply(&mut env);
        assert_eq!(env.get("GATEWAY_INTERFACE"), Some("CGI/1.1"));
        assert_eq!(env.get("SERVER_PROTOCOL"), Some("HTTP/1.1"));
        assert_eq!(env.get("REQUEST_METHOD"), Some("POST"));
        assert_eq!(env.get("QUERY_STRING"), Some("a=1"));
        assert_eq!(env.get("REQUEST_URI"), Some("/app/x%2Fy?a=1"));
        assert_eq!(env.get("SCRIPT_NAME"), Some("/app"));
        assert_eq!(env.get("PATH_INFO"), Some("/x/y"));
        assert_eq!(env.get("HTTP_HOST"), Some("example.com"));
        assert_eq!(env.iter().filter(|(k, _)| *k == "PATH_INFO").count(), 1);
    }

    #[test]
    fn a_missing_request_line_gives_empty_variables() {
        let mut env = Environ::default();
        RequestLine::default().apply(&mut env);
        assert_eq!(env.len(), 7);
        assert_eq!(env.get("SCRIPT_NAME"), Some(""));
        assert_eq!(env.get("QUERY_STRING"), Some(""));
    }
}
