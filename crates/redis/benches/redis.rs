//! Cost of one Redis store operation, round trip included, against a local
//! `redis-server` this bench starts on a free 127.0.0.1 port:
//! `cargo bench -p mod_wsgi_redis`. The shared-memory store's figures are in
//! crates/store/benches; compare `redis-benchmark -c 1 -t incr,get,set -P 1` for the
//! server's own floor.

use criterion::{Criterion, criterion_group, criterion_main};
use mod_wsgi_redis::{Endpoint, RedisStore};
use mod_wsgi_store::ValueRef;
use std::hint::black_box;
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn operations(c: &mut Criterion) {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut server = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server (scripts/install-deps.sh installs it)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let endpoint = Endpoint {
        host: "127.0.0.1".into(),
        port,
        db: 0,
        username: None,
        password: None,
        timeout: Duration::from_secs(5),
    };
    let store = RedisStore::new(endpoint, "bench:");
    store
        .set(b"session", ValueRef::Bytes(&[7u8; 200]), None)
        .expect("set");
    c.bench_function("redis incr", |b| {
        b.iter(|| black_box(store.incr(b"hits", 1).expect("incr")))
    });
    c.bench_function("redis get 200 B", |b| {
        b.iter(|| black_box(store.get(b"session").expect("get")))
    });
    c.bench_function("redis set 200 B", |b| {
        let value = [9u8; 200];
        b.iter(|| {
            store
                .set(b"other", ValueRef::Bytes(&value), None)
                .expect("set")
        })
    });
    c.bench_function("redis compare-and-set (Lua)", |b| {
        b.iter(|| {
            black_box(
                store
                    .compare_and_set(b"cas", None, ValueRef::Int(1), Some(60_000))
                    .expect("cas"),
            )
        })
    });
    let _ = server.kill();
    let _ = server.wait();
}

criterion_group!(benches, operations);
criterion_main!(benches);
