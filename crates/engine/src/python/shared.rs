//! The native half of `mod_wsgi.shared()` and of broadcasts: converts Python keys and
//! values to store operations, runs them with the GIL released, and maps failures to the
//! exceptions shim.py defines.

use super::interpreters::Interpreter;
use super::shim::add_native;
use crate::shared::{self, Failure, Op, Reply, StatValue};
use mod_wsgi_store::{KeyKind, Value};
use pyo3::exceptions::{PyKeyError, PyOverflowError, PyPermissionError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};
use std::sync::atomic::Ordering;

fn shim_error(py: Python<'_>, class: &str, text: String) -> PyErr {
    match py
        .import("mod_wsgi")
        .and_then(|m| m.getattr(class))
        .and_then(|c| c.call1((text.clone(),)))
    {
        Ok(instance) => PyErr::from_value(instance),
        Err(e) => e,
    }
}

fn to_pyerr(py: Python<'_>, failure: Failure) -> PyErr {
    let text = failure.to_string();
    match failure {
        Failure::Unknown(..) => PyKeyError::new_err(text),
        Failure::Full(_) => shim_error(py, "SharedStoreFull", text),
        Failure::NotAnInteger(_) => PyTypeError::new_err(text),
        Failure::Overflow(_) => PyOverflowError::new_err(text),
        Failure::BadKey(_) => PyValueError::new_err(text),
        Failure::Unavailable(_) => shim_error(py, "SharedStoreUnavailable", text),
        Failure::Denied(_) => PyPermissionError::new_err(text),
    }
}

fn key(obj: &Bound<'_, PyAny>) -> PyResult<(Vec<u8>, KeyKind)> {
    if let Ok(s) = obj.cast::<PyString>() {
        Ok((s.to_str()?.as_bytes().to_vec(), KeyKind::Str))
    } else if let Ok(b) = obj.cast::<PyBytes>() {
        Ok((b.as_bytes().to_vec(), KeyKind::Bytes))
    } else {
        Err(PyTypeError::new_err(format!(
            "shared store keys are str or bytes, not {}",
            obj.get_type().name()?
        )))
    }
}

fn value(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        Ok(Value::Bytes(b.as_bytes().to_vec()))
    } else if let Ok(s) = obj.cast::<PyString>() {
        Ok(Value::Str(s.to_str()?.to_owned()))
    } else if obj.is_instance_of::<pyo3::types::PyInt>() {
        obj.extract::<i64>()
            .map(Value::Int)
            .map_err(|_| PyOverflowError::new_err("shared store integers are 64-bit signed"))
    } else {
        Err(PyTypeError::new_err(format!(
            "shared store values are bytes, str or int, not {}",
            obj.get_type().name()?
        )))
    }
}

fn to_python(py: Python<'_>, v: Value) -> Py<PyAny> {
    match v {
        Value::Bytes(b) => PyBytes::new(py, &b).into_any().unbind(),
        Value::Str(s) => PyString::new(py, &s).into_any().unbind(),
        Value::Int(i) => i
            .into_pyobject(py)
            .map_or_else(|_| py.None(), |i| i.into_any().unbind()),
    }
}

fn key_to_python(py: Python<'_>, key: Vec<u8>, kind: KeyKind) -> Py<PyAny> {
    match (kind, String::from_utf8(key)) {
        (KeyKind::Str, Ok(s)) => PyString::new(py, &s).into_any().unbind(),
        (_, Ok(s)) => PyBytes::new(py, s.as_bytes()).into_any().unbind(),
        (_, Err(e)) => PyBytes::new(py, e.as_bytes()).into_any().unbind(),
    }
}

/// Seconds (int or float, above 0) to milliseconds, rounded up.
fn ttl(obj: &Bound<'_, PyAny>) -> PyResult<Option<i64>> {
    if obj.is_none() {
        return Ok(None);
    }
    let seconds: f64 = obj.extract()?;
    if seconds.is_nan() || seconds <= 0.0 {
        return Err(PyValueError::new_err(
            "ttl must be a number of seconds above 0",
        ));
    }
    Ok(Some((seconds * 1000.0).ceil().min(i64::MAX as f64) as i64))
}

/// `_store(op, name, key, a=None, b=None, ttl=None)`: codes as in shim.py's SharedStore.
fn store_call(args: &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> {
    let py = args.py();
    let arg = |i: usize| -> PyResult<Bound<'_, PyAny>> {
        if i < args.len() {
            args.get_item(i)
        } else {
            Ok(py.None().into_bound(py))
        }
    };
    let code: u8 = arg(0)?.extract()?;
    let name: String = arg(1)?.extract()?;
    let (k, kind) = key(&arg(2)?)?;
    let op = match code {
        0 => Op::Get(k),
        1 => Op::Set {
            key: k,
            kind,
            value: value(&arg(3)?)?,
            ttl_ms: ttl(&arg(5)?)?,
        },
        2 => Op::Delete(k),
        3 => {
            let delta = arg(3)?.extract::<i64>().map_err(|_| {
                PyTypeError::new_err("incr/decr take an integer that fits in 64 bits")
            })?;
            Op::Incr {
                key: k,
                kind,
                delta,
            }
        }
        4 => {
            let expected = arg(3)?;
            let expected = if expected.is_none() {
                None
            } else {
                Some(value(&expected)?)
            };
            Op::CompareAndSet {
                key: k,
                kind,
                expected,
                new: value(&arg(4)?)?,
                ttl_ms: ttl(&arg(5)?)?,
            }
        }
        5 => Op::Keys(k),
        6 => Op::Clear,
        7 => Op::Stats,
        _ => return Err(PyValueError::new_err("unknown store operation")),
    };
    let reply = py
        .detach(|| shared::execute(&name, op))
        .map_err(|f| to_pyerr(py, f))?;
    Ok(match reply {
        Reply::Value(v) => {
            let found = v.is_some();
            let v = v.map_or_else(|| py.None(), |v| to_python(py, v));
            PyTuple::new(
                py,
                [found.into_pyobject(py)?.to_owned().into_any().unbind(), v],
            )?
            .into_any()
            .unbind()
        }
        Reply::Done => py.None(),
        Reply::Bool(b) => b.into_pyobject(py)?.to_owned().into_any().unbind(),
        Reply::Int(i) => i.into_pyobject(py)?.into_any().unbind(),
        Reply::Keys(keys) => {
            let items: Vec<Py<PyAny>> = keys
                .into_iter()
                .map(|(k, kind)| key_to_python(py, k, kind))
                .collect();
            PyList::new(py, items)?.into_any().unbind()
        }
        Reply::Stats(figures) => {
            let d = PyDict::new(py);
            for (name, figure) in figures {
                match figure {
                    StatValue::Int(n) => d.set_item(name, n)?,
                    StatValue::Text(t) => d.set_item(name, t)?,
                }
            }
            d.into_any().unbind()
        }
    })
}

fn topic(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    let (k, _) = key(obj)?;
    Ok(k)
}

/// Adds the native functions shim.py's SharedStore, shared(), broadcast() and subscribe()
/// call to the module namespace `ns`.
pub(crate) fn install(ns: &Bound<'_, PyDict>) -> PyResult<()> {
    add_native(ns, c"_store", store_call)?;
    add_native(ns, c"_store_names", |_| Ok(shared::store_names()))?;
    add_native(ns, c"_store_denied", |args| {
        let name: String = args.get_item(0)?.extract()?;
        Ok(shared::denied_reason(&name))
    })?;
    add_native(ns, c"_broadcast", |args| {
        let py = args.py();
        let t = topic(&args.get_item(0)?)?;
        let message = args.get_item(1)?;
        let message = if message.is_none() {
            None
        } else {
            Some(value(&message)?)
        };
        py.detach(|| shared::broadcast(&t, message))
            .map_err(|f| to_pyerr(py, f))
    })?;
    add_native(ns, c"_topic", |args| {
        let py = args.py();
        let t = topic(&args.get_item(0)?)?;
        let (generation, message) = py
            .detach(|| shared::topic_state(&t))
            .map_err(|f| to_pyerr(py, f))?;
        Ok((
            generation,
            message.map_or_else(|| py.None(), |m| to_python(py, m)),
        ))
    })?;
    add_native(ns, c"_metric_declare", |args| {
        let py = args.py();
        let (family, kind, help): (String, String, String) = args.extract()?;
        py.detach(|| shared::declare_metric(&family, &kind, &help))
            .map_err(|f| to_pyerr(py, f))
    })?;
    add_native(ns, c"_metric_update", |args| {
        let py = args.py();
        let (family, updates): (String, Vec<(String, f64, bool)>) = args.extract()?;
        py.detach(|| shared::update_metric(&family, &updates))
            .map_err(|f| to_pyerr(py, f))
    })
}

/// Runs the interpreter's broadcast subscribers if anything was broadcast since it last
/// looked: one atomic read per request otherwise.
pub fn deliver_broadcasts(py: Python<'_>, interp: &Interpreter) {
    let Some(sequence) = shared::bus_sequence() else {
        return;
    };
    if interp.broadcast_seen.swap(sequence, Ordering::AcqRel) == sequence {
        return;
    }
    let delivered = py
        .import("mod_wsgi")
        .and_then(|m| m.call_method0("_deliver"));
    if let Err(e) = delivered {
        tracing::error!(
            "WSGI1133: delivering broadcasts in interpreter '{}' failed: {}",
            interp.name,
            super::format_exception(py, &e)
        );
    }
}

/// The bus sequence a new interpreter starts from (it sees only later broadcasts).
pub fn current_sequence() -> u64 {
    shared::bus_sequence().unwrap_or(0)
}
