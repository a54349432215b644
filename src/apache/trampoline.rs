//! The one place where panics are stopped before they reach C: every extern "C" entry
//! point runs its body through [`guard`].

use std::panic::{AssertUnwindSafe, catch_unwind};

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic payload".to_owned())
}

/// Runs `body`; if it panics, logs the panic with `entry` and returns `on_panic`.
pub fn guard<T>(entry: &str, on_panic: T, body: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(payload) => {
            let message = panic_message(payload.as_ref());
            super::log::server_error(&format!(
                "WSGI1001: internal error (panic) in {entry}: {message}; the request was failed and the process keeps serving"
            ));
            on_panic
        }
    }
}
