//! Unit tests for compact-encoding, including the spec §1 varint examples.

use super::*;

fn enc(f: impl FnOnce(&mut Encoder)) -> Vec<u8> {
    let mut e = Encoder::new();
    f(&mut e);
    e.into_vec()
}

#[test]
fn varint_examples_from_spec() {
    let cases: &[(u64, &str)] = &[
        (0, "00"),
        (252, "fc"),
        (253, "fdfd00"),
        (65535, "fdffff"),
        (65536, "fe00000100"),
        (0xffff_ffff, "feffffffff"),
        (1 << 32, "ff0000000001000000"),
        (MAX_SAFE_INTEGER, "ffffffffffffff1f00"),
    ];
    for &(n, hex) in cases {
        let bytes = enc(|e| {
            e.uint(n);
        });
        assert_eq!(hex::encode(&bytes), hex, "encode {n}");
        assert_eq!(bytes.len(), uint_len(n));
        let mut d = Decoder::new(&bytes);
        assert_eq!(d.uint(), Ok(n));
        assert!(d.is_empty());
    }
}

#[test]
fn non_minimal_varints_are_accepted() {
    for bytes in [
        &[0xfd, 5, 0][..],
        &[0xfe, 5, 0, 0, 0],
        &[0xff, 5, 0, 0, 0, 0, 0, 0, 0],
    ] {
        assert_eq!(Decoder::new(bytes).uint(), Ok(5));
    }
}

#[test]
fn varints_above_max_safe_integer_are_rejected() {
    let bytes = enc(|e| {
        e.uint(MAX_SAFE_INTEGER + 1);
    });
    assert_eq!(
        Decoder::new(&bytes).uint(),
        Err(DecodeError::TooLarge {
            what: "uint",
            limit: MAX_SAFE_INTEGER,
            got: MAX_SAFE_INTEGER + 1
        })
    );
    let bytes = u64::MAX.to_le_bytes();
    assert!(matches!(
        Decoder::new(&bytes).u64(),
        Err(DecodeError::TooLarge { .. })
    ));
}

#[test]
fn truncated_inputs_report_unexpected_end() {
    assert_eq!(
        Decoder::new(&[]).uint(),
        Err(DecodeError::UnexpectedEnd {
            needed: 1,
            remaining: 0
        })
    );
    assert_eq!(
        Decoder::new(&[0xfd, 1]).uint(),
        Err(DecodeError::UnexpectedEnd {
            needed: 2,
            remaining: 1
        })
    );
    assert_eq!(
        Decoder::new(&[3, 1, 2]).buffer(),
        Err(DecodeError::UnexpectedEnd {
            needed: 3,
            remaining: 2
        })
    );
    // A huge length must fail before allocating anything.
    let huge = enc(|e| {
        e.uint(MAX_SAFE_INTEGER);
    });
    assert!(matches!(
        Decoder::new(&huge).buffer(),
        Err(DecodeError::UnexpectedEnd { .. })
    ));
    assert!(matches!(
        Decoder::new(&huge).uint32_array(),
        Err(DecodeError::UnexpectedEnd { .. })
    ));
}

#[test]
fn fixed_width_integers_are_little_endian() {
    let bytes = enc(|e| {
        e.u8(1)
            .u16(0x0203)
            .u24(0x0004_0506)
            .u32(0x0708_090a)
            .u64(0x0b0c);
    });
    assert_eq!(hex::encode(&bytes), "0103020605040a0908070c0b000000000000");
    let mut d = Decoder::new(&bytes);
    assert_eq!(d.u8(), Ok(1));
    assert_eq!(d.u16(), Ok(0x0203));
    assert_eq!(d.u24(), Ok(0x0004_0506));
    assert_eq!(d.u32(), Ok(0x0708_090a));
    assert_eq!(d.u64(), Ok(0x0b0c));
    assert_eq!(d.finish(), Ok(()));
}

#[test]
fn buffers_strings_and_raw() {
    let bytes = enc(|e| {
        e.buffer(b"abc")
            .optional_buffer(None)
            .string("héllo")
            .fixed(&[9u8; 4])
            .raw(b"rest");
    });
    assert_eq!(bytes.len(), buffer_len(3) + 1 + buffer_len(6) + 4 + 4);
    let mut d = Decoder::new(&bytes);
    assert_eq!(d.buffer(), Ok(&b"abc"[..]));
    assert_eq!(d.optional_buffer(), Ok(None));
    assert_eq!(d.string(), Ok("héllo"));
    assert_eq!(d.fixed::<4>(), Ok([9; 4]));
    assert_eq!(d.raw(), b"rest");
    assert!(d.is_empty());
    assert_eq!(d.raw(), b"");
}

#[test]
fn invalid_utf8_is_reported_with_offset() {
    assert_eq!(
        Decoder::new(&[0xaa, 3, b'a', 0xff, b'b']).string(),
        Err(DecodeError::UnexpectedEnd {
            needed: 0xaa,
            remaining: 4
        })
    );
    let mut d = Decoder::new(&[7, 3, b'a', 0xff, b'b']);
    assert_eq!(d.u8(), Ok(7));
    assert_eq!(d.string(), Err(DecodeError::InvalidUtf8 { offset: 3 }));
}

#[test]
fn bool_decodes_like_javascript() {
    assert_eq!(
        enc(|e| {
            e.bool(true).bool(false);
        }),
        [1, 0]
    );
    let mut d = Decoder::new(&[1, 0, 2]);
    assert_eq!(d.bool(), Ok(true));
    assert_eq!(d.bool(), Ok(false));
    assert_eq!(d.bool(), Ok(false), "JS decodes `byte === 1`");
}

#[test]
fn arrays_are_bounded() {
    let bytes = enc(|e| {
        e.array(&[1u64, 300, 70000], |e, n| {
            e.uint(*n);
        });
    });
    assert_eq!(hex::encode(&bytes), "0301fd2c01fe70110100");
    let mut d = Decoder::new(&bytes);
    assert_eq!(d.array(Decoder::uint), Ok(vec![1, 300, 70000]));

    let too_big = enc(|e| {
        e.uint(MAX_ARRAY_LEN + 1);
    });
    assert_eq!(
        Decoder::new(&too_big).array_len(),
        Err(DecodeError::TooLarge {
            what: "array length",
            limit: MAX_ARRAY_LEN,
            got: MAX_ARRAY_LEN + 1
        })
    );
    // A count within the JS bound but beyond the input is rejected before allocating.
    let lying = enc(|e| {
        e.uint(MAX_ARRAY_LEN);
    });
    assert!(matches!(
        Decoder::new(&lying).array(Decoder::u8),
        Err(DecodeError::UnexpectedEnd { .. })
    ));
}

#[test]
fn uint32_array_counts_words() {
    let bytes = enc(|e| {
        e.uint32_array(&[1, 0xdead_beef]);
    });
    assert_eq!(hex::encode(&bytes), "0201000000efbeadde");
    assert_eq!(bytes.len(), uint32_array_len(2));
    assert_eq!(
        Decoder::new(&bytes).uint32_array(),
        Ok(vec![1, 0xdead_beef])
    );
    assert_eq!(
        Decoder::new(&[2, 1, 0, 0, 0]).uint32_array(),
        Err(DecodeError::UnexpectedEnd {
            needed: 8,
            remaining: 4
        })
    );
}

#[test]
fn finish_reports_trailing_bytes() {
    let mut d = Decoder::new(&[1, 2, 3]);
    assert_eq!(d.u8(), Ok(1));
    assert_eq!(d.position(), 1);
    assert_eq!(d.finish(), Err(DecodeError::TrailingBytes { count: 2 }));
}

#[test]
fn uint_uint_fixed32_matches_its_parts() {
    let values = [
        0,
        0xfc,
        0xfd,
        0xffff,
        0x1_0000,
        0xffff_ffff,
        1 << 32,
        u64::MAX,
    ];
    for &a in &values {
        for &b in &values {
            let hash = [a.to_le_bytes()[0] ^ 0x5a; 32];
            let one = enc(|e| {
                e.u8(7).uint_uint_fixed32(a, b, &hash);
            });
            let parts = enc(|e| {
                e.u8(7).uint(a).uint(b).fixed(&hash);
            });
            assert_eq!(one, parts, "{a} {b}");
        }
    }
}
