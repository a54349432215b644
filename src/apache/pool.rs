//! Handing Rust data to APR pools: text copied into a pool, and Rust values owned by a
//! pool (dropped by one of its cleanups).

use super::sys;
use mod_wsgi_daemon::restart_record::RestartRecord;
use std::ffi::{CStr, c_void};
use std::os::raw::c_char;

/// Copies `bytes` into `pool` as a NUL-terminated C string. Text from Apache or validated
/// by this module has no interior NUL; if one slipped in, C would see the text cut there.
///
/// # Safety
/// `pool` must be a live pool; the result lives as long as it.
pub unsafe fn copy_text(pool: *mut sys::apr_pool_t, bytes: &[u8]) -> *mut c_char {
    // SAFETY: per the caller; apr_pstrmemdup copies exactly `len` bytes and appends a NUL.
    unsafe { sys::apr_pstrmemdup(pool, bytes.as_ptr().cast(), bytes.len()) }
}

unsafe extern "C" fn drop_boxed<T>(data: *mut c_void) -> sys::apr_status_t {
    // SAFETY: `data` is the pointer Box::into_raw returned in `into_pool`, and this cleanup
    // runs exactly once, when that pool is destroyed.
    drop(unsafe { Box::from_raw(data.cast::<T>()) });
    sys::APR_SUCCESS as sys::apr_status_t
}

/// Moves `value` into `pool`: it is dropped when the pool is cleared or destroyed.
///
/// # Safety
/// `pool` must be a live pool.
pub unsafe fn into_pool<T>(pool: *mut sys::apr_pool_t, value: T) -> *mut T {
    let raw = Box::into_raw(Box::new(value));
    // SAFETY: pool is live (caller); raw stays valid until the cleanup frees it.
    unsafe {
        sys::apr_pool_cleanup_register(
            pool,
            raw.cast(),
            Some(drop_boxed::<T>),
            Some(sys::apr_pool_cleanup_null),
        );
    }
    raw
}

/// Userdata key, on the process pool, of the restart record.
const RECORD_KEY: &CStr = c"mod_wsgi_rs:restart-record";

/// What the previous generation left in this process (see `RestartRecord`).
pub fn read_record(process_pool: *mut sys::apr_pool_t) -> RestartRecord {
    RestartRecord::decode(&read_userdata(process_pool, RECORD_KEY))
}

/// Leaves `record` for the next generation.
pub fn write_record(process_pool: *mut sys::apr_pool_t, record: &RestartRecord) {
    write_userdata(process_pool, RECORD_KEY, &record.encode());
}

/// Changes part of the record: read, `change`, write.
pub fn update_record(process_pool: *mut sys::apr_pool_t, change: impl FnOnce(&mut RestartRecord)) {
    let mut record = read_record(process_pool);
    change(&mut record);
    write_record(process_pool, &record);
}

/// Text stored under `key` in the process pool (survives generations); "" if none.
fn read_userdata(process_pool: *mut sys::apr_pool_t, key: &CStr) -> String {
    let mut data: *mut c_void = std::ptr::null_mut();
    // SAFETY: reads a userdata pointer of the live process pool.
    unsafe { sys::apr_pool_userdata_get(&mut data, key.as_ptr(), process_pool) };
    if data.is_null() {
        return String::new();
    }
    // SAFETY: the values stored under our keys are NUL-terminated strings in the process
    // pool (see write_userdata).
    unsafe { CStr::from_ptr(data.cast()) }
        .to_string_lossy()
        .into_owned()
}

/// Stores `text` under `key` in the process pool, replacing what was there.
fn write_userdata(process_pool: *mut sys::apr_pool_t, key: &CStr, text: &str) {
    // SAFETY: the string is copied into the process pool, which outlives every generation;
    // no cleanup is attached (the module's code may be unloaded before the pool dies).
    unsafe {
        let copy = copy_text(process_pool, text.as_bytes());
        sys::apr_pool_userdata_set(copy.cast(), key.as_ptr(), None, process_pool);
    }
}
