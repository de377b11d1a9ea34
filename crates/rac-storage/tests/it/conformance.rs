//! The conformance suite: every scenario runs against every store in `fixtures()`, so all
//! backends honour the same [`Storage`] and [`Provider`] contracts.

use std::sync::Arc;

use rac_storage::{Error, MAX_SIZE, Op, OpenOptions, Provider, Storage};

use crate::{Fixture, INTERESTING_LENGTHS, PAGE, fixtures, pattern};

fn open(f: &Fixture, name: &str) -> Arc<dyn Storage> {
    f.provider.open(name, &OpenOptions::new()).unwrap()
}

/// Runs `scenario` on a fresh store of every kind.
fn each(scenario: impl Fn(&Fixture)) {
    for f in fixtures() {
        scenario(&f);
    }
}

#[test]
fn write_then_read_round_trips_at_interesting_offsets() {
    each(|f| {
        let s = open(f, "data");
        let mut end = 0;
        for (i, &len) in INTERESTING_LENGTHS.iter().enumerate() {
            let offset = len; // offsets are interesting too
            let data = pattern(i as u8, len);
            s.write(offset, &data).unwrap();
            if len > 0 {
                end = end.max(offset + len);
            }
            assert_eq!(
                s.read_to_vec(offset, len).unwrap(),
                data,
                "{} len {len}",
                f.name
            );
            assert_eq!(s.len().unwrap(), end, "{}", f.name);
        }
    });
}

#[test]
fn reads_past_the_end_are_out_of_bounds() {
    each(|f| {
        let s = open(f, "data");
        let missing = s.read(0, &mut [0; 1]).unwrap_err();
        assert!(
            matches!(
                missing,
                Error::OutOfBounds {
                    offset: 0,
                    len: 1,
                    size: 0
                }
            ),
            "{}: {missing:?}",
            f.name
        );
        s.read(0, &mut []).unwrap();
        s.write(0, &[5; 10]).unwrap();
        for (offset, len) in [
            (0, 11),
            (9, 2),
            (10, 1),
            (11, 0),
            (u64::MAX, 1),
            (u64::MAX, 0),
        ] {
            let buf_len = usize::try_from(len).unwrap();
            let err = s.read(offset, &mut vec![0; buf_len]).unwrap_err();
            assert!(
                matches!(err, Error::OutOfBounds { offset: o, len: l, size: 10 } if o == offset && l == len),
                "{}: read({offset}, {len}) gave {err:?}",
                f.name
            );
        }
        s.read(10, &mut []).unwrap();
        let mut buf = [0; 10];
        s.read(0, &mut buf).unwrap();
        assert_eq!(buf, [5; 10]);
    });
}

#[test]
fn read_append_appends_or_leaves_the_buffer_alone() {
    each(|f| {
        let s = open(f, "data");
        s.write(0, b"hello world").unwrap();
        let mut out = b"> ".to_vec();
        s.read_append(6, 5, &mut out).unwrap();
        assert_eq!(out, b"> world", "{}", f.name);
        s.read_append(0, 0, &mut out).unwrap();
        assert_eq!(out, b"> world", "{}", f.name);
        for (offset, len) in [(0, u64::MAX), (8, 4), (u64::MAX, 1)] {
            let err = s.read_append(offset, len, &mut out).unwrap_err();
            assert!(
                matches!(err, Error::OutOfBounds { size: 11, .. }),
                "{}: {err:?}",
                f.name
            );
            assert_eq!(out, b"> world", "{}", f.name);
        }
    });
}

#[test]
fn read_to_vec_refuses_absurd_lengths_before_allocating() {
    each(|f| {
        let s = open(f, "data");
        s.write(0, b"abc").unwrap();
        for (offset, len) in [(0, u64::MAX), (1, 1 << 50), (u64::MAX, u64::MAX), (3, 1)] {
            let err = s.read_to_vec(offset, len).unwrap_err();
            assert!(
                matches!(err, Error::OutOfBounds { size: 3, .. }),
                "{}: {err:?}",
                f.name
            );
        }
        assert!(s.read_to_vec(3, 0).unwrap().is_empty());
    });
}

#[test]
fn small_read_to_vec_past_the_end_is_out_of_bounds() {
    each(|f| {
        let s = open(f, "data");
        let missing = s.read_to_vec(0, 1).unwrap_err();
        assert!(
            matches!(
                missing,
                Error::OutOfBounds {
                    offset: 0,
                    len: 1,
                    size: 0
                }
            ),
            "{}: {missing:?}",
            f.name
        );
        s.write(0, &[5; 10]).unwrap();
        for (offset, len) in [
            (0, 11),
            (9, 2),
            (10, 1),
            (11, 0),
            (u64::MAX, 1),
            (u64::MAX, 0),
        ] {
            let err = s.read_to_vec(offset, len).unwrap_err();
            assert!(
                matches!(err, Error::OutOfBounds { offset: o, len: l, size: 10 } if o == offset && l == len),
                "{}: read_to_vec({offset}, {len}) gave {err:?}",
                f.name
            );
        }
        assert_eq!(s.read_to_vec(8, 2).unwrap(), [5; 2]);
        assert!(s.read_to_vec(10, 0).unwrap().is_empty());
        s.close().unwrap();
        let closed = s.read_to_vec(0, 1).unwrap_err();
        assert!(
            matches!(closed, Error::Closed { op: Op::Len }),
            "{}: {closed:?}",
            f.name
        );
    });
}

#[test]
fn growth_zero_fills() {
    each(|f| {
        let s = open(f, "data");
        s.write(PAGE + 5, b"end").unwrap();
        assert_eq!(s.len().unwrap(), PAGE + 8);
        let all = s.read_to_vec(0, PAGE + 8).unwrap();
        assert!(
            all[..(PAGE + 5) as usize].iter().all(|&b| b == 0),
            "{}",
            f.name
        );
        s.truncate(2 * PAGE).unwrap();
        let tail = s.read_to_vec(PAGE + 8, PAGE - 8).unwrap();
        assert!(tail.iter().all(|&b| b == 0), "{}", f.name);
    });
}

#[test]
fn shrinking_truncate_forgets_data() {
    each(|f| {
        let s = open(f, "data");
        s.write(0, &pattern(1, 3 * PAGE)).unwrap();
        s.truncate(PAGE / 2).unwrap();
        assert_eq!(s.len().unwrap(), PAGE / 2);
        s.truncate(3 * PAGE).unwrap();
        let all = s.read_to_vec(0, 3 * PAGE).unwrap();
        assert_eq!(
            &all[..(PAGE / 2) as usize],
            &pattern(1, PAGE / 2)[..],
            "{}",
            f.name
        );
        assert!(
            all[(PAGE / 2) as usize..].iter().all(|&b| b == 0),
            "{}",
            f.name
        );
        s.truncate(0).unwrap();
        assert_eq!(s.len().unwrap(), 0);
    });
}

#[test]
fn del_zeroes_inside_and_truncates_at_the_end() {
    each(|f| {
        let s = open(f, "data");
        let data = pattern(2, 2 * PAGE + 10);
        s.write(0, &data).unwrap();
        // Inside: zeroed, length unchanged (spans a page boundary).
        s.del(PAGE - 5, 10).unwrap();
        assert_eq!(s.len().unwrap(), 2 * PAGE + 10, "{}", f.name);
        let mut expected = data.clone();
        expected[(PAGE - 5) as usize..(PAGE + 5) as usize].fill(0);
        assert_eq!(
            s.read_to_vec(0, 2 * PAGE + 10).unwrap(),
            expected,
            "{}",
            f.name
        );
        // Zero length and beyond the end: nothing.
        s.del(3, 0).unwrap();
        s.del(2 * PAGE + 10, 5).unwrap();
        s.del(u64::MAX, u64::MAX).unwrap();
        assert_eq!(s.len().unwrap(), 2 * PAGE + 10, "{}", f.name);
        // Exactly to the end: truncates.
        s.del(2 * PAGE, 10).unwrap();
        assert_eq!(s.len().unwrap(), 2 * PAGE, "{}", f.name);
        // Past the end, with a huge length: truncates.
        s.del(100, u64::MAX).unwrap();
        assert_eq!(s.len().unwrap(), 100, "{}", f.name);
        assert_eq!(s.read_to_vec(0, 100).unwrap(), &data[..100], "{}", f.name);
    });
}

#[test]
fn empty_operations_change_nothing() {
    each(|f| {
        let s = open(f, "data");
        s.write(1000, b"").unwrap();
        s.del(0, 10).unwrap();
        s.truncate(0).unwrap();
        assert_eq!(s.len().unwrap(), 0, "{}", f.name);
        assert!(s.is_empty().unwrap());
        assert!(
            !f.provider.exists("data").unwrap(),
            "{}: nothing created",
            f.name
        );
        s.write(0, b"x").unwrap();
        assert!(f.provider.exists("data").unwrap(), "{}", f.name);
        s.write(1000, b"").unwrap();
        assert_eq!(s.len().unwrap(), 1, "{}", f.name);
    });
}

#[test]
fn sizes_are_bounded() {
    each(|f| {
        let s = open(f, "data");
        for (offset, len) in [(MAX_SIZE, 1usize), (u64::MAX, 1), (MAX_SIZE - 1, 2)] {
            let err = s.write(offset, &vec![1; len]).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::TooLarge {
                        op: Op::Write,
                        max: MAX_SIZE,
                        ..
                    }
                ),
                "{}: {err:?}",
                f.name
            );
        }
        let err = s.truncate(MAX_SIZE + 1).unwrap_err();
        assert!(
            matches!(
                err,
                Error::TooLarge {
                    op: Op::Truncate,
                    ..
                }
            ),
            "{}",
            f.name
        );
        assert_eq!(s.len().unwrap(), 0, "{}", f.name);
    });
}

#[test]
fn sparse_write_far_away() {
    each(|f| {
        let s = open(f, "sparse");
        let offset = (4 << 30) + 3; // past 4 GiB: 64-bit offsets everywhere
        s.write(offset, b"far").unwrap();
        assert_eq!(s.len().unwrap(), offset + 3, "{}", f.name);
        assert_eq!(
            s.read_to_vec(offset - 2, 5).unwrap(),
            b"\0\0far",
            "{}",
            f.name
        );
        assert_eq!(s.read_to_vec(1 << 31, 4).unwrap(), [0; 4], "{}", f.name);
        s.unlink().unwrap();
    });
}

#[test]
fn close_ends_the_handle_and_reopen_sees_the_data() {
    each(|f| {
        let s = open(f, "cores/aa/bb/cc/oplog");
        s.write(0, b"persist").unwrap();
        s.sync().unwrap();
        s.close().unwrap();
        s.close().unwrap();
        let results = [
            ("read", s.read(0, &mut [0; 1]).map(drop)),
            ("write", s.write(0, b"x")),
            ("del", s.del(0, 1)),
            ("truncate", s.truncate(1)),
            ("len", s.len().map(drop)),
            ("sync", s.sync()),
        ];
        for (op, result) in results {
            assert!(
                matches!(result, Err(Error::Closed { .. })),
                "{}: {op} after close gave {result:?}",
                f.name
            );
        }
        let again = open(f, "cores/aa/bb/cc/oplog");
        assert_eq!(again.read_to_vec(0, 7).unwrap(), b"persist", "{}", f.name);
    });
}

#[test]
fn unlink_removes_the_data() {
    each(|f| {
        let s = open(f, "cores/aa/bb/cc/tree");
        let other = open(f, "cores/aa/bb/dd/tree");
        s.write(0, b"gone").unwrap();
        other.write(0, b"stays").unwrap();
        s.unlink().unwrap();
        assert!(matches!(s.len(), Err(Error::Closed { .. })), "{}", f.name);
        s.unlink().unwrap();
        assert!(
            !f.provider.exists("cores/aa/bb/cc/tree").unwrap(),
            "{}",
            f.name
        );
        assert_eq!(
            open(f, "cores/aa/bb/cc/tree").len().unwrap(),
            0,
            "{}",
            f.name
        );
        assert_eq!(
            f.provider.list("cores").unwrap(),
            ["cores/aa/bb/dd/tree"],
            "{}",
            f.name
        );
        assert_eq!(other.read_to_vec(0, 5).unwrap(), b"stays");
    });
}

#[test]
fn provider_names_exist_and_list() {
    each(|f| {
        for name in [
            "cores/aa/bb/k1/oplog",
            "cores/aa/bb/k1/data",
            "cores/cc/dd/k2/oplog",
            "db/x",
        ] {
            open(f, name).write(0, name.as_bytes()).unwrap();
        }
        open(f, "cores/ee/ff/k3/oplog"); // opened, never written: does not exist
        assert!(f.provider.exists("db/x").unwrap(), "{}", f.name);
        assert!(!f.provider.exists("db/y").unwrap(), "{}", f.name);
        assert!(
            !f.provider.exists("cores/ee/ff/k3/oplog").unwrap(),
            "{}",
            f.name
        );
        assert_eq!(
            f.provider.list("cores").unwrap(),
            [
                "cores/aa/bb/k1/data",
                "cores/aa/bb/k1/oplog",
                "cores/cc/dd/k2/oplog"
            ],
            "{}",
            f.name
        );
        assert_eq!(
            f.provider.list("cores/cc").unwrap(),
            ["cores/cc/dd/k2/oplog"]
        );
        assert_eq!(f.provider.list("").unwrap().len(), 4, "{}", f.name);
        assert!(
            f.provider.list("nothing/here").unwrap().is_empty(),
            "{}",
            f.name
        );
    });
}

#[test]
fn invalid_names_are_refused_everywhere() {
    each(|f| {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "cores/../../x",
            "a//b",
            "a/",
            "./a",
            "a\\b",
        ] {
            let o = OpenOptions::new();
            assert!(
                matches!(f.provider.open(bad, &o), Err(Error::InvalidName { .. })),
                "{}: {bad:?}",
                f.name
            );
            assert!(
                matches!(f.provider.exists(bad), Err(Error::InvalidName { .. })),
                "{}: {bad:?}",
                f.name
            );
            if !bad.is_empty() {
                assert!(
                    matches!(f.provider.list(bad), Err(Error::InvalidName { .. })),
                    "{}: {bad:?}",
                    f.name
                );
            }
        }
    });
}

#[test]
fn concurrent_writers_on_disjoint_ranges() {
    each(|f| {
        let s = open(f, "shared");
        let chunk = 5000u64;
        std::thread::scope(|scope| {
            for t in 0..4u8 {
                let s = &s;
                scope.spawn(move || {
                    for i in 0..8u64 {
                        let offset = (i * 4 + u64::from(t)) * chunk;
                        s.write(offset, &pattern(t, chunk)).unwrap();
                        assert_eq!(s.read_to_vec(offset, chunk).unwrap(), pattern(t, chunk));
                    }
                });
            }
        });
        assert_eq!(s.len().unwrap(), 32 * chunk, "{}", f.name);
        for block in 0..32u64 {
            let expected = pattern((block % 4) as u8, chunk);
            assert_eq!(
                s.read_to_vec(block * chunk, chunk).unwrap(),
                expected,
                "{}",
                f.name
            );
        }
    });
}
