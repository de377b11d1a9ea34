//! Model-based test: a `Vec<Vec<u8>>` model against a writer core over memory storage, and a
//! reader core that follows it through proofs, across append, batch append, truncate, clear,
//! user data, reopen and get.

use std::collections::BTreeMap;

use hypercore_lite::{
    BlockRequest, Core, CoreOptions, CoreStorage, Error, Request, UpgradeRequest,
};
use proptest::prelude::*;

use crate::common::test_key_pair;

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<u8>),
    AppendBatch(Vec<Vec<u8>>),
    Truncate(u16),
    Clear(u16, u16),
    UserData(u8, Vec<u8>),
    Reopen,
    Get(u16),
    Fetch(u16),
    Flush,
}

fn block_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..24)
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => block_strategy().prop_map(Op::Append),
        3 => prop::collection::vec(block_strategy(), 0..12).prop_map(Op::AppendBatch),
        1 => any::<u16>().prop_map(Op::Truncate),
        1 => (any::<u16>(), any::<u16>()).prop_map(|(a, b)| Op::Clear(a, b)),
        1 => (0u8..4, prop::collection::vec(any::<u8>(), 0..6)).prop_map(|(k, v)| Op::UserData(k, v)),
        1 => Just(Op::Reopen),
        2 => any::<u16>().prop_map(Op::Get),
        3 => any::<u16>().prop_map(Op::Fetch),
        1 => Just(Op::Flush),
    ]
}

pub(crate) fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 64;
    }
    config
}

#[derive(Default)]
struct Model {
    blocks: Vec<Vec<u8>>,
    present: Vec<bool>,
    fork: u64,
    user_data: BTreeMap<String, Vec<u8>>,
}

impl Model {
    fn byte_length(&self) -> u64 {
        self.blocks.iter().map(|b| b.len() as u64).sum()
    }
}

fn check(core: &Core, model: &Model) {
    assert_eq!(core.length(), model.blocks.len() as u64);
    assert_eq!(core.fork(), model.fork);
    assert_eq!(core.byte_length(), model.byte_length());
    for (i, b) in model.blocks.iter().enumerate() {
        let i = i as u64;
        if model.present[i as usize] {
            assert_eq!(&core.get(i).unwrap(), b, "block {i}");
        } else {
            assert!(
                matches!(core.get(i), Err(Error::BlockNotAvailable { .. })),
                "block {i}"
            );
        }
    }
    let contiguous = model.present.iter().take_while(|p| **p).count() as u64;
    assert_eq!(core.contiguous_length(), contiguous);
    for k in 0..4 {
        let key = format!("k{k}");
        assert_eq!(
            core.user_data(&key),
            model.user_data.get(&key).map(Vec::as_slice)
        );
    }
}

/// Brings the reader onto the writer's fork and fetches block `index`.
fn fetch(writer: &Core, reader: &mut Core, index: u64) {
    if writer.length() == 0 {
        return;
    }
    if reader.fork() != writer.fork() {
        let proof = writer
            .proof(&Request {
                fork: writer.fork(),
                upgrade: Some(UpgradeRequest {
                    start: 0,
                    length: writer.length(),
                }),
                ..Request::default()
            })
            .unwrap()
            .unwrap();
        let verified = reader.verify(&proof).unwrap();
        assert!(verified.is_reorg());
        reader.apply(verified).unwrap();
    }
    let upgrade = (index >= reader.length()).then(|| UpgradeRequest {
        start: reader.length(),
        length: writer.length() - reader.length(),
    });
    let nodes = if upgrade.is_some() {
        0
    } else {
        reader.missing_nodes(index).unwrap()
    };
    let req = Request {
        fork: writer.fork(),
        block: Some(BlockRequest { index, nodes }),
        upgrade,
        ..Request::default()
    };
    let Some(proof) = writer.proof(&req).unwrap() else {
        assert!(!writer.has(index));
        return;
    };
    let verified = reader.verify(&proof).unwrap();
    reader.apply(verified).unwrap();
    assert_eq!(reader.get(index).unwrap(), writer.get(index).unwrap());
}

/// Every block the reader holds equals the writer's (same fork, inside its length).
fn check_reader(writer: &Core, model: &Model, reader: &Core) {
    if reader.fork() != writer.fork() {
        return;
    }
    assert!(reader.length() <= writer.length());
    for i in 0..reader.length() {
        if reader.has(i) {
            assert_eq!(
                reader.get(i).unwrap(),
                model.blocks[i as usize],
                "reader block {i}"
            );
        }
    }
}

fn run(ops: Vec<Op>) {
    let storage = CoreStorage::memory();
    let mut writer = Core::open_storage(
        storage.clone(),
        CoreOptions::new().key_pair(test_key_pair()),
    )
    .unwrap();
    let reader_storage = CoreStorage::memory();
    let mut reader = Core::open_storage(
        reader_storage.clone(),
        CoreOptions::new().key(*writer.key()),
    )
    .unwrap();
    let mut model = Model::default();
    for op in ops {
        match op {
            Op::Append(b) => {
                writer.append(&b).unwrap();
                model.blocks.push(b);
                model.present.push(true);
            }
            Op::AppendBatch(bs) => {
                writer.append_batch(&bs).unwrap();
                model.present.extend(bs.iter().map(|_| true));
                model.blocks.extend(bs);
            }
            Op::Truncate(x) => {
                let to = u64::from(x) % (model.blocks.len() as u64 + 1);
                writer.truncate(to).unwrap();
                model.blocks.truncate(to as usize);
                model.present.truncate(to as usize);
                model.fork += 1;
            }
            Op::Clear(a, b) => {
                let len = model.blocks.len() as u64 + 2;
                let (a, b) = (u64::from(a) % len, u64::from(b) % len);
                let (start, end) = (a.min(b), a.max(b));
                writer.clear(start, end).unwrap();
                for i in start..end.min(model.blocks.len() as u64) {
                    model.present[i as usize] = false;
                }
            }
            Op::UserData(k, v) => {
                let key = format!("k{k}");
                writer.set_user_data(&key, &v).unwrap();
                if v.is_empty() {
                    model.user_data.remove(&key);
                } else {
                    model.user_data.insert(key, v);
                }
            }
            Op::Reopen => {
                drop(writer);
                writer = Core::open_storage(storage.clone(), CoreOptions::new()).unwrap();
                drop(reader);
                reader = Core::open_storage(reader_storage.clone(), CoreOptions::new()).unwrap();
            }
            Op::Get(i) => {
                let len = model.blocks.len() as u64;
                let i = u64::from(i) % (len + 2);
                match writer.get(i) {
                    Ok(v) => assert_eq!(v, model.blocks[i as usize]),
                    Err(Error::OutOfBounds { .. }) => assert!(i >= len),
                    Err(Error::BlockNotAvailable { .. }) => assert!(!model.present[i as usize]),
                    Err(e) => panic!("get {i}: {e}"),
                }
            }
            Op::Fetch(i) => {
                let len = model.blocks.len() as u64;
                if len > 0 {
                    fetch(&writer, &mut reader, u64::from(i) % len);
                }
            }
            Op::Flush => writer.flush().unwrap(),
        }
        check(&writer, &model);
        check_reader(&writer, &model, &reader);
    }
    drop(writer);
    check(
        &Core::open_storage(storage, CoreOptions::new()).unwrap(),
        &model,
    );
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn core_matches_the_model(ops in prop::collection::vec(op_strategy(), 1..40)) {
        run(ops);
    }
}

/// A fixed sequence that covers every operation once, so that a plain `cargo test` run
/// always exercises them whatever proptest draws.
#[test]
fn model_smoke_sequence() {
    run(vec![
        Op::AppendBatch(vec![
            b"a".to_vec(),
            b"bb".to_vec(),
            vec![],
            b"dddd".to_vec(),
        ]),
        Op::Fetch(3),
        Op::Append(b"e".to_vec()),
        Op::Clear(1, 2),
        Op::Fetch(1),
        Op::Get(1),
        Op::UserData(1, b"x".to_vec()),
        Op::Reopen,
        Op::Truncate(3),
        Op::Fetch(0),
        Op::Append(b"f".to_vec()),
        Op::Flush,
        Op::Fetch(3),
        Op::Reopen,
        Op::UserData(1, vec![]),
        Op::Truncate(0),
        Op::Append(b"g".to_vec()),
        Op::Fetch(0),
    ]);
}
