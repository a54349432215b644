//! This process's view of the server metrics: the shared words the parent mapped, this
//! process's record, and the text the `wsgi-metrics` handler serves.

use super::registry;
use mod_wsgi_metrics::{AppSample, Metrics, ProcessFacts, ProcessSlot, render_app_metrics};
use mod_wsgi_store::{SharedWords, Stats, Value};
use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};
use std::time::Duration;

static WORDS: OnceLock<SharedWords> = OnceLock::new();
static PROCESS: OnceLock<ProcessSlot<'static>> = OnceLock::new();
static GROUPS: RwLock<Option<HashMap<String, usize>>> = RwLock::new(None);

/// Makes `words` this generation's metrics (the parent, before forking).
pub fn install(words: SharedWords) -> Result<(), SharedWords> {
    WORDS.set(words)
}

/// Where the installed words are mapped.
pub fn words_address() -> Option<usize> {
    WORDS.get().map(SharedWords::address)
}

pub fn metrics() -> Option<Metrics<'static>> {
    Metrics::new(WORDS.get()?.words())
}

/// Adds a process group's counters (the parent, before forking).
pub fn register_group(name: &str) {
    if let Some(m) = metrics() {
        m.group_index_or_add(name);
    }
}

/// The counters index of process group `name` ("" = embedded), cached per process.
pub fn group_index(name: &str) -> Option<usize> {
    if let Some(i) = GROUPS
        .read()
        .ok()
        .and_then(|g| g.as_ref().and_then(|m| m.get(name).copied()))
    {
        return Some(i);
    }
    let i = metrics()?.group_index(name)?;
    if let Ok(mut g) = GROUPS.write() {
        g.get_or_insert_with(HashMap::new)
            .insert(name.to_owned(), i);
    }
    Some(i)
}

fn is_dead(pid: u32) -> bool {
    !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Claims this process's record (an Apache child: group "", a daemon: its group).
pub fn claim_process(group: &str, threads: u64) {
    let Some(m) = metrics() else { return };
    let Some(g) = group_index(group) else { return };
    if let Some(slot) = m.claim_process(std::process::id(), g, threads, unix_now(), is_dead) {
        let _ = PROCESS.set(slot);
    }
}

pub fn process() -> Option<ProcessSlot<'static>> {
    PROCESS.get().copied()
}

/// Marks one of this process's threads busy until the returned guard drops.
pub fn busy() -> Busy {
    let slot = process();
    if let Some(s) = slot {
        s.request_started();
    }
    Busy(slot)
}

pub struct Busy(Option<ProcessSlot<'static>>);

impl Drop for Busy {
    fn drop(&mut self) {
        if let Some(s) = self.0 {
            s.request_finished();
        }
    }
}

pub fn record_gil_wait(waited: Duration) {
    if let Some(s) = process() {
        s.record_gil_wait(waited.as_micros() as u64);
    }
}

/// How long a request that started at `started_us` took until `now_us` (microseconds
/// since the epoch); zero if the clock went back.
pub fn elapsed_since(started_us: i64, now_us: i64) -> Duration {
    Duration::from_micros(now_us.saturating_sub(started_us).max(0) as u64)
}

pub fn record_request(group: &str, status: u16, took: Duration) {
    if let (Some(m), Some(g)) = (metrics(), group_index(group)) {
        m.record_request(g, status, took.as_secs_f64());
    }
}

pub fn record_connection(group: &str) {
    if let (Some(m), Some(g)) = (metrics(), group_index(group)) {
        m.record_connection(g);
    }
}

pub fn record_queue_wait(group: &str, waited: Duration) {
    if let (Some(m), Some(g)) = (metrics(), group_index(group)) {
        m.record_queue_wait(g, waited.as_secs_f64());
    }
}

pub fn record_restart(group: &str, reason: &str) {
    if let (Some(m), Some(g)) = (metrics(), group_index(group)) {
        m.record_restart(g, reason);
    }
}

/// CPU time and memory of this process.
pub struct ResourceUsage {
    pub user_seconds: f64,
    pub system_seconds: f64,
    pub max_rss_bytes: u64,
    pub rss_bytes: u64,
}

pub fn resource_usage() -> ResourceUsage {
    // /proc reports CPU times in USER_HZ, which Linux fixes at 100 for this interface.
    let ticks = |i: usize| {
        crate::procfs::stat_fields("self")
            .and_then(|f| f.get(i)?.parse::<u64>().ok())
            .map_or(0.0, |t| t as f64 / 100.0)
    };
    ResourceUsage {
        user_seconds: ticks(11),
        system_seconds: ticks(12),
        max_rss_bytes: crate::procfs::status_bytes("self", "VmHWM").unwrap_or(0),
        rss_bytes: crate::procfs::status_bytes("self", "VmRSS").unwrap_or(0),
    }
}

/// A store gauge: name, help, and how to read it from the store's stats.
type StoreFamily = (&'static str, &'static str, fn(&Stats) -> u64);

/// The application metrics' entries, read under the store's lock.
fn app_entries(app: &mod_wsgi_store::SharedStore) -> Vec<AppSample> {
    super::memory::locked("(metrics)", app, |table, now| {
        Ok(table
            .keys(b"", now)?
            .into_iter()
            .filter_map(|(key, _)| {
                let bytes = match table.get(&key, now).ok()?? {
                    Value::Bytes(b) => b,
                    Value::Str(s) => s.into_bytes(),
                    Value::Int(_) => return None,
                };
                AppSample::parse(&key, &bytes)
            })
            .collect())
    })
    .unwrap_or_default()
}

/// The whole exposition: server metrics, shared stores, then application metrics.
pub fn render() -> String {
    let mut out = String::with_capacity(16 * 1024);
    if let Some(m) = metrics() {
        m.render(&mut out, |pid| {
            crate::procfs::status_bytes(&pid.to_string(), "VmRSS")
                .map(|rss_bytes| ProcessFacts { rss_bytes })
        });
    }
    if let Some(registry) = registry() {
        let stats: Vec<(String, Stats)> = registry
            .stores
            .iter()
            .filter_map(|s| {
                s.backend
                    .stats(&s.name)
                    .map(|stats| (s.name.clone(), stats))
            })
            .collect();
        let families: [StoreFamily; 4] = [
            (
                "mod_wsgi_store_keys",
                "Keys in the shared store (expired ones until compaction).",
                |s| s.keys,
            ),
            (
                "mod_wsgi_store_key_capacity",
                "Most keys the shared store holds.",
                |s| s.key_capacity,
            ),
            (
                "mod_wsgi_store_used_bytes",
                "Bytes the shared store's live entries take.",
                |s| s.used_bytes,
            ),
            (
                "mod_wsgi_store_capacity_bytes",
                "Bytes available to the shared store's entries.",
                |s| s.capacity_bytes,
            ),
        ];
        for (name, help, value) in families {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
            for (store, s) in &stats {
                let store = store.replace('"', "\\\"");
                out.push_str(&format!("{name}{{store=\"{store}\"}} {}\n", value(s)));
            }
        }
        let entries = registry
            .partitions
            .iter()
            .flat_map(|p| app_entries(&p.app_metrics))
            .collect();
        render_app_metrics(&mut out, entries);
    }
    out
}

#[cfg(test)]
mod elapsed_tests {
    use super::elapsed_since;
    use std::time::Duration;

    #[test]
    fn elapsed_is_the_difference_and_never_negative() {
        assert_eq!(elapsed_since(1_000, 3_500), Duration::from_micros(2_500));
        assert_eq!(elapsed_since(5, 5), Duration::ZERO);
        assert_eq!(elapsed_since(9_000, 1_000), Duration::ZERO);
        assert_eq!(
            elapsed_since(i64::MIN, i64::MAX),
            Duration::from_micros(i64::MAX as u64)
        );
    }
}
