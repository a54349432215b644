//! wsgi.input: a buffered reader over the transport's body stream, exposed to Python as
//! one native function `_op(kind, size)` behind the pure-Python `mod_wsgi.Input` class.

use super::BodyReader;
use pyo3::exceptions::{PyOSError, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyCFunction, PyDict, PyTuple};
use std::sync::{Arc, Mutex};

const READ_CHUNK: usize = 64 * 1024;
const LINE_CHUNK: usize = 8 * 1024;

pub(crate) struct InputState {
    reader: Option<Box<dyn BodyReader>>,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
}

pub(crate) type SharedInput = Arc<Mutex<InputState>>;

impl InputState {
    pub(crate) fn new(reader: Box<dyn BodyReader>) -> SharedInput {
        Arc::new(Mutex::new(InputState {
            reader: Some(reader),
            buf: Vec::new(),
            pos: 0,
            eof: false,
        }))
    }

    /// Detaches the transport: later reads (from a leaked wsgi.input) see end of body.
    pub(crate) fn close(&mut self) {
        self.reader = None;
        self.eof = true;
    }

    fn fill(&mut self, py: Python<'_>, want: usize) -> PyResult<usize> {
        if self.pos > 0 && self.pos * 2 >= self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let start = self.buf.len();
        self.buf.resize(start + want, 0);
        let n = self.read_raw(py, start)?;
        self.buf.truncate(start + n);
        Ok(n)
    }

    /// Reads from the transport into `self.buf[from..]`, GIL released.
    fn read_raw(&mut self, py: Python<'_>, from: usize) -> PyResult<usize> {
        let Some(reader) = self.reader.as_mut() else {
            self.eof = true;
            return Ok(0);
        };
        let dest = &mut self.buf[from..];
        let n = py
            .detach(|| reader.read(dest))
            .map_err(|e| PyOSError::new_err(format!("request body read failed: {e}")))?;
        if n == 0 {
            self.eof = true;
        }
        Ok(n)
    }

    fn available(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        let out = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        out
    }

    fn read(&mut self, py: Python<'_>, size: i64) -> PyResult<Vec<u8>> {
        if size < 0 {
            let mut out = self.take(self.available().len());
            while !self.eof {
                if self.fill(py, READ_CHUNK)? > 0 {
                    out.extend_from_slice(self.available());
                    self.pos = self.buf.len();
                }
            }
            return Ok(out);
        }
        let size = size as usize;
        let mut out = self.take(size.min(self.available().len()));
        while out.len() < size && !self.eof {
            let have = out.len();
            out.resize(size, 0);
            let Some(reader) = self.reader.as_mut() else {
                out.truncate(have);
                self.eof = true;
                break;
            };
            let dest = &mut out[have..];
            let n = py
                .detach(|| reader.read(dest))
                .map_err(|e| PyOSError::new_err(format!("request body read failed: {e}")))?;
            out.truncate(have + n);
            if n == 0 {
                self.eof = true;
            }
        }
        Ok(out)
    }

    fn readline(&mut self, py: Python<'_>, size: i64) -> PyResult<Vec<u8>> {
        let limit = if size < 0 { usize::MAX } else { size as usize };
        let mut scanned = 0;
        loop {
            let avail = self.available();
            if let Some(i) = avail[scanned..].iter().position(|&b| b == b'\n') {
                return Ok(self.take((scanned + i + 1).min(limit)));
            }
            scanned = avail.len();
            if avail.len() >= limit || self.eof {
                return Ok(self.take(avail.len().min(limit)));
            }
            self.fill(py, LINE_CHUNK)?;
        }
    }
}

/// Builds the native `_op(kind, size)` function: kind 0 = read, 1 = readline.
pub(crate) fn native_op<'py>(
    py: Python<'py>,
    shared: &SharedInput,
) -> PyResult<Bound<'py, PyCFunction>> {
    let shared = shared.clone();
    PyCFunction::new_closure(
        py,
        Some(c"_op"),
        None,
        move |args: &Bound<'_, PyTuple>,
              _kw: Option<&Bound<'_, PyDict>>|
              -> PyResult<Py<PyBytes>> {
            let py = args.py();
            let (kind, size): (i32, i64) = args.extract()?;
            let mut state = shared.try_lock().map_err(|_| {
                PyRuntimeError::new_err("wsgi.input is being read by another thread")
            })?;
            let data = if kind == 0 {
                state.read(py, size)?
            } else {
                state.readline(py, size)?
            };
            Ok(PyBytes::new(py, &data).unbind())
        },
    )
}
