//! Cost of one store operation including the process-shared lock (uncontended):
//! `cargo bench -p mod_wsgi_store`.

use criterion::{Criterion, criterion_group, criterion_main};
use mod_wsgi_store::{KeyKind, SharedStore, ValueRef};
use std::hint::black_box;

fn operations(c: &mut Criterion) {
    let store = SharedStore::anonymous(16 << 20).expect("map");
    {
        let mut g = store.lock().expect("lock");
        let mut t = g.table();
        for i in 0..10_000u32 {
            let key = format!("session:{i}");
            t.set(
                key.as_bytes(),
                KeyKind::Str,
                ValueRef::Bytes(&[7u8; 200]),
                0,
                0,
            )
            .expect("room");
        }
    }
    c.bench_function("lock + incr", |b| {
        b.iter(|| {
            let mut g = store.lock().expect("lock");
            black_box(g.table().incr(b"hits", KeyKind::Str, 1, 0).expect("incr"))
        })
    });
    c.bench_function("lock + get 200 B of 10k keys", |b| {
        b.iter(|| {
            let mut g = store.lock().expect("lock");
            black_box(g.table().get(b"session:4242", 0).expect("get"))
        })
    });
    c.bench_function("lock + set 200 B (compacting as needed)", |b| {
        let value = [9u8; 200];
        b.iter(|| {
            let mut g = store.lock().expect("lock");
            g.table()
                .set(b"session:17", KeyKind::Str, ValueRef::Bytes(&value), 0, 0)
                .expect("set")
        })
    });
}

criterion_group!(benches, operations);
criterion_main!(benches);
