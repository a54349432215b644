//! The `WSGISharedStore` stores, the broadcast bus and the application metrics memory,
//! opened in the Apache parent before any child or daemon is forked, so that every
//! process inherits the same memory.
//!
//! A store outlives graceful and hard restarts: its address, size and file are kept in
//! the restart record (`KeptMapping`), and the next generation (new code, same process)
//! takes the mapping over when the definition is unchanged. A removed or resized store is
//! unmapped in the parent (processes of the old generation keep their own inherited
//! mapping until they exit). Everything is gone when Apache stops, unless `file=` backs
//! the store.

use crate::restart_record::KeptMapping;
use crate::shared::{Backend, Partition, Redis, Registry, Store};
use mod_wsgi_config::{ServerConfig, StoreBackend};
use mod_wsgi_redis::{Endpoint, RedisStore};
use mod_wsgi_store::{Opened, SharedStore};
use std::path::Path;
use std::time::Duration;

/// The broadcast bus: an internal store for topic generations and their latest message.
pub const BUS_SIZE: usize = 1 << 20;
/// The bus's name in the record (user store names cannot be empty).
const BUS_NAME: &str = "";
/// Application metrics (`mod_wsgi.metrics`), kept as entries of an internal store.
pub const APP_METRICS_SIZE: usize = 4 << 20;
/// Its name in the record ('#' cannot start a user store's name).
const APP_METRICS_NAME: &str = "#metrics";

/// The users whose processes get internal stores of their own: Apache's, then each
/// daemon group's `user=` in the order defined, each once.
pub fn partition_uids(apache_uid: u32, configs: &[&ServerConfig]) -> Vec<u32> {
    let mut uids = vec![apache_uid];
    for d in configs.iter().flat_map(|c| c.daemons.iter()) {
        if let Some(account) = &d.user
            && !uids.contains(&account.uid)
        {
            uids.push(account.uid);
        }
    }
    uids
}

/// The names of a user's bus and application metrics in the record. Apache's user keeps
/// the names earlier versions used, so its memory is kept across a restart into this
/// version.
pub fn partition_names(uid: u32, apache_uid: u32) -> (String, String) {
    if uid == apache_uid {
        (BUS_NAME.to_owned(), APP_METRICS_NAME.to_owned())
    } else {
        (format!("#bus:{uid}"), format!("{APP_METRICS_NAME}:{uid}"))
    }
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
    // SAFETY: the record names mappings made by earlier generations of this module in
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

/// Opens every store of `main` (the main server's config) and each user's (`uids`) bus
/// and metrics memory, taking over what `previous` (the previous generation's record)
/// holds unchanged and unmapping the rest. Returns the registry to install and the
/// mappings to record for the next generation.
pub fn open_stores(
    main: &ServerConfig,
    uids: &[u32],
    apache_uid: u32,
    mut previous: Vec<KeptMapping>,
) -> Result<(Registry, Vec<KeptMapping>), String> {
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
        let (bus_name, metrics_name) = partition_names(uid, apache_uid);
        let (bus, _) = open_memory(&mut previous, &bus_name, BUS_SIZE, None)
            .map_err(|e| format!("broadcast bus: {e}"))?;
        note(&bus_name, BUS_SIZE, "", &bus);
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
    let registry = Registry {
        stores,
        denied: Vec::new(),
        partitions,
        uid: apache_uid,
    };
    Ok((registry, kept))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mod_wsgi_config::{DaemonDefinition, DaemonSpec, SharedStoreSpec, StoreDefinition};
    use mod_wsgi_os::identity::Account;

    fn config(stores: &[&str]) -> ServerConfig {
        ServerConfig {
            stores: stores
                .iter()
                .map(|line| StoreDefinition {
                    spec: SharedStoreSpec::parse(
                        &line
                            .split_whitespace()
                            .map(str::to_owned)
                            .collect::<Vec<_>>(),
                    )
                    .unwrap(),
                    defined_at: "httpd.conf:3".to_owned(),
                })
                .collect(),
            ..ServerConfig::default()
        }
    }

    fn daemon_as(uid: Option<u32>) -> DaemonDefinition {
        DaemonDefinition {
            spec: DaemonSpec::parse(&["app".to_owned()]).unwrap(),
            user: uid.map(|uid| Account {
                name: format!("u{uid}"),
                uid,
                gid: uid,
                home: "/".to_owned(),
            }),
            gid: None,
            supplementary_gids: Vec::new(),
            socket_user: None,
            script_owner: None,
            defined_at: "httpd.conf:9".to_owned(),
        }
    }

    #[test]
    fn partitions_are_apaches_user_then_each_daemon_user_once() {
        let main = ServerConfig {
            daemons: vec![daemon_as(Some(1001)), daemon_as(None), daemon_as(Some(33))],
            ..ServerConfig::default()
        };
        let vhost = ServerConfig {
            daemons: vec![daemon_as(Some(1002)), daemon_as(Some(1001))],
            ..ServerConfig::default()
        };
        assert_eq!(partition_uids(33, &[&main, &vhost]), [33, 1001, 1002]);
        assert_eq!(partition_uids(33, &[]), [33]);
    }

    #[test]
    fn apaches_user_keeps_the_earlier_names() {
        assert_eq!(
            partition_names(33, 33),
            (String::new(), "#metrics".to_owned())
        );
        assert_eq!(
            partition_names(1001, 33),
            ("#bus:1001".to_owned(), "#metrics:1001".to_owned())
        );
    }

    #[test]
    fn stores_and_partitions_are_opened_and_recorded() {
        let main = config(&["sessions size=128K", "cache size=256K"]);
        let (registry, kept) = open_stores(&main, &[33, 1001], 33, Vec::new()).unwrap();
        let names: Vec<&str> = registry.stores.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["sessions", "cache"]);
        assert_eq!(registry.uid, 33);
        let uids: Vec<u32> = registry.partitions.iter().map(|p| p.uid).collect();
        assert_eq!(uids, [33, 1001]);
        let recorded: Vec<(&str, usize)> = kept.iter().map(|k| (k.name.as_str(), k.size)).collect();
        assert_eq!(
            recorded,
            [
                ("sessions", 128 << 10),
                ("cache", 256 << 10),
                ("", BUS_SIZE),
                ("#metrics", APP_METRICS_SIZE),
                ("#bus:1001", BUS_SIZE),
                ("#metrics:1001", APP_METRICS_SIZE),
            ]
        );
    }

    #[test]
    fn unchanged_stores_are_taken_over_and_changed_ones_replaced() {
        let (first, kept) = open_stores(
            &config(&["a size=128K", "b size=128K"]),
            &[33],
            33,
            Vec::new(),
        )
        .unwrap();
        let address = |registry: &Registry, name: &str| {
            registry
                .stores
                .iter()
                .find(|s| s.name == name)
                .map(|s| match &s.backend {
                    Backend::Memory(m) => m.address(),
                    Backend::Redis(_) => 0,
                })
                .unwrap()
        };
        let bus = first.partitions[0].bus.address();
        // b is resized and c is new; a and the bus are kept where they were.
        let (second, kept) = open_stores(
            &config(&["a size=128K", "b size=256K", "c size=128K"]),
            &[33],
            33,
            kept,
        )
        .unwrap();
        assert_eq!(address(&second, "a"), address(&first, "a"));
        assert_ne!(address(&second, "b"), address(&first, "b"));
        assert_eq!(second.partitions[0].bus.address(), bus);
        assert_eq!(kept.len(), 5);
        assert!(kept.iter().any(|k| k.name == "b" && k.size == 256 << 10));
    }

    #[test]
    fn a_store_file_that_cannot_be_made_names_the_store() {
        let main = config(&["s size=128K file=/nonexistent-dir/s.store"]);
        let err = open_stores(&main, &[33], 33, Vec::new()).err().unwrap();
        assert!(
            err.starts_with("WSGISharedStore 's' (httpd.conf:3): "),
            "{err}"
        );
    }
}
