//! Proof construction against the spec's examples (§9.6) and pure verification.

use std::collections::BTreeMap;

use corestore_keys::Node;

use super::*;
use crate::error::{Error, Result, VerifyError};
use crate::tree::flat::{self, NodeIndex};
use crate::tree::{Batch, NodeSource, TreeState};

/// A tree held entirely in a map.
struct MapSource(BTreeMap<u64, Node>);

impl NodeSource for MapSource {
    fn node(&self, index: NodeIndex) -> Result<Option<Node>> {
        Ok(self.0.get(&index.get()).copied())
    }
}

/// A tree of `length` blocks of two bytes each, signed with a dummy signature.
fn tree(length: u64) -> (MapSource, TreeState) {
    let mut batch = Batch::new(&TreeState::default());
    for i in 0..length {
        batch.append(&[i as u8, 0xee]).unwrap();
    }
    batch.state.signature = Some(vec![7; 64]);
    let map = batch.nodes.iter().map(|n| (n.index, *n)).collect();
    (MapSource(map), batch.state)
}

/// The state of a reader that has the first `length` blocks' roots.
fn reader_state(src: &MapSource, length: u64) -> TreeState {
    let roots: Vec<Node> = flat::full_roots(length).map(|i| src.0[&i.get()]).collect();
    TreeState {
        fork: 0,
        length,
        byte_length: roots.iter().map(|r| r.size).sum(),
        roots,
        signature: None,
    }
}

fn indices(nodes: &[Node]) -> Vec<u64> {
    nodes.iter().map(|n| n.index).collect()
}

fn block(index: u64, nodes: u64) -> Option<BlockRequest> {
    Some(BlockRequest { index, nodes })
}

fn upgrade(start: u64, length: u64) -> Option<UpgradeRequest> {
    Some(UpgradeRequest { start, length })
}

fn build11(req: &Request) -> Proof {
    let (src, state) = tree(11);
    build(&src, &state, req, None).unwrap()
}

#[test]
fn spec_examples_on_an_11_block_tree() {
    let p = build11(&Request {
        block: block(3, 0),
        ..Request::default()
    });
    assert_eq!(indices(&p.block.unwrap().nodes), Vec::<u64>::new());

    let p = build11(&Request {
        block: block(3, 2),
        ..Request::default()
    });
    assert_eq!(indices(&p.block.unwrap().nodes), vec![4, 1]);

    let p = build11(&Request {
        block: block(3, 0),
        upgrade: upgrade(0, 11),
        ..Request::default()
    });
    assert_eq!(indices(&p.block.unwrap().nodes), vec![4, 1, 11]);
    let u = p.upgrade.unwrap();
    assert_eq!(indices(&u.nodes), vec![17, 20]);
    assert_eq!(u.signature, vec![7; 64]);

    let p = build11(&Request {
        upgrade: upgrade(0, 11),
        ..Request::default()
    });
    assert_eq!(indices(&p.upgrade.unwrap().nodes), vec![7, 17, 20]);

    let p = build11(&Request {
        upgrade: upgrade(4, 7),
        ..Request::default()
    });
    assert_eq!(indices(&p.upgrade.unwrap().nodes), vec![11, 17, 20]);

    let p = build11(&Request {
        upgrade: upgrade(0, 6),
        ..Request::default()
    });
    let u = p.upgrade.unwrap();
    assert_eq!(indices(&u.nodes), vec![3, 9]);
    assert_eq!(indices(&u.additional_nodes), vec![13, 17, 20]);

    let p = build11(&Request {
        block: block(9, 0),
        upgrade: upgrade(8, 3),
        ..Request::default()
    });
    assert_eq!(indices(&p.block.unwrap().nodes), vec![16]);
    assert_eq!(indices(&p.upgrade.unwrap().nodes), vec![20]);

    let p = build11(&Request {
        hash: Some(HashRequest { index: 6, nodes: 0 }),
        ..Request::default()
    });
    assert_eq!(indices(&p.hash.unwrap().nodes), vec![6]);

    let p = build11(&Request {
        hash: Some(HashRequest { index: 2, nodes: 2 }),
        ..Request::default()
    });
    assert_eq!(indices(&p.hash.unwrap().nodes), vec![2, 0, 5]);

    let p = build11(&Request {
        seek: Some(SeekRequest {
            bytes: 13,
            padding: 0,
        }),
        upgrade: upgrade(0, 11),
        ..Request::default()
    });
    assert_eq!(indices(&p.seek.unwrap().nodes), vec![12, 14, 9, 3]);
    assert_eq!(indices(&p.upgrade.unwrap().nodes), vec![17, 20]);
}

#[test]
fn invalid_requests_are_typed_errors() {
    let (src, state) = tree(11);
    let bad = |req: Request| build(&src, &state, &req, None);
    assert!(matches!(
        bad(Request {
            upgrade: upgrade(0, 12),
            ..Request::default()
        }),
        Err(Error::InvalidRequest(_))
    ));
    assert!(matches!(
        bad(Request {
            upgrade: upgrade(5, 0),
            ..Request::default()
        }),
        Err(Error::InvalidRequest(_))
    ));
    assert!(matches!(
        bad(Request {
            block: block(3, 4),
            ..Request::default()
        }),
        Err(Error::InvalidRequest(_))
    ));
    assert!(matches!(
        bad(Request {
            block: block(3, u64::MAX),
            ..Request::default()
        }),
        Err(Error::InvalidRequest(_))
    ));
    assert!(matches!(
        bad(Request {
            block: block(9, 0),
            seek: Some(SeekRequest {
                bytes: 3,
                padding: 0
            }),
            upgrade: upgrade(8, 3),
            ..Request::default()
        }),
        Err(Error::InvalidRequest(_))
    ));
    assert!(matches!(
        bad(Request {
            upgrade: upgrade(u64::MAX, 2),
            ..Request::default()
        }),
        Err(Error::InvalidRequest(_))
    ));
    // An empty tree answers with an empty proof.
    let (src0, state0) = tree(0);
    let p = build(&src0, &state0, &Request::default(), None).unwrap();
    assert_eq!(p, Proof::default());
}

/// Every (reader length, block, nodes, upgrade) combination on small trees verifies.
#[test]
fn built_proofs_verify() {
    for length in [1u64, 2, 3, 4, 5, 7, 8, 9, 11, 16, 17] {
        let (src, state) = tree(length);
        for have in 0..=length {
            let reader = reader_state(&src, have);
            // Bare upgrades.
            if have < length {
                let p = build(
                    &src,
                    &state,
                    &Request {
                        upgrade: upgrade(have, length - have),
                        ..Request::default()
                    },
                    None,
                )
                .unwrap();
                let v = verify(&p, &reader, None).unwrap();
                assert_eq!(v.batch.state.roots, state.roots, "len {length} have {have}");
                assert_eq!(v.batch.state.byte_length, state.byte_length);
                assert_eq!(v.anchor, None);
                // Partial upgrades with additional nodes.
                for to in have + 1..length {
                    let p = build(
                        &src,
                        &state,
                        &Request {
                            upgrade: upgrade(have, to - have),
                            ..Request::default()
                        },
                        None,
                    )
                    .unwrap();
                    let v = verify(&p, &reader, None).unwrap();
                    assert_eq!(
                        v.batch.state.length, length,
                        "len {length} have {have} to {to}"
                    );
                    assert_eq!(v.batch.state.roots, state.roots);
                }
            }
            for b in 0..length {
                let value = vec![b as u8, 0xee];
                if b < have {
                    // Inside the reader's tree: any number of missing nodes below the root.
                    let mut nodes = 0;
                    loop {
                        let req = Request {
                            block: block(b, nodes),
                            ..Request::default()
                        };
                        let Ok(mut p) = build(&src, &reader, &req, None) else {
                            break;
                        };
                        p.block.as_mut().unwrap().value = value.clone().into();
                        let v = verify(&p, &reader, None).unwrap();
                        let anchor = v.anchor.expect("anchored");
                        assert_eq!(
                            src.0[&anchor.index], anchor,
                            "len {length} have {have} b {b} n {nodes}"
                        );
                        nodes += 1;
                    }
                } else {
                    let req = Request {
                        block: block(b, 0),
                        upgrade: upgrade(have, length - have),
                        ..Request::default()
                    };
                    let mut p = build(&src, &state, &req, None).unwrap();
                    p.block.as_mut().unwrap().value = value.clone().into();
                    let v = verify(&p, &reader, None).unwrap();
                    assert_eq!(v.anchor, None, "len {length} have {have} b {b}");
                    assert!(v.batch.nodes.contains(&src.0[&(2 * b)]));
                }
            }
        }
    }
}

#[test]
fn tampered_proofs_are_rejected() {
    let (src, state) = tree(11);
    let reader = reader_state(&src, 4);
    let req = Request {
        block: block(6, 0),
        upgrade: upgrade(4, 7),
        ..Request::default()
    };
    let mut good = build(&src, &state, &req, None).unwrap();
    good.block.as_mut().unwrap().value = vec![6, 0xee].into();
    let v = verify(&good, &reader, None).unwrap();
    assert_eq!(v.batch.state.hash(), state.hash());

    // A flipped value changes the roots (the signature check then fails).
    let mut p = good.clone();
    let b = p.block.as_mut().unwrap();
    let mut flipped = b.value.to_vec();
    flipped[0] ^= 1;
    b.value = flipped.into();
    let v = verify(&p, &reader, None).unwrap();
    assert_ne!(v.batch.state.hash(), state.hash());

    // A node out of place.
    let mut p = good.clone();
    p.upgrade.as_mut().unwrap().nodes.swap(0, 1);
    assert!(matches!(
        verify(&p, &reader, None),
        Err(VerifyError::UnexpectedNode { .. })
    ));

    // A missing node.
    let mut p = good.clone();
    p.upgrade.as_mut().unwrap().nodes.pop();
    assert!(verify(&p, &reader, None).is_err());

    // An upgrade that does not start at our length.
    let mut p = good.clone();
    p.upgrade.as_mut().unwrap().start = 5;
    assert!(matches!(
        verify(&p, &reader, None),
        Err(VerifyError::InvalidUpgrade(_))
    ));
    p.upgrade.as_mut().unwrap().start = 3;
    assert!(matches!(verify(&p, &reader, None), Err(VerifyError::Stale)));

    // A non-upgrade proof whose root is one of our roots but with a different hash.
    let full = reader_state(&src, 11);
    let mut p = build(
        &src,
        &full,
        &Request {
            block: block(9, 1),
            ..Request::default()
        },
        None,
    )
    .unwrap();
    p.block.as_mut().unwrap().value = vec![99].into();
    assert!(matches!(
        verify(&p, &full, None),
        Err(VerifyError::ChecksumMismatch { index: 17 })
    ));

    // A proof that hashes to a node outside our tree.
    let short = reader_state(&src, 8);
    let mut p = build(
        &src,
        &full,
        &Request {
            block: block(9, 1),
            ..Request::default()
        },
        None,
    )
    .unwrap();
    p.block.as_mut().unwrap().value = vec![9, 0xee].into();
    assert!(matches!(
        verify(&p, &short, None),
        Err(VerifyError::NotAnchored { index: 17 })
    ));
}

#[test]
fn sizes_that_overflow_are_malformed() {
    let (src, state) = tree(2);
    let reader = reader_state(&src, 1);
    let mut p = build(
        &src,
        &state,
        &Request {
            upgrade: upgrade(1, 1),
            ..Request::default()
        },
        None,
    )
    .unwrap();
    p.upgrade.as_mut().unwrap().nodes[0].size = u64::MAX;
    assert!(matches!(
        verify(&p, &reader, None),
        Err(VerifyError::Malformed(_))
    ));
}

/// `brings` names exactly the nodes a block proof of `nodes` levels hands the verifier.
#[test]
fn brings_is_what_a_block_proof_holds() {
    let (src, state) = tree(45);
    for b in 0..45u64 {
        for nodes in 0..8 {
            let req = Request {
                block: block(b, nodes),
                ..Request::default()
            };
            let Ok(mut p) = build(&src, &state, &req, None) else {
                // Climbing that far leaves the tree: no proof, nothing to compare.
                continue;
            };
            p.block.as_mut().unwrap().value = vec![b as u8, 0xee].into();
            let v = verify(&p, &state, None).unwrap();
            let mut held: Vec<u64> = v.batch.nodes.iter().map(|n| n.index).collect();
            held.sort_unstable();
            held.dedup();
            let named: Vec<u64> = (0..2 * 64)
                .filter(|&i| crate::tree::brings(b, nodes, NodeIndex(i)))
                .collect();
            assert_eq!(held, named, "block {b} nodes {nodes}");
        }
    }
}

/// `BlockRequest::brought` lists exactly the nodes `brings` says the answer brings, for
/// requests from no node up to past the top of a 2⁶²-block tree.
#[test]
fn brought_lists_what_brings_accepts() {
    for (index, nodes) in [
        (0, 0),
        (0, 3),
        (5, 1),
        (6, 2),
        (1023, 10),
        (77, 70),
        (1 << 40, 5),
    ] {
        let request = BlockRequest { index, nodes };
        let listed: std::collections::BTreeSet<u64> = request.brought().collect();
        for &n in &listed {
            assert!(
                crate::tree::brings(index, nodes, NodeIndex(n)),
                "{request:?}: {n}"
            );
        }
        // Every node brings accepts near the block's path is listed.
        for depth in 0..63u32 {
            let offset = index >> depth;
            for o in [offset.saturating_sub(1), offset, offset + 1] {
                let node = NodeIndex::from_depth_offset(depth, o);
                assert_eq!(
                    crate::tree::brings(index, nodes, node),
                    listed.contains(&node.get()),
                    "{request:?}: depth {depth} offset {o}"
                );
            }
        }
    }
}
