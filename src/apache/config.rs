//! Per-server and per-directory configuration objects: Rust values owned by Apache pools
//! (dropped by a pool cleanup), and the create/merge callbacks of the module record.

use super::pool::into_pool;
use super::sys;
use super::trampoline::guard;
pub use mod_wsgi_config::{AliasMatcher, DaemonDefinition, ScriptAlias, ServerConfig};
use mod_wsgi_config::{DirConfig, Merge};
use std::ffi::c_void;

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
        let merged = ServerConfig::under(base, add);
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
