//! When the Apache child flushes a daemon's response (response-flush-delay and
//! response-buffer-size, as mod_wsgi): blocks that follow each other within the delay go
//! down Apache's filter chain unflushed, a pause longer than the delay gets its flush,
//! and more than the buffer size unflushed forces one. The chain ends in mod_deflate,
//! which holds what it is given until a flush (as a pacing filter would), so each chunk
//! on the wire is one flush.

mod common;
use common::http::Connection;
use common::{Apache, Mpm};
use std::time::{Duration, Instant};

const APP: &str = r#"
import time

def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    def gaps():
        # Three blocks 100 ms apart, a pause of 1.3 s, a last block.
        for block in (b"a" * 100, b"b" * 100, b"c" * 100):
            yield block
            time.sleep(0.1)
        time.sleep(1.2)
        yield b"d" * 100
    def bulk():
        # 16 KiB every 100 ms: never quiet for the delay; after 5 blocks more than
        # 64 KiB went down unflushed. Then a pause of 3 s.
        for _ in range(8):
            yield b"x" * 16384
            time.sleep(0.1)
        time.sleep(3)
        yield b"y"
    if environ["PATH_INFO"] == "/gaps":
        return gaps()
    if environ["PATH_INFO"] == "/bulk":
        return bulk()
    return [b"ready"]
"#;

fn start(options: &str) -> Apache {
    let mods = common::apache_modules_dir().display().to_string();
    let conf = format!(
        "LoadModule deflate_module {mods}/mod_deflate.so\n\
         WSGIDaemonProcess paced processes=1 threads=2 {options}\n\
         WSGIScriptAlias / {{root}}/app/app.wsgi process-group=paced application-group=%{{GLOBAL}}\n\
         <Location />\n  SetOutputFilter DEFLATE\n</Location>\n"
    );
    let apache = Apache::start(Mpm::Event, &conf, &[("app/app.wsgi", APP)]);
    // The script is loaded before anything is timed.
    assert_eq!(apache.get_ok("/ready"), "ready");
    apache
}

/// GETs `path` (gzip accepted) and returns when each chunk of the response arrived,
/// counted from the request, with its size; the final empty chunk is left out.
fn chunk_arrivals(apache: &Apache, path: &str) -> Vec<(Duration, usize)> {
    let mut conn = Connection::open(apache.port);
    let sent = Instant::now();
    conn.send_request("GET", path, &[("Accept-Encoding", "gzip")], b"");
    let (status, headers) = conn.read_head();
    assert_eq!(status, 200, "{}", apache.error_log());
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(header("Content-Encoding"), Some("gzip"), "{headers:?}");
    assert_eq!(header("Transfer-Encoding"), Some("chunked"), "{headers:?}");
    let mut arrivals = Vec::new();
    loop {
        let chunk = conn.read_chunk().expect("the response is complete");
        if chunk.is_empty() {
            return arrivals;
        }
        arrivals.push((sent.elapsed(), chunk.len()));
    }
}

/// With a 300 ms delay, blocks 100 ms apart leave together once the daemon has been
/// quiet for 300 ms, before the next block exists; the last one leaves with the end.
#[test]
fn blocks_within_the_flush_delay_leave_together_and_a_pause_flushes_them() {
    let mut apache = start("response-flush-delay=300");
    let arrivals = chunk_arrivals(&apache, "/gaps");
    // abc flushed when the daemon went quiet (at 0.5 s), d with the end (at 1.5 s;
    // mod_deflate's trailer may follow in a chunk of its own). Flushing each block would
    // give a chunk per block, the first at once.
    let (first, _) = arrivals[0];
    assert!(
        first >= Duration::from_millis(400),
        "the first blocks waited while more came within the delay: {arrivals:?}"
    );
    // The last block is yielded 1.5 s after the request at the earliest.
    let before_the_last = arrivals
        .iter()
        .filter(|(at, _)| *at < Duration::from_millis(1400))
        .count();
    assert_eq!(
        before_the_last, 1,
        "the first three blocks left in one flush, before the last one was yielded: \
         {arrivals:?}"
    );
    assert!(arrivals.len() >= 2, "{arrivals:?}");
    apache.stop();
}

/// With a flush delay longer than every gap, more than response-buffer-size (64 KiB)
/// unflushed forces the flush: after the fifth 16 KiB block, not after the pause.
#[test]
fn more_than_the_response_buffer_size_unflushed_is_flushed() {
    let mut apache = start("response-flush-delay=2000 response-buffer-size=65536");
    let arrivals = chunk_arrivals(&apache, "/bulk");
    let first = arrivals[0].0;
    assert!(
        first >= Duration::from_millis(300),
        "the first four blocks (64 KiB) waited: {arrivals:?}"
    );
    assert!(
        first < Duration::from_millis(2500),
        "the fifth block forced a flush, long before the delay ran out after the last: \
         {arrivals:?}"
    );
    assert!(arrivals.len() < 6, "not a flush per block: {arrivals:?}");
    apache.stop();
}
