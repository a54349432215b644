//! The Prometheus text exposition (format 0.0.4) of the server metrics.

use crate::layout::{BUCKETS, Metrics, REASONS};
use std::fmt::Write;

/// What the renderer learns about a live process from outside the metrics (its /proc).
pub struct ProcessFacts {
    pub rss_bytes: u64,
}

const STATUS_LABELS: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];

/// Escapes a label value: backslash, double quote and newline.
pub(crate) fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn seconds(micros: u64) -> f64 {
    micros as f64 / 1e6
}

impl Metrics<'_> {
    /// Group names as labels ("" is embedded mode, shown as "embedded").
    fn group_labels(&self) -> Vec<String> {
        (0..self.group_count())
            .map(|g| {
                let name = self.group_name(g);
                label(if name.is_empty() { "embedded" } else { &name })
            })
            .collect()
    }

    fn histogram_family(&self, out: &mut String, name: &str, help: &str, queue: bool) {
        family(out, name, "histogram", help);
        for (g, group) in self.group_labels().iter().enumerate() {
            let (buckets, sum_us, count) = self.histogram(g, queue);
            if queue && count == 0 {
                continue;
            }
            // The words are shared memory: a sum of garbage must not overflow.
            let mut cumulative = 0u64;
            for (i, le) in BUCKETS.iter().enumerate() {
                cumulative = cumulative.saturating_add(buckets[i]);
                let _ = writeln!(
                    out,
                    "{name}_bucket{{group=\"{group}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "{name}_bucket{{group=\"{group}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(out, "{name}_sum{{group=\"{group}\"}} {}", seconds(sum_us));
            let _ = writeln!(out, "{name}_count{{group=\"{group}\"}} {count}");
        }
    }

    /// Appends every server metric; `facts` tells whether a recorded pid is alive (None:
    /// dead, its record is left out) and its resident memory.
    pub fn render(&self, out: &mut String, facts: impl Fn(u32) -> Option<ProcessFacts>) {
        let groups = self.group_labels();
        family(
            out,
            "mod_wsgi_requests_total",
            "counter",
            "Requests answered, by process group (embedded = Apache's children) and status class.",
        );
        for (g, group) in groups.iter().enumerate() {
            for (class, n) in STATUS_LABELS.iter().zip(self.status_counts(g)) {
                let _ = writeln!(
                    out,
                    "mod_wsgi_requests_total{{group=\"{group}\",status=\"{class}\"}} {n}"
                );
            }
        }
        self.histogram_family(
            out,
            "mod_wsgi_request_duration_seconds",
            "Time from Apache reading the request to the end of the response.",
            false,
        );
        self.histogram_family(
            out,
            "mod_wsgi_queue_wait_seconds",
            "Time a daemon-mode request waited for a free daemon thread.",
            true,
        );
        family(
            out,
            "mod_wsgi_restarts_total",
            "counter",
            "Daemon processes stopped or recycled, by reason.",
        );
        for (g, group) in groups.iter().enumerate() {
            for (reason, n) in REASONS.iter().zip(self.restarts(g)) {
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "mod_wsgi_restarts_total{{group=\"{group}\",reason=\"{reason}\"}} {n}"
                    );
                }
            }
        }
        family(
            out,
            "mod_wsgi_gil_wait_seconds_total",
            "counter",
            "Time request threads waited to enter Python (the GIL).",
        );
        for (g, group) in groups.iter().enumerate() {
            let (us, _) = self.gil_wait(g);
            let _ = writeln!(
                out,
                "mod_wsgi_gil_wait_seconds_total{{group=\"{group}\"}} {}",
                seconds(us)
            );
        }
        family(
            out,
            "mod_wsgi_daemon_connections_total",
            "counter",
            "Connections daemon processes accepted from Apache's children (each carries one or, kept alive, many requests).",
        );
        for (g, group) in groups.iter().enumerate() {
            if !self.group_name(g).is_empty() {
                let n = self.connections(g);
                let _ = writeln!(
                    out,
                    "mod_wsgi_daemon_connections_total{{group=\"{group}\"}} {n}"
                );
            }
        }
        let live: Vec<_> = self
            .processes()
            .into_iter()
            .filter_map(|p| facts(p.pid).map(|f| (p, f)))
            .collect();
        let per_process: [(&str, &str, &str); 5] = [
            (
                "mod_wsgi_process_threads",
                "gauge",
                "Request threads of the process.",
            ),
            (
                "mod_wsgi_process_busy_threads",
                "gauge",
                "Threads running a request now.",
            ),
            (
                "mod_wsgi_process_requests_total",
                "counter",
                "Requests the process has run.",
            ),
            (
                "mod_wsgi_process_resident_memory_bytes",
                "gauge",
                "Resident memory of the process.",
            ),
            (
                "mod_wsgi_process_start_time_seconds",
                "gauge",
                "When the process started (Unix time).",
            ),
        ];
        for (i, (name, kind, help)) in per_process.iter().enumerate() {
            family(out, name, kind, help);
            for (p, f) in &live {
                let value = match i {
                    0 => p.threads,
                    1 => p.busy,
                    2 => p.requests,
                    3 => f.rss_bytes,
                    _ => p.started_unix,
                };
                let group = groups.get(p.group).map_or("unknown", String::as_str);
                let _ = writeln!(out, "{name}{{group=\"{group}\",pid=\"{}\"}} {value}", p.pid);
            }
        }
    }
}
