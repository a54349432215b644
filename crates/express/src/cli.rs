//! Command-line surface: sub-commands and options, with mod_wsgi-express's names and
//! defaults where it has them.

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

mod https;
mod logs;
mod runtime;
mod site;
mod tuning;

pub use https::HttpsArgs;
pub use logs::LogArgs;
pub use runtime::RuntimeArgs;
pub use site::SiteArgs;
pub use tuning::TuningArgs;

/// Options behave as in mod_wsgi-express (optparse): the last of a repeated option wins
/// (so a wrapper's defaults can be overridden by appending), and a long option may be
/// shortened to any unique prefix (`--thr` for `--threads`).
#[derive(Parser, Debug)]
#[command(
    name = "wsgi-express",
    version,
    about = "Serve a WSGI application through Apache httpd and mod_wsgi_rs",
    args_override_self = true,
    infer_long_args = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses the command line; mistakes exit with clap's message and status 2.
    pub fn parse_args() -> Cli {
        Cli::try_parse().unwrap_or_else(|e| {
            let args: Vec<String> = std::env::args().collect();
            if let Some(message) = ambiguous_option(&e, &args) {
                eprintln!("wsgi-express: error: {message}");
                std::process::exit(2);
            }
            e.exit()
        })
    }
}

/// clap reports an ambiguous abbreviation as an unexpected argument; say which options it
/// could mean instead, as optparse does.
fn ambiguous_option(e: &clap::Error, args: &[String]) -> Option<String> {
    if e.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let Some(ContextValue::String(given)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    let prefix = given.strip_prefix("--")?.split('=').next()?;
    if prefix.is_empty() {
        return None;
    }
    let mut cli = Cli::command();
    cli.build();
    let sub = cli.find_subcommand(args.get(1)?)?;
    let candidates: Vec<String> = sub
        .get_arguments()
        .filter_map(|a| a.get_long())
        .filter(|long| long.starts_with(prefix))
        .map(|long| format!("--{long}"))
        .collect();
    (candidates.len() > 1).then(|| {
        format!(
            "ambiguous option --{prefix}: could be {}",
            candidates.join(", ")
        )
    })
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Write a server root for the application and run Apache in the foreground.
    StartServer(ServerArgs),
    /// Write a server root with an `apachectl` wrapper, without starting Apache.
    SetupServer(ServerArgs),
    /// Print the LoadModule line (and WSGIPythonHome if needed) for a system Apache.
    ModuleConfig(ModuleArgs),
    /// Print the path of the mod_wsgi_rs module this command uses.
    ModuleLocation(ModuleArgs),
    /// Copy the module into Apache's modules directory and write wsgi_rs.load/.conf.
    InstallModule(InstallArgs),
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApplicationType {
    /// A WSGI script file (like a .wsgi file for WSGIScriptAlias).
    Script,
    /// A Python module imported by name (`package.module`).
    Module,
    /// A Paste deployment configuration file, loaded with paste.deploy.
    Paste,
    /// No application: Apache serves the files of the given directory (or the
    /// current one).
    Static,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MpmName {
    Event,
    Worker,
    Prefork,
}

impl MpmName {
    pub fn as_str(self) -> &'static str {
        match self {
            MpmName::Event => "event",
            MpmName::Worker => "worker",
            MpmName::Prefork => "prefork",
        }
    }
}

/// Where to find Apache and the module (shared by every sub-command).
#[derive(Args, Debug, Clone, Default)]
pub struct ModuleArgs {
    /// The mod_wsgi_rs module to load [default: next to this program, then
    /// $MOD_WSGI_RS_MODULE, then Apache's modules directory].
    #[arg(long, value_name = "FILE")]
    pub module_path: Option<PathBuf>,
    /// Apache's modules directory [default: `apxs -q LIBEXECDIR`].
    #[arg(long, value_name = "DIR")]
    pub modules_directory: Option<PathBuf>,
    /// Python installation or virtual environment for WSGIPythonHome [default:
    /// $VIRTUAL_ENV when set].
    #[arg(long, value_name = "DIR")]
    pub python_home: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct InstallArgs {
    #[command(flatten)]
    pub module: ModuleArgs,
    /// Where a2enmod looks for modules [default: $APACHE_CONFDIR/mods-available].
    #[arg(long, value_name = "DIR")]
    pub mods_available: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ServerArgs {
    /// The WSGI script file, or the module name with --application-type module.
    #[arg(value_name = "SCRIPT")]
    pub script: Option<String>,
    /// The same as SCRIPT.
    #[arg(long, value_name = "SCRIPT-OR-MODULE", conflicts_with = "script")]
    pub entry_point: Option<String>,
    #[arg(long, value_enum, default_value = "script")]
    pub application_type: ApplicationType,
    /// Name of the WSGI callable in the script or module.
    #[arg(long, default_value = "application", value_name = "NAME")]
    pub callable_object: String,
    /// URL path the application is mounted at.
    #[arg(long, default_value = "/", value_name = "URL-PATH")]
    pub mount_point: String,
    /// Serve the files of PATH at URL with Apache itself (repeatable).
    #[arg(long, num_args = 2, value_names = ["URL-PATH", "FILE-OR-DIR"], action = clap::ArgAction::Append)]
    pub url_alias: Vec<String>,
    /// Directory of static files served by Apache below the mount point [default:
    /// SERVER-ROOT/htdocs].
    #[arg(long, value_name = "DIR")]
    pub document_root: Option<PathBuf>,
    /// Working directory of the daemon processes, also first on the Python path (in
    /// embedded mode only the latter) [default: the script's directory, or the current
    /// directory for a module].
    #[arg(long, value_name = "DIR")]
    pub working_directory: Option<PathBuf>,
    /// Extra directory on the Python path (repeatable).
    #[arg(long, value_name = "DIR", action = clap::ArgAction::Append)]
    pub python_path: Vec<PathBuf>,

    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Address to listen on [default: every interface].
    #[arg(long)]
    pub host: Option<String>,
    /// Apache's ServerName [default: the host, or localhost].
    #[arg(long)]
    pub server_name: Option<String>,
    /// Where the generated configuration and logs go [default:
    /// $TMPDIR/wsgi-express-HOST:PORT:UID].
    #[arg(long, value_name = "DIR")]
    pub server_root: Option<PathBuf>,
    /// Apache's binary [default: apache2 or httpd on PATH or in /usr/sbin].
    #[arg(long, value_name = "FILE")]
    pub httpd_executable: Option<PathBuf>,
    /// Apache MPM [default: event, else worker, else prefork].
    #[arg(long, value_enum)]
    pub mpm: Option<MpmName>,

    /// Daemon processes [default: 1].
    #[arg(long)]
    pub processes: Option<u32>,
    /// Threads per daemon process.
    #[arg(long, default_value_t = 5)]
    pub threads: u32,
    /// Run the application inside Apache's own processes instead of a daemon group.
    #[arg(long)]
    pub embedded_mode: bool,
    /// User the application runs as when started as root [default: www-data, else
    /// nobody].
    #[arg(long)]
    pub user: Option<String>,
    /// Group the application runs as when started as root [default: the user's group].
    #[arg(long)]
    pub group: Option<String>,

    #[arg(long, default_value_t = 0, value_name = "N")]
    pub maximum_requests: u64,
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub request_timeout: u64,
    #[arg(long, default_value_t = 45, value_name = "SECONDS")]
    pub queue_timeout: u64,
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub socket_timeout: u64,
    #[arg(long, default_value_t = 15, value_name = "SECONDS")]
    pub connect_timeout: u64,
    #[arg(long, default_value_t = 15, value_name = "SECONDS")]
    pub startup_timeout: u64,
    #[arg(long, default_value_t = 15, value_name = "SECONDS")]
    pub graceful_timeout: u64,
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    pub shutdown_timeout: u64,
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub inactivity_timeout: u64,
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub restart_interval: u64,
    #[arg(long, default_value_t = 10_485_760, value_name = "BYTES")]
    pub limit_request_body: u64,
    #[arg(long, default_value_t = 2, value_name = "SECONDS")]
    pub keep_alive_timeout: u64,

    /// Restart the daemon processes when a Python module they imported changes on disk.
    #[arg(long)]
    pub reload_on_changes: bool,
    /// How often --reload-on-changes looks at the files.
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    pub reload_interval: f64,

    /// Send the error log (and access log) to the terminal instead of files.
    #[arg(long)]
    pub log_to_terminal: bool,
    /// Write an access log.
    #[arg(long)]
    pub access_log: bool,
    #[arg(long, default_value = "warn", value_name = "LEVEL")]
    pub log_level: String,
    /// Directory for the log files [default: SERVER-ROOT].
    #[arg(long, value_name = "DIR")]
    pub log_directory: Option<PathBuf>,
    /// Apache configuration file appended to the generated one (repeatable).
    #[arg(long, value_name = "FILE", action = clap::ArgAction::Append)]
    pub include_file: Vec<PathBuf>,
    /// Environment variable passed to the application in its WSGI environ (repeatable).
    #[arg(long, num_args = 2, value_names = ["KEY", "VALUE"], action = clap::ArgAction::Append)]
    pub setenv: Vec<String>,
    /// Only write the server root; do not start Apache (like setup-server).
    #[arg(long)]
    pub setup_only: bool,

    /// A key/value store every process shares, as mod_wsgi.shared(NAME); SIZE like 16M,
    /// at least 128K (WSGISharedStore NAME size=SIZE; repeatable).
    #[arg(long, num_args = 2, value_names = ["NAME", "SIZE"], action = clap::ArgAction::Append)]
    pub shared_store: Vec<String>,
    /// Serve the server's Prometheus metrics at URL-PATH (SetHandler wsgi-metrics), to
    /// clients on this host only (Require local); for other scrapers, add your own
    /// <Location> with --include-file.
    #[arg(long, value_name = "URL-PATH")]
    pub metrics_url: Option<String>,
    /// Pin each client to one daemon process with this cookie (session-affinity=).
    #[arg(long, value_name = "COOKIE")]
    pub session_affinity: Option<String>,

    #[command(flatten)]
    pub https: HttpsArgs,
    #[command(flatten)]
    pub logs: LogArgs,
    #[command(flatten)]
    pub tuning: TuningArgs,
    #[command(flatten)]
    pub site: SiteArgs,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    #[command(flatten)]
    pub module: ModuleArgs,
}
