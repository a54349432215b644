//! The Redis store against a real `redis-server` started on a free 127.0.0.1 port: every
//! operation, TTL, compare-and-set, prefixes kept apart, a full server, a server that
//! restarts (pooled connections are replaced) and one that is down (fails fast, recovers).

use mod_wsgi_redis::{Endpoint, Error, RedisStore};
use mod_wsgi_store::{KeyKind, Value, ValueRef};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn answers_ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

struct Server {
    port: u16,
    child: Child,
}

impl Server {
    fn start() -> Server {
        Server::on(mod_wsgi_test_ports::free_port())
    }

    /// Starts `redis-server` on `port` and waits until it answers PING; a server that could
    /// not take the port (it exits) is a test failure saying so, not a later reset.
    fn on(port: u16) -> Server {
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is needed by these tests (scripts/install-deps.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !answers_ping(port) {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("redis-server on port {port} exited at start: {status}");
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Server { port, child }
    }

    fn store(&self, prefix: &str) -> RedisStore {
        RedisStore::new(
            Endpoint {
                host: "127.0.0.1".into(),
                port: self.port,
                db: 3,
                username: None,
                password: None,
                timeout: Duration::from_secs(2),
            },
            prefix,
        )
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "-n", "3"])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn values_keep_their_type_and_ints_are_plain_numbers_in_redis() {
    let server = Server::start();
    let store = server.store("t:");
    store.set(b"s", ValueRef::Str("café"), None).unwrap();
    store.set(b"digits", ValueRef::Str("42"), None).unwrap();
    store.set(b"b", ValueRef::Bytes(b"\xff\x00"), None).unwrap();
    store.set(b"n", ValueRef::Int(-42), None).unwrap();
    assert_eq!(store.get(b"s").unwrap(), Some(Value::Str("café".into())));
    assert_eq!(store.get(b"digits").unwrap(), Some(Value::Str("42".into())));
    assert_eq!(store.get(b"b").unwrap(), Some(Value::Bytes(vec![0xff, 0])));
    assert_eq!(store.get(b"n").unwrap(), Some(Value::Int(-42)));
    assert_eq!(store.get(b"missing").unwrap(), None);
    assert_eq!(
        server.cli(&["GET", "t:n"]),
        "-42",
        "another client reads a number"
    );
    assert_eq!(
        server.cli(&["GET", "t:s"]),
        "café",
        "text is stored as text"
    );

    assert_eq!(store.incr(b"n", 50).unwrap(), 8);
    assert_eq!(store.incr(b"fresh", -3).unwrap(), -3);
    assert_eq!(store.incr(b"s", 1), Err(Error::NotAnInteger));
    assert_eq!(store.incr(b"digits", 1), Err(Error::NotAnInteger));
    store.set(b"big", ValueRef::Int(i64::MAX), None).unwrap();
    assert_eq!(store.incr(b"big", 1), Err(Error::Overflow));
    assert_eq!(store.get(b"big").unwrap(), Some(Value::Int(i64::MAX)));

    assert!(store.delete(b"s").unwrap());
    assert!(!store.delete(b"s").unwrap());
    assert_eq!(
        store.set(&vec![b'k'; 70_000], ValueRef::Int(1), None),
        Err(Error::KeyTooLong(70_000))
    );
}

#[test]
fn compare_and_set_and_ttl() {
    let server = Server::start();
    let store = server.store("c:");
    assert!(
        store
            .compare_and_set(b"k", None, ValueRef::Str("1"), None)
            .unwrap()
    );
    assert!(
        !store
            .compare_and_set(b"k", None, ValueRef::Str("2"), None)
            .unwrap()
    );
    assert!(
        !store
            .compare_and_set(b"k", Some(ValueRef::Int(1)), ValueRef::Str("2"), None)
            .unwrap(),
        "the int 1 is not the str '1'"
    );
    assert!(
        store
            .compare_and_set(
                b"k",
                Some(ValueRef::Str("1")),
                ValueRef::Bytes(b"x"),
                Some(300)
            )
            .unwrap()
    );
    assert_eq!(store.get(b"k").unwrap(), Some(Value::Bytes(b"x".to_vec())));
    store.set(b"short", ValueRef::Int(5), Some(300)).unwrap();
    assert_eq!(store.incr(b"short", 1).unwrap(), 6, "incr keeps the TTL");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(store.get(b"k").unwrap(), None);
    assert_eq!(store.get(b"short").unwrap(), None);
}

#[test]
fn keys_clear_and_count_stay_inside_the_prefix() {
    let server = Server::start();
    let mine = server.store("app*[1]:");
    let other = server.store("app:");
    for i in 0..2500 {
        mine.set(format!("user:{i}").as_bytes(), ValueRef::Int(i), None)
            .unwrap();
    }
    mine.set(b"\xffraw", ValueRef::Int(1), None).unwrap();
    other.set(b"user:x", ValueRef::Int(1), None).unwrap();
    let users = mine.keys(b"user:1").unwrap();
    assert_eq!(
        users.len(),
        1111,
        "user:1, user:10.., user:100.., user:1000.."
    );
    assert!(
        users
            .iter()
            .all(|(k, kind)| k.starts_with(b"user:1") && *kind == KeyKind::Str)
    );
    let all = mine.keys(b"").unwrap();
    assert_eq!(all.len(), 2501);
    assert!(all.contains(&(b"\xffraw".to_vec(), KeyKind::Bytes)));
    assert_eq!(mine.count().unwrap(), 2501);
    assert_eq!(mine.clear().unwrap(), 2501);
    assert_eq!(mine.count().unwrap(), 0);
    assert_eq!(
        other.get(b"user:x").unwrap(),
        Some(Value::Int(1)),
        "other prefix kept"
    );
}

#[test]
fn threads_incrementing_add_up_exactly() {
    let server = Server::start();
    let store = server.store("n:");
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..500 {
                    store.incr(b"hits", 1).unwrap();
                }
            });
        }
    });
    assert_eq!(store.get(b"hits").unwrap(), Some(Value::Int(4000)));
}

#[test]
fn a_full_server_is_reported_as_full_and_keeps_its_keys() {
    let server = Server::start();
    let store = server.store("f:");
    store.set(b"keep", ValueRef::Str("me"), None).unwrap();
    server.cli(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    server.cli(&["CONFIG", "SET", "maxmemory", "1"]);
    let err = store
        .set(b"more", ValueRef::Bytes(&[0; 1000]), None)
        .unwrap_err();
    assert!(
        matches!(err, Error::Full(ref text) if text.contains("OOM")),
        "{err:?}"
    );
    assert_eq!(store.get(b"keep").unwrap(), Some(Value::Str("me".into())));
}

#[test]
fn a_restarted_server_is_reconnected_and_a_dead_one_fails_fast() {
    let mut server = Server::start();
    let port = server.port;
    let store = server.store("r:");
    store.set(b"k", ValueRef::Int(1), None).unwrap();
    server.stop();
    let _server = Server::on(port);
    assert_eq!(
        store.get(b"k").unwrap(),
        None,
        "a fresh server, same pooled store"
    );
    assert_eq!(store.incr(b"k", 2).unwrap(), 2);
    drop(_server);

    let err = store.get(b"k").unwrap_err();
    assert!(
        matches!(err, Error::Unavailable(ref t) if t.contains(&port.to_string())),
        "{err:?}"
    );
    let started = Instant::now();
    let again = store.get(b"k").unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(100));
    assert!(
        matches!(again, Error::Unavailable(ref t) if t.contains("retrying")),
        "{again:?}"
    );
    std::thread::sleep(Duration::from_millis(1100));
    let _server = Server::on(port);
    assert_eq!(store.incr(b"k", 5).unwrap(), 5, "back once the server is");
}
