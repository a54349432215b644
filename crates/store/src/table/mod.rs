//! The store's data structure, as plain safe code over a byte slice: a hash index with
//! linear probing and an append-only entry area, in two halves of which one is active.
//!
//! Every change becomes visible through one aligned 8-byte store (an index slot, the
//! in-place value of an integer, or the active-half word), written after everything it
//! points at. A process killed at any instruction therefore leaves the active half
//! consistent except for its counters, which `repair` recounts. Compaction copies the live
//! entries into the other half and then flips the active word, so it too is all or
//! nothing. The price is that half the memory is scratch space for compaction.
//!
//! Layout: `[root 128 B][half 0][half 1]`, each half `[index: slots x u64][entries]`.
//! Root: active half (u64), then per half: bump, live, tombstones, garbage (u64 each).
//! Entry: key length u32, value length u32, value kind u8, key kind u8, 6 spare bytes,
//! expiry (ms since the epoch, 0 = never) i64, key hash u64, the value padded to 8 bytes,
//! then the key padded to 8 bytes. An index slot holds 0 (empty), 1 (deleted) or
//! entry offset + 8.
//!
//! The memory is shared with every process of the server, so nothing read from it is
//! trusted: offsets and lengths are checked before use and arithmetic on them cannot
//! overflow, every scan is bounded by the number of index slots, and damage only ever
//! turns into `TableError::Corrupt` (or, in `compact` and `repair`, into dropped entries).

use crate::value::{KIND_BYTES, KIND_INT, KIND_STR, KeyKind, Value, ValueRef};
use std::sync::atomic::{Ordering, fence};

/// Longest key accepted, in bytes.
pub const MAX_KEY: usize = 64 * 1024;
/// The smallest memory a table can be laid out in.
pub const MIN_SIZE: usize = 64 * 1024;

const ROOT: usize = 128;
const ACTIVE: usize = 0;
const ENTRY_HEAD: usize = 32;
const EMPTY: u64 = 0;
const DELETED: u64 = 1;
const SLOT_BIAS: u64 = 8;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    #[error("shared store is full: {0}")]
    Full(String),
    #[error("key of {0} bytes is longer than the limit of {MAX_KEY}")]
    KeyTooLong(usize),
    #[error("the stored value is not an integer")]
    NotAnInteger,
    #[error("integer overflow")]
    Overflow,
    #[error("shared store memory is damaged ({0}); clear() empties it")]
    Corrupt(&'static str),
}

type Result<T> = std::result::Result<T, TableError>;

/// How full the store is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Entries in the index, expired ones included until the next compaction.
    pub keys: u64,
    /// Most keys the index holds.
    pub key_capacity: u64,
    /// Bytes taken by live entries (headers and padding included).
    pub used_bytes: u64,
    /// Bytes available to entries in one half.
    pub capacity_bytes: u64,
}

/// What `repair` found after a process died holding the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Repair {
    /// Index slots that pointed at nothing valid and were removed.
    pub dropped: u64,
    /// The memory was beyond repair and was emptied.
    pub reformatted: bool,
}

#[derive(Clone, Copy)]
struct Geometry {
    half_len: usize,
    slots: usize,
    data_len: usize,
}

impl Geometry {
    fn of(len: usize) -> Geometry {
        let half_len = (len.saturating_sub(ROOT) / 2) & !7;
        let mut slots = 16;
        while slots * 2 * 72 <= half_len {
            slots *= 2;
        }
        Geometry {
            half_len,
            slots,
            data_len: half_len - slots * 8,
        }
    }

    fn index(&self, half: usize) -> usize {
        ROOT + half * self.half_len
    }

    fn data(&self, half: usize) -> usize {
        self.index(half) + self.slots * 8
    }

    fn max_keys(&self) -> usize {
        self.slots / 4 * 3
    }
}

const fn padded(n: usize) -> usize {
    (n + 7) & !7
}

fn entry_size(key_len: usize, value_len: usize) -> usize {
    ENTRY_HEAD + padded(value_len) + padded(key_len)
}

/// 64-bit FNV-1a with a final mix so the low bits (the probe start) are well spread.
/// Deterministic: every process must find a key in the same place.
fn hash(key: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h
}

/// A parsed entry header, checked to lie inside the written part of its half.
struct Entry {
    at: usize,
    key_len: usize,
    value_len: usize,
    kind: u8,
    key_kind: u8,
    expires: i64,
    hash: u64,
}

impl Entry {
    fn size(&self) -> usize {
        entry_size(self.key_len, self.value_len)
    }

    fn value_at(&self) -> usize {
        self.at + ENTRY_HEAD
    }

    fn key_at(&self) -> usize {
        self.value_at() + padded(self.value_len)
    }

    fn expired(&self, now_ms: i64) -> bool {
        self.expires != 0 && self.expires <= now_ms
    }
}

enum Probe {
    Found { slot: usize, entry: Entry },
    Vacant { slot: usize, reuses_deleted: bool },
}

/// The store's structure laid over `mem`, which the caller keeps locked while it exists.
pub struct Table<'a> {
    mem: &'a mut [u8],
    geo: Geometry,
}

impl<'a> Table<'a> {
    /// Lays out an empty table over `mem`; None if `mem` is shorter than MIN_SIZE.
    pub fn format(mem: &'a mut [u8]) -> Option<Table<'a>> {
        let mut table = Table::attach(mem)?;
        table.clear();
        Some(table)
    }

    /// Reads a table `format` laid out earlier over the same memory.
    pub fn attach(mem: &'a mut [u8]) -> Option<Table<'a>> {
        (mem.len() >= MIN_SIZE).then(|| Table::over(mem))
    }

    /// As `attach`, for memory whose length the caller checked against MIN_SIZE.
    pub(crate) fn over(mem: &'a mut [u8]) -> Table<'a> {
        let geo = Geometry::of(mem.len().max(MIN_SIZE));
        Table { mem, geo }
    }

    /// Removes every key.
    pub fn clear(&mut self) {
        self.mem[..ROOT].fill(0);
        for half in 0..2 {
            let at = self.geo.index(half);
            self.mem[at..at + self.geo.slots * 8].fill(0);
        }
    }

    fn u64_at(&self, at: usize) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.mem[at..at + 8]);
        u64::from_ne_bytes(b)
    }

    fn set_u64(&mut self, at: usize, v: u64) {
        self.mem[at..at + 8].copy_from_slice(&v.to_ne_bytes());
    }

    fn active(&self) -> usize {
        (self.u64_at(ACTIVE) & 1) as usize
    }

    fn meta(half: usize, field: usize) -> usize {
        8 + half * 32 + field * 8
    }

    /// The end of the written entries of `half`: not trusted, callers check it against
    /// `data_len` (`usize::MAX` stands for a value that does not fit).
    fn bump(&self, half: usize) -> usize {
        usize::try_from(self.u64_at(Self::meta(half, 0))).unwrap_or(usize::MAX)
    }

    fn counter(&self, half: usize, field: usize) -> u64 {
        self.u64_at(Self::meta(half, field))
    }

    fn add_counter(&mut self, half: usize, field: usize, delta: i64) {
        let at = Self::meta(half, field);
        let v = self.u64_at(at).wrapping_add_signed(delta);
        self.set_u64(at, v);
    }

    fn slot_word(&self, half: usize, slot: usize) -> u64 {
        self.u64_at(self.geo.index(half) + slot * 8)
    }

    /// Reads the entry a slot word points at, checking it lies whole in the written area
    /// and that its kind and length agree (an integer is 8 bytes).
    fn entry(&self, half: usize, word: u64) -> Result<Entry> {
        let bump = self.bump(half);
        if bump > self.geo.data_len {
            return Err(TableError::Corrupt("bump pointer"));
        }
        let off = word
            .checked_sub(SLOT_BIAS)
            .and_then(|off| usize::try_from(off).ok())
            .filter(|off| off.is_multiple_of(8) && *off <= bump && bump - off >= ENTRY_HEAD)
            .ok_or(TableError::Corrupt("index slot"))?;
        let at = self.geo.data(half) + off;
        let h = &self.mem[at..at + ENTRY_HEAD];
        let u32_at = |i: usize| u32::from_ne_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]) as usize;
        let entry = Entry {
            at,
            key_len: u32_at(0),
            value_len: u32_at(4),
            kind: h[8],
            key_kind: h[9],
            expires: self.u64_at(at + 16) as i64,
            hash: self.u64_at(at + 24),
        };
        // Both lengths are bounded before they are added, so the sum cannot overflow.
        let whole = entry.key_len <= MAX_KEY
            && entry.value_len <= self.geo.data_len
            && entry.size() <= bump - off;
        let kind_ok = match entry.kind {
            KIND_INT => entry.value_len == 8,
            KIND_BYTES | KIND_STR => true,
            _ => false,
        };
        if !whole || !kind_ok {
            return Err(TableError::Corrupt("entry header"));
        }
        Ok(entry)
    }

    fn key_of(&self, e: &Entry) -> &[u8] {
        &self.mem[e.key_at()..e.key_at() + e.key_len]
    }

    fn value_of(&self, e: &Entry) -> Result<Value> {
        Value::decode(e.kind, &self.mem[e.value_at()..e.value_at() + e.value_len])
            .ok_or(TableError::Corrupt("value"))
    }

    fn probe(&self, key: &[u8], h: u64) -> Result<Probe> {
        self.probe_in(self.active(), key, h)
    }

    /// Finds `key` in the index of `half`, or the slot it would go in; at most one pass
    /// over the index, whatever the slots hold.
    fn probe_in(&self, half: usize, key: &[u8], h: u64) -> Result<Probe> {
        let mask = self.geo.slots - 1;
        let mut first_deleted = None;
        let mut slot = h as usize & mask;
        for _ in 0..self.geo.slots {
            match self.slot_word(half, slot) {
                EMPTY => {
                    return Ok(match first_deleted {
                        Some(d) => Probe::Vacant {
                            slot: d,
                            reuses_deleted: true,
                        },
                        None => Probe::Vacant {
                            slot,
                            reuses_deleted: false,
                        },
                    });
                }
                DELETED => {
                    first_deleted.get_or_insert(slot);
                }
                word => {
                    let entry = self.entry(half, word)?;
                    if entry.hash == h && self.key_of(&entry) == key {
                        return Ok(Probe::Found { slot, entry });
                    }
                }
            }
            slot = (slot + 1) & mask;
        }
        match first_deleted {
            Some(d) => Ok(Probe::Vacant {
                slot: d,
                reuses_deleted: true,
            }),
            None => Err(TableError::Full("every key slot is taken".to_owned())),
        }
    }

    fn live_entry(&self, key: &[u8], now_ms: i64) -> Result<Option<Entry>> {
        check_key(key)?;
        Ok(match self.probe(key, hash(key))? {
            Probe::Found { entry, .. } if !entry.expired(now_ms) => Some(entry),
            _ => None,
        })
    }

    pub fn get(&self, key: &[u8], now_ms: i64) -> Result<Option<Value>> {
        self.live_entry(key, now_ms)?
            .map(|e| self.value_of(&e))
            .transpose()
    }

    /// Stores `value` under `key`; `expires_ms` 0 keeps it until deleted.
    pub fn set(
        &mut self,
        key: &[u8],
        key_kind: KeyKind,
        value: ValueRef<'_>,
        expires_ms: i64,
        now_ms: i64,
    ) -> Result<()> {
        check_key(key)?;
        let size = entry_size(key.len(), value.len());
        if size > self.geo.data_len {
            return Err(TableError::Full(format!(
                "an entry of {size} bytes is larger than the store's {} usable bytes",
                self.geo.data_len
            )));
        }
        let h = hash(key);
        let mut compacted = false;
        loop {
            let half = self.active();
            let probe = self.probe(key, h)?;
            let new_key = matches!(probe, Probe::Vacant { .. });
            // The counters and the bump pointer may be garbage: a value that cannot be
            // right counts as "does not fit", and compaction rebuilds all of them.
            let keys_after = self
                .counter(half, 1)
                .saturating_add(self.counter(half, 2))
                .saturating_add(u64::from(new_key));
            let bump = self.bump(half);
            let fits = bump.is_multiple_of(8)
                && bump <= self.geo.data_len
                && size <= self.geo.data_len - bump
                && keys_after <= self.geo.max_keys() as u64;
            if !fits {
                if compacted {
                    let stats = self.stats();
                    return Err(TableError::Full(format!(
                        "{} of {} bytes and {} of {} keys in use",
                        stats.used_bytes, stats.capacity_bytes, stats.keys, stats.key_capacity
                    )));
                }
                self.compact(now_ms);
                compacted = true;
                continue;
            }
            let off = self.bump(half);
            let at = self.geo.data(half) + off;
            self.write_entry(at, key, key_kind, value, expires_ms, h);
            fence(Ordering::SeqCst);
            self.set_u64(Self::meta(half, 0), (off + size) as u64);
            fence(Ordering::SeqCst);
            let word = off as u64 + SLOT_BIAS;
            match probe {
                Probe::Found { slot, entry } => {
                    self.set_u64(self.geo.index(half) + slot * 8, word);
                    self.add_counter(half, 3, entry.size() as i64);
                }
                Probe::Vacant {
                    slot,
                    reuses_deleted,
                } => {
                    self.set_u64(self.geo.index(half) + slot * 8, word);
                    self.add_counter(half, 1, 1);
                    if reuses_deleted {
                        self.add_counter(half, 2, -1);
                    }
                }
            }
            return Ok(());
        }
    }

    fn write_entry(
        &mut self,
        at: usize,
        key: &[u8],
        key_kind: KeyKind,
        value: ValueRef<'_>,
        expires_ms: i64,
        h: u64,
    ) {
        let head = &mut self.mem[at..at + ENTRY_HEAD];
        head.fill(0);
        head[0..4].copy_from_slice(&(key.len() as u32).to_ne_bytes());
        head[4..8].copy_from_slice(&(value.len() as u32).to_ne_bytes());
        head[8] = value.kind();
        head[9] = key_kind.code();
        head[16..24].copy_from_slice(&expires_ms.to_ne_bytes());
        head[24..32].copy_from_slice(&h.to_ne_bytes());
        let value_at = at + ENTRY_HEAD;
        value.write_to(&mut self.mem[value_at..value_at + value.len()]);
        let key_at = value_at + padded(value.len());
        self.mem[key_at..key_at + key.len()].copy_from_slice(key);
    }

    /// Removes `key`; true if it held a live value.
    pub fn delete(&mut self, key: &[u8], now_ms: i64) -> Result<bool> {
        check_key(key)?;
        let half = self.active();
        match self.probe(key, hash(key))? {
            Probe::Found { slot, entry } => {
                self.set_u64(self.geo.index(half) + slot * 8, DELETED);
                self.add_counter(half, 1, -1);
                self.add_counter(half, 2, 1);
                self.add_counter(half, 3, entry.size() as i64);
                Ok(!entry.expired(now_ms))
            }
            Probe::Vacant { .. } => Ok(false),
        }
    }

    /// Adds `delta` to the integer under `key` (a missing key counts as 0) in place,
    /// keeping its expiry, and returns the new value.
    pub fn incr(&mut self, key: &[u8], key_kind: KeyKind, delta: i64, now_ms: i64) -> Result<i64> {
        match self.live_entry(key, now_ms)? {
            Some(entry) if entry.kind != KIND_INT => Err(TableError::NotAnInteger),
            Some(entry) => {
                let current = self.u64_at(entry.value_at()) as i64;
                let next = current.checked_add(delta).ok_or(TableError::Overflow)?;
                self.set_u64(entry.value_at(), next as u64);
                Ok(next)
            }
            None => {
                self.set(key, key_kind, ValueRef::Int(delta), 0, now_ms)?;
                Ok(delta)
            }
        }
    }

    /// Sets `key` to `new` only if its current value is `expected` (None: absent);
    /// true if it did.
    pub fn compare_and_set(
        &mut self,
        key: &[u8],
        key_kind: KeyKind,
        expected: Option<ValueRef<'_>>,
        new: ValueRef<'_>,
        expires_ms: i64,
        now_ms: i64,
    ) -> Result<bool> {
        let current = self.live_entry(key, now_ms)?;
        let same = match (&current, expected) {
            (None, None) => true,
            (Some(e), Some(want)) => {
                want.matches(e.kind, &self.mem[e.value_at()..e.value_at() + e.value_len])
            }
            _ => false,
        };
        if same {
            self.set(key, key_kind, new, expires_ms, now_ms)?;
        }
        Ok(same)
    }

    /// Live keys starting with `prefix`, in no particular order.
    pub fn keys(&self, prefix: &[u8], now_ms: i64) -> Result<Vec<(Vec<u8>, KeyKind)>> {
        let half = self.active();
        let mut out = Vec::new();
        for slot in 0..self.geo.slots {
            let word = self.slot_word(half, slot);
            if word == EMPTY || word == DELETED {
                continue;
            }
            let entry = self.entry(half, word)?;
            let key = self.key_of(&entry);
            if !entry.expired(now_ms) && key.starts_with(prefix) {
                out.push((key.to_vec(), KeyKind::from_code(entry.key_kind)));
            }
        }
        Ok(out)
    }

    pub fn stats(&self) -> Stats {
        let half = self.active();
        Stats {
            keys: self.counter(half, 1),
            key_capacity: self.geo.max_keys() as u64,
            used_bytes: (self.bump(half) as u64).saturating_sub(self.counter(half, 3)),
            capacity_bytes: self.geo.data_len as u64,
        }
    }

    /// Copies the live, unexpired entries into the other half, then makes it active.
    ///
    /// Entries the index points at more than once, or under a key already copied, are
    /// copied once; entries that are damaged, or that would not fit (only damaged memory
    /// holds more than a half's worth), are left behind. Each copy is indexed under the
    /// hash of its key, recomputed. The new half is thus consistent whatever the old held.
    pub fn compact(&mut self, now_ms: i64) {
        let from = self.active();
        let to = 1 - from;
        let index = self.geo.index(to);
        self.mem[index..index + self.geo.slots * 8].fill(0);
        self.mem[Self::meta(to, 0)..Self::meta(to, 4)].fill(0);
        let max_keys = self.geo.max_keys() as u64;
        let (mut bump, mut live) = (0usize, 0u64);
        for slot in 0..self.geo.slots {
            if live == max_keys {
                break;
            }
            let word = self.slot_word(from, slot);
            if word == EMPTY || word == DELETED {
                continue;
            }
            let Ok(entry) = self.entry(from, word) else {
                continue;
            };
            let size = entry.size();
            if entry.expired(now_ms) || size > self.geo.data_len - bump {
                continue;
            }
            let h = hash(self.key_of(&entry));
            let Ok(Probe::Vacant { slot: target, .. }) = self.probe_in(to, self.key_of(&entry), h)
            else {
                continue;
            };
            let dst = self.geo.data(to) + bump;
            self.mem.copy_within(entry.at..entry.at + size, dst);
            self.set_u64(dst + 24, h);
            self.set_u64(index + target * 8, bump as u64 + SLOT_BIAS);
            bump += size;
            live += 1;
            // The next probe reads the entries copied so far through the bump pointer.
            self.set_u64(Self::meta(to, 0), bump as u64);
        }
        self.set_u64(Self::meta(to, 0), bump as u64);
        self.set_u64(Self::meta(to, 1), live);
        self.set_u64(Self::meta(to, 2), 0);
        self.set_u64(Self::meta(to, 3), 0);
        fence(Ordering::SeqCst);
        self.set_u64(ACTIVE, to as u64);
    }

    /// Recounts the active half after a process died holding the lock, removing index
    /// slots that do not point at a whole entry.
    pub fn repair(&mut self) -> Repair {
        let mut report = Repair::default();
        let bump = self.bump(self.active());
        if self.u64_at(ACTIVE) > 1 || bump > self.geo.data_len || !bump.is_multiple_of(8) {
            self.clear();
            report.reformatted = true;
            return report;
        }
        let half = self.active();
        let (mut live, mut deleted, mut used) = (0u64, 0u64, 0u64);
        for slot in 0..self.geo.slots {
            match self.slot_word(half, slot) {
                EMPTY => {}
                DELETED => deleted += 1,
                word => match self.entry(half, word) {
                    Ok(entry) => {
                        live += 1;
                        used += entry.size() as u64;
                    }
                    Err(_) => {
                        self.set_u64(self.geo.index(half) + slot * 8, DELETED);
                        deleted += 1;
                        report.dropped += 1;
                    }
                },
            }
        }
        let bump = self.bump(half) as u64;
        self.set_u64(Self::meta(half, 1), live);
        self.set_u64(Self::meta(half, 2), deleted);
        self.set_u64(Self::meta(half, 3), bump.saturating_sub(used));
        report
    }
}

fn check_key(key: &[u8]) -> Result<()> {
    if key.len() > MAX_KEY {
        Err(TableError::KeyTooLong(key.len()))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod damaged;
#[cfg(test)]
mod tests;
