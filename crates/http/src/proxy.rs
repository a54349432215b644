//! `WSGITrustedProxyHeaders` / `WSGITrustedProxies`: rewriting the CGI environment from
//! headers set by a reverse proxy, and stripping the ones that must not be believed.

use mod_wsgi_config::{IpNet, ProxyCategory, ProxyHeader};
use std::net::IpAddr;

use mod_wsgi_wire::Environ;

fn is_trusted(proxies: Option<&[IpNet]>, ip: &str) -> bool {
    match (proxies, ip.trim().parse::<IpAddr>()) {
        (None, _) => true,
        (Some(nets), Ok(addr)) => nets.iter().any(|n| n.contains(addr)),
        (Some(_), Err(_)) => false,
    }
}

/// The client address from `X-Forwarded-For` and the list from that hop on: walking right
/// to left, the first hop that is not a trusted proxy. With no proxy list every hop is
/// trusted and the leftmost wins (the list is left as sent).
fn client_from_forwarded_for(
    value: &str,
    proxies: Option<&[IpNet]>,
) -> Option<(String, Option<String>)> {
    let hops: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .collect();
    if proxies.is_none() {
        return hops.first().map(|s| (s.to_string(), None));
    }
    let client = hops
        .iter()
        .rposition(|hop| !is_trusted(proxies, hop))
        .unwrap_or(0);
    let hops = hops.get(client..)?;
    Some((hops[0].to_string(), Some(hops.join(", "))))
}

/// What a scheme header says: `Some(true)` for https, `Some(false)` for http, `None` for a
/// value that says neither (the scheme is then left as Apache saw it).
fn says_https(header: ProxyHeader, value: &str) -> Option<bool> {
    let v = value.trim().to_ascii_lowercase();
    match header {
        ProxyHeader::XForwardedSsl | ProxyHeader::XForwardedHttps | ProxyHeader::XHttps => {
            match v.as_str() {
                "on" | "1" | "true" => Some(true),
                "off" | "0" | "false" => Some(false),
                _ => None,
            }
        }
        _ => match v.as_str() {
            "https" => Some(true),
            "http" => Some(false),
            _ => None,
        },
    }
}

/// Applies the trusted headers to `env` (keys as Apache's CGI names) in the order given, and
/// removes every other header of the same categories: of synonyms, the last trusted one
/// present wins and is the only one kept. When the peer (`REMOTE_ADDR`) is not one of the
/// trusted proxies, all headers of those categories are removed and nothing is rewritten.
pub fn apply_trusted_proxy_headers(
    env: &mut Environ,
    trusted: &[ProxyHeader],
    proxies: Option<&[IpNet]>,
) {
    if trusted.is_empty() {
        return;
    }
    let peer_trusted = env
        .get("REMOTE_ADDR")
        .is_some_and(|peer| is_trusted(proxies, peer));
    let categories: Vec<ProxyCategory> = trusted.iter().map(|h| h.category()).collect();
    let strip_all = |env: &mut Environ, keep: &[ProxyHeader]| {
        for h in ProxyHeader::ALL {
            if categories.contains(&h.category()) && !keep.contains(&h) {
                env.remove(h.cgi_name());
            }
        }
    };
    if !peer_trusted {
        strip_all(env, &[]);
        return;
    }
    let mut winners: Vec<ProxyHeader> = Vec::new();
    for &header in trusted {
        let Some(value) = env.get(header.cgi_name()).map(str::to_owned) else {
            continue;
        };
        match header.category() {
            ProxyCategory::ClientAddr => {
                if header == ProxyHeader::XForwardedFor {
                    if let Some((client, list)) = client_from_forwarded_for(&value, proxies) {
                        env.set("REMOTE_ADDR", &client);
                        if let Some(list) = list {
                            env.set(header.cgi_name(), &list);
                        }
                    }
                } else {
                    env.set("REMOTE_ADDR", value.trim());
                }
            }
            ProxyCategory::Scheme => match says_https(header, &value) {
                Some(true) => env.set("HTTPS", "1"),
                Some(false) => env.remove("HTTPS"),
                None => {}
            },
            ProxyCategory::Host => env.set("HTTP_HOST", &value),
            ProxyCategory::ServerName => env.set("SERVER_NAME", &value),
            ProxyCategory::ServerPort => env.set("SERVER_PORT", &value),
            ProxyCategory::ScriptName => {
                env.set("mod_wsgi.mount_point", &value);
                env.set("SCRIPT_NAME", &value);
            }
        }
        winners.retain(|w| w.category() != header.category());
        winners.push(header);
    }
    strip_all(env, &winners);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Environ {
        pairs.iter().copied().collect()
    }

    #[test]
    fn forwarded_for_walks_right_to_left_through_trusted_proxies() {
        let mut e = env(&[
            ("REMOTE_ADDR", "10.0.0.2"),
            ("HTTP_X_FORWARDED_FOR", "6.6.6.6, 1.2.3.4, 10.0.0.1"),
            ("HTTP_X_REAL_IP", "9.9.9.9"),
        ]);
        let proxies = [IpNet::parse("10.0.0.0/8").unwrap()];
        apply_trusted_proxy_headers(&mut e, &[ProxyHeader::XForwardedFor], Some(&proxies));
        assert_eq!(e.get("REMOTE_ADDR"), Some("1.2.3.4"));
        assert_eq!(e.get("HTTP_X_FORWARDED_FOR"), Some("1.2.3.4, 10.0.0.1"));
        assert_eq!(
            e.get("HTTP_X_REAL_IP"),
            None,
            "other client-address headers stripped"
        );
    }

    #[test]
    fn untrusted_peer_gets_headers_stripped() {
        let mut e = env(&[
            ("REMOTE_ADDR", "8.8.8.8"),
            ("HTTP_X_FORWARDED_PROTO", "https"),
            ("HTTP_X_FORWARDED_HOST", "evil"),
        ]);
        let proxies = [IpNet::parse("127.0.0.1").unwrap()];
        let trusted = [ProxyHeader::XForwardedProto, ProxyHeader::XForwardedHost];
        apply_trusted_proxy_headers(&mut e, &trusted, Some(&proxies));
        assert_eq!(e, env(&[("REMOTE_ADDR", "8.8.8.8")]));
    }

    #[test]
    fn scheme_host_port_and_script_name() {
        let mut e = env(&[
            ("REMOTE_ADDR", "127.0.0.1"),
            ("HTTP_X_FORWARDED_PROTO", "https"),
            ("HTTP_X_SCHEME", "http"),
            ("HTTP_X_FORWARDED_HOST", "public.example"),
            ("HTTP_X_FORWARDED_PORT", "443"),
            ("HTTP_X_SCRIPT_NAME", "/mount"),
        ]);
        let trusted = [
            ProxyHeader::XForwardedProto,
            ProxyHeader::XForwardedHost,
            ProxyHeader::XForwardedPort,
            ProxyHeader::XScriptName,
        ];
        apply_trusted_proxy_headers(&mut e, &trusted, None);
        assert_eq!(e.get("HTTPS"), Some("1"));
        assert_eq!(e.get("HTTP_X_SCHEME"), None);
        assert_eq!(e.get("HTTP_HOST"), Some("public.example"));
        assert_eq!(e.get("SERVER_PORT"), Some("443"));
        assert_eq!(e.get("SCRIPT_NAME"), Some("/mount"));
    }

    #[test]
    fn forwarded_script_name_and_last_synonym_wins() {
        let mut e = env(&[
            ("REMOTE_ADDR", "127.0.0.1"),
            ("HTTP_X_SCRIPT_NAME", "/first"),
            ("HTTP_X_FORWARDED_SCRIPT_NAME", "/second"),
        ]);
        let trusted = [ProxyHeader::XScriptName, ProxyHeader::XForwardedScriptName];
        apply_trusted_proxy_headers(&mut e, &trusted, None);
        assert_eq!(e.get("SCRIPT_NAME"), Some("/second"));
        assert_eq!(e.get("mod_wsgi.mount_point"), Some("/second"));
        assert_eq!(e.get("HTTP_X_SCRIPT_NAME"), None);
        assert_eq!(e.get("HTTP_X_FORWARDED_SCRIPT_NAME"), Some("/second"));
    }

    #[test]
    fn scheme_value_that_says_neither_leaves_https_alone() {
        let mut e = env(&[
            ("REMOTE_ADDR", "127.0.0.1"),
            ("HTTPS", "1"),
            ("HTTP_X_FORWARDED_SSL", "maybe"),
        ]);
        apply_trusted_proxy_headers(&mut e, &[ProxyHeader::XForwardedSsl], None);
        assert_eq!(e.get("HTTPS"), Some("1"));
        e.set("HTTP_X_FORWARDED_SSL", "off");
        apply_trusted_proxy_headers(&mut e, &[ProxyHeader::XForwardedSsl], None);
        assert_eq!(e.get("HTTPS"), None);
    }
}
