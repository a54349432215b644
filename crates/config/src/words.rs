//! Splitting a directive's arguments into words as Apache and mod_wsgi do: words are
//! separated by ASCII white space and may be quoted whole (`"a b"`, `'a b'`), and in a
//! `name=value` option the value may be quoted on its own (`display-name='(wsgi:a b)'`),
//! the quotes then dropped. As in Apache's `ap_getword_conf`, a backslash escapes a
//! backslash anywhere, and the quote character inside quotes.

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

/// `text` with Apache's escapes undone: `\\` is one backslash, and inside a word quoted
/// with `quote`, a backslash before it is dropped.
fn unescape(text: &str, quote: Option<char>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(&next) = chars.peek()
            && (next == '\\' || Some(next) == quote)
        {
            out.push(next);
            chars.next();
        } else {
            out.push(c);
        }
    }
    out
}

/// One quoted or bare word starting at `text[0]` (not white space): the word and the
/// rest of the text.
fn word(text: &str) -> (String, &str) {
    let quote = match text.chars().next() {
        Some(q @ ('"' | '\'')) => q,
        _ => {
            let end = text.find(is_space).unwrap_or(text.len());
            return (unescape(&text[..end], None), &text[end..]);
        }
    };
    let body = &text[1..];
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == quote {
            return (unescape(&body[..i], Some(quote)), &body[i + 1..]);
        }
    }
    // An unterminated quote runs to the end, as Apache's own splitting does.
    (unescape(body, Some(quote)), "")
}

/// The words of a directive's argument text.
pub fn split_words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text.trim_start_matches(is_space);
    while !rest.is_empty() {
        let quoted_start = rest.starts_with(['"', '\'']);
        // `name=` directly followed by a quote: the value is one (quoted) word.
        let name_end = rest.find(|c: char| c == '=' || is_space(c));
        let (token, after) = match name_end {
            Some(eq)
                if !quoted_start
                    && eq > 0
                    && rest[eq..].starts_with('=')
                    && rest[eq + 1..].starts_with(['"', '\'']) =>
            {
                let (value, after) = word(&rest[eq + 1..]);
                (format!("{}{value}", unescape(&rest[..=eq], None)), after)
            }
            _ => word(rest),
        };
        out.push(token);
        rest = after.trim_start_matches(is_space);
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

    #[test]
    fn a_double_backslash_is_one_as_in_apache() {
        assert_eq!(split_words(r"^/a\\.b$ 'x\\y'"), [r"^/a\.b$", r"x\y"]);
        // Only ASCII white space separates words.
        assert_eq!(split_words("a\u{a0}b c"), ["a\u{a0}b", "c"]);
    }
}
