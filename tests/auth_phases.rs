//! mod_wsgi's scripts in Apache's phases against a real Apache (event and prefork):
//! Basic and Digest authentication through WSGIAuthUserScript, `Require wsgi-group`
//! through WSGIAuthGroupScript, WSGIAccessScript allowing and refusing before the
//! application runs, WSGIDispatchScript routing URLs to daemon groups, interpreters and
//! callables, and scripts that fail: always a 500 with the phase and the traceback in the
//! log, never a request let through.

mod common;
use common::{Apache, Mpm};
use std::process::Command;

const APP: &str = r#"
def application(environ, start_response):
    body = "user=%s;auth_type=%s;group=%s;interp=%s;end" % (
        environ.get("REMOTE_USER", "-"), environ.get("AUTH_TYPE", "-"),
        environ["mod_wsgi.process_group"],
        environ["mod_wsgi.application_group"].rpartition("|")[2])
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]

def other(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"other callable"]
"#;

const AUTH: &str = r#"
import hashlib

USERS = {"spy": "secret", "citizen": "secret", "witness": "secret", "accent": "secret",
         "euro": "secret"}
RENAMED = {"witness": "agent-007", "accent": "ag\u00e9nte", "euro": "ag\u20ac"}
GROUPS = {"spy": ["secret-agents", "staff"], "agent-007": [b"secret-agents"]}

def check_password(environ, user, password):
    assert environ["mod_wsgi.application_group"] == ""
    environ["wsgi.errors"].write("checked %s\n" % user)
    if user not in USERS:
        return None
    if user in RENAMED and password == USERS[user]:
        return RENAMED[user]
    return password == USERS[user]

def get_realm_hash(environ, user, realm):
    if user not in USERS:
        return None
    return hashlib.md5(("%s:%s:%s" % (user, realm, USERS[user])).encode()).hexdigest()

def groups_for_user(environ, user):
    return GROUPS.get(user, [])

def allow_access(environ, host):
    assert host == "127.0.0.1", host
    return not environ["PATH_INFO"].startswith("/deny")
"#;

const BROKEN: &str = r#"
def check_password(environ, user, password):
    raise RuntimeError("user database is down")

def groups_for_user(environ, user):
    return 42

def allow_access(environ, host):
    return "yes"
"#;

const DISPATCH: &str = r#"
def process_group(environ):
    name = environ["PATH_INFO"].strip("/")
    return name if name in ("one", "two") else None

def application_group(environ):
    return "picked" if environ["PATH_INFO"] == "/interp" else None

def callable_object(environ):
    return "other" if environ["PATH_INFO"] == "/other" else None
"#;

const CONF: &str = r#"
LoadModule authn_core_module {mods}/mod_authn_core.so
LoadModule auth_basic_module {mods}/mod_auth_basic.so
LoadModule auth_digest_module {mods}/mod_auth_digest.so
LoadModule authz_user_module {mods}/mod_authz_user.so
WSGIDaemonProcess one processes=1 threads=2
WSGIDaemonProcess two processes=1 threads=2
WSGIScriptAlias /basic {root}/app/app.wsgi
WSGIScriptAlias /digest {root}/app/app.wsgi
WSGIScriptAlias /group {root}/app/app.wsgi
WSGIScriptAlias /access {root}/app/app.wsgi
WSGIScriptAlias /daemon {root}/app/app.wsgi process-group=one
WSGIScriptAlias /broken {root}/app/app.wsgi
WSGIScriptAlias /broken-group {root}/app/app.wsgi
WSGIScriptAlias /broken-access {root}/app/app.wsgi
WSGIScriptAlias /missing {root}/app/app.wsgi
WSGIScriptAlias /dispatch {root}/app/app.wsgi
<Location /basic>
  AuthType Basic
  AuthName "Basic Area"
  AuthBasicProvider wsgi
  WSGIAuthUserScript {root}/app/auth.wsgi
  Require valid-user
</Location>
<Location /daemon>
  AuthType Basic
  AuthName "Daemon Area"
  AuthBasicProvider wsgi
  WSGIAuthUserScript {root}/app/auth.wsgi
  Require valid-user
</Location>
<Location /digest>
  AuthType Digest
  AuthName "Digest Area"
  AuthDigestProvider wsgi
  WSGIAuthUserScript {root}/app/auth.wsgi
  Require valid-user
</Location>
<Location /group>
  AuthType Basic
  AuthName "Group Area"
  AuthBasicProvider wsgi
  WSGIAuthUserScript {root}/app/auth.wsgi
  WSGIAuthGroupScript {root}/app/auth.wsgi
  Require wsgi-group secret-agents
</Location>
<Location /access>
  WSGIAccessScript {root}/app/auth.wsgi
</Location>
<Location /broken>
  AuthType Basic
  AuthName "Broken"
  AuthBasicProvider wsgi
  WSGIAuthUserScript {root}/app/broken.wsgi
  Require valid-user
</Location>
<Location /broken-group>
  AuthType Basic
  AuthName "Broken group"
  AuthBasicProvider wsgi
  WSGIAuthUserScript {root}/app/auth.wsgi
  WSGIAuthGroupScript {root}/app/broken.wsgi
  Require wsgi-group staff
</Location>
<Location /broken-access>
  WSGIAccessScript {root}/app/broken.wsgi
</Location>
<Location /missing>
  AuthType Basic
  AuthName "Missing"
  AuthBasicProvider wsgi
  WSGIAuthUserScript {root}/app/no-such-script.wsgi
  Require valid-user
</Location>
<Location /dispatch>
  WSGIDispatchScript {root}/app/dispatch.py
</Location>
"#;

fn start(mpm: Mpm, restrict_embedded: bool) -> Apache {
    start_with(mpm, restrict_embedded, "")
}

fn start_with(mpm: Mpm, restrict_embedded: bool, extra: &str) -> Apache {
    let mods = common::apache_modules_dir().display().to_string();
    let mut conf = format!("{}\n{extra}", CONF.replace("{mods}", &mods));
    if restrict_embedded {
        // Only daemon mode may run applications; the scripts still run in the children.
        conf = conf.replace(
            "WSGIScriptAlias /basic {root}/app/app.wsgi",
            "WSGIRestrictEmbedded On\nWSGIScriptAlias /basic {root}/app/app.wsgi process-group=two",
        );
    }
    let mut apache = Apache::start(
        mpm,
        &conf,
        &[
            ("app/app.wsgi", APP),
            ("app/auth.wsgi", AUTH),
            ("app/broken.wsgi", BROKEN),
            ("app/dispatch.py", DISPATCH),
        ],
    );
    for allowed in [
        "checked ",
        "WSGI1150",
        "WSGI0059",
        "WSGI0060",
        "WSGI0057",
        "Traceback",
        "File \"",
        "raise RuntimeError",
        "RuntimeError: user database is down",
        "^^^^",
        "AH01617",
        "AH01618",
        "AH01790",
        "AH01794",
        "AH01630",
        "AH01631",
        "AH01797",
        "AH01779",
        "No such file or directory",
        "no-such-script",
        "access to ",
    ] {
        apache.allow_log(allowed);
    }
    apache
}

fn basic(user: &str, password: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("{user}:{password}").into_bytes();
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    format!("Basic {out}")
}

fn get_as(apache: &Apache, path: &str, user: &str, password: &str) -> common::http::Response {
    apache.request(
        "GET",
        path,
        &[("Authorization", &basic(user, password))],
        b"",
    )
}

/// Digest needs the server's nonce: curl does the exchange. (status, body)
fn digest(apache: &Apache, path: &str, user: &str, password: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args([
            "-s",
            "--digest",
            "-u",
            &format!("{user}:{password}"),
            "-w",
            "\n%{http_code}",
        ])
        .arg(format!("http://127.0.0.1:{}{path}", apache.port))
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

fn authentication_and_authorisation(mpm: Mpm) {
    let apache = start(mpm, false);
    let r = apache.get("/basic");
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"Basic Area\"")
    );
    let r = get_as(&apache, "/basic", "spy", "secret");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "user=spy;auth_type=Basic;group=;interp=/basic;end")
    );
    assert_eq!(
        get_as(&apache, "/basic", "spy", "wrong").status,
        401,
        "wrong password"
    );
    assert_eq!(
        get_as(&apache, "/basic", "nobody", "x").status,
        401,
        "unknown user (None)"
    );
    let r = get_as(&apache, "/basic", "witness", "secret");
    assert!(
        r.text().starts_with("user=agent-007;"),
        "a str result names the user: {}",
        r.text()
    );
    assert!(
        apache.error_log().contains("checked spy"),
        "wsgi.errors reaches the log"
    );

    let r = get_as(&apache, "/daemon", "spy", "secret");
    assert_eq!(
        r.text(),
        "user=spy;auth_type=Basic;group=one;interp=/daemon;end"
    );
    assert_eq!(get_as(&apache, "/daemon", "spy", "nope").status, 401);

    assert_eq!(
        digest(&apache, "/digest", "spy", "secret"),
        (
            200,
            "user=spy;auth_type=Digest;group=;interp=/digest;end".to_owned()
        )
    );
    assert_eq!(digest(&apache, "/digest", "spy", "wrong").0, 401);
    assert_eq!(digest(&apache, "/digest", "nobody", "secret").0, 401);

    assert_eq!(
        get_as(&apache, "/group", "spy", "secret").status,
        200,
        "in the group"
    );
    assert_eq!(
        get_as(&apache, "/group", "witness", "secret").status,
        200,
        "bytes group names"
    );
    assert_eq!(
        get_as(&apache, "/group", "citizen", "secret").status,
        401,
        "in no group"
    );
    assert_eq!(
        get_as(&apache, "/group", "spy", "wrong").status,
        401,
        "authentication first"
    );
    assert!(
        apache
            .error_log()
            .contains("WSGI0059: user 'citizen' is not a member of any group")
    );

    assert_eq!(apache.get("/access/allow").status, 200);
    let r = apache.get("/access/deny");
    assert_eq!(r.status, 403, "refused before the application runs");
    assert!(!r.text().contains("user="), "{}", r.text());
    assert!(
        apache
            .error_log()
            .contains("WSGI0057: client 127.0.0.1 denied by WSGIAccessScript")
    );
}

#[test]
fn scripts_authenticate_authorise_and_refuse_under_event() {
    authentication_and_authorisation(Mpm::Event);
}

#[test]
fn scripts_authenticate_authorise_and_refuse_under_prefork() {
    authentication_and_authorisation(Mpm::Prefork);
}

#[test]
fn a_failing_script_is_a_500_never_a_pass() {
    let apache = start(Mpm::Event, false);
    let r = get_as(&apache, "/broken", "spy", "secret");
    assert_eq!(r.status, 500, "raising check_password");
    let log = apache.error_log();
    assert!(log.contains("WSGI1150: authentication script"), "{log}");
    assert!(log.contains("RuntimeError: user database is down"), "{log}");

    assert_eq!(
        get_as(&apache, "/broken-group", "spy", "secret").status,
        500,
        "groups_for_user returned 42"
    );
    assert!(
        apache
            .error_log()
            .contains("expected an iterable of group names")
    );
    assert_eq!(
        apache.get("/broken-access/x").status,
        500,
        "allow_access returned a str"
    );
    assert!(apache.error_log().contains("expected True, False or None"));
    assert_eq!(
        get_as(&apache, "/missing", "spy", "secret").status,
        500,
        "missing script"
    );
    assert!(apache.error_log().contains("no-such-script.wsgi"));
    // The server keeps serving.
    assert_eq!(get_as(&apache, "/basic", "spy", "secret").status, 200);
}

#[test]
fn a_dispatch_script_picks_group_interpreter_and_callable() {
    let apache = start(Mpm::Event, false);
    let text = |path: &str| apache.get_ok(path);
    assert_eq!(
        text("/dispatch/one"),
        "user=-;auth_type=-;group=one;interp=/dispatch;end"
    );
    assert_eq!(
        text("/dispatch/two"),
        "user=-;auth_type=-;group=two;interp=/dispatch;end"
    );
    assert_eq!(
        text("/dispatch/interp"),
        "user=-;auth_type=-;group=;interp=picked;end"
    );
    assert_eq!(text("/dispatch/other"), "other callable");
    assert_eq!(
        text("/dispatch/none"),
        "user=-;auth_type=-;group=;interp=/dispatch;end"
    );
}

#[test]
fn scripts_run_in_the_children_under_restrict_embedded() {
    let apache = start(Mpm::Event, true);
    let r = get_as(&apache, "/basic", "spy", "secret");
    assert_eq!(
        r.text(),
        "user=spy;auth_type=Basic;group=two;interp=/basic;end"
    );
    assert_eq!(get_as(&apache, "/basic", "spy", "wrong").status, 401);
}

#[test]
fn pass_apache_request_gives_a_capsule_in_embedded_mode_only() {
    let app = r#"
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [type(environ.get("apache.request_rec")).__name__.encode()]
"#;
    let conf = "LoadModule env_module {mods}/mod_env.so
WSGIDaemonProcess one processes=1 threads=2
WSGIScriptAlias /embedded {root}/app/app.wsgi
WSGIScriptAlias /daemon {root}/app/app.wsgi process-group=one
WSGIScriptAlias /off {root}/app/app.wsgi
<Location /embedded>
  WSGIPassApacheRequest On
</Location>
<Location /daemon>
  WSGIPassApacheRequest On
  SetEnv apache.request_rec 1234
</Location>
<Location /off>
  SetEnv apache.request_rec 1234
</Location>
"
    .replace(
        "{mods}",
        &common::apache_modules_dir().display().to_string(),
    );
    let apache = Apache::start(Mpm::Event, &conf, &[("app/app.wsgi", app)]);
    assert_eq!(apache.get_ok("/embedded"), "PyCapsule");
    // A variable of that name from SetEnv never becomes (or stands for) the capsule.
    assert_eq!(apache.get_ok("/daemon"), "NoneType");
    assert_eq!(apache.get_ok("/off"), "NoneType");
}

#[test]
fn auth_scripts_belong_in_directory_sections_and_need_a_path() {
    for (body, expected) in [
        ("WSGIAuthUserScript /srv/auth.wsgi", "not allowed here"),
        (
            "<Location />\n  WSGIAccessScript /srv/a.wsgi process-group=x\n</Location>",
            "unknown option 'process-group'",
        ),
        (
            "<Location />\n  WSGIAuthGroupScript\n</Location>",
            "WSGIAuthGroupScript",
        ),
    ] {
        let (ok, output) = common::configtest(body, &[]);
        assert!(!ok, "{body}: accepted");
        assert!(output.contains(expected), "{body}: {output}");
        assert!(output.contains("httpd.conf"), "names the file: {output}");
    }
}

#[test]
fn an_edited_auth_script_is_reloaded_before_the_next_check() {
    // One child, so the one that loaded the script is the one asked again.
    let mut apache = start_with(
        Mpm::Prefork,
        false,
        "StartServers 1\nMinSpareServers 1\nMaxSpareServers 1\nServerLimit 1\nMaxRequestWorkers 1",
    );
    apache.allow_log("AH00161"); // "server reached MaxRequestWorkers": one child, on purpose
    assert_eq!(get_as(&apache, "/basic", "citizen", "secret").status, 200);
    std::thread::sleep(std::time::Duration::from_millis(20));
    apache.scratch.write(
        "app/auth.wsgi",
        &AUTH.replace("\"citizen\": \"secret\", ", ""),
    );
    assert_eq!(get_as(&apache, "/basic", "citizen", "secret").status, 401);
    assert_eq!(get_as(&apache, "/basic", "spy", "secret").status, 200);
}
