//! Typed per-directory and process-wide configuration, and how nested scopes merge.

use crate::{
    ApplicationGroup, CallableObject, HandlerScript, HashSeed, HookScript, IpNet, MapHeadToGet,
    ProcessGroup, ProxyHeader,
};

/// Combines an outer scope with an inner one: a value set in the inner scope wins.
pub trait Merge {
    fn merge(&self, inner: &Self) -> Self;
}

impl<T: Clone> Merge for Option<T> {
    fn merge(&self, inner: &Self) -> Self {
        inner.clone().or_else(|| self.clone())
    }
}

/// Directives valid in server, virtual host and directory scope (`None` = not set here).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DirConfig {
    /// WSGIIgnoreActivity: these requests do not reset a daemon's inactivity-timeout.
    pub ignore_activity: Option<bool>,
    pub process_group: Option<ProcessGroup>,
    pub application_group: Option<ApplicationGroup>,
    pub callable_object: Option<CallableObject>,
    pub pass_authorization: Option<bool>,
    pub chunked_request: Option<bool>,
    pub map_head_to_get: Option<MapHeadToGet>,
    pub script_reloading: Option<bool>,
    pub enable_sendfile: Option<bool>,
    pub trusted_proxy_headers: Option<Vec<ProxyHeader>>,
    pub trusted_proxies: Option<Vec<IpNet>>,
    /// WSGIRestrictProcess: the process groups this scope may select.
    pub restrict_process: Option<Vec<String>>,
    /// WSGIErrorOverride: Apache's error pages replace a daemon application's 4xx/5xx.
    pub error_override: Option<bool>,
    /// WSGIAccessScript: `allow_access(environ, host)` in Apache's access phase.
    pub access_script: Option<HookScript>,
    /// WSGIAuthUserScript: the `wsgi` authn provider (Basic and Digest).
    pub auth_user_script: Option<HookScript>,
    /// WSGIAuthGroupScript: `groups_for_user` behind `Require wsgi-group`.
    pub auth_group_script: Option<HookScript>,
    /// WSGIGroupAuthoritative (accepted; Apache 2.4's authz providers decide instead).
    pub group_authoritative: Option<bool>,
    /// WSGIDispatchScript: picks the process group, application group and callable.
    pub dispatch_script: Option<HookScript>,
    /// WSGIPassApacheRequest: `apache.request_rec` in the environ.
    pub pass_apache_request: Option<bool>,
    /// WSGIHandlerScript lines of directory sections; an inner one replaces an outer
    /// one of the same handler name.
    pub handler_scripts: Option<Vec<HandlerScript>>,
}

impl DirConfig {
    /// The WSGIHandlerScript of this scope for handler `name`.
    pub fn handler_script(&self, name: &str) -> Option<&HandlerScript> {
        self.handler_scripts
            .as_ref()?
            .iter()
            .find(|h| h.name == name)
    }
}

fn merge_handler_scripts(
    outer: &Option<Vec<HandlerScript>>,
    inner: &Option<Vec<HandlerScript>>,
) -> Option<Vec<HandlerScript>> {
    match (outer, inner) {
        (Some(outer), Some(inner)) => Some(
            inner
                .iter()
                .chain(
                    outer
                        .iter()
                        .filter(|o| inner.iter().all(|i| i.name != o.name)),
                )
                .cloned()
                .collect(),
        ),
        _ => inner.clone().or_else(|| outer.clone()),
    }
}

impl Merge for DirConfig {
    fn merge(&self, inner: &Self) -> Self {
        DirConfig {
            process_group: self.process_group.merge(&inner.process_group),
            application_group: self.application_group.merge(&inner.application_group),
            callable_object: self.callable_object.merge(&inner.callable_object),
            pass_authorization: self.pass_authorization.merge(&inner.pass_authorization),
            chunked_request: self.chunked_request.merge(&inner.chunked_request),
            map_head_to_get: self.map_head_to_get.merge(&inner.map_head_to_get),
            script_reloading: self.script_reloading.merge(&inner.script_reloading),
            enable_sendfile: self.enable_sendfile.merge(&inner.enable_sendfile),
            trusted_proxy_headers: self
                .trusted_proxy_headers
                .merge(&inner.trusted_proxy_headers),
            trusted_proxies: self.trusted_proxies.merge(&inner.trusted_proxies),
            restrict_process: self.restrict_process.merge(&inner.restrict_process),
            error_override: self.error_override.merge(&inner.error_override),
            ignore_activity: self.ignore_activity.merge(&inner.ignore_activity),
            access_script: self.access_script.merge(&inner.access_script),
            auth_user_script: self.auth_user_script.merge(&inner.auth_user_script),
            auth_group_script: self.auth_group_script.merge(&inner.auth_group_script),
            group_authoritative: self.group_authoritative.merge(&inner.group_authoritative),
            dispatch_script: self.dispatch_script.merge(&inner.dispatch_script),
            pass_apache_request: self.pass_apache_request.merge(&inner.pass_apache_request),
            handler_scripts: merge_handler_scripts(&self.handler_scripts, &inner.handler_scripts),
        }
    }
}

/// Process-wide Python settings; only valid in the main server scope.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PythonConfig {
    pub python_home: Option<String>,
    pub python_path: Vec<String>,
    pub optimize: Option<i32>,
    pub hash_seed: Option<HashSeed>,
    pub dont_write_bytecode: Option<bool>,
    pub restrict_embedded: Option<bool>,
    pub restrict_stdin: Option<bool>,
    pub restrict_stdout: Option<bool>,
    pub restrict_signal: Option<bool>,
    /// WSGIPythonWarnings, in order (each a `-W` filter).
    pub warnings: Vec<String>,
    /// WSGIPythonEggs: PYTHON_EGG_CACHE of the Apache children.
    pub python_eggs: Option<String>,
    /// WSGISwitchInterval for the Apache children.
    pub switch_interval: Option<std::time::Duration>,
    /// `<WSGIInterpreterOptions>` blocks, in the order they were written.
    pub interpreter_options: Vec<crate::InterpreterOptions>,
    /// WSGIServerMetrics: `mod_wsgi.server_metrics()` answers in embedded mode.
    pub server_metrics: Option<bool>,
    /// WSGIPerInterpreterGIL and WSGIFreeThreading as written (what they can do depends
    /// on the Python the module links).
    pub per_interpreter_gil: Option<bool>,
    pub free_threading: Option<bool>,
    /// WSGIDestroyInterpreter (interpreters are never finalised here).
    pub destroy_interpreter: Option<bool>,
    /// WSGITelemetryService, WSGISlowRequests and WSGITelemetryOptions.
    pub telemetry: crate::TelemetryConfig,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inner_wins_only_when_set() {
        let outer = DirConfig {
            application_group: Some(ApplicationGroup::Global),
            chunked_request: Some(true),
            ..Default::default()
        };
        let inner = DirConfig {
            chunked_request: Some(false),
            ..Default::default()
        };
        let merged = outer.merge(&inner);
        assert_eq!(merged.application_group, Some(ApplicationGroup::Global));
        assert_eq!(merged.chunked_request, Some(false));
        assert_eq!(merged.script_reloading, None);
    }
}
