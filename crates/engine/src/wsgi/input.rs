//! wsgi.input: a buffered reader over the transport's body stream, exposed to Python as
//! one native function `_op(kind, size)` behind the pure-Python `mod_wsgi.Input` class.

use super::BodyReader;
use crate::python::{Io, detach_timed, record_input_reads};
use pyo3::exceptions::{PyOSError, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyCFunction, PyDict, PyTuple};
use std::sync::{Arc, Mutex};

const READ_CHUNK: usize = 64 * 1024;
const LINE_CHUNK: usize = 8 * 1024;
/// Largest `read(size)` answered by filling one preallocated bytes object.
const MAX_PREALLOCATE: usize = 1024 * 1024;

pub(crate) struct InputState {
    reader: Option<Box<dyn BodyReader>>,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
    /// Body bytes read from the transport so far.
    pub(crate) received: u64,
}

pub(crate) type SharedInput = Arc<Mutex<InputState>>;

impl InputState {
    pub(crate) fn new(reader: Box<dyn BodyReader>) -> SharedInput {
        Arc::new(Mutex::new(InputState {
            reader: Some(reader),
            buf: Vec::new(),
            pos: 0,
            eof: false,
            received: 0,
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
        let n = detach_timed(py, Io::Input, || reader.read(dest))
            .map_err(|e| PyOSError::new_err(format!("request body read failed: {e}")))?;
        self.received += n as u64;
        record_input_reads(1, n as u64);
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
            // Grown as the body arrives: a client's Content-Length is not an allocation.
            out.resize(size.min(have + MAX_PREALLOCATE), 0);
            let Some(reader) = self.reader.as_mut() else {
                out.truncate(have);
                self.eof = true;
                break;
            };
            let dest = &mut out[have..];
            let n = detach_timed(py, Io::Input, || reader.read(dest))
                .map_err(|e| PyOSError::new_err(format!("request body read failed: {e}")))?;
            out.truncate(have + n);
            self.received += n as u64;
            record_input_reads(1, n as u64);
            if n == 0 {
                self.eof = true;
            }
        }
        Ok(out)
    }

    /// `read(size)` straight into the bytes object returned to Python: no intermediate
    /// buffer and no second copy (the hot path of an upload).
    fn read_into_bytes<'py>(
        &mut self,
        py: Python<'py>,
        size: usize,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let buffered = self.available().len().min(size);
        let Some(reader) = self
            .reader
            .as_mut()
            .filter(|_| buffered < size && !self.eof)
        else {
            return Ok(PyBytes::new(py, &self.take(buffered)));
        };
        let head = &self.buf[self.pos..self.pos + buffered];
        let mut filled = 0;
        let mut failure = None;
        let mut eof = false;
        let mut reads = 0;
        let bytes = crate::python::bytes_filled_by(py, size, |dest| {
            dest[..buffered].write_copy_of_slice(head);
            filled = buffered;
            // One GIL release for the whole read, however many pieces the transport
            // returns (Apache hands over a socket read's worth, ~8 KB, at a time).
            detach_timed(py, Io::Input, || {
                while filled < size {
                    reads += 1;
                    match reader.read_uninit(&mut dest[filled..]) {
                        Ok(0) => {
                            eof = true;
                            break;
                        }
                        Ok(n) => filled += n,
                        Err(e) => {
                            failure = Some(e);
                            break;
                        }
                    }
                }
            });
            filled
        })?;
        self.pos += buffered;
        self.received += (filled - buffered) as u64;
        record_input_reads(reads, (filled - buffered) as u64);
        self.eof |= eof;
        if let Some(e) = failure {
            return Err(PyOSError::new_err(format!("request body read failed: {e}")));
        }
        Ok(bytes)
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
            let data = match kind {
                0 if (0..=MAX_PREALLOCATE as i64).contains(&size) => {
                    return Ok(state.read_into_bytes(py, size as usize)?.unbind());
                }
                0 => state.read(py, size)?,
                _ => state.readline(py, size)?,
            };
            Ok(PyBytes::new(py, &data).unbind())
        },
    )
}
