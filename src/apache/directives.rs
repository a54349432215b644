//! The setter every directive of the table (`mod_wsgi_config::directives`) points at:
//! it splits the arguments as mod_wsgi does, checks scope and arity, and applies the
//! directive; errors go back to Apache, which names the file and line.

use super::pool::copy_text;
use super::sys;
use super::trampoline::guard;
use mod_wsgi_config::directives::{Apply, CmdContext, DIRECTIVES, Directive, Scope};
use mod_wsgi_config::{DirConfig, RegexHandle, ServerConfig};
use std::ffi::{CStr, CString, c_void};
use std::os::raw::c_char;
use std::sync::atomic::{AtomicBool, Ordering};

fn pool_error(pool: *mut sys::apr_pool_t, message: &str) -> *const c_char {
    // SAFETY: pool is the live command pool of the directive being read.
    unsafe { copy_text(pool, message.as_bytes()) }
}

/// The setter every directive of the table points at.
pub unsafe extern "C" fn set_directive(
    cmd: *mut sys::cmd_parms,
    dir_config: *mut c_void,
    args: *const c_char,
) -> *const c_char {
    guard(
        "directive",
        c"mod_wsgi_rs: internal error while parsing directive".as_ptr(),
        || {
            // SAFETY: Apache passes the live cmd_parms of the directive being read; cmd->cmd is
            // the command_rec from our table, whose name is a static C string.
            let (pool, name, server) = unsafe {
                (
                    (*cmd).pool,
                    CStr::from_ptr((*(*cmd).cmd).name),
                    (*cmd).server,
                )
            };
            let Some(directive) = DIRECTIVES.iter().find(|d| d.name == name) else {
                return pool_error(pool, "mod_wsgi_rs: unknown directive");
            };
            if directive.scope == Scope::Global {
                // SAFETY: cmd is live; the function returns null or a static/pool string.
                let err = unsafe { sys::ap_check_cmd_context(cmd, sys::GLOBAL_ONLY as u32) };
                if !err.is_null() {
                    return err;
                }
            }
            // SAFETY: args is the NUL-terminated argument text Apache passes for this call.
            let text = unsafe { CStr::from_ptr(args) }.to_string_lossy();
            let argv = match directive.arguments(&text) {
                Ok(argv) => argv,
                Err(e) => return pool_error(pool, &e),
            };
            let label = name.to_string_lossy();
            if IN_INTERPRETER_OPTIONS.load(Ordering::Relaxed) {
                return apply_in_interpreter_options(cmd, directive, &argv);
            }
            if super::phases::SCRIPT_DIRECTIVES.contains(&name) {
                super::phases::SCRIPTS_CONFIGURED.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            // SAFETY: cmd is live; `path` is non-null inside <Directory>, <Location> and
            // <Files> sections (and in .htaccess files).
            let in_section = !unsafe { (*cmd).path }.is_null();
            let result = match (directive.apply, in_section) {
                (Apply::Dir(apply), _) | (Apply::ServerOrDir(_, apply), true) => {
                    // SAFETY: for directives declared with ACCESS_CONF, Apache passes this
                    // module's per-directory config of the section being read.
                    let config = unsafe { &mut *dir_config.cast::<DirConfig>() };
                    apply(config, &argv)
                }
                (Apply::Server(apply), _) | (Apply::ServerOrDir(apply, _), false) => {
                    // SAFETY: the server being configured is live during config reading.
                    let config = unsafe { (*server).module_config };
                    // SAFETY: module_config holds the ServerConfig create_server_config made.
                    let ptr =
                        unsafe { sys::ap_get_module_config(config, super::module::module_ptr()) };
                    // SAFETY: as above; Apache reads config single-threaded.
                    let config = unsafe { &mut *ptr.cast::<ServerConfig>() };
                    // SAFETY: cmd->directive is the live config tree node being read; its
                    // filename is a NUL-terminated string of the config pool.
                    let location = unsafe {
                        let d = (*cmd).directive;
                        if d.is_null() || (*d).filename.is_null() {
                            String::from("?")
                        } else {
                            format!(
                                "{}:{}",
                                CStr::from_ptr((*d).filename).to_string_lossy(),
                                (*d).line_num
                            )
                        }
                    };
                    let compile_regex = |pattern: &str| {
                        let pattern = CString::new(pattern).ok()?;
                        // SAFETY: pool is the live config pool of this pass; ap_pregcomp
                        // copies the pattern and registers the regex's cleanup on it.
                        let regex = unsafe { sys::ap_pregcomp(pool, pattern.as_ptr(), 0) };
                        (!regex.is_null()).then_some(RegexHandle(regex as usize))
                    };
                    apply(
                        config,
                        &argv,
                        &CmdContext {
                            location,
                            directive: label.to_string(),
                            compile_regex: &compile_regex,
                            python_version: mod_wsgi_engine::PYTHON_VERSION,
                            python_free_threaded: mod_wsgi_engine::PYTHON_FREE_THREADED,
                        },
                    )
                }
            };
            match result {
                Ok(()) if name == INTERPRETER_OPTIONS_SECTION => {
                    // SAFETY: cmd is live while its section is read.
                    unsafe { walk_interpreter_options(cmd) }
                }
                Ok(()) => std::ptr::null(),
                Err(e) => pool_error(pool, &e.to_string()),
            }
        },
    )
}

const INTERPRETER_OPTIONS_SECTION: &CStr = c"<WSGIInterpreterOptions";

/// Set while the directives of a `<WSGIInterpreterOptions>` section are applied (Apache
/// reads the configuration in one thread).
static IN_INTERPRETER_OPTIONS: AtomicBool = AtomicBool::new(false);

/// The ServerConfig of the server being configured.
///
/// # Safety
/// `cmd` must be the live cmd_parms of a directive being read.
unsafe fn server_config_of<'a>(cmd: *mut sys::cmd_parms) -> &'a mut ServerConfig {
    // SAFETY: per the caller; module_config holds the ServerConfig that
    // create_server_config made, and Apache reads configuration single-threaded.
    unsafe {
        let config = (*(*cmd).server).module_config;
        let ptr = sys::ap_get_module_config(config, super::module::module_ptr());
        &mut *ptr.cast::<ServerConfig>()
    }
}

/// Applies the section's directives to the block its opening tag added, after checking
/// that each is one a block may hold.
///
/// # Safety
/// `cmd` must be the live cmd_parms of the section's opening tag.
unsafe fn walk_interpreter_options(cmd: *mut sys::cmd_parms) -> *const c_char {
    // SAFETY: per the caller: the section's node and its children live in the config
    // tree; their names are NUL-terminated strings of the config pool.
    unsafe {
        let pool = (*cmd).pool;
        let first = (*(*cmd).directive).first_child;
        let mut node = first;
        while !node.is_null() {
            let name = CStr::from_ptr((*node).directive).to_string_lossy();
            if let Err(e) = mod_wsgi_config::check_interpreter_option(&name) {
                return pool_error(pool, &e.to_string());
            }
            node = (*node).next;
        }
        IN_INTERPRETER_OPTIONS.store(true, Ordering::Relaxed);
        let err = sys::ap_walk_config(first, cmd, (*cmd).context);
        IN_INTERPRETER_OPTIONS.store(false, Ordering::Relaxed);
        err
    }
}

/// A directive inside `<WSGIInterpreterOptions>`: it sets the block, not the server.
fn apply_in_interpreter_options(
    cmd: *mut sys::cmd_parms,
    directive: &Directive,
    argv: &[String],
) -> *const c_char {
    // SAFETY: cmd is the live cmd_parms of the directive being read.
    let (pool, config) = unsafe { ((*cmd).pool, server_config_of(cmd)) };
    match directive.apply_in_interpreter_options(
        config,
        argv,
        mod_wsgi_engine::PYTHON_VERSION,
        mod_wsgi_engine::PYTHON_FREE_THREADED,
    ) {
        Ok(()) => std::ptr::null(),
        Err(e) => pool_error(pool, &e),
    }
}
