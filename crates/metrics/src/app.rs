//! Application-defined metrics: kept as entries of an internal shared store (one entry
//! per family with its type and help, one per sample with its value as an f64), rendered
//! here. The keys are built by `meta_key` and `sample_key` so both sides agree.

use std::fmt::Write;

pub const META_PREFIX: &[u8] = b"m\0";
pub const SAMPLE_PREFIX: &[u8] = b"s\0";

/// Key of a family's "type\nhelp" entry.
pub fn meta_key(family: &str) -> Vec<u8> {
    [META_PREFIX, family.as_bytes()].concat()
}

/// Key of one sample: its family, then the sample as written in the exposition
/// (`name{labels}`), so rendering needs no parsing of labels.
pub fn sample_key(family: &str, sample: &str) -> Vec<u8> {
    [SAMPLE_PREFIX, family.as_bytes(), b"\0", sample.as_bytes()].concat()
}

/// One stored entry, as read from the store.
pub enum AppSample {
    Meta {
        family: String,
        text: String,
    },
    Value {
        family: String,
        sample: String,
        value: f64,
    },
}

impl AppSample {
    /// Reads a store entry back; None for keys that are not metrics entries.
    pub fn parse(key: &[u8], value: &[u8]) -> Option<AppSample> {
        if let Some(family) = key.strip_prefix(META_PREFIX) {
            return Some(AppSample::Meta {
                family: String::from_utf8(family.to_vec()).ok()?,
                text: String::from_utf8(value.to_vec()).ok()?,
            });
        }
        let rest = key.strip_prefix(SAMPLE_PREFIX)?;
        let split = rest.iter().position(|&b| b == 0)?;
        Some(AppSample::Value {
            family: String::from_utf8(rest[..split].to_vec()).ok()?,
            sample: String::from_utf8(rest[split + 1..].to_vec()).ok()?,
            value: f64::from_ne_bytes(value.try_into().ok()?),
        })
    }
}

/// Prometheus metric name syntax: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A sample as the exposition writes it: the family's name, an optional suffix
/// (`_bucket`, `_sum`...), and optional `{labels}` holding no control character. The
/// entries are read from shared memory an application can write to, so a sample that
/// could add a line of its own to the exposition is not rendered.
pub fn valid_sample(family: &str, sample: &str) -> bool {
    let Some(rest) = sample.strip_prefix(family) else {
        return false;
    };
    let (suffix, labels) = rest.split_at(rest.find('{').unwrap_or(rest.len()));
    let suffix_ok = suffix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
    let labels_ok = labels.is_empty()
        || (labels.len() >= 2 && labels.ends_with('}') && !labels.chars().any(|c| c.is_control()));
    valid_metric_name(family) && suffix_ok && labels_ok
}

fn number(v: f64) -> String {
    if v.is_finite() && v == v.trunc() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Appends the families in `entries`, each with its HELP/TYPE and samples in order.
pub fn render_app_metrics(out: &mut String, entries: Vec<AppSample>) {
    let mut families: Vec<(String, String)> = Vec::new();
    let mut samples: Vec<(String, String, f64)> = Vec::new();
    for e in entries {
        match e {
            AppSample::Meta { family, text } => families.push((family, text)),
            AppSample::Value {
                family,
                sample,
                value,
            } => samples.push((family, sample, value)),
        }
    }
    families.sort();
    samples.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    for (family, text) in families {
        if !valid_metric_name(&family) {
            continue;
        }
        let (kind, help) = text.split_once('\n').unwrap_or((&text, ""));
        let help: String = help
            .chars()
            .flat_map(|c| match c {
                '\\' => vec!['\\', '\\'],
                '\n' => vec!['\\', 'n'],
                c if c.is_control() => vec![' '],
                c => vec![c],
            })
            .collect();
        let kind = match kind {
            "counter" | "gauge" | "histogram" | "summary" => kind,
            _ => "untyped",
        };
        let _ = writeln!(out, "# HELP {family} {help}\n# TYPE {family} {kind}");
        let own = samples.iter().filter(|s| s.0 == family);
        for (_, sample, value) in own.filter(|s| valid_sample(&family, &s.1)) {
            let _ = writeln!(out, "{sample} {}", number(*value));
        }
    }
}
