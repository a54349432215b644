//! HTTPS and name-based virtual hosts, as mod_wsgi-express sets them up: with
//! --server-name, requests for other host names are refused (403) unless
//! --allow-localhost; --https-port adds a mod_ssl listener, --https-only redirects plain
//! HTTP there. The options are resolved here and rendered as <VirtualHost> blocks.

use crate::cli::ServerArgs;
use crate::features::{pairs, q};
use crate::locate;
use std::fmt::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq)]
pub struct Https {
    pub port: u16,
    pub certificate: PathBuf,
    pub key: PathBuf,
    pub ca_certificate: Option<PathBuf>,
    pub chain: Option<PathBuf>,
    /// URL paths that require a client certificate (all of the site when empty and a
    /// CA file is given).
    pub verify_client: Vec<String>,
    pub environment: bool,
    pub only: bool,
    pub hsts_policy: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hosts {
    /// --server-name was given: other host names are refused.
    pub named: bool,
    pub aliases: Vec<String>,
    pub allow_localhost: bool,
    pub https: Option<Https>,
    /// Host name and URL proxied as a whole (--proxy-virtual-host).
    pub proxied: Vec<(String, String)>,
}

impl Hosts {
    /// Whether the configuration needs <VirtualHost> blocks at all.
    pub fn any(&self) -> bool {
        self.named || self.https.is_some() || !self.proxied.is_empty()
    }
}

fn existing(option: &str, p: &Path) -> Result<PathBuf, String> {
    if p.is_file() {
        Ok(locate::absolute(p))
    } else {
        Err(format!("{option} {}: no such file", p.display()))
    }
}

pub fn resolve(args: &ServerArgs) -> Result<Hosts, String> {
    let h = &args.https;
    let (mut certificate, mut key) = (
        h.ssl_certificate_file.clone(),
        h.ssl_certificate_key_file.clone(),
    );
    if let Some(common) = &h.ssl_certificate {
        let base = common.to_string_lossy();
        certificate = Some(PathBuf::from(format!("{base}.crt")));
        key = Some(PathBuf::from(format!("{base}.key")));
    }
    let any_tls_file = certificate.is_some()
        || key.is_some()
        || h.ssl_ca_certificate_file.is_some()
        || h.ssl_certificate_chain_file.is_some();
    let https = match (h.https_port, certificate, key) {
        (None, ..) if any_tls_file => {
            return Err("--https-port must be given with the SSL certificate options".to_owned());
        }
        (None, ..) => None,
        (Some(port), Some(cert), Some(key)) => {
            if port == args.port {
                return Err(format!("--https-port {port} is also --port"));
            }
            Some(Https {
                port,
                certificate: existing("--ssl-certificate-file", &cert)?,
                key: existing("--ssl-certificate-key-file", &key)?,
                ca_certificate: h
                    .ssl_ca_certificate_file
                    .as_deref()
                    .map(|p| existing("--ssl-ca-certificate-file", p))
                    .transpose()?,
                chain: h
                    .ssl_certificate_chain_file
                    .as_deref()
                    .map(|p| existing("--ssl-certificate-chain-file", p))
                    .transpose()?,
                verify_client: h.ssl_verify_client.clone(),
                environment: h.ssl_environment,
                only: h.https_only,
                hsts_policy: h.hsts_policy.clone(),
            })
        }
        (Some(port), ..) => {
            return Err(format!(
                "--https-port {port} needs --ssl-certificate-file and --ssl-certificate-key-file (or --ssl-certificate PATH for PATH.crt and PATH.key)"
            ));
        }
    };
    if https.is_none() && h.https_only {
        return Err("--https-only needs --https-port and a certificate".to_owned());
    }
    if !h.ssl_verify_client.is_empty() && h.ssl_ca_certificate_file.is_none() {
        return Err("--ssl-verify-client needs --ssl-ca-certificate-file".to_owned());
    }
    Ok(Hosts {
        named: args.server_name.is_some(),
        aliases: h.server_alias.clone(),
        allow_localhost: h.allow_localhost,
        https,
        proxied: pairs(&args.site.proxy_virtual_host),
    })
}

/// `Listen` for HOST:PORT (every interface without a host).
pub fn listen(host: Option<&str>, port: u16) -> String {
    match host {
        Some(h) if h.contains(':') => format!("Listen [{h}]:{port}\n"),
        Some(h) => format!("Listen {h}:{port}\n"),
        None => format!("Listen {port}\n"),
    }
}

fn ssl_lines(c: &mut String, https: &Https) {
    let _ = writeln!(c, "    SSLEngine On");
    let _ = writeln!(
        c,
        "    SSLCertificateFile {}",
        q(https.certificate.to_string_lossy())
    );
    let _ = writeln!(
        c,
        "    SSLCertificateKeyFile {}",
        q(https.key.to_string_lossy())
    );
    if let Some(chain) = &https.chain {
        let _ = writeln!(
            c,
            "    SSLCertificateChainFile {}",
            q(chain.to_string_lossy())
        );
    }
    if let Some(ca) = &https.ca_certificate {
        let _ = writeln!(c, "    SSLCACertificateFile {}", q(ca.to_string_lossy()));
        if https.verify_client.is_empty() {
            let _ = writeln!(c, "    SSLVerifyClient require\n    SSLVerifyDepth 1");
        } else {
            let _ = writeln!(c, "    SSLVerifyClient none");
        }
    }
}

/// The block refusing host names that are not the server's (mod_wsgi-express's `_wsgi_`
/// default host).
fn refusing_default(c: &mut String, port: u16, allow_localhost: bool, https: Option<&Https>) {
    let _ = writeln!(c, "<VirtualHost _default_:{port}>\n    ServerName _wsgi_");
    let require = if allow_localhost {
        "Require local"
    } else {
        "Require all denied"
    };
    let _ = writeln!(c, "    <Location />\n        {require}\n    </Location>");
    if let Some(h) = https {
        ssl_lines(c, h);
    }
    c.push_str("</VirtualHost>\n");
}

/// Renders the listeners and <VirtualHost> blocks after the server-wide configuration;
/// `server_name` is the site's name, `host`/`port` its plain HTTP listener. With
/// `rewrite`, the site's hosts turn mod_rewrite on, so the server-wide rules (inherited
/// through `RewriteOptions InheritDown`) apply there too.
pub fn render(
    hosts: &Hosts,
    server_name: &str,
    host: Option<&str>,
    port: u16,
    rewrite: bool,
) -> String {
    let mut c = String::new();
    if !hosts.any() {
        return c;
    }
    c.push('\n');
    if hosts.named {
        refusing_default(&mut c, port, hosts.allow_localhost, None);
    }
    let names = |c: &mut String| {
        let _ = writeln!(c, "    ServerName {}", q(server_name));
        if !hosts.aliases.is_empty() {
            let _ = writeln!(c, "    ServerAlias {}", hosts.aliases.join(" "));
        }
    };
    let _ = writeln!(c, "<VirtualHost *:{port}>");
    names(&mut c);
    if let Some(h) = hosts.https.as_ref().filter(|h| h.only) {
        let _ = writeln!(
            c,
            "    RewriteEngine On\n    RewriteCond %{{HTTPS}} off\n    RewriteRule (.*) https://{server_name}:{}%{{REQUEST_URI}} [R=302,L]",
            h.port
        );
    } else if rewrite {
        c.push_str("    RewriteEngine On\n");
    }
    c.push_str("</VirtualHost>\n");
    let parent = parent_domain(hosts, server_name);
    if let Some(parent) = parent {
        let _ = writeln!(
            c,
            "<VirtualHost *:{port}>\n    ServerName {}\n    Redirect permanent / http://{server_name}:{port}/\n</VirtualHost>",
            q(parent)
        );
    }
    for (name, url) in &hosts.proxied {
        let _ = writeln!(
            c,
            "<VirtualHost *:{port}>\n    ServerName {}\n    ProxyPass / {}\n    ProxyPassReverse / {}\n</VirtualHost>",
            q(name),
            q(url),
            q(url)
        );
    }
    if let Some(h) = &hosts.https {
        c.push_str(&listen(host, h.port));
        if hosts.named {
            refusing_default(&mut c, h.port, hosts.allow_localhost, Some(h));
        }
        let _ = writeln!(c, "<VirtualHost *:{}>", h.port);
        names(&mut c);
        if rewrite {
            c.push_str("    RewriteEngine On\n");
        }
        ssl_lines(&mut c, h);
        if let (true, Some(policy)) = (h.only, &h.hsts_policy) {
            let _ = writeln!(c, "    Header set Strict-Transport-Security {}", q(policy));
        }
        if h.environment {
            c.push_str("    SSLOptions +StdEnvVars\n");
        }
        for url in &h.verify_client {
            let _ = writeln!(
                c,
                "    <Location {}>\n        SSLVerifyClient require\n        SSLVerifyDepth 1\n    </Location>",
                q(url)
            );
        }
        c.push_str("</VirtualHost>\n");
        if let Some(parent) = parent {
            let _ = writeln!(
                c,
                "<VirtualHost *:{}>\n    ServerName {}\n    Redirect permanent / https://{server_name}:{}/",
                h.port,
                q(parent),
                h.port
            );
            ssl_lines(&mut c, h);
            c.push_str("</VirtualHost>\n");
        }
    }
    c
}

/// With --server-name www.NAME, NAME redirects to it (as mod_wsgi-express does).
fn parent_domain<'a>(hosts: &Hosts, server_name: &'a str) -> Option<&'a str> {
    let lower = server_name.to_ascii_lowercase();
    (hosts.named && lower.starts_with("www.") && server_name.len() > 4).then(|| &server_name[4..])
}

/// Modules the blocks need.
pub fn modules(hosts: &Hosts) -> Vec<&'static str> {
    let mut m = Vec::new();
    if let Some(h) = &hosts.https {
        m.push("ssl");
        m.push("socache_shmcb");
        if h.only {
            m.push("rewrite");
            if h.hsts_policy.is_some() {
                m.push("headers");
            }
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn https() -> Https {
        Https {
            port: 8443,
            certificate: "/c/site.crt".into(),
            key: "/c/site.key".into(),
            ca_certificate: None,
            chain: None,
            verify_client: vec![],
            environment: false,
            only: true,
            hsts_policy: Some("max-age=60".into()),
        }
    }

    #[test]
    fn https_only_redirects_plain_http_and_sends_hsts() {
        let hosts = Hosts {
            https: Some(https()),
            ..Hosts::default()
        };
        let c = render(&hosts, "example.org", Some("127.0.0.1"), 8000, false);
        assert!(
            c.contains("<VirtualHost *:8000>\n    ServerName \"example.org\"\n"),
            "{c}"
        );
        assert!(c.contains("RewriteRule (.*) https://example.org:8443%{REQUEST_URI} [R=302,L]"));
        assert!(
            c.contains("Listen 127.0.0.1:8443\n<VirtualHost *:8443>\n"),
            "{c}"
        );
        assert!(c.contains("SSLCertificateKeyFile \"/c/site.key\"\n"));
        assert!(c.contains("Header set Strict-Transport-Security \"max-age=60\"\n"));
        assert!(!c.contains("_wsgi_"), "no name given, nothing refused: {c}");
        assert_eq!(
            modules(&hosts),
            ["ssl", "socache_shmcb", "rewrite", "headers"]
        );
    }

    #[test]
    fn a_server_name_refuses_other_hosts_unless_local() {
        let mut hosts = Hosts {
            named: true,
            aliases: vec!["*.example.org".into()],
            ..Hosts::default()
        };
        let c = render(&hosts, "example.org", None, 80, false);
        assert!(c.starts_with("\n<VirtualHost _default_:80>\n    ServerName _wsgi_\n    <Location />\n        Require all denied\n"), "{c}");
        assert!(c.contains("ServerAlias *.example.org\n"));
        assert!(!c.contains("Listen"), "{c}");
        assert!(!c.contains("Redirect"), "{c}");
        let www = render(&hosts, "www.example.org", None, 80, false);
        assert!(
            www.contains("<VirtualHost *:80>\n    ServerName \"example.org\"\n    Redirect permanent / http://www.example.org:80/\n"),
            "{www}"
        );
        hosts.allow_localhost = true;
        assert!(render(&hosts, "example.org", None, 80, false).contains("        Require local\n"));
        assert_eq!(render(&Hosts::default(), "x", None, 80, false), "");
    }
}
