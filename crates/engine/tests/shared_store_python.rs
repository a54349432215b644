//! `mod_wsgi.shared()`, `broadcast()` and `subscribe()` as applications use them,
//! in-process over stores in anonymous shared memory: one store seen by every
//! interpreter, values keeping their Python type, failures raised as the documented
//! exceptions, and broadcasts delivered to subscribers before their next request.

mod common;

use common::{eval, python, request, script, serve};
use mod_wsgi_config::StoreAccess;
use mod_wsgi_engine::python::with_interpreter;
use mod_wsgi_engine::shared::{self, Backend, Partition, Registry, Store};
use mod_wsgi_engine::wsgi::Outcome;
use mod_wsgi_store::SharedStore;
use std::sync::Once;

/// CPython, with the stores "cache" and "tiny" and a store "secret" this process may
/// not use.
fn setup() {
    static STORES: Once = Once::new();
    STORES.call_once(|| {
        let memory = |len| SharedStore::anonymous(len).expect("anonymous shared memory");
        let store = |name: &str, len| Store {
            name: name.to_owned(),
            backend: Backend::Memory(memory(len)),
            access: StoreAccess::default(),
            defined_at: "httpd.conf:3".to_owned(),
        };
        shared::install(Registry {
            stores: vec![store("cache", 1 << 20), store("tiny", 128 * 1024)],
            denied: vec![("secret".to_owned(), "not for this group".to_owned())],
            partitions: vec![Partition {
                uid: 0,
                bus: memory(1 << 20),
                app_metrics: memory(1 << 20),
            }],
            uid: 0,
        });
    });
    python();
}

fn in_group<T: for<'py> pyo3::conversion::FromPyObjectOwned<'py>>(group: &str, code: &str) -> T {
    with_interpreter(group, |py, _| eval(py, code)).expect("entered")
}

#[test]
fn one_store_is_seen_by_every_interpreter_with_values_as_they_went_in() {
    setup();
    let _: Option<i64> = in_group(
        "writer",
        r#"
import mod_wsgi
cache = mod_wsgi.shared("cache")
cache.set("text", "caf\u00e9")
cache["raw"] = b"\x00\xff"
cache.set(b"number", -3)
result = None
"#,
    );
    let seen: String = in_group(
        "",
        r#"
import mod_wsgi
cache = mod_wsgi.shared("cache")
result = repr([cache.get("text"), cache["raw"], cache.get(b"number"),
               cache.get("absent", "default"), "raw" in cache, "absent" in cache])
"#,
    );
    assert_eq!(seen, r"['café', b'\x00\xff', -3, 'default', True, False]");
}

#[test]
fn counters_compare_and_set_keys_and_stats_work_from_python() {
    setup();
    let seen: String = in_group(
        "counting",
        r#"
import mod_wsgi
cache = mod_wsgi.shared("cache")
steps = [cache.incr("py:hits"), cache.incr("py:hits", 10), cache.decr("py:hits", 2)]
steps += [cache.cas("py:owner", None, "a"), cache.cas("py:owner", None, "b"),
          cache.cas("py:owner", "a", "c"), cache.get("py:owner")]
steps += [sorted(cache.keys("py:")), cache.delete("py:owner"), cache.delete("py:owner")]
stats = cache.stats()
steps += [stats["backend"], stats["keys"] >= 1]
result = repr(steps)
"#,
    );
    assert_eq!(
        seen,
        "[1, 11, 9, True, False, True, 'c', ['py:hits', 'py:owner'], True, False, 'memory', True]"
    );
}

#[test]
fn failures_raise_the_documented_exceptions() {
    setup();
    let seen: Vec<String> = in_group(
        "failing",
        r#"
import mod_wsgi
cache = mod_wsgi.shared("cache")
def outcome(f):
    try:
        f()
        return "no error"
    except Exception as e:
        return "%s: %s" % (type(e).__name__, e.args[0])
cache.set("fail:name", "ann")
result = [
    outcome(lambda: mod_wsgi.shared("cahce")),
    outcome(lambda: mod_wsgi.shared("secret")),
    outcome(lambda: cache.incr("fail:name")),
    outcome(lambda: cache.set("fail:ttl", 1, ttl=0)),
    outcome(lambda: cache.set("fail:float", 1.5)),
    outcome(lambda: cache.set(1, 1)),
    outcome(lambda: cache["fail:absent"]),
]
try:
    mod_wsgi.shared("tiny").set("fail:big", b"x" * 200000)
    result.append("no error")
except MemoryError as e:
    result.append("%s %s" % (type(e).__name__, isinstance(e, mod_wsgi.SharedStoreError)))
"#,
    );
    let kind = |text: &str| text.split(':').next().unwrap_or_default().to_owned();
    assert_eq!(
        seen[0],
        "KeyError: no WSGISharedStore named 'cahce' (configured: cache, tiny)"
    );
    assert_eq!(seen[1], "PermissionError: not for this group");
    assert_eq!(kind(&seen[2]), "TypeError", "{}", seen[2]);
    assert_eq!(
        seen[3],
        "ValueError: ttl must be a number of seconds above 0"
    );
    assert_eq!(
        seen[4],
        "TypeError: shared store values are bytes, str or int, not float"
    );
    assert_eq!(
        seen[5],
        "TypeError: shared store keys are str or bytes, not int"
    );
    assert_eq!(seen[6], "KeyError: fail:absent");
    assert_eq!(seen[7], "SharedStoreFull True");
}

#[test]
fn subscribers_get_the_latest_broadcast_before_their_next_request() {
    setup();
    let path = script(
        "subscriber.wsgi",
        r#"
import mod_wsgi
received = []
mod_wsgi.subscribe("settings", lambda topic, message: received.append((topic, message)))

def application(environ, start_response):
    start_response("200 OK", [])
    return [repr(received).encode()]
"#,
    );
    let (outcome, first) = serve(request(&path, "subscriber"), b"");
    assert_eq!(outcome, Outcome::Complete, "{}", first.log_text());
    assert_eq!(first.body_text(), "[]", "nothing broadcast yet");
    let generations: (i64, i64) = in_group(
        "publisher",
        r#"
import mod_wsgi
result = (mod_wsgi.broadcast("settings", "v1"), mod_wsgi.broadcast("settings", "v2"))
"#,
    );
    assert_eq!(generations, (1, 2));
    let (_, second) = serve(request(&path, "subscriber"), b"");
    assert_eq!(
        second.body_text(),
        "[('settings', 'v2')]",
        "two broadcasts between requests: one call, latest message"
    );
    let (_, third) = serve(request(&path, "subscriber"), b"");
    assert_eq!(third.body_text(), "[('settings', 'v2')]", "delivered once");
    let late: String = in_group(
        "late-subscriber",
        r#"
import mod_wsgi
seen = []
mod_wsgi.subscribe("settings", lambda topic, message: seen.append(message))
result = repr(seen)
"#,
    );
    assert_eq!(late, "['v2']", "a later subscriber catches up at once");
}
