//! `name=value` option lists as written after WSGIScriptAlias and friends.

use crate::ConfigError;

/// Splits one `name=value` token; the value may be empty but the `=` is mandatory.
pub fn split_option<'a>(
    directive: &'static str,
    token: &'a str,
) -> Result<(&'a str, &'a str), ConfigError> {
    token
        .split_once('=')
        .ok_or_else(|| ConfigError::OptionWithoutValue {
            directive,
            option: token.to_owned(),
        })
}

/// Parses `name=value` tokens, accepting only the `allowed` names, each at most once.
pub fn parse_options<'a>(
    directive: &'static str,
    tokens: &'a [String],
    allowed: &[&str],
) -> Result<Vec<(&'a str, &'a str)>, ConfigError> {
    parse(directive, tokens, allowed, false)
}

/// Parses `name=value` tokens, accepting only the `allowed` names; a repeated name's
/// last value wins, as mod_wsgi's WSGIDaemonProcess parser does.
pub fn parse_options_last_wins<'a>(
    directive: &'static str,
    tokens: &'a [String],
    allowed: &[&str],
) -> Result<Vec<(&'a str, &'a str)>, ConfigError> {
    parse(directive, tokens, allowed, true)
}

fn parse<'a>(
    directive: &'static str,
    tokens: &'a [String],
    allowed: &[&str],
    last_wins: bool,
) -> Result<Vec<(&'a str, &'a str)>, ConfigError> {
    let mut seen: Vec<(&str, &str)> = Vec::with_capacity(tokens.len());
    for token in tokens {
        let (name, value) = split_option(directive, token)?;
        if !allowed.contains(&name) {
            return Err(ConfigError::UnknownOption {
                directive,
                option: name.to_owned(),
            });
        }
        if let Some(at) = seen.iter().position(|(n, _)| *n == name) {
            if !last_wins {
                return Err(ConfigError::DuplicateOption {
                    directive,
                    option: name.to_owned(),
                });
            }
            seen.remove(at);
        }
        seen.push((name, value));
    }
    Ok(seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn accepts_known_options() {
        let t = toks(&["process-group=a", "application-group=%{GLOBAL}"]);
        let got = parse_options("X", &t, &["process-group", "application-group"]).unwrap();
        assert_eq!(
            got,
            vec![("process-group", "a"), ("application-group", "%{GLOBAL}")]
        );
    }

    #[test]
    fn rejects_unknown_duplicate_and_valueless() {
        let allowed = ["a"];
        assert!(matches!(
            parse_options("X", &toks(&["b=1"]), &allowed),
            Err(ConfigError::UnknownOption { .. })
        ));
        assert!(matches!(
            parse_options("X", &toks(&["a=1", "a=2"]), &allowed),
            Err(ConfigError::DuplicateOption { .. })
        ));
        assert!(matches!(
            parse_options("X", &toks(&["a"]), &allowed),
            Err(ConfigError::OptionWithoutValue { .. })
        ));
    }
}
