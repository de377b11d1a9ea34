//! The file-descriptor budget: with a pool of 4 and 100 files everything still reads and writes
//! correctly, at most 4 descriptors are open, and locked files are pinned.

use std::sync::Arc;

use rac_storage::{DirectoryProvider, Error, FilePool, OpenOptions, Provider, Storage};

use crate::{pattern, tempdir};

#[test]
fn hundred_files_through_four_descriptors() {
    let dir = tempdir();
    let store = DirectoryProvider::with_max_open(dir.path(), 4);
    let pool = Arc::clone(store.pool());
    let files: Vec<Arc<dyn Storage>> = (0..100)
        .map(|i| {
            store
                .open(&format!("cores/{:02x}/data", i), &OpenOptions::new())
                .unwrap()
        })
        .collect();
    assert_eq!(pool.open_files(), 0, "opening opens nothing");
    for round in 0..3u8 {
        for (i, file) in files.iter().enumerate() {
            let offset = u64::from(round) * 100;
            file.write(offset, &pattern(i as u8 ^ round, 100)).unwrap();
            assert!(pool.open_files() <= 4, "{} open", pool.open_files());
        }
    }
    for (i, file) in files.iter().enumerate().rev() {
        for round in 0..3u8 {
            let got = file.read_to_vec(u64::from(round) * 100, 100).unwrap();
            assert_eq!(got, pattern(i as u8 ^ round, 100));
            assert!(pool.open_files() <= 4);
        }
        file.sync().unwrap();
        assert_eq!(file.len().unwrap(), 300);
    }
    assert_eq!(store.list("cores").unwrap().len(), 100);
    drop(files);
    assert_eq!(pool.open_files(), 0, "dropping handles closes descriptors");
}

#[test]
fn descriptor_count_matches_the_process_table() {
    // Other tests run in parallel threads of this process, so count only the descriptors that
    // point into this test's own directory.
    let dir = tempdir();
    let root = dir.path().canonicalize().unwrap();
    let count_ours = || {
        std::fs::read_dir("/proc/self/fd")
            .map(|entries| {
                entries
                    .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                    .filter(|target| target.starts_with(&root))
                    .count()
            })
            .unwrap_or(0)
    };
    let store = DirectoryProvider::with_max_open(dir.path(), 4);
    let files: Vec<_> = (0..20)
        .map(|i| store.open(&format!("f{i}"), &OpenOptions::new()).unwrap())
        .collect();
    for (i, f) in files.iter().enumerate() {
        f.write(0, &[i as u8; 10]).unwrap();
        assert!(count_ours() <= 4, "{} descriptors open", count_ours());
    }
    if std::path::Path::new("/proc/self/fd").exists() {
        assert_eq!(count_ours(), 4);
    }
    for (i, f) in files.iter().enumerate() {
        assert_eq!(f.read_to_vec(0, 10).unwrap(), [i as u8; 10]);
    }
}

#[test]
fn locked_files_are_pinned_and_exclusive() {
    let dir = tempdir();
    let store = DirectoryProvider::with_max_open(dir.path(), 2);
    let lock = OpenOptions::new().lock(true);
    let primary = store.open("primary-key", &lock).unwrap();
    let second = store.open("other-lock", &lock).unwrap();
    assert_eq!(store.pool().open_files(), 2);
    let err = store.open("primary-key", &lock).unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err:?}");
    // Churn through many unlocked files: the locks must survive eviction pressure.
    for i in 0..20 {
        let f = store.open(&format!("x/{i}"), &OpenOptions::new()).unwrap();
        f.write(0, b"x").unwrap();
        assert!(store.pool().open_files() <= 3);
    }
    assert!(matches!(
        store.open("primary-key", &lock),
        Err(Error::Locked { .. })
    ));
    primary.write(0, &[7; 32]).unwrap();
    primary.close().unwrap();
    let reopened = store.open("primary-key", &lock).unwrap();
    assert_eq!(reopened.read_to_vec(0, 32).unwrap(), [7; 32]);
    // A different provider (as another Corestore on the same directory would be) is refused too.
    let rival = DirectoryProvider::new(dir.path());
    assert!(matches!(
        rival.open("other-lock", &lock),
        Err(Error::Locked { .. })
    ));
    drop(second);
    rival.open("other-lock", &lock).unwrap();
}

#[test]
fn shared_pool_spans_providers() {
    let dir = tempdir();
    let pool = Arc::new(FilePool::new(3));
    let a = DirectoryProvider::with_pool(dir.path().join("a"), Arc::clone(&pool));
    let b = DirectoryProvider::with_pool(dir.path().join("b"), Arc::clone(&pool));
    let files: Vec<_> = (0..10)
        .flat_map(|i| {
            let name = format!("n{i}");
            [
                a.open(&name, &OpenOptions::new()).unwrap(),
                b.open(&name, &OpenOptions::new()).unwrap(),
            ]
        })
        .collect();
    for (i, f) in files.iter().enumerate() {
        f.write(0, &[i as u8]).unwrap();
        assert!(pool.open_files() <= 3);
    }
    for (i, f) in files.iter().enumerate() {
        assert_eq!(f.read_to_vec(0, 1).unwrap(), [i as u8]);
    }
}

#[test]
fn parallel_io_under_eviction_pressure() {
    let dir = tempdir();
    let store = DirectoryProvider::with_max_open(dir.path(), 2);
    let files: Vec<_> = (0..8)
        .map(|i| store.open(&format!("p{i}"), &OpenOptions::new()).unwrap())
        .collect();
    std::thread::scope(|scope| {
        for (i, f) in files.iter().enumerate() {
            scope.spawn(move || {
                for round in 0..50u64 {
                    f.write(round * 16, &pattern(i as u8, 16)).unwrap();
                    assert_eq!(f.read_to_vec(round * 16, 16).unwrap(), pattern(i as u8, 16));
                }
            });
        }
    });
    // Each thread may briefly hold one evicted descriptor; once idle only the budget remains.
    assert!(store.pool().open_files() <= 2);
    for f in &files {
        assert_eq!(f.len().unwrap(), 800);
    }
}
