//! The shared-memory backend: each operation takes the store's lock, runs on the table
//! and lets go. A repair after a dead lock holder is logged once, by whoever noticed it.

use super::ops::{Failure, Op, Reply};
use mod_wsgi_store::{KeyKind, SharedStore, Table, TableError, Value, ValueRef, now_ms};

fn failure(store: &str, e: TableError) -> Failure {
    let text = format!("store '{store}': {e}");
    match e {
        TableError::Full(_) => Failure::Full(text),
        TableError::NotAnInteger => Failure::NotAnInteger(text),
        TableError::Overflow => Failure::Overflow(text),
        TableError::KeyTooLong(_) => Failure::BadKey(text),
        TableError::Corrupt(_) => Failure::Unavailable(text),
    }
}

fn expiry(ttl_ms: Option<i64>, now: i64) -> i64 {
    ttl_ms.map_or(0, |t| now.saturating_add(t.max(1)))
}

/// Runs `f` on the table of `store` (called `name` in messages) under its lock, with the
/// current time in ms; a repair after a dead lock holder is logged here.
pub(super) fn locked<T>(
    name: &str,
    store: &SharedStore,
    f: impl FnOnce(&mut Table<'_>, i64) -> Result<T, TableError>,
) -> Result<T, Failure> {
    let mut guard = store.lock().map_err(|e| {
        if matches!(e, mod_wsgi_store::StoreError::LockTimeout) {
            tracing::error!("WSGI1140: store '{name}': {e}");
        }
        Failure::Unavailable(format!("store '{name}': {e}"))
    })?;
    if let Some(r) = guard.repaired() {
        tracing::warn!(
            "WSGI1130: store '{name}': a process died while changing it; recounted \
             ({} damaged index entries removed{})",
            r.dropped,
            if r.reformatted {
                ", memory emptied"
            } else {
                ""
            }
        );
    }
    f(&mut guard.table(), now_ms()).map_err(|e| failure(name, e))
}

pub fn execute(name: &str, store: &SharedStore, op: Op) -> Result<Reply, Failure> {
    locked(name, store, |table, now| {
        Ok(match op {
            Op::Get(key) => Reply::Value(table.get(&key, now)?),
            Op::Set {
                key,
                kind,
                value,
                ttl_ms,
            } => {
                table.set(&key, kind, value.as_ref(), expiry(ttl_ms, now), now)?;
                Reply::Done
            }
            Op::Delete(key) => Reply::Bool(table.delete(&key, now)?),
            Op::Incr { key, kind, delta } => Reply::Int(table.incr(&key, kind, delta, now)?),
            Op::CompareAndSet {
                key,
                kind,
                expected,
                new,
                ttl_ms,
            } => Reply::Bool(table.compare_and_set(
                &key,
                kind,
                expected.as_ref().map(Value::as_ref),
                new.as_ref(),
                expiry(ttl_ms, now),
                now,
            )?),
            Op::Keys(prefix) => Reply::Keys(table.keys(&prefix, now)?),
            Op::Clear => {
                table.clear();
                Reply::Done
            }
            Op::Stats => Reply::memory_stats(table.stats()),
        })
    })
}

fn topic_key(what: &str, topic: &[u8]) -> Vec<u8> {
    let mut key = format!("{what}\0").into_bytes();
    key.extend_from_slice(topic);
    key
}

/// Bumps `topic`'s generation and stores its latest message, under one lock.
pub fn publish(bus: &SharedStore, topic: &[u8], message: Option<Value>) -> Result<i64, Failure> {
    locked("(broadcast)", bus, |table, now| {
        let message_key = topic_key("message", topic);
        match message {
            Some(m) => table.set(&message_key, KeyKind::Bytes, m.as_ref(), 0, now)?,
            None => drop(table.delete(&message_key, now)?),
        }
        table.incr(&topic_key("generation", topic), KeyKind::Bytes, 1, now)
    })
}

/// The generation and latest message of `topic` (0 and None before its first broadcast).
pub fn topic_state(bus: &SharedStore, topic: &[u8]) -> Result<(i64, Option<Value>), Failure> {
    locked("(broadcast)", bus, |table, now| {
        let generation = match table.get(&topic_key("generation", topic), now)? {
            Some(Value::Int(g)) => g,
            _ => 0,
        };
        Ok((generation, table.get(&topic_key("message", topic), now)?))
    })
}

/// Adds to (or sets) f64 values stored as 8 bytes, all under one lock, so a histogram's
/// buckets, sum and count move together.
pub fn update_floats(store: &SharedStore, updates: &[(Vec<u8>, f64, bool)]) -> Result<(), Failure> {
    locked("(metrics)", store, |table, now| {
        for (key, value, set) in updates {
            let current = match table.get(key, now)? {
                Some(Value::Bytes(b)) => b.try_into().map(f64::from_ne_bytes).unwrap_or(0.0),
                _ => 0.0,
            };
            let next = if *set { *value } else { current + value };
            table.set(
                key,
                KeyKind::Bytes,
                ValueRef::Bytes(&next.to_ne_bytes()),
                0,
                now,
            )?;
        }
        Ok(())
    })
}

/// Records a metric family's "type\nhelp" once; the type of an existing family must match.
pub fn declare_family(
    store: &SharedStore,
    key: &[u8],
    kind: &str,
    help: &str,
) -> Result<(), Failure> {
    let existing = locked("(metrics)", store, |table, now| {
        match table.get(key, now)? {
            Some(Value::Str(existing)) => Ok(Some(existing)),
            _ => table
                .set(
                    key,
                    KeyKind::Bytes,
                    ValueRef::Str(&format!("{kind}\n{help}")),
                    0,
                    now,
                )
                .map(|()| None),
        }
    })?;
    match existing
        .as_deref()
        .map(|e| e.split('\n').next().unwrap_or(""))
    {
        Some(existing_kind) if existing_kind != kind => Err(Failure::BadKey(format!(
            "metric already declared as a {existing_kind}, not a {kind}"
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
