//! What a WSGI application hands to start_response, and the proxy headers a client sends:
//! no input may panic, an accepted status or header can never split the response head
//! (no CR, LF, NUL or other control character, a header name is a token and never a
//! hop-by-hop header), and headers of a trusted category that are not trusted themselves
//! never survive into the environ.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use mod_wsgi_config::{IpNet, ProxyHeader};
use mod_wsgi_http::{apply_trusted_proxy_headers, is_hop_by_hop, validate_header, validate_status};
use mod_wsgi_wire::Environ;

/// Hop-by-hop names, written out again here so the check does not trust the code it checks.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
];

#[derive(Arbitrary, Debug)]
enum Input {
    Head {
        status: String,
        headers: Vec<(String, String)>,
    },
    Proxy {
        env: Vec<(String, String)>,
        /// Indices into ProxyHeader::ALL.
        trusted: Vec<u8>,
        proxies: Option<Vec<String>>,
    },
}

fn splits_head(c: char) -> bool {
    (c.is_control() && c != '\t') || c == '\u{7f}'
}

fn check_head(status: &str, headers: &[(String, String)]) {
    if let Ok(head) = validate_status(status) {
        assert!((100..=999).contains(&head.code), "{status:?}");
        assert!(
            !head.status_line.chars().any(char::is_control),
            "{status:?}"
        );
        assert_eq!(head.status_line[..3].parse::<u16>(), Ok(head.code));
    }
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        assert_eq!(
            is_hop_by_hop(name),
            HOP_BY_HOP.contains(&lower.as_str()),
            "{name:?}"
        );
        if validate_header(name, value).is_ok() {
            assert!(!name.is_empty());
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_graphic() && !b"\"(),/:;<=>?@[\\]{}".contains(&b)),
                "name {name:?} is not a token"
            );
            assert!(
                !HOP_BY_HOP.contains(&lower.as_str()),
                "{name:?} is hop-by-hop"
            );
            assert!(
                !value.chars().any(splits_head),
                "value {value:?} of {name:?}"
            );
        }
    }
}

fn check_proxy(pairs: &[(String, String)], trusted: &[u8], proxies: Option<&[String]>) {
    let mut env = Environ::new();
    for (k, v) in pairs {
        env.set(k, v);
    }
    let trusted: Vec<ProxyHeader> = trusted
        .iter()
        .map(|i| ProxyHeader::ALL[usize::from(*i) % ProxyHeader::ALL.len()])
        .collect();
    let nets: Option<Vec<IpNet>> =
        proxies.map(|p| p.iter().filter_map(|n| IpNet::parse(n).ok()).collect());
    apply_trusted_proxy_headers(&mut env, &trusted, nets.as_deref());
    for h in ProxyHeader::ALL {
        let same_category = trusted.iter().any(|t| t.category() == h.category());
        if same_category && !trusted.contains(&h) {
            assert_eq!(env.get(h.cgi_name()), None, "{h:?} survived");
        }
    }
}

fuzz_target!(|input: Input| match input {
    Input::Head { status, headers } => check_head(&status, &headers),
    Input::Proxy {
        env,
        trusted,
        proxies,
    } => check_proxy(&env, &trusted, proxies.as_deref()),
});
