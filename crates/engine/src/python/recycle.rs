//! `mod_wsgi.recycle()` (our extension): a daemon process's code asks for a replacement
//! the way the recycling policies do. The process serves on until the replacement has
//! run its preloads, then drains; if the new code fails to load, the old code keeps
//! serving. wsgi-express's --reload-on-changes calls it when a module's file changes.

use super::shim::add_native;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::sync::OnceLock;

type Recycle = Box<dyn Fn() + Send + Sync>;

static RECYCLE: OnceLock<Recycle> = OnceLock::new();

/// Set once by a daemon process before it serves; without it (embedded mode)
/// `mod_wsgi.recycle()` returns False.
pub fn set_recycle(recycle: impl Fn() + Send + Sync + 'static) {
    let _ = RECYCLE.set(Box::new(recycle));
}

pub(crate) fn install(ns: &Bound<'_, PyDict>) -> PyResult<()> {
    add_native(ns, c"recycle", |_| {
        Ok(RECYCLE.get().map(|recycle| recycle()).is_some())
    })
}
