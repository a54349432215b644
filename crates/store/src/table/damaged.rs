//! The table over memory another process scribbled on (the cases the `table` fuzz target
//! in crates/store/fuzz exercises): damage turns into errors or dropped entries, never
//! into a panic, an overflow or a read or write outside the entry it concerns.

use super::*;

fn table(mem: &mut [u8]) -> Table<'_> {
    Table::format(mem).expect("large enough")
}

fn word(mem: &mut [u8], at: usize, value: u64) {
    mem[at..at + 8].copy_from_slice(&value.to_ne_bytes());
}

/// Offset in `mem` of the first entry of half 0 (the one `format` makes active).
fn first_entry(mem: &[u8]) -> usize {
    Geometry::of(mem.len()).data(0)
}

/// The index slot of half 0 where `key` sits in a table holding only it.
fn home_slot(mem: &[u8], key: &[u8]) -> usize {
    ROOT + (hash(key) as usize & (Geometry::of(mem.len()).slots - 1)) * 8
}

#[test]
fn garbage_key_counters_make_set_compact_instead_of_overflowing() {
    let mut mem = vec![0u8; MIN_SIZE];
    table(&mut mem)
        .set(b"a", KeyKind::Str, ValueRef::Int(1), 0, 0)
        .unwrap();
    word(&mut mem, Table::meta(0, 1), u64::MAX);
    word(&mut mem, Table::meta(0, 2), u64::MAX);
    let mut t = Table::attach(&mut mem).unwrap();
    t.set(b"b", KeyKind::Str, ValueRef::Int(2), 0, 0)
        .expect("compaction recounts the keys");
    assert_eq!(t.get(b"a", 0), Ok(Some(Value::Int(1))));
    assert_eq!(t.get(b"b", 0), Ok(Some(Value::Int(2))));
    assert_eq!(t.stats().keys, 2);
}

#[test]
fn a_slot_word_near_the_top_of_u64_is_corrupt_not_an_overflow() {
    let mut mem = vec![0u8; MIN_SIZE];
    table(&mut mem);
    let slot = home_slot(&mem, b"k");
    // Aligned, so only the length check stands between it and `offset + 32` overflowing.
    word(&mut mem, slot, u64::MAX - 7);
    let mut t = Table::attach(&mut mem).unwrap();
    assert_eq!(t.get(b"k", 0), Err(TableError::Corrupt("index slot")));
    assert_eq!(t.repair().dropped, 1);
    assert_eq!(t.get(b"k", 0), Ok(None));
}

#[test]
fn a_bump_pointer_past_the_end_makes_set_compact_instead_of_overflowing() {
    let mut mem = vec![0u8; MIN_SIZE];
    table(&mut mem);
    word(&mut mem, Table::meta(0, 0), u64::MAX - 8);
    let mut t = Table::attach(&mut mem).unwrap();
    t.set(b"b", KeyKind::Str, ValueRef::Str("x"), 0, 0).unwrap();
    assert_eq!(t.get(b"b", 0), Ok(Some(Value::Str("x".into()))));
}

#[test]
fn an_unaligned_bump_pointer_is_compacted_before_an_entry_is_written_at_it() {
    let mut mem = vec![0u8; MIN_SIZE];
    table(&mut mem)
        .set(b"a", KeyKind::Str, ValueRef::Int(1), 0, 0)
        .unwrap();
    let bump = u64::from_ne_bytes(mem[8..16].try_into().unwrap());
    word(&mut mem, Table::meta(0, 0), bump + 3);
    let mut t = Table::attach(&mut mem).unwrap();
    t.set(b"b", KeyKind::Str, ValueRef::Int(2), 0, 0).unwrap();
    assert_eq!(t.get(b"b", 0), Ok(Some(Value::Int(2))), "b readable");
    assert_eq!(t.get(b"a", 0), Ok(Some(Value::Int(1))), "a kept");
}

#[test]
fn repair_reformats_an_unaligned_bump_pointer() {
    let mut mem = vec![0u8; MIN_SIZE];
    table(&mut mem)
        .set(b"a", KeyKind::Str, ValueRef::Int(1), 0, 0)
        .unwrap();
    word(&mut mem, Table::meta(0, 0), 13);
    let mut t = Table::attach(&mut mem).unwrap();
    assert!(t.repair().reformatted);
    assert_eq!(t.get(b"a", 0), Ok(None));
}

#[test]
fn an_integer_shorter_than_8_bytes_is_corrupt_and_incr_writes_nothing() {
    let mut mem = vec![0u8; MIN_SIZE];
    table(&mut mem)
        .set(b"n", KeyKind::Str, ValueRef::Int(1), 0, 0)
        .unwrap();
    let entry = first_entry(&mem);
    mem[entry + 4..entry + 8].copy_from_slice(&0u32.to_ne_bytes());
    let before = mem.clone();
    let got = Table::attach(&mut mem)
        .unwrap()
        .incr(b"n", KeyKind::Str, 1, 0);
    assert_eq!(got, Err(TableError::Corrupt("entry header")));
    assert!(mem == before, "incr wrote into damaged memory");
}

#[test]
fn an_unknown_value_kind_is_corrupt_and_repair_drops_it() {
    let mut mem = vec![0u8; MIN_SIZE];
    table(&mut mem)
        .set(b"v", KeyKind::Str, ValueRef::Bytes(b"x"), 0, 0)
        .unwrap();
    let entry = first_entry(&mem);
    mem[entry + 8] = 9;
    let mut t = Table::attach(&mut mem).unwrap();
    assert_eq!(t.get(b"v", 0), Err(TableError::Corrupt("entry header")));
    assert_eq!(t.repair().dropped, 1);
    assert_eq!(t.get(b"v", 0), Ok(None));
}

#[test]
fn compaction_copies_an_entry_the_index_names_many_times_once() {
    let mut mem = vec![0u8; MIN_SIZE];
    let big = vec![7u8; 4000];
    table(&mut mem)
        .set(b"a", KeyKind::Str, ValueRef::Bytes(&big), 0, 0)
        .unwrap();
    // Every slot points at the one entry: copied naively, 4000 bytes times the slots
    // would run far past the end of the other half.
    let a = home_slot(&mem, b"a");
    let a_word = u64::from_ne_bytes(mem[a..a + 8].try_into().unwrap());
    for slot in 0..Geometry::of(mem.len()).slots {
        word(&mut mem, ROOT + slot * 8, a_word);
    }
    let mut t = Table::attach(&mut mem).unwrap();
    t.compact(0);
    assert_eq!(t.stats().keys, 1);
    assert_eq!(t.keys(b"", 0).unwrap().len(), 1);
    assert_eq!(t.get(b"a", 0), Ok(Some(Value::Bytes(big))));
}

#[test]
fn compaction_indexes_an_entry_under_the_hash_of_its_key() {
    let mut mem = vec![0u8; MIN_SIZE];
    table(&mut mem)
        .set(b"a", KeyKind::Str, ValueRef::Int(1), 0, 0)
        .unwrap();
    let entry = first_entry(&mem);
    word(&mut mem, entry + 24, 0);
    let mut t = Table::attach(&mut mem).unwrap();
    assert_eq!(t.get(b"a", 0), Ok(None), "a wrong hash hides the entry");
    t.compact(0);
    assert_eq!(t.get(b"a", 0), Ok(Some(Value::Int(1))));
}

#[test]
fn memory_of_all_ones_then_zeros_takes_a_large_set() {
    // The first input the fuzz target found: counters of u64::MAX overflowed in `set`.
    let mut mem = vec![0xffu8; MIN_SIZE];
    mem[32543..].fill(0);
    let mut t = Table::attach(&mut mem).unwrap();
    let value = vec![0u8; 2560];
    t.set(b"k15", KeyKind::Str, ValueRef::Bytes(&value), 0, 0)
        .unwrap();
    assert_eq!(t.get(b"k15", 0), Ok(Some(Value::Bytes(value))));
}

#[test]
fn repair_leaves_an_index_of_random_words_usable() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..20 {
        let mut mem = vec![0u8; MIN_SIZE];
        for b in mem.iter_mut() {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            *b = (seed >> 56) as u8;
        }
        let geo = Geometry::of(mem.len());
        word(&mut mem, ACTIVE, 0);
        word(&mut mem, Table::meta(0, 0), geo.data_len as u64);
        // A few slots that point at real (random) bytes inside the written area.
        for slot in 0..8 {
            word(&mut mem, ROOT + slot * 8, slot as u64 * 64 + SLOT_BIAS);
        }
        let mut t = Table::attach(&mut mem).unwrap();
        assert!(!t.repair().reformatted);
        for i in 0..50u8 {
            let key = [b'k', i];
            let _ = t.get(&key, 0);
            let _ = t.incr(&key, KeyKind::Bytes, 1, 0);
            let _ = t.keys(b"", 0);
        }
        t.set(b"fresh", KeyKind::Str, ValueRef::Int(5), 0, 0)
            .expect("a repaired table takes new keys");
        assert_eq!(t.get(b"fresh", 0), Ok(Some(Value::Int(5))));
    }
}
