//! The Redis backend of `WSGISharedStore name redis://...`: the same operations as the
//! shared-memory store (get, set with TTL, delete, incr, compare-and-set, keys by prefix,
//! clear), carried out by a Redis server so that every Apache host pointing at it shares
//! the keys. A small blocking client is enough here: every call comes from a request
//! thread that waits for the answer anyway, one command (or one pipelined batch) at a time.
//!
//! Connections are pooled per process and never cross a fork. After a failed connect the
//! store answers "unavailable" at once for a second instead of making every request wait
//! out the timeout against a dead server.

mod codec;
mod connection;
pub mod resp;

pub use codec::{decode_value, encode_value, key_kind, prefix_pattern};
pub use connection::Endpoint;

use connection::{Connection, Fault};
use mod_wsgi_store::{KeyKind, MAX_KEY, Value, ValueRef};
use resp::Reply;
use std::io;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Idle connections kept per process; more are closed when handed back.
const MAX_IDLE: usize = 32;
/// How long a failed connect makes later calls fail fast.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Keys asked for per SCAN step.
const SCAN_COUNT: &[u8] = b"1000";

/// Compare-and-set: KEYS[1] the key; ARGV: "1" if it must be absent (else "0"), the
/// expected encoding, the new encoding, TTL in ms or "".
const CAS_SCRIPT: &[u8] = b"local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current then return 0 end
elseif current ~= ARGV[2] then
  return 0
end
if ARGV[4] == '' then
  redis.call('SET', KEYS[1], ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
end
return 1";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The server cannot be reached, timed out, or refused for a reason of its own.
    #[error("{0}")]
    Unavailable(String),
    /// The server is at its maxmemory and refuses writes.
    #[error("{0}")]
    Full(String),
    #[error("the value is not an integer")]
    NotAnInteger,
    #[error("the result does not fit in 64 bits")]
    Overflow,
    #[error("keys are at most {MAX_KEY} bytes, not {0}")]
    KeyTooLong(usize),
}

pub type Result<T> = std::result::Result<T, Error>;

struct Pool {
    /// The process the idle connections belong to; a forked child starts its own.
    pid: u32,
    idle: Vec<Connection>,
    /// Set by a failed connect: until then, fail at once with the reason.
    retry_at: Option<(Instant, String)>,
}

pub struct RedisStore {
    endpoint: Endpoint,
    prefix: Vec<u8>,
    pool: Mutex<Pool>,
}

/// Maps a server's error reply to what the caller should see.
fn refused(text: String) -> Error {
    if text.starts_with("OOM") {
        Error::Full(format!("the Redis server is out of memory: {text}"))
    } else if text.contains("would overflow") {
        Error::Overflow
    } else if text.contains("not an integer") {
        Error::NotAnInteger
    } else {
        Error::Unavailable(format!("the Redis server refused: {text}"))
    }
}

fn ok(reply: Reply) -> Result<Reply> {
    match reply {
        Reply::Error(text) => Err(refused(text)),
        other => Ok(other),
    }
}

fn unexpected(what: &str, reply: &Reply) -> Error {
    Error::Unavailable(format!("unexpected reply to {what}: {reply:?}"))
}

impl RedisStore {
    /// A store whose keys are `prefix` + the caller's key; connects on first use.
    pub fn new(endpoint: Endpoint, prefix: &str) -> RedisStore {
        RedisStore {
            endpoint,
            prefix: prefix.as_bytes().to_vec(),
            pool: Mutex::new(Pool {
                pid: std::process::id(),
                idle: Vec::new(),
                retry_at: None,
            }),
        }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn pool(&self) -> std::sync::MutexGuard<'_, Pool> {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        let pid = std::process::id();
        if pool.pid != pid {
            // Inherited across fork: the sockets belong to the parent's conversations.
            pool.idle.clear();
            pool.retry_at = None;
            pool.pid = pid;
        }
        pool
    }

    fn connect(&self) -> Result<Connection> {
        if let Some((at, why)) = &self.pool().retry_at
            && Instant::now() < *at
        {
            return Err(Error::Unavailable(format!(
                "{}: {why} (retrying within {}s)",
                self.endpoint,
                RETRY_AFTER.as_secs()
            )));
        }
        match Connection::open(&self.endpoint) {
            Ok(c) => {
                self.pool().retry_at = None;
                Ok(c)
            }
            Err(fault) => {
                let why = fault.to_string();
                self.pool().retry_at = Some((Instant::now() + RETRY_AFTER, why.clone()));
                Err(Error::Unavailable(format!("{}: {why}", self.endpoint)))
            }
        }
    }

    /// Runs one batch of commands on a pooled connection. A reused connection that turns
    /// out to be closed before any reply arrived is replaced once; anything else (a timeout
    /// above all, where the server may have carried the batch out) is reported, not retried.
    fn run(&self, commands: &[&[&[u8]]]) -> Result<Vec<Reply>> {
        let pooled = self.pool().idle.pop();
        let reused = pooled.is_some();
        let mut connection = match pooled {
            Some(c) => c,
            None => self.connect()?,
        };
        let outcome = match connection.run(commands) {
            Err(Fault::Io {
                error,
                nothing_received: true,
            }) if reused && is_closed(&error) => {
                connection = self.connect()?;
                connection.run(commands)
            }
            other => other,
        };
        match outcome {
            Ok(replies) => {
                let mut pool = self.pool();
                if pool.idle.len() < MAX_IDLE {
                    pool.idle.push(connection);
                }
                Ok(replies)
            }
            Err(fault) => Err(Error::Unavailable(format!("{}: {fault}", self.endpoint))),
        }
    }

    fn one(&self, command: &[&[u8]]) -> Result<Reply> {
        let reply = self.run(&[command])?.pop();
        ok(reply.ok_or_else(|| Error::Unavailable("no reply".into()))?)
    }

    fn key(&self, key: &[u8]) -> Result<Vec<u8>> {
        if key.len() > MAX_KEY {
            return Err(Error::KeyTooLong(key.len()));
        }
        Ok([self.prefix.as_slice(), key].concat())
    }

    /// Checks that the server answers (used at startup to warn early), on a connection
    /// of its own that is closed afterwards: the Apache parent keeps none open.
    pub fn ping(&self) -> Result<()> {
        let outcome = self.one(&[b"PING"]);
        self.pool().idle.clear();
        match outcome? {
            Reply::Simple(_) => Ok(()),
            other => Err(unexpected("PING", &other)),
        }
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Value>> {
        match self.one(&[b"GET", &self.key(key)?])? {
            Reply::Bulk(raw) => Ok(raw.map(decode_value)),
            other => Err(unexpected("GET", &other)),
        }
    }

    /// Stores `value`; with `ttl_ms` the key disappears after that many milliseconds.
    pub fn set(&self, key: &[u8], value: ValueRef<'_>, ttl_ms: Option<i64>) -> Result<()> {
        let (key, value) = (self.key(key)?, encode_value(value));
        let ttl = ttl_ms.map(|t| t.max(1).to_string());
        let reply = match &ttl {
            Some(ttl) => self.one(&[b"SET", &key, &value, b"PX", ttl.as_bytes()])?,
            None => self.one(&[b"SET", &key, &value])?,
        };
        match reply {
            Reply::Simple(_) => Ok(()),
            other => Err(unexpected("SET", &other)),
        }
    }

    /// Removes `key`; true if it was there.
    pub fn delete(&self, key: &[u8]) -> Result<bool> {
        match self.one(&[b"DEL", &self.key(key)?])? {
            Reply::Int(n) => Ok(n > 0),
            other => Err(unexpected("DEL", &other)),
        }
    }

    /// Adds `delta` to the integer under `key` (a missing key counts as 0), keeping its TTL.
    pub fn incr(&self, key: &[u8], delta: i64) -> Result<i64> {
        match self.one(&[b"INCRBY", &self.key(key)?, delta.to_string().as_bytes()])? {
            Reply::Int(n) => Ok(n),
            other => Err(unexpected("INCRBY", &other)),
        }
    }

    /// Sets `key` to `new` only if it holds `expected` (None: only if it is absent).
    pub fn compare_and_set(
        &self,
        key: &[u8],
        expected: Option<ValueRef<'_>>,
        new: ValueRef<'_>,
        ttl_ms: Option<i64>,
    ) -> Result<bool> {
        let key = self.key(key)?;
        let expected_raw = expected.map(encode_value).unwrap_or_default();
        let ttl = ttl_ms.map(|t| t.max(1).to_string()).unwrap_or_default();
        let must_be_absent: &[u8] = if expected.is_none() { b"1" } else { b"0" };
        let reply = self.one(&[
            b"EVAL",
            CAS_SCRIPT,
            b"1",
            &key,
            must_be_absent,
            &expected_raw,
            &encode_value(new),
            ttl.as_bytes(),
        ])?;
        match reply {
            Reply::Int(n) => Ok(n == 1),
            other => Err(unexpected("compare-and-set", &other)),
        }
    }

    /// Every key of this store (prefix stripped) starting with `prefix`, with `f` applied
    /// to each SCAN batch of full Redis keys.
    fn scan(&self, prefix: &[u8], mut f: impl FnMut(Vec<Vec<u8>>) -> Result<()>) -> Result<()> {
        let pattern = prefix_pattern(&self.key(prefix)?);
        let mut cursor = b"0".to_vec();
        loop {
            let reply = self.one(&[b"SCAN", &cursor, b"MATCH", &pattern, b"COUNT", SCAN_COUNT])?;
            let Reply::Array(Some(mut parts)) = reply else {
                return Err(unexpected("SCAN", &reply));
            };
            let (Some(Reply::Array(Some(keys))), Some(Reply::Bulk(Some(next)))) =
                (parts.pop(), parts.pop())
            else {
                return Err(Error::Unavailable("malformed SCAN reply".into()));
            };
            let keys: Vec<Vec<u8>> = keys
                .into_iter()
                .filter_map(|k| match k {
                    Reply::Bulk(Some(k)) => Some(k),
                    _ => None,
                })
                .collect();
            if !keys.is_empty() {
                f(keys)?;
            }
            if next == b"0" {
                return Ok(());
            }
            cursor = next;
        }
    }

    /// Keys starting with `prefix`, sorted, each as str when it is UTF-8.
    pub fn keys(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, KeyKind)>> {
        let mut found = Vec::new();
        let strip = self.prefix.len();
        self.scan(prefix, |keys| {
            found.extend(keys.into_iter().map(|k| k[strip..].to_vec()));
            Ok(())
        })?;
        found.sort();
        found.dedup();
        Ok(found
            .into_iter()
            .map(|k| {
                let kind = key_kind(&k);
                (k, kind)
            })
            .collect())
    }

    /// Removes every key of this store; returns how many went.
    pub fn clear(&self) -> Result<u64> {
        let mut removed = 0;
        self.scan(b"", |keys| {
            let mut command: Vec<&[u8]> = vec![b"UNLINK"];
            command.extend(keys.iter().map(Vec::as_slice));
            match self.one(&command)? {
                Reply::Int(n) => {
                    removed += n as u64;
                    Ok(())
                }
                other => Err(unexpected("UNLINK", &other)),
            }
        })?;
        Ok(removed)
    }

    /// How many keys the store holds (a full SCAN: meant for `stats()`, not hot paths).
    pub fn count(&self) -> Result<u64> {
        let mut n = 0;
        self.scan(b"", |keys| {
            n += keys.len() as u64;
            Ok(())
        })?;
        Ok(n)
    }
}

fn is_closed(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}
