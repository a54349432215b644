//! A dict created with room for a known number of items.

use pyo3::prelude::*;
use pyo3::types::PyDict;

unsafe extern "C" {
    /// CPython's own presizing constructor (exported, not in pyo3's bindings).
    fn _PyDict_NewPresized(minused: pyo3::ffi::Py_ssize_t) -> *mut pyo3::ffi::PyObject;
}

/// An empty dict that takes `items` entries without growing (an environ grows four
/// times on its way to fifty keys otherwise).
pub fn presized_dict(py: Python<'_>, items: usize) -> PyResult<Bound<'_, PyDict>> {
    let items = pyo3::ffi::Py_ssize_t::try_from(items).unwrap_or(0);
    // SAFETY: the GIL is held (`py`); the call returns a new reference (or NULL with an
    // exception set), which the Bound then owns.
    unsafe {
        let dict = _PyDict_NewPresized(items);
        if dict.is_null() {
            return Err(PyErr::fetch(py));
        }
        Ok(Bound::from_owned_ptr(py, dict).cast_into_unchecked::<PyDict>())
    }
}
