//! Finding what the generated configuration points at: Apache's binary, its modules
//! directory, the best MPM it has, and the mod_wsgi_rs module itself.

use crate::cli::{ModuleArgs, MpmName};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Directories searched for programs after PATH (root's sbin is often not on a user's PATH).
const SBIN: [&str; 2] = ["/usr/sbin", "/usr/local/sbin"];
/// Where distributions keep Apache's modules when `apxs` is not installed.
const MODULE_DIRS: [&str; 4] = [
    "/usr/lib/apache2/modules",
    "/usr/lib64/httpd/modules",
    "/usr/lib/httpd/modules",
    "/usr/local/apache2/modules",
];
pub const MODULE_FILE: &str = "mod_wsgi_rs.so";
/// The cdylib's name as cargo builds it.
const BUILT_MODULE_FILE: &str = "libmod_wsgi_rs.so";

pub fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path).chain(SBIN.iter().map(PathBuf::from));
    for dir in dirs {
        for name in names {
            let candidate = dir.join(name);
            if is_executable(&candidate) {
                return Some(candidate);
            }
        }
    }
    None
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

pub fn httpd(explicit: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = explicit {
        return if is_executable(p) {
            Ok(p.to_owned())
        } else {
            Err(format!(
                "--httpd-executable {}: not an executable file",
                p.display()
            ))
        };
    }
    find_program(&["apache2", "httpd"]).ok_or_else(|| {
        "no Apache httpd found (looked for apache2 and httpd on PATH and in /usr/sbin); \
         install it (Debian: apt install apache2) or pass --httpd-executable"
            .to_owned()
    })
}

pub fn modules_directory(args: &ModuleArgs) -> Result<PathBuf, String> {
    if let Some(d) = &args.modules_directory {
        return Ok(d.clone());
    }
    if let Some(apxs) = find_program(&["apxs", "apxs2"])
        && let Ok(out) = Command::new(apxs).args(["-q", "LIBEXECDIR"]).output()
    {
        let dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if out.status.success() && !dir.is_empty() && Path::new(&dir).is_dir() {
            return Ok(PathBuf::from(dir));
        }
    }
    MODULE_DIRS
        .iter()
        .map(PathBuf::from)
        .find(|d| d.join("mod_authz_core.so").exists())
        .ok_or_else(|| {
            "cannot find Apache's modules directory (no apxs, none of the usual places); \
             pass --modules-directory"
                .to_owned()
        })
}

/// The module to load: explicit option, then next to this program (a cargo build or an
/// install that keeps them together), then $MOD_WSGI_RS_MODULE, then Apache's modules
/// directory `modules_dir` (found by [`modules_directory`]).
pub fn module(args: &ModuleArgs, modules_dir: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = &args.module_path {
        return if p.is_file() {
            Ok(absolute(p))
        } else {
            Err(format!("--module-path {}: no such file", p.display()))
        };
    }
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_owned))
    {
        candidates.push(dir.join(BUILT_MODULE_FILE));
        candidates.push(dir.join(MODULE_FILE));
        candidates.push(dir.join("../lib/mod_wsgi_rs").join(MODULE_FILE));
    }
    if let Some(p) = std::env::var_os("MOD_WSGI_RS_MODULE") {
        candidates.push(PathBuf::from(p));
    }
    if let Some(dir) = modules_dir {
        candidates.push(dir.join(MODULE_FILE));
    }
    candidates
        .iter()
        .find(|p| p.is_file())
        .map(|p| absolute(p))
        .ok_or_else(|| {
            format!(
                "cannot find the mod_wsgi_rs module (looked at {}); pass --module-path",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// The MPM: --mpm if given (refused when missing), else the first available of the
/// --server-mpm preferences, else event, worker, prefork.
pub fn mpm(
    modules: &Path,
    wanted: Option<MpmName>,
    preferred: &[MpmName],
) -> Result<MpmName, String> {
    let has = |m: MpmName| modules.join(format!("mod_mpm_{}.so", m.as_str())).exists();
    match wanted {
        Some(m) if has(m) => Ok(m),
        Some(m) => Err(format!(
            "--mpm {}: {} has no mod_mpm_{}.so",
            m.as_str(),
            modules.display(),
            m.as_str()
        )),
        None => preferred
            .iter()
            .copied()
            .chain([MpmName::Event, MpmName::Worker, MpmName::Prefork])
            .find(|m| has(*m))
            .ok_or_else(|| format!("no MPM module (mod_mpm_*.so) in {}", modules.display())),
    }
}

pub fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_owned())
    })
}
