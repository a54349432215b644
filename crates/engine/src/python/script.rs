//! Loading a WSGI script file as a module of one interpreter, reloading it when its
//! modification time changes (WSGIScriptReloading), and finding its callable.

use super::Interpreter;
use pyo3::prelude::*;
use pyo3::sync::MutexExt;
use pyo3::types::{PyModule, PyString};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error("cannot read WSGI script '{path}': {error}")]
    Unreadable { path: String, error: std::io::Error },
    #[error("failed to exec Python script file '{path}':\n{traceback}")]
    Load { path: String, traceback: String },
    #[error("target WSGI script '{path}' does not contain WSGI application '{callable}'")]
    NoCallable { path: String, callable: String },
}

/// The sys.modules name a script is loaded under: stable per path within the process.
fn module_name(path: &Path) -> String {
    let mut h = DefaultHasher::new();
    path.hash(&mut h);
    format!("_mod_wsgi_{:016x}", h.finish())
}

/// Compiles Python source (bytes, honouring a PEP 263 coding declaration) to the code
/// object of a module. Not `builtins.compile`: that checks whether its argument is an AST
/// object, which creates the `_ast` module's 120-odd node types in the calling
/// interpreter, about 200 KiB in every sub-interpreter that never uses them.
pub(crate) fn compile_module<'py>(
    py: Python<'py>,
    source: &[u8],
    filename: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let source = std::ffi::CString::new(source).map_err(|_| {
        pyo3::exceptions::PyValueError::new_err("source code string cannot contain null bytes")
    })?;
    let filename = PyString::new(py, filename);
    // SAFETY: the GIL is held (`py`); `source` is a NUL-terminated string and `filename`
    // a live str, both outliving the call, which copies what it keeps. The result is a
    // new reference or NULL with an exception set, which `from_owned_ptr_or_err` takes.
    unsafe {
        let code = pyo3::ffi::Py_CompileStringObject(
            source.as_ptr(),
            filename.as_ptr(),
            pyo3::ffi::Py_file_input,
            std::ptr::null_mut(),
            -1,
        );
        Bound::from_owned_ptr_or_err(py, code)
    }
}

fn exec_script<'py>(
    py: Python<'py>,
    path: &Path,
    name: &str,
    mtime: f64,
) -> Result<Bound<'py, PyModule>, ScriptError> {
    let display = path.display().to_string();
    let source = std::fs::read(path).map_err(|error| ScriptError::Unreadable {
        path: display.clone(),
        error,
    })?;
    let load_error = |e: PyErr| ScriptError::Load {
        path: display.clone(),
        traceback: super::format_exception(py, &e),
    };
    let modules = py
        .import("sys")
        .and_then(|s| s.getattr("modules"))
        .map_err(load_error)?;
    let module = PyModule::new(py, name).map_err(load_error)?;
    let result = (|| -> PyResult<()> {
        let builtins = py.import("builtins")?;
        let code = compile_module(py, &source, &display)?;
        let ns = module.dict();
        ns.set_item("__file__", display.as_str())?;
        ns.set_item("__builtins__", &builtins)?;
        modules.set_item(name, &module)?;
        builtins.call_method1("exec", (code, &ns))?;
        ns.set_item("__mtime__", mtime)?;
        Ok(())
    })();
    match result {
        Ok(()) => Ok(module),
        Err(e) => {
            let _ = modules.del_item(name);
            Err(load_error(e))
        }
    }
}

/// The script module `name` if this interpreter has loaded it.
fn loaded_module<'py>(py: Python<'py>, name: &str) -> Option<Bound<'py, PyAny>> {
    // A plain sys.modules lookup: importing `sys` through the import machinery on every
    // request cost a sixth of a daemon's CPU on a hello-world app, and
    // PyImport_GetModule still probes the module's __spec__ (an AttributeError raised
    // and cleared for a script module).
    let name = PyString::new(py, name);
    // SAFETY: the GIL is held (`py`); PyImport_GetModuleDict returns a borrowed reference
    // to this interpreter's sys.modules, alive while the GIL is held; `name` is a live
    // str; PyDict_GetItemWithError returns a borrowed reference or NULL (not found, or
    // an error that is taken and dropped here), and the Bound takes a new reference.
    unsafe {
        let modules = pyo3::ffi::PyImport_GetModuleDict();
        let module = pyo3::ffi::PyDict_GetItemWithError(modules, name.as_ptr());
        if module.is_null() {
            let _ = PyErr::take(py);
            return None;
        }
        Some(Bound::from_borrowed_ptr(py, module))
    }
}

/// The script file's modification time the module was loaded from.
fn loaded_mtime(module: &Bound<'_, PyAny>) -> Option<f64> {
    module.getattr("__mtime__").ok()?.extract().ok()
}

/// Returns the callable `callable` of the script at `path` in the current interpreter,
/// loading the script on first use or, with `reload`, when `mtime` (seconds, as the
/// transport last saw the file) differs from the loaded module's or `forced` (the
/// module's `reload_required()` asked for it).
pub fn load_callable<'py>(
    py: Python<'py>,
    interp: &Interpreter,
    path: &Path,
    mtime: f64,
    callable: &str,
    reload: bool,
    forced: bool,
) -> Result<Bound<'py, PyAny>, ScriptError> {
    load_module(py, interp, path, mtime, reload, forced)?
        .getattr(callable)
        .map_err(|_| ScriptError::NoCallable {
            path: path.display().to_string(),
            callable: callable.to_owned(),
        })
}

/// The module of the script at `path` in the current interpreter, loaded (or reloaded)
/// as `load_callable` describes.
pub fn load_module<'py>(
    py: Python<'py>,
    interp: &Interpreter,
    path: &Path,
    mtime: f64,
    reload: bool,
    forced: bool,
) -> Result<Bound<'py, PyAny>, ScriptError> {
    let name = module_name(path);
    let cached = |py: Python<'py>| -> Option<Bound<'py, PyAny>> {
        let module = loaded_module(py, &name)?;
        // No __mtime__ yet: another thread is still executing the script (it is in
        // sys.modules from the start, so it can import itself); wait for it on the lock.
        let loaded = loaded_mtime(&module)?;
        if reload && (forced || loaded != mtime) {
            return None;
        }
        Some(module)
    };
    if let Some(module) = cached(py) {
        return Ok(module);
    }
    let _guard = interp
        .script_lock
        .lock_py_attached(py)
        .unwrap_or_else(|p| p.into_inner());
    match cached(py) {
        Some(m) => Ok(m),
        None => {
            tracing::info!("WSGI1011: Loading WSGI script '{}'", path.display());
            Ok(exec_script(py, path, &name, mtime)?.into_any())
        }
    }
}

/// What a request finds of its script in the current interpreter, for reloading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadedScript {
    /// Not loaded yet (or still loading): nothing to reload.
    Absent,
    /// Loaded from a file whose modification time was not `mtime`.
    Stale,
    /// Current, but its own `reload_required(resource)` asks for a reload.
    ReloadRequested,
    Current,
}

/// Looks the script at `path` up once and says whether it needs reloading: its mtime, then
/// (only for a current module) mod_wsgi's `reload_required(resource)` hook, called with the
/// script's path. A hook that raises is logged and counts as no: a reload per request
/// would turn a broken hook into a restart loop.
pub fn loaded_script(py: Python<'_>, path: &Path, mtime: f64) -> LoadedScript {
    let Some(module) = loaded_module(py, &module_name(path)) else {
        return LoadedScript::Absent;
    };
    match loaded_mtime(&module) {
        None => return LoadedScript::Absent,
        Some(loaded) if loaded != mtime => return LoadedScript::Stale,
        Some(_) => {}
    }
    let Some(hook) = module
        .getattr("reload_required")
        .ok()
        .filter(|hook| hook.is_callable())
    else {
        return LoadedScript::Current;
    };
    match hook
        .call1((path.to_string_lossy().as_ref(),))
        .and_then(|answer| answer.is_truthy())
    {
        Ok(true) => LoadedScript::ReloadRequested,
        Ok(false) => LoadedScript::Current,
        Err(e) => {
            tracing::error!(
                "WSGI1027: reload_required() of WSGI script '{}' raised; keeping the loaded module\n{}",
                path.display(),
                super::format_exception(py, &e)
            );
            LoadedScript::Current
        }
    }
}

/// Loads the script at `path` into the current interpreter unless it is already loaded
/// (WSGIImportScript and static WSGIScriptAlias preloading).
pub fn preload_script(
    py: Python<'_>,
    interp: &Interpreter,
    path: &Path,
    mtime: f64,
) -> Result<(), ScriptError> {
    let name = module_name(path);
    let _guard = interp
        .script_lock
        .lock_py_attached(py)
        .unwrap_or_else(|p| p.into_inner());
    if loaded_module(py, &name).is_none() {
        tracing::info!("WSGI1011: Loading WSGI script '{}'", path.display());
        exec_script(py, path, &name, mtime)?;
    }
    Ok(())
}

/// A script's modification time in seconds since the epoch, to the microsecond Apache
/// keeps; 0 when it cannot be read.
pub fn script_mtime(path: &Path) -> f64 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0.0, |d| d.as_micros() as f64 / 1_000_000.0)
}

/// Loads `script` into the interpreter of `application_group` ("" is main) at process
/// start (WSGIImportScript, a preloaded WSGIScriptAlias), as a request would, so the
/// first request finds it loaded; the error text (with its traceback) if it fails.
pub fn preload(script: &Path, application_group: &str) -> Result<(), String> {
    let mtime = script_mtime(script);
    let loaded = super::with_interpreter(application_group, |py, interp| {
        preload_script(py, interp, script, mtime).map_err(|e| e.to_string())
    });
    match loaded {
        Ok(result) => result,
        Err(e) => Err(e.to_string()),
    }
}
