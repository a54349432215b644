//! Writing to Apache's error log: a `tracing` subscriber for process-wide messages (the
//! main server's log) and per-request lines through `ap_log_rerror`.
//!
//! The level is checked before anything is formatted, and the message is always passed
//! as an argument to a constant "%s" format.

use super::module::module_index;
use super::sys;
use mod_wsgi_engine::log_lines::{LineSubscriber, Severity, each_line};
use std::sync::atomic::{AtomicPtr, Ordering};
use tracing_core::{Level, LevelFilter};

static MAIN_SERVER: AtomicPtr<sys::server_rec> = AtomicPtr::new(std::ptr::null_mut());

fn apache_level(level: Level) -> i32 {
    match level {
        Level::ERROR => sys::APLOG_ERR,
        Level::WARN => sys::APLOG_WARNING,
        Level::INFO => sys::APLOG_INFO,
        Level::DEBUG => sys::APLOG_DEBUG,
        Level::TRACE => sys::APLOG_TRACE1,
    }
}

/// The configured level of this module for server `s` (`LogLevel wsgi:...` or global).
///
/// # Safety
/// `s` must point to a live server_rec.
unsafe fn module_level(s: *const sys::server_rec) -> i32 {
    // SAFETY: guaranteed by the caller; module_levels, when set, has an entry for every
    // module index.
    unsafe {
        let log = &(*s).log;
        let idx = module_index();
        if !log.module_levels.is_null() && idx >= 0 {
            let lvl = *log.module_levels.add(idx as usize);
            if lvl >= 0 {
                return i32::from(lvl);
            }
        }
        log.level
    }
}

/// Logs one line to the main server's error log (no request context).
pub fn server_log(level: Level, message: &str) {
    server_log_at(apache_level(level), message);
}

/// Logs one line to the main server's error log at Apache level `lvl` (APLOG_*).
pub fn server_log_at(lvl: i32, message: &str) {
    let s = MAIN_SERVER.load(Ordering::Acquire);
    if s.is_null() {
        eprintln!("mod_wsgi_rs: {message}");
        return;
    }
    // SAFETY: MAIN_SERVER is set in child_init to the main server_rec, which lives as long
    // as the configuration pool of this process generation.
    if unsafe { module_level(s) } < lvl {
        return;
    }
    each_line(message, |line| {
        // SAFETY: s is the live main server; the format is a constant "%s" and the argument
        // a NUL-terminated string that outlives the call.
        unsafe {
            sys::ap_log_error_(
                c"mod_wsgi_rs".as_ptr(),
                0,
                module_index(),
                lvl,
                0,
                s,
                c"%s".as_ptr(),
                line.as_ptr(),
            );
        }
    });
}

pub fn server_error(message: &str) {
    server_log(Level::ERROR, message);
}

/// Logs each line of `message` against request `r` (adds the client address).
///
/// # Safety
/// `r` must point to a live request_rec.
pub unsafe fn request_log(r: *const sys::request_rec, level: Level, message: &str) {
    // SAFETY: as guaranteed by the caller.
    unsafe { request_log_at(r, apache_level(level), message) }
}

/// Logs each line of `message` against request `r` at Apache level `lvl` (APLOG_*).
///
/// # Safety
/// `r` must point to a live request_rec.
pub unsafe fn request_log_at(r: *const sys::request_rec, lvl: i32, message: &str) {
    // SAFETY: the caller guarantees r is live, so r->server is too.
    if unsafe { module_level((*r).server) } < lvl {
        return;
    }
    each_line(message, |line| {
        // SAFETY: r is live (caller); constant format with one NUL-terminated argument.
        unsafe {
            sys::ap_log_rerror_(
                c"mod_wsgi_rs".as_ptr(),
                0,
                module_index(),
                lvl,
                0,
                r,
                c"%s".as_ptr(),
                line.as_ptr(),
            );
        }
    });
}

/// Sends this process's `tracing` output to `s`'s error log. Called once per process, in
/// child_init.
///
/// # Safety
/// `s` must be the main server_rec, live for the rest of the process.
pub unsafe fn install(s: *mut sys::server_rec) {
    MAIN_SERVER.store(s, Ordering::Release);
    // SAFETY: s is live (caller).
    let level = unsafe { module_level(s) };
    let max = match level {
        l if l >= sys::APLOG_TRACE1 => LevelFilter::TRACE,
        l if l >= sys::APLOG_DEBUG => LevelFilter::DEBUG,
        l if l >= sys::APLOG_INFO => LevelFilter::INFO,
        l if l >= sys::APLOG_WARNING => LevelFilter::WARN,
        _ => LevelFilter::ERROR,
    };
    // Routes `tracing` events to the main server's error log.
    let subscriber = LineSubscriber::new(max, |severity, text| match severity {
        Severity::Critical => server_log_at(sys::APLOG_CRIT, text),
        Severity::Level(level) => server_log(level, text),
    });
    let _ = tracing::subscriber::set_global_default(subscriber);
}
