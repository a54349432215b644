//! Writing to Apache's error log: a `tracing` subscriber for process-wide messages (the
//! main server's log) and per-request lines through `ap_log_rerror`.
//!
//! The level is checked before anything is formatted, and the message is always passed
//! as an argument to a constant "%s" format.

use super::module::module_index;
use super::sys;
use std::ffi::CString;
use std::sync::atomic::{AtomicPtr, Ordering};
use tracing_core::field::{Field, Visit};
use tracing_core::span::{Attributes, Id, Record};
use tracing_core::{Event, Level, LevelFilter, Metadata, Subscriber};

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

/// Calls `emit` once per line of `message`, each as a C string (NULs shown as `\0`).
fn each_line(message: &str, mut emit: impl FnMut(&CString)) {
    for line in message.lines() {
        emit(&CString::new(line.replace('\0', "\\0")).expect("BUG: NULs were replaced"));
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

/// Routes `tracing` events to the main server's error log.
struct ApacheSubscriber {
    max: LevelFilter,
}

/// The event's message; `critical` when it carries `apache_crit = true` (Apache's crit
/// level, which `tracing` lacks).
#[derive(Default)]
struct MessageVisitor(String, bool);

impl Visit for MessageVisitor {
    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == "apache_crit" {
            self.1 = value;
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            self.0.push_str(&format!(" {}={value}", field.name()));
        }
    }
}

impl Subscriber for ApacheSubscriber {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.max >= *metadata.level()
    }
    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.max)
    }
    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _span: &Id, _values: &Record<'_>) {}
    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut visitor = MessageVisitor::default();
        event.record(&mut visitor);
        if visitor.1 {
            server_log_at(sys::APLOG_CRIT, &visitor.0);
        } else {
            server_log(*event.metadata().level(), &visitor.0);
        }
    }
    fn enter(&self, _span: &Id) {}
    fn exit(&self, _span: &Id) {}
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
    let _ = tracing::subscriber::set_global_default(ApacheSubscriber { max });
}
