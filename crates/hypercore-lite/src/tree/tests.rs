//! The in-memory tree, its overlay, truncation and the tree file.

use std::sync::Arc;

use rac_storage::{MemoryStorage, Storage};

use super::*;
use crate::tests_support::read_all;

fn open(
    storage: &Arc<MemoryStorage>,
    length: u64,
    root_hash: Option<Vec<u8>>,
) -> Result<(MerkleTree, bool)> {
    let store = TreeStore::open(storage.clone())?;
    MerkleTree::open(
        store,
        &TreeHeader {
            length,
            root_hash,
            ..TreeHeader::default()
        },
    )
}

fn appended(tree: &mut MerkleTree, blocks: &[&[u8]]) {
    let mut batch = tree.batch();
    for b in blocks {
        batch.append(b).unwrap();
    }
    tree.commit(batch);
}

#[test]
fn append_flush_reopen() {
    let storage = Arc::new(MemoryStorage::new());
    let (mut tree, rooted) = open(&storage, 0, None).unwrap();
    assert!(rooted);
    appended(&mut tree, &[b"a", b"bb", b"ccc", b"dddd", b"eeeee"]);
    assert_eq!(tree.state.length, 5);
    assert_eq!(tree.state.byte_length, 15);
    assert_eq!(
        tree.state.roots.iter().map(|r| r.index).collect::<Vec<_>>(),
        vec![3, 8]
    );
    tree.flush().unwrap();
    assert_eq!(storage.len().unwrap(), 360);
    let hash = tree.state.hash().as_bytes().to_vec();

    let (again, rooted) = open(&storage, 5, Some(hash.clone())).unwrap();
    assert!(rooted);
    assert_eq!(again.state.roots, tree.state.roots);
    assert_eq!(again.state.byte_length, 15);
    assert_eq!(block_range(&again, &again.state, 3).unwrap(), (6, 4));
    assert_eq!(byte_offset(&again, &again.state, NodeIndex(5)).unwrap(), 3);
    assert_eq!(
        byte_offset(&again, &again.state, NodeIndex::leaf(5)).unwrap(),
        15
    );
    assert!(matches!(
        block_range(&again, &again.state, 5),
        Err(Error::OutOfBounds {
            index: 5,
            length: 5
        })
    ));

    // A root hash that does not match is corruption.
    let mut wrong = hash;
    wrong[0] ^= 1;
    assert!(matches!(
        open(&storage, 5, Some(wrong)),
        Err(Error::Corrupt { .. })
    ));
    // A length whose roots are not stored is reported by check_rooted.
    let (t, rooted) = open(&storage, 6, None).unwrap();
    assert!(!rooted);
    assert!(t.check_rooted().is_err());
}

#[test]
fn truncation_blanks_straddling_parents_and_cuts_the_file() {
    let storage = Arc::new(MemoryStorage::new());
    let (mut tree, _) = open(&storage, 0, None).unwrap();
    appended(&mut tree, &[b"a", b"bb", b"ccc", b"dddd", b"eeeee"]);
    tree.flush().unwrap();

    let batch = tree.truncate_batch(3, 1).unwrap();
    assert_eq!(batch.state.byte_length, 6);
    tree.commit(batch);
    // Stored nodes past the cut are hidden before the flush, straddling parents blanked.
    assert_eq!(tree.node(NodeIndex(6)).unwrap(), None);
    assert_eq!(tree.node(NodeIndex(3)).unwrap(), None);
    assert_eq!(tree.node(NodeIndex(5)).unwrap(), None);
    assert!(tree.node(NodeIndex(4)).unwrap().is_some());
    tree.flush().unwrap();
    let bytes = read_all(&*storage);
    // 40 * (2 * 3 - 1) bytes kept, then the blank for node 5 rewrites one more record.
    assert_eq!(bytes.len(), 240);
    assert!(bytes[120..160].iter().all(|&b| b == 0), "node 3 blank");
    assert!(bytes[200..240].iter().all(|&b| b == 0), "node 5 blank");

    // Appending after the truncation rebuilds a consistent tree.
    appended(&mut tree, &[b"x", b"yy"]);
    tree.flush().unwrap();
    let (again, rooted) = open(&storage, 5, Some(tree.state.hash().as_bytes().to_vec())).unwrap();
    assert!(rooted);
    assert_eq!(again.state.byte_length, 9);
}

#[test]
fn unflushed_truncation_then_append_reads_new_nodes() {
    let storage = Arc::new(MemoryStorage::new());
    let (mut tree, _) = open(&storage, 0, None).unwrap();
    appended(&mut tree, &[b"a", b"b", b"c", b"d"]);
    tree.flush().unwrap();
    let batch = tree.truncate_batch(2, 1).unwrap();
    tree.commit(batch);
    appended(&mut tree, &[b"q", b"r"]);
    let leaf = tree.node(NodeIndex(4)).unwrap().unwrap();
    assert_eq!(leaf.hash, corestore_keys::hash::leaf(b"q"));
    assert_eq!(tree.node(NodeIndex(3)).unwrap().map(|n| n.size), Some(4));
    tree.flush().unwrap();
    let leaf = tree.node(NodeIndex(6)).unwrap().unwrap();
    assert_eq!(leaf.hash, corestore_keys::hash::leaf(b"r"));
}

#[test]
fn missing_nodes_counts_up_to_our_tree() {
    let storage = Arc::new(MemoryStorage::new());
    let (mut tree, _) = open(&storage, 0, None).unwrap();
    // A reader that only knows the root of an 8-block tree.
    let mut full = Batch::new(&TreeState::default());
    for i in 0..8u8 {
        full.append(&[i]).unwrap();
    }
    let root = *full.state.roots.last().unwrap();
    tree.state = TreeState {
        fork: 0,
        length: 8,
        byte_length: 8,
        roots: vec![root],
        signature: None,
    };
    tree.add_nodes(&[root]);
    assert_eq!(tree.missing_nodes(NodeIndex::leaf(5)).unwrap(), 3);
    assert_eq!(tree.missing_nodes(NodeIndex::leaf(8)).unwrap(), 0);
    tree.add_nodes(&[full.nodes.iter().copied().find(|n| n.index == 11).unwrap()]);
    assert_eq!(tree.missing_nodes(NodeIndex::leaf(5)).unwrap(), 2);
}

#[test]
fn blank_nodes_in_entries_delete() {
    let storage = Arc::new(MemoryStorage::new());
    let (mut tree, _) = open(&storage, 0, None).unwrap();
    appended(&mut tree, &[b"a", b"b"]);
    tree.add_nodes(&[Node {
        index: 1,
        size: 0,
        hash: Hash([0; 32]),
    }]);
    assert_eq!(tree.node(NodeIndex(1)).unwrap(), None);
    assert!(tree.require(NodeIndex(1)).is_err());
}

#[test]
fn overlay_indices_sort_dense_and_sparse() {
    let check = |keys: &[u64]| {
        let map: HashMap<u64, (), IndexHash> = keys.iter().map(|&k| (k, ())).collect();
        let mut want: Vec<u64> = map.keys().copied().collect();
        want.sort_unstable();
        assert_eq!(sorted_indices(&map), want, "{keys:?}");
    };
    check(&[]);
    check(&[7]);
    check(&[u64::MAX]);
    check(&[0, u64::MAX]);
    check(&[u64::MAX - 3, u64::MAX, u64::MAX - 1]);
    // Dense: a run of a download, shuffled by the map, across word boundaries.
    check(&(1000..1300).rev().collect::<Vec<_>>());
    check(&(0..500).map(|i| 2 * i + 1).collect::<Vec<_>>());
    // Just dense enough, and just too sparse, for the bitmap.
    check(&(0..64).map(|i| i * 8).collect::<Vec<_>>());
    check(&(0..64).map(|i| i * 9).collect::<Vec<_>>());
    check(&[3, 1 << 40, 5, 1 << 20]);
}
