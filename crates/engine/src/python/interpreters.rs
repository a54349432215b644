//! Interpreters by application group name: the main interpreter for "" (`%{GLOBAL}`),
//! a sub-interpreter created on first use for any other name (with its own GIL where
//! `WSGIPerInterpreterGIL` says so, from Python 3.12), entered through `entry`.

use super::entry::Entry;
use super::shim::{self, ShimObjects};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::MutexExt;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock};

/// One Python interpreter of this process and its `mod_wsgi` objects.
pub struct Interpreter {
    pub name: String,
    entry: &'static Entry,
    /// Runs under a GIL of its own (PEP 684), in parallel with the other interpreters.
    pub own_gil: bool,
    pub shim: ShimObjects,
    /// Serialises loading of scripts into this interpreter.
    pub(crate) script_lock: Mutex<()>,
    /// The broadcast bus sequence this interpreter's subscribers last caught up with.
    pub(crate) broadcast_seen: AtomicU64,
}

impl Interpreter {
    pub fn is_main(&self) -> bool {
        self.name.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InterpreterError {
    #[error("Python is not initialised in this process")]
    NotInitialized,
    #[error("cannot create Python interpreter '{name}'{reason}")]
    Create { name: String, reason: String },
    #[error("cannot set up Python interpreter '{name}': {traceback}")]
    Setup { name: String, traceback: String },
    #[error("cannot enter Python interpreter '{name}' (WSGI1149 in the log says why)")]
    Enter { name: String },
}

static REGISTRY: Mutex<Option<HashMap<String, Arc<Interpreter>>>> = Mutex::new(None);

/// How to enter the main interpreter, made by `runtime::initialize`.
static MAIN_ENTRY: OnceLock<Entry> = OnceLock::new();

thread_local! {
    static CACHE: RefCell<HashMap<String, Arc<Interpreter>>> = RefCell::new(HashMap::new());
}

/// Records how to enter the main interpreter; called once, attached to it, at start.
pub(crate) fn set_main_entry(py: Python<'_>) -> PyResult<()> {
    // SAFETY: called by initialize() on the thread that holds the main interpreter's GIL.
    let entry = unsafe { Entry::of_current(py) }?;
    let _ = MAIN_ENTRY.set(entry);
    Ok(())
}

/// How to enter the main interpreter; missing if `initialize` failed after CPython
/// itself had started.
fn main_entry() -> Result<&'static Entry, InterpreterError> {
    MAIN_ENTRY.get().ok_or(InterpreterError::NotInitialized)
}

fn setup_error(py: Python<'_>, name: &str, err: PyErr) -> InterpreterError {
    InterpreterError::Setup {
        name: name.to_owned(),
        traceback: super::format_exception(py, &err),
    }
}

/// Whether the sub-interpreter `name` gets its own GIL: the most specific
/// `<WSGIInterpreterOptions>` that says, else WSGIPerInterpreterGIL; never the main one.
fn wants_own_gil(name: &str) -> bool {
    if name.is_empty() || !cfg!(Py_3_12) {
        return false;
    }
    super::runtime::try_settings().is_some_and(|s| {
        let own = mod_wsgi_config::resolve_interpreter_options(
            &s.interpreter_options,
            &s.process_group,
            name,
        );
        own.per_interpreter_gil.unwrap_or(s.per_interpreter_gil)
    })
}

/// Whether an interpreter of this process may get its own GIL: CPython 3.12 or later
/// and WSGIPerInterpreterGIL On, at the top level or in an `<WSGIInterpreterOptions>`
/// block. False before `initialize`.
pub fn own_gils_configured() -> bool {
    cfg!(Py_3_12) && super::runtime::try_settings().is_some_and(super::runtime::own_gil_anywhere)
}

/// The GIL requests of application group `name` run under: the group's own (its name),
/// or the process's shared one ("").
pub fn gil_of(name: &str) -> &str {
    if wants_own_gil(name) { name } else { "" }
}

/// Makes a new interpreter current on this thread (which holds the main GIL), or None.
///
/// # Safety
/// The thread is attached to the main interpreter.
unsafe fn new_interpreter(own_gil: bool) -> Result<*mut ffi::PyThreadState, String> {
    #[cfg(Py_3_12)]
    {
        let config = if own_gil {
            ffi::_PyInterpreterConfig_INIT
        } else {
            ffi::_PyInterpreterConfig_LEGACY_INIT
        };
        let mut ts = std::ptr::null_mut();
        // SAFETY: attached to main (the caller's contract); on failure CPython puts the
        // caller's thread state back.
        let status = unsafe { ffi::Py_NewInterpreterFromConfig(&mut ts, &config) };
        // SAFETY: status is the initialised value the call returned.
        if unsafe { ffi::PyStatus_Exception(status) } != 0 || ts.is_null() {
            let reason = if status.err_msg.is_null() {
                String::new()
            } else {
                // SAFETY: err_msg is a static C string of CPython's.
                unsafe { std::ffi::CStr::from_ptr(status.err_msg) }
                    .to_string_lossy()
                    .into_owned()
            };
            return Err(reason);
        }
        Ok(ts)
    }
    #[cfg(not(Py_3_12))]
    {
        let _ = own_gil;
        // SAFETY: attached to main (the caller's contract).
        let ts = unsafe { ffi::Py_NewInterpreter() };
        if ts.is_null() {
            Err(String::new())
        } else {
            Ok(ts)
        }
    }
}

fn create(py: Python<'_>, name: &str) -> Result<Interpreter, InterpreterError> {
    if name.is_empty() {
        let shim = shim::install(py, name, false).map_err(|e| setup_error(py, name, e))?;
        return Ok(Interpreter {
            name: String::new(),
            entry: main_entry()?,
            own_gil: false,
            shim,
            script_lock: Mutex::new(()),
            broadcast_seen: AtomicU64::new(super::shared::current_sequence()),
        });
    }
    let own_gil = wants_own_gil(name);
    // SAFETY: the thread is attached to main (get_or_create runs in the main interpreter).
    // The new interpreter's thread state is current from here until SaveThread below, which
    // releases its GIL (its own, or the shared one), and RestoreThread puts the caller's
    // main thread state back: on every path, as nothing in between returns early.
    unsafe {
        let saved = ffi::PyThreadState_Get();
        let ts = match new_interpreter(own_gil) {
            Ok(ts) => ts,
            Err(reason) => {
                if ffi::compat::PyThreadState_GetUnchecked() != saved {
                    if !ffi::compat::PyThreadState_GetUnchecked().is_null() {
                        ffi::PyEval_SaveThread();
                    }
                    ffi::PyEval_RestoreThread(saved);
                }
                let reason = if reason.is_empty() {
                    reason
                } else {
                    format!(": {reason}")
                };
                return Err(InterpreterError::Create {
                    name: name.to_owned(),
                    reason,
                });
            }
        };
        // The new interpreter is current: `py` stands for it until SaveThread.
        let made = shim::install(py, name, own_gil)
            .and_then(|shim| Ok((shim, Entry::of_current(py)?)))
            .map_err(|e| setup_error(py, name, e));
        ffi::PyEval_SaveThread();
        ffi::PyEval_RestoreThread(saved);
        let (shim, entry) = made?;
        // Interpreters live as long as the process, and so does the way into them.
        let entry: &'static Entry = Box::leak(Box::new(entry));
        entry.adopt(ts);
        let gil = if own_gil { " with own GIL" } else { "" };
        tracing::info!("WSGI1010: created Python interpreter '{name}'{gil}");
        Ok(Interpreter {
            name: name.to_owned(),
            entry,
            own_gil,
            shim,
            script_lock: Mutex::new(()),
            broadcast_seen: AtomicU64::new(super::shared::current_sequence()),
        })
    }
}

fn get_or_create(py: Python<'_>, name: &str) -> Result<Arc<Interpreter>, InterpreterError> {
    let mut registry = REGISTRY
        .lock_py_attached(py)
        .unwrap_or_else(|p| p.into_inner());
    let map = registry.get_or_insert_with(HashMap::new);
    if let Some(found) = map.get(name) {
        return Ok(found.clone());
    }
    let created = Arc::new(create(py, name)?);
    map.insert(name.to_owned(), created.clone());
    Ok(created)
}

/// The interpreter of application group `name`, created (in the main interpreter) on
/// first use in the process.
fn interpreter(name: &str) -> Result<Arc<Interpreter>, InterpreterError> {
    if let Some(found) = CACHE.with(|c| c.borrow().get(name).cloned()) {
        return Ok(found);
    }
    let main = main_entry()?;
    let found =
        main.enter(|py| get_or_create(py, name))
            .ok_or_else(|| InterpreterError::Enter {
                name: String::new(),
            })??;
    CACHE.with(|c| c.borrow_mut().insert(name.to_owned(), found.clone()));
    Ok(found)
}

/// Runs `f` attached to the interpreter of application group `name` ("" = main).
pub fn with_interpreter<R>(
    name: &str,
    f: impl FnOnce(Python<'_>, &Interpreter) -> R,
) -> Result<R, InterpreterError> {
    if !super::is_initialized() {
        return Err(InterpreterError::NotInitialized);
    }
    let interp = interpreter(name)?;
    let asked = std::time::Instant::now();
    let run = |py: Python<'_>| {
        let waited = asked.elapsed();
        crate::shared::metrics::record_gil_wait(waited);
        super::request_stats::record_gil_wait(waited.as_micros() as u64);
        f(py, &interp)
    };
    interp
        .entry
        .enter(run)
        .ok_or_else(|| InterpreterError::Enter {
            name: name.to_owned(),
        })
}

/// The application groups that have an interpreter in this process, sub-interpreters
/// first and the main interpreter ("") last. Not to be called attached to Python.
pub(crate) fn interpreter_names() -> Vec<String> {
    let mut names: Vec<String> = match REGISTRY.lock() {
        Ok(registry) => registry
            .as_ref()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default(),
        Err(_) => return Vec::new(),
    };
    names.sort_by_key(|n| n.is_empty());
    names
}

/// The application groups of this process whose interpreter has its own GIL. Not to be
/// called attached to Python.
pub fn own_gil_interpreters() -> Vec<String> {
    let registry = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
    let mut names: Vec<String> = registry
        .as_ref()
        .map(|m| {
            m.values()
                .filter(|i| i.own_gil)
                .map(|i| i.name.clone())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Runs the `atexit` callbacks of every interpreter of this process, sub-interpreters
/// first and the main interpreter last, logging (not raising) their failures. The
/// interpreters are not finalised: finalisation is where embedded Python hangs at exit.
pub fn run_exit_handlers() {
    if !super::is_initialized() {
        return;
    }
    let names = interpreter_names();
    for name in names {
        let ran = with_interpreter(&name, |py, _| {
            py.import("atexit")
                .and_then(|m| m.call_method0("_run_exitfuncs"))
                .map(drop)
                .map_err(|e| super::format_exception(py, &e))
        });
        if let Ok(Err(traceback)) = ran {
            tracing::error!(
                "WSGI0131: atexit callback failed in interpreter '{name}':\n{traceback}"
            );
        }
    }
}
