//! Interpreters by application group name: the main interpreter for "" (`%{GLOBAL}`),
//! a sub-interpreter created on first use for any other name, and one thread state per
//! (OS thread, interpreter), created once and kept so `threading.local` persists.

use super::shim::{self, ShimObjects};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::MutexExt;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

/// One Python interpreter of this process and its `mod_wsgi` objects.
pub struct Interpreter {
    pub name: String,
    state: InterpreterState,
    pub shim: ShimObjects,
    /// Serialises loading of scripts into this interpreter.
    pub(crate) script_lock: Mutex<()>,
    /// The broadcast bus sequence this interpreter's subscribers last caught up with.
    pub(crate) broadcast_seen: AtomicU64,
}

struct InterpreterState(*mut ffi::PyInterpreterState);

// SAFETY: the PyInterpreterState lives until process exit (interpreters are never
// destroyed) and is only dereferenced by CPython while the GIL is held.
unsafe impl Send for InterpreterState {}
// SAFETY: as above; the pointer itself is never mutated after creation.
unsafe impl Sync for InterpreterState {}

impl Interpreter {
    pub fn is_main(&self) -> bool {
        self.name.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InterpreterError {
    #[error("Python is not initialised in this process")]
    NotInitialized,
    #[error("cannot create Python interpreter '{name}'")]
    Create { name: String },
    #[error("cannot set up Python interpreter '{name}': {traceback}")]
    Setup { name: String, traceback: String },
}

static REGISTRY: Mutex<Option<HashMap<String, Arc<Interpreter>>>> = Mutex::new(None);

thread_local! {
    static PINNED: Cell<bool> = const { Cell::new(false) };
    static THREAD_STATES: RefCell<HashMap<usize, usize>> = RefCell::new(HashMap::new());
    static CACHE: RefCell<HashMap<String, Arc<Interpreter>>> = RefCell::new(HashMap::new());
}

/// Gives this OS thread a main-interpreter thread state that outlives each request.
fn pin_thread() {
    PINNED.with(|pinned| {
        if !pinned.get() {
            // SAFETY: Python is initialised (checked by the caller) and this thread holds
            // no GIL; Ensure creates this thread's state and takes the GIL, SaveThread
            // releases it while leaving the state (with a counter of one) in place.
            unsafe {
                let _ = ffi::PyGILState_Ensure();
                ffi::PyEval_SaveThread();
            }
            pinned.set(true);
        }
    });
}

fn thread_state_for(interp: &Interpreter) -> *mut ffi::PyThreadState {
    let key = interp.state.0 as usize;
    THREAD_STATES.with(|states| {
        let mut states = states.borrow_mut();
        let ts = states.entry(key).or_insert_with(|| {
            // SAFETY: the interpreter state is alive for the process lifetime and the
            // caller holds the GIL.
            unsafe { ffi::PyThreadState_New(interp.state.0) as usize }
        });
        *ts as *mut ffi::PyThreadState
    })
}

fn setup_error(py: Python<'_>, name: &str, err: PyErr) -> InterpreterError {
    InterpreterError::Setup {
        name: name.to_owned(),
        traceback: super::format_exception(py, &err),
    }
}

fn create(py: Python<'_>, name: &str) -> Result<Interpreter, InterpreterError> {
    if name.is_empty() {
        // SAFETY: attached to the main interpreter, so the current thread state is main's.
        let state = unsafe { ffi::PyThreadState_GetInterpreter(ffi::PyThreadState_Get()) };
        let shim = shim::install(py, name).map_err(|e| setup_error(py, name, e))?;
        return Ok(Interpreter {
            name: String::new(),
            state: InterpreterState(state),
            shim,
            script_lock: Mutex::new(()),
            broadcast_seen: AtomicU64::new(super::shared::current_sequence()),
        });
    }
    // SAFETY: the GIL is held (attached); Py_NewInterpreter makes a new thread state
    // current, which is swapped back to `saved` on every path before returning. Objects of
    // the new interpreter are only touched while its state is current.
    unsafe {
        let saved = ffi::PyThreadState_Get();
        let ts = ffi::Py_NewInterpreter();
        if ts.is_null() {
            ffi::PyThreadState_Swap(saved);
            return Err(InterpreterError::Create {
                name: name.to_owned(),
            });
        }
        let state = ffi::PyThreadState_GetInterpreter(ts);
        let shim = shim::install(py, name).map_err(|e| setup_error(py, name, e));
        ffi::PyThreadState_Swap(saved);
        let shim = shim?;
        THREAD_STATES.with(|s| s.borrow_mut().insert(state as usize, ts as usize));
        tracing::info!("WSGI1010: created Python interpreter '{name}'");
        Ok(Interpreter {
            name: name.to_owned(),
            state: InterpreterState(state),
            shim,
            script_lock: Mutex::new(()),
            broadcast_seen: AtomicU64::new(super::shared::current_sequence()),
        })
    }
}

fn get_or_create(py: Python<'_>, name: &str) -> Result<Arc<Interpreter>, InterpreterError> {
    if let Some(found) = CACHE.with(|c| c.borrow().get(name).cloned()) {
        return Ok(found);
    }
    let mut registry = REGISTRY
        .lock_py_attached(py)
        .unwrap_or_else(|p| p.into_inner());
    let map = registry.get_or_insert_with(HashMap::new);
    let interp = match map.get(name) {
        Some(found) => found.clone(),
        None => {
            let created = Arc::new(create(py, name)?);
            map.insert(name.to_owned(), created.clone());
            created
        }
    };
    drop(registry);
    CACHE.with(|c| c.borrow_mut().insert(name.to_owned(), interp.clone()));
    Ok(interp)
}

/// Runs `f` attached to the interpreter of application group `name` ("" = main).
pub fn with_interpreter<R>(
    name: &str,
    f: impl FnOnce(Python<'_>, &Interpreter) -> R,
) -> Result<R, InterpreterError> {
    if !super::is_initialized() {
        return Err(InterpreterError::NotInitialized);
    }
    pin_thread();
    let asked = std::time::Instant::now();
    Python::attach(|py| {
        let waited = asked.elapsed();
        crate::shared::metrics::record_gil_wait(waited);
        super::request_stats::record_gil_wait(waited.as_micros() as u64);
        let interp = get_or_create(py, name)?;
        if interp.is_main() {
            return Ok(f(py, &interp));
        }
        let ts = thread_state_for(&interp);
        // SAFETY: attached to main (GIL held); legacy sub-interpreters share the GIL, so
        // swapping to this thread's state of the sub-interpreter is legal. The previous
        // state is restored before the attach guard ends, even if `f` panics.
        let prev = unsafe { ffi::PyThreadState_Swap(ts) };
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| f(py, &interp)));
        // SAFETY: restores the main thread state saved above; the GIL is still held.
        unsafe { ffi::PyThreadState_Swap(prev) };
        match result {
            Ok(r) => Ok(r),
            Err(panic) => std::panic::resume_unwind(panic),
        }
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
