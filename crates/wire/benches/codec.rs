//! Micro-benches of the daemon protocol's hot path: encoding a request head (the whole
//! environ travels in it), decoding it on the daemon side, body frames both ways, and the
//! Apache child's relay of response data.
//!
//!   cargo bench -p mod_wsgi_wire
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mod_wsgi_wire::{
    Decoder, Frame, Kind, RequestHead, RunEnd, encode, encode_response_head, frame_header,
};
use std::hint::black_box;

/// The environ of a browser GET as Apache builds it (~35 variables, ~1.5 KB).
fn environ() -> mod_wsgi_wire::Environ {
    let pairs = [
        ("REQUEST_METHOD", "GET"),
        ("SCRIPT_NAME", ""),
        ("PATH_INFO", "/articles/2026/11/some-article-slug"),
        ("QUERY_STRING", "page=2&sort=date&filter=rust"),
        ("SERVER_NAME", "www.example.com"),
        ("SERVER_PORT", "443"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("SERVER_SOFTWARE", "Apache/2.4.71 (Debian)"),
        ("SERVER_ADDR", "10.0.0.5"),
        ("SERVER_ADMIN", "webmaster@example.com"),
        ("SERVER_SIGNATURE", ""),
        ("REMOTE_ADDR", "203.0.113.7"),
        ("REMOTE_PORT", "51234"),
        (
            "REQUEST_URI",
            "/articles/2026/11/some-article-slug?page=2&sort=date&filter=rust",
        ),
        ("REQUEST_SCHEME", "https"),
        ("DOCUMENT_ROOT", "/var/www/html"),
        ("CONTEXT_DOCUMENT_ROOT", "/var/www/html"),
        ("CONTEXT_PREFIX", ""),
        ("SCRIPT_FILENAME", "/srv/site/site/wsgi.py"),
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        (
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ),
        ("HTTP_HOST", "www.example.com"),
        (
            "HTTP_USER_AGENT",
            "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0",
        ),
        (
            "HTTP_ACCEPT",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        ),
        ("HTTP_ACCEPT_LANGUAGE", "en-GB,en;q=0.7,fr;q=0.3"),
        ("HTTP_ACCEPT_ENCODING", "gzip, deflate, br, zstd"),
        (
            "HTTP_COOKIE",
            "sessionid=7f3c2a9d8e1b4c6a9f0e2d1c3b5a7968; csrftoken=Zx81Qm3Lk2Jp7Rt5Vb9Nc4Hd6Fg0Ws1E",
        ),
        ("HTTP_CONNECTION", "keep-alive"),
        ("HTTP_REFERER", "https://www.example.com/articles/2026/11/"),
        ("HTTP_UPGRADE_INSECURE_REQUESTS", "1"),
        ("HTTP_SEC_FETCH_DEST", "document"),
        ("HTTP_SEC_FETCH_MODE", "navigate"),
        ("mod_wsgi.process_group", "site"),
        ("mod_wsgi.application_group", "www.example.com|"),
        ("mod_wsgi.request_handler", "wsgi-script"),
    ];
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn head() -> RequestHead {
    RequestHead {
        secret: [7; 32],
        reload: false,
        header_only: false,
        keep_alive: true,
        request_start_us: 1_795_000_000_000_000,
        script_mtime: 1_795_000_000.25,
        application_group: "www.example.com|".into(),
        script: "/srv/site/site/wsgi.py".into(),
        callable: "application".into(),
        environ: environ(),
    }
}

fn request_head(c: &mut Criterion) {
    let frame = Frame::RequestHead(Box::new(head()));
    let mut bytes = Vec::new();
    encode(&frame, &mut bytes);
    let mut g = c.benchmark_group("request_head");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("encode", |b| {
        let mut out = Vec::with_capacity(4096);
        b.iter(|| {
            out.clear();
            encode(black_box(&frame), &mut out);
        })
    });
    g.bench_function("decode", |b| {
        b.iter(|| {
            let mut d = Decoder::new(16 << 20);
            d.push(black_box(&bytes));
            black_box(d.next_frame().unwrap().unwrap())
        })
    });
    g.finish();
}

fn response(c: &mut Criterion) {
    let headers: Vec<(String, String)> = [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", "18734"),
        ("Cache-Control", "private, max-age=0"),
        (
            "Set-Cookie",
            "csrftoken=Zx81Qm3Lk2Jp7Rt5Vb9Nc4Hd6Fg0Ws1E; Path=/; SameSite=Lax",
        ),
        ("X-Frame-Options", "DENY"),
        ("Vary", "Cookie, Accept-Language"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    c.bench_function("response_head/encode", |b| {
        let mut out = Vec::with_capacity(1024);
        b.iter(|| {
            out.clear();
            encode_response_head(200, black_box("200 OK"), black_box(&headers), &mut out);
        })
    });
}

fn body(c: &mut Criterion) {
    let block = vec![b'x'; 64 * 1024];
    let mut stream = Vec::new();
    for _ in 0..16 {
        stream.extend_from_slice(&frame_header(Kind::Data, block.len()));
        stream.extend_from_slice(&block);
    }
    let mut g = c.benchmark_group("data_frames_1MiB");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.bench_function("decode_in_64KiB_reads", |b| {
        b.iter(|| {
            let mut d = Decoder::new(1 << 20);
            let mut n = 0;
            for chunk in stream.chunks(64 * 1024) {
                d.push(chunk);
                while let Some(f) = d.next_frame().unwrap() {
                    n += matches!(f, Frame::Data(_)) as usize;
                }
            }
            black_box(n)
        })
    });
    g.finish();
}

/// The Apache child's relay: Data frames received 64 KiB at a time, each read's payloads
/// joined in place by `next_run` (what the child writes to the client per read).
fn relay(c: &mut Criterion) {
    let mut g = c.benchmark_group("relay");
    for (name, block, count) in [
        ("stream_1000x64B", 64, 1000),
        ("big_16x64KiB", 64 * 1024, 16),
    ] {
        let mut stream = Vec::new();
        for _ in 0..count {
            stream.extend_from_slice(&frame_header(Kind::Data, block));
            stream.extend_from_slice(&vec![b'x'; block]);
        }
        g.throughput(Throughput::Bytes((block * count) as u64));
        g.bench_function(name, |b| {
            let mut d = Decoder::with_buffer(1 << 20, Vec::with_capacity(64 * 1024));
            b.iter(|| {
                let (mut sent, mut relayed) = (0, 0);
                while sent < stream.len() {
                    sent += d
                        .receive(64 * 1024, |buf| {
                            let n = (buf.capacity() - buf.len()).min(stream.len() - sent);
                            buf.extend_from_slice(&stream[sent..sent + n]);
                            Ok::<_, ()>(n)
                        })
                        .unwrap();
                    loop {
                        let run = d.next_run().unwrap();
                        relayed += black_box(run.data).len();
                        if run.end == RunEnd::NeedMore {
                            break;
                        }
                    }
                }
                black_box(relayed)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, request_head, response, body, relay);
criterion_main!(benches);
