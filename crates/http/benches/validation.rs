//! Micro-benches of what every response and every proxied request pays for: checking the
//! status line and headers an application gives start_response, and rewriting the
//! environ from trusted proxy headers.
//!
//!   cargo bench -p mod_wsgi_http
use criterion::{Criterion, criterion_group, criterion_main};
use mod_wsgi_config::{IpNet, ProxyHeader};
use mod_wsgi_http::{apply_trusted_proxy_headers, validate_header, validate_status};
use std::hint::black_box;

fn start_response(c: &mut Criterion) {
    let headers = [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", "18734"),
        ("Cache-Control", "private, max-age=0"),
        (
            "Set-Cookie",
            "csrftoken=Zx81Qm3Lk2Jp7Rt5Vb9Nc4Hd6Fg0Ws1E; Path=/; SameSite=Lax",
        ),
        ("X-Frame-Options", "DENY"),
        ("Vary", "Cookie, Accept-Language"),
    ];
    c.bench_function("start_response/status_and_6_headers", |b| {
        b.iter(|| {
            black_box(validate_status(black_box("200 OK")).unwrap());
            for (name, value) in &headers {
                validate_header(black_box(name), black_box(value)).unwrap();
            }
        })
    });
}

fn proxy_headers(c: &mut Criterion) {
    let env: mod_wsgi_wire::Environ = [
        ("REMOTE_ADDR", "10.0.0.2"),
        ("HTTP_HOST", "www.example.com"),
        ("HTTP_X_FORWARDED_FOR", "203.0.113.7, 10.0.0.2"),
        ("HTTP_X_FORWARDED_PROTO", "https"),
        ("HTTP_X_FORWARDED_HOST", "www.example.com"),
        ("HTTP_USER_AGENT", "Mozilla/5.0"),
        ("wsgi.url_scheme", "http"),
    ]
    .into_iter()
    .collect();
    let trusted = [
        ProxyHeader::XForwardedFor,
        ProxyHeader::XForwardedProto,
        ProxyHeader::XForwardedHost,
    ];
    let proxies = [IpNet::parse("10.0.0.0/8").unwrap()];
    c.bench_function("environ/trusted_proxy_headers", |b| {
        b.iter(|| {
            let mut e = env.clone();
            apply_trusted_proxy_headers(&mut e, black_box(&trusted), Some(&proxies));
            black_box(e)
        })
    });
}

criterion_group!(benches, start_response, proxy_headers);
criterion_main!(benches);
