//! The Redis backend: runs store operations on a `mod_wsgi_redis::RedisStore` and logs
//! once per process when its server stops answering and once when it answers again.

use super::ops::{Failure, Op, Reply, StatValue};
use mod_wsgi_redis::{Error, RedisStore};
use std::sync::atomic::{AtomicBool, Ordering};

pub struct Redis {
    pub store: RedisStore,
    /// False while this process's last attempt failed to reach the server.
    reachable: AtomicBool,
}

impl Redis {
    pub fn new(store: RedisStore) -> Redis {
        Redis {
            store,
            reachable: AtomicBool::new(true),
        }
    }
}

fn failure(name: &str, e: Error) -> Failure {
    let text = format!("store '{name}': {e}");
    match e {
        Error::Unavailable(_) => Failure::Unavailable(text),
        Error::Full(_) => Failure::Full(text),
        Error::NotAnInteger => Failure::NotAnInteger(text),
        Error::Overflow => Failure::Overflow(text),
        Error::KeyTooLong(_) => Failure::BadKey(text),
    }
}

pub fn execute(name: &str, redis: &Redis, op: Op) -> Result<Reply, Failure> {
    let store = &redis.store;
    let outcome = match op {
        Op::Get(key) => store.get(&key).map(Reply::Value),
        Op::Set {
            key, value, ttl_ms, ..
        } => store
            .set(&key, value.as_ref(), ttl_ms)
            .map(|()| Reply::Done),
        Op::Delete(key) => store.delete(&key).map(Reply::Bool),
        Op::Incr { key, delta, .. } => store.incr(&key, delta).map(Reply::Int),
        Op::CompareAndSet {
            key,
            expected,
            new,
            ttl_ms,
            ..
        } => store
            .compare_and_set(
                &key,
                expected.as_ref().map(|v| v.as_ref()),
                new.as_ref(),
                ttl_ms,
            )
            .map(Reply::Bool),
        Op::Keys(prefix) => store.keys(&prefix).map(Reply::Keys),
        Op::Clear => store.clear().map(|_| Reply::Done),
        Op::Stats => store.count().map(|keys| {
            Reply::Stats(vec![
                ("backend", StatValue::Text("redis".into())),
                ("server", StatValue::Text(store.endpoint().to_string())),
                ("keys", StatValue::Int(keys)),
            ])
        }),
    };
    match &outcome {
        Err(Error::Unavailable(why)) => {
            if redis.reachable.swap(false, Ordering::AcqRel) {
                tracing::error!("WSGI1135: shared store '{name}': {why}");
            }
        }
        _ => {
            if !redis.reachable.swap(true, Ordering::AcqRel) {
                tracing::info!(
                    "WSGI1136: shared store '{name}': {} answers again",
                    store.endpoint()
                );
            }
        }
    }
    outcome.map_err(|e| failure(name, e))
}
