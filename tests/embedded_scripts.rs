//! Script handling: raising apps, syntax errors, missing scripts and callables,
//! reloading by mtime or a script's reload_required(), WSGICallableObject, SetHandler/AddHandler with ExecCGI,
//! WSGIScriptAliasMatch, directory targets and WSGIRestrictEmbedded.

mod common;
use common::{Apache, Mpm};
use std::time::{Duration, SystemTime};

const OK_APP: &str = "def application(environ, start_response):\n    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [b'ok ' + environ['SCRIPT_NAME'].encode() + b' ' + environ['PATH_INFO'].encode()]\n";

fn allow_tracebacks(apache: &mut Apache) {
    for allowed in [
        "WSGI1020",
        "WSGI1021",
        "Traceback",
        "  File ",
        "    ",
        "Error",
        "^^^",
        "    raise",
    ] {
        apache.allow_log(allowed);
    }
}

#[test]
fn raising_app_gives_500_and_the_child_keeps_serving() {
    let app = "def application(environ, start_response):\n    if environ['PATH_INFO'] == '/boom':\n        raise ZeroDivisionError('division by the void')\n    start_response('200 OK', [])\n    return [b'fine']\n";
    for mpm in [Mpm::Prefork, Mpm::Event] {
        let mut apache = Apache::start(
            mpm,
            "WSGIScriptAlias /a {root}/app/a.wsgi\n",
            &[("app/a.wsgi", app)],
        );
        for _ in 0..3 {
            assert_eq!(apache.get("/a/boom").status, 500);
            assert_eq!(apache.get("/a/ok").text(), "fine");
        }
        let log = apache.wait_for_log("ZeroDivisionError: division by the void");
        assert!(
            log.contains("WSGI1020: exception occurred processing WSGI script"),
            "{log}"
        );
        assert!(
            log.contains("[client 127.0.0.1:"),
            "traceback is logged against the request"
        );
        allow_tracebacks(&mut apache);
        apache.stop();
    }
}

#[test]
fn syntax_error_missing_script_and_missing_callable() {
    let files = [
        (
            "app/syntax.wsgi",
            "def application(environ, start_response)\n    return []\n",
        ),
        (
            "app/nocallable.wsgi",
            "def app(environ, start_response):\n    return []\n",
        ),
        ("app/ok.wsgi", OK_APP),
        // Read as Latin-1, as its coding declaration says: the UTF-8 'é' is two characters.
        (
            "app/latin1.wsgi",
            "# -*- coding: latin-1 -*-\nWORD = 'é'\ndef application(environ, start_response):\n    start_response('200 OK', [])\n    return [str(len(WORD)).encode()]\n",
        ),
        ("app/nul.wsgi", "X = 1\0\n"),
    ];
    let conf = "WSGIScriptAlias /syntax {root}/app/syntax.wsgi\n\
                WSGIScriptAlias /latin1 {root}/app/latin1.wsgi\n\
                WSGIScriptAlias /nul {root}/app/nul.wsgi\n\
                WSGIScriptAlias /missing {root}/app/missing.wsgi\n\
                WSGIScriptAlias /nocallable {root}/app/nocallable.wsgi\n\
                WSGIScriptAlias /ok {root}/app/ok.wsgi\n";
    let mut apache = Apache::start(Mpm::Event, conf, &files);
    assert_eq!(apache.get("/syntax").status, 500);
    let log = apache.wait_for_log("SyntaxError");
    assert!(
        log.contains("syntax.wsgi\", line 1"),
        "the log names the script and line: {log}"
    );
    assert_eq!(apache.get("/latin1").text(), "2");
    assert_eq!(apache.get("/nul").status, 500);
    apache.wait_for_log("source code string cannot contain null bytes");
    assert_eq!(apache.get("/missing").status, 404);
    apache.wait_for_log("WSGI0135: target WSGI script not found");
    assert_eq!(apache.get("/nocallable").status, 500);
    let log = apache.wait_for_log("does not contain WSGI application 'application'");
    assert!(log.contains("nocallable.wsgi"), "the log names the script");
    assert_eq!(apache.get("/ok").status, 200);
    allow_tracebacks(&mut apache);
    apache.allow_log("WSGI0135");
    apache.stop();
}

fn rewrite_later(path: &std::path::Path, content: &str) {
    std::fs::write(path, content).unwrap();
    // Make the mtime change visible even on coarse-grained file systems.
    let later = SystemTime::now() + Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(later)
        .unwrap();
}

/// /live reloads its script when it changes, /frozen (WSGIScriptReloading Off) does not.
const LIVE_AND_FROZEN: &str = "WSGIScriptAlias /live {root}/app/live.wsgi\n\
    WSGIScriptAlias /frozen {root}/app/frozen.wsgi\n\
    <Location /frozen>\n  WSGIScriptReloading Off\n</Location>\n\
    ServerLimit 1\nMaxRequestWorkers 8\n";

#[test]
fn scripts_reload_when_their_mtime_changes() {
    let v1 = "def application(e, s):\n    s('200 OK', [])\n    return [b'version 1']\n";
    let v2 = "def application(e, s):\n    s('200 OK', [])\n    return [b'version 2']\n";
    let mut apache = Apache::start(
        Mpm::Event,
        LIVE_AND_FROZEN,
        &[("app/live.wsgi", v1), ("app/frozen.wsgi", v1)],
    );
    assert_eq!(apache.get("/live").text(), "version 1");
    assert_eq!(apache.get("/frozen").text(), "version 1");
    rewrite_later(&apache.scratch.dir.join("app/live.wsgi"), v2);
    rewrite_later(&apache.scratch.dir.join("app/frozen.wsgi"), v2);
    assert_eq!(
        apache.get("/live").text(),
        "version 2",
        "touching the script reloads it"
    );
    assert_eq!(
        apache.get("/frozen").text(),
        "version 1",
        "WSGIScriptReloading Off keeps the loaded code"
    );
    apache.stop();
}

/// A script whose `reload_required(resource)` asks for a reload when app/reload.flag holds
/// a token other than the one its import saw ("raise" makes it raise); it answers with its
/// process id and how many times this interpreter imported it.
const RELOAD_HOOK_APP: &str = r#"
import builtins, os
FLAG = os.path.join(os.path.dirname(__file__), "reload.flag")
def token():
    try:
        with open(FLAG) as f:
            return f.read()
    except FileNotFoundError:
        return ""
builtins.imports = getattr(builtins, "imports", 0) + 1
IMPORT = builtins.imports
SEEN = token()
def reload_required(resource):
    if resource != __file__:
        raise RuntimeError("called with %r" % resource)
    now = token()
    if now == "raise":
        raise RuntimeError("the hook broke")
    return now != SEEN
def application(environ, start_response):
    start_response("200 OK", [])
    return [("%d %d" % (os.getpid(), IMPORT)).encode()]
"#;

#[test]
fn reload_required_hook_reloads_in_place_or_replaces_the_daemon() {
    let conf = "WSGIScriptAlias /embedded {root}/app/hook.wsgi\n\
        WSGIDaemonProcess hooked processes=1 threads=2\n\
        WSGIScriptAlias /daemon {root}/app/hook.wsgi process-group=hooked application-group=%{GLOBAL}\n\
        ServerLimit 1\nMaxRequestWorkers 8\n";
    let mut apache = Apache::start(Mpm::Event, conf, &[("app/hook.wsgi", RELOAD_HOOK_APP)]);
    let flag = apache.scratch.dir.join("app/reload.flag");
    let answer = |apache: &Apache, path: &str| -> (String, String) {
        let text = apache.get_ok(path);
        let (pid, imports) = text.split_once(' ').unwrap();
        (pid.to_owned(), imports.to_owned())
    };
    let (pid, first) = answer(&apache, "/embedded");
    assert_eq!(answer(&apache, "/embedded"), (pid.clone(), first.clone()));
    let (daemon_pid, _) = answer(&apache, "/daemon");

    std::fs::write(&flag, "deploy 2").unwrap();
    let (again, reloaded) = answer(&apache, "/embedded");
    assert_eq!(again, pid, "one Apache child (ServerLimit 1)");
    assert_ne!(
        reloaded, first,
        "reload_required() returning True reloads in place"
    );
    assert_eq!(answer(&apache, "/embedded").1, reloaded, "and only once");

    // A daemon asks for its replacement; the old code answers until it is ready.
    answer(&apache, "/daemon");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (now, _) = answer(&apache, "/daemon");
        if now != daemon_pid {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon was never replaced"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    std::fs::write(&flag, "raise").unwrap();
    assert_eq!(
        answer(&apache, "/embedded").1,
        reloaded,
        "a raising hook keeps the module"
    );
    apache.wait_for_log("the hook broke");
    apache.allow_log("WSGI1027");
    allow_tracebacks(&mut apache);
    apache.allow_log("RuntimeError");
    apache.stop();
}

#[test]
fn callable_object_handlers_and_alias_forms() {
    let files = [
        (
            "app/named.wsgi",
            "def handler(e, s):\n    s('200 OK', [])\n    return [b'named callable']\n",
        ),
        ("app/ok.wsgi", OK_APP),
        ("app/cgi/page.wsgi", OK_APP),
        ("app/noexec/page.wsgi", OK_APP),
        ("app/add/page.wsgi", OK_APP),
        ("app/dir/one.wsgi", OK_APP),
        ("app/match/two.wsgi", OK_APP),
    ];
    let conf = "WSGIScriptAlias /named {root}/app/named.wsgi callable-object=handler\n\
                WSGIScriptAlias /viadir {root}/app/named.wsgi\n\
                <Location /viadir>\n  WSGICallableObject handler\n</Location>\n\
                Alias /cgi {root}/app/cgi\n<Directory {root}/app/cgi>\n  Options +ExecCGI\n  SetHandler wsgi-script\n</Directory>\n\
                Alias /noexec {root}/app/noexec\n<Directory {root}/app/noexec>\n  Options -ExecCGI\n  SetHandler wsgi-script\n</Directory>\n\
                Alias /add {root}/app/add\n<Directory {root}/app/add>\n  Options +ExecCGI\n  AddHandler wsgi-script .wsgi\n</Directory>\n\
                WSGIScriptAlias /apps/ {root}/app/dir/\n\
                WSGIScriptAliasMatch ^/m/([^/]+) {root}/app/match/$1.wsgi\n";
    let mods = common::apache_modules_dir().display().to_string();
    let conf = format!(
        "LoadModule alias_module {mods}/mod_alias.so\nLoadModule mime_module {mods}/mod_mime.so\nTypesConfig /dev/null\n{conf}"
    );
    let mut apache = Apache::start(Mpm::Event, &conf, &files);
    assert_eq!(apache.get("/named").text(), "named callable");
    assert_eq!(apache.get("/viadir").text(), "named callable");
    assert_eq!(
        apache.get("/cgi/page.wsgi/x").text(),
        "ok /cgi/page.wsgi /x"
    );
    assert_eq!(apache.get("/add/page.wsgi").text(), "ok /add/page.wsgi ");
    assert_eq!(
        apache.get("/noexec/page.wsgi").status,
        403,
        "SetHandler without Options ExecCGI"
    );
    apache.wait_for_log("WSGI0134");
    assert_eq!(
        apache.get("/apps/one.wsgi/tail").text(),
        "ok /apps/one.wsgi /tail"
    );
    assert_eq!(apache.get("/m/two/more").text(), "ok /m/two /more");
    apache.allow_log("WSGI0134");
    apache.stop();
}

#[test]
fn restrict_embedded_refuses_requests() {
    let mut apache = Apache::start(
        Mpm::Event,
        "WSGIRestrictEmbedded On\nWSGIScriptAlias /ok {root}/app/ok.wsgi\n",
        &[("app/ok.wsgi", OK_APP)],
    );
    assert_eq!(apache.get("/ok").status, 500);
    apache.wait_for_log("WSGI0143");
    apache.allow_log("WSGI0143");
    apache.stop();
}

#[test]
fn output_and_signal_restrictions() {
    let app = r#"
import sys, signal
def application(environ, start_response):
    what = environ["PATH_INFO"]
    if what == "/stdin":
        try:
            sys.stdin.read()
            out = "stdin readable"
        except OSError as e:
            out = "stdin: %s" % e
    elif what == "/stdin-type":
        kind = type(sys.stdin)
        try:
            sys.stdin.closed
            out = "%s.%s open" % (kind.__module__, kind.__name__)
        except OSError as e:
            out = "%s.%s: %s" % (kind.__module__, kind.__name__, e)
    elif what == "/stdout":
        print("printed to stdout")
        out = "printed"
    elif what == "/stderr":
        import io
        assert isinstance(sys.stderr, io.TextIOWrapper), type(sys.stderr)
        assert isinstance(sys.stdout, io.TextIOWrapper), type(sys.stdout)
        assert isinstance(environ["wsgi.errors"], io.TextIOWrapper), type(environ["wsgi.errors"])
        assert environ["wsgi.errors"].name == "wsgi.errors", environ["wsgi.errors"].name
        try:
            sys.stderr.fileno()
            raise AssertionError("fileno() answered")
        except io.UnsupportedOperation:
            pass
        sys.stderr.buffer.write("caf\u00e9 via sys.stderr.buffer\n".encode())
        sys.stderr.write("to stderr\n")
        environ["wsgi.errors"].write("to wsgi.errors\n")
        binary = environ["wsgi.errors"].buffer
        binary.write(b"bytes to the buffer \xc3")
        binary.writelines([bytearray(b"\xa9 bytearray, "), memoryview(b"memoryview\n")])
        environ["wsgi.errors"].write("an unfinished line at the end")
        out = "logged"
    elif what == "/signal":
        before = signal.getsignal(signal.SIGUSR2)
        signal.signal(signal.SIGUSR2, lambda *a: None)
        out = "unchanged" if signal.getsignal(signal.SIGUSR2) == before else "changed"
    start_response("200 OK", [])
    return [out.encode()]
"#;
    let mut apache = Apache::start(
        Mpm::Event,
        "WSGIRestrictStdin On\nWSGIScriptAlias /r {root}/app/r.wsgi\n",
        &[("app/r.wsgi", app)],
    );
    assert_eq!(
        apache.get("/r/stdin").text(),
        "stdin: sys.stdin access restricted by mod_wsgi"
    );
    assert_eq!(
        apache.get("/r/stdin-type").text(),
        "mod_wsgi.Restricted: sys.stdin access restricted by mod_wsgi",
        "any attribute of a restricted stream refuses"
    );
    assert_eq!(apache.get("/r/stdout").text(), "printed");
    apache.wait_for_log("printed to stdout");
    assert_eq!(apache.get("/r/stderr").text(), "logged");
    apache.wait_for_log("to stderr");
    apache.wait_for_log(r"caf\xc3\xa9 via sys.stderr.buffer");
    let log = apache.wait_for_log("to wsgi.errors");
    let line = log.lines().find(|l| l.contains("to wsgi.errors")).unwrap();
    assert!(
        line.contains("[client 127.0.0.1:"),
        "wsgi.errors lines carry the request: {line}"
    );
    // Apache escapes the UTF-8 bytes of "é" in its log (and a backslash as two).
    apache.wait_for_log(r"bytes to the buffer \xc3\xa9 bytearray, memoryview");
    let log = apache.wait_for_log("an unfinished line at the end");
    let line = log
        .lines()
        .find(|l| l.contains("an unfinished line"))
        .unwrap();
    assert!(
        line.contains("[client 127.0.0.1:"),
        "flushed at the end of its request, with it: {line}"
    );
    assert_eq!(
        apache.get("/r/signal").text(),
        "unchanged",
        "WSGIRestrictSignal is On by default"
    );
    apache.wait_for_log("callback registration for signal");
    for allowed in [
        "printed to stdout",
        "to stderr",
        "via sys.stderr.buffer",
        "to wsgi.errors",
        "bytes to the buffer",
        "an unfinished line",
    ] {
        apache.allow_log(allowed);
    }
    apache.stop();

    let mut apache = Apache::start(
        Mpm::Event,
        "WSGIRestrictStdout On\nWSGIScriptAlias /r {root}/app/r.wsgi\n",
        &[("app/r.wsgi", app)],
    );
    assert_eq!(
        apache.get("/r/stdout").status,
        500,
        "print() raises with WSGIRestrictStdout On"
    );
    apache.wait_for_log("sys.stdout access restricted by mod_wsgi");
    allow_tracebacks(&mut apache);
    apache.allow_log("restricted");
    apache.stop();
}

#[test]
fn atexit_handlers_run_when_children_exit() {
    let app = "import atexit, os, mod_wsgi\n\
               def record():\n    open(os.path.join(MARKERS, 'atexit-%s-%d' % (mod_wsgi.application_group.replace('/', '_').replace('|', '_') or 'main', os.getpid())), 'w').write('ran')\n\
               atexit.register(record)\n\
               def application(environ, start_response):\n    start_response('200 OK', [])\n    return [b'registered']\n";
    let scratch = common::Scratch::new("atexit");
    let app = format!("MARKERS = {:?}\n{app}", scratch.path("markers"));
    scratch.write("app/a.wsgi", &app);
    scratch.write("markers/.keep", "");
    let conf = "WSGIScriptAlias /sub {root}/app/a.wsgi\nWSGIScriptAlias /main {root}/app/a.wsgi application-group=%{GLOBAL}\n";
    let markers = scratch.dir.join("markers");
    let mut apache = common::Apache::start_in(Mpm::Event, scratch, conf);
    assert_eq!(apache.get("/sub").text(), "registered");
    assert_eq!(apache.get("/main").text(), "registered");
    apache.stop();
    let names: Vec<String> = std::fs::read_dir(&markers)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with("atexit-main-")),
        "main interpreter atexit ran: {names:?}"
    );
    assert!(
        names.iter().any(|n| n.starts_with("atexit-127.0.0.1")),
        "sub-interpreter atexit ran: {names:?}"
    );
}

/// Requests that arrive while another thread is still importing the script wait for that
/// import instead of seeing the half-executed module, with or without reloading.
#[test]
fn concurrent_first_requests_wait_for_the_import() {
    let slow = "import time\ntime.sleep(0.5)\ndef application(e, s):\n    s('200 OK', [])\n    return [b'loaded']\n";
    let mut apache = Apache::start(
        Mpm::Event,
        LIVE_AND_FROZEN,
        &[("app/live.wsgi", slow), ("app/frozen.wsgi", slow)],
    );
    let port = apache.port;
    let handles: Vec<_> = ["/live", "/frozen"]
        .iter()
        .flat_map(|path| std::iter::repeat_n(*path, 4))
        .map(|path| std::thread::spawn(move || common::get(port, path)))
        .collect();
    for h in handles {
        let r = h.join().unwrap();
        assert_eq!(
            (r.status, r.text()),
            (200, "loaded".to_owned()),
            "{}",
            apache.error_log()
        );
    }
    apache.stop();
}
