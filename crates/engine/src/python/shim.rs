//! The per-interpreter `mod_wsgi` module: built from shim.py in every interpreter, so no
//! Python type object is shared between interpreters.

use super::runtime::settings;
use pyo3::IntoPyObjectExt;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyCFunction, PyDict, PyList, PyModule, PyTuple};
use std::ffi::CStr;
use std::sync::OnceLock;

const SHIM_SOURCE: &str = include_str!("shim.py");

/// shim.py compiled once per process, marshalled. Later interpreters load these code
/// objects rather than compile the source again: compiling leaves an interpreter about
/// 0.45 MiB bigger for good, loading about 0.05 MiB.
static SHIM_CODE: OnceLock<Vec<u8>> = OnceLock::new();

/// The shim's code object for this interpreter.
fn shim_code(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    let marshal = py.import("marshal")?;
    if let Some(code) = SHIM_CODE.get() {
        return marshal.call_method1("loads", (PyBytes::new(py, code),));
    }
    let code = super::script::compile_module(py, SHIM_SOURCE.as_bytes(), "mod_wsgi/shim.py")?;
    let marshalled: Vec<u8> = marshal.call_method1("dumps", (&code,))?.extract()?;
    // Two interpreters compiling at once both store the same bytes; the first is kept.
    let _ = SHIM_CODE.set(marshalled);
    Ok(code)
}

/// The version of the C mod_wsgi API this module reproduces, reported as
/// `mod_wsgi.version` so that applications checking it keep working.
pub const MOD_WSGI_API_VERSION: (u32, u32, u32) = (6, 1, 1);

/// Objects of one interpreter that every request of that interpreter uses. The module
/// itself stays reachable through `sys.modules['mod_wsgi']`.
pub struct ShimObjects {
    pub input_class: Py<PyAny>,
    pub file_wrapper_class: Py<PyAny>,
    pub log_stream_class: Py<PyAny>,
    /// `mod_wsgi._errors_stream`: this thread's wsgi.errors.
    pub errors_stream: Py<PyAny>,
    /// `mod_wsgi.event_callbacks`, checked (not called) on every request.
    pub event_callbacks: Py<PyList>,
    /// `mod_wsgi.active_requests`: request id -> that request's `request_data()`.
    pub active_requests: Py<PyDict>,
    /// `mod_wsgi._publish(name, event)`, calls the subscribers.
    pub publish_event: Py<PyAny>,
    /// `mod_wsgi._observe_start_response`, wraps start_response while there are subscribers.
    pub observe_start_response: Py<PyAny>,
    pub environ_keys: crate::wsgi::EnvironKeys,
}

/// Maps the level numbers used by shim.py to tracing levels.
pub fn log_level_from_python(level: i32) -> tracing::Level {
    match level {
        0 => tracing::Level::ERROR,
        1 => tracing::Level::WARN,
        2 => tracing::Level::INFO,
        _ => tracing::Level::DEBUG,
    }
}

fn emit(level: i32, text: &str) {
    match log_level_from_python(level) {
        tracing::Level::ERROR => tracing::error!("{text}"),
        tracing::Level::WARN => tracing::warn!("{text}"),
        tracing::Level::INFO => tracing::info!("{text}"),
        _ => tracing::debug!("{text}"),
    }
}

/// Apache's level for a Python logging level, as mod_wsgi 6's LogHandler maps them:
/// CRITICAL and above crit (`true`), ERROR error, WARNING warn, INFO info, anything
/// lower debug; levels between round down.
fn level_from_logging(levelno: i64) -> (tracing::Level, bool) {
    match levelno {
        50.. => (tracing::Level::ERROR, true),
        40..=49 => (tracing::Level::ERROR, false),
        30..=39 => (tracing::Level::WARN, false),
        20..=29 => (tracing::Level::INFO, false),
        _ => (tracing::Level::DEBUG, false),
    }
}

/// `mod_wsgi.LogHandler`'s output: against the request this thread runs, else the
/// server's log.
fn log_record(levelno: i64, text: &str) {
    let (level, critical) = level_from_logging(levelno);
    if crate::wsgi::log_for_request(level, critical, text) {
        return;
    }
    match level {
        tracing::Level::ERROR if critical => tracing::error!(apache_crit = true, "{text}"),
        tracing::Level::ERROR => tracing::error!("{text}"),
        tracing::Level::WARN => tracing::warn!("{text}"),
        tracing::Level::INFO => tracing::info!("{text}"),
        _ => tracing::debug!("{text}"),
    }
}

fn version_tuple<'py>(py: Python<'py>, v: (u32, u32, u32)) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(py, [v.0, v.1, v.2])
}

/// Adds the native function `name` (positional arguments only) to the module namespace
/// `ns`, where shim.py's Python code calls it.
pub(crate) fn add_native<F, R>(ns: &Bound<'_, PyDict>, name: &'static CStr, f: F) -> PyResult<()>
where
    F: Fn(&Bound<'_, PyTuple>) -> PyResult<R> + Send + Sync + 'static,
    R: for<'py> IntoPyObject<'py>,
{
    let py = ns.py();
    let function = PyCFunction::new_closure(
        py,
        Some(name),
        None,
        move |args: &Bound<'_, PyTuple>, _kw: Option<&Bound<'_, PyDict>>| -> PyResult<Py<PyAny>> {
            f(args)?.into_py_any(args.py())
        },
    )?;
    ns.set_item(name.to_str().unwrap_or("_native"), function)
}

/// mod_wsgi's `apache` module: the server's version, description, MPM, build date and
/// process/thread limits, in every interpreter.
fn install_apache_module(
    py: Python<'_>,
    sys: &Bound<'_, PyModule>,
    facts: &super::ApacheFacts,
) -> PyResult<()> {
    let apache = PyModule::new(py, "apache")?;
    let (a, b, c) = facts.version;
    apache.setattr("version", PyTuple::new(py, [a, b, c])?)?;
    apache.setattr("description", facts.description.as_str())?;
    apache.setattr("mpm_name", facts.mpm_name.as_str())?;
    apache.setattr("build_date", facts.build_date.as_str())?;
    apache.setattr("maximum_processes", facts.maximum_processes)?;
    apache.setattr("threads_per_process", facts.threads_per_process)?;
    sys.getattr("modules")?.set_item("apache", apache)
}

/// As mod_wsgi 6 does: a `mod_wsgi` Python package on sys.path (pip's, which carries
/// mod_wsgi-express) lends its `__path__` to the built-in module, so its subpackages
/// (`mod_wsgi.express.runtime`, which mod_wsgi-express's handler script imports) resolve.
fn lend_package_path(py: Python<'_>, module: &Bound<'_, PyModule>) -> PyResult<()> {
    let modules = py.import("sys")?.getattr("modules")?;
    modules.del_item("mod_wsgi")?;
    let package = py
        .import("importlib")?
        .call_method1("import_module", ("mod_wsgi",));
    modules.set_item("mod_wsgi", module)?;
    match package.and_then(|p| p.getattr("__path__")) {
        Ok(path) => module.setattr("__path__", path),
        // No such package (the usual case outside mod_wsgi-express): nothing to lend.
        Err(_) => Ok(()),
    }
}

/// A `<WSGIInterpreterOptions>` switch interval, as mod_wsgi 6 applies it: in the
/// interpreter itself, unless the block selects one application group whose interpreter
/// shares the process-wide GIL (setting it would change every interpreter's interval).
fn apply_switch_interval(
    py: Python<'_>,
    application_group: &str,
    own_gil: bool,
    interval: Option<(std::time::Duration, bool)>,
) -> PyResult<()> {
    let Some((interval, for_one_group)) = interval else {
        return Ok(());
    };
    if for_one_group && !own_gil && !application_group.is_empty() {
        tracing::warn!(
            "WSGI0199: WSGISwitchInterval {}s of <WSGIInterpreterOptions> for interpreter '{application_group}' skipped: it shares the process-wide GIL, so it would change the interval of every interpreter; give it its own GIL (WSGIPerInterpreterGIL On in the block) or set the interval for the process",
            interval.as_secs_f64()
        );
        return Ok(());
    }
    py.import("sys")?
        .call_method1("setswitchinterval", (interval.as_secs_f64(),))?;
    Ok(())
}

/// Builds `mod_wsgi` in the interpreter current on this thread and installs it, together
/// with the log streams for sys.stdout/sys.stderr and the optional restrictions.
pub(crate) fn install(
    py: Python<'_>,
    application_group: &str,
    own_gil: bool,
) -> PyResult<ShimObjects> {
    let s = settings();
    let module = PyModule::new(py, "mod_wsgi")?;
    let ns = module.dict();
    add_native(&ns, c"_log", |args| {
        let (level, text): (i32, String) = args.extract()?;
        emit(level, &text);
        Ok(())
    })?;
    add_native(&ns, c"_wsgi_errors_line", |args| {
        let (line,): (String,) = args.extract()?;
        crate::wsgi::emit_error_line(&line);
        Ok(())
    })?;
    add_native(&ns, c"_log_enabled", |args| {
        let (levelno,): (i64,) = args.extract()?;
        Ok(tracing::level_filters::LevelFilter::current() >= level_from_logging(levelno).0)
    })?;
    add_native(&ns, c"_log_record", |args| {
        let (levelno, text): (i64, String) = args.extract()?;
        log_record(levelno, &text);
        Ok(())
    })?;
    super::shared::install(&ns)?;
    super::metrics_api::install(&ns)?;
    super::lifecycle::install(&ns)?;
    super::recycle::install(&ns)?;
    let builtins = py.import("builtins")?;
    ns.set_item("__builtins__", &builtins)?;
    builtins.getattr("exec")?.call1((shim_code(py)?, &ns))?;
    let version: (u32, u32, u32) = (
        env!("CARGO_PKG_VERSION_MAJOR").parse().unwrap_or(0),
        env!("CARGO_PKG_VERSION_MINOR").parse().unwrap_or(0),
        env!("CARGO_PKG_VERSION_PATCH").parse().unwrap_or(0),
    );
    module.setattr("version", version_tuple(py, MOD_WSGI_API_VERSION)?)?;
    module.setattr("implementation", "mod_wsgi_rs")?;
    module.setattr("rs_version", version_tuple(py, version)?)?;
    module.setattr("process_group", s.process_group.as_str())?;
    module.setattr("RequestTimeout", ns.get_item("RequestTimeout")?)?;
    if s.process_group.is_empty() {
        // Embedded mode, as mod_wsgi 6: the MPM's limits (also the `apache` module's).
        module.setattr("maximum_processes", s.apache.maximum_processes)?;
        module.setattr("threads_per_process", s.apache.threads_per_process)?;
    } else {
        module.setattr("maximum_processes", s.maximum_processes)?;
        module.setattr("threads_per_process", s.threads_per_process)?;
    }
    module.setattr("application_group", application_group)?;
    module.setattr("multithread", s.multithread)?;
    module.setattr("multiprocess", s.multiprocess)?;

    let sys = py.import("sys")?;
    install_apache_module(py, &sys, &s.apache)?;
    sys.setattr("argv", vec!["mod_wsgi"])?;
    sys.getattr("modules")?.set_item("mod_wsgi", &module)?;
    let own = mod_wsgi_config::resolve_interpreter_options(
        &s.interpreter_options,
        &s.process_group,
        application_group,
    );
    let restrict_stdin = own.restrict_stdin.unwrap_or(s.restrict_stdin);
    let restrict_stdout = own.restrict_stdout.unwrap_or(s.restrict_stdout);
    module.call_method1("_install_streams", (restrict_stdin, restrict_stdout))?;
    if own.restrict_signal.unwrap_or(s.restrict_signal) {
        module.call_method0("_restrict_signal")?;
    }
    if let Some(home) = &s.home_on_path {
        sys.getattr("path")?
            .call_method1("insert", (0, home.as_str()))?;
    }
    if !s.python_path.is_empty() || !own.python_path_layers.is_empty() {
        let site = py.import("site")?;
        for dir in &s.python_path {
            site.call_method1("addsitedir", (dir.as_str(),))?;
        }
        // Each block's directories go in front of what came before them.
        for layer in &own.python_path_layers {
            module.call_method1("_add_path_layer", (layer.clone(),))?;
        }
    }
    // The process's interval (WSGISwitchInterval, switch-interval=) was set on the shared
    // GIL at start; an own GIL starts from Python's default, so it gets it here too.
    let process_interval = s
        .switch_interval
        .filter(|_| own_gil)
        .map(|interval| (interval, false));
    let interval = own.switch_interval.or(process_interval);
    apply_switch_interval(py, application_group, own_gil, interval)?;
    if s.telemetry.socket.is_some() {
        module.call_method0("_telemetry_gc_install")?;
    }
    lend_package_path(py, &module)?;
    Ok(ShimObjects {
        input_class: module.getattr("Input")?.unbind(),
        file_wrapper_class: module.getattr("FileWrapper")?.unbind(),
        log_stream_class: module.getattr("LogStream")?.unbind(),
        errors_stream: module.getattr("_errors_stream")?.unbind(),
        event_callbacks: module
            .getattr("event_callbacks")?
            .cast_into::<PyList>()?
            .unbind(),
        active_requests: module
            .getattr("active_requests")?
            .cast_into::<PyDict>()?
            .unbind(),
        publish_event: module.getattr("_publish")?.unbind(),
        observe_start_response: module.getattr("_observe_start_response")?.unbind(),
        environ_keys: crate::wsgi::EnvironKeys::new(py),
    })
}
