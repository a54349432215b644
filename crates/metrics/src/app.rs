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
        let (kind, help) = text.split_once('\n').unwrap_or((&text, ""));
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(out, "# HELP {family} {help}\n# TYPE {family} {kind}");
        for (_, sample, value) in samples.iter().filter(|s| s.0 == family) {
            let _ = writeln!(out, "{sample} {}", number(*value));
        }
    }
}
