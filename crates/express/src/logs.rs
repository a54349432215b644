//! Where the logs go: files in the log directory (named by --error-log-name and
//! friends), the terminal, or a piped rotatelogs that starts a new file every
//! --max-log-size megabytes.

use crate::cli::ServerArgs;
use crate::locate;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq)]
pub struct LogTargets {
    /// ErrorLog's argument: a path, or `|rotatelogs ...`.
    pub error_log: String,
    pub access_log: String,
    /// httpd -E's file, for messages before the error log opens.
    pub startup_log: Option<String>,
    rotation: Option<(PathBuf, u64)>,
    directory: PathBuf,
}

impl LogTargets {
    /// The target of a log file NAME in the log directory (rotated with --rotate-logs).
    pub fn file(&self, name: &str) -> String {
        let path = self.directory.join(name);
        match &self.rotation {
            Some((rotatelogs, size)) => format!(
                "|{} {}.%Y-%m-%d-%H_%M_%S {size}M",
                rotatelogs.display(),
                path.display()
            ),
            None => path.display().to_string(),
        }
    }
}

fn plain_name(option: &str, name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains('/') {
        return Err(format!(
            "{option} '{name}': a file name without directories"
        ));
    }
    Ok(())
}

pub fn resolve(args: &ServerArgs, directory: &Path) -> Result<LogTargets, String> {
    let l = &args.logs;
    plain_name("--error-log-name", &l.error_log_name)?;
    plain_name("--access-log-name", &l.access_log_name)?;
    plain_name("--startup-log-name", &l.startup_log_name)?;
    // As mod_wsgi-express: logging to the terminal turns rotation off.
    let rotation = if l.rotate_logs && !args.log_to_terminal {
        if l.max_log_size == 0 {
            return Err("--max-log-size must be at least 1 (MB)".to_owned());
        }
        let program = match &l.rotatelogs_executable {
            Some(p) if p.is_file() => locate::absolute(p),
            Some(p) => return Err(format!("--rotatelogs-executable {}: no such file", p.display())),
            None => locate::find_program(&["rotatelogs"]).ok_or(
                "--rotate-logs: no rotatelogs program on PATH or in /usr/sbin, /usr/bin (Debian: apache2-utils); give it with --rotatelogs-executable",
            )?,
        };
        Some((program, l.max_log_size))
    } else {
        None
    };
    let mut t = LogTargets {
        error_log: String::new(),
        access_log: String::new(),
        startup_log: None,
        rotation,
        directory: directory.to_owned(),
    };
    if args.log_to_terminal {
        t.error_log = "/dev/stderr".to_owned();
        t.access_log = "/dev/stdout".to_owned();
        t.startup_log = l.startup_log.then(|| "/dev/stderr".to_owned());
    } else {
        t.error_log = t.file(&l.error_log_name);
        t.access_log = t.file(&l.access_log_name);
        t.startup_log = l
            .startup_log
            .then(|| directory.join(&l.startup_log_name).display().to_string());
    }
    Ok(t)
}
