//! The response side of one request: start_response and write() as native closures over
//! a shared [`ResponseState`], which validates, truncates at Content-Length and forwards
//! to the transport's [`ResponseSink`].

use super::{ResponseSink, SinkError};
use mod_wsgi_http::{HeaderError, ResponseHead, validate_header, validate_status};
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyCFunction, PyDict, PyList, PyString, PyTuple};
use std::sync::{Arc, Mutex, MutexGuard};

pub(crate) struct ResponseState {
    sink: Option<Box<dyn ResponseSink>>,
    pending: Option<(ResponseHead, Headers)>,
    pub(crate) head_sent: bool,
    /// The status code sent (0 until the head is).
    pub(crate) status: u16,
    pub(crate) content_length: Option<u64>,
    pub(crate) written: u64,
}

pub(crate) type SharedResponse = Arc<Mutex<ResponseState>>;

/// Why a block of body could not be written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WriteError {
    #[error("start_response() was not called before the response body was returned")]
    NoStartResponse,
    #[error("the request has already finished")]
    Finished,
    #[error(transparent)]
    Sink(#[from] SinkError),
}

impl ResponseState {
    pub(crate) fn new(sink: Box<dyn ResponseSink>) -> SharedResponse {
        Arc::new(Mutex::new(ResponseState {
            sink: Some(sink),
            pending: None,
            head_sent: false,
            status: 0,
            content_length: None,
            written: 0,
        }))
    }

    pub(crate) fn sink(&self) -> Option<&dyn ResponseSink> {
        self.sink.as_deref()
    }

    /// Detaches the transport once the request is over.
    pub(crate) fn close(&mut self) {
        self.sink = None;
    }

    /// Logs an error line attached to this request (to the process log once detached).
    fn log_error(&self, message: &str) {
        match self.sink() {
            Some(sink) => sink.log(tracing::Level::ERROR, message),
            None => tracing::error!("{message}"),
        }
    }

    pub(crate) fn has_start_response(&self) -> bool {
        self.pending.is_some() || self.head_sent
    }

    pub(crate) fn ensure_head(&mut self) -> Result<(), WriteError> {
        if self.head_sent {
            return Ok(());
        }
        let (head, headers) = self.pending.take().ok_or(WriteError::NoStartResponse)?;
        let sink = self.sink.as_mut().ok_or(WriteError::Finished)?;
        self.head_sent = true;
        self.status = head.code;
        sink.send_head(&head, &headers)?;
        Ok(())
    }

    /// Bytes the app may still send before reaching its declared Content-Length.
    pub(crate) fn remaining(&self) -> u64 {
        self.content_length
            .map_or(u64::MAX, |cl| cl.saturating_sub(self.written))
    }

    /// Writes `data` (cut at Content-Length); call with the GIL released.
    pub(crate) fn write(&mut self, data: &[u8]) -> Result<(), WriteError> {
        self.ensure_head()?;
        let allowed = data
            .len()
            .min(usize::try_from(self.remaining()).unwrap_or(usize::MAX));
        if allowed == 0 {
            return Ok(());
        }
        let sink = self.sink.as_mut().ok_or(WriteError::Finished)?;
        sink.write(&data[..allowed])?;
        self.written += allowed as u64;
        Ok(())
    }

    /// Whether `flush` has I/O to do (the head not sent yet, or the sink holds bytes).
    pub(crate) fn needs_flush(&self) -> bool {
        !self.head_sent || self.sink.as_ref().is_some_and(|s| s.needs_flush())
    }

    /// Sends whatever the transport still holds; call with the GIL released.
    pub(crate) fn flush(&mut self) -> Result<(), WriteError> {
        let sink = self.sink.as_mut().ok_or(WriteError::Finished)?;
        sink.flush()?;
        Ok(())
    }

    /// Sends `len` bytes of a file; when the app declared no length and nothing was sent
    /// yet, the file's length becomes the Content-Length.
    pub(crate) fn send_file(&mut self, fd: i32, offset: u64, len: u64) -> Result<(), WriteError> {
        if self.content_length.is_none()
            && let Some((_, headers)) = self.pending.as_mut()
        {
            headers.push(("Content-Length".to_owned(), len.to_string()));
            self.content_length = Some(len);
        }
        self.ensure_head()?;
        let len = len.min(self.remaining());
        let sink = self.sink.as_mut().ok_or(WriteError::Finished)?;
        sink.send_file(fd, offset, len)?;
        self.written += len;
        Ok(())
    }
}

pub(crate) fn lock(shared: &SharedResponse) -> PyResult<MutexGuard<'_, ResponseState>> {
    shared
        .try_lock()
        .map_err(|_| PyRuntimeError::new_err("the response is being written by another thread"))
}

type Headers = Vec<(String, String)>;

/// Checks and collects the application's headers; a hop-by-hop header is also logged
/// (WSGI1026) through `state`, so the refusal shows even if the application catches the
/// ValueError.
fn parse_headers(
    headers: &Bound<'_, PyAny>,
    state: &ResponseState,
) -> PyResult<(Headers, Option<u64>)> {
    let list = headers.cast::<PyList>().map_err(|_| {
        PyTypeError::new_err(format!(
            "start_response() argument 2 must be list, not {}",
            type_name(headers)
        ))
    })?;
    let mut out = Vec::with_capacity(list.len());
    let mut content_length = None;
    for item in list.iter() {
        let entry = item.cast::<PyTuple>().map_err(|_| {
            PyTypeError::new_err(format!(
                "each header must be a 2-tuple, not {}",
                type_name(&item)
            ))
        })?;
        if entry.len() != 2 {
            return Err(PyValueError::new_err(format!(
                "each header must be a 2-tuple, got length {}",
                entry.len()
            )));
        }
        let name = native_string(&entry.get_item(0)?)?;
        let value = native_string(&entry.get_item(1)?)?;
        if let Err(e) = validate_header(&name, &value) {
            match e {
                HeaderError::HopByHop(_) => {
                    state.log_error(&format!("WSGI1026: start_response() {e}"))
                }
                // Python's own UnicodeEncodeError, as mod_wsgi raises it.
                HeaderError::NotLatin1(_) => {
                    for text in [&name, &value] {
                        PyString::new(item.py(), text).call_method1("encode", ("latin-1",))?;
                    }
                }
                _ => {}
            }
            return Err(PyValueError::new_err(e.to_string()));
        }
        if name.eq_ignore_ascii_case("content-length") {
            let n = value.trim().parse::<u64>().map_err(|_| {
                PyValueError::new_err(format!("invalid Content-Length header value {value:?}"))
            })?;
            content_length = Some(n);
        }
        out.push((name, value));
    }
    Ok((out, content_length))
}

fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default()
}

/// A header name, value or status: a str (PEP 3333's native string).
fn native_string(value: &Bound<'_, PyAny>) -> PyResult<String> {
    value
        .cast::<PyString>()
        .map_err(|_| PyTypeError::new_err(format!("must be str, not {}", type_name(value))))?
        .to_str()
        .map(str::to_owned)
}

fn write_callable<'py>(
    py: Python<'py>,
    shared: &SharedResponse,
) -> PyResult<Bound<'py, PyCFunction>> {
    let shared = shared.clone();
    PyCFunction::new_closure(
        py,
        Some(c"write"),
        None,
        move |args: &Bound<'_, PyTuple>, _kw: Option<&Bound<'_, PyDict>>| -> PyResult<()> {
            let py = args.py();
            let (data,): (Bound<'_, PyAny>,) = args.extract()?;
            let bytes = data
                .cast::<PyBytes>()
                .map_err(|_| PyTypeError::new_err("write() argument must be a byte string"))?;
            let mut guard = lock(&shared)?;
            let state: &mut ResponseState = &mut guard;
            let payload = bytes.as_bytes();
            let io = crate::python::Io::Output(payload.len() as u64);
            crate::python::detach_timed(py, io, || state.write(payload)).map_err(|e| match e {
                WriteError::Sink(SinkError::ClientGone) => {
                    PyOSError::new_err("client connection closed")
                }
                other => PyRuntimeError::new_err(other.to_string()),
            })
        },
    )
}

/// Builds the `start_response(status, headers, exc_info=None)` callable.
pub(crate) fn start_response<'py>(
    py: Python<'py>,
    shared: &SharedResponse,
) -> PyResult<Bound<'py, PyCFunction>> {
    let shared = shared.clone();
    PyCFunction::new_closure(
        py,
        Some(c"start_response"),
        None,
        move |args: &Bound<'_, PyTuple>,
              kwargs: Option<&Bound<'_, PyDict>>|
              -> PyResult<Py<PyAny>> {
            let py = args.py();
            if args.len() < 2 || args.len() > 3 {
                return Err(PyTypeError::new_err(
                    "start_response() takes 2 or 3 arguments: status, headers, exc_info=None",
                ));
            }
            let status_obj = args.get_item(0)?;
            let headers = args.get_item(1)?;
            let exc_info = match (args.len(), kwargs) {
                (3, _) => Some(args.get_item(2)?),
                (_, Some(kw)) => kw.get_item("exc_info")?,
                _ => None,
            }
            .filter(|e| !e.is_none());
            let malformed =
                |info: &Bound<'_, PyAny>| info.cast::<PyTuple>().map_or(true, |t| t.len() != 3);
            if exc_info.as_ref().is_some_and(malformed) {
                return Err(PyRuntimeError::new_err(
                    "start_response() argument 'exc_info' must be a 3-tuple or None",
                ));
            }
            let mut state = lock(&shared)?;
            match &exc_info {
                Some(info) if state.head_sent => {
                    let value = info.get_item(1)?;
                    return Err(PyErr::from_value(value));
                }
                // Before any output a second call replaces the first, as C mod_wsgi
                // (4.9 and 6) allows; once the head is out it is refused.
                None if state.head_sent => {
                    return Err(PyRuntimeError::new_err(
                        "start_response() called more than once without exc_info",
                    ));
                }
                _ => {}
            }
            let status = native_string(&status_obj)?;
            let head =
                validate_status(&status).map_err(|e| PyValueError::new_err(e.to_string()))?;
            let (headers, content_length) = parse_headers(&headers, &state)?;
            state.pending = Some((head, headers));
            state.content_length = content_length;
            drop(state);
            Ok(write_callable(py, &shared)?.into_any().unbind())
        },
    )
}
