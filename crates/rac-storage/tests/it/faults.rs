//! Fault injection (`Faults`) and crash images (`Keep`) through `FaultyStorage` and
//! `FaultyProvider`, over memory and files.

use std::collections::BTreeSet;
use std::sync::Arc;

use rac_storage::testing::{Faults, FaultyProvider, FaultyStorage, Keep};
use rac_storage::{
    DirectoryProvider, Error, FileStorage, MemoryProvider, Op, OpenOptions, Provider, Storage,
};

use crate::tempdir;

fn opts() -> OpenOptions {
    OpenOptions::new()
}

#[test]
fn write_countdown_is_shared_across_files() {
    let faults = Faults::new();
    let store = FaultyProvider::new(MemoryProvider::new(), faults.clone());
    let a = store.open("a", &opts()).unwrap();
    let b = store.open("b", &opts()).unwrap();
    faults.fail_write_after(2);
    a.write(0, b"1").unwrap();
    b.write(0, b"2").unwrap();
    let err = a.write(1, b"3").unwrap_err();
    assert!(matches!(err, Error::Injected { op: Op::Write }), "{err:?}");
    assert_eq!(a.len().unwrap(), 1, "a failed write writes nothing");
    b.write(1, b"4").unwrap();
    assert_eq!((faults.writes(), faults.injected()), (4, 1));
    assert!(faults.tripped());
}

#[test]
fn torn_write_leaves_a_prefix() {
    let faults = Faults::new();
    let s = FaultyStorage::in_memory(faults.clone());
    s.write(0, b"0123456789").unwrap();
    faults.tear_write_after(0, 3);
    assert!(s.write(5, b"abcdefgh").unwrap_err().is_injected());
    assert_eq!(s.read_to_vec(0, 10).unwrap(), b"01234abc89");
    assert_eq!(s.len().unwrap(), 10);
    // A tear longer than the write writes everything but still reports failure.
    faults.tear_write_after(0, 100);
    assert!(s.write(20, b"xy").unwrap_err().is_injected());
    assert_eq!(s.read_to_vec(20, 2).unwrap(), b"xy");
}

#[test]
fn failed_sync_makes_nothing_durable() {
    let faults = Faults::new();
    let s = FaultyStorage::in_memory(faults.clone());
    s.write(0, b"one").unwrap();
    faults.fail_sync_after(0);
    assert!(matches!(s.sync(), Err(Error::Injected { op: Op::Sync })));
    assert_eq!(s.pending(), 1);
    assert_eq!(s.crash_image(&Keep::Durable).unwrap().len().unwrap(), 0);
    s.sync().unwrap();
    assert_eq!(s.pending(), 0);
    assert_eq!(s.durable().read_to_vec(0, 3).unwrap(), b"one");
}

#[test]
fn sticky_faults_model_a_dead_disk() {
    let faults = Faults::new();
    faults.set_sticky(true);
    let store = FaultyProvider::new(MemoryProvider::new(), faults.clone());
    let s = store.open("log", &opts()).unwrap();
    s.write(0, b"ok").unwrap();
    faults.fail_write_after(0);
    assert!(s.write(2, b"x").is_err());
    let results = [s.write(2, b"y"), s.del(0, 1), s.truncate(0), s.sync()];
    for r in results {
        assert!(matches!(r, Err(Error::Injected { .. })), "{r:?}");
    }
    assert_eq!(s.read_to_vec(0, 2).unwrap(), b"ok", "reads still work");
    faults.disarm();
    s.write(2, b"z").unwrap();
    s.sync().unwrap();
}

#[test]
fn every_prefix_of_unsynced_appends_is_a_possible_image() {
    let store = FaultyProvider::new(MemoryProvider::new(), Faults::new());
    let log = store.open("log", &opts()).unwrap();
    log.write(0, b"HEAD").unwrap();
    log.sync().unwrap();
    let entries: [&[u8]; 3] = [b"aa", b"bbb", b"c"];
    let mut offset = 4;
    for e in entries {
        log.write(offset, e).unwrap();
        offset += e.len() as u64;
    }
    assert_eq!(store.pending(), 3);
    let mut expected = b"HEAD".to_vec();
    for k in 0..=entries.len() {
        if k > 0 {
            expected.extend_from_slice(entries[k - 1]);
        }
        let image = store.crash_image(&Keep::Prefix(k)).unwrap();
        let s = image.open("log", &opts()).unwrap();
        let len = s.len().unwrap();
        assert_eq!(s.read_to_vec(0, len).unwrap(), expected, "prefix {k}");
    }
    let all = store.crash_image(&Keep::All).unwrap();
    assert_eq!(all.open("log", &opts()).unwrap().len().unwrap(), 10);
}

#[test]
fn reordered_subset_keeps_later_writes_without_earlier_ones() {
    let s = FaultyStorage::in_memory(Faults::new());
    s.write(0, b"first").unwrap();
    s.write(10, b"second").unwrap();
    let image = s.crash_image(&Keep::Subset(BTreeSet::from([1]))).unwrap();
    assert_eq!(image.len().unwrap(), 16);
    assert_eq!(
        image.read_to_vec(0, 16).unwrap(),
        b"\0\0\0\0\0\0\0\0\0\0second"
    );
    assert!(Keep::Subset(BTreeSet::from([1])).keeps(1));
    assert!(!Keep::Prefix(1).keeps(1));
}

#[test]
fn images_are_independent_of_the_live_store() {
    let store = FaultyProvider::new(MemoryProvider::new(), Faults::new());
    let s = store.open("x", &opts()).unwrap();
    s.write(0, b"live").unwrap();
    s.sync().unwrap();
    let image = store.crash_image(&Keep::All).unwrap();
    image.open("x", &opts()).unwrap().write(0, b"IMG!").unwrap();
    assert_eq!(s.read_to_vec(0, 4).unwrap(), b"live");
    s.write(0, b"more").unwrap();
    assert_eq!(
        image.open("x", &opts()).unwrap().read_to_vec(0, 4).unwrap(),
        b"IMG!"
    );
}

#[test]
fn existing_files_are_durable_when_first_opened() {
    let dir = tempdir();
    let files = DirectoryProvider::new(dir.path());
    let pre = files.open("cores/aa/oplog", &opts()).unwrap();
    pre.write(0, b"on disk").unwrap();
    pre.sync().unwrap();
    drop(pre);
    let store = FaultyProvider::new(files, Faults::new());
    let s = store.open("cores/aa/oplog", &opts()).unwrap();
    s.truncate(2).unwrap();
    s.write(2, b"!").unwrap();
    assert_eq!(s.read_to_vec(0, 3).unwrap(), b"on!");
    let image = store.crash_image(&Keep::Durable).unwrap();
    assert_eq!(image.list("cores").unwrap(), ["cores/aa/oplog"]);
    assert_eq!(
        image
            .open("cores/aa/oplog", &opts())
            .unwrap()
            .read_to_vec(0, 7)
            .unwrap(),
        b"on disk"
    );
    let image = store.crash_image(&Keep::Prefix(1)).unwrap();
    assert_eq!(
        image
            .open("cores/aa/oplog", &opts())
            .unwrap()
            .len()
            .unwrap(),
        2
    );
}

#[test]
fn unlink_is_durable_and_names_never_written_are_absent() {
    let store = FaultyProvider::new(MemoryProvider::new(), Faults::new());
    let gone = store.open("gone", &opts()).unwrap();
    gone.write(0, b"x").unwrap();
    gone.sync().unwrap();
    gone.unlink().unwrap();
    store.open("never", &opts()).unwrap();
    let image = store.crash_image(&Keep::All).unwrap();
    assert!(!image.exists("gone").unwrap());
    assert!(!image.exists("never").unwrap());
    assert!(image.list("").unwrap().is_empty());
}

#[test]
fn faulty_storage_wraps_a_file() {
    let dir = tempdir();
    let file = FileStorage::open(dir.path().join("f"), &opts()).unwrap();
    let faults = Faults::new();
    let s = FaultyStorage::new(Arc::new(file), faults.clone()).unwrap();
    s.write(0, b"abc").unwrap();
    faults.fail_sync_after(0);
    assert!(s.sync().is_err());
    s.sync().unwrap();
    assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"abc");
    assert_eq!(s.inner().len().unwrap(), 3);
    assert_eq!(s.faults().syncs(), 2);
}
