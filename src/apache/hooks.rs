//! Every extern "C" hook Apache calls. Each one goes through the trampoline and hands
//! over to domain code at once.

use super::config::server_config;
use super::trampoline::guard;
use super::{daemons, handler, log, stores, sys};
use crate::python::{self, MpmLimit, PythonSettings};
use std::os::raw::c_int;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing::Level;

/// MPM facts recorded in post_config (parent) and inherited by children through fork.
pub static MULTITHREAD: AtomicBool = AtomicBool::new(false);
pub static MULTIPROCESS: AtomicBool = AtomicBool::new(true);
/// WSGIRestrictEmbedded On, as read in child_init.
pub static EMBEDDED_RESTRICTED: AtomicBool = AtomicBool::new(false);

fn mpm_query(query: i32) -> i32 {
    let mut result: c_int = 0;
    // SAFETY: ap_mpm_query writes one int into `result`.
    let rv = unsafe { sys::ap_mpm_query(query, &mut result) };
    if rv == 0 {
        result
    } else {
        sys::AP_MPMQ_NOT_SUPPORTED
    }
}

pub unsafe extern "C" fn post_config(
    pconf: *mut sys::apr_pool_t,
    _plog: *mut sys::apr_pool_t,
    _ptemp: *mut sys::apr_pool_t,
    s: *mut sys::server_rec,
) -> c_int {
    guard("post_config", sys::OK, || {
        // SAFETY: ap_state_query only reads process state.
        let state = unsafe { sys::ap_state_query(sys::AP_SQ_MAIN_STATE) };
        if state == sys::AP_SQ_MS_CREATE_PRE_CONFIG {
            return sys::OK;
        }
        let banner = [
            concat!("mod_wsgi_rs/", env!("CARGO_PKG_VERSION")).to_owned(),
            format!("Python/{}", mod_wsgi_engine::PYTHON_VERSION),
        ];
        for component in banner {
            let c = std::ffi::CString::new(component).expect("BUG: static text");
            // SAFETY: pconf is live for this generation; Apache copies the component.
            unsafe { sys::ap_add_version_component(pconf, c.as_ptr()) };
        }
        MULTITHREAD.store(
            mpm_query(sys::AP_MPMQ_IS_THREADED) != sys::AP_MPMQ_NOT_SUPPORTED,
            Ordering::Relaxed,
        );
        MULTIPROCESS.store(
            mpm_query(sys::AP_MPMQ_IS_FORKED) != sys::AP_MPMQ_NOT_SUPPORTED,
            Ordering::Relaxed,
        );
        // SAFETY: s is the main server of this generation, live until pconf is cleared;
        // the parent logs through it from here on.
        unsafe { log::install(s) };
        for (warning, text) in mod_wsgi_config::directives::take_notices() {
            let level = if warning { Level::WARN } else { Level::INFO };
            log::server_log(level, &text);
        }
        // SAFETY: s is this pass's live main server; stores are opened before any fork.
        if let Err(e) = unsafe { stores::open_for(s) } {
            log::server_error(&format!("WSGI1004: {e}"));
            return sys::HTTP_INTERNAL_SERVER_ERROR;
        }
        // SAFETY: pconf and s are this pass's live pool and main server.
        if let Err(e) = unsafe { daemons::start(pconf, s) } {
            log::server_error(&format!("WSGI1003: {e}"));
            return sys::HTTP_INTERNAL_SERVER_ERROR;
        }
        sys::OK
    })
}

/// Before each reading of the configuration: what the last reading found is forgotten.
pub unsafe extern "C" fn pre_config(
    _pconf: *mut sys::apr_pool_t,
    _plog: *mut sys::apr_pool_t,
    _ptemp: *mut sys::apr_pool_t,
) -> c_int {
    guard("pre_config", sys::OK, || {
        super::phases::SCRIPTS_CONFIGURED.store(false, Ordering::Relaxed);
        sys::OK
    })
}

pub unsafe extern "C" fn check_config(
    pconf: *mut sys::apr_pool_t,
    _plog: *mut sys::apr_pool_t,
    _ptemp: *mut sys::apr_pool_t,
    s: *mut sys::server_rec,
) -> c_int {
    guard("check_config", sys::OK, || match daemons::check(s, pconf) {
        Ok(()) => sys::OK,
        Err(e) => {
            eprintln!("mod_wsgi_rs: {e}");
            sys::HTTP_INTERNAL_SERVER_ERROR
        }
    })
}

/// What mod_wsgi's `apache` module tells applications about this server.
pub fn apache_facts() -> python::ApacheFacts {
    let text = |p: *const std::os::raw::c_char| -> String {
        if p.is_null() {
            return String::new();
        }
        // SAFETY: Apache returns static or process-pool NUL-terminated strings.
        unsafe { std::ffi::CStr::from_ptr(p) }
            .to_string_lossy()
            .into_owned()
    };
    let threaded = mpm_query(sys::AP_MPMQ_IS_THREADED) != sys::AP_MPMQ_NOT_SUPPORTED;
    let forked = mpm_query(sys::AP_MPMQ_IS_FORKED) != sys::AP_MPMQ_NOT_SUPPORTED;
    let (processes, threads) = python::ApacheFacts::mpm_limits(threaded, forked, |limit| {
        mpm_query(match limit {
            MpmLimit::MaxThreads => sys::AP_MPMQ_MAX_THREADS,
            MpmLimit::MaxDaemonUsed => sys::AP_MPMQ_MAX_DAEMON_USED,
            MpmLimit::MaxDaemons => sys::AP_MPMQ_MAX_DAEMONS,
        })
    });
    python::ApacheFacts {
        version: (
            sys::AP_SERVER_MAJORVERSION_NUMBER as u32,
            sys::AP_SERVER_MINORVERSION_NUMBER as u32,
            sys::AP_SERVER_PATCHLEVEL_NUMBER as u32,
        ),
        // SAFETY: these read Apache's static build and server description strings.
        description: text(unsafe { sys::ap_get_server_description() }),
        // SAFETY: as above.
        mpm_name: text(unsafe { sys::ap_show_mpm() }),
        // SAFETY: as above.
        build_date: text(unsafe { sys::ap_get_server_built() }),
        maximum_processes: processes,
        threads_per_process: threads,
    }
}

unsafe extern "C" fn child_exit(_data: *mut std::ffi::c_void) -> sys::apr_status_t {
    guard("child_exit", (), || {
        // As mod_wsgi 6: an Apache child gives no reason for stopping.
        mod_wsgi_engine::telemetry::stopping("");
        mod_wsgi_engine::telemetry::stopped("");
        python::run_exit_handlers();
    });
    sys::APR_SUCCESS as sys::apr_status_t
}

/// Runs in the Apache parent every few seconds: lets each daemon slot look at its
/// "replace me" flag (APR_OC_REASON_RUNNING), which the MPMs do not deliver themselves.
pub unsafe extern "C" fn monitor(_p: *mut sys::apr_pool_t, _s: *mut sys::server_rec) -> c_int {
    guard("monitor", (), || {
        // SAFETY: in the parent's main loop; walks APR's own other-child list.
        unsafe { sys::apr_proc_other_child_refresh_all(sys::APR_OC_REASON_RUNNING) };
    });
    sys::DECLINED
}

pub unsafe extern "C" fn child_init(pchild: *mut sys::apr_pool_t, s: *mut sys::server_rec) {
    guard("child_init", (), || {
        // SAFETY: s is the main server, live for this child's whole life.
        unsafe { log::install(s) };
        daemons::close_inherited_listeners();
        let apache_uid = daemons::apache_user().0;
        crate::shared::restrict_to(None, apache_uid, apache_uid);
        let threads = mpm_query(sys::AP_MPMQ_MAX_THREADS).max(1);
        crate::shared::metrics::claim_process("", threads as u64);
        // SAFETY: as above.
        let Some(config) = (unsafe { server_config(s) }) else {
            return;
        };
        let py = &config.python;
        let restricted = py.restrict_embedded == Some(true);
        EMBEDDED_RESTRICTED.store(restricted, Ordering::Relaxed);
        // As mod_wsgi: Python still starts for the access, auth and dispatch scripts,
        // which run here whatever mode serves the application.
        if restricted && !super::phases::SCRIPTS_CONFIGURED.load(Ordering::Relaxed) {
            return;
        }
        let settings = PythonSettings {
            multithread: MULTITHREAD.load(Ordering::Relaxed),
            multiprocess: MULTIPROCESS.load(Ordering::Relaxed),
            apache: apache_facts(),
            ..PythonSettings::from_config(py)
        };
        if let Some(eggs) = &py.python_eggs {
            // SAFETY: child_init runs before the MPM starts this child's worker threads,
            // and before Python (which reads it) starts.
            unsafe { std::env::set_var("PYTHON_EGG_CACHE", eggs) };
        }
        if let Err(e) = python::initialize(settings) {
            log::server_error(&format!(
                "WSGI1002: {e}; every WSGI request of this process will fail"
            ));
            return;
        }
        // SAFETY: pchild lives until this child exits; its cleanups run once, on the
        // child's exit path (clean_child_exit), after request processing has stopped.
        unsafe {
            sys::apr_pool_cleanup_register(
                pchild,
                std::ptr::null(),
                Some(child_exit),
                Some(sys::apr_pool_cleanup_null),
            );
        }
        // Scripts embedded mode loads at start, as mod_wsgi does (WSGIImportScript with
        // process-group=%{GLOBAL}, aliases with both groups given): a failure is logged
        // and the script is loaded again by its first request.
        let preloads = if restricted {
            Vec::new()
        } else {
            daemons::preloads_for_embedded(s)
        };
        for (script, application_group) in preloads {
            if let Err(e) = python::preload(std::path::Path::new(&script), &application_group) {
                log::server_error(&format!(
                    "WSGI1103: preloading '{script}' in embedded mode failed: {e}"
                ));
            }
        }
        // As mod_wsgi 6: a child reports only when it may serve WSGI requests itself.
        if !restricted {
            mod_wsgi_engine::telemetry::start();
        }
    })
}

/// Counts each request a WSGI handler (or the daemon proxy) took, with its final status
/// and duration, in the server metrics.
pub unsafe extern "C" fn log_transaction(r: *mut sys::request_rec) -> c_int {
    // SAFETY: Apache passes a live request_rec owned by this thread for the call.
    guard("log_transaction", sys::DECLINED, || unsafe {
        handler::count_request(r);
        sys::DECLINED
    })
}

pub unsafe extern "C" fn translate_name(r: *mut sys::request_rec) -> c_int {
    // SAFETY: Apache passes a live request_rec owned by this thread for the call.
    guard("translate_name", sys::DECLINED, || unsafe {
        handler::translate_name(r)
    })
}

pub unsafe extern "C" fn handler(r: *mut sys::request_rec) -> c_int {
    // SAFETY: Apache passes a live request_rec owned by this thread for the call.
    guard("handler", sys::HTTP_INTERNAL_SERVER_ERROR, || unsafe {
        handler::handle(r)
    })
}
