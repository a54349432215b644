//! Data shared by every process of the server: the `WSGISharedStore` stores (in shared
//! memory or Redis) and the broadcast bus. The Apache parent opens them before it forks
//! (`apache/stores.rs`) and installs them here; children and daemons inherit the mapping
//! and the registry, and Python reaches them through `python/shared.rs`.

mod memory;
mod ops;

pub use ops::{Failure, Op, Reply};

use mod_wsgi_store::{SharedStore, Value};
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};

/// Where a store's keys live.
pub enum Backend {
    Memory(SharedStore),
}

impl Backend {
    pub fn execute(&self, store: &str, op: Op) -> Result<Reply, Failure> {
        match self {
            Backend::Memory(m) => memory::execute(store, m, op),
        }
    }
}

/// The stores of this server generation.
#[derive(Default)]
pub struct Registry {
    pub stores: Vec<(String, Backend)>,
    /// The internal store broadcasts go through; None only before the parent set it up.
    pub bus: Option<SharedStore>,
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

fn with_bus<T>(f: impl FnOnce(&SharedStore) -> Result<T, Failure>) -> Result<T, Failure> {
    let registry = registry()
        .ok_or_else(|| Failure::Unavailable("no broadcast bus in this process".to_owned()))?;
    match registry.bus.as_ref() {
        Some(bus) => f(bus),
        None => Err(Failure::Unavailable(
            "no broadcast bus in this process".to_owned(),
        )),
    }
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
