//! startup-timeout, as mod_wsgi: a daemon process whose WSGI script has not loaded
//! within startup-timeout of its first request is replaced, and the replacement serves.

mod common;
use common::{Apache, Mpm};
use std::time::{Duration, Instant};

/// The first import in a server sleeps 3 s (it leaves a marker for the next ones).
const SLOW_FIRST_IMPORT: &str = r#"
import os, time
marker = os.path.join(os.path.dirname(__file__), "imported-once")
if not os.path.exists(marker):
    open(marker, "w").close()
    time.sleep(3)

def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
"#;

#[test]
fn a_script_still_loading_after_startup_timeout_gets_its_process_replaced() {
    // WSGIProcessGroup, not the alias's process-group=, which would preload the script
    // at process start.
    let conf = "WSGIDaemonProcess slow processes=1 threads=2 startup-timeout=1\n\
        WSGIScriptAlias / {root}/app/app.wsgi\nWSGIProcessGroup slow\n";
    let mut apache = Apache::start(Mpm::Event, conf, &[("app/app.wsgi", SLOW_FIRST_IMPORT)]);
    let port = apache.port;
    let first = std::thread::spawn(move || common::get(port, "/"));
    // Timed from the start of the slow import, which the request set off.
    common::wait_for_file(
        &apache.scratch.dir.join("app/imported-once"),
        "the slow import",
    );
    let started = Instant::now();
    let log = apache.wait_for_log("WSGI1146");
    assert!(
        started.elapsed() < Duration::from_millis(2900),
        "replaced before the import ended, not after: {:?}",
        started.elapsed()
    );
    assert!(log.contains("startup-timeout (1 s)"), "{log}");
    apache.wait_for_log("is due for recycling (startup-timeout)");
    // The request that was loading the script is finished by its process, which then
    // makes way for the replacement.
    let first = first.join().unwrap();
    assert_eq!(first.status, 200, "{}", apache.error_log());
    let old = first.text();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = apache.get("/");
        assert_eq!(r.status, 200, "{}", apache.error_log());
        if r.text() != old {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{old} was not replaced\n{}",
            apache.error_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    apache.wait_for_log(&format!("daemon process {old} of group 'slow' exiting"));
    // The replacement loaded the script in time: nothing more is replaced.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        apache.error_log().matches("WSGI1146").count(),
        1,
        "{}",
        apache.error_log()
    );
    apache.stop();
}
