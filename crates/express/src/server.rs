//! start-server and setup-server: resolve the options into a [`Plan`], write the server
//! root (httpd.conf, apachectl, generated Python helpers, htdocs), then run Apache in the
//! foreground in place of this process.

use crate::access::{self, Need};
use crate::cli::{ApplicationType, ServerArgs};
use crate::conf::{self, DaemonPlan, Plan};
use crate::locate;
use crate::python_home::python_home;
use crate::users;
use mod_wsgi_config::{DaemonSpec, SharedStoreSpec};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const RELOADER: &str = include_str!("reloader.py");
const DEFAULT_APP: &str = include_str!("default_app.py");

/// The application as given on the command line.
enum Entry {
    Script(PathBuf),
    Module(String),
    Default,
}

pub fn start(args: ServerArgs, setup_only: bool) -> Result<(), String> {
    let setup_only = setup_only || args.setup_only;
    let httpd = locate::httpd(args.httpd_executable.as_deref())?;
    let (plan, entry) = plan(&args)?;
    check_reachable(&plan, &entry, &args)?;
    if !setup_only {
        check_port_free(&plan)?;
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
    let err = Command::new(&httpd)
        .arg("-f")
        .arg(plan.server_root.join("httpd.conf"))
        .arg("-DFOREGROUND")
        .exec();
    Err(format!("cannot run {}: {err}", httpd.display()))
}

fn entry(args: &ServerArgs) -> Result<Entry, String> {
    let given = args.script.clone().or_else(|| args.entry_point.clone());
    match (given, args.application_type) {
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

fn locale() -> String {
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

fn pairs(flat: &[String]) -> Vec<(String, String)> {
    flat.chunks(2)
        .map(|c| (c[0].clone(), c.get(1).cloned().unwrap_or_default()))
        .collect()
}

fn plan(args: &ServerArgs) -> Result<(Plan, Entry), String> {
    let entry = entry(args)?;
    let modules_dir = locate::modules_directory(&args.module)?;
    let module = locate::module(&args.module, Some(&modules_dir))?;
    let mpm = locate::mpm(&modules_dir, args.mpm)?;
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
    let (handler_script, callable, default_dir) = match &entry {
        Entry::Script(path) => (
            path.clone(),
            args.callable_object.clone(),
            path.parent().unwrap_or(Path::new("/")).to_owned(),
        ),
        Entry::Module(_) | Entry::Default => (
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
    if matches!(entry, Entry::Module(_)) || args.embedded_mode {
        python_path.push(working_directory.clone());
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
    let (error_log, access_log) = if args.log_to_terminal {
        ("/dev/stderr".to_owned(), "/dev/stdout".to_owned())
    } else {
        (
            log_dir.join("error_log").display().to_string(),
            log_dir.join("access_log").display().to_string(),
        )
    };
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
        if args.embedded_mode {
            return Err("--session-affinity needs daemon mode (drop --embedded-mode)".to_owned());
        }
        DaemonSpec::parse(&["check".to_owned(), format!("session-affinity={cookie}")])
            .map_err(|e| format!("--session-affinity {cookie}: {e}"))?;
    }
    let processes = args.processes.unwrap_or(1);
    let daemon = (!args.embedded_mode).then_some(DaemonPlan {
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
    let plan = Plan {
        document_root: args
            .document_root
            .as_ref()
            .map(|d| locate::absolute(d))
            .unwrap_or_else(|| server_root.join("htdocs")),
        reloader_script: args
            .reload_on_changes
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
        locale: locale(),
        daemon,
        processes,
        threads: args.threads,
        limit_request_body: args.limit_request_body,
        keep_alive_timeout: args.keep_alive_timeout,
        error_log,
        access_log: args.access_log.then_some(access_log),
        log_level: args.log_level.clone(),
        include_files: args
            .include_file
            .iter()
            .map(|f| locate::absolute(f))
            .collect(),
        setenv: pairs(&args.setenv),
        shared_stores,
        metrics_url: args.metrics_url.clone(),
    };
    Ok((plan, entry))
}

fn check_port_free(plan: &Plan) -> Result<(), String> {
    let host = plan.host.as_deref().unwrap_or("0.0.0.0");
    match std::net::TcpListener::bind((host, plan.port)) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(format!(
            "port {} on {host} is already in use; pick another with --port",
            plan.port
        )),
        Err(e) => Err(format!("cannot listen on {host}:{}: {e}", plan.port)),
    }
}

fn write_file(path: &Path, text: &str, mode: u32) -> Result<(), String> {
    fs::write(path, text)
        .and_then(|()| fs::set_permissions(path, fs::Permissions::from_mode(mode)))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Single-quotes a value for sh.
fn sh(value: &Path) -> String {
    format!("'{}'", value.to_string_lossy().replace('\'', "'\\''"))
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
        Entry::Default => write_file(&plan.handler_script, DEFAULT_APP, 0o644)?,
        Entry::Script(_) => {}
    }
    if let Some(reloader) = &plan.reloader_script {
        let text = RELOADER.replace("@INTERVAL@", &args.reload_interval.to_string());
        write_file(reloader, &text, 0o644)?;
    }
    write_file(&root.join("httpd.conf"), &conf::render(plan), 0o644)?;
    let apachectl = format!(
        "#!/bin/sh\n# Generated by wsgi-express: controls the Apache of this server root.\n\
         HTTPD={}\nCONF={}\n\
         case \"$1\" in\n\
         \x20   start|stop|restart|graceful|graceful-stop) exec \"$HTTPD\" -f \"$CONF\" -k \"$1\" ;;\n\
         \x20   configtest) exec \"$HTTPD\" -f \"$CONF\" -t ;;\n\
         \x20   foreground) exec \"$HTTPD\" -f \"$CONF\" -DFOREGROUND ;;\n\
         \x20   *) echo \"usage: $0 start|stop|restart|graceful|graceful-stop|configtest|foreground\" >&2; exit 2 ;;\n\
         esac\n",
        sh(httpd),
        sh(&root.join("httpd.conf")),
    );
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
    // The daemons' sockets, and a generated handler script, live there.
    targets.push((
        format!("the server root {}", plan.server_root.display()),
        &plan.server_root,
        Need::Search,
    ));
    let from_cwd = args.working_directory.is_none() && !matches!(entry, Entry::Script(_));
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
        Entry::Default => "the default page".to_owned(),
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
    if plan.reloader_script.is_some() {
        println!("  reloading:    on changes to imported Python modules");
    }
    println!("  stop with Ctrl-C");
}
