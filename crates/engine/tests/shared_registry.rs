//! The registry of a server's shared stores (`shared`), without Python: stores found by
//! name (an unknown name lists the configured ones), a store a daemon group may not use
//! is denied with the reason and unmapped, broadcasts go through the own user's bus, and
//! application metrics are declared, updated and rendered in the exposition.

use mod_wsgi_config::StoreAccess;
use mod_wsgi_engine::shared::{
    self, Backend, Failure, Op, Partition, Registry, Reply, Store, metrics,
};
use mod_wsgi_store::{KeyKind, SharedStore, Value};
use std::sync::{Mutex, MutexGuard};

/// The registry is one per process: tests that install one take turns.
fn exclusive() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|p| p.into_inner())
}

fn memory() -> SharedStore {
    SharedStore::anonymous(1 << 20).expect("anonymous shared memory")
}

fn store(name: &str, access: StoreAccess) -> Store {
    Store {
        name: name.to_owned(),
        backend: Backend::Memory(memory()),
        access,
        defined_at: "httpd.conf:12".to_owned(),
    }
}

fn partition(uid: u32) -> Partition {
    Partition {
        uid,
        bus: memory(),
        app_metrics: memory(),
    }
}

fn set(name: &str, key: &str, value: i64) -> Result<Reply, Failure> {
    shared::execute(
        name,
        Op::Set {
            key: key.as_bytes().to_vec(),
            kind: KeyKind::Str,
            value: Value::Int(value),
            ttl_ms: None,
        },
    )
}

/// The failure of an operation that must fail.
fn refused(result: Result<Reply, Failure>) -> Failure {
    match result {
        Ok(_) => panic!("the operation was carried out"),
        Err(failure) => failure,
    }
}

fn get(name: &str, key: &str) -> Option<Value> {
    match shared::execute(name, Op::Get(key.as_bytes().to_vec())) {
        Ok(Reply::Value(v)) => v,
        Ok(_) => panic!("get answers a value"),
        Err(e) => panic!("get failed: {e}"),
    }
}

#[test]
fn stores_are_found_by_name_and_an_unknown_name_lists_the_configured_ones() {
    let _turn = exclusive();
    shared::install(Registry {
        stores: vec![
            store("profiles", StoreAccess::default()),
            store("cache", StoreAccess::default()),
        ],
        ..Registry::default()
    });
    assert_eq!(shared::store_names(), ["profiles", "cache"]);
    set("profiles", "user", 7).expect("set");
    assert_eq!(get("profiles", "user"), Some(Value::Int(7)));
    assert_eq!(get("cache", "user"), None, "each store has its own keys");
    let unknown = refused(set("profile", "user", 1));
    assert!(matches!(unknown, Failure::Unknown(..)));
    assert_eq!(
        unknown.to_string(),
        "no WSGISharedStore named 'profile' (configured: profiles, cache)"
    );
    shared::install(Registry::default());
    assert_eq!(
        refused(set("profiles", "user", 1)).to_string(),
        "no WSGISharedStore named 'profiles' (configured: none)"
    );
}

#[test]
fn a_store_a_group_may_not_use_is_denied_with_the_reason() {
    let _turn = exclusive();
    let only_web = StoreAccess {
        process_groups: Some(vec!["web".to_owned()]),
        embedded: true,
    };
    let daemons_only = StoreAccess {
        process_groups: None,
        embedded: false,
    };
    let registry = || Registry {
        stores: vec![
            store("web-cache", only_web.clone()),
            store("jobs", daemons_only.clone()),
            store("open", StoreAccess::default()),
        ],
        partitions: vec![partition(1000), partition(1001)],
        uid: 0,
        ..Registry::default()
    };
    shared::install(registry());
    shared::restrict_to(Some("worker"), 1000, 1000);
    assert_eq!(shared::store_names(), ["jobs", "open"]);
    let why = shared::denied_reason("web-cache").expect("denied");
    assert!(
        why.starts_with("shared store 'web-cache' is not available to process group 'worker'"),
        "{why}"
    );
    assert!(why.contains("httpd.conf:12"), "{why}");
    assert!(why.contains("process-groups=web"), "{why}");
    assert!(matches!(
        set("web-cache", "k", 1),
        Err(Failure::Denied(text)) if text == why
    ));
    let uids: Vec<u32> = shared::registry()
        .expect("installed")
        .partitions
        .iter()
        .map(|p| p.uid)
        .collect();
    assert_eq!(uids, [1000], "another user's bus and metrics are unmapped");

    shared::install(registry());
    shared::restrict_to(Some("tenant"), 1001, 1000);
    assert!(shared::store_names().is_empty());
    let why = shared::denied_reason("open").expect("denied");
    assert!(
        why.contains(
            "without process-groups= a store is only for processes that run as Apache's user"
        ),
        "{why}"
    );

    shared::install(registry());
    shared::restrict_to(None, 1000, 1000);
    assert_eq!(shared::store_names(), ["web-cache", "open"]);
    let why = shared::denied_reason("jobs").expect("denied");
    assert!(why.contains("Apache's children (embedded mode)"), "{why}");
    assert!(why.contains("embedded=Off"), "{why}");
    shared::install(Registry::default());
}

#[test]
fn broadcasts_go_through_the_bus_of_the_processes_user() {
    let _turn = exclusive();
    shared::install(Registry::default());
    assert!(matches!(
        shared::broadcast(b"config", None),
        Err(Failure::Unavailable(text)) if text == "no broadcast bus in this process"
    ));
    shared::install(Registry {
        partitions: vec![partition(1000), partition(1001)],
        uid: 1001,
        ..Registry::default()
    });
    let sequence = shared::bus_sequence().expect("a bus");
    assert_eq!(shared::topic_state(b"config").expect("state"), (0, None));
    let message = Some(Value::Bytes(b"reload".to_vec()));
    assert_eq!(
        shared::broadcast(b"config", message.clone()).expect("sent"),
        1
    );
    assert_eq!(
        shared::broadcast(b"config", message.clone()).expect("sent"),
        2
    );
    assert_eq!(shared::topic_state(b"config").expect("state"), (2, message));
    assert_eq!(
        shared::bus_sequence(),
        Some(sequence + 2),
        "every broadcast tells the processes to look"
    );
    let registry = shared::registry().expect("installed");
    let other_user = &registry.partitions[0];
    assert_eq!(other_user.uid, 1000);
    assert_eq!(
        other_user
            .bus
            .sequence()
            .load(std::sync::atomic::Ordering::Acquire),
        0,
        "another user's bus is untouched"
    );
    shared::install(Registry::default());
}

#[test]
fn application_metrics_are_declared_updated_and_rendered() {
    let _turn = exclusive();
    shared::install(Registry {
        partitions: vec![partition(1000)],
        uid: 1000,
        ..Registry::default()
    });
    shared::declare_metric("jobs_total", "counter", "Jobs run.").expect("declared");
    let add = |sample: &str, value: f64| (sample.to_owned(), value, false);
    shared::update_metric(
        "jobs_total",
        &[
            add("jobs_total{queue=\"mail\"}", 2.0),
            add("jobs_total", 1.0),
        ],
    )
    .expect("updated");
    shared::update_metric("jobs_total", &[add("jobs_total{queue=\"mail\"}", 3.0)])
        .expect("updated");
    let rendered = metrics::render();
    assert!(rendered.contains("# TYPE jobs_total counter"), "{rendered}");
    assert!(
        rendered.contains("# HELP jobs_total Jobs run."),
        "{rendered}"
    );
    assert!(
        rendered.contains("jobs_total{queue=\"mail\"} 5"),
        "{rendered}"
    );
    assert!(
        rendered.lines().any(|line| line == "jobs_total 1"),
        "{rendered}"
    );
    assert!(matches!(
        shared::declare_metric("jobs_total", "gauge", "Jobs run."),
        Err(Failure::BadKey(_))
    ));
    assert!(matches!(
        shared::declare_metric("2jobs", "counter", ""),
        Err(Failure::BadKey(text)) if text == "invalid metric name \"2jobs\""
    ));
    assert!(matches!(
        shared::update_metric("jobs_total", &[add("other_total", 1.0)]),
        Err(Failure::BadKey(_))
    ));
    shared::install(Registry::default());
}

#[test]
fn a_memory_store_reports_how_full_it_is() {
    let backend = Backend::Memory(memory());
    let op = Op::Set {
        key: b"k".to_vec(),
        kind: KeyKind::Bytes,
        value: Value::Bytes(vec![1; 64]),
        ttl_ms: None,
    };
    assert!(matches!(backend.execute("s", op), Ok(Reply::Done)));
    let stats = backend.stats("s").expect("memory stores can tell");
    assert_eq!(stats.keys, 1);
    assert!(stats.used_bytes >= 64 && stats.used_bytes <= stats.capacity_bytes);
}
