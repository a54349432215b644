//! The mod_wsgi-express options that each become a few Apache directives: resolved from
//! the command line into lines of configuration (pure, unit-tested), and the options for
//! features this module lacks refused or warned about by name, never ignored.

use crate::cli::ServerArgs;
use mod_wsgi_config::{IpNet, MapHeadToGet, ProxyHeader, positive_seconds};
use std::path::Path;

/// What the options add to the generated configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Features {
    /// Apache modules to load (mod_NAME.so).
    pub modules: Vec<&'static str>,
    /// Server-level directives.
    pub lines: Vec<String>,
    /// Directives inside the document root's <Directory>.
    pub document_root: Vec<String>,
    /// Extra WSGIDaemonProcess options.
    pub daemon_options: Vec<(String, String)>,
    /// WSGIHandlerScript (handler name, script) lines, run in the site's groups.
    pub handlers: Vec<(String, std::path::PathBuf)>,
    /// Printed on stderr before Apache starts.
    pub warnings: Vec<String>,
}

/// Quotes a value for an Apache directive argument.
pub fn q(value: impl AsRef<str>) -> String {
    let v = value.as_ref();
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

/// An option's path made absolute (Apache resolves relative ones against the server
/// root), quoted.
fn path(p: &Path) -> String {
    q(crate::locate::absolute(p).to_string_lossy())
}

pub fn pairs(flat: &[String]) -> Vec<(String, String)> {
    flat.chunks(2)
        .map(|c| (c[0].clone(), c.get(1).cloned().unwrap_or_default()))
        .collect()
}

const COMPRESSED_TYPES: [&str; 8] = [
    "text/plain",
    "text/html",
    "text/xml",
    "text/css",
    "text/javascript",
    "application/xhtml+xml",
    "application/javascript",
    "application/json",
];

/// Options that configure a feature mod_wsgi_rs does not have: refused, naming it.
fn refuse_missing(args: &ServerArgs) -> Result<(), String> {
    let s = &args.site;
    let missing: [(bool, &str, &str); 1] = [(s.with_php5, "--with-php5", "PHP")];
    match missing.iter().find(|m| m.0) {
        Some((_, option, feature)) => Err(format!(
            "{option}: mod_wsgi_rs does not have {feature} yet; drop the option"
        )),
        None => Ok(()),
    }
}

/// --host-access-script, --auth-user-script (with --auth-type) and --auth-group-script
/// (with --auth-group) protect the whole site, as mod_wsgi-express writes them.
fn access_and_auth(args: &ServerArgs, f: &mut Features) -> Result<(), String> {
    let s = &args.site;
    if let Some(script) = &s.host_access_script {
        f.lines.push(format!(
            "<Location />\n    WSGIAccessScript {}\n</Location>",
            path(script)
        ));
    }
    let Some(user_script) = &s.auth_user_script else {
        return match &s.auth_group_script {
            Some(_) => Err(
                "--auth-group-script: groups are checked for authenticated users; add --auth-user-script"
                    .to_owned(),
            ),
            None => Ok(()),
        };
    };
    let (kind, module) = match s.auth_type.to_ascii_lowercase().as_str() {
        "basic" => ("Basic", "auth_basic"),
        "digest" => ("Digest", "auth_digest"),
        other => return Err(format!("--auth-type {other}: Basic or Digest")),
    };
    f.modules.extend(["authn_core", module, "authz_user"]);
    let realm = format!(
        "{}:{}",
        args.host.as_deref().unwrap_or("localhost"),
        args.port
    );
    let mut block = format!(
        "<Location />\n    AuthType {kind}\n    AuthName {}\n    Auth{kind}Provider wsgi\n    WSGIAuthUserScript {}\n",
        q(realm),
        path(user_script)
    );
    if let Some(group_script) = &s.auth_group_script {
        block.push_str(&format!("    WSGIAuthGroupScript {}\n", path(group_script)));
    }
    block.push_str("    <RequireAll>\n        Require valid-user\n");
    if s.auth_group_script.is_some() {
        block.push_str(&format!(
            "        Require wsgi-group {}\n",
            q(&s.auth_group)
        ));
    }
    block.push_str("    </RequireAll>\n</Location>");
    f.lines.push(block);
    Ok(())
}

/// --add-handler EXTENSION SCRIPT: document-root files with that extension are handled by
/// the script's `handle_request` (a WSGIHandlerScript per script, in the site's group).
fn resource_handlers(args: &ServerArgs, f: &mut Features) -> Result<(), String> {
    for (i, (extension, script)) in pairs(&args.site.add_handler).into_iter().enumerate() {
        if !extension.starts_with('.') || extension.len() < 2 {
            return Err(format!(
                "--add-handler {extension} {script}: the extension starts with a dot (.php)"
            ));
        }
        let name = format!("wsgi-resource-{}", i + 1);
        f.document_root
            .push(format!("AddHandler {name} {}", q(&extension)));
        f.handlers
            .push((name, crate::locate::absolute(Path::new(&script))));
    }
    Ok(())
}

fn daemon_options(args: &ServerArgs, f: &mut Features) {
    let t = &args.tuning;
    let mut add = |k: &str, v: String| f.daemon_options.push((k.to_owned(), v));
    add("listen-backlog", t.daemon_backlog.to_string());
    add("deadlock-timeout", t.deadlock_timeout.to_string());
    for (key, value) in [
        ("cpu-time-limit", t.cpu_time_limit),
        ("eviction-timeout", t.eviction_timeout),
        ("interrupt-timeout", t.interrupt_timeout),
        ("receive-buffer-size", t.receive_buffer_size),
        ("header-buffer-size", t.header_buffer_size),
        ("response-buffer-size", t.response_buffer_size),
        ("response-socket-timeout", t.response_socket_timeout),
    ] {
        if value != 0 {
            add(key, value.to_string());
        }
    }
    if let Some(size) = t.send_buffer_size {
        add("send-buffer-size", size.to_string());
    }
    if t.response_flush_delay != 5 {
        add("response-flush-delay", t.response_flush_delay.to_string());
    }
    if let Some(interval) = t.switch_interval {
        add("switch-interval", interval.to_string());
    }
    if let Some(eggs) = &args.runtime.python_eggs {
        add(
            "python-eggs",
            crate::locate::absolute(eggs).display().to_string(),
        );
    }
}

fn proxies(args: &ServerArgs, f: &mut Features) -> Result<(), String> {
    let https = &args.https;
    if !https.trust_proxy_header.is_empty() {
        for h in &https.trust_proxy_header {
            ProxyHeader::parse(h).map_err(|e| format!("--trust-proxy-header {h}: {e}"))?;
        }
        f.lines.push(format!(
            "WSGITrustedProxyHeaders {}",
            https.trust_proxy_header.join(" ")
        ));
    }
    if !https.trust_proxy.is_empty() {
        for n in &https.trust_proxy {
            IpNet::parse(n).map_err(|e| format!("--trust-proxy {n}: {e}"))?;
        }
        f.lines.push(format!(
            "WSGITrustedProxies {}",
            https.trust_proxy.join(" ")
        ));
    }
    let mounts = pairs(&args.site.proxy_mount_point);
    if !mounts.is_empty() || !args.site.proxy_virtual_host.is_empty() {
        f.modules.extend(["proxy", "proxy_http"]);
        let timeout = args.tuning.proxy_timeout.unwrap_or(args.socket_timeout);
        f.lines.push(format!("ProxyTimeout {timeout}"));
    }
    for (url, target) in mounts {
        if !url.starts_with('/') {
            return Err(format!("--proxy-mount-point {url}: must start with /"));
        }
        f.lines
            .push(format!("ProxyPass {} {}", q(&url), q(&target)));
        f.lines
            .push(format!("ProxyPassReverse {} {}", q(&url), q(&target)));
    }
    Ok(())
}

fn request_timeouts(args: &ServerArgs, f: &mut Features) {
    let t = &args.tuning;
    f.modules.push("reqtimeout");
    let header = format!(
        "header={}-{},MinRate={}",
        t.header_timeout, t.header_max_timeout, t.header_min_rate
    );
    let body = if t.body_max_timeout == 0 {
        format!("body={},MinRate={}", t.body_timeout, t.body_min_rate)
    } else {
        format!(
            "body={}-{},MinRate={}",
            t.body_timeout, t.body_max_timeout, t.body_min_rate
        )
    };
    f.lines.push(format!("RequestReadTimeout {header} {body}"));
    f.lines.push(format!("ListenBacklog {}", t.server_backlog));
}

fn document_root(args: &ServerArgs, f: &mut Features) {
    let s = &args.site;
    if let Some(index) = &s.directory_index {
        f.document_root.push(format!("DirectoryIndex {}", q(index)));
    }
    if s.directory_listing {
        f.modules.push("autoindex");
        f.document_root.push("Options +Indexes".to_owned());
    }
    if !s.allow_override.is_empty() {
        f.document_root
            .push(format!("AllowOverride {}", s.allow_override.join(" ")));
    }
    if s.with_cgi {
        f.modules.push("cgid");
        f.document_root.push("Options +ExecCGI".to_owned());
        f.document_root
            .push("AddHandler cgi-script .cgi".to_owned());
    }
}

fn flags(args: &ServerArgs, f: &mut Features) -> Result<(), String> {
    let s = &args.site;
    let r = &args.runtime;
    if s.compress_responses {
        f.modules.extend(["filter", "deflate"]);
        for t in COMPRESSED_TYPES {
            f.lines.push(format!("AddOutputFilterByType DEFLATE {t}"));
        }
    }
    if s.server_status {
        f.modules.push("status");
        f.lines.push("ExtendedStatus On".to_owned());
        f.lines.push(
            "<Location /server-status>\n    SetHandler server-status\n    Require all denied\n    Require local\n</Location>"
                .to_owned(),
        );
    }
    if s.server_metrics || s.server_status {
        f.lines.push("WSGIServerMetrics On".to_owned());
    }
    if let Some(map) = &s.map_head_to_get {
        MapHeadToGet::parse(map).map_err(|e| format!("--map-head-to-get {map}: {e}"))?;
        f.lines.push(format!("WSGIMapHEADToGET {map}"));
    }
    for (status, url) in pairs(&s.error_document) {
        if status
            .parse::<u16>()
            .map_or(true, |n| !(400..600).contains(&n))
        {
            return Err(format!(
                "--error-document {status} {url}: the status must be 400 to 599"
            ));
        }
        f.lines.push(format!("ErrorDocument {status} {}", q(&url)));
    }
    for (on, line) in [
        (s.error_override, "WSGIErrorOverride On"),
        (s.chunked_request, "WSGIChunkedRequest On"),
        (
            s.enable_sendfile,
            "EnableSendfile On\nWSGIEnableSendfile On",
        ),
        (s.free_threading, "WSGIFreeThreading On"),
        (r.disable_reloading, "WSGIScriptReloading Off"),
        (r.orphan_interpreter, "WSGIDestroyInterpreter Off"),
        (args.logs.verbose_debugging, "WSGIVerboseDebugging On"),
    ] {
        if on {
            f.lines.push(line.to_owned());
        }
    }
    for name in &r.passenv {
        f.lines.push(format!("PassEnv {}", q(name)));
    }
    for spec in &r.python_warnings {
        f.lines.push(format!("WSGIPythonWarnings {}", q(spec)));
    }
    if let Some(prefix) = &r.socket_prefix {
        f.lines.push(format!("WSGISocketPrefix {}", path(prefix)));
    }
    if let Some(eggs) = &r.python_eggs {
        f.lines.push(format!("WSGIPythonEggs {}", path(eggs)));
    }
    if let Some(interval) = args.tuning.switch_interval {
        positive_seconds("WSGISwitchInterval", &interval.to_string())
            .map_err(|e| format!("--switch-interval {interval}: {e}"))?;
        f.lines.push(format!("WSGISwitchInterval {interval}"));
    }
    for url in &args.tuning.ignore_activity {
        f.lines.push(format!(
            "<Location {}>\n    WSGIIgnoreActivity On\n</Location>",
            q(url)
        ));
    }
    if let Some(rules) = &s.rewrite_rules {
        if !rules.is_file() {
            return Err(format!("--rewrite-rules {}: no such file", rules.display()));
        }
        f.modules.push("rewrite");
        f.lines
            .push("RewriteEngine On\nRewriteOptions InheritDown".to_owned());
        f.lines.push(format!("Include {}", path(rules)));
    }
    Ok(())
}

/// --telemetry-service, --slow-requests and --telemetry-options, checked as
/// mod_wsgi-express 6.1 checks them (--enable-telemetry adds its own target).
fn telemetry(args: &ServerArgs, f: &mut Features) -> Result<(), String> {
    let s = &args.site;
    if let Some(target) = &s.telemetry_service
        && !target.starts_with("unix:")
    {
        return Err(
            "--telemetry-service must be 'unix:/path' (remote udp: targets are not supported)"
                .to_owned(),
        );
    }
    if let Some(seconds) = s.slow_requests {
        if seconds < 0.0 {
            return Err("--slow-requests: the threshold must not be negative".to_owned());
        }
        if s.telemetry_service.is_none() && !s.enable_telemetry {
            return Err(
                "--slow-requests requires --telemetry-service or --enable-telemetry".to_owned(),
            );
        }
    }
    if let Some(target) = &s.telemetry_service {
        f.lines.push(format!(
            "WSGITelemetryService {} interval={}",
            q(target),
            s.telemetry_interval
        ));
    }
    if let Some(seconds) = s.slow_requests {
        f.lines.push(format!("WSGISlowRequests {seconds}"));
    }
    for o in &s.telemetry_options {
        f.lines.push(format!("WSGITelemetryOptions {o}"));
    }
    if s.enable_docs {
        f.warnings
            .push("--enable-docs: mod_wsgi_rs bundles no documentation; nothing is served at /__wsgi__/docs".to_owned());
    }
    Ok(())
}

/// Resolves the options into configuration; refuses the ones this module cannot honour.
pub fn resolve(args: &ServerArgs) -> Result<Features, String> {
    refuse_missing(args)?;
    let mut f = Features::default();
    flags(args, &mut f)?;
    access_and_auth(args, &mut f)?;
    resource_handlers(args, &mut f)?;
    proxies(args, &mut f)?;
    request_timeouts(args, &mut f);
    document_root(args, &mut f);
    telemetry(args, &mut f)?;
    if !args.embedded_mode {
        daemon_options(args, &mut f);
    }
    if args.https.http2 {
        f.modules.push("http2");
        f.lines.push("Protocols h2 h2c http/1.1".to_owned());
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn args(extra: &[&str]) -> ServerArgs {
        let mut all = vec!["wsgi-express", "start-server"];
        all.extend_from_slice(extra);
        match Cli::try_parse_from(all).expect("options parse").command {
            Command::StartServer(a) => a,
            _ => unreachable!("start-server"),
        }
    }

    #[test]
    fn defaults_set_mod_wsgi_express_timeouts_and_backlogs() {
        let f = resolve(&args(&[])).unwrap();
        assert_eq!(
            f.lines,
            [
                "RequestReadTimeout header=15-30,MinRate=500 body=15,MinRate=500",
                "ListenBacklog 500"
            ]
        );
        assert_eq!(f.modules, ["reqtimeout"]);
        assert_eq!(
            f.daemon_options,
            [
                ("listen-backlog".to_owned(), "100".to_owned()),
                ("deadlock-timeout".to_owned(), "60".to_owned())
            ]
        );
        assert!(f.warnings.is_empty());
    }

    #[test]
    fn flags_become_directives() {
        let f = resolve(&args(&[
            "--server-status",
            "--compress-responses",
            "--passenv",
            "HOME",
            "--python-warnings",
            "error",
            "--error-document",
            "404",
            "/missing",
            "--directory-index",
            "index.html",
            "--interrupt-timeout",
            "5",
            "--send-buffer-size",
            "0",
            "--switch-interval",
            "0.01",
            "--map-head-to-get",
            "Off",
        ]))
        .unwrap();
        for line in [
            "ExtendedStatus On",
            "WSGIServerMetrics On",
            "AddOutputFilterByType DEFLATE application/json",
            "PassEnv \"HOME\"",
            "WSGIPythonWarnings \"error\"",
            "ErrorDocument 404 \"/missing\"",
            "WSGISwitchInterval 0.01",
            "WSGIMapHEADToGET Off",
        ] {
            assert!(f.lines.iter().any(|l| l == line), "{line} in {:?}", f.lines);
        }
        assert!(f.modules.contains(&"status") && f.modules.contains(&"deflate"));
        assert_eq!(f.document_root, ["DirectoryIndex \"index.html\""]);
        for (k, v) in [
            ("interrupt-timeout", "5"),
            ("send-buffer-size", "0"),
            ("switch-interval", "0.01"),
        ] {
            assert!(
                f.daemon_options.contains(&(k.to_owned(), v.to_owned())),
                "{k}={v} in {:?}",
                f.daemon_options
            );
        }
    }

    #[test]
    fn bad_values_and_missing_features_are_refused() {
        for (given, expected) in [
            (
                &["--trust-proxy-header", "X-Bogus"][..],
                "--trust-proxy-header X-Bogus",
            ),
            (
                &["--trust-proxy", "10.0.0.0/99"][..],
                "--trust-proxy 10.0.0.0/99",
            ),
            (&["--error-document", "200", "/x"][..], "400 to 599"),
            (
                &["--map-head-to-get", "maybe"][..],
                "--map-head-to-get maybe",
            ),
            (
                &["--auth-group-script", "/g.py"][..],
                "add --auth-user-script",
            ),
            (
                &["--auth-user-script", "/u.py", "--auth-type", "x"][..],
                "Basic or Digest",
            ),
            (&["--with-php5"][..], "PHP"),
        ] {
            let err = resolve(&args(given)).unwrap_err();
            assert!(err.contains(expected), "{given:?}: {err}");
        }
        let f = resolve(&args(&["--telemetry-service", "unix:/t.sock"])).unwrap();
        assert!(f.warnings.is_empty(), "{:?}", f.warnings);
        assert!(
            f.lines
                .contains(&"WSGITelemetryService \"unix:/t.sock\" interval=1".to_owned())
        );
        for (given, expected) in [
            (
                &["--slow-requests", "2"][..],
                "requires --telemetry-service",
            ),
            (&["--telemetry-service", "udp:h:1"][..], "unix:/path"),
        ] {
            let err = resolve(&args(given)).unwrap_err();
            assert!(err.contains(expected), "{given:?}: {err}");
        }
    }
}
