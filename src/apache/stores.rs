//! Opens the `WSGISharedStore` stores, the broadcast bus and the metrics memory in the
//! Apache parent, before any child or daemon is forked, so that every process inherits
//! the same memory (`mod_wsgi_daemon::stores`), keeping them across restarts in the
//! process pool's userdata.

use super::config::{ServerConfig, server_config};
use super::pool::{read_record, update_record};
use super::sys;
use mod_wsgi_daemon::stores;
use mod_wsgi_metrics::WORDS;
use mod_wsgi_store::SharedWords;

/// Opens the stores of the main server `s` and the bus (see `open`).
///
/// # Safety
/// `s` must be the live main server of this configuration pass.
pub unsafe fn open_for(s: *mut sys::server_rec) -> Result<(), String> {
    // SAFETY: per the caller; the process record outlives every generation.
    let (process_pool, main) = unsafe { ((*(*s).process).pool, server_config(s)) };
    let (apache_uid, _, _) = super::daemons::apache_user();
    let configs = super::daemons::server_configs(s);
    let uids = stores::partition_uids(apache_uid, &configs);
    let default = ServerConfig::default();
    open(process_pool, main.unwrap_or(&default), &uids, apache_uid)
}

/// Opens every store of `main` (the main server's config) and the bus, records them for
/// the next generation and installs them for this process and its future children.
fn open(
    process_pool: *mut sys::apr_pool_t,
    main: &ServerConfig,
    uids: &[u32],
    apache_uid: u32,
) -> Result<(), String> {
    let previous = read_record(process_pool).mappings;
    let (registry, kept) = stores::open_stores(main, uids, apache_uid, previous)?;
    update_record(process_pool, |record| record.mappings = kept);
    crate::shared::install(registry);
    open_metrics(process_pool)
}

/// Maps the server metrics' words, or takes over the previous generation's (counters
/// keep counting across restarts), and registers embedded mode's group.
fn open_metrics(process_pool: *mut sys::apr_pool_t) -> Result<(), String> {
    let kept = read_record(process_pool)
        .metrics
        .filter(|&(_, n)| n == WORDS)
        // SAFETY: the userdata names the words an earlier generation of this module
        // mapped in this process; nothing else owns or unmapped them.
        .and_then(|(a, n)| unsafe { SharedWords::from_raw(a, n) });
    let words = match kept {
        Some(w) => w,
        None => SharedWords::anonymous(WORDS).map_err(|e| format!("server metrics: {e}"))?,
    };
    let count = words.count();
    if let Err(words) = crate::shared::metrics::install(words) {
        // Already installed by an earlier pass of this same load of the module.
        let installed = crate::shared::metrics::words_address();
        if installed != Some(words.address()) {
            words.unmap();
        }
    }
    // The record names the words in use (never ones just unmapped).
    if let Some(address) = crate::shared::metrics::words_address() {
        update_record(process_pool, |record| {
            record.metrics = Some((address, count))
        });
    }
    crate::shared::metrics::register_group("");
    Ok(())
}
