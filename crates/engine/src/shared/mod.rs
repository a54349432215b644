//! Data shared by every process of the server: the `WSGISharedStore` stores (in shared
//! memory, `memory.rs`, or Redis, `redis.rs`), the broadcast bus, and the metrics
//! (`metrics.rs`). The Apache parent opens them before it forks (`apache/stores.rs`) and
//! installs them here; children and daemons inherit the mapping and the registry, and
//! Python reaches them through `python/shared.rs`.

mod memory;
pub mod metrics;
mod ops;
mod redis;

pub use ops::{Failure, Op, Reply, StatValue};
pub use redis::Redis;

use mod_wsgi_config::StoreAccess;
use mod_wsgi_store::{SharedStore, Value};
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};

/// Where a store's keys live.
pub enum Backend {
    Memory(SharedStore),
    Redis(Redis),
}

impl Backend {
    pub fn execute(&self, store: &str, op: Op) -> Result<Reply, Failure> {
        match self {
            Backend::Memory(m) => memory::execute(store, m, op),
            Backend::Redis(r) => redis::execute(store, r, op),
        }
    }

    /// How full the store (called `store` in messages) is; None where the backend
    /// cannot tell cheaply.
    pub fn stats(&self, store: &str) -> Option<mod_wsgi_store::Stats> {
        match self {
            Backend::Memory(m) => memory::locked(store, m, |table, _| Ok(table.stats())).ok(),
            Backend::Redis(_) => None,
        }
    }
}

/// One `WSGISharedStore`.
pub struct Store {
    pub name: String,
    pub backend: Backend,
    pub access: StoreAccess,
    /// "file:line" of the directive, for messages.
    pub defined_at: String,
}

/// The internal stores of the processes that run as one Unix user: the broadcast bus and
/// the application metrics. Each user has its own, so no process can write into memory
/// that processes of another user read.
pub struct Partition {
    pub uid: u32,
    pub bus: SharedStore,
    pub app_metrics: SharedStore,
}

/// The stores of this server generation.
#[derive(Default)]
pub struct Registry {
    pub stores: Vec<Store>,
    /// Stores this process may not use, with the reason to give.
    pub denied: Vec<(String, String)>,
    /// Every user's internal stores in the parent and in Apache's children (which render
    /// the metrics of all); only its own user's in a daemon process.
    pub partitions: Vec<Partition>,
    /// The user this process runs as: whose partition it writes.
    pub uid: u32,
}

impl Registry {
    fn own(&self) -> Option<&Partition> {
        self.partitions.iter().find(|p| p.uid == self.uid)
    }
}

/// In a freshly forked daemon process of `process_group`, running as `uid` (or, with
/// None, in an Apache child): drops and unmaps every store this process may not use and
/// the other users' internal stores, so another tenant's data is not even mapped here.
pub fn restrict_to(process_group: Option<&str>, uid: u32, apache_uid: u32) {
    let mut slot = REGISTRY.write().unwrap_or_else(|p| p.into_inner());
    let Some(current) = slot.take() else {
        return;
    };
    // A freshly forked process holds no other reference; should one exist, the
    // registry is rebuilt from it without unmapping anything it still uses.
    let registry = match Arc::try_unwrap(current) {
        Ok(registry) => registry,
        Err(shared) => {
            *slot = Some(shared);
            tracing::error!(
                "WSGI1139: cannot restrict the shared stores of this process: the registry is in use"
            );
            return;
        }
    };
    let mut kept = Registry {
        uid,
        ..Registry::default()
    };
    let who = process_group.map_or_else(
        || "Apache's children (embedded mode)".to_owned(),
        |g| format!("process group '{g}'"),
    );
    for store in registry.stores {
        if store.access.allows(process_group, uid, apache_uid) {
            kept.stores.push(store);
            continue;
        }
        let how = match (process_group, &store.access.process_groups) {
            (None, _) => "it has embedded=Off".to_owned(),
            (Some(_), Some(groups)) => format!(
                "it lists process-groups={}; add this group there to share it",
                groups.join(",")
            ),
            (Some(_), None) => "without process-groups= a store is only for processes that run as Apache's user; list the groups that may use it with process-groups=".to_owned(),
        };
        kept.denied.push((
            store.name.clone(),
            format!(
                "shared store '{}' is not available to {who}: WSGISharedStore {} ({}) {how}",
                store.name, store.name, store.defined_at
            ),
        ));
        if let Backend::Memory(memory) = store.backend {
            memory.unmap();
        }
    }
    for partition in registry.partitions {
        if process_group.is_none() || partition.uid == uid {
            kept.partitions.push(partition);
        } else {
            partition.bus.unmap();
            partition.app_metrics.unmap();
        }
    }
    *slot = Some(Arc::new(kept));
}

static REGISTRY: RwLock<Option<Arc<Registry>>> = RwLock::new(None);

/// Makes `registry` the one this process (and the processes it forks) use.
pub fn install(registry: Registry) {
    *REGISTRY.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(registry));
}

pub fn registry() -> Option<Arc<Registry>> {
    REGISTRY.read().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Runs `op` on the store called `name`.
pub fn execute(name: &str, op: Op) -> Result<Reply, Failure> {
    let registry = registry().ok_or_else(|| Failure::Unknown(name.to_owned(), Vec::new()))?;
    if let Some((_, why)) = registry.denied.iter().find(|(n, _)| n == name) {
        return Err(Failure::Denied(why.clone()));
    }
    match registry.stores.iter().find(|s| s.name == name) {
        Some(store) => store.backend.execute(name, op),
        None => Err(Failure::Unknown(
            name.to_owned(),
            registry.stores.iter().map(|s| s.name.clone()).collect(),
        )),
    }
}

/// Why this process may not use the store called `name`, if that is the case.
pub fn denied_reason(name: &str) -> Option<String> {
    let registry = registry()?;
    registry
        .denied
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, why)| why.clone())
}

/// Names of the configured stores.
pub fn store_names() -> Vec<String> {
    registry()
        .map(|r| r.stores.iter().map(|s| s.name.clone()).collect())
        .unwrap_or_default()
}

/// The bus's change counter: bumped by every broadcast, read on every request.
pub fn bus_sequence() -> Option<u64> {
    let registry = registry()?;
    Some(registry.own()?.bus.sequence().load(Ordering::Acquire))
}

/// Runs `f` on one of the internal stores every registry has (`select` picks it).
fn with_internal<T>(
    what: &str,
    select: fn(&Registry) -> Option<&SharedStore>,
    f: impl FnOnce(&SharedStore) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let registry = registry();
    match registry.as_deref().and_then(select) {
        Some(store) => f(store),
        None => Err(Failure::Unavailable(format!("no {what} in this process"))),
    }
}

fn with_bus<T>(f: impl FnOnce(&SharedStore) -> Result<T, Failure>) -> Result<T, Failure> {
    with_internal("broadcast bus", |r| r.own().map(|p| &p.bus), f)
}

/// The generation and latest message of `topic` (0 and None before its first broadcast).
pub fn topic_state(topic: &[u8]) -> Result<(i64, Option<Value>), Failure> {
    with_bus(|bus| memory::topic_state(bus, topic))
}

/// Publishes `message` on `topic`: bumps the topic's generation, stores the message, then
/// the bus sequence every process looks at before its next request.
pub fn broadcast(topic: &[u8], message: Option<Value>) -> Result<i64, Failure> {
    with_bus(|bus| {
        let generation = memory::publish(bus, topic, message)?;
        bus.sequence().fetch_add(1, Ordering::AcqRel);
        Ok(generation)
    })
}

fn with_app_metrics<T>(f: impl FnOnce(&SharedStore) -> Result<T, Failure>) -> Result<T, Failure> {
    with_internal("metrics store", |r| r.own().map(|p| &p.app_metrics), f)
}

/// Declares an application metric family (`mod_wsgi.metrics`).
pub fn declare_metric(family: &str, kind: &str, help: &str) -> Result<(), Failure> {
    if !mod_wsgi_metrics::valid_metric_name(family) {
        return Err(Failure::BadKey(format!("invalid metric name {family:?}")));
    }
    let key = mod_wsgi_metrics::meta_key(family);
    with_app_metrics(|store| memory::declare_family(store, &key, kind, help))
}

/// Applies (sample, value, set-instead-of-add) updates to one family at once.
pub fn update_metric(family: &str, updates: &[(String, f64, bool)]) -> Result<(), Failure> {
    if let Some((sample, ..)) = updates
        .iter()
        .find(|(sample, ..)| !mod_wsgi_metrics::valid_sample(family, sample))
    {
        return Err(Failure::BadKey(format!(
            "invalid sample {sample:?} of metric {family:?}"
        )));
    }
    let updates: Vec<(Vec<u8>, f64, bool)> = updates
        .iter()
        .map(|(sample, v, set)| (mod_wsgi_metrics::sample_key(family, sample), *v, *set))
        .collect();
    with_app_metrics(|store| memory::update_floats(store, &updates))
}
