//! The module loads and serves WSGI apps under the prefork, worker and event MPMs, with
//! the banner, `<IfModule>` names and the wsgi.multithread/multiprocess flags of each.

mod common;
use common::{ALL_MPMS, Apache, Mpm};

const APP: &str = r#"
import os, mod_wsgi
def application(environ, start_response):
    body = "%s %s %s %s" % (environ["wsgi.multithread"], environ["wsgi.multiprocess"],
                            os.getpid(), mod_wsgi.application_group)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]
"#;

const CONF: &str = r#"
<IfModule mod_wsgi.c>
  WSGIScriptAlias /app {root}/app/app.wsgi
</IfModule>
<IfModule wsgi_module>
  WSGIScriptAlias /other {root}/app/app.wsgi
</IfModule>
"#;

fn check(mpm: Mpm) {
    let mut apache = Apache::start(mpm, CONF, &[("app/app.wsgi", APP)]);
    let r = apache.get("/app");
    assert_eq!(r.status, 200, "{mpm:?}: {}", r.text());
    let words: Vec<String> = r.text().split(' ').map(str::to_owned).collect();
    let threaded = if mpm == Mpm::Prefork { "False" } else { "True" };
    assert_eq!(words[0], threaded, "{mpm:?} wsgi.multithread");
    assert_eq!(words[1], "True", "{mpm:?} wsgi.multiprocess");
    let banner = r.header("Server").unwrap_or_default().to_owned();
    assert!(
        banner.contains("mod_wsgi_rs/") && banner.contains("Python/3."),
        "banner: {banner}"
    );
    assert_eq!(
        apache.get("/other").status,
        200,
        "{mpm:?}: <IfModule wsgi_module> block"
    );
    for _ in 0..20 {
        assert_eq!(apache.get("/app").status, 200);
    }
    apache.stop();
}

#[test]
fn serves_under_prefork() {
    check(ALL_MPMS[0]);
}

#[test]
fn serves_under_worker() {
    check(ALL_MPMS[1]);
}

#[test]
fn serves_under_event() {
    check(ALL_MPMS[2]);
}

#[test]
fn graceful_and_hard_restarts_keep_serving() {
    for mpm in [Mpm::Prefork, Mpm::Event] {
        let mut apache = Apache::start(mpm, CONF, &[("app/app.wsgi", APP)]);
        // The event MPM logs this when a hard restart tears down its pollset while a
        // worker is parking the previous request's kept-alive connection (Apache's own
        // race; the response had been sent).
        apache.allow_log("AH03093");
        assert_eq!(apache.get("/app").status, 200);
        for signal in ["-USR1", "-HUP", "-USR1"] {
            let generation = apache
                .error_log()
                .matches("resuming normal operations")
                .count();
            apache.signal(signal);
            // Wait until the parent has re-read its config and started a new generation.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
            while apache
                .error_log()
                .matches("resuming normal operations")
                .count()
                == generation
            {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{mpm:?}: no restart after {signal}"
                );
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            let r = apache.get("/app");
            assert_eq!(r.status, 200, "{mpm:?} after {signal}: {}", r.text());
        }
        apache.stop();
    }
}
