//! `hypercore_lite`: opening a core whose `oplog` file holds arbitrary bytes (the other four
//! files empty). The oplog decoder is internal, so it is reached the way every caller reaches
//! it: `Core::open_storage`, which picks the header slot and replays the entries.
//!
//! Seeds: the oplogs JavaScript hypercore 10.38 wrote (`crates/hypercore-lite/tests/fixtures`).
//!
//! Invariants: no panic; open gives a core or a typed error; an opened core answers every read
//! (`get`, `has`, `seek`, proofs) with a value or a typed error, and its length agrees with its
//! head.

#![no_main]

use std::sync::Arc;

use hypercore_lite::{Core, CoreOptions, CoreStorage};
use libfuzzer_sys::fuzz_target;
use rac_storage::{MemoryStorage, Storage};

fuzz_target!(|oplog: &[u8]| {
    let empty = || -> Arc<dyn Storage> { Arc::new(MemoryStorage::new()) };
    let storage = CoreStorage {
        oplog: Arc::new(MemoryStorage::from_bytes(oplog)),
        tree: empty(),
        bitfield: empty(),
        data: empty(),
        header: empty(),
    };
    let Ok(core) = Core::open_storage(storage, CoreOptions::new().create(false)) else {
        return;
    };
    assert_eq!(core.head().length, core.length());
    assert_eq!(core.head().fork, core.fork());
    assert!(core.contiguous_length() <= core.length());
    let _ = core.tree_hash();
    let _ = core.user_data_entries().count();
    for index in 0..core.length().min(16) {
        let _ = core.has(index);
        let _ = core.get(index);
        let _ = core.missing_nodes(index);
    }
    let _ = core.seek(core.byte_length() / 2);
    let request = hypercore_lite::Request {
        block: Some(hypercore_lite::BlockRequest { index: 0, nodes: 0 }),
        upgrade: Some(hypercore_lite::UpgradeRequest {
            start: 0,
            length: core.length(),
        }),
        ..Default::default()
    };
    let _ = core.proof(&request);
});
