//! The annotated example of spec §5.11 (a core written by corestore 6.18.4) and the tree
//! vectors of §11, reproduced byte for byte.

use hypercore_lite::{Core, CoreOptions, CoreStorage};

use crate::common::{read_all, test_key_pair};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const PUBLIC_KEY: &str = "37966fe2bbd8113f13fb54c571217097ab64c6140fb6694e8ef4d9f774ab935b";
const DEFAULT_NS: &str = "4144eea531e483d54e0c14f4ca68e0644f355343ff6fcb0f005200e12cd747cb";
const SIGNATURE_LEN_3: &str = "8f70d7aa071148dcd15aa6038a83581aef813b3220a080cbb407e8eb37ef6826\
                               4ec8a075adff3fa581714893ba27358cef2447b31c4738f5378de2b31f07fa03";

/// corestore: create the core, set `corestore/name` (first mutation: flush), set
/// `corestore/namespace` (an entry), append a, bb, ccc (an entry), close without flushing.
fn corestore_example() -> (Core, CoreStorage) {
    let storage = CoreStorage::memory();
    let mut core = Core::open_storage(
        storage.clone(),
        CoreOptions::new().key_pair(test_key_pair()),
    )
    .unwrap();
    core.set_user_data("corestore/name", b"test").unwrap();
    core.set_user_data("corestore/namespace", &[0; 32]).unwrap();
    core.append_batch(&[&b"a"[..], b"bb", b"ccc"]).unwrap();
    (core, storage)
}

#[test]
fn oplog_only_core_matches_corestore_bytes() {
    let (core, storage) = corestore_example();
    assert_eq!(core.key().to_string(), PUBLIC_KEY);
    assert_eq!(
        core.signature().map(<[u8]>::to_vec),
        Some(hex(SIGNATURE_LEN_3))
    );
    assert_eq!(
        core.tree_hash().to_string(),
        "45f511522f3ccc90b4b76f89a9ee1ac039febd894778b3e9b06aefe521c52265"
    );

    let oplog = read_all(&storage.oplog);
    assert_eq!(oplog.len(), 8471);
    // Slot 0: written when the core was created (no user data), generation bit 0.
    assert_eq!(&oplog[..8], &hex("3b5e45a2 44030000")[..]);
    // Slot 1: the current header, generation bit 1.
    assert_eq!(&oplog[4096..4104], &hex("f7d0a310 95030000")[..]);
    let mut header = hex("01 06");
    header.extend(hex(PUBLIC_KEY));
    header.extend(hex("01 00 00 01 01 00"));
    header.extend(hex(DEFAULT_NS));
    header.extend(hex(PUBLIC_KEY));
    header.extend(hex("20"));
    header.extend(hex(PUBLIC_KEY));
    header.extend(hex("40"));
    header.extend(test_key_pair().secret_key().as_bytes());
    header.extend(hex("01 0e"));
    header.extend(b"corestore/name");
    header.extend(hex("04"));
    header.extend(b"test");
    header.extend(hex("00 00 00 00 00 00"));
    assert_eq!(header.len(), 229);
    assert_eq!(&oplog[4104..4104 + 229], &header[..]);

    // Entry 1: the namespace.
    let mut entry1 = hex("e3cb785c d9000000 01 13");
    entry1.extend(b"corestore/namespace");
    entry1.extend(hex("20"));
    entry1.extend([0; 32]);
    assert_eq!(&oplog[8192..8254], &entry1[..]);

    // Entry 2: the append.
    let e2 = &oplog[8254..];
    assert_eq!(&e2[..8], &hex("067df7a9 45030000")[..]);
    assert_eq!(&e2[8..10], &hex("0e 04")[..]);
    assert_eq!(&e2[10..12], &hex("00 01")[..], "leaf 0: index 0, size 1");
    assert_eq!(
        &e2[12..44],
        &hex("423177bd3da55c6ac57419beff9c763bab05e12a6d8908b38b7fc14360228d4a")[..]
    );
    let upgrade_at = 8 + 1 + 1 + 4 * 34;
    assert_eq!(&e2[upgrade_at..upgrade_at + 4], &hex("00 00 03 40")[..]);
    assert_eq!(
        &e2[upgrade_at + 4..upgrade_at + 68],
        &hex(SIGNATURE_LEN_3)[..]
    );
    assert_eq!(&e2[upgrade_at + 68..], &hex("00 00 03")[..]);

    assert_eq!(read_all(&storage.data), b"abbccc");
    assert_eq!(
        storage.tree.len().unwrap(),
        0,
        "nothing flushed to the tree yet"
    );
    assert_eq!(storage.bitfield.len().unwrap(), 0);
}

#[test]
fn reopen_and_append_flushes_like_corestore() {
    let (core, storage) = corestore_example();
    drop(core); // no close: JavaScript does not flush on close either

    let mut core = Core::open_storage(storage.clone(), CoreOptions::new()).unwrap();
    assert_eq!(core.length(), 3);
    assert_eq!(core.user_data("corestore/name"), Some(&b"test"[..]));
    assert_eq!(core.user_data("corestore/namespace"), Some(&[0u8; 32][..]));
    assert!(core.is_writable());
    assert_eq!(core.get(2).unwrap(), b"ccc");

    core.append_batch(&[&b"dddd"[..], b"eeeee"]).unwrap();

    let oplog = read_all(&storage.oplog);
    assert_eq!(oplog.len(), 8192, "the first mutation after open flushes");
    // Slot 0 rewritten with generation bit 1 and a 378-byte header.
    assert_eq!(
        u32::from_le_bytes(oplog[4..8].try_into().unwrap()),
        (378 << 2) | 1
    );

    let tree = read_all(&storage.tree);
    assert_eq!(tree.len(), 360);
    assert!(
        tree[7 * 40..8 * 40].iter().all(|&b| b == 0),
        "node 7 is blank"
    );
    assert_eq!(&tree[3 * 40..3 * 40 + 8], &10u64.to_le_bytes());
    assert_eq!(
        &tree[3 * 40 + 8..4 * 40],
        &hex("5d702ad47f1bac784f5cb0a4aa0aff864e0dab9c076479d8d1bbf371a478579d")[..]
    );
    assert_eq!(
        &tree[8 * 40 + 8..9 * 40],
        &hex("b0c81ee4845995c4a5e513f35de3c7789b51ec81bcd6c9205bc797046f9d1b1e")[..]
    );

    let bitfield = read_all(&storage.bitfield);
    assert_eq!(bitfield.len(), 4096);
    assert_eq!(bitfield[0], 0x1f);
    assert!(bitfield[1..].iter().all(|&b| b == 0));

    assert_eq!(read_all(&storage.data), b"abbcccddddeeeee");
    assert_eq!(
        core.tree_hash().to_string(),
        "8bd269686739ceaf0dd9b8cb911bcc004aaabc3f7986c5f18c0f2a9d1a293fc9"
    );

    // And the flushed store opens again with everything in place.
    drop(core);
    let core = Core::open_storage(storage, CoreOptions::new()).unwrap();
    assert_eq!(core.length(), 5);
    assert_eq!(core.byte_length(), 15);
    assert_eq!(core.contiguous_length(), 5);
    for (i, want) in [&b"a"[..], b"bb", b"ccc", b"dddd", b"eeeee"]
        .iter()
        .enumerate()
    {
        assert_eq!(core.get(i as u64).unwrap(), *want);
    }
}
