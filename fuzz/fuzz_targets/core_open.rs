//! `hypercore_lite::Core`: opening a core from five in-memory files that hold arbitrary bytes,
//! using it, closing it and opening it again.
//!
//! Input: five files in the order `oplog`, `tree`, `bitfield`, `data`, `header`, each as
//! `u32le length || bytes` (a short input leaves the remaining files empty, i.e. missing), then a
//! tape of operations, one byte each: append, truncate, clear, set user data, flush. The seeds are
//! the stores JavaScript hypercore 10.38 wrote, clean and corrupted
//! (`crates/hypercore-lite/tests/fixtures/hc10.38`).
//!
//! Invariants: no panic; open gives a core or a typed error (a damaged file is reported or
//! repaired, never trusted silently into a panic); every read and mutation returns a value or a
//! typed error; a core that opened and then closed cleanly opens again, with the same head.

#![no_main]

use std::sync::Arc;

use hypercore_lite::{Core, CoreOptions, CoreStorage};
use libfuzzer_sys::fuzz_target;
use rac_storage::{MemoryStorage, Storage};

/// The five files, in container order.
const FILES: usize = 5;

fn split(input: &[u8]) -> ([MemoryStorage; FILES], &[u8]) {
    let mut rest = input;
    let files = std::array::from_fn(|_| {
        let Some((len, tail)) = rest.split_first_chunk::<4>() else {
            rest = &[];
            return MemoryStorage::new();
        };
        let len = (u32::from_le_bytes(*len) as usize).min(tail.len());
        let (bytes, tail) = tail.split_at(len);
        rest = tail;
        if bytes.is_empty() {
            MemoryStorage::new()
        } else {
            MemoryStorage::from_bytes(bytes)
        }
    });
    (files, rest)
}

fn storage(files: &[MemoryStorage; FILES]) -> CoreStorage {
    let [oplog, tree, bitfield, data, header] = files
        .each_ref()
        .map(|f| -> Arc<dyn Storage> { Arc::new(f.reopen()) });
    CoreStorage {
        oplog,
        tree,
        bitfield,
        data,
        header,
    }
}

fn read_all(core: &Core) {
    assert_eq!(core.head().length, core.length());
    assert_eq!(core.head().fork, core.fork());
    assert!(core.contiguous_length() <= core.length());
    let _ = core.tree_hash();
    let _ = core.signature();
    let _ = core.manifest();
    let _ = core.user_data_entries().count();
    let length = core.length();
    for index in (0..length.min(16)).chain(length.saturating_sub(4)..length) {
        let _ = core.has(index);
        let _ = core.get(index);
        let _ = core.missing_nodes(index);
    }
    let _ = core.seek(core.byte_length() / 2);
    let _ = core.seek(core.byte_length());
    for block in [0, length / 2, length.saturating_sub(1)] {
        let request = hypercore_lite::Request {
            fork: core.fork(),
            block: Some(hypercore_lite::BlockRequest {
                index: block,
                nodes: 0,
            }),
            upgrade: Some(hypercore_lite::UpgradeRequest { start: 0, length }),
            ..Default::default()
        };
        let _ = core.proof(&request);
    }
}

fuzz_target!(|input: &[u8]| {
    let (files, tape) = split(input);
    let Ok(mut core) = Core::open_storage(storage(&files), CoreOptions::new().create(false)) else {
        return;
    };
    read_all(&core);

    for (i, op) in tape.iter().take(32).enumerate() {
        let _ = match op % 5 {
            0 => core.append(&[*op; 3][..usize::from(op % 4)]).map(drop),
            1 => core.truncate(core.length().saturating_sub(u64::from(op / 5))),
            2 => core.clear(0, u64::from(op / 5)),
            3 => core.set_user_data(&format!("k{}", i % 3), &[*op; 5]),
            _ => core.flush(),
        };
    }
    if !tape.is_empty() {
        read_all(&core);
    }

    let key = *core.key();
    let head = (core.length(), core.fork(), core.tree_hash());
    if core.close().is_err() {
        return;
    }
    let again = Core::open_storage(storage(&files), CoreOptions::new().create(false).key(key))
        .unwrap_or_else(|e| panic!("a core that closed cleanly does not reopen: {e}"));
    assert_eq!(
        (again.length(), again.fork(), again.tree_hash()),
        head,
        "reopened with another head"
    );
    read_all(&again);
});
