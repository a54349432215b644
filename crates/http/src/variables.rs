//! The `mod_wsgi.*` variables the handler adds to a request's environ.

use mod_wsgi_wire::Environ;
use std::fmt::Write;

/// What the handler resolved for a request, as `mod_wsgi.*` environ variables.
#[derive(Debug, Clone, Default)]
pub struct RequestVariables<'a> {
    /// SCRIPT_NAME and PATH_INFO as Apache set them, before trusted proxy headers.
    pub script_name: &'a str,
    pub path_info: &'a str,
    pub process_group: &'a str,
    pub application_group: &'a str,
    pub callable_object: &'a str,
    pub request_handler: &'a str,
    /// The WSGIHandlerScript's script; empty for other requests.
    pub handler_script: &'a str,
    pub script_reloading: bool,
    pub enable_sendfile: bool,
    pub ignore_activity: bool,
    pub listener_host: &'a str,
    pub request_id: &'a str,
    pub connection_id: &'a str,
    pub server_pid: u32,
    pub listener_port: u16,
    /// Microseconds since the epoch.
    pub request_start: i64,
    pub script_start: u64,
}

impl RequestVariables<'_> {
    /// Replaces whatever `environ` had under these names (and PATH, which mod_wsgi removes
    /// too) with these values, appended in mod_wsgi's order.
    pub fn apply(&self, environ: &mut Environ) {
        let flag = |on: bool| if on { "1" } else { "0" };
        let texts = [
            ("mod_wsgi.script_name", self.script_name),
            ("mod_wsgi.path_info", self.path_info),
            ("mod_wsgi.process_group", self.process_group),
            ("mod_wsgi.application_group", self.application_group),
            ("mod_wsgi.callable_object", self.callable_object),
            ("mod_wsgi.request_handler", self.request_handler),
            ("mod_wsgi.handler_script", self.handler_script),
            ("mod_wsgi.script_reloading", flag(self.script_reloading)),
            ("mod_wsgi.enable_sendfile", flag(self.enable_sendfile)),
            ("mod_wsgi.ignore_activity", flag(self.ignore_activity)),
            ("mod_wsgi.listener_host", self.listener_host),
            ("mod_wsgi.request_id", self.request_id),
            ("mod_wsgi.connection_id", self.connection_id),
        ];
        let numbers: [(&str, &dyn std::fmt::Display); 4] = [
            ("mod_wsgi.server_pid", &self.server_pid),
            ("mod_wsgi.listener_port", &self.listener_port),
            ("mod_wsgi.request_start", &self.request_start),
            ("mod_wsgi.script_start", &self.script_start),
        ];
        // One pass drops whatever Apache's environment had under these names.
        environ.retain(|k| {
            k != "PATH"
                && !(k.starts_with("mod_wsgi.")
                    && (texts.iter().any(|&(t, _)| t == k) || numbers.iter().any(|&(n, _)| n == k)))
        });
        for (key, value) in texts {
            environ.push(key, value);
        }
        for (key, value) in numbers {
            environ.push_with(key, |text| {
                let _ = write!(text, "{value}");
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> RequestVariables<'static> {
        RequestVariables {
            script_name: "/app",
            path_info: "/x",
            process_group: "group",
            application_group: "host|/app",
            callable_object: "application",
            request_handler: "wsgi-script",
            handler_script: "",
            script_reloading: true,
            enable_sendfile: false,
            ignore_activity: true,
            listener_host: "127.0.0.1",
            request_id: "rid",
            connection_id: "cid",
            server_pid: 1234,
            listener_port: 8080,
            request_start: 1_700_000_000_000_000,
            script_start: 1_700_000_000_000_123,
        }
    }

    #[test]
    fn every_variable_is_set_in_order() {
        let mut environ = Environ::default();
        vars().apply(&mut environ);
        let keys: Vec<&str> = environ.iter().map(|(k, _)| k).collect();
        assert_eq!(keys.len(), 17);
        assert_eq!(keys[0], "mod_wsgi.script_name");
        assert_eq!(keys[16], "mod_wsgi.script_start");
        assert_eq!(environ.get("mod_wsgi.process_group"), Some("group"));
        assert_eq!(environ.get("mod_wsgi.handler_script"), Some(""));
        assert_eq!(environ.get("mod_wsgi.script_reloading"), Some("1"));
        assert_eq!(environ.get("mod_wsgi.enable_sendfile"), Some("0"));
        assert_eq!(environ.get("mod_wsgi.ignore_activity"), Some("1"));
        assert_eq!(environ.get("mod_wsgi.server_pid"), Some("1234"));
        assert_eq!(environ.get("mod_wsgi.listener_port"), Some("8080"));
        assert_eq!(
            environ.get("mod_wsgi.request_start"),
            Some("1700000000000000")
        );
    }

    #[test]
    fn apache_values_under_the_same_names_and_path_are_replaced() {
        let mut environ = Environ::default();
        environ.push("PATH", "/usr/bin");
        environ.push("mod_wsgi.process_group", "spoofed");
        environ.push("mod_wsgi.listener_port", "1");
        environ.push("mod_wsgi.other", "kept");
        environ.push("HTTP_HOST", "example.com");
        vars().apply(&mut environ);
        assert_eq!(environ.get("PATH"), None);
        assert_eq!(environ.get("mod_wsgi.process_group"), Some("group"));
        assert_eq!(environ.get("mod_wsgi.listener_port"), Some("8080"));
        assert_eq!(environ.get("mod_wsgi.other"), Some("kept"));
        assert_eq!(environ.get("HTTP_HOST"), Some("example.com"));
        let groups = environ
            .iter()
            .filter(|(k, _)| *k == "mod_wsgi.process_group")
            .count();
        assert_eq!(groups, 1);
    }
}
