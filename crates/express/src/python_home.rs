//! The Python home given to the module (WSGIPythonHome, python-home=): the option, else
//! the active virtual environment, refused when its Python version is not the one the
//! module links (the daemons would fail to start, each logging why, instead of serving).

use crate::cli::ModuleArgs;
use mod_wsgi_config::{home_python_version, major_minor};
use std::path::{Path, PathBuf};

/// Where the home came from, as the user would name it.
enum Source {
    Option,
    VirtualEnv,
}

/// The Python home to configure, checked against the module's Python version.
pub fn python_home(args: &ModuleArgs, module: &Path) -> Result<Option<PathBuf>, String> {
    let (home, source) = match (&args.python_home, std::env::var_os("VIRTUAL_ENV")) {
        (Some(home), _) => (home.clone(), Source::Option),
        (None, Some(venv)) if !venv.is_empty() => (PathBuf::from(venv), Source::VirtualEnv),
        (None, _) => return Ok(None),
    };
    let named = match source {
        Source::Option => format!("--python-home {}", home.display()),
        Source::VirtualEnv => format!("VIRTUAL_ENV {}", home.display()),
    };
    if !home.is_dir() {
        return Err(format!("{named}: no such directory"));
    }
    let home = crate::locate::absolute(&home);
    let (Some(home_version), Some(module_version)) =
        (home_python_version(&home), module_python_version(module))
    else {
        // Not a layout or a build we can read the version of: let Python judge.
        return Ok(Some(home));
    };
    if home_version == module_version {
        return Ok(Some(home));
    }
    let fix = match source {
        Source::Option => format!("pass a Python {module_version} home instead"),
        Source::VirtualEnv => format!(
            "deactivate it, use a Python {module_version} environment (python{module_version} -m venv), or pass --python-home"
        ),
    };
    Err(format!(
        "{named} is Python {home_version}, but the module {} is built for Python {module_version}; \
         {fix}, or rebuild the module for {home_version} (PYO3_PYTHON=python{home_version} cargo build --release --workspace)",
        module.display()
    ))
}

/// `X.Y` of the libpython the module links (its `libpythonX.Y.so` dependency).
pub fn module_python_version(module: &Path) -> Option<String> {
    let bytes = std::fs::read(module).ok()?;
    libpython_version(&bytes)
}

fn libpython_version(bytes: &[u8]) -> Option<String> {
    const NEEDLE: &[u8] = b"libpython";
    let at = bytes.windows(NEEDLE.len()).position(|w| w == NEEDLE)? + NEEDLE.len();
    let rest = &bytes[at..bytes.len().min(at + 16)];
    let end = rest
        .iter()
        .position(|b| !(b.is_ascii_digit() || *b == b'.'))
        .unwrap_or(rest.len());
    major_minor(std::str::from_utf8(&rest[..end]).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_of_the_linked_libpython() {
        assert_eq!(
            libpython_version(b"\0libgcc_s.so.1\0libpython3.11.so.1.0\0").as_deref(),
            Some("3.11")
        );
        assert_eq!(
            libpython_version(b"libpython3.13t.so.1.0").as_deref(),
            Some("3.13")
        );
        assert_eq!(libpython_version(b"libc.so.6\0"), None);
    }
}
