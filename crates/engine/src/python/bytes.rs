//! Filling a new Python bytes object in place, without zeroing its buffer first.

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::mem::MaybeUninit;

/// A bytes object whose contents `fill` writes into the new object's uninitialised
/// buffer of `size` bytes, returning how many it wrote; fewer than `size` gives a copy
/// of that many. (`PyBytes::new_with` zeroes the buffer first, a memset per upload
/// read.)
pub fn bytes_filled_by<'py>(
    py: Python<'py>,
    size: usize,
    fill: impl FnOnce(&mut [MaybeUninit<u8>]) -> usize,
) -> PyResult<Bound<'py, PyBytes>> {
    let len = pyo3::ffi::Py_ssize_t::try_from(size)
        .map_err(|_| pyo3::exceptions::PyOverflowError::new_err("read size too large"))?;
    // SAFETY: the GIL is held (`py`). PyBytes_FromStringAndSize with a NULL source returns
    // a new, not yet shared bytes object owning `size` writable (uninitialised) bytes,
    // which PyBytes_AsString points at; the Bound owns the reference. Only the first
    // `written` bytes are read back, and only after `fill` initialised them.
    unsafe {
        let object = pyo3::ffi::PyBytes_FromStringAndSize(std::ptr::null(), len);
        if object.is_null() {
            return Err(PyErr::fetch(py));
        }
        let bytes = Bound::from_owned_ptr(py, object).cast_into_unchecked::<PyBytes>();
        let data = pyo3::ffi::PyBytes_AsString(object).cast::<MaybeUninit<u8>>();
        let written = fill(std::slice::from_raw_parts_mut(data, size)).min(size);
        if written < size {
            let filled = std::slice::from_raw_parts(data.cast::<u8>(), written);
            return Ok(PyBytes::new(py, filled));
        }
        Ok(bytes)
    }
}
