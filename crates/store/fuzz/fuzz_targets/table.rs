//! The shared store's table over memory another process may have scribbled on: a table
//! is laid out (or not), filled by some operations, then damaged (words and bytes
//! overwritten anywhere, or the whole memory replaced by a pattern), and used again.
//! Whatever the memory holds, no operation may panic, loop without end or touch memory
//! outside the slice; damage may only turn into errors. And whenever a `set` succeeds, a
//! `get` of that key right after returns what was set.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use mod_wsgi_store::{KeyKind, MIN_SIZE, Table, Value};

#[derive(Arbitrary, Debug)]
enum Val {
    Bytes(Vec<u8>),
    Str(String),
    Int(i64),
    /// A value large enough to fill a good part of the memory and force compaction.
    Big(u16, u8),
}

#[derive(Arbitrary, Debug)]
enum Op {
    Get(u8),
    Set(u8, Val, i8),
    Delete(u8),
    Incr(u8, i64),
    Cas(u8, Option<Val>, Val),
    Keys(Vec<u8>),
    Stats,
    Compact,
    Repair,
    Tick(u16),
}

#[derive(Arbitrary, Debug)]
enum Damage {
    /// An aligned 8-byte word (root, index slots, entry headers are all made of them).
    Word(u16, u64),
    /// Bytes at any offset.
    Bytes(u16, Vec<u8>),
    /// A run of one byte value.
    Fill(u16, u16, u8),
}

#[derive(Arbitrary, Debug)]
struct Input {
    extra_len: u16,
    /// Start from memory never laid out by `format`, with every byte from `pattern`.
    unformatted: bool,
    pattern: Vec<u8>,
    before: Vec<Op>,
    damage: Vec<Damage>,
    after: Vec<Op>,
}

fn key(k: u8) -> Vec<u8> {
    // Few distinct keys, so operations meet each other in the index.
    format!("k{}", k % 16).into_bytes()
}

fn owned(v: &Val) -> Value {
    match v {
        Val::Bytes(b) => Value::Bytes(b.clone()),
        Val::Str(s) => Value::Str(s.clone()),
        Val::Int(i) => Value::Int(*i),
        Val::Big(len, byte) => Value::Bytes(vec![*byte; usize::from(*len) % 24_000]),
    }
}

fn run(table: &mut Table<'_>, ops: &[Op], now: &mut i64) {
    for op in ops {
        match op {
            Op::Get(k) => {
                let _ = table.get(&key(*k), *now);
            }
            Op::Set(k, v, ttl) => {
                let value = owned(v);
                let expires = if *ttl > 0 { *now + i64::from(*ttl) } else { 0 };
                if table
                    .set(&key(*k), KeyKind::Str, value.as_ref(), expires, *now)
                    .is_ok()
                {
                    assert_eq!(
                        table.get(&key(*k), *now),
                        Ok(Some(value)),
                        "a key just set reads back"
                    );
                }
            }
            Op::Delete(k) => {
                let _ = table.delete(&key(*k), *now);
            }
            Op::Incr(k, d) => {
                let _ = table.incr(&key(*k), KeyKind::Bytes, *d, *now);
            }
            Op::Cas(k, expected, new) => {
                let expected = expected.as_ref().map(owned);
                let new = owned(new);
                let _ = table.compare_and_set(
                    &key(*k),
                    KeyKind::Str,
                    expected.as_ref().map(Value::as_ref),
                    new.as_ref(),
                    0,
                    *now,
                );
            }
            Op::Keys(prefix) => {
                let _ = table.keys(prefix, *now);
            }
            Op::Stats => {
                let _ = table.stats();
            }
            Op::Compact => table.compact(*now),
            Op::Repair => {
                let _ = table.repair();
            }
            Op::Tick(ms) => *now += i64::from(*ms),
        }
    }
}

fn damage(mem: &mut [u8], damage: &[Damage]) {
    let len = mem.len();
    for d in damage {
        match d {
            Damage::Word(at, value) => {
                let at = (usize::from(*at) * 8) % (len - 7) & !7;
                mem[at..at + 8].copy_from_slice(&value.to_ne_bytes());
            }
            Damage::Bytes(at, bytes) => {
                let at = usize::from(*at) % len;
                let n = bytes.len().min(len - at);
                mem[at..at + n].copy_from_slice(&bytes[..n]);
            }
            Damage::Fill(at, n, byte) => {
                let at = usize::from(*at) % len;
                let n = usize::from(*n).min(len - at);
                mem[at..at + n].fill(*byte);
            }
        }
    }
}

fuzz_target!(|input: Input| {
    let mut mem = vec![0u8; MIN_SIZE + usize::from(input.extra_len % 4096)];
    let mut now = 1_000;
    if input.unformatted {
        if !input.pattern.is_empty() {
            for (b, p) in mem.iter_mut().zip(input.pattern.iter().cycle()) {
                *b = *p;
            }
        }
    } else {
        let mut table = Table::format(&mut mem).expect("MIN_SIZE is enough");
        run(&mut table, &input.before, &mut now);
    }
    damage(&mut mem, &input.damage);
    let mut table = Table::attach(&mut mem).expect("MIN_SIZE is enough");
    run(&mut table, &input.after, &mut now);
    // Repair on garbage must leave a table every operation works on without panicking.
    let _ = table.repair();
    run(&mut table, &input.after, &mut now);
});
