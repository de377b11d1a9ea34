//! libsodium `crypto_secretstream_xchacha20poly1305` push/pull and the stream-id/header exchange
//! (spec §7.3–§7.4).
//!
//! # The construction, and why it is written here
//!
//! The primitives are RustCrypto's maintained `chacha20` (HChaCha20 and IETF ChaCha20) and
//! `poly1305` crates; this module only arranges them the way libsodium's secretstream does:
//!
//! * state: a 32-byte key `k = HChaCha20(key, header[0..16])`, a 32-bit counter (starting at 1)
//!   and an 8-byte `inonce = header[16..24]`; the ChaCha20 nonce is `le32(counter) || inonce`;
//! * a message `m` with tag `t` becomes `c0 || c || mac`: keystream block 0 gives the Poly1305
//!   key, block 1 (with `t` in its first byte) encrypts the tag as `c0`, blocks 2… encrypt `m`;
//! * the MAC covers `block1 || c || zeros(len(m) mod 16) || le64(0) || le64(64 + len(m))`, the
//!   (unaligned) padding libsodium has always used;
//! * afterwards `inonce ^= mac[0..8]` and the counter steps; a REKEY tag or a counter that wraps
//!   re-derives `k || inonce` by encrypting them with the current state.
//!
//! RustCrypto's `crypto_secretstream` implements the same thing, but it feeds Poly1305 one
//! 16-byte block at a time (less than half the speed of the crate's parallel path: the MAC was
//! half of all decryption time on large frames) and shifts every message by one byte to make room
//! for the tag. Here the MAC runs over whole slices, messages are encrypted where they already
//! are (the caller leaves a byte for the tag) and decrypted in place without moving:
//! [`Decryptor::decrypt`] returns where the plaintext lies in the frame. The §11 vector and a
//! differential test against `crypto_secretstream` (a dev-dependency) check the construction.

use std::ops::Range;

use blake2b_simd::Params;
use chacha20::ChaCha20;
use chacha20::cipher::consts::U10;
use chacha20::cipher::{KeyIvInit, StreamCipher};
use poly1305::Poly1305;
use poly1305::universal_hash::{KeyInit, UniversalHash};
use subtle::ConstantTimeEq;

use crate::error::ProtocolError;

pub use corestore_keys::caps::{NS_INITIATOR, NS_RESPONDER};

/// Bytes a secretstream message adds to its plaintext (tag byte + MAC).
pub const ABYTES: usize = 17;
/// The length of a secretstream header.
pub const HEADER_LEN: usize = 24;
/// The length of the stream-id/header frame body.
pub const ID_HEADER_LEN: usize = 32 + HEADER_LEN;
/// The length of the Poly1305 MAC that ends every message.
pub const MAC_LEN: usize = 16;
/// The tag of an ordinary message (the only tag we send).
const TAG_MESSAGE: u8 = 0;
/// The tag bit that asks the receiver to rekey after this message.
const TAG_REKEY: u8 = 2;

/// `H32k(key = handshake_hash, NS_INITIATOR | NS_RESPONDER)`: the id a side announces.
#[must_use]
pub fn stream_id(handshake_hash: &[u8; 64], initiator: bool) -> [u8; 32] {
    let ns = if initiator {
        &NS_INITIATOR
    } else {
        &NS_RESPONDER
    };
    let mut out = [0u8; 32];
    out.copy_from_slice(
        Params::new()
            .hash_length(32)
            .key(handshake_hash)
            .hash(ns)
            .as_bytes(),
    );
    out
}

/// The state both halves share: subkey, counter and inner nonce.
struct State {
    key: [u8; 32],
    counter: u32,
    inonce: [u8; 8],
}

impl State {
    fn new(key: &[u8; 32], header: &[u8; HEADER_LEN]) -> Self {
        let mut input = [0u8; 16];
        input.copy_from_slice(&header[..16]);
        let sub = chacha20::hchacha::<U10>(key.into(), &input.into());
        let mut inonce = [0u8; 8];
        inonce.copy_from_slice(&header[16..]);
        Self {
            key: sub.into(),
            counter: 1,
            inonce,
        }
    }

    /// ChaCha20 keyed with the current key and nonce, at block 0.
    fn cipher(&self) -> ChaCha20 {
        let mut nonce = [0u8; 12];
        nonce[..4].copy_from_slice(&self.counter.to_le_bytes());
        nonce[4..].copy_from_slice(&self.inonce);
        ChaCha20::new(&self.key.into(), &nonce.into())
    }

    /// The Poly1305 key (block 0) and the encrypted tag block (block 1, whose first byte is
    /// `tag_byte` XOR the keystream); the cipher is left at block 2.
    fn begin(cipher: &mut ChaCha20, tag_byte: u8) -> (Poly1305, [u8; 64]) {
        let mut block0 = [0u8; 64];
        cipher.apply_keystream(&mut block0);
        let mut mac_key = [0u8; 32];
        mac_key.copy_from_slice(&block0[..32]);
        let mut block1 = [0u8; 64];
        block1[0] = tag_byte;
        cipher.apply_keystream(&mut block1);
        (Poly1305::new(&mac_key.into()), block1)
    }

    /// The MAC over `block1 || c || zeros(len(c) mod 16) || le64(0) || le64(64 + len(c))`.
    fn mac(mut poly: Poly1305, block1: &[u8; 64], c: &[u8]) -> [u8; MAC_LEN] {
        poly.update_padded(block1);
        let whole = c.len() - c.len() % 16;
        // A multiple of 16 bytes: `update_padded` adds no padding here.
        poly.update_padded(&c[..whole]);
        let rest = &c[whole..];
        let mut last = [0u8; 2 * 15 + 16];
        last[..rest.len()].copy_from_slice(rest);
        let sizes = 2 * rest.len();
        last[sizes + 8..sizes + 16].copy_from_slice(&(64 + c.len() as u64).to_le_bytes());
        poly.compute_unpadded(&last[..sizes + 16]).into()
    }

    /// The state update after a message with `tag` and `mac`.
    fn advance(&mut self, tag: u8, mac: &[u8; MAC_LEN]) {
        for (n, m) in self.inonce.iter_mut().zip(mac) {
            *n ^= m;
        }
        self.counter = self.counter.wrapping_add(1);
        if tag & TAG_REKEY != 0 || self.counter == 0 {
            let mut next = [0u8; 40];
            next[..32].copy_from_slice(&self.key);
            next[32..].copy_from_slice(&self.inonce);
            self.cipher().apply_keystream(&mut next);
            self.key.copy_from_slice(&next[..32]);
            self.inonce.copy_from_slice(&next[32..]);
            self.counter = 1;
        }
    }
}

/// The sending half: encrypts messages with `tag = MESSAGE`.
pub struct Encryptor {
    state: State,
}

impl std::fmt::Debug for Encryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encryptor").finish_non_exhaustive()
    }
}

impl Encryptor {
    /// A push state for `tx` whose header is `header`; returns the header to announce.
    #[must_use]
    pub fn new(tx: &[u8; 32], header: [u8; HEADER_LEN]) -> (Self, [u8; HEADER_LEN]) {
        (
            Self {
                state: State::new(tx, &header),
            },
            header,
        )
    }

    /// Appends `tag || ciphertext || mac` of `msg` to `out` (one copy of `msg`, encrypted in
    /// place there).
    pub fn encrypt_to(&mut self, msg: &[u8], out: &mut Vec<u8>) {
        out.reserve(msg.len() + ABYTES);
        let start = out.len();
        out.push(0);
        out.extend_from_slice(msg);
        let mac = self.seal(&mut out[start..]);
        out.extend_from_slice(&mac);
    }

    /// Encrypts `buf` = `placeholder || message` in place (the first byte becomes the encrypted
    /// tag) and returns the MAC that must follow it on the wire.
    pub fn seal(&mut self, buf: &mut [u8]) -> [u8; MAC_LEN] {
        let mut cipher = self.state.cipher();
        let (poly, block1) = State::begin(&mut cipher, TAG_MESSAGE);
        let Some((tag, body)) = buf.split_first_mut() else {
            return [0; MAC_LEN];
        };
        *tag = block1[0];
        cipher.apply_keystream(body);
        let mac = State::mac(poly, &block1, body);
        self.state.advance(TAG_MESSAGE, &mac);
        mac
    }
}

/// The receiving half.
pub struct Decryptor {
    state: State,
}

impl std::fmt::Debug for Decryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decryptor").finish_non_exhaustive()
    }
}

impl Decryptor {
    /// A pull state for `rx` and the remote's header.
    #[must_use]
    pub fn new(rx: &[u8; 32], header: [u8; HEADER_LEN]) -> Self {
        Self {
            state: State::new(rx, &header),
        }
    }

    /// Authenticates and decrypts one frame body (`tag || ciphertext || mac`) in place and
    /// returns where the plaintext lies in it (`1..len - 16`); nothing moves.
    ///
    /// The MAC is checked before anything is decrypted; on failure (or a body shorter than
    /// [`ABYTES`]) the state is unchanged and the body is left as it was. The tag is not
    /// inspected beyond its REKEY bit, as in libsodium.
    pub fn decrypt(&mut self, buf: &mut [u8]) -> Result<Range<usize>, ProtocolError> {
        let len = buf.len();
        if len < ABYTES {
            return Err(ProtocolError::Decryption);
        }
        let (sealed, mac) = buf.split_at_mut(len - MAC_LEN);
        let Some((tag, body)) = sealed.split_first_mut() else {
            return Err(ProtocolError::Decryption);
        };
        let mut cipher = self.state.cipher();
        let (poly, mut block1) = State::begin(&mut cipher, *tag);
        // `begin` XORed the received tag byte with the keystream: that is the plain tag; the
        // MAC covers the block with the tag byte as it was received.
        let plain_tag = block1[0];
        block1[0] = *tag;
        let expected = State::mac(poly, &block1, body);
        if !constant_time_eq(&expected, mac) {
            return Err(ProtocolError::Decryption);
        }
        cipher.apply_keystream(body);
        *tag = plain_tag;
        self.state.advance(plain_tag, &expected);
        Ok(1..len - MAC_LEN)
    }
}

/// Compares two MACs in constant time.
fn constant_time_eq(a: &[u8; MAC_LEN], b: &[u8]) -> bool {
    bool::from(a.as_slice().ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    #[test]
    fn namespaces_match_derivation() {
        let base = Params::new()
            .hash_length(32)
            .hash(b"hyperswarm/secret-stream");
        for (i, ns) in [NS_INITIATOR, NS_RESPONDER].iter().enumerate() {
            let mut input = base.as_bytes().to_vec();
            input.push(i as u8);
            let got = Params::new().hash_length(32).hash(&input);
            assert_eq!(got.as_bytes(), ns);
        }
    }

    /// `encrypt_to` into an empty buffer.
    fn seal(e: &mut Encryptor, msg: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        e.encrypt_to(msg, &mut out);
        out
    }

    /// `decrypt`, returning the plaintext.
    fn open(d: &mut Decryptor, body: &[u8]) -> Result<Vec<u8>, ProtocolError> {
        let mut body = body.to_vec();
        let range = d.decrypt(&mut body)?;
        Ok(body[range].to_vec())
    }

    #[test]
    fn spec_decryption_vector() {
        let key: [u8; 32] = h("36e72ba85cd0a2b5e7c9f44704a1757d7230c30dd39736e46f2190fcd1300c13")
            .try_into()
            .unwrap();
        let header: [u8; 24] = h("c6c1cfda20ffc8d56ac06595801a78b280a3dd965f0a20d2")
            .try_into()
            .unwrap();
        let mut d = Decryptor::new(&key, header);
        let f1 =
            h("240000 3ba8464190a16eebd89f9989b355f99f3513d97e1f0d0084d49f328f00ca5dfd30ab9695");
        assert_eq!(
            open(&mut d, &f1[3..]).unwrap(),
            h("0001010f6879706572636f72652f616c706861")
        );
        let f2 = h("110000 37104c5a34e55e03252e975563e6256c9d");
        assert!(open(&mut d, &f2[3..]).unwrap().is_empty());

        // Our push side with the same header reproduces the same ciphertexts.
        let (mut e, hdr) = Encryptor::new(&key, header);
        assert_eq!(hdr, header);
        assert_eq!(
            seal(&mut e, &h("0001010f6879706572636f72652f616c706861")),
            f1[3..]
        );
        assert_eq!(seal(&mut e, &[]), f2[3..]);
    }

    #[test]
    fn tampered_or_short_frames_fail_and_change_nothing() {
        let (mut e, hdr) = Encryptor::new(&[7; 32], [1; 24]);
        let m = seal(&mut e, b"hello");
        let mut d = Decryptor::new(&[7; 32], hdr);
        for i in 0..m.len() {
            let mut bad = m.clone();
            bad[i] ^= 1;
            assert_eq!(
                open(&mut d, &bad),
                Err(ProtocolError::Decryption),
                "byte {i}"
            );
        }
        assert_eq!(open(&mut d, &[0; 16]), Err(ProtocolError::Decryption));
        // The failures left the state alone: the genuine message still decrypts.
        assert_eq!(open(&mut d, &m).unwrap(), b"hello");
        // Encrypting into the end of a buffer gives the same bytes.
        let (mut e2, _) = Encryptor::new(&[7; 32], [1; 24]);
        let mut out = b"prefix".to_vec();
        e2.encrypt_to(b"hello", &mut out);
        assert_eq!(&out[..6], b"prefix");
        assert_eq!(out[6..], m);
    }

    #[test]
    fn counter_wrap_rekeys() {
        let mut s = State::new(&[3; 32], &[4; 24]);
        s.counter = u32::MAX;
        let (key, inonce) = (s.key, s.inonce);
        s.advance(TAG_MESSAGE, &[0; MAC_LEN]);
        assert_eq!(s.counter, 1);
        assert_ne!(s.key, key);
        assert_ne!(s.inonce, inonce);
    }

    mod against_crypto_secretstream {
        use super::*;
        use crypto_secretstream::{Header, Key, PullStream, PushStream, Tag};
        use proptest::prelude::*;

        /// An RNG that yields the given header bytes.
        struct Fixed([u8; HEADER_LEN], usize);
        impl rand_core::RngCore for Fixed {
            fn next_u32(&mut self) -> u32 {
                rand_core::impls::next_u32_via_fill(self)
            }
            fn next_u64(&mut self) -> u64 {
                rand_core::impls::next_u64_via_fill(self)
            }
            fn fill_bytes(&mut self, dest: &mut [u8]) {
                for d in dest {
                    *d = self.0.get(self.1).copied().unwrap_or(0);
                    self.1 += 1;
                }
            }
            fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
                self.fill_bytes(dest);
                Ok(())
            }
        }
        impl rand_core::CryptoRng for Fixed {}

        proptest! {
            #[test]
            fn same_bytes_both_ways(
                key in any::<[u8; 32]>(),
                header in any::<[u8; 24]>(),
                messages in proptest::collection::vec(
                    (proptest::collection::vec(any::<u8>(), 0..300), any::<bool>()), 1..12),
            ) {
                let (hdr, mut push) = PushStream::init(Fixed(header, 0), &Key::from(key));
                prop_assert_eq!(hdr.as_ref(), &header[..]);
                let (_, mut push_plain) = PushStream::init(Fixed(header, 0), &Key::from(key));
                let mut pull = PullStream::init(Header::from(header), &Key::from(key));
                let (mut ours_push, _) = Encryptor::new(&key, header);
                let mut ours_pull = Decryptor::new(&key, header);
                for (msg, rekey) in &messages {
                    // Theirs, sometimes with a REKEY tag (which only a remote would send us),
                    // decrypts with ours.
                    let mut theirs = msg.clone();
                    let tag = if *rekey { Tag::Rekey } else { Tag::Message };
                    push.push(&mut theirs, &[], tag).unwrap();
                    prop_assert_eq!(open(&mut ours_pull, &theirs).unwrap(), msg.clone());
                    // Ours is byte for byte theirs with the MESSAGE tag, and decrypts with theirs.
                    let mine = seal(&mut ours_push, msg);
                    let mut plain = msg.clone();
                    push_plain.push(&mut plain, &[], Tag::Message).unwrap();
                    prop_assert_eq!(&mine, &plain);
                    let mut back = mine;
                    prop_assert_eq!(pull.pull(&mut back, &[]).unwrap(), Tag::Message);
                    prop_assert_eq!(&back, msg);
                }
            }
        }
    }

    #[test]
    fn stream_id_vector() {
        let hh: [u8; 64] = h(
            "abcdec75be273c747e7e1d08ef99b33cf13006a8b585ab25ffce3e0be1ca6eb7\
                              be8424d1f3e6d6c9f7e20059d12a36aae23e9e9984c05bef8dbfdf6a4622258e",
        )
        .try_into()
        .unwrap();
        assert_eq!(
            hex::encode(stream_id(&hh, true)),
            "9d50ee9952168f41ce17cecff61e517855ac6615969182c7719d436d728709d1"
        );
    }
}
