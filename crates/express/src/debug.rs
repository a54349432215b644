//! --debug-mode and its aids, as mod_wsgi-express runs them: Apache as one process in
//! the foreground (httpd -X) with the terminal as the application's stdin and stdout,
//! the application in embedded mode behind a generated handler that adds pdb
//! post-mortem, cProfile, coverage and a request recorder; --enable-gdb runs it all
//! under gdb.

use crate::cli::ServerArgs;
use crate::locate;
use std::path::{Path, PathBuf};

const HANDLER: &str = include_str!("debug_handler.py");

#[derive(Debug, Clone, PartialEq)]
pub struct DebugPlan {
    pub debugger: bool,
    pub debugger_startup: bool,
    pub coverage: Option<PathBuf>,
    pub profiler: Option<PathBuf>,
    pub recorder: Option<PathBuf>,
    /// gdb to run Apache under.
    pub gdb: Option<PathBuf>,
}

impl DebugPlan {
    /// Directories the aids write to (created, and given to Apache's user).
    pub fn output_directories(&self) -> impl Iterator<Item = &Path> {
        [&self.coverage, &self.profiler, &self.recorder]
            .into_iter()
            .flatten()
            .map(PathBuf::as_path)
    }
}

fn directory(given: Option<&Path>, server_root: &Path, default: &str) -> PathBuf {
    given.map_or_else(|| server_root.join(default), locate::absolute)
}

/// Debug mode when asked for, or implied (as in mod_wsgi-express) by any of its aids.
pub fn resolve(args: &ServerArgs, server_root: &Path) -> Result<Option<DebugPlan>, String> {
    let r = &args.runtime;
    if r.debugger_startup && !r.enable_debugger {
        return Err("--debugger-startup needs --enable-debugger".to_owned());
    }
    let active = r.debug_mode
        || r.enable_debugger
        || r.enable_coverage
        || r.enable_profiler
        || r.enable_recorder
        || r.enable_gdb;
    if !active {
        return Ok(None);
    }
    let gdb =
        if r.enable_gdb {
            let given = &r.gdb_executable;
            let found = if given.components().count() > 1 {
                given.is_file().then(|| locate::absolute(given))
            } else {
                locate::find_program(&[&given.to_string_lossy()])
            };
            Some(found.ok_or_else(|| {
                format!("--enable-gdb: no {} program (Debian: gdb)", given.display())
            })?)
        } else {
            None
        };
    Ok(Some(DebugPlan {
        debugger: r.enable_debugger,
        debugger_startup: r.debugger_startup,
        coverage: r
            .enable_coverage
            .then(|| directory(r.coverage_directory.as_deref(), server_root, "coverage")),
        profiler: r
            .enable_profiler
            .then(|| directory(r.profiler_directory.as_deref(), server_root, "profiler")),
        recorder: r
            .enable_recorder
            .then(|| directory(r.recorder_directory.as_deref(), server_root, "recorder")),
        gdb,
    }))
}

fn py_str(s: &str) -> String {
    format!("{s:?}")
}

fn py_path(p: Option<&PathBuf>) -> String {
    p.map_or_else(|| "None".to_owned(), |p| py_str(&p.to_string_lossy()))
}

fn py_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

/// The handler script for `target` (a script path, or a module name when `is_module`).
pub fn handler(
    plan: &DebugPlan,
    target: &str,
    is_module: bool,
    callable: &str,
    working_directory: &Path,
) -> String {
    HANDLER
        .replace("@TARGET@", &py_str(target))
        .replace("@IS_MODULE@", py_bool(is_module))
        .replace("@CALLABLE@", &py_str(callable))
        .replace(
            "@WORKING_DIRECTORY@",
            &py_str(&working_directory.to_string_lossy()),
        )
        .replace("@DEBUGGER@", py_bool(plan.debugger))
        .replace("@DEBUGGER_STARTUP@", py_bool(plan.debugger_startup))
        .replace("@COVERAGE_DIRECTORY@", &py_path(plan.coverage.as_ref()))
        .replace("@PROFILER_DIRECTORY@", &py_path(plan.profiler.as_ref()))
        .replace("@RECORDER_DIRECTORY@", &py_path(plan.recorder.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handler_names_the_target_and_the_aids() {
        let plan = DebugPlan {
            debugger: true,
            debugger_startup: false,
            coverage: None,
            profiler: Some("/root/profiler".into()),
            recorder: None,
            gdb: None,
        };
        let text = handler(&plan, "/app/site.wsgi", false, "app", Path::new("/app"));
        assert!(
            text.contains("TARGET = \"/app/site.wsgi\"\nIS_MODULE = False\nCALLABLE = \"app\"\n")
        );
        assert!(text.contains("DEBUGGER = True\nDEBUGGER_STARTUP = False\n"));
        assert!(
            text.contains("COVERAGE_DIRECTORY = None\nPROFILER_DIRECTORY = \"/root/profiler\"\n")
        );
        assert!(!text.contains('@'), "every placeholder is filled");
    }
}
