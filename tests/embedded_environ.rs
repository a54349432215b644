//! The environ: CGI variables, SCRIPT_NAME/PATH_INFO, latin-1 decoding, header spoofing,
//! wsgi.* and mod_wsgi.* keys, Authorization passing and trusted proxy headers.

mod common;
use common::{Apache, Mpm};

const ENV_APP: &str = r#"
import json, mod_wsgi
def application(environ, start_response):
    out = {}
    for k, v in environ.items():
        out[k] = v if isinstance(v, str) else repr(v)
    out["__latin1_path"] = environ["PATH_INFO"].encode("latin-1").hex()
    out["__module"] = [mod_wsgi.process_group, mod_wsgi.application_group, list(mod_wsgi.version)]
    out["__errors_has_write"] = hasattr(environ["wsgi.errors"], "write")
    import apache
    out["__sizes"] = [mod_wsgi.maximum_processes, mod_wsgi.threads_per_process,
                      apache.maximum_processes, apache.threads_per_process]
    body = json.dumps(out).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
"#;

/// An event-MPM Apache with `conf`, serving ENV_APP as app/env.wsgi.
fn start_env_app(conf: &str) -> Apache {
    Apache::start(Mpm::Event, conf, &[("app/env.wsgi", ENV_APP)])
}

fn env_of(apache: &Apache, path: &str, headers: &[(&str, &str)]) -> serde_like::Map {
    let r = apache.request("GET", path, headers, b"");
    assert_eq!(r.status, 200, "{}", r.text());
    serde_like::parse(&r.text())
}

/// Minimal JSON object reader for flat string values (keeps the tests dependency-free).
mod serde_like {
    pub type Map = std::collections::HashMap<String, String>;
    pub fn parse(text: &str) -> Map {
        let out = std::process::Command::new("python3")
            .args(["-c", "import json,sys\nfor k,v in json.load(sys.stdin).items():\n  print(k); print(json.dumps(v) if not isinstance(v,str) else v.encode('unicode_escape').decode())"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(text.as_bytes())?;
                c.wait_with_output()
            })
            .expect("python3 to decode JSON");
        let s = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = s.lines().collect();
        lines
            .chunks(2)
            .map(|kv| {
                (
                    kv[0].to_owned(),
                    kv.get(1).copied().unwrap_or("").to_owned(),
                )
            })
            .collect()
    }
}

#[test]
fn cgi_and_wsgi_variables() {
    let mut apache = start_env_app(
        "WSGIScriptAlias /app {root}/app/env.wsgi\nWSGIScriptAlias / {root}/app/env.wsgi\n",
    );
    let env = env_of(
        &apache,
        "/app/a/b%20c?x=1&y=%41",
        &[("X-Custom", "hello"), ("Content-Type", "text/x")],
    );
    let expect = [
        ("REQUEST_METHOD", "GET"),
        ("SCRIPT_NAME", "/app"),
        ("PATH_INFO", "/a/b c"),
        ("QUERY_STRING", "x=1&y=%41"),
        ("REQUEST_URI", "/app/a/b%20c?x=1&y=%41"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("SERVER_NAME", "127.0.0.1"),
        ("REMOTE_ADDR", "127.0.0.1"),
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("HTTP_X_CUSTOM", "hello"),
        ("CONTENT_TYPE", "text/x"),
        ("wsgi.version", "(1, 0)"),
        ("wsgi.url_scheme", "http"),
        ("wsgi.multithread", "True"),
        ("wsgi.multiprocess", "True"),
        ("wsgi.run_once", "False"),
        ("wsgi.input_terminated", "True"),
        ("mod_wsgi.process_group", ""),
        ("mod_wsgi.callable_object", "application"),
        ("mod_wsgi.request_handler", "wsgi-script"),
        ("mod_wsgi.script_reloading", "1"),
        ("mod_wsgi.enable_sendfile", "0"),
        ("mod_wsgi.listener_host", "127.0.0.1"),
        ("mod_wsgi.script_name", "/app"),
        ("mod_wsgi.path_info", "/a/b c"),
        ("__errors_has_write", "true"),
    ];
    for (k, v) in expect {
        assert_eq!(env.get(k).map(String::as_str), Some(v), "environ[{k}]");
    }
    assert_eq!(env["SERVER_PORT"], apache.port.to_string());
    assert_eq!(env["mod_wsgi.listener_port"], apache.port.to_string());
    let group = format!("127.0.0.1:{}|/app", apache.port);
    assert_eq!(env["mod_wsgi.application_group"], group);
    assert_eq!(env["__module"], format!("[\"\", \"{group}\", [6, 1, 1]]"));
    // Embedded mode, as mod_wsgi 6: the MPM's process and thread limits, as the `apache`
    // module has them (the test's event MPM: one child in use of 2, ThreadsPerChild 8).
    assert_eq!(env["__sizes"], "[1, 8, 1, 8]");
    assert!(env["wsgi.file_wrapper"].contains("FileWrapper"));
    // mod_wsgi 6's timing keys: float seconds (queue and daemon start are 0.0 here).
    let request_start: f64 = env["mod_wsgi.request_start"].parse().unwrap();
    let application_start: f64 = env["mod_wsgi.application_start"].parse().unwrap();
    assert!(
        request_start > 1.7e9 && application_start >= request_start,
        "{request_start} {application_start}"
    );
    assert_eq!(env["mod_wsgi.queue_start"], "0.0");
    assert_eq!(env["mod_wsgi.daemon_start"], "0.0");
    assert!(env["mod_wsgi.thread_id"].parse::<u64>().unwrap() >= 1);
    assert!(env["mod_wsgi.thread_requests"].parse::<u64>().unwrap() >= 1);
    assert!(env["mod_wsgi.total_requests"].parse::<u64>().unwrap() >= 1);
    assert!(!env.contains_key("HTTP_AUTHORIZATION"));
    // As mod_wsgi: Apache's PATH is not passed; the Apache child's pid is.
    assert!(!env.contains_key("PATH"), "PATH={:?}", env.get("PATH"));
    assert!(env["mod_wsgi.server_pid"].parse::<u32>().unwrap() > 1);

    // Mounted at "/": SCRIPT_NAME is empty and PATH_INFO is the whole path.
    let root = env_of(&apache, "/some/where", &[]);
    assert_eq!(root["SCRIPT_NAME"], "");
    assert_eq!(root["PATH_INFO"], "/some/where");
    apache.stop();
}

#[test]
fn each_request_sees_its_own_values() {
    // Values that repeat between requests reuse the interpreter's str objects; each
    // request must still see exactly its own values, whichever came before it.
    let mut apache = start_env_app("WSGIScriptAlias /app {root}/app/env.wsgi\n");
    // (request path, headers, expected PATH_INFO, QUERY_STRING, HTTP_X_CUSTOM)
    type Case<'a> = (
        &'a str,
        &'a [(&'a str, &'a str)],
        &'a str,
        &'a str,
        Option<&'a str>,
    );
    let requests: [Case; 6] = [
        (
            "/app/one?x=1",
            &[("X-Custom", "a")],
            "/one",
            "x=1",
            Some("a"),
        ),
        (
            "/app/two?x=2",
            &[("X-Custom", "b")],
            "/two",
            "x=2",
            Some("b"),
        ),
        ("/app/one?x=1", &[], "/one", "x=1", None),
        (
            "/app/caf%E9",
            &[("X-Custom", "\u{e9}t\u{e9}")],
            "/caf\u{e9}",
            "",
            // Header bytes are UTF-8 on the wire, each one char.
            Some("\\xc3\\xa9t\\xc3\\xa9"),
        ),
        ("/app/caf", &[("X-Custom", "a")], "/caf", "", Some("a")),
        (
            "/app/one?x=1",
            &[("X-Custom", "a")],
            "/one",
            "x=1",
            Some("a"),
        ),
    ];
    for _round in 0..3 {
        for (path, headers, path_info, query, custom) in requests {
            let env = env_of(&apache, path, headers);
            assert_eq!(
                env["PATH_INFO"].replace("\\xe9", "\u{e9}"),
                path_info,
                "{path}"
            );
            assert_eq!(env["QUERY_STRING"], query, "{path}");
            assert_eq!(
                env.get("HTTP_X_CUSTOM").map(String::as_str),
                custom,
                "{path}"
            );
        }
    }
    apache.stop();
}

#[test]
fn latin1_decoding_and_underscore_headers() {
    let mut apache = start_env_app("WSGIScriptAlias /app {root}/app/env.wsgi\n");
    // %E9 is one byte (0xE9); PEP 3333 wants it as the str '\xe9'.
    let env = env_of(
        &apache,
        "/app/caf%E9",
        &[("X-Foo", "real"), ("X_Foo", "spoofed")],
    );
    assert_eq!(env["__latin1_path"], "2f636166e9");
    assert_eq!(
        env["HTTP_X_FOO"], "real",
        "a header spelled with '_' must not overwrite HTTP_X_FOO"
    );
    apache.stop();
}

#[test]
fn authorization_is_hidden_unless_passed() {
    let conf = "WSGIScriptAlias /hidden {root}/app/env.wsgi\n\
                WSGIScriptAlias /alias {root}/app/env.wsgi pass-authorization=On\n\
                WSGIScriptAlias /dir {root}/app/env.wsgi\n\
                <Location /dir>\n  WSGIPassAuthorization On\n</Location>\n";
    let mut apache = start_env_app(conf);
    let auth = [("Authorization", "Bearer secret-token")];
    assert!(!env_of(&apache, "/hidden", &auth).contains_key("HTTP_AUTHORIZATION"));
    assert_eq!(
        env_of(&apache, "/alias", &auth)["HTTP_AUTHORIZATION"],
        "Bearer secret-token"
    );
    assert_eq!(
        env_of(&apache, "/dir", &auth)["HTTP_AUTHORIZATION"],
        "Bearer secret-token"
    );
    apache.stop();
}

#[test]
fn trusted_proxy_headers() {
    let conf = "WSGIScriptAlias /trusted {root}/app/env.wsgi\n\
                WSGIScriptAlias /untrusted {root}/app/env.wsgi\n\
                <Location /trusted>\n  WSGITrustedProxyHeaders X-Forwarded-For X-Forwarded-Proto X-Forwarded-Host\n  WSGITrustedProxyHeaders X-Forwarded-Script-Name\n  WSGITrustedProxies 127.0.0.1\n</Location>\n\
                <Location /untrusted>\n  WSGITrustedProxyHeaders X-Forwarded-For X-Forwarded-Proto\n  WSGITrustedProxies 10.0.0.0/8\n</Location>\n";
    let mut apache = start_env_app(conf);
    let headers = [
        ("X-Forwarded-For", "203.0.113.9, 127.0.0.1"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "public.example"),
        ("X-Real-IP", "198.51.100.1"),
        ("X-Forwarded-Script-Name", "/public"),
    ];
    let env = env_of(&apache, "/trusted", &headers);
    assert_eq!(env["REMOTE_ADDR"], "203.0.113.9");
    assert_eq!(
        env["SCRIPT_NAME"], "/public",
        "a repeated directive adds headers"
    );
    assert_eq!(env["mod_wsgi.script_name"], "/trusted");
    assert_eq!(env["wsgi.url_scheme"], "https");
    assert!(!env.contains_key("HTTPS"), "HTTPS becomes wsgi.url_scheme");
    assert_eq!(env["HTTP_HOST"], "public.example");
    assert!(
        !env.contains_key("HTTP_X_REAL_IP"),
        "untrusted header of a trusted category is stripped"
    );

    let env = env_of(&apache, "/untrusted", &headers);
    assert_eq!(env["REMOTE_ADDR"], "127.0.0.1");
    assert_eq!(env["wsgi.url_scheme"], "http");
    assert!(!env.contains_key("HTTP_X_FORWARDED_FOR"));
    assert!(!env.contains_key("HTTP_X_FORWARDED_PROTO"));
    apache.stop();
}

#[test]
fn duplicate_slashes_after_the_mount_stay_in_path_info() {
    let conf = "MergeSlashes Off\nWSGIScriptAlias /mount {root}/app/env.wsgi\n";
    let mut apache = start_env_app(conf);
    let env = env_of(&apache, "/mount/a//b", &[]);
    assert_eq!(env["REQUEST_URI"], "/mount/a//b");
    assert_eq!(env["SCRIPT_NAME"], "/mount");
    assert_eq!(env["PATH_INFO"], "/a/b");
    apache.stop();
}
