//! The Python version of a Python home (a prefix or a virtual environment), so a home of
//! another version than the module links is refused when the configuration is read:
//! started anyway, Python fails in every process with "failed to get the Python codec
//! of the filesystem encoding", far from the line that caused it.

use crate::ConfigError;
use std::path::Path;

/// `X.Y` of a version text such as `3.11.2` or `3.12.1.final.0`.
pub fn major_minor(text: &str) -> Option<String> {
    let mut parts = text.trim().split('.');
    let major = parts.next()?.trim();
    let minor = parts.next()?.trim();
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(major) && digits(minor)).then(|| format!("{major}.{minor}"))
}

/// The Python version of a virtual environment's `pyvenv.cfg` (`version` from venv,
/// `version_info` from virtualenv).
fn pyvenv_version(cfg: &str) -> Option<String> {
    cfg.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        matches!(key.trim(), "version" | "version_info")
            .then(|| major_minor(value))
            .flatten()
    })
}

/// The Python version of a home: its pyvenv.cfg, else its only `lib/pythonX.Y` with a
/// standard library in it; None when neither tells.
pub fn home_python_version(home: &Path) -> Option<String> {
    if let Ok(cfg) = std::fs::read_to_string(home.join("pyvenv.cfg")) {
        return pyvenv_version(&cfg);
    }
    let mut versions: Vec<String> = std::fs::read_dir(home.join("lib"))
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let version = major_minor(name.strip_prefix("python")?)?;
            e.path().join("os.py").is_file().then_some(version)
        })
        .collect();
    versions.sort();
    versions.dedup();
    (versions.len() == 1).then(|| versions.remove(0))
}

/// Refuses `home` (given by `what`, e.g. "WSGIPythonHome") when it is a Python of another
/// `X.Y` than `linked`, the Python the module is built for.
pub fn check_home_version(
    directive: &'static str,
    what: &str,
    home: &str,
    linked: &str,
) -> Result<(), ConfigError> {
    match home_python_version(Path::new(home)) {
        Some(version) if version != linked => Err(ConfigError::Invalid {
            directive,
            reason: format!(
                "{what} {home} is Python {version}, but this module is built for Python \
                 {linked}; use a Python {linked} home (python{linked} -m venv), or rebuild the \
                 module for {version} (PYO3_PYTHON=python{version} cargo build --release --workspace)"
            ),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_come_from_pyvenv_cfg_or_the_standard_library() {
        assert_eq!(major_minor("3.12.1.final.0").as_deref(), Some("3.12"));
        assert_eq!(major_minor("3").as_deref(), None);
        assert_eq!(
            pyvenv_version("home = /usr/bin\nversion = 3.13.0\n").as_deref(),
            Some("3.13")
        );
        let virtualenv =
            "home = /opt/py/bin\nimplementation = CPython\nversion_info = 3.12.1.final.0\n";
        assert_eq!(pyvenv_version(virtualenv).as_deref(), Some("3.12"));
        assert_eq!(pyvenv_version("home = /usr/bin\n"), None);
        let dir = std::env::temp_dir().join(format!("home-version-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("lib/python3.9")).unwrap();
        std::fs::write(dir.join("lib/python3.9/os.py"), "").unwrap();
        assert_eq!(home_python_version(&dir).as_deref(), Some("3.9"));
        let home = dir.display().to_string();
        let err = check_home_version("WSGIPythonHome", "WSGIPythonHome", &home, "3.11")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("is Python 3.9, but this module is built for Python 3.11"),
            "{err}"
        );
        assert!(check_home_version("WSGIPythonHome", "WSGIPythonHome", &home, "3.9").is_ok());
        assert!(check_home_version("WSGIPythonHome", "x", "/nonexistent", "3.11").is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
