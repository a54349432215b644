//! `WSGISharedStore name redis://...` against a real Apache and a real `redis-server`: the
//! same API checks pass on a Redis store and on a shared-memory store, concurrent
//! increments from daemons and prefork children add up exactly, two Apache servers share
//! one counter (the multi-host case), and a Redis server that goes away gives
//! `SharedStoreUnavailable` and a log line, then works again without a restart.

mod common;
use common::redis::RedisServer;
use common::{Apache, Mpm};

const APP: &str = r#"
import time, urllib.parse
import mod_wsgi

def check(store):
    """The store API, as a user sees it; returns what went wrong."""
    failures = []
    def expect(what, got, want):
        if got != want:
            failures.append("%s: got %r, want %r" % (what, got, want))
    def raises(what, exception, call):
        try:
            call()
            failures.append("%s: no %s" % (what, exception.__name__))
        except exception:
            pass
    store.clear()
    store.set("s", "café"); store.set("digits", "42"); store["b"] = b"\xff\x00"; store["n"] = -42
    expect("str", store.get("s"), "café")
    expect("str of digits", store.get("digits"), "42")
    expect("bytes", store["b"], b"\xff\x00")
    expect("int", store["n"], -42)
    expect("missing", store.get("nope", "dflt"), "dflt")
    raises("missing item", KeyError, lambda: store["nope"])
    expect("contains", ("s" in store, "nope" in store), (True, False))
    expect("bytes key", store.get(b"s"), "café")
    expect("incr", store.incr("n", 50), 8)
    expect("decr new", store.decr("fresh", 3), -3)
    raises("incr str", TypeError, lambda: store.incr("s"))
    store["max"] = 2**63 - 1
    raises("overflow", OverflowError, lambda: store.incr("max"))
    raises("bad value", TypeError, lambda: store.set("f", 1.5))
    raises("long key", ValueError, lambda: store.set("k" * 70000, 1))
    expect("cas absent", store.cas("c", None, "1"), True)
    expect("cas present", store.cas("c", None, "2"), False)
    expect("cas int vs str", store.cas("c", 1, "2"), False)
    expect("cas match", store.cas("c", "1", "2"), True)
    expect("after cas", store["c"], "2")
    expect("delete", (store.delete("c"), store.delete("c")), (True, False))
    del store["fresh"]
    raises("del missing", KeyError, lambda: store.__delitem__("fresh"))
    expect("keys", sorted(store.keys()), ["b", "digits", "max", "n", "s"])
    expect("keys by prefix", store.keys("d"), ["digits"])
    expect("len", len(store), 5)
    expect("stats keys", store.stats()["keys"], 5)
    store.set("short", "v", ttl=0.2)
    store.cas("short2", None, "v", ttl=0.2)
    expect("before ttl", (store.get("short"), store.get("short2")), ("v", "v"))
    time.sleep(0.4)
    expect("after ttl", (store.get("short"), store.get("short2")), (None, None))
    store.clear()
    expect("cleared", store.keys(), [])
    return failures

def application(environ, start_response):
    q = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", "")))
    path = environ["PATH_INFO"]
    status = "200 OK"
    try:
        store = mod_wsgi.shared(q.get("store", "remote"))
        if path == "/check":
            body = "; ".join(check(store)) or "ok %s" % store.stats()["backend"]
        elif path == "/incr":
            body = str(store.incr(q.get("key", "hits")))
        elif path == "/get":
            body = repr(store.get(q["key"]))
        else:
            body = "?"
    except mod_wsgi.SharedStoreUnavailable as e:
        status, body = "503 Service Unavailable", "unavailable: %s" % e
    start_response(status, [("Content-Type", "text/plain")])
    return [body.encode()]
"#;

fn conf(redis_port: u16) -> String {
    format!(
        "WSGISharedStore remote redis://127.0.0.1:{redis_port}/2 prefix=it: timeout=2
WSGISharedStore local size=1M
WSGIDaemonProcess one processes=2 threads=4
WSGIDaemonProcess two processes=2 threads=4
WSGIScriptAlias /one {{root}}/app/app.wsgi process-group=one application-group=%{{GLOBAL}}
WSGIScriptAlias /two {{root}}/app/app.wsgi process-group=two
WSGIScriptAlias /embedded {{root}}/app/app.wsgi
"
    )
}

fn start(redis: &RedisServer) -> Apache {
    Apache::start(Mpm::Prefork, &conf(redis.port), &[("app/app.wsgi", APP)])
}

#[test]
fn the_redis_store_passes_the_same_api_checks_as_shared_memory() {
    let redis = RedisServer::start();
    let apache = start(&redis);
    assert_eq!(apache.get_ok("/embedded/check?store=local"), "ok memory");
    assert_eq!(apache.get_ok("/embedded/check?store=remote"), "ok redis");
    assert_eq!(apache.get_ok("/one/check?store=remote"), "ok redis");
    assert!(
        apache
            .error_log()
            .contains("shared store 'remote': redis://127.0.0.1:"),
        "startup names the server:\n{}",
        apache.error_log()
    );
}

#[test]
fn increments_from_daemons_and_children_add_up_exactly_in_redis() {
    let redis = RedisServer::start();
    let apache = start(&redis);
    let prefixes = ["/one", "/two", "/embedded"];
    std::thread::scope(|s| {
        for client in 0..8 {
            let apache = &apache;
            s.spawn(move || {
                for i in 0..1000 {
                    apache.get_ok(&format!("{}/incr", prefixes[(client + i) % 3]));
                }
            });
        }
    });
    assert_eq!(apache.get_ok("/two/get?key=hits"), "8000");
    assert_eq!(redis.cli(2, &["GET", "it:hits"]), "8000");
}

#[test]
fn two_apache_servers_share_one_counter_through_redis() {
    let redis = RedisServer::start();
    let (first, second) = (start(&redis), start(&redis));
    std::thread::scope(|s| {
        for apache in [&first, &second] {
            for _ in 0..2 {
                s.spawn(move || {
                    for _ in 0..250 {
                        apache.get_ok("/one/incr?key=cluster");
                    }
                });
            }
        }
    });
    assert_eq!(first.get_ok("/embedded/get?key=cluster"), "1000");
    assert_eq!(second.get_ok("/embedded/get?key=cluster"), "1000");
}

#[test]
fn a_redis_outage_is_reported_and_survived_without_a_restart() {
    let mut redis = RedisServer::start();
    let port = redis.port;
    let mut apache = start(&redis);
    apache.allow_log("WSGI1135");
    assert_eq!(apache.get_ok("/one/incr"), "1");
    redis.stop();
    let r = apache.get("/one/incr");
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.text().contains("store 'remote'"), "{}", r.text());
    assert!(
        r.text().contains(&format!("127.0.0.1:{port}")),
        "{}",
        r.text()
    );
    apache.wait_for_log("WSGI1135: shared store 'remote'");
    let local = apache.get_ok("/one/incr?store=local");
    assert_eq!(local, "1", "memory stores are unaffected");

    let _redis = RedisServer::on(port);
    // Each process notices on its own; the one that logged the outage logs the recovery.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut served = 0;
    while !apache
        .error_log()
        .contains("WSGI1136: shared store 'remote'")
    {
        let r = apache.get("/one/incr");
        if r.status == 200 {
            served += 1;
            assert_eq!(
                r.text(),
                served.to_string(),
                "a fresh server, counting again"
            );
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never recovered: {}",
            r.text()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn apache_starts_while_redis_is_down_and_says_so() {
    let port = common::free_port();
    let mut apache = Apache::start(Mpm::Prefork, &conf(port), &[("app/app.wsgi", APP)]);
    apache.allow_log("WSGI1135");
    apache.wait_for_log("WSGI1135: shared store 'remote'");
    let r = apache.get("/embedded/incr");
    assert_eq!(r.status, 503, "{}", r.text());
    let _redis = RedisServer::on(port);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(apache.get_ok("/embedded/incr"), "1");
}
