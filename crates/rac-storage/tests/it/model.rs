//! Model-based property test: random sequences of write / vectored write / read / read_to_vec / del / truncate /
//! len / sync / reopen / exists run against a memory store, a directory store (one-descriptor
//! pool, so descriptors are evicted and reopened constantly) and a plain `Vec<u8>` model; every
//! step must give identical results.

use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use rac_storage::{DirectoryProvider, Error, MemoryProvider, OpenOptions, Provider, Storage};

use crate::{PAGE, tempdir};

#[derive(Debug, Clone)]
enum Step {
    Write(u64, Vec<u8>),
    /// `write_vectored` of the parts (the model writes their concatenation).
    WriteParts(u64, Vec<Vec<u8>>),
    Read(u64, u64),
    ReadVec(u64, u64),
    Del(u64, u64),
    /// `del` of exactly the last `n` bytes (the boundary where del turns into truncate).
    DelTail(u64),
    Truncate(u64),
    Len,
    Sync,
    Reopen,
    Exists,
}

/// The observable result of a step, comparable across backends.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Done,
    Bytes(Vec<u8>),
    Len(u64),
    Exists(bool),
    OutOfBounds { offset: u64, len: u64, size: u64 },
}

/// The reference: a byte vector plus "has the file been created".
#[derive(Default)]
struct Model {
    bytes: Vec<u8>,
    exists: bool,
}

impl Model {
    fn step(&mut self, step: &Step) -> Outcome {
        let size = self.bytes.len() as u64;
        match *step {
            Step::Write(offset, ref data) => {
                if !data.is_empty() {
                    let end = offset as usize + data.len();
                    if end > self.bytes.len() {
                        grow(&mut self.bytes, end);
                    }
                    self.bytes[offset as usize..end].copy_from_slice(data);
                    self.exists = true;
                }
                Outcome::Done
            }
            Step::WriteParts(offset, ref parts) => self.step(&Step::Write(offset, parts.concat())),
            Step::Read(offset, len) | Step::ReadVec(offset, len) => {
                if offset + len <= size {
                    Outcome::Bytes(self.bytes[offset as usize..(offset + len) as usize].to_vec())
                } else {
                    Outcome::OutOfBounds { offset, len, size }
                }
            }
            Step::Del(offset, len) => {
                if len > 0 && offset < size {
                    if offset.saturating_add(len) >= size {
                        self.bytes.truncate(offset as usize);
                    } else {
                        self.bytes[offset as usize..(offset + len) as usize].fill(0);
                    }
                }
                Outcome::Done
            }
            Step::DelTail(n) => {
                let offset = size.saturating_sub(n);
                self.step(&Step::Del(offset, size - offset))
            }
            Step::Truncate(len) => {
                if len > 0 || self.exists {
                    grow(&mut self.bytes, len as usize);
                    self.bytes.truncate(len as usize);
                    self.exists = true;
                }
                Outcome::Done
            }
            Step::Len => Outcome::Len(size),
            Step::Sync | Step::Reopen => Outcome::Done,
            Step::Exists => Outcome::Exists(self.exists),
        }
    }
}

/// Grows `bytes` to `len` with zeros (from zeroed memory: a debug build's `resize` writes the
/// 16 MiB of the large-offset test byte by byte).
fn grow(bytes: &mut Vec<u8>, len: usize) {
    if len > bytes.len() {
        let mut grown = vec![0; len];
        grown[..bytes.len()].copy_from_slice(bytes);
        *bytes = grown;
    }
}

/// A store under test and its currently open handle.
struct Subject {
    provider: Box<dyn Provider>,
    storage: Arc<dyn Storage>,
}

impl Subject {
    fn new(provider: Box<dyn Provider>) -> Self {
        let storage = provider.open(NAME, &OpenOptions::new()).unwrap();
        Self { provider, storage }
    }

    fn step(&mut self, step: &Step) -> Outcome {
        let s = &self.storage;
        let result = match *step {
            Step::Write(offset, ref data) => s.write(offset, data).map(|()| Outcome::Done),
            Step::WriteParts(offset, ref parts) => {
                let parts: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
                s.write_vectored(offset, &parts).map(|()| Outcome::Done)
            }
            Step::Read(offset, len) => {
                let mut buf = vec![0xAA; len as usize];
                s.read(offset, &mut buf).map(|()| Outcome::Bytes(buf))
            }
            Step::ReadVec(offset, len) => s.read_to_vec(offset, len).map(Outcome::Bytes),
            Step::Del(offset, len) => s.del(offset, len).map(|()| Outcome::Done),
            Step::DelTail(n) => s.len().and_then(|size| {
                let offset = size.saturating_sub(n);
                s.del(offset, size - offset).map(|()| Outcome::Done)
            }),
            Step::Truncate(len) => s.truncate(len).map(|()| Outcome::Done),
            Step::Len => s.len().map(Outcome::Len),
            Step::Sync => s.sync().map(|()| Outcome::Done),
            Step::Reopen => {
                s.close().unwrap();
                self.storage = self.provider.open(NAME, &OpenOptions::new()).unwrap();
                Ok(Outcome::Done)
            }
            Step::Exists => self.provider.exists(NAME).map(Outcome::Exists),
        };
        match result {
            Ok(outcome) => outcome,
            Err(Error::OutOfBounds { offset, len, size }) => {
                Outcome::OutOfBounds { offset, len, size }
            }
            Err(e) => panic!("{step:?} failed unexpectedly: {e}"),
        }
    }
}

const NAME: &str = "cores/aa/bb/cc/data";

/// Offsets clustered where bugs live, from `base`: near it, around the first page boundary
/// after it, anywhere in the three pages after it.
fn offset(base: u64) -> impl Strategy<Value = u64> {
    prop_oneof![0..300u64, (PAGE - 300)..(PAGE + 300), 0..3 * PAGE].prop_map(move |o| base + o)
}

/// Where the memory store's 2 MiB chunks start to be used: a store 16 MiB long that grows at
/// its end takes new memory in chunks (a chunk boundary lies at 16 MiB too).
const CHUNKED: u64 = 16 << 20;

fn step(base: u64) -> impl Strategy<Value = Step> {
    let offset = move || offset(base);
    let len = prop_oneof![0..700u64, (PAGE - 10)..(PAGE + 10)];
    prop_oneof![
        4 => (offset(), proptest::collection::vec(any::<u8>(), 0..700))
            .prop_map(|(o, d)| Step::Write(o, d)),
        1 => (offset(), (PAGE - 10)..(PAGE + 10), any::<u8>())
            .prop_map(|(o, n, b)| Step::Write(o, vec![b; n as usize])),
        2 => (offset(), proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..4))
            .prop_map(|(o, p)| Step::WriteParts(o, p)),
        2 => (offset(), 0..700u64).prop_map(|(o, l)| Step::Read(o, l)),
        2 => (offset(), len.clone()).prop_map(|(o, l)| Step::ReadVec(o, l)),
        2 => (offset(), prop_oneof![len, Just(u64::MAX)]).prop_map(|(o, l)| Step::Del(o, l)),
        1 => (0..700u64).prop_map(Step::DelTail),
        1 => offset().prop_map(Step::Truncate),
        1 => Just(Step::Len),
        1 => Just(Step::Sync),
        1 => Just(Step::Reopen),
        1 => Just(Step::Exists),
    ]
}

/// 64 cases by default (fast enough for every `cargo test`); `PROPTEST_CASES` overrides, as
/// `xtask ci --slow` does. Failures are saved under `crates/rac-storage/proptest-regressions/`.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/model.txt",
        ))),
        ..ProptestConfig::with_cases(cases)
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn backends_agree_with_the_vec_model(steps in proptest::collection::vec(step(0), 1..40)) {
        agree(&steps)?;
    }

    /// The same around 16 MiB, after a truncate to 16 MiB: the memory store mixes 2 MiB chunks
    /// (growth at the end) with single pages (growth after a shrink below 16 MiB, or past a gap).
    #[test]
    fn backends_agree_with_the_vec_model_past_16_mib(
        steps in proptest::collection::vec(step(CHUNKED - PAGE), 1..40),
    ) {
        let steps: Vec<Step> = [Step::Truncate(CHUNKED)].into_iter().chain(steps).collect();
        agree(&steps)?;
    }
}

/// Runs `steps` on a memory store, a directory store and the model, comparing every outcome.
fn agree(steps: &[Step]) -> Result<(), TestCaseError> {
    let dir = tempdir();
    let mut model = Model::default();
    let mut memory = Subject::new(Box::new(MemoryProvider::new()));
    let mut file = Subject::new(Box::new(DirectoryProvider::with_max_open(dir.path(), 1)));
    // A second handle on the file store makes the one-descriptor pool evict on every step.
    let neighbour = file.provider.open("other", &OpenOptions::new()).unwrap();
    for step in steps {
        let expected = model.step(step);
        prop_assert_eq!(&memory.step(step), &expected, "memory: {:?}", step);
        prop_assert_eq!(&file.step(step), &expected, "file: {:?}", step);
        neighbour.write(0, b"n").unwrap();
    }
    Ok(())
}
