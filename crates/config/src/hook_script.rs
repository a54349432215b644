//! The scripts mod_wsgi runs in Apache's own request phases: `WSGIAccessScript`,
//! `WSGIAuthUserScript`, `WSGIAuthGroupScript` and `WSGIDispatchScript`, each
//! `path [application-group=name]`. Without `application-group=` they run in the main
//! interpreter (`%{GLOBAL}`), as in mod_wsgi.

use crate::options::parse_options;
use crate::{ApplicationGroup, ConfigError};

#[derive(Debug, Clone, PartialEq)]
pub struct HookScript {
    pub path: String,
    pub application_group: ApplicationGroup,
}

impl HookScript {
    /// Parses the directive's words: the script, then its options.
    pub fn parse(directive: &'static str, args: &[String]) -> Result<Self, ConfigError> {
        let Some((path, options)) = args.split_first() else {
            return Err(ConfigError::Invalid {
                directive,
                reason: "the script's path is missing".to_owned(),
            });
        };
        let mut application_group = ApplicationGroup::Global;
        for (_, value) in parse_options(directive, options, &["application-group"])? {
            application_group = ApplicationGroup::parse(value)?;
        }
        Ok(HookScript {
            path: path.clone(),
            application_group,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn the_main_interpreter_unless_a_group_is_named() {
        let plain = HookScript::parse("WSGIAuthUserScript", &words("/srv/auth.wsgi")).unwrap();
        assert_eq!(plain.path, "/srv/auth.wsgi");
        assert_eq!(plain.application_group, ApplicationGroup::Global);
        let named = HookScript::parse(
            "WSGIAuthUserScript",
            &words("/srv/auth.wsgi application-group=site"),
        )
        .unwrap();
        assert_eq!(
            named.application_group,
            ApplicationGroup::Named("site".to_owned())
        );
        let server =
            HookScript::parse("WSGIAccessScript", &words("/a application-group=%{SERVER}"))
                .unwrap();
        assert_eq!(server.application_group, ApplicationGroup::Server);
    }

    #[test]
    fn other_options_and_a_missing_path_are_refused() {
        for bad in [
            "/a process-group=g",
            "/a application-group",
            "/a application-group=%{NOPE}",
        ] {
            assert!(
                HookScript::parse("WSGIAccessScript", &words(bad)).is_err(),
                "{bad}"
            );
        }
        assert!(HookScript::parse("WSGIAccessScript", &[]).is_err());
    }
}
