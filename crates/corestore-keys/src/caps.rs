//! Namespaced constants (spec §2.2, §2.3) and the replication capability (spec §9.1).
//!
//! Every constant is a BLAKE2b output derived by [`namespace`]; a unit test recomputes each
//! one. Do not confuse the two "default namespaces": hypercore's
//! [`HYPERCORE_DEFAULT_NAMESPACE`] is the signer namespace inside manifests, corestore's
//! [`CORESTORE_DEFAULT_NAMESPACE`] is 32 zero bytes and roots name derivation.

use crate::hash::{h32, h32_keyed};
use crate::key::Key;

/// `namespace('hypercore', 6)[0]`: prefix of every tree signable.
pub const TREE: [u8; 32] =
    hex32("9fac70b50ca14efc4e91c833b204e75b8b5aad8b5881bfc0adb5ef38a3275b9c");
/// `namespace('hypercore', 6)[1]`: capability prefix of the secret-stream initiator.
pub const REPLICATE_INITIATOR: [u8; 32] =
    hex32("51812a2a359b50369536775df89e18e47740f3db72ac0ae70b29594c194dc316");
/// `namespace('hypercore', 6)[2]`: capability prefix of the secret-stream responder.
pub const REPLICATE_RESPONDER: [u8; 32] =
    hex32("0438492d02970cc13528ac0262bca0074e0926260256865accc0bf15bd79127d");
/// `namespace('hypercore', 6)[3]`: prefix of the manifest hash.
pub const MANIFEST: [u8; 32] =
    hex32("e64b7108eacce47cfc61ac850568f55f8b15b82ec5ed78c4ec597b036e2a1498");
/// `namespace('hypercore', 6)[4]`: hypercore's `DEFAULT_NAMESPACE`, the default signer
/// namespace in manifests (not corestore's all-zero default namespace).
pub const HYPERCORE_DEFAULT_NAMESPACE: [u8; 32] =
    hex32("4144eea531e483d54e0c14f4ca68e0644f355343ff6fcb0f005200e12cd747cb");
/// `namespace('hypercore', 6)[5]`: prefix of non-compat block-encryption keys.
pub const BLOCK_ENCRYPTION: [u8; 32] =
    hex32("9aedb6f1dea8487cc1e1698f97eb2f063f6db4c649695622e7b675e2ceafa6e9");
/// `namespace('corestore', 1)[0]`: prefix of corestore's name-to-seed derivation.
pub const CORESTORE_NS: [u8; 32] =
    hex32("ac5c4cbfb1064776404637a280c71fac823281d351ebeced03151743270def29");
/// Corestore's root namespace: 32 zero bytes.
pub const CORESTORE_DEFAULT_NAMESPACE: [u8; 32] = [0; 32];
/// `namespace('hyperswarm/secret-stream', 3)[0]`: secret-stream initiator stream-id prefix.
pub const NS_INITIATOR: [u8; 32] =
    hex32("a931a0155b5c09e6d28628236af83c4b8a6af9af60986edeede9dc5d63192bf7");
/// `namespace('hyperswarm/secret-stream', 3)[1]`: secret-stream responder stream-id prefix.
pub const NS_RESPONDER: [u8; 32] =
    hex32("742c9d833d430af4c48a8705e91631eecf295442bbca18996e597097723b1061");
/// `namespace('hyperswarm/secret-stream', 3)[2]`: secret-stream "send" prefix.
pub const NS_SEND: [u8; 32] =
    hex32("aab97d097471f56651b0460ffc8aaa7d3342f7377597d60b925a1dac689adcbf");

/// hypercore-crypto `namespace(name, count)`: `count` 32-byte identifiers
/// `H32(H32(name) || u8(i))` for `i` in `0..count`.
///
/// Entry `i` does not depend on `count`. As in JavaScript (a `Uint8Array` store), `i` is
/// taken modulo 256, so `count` above 256 repeats entries.
#[must_use]
pub fn namespace(name: &[u8], count: usize) -> Vec<[u8; 32]> {
    let base = h32(&[name]);
    (0..count)
        .map(|i| h32(&[&base, &[i.to_le_bytes()[0]]]))
        .collect()
}

/// The replication capability a peer sends when opening a core's channel:
/// `H32k(key = handshake_hash, msg = (REPLICATE_INITIATOR | REPLICATE_RESPONDER) || core key)`.
///
/// `is_initiator` is the *sender's* secret-stream role; to check a received capability,
/// recompute it with the remote's role and compare.
#[must_use]
pub fn capability(handshake_hash: &[u8; 64], is_initiator: bool, key: &Key) -> [u8; 32] {
    let prefix = if is_initiator {
        &REPLICATE_INITIATOR
    } else {
        &REPLICATE_RESPONDER
    };
    h32_keyed(handshake_hash, &[prefix, key.as_bytes()])
}

/// Parses 64 hex characters at compile time (constants only; a bad literal fails the build).
const fn hex32(s: &str) -> [u8; 32] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("invalid hex literal"),
        }
    }
    let b = s.as_bytes();
    assert!(b.len() == 64, "hex literal must be 64 characters");
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (nibble(b[2 * i]) << 4) | nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_match_their_derivation() {
        let hc = namespace(b"hypercore", 6);
        assert_eq!(
            hc,
            [
                TREE,
                REPLICATE_INITIATOR,
                REPLICATE_RESPONDER,
                MANIFEST,
                HYPERCORE_DEFAULT_NAMESPACE,
                BLOCK_ENCRYPTION
            ]
        );
        assert_eq!(namespace(b"corestore", 1), [CORESTORE_NS]);
        assert_eq!(
            namespace(b"hyperswarm/secret-stream", 3),
            [NS_INITIATOR, NS_RESPONDER, NS_SEND]
        );
        assert_eq!(CORESTORE_DEFAULT_NAMESPACE, [0; 32]);
    }

    #[test]
    fn namespace_entries_do_not_depend_on_count() {
        assert_eq!(namespace(b"x", 3)[..2], namespace(b"x", 2)[..]);
        assert!(namespace(b"x", 0).is_empty());
        let many = namespace(b"x", 257);
        assert_eq!(many[256], many[0], "index wraps like a Uint8Array store");
    }

    #[test]
    fn capability_vectors() {
        let hh: [u8; 64] = hex::decode(
            "abcdec75be273c747e7e1d08ef99b33cf13006a8b585ab25ffce3e0be1ca6eb7\
             be8424d1f3e6d6c9f7e20059d12a36aae23e9e9984c05bef8dbfdf6a4622258e",
        )
        .unwrap()
        .try_into()
        .unwrap();
        let key = Key::from_hex("37966fe2bbd8113f13fb54c571217097ab64c6140fb6694e8ef4d9f774ab935b")
            .unwrap();
        assert_eq!(
            hex::encode(capability(&hh, true, &key)),
            "14c58da14825e9b10f6a5bfc4e447331c29a2215557f458dac9b428b2bcf2a3d"
        );
        assert_eq!(
            hex::encode(capability(&hh, false, &key)),
            "f2e4d9d18931507291f3c0d88e066eb3c3702fde11eec13bd280d12966c7f270"
        );
    }
}
