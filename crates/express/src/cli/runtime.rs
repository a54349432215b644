//! Options for the processes' environment, Python, managed services and debugging,
//! with mod_wsgi-express's names and defaults.

use clap::{ArgAction, Args};
use std::path::PathBuf;

#[derive(Args, Debug, Clone, Default)]
pub struct RuntimeArgs {
    /// Locale of Apache and the daemons (LC_ALL and LANG) [default: this process's
    /// UTF-8 locale, else en_US.UTF-8 or C.UTF-8].
    #[arg(long, value_name = "NAME")]
    pub locale: Option<String>,
    /// The same as --locale (older name).
    #[arg(long, hide = true, value_name = "NAME")]
    pub lang: Option<String>,
    /// Shell script sourced before Apache starts, to set environment variables
    /// [default: SERVER-ROOT/envvars when it exists].
    #[arg(long, value_name = "FILE-PATH")]
    pub envvars_script: Option<PathBuf>,
    /// Pass this variable of Apache's environment into the WSGI environ (PassEnv;
    /// repeatable).
    #[arg(long, value_name = "KEY", action = ArgAction::Append)]
    pub passenv: Vec<String>,
    /// Directory for unpacking Python eggs (PYTHON_EGG_CACHE).
    #[arg(long, value_name = "DIRECTORY-PATH")]
    pub python_eggs: Option<PathBuf>,
    /// Warnings filter entry in -W syntax, like "error" (WSGIPythonWarnings;
    /// repeatable).
    #[arg(long, value_name = "SPEC", action = ArgAction::Append)]
    pub python_warnings: Vec<String>,
    /// Shell of the generated apachectl [default: /bin/bash, else /bin/sh].
    #[arg(long, value_name = "FILE-PATH")]
    pub shell_executable: Option<PathBuf>,
    /// Name of the Apache parent process in ps [default: "apache2 (wsgi-express)"].
    #[arg(long, value_name = "NAME")]
    pub process_name: Option<String>,
    /// MIME types file (TypesConfig) [default: /etc/mime.types].
    #[arg(long, value_name = "FILE-PATH")]
    pub mime_types: Option<PathBuf>,
    /// Directory and name prefix of the daemons' sockets (WSGISocketPrefix).
    #[arg(long, value_name = "DIRECTORY-PATH")]
    pub socket_prefix: Option<PathBuf>,
    /// Run SCRIPT-PATH in a daemon process of its own, named SERVICE, without request
    /// threads (a managed service; repeatable).
    #[arg(long, num_args = 2, value_names = ["SERVICE", "SCRIPT-PATH"], action = ArgAction::Append)]
    pub service_script: Vec<String>,
    /// User the SERVICE runs as when started as root (repeatable).
    #[arg(long, num_args = 2, value_names = ["SERVICE", "USERNAME"], action = ArgAction::Append)]
    pub service_user: Vec<String>,
    /// Group the SERVICE runs as when started as root (repeatable).
    #[arg(long, num_args = 2, value_names = ["SERVICE", "GROUP"], action = ArgAction::Append)]
    pub service_group: Vec<String>,
    /// Log file (in the log directory) for the SERVICE's output (repeatable).
    #[arg(long, num_args = 2, value_names = ["SERVICE", "FILE-NAME"], action = ArgAction::Append)]
    pub service_log_file: Vec<String>,
    /// Do not destroy the interpreters when a process exits (WSGIDestroyInterpreter
    /// Off).
    #[arg(long)]
    pub orphan_interpreter: bool,
    /// Do not reload the application when its script file changes
    /// (WSGIScriptReloading Off).
    #[arg(long)]
    pub disable_reloading: bool,
    /// Run Apache as a single process in the foreground, for an interactive debugger.
    #[arg(long)]
    pub debug_mode: bool,
    /// With --debug-mode, run pdb post-mortem on exceptions from the application.
    #[arg(long)]
    pub enable_debugger: bool,
    /// With --enable-debugger, also enter pdb when the server starts.
    #[arg(long)]
    pub debugger_startup: bool,
    /// With --debug-mode, record code coverage.
    #[arg(long)]
    pub enable_coverage: bool,
    /// Where --enable-coverage writes its HTML report.
    #[arg(long, value_name = "DIRECTORY-PATH")]
    pub coverage_directory: Option<PathBuf>,
    /// With --debug-mode, profile each request with cProfile.
    #[arg(long)]
    pub enable_profiler: bool,
    /// Where --enable-profiler writes its data.
    #[arg(long, value_name = "DIRECTORY-PATH")]
    pub profiler_directory: Option<PathBuf>,
    /// With --debug-mode, record each request and response.
    #[arg(long)]
    pub enable_recorder: bool,
    /// Where --enable-recorder writes its data.
    #[arg(long, value_name = "DIRECTORY-PATH")]
    pub recorder_directory: Option<PathBuf>,
    /// With --debug-mode, run Apache under gdb.
    #[arg(long)]
    pub enable_gdb: bool,
    /// The gdb program.
    #[arg(long, default_value = "gdb", value_name = "FILE-PATH")]
    pub gdb_executable: PathBuf,
    #[arg(long, hide = true)]
    pub isatty: bool,
}
