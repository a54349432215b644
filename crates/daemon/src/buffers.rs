//! The group options that size a connection's socket buffers.
#![forbid(unsafe_code)]

use std::os::fd::RawFd;

/// Applies a group's `option` (send-buffer-size, receive-buffer-size) of `bytes` to `fd`
/// unless it is 0 (the system default); a refusal is logged once per process.
pub fn apply_buffer_option(fd: RawFd, bytes: u32, option: &str, group: &str) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if bytes > 0
        && let Err(e) = crate::socket::set_send_buffer(fd, bytes)
        && !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed)
    {
        tracing::warn!(
            "WSGI1138: group '{group}': {option}={bytes} not applied ({e}); the system \
             default is used"
        );
    }
}
