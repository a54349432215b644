//! mod_wsgi 6's configuration surface: the directives and daemon options a
//! mod_wsgi-express 6 configuration (or a 4.x one) uses start the server, those with an
//! effect here have it, and those that cannot act on this Python say so in the log.

mod common;
use common::{Apache, Mpm, configtest};
use std::time::{Duration, Instant};

const APP: &str = r#"
import os, sys, warnings, mod_wsgi
def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path.endswith("/pid"):
        body = str(os.getpid())
    else:
        filters = [f[0] + ":" + f[2].__name__ for f in warnings.filters[:2]]
        body = "%s|%s|%s|%s" % (
            sys.getswitchinterval(), ",".join(filters),
            os.environ.get("PYTHON_EGG_CACHE"), mod_wsgi.process_group)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]
"#;

/// Directives as mod_wsgi-express 6 writes them, and mod_wsgi 4's removed ones.
const EXPRESS_STYLE: &str = r#"
WSGIVerboseDebugging 'Off'
WSGISocketRotation Off
WSGIDestroyInterpreter On
WSGIServerMetrics Off
WSGIAcceptMutex default
WSGIPythonWarnings ignore::DeprecationWarning
WSGIPythonWarnings error::UserWarning
WSGISwitchInterval 0.015625
WSGIPythonEggs {root}/eggs
WSGIPerInterpreterGIL On
WSGIFreeThreading On
WSGITelemetryService unix:{root}/telemetry.sock interval=1
WSGITelemetryOptions +CaptureUserAgent
WSGISlowRequests 2.5
WSGILazyInitialization On
WSGINewRelicConfigFile /etc/newrelic.ini
WSGIDaemonProcess 'localhost:8000' display-name='(wsgi:localhost:8000)' \
    home='{root}/app' threads=5 header-buffer-size=0 interrupt-timeout=0 \
    response-buffer-size=0 response-socket-timeout=0 response-flush-delay=5 \
    server-metrics=Off switch-interval=0.03125 lang='en_US.UTF-8' locale='en_US.UTF-8' \
    newrelic-environment=production
WSGIScriptAlias /d {root}/app/app.wsgi process-group='localhost:8000' application-group=%{GLOBAL}
WSGIScriptAlias /e {root}/app/app.wsgi
"#;

#[test]
fn an_express_style_configuration_starts_and_applies_what_it_can() {
    let mut apache = Apache::start(Mpm::Event, EXPRESS_STYLE, &[("app/app.wsgi", APP)]);
    let embedded = apache.get_ok("/e/");
    let filters = "error:UserWarning,ignore:DeprecationWarning";
    let eggs = apache.scratch.path("eggs");
    assert_eq!(embedded, format!("0.015625|{filters}|{eggs}|"), "embedded");
    let daemon = apache.get_ok("/d/");
    assert!(
        daemon.starts_with(&format!("0.03125|{filters}|")) && daemon.ends_with("|localhost:8000"),
        "daemon: {daemon}"
    );
    let log = apache.wait_for_log("WSGI1162");
    for expected in [
        "WSGI1141: WSGILazyInitialization",
        "WSGI1141: WSGINewRelicConfigFile",
        "newrelic-environment= was removed",
        "WSGI0200: WSGIFreeThreading On",
        // The telemetry reporter runs (no ingester listens: its datagrams are dropped).
        "WSGI1162: telemetry reporter",
    ] {
        assert!(log.contains(expected), "no {expected:?} in:\n{log}");
    }
    assert_eq!(
        log.contains("WSGI0198: WSGIPerInterpreterGIL On ("),
        common::python_version() < (3, 12),
        "an own GIL needs Python 3.12:\n{log}"
    );
    apache.stop();
}

#[test]
fn bad_values_of_the_new_directives_fail_configtest_with_file_and_line() {
    for (conf, expected) in [
        ("WSGISwitchInterval 0", "WSGISwitchInterval"),
        (
            "WSGIAcceptMutex spinlock",
            "accept mutex 'spinlock' is invalid",
        ),
        ("WSGITelemetryService udp:host:1", "unix:/path"),
        ("WSGITelemetryService unix:/x interval=0.1", "at least 0.5"),
        ("WSGITelemetryOptions None +CaptureUserAgent", "do not mix"),
        (
            "WSGITelemetryOptions +CaptureReferer",
            "unknown flag 'CaptureReferer'",
        ),
        ("WSGIPerInterpreterGIL maybe", "WSGIPerInterpreterGIL"),
        (
            "WSGIDaemonProcess a script-user=root script-group=root",
            "only one of script-user",
        ),
        (
            "WSGIDaemonProcess a header-buffer-size=10",
            "header-buffer-size",
        ),
        ("WSGIDaemonProcess a switch-interval=-1", "switch-interval"),
    ] {
        let (ok, out) = configtest(conf, &[]);
        assert!(!ok, "accepted {conf}");
        assert!(
            out.contains(expected) && out.contains("httpd.conf"),
            "{conf}: {out}"
        );
    }
}

#[test]
fn script_user_and_script_group_refuse_scripts_owned_by_others() {
    // The test's files are owned by root.
    let conf = "WSGIDaemonProcess mine threads=2 script-user=root\n\
                WSGIDaemonProcess theirs threads=2 script-group=www-data\n\
                WSGIScriptAlias /mine {root}/app/app.wsgi process-group=mine\n\
                WSGIScriptAlias /theirs {root}/app/app.wsgi process-group=theirs\n";
    let mut apache = Apache::start(Mpm::Event, conf, &[("app/app.wsgi", APP)]);
    apache.allow_log("WSGI1044");
    assert_eq!(apache.get("/mine/pid").status, 200);
    assert_eq!(apache.get("/theirs/pid").status, 403);
    apache.wait_for_log(
        "is not owned as script-user=/script-group= of daemon process group 'theirs'",
    );
    apache.stop();
}

#[test]
fn a_threads_0_group_runs_its_service_script_and_takes_no_requests() {
    let service = r#"
import os, threading, time
def beat():
    while True:
        with open(os.path.join(os.path.dirname(__file__), "beat"), "a") as f:
            f.write("%d\n" % os.getpid())
        time.sleep(0.2)
threading.Thread(target=beat, daemon=True).start()
"#;
    let conf = "WSGIDaemonProcess service threads=0\n\
                WSGIImportScript {root}/app/service.py process-group=service application-group=%{GLOBAL}\n\
                WSGIScriptAlias /s {root}/app/app.wsgi process-group=service\n";
    let mut apache = Apache::start(
        Mpm::Event,
        conf,
        &[("app/app.wsgi", APP), ("app/service.py", service)],
    );
    apache.allow_log("WSGI1043");
    common::wait_for_file(&apache.scratch.dir.join("app/beat"), "the service script");
    let started = Instant::now();
    assert_eq!(apache.get("/s/pid").status, 500);
    assert!(started.elapsed() < Duration::from_secs(1));
    apache.wait_for_log("has threads=0");
    apache.stop();
}

#[test]
fn requests_under_wsgi_ignore_activity_do_not_keep_a_daemon_alive() {
    let conf = "WSGIDaemonProcess idle threads=2 inactivity-timeout=2\n\
                WSGIScriptAlias / {root}/app/app.wsgi process-group=idle\n\
                <Location /health>\n  WSGIIgnoreActivity On\n</Location>\n";
    let mut apache = Apache::start(Mpm::Event, conf, &[("app/app.wsgi", APP)]);
    let first = apache.get_ok("/pid");
    // Health checks every 300 ms for 4 s: the daemon still counts as idle and recycles.
    let deadline = Instant::now() + Duration::from_secs(6);
    let mut recycled = false;
    while Instant::now() < deadline && !recycled {
        let r = apache.get("/health/pid");
        assert_eq!(r.status, 200, "{}", apache.error_log());
        recycled = r.text() != first;
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(
        recycled,
        "health checks kept the process alive:\n{}",
        apache.error_log()
    );
    apache.stop();
}

#[test]
fn embedded_mode_preloads_at_child_start_as_mod_wsgi_does() {
    let marker = r#"
import os
open(os.path.join(os.path.dirname(__file__), "%s-%d" % (os.path.basename(__file__).split(".")[0], os.getpid())), "w").close()
"#;
    let app = format!(
        "{marker}\ndef application(environ, start_response):\n    start_response('200 OK', [])\n    return [b'%d' % os.getpid()]\n"
    );
    let conf = "WSGIImportScript {root}/app/service.py process-group=%{GLOBAL} application-group=%{GLOBAL}\n\
                WSGIScriptAlias /a {root}/app/app.wsgi process-group=%{GLOBAL} application-group=%{GLOBAL}\n";
    let mut apache = Apache::start(
        Mpm::Prefork,
        conf,
        &[("app/app.wsgi", &app), ("app/service.py", marker)],
    );
    // No request yet: every child has loaded both at its start.
    let deadline = Instant::now() + Duration::from_secs(5);
    let loaded = |prefix: &str| -> Vec<String> {
        std::fs::read_dir(apache.scratch.dir.join("app"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(prefix))
            .collect()
    };
    while (loaded("app-").len() < 2 || loaded("service-").len() < 2) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        loaded("app-").len() >= 2,
        "{:?}\n{}",
        loaded("app-"),
        apache.error_log()
    );
    assert!(loaded("service-").len() >= 2, "{:?}", loaded("service-"));
    // The request finds the script loaded: no second import in that child.
    let pid = apache.get_ok("/a");
    assert!(loaded("app-").contains(&format!("app-{pid}")));
    apache.stop();
}

#[test]
fn a_handler_script_serves_the_resources_of_its_handler_in_both_modes() {
    let handler = r#"
import os
def handle_request(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("%s|%s|%s" % (environ["mod_wsgi.handler_script"].endswith("handler.wsgi"),
        os.path.basename(environ["SCRIPT_FILENAME"]), environ["mod_wsgi.process_group"])).encode()]
"#;
    let conf = "WSGIDaemonProcess handlers threads=2\n\
                WSGIHandlerScript py-embedded {root}/app/handler.wsgi\n\
                WSGIHandlerScript py-daemon {root}/app/handler.wsgi process-group=handlers application-group=%{GLOBAL}\n\
                Alias /docs {root}/app/docs\n\
                <Directory {root}/app/docs>\n  AddHandler py-embedded .py\n</Directory>\n\
                <Location /virtual>\n  SetHandler py-daemon\n  Require all granted\n</Location>\n\
                Alias /local {root}/app/local\n\
                <Directory {root}/app/local>\n  WSGIHandlerScript py-embedded {root}/app/handler.wsgi process-group=handlers\n  AddHandler py-embedded .py\n</Directory>\n";
    let mut apache = Apache::start(
        Mpm::Event,
        &format!(
            "LoadModule alias_module {}/mod_alias.so\nLoadModule mime_module {}/mod_mime.so\nTypesConfig /etc/mime.types\n{conf}",
            common::apache_modules_dir().display(),
            common::apache_modules_dir().display()
        ),
        &[
            ("app/handler.wsgi", handler),
            ("app/docs/page.py", "print('not run')\n"),
            ("app/local/page.py", "print('not run')\n"),
        ],
    );
    // A WSGIHandlerScript of a <Directory> wins there over the server's of the same name.
    assert_eq!(apache.get_ok("/local/page.py"), "True|page.py|handlers");
    assert_eq!(apache.get_ok("/docs/page.py"), "True|page.py|");
    // The resource need not exist: the handler decides.
    assert_eq!(apache.get_ok("/virtual/anything"), "True|virtual|handlers");
    apache.stop();
}

#[test]
fn every_interpreter_has_the_apache_module_and_the_environ_its_version() {
    let app = r#"
import apache
def application(environ, start_response):
    facts = (apache.version == environ["apache.version"], len(apache.version),
        apache.mpm_name, apache.maximum_processes > 0, apache.threads_per_process > 0,
        apache.description.startswith("Apache/"), bool(apache.build_date))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [repr(facts).encode()]
"#;
    let conf = "WSGIDaemonProcess facts threads=2\n\
                WSGIScriptAlias /d {root}/app/app.wsgi process-group=facts\n\
                WSGIScriptAlias /e {root}/app/app.wsgi\n";
    let mut apache = Apache::start(Mpm::Event, conf, &[("app/app.wsgi", app)]);
    for path in ["/e", "/d"] {
        assert_eq!(
            apache.get_ok(path),
            "(True, 3, 'event', True, True, True, True)",
            "{path}"
        );
    }
    apache.stop();
}

#[test]
fn interpreter_options_sections_set_path_restrictions_and_switch_interval_per_interpreter() {
    let app = r#"
import sys
def application(environ, start_response):
    try:
        print("hello")
        stdout = "open"
    except Exception as e:
        stdout = type(e).__name__
    marks = [p.rsplit("/", 1)[-1] for p in sys.path if p.rsplit("/", 1)[-1] in ("all", "d1")]
    body = "%s|%s|%s" % (",".join(marks), stdout, sys.getswitchinterval())
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]
"#;
    let conf = "<WSGIInterpreterOptions>
  WSGIPythonPath {root}/app/all
</WSGIInterpreterOptions>
<WSGIInterpreterOptions process-group=d1>
  WSGIPythonPath {root}/app/d1
  WSGIRestrictStdout On
</WSGIInterpreterOptions>
<WSGIInterpreterOptions application-group=restricted>
  WSGIRestrictStdout On
</WSGIInterpreterOptions>
<WSGIInterpreterOptions process-group=%{GLOBAL} application-group=restricted>
  WSGISwitchInterval 0.02
</WSGIInterpreterOptions>
<WSGIInterpreterOptions process-group=%{GLOBAL}>
  WSGISwitchInterval 0.015625
</WSGIInterpreterOptions>
WSGIDaemonProcess d1 threads=2 python-path={root}/app/d1
WSGIScriptAlias /d {root}/app/app.wsgi process-group=d1 application-group=%{GLOBAL}
WSGIScriptAlias /e {root}/app/app.wsgi application-group=%{GLOBAL}
WSGIScriptAlias /r {root}/app/app.wsgi application-group=restricted
";
    let mut apache = Apache::start(
        Mpm::Event,
        conf,
        &[
            ("app/app.wsgi", app),
            ("app/all/marker.txt", ""),
            ("app/d1/marker.txt", ""),
        ],
    );
    apache.allow_log("WSGI0199");
    apache.allow_log("restricted");
    apache.allow_log("] hello");
    assert_eq!(
        apache.get_ok("/d"),
        "d1,all|OSError|0.005",
        "the daemon's block first"
    );
    assert_eq!(
        apache.get_ok("/e"),
        "all|open|0.015625",
        "embedded main interpreter"
    );
    assert_eq!(
        apache.get_ok("/r"),
        "all|OSError|0.015625",
        "a named interpreter"
    );
    apache.wait_for_log("WSGI0199: WSGISwitchInterval 0.02s of <WSGIInterpreterOptions> for interpreter 'restricted' skipped");
    apache.stop();
    for (body, expected) in [
        (
            "<WSGIInterpreterOptions>\n  WSGIScriptAlias / /srv/a.wsgi\n</WSGIInterpreterOptions>",
            "WSGIScriptAlias is not allowed inside it",
        ),
        (
            "<WSGIInterpreterOptions callable-object=x>\n</WSGIInterpreterOptions>",
            "unknown option 'callable-object'",
        ),
        (
            "<VirtualHost *:80>\n<WSGIInterpreterOptions>\n</WSGIInterpreterOptions>\n</VirtualHost>",
            "cannot occur within",
        ),
    ] {
        let (ok, output) = common::configtest(body, &[]);
        assert!(!ok, "{body}: accepted");
        assert!(output.contains(expected), "{body}: {output}");
    }
}
