//! Layout and exposition on a plain Vec of atomics.

use crate::*;
use std::sync::atomic::AtomicU64;

fn words() -> Vec<AtomicU64> {
    (0..WORDS).map(|_| AtomicU64::new(0)).collect()
}

#[test]
fn requests_are_counted_by_group_and_class_with_a_cumulative_histogram() {
    let w = words();
    let m = Metrics::new(&w).unwrap();
    let embedded = m.group_index_or_add("");
    let daemon = m.group_index_or_add("api \"v2\"");
    assert_eq!(m.group_index_or_add("api \"v2\""), daemon);
    m.record_request(embedded, 200, 0.003);
    m.record_request(embedded, 404, 0.2);
    m.record_request(daemon, 503, 40.0);
    m.record_queue_wait(daemon, 0.02);
    m.record_restart(daemon, "maximum-requests");
    m.record_restart(daemon, "crash");
    let mut out = String::new();
    m.render(&mut out, |_| None);
    for line in [
        "mod_wsgi_requests_total{group=\"embedded\",status=\"2xx\"} 1",
        "mod_wsgi_requests_total{group=\"embedded\",status=\"4xx\"} 1",
        "mod_wsgi_requests_total{group=\"api \\\"v2\\\"\",status=\"5xx\"} 1",
        "mod_wsgi_request_duration_seconds_bucket{group=\"embedded\",le=\"0.005\"} 1",
        "mod_wsgi_request_duration_seconds_bucket{group=\"embedded\",le=\"0.25\"} 2",
        "mod_wsgi_request_duration_seconds_bucket{group=\"embedded\",le=\"+Inf\"} 2",
        "mod_wsgi_request_duration_seconds_sum{group=\"embedded\"} 0.203",
        "mod_wsgi_request_duration_seconds_bucket{group=\"api \\\"v2\\\"\",le=\"30\"} 0",
        "mod_wsgi_queue_wait_seconds_count{group=\"api \\\"v2\\\"\"} 1",
        "mod_wsgi_restarts_total{group=\"api \\\"v2\\\"\",reason=\"maximum-requests\"} 1",
        "mod_wsgi_restarts_total{group=\"api \\\"v2\\\"\",reason=\"crash\"} 1",
    ] {
        assert!(out.lines().any(|l| l == line), "missing {line}\n{out}");
    }
    assert!(
        !out.contains("queue_wait_seconds_count{group=\"embedded\""),
        "{out}"
    );
}

#[test]
fn process_records_are_claimed_released_and_taken_over_from_the_dead() {
    let w = words();
    let m = Metrics::new(&w).unwrap();
    let g = m.group_index_or_add("g");
    let a = m.claim_process(10, g, 4, 1, |_| false).unwrap();
    a.request_started();
    a.request_started();
    a.request_finished();
    let info = a.info().unwrap();
    assert_eq!((info.busy, info.requests, info.threads), (1, 1, 4));
    let b = m.claim_process(11, g, 2, 1, |pid| pid == 10).unwrap();
    assert_eq!(
        m.processes().len(),
        1,
        "the dead pid's record was taken over"
    );
    assert_eq!(b.info().unwrap().requests, 0);
    let mut out = String::new();
    m.render(&mut out, |pid| {
        (pid == 11).then_some(ProcessFacts { rss_bytes: 4096 })
    });
    assert!(out.contains("mod_wsgi_process_resident_memory_bytes{group=\"g\",pid=\"11\"} 4096"));
    b.release();
    assert!(m.processes().is_empty());
}

#[test]
fn app_samples_render_under_their_family() {
    let entries = vec![
        AppSample::parse(&meta_key("orders_total"), b"counter\nOrders placed").unwrap(),
        AppSample::parse(
            &sample_key("orders_total", "orders_total{kind=\"book\"}"),
            &3.0f64.to_ne_bytes(),
        )
        .unwrap(),
        AppSample::parse(
            &sample_key("orders_total", "orders_total"),
            &0.5f64.to_ne_bytes(),
        )
        .unwrap(),
    ];
    let mut out = String::new();
    render_app_metrics(&mut out, entries);
    assert_eq!(
        out,
        "# HELP orders_total Orders placed\n# TYPE orders_total counter\n\
         orders_total 0.5\norders_total{kind=\"book\"} 3\n"
    );
    assert!(AppSample::parse(b"other", b"").is_none());
}

#[test]
fn app_entries_that_would_add_lines_of_their_own_are_not_rendered() {
    let sample = |family: &str, sample: &str| {
        AppSample::parse(&sample_key(family, sample), &1.0f64.to_ne_bytes()).unwrap()
    };
    let entries = vec![
        AppSample::parse(&meta_key("jobs"), b"gauge\nhelp\rwith\x1b controls").unwrap(),
        sample("jobs", "jobs"),
        sample("jobs", "jobs\nadmin_password 1"),
        sample("jobs", "jobs{a=\"x\"}\nforged 1\n{"),
        sample("jobs", "jobs{a=\"x\"} extra"),
        sample("jobs", "other_family"),
        AppSample::parse(&meta_key("bad\nforged 1"), b"counter\n").unwrap(),
        sample("bad\nforged 1", "bad\nforged 1"),
        AppSample::parse(&meta_key("odd"), b"counter 1\nforged\n").unwrap(),
    ];
    let mut out = String::new();
    render_app_metrics(&mut out, entries);
    assert_eq!(
        out,
        "# HELP jobs help with  controls\n# TYPE jobs gauge\njobs 1\n\
         # HELP odd forged\\n\n# TYPE odd untyped\n"
    );
    assert!(valid_sample("h", "h_bucket{le=\"0.5\"}"));
    assert!(!valid_sample("h", "h{"));
    assert!(!valid_metric_name("9lives"));
}

#[test]
fn reasons_map_to_fixed_labels() {
    assert_eq!(reason_label("script reload"), "script-reload");
    assert_eq!(reason_label("rss-limit"), "rss-limit");
    assert_eq!(reason_label("shutdown signal"), "shutdown");
    assert_eq!(reason_label("crash"), "crash");
    assert_eq!(reason_label("whatever"), "other");
}

#[test]
fn a_long_group_name_is_cut_at_a_character_boundary() {
    let w = words();
    let m = Metrics::new(&w).unwrap();
    // 22 three-byte characters: byte 64 falls inside the 22nd.
    let name = "\u{20ac}".repeat(22);
    let g = m.group_index_or_add(&name);
    assert_eq!(m.group_name(g), "\u{20ac}".repeat(21));
    assert_eq!(
        m.group_index(&name),
        Some(g),
        "found again under the same name"
    );
    assert_eq!(m.group_index_or_add(&name), g, "not added twice");
    assert_eq!(m.group_count(), 1);
}

#[test]
fn histogram_words_of_garbage_render_without_overflow() {
    let w = words();
    let m = Metrics::new(&w).unwrap();
    let g = m.group_index_or_add("g");
    m.record_request(g, 200, 0.001);
    // Every counter of the group's record (after the header and the name) at u64::MAX.
    for word in &w[16..8 + 64] {
        word.store(u64::MAX, std::sync::atomic::Ordering::Relaxed);
    }
    let mut out = String::new();
    m.render(&mut out, |_| None);
    let bucket = format!(
        "mod_wsgi_request_duration_seconds_bucket{{group=\"g\",le=\"30\"}} {}",
        u64::MAX
    );
    assert!(out.lines().any(|l| l == bucket), "missing {bucket}\n{out}");
}
