//! The table against a HashMap model (random operations, a store small enough to compact
//! and fill), and the edge cases by name.

use super::*;
use proptest::prelude::*;
use std::collections::HashMap;

fn table(mem: &mut [u8]) -> Table<'_> {
    Table::format(mem).expect("large enough")
}

fn key(i: u8) -> Vec<u8> {
    format!("key-{i}").into_bytes()
}

#[test]
fn zeroed_memory_is_an_empty_table() {
    let mut mem = vec![0u8; MIN_SIZE];
    let mut t = Table::attach(&mut mem).unwrap();
    assert_eq!(t.get(b"k", 0).unwrap(), None);
    assert_eq!(t.repair(), Repair::default());
    t.set(b"k", KeyKind::Str, ValueRef::Int(1), 0, 0).unwrap();
    assert_eq!(t.stats().keys, 1);
}

#[test]
fn values_come_back_as_they_went_in() {
    let mut mem = vec![0u8; MIN_SIZE];
    let mut t = table(&mut mem);
    t.set(b"b", KeyKind::Bytes, ValueRef::Bytes(b"\x00\xff"), 0, 0)
        .unwrap();
    t.set(b"s", KeyKind::Str, ValueRef::Str("h\u{e9}"), 0, 0)
        .unwrap();
    t.set(b"i", KeyKind::Str, ValueRef::Int(-7), 0, 0).unwrap();
    assert_eq!(t.get(b"b", 0).unwrap(), Some(Value::Bytes(vec![0, 255])));
    assert_eq!(t.get(b"s", 0).unwrap(), Some(Value::Str("h\u{e9}".into())));
    assert_eq!(t.get(b"i", 0).unwrap(), Some(Value::Int(-7)));
    assert_eq!(t.get(b"missing", 0).unwrap(), None);
    let mut keys = t.keys(b"", 0).unwrap();
    keys.sort();
    assert_eq!(
        keys,
        vec![
            (b"b".to_vec(), KeyKind::Bytes),
            (b"i".to_vec(), KeyKind::Str),
            (b"s".to_vec(), KeyKind::Str)
        ]
    );
}

#[test]
fn entries_expire_and_incr_keeps_the_expiry() {
    let mut mem = vec![0u8; MIN_SIZE];
    let mut t = table(&mut mem);
    t.set(b"n", KeyKind::Str, ValueRef::Int(1), 1_000, 0)
        .unwrap();
    assert_eq!(t.incr(b"n", KeyKind::Str, 2, 500).unwrap(), 3);
    assert_eq!(t.get(b"n", 999).unwrap(), Some(Value::Int(3)));
    assert_eq!(t.get(b"n", 1_000).unwrap(), None);
    assert!(t.keys(b"n", 1_000).unwrap().is_empty());
    assert_eq!(
        t.incr(b"n", KeyKind::Str, 5, 1_000).unwrap(),
        5,
        "expired counts as absent"
    );
    assert_eq!(
        t.get(b"n", 10_000).unwrap(),
        Some(Value::Int(5)),
        "new key: no expiry"
    );
}

#[test]
fn incr_refuses_non_integers_and_overflow() {
    let mut mem = vec![0u8; MIN_SIZE];
    let mut t = table(&mut mem);
    t.set(b"s", KeyKind::Str, ValueRef::Str("1"), 0, 0).unwrap();
    assert_eq!(
        t.incr(b"s", KeyKind::Str, 1, 0),
        Err(TableError::NotAnInteger)
    );
    t.set(b"m", KeyKind::Str, ValueRef::Int(i64::MAX), 0, 0)
        .unwrap();
    assert_eq!(t.incr(b"m", KeyKind::Str, 1, 0), Err(TableError::Overflow));
    assert_eq!(t.get(b"m", 0).unwrap(), Some(Value::Int(i64::MAX)));
}

#[test]
fn compare_and_set_checks_kind_and_absence() {
    let mut mem = vec![0u8; MIN_SIZE];
    let mut t = table(&mut mem);
    let cas = |t: &mut Table, expected, new| {
        t.compare_and_set(b"k", KeyKind::Str, expected, new, 0, 0)
            .unwrap()
    };
    assert!(cas(&mut t, None, ValueRef::Str("1")));
    assert!(!cas(&mut t, None, ValueRef::Str("2")), "present now");
    assert!(
        !cas(&mut t, Some(ValueRef::Bytes(b"1")), ValueRef::Str("2")),
        "bytes != str"
    );
    assert!(cas(&mut t, Some(ValueRef::Str("1")), ValueRef::Int(2)));
    assert_eq!(t.get(b"k", 0).unwrap(), Some(Value::Int(2)));
}

#[test]
fn a_full_store_says_so_and_keeps_what_it_has() {
    let mut mem = vec![0u8; MIN_SIZE];
    let mut t = table(&mut mem);
    let big = vec![7u8; 4000];
    let mut stored = 0u8;
    let err = loop {
        match t.set(&key(stored), KeyKind::Str, ValueRef::Bytes(&big), 0, 0) {
            Ok(()) => stored += 1,
            Err(e) => break e,
        }
    };
    assert!(matches!(err, TableError::Full(_)), "{err:?}");
    assert!(stored > 2);
    for i in 0..stored {
        assert_eq!(t.get(&key(i), 0).unwrap(), Some(Value::Bytes(big.clone())));
    }
    assert!(t.delete(&key(0), 0).unwrap());
    t.set(&key(0), KeyKind::Str, ValueRef::Bytes(&big), 0, 0)
        .expect("room again after a delete (compaction reclaims it)");
    let huge = vec![0u8; MIN_SIZE];
    assert!(matches!(
        t.set(b"huge", KeyKind::Str, ValueRef::Bytes(&huge), 0, 0),
        Err(TableError::Full(_))
    ));
}

#[test]
fn too_many_keys_is_full_too() {
    let mut mem = vec![0u8; MIN_SIZE];
    let mut t = table(&mut mem);
    let capacity = t.stats().key_capacity;
    for i in 0..capacity {
        t.set(&i.to_ne_bytes(), KeyKind::Bytes, ValueRef::Int(1), 0, 0)
            .unwrap();
    }
    let err = t.set(b"one more", KeyKind::Bytes, ValueRef::Int(1), 0, 0);
    assert!(matches!(err, Err(TableError::Full(_))), "{err:?}");
    assert_eq!(t.stats().keys, capacity);
}

#[test]
fn repair_recounts_and_drops_slots_pointing_past_the_written_area() {
    let mut mem = vec![0u8; MIN_SIZE];
    {
        let mut t = table(&mut mem);
        t.set(b"a", KeyKind::Str, ValueRef::Int(1), 0, 0).unwrap();
        t.set(b"b", KeyKind::Str, ValueRef::Int(2), 0, 0).unwrap();
    }
    // A process died after writing a slot but before its counters: simulate by zeroing
    // the counters and pointing a free slot past the bump pointer.
    let geo = Geometry::of(mem.len());
    mem[16..40].fill(0);
    let free = (0..geo.slots)
        .find(|s| mem[ROOT + s * 8..ROOT + s * 8 + 8] == [0; 8])
        .unwrap();
    mem[ROOT + free * 8..ROOT + free * 8 + 8].copy_from_slice(&(4096u64 + SLOT_BIAS).to_ne_bytes());
    let mut t = Table::attach(&mut mem).unwrap();
    let report = t.repair();
    assert_eq!(
        report,
        Repair {
            dropped: 1,
            reformatted: false
        }
    );
    assert_eq!(t.stats().keys, 2);
    assert_eq!(t.get(b"b", 0).unwrap(), Some(Value::Int(2)));
    assert_eq!(t.keys(b"", 0).unwrap().len(), 2);
}

#[derive(Debug, Clone)]
enum Op {
    Set(u8, Vec<u8>, bool),
    Int(u8, i64),
    Incr(u8, i64),
    Delete(u8),
    Cas(u8, Option<Vec<u8>>, Vec<u8>),
    Tick(i64),
}

fn op() -> impl Strategy<Value = Op> {
    let k = 0u8..24;
    let v = proptest::collection::vec(any::<u8>(), 0..3000);
    prop_oneof![
        (k.clone(), v.clone(), any::<bool>()).prop_map(|(k, v, ttl)| Op::Set(k, v, ttl)),
        (k.clone(), -5i64..5).prop_map(|(k, i)| Op::Int(k, i)),
        (k.clone(), -5i64..5).prop_map(|(k, d)| Op::Incr(k, d)),
        k.clone().prop_map(Op::Delete),
        (k, proptest::option::of(v.clone()), v).prop_map(|(k, e, n)| Op::Cas(k, e, n)),
        (0i64..200).prop_map(Op::Tick),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn behaves_like_a_map(ops in proptest::collection::vec(op(), 1..200)) {
        let mut mem = vec![0u8; MIN_SIZE];
        let mut t = table(&mut mem);
        let mut model: HashMap<Vec<u8>, (Value, i64)> = HashMap::new();
        let mut now = 1i64;
        let live = |m: &HashMap<Vec<u8>, (Value, i64)>, k: &[u8], now: i64| {
            m.get(k).filter(|(_, exp)| *exp == 0 || *exp > now).map(|(v, _)| v.clone())
        };
        for op in ops {
            match op {
                Op::Set(k, v, ttl) => {
                    let exp = if ttl { now + 100 } else { 0 };
                    match t.set(&key(k), KeyKind::Str, ValueRef::Bytes(&v), exp, now) {
                        Ok(()) => { model.insert(key(k), (Value::Bytes(v), exp)); }
                        Err(TableError::Full(_)) => {}
                        Err(e) => prop_assert!(false, "{e:?}"),
                    }
                }
                Op::Int(k, i) => {
                    if t.set(&key(k), KeyKind::Str, ValueRef::Int(i), 0, now).is_ok() {
                        model.insert(key(k), (Value::Int(i), 0));
                    }
                }
                Op::Incr(k, d) => {
                    let got = t.incr(&key(k), KeyKind::Str, d, now);
                    match live(&model, &key(k), now) {
                        Some(Value::Int(i)) => {
                            prop_assert_eq!(got, Ok(i + d));
                            model.get_mut(&key(k)).unwrap().0 = Value::Int(i + d);
                        }
                        Some(_) => prop_assert_eq!(got, Err(TableError::NotAnInteger)),
                        None => if got.is_ok() {
                            prop_assert_eq!(got, Ok(d));
                            model.insert(key(k), (Value::Int(d), 0));
                        },
                    }
                }
                Op::Delete(k) => {
                    let was = live(&model, &key(k), now).is_some();
                    prop_assert_eq!(t.delete(&key(k), now), Ok(was));
                    model.remove(&key(k));
                }
                Op::Cas(k, expected, new) => {
                    let current = live(&model, &key(k), now);
                    let want = expected.clone().map(Value::Bytes);
                    let got = t.compare_and_set(
                        &key(k), KeyKind::Str, expected.as_deref().map(ValueRef::Bytes),
                        ValueRef::Bytes(&new), 0, now);
                    if current == want {
                        if got.is_ok() {
                            prop_assert_eq!(got, Ok(true));
                            model.insert(key(k), (Value::Bytes(new), 0));
                        }
                    } else {
                        prop_assert_eq!(got, Ok(false));
                    }
                }
                Op::Tick(ms) => now += ms,
            }
            for k in 0..24 {
                prop_assert_eq!(t.get(&key(k), now).unwrap(), live(&model, &key(k), now));
            }
        }
        let mut keys: Vec<_> = t.keys(b"key-", now).unwrap().into_iter().map(|(k, _)| k).collect();
        keys.sort();
        let mut expected: Vec<_> = model.keys().filter(|k| live(&model, k, now).is_some()).cloned().collect();
        expected.sort();
        prop_assert_eq!(keys, expected);
        let before = t.stats().keys;
        prop_assert_eq!(t.repair(), Repair::default());
        prop_assert_eq!(t.stats().keys, before, "counters were already right");
    }
}
