//! Per-server and per-directory configuration objects: Rust values owned by Apache pools
//! (dropped by a pool cleanup), and the create/merge callbacks of the module record.

use super::pool::into_pool;
use super::sys;
use super::trampoline::guard;
use mod_wsgi_config::{
    AliasOptions, DaemonSpec, DirConfig, ImportScript, Merge, PythonConfig, SharedStoreSpec,
};
use mod_wsgi_daemon::ScriptOwner;
use mod_wsgi_os::identity::Account;
use std::ffi::c_void;

/// A compiled `WSGIScriptAliasMatch` pattern, allocated and freed by the config pool.
#[derive(Clone, Copy)]
pub struct CompiledRegex(pub *mut sys::ap_regex_t);

// SAFETY: the regex is compiled once at config time and only read afterwards (ap_regexec
// is thread-safe); it lives as long as the config pool, which outlives every request.
unsafe impl Send for CompiledRegex {}
// SAFETY: as above.
unsafe impl Sync for CompiledRegex {}

#[derive(Clone)]
pub enum AliasMatcher {
    Prefix(String),
    Regex(CompiledRegex),
}

/// One WSGIScriptAlias or WSGIScriptAliasMatch.
#[derive(Clone)]
pub struct ScriptAlias {
    pub matcher: AliasMatcher,
    pub target: String,
    pub options: AliasOptions,
    /// "file:line" of the directive.
    pub location: String,
}

/// A `WSGIDaemonProcess` as read, with its accounts resolved at config time.
#[derive(Clone)]
pub struct DaemonDefinition {
    pub spec: DaemonSpec,
    pub user: Option<Account>,
    pub gid: Option<u32>,
    pub supplementary_gids: Vec<u32>,
    pub socket_user: Option<Account>,
    /// `script-user=` (uid) or `script-group=` (gid): who must own the group's scripts.
    pub script_owner: Option<ScriptOwner>,
    /// "file:line" of the directive, for later error messages.
    pub defined_at: String,
}

/// A `WSGISharedStore` as read.
#[derive(Clone)]
pub struct StoreDefinition {
    pub spec: SharedStoreSpec,
    /// "file:line" of the directive.
    pub defined_at: String,
}

/// Configuration of one server (main or virtual host).
#[derive(Clone, Default)]
pub struct ServerConfig {
    pub aliases: Vec<ScriptAlias>,
    /// Groups defined in this server's own scope (not inherited by virtual hosts).
    pub daemons: Vec<DaemonDefinition>,
    /// WSGIImportScript lines of this server's own scope.
    pub imports: Vec<ImportScript>,
    /// Only meaningful on the main server; the directives are GLOBAL_ONLY.
    pub python: PythonConfig,
    pub socket_prefix: Option<String>,
    /// WSGISharedStore lines (main server only; the directive is GLOBAL_ONLY).
    pub stores: Vec<StoreDefinition>,
}

pub unsafe extern "C" fn create_server_config(
    pool: *mut sys::apr_pool_t,
    _s: *mut sys::server_rec,
) -> *mut c_void {
    // SAFETY: Apache passes its live config pool.
    guard("create_server_config", std::ptr::null_mut(), || unsafe {
        into_pool(pool, ServerConfig::default()).cast()
    })
}

pub unsafe extern "C" fn merge_server_config(
    pool: *mut sys::apr_pool_t,
    base: *mut c_void,
    add: *mut c_void,
) -> *mut c_void {
    guard("merge_server_config", std::ptr::null_mut(), || {
        // SAFETY: both pointers were produced by create_server_config and live in the
        // config pool for this whole configuration pass.
        let (base, add) = unsafe { (&*base.cast::<ServerConfig>(), &*add.cast::<ServerConfig>()) };
        let mut aliases = add.aliases.clone();
        aliases.extend(base.aliases.iter().cloned());
        let merged = ServerConfig {
            aliases,
            daemons: add.daemons.clone(),
            imports: add.imports.clone(),
            python: base.python.clone(),
            socket_prefix: base.socket_prefix.clone(),
            stores: base.stores.clone(),
        };
        // SAFETY: Apache passes its live config pool.
        unsafe { into_pool(pool, merged).cast() }
    })
}

pub unsafe extern "C" fn create_dir_config(
    pool: *mut sys::apr_pool_t,
    _dir: *mut std::os::raw::c_char,
) -> *mut c_void {
    // SAFETY: Apache passes a live pool.
    guard("create_dir_config", std::ptr::null_mut(), || unsafe {
        into_pool(pool, DirConfig::default()).cast()
    })
}

pub unsafe extern "C" fn merge_dir_config(
    pool: *mut sys::apr_pool_t,
    base: *mut c_void,
    add: *mut c_void,
) -> *mut c_void {
    guard("merge_dir_config", std::ptr::null_mut(), || {
        // SAFETY: both were produced by create/merge_dir_config in pools that outlive `pool`.
        let merged = unsafe { (*base.cast::<DirConfig>()).merge(&*add.cast::<DirConfig>()) };
        // SAFETY: Apache passes a live pool (the request pool at request time).
        unsafe { into_pool(pool, merged).cast() }
    })
}

/// This module's config in a `module_config`/`per_dir_config` vector.
///
/// # Safety
/// `vector` must be a live config vector of the current configuration generation, and
/// `T` the type this module stored in it.
pub unsafe fn lookup<'a, T>(vector: *mut sys::ap_conf_vector_t) -> Option<&'a T> {
    // SAFETY: per the caller; the entry is null only if no config was created.
    unsafe {
        let ptr = sys::ap_get_module_config(vector, super::module::module_ptr());
        ptr.cast::<T>().as_ref()
    }
}

/// Server config of `s`.
///
/// # Safety
/// `s` must be a live server_rec of the current generation.
pub unsafe fn server_config<'a>(s: *const sys::server_rec) -> Option<&'a ServerConfig> {
    // SAFETY: per the caller.
    unsafe { lookup((*s).module_config) }
}
