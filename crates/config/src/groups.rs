//! Application group, process group and callable object selectors, and how each is
//! expanded into a concrete name for one request.

use crate::ConfigError;

/// `WSGIApplicationGroup`: which interpreter inside the process runs the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplicationGroup {
    /// `%{GLOBAL}`: the main interpreter (name "").
    Global,
    /// `%{RESOURCE}` (default): `server[:port]|script_name`.
    Resource,
    /// `%{SERVER}`: `server[:port]`.
    Server,
    /// `%{HOST}`: request host name `[:port]`.
    Host,
    /// `%{ENV:var}`: the value of a request or process environment variable.
    Env(String),
    /// Any other string: a named interpreter.
    Named(String),
}

/// What a request looks like to group expansion.
pub struct RequestFacts<'a> {
    pub server_name: &'a str,
    pub server_port: u16,
    pub host_name: Option<&'a str>,
    pub script_name: &'a str,
    pub case_sensitive: bool,
    /// Looks a variable up in request notes, then the request environment, then the
    /// process environment.
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

fn with_port(name: &str, port: u16) -> String {
    if port == 80 || port == 443 || port == 0 {
        name.to_owned()
    } else {
        format!("{name}:{port}")
    }
}

impl ApplicationGroup {
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        Ok(match value {
            "%{GLOBAL}" | "" => ApplicationGroup::Global,
            "%{RESOURCE}" => ApplicationGroup::Resource,
            "%{SERVER}" => ApplicationGroup::Server,
            "%{HOST}" => ApplicationGroup::Host,
            v if v.starts_with("%{ENV:") => {
                ApplicationGroup::Env(env_name("WSGIApplicationGroup", v)?)
            }
            v if v.starts_with("%{") => {
                return Err(ConfigError::InvalidValue {
                    directive: "WSGIApplicationGroup",
                    value: v.to_owned(),
                    reason: "unknown %{...} expansion; use %{GLOBAL}, %{RESOURCE}, %{SERVER}, %{HOST} or %{ENV:name}",
                });
            }
            v => ApplicationGroup::Named(v.to_owned()),
        })
    }

    /// The interpreter name for this request; "" is the main interpreter.
    pub fn expand(&self, facts: &RequestFacts<'_>) -> String {
        match self {
            ApplicationGroup::Global => String::new(),
            ApplicationGroup::Resource => {
                let script = if facts.case_sensitive {
                    facts.script_name.to_owned()
                } else {
                    facts.script_name.to_ascii_lowercase()
                };
                format!(
                    "{}|{}",
                    with_port(facts.server_name, facts.server_port),
                    script
                )
            }
            ApplicationGroup::Server => with_port(facts.server_name, facts.server_port),
            ApplicationGroup::Host => with_port(
                facts.host_name.unwrap_or(facts.server_name),
                facts.server_port,
            ),
            ApplicationGroup::Env(var) => match (facts.env)(var) {
                // A variable may itself hold a %{...} token (but not another ENV lookup).
                Some(v) if v.starts_with("%{") && !v.starts_with("%{ENV:") => {
                    ApplicationGroup::parse(&v)
                        .map(|g| g.expand(facts))
                        .unwrap_or(v)
                }
                Some(v) => v,
                None => String::new(),
            },
            ApplicationGroup::Named(name) => name.clone(),
        }
    }
}

fn env_name(directive: &'static str, value: &str) -> Result<String, ConfigError> {
    value
        .strip_prefix("%{ENV:")
        .and_then(|v| v.strip_suffix('}'))
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .ok_or(ConfigError::InvalidValue {
            directive,
            value: value.to_owned(),
            reason: "expected %{ENV:name}",
        })
}

/// `WSGIProcessGroup`: embedded (`%{GLOBAL}`) or a daemon process group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessGroup {
    Global,
    Env(String),
    Named(String),
}

impl ProcessGroup {
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        Ok(match value {
            "%{GLOBAL}" | "" => ProcessGroup::Global,
            v if v.starts_with("%{ENV:") => ProcessGroup::Env(env_name("WSGIProcessGroup", v)?),
            v if v.starts_with("%{") => {
                return Err(ConfigError::InvalidValue {
                    directive: "WSGIProcessGroup",
                    value: v.to_owned(),
                    reason: "use %{GLOBAL}, %{ENV:name} or a daemon process group name",
                });
            }
            v => ProcessGroup::Named(v.to_owned()),
        })
    }

    /// The process group name for this request; "" means embedded mode.
    pub fn expand(&self, env: &dyn Fn(&str) -> Option<String>) -> String {
        match self {
            ProcessGroup::Global => String::new(),
            ProcessGroup::Env(var) => match env(var) {
                Some(v) if v == "%{GLOBAL}" => String::new(),
                Some(v) => v,
                None => String::new(),
            },
            ProcessGroup::Named(name) => name.clone(),
        }
    }
}

/// `WSGICallableObject`: the name of the WSGI callable inside the script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallableObject {
    Named(String),
    Env(String),
}

impl Default for CallableObject {
    fn default() -> Self {
        CallableObject::Named("application".to_owned())
    }
}

impl CallableObject {
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        if value.starts_with("%{ENV:") {
            return Ok(CallableObject::Env(env_name("WSGICallableObject", value)?));
        }
        let valid_identifier = value
            .chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_')
            && value.chars().all(|c| c.is_alphanumeric() || c == '_');
        if !valid_identifier {
            return Err(ConfigError::InvalidValue {
                directive: "WSGICallableObject",
                value: value.to_owned(),
                reason: "must be a Python identifier or %{ENV:name}",
            });
        }
        Ok(CallableObject::Named(value.to_owned()))
    }

    pub fn expand(&self, env: &dyn Fn(&str) -> Option<String>) -> String {
        match self {
            CallableObject::Named(n) => n.clone(),
            CallableObject::Env(var) => env(var).unwrap_or_else(|| "application".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(env: &'a dyn Fn(&str) -> Option<String>) -> RequestFacts<'a> {
        RequestFacts {
            server_name: "example.com",
            server_port: 8080,
            host_name: Some("alias.example.com"),
            script_name: "/App",
            case_sensitive: true,
            env,
        }
    }

    #[test]
    fn expands_every_form() {
        let env = |k: &str| match k {
            "GROUP" => Some("named".to_owned()),
            "INDIRECT" => Some("%{SERVER}".to_owned()),
            _ => None,
        };
        let f = facts(&env);
        let cases = [
            ("%{GLOBAL}", ""),
            ("%{RESOURCE}", "example.com:8080|/App"),
            ("%{SERVER}", "example.com:8080"),
            ("%{HOST}", "alias.example.com:8080"),
            ("%{ENV:GROUP}", "named"),
            ("%{ENV:INDIRECT}", "example.com:8080"),
            ("%{ENV:MISSING}", ""),
            ("literal", "literal"),
        ];
        for (spec, want) in cases {
            assert_eq!(
                ApplicationGroup::parse(spec).unwrap().expand(&f),
                want,
                "{spec}"
            );
        }
    }

    #[test]
    fn port_80_is_omitted_and_case_folding_applies() {
        let env = |_: &str| None;
        let mut f = facts(&env);
        f.server_port = 80;
        f.case_sensitive = false;
        assert_eq!(ApplicationGroup::Resource.expand(&f), "example.com|/app");
    }

    #[test]
    fn rejects_bad_forms() {
        assert!(ApplicationGroup::parse("%{BOGUS}").is_err());
        assert!(ApplicationGroup::parse("%{ENV:}").is_err());
        assert!(CallableObject::parse("not valid").is_err());
        assert_eq!(
            CallableObject::parse("app2"),
            Ok(CallableObject::Named("app2".into()))
        );
        assert!(ProcessGroup::parse("%{HOSTX}").is_err());
    }
}
