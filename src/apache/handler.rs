//! URL mapping (translate_name) and the `wsgi-script` content handler for embedded mode:
//! request checks, the environ, group selection, then the WSGI core.

use super::config::{AliasMatcher, ScriptAlias, server_config};
use super::hooks::{EMBEDDED_RESTRICTED, MULTIPROCESS, MULTITHREAD};
use super::io::{ApacheBody, ApacheSink, LentRequest};
use super::request::{Request, latin1};
use super::sys;
use crate::daemon::{self, ProxyOutcome, affinity};
use crate::wsgi::{self, OnScriptChange, Outcome, WsgiRequest};
use mod_wsgi_config::{DirConfig, RequestFacts, Selection, prefix_match_len, select};
use mod_wsgi_http::{ScriptFile, refuse_script};
use mod_wsgi_wire::RequestHead;
use std::ffi::{CStr, CString};
use std::fmt::Write;
use std::os::raw::c_int;
use std::sync::atomic::Ordering;
use tracing::Level;

const ALIAS_NOTE: &CStr = c"mod_wsgi_rs.alias";
const HANDLER_NAMES: [&CStr; 2] = [c"wsgi-script", c"application/x-httpd-wsgi"];
/// `SetHandler wsgi-metrics`: the Prometheus text endpoint.
const METRICS_HANDLER: &CStr = c"wsgi-metrics";
/// The process group ("" = embedded) a WSGI request is counted under.
const METRICS_NOTE: &CStr = c"mod_wsgi_rs.metrics-group";
const MAX_REGEX_GROUPS: usize = 10;

fn regex_target(
    req: &Request<'_>,
    alias: &ScriptAlias,
    regex: *mut sys::ap_regex_t,
    uri: &[u8],
) -> Option<Vec<u8>> {
    let uri_c = CString::new(uri).ok()?;
    let target = CString::new(alias.target.as_str()).ok()?;
    let mut matches = [sys::ap_regmatch_t { rm_so: 0, rm_eo: 0 }; MAX_REGEX_GROUPS];
    // SAFETY: the regex lives in the config pool; `matches` has MAX_REGEX_GROUPS slots and
    // the strings outlive both calls; ap_pregsub allocates its result in the request pool.
    unsafe {
        if sys::ap_regexec(
            regex,
            uri_c.as_ptr(),
            MAX_REGEX_GROUPS,
            matches.as_mut_ptr(),
            0,
        ) != 0
        {
            return None;
        }
        let found = sys::ap_pregsub(
            req.pool(),
            target.as_ptr(),
            uri_c.as_ptr(),
            MAX_REGEX_GROUPS,
            matches.as_mut_ptr(),
        );
        if found.is_null() {
            return None;
        }
        let end = usize::try_from(matches[0].rm_eo)
            .unwrap_or(0)
            .min(uri.len());
        Some(mod_wsgi_config::join_target(
            CStr::from_ptr(found).to_bytes(),
            &uri[end..],
        ))
    }
}

/// Maps URLs under a WSGIScriptAlias[Match] to the script and marks them `wsgi-script`.
///
/// # Safety
/// `r` must be a live request_rec used only by this thread during the call.
pub unsafe fn translate_name(r: *mut sys::request_rec) -> c_int {
    // SAFETY: per the caller.
    let mut req = unsafe { Request::from_raw(r) };
    // SAFETY: the request's server is live for the request.
    let Some(config) = (unsafe { server_config(req.server()) }) else {
        return sys::DECLINED;
    };
    let uri = req.uri();
    if uri.first() != Some(&b'/') {
        return sys::DECLINED;
    }
    for (index, alias) in config.aliases.iter().enumerate() {
        let filename = match &alias.matcher {
            AliasMatcher::Prefix(prefix) => {
                // Matching works on the URI as latin-1 text, so every byte survives; the
                // matched prefix is ASCII-compatible, hence the same length in bytes.
                let uri_text = latin1(uri);
                prefix_match_len(prefix, &uri_text).map(|n| {
                    let skipped = uri_text[..n].chars().count();
                    mod_wsgi_config::join_target(alias.target.as_bytes(), &uri[skipped..])
                })
            }
            AliasMatcher::Regex(regex) => {
                // The handle is the ap_regex_t this module compiled into the
                // config pool while reading the configuration (directives.rs); it lives
                // as long as the configuration that holds it.
                let regex = regex.0 as *mut sys::ap_regex_t;
                regex_target(&req, alias, regex, uri)
            }
        };
        if let Some(filename) = filename {
            req.set_filename(&filename);
            req.set_handler(c"wsgi-script");
            req.set_note(ALIAS_NOTE, &index.to_string());
            return sys::OK;
        }
    }
    sys::DECLINED
}

fn log_request(req: &Request<'_>, level: Level, message: &str) {
    // SAFETY: the request is live for the handler call.
    unsafe { super::log::request_log(req.raw(), level, message) };
}

/// Refuses request bodies mod_wsgi refuses; `Some(status)` ends the request.
fn check_request_body(req: &Request<'_>, dir: &DirConfig) -> Option<c_int> {
    let refusal = mod_wsgi_http::refuse_body(
        req.header_in(c"Transfer-Encoding").as_deref(),
        req.header_in(c"Content-Length").as_deref(),
        dir.chunked_request == Some(true),
        req.limit_request_body(),
    )?;
    log_request(req, Level::ERROR, &refusal.message);
    Some(c_int::from(refusal.status))
}

/// A request's variables by name: its notes, then its environment, then the process's.
pub(super) fn env_lookup<'a>(req: &'a Request<'_>) -> impl Fn(&str) -> Option<String> + 'a {
    move |name: &str| {
        let key = CString::new(name).ok()?;
        req.note(&key)
            .or_else(|| req.env_var(name))
            .or_else(|| std::env::var(name).ok())
    }
}

/// The content handler.
///
/// # Safety
/// `r` must be a live request_rec used only by this thread during the call.
pub unsafe fn handle(r: *mut sys::request_rec) -> c_int {
    // SAFETY: per the caller.
    let mut req = unsafe { Request::from_raw(r) };
    let Some(handler_name) = req.handler() else {
        return sys::DECLINED;
    };
    if handler_name == METRICS_HANDLER {
        return serve_metrics(&mut req);
    }
    // SAFETY: the request's server is live for the request.
    let Some(server) = (unsafe { server_config(req.server()) }) else {
        return sys::DECLINED;
    };
    // WSGIHandlerScript: a handler name that runs a fixed script's handle_request for
    // whatever resource Apache mapped (which need not exist).
    let dir_config: Option<&DirConfig> = req.dir_config();
    let handler_script = handler_name.to_str().ok().and_then(|name| {
        dir_config
            .and_then(|d| d.handler_script(name))
            .or_else(|| server.handler_script(name))
    });
    if handler_script.is_none() && !HANDLER_NAMES.contains(&handler_name) {
        return sys::DECLINED;
    }
    req.set_note(METRICS_NOTE, "");
    let _busy = crate::shared::metrics::busy();
    let alias = req
        .note(ALIAS_NOTE)
        .and_then(|i| i.parse::<usize>().ok())
        .and_then(|i| server.aliases.get(i));
    // Options given on the WSGIScriptAlias line are the innermost configuration layer.
    let dir =
        mod_wsgi_config::request_dir_config(dir_config, handler_script, alias.map(|a| &a.options));
    let dir = &dir;
    if let Some(h) = handler_script {
        return handle_resolved(req, dir, std::path::PathBuf::from(&h.script), true);
    }
    let script_path = req.filename().unwrap_or_default();
    let file = match req.filetype() {
        sys::APR_REG => ScriptFile::Regular,
        0 => ScriptFile::Missing,
        _ => ScriptFile::Other,
    };
    let script = script_path.display().to_string();
    let aliased = alias.is_some();
    if let Some(refusal) = refuse_script(&script, aliased, aliased || req.allows_exec_cgi(), file) {
        log_request(&req, Level::ERROR, &refusal.message);
        return c_int::from(refusal.status);
    }
    handle_resolved(req, dir, script_path, false)
}

/// The rest of the handler once the script is known: the request body checks, the
/// environ, resolution, and running the request here or in a daemon.
fn handle_resolved(
    mut req: Request<'_>,
    dir: &DirConfig,
    script_path: std::path::PathBuf,
    is_handler_script: bool,
) -> c_int {
    let Some(handler_name) = req.handler() else {
        return sys::DECLINED;
    };
    if let Some(status) = check_request_body(&req, dir) {
        return status;
    }
    // SAFETY: live request; prepares Apache's request body reading (de-chunked).
    let rv = unsafe { sys::ap_setup_client_block(req.raw(), sys::REQUEST_CHUNKED_DECHUNK) };
    if rv != sys::OK {
        return rv;
    }

    let dispatched = match super::phases::dispatched(&mut req, dir) {
        Ok(dispatched) => dispatched,
        Err(status) => return status,
    };
    let dir = dispatched.as_ref().unwrap_or(dir);
    let mut environ = req.cgi_environment();
    // As mod_wsgi 6: SCRIPT_NAME and PATH_INFO as Apache set them, before trusted proxy
    // headers may rewrite them.
    let original_script_name = environ.get("SCRIPT_NAME").unwrap_or_default().to_owned();
    let original_path_info = environ.get("PATH_INFO").unwrap_or_default().to_owned();
    let env = env_lookup(&req);
    let script_name = environ.get("SCRIPT_NAME").unwrap_or_default().to_owned();
    let server_name = req.server_hostname();
    let host_name = req.hostname();
    let facts = RequestFacts {
        server_name: &server_name,
        server_port: req.ports().group_port(),
        host_name: host_name.as_deref(),
        script_name: &script_name,
        case_sensitive: true,
        env: &env,
    };
    let selection = select(dir, &facts, EMBEDDED_RESTRICTED.load(Ordering::Relaxed));
    drop(env);
    let Selection {
        process_group,
        application_group,
        callable,
    } = match selection {
        Ok(selection) => selection,
        Err(refusal) => {
            log_request(&req, Level::ERROR, &refusal.to_string());
            return sys::HTTP_INTERNAL_SERVER_ERROR;
        }
    };
    let daemon_group = match daemon_group_for(&req, &process_group) {
        Ok(group) => group,
        Err(status) => return status,
    };

    if dir.pass_authorization == Some(true)
        && let Some(auth) = req.header_in(c"Authorization")
    {
        environ.set("HTTP_AUTHORIZATION", &auth);
    }
    if let Some(trusted) = &dir.trusted_proxy_headers {
        mod_wsgi_http::apply_trusted_proxy_headers(
            &mut environ,
            trusted,
            dir.trusted_proxies.as_deref(),
        );
    }
    let map_head = dir.map_head_to_get.unwrap_or_default();
    if req.header_only() && map_head.maps(|| req.has_content_filters()) {
        environ.set("REQUEST_METHOD", "GET");
    }
    let reload = dir.script_reloading.unwrap_or(true);
    let sendfile = dir.enable_sendfile.unwrap_or(false);
    let (listener_host, listener_port) = req.listener();
    let now_us = mod_wsgi_engine::epoch_us();
    let request_handler = handler_name.to_string_lossy();
    let handler_script_text = if is_handler_script {
        script_path.display().to_string()
    } else {
        String::new()
    };
    // A handler script's own mtime (Apache stat'ed the resource, not the script).
    let script_mtime = if is_handler_script {
        mod_wsgi_engine::python::script_mtime(&script_path)
    } else {
        req.file_mtime()
    };
    let request_id = req.log_id().unwrap_or_default();
    let connection_id = req.connection_log_id().unwrap_or_default();
    mod_wsgi_http::RequestVariables {
        script_name: &original_script_name,
        path_info: &original_path_info,
        process_group: &process_group,
        application_group: &application_group,
        callable_object: &callable,
        request_handler: &request_handler,
        handler_script: &handler_script_text,
        script_reloading: reload,
        enable_sendfile: sendfile,
        ignore_activity: dir.ignore_activity == Some(true),
        listener_host: &listener_host,
        request_id: &request_id,
        connection_id: &connection_id,
        server_pid: std::process::id(),
        listener_port,
        request_start: req.request_time(),
        script_start: now_us,
    }
    .apply(&mut environ);

    let run = Dispatch {
        environ,
        application_group,
        callable,
        script: script_path,
        script_mtime,
        reload,
        sendfile,
        pass_apache_request: dir.pass_apache_request == Some(true),
    };
    match daemon_group {
        Some(group) => {
            let error_override = dir.error_override == Some(true);
            proxy_to_daemon(&mut req, &group, run, error_override)
        }
        None => run_embedded(&req, run),
    }
}

/// The application raised (its traceback is logged): 500 if nothing was sent yet,
/// otherwise the started response is aborted.
/// Where and how the handler runs a request it resolved.
struct Dispatch {
    environ: mod_wsgi_wire::Environ,
    application_group: String,
    callable: String,
    script: std::path::PathBuf,
    script_mtime: f64,
    reload: bool,
    sendfile: bool,
    pass_apache_request: bool,
}

fn proxy_to_daemon(
    req: &mut Request<'_>,
    group: &daemon::DaemonGroup,
    run: Dispatch,
    error_override: bool,
) -> c_int {
    req.set_note(METRICS_NOTE, &group.spec.name);
    let mut run = run;
    // When the request was handed to the daemon group (mod_wsgi.queue_start).
    let queue_start_us = mod_wsgi_engine::epoch_us();
    run.environ.push_with("mod_wsgi.queue_start", |text| {
        let _ = write!(text, "{queue_start_us}");
    });
    let lane = group.spec.session_affinity.as_deref().map(|cookie_name| {
        let cookies = run.environ.get("HTTP_COOKIE");
        let (lane, set_cookie) = affinity::lane_for(cookies, cookie_name, group.lanes.len());
        if let Some(value) = set_cookie {
            req.add_error_header(c"Set-Cookie", &value);
        }
        lane
    });
    let head = RequestHead {
        secret: group.secret,
        reload: run.reload,
        header_only: req.header_only(),
        keep_alive: false,
        request_start_us: u64::try_from(req.request_time()).unwrap_or(0),
        script_mtime: run.script_mtime,
        application_group: run.application_group,
        script: run.script.to_string_lossy().into_owned(),
        callable: run.callable,
        environ: run.environ,
    };
    // SAFETY: the request outlives the proxy call, which drops both holders.
    let lent = unsafe { LentRequest::new(req.raw()) };
    let mut body = ApacheBody::new(lent);
    let mut sink = ApacheSink::new(lent, run.sendfile);
    if let Some(timeout) = group.client_write_timeout() {
        sink = sink.with_write_timeout(timeout);
    }
    match daemon::proxy(group, lane, head, error_override, &mut body, &mut sink) {
        ProxyOutcome::Complete | ProxyOutcome::ClientGone => sys::OK,
        ProxyOutcome::Overridden { status } => c_int::from(status),
        ProxyOutcome::AppFailed { headers_sent } => app_failed(req, headers_sent),
        ProxyOutcome::Failed { status, message } => {
            log_request(req, Level::ERROR, &format!("WSGI1040: {message}"));
            if status == 503 {
                // No daemon could take the request in time (connect-timeout, or
                // queue-timeout while the group starts, restarts or is saturated):
                // clients and proxies may try again shortly.
                req.set_error_header(c"Retry-After", c"5");
            }
            c_int::from(status)
        }
        ProxyOutcome::Aborted { message } => {
            log_request(
                req,
                Level::ERROR,
                &format!("WSGI1041: {message}; response aborted"),
            );
            abort_connection(req);
            sys::OK
        }
    }
}

fn run_embedded(req: &Request<'_>, run: Dispatch) -> c_int {
    let wsgi_request = WsgiRequest {
        environ: run.environ,
        application_group: run.application_group,
        script: run.script,
        script_mtime: run.script_mtime,
        callable: run.callable,
        reload: run.reload,
        header_only: req.header_only(),
        multithread: MULTITHREAD.load(Ordering::Relaxed),
        multiprocess: MULTIPROCESS.load(Ordering::Relaxed),
        run_once: false,
        on_script_change: OnScriptChange::Reload,
        on_script_loaded: None,
        apache_request: run
            .pass_apache_request
            .then(|| std::ptr::NonNull::new(req.raw().cast()))
            .flatten(),
    };
    // SAFETY: the request outlives wsgi::run, which drops every holder before returning.
    let lent = unsafe { LentRequest::new(req.raw()) };
    let outcome = wsgi::run(
        wsgi_request,
        Box::new(ApacheBody::new(lent)),
        Box::new(ApacheSink::new(lent, run.sendfile)),
    );
    match outcome {
        Outcome::Complete | Outcome::ClientGone => sys::OK,
        Outcome::Failed { headers_sent } => app_failed(req, headers_sent),
    }
}

/// The daemon group a request's process group names (None for embedded mode), or the
/// status of a refusal that was logged.
fn daemon_group_for(
    req: &Request<'_>,
    process_group: &str,
) -> Result<Option<std::sync::Arc<daemon::DaemonGroup>>, c_int> {
    // Embedded mode: nothing to look up (the script's facts are for daemon groups).
    if process_group.is_empty() {
        return Ok(None);
    }
    let path = req.filename().unwrap_or_default();
    let server_hostname = req.server_hostname();
    let script = daemon::RequestScript {
        owner: req.file_owner(),
        path: &path,
        server_hostname: &server_hostname,
    };
    daemon::group_for_request(process_group, daemon::find_group, &script).map_err(|refusal| {
        log_request(req, Level::ERROR, &refusal.message);
        c_int::from(refusal.status)
    })
}

fn app_failed(req: &Request<'_>, headers_sent: bool) -> c_int {
    if headers_sent {
        abort_connection(req);
        sys::OK
    } else {
        sys::HTTP_INTERNAL_SERVER_ERROR
    }
}

/// Makes a response that already started visibly incomplete: no final chunk, no
/// keep-alive, so the client cannot mistake it for a complete body.
fn abort_connection(req: &Request<'_>) {
    // SAFETY: the connection outlives the request; setting these flags is how Apache
    // modules stop further output (core's output filter discards data once aborted).
    unsafe {
        sys::ap_rflush(req.raw());
        let c = &mut *req.connection();
        c.keepalive = sys::AP_CONN_CLOSE;
        c.aborted = 1;
    }
}

/// `SetHandler wsgi-metrics`: the server's metrics in Prometheus text format.
fn serve_metrics(req: &mut Request<'_>) -> c_int {
    if !req.is_get() {
        return sys::HTTP_METHOD_NOT_ALLOWED;
    }
    let body = crate::shared::metrics::render();
    req.respond(c"text/plain; version=0.0.4; charset=utf-8", body.as_bytes());
    sys::OK
}

/// Adds a finished request to the server metrics if a WSGI handler took it.
///
/// # Safety
/// `r` must be a live request_rec owned by this thread for the call.
pub unsafe fn count_request(r: *mut sys::request_rec) {
    // SAFETY: per the caller.
    let req = unsafe { Request::from_raw(r) };
    if let (Some(group), status) = req.outcome_for_metrics(METRICS_NOTE) {
        let now_us = mod_wsgi_engine::epoch_us() as i64;
        let took = crate::shared::metrics::elapsed_since(req.request_time(), now_us);
        crate::shared::metrics::record_request(&group, u16::try_from(status).unwrap_or(0), took);
    }
}
