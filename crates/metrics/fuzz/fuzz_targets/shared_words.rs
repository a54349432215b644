//! The metrics words are shared memory every process writes, so a reader must expect any
//! value in any word. Over words damaged anywhere, every update, read and the Prometheus
//! rendering must not panic, and each rendered line must stay one well-formed line (a
//! group name cannot break out of its label). Application metrics read back from the
//! store are parsed and rendered from arbitrary keys and values too.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use mod_wsgi_metrics::{AppSample, Metrics, ProcessFacts, WORDS, render_app_metrics};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Arbitrary, Debug)]
enum Op {
    AddGroup(String),
    FindGroup(String),
    Request(u8, u16, f64),
    QueueWait(u8, f64),
    Restart(u8, String),
    GilWait(u8, u64),
    Connection(u8),
    Claim(u32, u8, u64),
    Started(u8),
    Finished(u8),
    Release(u8),
    Render,
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// (word index, value): the header, group records and process records alike.
    damage: Vec<(u16, u64)>,
    /// Fill every word from this pattern first (a zeroed mapping when empty).
    pattern: Vec<u64>,
    ops: Vec<Op>,
    app: Vec<(Vec<u8>, Vec<u8>)>,
}

fn render(metrics: &Metrics<'_>) {
    let mut out = String::new();
    metrics.render(&mut out, |pid| {
        (pid % 3 != 0).then_some(ProcessFacts {
            rss_bytes: u64::from(pid),
        })
    });
    for line in out.lines() {
        assert!(
            line.starts_with("# HELP mod_wsgi_")
                || line.starts_with("# TYPE mod_wsgi_")
                || line.starts_with("mod_wsgi_"),
            "broken line {line:?}"
        );
    }
}

fuzz_target!(|input: Input| {
    let words: Vec<AtomicU64> = (0..WORDS).map(|_| AtomicU64::new(0)).collect();
    if !input.pattern.is_empty() {
        for (w, p) in words.iter().zip(input.pattern.iter().cycle()) {
            w.store(*p, Relaxed);
        }
    }
    for (at, value) in &input.damage {
        words[usize::from(*at) % WORDS].store(*value, Relaxed);
    }
    let metrics = Metrics::new(&words).expect("WORDS words are enough");
    let mut slots = Vec::new();
    // A render of garbage words writes every group and up to 1024 process records (a few
    // milliseconds): a few per input are enough, hundreds only run into the time limit.
    let mut renders = 0;
    for op in &input.ops {
        match op {
            Op::AddGroup(name) => {
                let _ = metrics.group_index_or_add(name);
            }
            Op::FindGroup(name) => {
                let _ = metrics.group_index(name);
            }
            Op::Request(g, status, secs) => {
                metrics.record_request(usize::from(*g), *status, *secs);
            }
            Op::QueueWait(g, secs) => metrics.record_queue_wait(usize::from(*g), *secs),
            Op::Restart(g, reason) => metrics.record_restart(usize::from(*g), reason),
            Op::GilWait(g, us) => metrics.record_gil_wait(usize::from(*g), *us),
            Op::Connection(g) => metrics.record_connection(usize::from(*g)),
            Op::Claim(pid, g, threads) => {
                if let Some(slot) =
                    metrics.claim_process(*pid, usize::from(*g), *threads, 0, |p| p % 2 == 0)
                {
                    slots.push(slot);
                }
            }
            Op::Started(i) | Op::Finished(i) | Op::Release(i) if !slots.is_empty() => {
                let slot = slots[usize::from(*i) % slots.len()];
                match op {
                    Op::Started(_) => slot.request_started(),
                    Op::Finished(_) => slot.request_finished(),
                    _ => slot.release(),
                }
                let _ = slot.info();
            }
            Op::Started(_) | Op::Finished(_) | Op::Release(_) => {}
            Op::Render if renders < 4 => {
                renders += 1;
                render(&metrics);
            }
            Op::Render => {}
        }
    }
    render(&metrics);
    let _ = metrics.processes();
    let samples = input
        .app
        .iter()
        .filter_map(|(k, v)| AppSample::parse(k, v))
        .collect();
    let mut out = String::new();
    render_app_metrics(&mut out, samples);
});
