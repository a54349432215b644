//! The only code that calls into CPython: runtime start-up, the interpreter registry with
//! its per-thread thread states, the per-interpreter `mod_wsgi` module (with the shared
//! store and broadcast API), and script loading.
//!
//! Nothing here knows about Apache; log lines leave through `tracing`.

mod bytes;
mod capsule;
mod entry;
mod error;
mod events;
mod interpreters;
mod lifecycle;
mod metrics_api;
mod recycle;
mod request_stats;
mod runtime;
mod script;
mod shared;
mod shim;
pub mod telemetry;
mod threads;

pub use bytes::bytes_filled_by;
pub use capsule::request_capsule;
pub use error::format_exception;
pub use events::{RequestFacts, RequestTrace};
pub use interpreters::{
    Interpreter, gil_of, own_gil_interpreters, own_gils_configured, run_exit_handlers,
    with_interpreter,
};
pub use lifecycle::{publish_process_signal, set_shutdown_reason};
pub use recycle::set_recycle;
pub(crate) use request_stats::want_thread_cpu;
pub use request_stats::{Io, detach_timed, record_input_reads};
pub use runtime::{
    ApacheFacts, MpmLimit, PythonSettings, apache_version, initialize, is_initialized,
};
pub use script::{
    LoadedScript, ScriptError, load_callable, load_module, loaded_script, preload, preload_script,
    script_mtime,
};
pub use shared::deliver_broadcasts;
pub use shim::MOD_WSGI_API_VERSION;
pub use threads::{current_thread_ident, is_request_timeout, raise_request_timeout};

/// The settings this process was initialised with, for the telemetry reporter.
pub(crate) fn settings_for_telemetry() -> &'static PythonSettings {
    runtime::settings()
}
