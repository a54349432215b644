//! The module record Apache loads (`wsgi_module`, name "mod_wsgi.c"), its command table
//! built from the directive table, and hook registration.

use super::config::{
    create_dir_config, create_server_config, merge_dir_config, merge_server_config,
};
use super::directives::set_directive;
use super::{hooks, sys};
use mod_wsgi_config::directives::{DIRECTIVES, Scope};
use std::ptr::{null, null_mut};

const COMMAND_COUNT: usize = DIRECTIVES.len();

#[repr(transparent)]
pub struct CommandTable([sys::command_rec; COMMAND_COUNT + 1]);

// SAFETY: the table is immutable after construction; the raw pointers in it point to
// 'static C strings and functions.
unsafe impl Sync for CommandTable {}

const fn req_override(scope: Scope) -> i32 {
    match scope {
        Scope::Global | Scope::Server => sys::RSRC_CONF,
        Scope::Directory => sys::RSRC_CONF | sys::ACCESS_CONF,
        Scope::DirectoryHtaccess => sys::RSRC_CONF | sys::ACCESS_CONF | sys::OR_FILEINFO,
        Scope::AuthConfig => sys::OR_AUTHCFG,
    }
}

const fn command_table() -> CommandTable {
    let terminator = sys::command_rec {
        name: null(),
        func: sys::cmd_func { raw_args: None },
        cmd_data: null_mut(),
        req_override: 0,
        args_how: 0,
        errmsg: null(),
    };
    let mut table = [terminator; COMMAND_COUNT + 1];
    let mut i = 0;
    while i < COMMAND_COUNT {
        let d = &DIRECTIVES[i];
        table[i] = sys::command_rec {
            name: d.name.as_ptr(),
            func: sys::cmd_func {
                raw_args: Some(set_directive),
            },
            cmd_data: null_mut(),
            req_override: req_override(d.scope),
            args_how: sys::RAW_ARGS,
            errmsg: d.usage.as_ptr(),
        };
        i += 1;
    }
    CommandTable(table)
}

static COMMANDS: CommandTable = command_table();

/// A NULL-terminated list of module names, the form APR hook ordering takes.
pub(super) struct ModuleNames<const N: usize>(pub(super) [*const std::os::raw::c_char; N]);
// SAFETY: the pointers are to 'static C string literals that nothing writes.
unsafe impl<const N: usize> Sync for ModuleNames<N> {}

/// Like C mod_wsgi: `Alias` (mod_alias) wins over a `WSGIScriptAlias` covering the same
/// URL, and WSGIScriptAlias wins over mod_userdir and mod_vhost_alias.
static TRANSLATE_AFTER: ModuleNames<2> = ModuleNames([c"mod_alias.c".as_ptr(), null()]);
static TRANSLATE_BEFORE: ModuleNames<3> = ModuleNames([
    c"mod_userdir.c".as_ptr(),
    c"mod_vhost_alias.c".as_ptr(),
    null(),
]);

unsafe extern "C" fn register_hooks(pool: *mut sys::apr_pool_t) {
    // SAFETY: called by Apache while loading the module; the hook functions are 'static.
    unsafe {
        sys::ap_hook_post_config(
            Some(hooks::post_config),
            null(),
            null(),
            sys::APR_HOOK_MIDDLE,
        );
        sys::ap_hook_pre_config(
            Some(hooks::pre_config),
            null(),
            null(),
            sys::APR_HOOK_MIDDLE,
        );
        sys::ap_hook_check_config(
            Some(hooks::check_config),
            null(),
            null(),
            sys::APR_HOOK_MIDDLE,
        );
        sys::ap_hook_child_init(
            Some(hooks::child_init),
            null(),
            null(),
            sys::APR_HOOK_MIDDLE,
        );
        sys::ap_hook_translate_name(
            Some(hooks::translate_name),
            TRANSLATE_AFTER.0.as_ptr(),
            TRANSLATE_BEFORE.0.as_ptr(),
            sys::APR_HOOK_MIDDLE,
        );
        sys::ap_hook_handler(Some(hooks::handler), null(), null(), sys::APR_HOOK_MIDDLE);
        sys::ap_hook_monitor(Some(hooks::monitor), null(), null(), sys::APR_HOOK_MIDDLE);
        sys::ap_hook_log_transaction(
            Some(hooks::log_transaction),
            null(),
            null(),
            sys::APR_HOOK_MIDDLE,
        );
        super::phases::register(pool);
    }
}

/// The module record. It must be a `static mut`: httpd writes module_index, next and
/// dynamic_load_handle into it.
#[unsafe(no_mangle)]
pub static mut wsgi_module: sys::module = sys::module {
    version: sys::MODULE_MAGIC_NUMBER_MAJOR,
    minor_version: sys::MODULE_MAGIC_NUMBER_MINOR,
    module_index: -1,
    name: c"mod_wsgi.c".as_ptr(),
    dynamic_load_handle: null_mut(),
    next: null_mut(),
    magic: sys::MODULE_MAGIC_COOKIE as std::os::raw::c_ulong,
    rewrite_args: None,
    create_dir_config: Some(create_dir_config),
    merge_dir_config: Some(merge_dir_config),
    create_server_config: Some(create_server_config),
    merge_server_config: Some(merge_server_config),
    cmds: &raw const COMMANDS.0 as *const sys::command_rec,
    register_hooks: Some(register_hooks),
    flags: 0,
};

pub fn module_ptr() -> *const sys::module {
    &raw const wsgi_module
}

pub fn module_index() -> i32 {
    // SAFETY: module_index is written by httpd while loading the module, before any hook
    // runs, and only read afterwards.
    unsafe { (*module_ptr()).module_index }
}
