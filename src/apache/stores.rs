//! Opens the `WSGISharedStore` stores, the broadcast bus and the metrics memory in the
//! Apache parent, before any child or daemon is forked, so that every process inherits
//! the same memory.
//!
//! A store outlives graceful and hard restarts: its address, size and file are written to
//! the process pool's userdata, and the next generation (new code, same process) takes the
//! mapping over when the definition is unchanged. A removed or resized store is unmapped
//! in the parent (processes of the old generation keep their own inherited mapping until
//! they exit). Everything is gone when Apache stops, unless `file=` backs the store.

use super::config::{ServerConfig, server_config};
use super::pool::{read_record, update_record};
use super::sys;
use crate::shared::{Backend, Partition, Redis, Registry, Store};
use mod_wsgi_config::StoreBackend;
use mod_wsgi_daemon::restart_record::KeptMapping;
use mod_wsgi_metrics::WORDS;
use mod_wsgi_redis::{Endpoint, RedisStore};
use mod_wsgi_store::{Opened, SharedStore, SharedWords};
use std::path::Path;
use std::time::Duration;

/// The broadcast bus: an internal store for topic generations and their latest message.
const BUS_SIZE: usize = 1 << 20;
/// The bus's name in the userdata (user store names cannot be empty).
const BUS_NAME: &str = "";
/// Application metrics (`mod_wsgi.metrics`), kept as entries of an internal store.
const APP_METRICS_SIZE: usize = 4 << 20;
/// Its name in the userdata ('#' cannot start a user store's name).
const APP_METRICS_NAME: &str = "#metrics";

fn previous(process_pool: *mut sys::apr_pool_t) -> Vec<KeptMapping> {
    read_record(process_pool).mappings
}

/// Takes over the previous generation's mapping of (`name`, `size`, `file`), if any.
fn reuse(
    previous: &mut Vec<KeptMapping>,
    name: &str,
    size: usize,
    file: &str,
) -> Option<SharedStore> {
    let at = previous
        .iter()
        .position(|p| p.name == name && p.size == size && p.file == file)?;
    let p = previous.swap_remove(at);
    // SAFETY: the userdata names mappings made by earlier generations of this module in
    // this process; each entry is taken over once (removed from the list here) and only
    // unmapped when it is not taken over.
    unsafe { SharedStore::from_raw(p.address, p.size) }
}

fn open_memory(
    previous: &mut Vec<KeptMapping>,
    name: &str,
    size: usize,
    file: Option<&str>,
) -> Result<(SharedStore, &'static str), String> {
    if let Some(store) = reuse(previous, name, size, file.unwrap_or("")) {
        return Ok((store, "kept across the restart"));
    }
    match file {
        None => SharedStore::anonymous(size)
            .map(|s| (s, "new"))
            .map_err(|e| e.to_string()),
        Some(path) => match SharedStore::file(Path::new(path), size) {
            Ok((s, Opened::Kept)) => Ok((s, "keys kept from its file")),
            Ok((s, Opened::Empty)) => Ok((s, "new file")),
            Err(e) => Err(e.to_string()),
        },
    }
}

/// Opens the stores of the main server `s` and the bus (see `open`).
///
/// # Safety
/// `s` must be the live main server of this configuration pass.
pub unsafe fn open_for(s: *mut sys::server_rec) -> Result<(), String> {
    // SAFETY: per the caller; the process record outlives every generation.
    let (process_pool, main) = unsafe { ((*(*s).process).pool, server_config(s)) };
    let (apache_uid, _, _) = super::daemons::apache_user();
    let mut uids = vec![apache_uid];
    let mut cur = s;
    while !cur.is_null() {
        // SAFETY: the server list is live for this configuration pass.
        let (config, next) = unsafe { (server_config(cur), (*cur).next) };
        for d in config.map(|c| c.daemons.as_slice()).unwrap_or_default() {
            if let Some(account) = &d.user
                && !uids.contains(&account.uid)
            {
                uids.push(account.uid);
            }
        }
        cur = next;
    }
    match main {
        Some(main) => open(process_pool, main, &uids, apache_uid),
        None => open(process_pool, &ServerConfig::default(), &uids, apache_uid),
    }
}

/// Opens every store of `main` (the main server's config) and the bus, records them for
/// the next generation and installs them for this process and its future children.
fn open(
    process_pool: *mut sys::apr_pool_t,
    main: &ServerConfig,
    uids: &[u32],
    apache_uid: u32,
) -> Result<(), String> {
    let mut previous = previous(process_pool);
    let mut kept = Vec::new();
    let mut note = |name: &str, size: usize, file: &str, store: &SharedStore| {
        kept.push(KeptMapping {
            name: name.to_owned(),
            size,
            file: file.to_owned(),
            address: store.address(),
        });
    };
    let mut stores = Vec::new();
    for definition in &main.stores {
        let name = &definition.spec.name;
        match &definition.spec.backend {
            StoreBackend::Memory { size, file } => {
                let size = usize::try_from(*size)
                    .map_err(|_| format!("WSGISharedStore '{name}': size too large"))?;
                let (store, how) = open_memory(&mut previous, name, size, file.as_deref())
                    .map_err(|e| {
                        format!("WSGISharedStore '{name}' ({}): {e}", definition.defined_at)
                    })?;
                note(name, size, file.as_deref().unwrap_or(""), &store);
                tracing::info!(
                    "WSGI1131: shared store '{name}': {} KiB of shared memory ({how})",
                    size >> 10
                );
                stores.push(Store {
                    name: name.clone(),
                    backend: Backend::Memory(store),
                    access: definition.spec.access.clone(),
                    defined_at: definition.defined_at.clone(),
                });
            }
            StoreBackend::Redis {
                host,
                port,
                db,
                username,
                password,
                prefix,
                timeout_ms,
            } => {
                let endpoint = Endpoint {
                    host: host.clone(),
                    port: *port,
                    db: *db,
                    username: username.clone(),
                    password: password.clone(),
                    timeout: Duration::from_millis(*timeout_ms),
                };
                let store = RedisStore::new(endpoint, prefix);
                // A cache server may come up after Apache: warn now, connect on first use.
                match store.ping() {
                    Ok(()) => tracing::info!(
                        "WSGI1131: shared store '{name}': {} (keys under '{prefix}')",
                        store.endpoint()
                    ),
                    Err(e) => tracing::warn!(
                        "WSGI1135: shared store '{name}' ({}): {e}; requests that use it \
                         get SharedStoreUnavailable until it answers",
                        definition.defined_at
                    ),
                }
                stores.push(Store {
                    name: name.clone(),
                    backend: Backend::Redis(Redis::new(store)),
                    access: definition.spec.access.clone(),
                    defined_at: definition.defined_at.clone(),
                });
            }
        }
    }
    let mut partitions = Vec::new();
    for &uid in uids {
        // Apache's user keeps the names earlier versions used, so its memory is kept
        // across a restart into this version.
        let suffix = if uid == apache_uid {
            String::new()
        } else {
            format!(":{uid}")
        };
        let bus_name = if uid == apache_uid {
            BUS_NAME.to_owned()
        } else {
            format!("#bus{suffix}")
        };
        let (bus, _) = open_memory(&mut previous, &bus_name, BUS_SIZE, None)
            .map_err(|e| format!("broadcast bus: {e}"))?;
        note(&bus_name, BUS_SIZE, "", &bus);
        let metrics_name = format!("{APP_METRICS_NAME}{suffix}");
        let (app_metrics, _) = open_memory(&mut previous, &metrics_name, APP_METRICS_SIZE, None)
            .map_err(|e| format!("application metrics: {e}"))?;
        note(&metrics_name, APP_METRICS_SIZE, "", &app_metrics);
        partitions.push(Partition {
            uid,
            bus,
            app_metrics,
        });
    }
    for gone in previous {
        // SAFETY: as in `reuse`: a mapping of an earlier generation that nothing took over.
        if let Some(store) = unsafe { SharedStore::from_raw(gone.address, gone.size) } {
            tracing::info!(
                "WSGI1132: shared store '{}' removed or resized; its keys are dropped",
                gone.name
            );
            store.unmap();
        }
    }
    update_record(process_pool, |record| record.mappings = kept);
    crate::shared::install(Registry {
        stores,
        denied: Vec::new(),
        partitions,
        uid: apache_uid,
    });
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
