//! The `apache.request_rec` capsule of WSGIPassApacheRequest.

use pyo3::prelude::*;

/// A nameless capsule holding the request_rec's address, as mod_wsgi gives it. The
/// address is valid only while the request runs: C code must not keep it.
pub fn request_capsule<'py>(
    py: Python<'py>,
    request_rec: std::ptr::NonNull<std::ffi::c_void>,
) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: the GIL is held (`py`); PyCapsule_New only stores the (non-null) pointer,
    // with no name and no destructor, and returns a new reference or NULL with an
    // exception set, which from_owned_ptr_or_err turns into the error.
    unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            pyo3::ffi::PyCapsule_New(request_rec.as_ptr(), std::ptr::null(), None),
        )
    }
}
