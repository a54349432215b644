//! Which process group, interpreter and callable serve one request: the directory's
//! configuration expanded against the request, and the restrictions that refuse a
//! choice. Pure: the Apache layer gathers the facts and looks the daemon group up.

use crate::groups::{ApplicationGroup, RequestFacts};
use crate::merge::DirConfig;

/// Where a request runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// "" for embedded mode, else a daemon process group's name.
    pub process_group: String,
    /// "" for the main interpreter.
    pub application_group: String,
    pub callable: String,
}

/// Why the configuration refuses the request (each a 500 with a log line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("WSGI1039: process group '{0}' is not allowed here by WSGIRestrictProcess")]
    ProcessGroupNotAllowed(String),
    #[error("WSGI0143: embedded mode is disabled by WSGIRestrictEmbedded On")]
    EmbeddedDisabled,
}

/// Expands `dir`'s WSGIProcessGroup, WSGIApplicationGroup (default `%{RESOURCE}`) and
/// WSGICallableObject (default `application`) for the request described by `facts`.
pub fn select(
    dir: &DirConfig,
    facts: &RequestFacts<'_>,
    embedded_restricted: bool,
) -> Result<Selection, Refusal> {
    let process_group = dir
        .process_group
        .as_ref()
        .map_or_else(String::new, |g| g.expand(facts));
    if let Some(allowed) = &dir.restrict_process
        && !allowed.contains(&process_group)
    {
        return Err(Refusal::ProcessGroupNotAllowed(process_group));
    }
    if process_group.is_empty() && embedded_restricted {
        return Err(Refusal::EmbeddedDisabled);
    }
    let application_group = dir
        .application_group
        .as_ref()
        .unwrap_or(&ApplicationGroup::Resource)
        .expand(facts);
    let callable = dir
        .callable_object
        .clone()
        .unwrap_or_default()
        .expand(facts.env);
    Ok(Selection {
        process_group,
        application_group,
        callable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::groups::{CallableObject, ProcessGroup};

    fn facts<'a>(env: &'a dyn Fn(&str) -> Option<String>) -> RequestFacts<'a> {
        RequestFacts {
            server_name: "example.com",
            server_port: 8080,
            host_name: Some("evil.example"),
            script_name: "/app",
            case_sensitive: true,
            env,
        }
    }

    #[test]
    fn defaults_are_embedded_resource_group_and_application() {
        let env = |_: &str| None;
        let s = select(&DirConfig::default(), &facts(&env), false).unwrap();
        assert_eq!(
            s,
            Selection {
                process_group: String::new(),
                application_group: "example.com:8080|/app".into(),
                callable: "application".into(),
            }
        );
    }

    #[test]
    fn groups_and_callable_expand_from_the_request() {
        let env = |name: &str| (name == "APP").then(|| "tenant-a".to_owned());
        let dir = DirConfig {
            process_group: Some(ProcessGroup::parse("%{ENV:APP}").unwrap()),
            application_group: Some(ApplicationGroup::parse("%{GLOBAL}").unwrap()),
            callable_object: Some(CallableObject::parse("%{ENV:APP}").unwrap()),
            ..DirConfig::default()
        };
        let s = select(&dir, &facts(&env), true).unwrap();
        assert_eq!(s.process_group, "tenant-a");
        assert_eq!(s.application_group, "");
        assert_eq!(s.callable, "tenant-a");
    }

    #[test]
    fn restrictions_refuse_with_their_message() {
        let env = |_: &str| None;
        let dir = DirConfig {
            process_group: Some(ProcessGroup::parse("other").unwrap()),
            restrict_process: Some(vec!["site".into()]),
            ..DirConfig::default()
        };
        let refused = select(&dir, &facts(&env), false).unwrap_err();
        assert_eq!(refused, Refusal::ProcessGroupNotAllowed("other".into()));
        assert!(refused.to_string().contains("WSGIRestrictProcess"));
        assert_eq!(
            select(&DirConfig::default(), &facts(&env), true).unwrap_err(),
            Refusal::EmbeddedDisabled
        );
    }
}
