//! String conversions CPython offers but pyo3 does not.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyString;

/// A Python str holding `bytes` decoded as ISO-8859-1, as PEP 3333 wants for the environ.
pub fn latin1_str<'py>(py: Python<'py>, bytes: &[u8]) -> PyResult<Bound<'py, PyString>> {
    // SAFETY: the pointer and length describe `bytes`, borrowed for the call; latin-1
    // decoding cannot fail except on allocation, which returns NULL and sets an error.
    unsafe {
        let obj = ffi::PyUnicode_DecodeLatin1(
            bytes.as_ptr().cast(),
            bytes.len() as ffi::Py_ssize_t,
            std::ptr::null(),
        );
        Ok(Bound::from_owned_ptr_or_err(py, obj)?.cast_into_unchecked())
    }
}
