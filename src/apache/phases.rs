//! mod_wsgi's Python scripts in Apache's own phases: the `wsgi` authn provider
//! (`AuthBasicProvider wsgi`, `AuthDigestProvider wsgi`, WSGIAuthUserScript), the
//! `wsgi-group` authz provider (`Require wsgi-group`, WSGIAuthGroupScript), the access
//! checker (WSGIAccessScript) and the dispatch script the handler consults
//! (WSGIDispatchScript). The scripts run here, in the Apache child, also when the
//! application itself runs in a daemon process. A script that fails never lets a
//! request through: it is a 500 with the phase and the traceback in the error log.

use super::request::{Request, latin1};
use super::sys;
use super::trampoline::guard;
use mod_wsgi_config::{ApplicationGroup, DirConfig, HookScript, RequestFacts};
use mod_wsgi_engine::wsgi::phases::{self, Password, PhaseCall};
use mod_wsgi_http::to_latin1;
use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_void};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use tracing::Level;

/// Set when the configuration names a phase script: the Apache children then start
/// Python even under `WSGIRestrictEmbedded On`, as mod_wsgi does.
pub static SCRIPTS_CONFIGURED: AtomicBool = AtomicBool::new(false);

/// The directives whose scripts run in the Apache child.
pub const SCRIPT_DIRECTIVES: [&CStr; 4] = [
    c"WSGIAccessScript",
    c"WSGIAuthUserScript",
    c"WSGIAuthGroupScript",
    c"WSGIDispatchScript",
];

pub static AUTHN_PROVIDER: sys::authn_provider = sys::authn_provider {
    check_password: Some(check_password),
    get_realm_hash: Some(get_realm_hash),
};

pub static AUTHZ_PROVIDER: sys::authz_provider = sys::authz_provider {
    check_authorization: Some(check_authorization),
    parse_require_line: None,
};

fn log(req: &Request<'_>, level: Level, message: &str) {
    // SAFETY: the request is live for the hook call.
    unsafe { super::log::request_log(req.raw(), level, message) };
}

/// The interpreter a phase script runs in, expanded for this request.
fn interpreter_for(req: &Request<'_>, group: &ApplicationGroup, script_name: &str) -> String {
    let env = super::handler::env_lookup(req);
    let server_name = req.server_hostname();
    let host_name = req.hostname();
    group.expand(&RequestFacts {
        server_name: &server_name,
        server_port: req.ports().group_port(),
        host_name: host_name.as_deref(),
        script_name,
        case_sensitive: true,
        env: &env,
    })
}

/// Runs `f` with the call for `script` on this request, or logs why it cannot.
fn with_call<T>(
    req: &mut Request<'_>,
    dir: &DirConfig,
    script: &HookScript,
    f: impl FnOnce(PhaseCall<'_>) -> T,
) -> T {
    let environ = req.cgi_environment();
    let script_name = environ.get("SCRIPT_NAME").unwrap_or_default().to_owned();
    let application_group = interpreter_for(req, &script.application_group, &script_name);
    f(PhaseCall {
        script: Path::new(&script.path),
        application_group: &application_group,
        reload: dir.script_reloading.unwrap_or(true),
        environ,
    })
}

fn c_text(ptr: *const c_char) -> String {
    if ptr.is_null() {
        return String::new();
    }
    // SAFETY: Apache passes NUL-terminated strings that live for the request.
    latin1(unsafe { CStr::from_ptr(ptr) }.to_bytes())
}

/// The WSGIAuthUserScript behind the `wsgi` authn provider here, with its directory
/// configuration; None (logged when the directive is missing) ends the check with an error.
fn user_script<'r>(req: &Request<'r>, provider: &str) -> Option<(&'r DirConfig, &'r HookScript)> {
    let dir = req.dir_config::<DirConfig>()?;
    let Some(script) = &dir.auth_user_script else {
        log(
            req,
            Level::ERROR,
            &format!("WSGI0041: '{provider} wsgi' here has no WSGIAuthUserScript to ask"),
        );
        return None;
    };
    Some((dir, script))
}

unsafe extern "C" fn check_password(
    r: *mut sys::request_rec,
    user: *const c_char,
    password: *const c_char,
) -> sys::authn_status {
    guard("check_password", sys::AUTH_GENERAL_ERROR, || {
        // SAFETY: Apache passes a live request_rec owned by this thread for the call.
        let mut req = unsafe { Request::from_raw(r) };
        let Some((dir, script)) = user_script(&req, "AuthBasicProvider") else {
            return sys::AUTH_GENERAL_ERROR;
        };
        let (user, password) = (c_text(user), c_text(password));
        let verdict = with_call(&mut req, dir, script, |call| {
            phases::check_password(call, &user, &password)
        });
        match verdict {
            Ok(Password::Granted) => sys::AUTH_GRANTED,
            Ok(Password::GrantedAs(name)) => {
                req.set_user(&to_latin1(&name));
                sys::AUTH_GRANTED
            }
            Ok(Password::Denied) => sys::AUTH_DENIED,
            Ok(Password::UnknownUser) => sys::AUTH_USER_NOT_FOUND,
            Err(_) => sys::AUTH_GENERAL_ERROR,
        }
    })
}

unsafe extern "C" fn get_realm_hash(
    r: *mut sys::request_rec,
    user: *const c_char,
    realm: *const c_char,
    rethash: *mut *mut c_char,
) -> sys::authn_status {
    guard("get_realm_hash", sys::AUTH_GENERAL_ERROR, || {
        // SAFETY: Apache passes a live request_rec owned by this thread for the call.
        let mut req = unsafe { Request::from_raw(r) };
        let Some((dir, script)) = user_script(&req, "AuthDigestProvider") else {
            return sys::AUTH_GENERAL_ERROR;
        };
        let (user, realm) = (c_text(user), c_text(realm));
        let hash = with_call(&mut req, dir, script, |call| {
            phases::get_realm_hash(call, &user, &realm)
        });
        match hash {
            Ok(Some(hash)) => {
                // SAFETY: rethash is the out-parameter mod_auth_digest passes; the copy
                // lives in the request pool.
                unsafe { *rethash = req.pstrdup(&to_latin1(&hash)) };
                sys::AUTH_USER_FOUND
            }
            Ok(None) => sys::AUTH_USER_NOT_FOUND,
            Err(_) => sys::AUTH_GENERAL_ERROR,
        }
    })
}

unsafe extern "C" fn check_authorization(
    r: *mut sys::request_rec,
    require_line: *const c_char,
    _parsed: *const c_void,
) -> sys::authz_status {
    guard("check_authorization", sys::AUTHZ_GENERAL_ERROR, || {
        // SAFETY: Apache passes a live request_rec owned by this thread for the call.
        let mut req = unsafe { Request::from_raw(r) };
        let Some(user) = req.user() else {
            return sys::AUTHZ_DENIED_NO_USER;
        };
        let Some(dir) = req.dir_config::<DirConfig>() else {
            return sys::AUTHZ_GENERAL_ERROR;
        };
        let Some(script) = &dir.auth_group_script else {
            log(
                &req,
                Level::ERROR,
                "WSGI0058: 'Require wsgi-group' here has no WSGIAuthGroupScript to ask",
            );
            return sys::AUTHZ_GENERAL_ERROR;
        };
        let groups = match with_call(&mut req, dir, script, |call| {
            phases::groups_for_user(call, &user)
        }) {
            Ok(groups) => groups,
            Err(_) => return sys::AUTHZ_GENERAL_ERROR,
        };
        let uri = latin1(req.uri());
        match phases::group_refusal(&user, &uri, &c_text(require_line), &groups) {
            None => return sys::AUTHZ_GRANTED,
            Some(message) => log(&req, Level::ERROR, &message),
        }
        sys::AUTHZ_DENIED
    })
}

/// The access checker: WSGIAccessScript's `allow_access(environ, host)`.
pub unsafe extern "C" fn access_checker(r: *mut sys::request_rec) -> c_int {
    guard("access_checker", sys::HTTP_INTERNAL_SERVER_ERROR, || {
        // SAFETY: Apache passes a live request_rec owned by this thread for the call.
        let mut req = unsafe { Request::from_raw(r) };
        let Some(dir) = req.dir_config::<DirConfig>() else {
            return sys::DECLINED;
        };
        let Some(script) = &dir.access_script else {
            return sys::DECLINED;
        };
        let host = req.remote_host();
        match with_call(&mut req, dir, script, |call| {
            phases::allow_access(call, host.as_deref())
        }) {
            Ok(Some(true)) => sys::OK,
            Ok(None) => sys::DECLINED,
            Ok(Some(false)) => {
                let uri = latin1(req.uri());
                let message = phases::access_refusal(host.as_deref(), &script.path, &uri);
                log(&req, Level::ERROR, &message);
                sys::HTTP_FORBIDDEN
            }
            Err(_) => sys::HTTP_INTERNAL_SERVER_ERROR,
        }
    })
}

/// The configuration with what the dispatch script chose for this request, or the
/// status that ends it (the cause was logged).
pub fn dispatched(req: &mut Request<'_>, dir: &DirConfig) -> Result<Option<DirConfig>, c_int> {
    let Some(script) = &dir.dispatch_script else {
        return Ok(None);
    };
    let chosen = with_call(req, dir, script, phases::dispatch)
        .map_err(|_| sys::HTTP_INTERNAL_SERVER_ERROR)?;
    chosen.apply(dir).map(Some).map_err(|e| {
        log(
            req,
            Level::ERROR,
            &format!("WSGI1155: dispatch script '{}' chose {e}", script.path),
        );
        sys::HTTP_INTERNAL_SERVER_ERROR
    })
}

/// Registers the providers and the access checker (from `register_hooks`).
///
/// # Safety
/// Only while Apache loads the module, with the pool it passes to register_hooks.
pub unsafe fn register(pool: *mut sys::apr_pool_t) {
    // As mod_wsgi: the access checker runs after mod_ssl's and before mod_authz_host's.
    static RUN_AFTER: super::module::ModuleNames<2> =
        super::module::ModuleNames([c"mod_ssl.c".as_ptr(), std::ptr::null()]);
    static RUN_BEFORE: super::module::ModuleNames<2> =
        super::module::ModuleNames([c"mod_authz_host.c".as_ptr(), std::ptr::null()]);
    // SAFETY: per the caller; the providers are 'static, as Apache keeps their address.
    unsafe {
        sys::ap_register_auth_provider(
            pool,
            c"authn".as_ptr(),
            c"wsgi".as_ptr(),
            c"0".as_ptr(),
            (&raw const AUTHN_PROVIDER).cast(),
            sys::AP_AUTH_INTERNAL_PER_URI,
        );
        sys::ap_register_auth_provider(
            pool,
            c"authz".as_ptr(),
            c"wsgi-group".as_ptr(),
            c"0".as_ptr(),
            (&raw const AUTHZ_PROVIDER).cast(),
            sys::AP_AUTH_INTERNAL_PER_URI,
        );
        sys::ap_hook_check_access(
            Some(access_checker),
            RUN_AFTER.0.as_ptr(),
            RUN_BEFORE.0.as_ptr(),
            sys::APR_HOOK_MIDDLE,
            sys::AP_AUTH_INTERNAL_PER_URI,
        );
    }
}
