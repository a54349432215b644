//! Splitting a request's URI into SCRIPT_NAME and PATH_INFO when Apache kept duplicate
//! slashes in the URI (`MergeSlashes Off`) but not in the path info it computed.

/// The SCRIPT_NAME for `uri` whose tail Apache mapped to `path_info`: the URI is matched
/// against the path info from the end, a run of slashes in the URI standing for one slash
/// of the path info, and the prefix left is extended to the end of its path segment.
pub fn script_name<'a>(uri: &'a str, path_info: &str) -> &'a str {
    if path_info.is_empty() {
        return uri;
    }
    let u = uri.as_bytes();
    let p = path_info.as_bytes();
    let (mut lu, mut lp) = (u.len(), p.len());
    while lu > 0 && lp > 0 && u[lu - 1] == p[lp - 1] {
        lu -= 1;
        lp -= 1;
        if p[lp] == b'/' {
            while lu > 0 && u[lu - 1] == b'/' {
                lu -= 1;
            }
        }
    }
    while lu < u.len() && u[lu] != b'/' {
        lu += 1;
    }
    // The end of a segment is an ASCII '/' or the end: always a character boundary.
    &uri[..lu]
}

#[cfg(test)]
mod tests {
    use super::script_name;

    #[test]
    fn plain_suffix() {
        assert_eq!(script_name("/app/a/b", "/a/b"), "/app");
        assert_eq!(script_name("/app", ""), "/app");
        assert_eq!(script_name("/app/", "/"), "/app");
        assert_eq!(script_name("/a/b", "/a/b"), "");
        assert_eq!(script_name("//a", "/a"), "");
    }

    #[test]
    fn duplicate_slashes_after_the_mount_stay_out_of_script_name() {
        assert_eq!(script_name("/app/a//b", "/a/b"), "/app");
        assert_eq!(script_name("/app//a/b", "/a/b"), "/app");
        assert_eq!(script_name("/app/a///b///c", "/a/b/c"), "/app");
        assert_eq!(script_name("/app//", "/"), "/app");
    }

    #[test]
    fn a_mismatch_ends_at_a_segment_boundary() {
        assert_eq!(script_name("/app/x", "/y"), "/app/x");
        assert_eq!(script_name("/é/a", "/a"), "/é");
    }
}
