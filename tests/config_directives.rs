//! Directives: mistakes fail `apache2 -t` naming the directive (file and line come from
//! Apache), and the WSGIPython* settings take effect in the interpreter.

mod common;
use common::{Apache, Mpm, configtest};

#[test]
fn malformed_directives_fail_configtest() {
    let cases = [
        (
            "WSGIScriptAlias /a /x.wsgi threads=3",
            "WSGIScriptAlias: unknown option 'threads'",
        ),
        (
            "WSGIScriptAlias /a",
            "WSGIScriptAlias: wrong number of arguments",
        ),
        (
            "WSGIScriptAlias /a /x.wsgi process-group=nosuch",
            "process-group 'nosuch' is not defined by any WSGIDaemonProcess",
        ),
        (
            "WSGIScriptAlias /a /x.wsgi pass-authorization=maybe",
            "expected On or Off",
        ),
        (
            "WSGIScriptAliasMatch ^/(unclosed /x.wsgi",
            "does not compile",
        ),
        (
            "WSGIApplicationGroup %{BOGUS}",
            "WSGIApplicationGroup: invalid value '%{BOGUS}'",
        ),
        (
            "WSGICallableObject not-an-identifier",
            "WSGICallableObject: invalid value",
        ),
        (
            "WSGIPythonOptimize 5",
            "WSGIPythonOptimize: invalid value '5'",
        ),
        (
            "WSGIPythonHashSeed lots",
            "WSGIPythonHashSeed: invalid value 'lots'",
        ),
        (
            "WSGIChunkedRequest yes",
            "WSGIChunkedRequest: expected On or Off, got 'yes'",
        ),
        (
            "WSGIMapHEADToGET Sometimes",
            "WSGIMapHEADToGET: invalid value",
        ),
        ("WSGITrustedProxyHeaders X-Evil", "not a proxy header"),
        ("WSGITrustedProxies 10.0.0.0/99", "bad prefix length"),
        (
            "<VirtualHost *:80>\nWSGIPythonHome /usr\n</VirtualHost>",
            "cannot occur within <VirtualHost> section",
        ),
    ];
    for (directive, expect) in cases {
        let (ok, output) = configtest(directive, &[]);
        assert!(!ok, "{directive:?} was accepted:\n{output}");
        assert!(
            output.contains(expect),
            "{directive:?}: expected {expect:?} in:\n{output}"
        );
        assert!(
            output.contains("httpd.conf"),
            "{directive:?}: the error names the file:\n{output}"
        );
    }
}

#[test]
fn a_complete_valid_config_passes() {
    let conf = "WSGIPythonOptimize 1\nWSGIPythonHashSeed 0\nWSGIDontWriteBytecode On\n\
                WSGIRestrictStdin On\nWSGIRestrictStdout Off\nWSGIRestrictSignal On\nWSGIRestrictEmbedded Off\n\
                WSGIPythonPath /tmp:/var/tmp\nWSGICaseSensitivity On\n\
                WSGIScriptAlias /a /x.wsgi process-group=%{GLOBAL} application-group=%{GLOBAL} callable-object=app pass-authorization=On\n\
                WSGIScriptAliasMatch ^/m/([^/]+) /m/$1.wsgi\n\
                <Location /a>\n WSGIProcessGroup %{GLOBAL}\n WSGIApplicationGroup %{ENV:X}\n WSGICallableObject app\n\
                 WSGIPassAuthorization On\n WSGIChunkedRequest On\n WSGIMapHEADToGET Auto\n WSGIScriptReloading Off\n\
                 WSGIEnableSendfile On\n WSGITrustedProxyHeaders X-Forwarded-For X-Forwarded-Proto\n WSGITrustedProxies 127.0.0.1 10.0.0.0/8 ::1\n</Location>\n";
    let (ok, output) = configtest(conf, &[]);
    assert!(ok, "valid config refused:\n{output}");
}

const FLAGS_APP: &str = r#"
import sys, json, site_marker_module
def application(environ, start_response):
    body = json.dumps({
        "optimize": sys.flags.optimize,
        "hash_randomization": sys.flags.hash_randomization,
        "dont_write_bytecode": sys.dont_write_bytecode,
        "pth_ran": getattr(sys, "pth_marker", False),
        "marker": site_marker_module.VALUE,
        "prefix": sys.prefix,
        "argv": sys.argv,
    }, sort_keys=True)
    start_response("200 OK", [])
    return [body.encode()]
"#;

#[test]
fn python_settings_take_effect() {
    let conf = "WSGIPythonOptimize 2\nWSGIPythonHashSeed 0\nWSGIDontWriteBytecode On\n\
                WSGIPythonPath {root}/app/site\nWSGIScriptAlias /flags {root}/app/flags.wsgi\n";
    let files = [
        ("app/flags.wsgi", FLAGS_APP),
        (
            "app/site/site_marker_module.py",
            "VALUE = 'from WSGIPythonPath'\n",
        ),
        ("app/site/marker.pth", "import sys; sys.pth_marker = True\n"),
    ];
    let mut apache = Apache::start(Mpm::Event, conf, &files);
    let text = apache.get("/flags").text();
    for expect in [
        "\"optimize\": 2",
        "\"hash_randomization\": 0",
        "\"dont_write_bytecode\": true",
        "\"pth_ran\": true",
        "\"marker\": \"from WSGIPythonPath\"",
        "\"argv\": [\"mod_wsgi\"]",
    ] {
        assert!(text.contains(expect), "expected {expect} in {text}");
    }
    apache.stop();
}

#[test]
fn python_home_accepts_a_virtual_environment() {
    let scratch = common::Scratch::new("venv");
    let venv = scratch.dir.join("venv");
    let python = std::env::var("PYO3_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".to_owned());
    let status = std::process::Command::new(&python)
        .args(["-m", "venv", "--without-pip", venv.to_str().unwrap()])
        .status()
        .expect("create a venv");
    assert!(status.success(), "python -m venv failed");
    let _ = std::process::Command::new("chmod")
        .args(["-R", "a+rX", venv.to_str().unwrap()])
        .status();
    scratch.write("app/flags.wsgi", FLAGS_APP);
    scratch.write("app/site/site_marker_module.py", "VALUE = 1\n");
    let conf = format!(
        "WSGIPythonHome {}\nWSGIPythonPath {{root}}/app/site\nWSGIScriptAlias /flags {{root}}/app/flags.wsgi\n",
        venv.display()
    );
    let mut apache = Apache::start_in(Mpm::Event, scratch, &conf);
    let text = apache.get("/flags").text();
    assert!(
        text.contains(&format!("\"prefix\": \"{}\"", venv.display())),
        "sys.prefix is the venv: {text}"
    );
    apache.stop();
}

#[test]
fn a_python_home_of_another_version_stops_configtest_naming_both() {
    let other = "2.7";
    let fake = [(
        "home/lib/python2.7/os.py",
        "# a standard library of another version\n",
    )];
    for body in [
        "WSGIPythonHome {root}/home",
        "WSGIDaemonProcess site python-home={root}/home",
    ] {
        let (ok, output) = configtest(body, &fake);
        assert!(!ok, "{body}: accepted");
        assert!(
            output.contains(&format!(
                "is Python {other}, but this module is built for Python 3."
            )),
            "{body}: {output}"
        );
        assert!(output.contains("httpd.conf"), "names the file: {output}");
    }
}
