//! Starting CPython in an Apache child (or a daemon) after fork and privilege drop.

use pyo3::ffi;
use std::ffi::CString;
use std::path::Path;

/// Process-wide settings from WSGIPython* directives.
#[derive(Debug, Clone, Default)]
pub struct PythonSettings {
    pub python_home: Option<String>,
    pub optimize: i32,
    pub hash_seed: Option<u32>,
    pub dont_write_bytecode: bool,
    pub python_path: Vec<String>,
    pub restrict_stdin: bool,
    pub restrict_stdout: bool,
    pub restrict_signal: bool,
    pub process_group: String,
    pub multithread: bool,
    pub multiprocess: bool,
    /// `mod_wsgi.maximum_processes` / `threads_per_process` as the app sees them.
    pub maximum_processes: u32,
    pub threads_per_process: u32,
    /// Put first on sys.path of every interpreter (a daemon's `home`).
    pub home_on_path: Option<String>,
    /// `-W` style warning filters (WSGIPythonWarnings), in order.
    pub warn_options: Vec<String>,
    /// `sys.setswitchinterval` (WSGISwitchInterval, `switch-interval=`).
    pub switch_interval: Option<std::time::Duration>,
    /// What the `apache` module of every interpreter says about the server.
    pub apache: ApacheFacts,
    /// `<WSGIInterpreterOptions>` blocks, resolved per interpreter when it is created.
    pub interpreter_options: Vec<mod_wsgi_config::InterpreterOptions>,
    /// `mod_wsgi.server_metrics()` answers (WSGIServerMetrics, `server-metrics=`).
    pub server_metrics: bool,
    /// Sub-interpreters get their own GIL (WSGIPerInterpreterGIL at top level; blocks of
    /// `interpreter_options` decide per interpreter). Needs Python 3.12.
    pub per_interpreter_gil: bool,
    /// WSGITelemetryService, WSGISlowRequests and WSGITelemetryOptions.
    pub telemetry: mod_wsgi_config::TelemetryConfig,
}

/// The server the interpreters run in, as mod_wsgi's `apache` module describes it.
#[derive(Debug, Clone, Default)]
pub struct ApacheFacts {
    pub version: (u32, u32, u32),
    pub description: String,
    pub mpm_name: String,
    pub build_date: String,
    pub maximum_processes: i64,
    pub threads_per_process: i64,
}

/// A limit the MPM is asked for (`ap_mpm_query`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MpmLimit {
    MaxThreads,
    /// The most child processes in use so far; -1 when the MPM does not say.
    MaxDaemonUsed,
    MaxDaemons,
}

impl ApacheFacts {
    /// `(maximum_processes, threads_per_process)` as mod_wsgi reports them: 1 each for
    /// an MPM that does not fork or is not threaded, else what it answers (`query`), and
    /// never less than 1.
    pub fn mpm_limits(threaded: bool, forked: bool, query: impl Fn(MpmLimit) -> i32) -> (i64, i64) {
        let threads = if threaded {
            query(MpmLimit::MaxThreads)
        } else {
            1
        };
        let processes = if forked {
            match query(MpmLimit::MaxDaemonUsed) {
                -1 => query(MpmLimit::MaxDaemons),
                n => n,
            }
        } else {
            1
        };
        (i64::from(processes.max(1)), i64::from(threads.max(1)))
    }
}

impl PythonSettings {
    /// What the WSGIPython*/WSGIRestrict* directives give, for embedded mode; daemon
    /// groups start from these and override their own.
    pub fn from_config(py: &mod_wsgi_config::PythonConfig) -> PythonSettings {
        PythonSettings {
            python_home: py.python_home.clone(),
            optimize: py.optimize.unwrap_or(0),
            hash_seed: match py.hash_seed {
                Some(mod_wsgi_config::HashSeed::Fixed(n)) => Some(n),
                _ => None,
            },
            dont_write_bytecode: py.dont_write_bytecode.unwrap_or(false),
            python_path: py.python_path.clone(),
            restrict_stdin: py.restrict_stdin.unwrap_or(false),
            restrict_stdout: py.restrict_stdout.unwrap_or(false),
            restrict_signal: py.restrict_signal.unwrap_or(true),
            warn_options: py.warnings.clone(),
            switch_interval: py.switch_interval,
            interpreter_options: py.interpreter_options.clone(),
            server_metrics: py.server_metrics.unwrap_or(false),
            per_interpreter_gil: py.per_interpreter_gil.unwrap_or(false),
            telemetry: py.telemetry.clone(),
            ..PythonSettings::default()
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("Python initialisation failed: {0}")]
    Init(String),
    #[error("path contains a NUL byte: {0}")]
    Nul(String),
}

static SETTINGS: std::sync::OnceLock<PythonSettings> = std::sync::OnceLock::new();

pub(crate) fn settings() -> &'static PythonSettings {
    SETTINGS
        .get()
        .expect("BUG: Python used before initialize()")
}

pub(crate) fn try_settings() -> Option<&'static PythonSettings> {
    SETTINGS.get()
}

/// WSGIPerInterpreterGIL On, at the top level or in some `<WSGIInterpreterOptions>`.
pub(crate) fn own_gil_anywhere(settings: &PythonSettings) -> bool {
    settings.per_interpreter_gil
        || settings
            .interpreter_options
            .iter()
            .any(|b| b.per_interpreter_gil == Some(true))
}

/// Apache's version (`apache.version` in the environ).
pub fn apache_version() -> (u32, u32, u32) {
    SETTINGS.get().map_or((0, 0, 0), |s| s.apache.version)
}

pub fn is_initialized() -> bool {
    // SAFETY: Py_IsInitialized may be called at any time, with or without the GIL.
    unsafe { ffi::Py_IsInitialized() != 0 }
}

/// The program name CPython derives its prefix from: `<home>/bin/python` for a virtual
/// environment, else the interpreter this module was built against.
fn program_name(home: Option<&str>) -> Option<String> {
    match home {
        Some(h) if Path::new(h).join("pyvenv.cfg").exists() => Some(format!("{h}/bin/python")),
        Some(_) => None,
        None => Some(env!("MOD_WSGI_RS_PYTHON_EXECUTABLE").to_owned()),
    }
}

/// Initialises CPython once in this process and leaves no thread attached.
///
/// Must be called in the process that serves requests (never the Apache parent), before
/// any other function of this module.
pub fn initialize(settings: PythonSettings) -> Result<(), RuntimeError> {
    if is_initialized() {
        return Ok(());
    }
    let settings = SETTINGS.get_or_init(|| settings);
    let cstr = |s: &str| CString::new(s).map_err(|_| RuntimeError::Nul(s.to_owned()));
    let program = program_name(settings.python_home.as_deref())
        .map(|p| cstr(&p))
        .transpose()?;
    let home = match (&settings.python_home, &program) {
        (Some(h), None) => Some(cstr(h)?),
        _ => None,
    };
    let warn_options = settings
        .warn_options
        .iter()
        .map(|w| cstr(w))
        .collect::<Result<Vec<_>, _>>()?;
    // SAFETY: PyConfig is a plain C struct initialised by PyConfig_InitPythonConfig before
    // any field is read; the CStrings outlive the calls that copy them into the config, and
    // the config is cleared before it goes out of scope.
    unsafe {
        let mut cfg: ffi::PyConfig = std::mem::zeroed();
        ffi::PyConfig_InitPythonConfig(&mut cfg);
        cfg.install_signal_handlers = 0;
        cfg.parse_argv = 0;
        cfg.optimization_level = settings.optimize;
        cfg.write_bytecode = i32::from(!settings.dont_write_bytecode);
        if let Some(seed) = settings.hash_seed {
            cfg.use_hash_seed = 1;
            cfg.hash_seed = std::os::raw::c_ulong::from(seed);
        }
        let mut status = ffi::PyStatus_Ok();
        if let Some(p) = &program {
            status = ffi::PyConfig_SetBytesString(&mut cfg, &raw mut cfg.program_name, p.as_ptr());
        }
        if ffi::PyStatus_Exception(status) == 0
            && let Some(h) = &home
        {
            status = ffi::PyConfig_SetBytesString(&mut cfg, &raw mut cfg.home, h.as_ptr());
        }
        for option in &warn_options {
            if ffi::PyStatus_Exception(status) != 0 {
                break;
            }
            let wide = ffi::Py_DecodeLocale(option.as_ptr(), std::ptr::null_mut());
            if wide.is_null() {
                return Err(RuntimeError::Init(format!(
                    "WSGIPythonWarnings '{}' cannot be decoded",
                    option.to_string_lossy()
                )));
            }
            status = ffi::PyWideStringList_Append(&raw mut cfg.warnoptions, wide);
            ffi::PyMem_RawFree(wide.cast());
        }
        if ffi::PyStatus_Exception(status) == 0 {
            status = ffi::Py_InitializeFromConfig(&cfg);
        }
        ffi::PyConfig_Clear(&mut cfg);
        if ffi::PyStatus_Exception(status) != 0 {
            let msg = if status.err_msg.is_null() {
                "unknown error".to_owned()
            } else {
                std::ffi::CStr::from_ptr(status.err_msg)
                    .to_string_lossy()
                    .into_owned()
            };
            return Err(RuntimeError::Init(msg));
        }
        if let Some(interval) = settings.switch_interval {
            // Microseconds are what CPython keeps of it.
            let code = format!(
                "import sys\nsys.setswitchinterval({}e-6)\n",
                interval.as_micros()
            );
            let code = CString::new(code).expect("BUG: no NUL in formatted numbers");
            if ffi::PyRun_SimpleString(code.as_ptr()) != 0 {
                ffi::PyErr_Clear();
            }
        }
        // Import threading on the main thread so that it, not the first request thread,
        // becomes threading's MainThread.
        let threading = ffi::PyImport_ImportModule(c"threading".as_ptr());
        if threading.is_null() {
            ffi::PyErr_Clear();
        } else {
            ffi::Py_DECREF(threading);
        }
        let py = pyo3::Python::assume_attached();
        // Formatted while attached: formatting a PyErr needs Python.
        let ready = prepare_main(py, settings).map_err(|e| RuntimeError::Init(e.to_string()));
        ffi::PyEval_SaveThread();
        ready?;
    }
    Ok(())
}

/// What the main interpreter must hold before any thread enters an interpreter: the way
/// into it, the objects pyo3 keeps process-wide (made here so they belong to the main
/// interpreter, whatever interpreter first needs them), and with own-GIL interpreters the
/// extension modules that crash when two of them import them first at once on 3.12
/// (CPython gh-119450).
fn prepare_main(py: pyo3::Python<'_>, settings: &PythonSettings) -> pyo3::PyResult<()> {
    use pyo3::PyTypeInfo;
    super::interpreters::set_main_entry(py)?;
    let _ = pyo3::panic::PanicException::type_object(py);
    if cfg!(Py_3_12) && own_gil_anywhere(settings) {
        for module in ["_datetime", "_decimal"] {
            let _ = py.import(module);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(threads: i32, used: i32, daemons: i32) -> impl Fn(MpmLimit) -> i32 {
        move |limit| match limit {
            MpmLimit::MaxThreads => threads,
            MpmLimit::MaxDaemonUsed => used,
            MpmLimit::MaxDaemons => daemons,
        }
    }

    #[test]
    fn prefork_has_processes_and_one_thread() {
        assert_eq!(
            ApacheFacts::mpm_limits(false, true, answers(25, 150, 256)),
            (150, 1)
        );
    }

    #[test]
    fn an_unknown_count_in_use_falls_back_to_the_maximum() {
        assert_eq!(
            ApacheFacts::mpm_limits(true, true, answers(25, -1, 16)),
            (16, 25)
        );
    }

    #[test]
    fn winnt_style_mpms_have_one_process_and_limits_are_at_least_one() {
        assert_eq!(
            ApacheFacts::mpm_limits(true, false, answers(64, 0, 0)),
            (1, 64)
        );
        assert_eq!(
            ApacheFacts::mpm_limits(true, true, answers(0, 0, 0)),
            (1, 1)
        );
        assert_eq!(
            ApacheFacts::mpm_limits(false, false, answers(-5, -5, -5)),
            (1, 1)
        );
    }

    #[test]
    fn only_the_limits_that_apply_are_asked() {
        let asked = std::cell::RefCell::new(Vec::new());
        let query = |limit| {
            asked.borrow_mut().push(limit);
            3
        };
        ApacheFacts::mpm_limits(false, true, query);
        assert_eq!(*asked.borrow(), [MpmLimit::MaxDaemonUsed]);
    }
}
