//! wsgi-express's HTTPS and virtual-host options against a real apache2: a certificate
//! made by openssl, TLS answered on --https-port, --https-only redirects and HSTS, and
//! --server-name refusing other host names.

mod common;

use common::*;
use std::process::Command;

/// A self-signed certificate for 127.0.0.1 as DIR/site.crt and DIR/site.key; returns
/// the common path for --ssl-certificate.
fn certificate(scratch: &Scratch) -> String {
    let base = scratch.path("site");
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=127.0.0.1", "-keyout"])
        .arg(format!("{base}.key"))
        .arg("-out")
        .arg(format!("{base}.crt"))
        .output()
        .expect("openssl is installed (Debian: openssl)");
    assert!(out.status.success(), "openssl: {out:?}");
    base
}

/// GET over TLS with curl (certificate not verified: it is self-signed); returns the
/// response head and body.
fn curl_https(port: u16, path: &str) -> String {
    let out = Command::new("curl")
        .args(["-sS", "-k", "-i", "--max-time", "20"])
        .arg(format!("https://127.0.0.1:{port}{path}"))
        .output()
        .expect("curl is installed (Debian: curl)");
    assert!(out.status.success(), "curl failed: {out:?}");
    String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n")
}

#[test]
fn https_port_answers_over_tls_and_https_only_redirects_with_hsts() {
    let scratch = Scratch::new("https");
    let script = scratch.write(
        "app/app.wsgi",
        &echo_app("environ['wsgi.url_scheme'] + ' ' + environ.get('HTTPS', '-')"),
    );
    let base = certificate(&scratch);
    let https_port = free_port();
    let https_text = https_port.to_string();
    let mut server = Server::start(
        &scratch,
        &[
            script.to_str().unwrap(),
            "--https-port",
            &https_text,
            "--ssl-certificate",
            &base,
            "--https-only",
            "--hsts-policy",
            "max-age=60",
        ],
        Some(https_port),
    );
    let tls = curl_https(https_port, "/page?x=1");
    assert!(tls.starts_with("HTTP/1.1 200"), "{tls}\n{}", server.logs());
    assert!(
        tls.ends_with("\n\nhttps -") || tls.ends_with("\n\nhttps 1"),
        "{tls}"
    );
    assert!(
        tls.to_ascii_lowercase()
            .contains("\nstrict-transport-security: max-age=60\n"),
        "{tls}"
    );

    let plain = server.request("GET /page?x=1 HTTP/1.0\r\nHost: 127.0.0.1");
    assert_eq!(status_of(&plain), 302, "{plain}");
    assert!(
        plain.contains(&format!(
            "\r\nLocation: https://127.0.0.1:{https_port}/page?x=1\r\n"
        )),
        "{plain}"
    );
    server.stop();
}

#[test]
fn server_name_refuses_other_host_names_unless_allow_localhost() {
    let scratch = Scratch::new("vhost");
    let script = scratch.write("app/app.wsgi", &echo_app("environ['SERVER_NAME']"));
    let mut server = Server::start(
        &scratch,
        &[
            script.to_str().unwrap(),
            "--server-name",
            "site.test",
            "--server-alias",
            "*.site.test",
        ],
        None,
    );
    let named = server.request("GET / HTTP/1.0\r\nHost: site.test");
    assert_eq!(
        (status_of(&named), body_of(&named)),
        (200, "site.test"),
        "{named}"
    );
    let alias = server.request("GET / HTTP/1.0\r\nHost: www.site.test");
    assert_eq!(status_of(&alias), 200, "{alias}");
    let other = server.request("GET / HTTP/1.0\r\nHost: 127.0.0.1");
    assert_eq!(status_of(&other), 403, "{other}");
    server.stop();

    let scratch = Scratch::new("vhost-local");
    let script = scratch.write("app/app.wsgi", &echo_app("'local'"));
    let mut server = Server::start(
        &scratch,
        &[
            script.to_str().unwrap(),
            "--server-name",
            "site.test",
            "--allow-localhost",
        ],
        None,
    );
    let local = server.request("GET / HTTP/1.0\r\nHost: 127.0.0.1");
    assert_eq!(
        (status_of(&local), body_of(&local)),
        (200, "local"),
        "{local}"
    );
    server.stop();
}

#[test]
fn certificate_options_without_https_port_are_refused() {
    let scratch = Scratch::new("https-bad");
    let base = certificate(&scratch);
    for (args, expected) in [
        (
            vec!["--ssl-certificate", base.as_str()],
            "--https-port must be given",
        ),
        (vec!["--https-port", "8443"], "--https-port 8443 needs"),
        (vec!["--https-only"], "--https-only needs --https-port"),
    ] {
        let mut all = vec![
            "setup-server",
            "--server-root",
            &scratch.0.to_str().unwrap(),
        ];
        all.extend(args.iter().copied());
        let out = run(&all);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

#[test]
fn every_option_together_writes_a_configuration_apache_accepts() {
    let scratch = Scratch::new("kitchen-sink");
    let base = certificate(&scratch);
    let crt = format!("{base}.crt");
    let key = format!("{base}.key");
    let script = scratch.write("app/app.wsgi", &echo_app("'x'"));
    let service = scratch.write("app/service.py", "import time\n");
    let rules = scratch.write("rewrite.conf", "RewriteRule ^/old$ /new [R=301,L]\n");
    let root = scratch.path("root");
    let eggs = scratch.path("eggs");
    let sockets = scratch.path("sock");
    let args = [
        "setup-server",
        script.to_str().unwrap(),
        "--server-root",
        &root,
        "--host",
        "127.0.0.1",
        "--https-port",
        "18821",
        "--ssl-certificate-file",
        &crt,
        "--ssl-certificate-key-file",
        &key,
        "--ssl-ca-certificate-file",
        &crt,
        "--ssl-verify-client",
        "/secure",
        "--ssl-certificate-chain-file",
        &crt,
        "--ssl-environment",
        "--https-only",
        "--hsts-policy",
        "max-age=1",
        "--server-name",
        "www.site.test",
        "--server-alias",
        "alt.test",
        "--allow-localhost",
        "--http2",
        "--trust-proxy-header",
        "X-Forwarded-For",
        "--trust-proxy",
        "10.0.0.0/8",
        "--access-log",
        "--access-log-format",
        "%h %r %D",
        "--error-log-format",
        "[%t] %M",
        "--max-clients",
        "30",
        "--initial-workers",
        "0.2",
        "--minimum-spare-workers",
        "0.1",
        "--maximum-spare-workers",
        "0.5",
        "--cpu-time-limit",
        "100",
        "--eviction-timeout",
        "5",
        "--ignore-activity",
        "/health",
        "--interrupt-timeout",
        "3",
        "--header-buffer-size",
        "65536",
        "--response-buffer-size",
        "1048576",
        "--response-socket-timeout",
        "10",
        "--response-flush-delay",
        "10",
        "--receive-buffer-size",
        "65536",
        "--send-buffer-size",
        "0",
        "--switch-interval",
        "0.01",
        "--application-group",
        "shop",
        "--process-group",
        "site",
        "--map-head-to-get",
        "On",
        "--directory-index",
        "index.html",
        "--directory-listing",
        "--allow-override",
        "All",
        "--error-document",
        "404",
        "/missing",
        "--error-override",
        "--proxy-mount-point",
        "/p",
        "http://127.0.0.1:1/",
        "--proxy-virtual-host",
        "other.test",
        "http://127.0.0.1:2/",
        "--compress-responses",
        "--server-metrics",
        "--server-status",
        "--rewrite-rules",
        rules.to_str().unwrap(),
        "--chunked-request",
        "--with-cgi",
        "--enable-sendfile",
        "--passenv",
        "HOME",
        "--python-eggs",
        &eggs,
        "--python-warnings",
        "ignore",
        "--socket-prefix",
        &sockets,
        "--service-script",
        "svc",
        service.to_str().unwrap(),
        "--service-log-file",
        "svc",
        "svc.log",
        "--orphan-interpreter",
        "--disable-reloading",
        "--verbose-debugging",
        "--rotate-logs",
        "--startup-log",
        "--pid-file",
        &scratch.path("site.pid"),
    ];
    let out = run(&args);
    assert!(out.status.success(), "{out:?}");
    let check = Command::new(format!("{root}/apachectl"))
        .arg("configtest")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&check.stderr);
    assert!(
        check.status.success() && said.contains("Syntax OK"),
        "{said}\n{}",
        std::fs::read_to_string(format!("{root}/httpd.conf")).unwrap()
    );
}
