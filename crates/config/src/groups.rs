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
    /// The ServerName of the virtual host that took the request (mod_wsgi:
    /// `r->server->server_hostname`), never the client's Host header: the names of
    /// `%{RESOURCE}` and `%{SERVER}` groups come from the configuration, so a client
    /// cannot make up new ones.
    pub server_name: &'a str,
    /// From [`RequestPorts::group_port`].
    pub server_port: u16,
    /// The host name of the request (`r->hostname`: the Host header without its port),
    /// for `%{HOST}` alone; when absent or empty, `server_name` stands in.
    pub host_name: Option<&'a str>,
    pub script_name: &'a str,
    pub case_sensitive: bool,
    /// Looks a variable up in request notes, then the request environment, then the
    /// process environment.
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

/// The ports Apache knows for a request, from which the port part of group names is
/// chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestPorts {
    /// `ap_get_server_port`, which mod_wsgi uses: under `UseCanonicalName Off` (the
    /// default) the port of the client's Host header when it has one.
    pub reported: u16,
    /// The port the client wrote in its Host header (or absolute request URI), if any.
    pub from_client: Option<u16>,
    /// The port the connection arrived on.
    pub local: u16,
    /// The port of the virtual host's ServerName; 0 when it names none.
    pub configured: u16,
    /// The scheme's default port (80; 443 with TLS).
    pub default: u16,
}

impl RequestPorts {
    /// The port in `%{RESOURCE}`, `%{SERVER}` and `%{HOST}` names: mod_wsgi's (the
    /// reported port), except that a port the client wrote that is neither the one its
    /// connection arrived on nor the ServerName's is replaced by what Apache reports
    /// when the client writes none (the ServerName's, else the default). A client thus
    /// cannot create an interpreter per port number it invents.
    pub fn group_port(&self) -> u16 {
        match self.from_client {
            Some(port)
                if port == self.reported && port != self.local && port != self.configured =>
            {
                if self.configured != 0 {
                    self.configured
                } else {
                    self.default
                }
            }
            _ => self.reported,
        }
    }
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
            ApplicationGroup::Resource => resource_group(facts),
            ApplicationGroup::Server => server_group(facts),
            ApplicationGroup::Host => host_group(facts),
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

/// `%{RESOURCE}`: `server[:port]|script_name`.
fn resource_group(facts: &RequestFacts<'_>) -> String {
    let script = if facts.case_sensitive {
        facts.script_name.to_owned()
    } else {
        facts.script_name.to_ascii_lowercase()
    };
    format!("{}|{script}", server_group(facts))
}

/// `%{SERVER}`: `server[:port]`.
fn server_group(facts: &RequestFacts<'_>) -> String {
    with_port(facts.server_name, facts.server_port)
}

/// `%{HOST}`: `host[:port]`, the request's host name (the server's when the request
/// names none).
fn host_group(facts: &RequestFacts<'_>) -> String {
    let host = facts
        .host_name
        .filter(|h| !h.is_empty())
        .unwrap_or(facts.server_name);
    with_port(host, facts.server_port)
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

/// `WSGIProcessGroup`: embedded (`%{GLOBAL}`) or a daemon process group, named or
/// expanded per request as mod_wsgi does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessGroup {
    Global,
    /// `%{RESOURCE}`: the group named `server[:port]|script_name`.
    Resource,
    /// `%{SERVER}`: the group named `server[:port]`.
    Server,
    /// `%{HOST}`: the group named `host[:port]` after the request's host name.
    Host,
    Env(String),
    Named(String),
}

impl ProcessGroup {
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        Ok(match value {
            "%{GLOBAL}" | "" => ProcessGroup::Global,
            "%{RESOURCE}" => ProcessGroup::Resource,
            "%{SERVER}" => ProcessGroup::Server,
            "%{HOST}" => ProcessGroup::Host,
            v if v.starts_with("%{ENV:") => ProcessGroup::Env(env_name("WSGIProcessGroup", v)?),
            v if v.starts_with("%{") => {
                return Err(ConfigError::InvalidValue {
                    directive: "WSGIProcessGroup",
                    value: v.to_owned(),
                    reason: "use %{GLOBAL}, %{RESOURCE}, %{SERVER}, %{HOST}, %{ENV:name} or a daemon process group name",
                });
            }
            v => ProcessGroup::Named(v.to_owned()),
        })
    }

    /// The process group name for this request; "" means embedded mode.
    pub fn expand(&self, facts: &RequestFacts<'_>) -> String {
        match self {
            ProcessGroup::Global => String::new(),
            ProcessGroup::Resource => resource_group(facts),
            ProcessGroup::Server => server_group(facts),
            ProcessGroup::Host => host_group(facts),
            ProcessGroup::Env(var) => match (facts.env)(var) {
                // A variable may itself hold a %{...} token (but not another ENV lookup).
                Some(v) if v.starts_with("%{") && !v.starts_with("%{ENV:") => {
                    ProcessGroup::parse(&v)
                        .map(|g| g.expand(facts))
                        .unwrap_or(v)
                }
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
    fn process_groups_expand_like_application_groups() {
        let env = |k: &str| match k {
            "DAEMON" => Some("workers".to_owned()),
            "INDIRECT" => Some("%{SERVER}".to_owned()),
            "EMBEDDED" => Some("%{GLOBAL}".to_owned()),
            "NESTED" => Some("%{ENV:DAEMON}".to_owned()),
            _ => None,
        };
        let f = facts(&env);
        let cases = [
            ("%{GLOBAL}", ""),
            ("%{RESOURCE}", "example.com:8080|/App"),
            ("%{SERVER}", "example.com:8080"),
            ("%{HOST}", "alias.example.com:8080"),
            ("%{ENV:DAEMON}", "workers"),
            ("%{ENV:INDIRECT}", "example.com:8080"),
            ("%{ENV:EMBEDDED}", ""),
            ("%{ENV:NESTED}", "%{ENV:DAEMON}"),
            ("%{ENV:MISSING}", ""),
            ("workers", "workers"),
        ];
        for (spec, want) in cases {
            assert_eq!(
                ProcessGroup::parse(spec).unwrap().expand(&f),
                want,
                "{spec}"
            );
        }
    }

    #[test]
    fn host_falls_back_to_the_server_name() {
        let env = |_: &str| None;
        for host in [None, Some("")] {
            let mut f = facts(&env);
            f.host_name = host;
            assert_eq!(ApplicationGroup::Host.expand(&f), "example.com:8080");
            assert_eq!(ProcessGroup::Host.expand(&f), "example.com:8080");
        }
    }

    /// A request to a server without a port in its ServerName, on port 8080 (default 80).
    fn ports(reported: u16, from_client: Option<u16>) -> RequestPorts {
        RequestPorts {
            reported,
            from_client,
            local: 8080,
            configured: 0,
            default: 80,
        }
    }

    #[test]
    fn the_group_port_is_mod_wsgis_for_ports_the_server_has() {
        // Host: name:8080, the port the client connected to.
        assert_eq!(ports(8080, Some(8080)).group_port(), 8080);
        // Host: name (Apache reports the ServerName's port, else the default).
        assert_eq!(ports(80, None).group_port(), 80);
        // Host: name:80 (port 80 is the default, whatever the connection's).
        assert_eq!(ports(80, Some(80)).group_port(), 80);
        // Behind NAT: ServerName name:443, Apache listening on 8443.
        let nat = RequestPorts {
            reported: 443,
            from_client: Some(443),
            local: 8443,
            configured: 443,
            default: 443,
        };
        assert_eq!(nat.group_port(), 443);
        // UseCanonicalName On: Apache already ignores the client's port.
        assert_eq!(ports(80, Some(1234)).group_port(), 80);
    }

    #[test]
    fn an_invented_port_does_not_make_a_new_group() {
        let env = |_: &str| None;
        let names: std::collections::BTreeSet<String> = [1u16, 81, 443, 1234, 8081, 65535]
            .into_iter()
            .map(|port| {
                let port = ports(port, Some(port)).group_port();
                let mut f = facts(&env);
                f.server_port = port;
                ApplicationGroup::Resource.expand(&f)
            })
            .collect();
        assert_eq!(
            names.into_iter().collect::<Vec<_>>(),
            ["example.com|/App"],
            "ports the server does not listen on fall back to the default"
        );
        let with_server_port = RequestPorts {
            configured: 8443,
            ..ports(1234, Some(1234))
        };
        assert_eq!(with_server_port.group_port(), 8443);
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
        assert!(ProcessGroup::parse("%{ENV:}").is_err());
    }
}
