//! The generated Apache configuration: a fully resolved [`Plan`] rendered to httpd.conf
//! text. Pure, so what users get is unit-tested line by line.

use crate::cli::MpmName;
use crate::debug::DebugPlan;
use crate::features::{Features, q};
use crate::hosts::{self, Hosts};
use crate::services::{self, Service};
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Daemon-group settings (absent in embedded mode).
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonPlan {
    pub processes: u32,
    pub threads: u32,
    pub maximum_requests: u64,
    pub request_timeout: u64,
    pub queue_timeout: u64,
    pub socket_timeout: u64,
    pub connect_timeout: u64,
    pub startup_timeout: u64,
    pub graceful_timeout: u64,
    pub shutdown_timeout: u64,
    pub inactivity_timeout: u64,
    pub restart_interval: u64,
    /// session-affinity= cookie name.
    pub session_affinity: Option<String>,
}

/// Apache's size beyond what the daemons need (--max-clients and the worker fractions).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sizing {
    pub max_clients: Option<u32>,
    pub initial_workers: Option<f64>,
    pub minimum_spare_workers: Option<f64>,
    pub maximum_spare_workers: Option<f64>,
}

/// Everything the configuration needs, resolved to absolute paths.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub server_root: PathBuf,
    pub modules_dir: PathBuf,
    pub module: PathBuf,
    pub mpm: MpmName,
    pub host: Option<String>,
    pub port: u16,
    pub server_name: String,
    /// User and group Apache's children switch to (only when started as root).
    pub run_as: Option<(String, String)>,
    /// What WSGIScriptAlias points at: the user's script, or the generated handler.
    pub handler_script: PathBuf,
    pub callable: String,
    pub mount_point: String,
    pub url_aliases: Vec<(String, PathBuf)>,
    pub document_root: PathBuf,
    pub working_directory: PathBuf,
    pub python_path: Vec<PathBuf>,
    pub python_home: Option<PathBuf>,
    pub locale: String,
    pub daemon: Option<DaemonPlan>,
    /// Capacity of embedded mode (Apache's own processes x threads).
    pub processes: u32,
    pub threads: u32,
    pub limit_request_body: u64,
    pub keep_alive_timeout: u64,
    pub error_log: String,
    pub access_log: Option<String>,
    pub log_level: String,
    pub include_files: Vec<PathBuf>,
    pub setenv: Vec<(String, String)>,
    pub reloader_script: Option<PathBuf>,
    /// WSGISharedStore name and size.
    pub shared_stores: Vec<(String, String)>,
    /// Where SetHandler wsgi-metrics answers.
    pub metrics_url: Option<String>,
    /// --enable-telemetry's ingester script (path, text), run as the `telemetry` service.
    pub telemetry_script: Option<(PathBuf, String)>,
    /// The directory of its socket, to create owned by this uid (started as root).
    pub telemetry_dir: Option<(PathBuf, u32)>,
    /// --process-group (default HOST:PORT) and --application-group (default %{GLOBAL}).
    pub process_group: Option<String>,
    pub application_group: String,
    /// LogFormat of the access log: None for common, "combined", or a format string.
    pub access_log_format: Option<String>,
    pub error_log_format: Option<String>,
    pub pid_file: PathBuf,
    pub mime_types: Option<PathBuf>,
    pub sizing: Sizing,
    pub hosts: Hosts,
    pub features: Features,
    pub services: Vec<Service>,
    /// False with --application-type static: Apache serves files only.
    pub serve_application: bool,
    /// --directory-index: a document-root directory with this file is served by Apache.
    pub directory_index: Option<String>,
    /// --debug-mode: Apache as one process (httpd -X), the application in it.
    pub debug: Option<DebugPlan>,
}

impl Plan {
    /// The daemon group's name, as mod_wsgi-express names it.
    pub fn group_name(&self) -> String {
        if let Some(name) = &self.process_group {
            return name.clone();
        }
        format!(
            "{}:{}",
            self.host.as_deref().unwrap_or("localhost"),
            self.port
        )
    }

    pub fn url(&self) -> String {
        let host = match self.host.as_deref() {
            None | Some("0.0.0.0") | Some("::") => "localhost",
            Some(h) => h,
        };
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        format!("http://{host}:{}{}", self.port, self.mount_point)
    }
}

pub(crate) fn p(path: &Path) -> String {
    q(path.to_string_lossy())
}

/// The WSGIDaemonProcess options that place a daemon's Python: `home` (the working
/// directory), `python-path`, `python-home`. The site's group and each service's use them.
pub fn python_options(plan: &Plan) -> Vec<(&'static str, String)> {
    let text = |p: &Path| p.to_string_lossy().into_owned();
    let mut options = vec![("home", text(&plan.working_directory))];
    if !plan.python_path.is_empty() {
        let joined: Vec<String> = plan.python_path.iter().map(|p| text(p)).collect();
        options.push(("python-path", joined.join(":")));
    }
    if let Some(home) = &plan.python_home {
        options.push(("python-home", text(home)));
    }
    options
}

/// Quotes a `key=value` option of WSGIDaemonProcess / WSGIScriptAlias.
pub(crate) fn opt(key: &str, value: impl AsRef<str>) -> String {
    let v = value.as_ref();
    if v.contains([' ', '\t', '"']) {
        q(format!("{key}={v}"))
    } else {
        format!("{key}={v}")
    }
}

/// `fraction` of `of`, at least 1; `default` when not given.
fn share(fraction: Option<f64>, default: u32, of: u32) -> u32 {
    fraction.map_or(default, |f| ((f * f64::from(of)).round() as u32).max(1))
}

fn mpm_tuning(plan: &Plan) -> String {
    let s = &plan.sizing;
    let clients = match &plan.daemon {
        // Apache's threads only relay to the daemons; leave head-room for static files
        // and slow clients. --max-clients never goes below what the daemons can take.
        Some(d) => match s.max_clients {
            Some(n) => n.max(d.processes * d.threads).max(1),
            None => (d.processes * d.threads * 2).max(20),
        },
        None => (plan.processes * plan.threads).max(1),
    };
    match plan.mpm {
        MpmName::Prefork => format!(
            "StartServers {start}\nMinSpareServers {min}\nMaxSpareServers {max}\nServerLimit {clients}\nMaxRequestWorkers {clients}\n",
            start = share(s.initial_workers, 1, clients),
            min = share(s.minimum_spare_workers, 1, clients),
            max = share(s.maximum_spare_workers, (clients / 4).max(1), clients),
        ),
        MpmName::Event | MpmName::Worker => {
            // At most 25 threads a child, spread evenly so --max-clients is kept.
            let per_child = match &plan.daemon {
                Some(_) => clients.div_ceil(clients.div_ceil(25)),
                None => plan.threads.max(1),
            };
            let children = clients.div_ceil(per_child);
            let max = children * per_child;
            // ServerLimit leaves slots for children still finishing after a graceful
            // restart.
            format!(
                "StartServers {start}\nServerLimit {limit}\nThreadLimit {per_child}\nThreadsPerChild {per_child}\n\
                 MaxRequestWorkers {max}\nMinSpareThreads {min}\nMaxSpareThreads {max_spare}\n",
                start = share(s.initial_workers, 1, children),
                limit = children * 2,
                min = share(s.minimum_spare_workers, (per_child / 4).max(1), max),
                max_spare = share(s.maximum_spare_workers, max, max),
            )
        }
    }
}

const COMMON: &str = "%h %l %u %t \\\"%r\\\" %>s %b";
const COMBINED: &str = "%h %l %u %t \\\"%r\\\" %>s %b \\\"%{Referer}i\\\" \\\"%{User-agent}i\\\"";

/// The access log in mod_wsgi-express's formats: common unless --access-log-format names
/// combined or gives a format of its own.
fn access_log(target: &str, format: Option<&str>) -> String {
    let nickname = match format {
        None | Some("common") => "common",
        Some("combined") => "combined",
        Some(_) => "custom",
    };
    let mut c = format!("LogFormat \"{COMMON}\" common\nLogFormat \"{COMBINED}\" combined\n");
    if let (Some(custom), "custom") = (format, nickname) {
        let _ = writeln!(c, "LogFormat {} custom", q(custom));
    }
    let _ = writeln!(c, "CustomLog {} {nickname}", q(target));
    c
}

/// Renders httpd.conf.
pub fn render(plan: &Plan) -> String {
    let mut c = String::new();
    let root = &plan.server_root;
    let mods = &plan.modules_dir;
    let load = |c: &mut String, name: &str| {
        // Some builds have these compiled in (Debian: log_config).
        let _ = writeln!(
            c,
            "<IfModule !{name}_module>\n    LoadModule {name}_module {}\n</IfModule>",
            p(&mods.join(format!("mod_{name}.so")))
        );
    };
    let _ = writeln!(
        c,
        "# Generated by wsgi-express {}; regenerated on every start-server/setup-server.\n",
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(c, "ServerRoot {}", p(root));
    let _ = writeln!(c, "PidFile {}", p(&plan.pid_file));
    let _ = writeln!(c, "DefaultRuntimeDir {}", p(root));
    let _ = writeln!(c, "Mutex file:{} default", root.display());
    c.push_str(&hosts::listen(plan.host.as_deref(), plan.port));
    let _ = writeln!(c, "ServerName {}", q(&plan.server_name));
    if let Some((user, group)) = &plan.run_as {
        let _ = writeln!(c, "User {}\nGroup {}", q(user), q(group));
    }
    c.push('\n');
    let mpm = plan.mpm.as_str();
    let _ = writeln!(
        c,
        "LoadModule mpm_{mpm}_module {}",
        p(&mods.join(format!("mod_mpm_{mpm}.so")))
    );
    c.push_str(&mpm_tuning(plan));
    // authz_host as in mod_wsgi-express: `Require local`/`ip`/`host` in --include-file
    // files and --metrics-url.
    for m in [
        "authz_core",
        "authz_host",
        "mime",
        "alias",
        "dir",
        "env",
        "log_config",
    ] {
        load(&mut c, m);
    }
    let mut extra: Vec<&str> = hosts::modules(&plan.hosts);
    extra.extend(&plan.features.modules);
    if plan.serve_application {
        extra.push("rewrite");
    }
    for (i, m) in extra.iter().enumerate() {
        if !extra[..i].contains(m) {
            load(&mut c, m);
        }
    }
    let _ = writeln!(c, "LoadModule wsgi_module {}", p(&plan.module));
    c.push('\n');
    match &plan.mime_types {
        Some(types) => {
            let _ = writeln!(c, "TypesConfig {}", p(types));
        }
        None if Path::new("/etc/mime.types").exists() => {
            c.push_str("TypesConfig /etc/mime.types\n");
        }
        None => {}
    }
    let _ = writeln!(
        c,
        "ErrorLog {}\nLogLevel {}",
        q(&plan.error_log),
        plan.log_level
    );
    if let Some(format) = &plan.error_log_format {
        let _ = writeln!(c, "ErrorLogFormat {}", q(format));
    }
    if let Some(access) = &plan.access_log {
        c.push_str(&access_log(access, plan.access_log_format.as_deref()));
    }
    let _ = writeln!(
        c,
        "LimitRequestBody {}\nKeepAliveTimeout {}\nTimeout {}\nServerTokens Prod\n",
        plan.limit_request_body,
        plan.keep_alive_timeout,
        plan.daemon.as_ref().map_or(60, |d| d.socket_timeout),
    );

    c.push_str("<Directory />\n    AllowOverride None\n    Require all denied\n</Directory>\n");
    let _ = writeln!(c, "DocumentRoot {}", p(&plan.document_root));
    let _ = writeln!(c, "<Directory {}>", p(&plan.document_root));
    for line in &plan.features.document_root {
        let _ = writeln!(c, "    {line}");
    }
    c.push_str("    Require all granted\n</Directory>\n");
    for (url, path) in &plan.url_aliases {
        let _ = writeln!(c, "Alias {} {}", q(url), p(path));
        let dir = if path.is_dir() {
            path.clone()
        } else {
            path.parent().unwrap_or(Path::new("/")).to_owned()
        };
        let _ = writeln!(
            c,
            "<Directory {}>\n    Require all granted\n</Directory>",
            p(&dir)
        );
    }
    for (key, value) in &plan.setenv {
        let _ = writeln!(c, "SetEnv {} {}", key, q(value));
    }
    c.push('\n');

    c.push_str("WSGIPassAuthorization On\n");
    for (name, size) in &plan.shared_stores {
        let _ = writeln!(c, "WSGISharedStore {name} size={size}");
    }
    if let Some(home) = &plan.python_home {
        let _ = writeln!(c, "WSGIPythonHome {}", p(home));
    }
    let group = plan.group_name();
    let mut alias_options = vec![
        opt("application-group", &plan.application_group),
        opt("callable-object", &plan.callable),
    ];
    match &plan.daemon {
        Some(d) => {
            c.push_str("WSGIRestrictEmbedded On\n");
            let mut line = format!("WSGIDaemonProcess {}", q(&group));
            let mut add = |k: &str, v: String| {
                line.push_str(" \\\n    ");
                line.push_str(&opt(k, v));
            };
            add("display-name", format!("(wsgi:{group})"));
            // mod_wsgi reports wsgi.multiprocess True whenever processes= is given, so
            // (like mod_wsgi-express) it is left out for a single process.
            if d.processes != 1 {
                add("processes", d.processes.to_string());
            }
            add("threads", d.threads.to_string());
            for (key, value) in python_options(plan) {
                add(key, value);
            }
            if let Some(cookie) = &d.session_affinity {
                add("session-affinity", cookie.clone());
            }
            add("lang", plan.locale.clone());
            add("locale", plan.locale.clone());
            for (k, v) in [
                ("maximum-requests", d.maximum_requests),
                ("request-timeout", d.request_timeout),
                ("queue-timeout", d.queue_timeout),
                ("socket-timeout", d.socket_timeout),
                ("connect-timeout", d.connect_timeout),
                ("startup-timeout", d.startup_timeout),
                ("graceful-timeout", d.graceful_timeout),
                ("shutdown-timeout", d.shutdown_timeout),
                ("inactivity-timeout", d.inactivity_timeout),
                ("restart-interval", d.restart_interval),
            ] {
                if v != 0 || k == "maximum-requests" {
                    add(k, v.to_string());
                }
            }
            for (k, v) in &plan.features.daemon_options {
                add(k, v.clone());
            }
            c.push_str(&line);
            c.push('\n');
            alias_options.insert(0, opt("process-group", &group));
            if let Some(reloader) = &plan.reloader_script {
                let _ = writeln!(
                    c,
                    "WSGIImportScript {} {} {}",
                    p(reloader),
                    opt("process-group", &group),
                    opt("application-group", &plan.application_group)
                );
            }
        }
        None => {
            for dir in &plan.python_path {
                let _ = writeln!(c, "WSGIPythonPath {}", p(dir));
            }
        }
    }
    for (name, script) in &plan.features.handlers {
        // A handler script's callable is always handle_request.
        let group_options: Vec<String> = alias_options
            .iter()
            .filter(|o| !o.starts_with("callable-object="))
            .cloned()
            .collect();
        let _ = writeln!(
            c,
            "WSGIHandlerScript {name} {} {}",
            p(script),
            group_options.join(" ")
        );
        let _ = writeln!(
            c,
            "<Directory {}>\n    Require all granted\n</Directory>",
            p(script.parent().unwrap_or(Path::new("/")))
        );
    }
    if plan.serve_application {
        // As mod_wsgi-express: a file of the document root is served by Apache, also
        // under the mount point; everything else goes to the application. mod_rewrite
        // maps the URL before WSGIScriptAlias would; the URL is normalised by then, and
        // `<Directory />` denies everything outside the directories granted. Virtual
        // hosts (--server-name, --https-port) inherit the rules.
        let _ = writeln!(
            c,
            "RewriteEngine On\nRewriteOptions InheritDown\nRewriteCond %{{DOCUMENT_ROOT}}%{{REQUEST_URI}} -f\nRewriteRule ^ %{{DOCUMENT_ROOT}}%{{REQUEST_URI}} [L]"
        );
        if let Some(index) = &plan.directory_index {
            let _ = writeln!(
                c,
                "RewriteCond %{{DOCUMENT_ROOT}}%{{REQUEST_URI}} -d\nRewriteCond %{{DOCUMENT_ROOT}}%{{REQUEST_URI}}/{index} -f\nRewriteRule ^ %{{DOCUMENT_ROOT}}%{{REQUEST_URI}} [L]"
            );
        }
        let _ = writeln!(
            c,
            "WSGIScriptAlias {} {} {}",
            q(&plan.mount_point),
            p(&plan.handler_script),
            alias_options.join(" ")
        );
        let script_dir = plan.handler_script.parent().unwrap_or(Path::new("/"));
        let _ = writeln!(
            c,
            "<Directory {}>\n    Require all granted\n</Directory>",
            p(script_dir)
        );
    }
    if let Some(url) = &plan.metrics_url {
        let _ = writeln!(
            c,
            "<Location {}>\n    SetHandler wsgi-metrics\n    Require local\n</Location>",
            q(url)
        );
    }
    for line in &plan.features.lines {
        let _ = writeln!(c, "{line}");
    }
    let rewrite = plan.serve_application || plan.features.modules.contains(&"rewrite");
    c.push_str(&hosts::render(
        &plan.hosts,
        &plan.server_name,
        plan.host.as_deref(),
        plan.port,
        rewrite,
    ));
    // A service's log lives in a <VirtualHost> of its own; an empty default host first
    // keeps the site's requests on the server-wide configuration.
    if !plan.hosts.any() && plan.services.iter().any(|s| s.error_log.is_some()) {
        let _ = writeln!(c, "<VirtualHost _default_:{}>\n</VirtualHost>", plan.port);
    }
    for service in &plan.services {
        c.push_str(&services::render(plan, service));
    }
    for file in &plan.include_files {
        let _ = writeln!(c, "\nInclude {}", p(file));
    }
    c
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn plan() -> Plan {
        Plan {
            server_root: "/srv/root".into(),
            modules_dir: "/mods".into(),
            module: "/build/libmod_wsgi_rs.so".into(),
            mpm: MpmName::Event,
            host: Some("127.0.0.1".into()),
            port: 8080,
            server_name: "127.0.0.1".into(),
            run_as: Some(("www-data".into(), "www-data".into())),
            handler_script: "/app/site.wsgi".into(),
            callable: "application".into(),
            mount_point: "/".into(),
            url_aliases: vec![("/static".into(), "/app/static".into())],
            document_root: "/srv/root/htdocs".into(),
            working_directory: "/app".into(),
            python_path: vec!["/app/lib".into(), "/extra".into()],
            python_home: None,
            locale: "C.UTF-8".into(),
            daemon: Some(DaemonPlan {
                processes: 2,
                threads: 5,
                maximum_requests: 0,
                request_timeout: 60,
                queue_timeout: 45,
                socket_timeout: 60,
                connect_timeout: 15,
                startup_timeout: 15,
                graceful_timeout: 15,
                shutdown_timeout: 5,
                inactivity_timeout: 0,
                restart_interval: 0,
                session_affinity: Some("PIN".into()),
            }),
            processes: 1,
            threads: 5,
            limit_request_body: 10_485_760,
            keep_alive_timeout: 2,
            error_log: "/srv/root/error_log".into(),
            access_log: None,
            log_level: "warn".into(),
            include_files: vec![],
            setenv: vec![("STAGE".into(), "dev test".into())],
            reloader_script: None,
            shared_stores: vec![("cache".into(), "1M".into())],
            metrics_url: Some("/metrics".into()),
            telemetry_script: None,
            telemetry_dir: None,
            process_group: None,
            application_group: "%{GLOBAL}".into(),
            access_log_format: None,
            error_log_format: None,
            pid_file: "/srv/root/httpd.pid".into(),
            mime_types: None,
            sizing: Sizing::default(),
            hosts: Hosts::default(),
            features: Features::default(),
            services: vec![],
            serve_application: true,
            directory_index: None,
            debug: None,
        }
    }

    #[test]
    fn daemon_mode_config() {
        let c = render(&plan());
        assert!(c.contains("Listen 127.0.0.1:8080\n"), "{c}");
        assert!(c.contains("User \"www-data\"\nGroup \"www-data\"\n"));
        assert!(c.contains("WSGIRestrictEmbedded On\n"));
        assert!(c.contains(
            "WSGIDaemonProcess \"127.0.0.1:8080\" \\\n    display-name=(wsgi:127.0.0.1:8080)"
        ));
        assert!(c.contains("processes=2 \\\n    threads=5"));
        assert!(c.contains("python-path=/app/lib:/extra"));
        assert!(c.contains("session-affinity=PIN \\\n"));
        assert!(c.contains("WSGISharedStore cache size=1M\n"));
        assert!(c.contains(
            "<Location \"/metrics\">\n    SetHandler wsgi-metrics\n    Require local\n</Location>\n"
        ));
        assert!(c.contains("LoadModule authz_host_module"));
        assert!(c.contains("request-timeout=60"));
        assert!(!c.contains("inactivity-timeout"), "0 means unset");
        assert!(c.contains(
            "WSGIScriptAlias \"/\" \"/app/site.wsgi\" process-group=127.0.0.1:8080 application-group=%{GLOBAL} callable-object=application\n"
        ));
        assert!(c.contains("Alias \"/static\" \"/app/static\"\n"));
        assert!(c.contains("SetEnv STAGE \"dev test\"\n"));
        assert!(c.contains("LoadModule mpm_event_module \"/mods/mod_mpm_event.so\"\n"));
        assert!(
            c.contains("ThreadsPerChild 20\nMaxRequestWorkers 20\n"),
            "{c}"
        );
    }

    #[test]
    fn one_daemon_process_leaves_processes_out() {
        let mut pl = plan();
        pl.daemon.as_mut().expect("daemon plan").processes = 1;
        let c = render(&pl);
        assert!(!c.contains("processes="), "{c}");
        assert!(c.contains("display-name=(wsgi:127.0.0.1:8080) \\\n    threads=5"));
    }

    #[test]
    fn embedded_mode_sizes_apache_itself() {
        let mut pl = plan();
        pl.daemon = None;
        pl.processes = 3;
        pl.threads = 4;
        let c = render(&pl);
        assert!(!c.contains("WSGIDaemonProcess"));
        assert!(!c.contains("process-group="));
        assert!(c.contains("WSGIPythonPath \"/app/lib\"\nWSGIPythonPath \"/extra\"\n"));
        assert!(
            c.contains("ServerLimit 6\nThreadLimit 4\nThreadsPerChild 4\nMaxRequestWorkers 12\n"),
            "{c}"
        );
    }

    #[test]
    fn values_with_spaces_and_quotes_are_quoted() {
        assert_eq!(opt("home", "/a b"), "\"home=/a b\"");
        assert_eq!(q("say \"hi\""), "\"say \\\"hi\\\"\"");
        let mut pl = plan();
        pl.host = None;
        assert_eq!(pl.url(), "http://localhost:8080/");
        assert!(render(&pl).contains("Listen 8080\n"));
        pl.host = Some("::1".into());
        assert_eq!(pl.url(), "http://[::1]:8080/");
    }

    #[test]
    fn max_clients_and_worker_fractions_size_apache() {
        let mut pl = plan();
        pl.sizing = Sizing {
            max_clients: Some(50),
            initial_workers: Some(0.5),
            minimum_spare_workers: None,
            maximum_spare_workers: Some(0.5),
        };
        let c = render(&pl);
        assert!(
            c.contains("StartServers 1\nServerLimit 4\nThreadLimit 25\nThreadsPerChild 25\nMaxRequestWorkers 50\nMinSpareThreads 6\nMaxSpareThreads 25\n"),
            "{c}"
        );
        pl.sizing.max_clients = Some(3);
        assert!(
            render(&pl).contains("MaxRequestWorkers 10\n"),
            "never below processes x threads"
        );
    }

    #[test]
    fn access_log_formats_and_named_groups() {
        let mut pl = plan();
        pl.access_log = Some("/logs/access_log".into());
        assert!(render(&pl).contains("CustomLog \"/logs/access_log\" common\n"));
        pl.access_log_format = Some("combined".into());
        assert!(render(&pl).contains("CustomLog \"/logs/access_log\" combined\n"));
        pl.access_log_format = Some("%h \"%r\" %D".into());
        let c = render(&pl);
        assert!(
            c.contains(
                "LogFormat \"%h \\\"%r\\\" %D\" custom\nCustomLog \"/logs/access_log\" custom\n"
            ),
            "{c}"
        );
        pl.process_group = Some("site".into());
        pl.application_group = "shop".into();
        let c = render(&pl);
        assert!(c.contains("WSGIDaemonProcess \"site\""), "{c}");
        assert!(
            c.contains("process-group=site application-group=shop"),
            "{c}"
        );
    }
}
