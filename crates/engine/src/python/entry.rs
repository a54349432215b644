//! Entering an interpreter from an OS thread.
//!
//! Each (thread, interpreter) pair has a thread state of its own, made on first use and
//! kept for the thread's life (so `threading.local` persists). Entering takes that
//! interpreter's GIL through it (`PyEval_RestoreThread`): the process-wide GIL for the
//! main interpreter and legacy sub-interpreters, the interpreter's own for those created
//! with one (PEP 684), so threads in different own-GIL interpreters run in parallel.
//!
//! The caller's code then runs inside a call of the interpreter's `_enter` function, a
//! native function made in that interpreter: pyo3 counts a thread inside a native call as
//! attached, so objects released there are released at once, in that interpreter (never
//! queued for whichever interpreter pyo3 attaches next).
//!
//! `PyGILState_Ensure` is never used to enter: from 3.12 it attaches to the interpreter the
//! thread last ran, which after an own-GIL interpreter is not the main one.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyDict, PyTuple};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;

/// How to enter one interpreter: its state and its `_enter` function.
pub(crate) struct Entry {
    state: *mut ffi::PyInterpreterState,
    enter: *mut ffi::PyObject,
}

// SAFETY: both pointers live until process exit (interpreters are never destroyed and
// `_enter` is owned by the Entry, never released); CPython only dereferences them with
// the interpreter's GIL held, which `run` takes first.
unsafe impl Send for Entry {}
// SAFETY: as above; neither pointer is mutated after creation.
unsafe impl Sync for Entry {}

type Task = *mut (dyn FnMut(Python<'_>) + 'static);

thread_local! {
    /// This thread's state for each interpreter, by interpreter state address.
    static THREAD_STATES: RefCell<HashMap<usize, usize>> = RefCell::new(HashMap::new());
    /// The code `_enter` runs: set for the duration of one call of it.
    static TASK: Cell<Option<Task>> = const { Cell::new(None) };
    /// See `attached_interpreter`.
    static ATTACHED: Cell<*mut ffi::PyInterpreterState> = const { Cell::new(std::ptr::null_mut()) };
}

/// The interpreter this thread entered through an Entry and is still inside, if any.
/// (CPython cannot say: before 3.12 its "current thread state" is the GIL holder's,
/// whichever thread that is.) Threads that Python started never call in here.
pub(crate) fn attached_interpreter() -> Option<*mut ffi::PyInterpreterState> {
    let current = ATTACHED.get();
    (!current.is_null()).then_some(current)
}

impl Entry {
    /// The entry of the interpreter the calling thread is attached to.
    ///
    /// # Safety
    /// The thread holds that interpreter's GIL and `py` is its token.
    pub(crate) unsafe fn of_current(py: Python<'_>) -> PyResult<Entry> {
        let enter = PyCFunction::new_closure(
            py,
            Some(c"_enter"),
            None,
            |args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>| -> PyResult<()> {
                if let Some(task) = TASK.take() {
                    // SAFETY: `call_inside` set the task for this call only; the closure
                    // it points to lives on that function's stack until the call returns.
                    unsafe { (*task)(args.py()) };
                }
                Ok(())
            },
        )?;
        // SAFETY: the caller holds the GIL of the current interpreter.
        let state = unsafe { ffi::PyThreadState_GetInterpreter(ffi::PyThreadState_Get()) };
        Ok(Entry {
            state,
            enter: enter.into_ptr(),
        })
    }

    /// Records `ts`, made for this interpreter on this thread (by its creation), as the
    /// thread's state for it.
    pub(crate) fn adopt(&self, ts: *mut ffi::PyThreadState) {
        THREAD_STATES.with(|s| s.borrow_mut().insert(self.state as usize, ts as usize));
    }

    fn thread_state(&self) -> *mut ffi::PyThreadState {
        THREAD_STATES.with(|states| {
            let mut states = states.borrow_mut();
            if let Some(&known) = states.get(&(self.state as usize)) {
                return known as *mut ffi::PyThreadState;
            }
            // The main interpreter's state comes first on every thread, so that it is the
            // one the GILState API knows before 3.12 (as when the thread began with
            // PyGILState_Ensure).
            // SAFETY: Python is initialised (callers check); the main interpreter lives
            // until exit.
            let main = unsafe { ffi::PyInterpreterState_Main() };
            states.entry(main as usize).or_insert_with(|| {
                // A main-interpreter state the GILState API already knows for this thread
                // (the one Py_Initialize made on the thread that started Python) is the
                // one to enter through: before 3.12, PyGILState_Ensure from C code in a
                // request would otherwise wait for the GIL this thread holds.
                // SAFETY: PyGILState_GetThisThreadState needs no GIL; a state it returns
                // is alive and belongs to this thread.
                let known = unsafe { ffi::PyGILState_GetThisThreadState() };
                // SAFETY: as above; PyThreadState_New needs no GIL, the interpreter lives.
                unsafe {
                    if !known.is_null() && ffi::PyThreadState_GetInterpreter(known) == main {
                        known as usize
                    } else {
                        ffi::PyThreadState_New(main) as usize
                    }
                }
            });
            *states.entry(self.state as usize).or_insert_with(|| {
                // SAFETY: PyThreadState_New needs no GIL; the interpreter is alive.
                unsafe { ffi::PyThreadState_New(self.state) as usize }
            }) as *mut ffi::PyThreadState
        })
    }

    /// Runs `f` in this interpreter, whatever interpreter (if any) the calling thread is
    /// attached to. Returns None if `_enter` could not be called (its error is logged).
    pub(crate) fn enter<R>(&self, f: impl FnOnce(Python<'_>) -> R) -> Option<R> {
        match attached_interpreter() {
            None => self.run(f),
            Some(current) => self.run_nested(current, f),
        }
    }

    /// `enter` from a thread attached to no interpreter.
    fn run<R>(&self, f: impl FnOnce(Python<'_>) -> R) -> Option<R> {
        let ts = self.thread_state();
        // SAFETY: the thread is attached to no interpreter (callers check) and `ts` is
        // this thread's state of this interpreter; SaveThread below releases the GIL
        // taken here on every path (`call_inside` catches the panics of `f`).
        unsafe { ffi::PyEval_RestoreThread(ts) };
        let outer = ATTACHED.replace(self.state);
        let out = self.call_inside(f);
        ATTACHED.set(outer);
        // SAFETY: attached through `ts` since RestoreThread above.
        unsafe { ffi::PyEval_SaveThread() };
        match out {
            Some(Ok(r)) => Some(r),
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => None,
        }
    }

    /// Runs `f` through `_enter`; the thread holds this interpreter's GIL.
    fn call_inside<R>(&self, f: impl FnOnce(Python<'_>) -> R) -> Option<std::thread::Result<R>> {
        let mut f = Some(f);
        let mut out = None;
        let mut task = |py: Python<'_>| {
            if let Some(f) = f.take() {
                out = Some(std::panic::catch_unwind(AssertUnwindSafe(|| f(py))));
            }
        };
        let task: *mut (dyn FnMut(Python<'_>) + '_) = &mut task;
        // SAFETY: only the lifetime is erased; the task is taken out of TASK by `_enter`
        // during the call below (or put back to the previous value right after it), so
        // it is never used after this function returns.
        let task: Task = unsafe { std::mem::transmute(task) };
        let previous = TASK.replace(Some(task));
        // SAFETY: `enter` is a live function object of the interpreter whose GIL the
        // thread holds.
        let result = unsafe { ffi::PyObject_CallNoArgs(self.enter) };
        TASK.set(previous);
        if result.is_null() {
            // Raw calls only: pyo3's error formatting would attach through the GILState
            // API, and a dropped PyErr would be released later in another interpreter.
            // SAFETY: the GIL of the current interpreter is held; PyErr_Print writes the
            // exception to sys.stderr (the error log) and clears it.
            unsafe { ffi::PyErr_Print() };
            tracing::error!(
                "WSGI1149: cannot enter a Python interpreter: its _enter call failed (the exception is logged above)"
            );
        } else {
            // SAFETY: a new reference returned by the call, GIL held.
            unsafe { ffi::Py_DECREF(result) };
        }
        out
    }

    /// Runs `f` in this interpreter from a thread attached to `current`: directly when it
    /// is this interpreter, else after leaving `current` (its GIL is released meanwhile).
    fn run_nested<R>(
        &self,
        current: *mut ffi::PyInterpreterState,
        f: impl FnOnce(Python<'_>) -> R,
    ) -> Option<R> {
        if current == self.state {
            // SAFETY: the thread is attached to this very interpreter.
            return Some(f(unsafe { Python::assume_attached() }));
        }
        // SAFETY: the thread is attached (checked by the caller); the state saved here is
        // restored before returning, also when `run` unwinds.
        let saved = unsafe { ffi::PyEval_SaveThread() };
        ATTACHED.set(std::ptr::null_mut());
        struct Restore(*mut ffi::PyThreadState, *mut ffi::PyInterpreterState);
        impl Drop for Restore {
            fn drop(&mut self) {
                // SAFETY: the thread is attached to nothing again (run released its GIL).
                unsafe { ffi::PyEval_RestoreThread(self.0) };
                ATTACHED.set(self.1);
            }
        }
        let _restore = Restore(saved, current);
        self.run(f)
    }
}
