//! The source files a Python traceback names (`File "path", line N`): what a daemon
//! whose application failed to load watches, so that fixing the file retries at once.

/// Most files taken from one traceback.
const MAX_FILES: usize = 64;

/// The distinct absolute paths named by `File "..."` lines of `text`, in order, without
/// Python's pseudo-files (`<frozen importlib._bootstrap>`, `<string>`).
pub fn files_named_in_traceback(text: &str) -> Vec<String> {
    let mut files: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("File \"") {
        rest = &rest[start + 6..];
        let Some(end) = rest.find('"') else { break };
        let path = &rest[..end];
        rest = &rest[end..];
        if path.starts_with('/') && !files.iter().any(|f| f == path) {
            files.push(path.to_owned());
            if files.len() == MAX_FILES {
                break;
            }
        }
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_each_real_file_once_in_order() {
        let text = r#"Traceback (most recent call last):
  File "/srv/app/app.wsgi", line 3, in <module>
    import settings
  File "<frozen importlib._bootstrap>", line 1178, in _find_and_load
  File "/srv/app/settings.py", line 2
    VERSION = = 3
              ^
SyntaxError: invalid syntax
  File "/srv/app/app.wsgi", line 9, in <module>
"#;
        assert_eq!(
            files_named_in_traceback(text),
            ["/srv/app/app.wsgi", "/srv/app/settings.py"]
        );
    }

    #[test]
    fn odd_text_gives_nothing_and_never_panics() {
        assert!(files_named_in_traceback("").is_empty());
        assert!(files_named_in_traceback("File \"").is_empty());
        assert!(files_named_in_traceback("File \"relative.py\", line 1").is_empty());
        let many: String = (0..200)
            .map(|i| format!("File \"/f{i}.py\", line 1\n"))
            .collect();
        assert_eq!(files_named_in_traceback(&many).len(), MAX_FILES);
    }
}
