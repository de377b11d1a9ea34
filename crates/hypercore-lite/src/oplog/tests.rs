//! Slot selection, replay and torn tails (spec §5.3).

use corestore_keys::Key;
use rac_storage::MemoryStorage;

use super::*;
use crate::header::{Header, Hints, TreeHeader};
use crate::oplog::entry::UserDataEntry;
use crate::oplog::format::{PAGE_SIZE, decode_frame, encode_frame};

fn header(length: u64) -> Vec<u8> {
    Header {
        key: Key::from_bytes([1; 32]),
        manifest: None,
        key_pair: None,
        user_data: Vec::new(),
        tree: TreeHeader {
            length,
            ..TreeHeader::default()
        },
        hints: Hints::default(),
    }
    .encode()
}

fn entry(key: &str) -> Entry {
    Entry {
        user_data: Some(UserDataEntry {
            key: key.into(),
            value: Some(b"v".to_vec()),
        }),
        ..Entry::default()
    }
}

fn length_of(opened: &Opened) -> u64 {
    match &opened.header {
        Some(SlotHeader::Inline(h)) => h.tree.length,
        other => panic!("unexpected header {other:?}"),
    }
}

fn keys(opened: &Opened) -> Vec<String> {
    opened
        .entries
        .iter()
        .map(|(_, e)| e.user_data.as_ref().unwrap().key.clone())
        .collect()
}

#[test]
fn empty_file_is_a_new_core() {
    let s = Arc::new(MemoryStorage::new());
    let o = Oplog::open(s, false).unwrap();
    assert!(o.header.is_none());
    assert_eq!(o.oplog.bits, [1, 0]);
}

#[test]
fn flushes_alternate_slots_as_the_spec_says() {
    let s = Arc::new(MemoryStorage::new());
    let mut o = Oplog::open(s.clone(), false).unwrap().oplog;
    // flush#1 → slot 0 bit 0; #2 → slot 1 bit 1; #3 → slot 0 bit 1; #4 → slot 1 bit 0.
    let expect = [([0, 0], 0), ([0, 1], 1), ([1, 1], 0), ([1, 0], 1)];
    for (i, (bits, slot)) in expect.into_iter().enumerate() {
        o.flush(&header(i as u64), true).unwrap();
        assert_eq!(o.bits, bits, "flush #{}", i + 1);
        let buf = crate::tests_support::read_all(&*s);
        let frame = decode_frame(&buf, slot * PAGE_SIZE as usize).unwrap();
        assert_eq!(frame.header_bit, bits[slot]);
        o.append(&[entry(&format!("e{i}"))]).unwrap();
        let again = Oplog::open(s.clone(), false).unwrap();
        assert_eq!(length_of(&again), i as u64);
        assert_eq!(again.oplog.bits, bits);
        assert_eq!(keys(&again), vec![format!("e{i}")]);
    }
}

#[test]
fn torn_tail_is_dropped_and_truncated() {
    let s = Arc::new(MemoryStorage::new());
    let mut o = Oplog::open(s.clone(), false).unwrap().oplog;
    o.flush(&header(0), true).unwrap();
    o.append(&[entry("a"), entry("b")]).unwrap();
    let full = s.len().unwrap();
    s.truncate(full - 3).unwrap();
    let again = Oplog::open(s.clone(), false).unwrap();
    assert_eq!(keys(&again), vec!["a".to_owned()]);
    assert!(s.len().unwrap() < full - 3);
    // Appending after the repair continues cleanly.
    let mut o = again.oplog;
    o.append(&[entry("c")]).unwrap();
    assert_eq!(keys(&Oplog::open(s, false).unwrap()), vec!["a", "c"]);
}

#[test]
fn stale_entries_of_an_old_generation_are_ignored() {
    let s = Arc::new(MemoryStorage::new());
    let mut o = Oplog::open(s.clone(), false).unwrap().oplog;
    o.flush(&header(0), true).unwrap();
    o.append(&[entry("old")]).unwrap();
    let stale = crate::tests_support::read_all(&*s);
    o.flush(&header(1), true).unwrap();
    // A crash between the header write and the truncation leaves the old entry behind.
    s.write(ENTRIES_OFFSET, &stale[ENTRIES_OFFSET as usize..])
        .unwrap();
    let again = Oplog::open(s.clone(), false).unwrap();
    assert_eq!(length_of(&again), 1);
    assert!(again.entries.is_empty());
    assert_eq!(s.len().unwrap(), ENTRIES_OFFSET);
}

#[test]
fn a_torn_header_write_keeps_the_previous_header() {
    let s = Arc::new(MemoryStorage::new());
    let mut o = Oplog::open(s.clone(), false).unwrap().oplog;
    o.flush(&header(5), true).unwrap();
    o.append(&[entry("x")]).unwrap();
    // Simulate a torn write of the next header into slot 1.
    s.write(SLOT_1_OFFSET + 3, &[0xff; 20]).unwrap();
    let again = Oplog::open(s, false).unwrap();
    assert_eq!(length_of(&again), 5);
    assert_eq!(keys(&again), vec!["x"]);
}

#[test]
fn no_valid_slot_in_a_full_file_is_corrupt() {
    let s = Arc::new(MemoryStorage::new());
    s.write(0, &[0xab; ENTRIES_OFFSET as usize + 10]).unwrap();
    assert!(matches!(
        Oplog::open(s, false),
        Err(Error::Corrupt { file: "oplog", .. })
    ));
}

#[test]
fn trailing_partial_entries_are_dropped() {
    let s = Arc::new(MemoryStorage::new());
    let mut o = Oplog::open(s.clone(), false).unwrap().oplog;
    o.flush(&header(0), true).unwrap();
    o.append(&[entry("a")]).unwrap();
    let mut buf = Vec::new();
    encode_frame(&mut buf, &entry("partial").encode(), 0, true);
    s.write(s.len().unwrap(), &buf).unwrap();
    let again = Oplog::open(s, false).unwrap();
    assert_eq!(keys(&again), vec!["a"]);
}
