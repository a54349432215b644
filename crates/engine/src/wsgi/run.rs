//! Running one request: load the script, call the application, stream what it returns,
//! always call close(), and say how it ended.

use super::input::{self, InputState, SharedInput};
use super::response::{self, ResponseState, SharedResponse, WriteError};
use super::{BodyReader, ResponseSink, SinkError, environ};
use crate::python::{self, Interpreter};
use mod_wsgi_wire::Environ;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Arc;
use tracing::Level;

/// What happens when a loaded script has changed on disk.
#[derive(Clone)]
pub enum OnScriptChange {
    /// Reloaded in place when `reload` is set (embedded mode, as in mod_wsgi).
    Reload,
    /// Served with the code already loaded, and the change reported once per request
    /// that notices it: a daemon process asks for a successor, which loads the new code
    /// and takes over when ready (zero-gap reloading).
    Report(Arc<dyn Fn() + Send + Sync>),
}

/// Everything the WSGI core needs to know about one request.
pub struct WsgiRequest {
    /// CGI variables, values decoded as ISO-8859-1.
    pub environ: Environ,
    /// Interpreter name; "" is the main interpreter.
    pub application_group: String,
    pub script: PathBuf,
    /// Modification time of `script` in seconds, as the transport found it when it checked
    /// that the script exists (so the core does not stat it a second time).
    pub script_mtime: f64,
    pub callable: String,
    pub reload: bool,
    /// A HEAD request: a body shorter than Content-Length is not a truncation.
    pub header_only: bool,
    pub multithread: bool,
    pub multiprocess: bool,
    pub run_once: bool,
    pub on_script_change: OnScriptChange,
    /// Called once the script is loaded (its module exists, whether or not it has the
    /// callable): a daemon process's startup-timeout stops.
    pub on_script_loaded: Option<Arc<dyn Fn() + Send + Sync>>,
    /// WSGIPassApacheRequest in embedded mode: the request_rec's address, given to the
    /// application as the `apache.request_rec` capsule (only C code can use it).
    pub apache_request: Option<std::ptr::NonNull<std::ffi::c_void>>,
}

/// How a request ended, for the transport to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Complete,
    ClientGone,
    /// The application failed; with `headers_sent` the response on the wire is incomplete
    /// and the transport must make that visible (abort the connection).
    Failed {
        headers_sent: bool,
    },
}

fn log(response: &SharedResponse, level: Level, message: &str) {
    if let Ok(state) = response.try_lock()
        && let Some(sink) = state.sink()
    {
        return sink.log(level, message);
    }
    match level {
        Level::ERROR => tracing::error!("{message}"),
        Level::WARN => tracing::warn!("{message}"),
        _ => tracing::info!("{message}"),
    }
}

thread_local! {
    /// The response of the request this thread runs, for `mod_wsgi.LogHandler`.
    static CURRENT: std::cell::RefCell<Option<SharedResponse>> = const { std::cell::RefCell::new(None) };
}

/// Clears `CURRENT` when the request ends, however it ends.
struct Current;

impl Current {
    fn set(response: &SharedResponse) -> Current {
        CURRENT.with(|c| *c.borrow_mut() = Some(response.clone()));
        Current
    }
}

impl Drop for Current {
    fn drop(&mut self) {
        CURRENT.with(|c| c.borrow_mut().take());
    }
}

/// Logs `message` against the request this thread runs (`critical`: Apache's crit level
/// where the transport has it); false when the thread runs no request.
pub(crate) fn log_for_request(level: Level, critical: bool, message: &str) -> bool {
    CURRENT.with(|c| {
        let current = c.borrow();
        let Some(response) = current.as_ref() else {
            return false;
        };
        if let Ok(state) = response.try_lock()
            && let Some(sink) = state.sink()
        {
            if critical {
                sink.log_critical(message);
            } else {
                sink.log(level, message);
            }
            return true;
        }
        false
    })
}

fn headers_sent(response: &SharedResponse) -> bool {
    response.try_lock().map(|s| s.head_sent).unwrap_or(true)
}

/// Runs `req` to completion.
pub fn run(req: WsgiRequest, body: Box<dyn BodyReader>, sink: Box<dyn ResponseSink>) -> Outcome {
    let response = ResponseState::new(sink);
    let input = InputState::new(body);
    let outcome = python::with_interpreter(&req.application_group, |py, interp| {
        let _current = Current::set(&response);
        run_in_interpreter(py, interp, &req, &input, &response)
    })
    .unwrap_or_else(|e| {
        log(&response, Level::ERROR, &format!("WSGI1023: {e}"));
        Outcome::Failed {
            headers_sent: false,
        }
    });
    input.lock().unwrap_or_else(|p| p.into_inner()).close();
    response.lock().unwrap_or_else(|p| p.into_inner()).close();
    outcome
}

thread_local! {
    /// The request whose wsgi.errors lines this thread's stream carries.
    static ERRORS_TARGET: RefCell<Option<SharedResponse>> = const { RefCell::new(None) };
}

/// A line written to wsgi.errors on this thread: logged with the request running here,
/// or in the server's log once it has ended.
pub(crate) fn emit_error_line(line: &str) {
    match ERRORS_TARGET.with(|t| t.borrow().clone()) {
        Some(response) => log(&response, Level::ERROR, line),
        None => tracing::error!("{line}"),
    }
}

/// This thread's wsgi.errors, pointed at `response` until the guard is dropped.
fn errors_stream<'py>(
    py: Python<'py>,
    interp: &Interpreter,
    response: &SharedResponse,
) -> PyResult<(Bound<'py, PyAny>, ErrorsTarget)> {
    let stream = interp.shim.errors_stream.bind(py).call0()?;
    ERRORS_TARGET.with(|t| *t.borrow_mut() = Some(response.clone()));
    Ok((stream, ErrorsTarget))
}

struct ErrorsTarget;

impl Drop for ErrorsTarget {
    fn drop(&mut self) {
        ERRORS_TARGET.with(|t| t.borrow_mut().take());
    }
}

fn run_in_interpreter(
    py: Python<'_>,
    interp: &Interpreter,
    req: &WsgiRequest,
    input: &SharedInput,
    response: &SharedResponse,
) -> Outcome {
    let found = if req.reload {
        python::loaded_script(py, &req.script, req.script_mtime)
    } else {
        python::LoadedScript::Absent
    };
    let (reload, forced) = match &req.on_script_change {
        OnScriptChange::Reload => (req.reload, found == python::LoadedScript::ReloadRequested),
        OnScriptChange::Report(report) => {
            if matches!(
                found,
                python::LoadedScript::Stale | python::LoadedScript::ReloadRequested
            ) {
                report();
            }
            (false, false)
        }
    };
    python::deliver_broadcasts(py, interp);
    let loaded = python::load_callable(
        py,
        interp,
        &req.script,
        req.script_mtime,
        &req.callable,
        reload,
        forced,
    );
    if let Some(report) = &req.on_script_loaded
        && matches!(loaded, Ok(_) | Err(python::ScriptError::NoCallable { .. }))
    {
        report();
    }
    let app = match loaded {
        Ok(app) => app,
        Err(e) => {
            log(response, Level::ERROR, &format!("WSGI1021: {e}"));
            return Outcome::Failed {
                headers_sent: false,
            };
        }
    };
    let mut trace = python::RequestTrace::begin(py, interp, &req.environ);
    let fail = |trace: &python::RequestTrace<'_>, e: PyErr| {
        trace.exception(&e);
        if python::is_request_timeout(py, &e) {
            log(
                response,
                Level::WARN,
                "WSGI1028: Request interrupted by RequestTimeout; thread recovered.",
            );
            return Outcome::Failed {
                headers_sent: headers_sent(response),
            };
        }
        let tb = python::format_exception(py, &e);
        log(
            response,
            Level::ERROR,
            &format!(
                "WSGI1020: exception occurred processing WSGI script '{}'\n{tb}",
                req.script.display()
            ),
        );
        Outcome::Failed {
            headers_sent: headers_sent(response),
        }
    };
    let (errors, _errors_target) = match errors_stream(py, interp, response) {
        Ok(e) => e,
        Err(e) => return fail(&trace, e),
    };
    let prepared = (|| -> PyResult<_> {
        let op = input::native_op(py, input)?;
        let input_obj = interp.shim.input_class.bind(py).call1((op,))?;
        let env = environ::build(py, interp, req, &trace.facts, input_obj, errors.clone())?;
        let start = response::start_response(py, response)?;
        Ok((env, start))
    })();
    let called = prepared.and_then(|(env, start)| {
        // A request_started callback may hand back a wrapper to run instead of `app`.
        let (start, app) = trace.started(interp, &env, start.into_any(), app, &req.callable);
        app.call1((env, start))
    });
    let outcome = match called {
        Err(e) => fail(&trace, e),
        Ok(iterable) => {
            let streamed = stream(py, interp, req, &iterable, response);
            // A list or tuple (the usual `[body]`) has no close(); asking would build and
            // format an AttributeError on every request.
            let plain = iterable.is_exact_instance_of::<PyList>()
                || iterable.is_exact_instance_of::<PyTuple>();
            let closed = if !plain && iterable.hasattr("close").unwrap_or(false) {
                iterable.call_method0("close").map(drop)
            } else {
                Ok(())
            };
            match (streamed, closed) {
                (Err(e), _) => fail(&trace, e),
                // close() raising after the whole body went out (Django's
                // request_finished handlers run there) is logged; the response stays
                // complete, as in C mod_wsgi.
                (Ok(outcome), Err(e)) => {
                    fail(&trace, e);
                    outcome
                }
                (Ok(outcome), Ok(())) => outcome,
            }
        }
    };
    let _ = errors.call_method0("flush");
    let (sent_status, written) = response
        .try_lock()
        .map_or((0, 0), |s| (s.status, s.written));
    let status = match outcome {
        Outcome::Failed {
            headers_sent: false,
        } => 500,
        _ => sent_status,
    };
    let received = input.try_lock().map_or(0, |s| s.received);
    trace.finished(status, received, written);
    outcome
}

fn write_error(response: &SharedResponse, e: WriteError) -> PyResult<Outcome> {
    match e {
        WriteError::Sink(SinkError::ClientGone) => Ok(Outcome::ClientGone),
        WriteError::NoStartResponse => Err(pyo3::exceptions::PyRuntimeError::new_err(
            "the application returned a body without calling start_response()",
        )),
        other => {
            log(
                response,
                Level::ERROR,
                &format!("WSGI1024: failed to write response: {other}"),
            );
            Ok(Outcome::Failed {
                headers_sent: headers_sent(response),
            })
        }
    }
}

/// Sends what the application returned; `Err` is a Python exception to report.
fn stream(
    py: Python<'_>,
    interp: &Interpreter,
    req: &WsgiRequest,
    iterable: &Bound<'_, PyAny>,
    response: &SharedResponse,
) -> PyResult<Outcome> {
    if iterable
        .get_type()
        .is(interp.shim.file_wrapper_class.bind(py))
        && let Some(result) = send_file_wrapper(py, iterable, response)?
    {
        return match result {
            Ok(()) => finish(py, req, response),
            Err(e) => write_error(response, e),
        };
    }
    for item in iterable.try_iter()? {
        let item = item?;
        let bytes = item.cast::<PyBytes>().map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err(format!(
                "sequence of byte string values expected, value of type {} found",
                item.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?;
        let data = bytes.as_bytes();
        if data.is_empty() {
            continue;
        }
        let mut guard = response::lock(response)?;
        let state: &mut ResponseState = &mut guard;
        let sent = python::detach_timed(py, python::Io::Output(data.len() as u64), || {
            state.write(data)
        });
        if let Err(e) = sent {
            drop(guard);
            return write_error(response, e);
        }
        if state.remaining() == 0 {
            break;
        }
    }
    finish(py, req, response)
}

fn finish(py: Python<'_>, req: &WsgiRequest, response: &SharedResponse) -> PyResult<Outcome> {
    let mut guard = response::lock(response)?;
    let state: &mut ResponseState = &mut guard;
    if state.needs_flush()
        && let Err(e) = python::detach_timed(py, python::Io::OutputFlush, || {
            state.ensure_head().and_then(|()| state.flush())
        })
    {
        drop(guard);
        return write_error(response, e);
    }
    let state = guard;
    if let Some(declared) = state.content_length
        && state.written < declared
        && !req.header_only
    {
        let written = state.written;
        drop(state);
        log(
            response,
            Level::ERROR,
            &format!(
                "WSGI1025: truncated response from WSGI script '{}': Content-Length is {declared} but only {written} bytes were returned; closing the connection",
                req.script.display()
            ),
        );
        return Ok(Outcome::Failed { headers_sent: true });
    }
    Ok(Outcome::Complete)
}

/// Serves a `wsgi.file_wrapper` over a regular file through the transport's file path.
/// `Ok(None)` means the object is not a plain file and must be iterated instead.
fn send_file_wrapper(
    py: Python<'_>,
    wrapper: &Bound<'_, PyAny>,
    response: &SharedResponse,
) -> PyResult<Option<Result<(), WriteError>>> {
    let filelike = wrapper.getattr("filelike")?;
    let Ok(fd) = filelike
        .call_method0("fileno")
        .and_then(|f| f.extract::<i32>())
    else {
        return Ok(None);
    };
    let Ok(offset) = filelike
        .call_method0("tell")
        .and_then(|t| t.extract::<u64>())
    else {
        return Ok(None);
    };
    let os = py.import("os")?;
    let st = os.call_method1("fstat", (fd,))?;
    let mode: u32 = st.getattr("st_mode")?.extract()?;
    let is_regular: bool = py
        .import("stat")?
        .call_method1("S_ISREG", (mode,))?
        .extract()?;
    if !is_regular {
        return Ok(None);
    }
    let size: u64 = st.getattr("st_size")?.extract()?;
    let len = size.saturating_sub(offset);
    let mut guard = response::lock(response)?;
    if !guard.has_start_response() {
        return Err(pyo3::exceptions::PyRuntimeError::new_err(
            "the application returned a body without calling start_response()",
        ));
    }
    let state: &mut ResponseState = &mut guard;
    Ok(Some(python::detach_timed(
        py,
        python::Io::Output(len),
        || {
            if len == 0 {
                state.ensure_head()
            } else {
                state.send_file(fd, offset, len)
            }
        },
    )))
}
