//! start-server and setup-server: resolve the options into a [`Plan`], write the server
//! root (httpd.conf, apachectl, generated Python helpers, htdocs), then run Apache in the
//! foreground in place of this process.

use crate::access::{self, Need};
use crate::cli::{ApplicationType, ServerArgs};
use crate::conf::{self, DaemonPlan, Plan, Sizing};
use crate::debug;
use crate::features::{self, pairs};
use crate::hosts;
use crate::launch;
use crate::locate;
use crate::logs;
use crate::python_home::python_home;
use crate::services;
use crate::users;
use mod_wsgi_config::{DaemonSpec, SharedStoreSpec};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const RELOADER: &str = include_str!("reloader.py");
const DEFAULT_APP: &str = include_str!("default_app.py");

/// The application as given on the command line.
enum Entry {
    Script(PathBuf),
    Module(String),
    /// --application-type paste: a Paste deployment file, loaded with paste.deploy.
    Paste(PathBuf),
    Default,
    /// --application-type static: Apache serves this directory, no application.
    Static(PathBuf),
}

pub fn start(args: ServerArgs, setup_only: bool) -> Result<(), String> {
    let setup_only = setup_only || args.setup_only;
    let httpd = locate::httpd(args.httpd_executable.as_deref())?;
    let (plan, entry) = plan(&args)?;
    check_reachable(&plan, &entry, &args)?;
    if !setup_only {
        check_port_free(plan.host.as_deref(), plan.port, "--port")?;
        if let Some(https) = &plan.hosts.https {
            check_port_free(plan.host.as_deref(), https.port, "--https-port")?;
        }
    }
    for warning in &plan.features.warnings {
        eprintln!("wsgi-express: warning: {warning}");
    }
    write_server_root(&plan, &entry, &args, &httpd)?;
    let apachectl = plan.server_root.join("apachectl");
    if setup_only {
        println!(
            "wsgi-express: server root written to {}\n  start it with: {} start   (stop, graceful, restart, configtest, foreground)",
            plan.server_root.display(),
            apachectl.display()
        );
        return Ok(());
    }
    print_summary(&plan, &entry);
    Err(launch::exec_apache(&httpd, &args, &plan)?)
}

fn entry(args: &ServerArgs) -> Result<Entry, String> {
    let given = args.script.clone().or_else(|| args.entry_point.clone());
    match (given, args.application_type) {
        (None, ApplicationType::Paste) => {
            Err("--application-type paste: name the deployment file (site.ini)".to_owned())
        }
        (Some(ini), ApplicationType::Paste) => {
            let path = Path::new(&ini);
            if !path.is_file() {
                return Err(format!("no such Paste deployment file: {ini}"));
            }
            Ok(Entry::Paste(locate::absolute(path)))
        }
        (dir, ApplicationType::Static) => {
            let dir = match dir {
                Some(d) => PathBuf::from(d),
                None => std::env::current_dir().map_err(|e| format!("current directory: {e}"))?,
            };
            if !dir.is_dir() {
                return Err(format!(
                    "--application-type static: {}: no such directory",
                    dir.display()
                ));
            }
            Ok(Entry::Static(locate::absolute(&dir)))
        }
        (None, _) => Ok(Entry::Default),
        (Some(s), ApplicationType::Script) => {
            let path = Path::new(&s);
            if !path.is_file() {
                return Err(format!("no such WSGI script file: {s}"));
            }
            Ok(Entry::Script(locate::absolute(path)))
        }
        (Some(m), ApplicationType::Module) => {
            let valid = !m.is_empty()
                && m.split('.').all(|part| {
                    part.chars()
                        .next()
                        .is_some_and(|c| c.is_alphabetic() || c == '_')
                        && part.chars().all(|c| c.is_alphanumeric() || c == '_')
                });
            if !valid {
                return Err(format!(
                    "--application-type module: '{m}' is not a Python module name (like package.module)"
                ));
            }
            Ok(Entry::Module(m))
        }
    }
}

fn default_server_root(host: Option<&str>, port: u16) -> PathBuf {
    let tmp = std::env::var_os("TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    let uid = users::euid();
    tmp.join(format!(
        "wsgi-express-{}:{port}:{uid}",
        host.unwrap_or("localhost")
    ))
}

/// --locale (or --lang), else this process's UTF-8 locale, else C.UTF-8; "C" and
/// "POSIX" become C.UTF-8, as mod_wsgi-express makes them a UTF-8 locale.
fn locale(args: &ServerArgs) -> Result<String, String> {
    let given = args.runtime.locale.as_ref().or(args.runtime.lang.as_ref());
    if let Some(name) = given {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c))
        {
            return Err(format!(
                "--locale '{name}' is not a locale name (like en_US.UTF-8)"
            ));
        }
        if name.eq_ignore_ascii_case("C") || name.eq_ignore_ascii_case("POSIX") {
            return Ok("C.UTF-8".to_owned());
        }
        return Ok(name.clone());
    }
    Ok(default_locale())
}

fn default_locale() -> String {
    for var in ["LC_ALL", "LANG"] {
        if let Ok(v) = std::env::var(var) {
            let lower = v.to_ascii_lowercase();
            if lower.ends_with(".utf-8") || lower.ends_with(".utf8") {
                return v;
            }
        }
    }
    "C.UTF-8".to_owned()
}

fn plan(args: &ServerArgs) -> Result<(Plan, Entry), String> {
    let entry = entry(args)?;
    let modules_dir = locate::modules_directory(&args.module)?;
    let module = locate::module(&args.module, Some(&modules_dir))?;
    let mpm = locate::mpm(&modules_dir, args.mpm, &args.tuning.server_mpm)?;
    if args.threads == 0 {
        return Err("--threads must be at least 1".to_owned());
    }
    if args.processes == Some(0) {
        return Err("--processes must be at least 1".to_owned());
    }
    if !args.mount_point.starts_with('/') {
        return Err(format!(
            "--mount-point '{}' must start with /",
            args.mount_point
        ));
    }
    if args.embedded_mode && args.reload_on_changes {
        return Err("--reload-on-changes needs daemon mode (drop --embedded-mode)".to_owned());
    }
    if !args.reload_interval.is_finite() || args.reload_interval <= 0.0 {
        return Err("--reload-interval must be more than 0".to_owned());
    }
    let server_root = match &args.server_root {
        Some(r) => locate::absolute(r),
        None => default_server_root(args.host.as_deref(), args.port),
    };
    let debug = debug::resolve(args, &server_root)?;
    // Debug mode runs the application inside Apache's single process.
    let embedded = args.embedded_mode || debug.is_some();
    let (mut handler_script, mut callable, default_dir) = match &entry {
        Entry::Script(path) => (
            path.clone(),
            args.callable_object.clone(),
            path.parent().unwrap_or(Path::new("/")).to_owned(),
        ),
        Entry::Paste(ini) => (
            server_root.join("handler.wsgi"),
            "application".to_owned(),
            ini.parent().unwrap_or(Path::new("/")).to_owned(),
        ),
        Entry::Module(_) | Entry::Default | Entry::Static(_) => (
            server_root.join("handler.wsgi"),
            "application".to_owned(),
            std::env::current_dir().map_err(|e| format!("current directory: {e}"))?,
        ),
    };
    let working_directory = match &args.working_directory {
        Some(d) if d.is_dir() => locate::absolute(d),
        Some(d) => {
            return Err(format!(
                "--working-directory {}: no such directory",
                d.display()
            ));
        }
        None => default_dir,
    };
    // A daemon's home= is already first on its sys.path; embedded mode (like
    // mod_wsgi-express) and module imports need the working directory there too, so an
    // app can import the modules beside it.
    let mut python_path: Vec<PathBuf> = Vec::new();
    if matches!(entry, Entry::Module(_) | Entry::Paste(_)) || embedded {
        python_path.push(working_directory.clone());
    }
    if debug.is_some() && !matches!(entry, Entry::Static(_)) {
        handler_script = server_root.join("debug-handler.wsgi");
        callable = "application".to_owned();
    }
    for d in &args.python_path {
        if !d.is_dir() {
            return Err(format!("--python-path {}: no such directory", d.display()));
        }
        python_path.push(locate::absolute(d));
    }
    let mut url_aliases = Vec::new();
    for (url, path) in pairs(&args.url_alias) {
        let p = Path::new(&path);
        if !p.exists() {
            return Err(format!(
                "--url-alias {url} {path}: no such file or directory"
            ));
        }
        if !url.starts_with('/') {
            return Err(format!("--url-alias {url}: the URL path must start with /"));
        }
        url_aliases.push((url, locate::absolute(p)));
    }
    let run_as = users::run_as(args.user.as_deref(), args.group.as_deref())?;
    let log_dir = args
        .log_directory
        .as_ref()
        .map(|d| locate::absolute(d))
        .unwrap_or_else(|| server_root.clone());
    let log_targets = logs::resolve(args, &log_dir)?;
    let shared_stores = pairs(&args.shared_store);
    for (i, (name, size)) in shared_stores.iter().enumerate() {
        SharedStoreSpec::parse(&[name.clone(), format!("size={size}")])
            .map_err(|e| format!("--shared-store {name} {size}: {e}"))?;
        if shared_stores[..i].iter().any(|(n, _)| n == name) {
            return Err(format!("--shared-store {name}: given twice"));
        }
    }
    if let Some(url) = &args.metrics_url
        && !url.starts_with('/')
    {
        return Err(format!("--metrics-url {url}: must start with /"));
    }
    if let Some(cookie) = &args.session_affinity {
        if embedded {
            return Err("--session-affinity needs daemon mode (drop --embedded-mode)".to_owned());
        }
        DaemonSpec::parse(&["check".to_owned(), format!("session-affinity={cookie}")])
            .map_err(|e| format!("--session-affinity {cookie}: {e}"))?;
    }
    let processes = args.processes.unwrap_or(1);
    let serves_files_only = matches!(entry, Entry::Static(_));
    let daemon = (!embedded && !serves_files_only).then_some(DaemonPlan {
        // Debug mode: one process (httpd -X) with one thread.
        processes,
        threads: args.threads,
        maximum_requests: args.maximum_requests,
        request_timeout: args.request_timeout,
        queue_timeout: args.queue_timeout,
        socket_timeout: args.socket_timeout,
        connect_timeout: args.connect_timeout,
        startup_timeout: args.startup_timeout,
        graceful_timeout: args.graceful_timeout,
        shutdown_timeout: args.shutdown_timeout,
        inactivity_timeout: args.inactivity_timeout,
        restart_interval: args.restart_interval,
        session_affinity: args.session_affinity.clone(),
    });
    let python_home = python_home(&args.module, &module)?;
    let mut services = services::resolve(args, &run_as, &log_targets)?;
    let hosts = hosts::resolve(args)?;
    let mut features = features::resolve(args)?;
    let bundled = crate::telemetry::resolve(
        args,
        &server_root,
        &services,
        &run_as,
        &crate::telemetry::PythonEnvironment {
            home: python_home.as_deref(),
            path: &python_path,
            version: crate::python_home::module_python_version(&module),
        },
    )?;
    let (telemetry_script, telemetry_dir) = match bundled {
        Some(b) => {
            features.lines.push(b.directive);
            services.push(b.service);
            (Some(b.script), b.socket_dir)
        }
        None => (None, None),
    };
    if debug.is_some() {
        // pdb talks to the terminal; the code is not reloaded under the debugger.
        for line in [
            "WSGIRestrictStdin Off",
            "WSGIRestrictStdout Off",
            "WSGIScriptReloading Off",
        ] {
            features.lines.push(line.to_owned());
        }
        if args.reload_on_changes {
            features
                .warnings
                .push("--reload-on-changes is off in debug mode".to_owned());
        }
    }
    if let Some(group) = &args.site.process_group
        && (group.is_empty() || group.contains(char::is_whitespace))
    {
        return Err(format!("--process-group '{group}': a name without spaces"));
    }
    let application_group = args
        .site
        .application_group
        .clone()
        .unwrap_or_else(|| "%{GLOBAL}".to_owned());
    if application_group.is_empty() {
        return Err("--application-group: give a name, or %{GLOBAL}".to_owned());
    }
    let static_dir = match &entry {
        Entry::Static(dir) => Some(dir.clone()),
        _ => None,
    };
    let debug_mode = debug.is_some();
    let plan = Plan {
        document_root: args
            .document_root
            .as_ref()
            .map(|d| locate::absolute(d))
            .or(static_dir)
            .unwrap_or_else(|| server_root.join("htdocs")),
        serve_application: !matches!(entry, Entry::Static(_)),
        directory_index: args.site.directory_index.clone(),
        debug,
        pid_file: args
            .logs
            .pid_file
            .as_ref()
            .map(|f| locate::absolute(f))
            .unwrap_or_else(|| server_root.join("httpd.pid")),
        reloader_script: (args.reload_on_changes && !debug_mode)
            .then(|| server_root.join("reloader.py")),
        server_root,
        modules_dir,
        module,
        mpm,
        host: args.host.clone(),
        port: args.port,
        server_name: args
            .server_name
            .clone()
            .or_else(|| args.host.clone())
            .unwrap_or_else(|| "localhost".to_owned()),
        run_as,
        handler_script,
        callable,
        mount_point: args.mount_point.clone(),
        url_aliases,
        working_directory,
        python_path,
        python_home,
        locale: locale(args)?,
        daemon,
        processes: if debug_mode { 1 } else { processes },
        threads: if debug_mode { 1 } else { args.threads },
        limit_request_body: args.limit_request_body,
        keep_alive_timeout: args.keep_alive_timeout,
        error_log: log_targets.error_log.clone(),
        access_log: args.access_log.then(|| log_targets.access_log.clone()),
        access_log_format: args.logs.access_log_format.clone(),
        error_log_format: args.logs.error_log_format.clone(),
        process_group: args.site.process_group.clone(),
        application_group,
        mime_types: args
            .runtime
            .mime_types
            .as_ref()
            .map(|f| locate::absolute(f)),
        sizing: Sizing {
            max_clients: args.tuning.max_clients,
            initial_workers: args.tuning.initial_workers,
            minimum_spare_workers: args.tuning.minimum_spare_workers,
            maximum_spare_workers: args.tuning.maximum_spare_workers,
        },
        hosts,
        features,
        services,
        log_level: args.log_level.clone(),
        include_files: args
            .include_file
            .iter()
            .map(|f| locate::absolute(f))
            .collect(),
        setenv: pairs(&args.setenv),
        shared_stores,
        metrics_url: args.metrics_url.clone(),
        telemetry_script,
        telemetry_dir,
    };
    Ok((plan, entry))
}

fn check_port_free(host: Option<&str>, port: u16, option: &str) -> Result<(), String> {
    let host = host.unwrap_or("0.0.0.0");
    match std::net::TcpListener::bind((host, port)) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(format!(
            "port {port} on {host} is already in use; pick another with {option}"
        )),
        Err(e) => Err(format!("cannot listen on {host}:{port}: {e}")),
    }
}

fn write_file(path: &Path, text: &str, mode: u32) -> Result<(), String> {
    fs::write(path, text)
        .and_then(|()| fs::set_permissions(path, fs::Permissions::from_mode(mode)))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn python_literal(s: &str) -> String {
    format!("{s:?}")
}

fn write_server_root(
    plan: &Plan,
    entry: &Entry,
    args: &ServerArgs,
    httpd: &Path,
) -> Result<(), String> {
    let root = &plan.server_root;
    fs::create_dir_all(root)
        .and_then(|()| fs::set_permissions(root, fs::Permissions::from_mode(0o755)))
        .map_err(|e| format!("cannot create server root {}: {e}", root.display()))?;
    let htdocs = root.join("htdocs");
    fs::create_dir_all(&htdocs)
        .and_then(|()| fs::set_permissions(&htdocs, fs::Permissions::from_mode(0o755)))
        .map_err(|e| format!("cannot create {}: {e}", htdocs.display()))?;
    if let Some(dir) = &args.log_directory {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    match entry {
        Entry::Module(module) => {
            let text = format!(
                "# Generated by wsgi-express: imports the application module by name.\nimport importlib\n\napplication = getattr(importlib.import_module({}), {})\n",
                python_literal(module),
                python_literal(&args.callable_object)
            );
            write_file(&plan.handler_script, &text, 0o644)?;
        }
        Entry::Paste(ini) => {
            let text = format!(
                "# Generated by wsgi-express: loads the Paste deployment file.\nfrom paste.deploy import loadapp\n\napplication = loadapp({})\n",
                python_literal(&format!("config:{}", ini.display()))
            );
            write_file(&plan.handler_script, &text, 0o644)?;
        }
        Entry::Default => write_file(&plan.handler_script, DEFAULT_APP, 0o644)?,
        Entry::Script(_) | Entry::Static(_) => {}
    }
    if let Some(debug) = &plan.debug {
        if !matches!(entry, Entry::Static(_)) {
            let (target, is_module) = match entry {
                Entry::Script(path) => (path.to_string_lossy().into_owned(), false),
                Entry::Module(m) => (m.clone(), true),
                // The generated default page or Paste loader (written above).
                _ => (
                    root.join("handler.wsgi").to_string_lossy().into_owned(),
                    false,
                ),
            };
            let callable = match entry {
                Entry::Script(_) | Entry::Module(_) => args.callable_object.as_str(),
                _ => "application",
            };
            let text = debug::handler(debug, &target, is_module, callable, &plan.working_directory);
            write_file(&plan.handler_script, &text, 0o644)?;
        }
        // Apache's single process runs as its User: the aids must be able to write.
        let owner = users::identity(plan.run_as.as_ref()).map(|who| who.uid);
        for dir in debug.output_directories() {
            fs::create_dir_all(dir)
                .and_then(|()| fs::set_permissions(dir, fs::Permissions::from_mode(0o755)))
                .and_then(|()| std::os::unix::fs::chown(dir, owner, None))
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
    }
    if let Some((path, text)) = &plan.telemetry_script {
        write_file(path, text, 0o644)?;
    }
    if let Some((dir, uid)) = &plan.telemetry_dir {
        fs::create_dir_all(dir)
            .and_then(|()| fs::set_permissions(dir, fs::Permissions::from_mode(0o755)))
            .and_then(|()| std::os::unix::fs::chown(dir, Some(*uid), None))
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    if let Some(reloader) = &plan.reloader_script {
        let text = RELOADER.replace("@INTERVAL@", &args.reload_interval.to_string());
        write_file(reloader, &text, 0o644)?;
    }
    write_file(&root.join("httpd.conf"), &conf::render(plan), 0o644)?;
    let apachectl = launch::apachectl(httpd, args, plan)?;
    write_file(&root.join("apachectl"), &apachectl, 0o755)?;
    Ok(())
}

/// Refuses to start when the account Apache's children and daemons run as cannot reach
/// the application's files, naming the directory in the way and the fix.
fn check_reachable(plan: &Plan, entry: &Entry, args: &ServerArgs) -> Result<(), String> {
    let Some(who) = users::identity(plan.run_as.as_ref()) else {
        return Ok(());
    };
    let mut targets: Vec<(String, &Path, Need)> = Vec::new();
    if let Entry::Script(script) = entry {
        targets.push((
            format!("the WSGI script {}", script.display()),
            script,
            Need::Read,
        ));
    }
    if let Entry::Paste(ini) = entry {
        targets.push((
            format!("the Paste deployment file {}", ini.display()),
            ini,
            Need::Read,
        ));
    }
    // The daemons' sockets, and a generated handler script, live there.
    targets.push((
        format!("the server root {}", plan.server_root.display()),
        &plan.server_root,
        Need::Search,
    ));
    let from_cwd =
        args.working_directory.is_none() && !matches!(entry, Entry::Script(_) | Entry::Paste(_));
    targets.push((
        format!(
            "the working directory {}{}",
            plan.working_directory.display(),
            if from_cwd {
                " (the current directory; choose another with --working-directory)"
            } else {
                ""
            }
        ),
        &plan.working_directory,
        Need::Search,
    ));
    for dir in &plan.python_path {
        targets.push((
            format!("the Python path directory {}", dir.display()),
            dir,
            Need::ListAndSearch,
        ));
    }
    if args.document_root.is_some() {
        targets.push((
            format!("--document-root {}", plan.document_root.display()),
            &plan.document_root,
            Need::Search,
        ));
    }
    for (url, path) in &plan.url_aliases {
        let need = if path.is_dir() {
            Need::Search
        } else {
            Need::Read
        };
        targets.push((format!("--url-alias {url} {}", path.display()), path, need));
    }
    for (what, path, need) in targets {
        if let Some(b) = access::blocked(path, &who, need) {
            let owner = users::user_name(b.owner).unwrap_or_else(|| b.owner.to_string());
            return Err(b.explain(&what, &who, &owner, plan.run_as.is_some()));
        }
    }
    Ok(())
}

fn print_summary(plan: &Plan, entry: &Entry) {
    let app = match entry {
        Entry::Module(m) => format!("module {m}"),
        Entry::Paste(ini) => format!("the Paste deployment {}", ini.display()),
        Entry::Default => "the default page".to_owned(),
        Entry::Static(dir) => format!("the files of {}", dir.display()),
        Entry::Script(path) => path.display().to_string(),
    };
    println!("wsgi-express: serving {app} at {}", plan.url());
    println!("  server root:  {}", plan.server_root.display());
    match &plan.daemon {
        Some(d) => println!(
            "  daemon group: {} ({} process{} x {} threads)\n  timeouts:     request {} s, queue {} s, socket {} s, connect {} s, graceful {} s, shutdown {} s",
            plan.group_name(),
            d.processes,
            if d.processes == 1 { "" } else { "es" },
            d.threads,
            d.request_timeout,
            d.queue_timeout,
            d.socket_timeout,
            d.connect_timeout,
            d.graceful_timeout,
            d.shutdown_timeout
        ),
        None if plan.debug.is_some() => {
            println!("  debug mode:   one Apache process in the foreground (httpd -X), one thread")
        }
        None => println!(
            "  embedded mode: {} Apache process{} x {} threads",
            plan.processes,
            if plan.processes == 1 { "" } else { "es" },
            plan.threads
        ),
    }
    println!("  error log:    {}", plan.error_log);
    if let Some(a) = &plan.access_log {
        println!("  access log:   {a}");
    }
    if let Some(debug) = &plan.debug {
        for (what, dir) in [
            ("profiler:    ", &debug.profiler),
            ("coverage:    ", &debug.coverage),
            ("recorder:    ", &debug.recorder),
        ] {
            if let Some(dir) = dir {
                println!("  {what} {}", dir.display());
            }
        }
    }
    if plan.reloader_script.is_some() {
        println!("  reloading:    on changes to imported Python modules");
    }
    println!("  stop with Ctrl-C");
}
