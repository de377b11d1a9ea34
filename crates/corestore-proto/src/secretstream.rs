//! libsodium `crypto_secretstream_xchacha20poly1305` push/pull and the stream-id/header exchange
//! (spec §7.3–§7.4).
//!
//! # Crate choice
//!
//! The cipher is RustCrypto's `crypto_secretstream` (nacl-compat repository): a maintained,
//! pure-Rust port of libsodium's construction (HChaCha20 subkey from the header's first 16
//! bytes, a 4-byte counter plus 8 header bytes as the ChaCha20 nonce, the encrypted tag byte, the
//! Poly1305 padding layout and the nonce/counter update after every message), and it passes the
//! §11 decryption vector below. Its only entropy input is the header, drawn from an `RngCore`;
//! we hand it the caller-supplied 24 header bytes through `HeaderBytes`, so the crate stays
//! deterministic. Keeping it on `chacha20 0.9`/`poly1305 0.8` is why `chacha20poly1305` (Noise)
//! is pinned to 0.10: one version of each primitive in the tree.

use blake2b_simd::Params;
use crypto_secretstream::{Header, Key, PullStream, PushStream, Tag};
use rand_core::{CryptoRng, RngCore};

use crate::error::ProtocolError;

pub use corestore_keys::caps::{NS_INITIATOR, NS_RESPONDER};

/// Bytes a secretstream message adds to its plaintext (tag byte + MAC).
pub const ABYTES: usize = 17;
/// The length of a secretstream header.
pub const HEADER_LEN: usize = 24;
/// The length of the stream-id/header frame body.
pub const ID_HEADER_LEN: usize = 32 + HEADER_LEN;

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

/// An `RngCore` that yields exactly the caller-supplied header bytes (then zeros).
pub(crate) struct HeaderBytes {
    bytes: [u8; HEADER_LEN],
    pos: usize,
}

impl HeaderBytes {
    pub(crate) fn new(bytes: [u8; HEADER_LEN]) -> Self {
        Self { bytes, pos: 0 }
    }
}

impl RngCore for HeaderBytes {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for d in dest {
            *d = self.bytes.get(self.pos).copied().unwrap_or(0);
            self.pos += 1;
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for HeaderBytes {}

/// The sending half: encrypts messages with `tag = MESSAGE`.
pub struct Encryptor {
    push: PushStream,
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
        let (hdr, push) = PushStream::init(HeaderBytes::new(header), &Key::from(*tx));
        (Self { push }, *hdr.as_ref())
    }

    /// Encrypts `msg` in place: `buf` becomes `tag || ciphertext || mac`.
    pub fn encrypt(&mut self, buf: &mut Vec<u8>) {
        buf.reserve(ABYTES);
        // Pushing into a Vec cannot fail (the buffer grows).
        let _ = self.push.push(buf, &[], Tag::Message);
    }

    /// Appends `tag || ciphertext || mac` of `msg` to `out` (one copy of `msg`, encrypted in
    /// place there).
    pub fn encrypt_to(&mut self, msg: &[u8], out: &mut Vec<u8>) {
        out.reserve(msg.len() + ABYTES);
        let start = out.len();
        out.extend_from_slice(msg);
        // Pushing into a Vec cannot fail (the buffer grows).
        let _ = self
            .push
            .push(&mut Tail { buf: out, start }, &[], Tag::Message);
    }
}

/// The end of a buffer from `start` on, as the buffer a message is encrypted in.
struct Tail<'a> {
    buf: &'a mut Vec<u8>,
    start: usize,
}

impl AsRef<[u8]> for Tail<'_> {
    fn as_ref(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or_default()
    }
}

impl AsMut<[u8]> for Tail<'_> {
    fn as_mut(&mut self) -> &mut [u8] {
        self.buf.get_mut(self.start..).unwrap_or_default()
    }
}

impl crypto_secretstream::aead::Buffer for Tail<'_> {
    fn extend_from_slice(&mut self, other: &[u8]) -> crypto_secretstream::aead::Result<()> {
        self.buf.extend_from_slice(other);
        Ok(())
    }

    fn truncate(&mut self, len: usize) {
        self.buf.truncate(self.start.saturating_add(len));
    }
}

/// The receiving half.
pub struct Decryptor {
    pull: PullStream,
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
            pull: PullStream::init(Header::from(header), &Key::from(*rx)),
        }
    }

    /// Decrypts one frame body in place.
    pub fn decrypt(&mut self, buf: &mut Vec<u8>) -> Result<(), ProtocolError> {
        if buf.len() < ABYTES {
            return Err(ProtocolError::Decryption);
        }
        self.pull
            .pull(buf, &[])
            .map(|_| ())
            .map_err(|_| ProtocolError::Decryption)
    }
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
        let mut body = f1[3..].to_vec();
        d.decrypt(&mut body).unwrap();
        assert_eq!(body, h("0001010f6879706572636f72652f616c706861"));
        let f2 = h("110000 37104c5a34e55e03252e975563e6256c9d");
        let mut body = f2[3..].to_vec();
        d.decrypt(&mut body).unwrap();
        assert!(body.is_empty());

        // Our push side with the same header reproduces the same ciphertexts.
        let (mut e, hdr) = Encryptor::new(&key, header);
        assert_eq!(hdr, header);
        let mut m = h("0001010f6879706572636f72652f616c706861");
        e.encrypt(&mut m);
        assert_eq!(m, f1[3..]);
        let mut m = Vec::new();
        e.encrypt(&mut m);
        assert_eq!(m, f2[3..]);
    }

    #[test]
    fn tampered_or_short_frames_fail() {
        let (mut e, hdr) = Encryptor::new(&[7; 32], [1; 24]);
        let mut m = b"hello".to_vec();
        e.encrypt(&mut m);
        let mut bad = m.clone();
        bad[3] ^= 1;
        assert_eq!(
            Decryptor::new(&[7; 32], hdr).decrypt(&mut bad),
            Err(ProtocolError::Decryption)
        );
        // Encrypting into the end of a buffer gives the same bytes.
        let (mut e2, _) = Encryptor::new(&[7; 32], [1; 24]);
        let mut out = b"prefix".to_vec();
        e2.encrypt_to(b"hello", &mut out);
        assert_eq!(&out[..6], b"prefix");
        assert_eq!(out[6..], m);
        let mut short = vec![0; 16];
        assert_eq!(
            Decryptor::new(&[7; 32], hdr).decrypt(&mut short),
            Err(ProtocolError::Decryption)
        );
        let mut d = Decryptor::new(&[7; 32], hdr);
        d.decrypt(&mut m).unwrap();
        assert_eq!(m, b"hello");
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
