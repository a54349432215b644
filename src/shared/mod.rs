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

/// The stores of this server generation.
#[derive(Default)]
pub struct Registry {
    pub stores: Vec<(String, Backend)>,
    /// The internal store broadcasts go through; None only before the parent set it up.
    pub bus: Option<SharedStore>,
    /// The internal store application metrics live in.
    pub app_metrics: Option<SharedStore>,
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
    match registry.stores.iter().find(|(n, _)| n == name) {
        Some((_, backend)) => backend.execute(name, op),
        None => Err(Failure::Unknown(
            name.to_owned(),
            registry.stores.iter().map(|(n, _)| n.clone()).collect(),
        )),
    }
}

/// Names of the configured stores.
pub fn store_names() -> Vec<String> {
    registry()
        .map(|r| r.stores.iter().map(|(n, _)| n.clone()).collect())
        .unwrap_or_default()
}

/// The bus's change counter: bumped by every broadcast, read on every request.
pub fn bus_sequence() -> Option<u64> {
    let registry = registry()?;
    Some(registry.bus.as_ref()?.sequence().load(Ordering::Acquire))
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
    with_internal("broadcast bus", |r| r.bus.as_ref(), f)
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
    with_internal("metrics store", |r| r.app_metrics.as_ref(), f)
}

/// Declares an application metric family (`mod_wsgi.metrics`).
pub fn declare_metric(family: &str, kind: &str, help: &str) -> Result<(), Failure> {
    let key = mod_wsgi_metrics::meta_key(family);
    with_app_metrics(|store| memory::declare_family(store, &key, kind, help))
}

/// Applies (sample, value, set-instead-of-add) updates to one family at once.
pub fn update_metric(family: &str, updates: &[(String, f64, bool)]) -> Result<(), Failure> {
    let updates: Vec<(Vec<u8>, f64, bool)> = updates
        .iter()
        .map(|(sample, v, set)| (mod_wsgi_metrics::sample_key(family, sample), *v, *set))
        .collect();
    with_app_metrics(|store| memory::update_floats(store, &updates))
}
