//! WSGIScriptAlias URL matching and its per-alias options.

use crate::{ApplicationGroup, CallableObject, ConfigError, DirConfig, ProcessGroup, parse_on_off};

/// Options after the target of `WSGIScriptAlias[Match]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AliasOptions {
    pub process_group: Option<ProcessGroup>,
    pub application_group: Option<ApplicationGroup>,
    pub callable_object: Option<CallableObject>,
    pub pass_authorization: Option<bool>,
}

impl AliasOptions {
    pub fn parse(directive: &'static str, tokens: &[String]) -> Result<Self, ConfigError> {
        let allowed = [
            "process-group",
            "application-group",
            "callable-object",
            "pass-authorization",
        ];
        let mut opts = AliasOptions::default();
        for (name, value) in crate::parse_options(directive, tokens, &allowed)? {
            match name {
                "process-group" => opts.process_group = Some(ProcessGroup::parse(value)?),
                "application-group" => {
                    opts.application_group = Some(ApplicationGroup::parse(value)?)
                }
                "callable-object" => opts.callable_object = Some(CallableObject::parse(value)?),
                "pass-authorization" => {
                    opts.pass_authorization = Some(parse_on_off(directive, value)?)
                }
                _ => unreachable!("parse_options only yields allowed names"),
            }
        }
        Ok(opts)
    }

    /// These options as the innermost configuration layer: merged over the directory
    /// config with [`crate::Merge`], an option given on the alias wins.
    pub fn as_dir_config(&self) -> DirConfig {
        DirConfig {
            process_group: self.process_group.clone(),
            application_group: self.application_group.clone(),
            callable_object: self.callable_object.clone(),
            pass_authorization: self.pass_authorization,
            ..DirConfig::default()
        }
    }
}

/// The configuration a request runs with: the directory's (`dir`), under the options on
/// the line that mapped the request, which are the innermost layer: a WSGIHandlerScript's
/// (whose callable is always `handle_request`), else a WSGIScriptAlias's.
pub fn request_dir_config(
    dir: Option<&DirConfig>,
    handler_script: Option<&crate::HandlerScript>,
    alias: Option<&AliasOptions>,
) -> DirConfig {
    let innermost = match (handler_script, alias) {
        (Some(h), _) => Some(DirConfig {
            callable_object: Some(CallableObject::Named("handle_request".to_owned())),
            ..h.options.as_dir_config()
        }),
        (None, Some(a)) => Some(a.as_dir_config()),
        (None, None) => None,
    };
    match (dir, innermost) {
        (Some(d), Some(inner)) => crate::Merge::merge(d, &inner),
        (None, Some(inner)) => inner,
        (Some(d), None) => d.clone(),
        (None, None) => DirConfig::default(),
    }
}

/// If `uri` falls under the URL prefix `alias`, returns how many bytes of `uri` the alias
/// covers; the rest (empty or starting with '/') becomes the tail appended to the target.
///
/// Like mod_alias, runs of '/' in either string compare equal. A trailing '/' on the alias
/// is not consumed, so `WSGIScriptAlias / app.wsgi` gives `/foo` as the tail of `/foo`.
pub fn prefix_match_len(alias: &str, uri: &str) -> Option<usize> {
    let alias_had_slash = alias.ends_with('/') && alias.len() > 1;
    let alias = alias.trim_end_matches('/').as_bytes();
    let uri_b = uri.as_bytes();
    let (mut a, mut u) = (0usize, 0usize);
    while a < alias.len() {
        if alias[a] == b'/' {
            if u >= uri_b.len() || uri_b[u] != b'/' {
                return None;
            }
            while a < alias.len() && alias[a] == b'/' {
                a += 1;
            }
            while u < uri_b.len() && uri_b[u] == b'/' {
                u += 1;
            }
        } else {
            if u >= uri_b.len() || uri_b[u] != alias[a] {
                return None;
            }
            a += 1;
            u += 1;
        }
    }
    let at_boundary = u == uri_b.len() || uri_b[u] == b'/';
    if !at_boundary || (alias_had_slash && u == uri_b.len()) {
        return None;
    }
    Some(u)
}

/// Joins an alias target and the rest of the URI (raw bytes) without doubling the slash.
pub fn join_target(target: &[u8], rest: &[u8]) -> Vec<u8> {
    let rest = if target.ends_with(b"/") && rest.starts_with(b"/") {
        &rest[1..]
    } else {
        rest
    };
    [target, rest].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(tokens: &[&str]) -> AliasOptions {
        let tokens: Vec<String> = tokens.iter().map(|t| (*t).to_owned()).collect();
        AliasOptions::parse("WSGIScriptAlias", &tokens).unwrap()
    }

    fn dir() -> DirConfig {
        DirConfig {
            process_group: Some(ProcessGroup::parse("dir-group").unwrap()),
            application_group: Some(ApplicationGroup::parse("dir-app").unwrap()),
            chunked_request: Some(true),
            ..DirConfig::default()
        }
    }

    #[test]
    fn request_config_without_any_layer_is_the_default() {
        assert_eq!(request_dir_config(None, None, None), DirConfig::default());
        assert_eq!(request_dir_config(Some(&dir()), None, None), dir());
    }

    #[test]
    fn alias_options_are_the_innermost_layer() {
        let alias = options(&["process-group=alias-group"]);
        let merged = request_dir_config(Some(&dir()), None, Some(&alias));
        assert_eq!(merged.process_group, alias.process_group);
        assert_eq!(merged.application_group, dir().application_group);
        assert_eq!(merged.chunked_request, Some(true));
        assert_eq!(
            request_dir_config(None, None, Some(&alias)),
            alias.as_dir_config()
        );
    }

    #[test]
    fn a_handler_script_wins_and_always_calls_handle_request() {
        let handler = crate::HandlerScript {
            name: "my-handler".to_owned(),
            script: "/srv/handler.wsgi".to_owned(),
            options: options(&["application-group=handler-app", "callable-object=other"]),
        };
        let alias = options(&["application-group=alias-app"]);
        let merged = request_dir_config(Some(&dir()), Some(&handler), Some(&alias));
        assert_eq!(merged.application_group, handler.options.application_group);
        assert_eq!(merged.process_group, dir().process_group);
        assert_eq!(
            merged.callable_object,
            Some(CallableObject::Named("handle_request".to_owned()))
        );
        let alone = request_dir_config(None, Some(&handler), None);
        assert_eq!(
            alone.callable_object,
            Some(CallableObject::Named("handle_request".to_owned()))
        );
    }

    #[test]
    fn targets_join_without_a_doubled_slash() {
        assert_eq!(join_target(b"/srv/app/", b"/x.wsgi"), b"/srv/app/x.wsgi");
        assert_eq!(
            join_target(b"/srv/app.wsgi", b"/rest"),
            b"/srv/app.wsgi/rest"
        );
        assert_eq!(join_target(b"/srv/", b""), b"/srv/");
    }

    #[test]
    fn prefix_matching_table() {
        let cases: &[(&str, &str, Option<usize>)] = &[
            ("/", "/", Some(0)),
            ("/", "/foo/bar", Some(0)),
            ("/app", "/app", Some(4)),
            ("/app", "/app/x", Some(4)),
            ("/app", "/application", None),
            ("/app", "//app//x", Some(5)),
            ("/apps/", "/apps/hello.wsgi", Some(5)),
            ("/apps/", "/apps", None),
            ("/a/b", "/a//b/c", Some(5)),
            ("/app", "/ap", None),
        ];
        for (alias, uri, want) in cases {
            assert_eq!(
                prefix_match_len(alias, uri),
                *want,
                "alias {alias} uri {uri}"
            );
        }
    }

    #[test]
    fn alias_options() {
        let toks: Vec<String> = [
            "application-group=%{GLOBAL}",
            "pass-authorization=On",
            "callable-object=app",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let o = AliasOptions::parse("WSGIScriptAlias", &toks).unwrap();
        assert_eq!(o.application_group, Some(ApplicationGroup::Global));
        assert_eq!(o.pass_authorization, Some(true));
        assert_eq!(o.callable_object, Some(CallableObject::Named("app".into())));
        let layered = crate::Merge::merge(
            &DirConfig {
                callable_object: Some(CallableObject::Named("dir".into())),
                chunked_request: Some(true),
                ..Default::default()
            },
            &o.as_dir_config(),
        );
        assert_eq!(
            layered.callable_object,
            Some(CallableObject::Named("app".into())),
            "alias wins"
        );
        assert_eq!(
            layered.chunked_request,
            Some(true),
            "directory settings the alias lacks stay"
        );
        let bad = vec!["threads=3".to_string()];
        let err = AliasOptions::parse("WSGIScriptAlias", &bad).unwrap_err();
        assert_eq!(err.to_string(), "WSGIScriptAlias: unknown option 'threads'");
    }
}
