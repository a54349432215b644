//! Options for Apache's logs and pid file, with mod_wsgi-express's names and defaults.

use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug, Clone, Default)]
pub struct LogArgs {
    /// Log Apache's own startup messages (before the error log opens) to a file in the
    /// log directory, or to the terminal with --log-to-terminal.
    #[arg(long)]
    pub startup_log: bool,
    /// File name of the startup log.
    #[arg(long, default_value = "startup_log", value_name = "FILE-NAME")]
    pub startup_log_name: String,
    /// Access log format: common, combined or a LogFormat string [default: common].
    #[arg(long, value_name = "FORMAT")]
    pub access_log_format: Option<String>,
    /// Error log format (ErrorLogFormat).
    #[arg(long, value_name = "FORMAT")]
    pub error_log_format: Option<String>,
    /// File name of the error log in the log directory.
    #[arg(long, default_value = "error_log", value_name = "FILE-NAME")]
    pub error_log_name: String,
    /// File name of the access log in the log directory.
    #[arg(long, default_value = "access_log", value_name = "FILE-NAME")]
    pub access_log_name: String,
    /// Rotate the log files through a piped rotatelogs (NAME.YYYY-mm-dd-HH_MM_SS).
    #[arg(long)]
    pub rotate_logs: bool,
    /// Size in MB at which --rotate-logs starts a new file.
    #[arg(long, default_value_t = 5, value_name = "MB")]
    pub max_log_size: u64,
    /// The rotatelogs program [default: rotatelogs on PATH or in /usr/sbin, /usr/bin].
    #[arg(long, value_name = "FILE-PATH")]
    pub rotatelogs_executable: Option<PathBuf>,
    /// Apache parent's pid file [default: SERVER-ROOT/httpd.pid].
    #[arg(long, value_name = "FILE-PATH")]
    pub pid_file: Option<PathBuf>,
    /// Log the module's internal steps (WSGIVerboseDebugging On).
    #[arg(long, hide = true)]
    pub verbose_debugging: bool,
}
