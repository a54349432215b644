//! Splitting a directive's arguments into words as Apache and mod_wsgi do: words are
//! separated by white space and may be quoted whole (`"a b"`, `'a b'`), and in a
//! `name=value` option the value may be quoted on its own (`display-name='(wsgi:a b)'`),
//! the quotes then dropped. Inside quotes a backslash escapes the quote character.

/// One quoted or bare word starting at `text[0]` (not white space): the word and the
/// rest of the text.
fn word(text: &str) -> (String, &str) {
    let mut chars = text.char_indices();
    let quote = match text.chars().next() {
        Some(q @ ('"' | '\'')) => {
            chars.next();
            q
        }
        _ => {
            let end = text.find(char::is_whitespace).unwrap_or(text.len());
            return (text[..end].to_owned(), &text[end..]);
        }
    };
    let mut out = String::new();
    let mut escaped = false;
    for (i, c) in chars {
        if escaped {
            if c != quote {
                out.push('\\');
            }
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == quote {
            return (out, &text[i + c.len_utf8()..]);
        } else {
            out.push(c);
        }
    }
    if escaped {
        out.push('\\');
    }
    // An unterminated quote runs to the end, as Apache's own splitting does.
    (out, "")
}

/// The words of a directive's argument text.
pub fn split_words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let quoted_start = rest.starts_with(['"', '\'']);
        // `name=` directly followed by a quote: the value is one (quoted) word.
        let name_end = rest.find(|c: char| c == '=' || c.is_whitespace());
        let (token, after) = match name_end {
            Some(eq)
                if !quoted_start
                    && eq > 0
                    && rest[eq..].starts_with('=')
                    && rest[eq + 1..].starts_with(['"', '\'']) =>
            {
                let (value, after) = word(&rest[eq + 1..]);
                (format!("{}{value}", &rest[..=eq]), after)
            }
            _ => word(rest),
        };
        out.push(token);
        rest = after.trim_start();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_option_values_lose_their_quotes_and_keep_their_spaces() {
        assert_eq!(
            split_words(
                "site processes=2 display-name='(wsgi:site a)' lang='en_US.UTF-8' \
                 process-group=\"localhost:8000\""
            ),
            [
                "site",
                "processes=2",
                "display-name=(wsgi:site a)",
                "lang=en_US.UTF-8",
                "process-group=localhost:8000"
            ]
        );
    }

    #[test]
    fn whole_words_quote_and_escape_as_apache_does() {
        assert_eq!(
            split_words(r#"  "/a b/c.wsgi"  'it\'s' plain a\b "x\"y" "#),
            ["/a b/c.wsgi", "it's", "plain", "a\\b", "x\"y"]
        );
        assert_eq!(split_words(""), Vec::<String>::new());
        assert_eq!(split_words("'open quote"), ["open quote"]);
        assert_eq!(split_words("name='open"), ["name=open"]);
        assert_eq!(split_words("=x 'a'b"), ["=x", "a", "b"]);
        assert_eq!(split_words("a=b=c k=''"), ["a=b=c", "k="]);
    }
}
