//! Lazy creation (`CoreOptions::lazy`): a new core leaves no files until its first durable
//! operation, and then (and after close) holds exactly the bytes of an eager creation.

use hypercore_lite::{Core, CoreOptions, Error};
use rac_storage::testing::{Faults, FaultyProvider};
use rac_storage::{DirectoryProvider, MemoryProvider, Provider};

use crate::common::{TempDir, block, init_tracing, test_key_pair, upgrade, writer};

const PREFIX: &str = "cores/ab/cd/core/";

/// The options corestore uses for a named core.
fn named(lazy: bool) -> CoreOptions {
    CoreOptions::new()
        .key_pair(test_key_pair())
        .user_data("corestore/name", "a name")
        .user_data("corestore/namespace", [7u8; 32])
        .lazy(lazy)
}

/// Every file under `provider`, with its bytes.
fn files(provider: &impl Provider) -> Vec<(String, Vec<u8>)> {
    rac_storage::testing::snapshot_files(provider, "").unwrap()
}

/// Runs `ops` on an eager and a lazy core (each in its own directory) and checks that both
/// leave the same files, after `ops` and after close.
fn same_as_eager(options: impl Fn(bool) -> CoreOptions, ops: impl Fn(&mut Core)) {
    init_tracing();
    let (a, b) = (TempDir::new("eager"), TempDir::new("lazy"));
    let (eager_dir, lazy_dir) = (
        DirectoryProvider::new(a.path()),
        DirectoryProvider::new(b.path()),
    );
    let mut eager = Core::open(&eager_dir, PREFIX, options(false)).unwrap();
    let mut lazy = Core::open(&lazy_dir, PREFIX, options(true)).unwrap();
    assert!(eager.is_materialized());
    ops(&mut eager);
    ops(&mut lazy);
    if lazy.is_materialized() {
        same_files(&lazy_dir, &eager_dir, "after the operations");
    } else {
        assert!(files(&lazy_dir).is_empty(), "nothing before materializing");
    }
    eager.close().unwrap();
    lazy.close().unwrap();
    let after = files(&eager_dir);
    assert!(after.iter().any(|(n, _)| n.ends_with("/oplog")));
    same_files(&lazy_dir, &eager_dir, "after close");
}

/// Asserts that both providers hold the same files with the same bytes (reporting the first
/// difference, not the bytes).
fn same_files(lazy: &impl Provider, eager: &impl Provider, when: &str) {
    let (l, e) = (files(lazy), files(eager));
    let names = |f: &[(String, Vec<u8>)]| f.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&l), names(&e), "{when}");
    for ((name, a), (_, b)) in l.iter().zip(&e) {
        let first = a.iter().zip(b).position(|(x, y)| x != y);
        assert!(
            a.len() == b.len() && first.is_none(),
            "{when}: {name}: {} vs {} bytes, first difference at {first:?}",
            a.len(),
            b.len()
        );
    }
}

#[test]
fn a_lazy_core_writes_nothing_until_it_closes() {
    init_tracing();
    let dir = TempDir::new("untouched");
    let provider = DirectoryProvider::new(dir.path().join("store"));
    let core = Core::open(&provider, PREFIX, named(true)).unwrap();
    assert!(!core.is_materialized());
    assert_eq!(core.user_data("corestore/name"), Some(&b"a name"[..]));
    assert!(core.is_writable());
    assert!(matches!(core.get(0), Err(Error::OutOfBounds { .. })));
    assert!(
        !dir.path().join("store").exists(),
        "reads leave no trace either"
    );
    // The process "dies" here: nothing of the core is on disk.
    drop(core);
    assert!(!dir.path().join("store").exists());
    assert!(matches!(
        Core::open(&provider, PREFIX, CoreOptions::new().create(false)),
        Err(Error::NotFound)
    ));

    let core = Core::open(&provider, PREFIX, named(true)).unwrap();
    let key = *core.key();
    core.close().unwrap();
    let mut again = Core::open(&provider, PREFIX, CoreOptions::new().create(false)).unwrap();
    assert_eq!(*again.key(), key);
    assert!(again.is_writable(), "the key pair was stored at close");
    assert_eq!(again.user_data("corestore/namespace"), Some(&[7u8; 32][..]));
    again.append(b"x").unwrap();
}

#[test]
fn closing_untouched_gives_the_bytes_of_an_eager_creation() {
    same_as_eager(named, |_| {});
    // A reader created by key, and a core with no creation user data.
    let key = *writer(0).0.key();
    same_as_eager(|lazy| CoreOptions::new().key(key).lazy(lazy), |_| {});
    same_as_eager(
        |lazy| CoreOptions::new().key_pair(test_key_pair()).lazy(lazy),
        |_| {},
    );
}

#[test]
fn the_first_durable_operation_materializes() {
    let ops: [fn(&mut Core); 7] = [
        |c| {
            c.append(&block(0)).unwrap();
            c.append_batch(&[block(1), block(2)]).unwrap();
        },
        |c| c.set_user_data("other", b"v").unwrap(),
        |c| c.flush().unwrap(),
        |c| c.sync().unwrap(),
        |c| c.materialize().unwrap(),
        |c| c.truncate(0).unwrap(),
        |c| c.clear(0, 1).unwrap(),
    ];
    for op in ops {
        same_as_eager(named, |c| {
            op(c);
            assert!(c.is_materialized());
        });
    }
}

#[test]
fn data_from_a_peer_materializes_a_reader() {
    let (source, _) = writer(5);
    let key = *source.key();
    same_as_eager(
        |lazy| CoreOptions::new().key(key).lazy(lazy),
        |reader| {
            upgrade(&source, reader);
            assert!(reader.is_materialized());
            assert_eq!(reader.length(), 5);
        },
    );
}

#[test]
fn a_storage_error_while_materializing_is_returned_to_the_operation() {
    init_tracing();
    let faults = Faults::new();
    let provider = FaultyProvider::new(MemoryProvider::new(), faults.clone());
    let mut core = Core::open(&provider, PREFIX, named(true)).unwrap();
    faults.fail_write_after(0);
    let err = core.append(b"x").unwrap_err();
    assert!(
        matches!(err, Error::Storage(ref e) if e.is_injected()),
        "{err:?}"
    );
    assert!(matches!(core.append(b"x"), Err(Error::Poisoned)));

    // On close too.
    let mut core = Core::open(&provider, "cores/ef/01/other/", named(true)).unwrap();
    assert!(!core.is_materialized());
    faults.fail_write_after(1);
    let err = core.materialize().unwrap_err();
    assert!(matches!(err, Error::Storage(_)), "{err:?}");
    let core = Core::open(&provider, "cores/ef/02/third/", named(true)).unwrap();
    faults.fail_write_after(0);
    assert!(matches!(core.close(), Err(Error::Storage(_))));
}

#[test]
fn creation_user_data_needs_distinct_keys_and_values() {
    for lazy in [false, true] {
        let dup = CoreOptions::new().user_data("k", "a").user_data("k", "b");
        let empty = CoreOptions::new().user_data("k", "");
        for options in [dup, empty] {
            let provider = MemoryProvider::new();
            let result = Core::open(&provider, PREFIX, options.lazy(lazy));
            assert!(
                matches!(result, Err(Error::InvalidArgument(_))),
                "{result:?}"
            );
        }
    }
}
