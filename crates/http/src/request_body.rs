//! Which requests are refused before the application sees them, as mod_wsgi does: for
//! their body, or for the script they map to.

/// A refused request: the status to answer with and the message to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub message: String,
}

impl Refusal {
    fn new(status: u16, message: String) -> Refusal {
        Refusal { status, message }
    }
}

/// Checks a request's Transfer-Encoding and Content-Length headers: only chunked bodies,
/// and those only when `chunked_allowed` (WSGIChunkedRequest On); a Content-Length must be
/// a number no larger than `limit` (LimitRequestBody; 0 is no limit).
pub fn refuse_body(
    transfer_encoding: Option<&str>,
    content_length: Option<&str>,
    chunked_allowed: bool,
    limit: u64,
) -> Option<Refusal> {
    if let Some(te) = transfer_encoding {
        if !te.eq_ignore_ascii_case("chunked") {
            return Some(Refusal::new(
                501,
                format!("WSGI0138: unsupported Transfer-Encoding '{te}'"),
            ));
        }
        if !chunked_allowed {
            return Some(Refusal::new(
                411,
                "WSGI0139: chunked request bodies are refused; enable them with WSGIChunkedRequest On".to_owned(),
            ));
        }
    }
    if let Some(cl) = content_length {
        let Ok(length) = cl.trim().parse::<u64>() else {
            return Some(Refusal::new(
                400,
                format!("WSGI0141: invalid Content-Length '{cl}'"),
            ));
        };
        if limit > 0 && length > limit {
            return Some(Refusal::new(
                413,
                format!(
                    "WSGI1035: request body of {length} bytes exceeds LimitRequestBody {limit}"
                ),
            ));
        }
    }
    None
}

/// What Apache found at the path a request maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptFile {
    Regular,
    Missing,
    /// A directory or anything else that is not a regular file.
    Other,
}

/// Refuses to run `script` unless it is a regular file, and, when no WSGIScriptAlias
/// mapped it (`aliased`), unless `Options ExecCGI` is on for its directory.
pub fn refuse_script(
    script: &str,
    aliased: bool,
    exec_cgi: bool,
    file: ScriptFile,
) -> Option<Refusal> {
    if !aliased && !exec_cgi {
        return Some(Refusal::new(
            403,
            format!("WSGI0134: Options ExecCGI is off in this directory: {script}"),
        ));
    }
    match file {
        ScriptFile::Regular => None,
        ScriptFile::Missing => Some(Refusal::new(
            404,
            format!("WSGI0135: target WSGI script not found or unable to stat: {script}"),
        )),
        ScriptFile::Other => Some(Refusal::new(
            403,
            format!("WSGI0136: target WSGI script is not a regular file: {script}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(te: Option<&str>, cl: Option<&str>, chunked: bool, limit: u64) -> Option<u16> {
        refuse_body(te, cl, chunked, limit).map(|r| r.status)
    }

    #[test]
    fn plain_requests_pass() {
        assert_eq!(status(None, None, false, 0), None);
        assert_eq!(status(None, Some("0"), false, 0), None);
        assert_eq!(status(None, Some(" 42 "), false, 42), None);
        assert_eq!(status(None, Some("99999999999"), false, 0), None);
    }

    #[test]
    fn only_chunked_transfer_encoding_and_only_when_enabled() {
        assert_eq!(status(Some("chunked"), None, true, 0), None);
        assert_eq!(status(Some("Chunked"), None, true, 0), None);
        assert_eq!(status(Some("chunked"), None, false, 0), Some(411));
        let gzip = refuse_body(Some("gzip"), None, true, 0).unwrap();
        assert_eq!(gzip.status, 501);
        assert_eq!(
            gzip.message,
            "WSGI0138: unsupported Transfer-Encoding 'gzip'"
        );
        // The encoding is judged before whether chunked bodies are on.
        assert_eq!(status(Some("gzip, chunked"), None, false, 0), Some(501));
    }

    #[test]
    fn content_length_must_be_a_number() {
        let bad = refuse_body(None, Some("-1"), false, 0).unwrap();
        assert_eq!(bad.status, 400);
        assert_eq!(bad.message, "WSGI0141: invalid Content-Length '-1'");
        assert_eq!(status(None, Some(""), false, 0), Some(400));
        assert_eq!(status(None, Some("12abc"), false, 0), Some(400));
    }

    #[test]
    fn content_length_above_the_limit_is_too_large() {
        let big = refuse_body(None, Some("101"), false, 100).unwrap();
        assert_eq!(big.status, 413);
        assert_eq!(
            big.message,
            "WSGI1035: request body of 101 bytes exceeds LimitRequestBody 100"
        );
        assert_eq!(status(None, Some("100"), false, 100), None);
        // A chunked request with a Content-Length is checked on both.
        assert_eq!(status(Some("chunked"), Some("101"), true, 100), Some(413));
    }

    #[test]
    fn scripts_must_be_regular_files() {
        assert_eq!(
            refuse_script("/s.wsgi", true, false, ScriptFile::Regular),
            None
        );
        assert_eq!(
            refuse_script("/s.wsgi", false, true, ScriptFile::Regular),
            None
        );
        let missing = refuse_script("/s.wsgi", true, true, ScriptFile::Missing).unwrap();
        assert_eq!(
            (missing.status, missing.message.as_str()),
            (
                404,
                "WSGI0135: target WSGI script not found or unable to stat: /s.wsgi"
            )
        );
        let dir = refuse_script("/d", true, true, ScriptFile::Other).unwrap();
        assert_eq!(
            (dir.status, dir.message.as_str()),
            (
                403,
                "WSGI0136: target WSGI script is not a regular file: /d"
            )
        );
    }

    #[test]
    fn unaliased_scripts_need_exec_cgi_first() {
        let refused = refuse_script("/s.wsgi", false, false, ScriptFile::Missing).unwrap();
        assert_eq!(
            (refused.status, refused.message.as_str()),
            (
                403,
                "WSGI0134: Options ExecCGI is off in this directory: /s.wsgi"
            )
        );
    }
}
