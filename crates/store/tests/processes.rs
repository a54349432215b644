//! The store across real forked processes: exact counts under contention, and a process
//! killed while holding the lock leaves the store usable and consistent.

use mod_wsgi_store::{KeyKind, SharedStore, Value, ValueRef, now_ms};
use std::time::Duration;

/// Runs `body` in a forked child that leaves with `_exit`.
fn fork(body: impl FnOnce()) -> libc::pid_t {
    // SAFETY: the child only runs `body` (store operations and std threads it joins) and
    // leaves with _exit, never returning into the test harness.
    unsafe {
        let pid = libc::fork();
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            body();
            libc::_exit(0);
        }
        pid
    }
}

fn wait(pid: libc::pid_t) -> i32 {
    let mut status = 0;
    // SAFETY: pid is a child of this process.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    status
}

#[test]
fn increments_from_many_processes_and_threads_all_count() {
    let store = SharedStore::anonymous(1 << 20).expect("map");
    let children: Vec<_> = (0..4)
        .map(|_| {
            fork(|| {
                std::thread::scope(|s| {
                    for _ in 0..2 {
                        s.spawn(|| {
                            for _ in 0..5000 {
                                let mut g = store.lock().expect("lock");
                                g.table()
                                    .incr(b"hits", KeyKind::Str, 1, now_ms())
                                    .expect("incr");
                            }
                        });
                    }
                });
            })
        })
        .collect();
    for pid in children {
        assert_eq!(wait(pid), 0);
    }
    let mut g = store.lock().expect("lock");
    assert_eq!(
        g.table().get(b"hits", now_ms()).unwrap(),
        Some(Value::Int(40_000))
    );
}

#[test]
fn a_process_killed_holding_the_lock_does_not_wedge_the_store() {
    let store = SharedStore::anonymous(256 * 1024).expect("map");
    let mut repaired = 0;
    let mut last = 0;
    for round in 0..20u64 {
        let child = fork(|| {
            let filler = vec![round as u8; 1500];
            loop {
                let mut g = store.lock().expect("lock");
                let mut t = g.table();
                for i in 0..50u32 {
                    let key = format!("filler-{}", i % 40);
                    // Full is possible and harmless here; the point is to be mid-write.
                    let _ = t.set(
                        key.as_bytes(),
                        KeyKind::Str,
                        ValueRef::Bytes(&filler),
                        0,
                        now_ms(),
                    );
                    t.incr(b"count", KeyKind::Str, 1, now_ms()).expect("incr");
                }
            }
        });
        std::thread::sleep(Duration::from_millis(20 + round % 7));
        // SAFETY: child is our forked child.
        unsafe { libc::kill(child, libc::SIGKILL) };
        wait(child);
        let mut g = store.lock().expect("the lock is not wedged");
        if g.repaired().is_some() {
            repaired += 1;
        }
        let mut t = g.table();
        let Some(Value::Int(count)) = t.get(b"count", now_ms()).unwrap() else {
            panic!("count lost in round {round}");
        };
        assert!(count >= last, "count went back from {last} to {count}");
        last = count;
        for (key, _) in t.keys(b"filler-", now_ms()).unwrap() {
            let Some(Value::Bytes(v)) = t.get(&key, now_ms()).unwrap() else {
                panic!("key listed but not readable");
            };
            assert_eq!(v.len(), 1500, "a torn value is never visible");
        }
        t.set(b"after", KeyKind::Str, ValueRef::Str("ok"), 0, now_ms())
            .expect("writable");
    }
    assert!(repaired > 0, "no kill landed inside the lock in 20 rounds");
    assert!(last > 0);
}
