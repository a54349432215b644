//! The part of mod_wsgi_rs that runs applications, without Apache: `wsgi` implements PEP
//! 3333 over two traits (a body reader and a response sink) that embedded mode (Apache's
//! request) and daemon mode (a socket) implement; `python` is the only code that calls
//! CPython's C API; `shared` holds the stores, the broadcast bus and the metrics every
//! process of a server shares; `telemetry` sends mod_wsgi 6's telemetry datagrams.

pub mod log_lines;
pub mod procfs;
pub mod python;
pub mod shared;
pub mod telemetry;
pub mod wsgi;

/// Microseconds since the epoch now; 0 if the clock is before it.
pub fn epoch_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The `major.minor` version of the CPython this engine is built against.
pub const PYTHON_VERSION: &str = env!("MOD_WSGI_RS_PYTHON_VERSION");

/// Whether that CPython is a free-threaded build (PEP 703).
pub const PYTHON_FREE_THREADED: bool =
    matches!(env!("MOD_WSGI_RS_PYTHON_FREE_THREADED").as_bytes(), b"true");

/// Whether that CPython can give sub-interpreters their own GIL (PEP 684, 3.12+).
pub fn python_has_per_interpreter_gil() -> bool {
    let mut parts = PYTHON_VERSION
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (3, 12)
}
