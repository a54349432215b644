//! The shared-memory backend on an anonymous mapping: each operation's reply, ttl turned
//! into an expiry, table errors turned into the failures Python sees (naming the store),
//! the broadcast bus's topics, and the metric families and samples.

use super::*;
use crate::shared::StatValue;
use mod_wsgi_store::MAX_KEY;

fn store() -> SharedStore {
    SharedStore::anonymous(1 << 20).expect("anonymous shared memory")
}

fn run(store: &SharedStore, op: Op) -> Reply {
    match execute("test", store, op) {
        Ok(reply) => reply,
        Err(e) => panic!("operation failed: {e}"),
    }
}

fn set(key: &str, value: Value, ttl_ms: Option<i64>) -> Op {
    Op::Set {
        key: key.as_bytes().to_vec(),
        kind: KeyKind::Str,
        value,
        ttl_ms,
    }
}

fn get(store: &SharedStore, key: &str) -> Option<Value> {
    match run(store, Op::Get(key.as_bytes().to_vec())) {
        Reply::Value(v) => v,
        _ => panic!("get answers a value"),
    }
}

fn int_reply(reply: Reply) -> i64 {
    match reply {
        Reply::Int(n) => n,
        _ => panic!("an integer reply was expected"),
    }
}

fn bool_reply(reply: Reply) -> bool {
    match reply {
        Reply::Bool(b) => b,
        _ => panic!("a boolean reply was expected"),
    }
}

/// `key` as the table holds it `at` ms since the epoch.
fn get_at(store: &SharedStore, key: &str, at: i64) -> Option<Value> {
    locked("test", store, |table, _| table.get(key.as_bytes(), at)).expect("read")
}

#[test]
fn a_ttl_becomes_an_expiry_and_none_keeps_a_key_for_good() {
    assert_eq!(expiry(None, 1_000), 0, "0 is 'never' to the table");
    assert_eq!(expiry(Some(2_500), 1_000), 3_500);
    assert_eq!(
        expiry(Some(0), 1_000),
        1_001,
        "a ttl never makes a key permanent"
    );
    assert_eq!(expiry(Some(-5), 1_000), 1_001);
    assert_eq!(expiry(Some(i64::MAX), 1_000), i64::MAX, "no overflow");
}

#[test]
fn values_keep_their_type() {
    let s = store();
    run(&s, set("bytes", Value::Bytes(vec![0, 255, 10]), None));
    run(
        &s,
        set("text", Value::Str("caf\u{e9} \u{20ac}".into()), None),
    );
    run(&s, set("number", Value::Int(-42), None));
    assert_eq!(get(&s, "bytes"), Some(Value::Bytes(vec![0, 255, 10])));
    assert_eq!(
        get(&s, "text"),
        Some(Value::Str("caf\u{e9} \u{20ac}".into()))
    );
    assert_eq!(get(&s, "number"), Some(Value::Int(-42)));
    assert_eq!(get(&s, "missing"), None);
    run(&s, set("number", Value::Str("replaced".into()), None));
    assert_eq!(get(&s, "number"), Some(Value::Str("replaced".into())));
}

#[test]
fn a_key_set_with_a_ttl_is_gone_once_it_has_passed() {
    let s = store();
    let before = now_ms();
    run(&s, set("profile", Value::Int(1), Some(60_000)));
    run(&s, set("brief", Value::Int(2), Some(0)));
    run(&s, set("forever", Value::Int(3), None));
    let after = now_ms();
    assert_eq!(get_at(&s, "profile", before + 59_999), Some(Value::Int(1)));
    assert_eq!(get_at(&s, "profile", after + 60_000), None);
    assert_eq!(get_at(&s, "brief", after + 1), None);
    assert_eq!(get_at(&s, "forever", i64::MAX - 1), Some(Value::Int(3)));
    let keys = locked("test", &s, |t, _| t.keys(b"", after + 60_000)).expect("keys");
    assert_eq!(keys, vec![(b"forever".to_vec(), KeyKind::Str)]);
}

#[test]
fn delete_says_whether_the_key_was_there() {
    let s = store();
    run(&s, set("k", Value::Int(1), None));
    assert!(bool_reply(run(&s, Op::Delete(b"k".to_vec()))));
    assert!(!bool_reply(run(&s, Op::Delete(b"k".to_vec()))));
    assert_eq!(get(&s, "k"), None);
}

#[test]
fn incr_counts_from_zero_and_refuses_what_is_not_an_integer() {
    let s = store();
    let incr = |key: &str, delta| Op::Incr {
        key: key.as_bytes().to_vec(),
        kind: KeyKind::Str,
        delta,
    };
    assert_eq!(int_reply(run(&s, incr("hits", 1))), 1);
    assert_eq!(int_reply(run(&s, incr("hits", 5))), 6);
    assert_eq!(int_reply(run(&s, incr("hits", -10))), -4);
    run(&s, set("name", Value::Str("ann".into()), None));
    match execute("counters", &s, incr("name", 1)) {
        Err(Failure::NotAnInteger(text)) => assert!(text.starts_with("store 'counters': ")),
        _ => panic!("incr of a str is NotAnInteger"),
    }
    run(&s, set("big", Value::Int(i64::MAX), None));
    assert!(matches!(
        execute("counters", &s, incr("big", 1)),
        Err(Failure::Overflow(_))
    ));
    assert_eq!(get(&s, "big"), Some(Value::Int(i64::MAX)), "unchanged");
}

#[test]
fn compare_and_set_changes_only_the_expected_value() {
    let s = store();
    let cas = |expected: Option<Value>, new: i64| Op::CompareAndSet {
        key: b"lock".to_vec(),
        kind: KeyKind::Str,
        expected,
        new: Value::Int(new),
        ttl_ms: None,
    };
    assert!(bool_reply(run(&s, cas(None, 1))), "absent as expected");
    assert!(!bool_reply(run(&s, cas(None, 2))), "no longer absent");
    assert!(!bool_reply(run(&s, cas(Some(Value::Int(5)), 3))));
    assert!(
        !bool_reply(run(&s, cas(Some(Value::Str("1".into())), 3))),
        "a str is not the int it spells"
    );
    assert!(bool_reply(run(&s, cas(Some(Value::Int(1)), 4))));
    assert_eq!(get(&s, "lock"), Some(Value::Int(4)));
}

#[test]
fn keys_are_listed_by_prefix_with_the_kind_they_were_given_as() {
    let s = store();
    for (key, kind) in [
        ("user:1", KeyKind::Str),
        ("user:2", KeyKind::Bytes),
        ("other", KeyKind::Str),
    ] {
        let op = Op::Set {
            key: key.as_bytes().to_vec(),
            kind,
            value: Value::Int(0),
            ttl_ms: None,
        };
        run(&s, op);
    }
    let Reply::Keys(mut keys) = run(&s, Op::Keys(b"user:".to_vec())) else {
        panic!("keys answers keys");
    };
    keys.sort();
    assert_eq!(
        keys,
        vec![
            (b"user:1".to_vec(), KeyKind::Str),
            (b"user:2".to_vec(), KeyKind::Bytes),
        ]
    );
}

#[test]
fn clear_empties_the_store_and_stats_count_what_it_holds() {
    let s = store();
    let figures = |s: &SharedStore| {
        let Reply::Stats(figures) = run(s, Op::Stats) else {
            panic!("stats answers figures");
        };
        figures
            .into_iter()
            .map(|(name, value)| match value {
                StatValue::Int(n) => (name, n.to_string()),
                StatValue::Text(t) => (name, t),
            })
            .collect::<Vec<_>>()
    };
    run(&s, set("a", Value::Int(1), None));
    run(&s, set("b", Value::Str("x".repeat(100)), None));
    let full = figures(&s);
    let names: Vec<&str> = full.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "backend",
            "keys",
            "key_capacity",
            "used_bytes",
            "capacity_bytes"
        ]
    );
    assert_eq!(full[0].1, "memory");
    assert_eq!(full[1].1, "2");
    let used: u64 = full[3].1.parse().expect("a number");
    assert!(used >= 100, "the 100-byte value is counted: {used}");
    run(&s, Op::Clear);
    let empty = figures(&s);
    assert_eq!((empty[1].1.as_str(), empty[3].1.as_str()), ("0", "0"));
    assert_eq!(get(&s, "a"), None);
}

#[test]
fn what_does_not_fit_is_refused_naming_the_store_and_changes_nothing() {
    let s = store();
    run(&s, set("kept", Value::Int(1), None));
    let huge = set("huge", Value::Bytes(vec![0; 2 << 20]), None);
    match execute("profiles", &s, huge) {
        Err(Failure::Full(text)) => assert!(text.starts_with("store 'profiles': "), "{text}"),
        _ => panic!("a value larger than the store is Full"),
    }
    let long_key = Op::Get(vec![b'k'; MAX_KEY + 1]);
    match execute("profiles", &s, long_key) {
        Err(Failure::BadKey(text)) => assert!(text.contains("longer than the limit")),
        _ => panic!("a key over the limit is BadKey"),
    }
    assert_eq!(get(&s, "kept"), Some(Value::Int(1)));
    assert_eq!(get(&s, "huge"), None);
}

#[test]
fn each_topic_has_its_own_generation_and_latest_message() {
    let bus = store();
    assert_eq!(topic_state(&bus, b"config").expect("state"), (0, None));
    let message = |text: &str| Some(Value::Str(text.into()));
    assert_eq!(
        publish(&bus, b"config", message("v1")).expect("published"),
        1
    );
    assert_eq!(
        publish(&bus, b"config", message("v2")).expect("published"),
        2
    );
    assert_eq!(publish(&bus, b"cache", None).expect("published"), 1);
    assert_eq!(
        topic_state(&bus, b"config").expect("state"),
        (2, message("v2"))
    );
    assert_eq!(topic_state(&bus, b"cache").expect("state"), (1, None));
    assert_eq!(publish(&bus, b"config", None).expect("published"), 3);
    assert_eq!(
        topic_state(&bus, b"config").expect("state"),
        (3, None),
        "a broadcast without a message forgets the last one"
    );
}

#[test]
fn topic_keys_keep_generations_and_messages_of_every_topic_apart() {
    assert_eq!(topic_key("generation", b"t"), b"generation\0t");
    assert_eq!(topic_key("message", b"t"), b"message\0t");
    // A topic whose name holds NULs and another topic's name stays a topic of its own.
    let bus = store();
    publish(&bus, b"x\0message\0x", Some(Value::Int(7))).expect("published");
    assert_eq!(topic_state(&bus, b"x").expect("state"), (0, None));
    assert_eq!(
        topic_state(&bus, b"x\0message\0x").expect("state"),
        (1, Some(Value::Int(7)))
    );
}

#[test]
fn metric_samples_add_up_or_are_set_under_one_lock() {
    let metrics = store();
    let read = |key: &[u8]| match get_at(&metrics, std::str::from_utf8(key).unwrap(), 0) {
        Some(Value::Bytes(b)) => f64::from_ne_bytes(b.try_into().expect("8 bytes")),
        other => panic!("a float sample was expected, not {other:?}"),
    };
    let (count, gauge) = (b"count".to_vec(), b"gauge".to_vec());
    update_floats(
        &metrics,
        &[(count.clone(), 1.5, false), (gauge.clone(), 9.0, true)],
    )
    .expect("updated");
    update_floats(
        &metrics,
        &[(count.clone(), 2.0, false), (gauge.clone(), 4.0, true)],
    )
    .expect("updated");
    assert_eq!(read(&count), 3.5, "added");
    assert_eq!(read(&gauge), 4.0, "set");
}

#[test]
fn a_metric_family_keeps_the_type_it_was_declared_with() {
    let metrics = store();
    declare_family(&metrics, b"meta:jobs", "counter", "Jobs run").expect("declared");
    declare_family(&metrics, b"meta:jobs", "counter", "Other help").expect("same type again");
    match declare_family(&metrics, b"meta:jobs", "gauge", "Jobs run") {
        Err(Failure::BadKey(text)) => {
            assert_eq!(text, "metric already declared as a counter, not a gauge")
        }
        _ => panic!("a second type is refused"),
    }
    assert_eq!(
        get_at(&metrics, "meta:jobs", 0),
        Some(Value::Str("counter\nJobs run".into())),
        "the first declaration stays"
    );
}
