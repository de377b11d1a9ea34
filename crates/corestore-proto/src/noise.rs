//! Noise XX, exactly as `noise-handshake` + `noise-curve-ed` run it (spec §7.2):
//! `Noise_XX_Ed25519_ChaChaPoly_BLAKE2b`, empty prologue, empty payloads.
//!
//! # Why a hand-written state machine
//!
//! `snow` (and every other Noise crate we know of) only offers X25519/X448 Diffie-Hellman. The
//! JavaScript stack does DH over **Ed25519** points: `clamp(SHA-512(seed)[..32]) · P` with
//! libsodium's `crypto_scalarmult_ed25519_noclamp`, so that a hyperswarm identity (an Ed25519
//! signing key) is also the Noise static key. That cannot be expressed through `snow`'s resolver
//! without re-implementing its DH trait on top of its internal types, and XX with three fixed
//! messages and no payloads is about 200 lines. The pieces come from maintained crates:
//! `curve25519-dalek` for point arithmetic (with libsodium's input and output checks re-stated
//! below), `ed25519-dalek` for seed-to-key derivation, `blake2b_simd` for BLAKE2b-512 and
//! RustCrypto `chacha20poly1305` for the AEAD. HMAC-BLAKE2b and HKDF are written out here because
//! they must use BLAKE2b's 128-byte block exactly like `noise-handshake/hmac.js`.

use blake2b_simd::Params;
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;

use crate::error::{ApiMisuse, ProtocolError};

/// `Noise_XX_Ed25519_ChaChaPoly_BLAKE2b`.
pub const PROTOCOL_NAME: &[u8] = b"Noise_XX_Ed25519_ChaChaPoly_BLAKE2b";
/// Length of the handshake hash (BLAKE2b-512).
pub const HASH_LEN: usize = 64;
const BLOCK_LEN: usize = 128;
const TAG_LEN: usize = 16;

/// An Ed25519 key pair used as a Noise static or ephemeral key.
#[derive(Clone)]
pub struct KeyPair {
    public: [u8; 32],
    scalar: Scalar,
}

impl KeyPair {
    /// The key pair libsodium's `crypto_sign_seed_keypair(seed)` produces.
    #[must_use]
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let sk = ed25519_dalek::SigningKey::from_bytes(seed);
        Self {
            public: sk.verifying_key().to_bytes(),
            scalar: sk.to_scalar(),
        }
    }

    /// The 32-byte compressed Edwards public key.
    #[must_use]
    pub fn public_key(&self) -> [u8; 32] {
        self.public
    }

    /// `clamp(SHA-512(seed)) · remote`, with libsodium's checks: the remote point must be a
    /// canonical encoding of a point in the prime-order subgroup (not of small order), and the
    /// result must not be the identity.
    pub(crate) fn dh(&self, remote: &[u8; 32]) -> Result<[u8; 32], ProtocolError> {
        let bad = ProtocolError::Handshake("invalid remote public key");
        let point = CompressedEdwardsY(*remote)
            .decompress()
            .ok_or_else(|| bad.clone())?;
        if point.compress().0 != *remote || point.is_small_order() || !point.is_torsion_free() {
            return Err(bad);
        }
        let shared = point * self.scalar;
        if shared.is_identity() {
            return Err(ProtocolError::Handshake("identity shared secret"));
        }
        Ok(shared.compress().0)
    }
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("public", &Hex(&self.public))
            .finish_non_exhaustive()
    }
}

/// Checks that `key` is a usable remote static key (used for pre-established sessions).
pub(crate) fn validate_public_key(key: &[u8; 32]) -> Result<(), ApiMisuse> {
    let p = CompressedEdwardsY(*key)
        .decompress()
        .ok_or(ApiMisuse::InvalidKey("not a point"))?;
    if p.compress().0 != *key || p.is_small_order() {
        return Err(ApiMisuse::InvalidKey("non-canonical or small-order point"));
    }
    Ok(())
}

pub(crate) struct Hex<'a>(pub(crate) &'a [u8]);

impl std::fmt::Debug for Hex<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

fn hash(parts: &[&[u8]]) -> [u8; HASH_LEN] {
    let mut st = Params::new().hash_length(HASH_LEN).to_state();
    for p in parts {
        st.update(p);
    }
    let mut out = [0u8; HASH_LEN];
    out.copy_from_slice(st.finalize().as_bytes());
    out
}

/// HMAC-BLAKE2b-512 with a 128-byte block, as `noise-handshake/hmac.js`.
fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; HASH_LEN] {
    let mut k = [0u8; BLOCK_LEN];
    if key.len() > BLOCK_LEN {
        k[..HASH_LEN].copy_from_slice(&hash(&[key]));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let ipad = k.map(|b| b ^ 0x36);
    let opad = k.map(|b| b ^ 0x5c);
    let mut inner_parts: Vec<&[u8]> = vec![&ipad];
    inner_parts.extend_from_slice(parts);
    let inner = hash(&inner_parts);
    hash(&[&opad, &inner])
}

/// HKDF with an empty info string, two outputs.
fn hkdf(ck: &[u8], ikm: &[u8]) -> ([u8; HASH_LEN], [u8; HASH_LEN]) {
    let prk = hmac(ck, &[ikm]);
    let t1 = hmac(&prk, &[&[1]]);
    let t2 = hmac(&prk, &[&t1, &[2]]);
    (t1, t2)
}

fn key32(t: &[u8; HASH_LEN]) -> [u8; 32] {
    let mut k = [0u8; 32];
    k.copy_from_slice(&t[..32]);
    k
}

/// The result of a completed handshake.
#[derive(Clone)]
pub struct HandshakeResult {
    /// Key for sending.
    pub tx: [u8; 32],
    /// Key for receiving.
    pub rx: [u8; 32],
    /// The final handshake hash `h`.
    pub handshake_hash: [u8; HASH_LEN],
    /// The remote's static Ed25519 public key.
    pub remote_public_key: [u8; 32],
}

impl std::fmt::Debug for HandshakeResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandshakeResult")
            .field("handshake_hash", &Hex(&self.handshake_hash))
            .field("remote_public_key", &Hex(&self.remote_public_key))
            .finish_non_exhaustive()
    }
}

struct Symmetric {
    h: [u8; HASH_LEN],
    ck: [u8; HASH_LEN],
    k: Option<[u8; 32]>,
    n: u64,
}

impl Symmetric {
    fn new() -> Self {
        let mut h = [0u8; HASH_LEN];
        h[..PROTOCOL_NAME.len()].copy_from_slice(PROTOCOL_NAME);
        let mut s = Self {
            h,
            ck: h,
            k: None,
            n: 0,
        };
        s.mix_hash(&[]); // empty prologue
        s
    }

    fn mix_hash(&mut self, data: &[u8]) {
        self.h = hash(&[&self.h, data]);
    }

    fn mix_key(&mut self, dh: &[u8; 32]) {
        let (ck, k) = hkdf(&self.ck, dh);
        self.ck = ck;
        self.k = Some(key32(&k));
        self.n = 0;
    }

    fn nonce(&self) -> Nonce {
        let mut n = [0u8; 12];
        n[4..].copy_from_slice(&self.n.to_le_bytes());
        n.into()
    }

    fn encrypt_and_hash(&mut self, plaintext: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(plaintext);
        if let Some(k) = self.k {
            let cipher = ChaCha20Poly1305::new(&k.into());
            let tag = cipher.encrypt_in_place_detached(&self.nonce(), &self.h, &mut out[start..]);
            // Encryption of a short in-memory buffer cannot fail.
            if let Ok(tag) = tag {
                out.extend_from_slice(&tag);
            }
            self.n += 1;
        }
        let ct = out[start..].to_vec();
        self.mix_hash(&ct);
    }

    fn decrypt_and_hash(&mut self, ciphertext: &[u8]) -> Result<Vec<u8>, ProtocolError> {
        let fail = ProtocolError::Handshake("authentication failed");
        let plain = match self.k {
            None => ciphertext.to_vec(),
            Some(k) => {
                let split = ciphertext
                    .len()
                    .checked_sub(TAG_LEN)
                    .ok_or_else(|| fail.clone())?;
                let (ct, tag) = ciphertext.split_at(split);
                let mut buf = ct.to_vec();
                ChaCha20Poly1305::new(&k.into())
                    .decrypt_in_place_detached(&self.nonce(), &self.h, &mut buf, tag.into())
                    .map_err(|_| fail)?;
                self.n += 1;
                buf
            }
        };
        self.mix_hash(ciphertext);
        Ok(plain)
    }

    fn split(&self, initiator: bool, remote: [u8; 32]) -> HandshakeResult {
        let (t1, t2) = hkdf(&self.ck, &[]);
        let (tx, rx) = if initiator {
            (key32(&t1), key32(&t2))
        } else {
            (key32(&t2), key32(&t1))
        };
        HandshakeResult {
            tx,
            rx,
            handshake_hash: self.h,
            remote_public_key: remote,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Initiator: write msg1. Responder: read msg1.
    One,
    /// Initiator: read msg2. Responder: write msg2.
    Two,
    /// Initiator: write msg3. Responder: read msg3.
    Three,
    Done,
}

/// The XX handshake for one side. Messages are produced and consumed without length prefixes.
pub struct NoiseXx {
    initiator: bool,
    sym: Symmetric,
    s: KeyPair,
    e: KeyPair,
    re: Option<[u8; 32]>,
    rs: Option<[u8; 32]>,
    step: Step,
}

impl std::fmt::Debug for NoiseXx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoiseXx")
            .field("initiator", &self.initiator)
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

impl NoiseXx {
    /// Starts a handshake with our static key pair and an ephemeral key pair derived from a
    /// caller-supplied random seed.
    #[must_use]
    pub fn new(initiator: bool, static_keypair: KeyPair, ephemeral_seed: &[u8; 32]) -> Self {
        Self {
            initiator,
            sym: Symmetric::new(),
            s: static_keypair,
            e: KeyPair::from_seed(ephemeral_seed),
            re: None,
            rs: None,
            step: Step::One,
        }
    }

    /// Whether this side writes the next message.
    #[must_use]
    pub fn is_my_turn(&self) -> bool {
        match self.step {
            Step::One | Step::Three => self.initiator,
            Step::Two => !self.initiator,
            Step::Done => false,
        }
    }

    /// Whether the handshake is complete.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.step == Step::Done
    }

    /// Writes the next handshake message, if it is our turn. After writing message 3 the
    /// initiator's result is returned alongside.
    pub fn write_message(
        &mut self,
        out: &mut Vec<u8>,
    ) -> Result<Option<HandshakeResult>, ProtocolError> {
        let missing = ProtocolError::Handshake("out of order");
        match (self.step, self.initiator) {
            (Step::One, true) => {
                let e = self.e.public;
                out.extend_from_slice(&e);
                self.sym.mix_hash(&e);
                self.sym.encrypt_and_hash(&[], out); // empty payload, no key yet
                self.step = Step::Two;
                Ok(None)
            }
            (Step::Two, false) => {
                let re = self.re.ok_or(missing)?;
                let e = self.e.public;
                out.extend_from_slice(&e);
                self.sym.mix_hash(&e);
                self.sym.mix_key(&self.e.dh(&re)?); // ee
                let s = self.s.public;
                self.sym.encrypt_and_hash(&s, out);
                self.sym.mix_key(&self.s.dh(&re)?); // es (responder: DH(s, re))
                self.sym.encrypt_and_hash(&[], out);
                self.step = Step::Three;
                Ok(None)
            }
            (Step::Three, true) => {
                let re = self.re.ok_or(missing)?;
                let s = self.s.public;
                self.sym.encrypt_and_hash(&s, out);
                self.sym.mix_key(&self.s.dh(&re)?); // se (initiator: DH(s, re))
                self.sym.encrypt_and_hash(&[], out);
                self.step = Step::Done;
                let rs = self
                    .rs
                    .ok_or(ProtocolError::Handshake("no remote static key"))?;
                Ok(Some(self.sym.split(true, rs)))
            }
            _ => Err(missing),
        }
    }

    /// Reads the next handshake message from the remote. After reading message 3 the
    /// responder's result is returned.
    pub fn read_message(&mut self, msg: &[u8]) -> Result<Option<HandshakeResult>, ProtocolError> {
        let bad_len = ProtocolError::Handshake("wrong message length");
        match (self.step, self.initiator) {
            (Step::One, false) => {
                if msg.len() < 32 {
                    return Err(bad_len);
                }
                let mut re = [0u8; 32];
                re.copy_from_slice(&msg[..32]);
                self.sym.mix_hash(&re);
                self.re = Some(re);
                self.sym.decrypt_and_hash(&msg[32..])?; // payload (empty from JS peers)
                self.step = Step::Two;
                Ok(None)
            }
            (Step::Two, true) => {
                if msg.len() < 96 {
                    return Err(bad_len);
                }
                let mut re = [0u8; 32];
                re.copy_from_slice(&msg[..32]);
                self.sym.mix_hash(&re);
                self.re = Some(re);
                self.sym.mix_key(&self.e.dh(&re)?); // ee
                let rs = self.sym.decrypt_and_hash(&msg[32..80])?;
                let rs: [u8; 32] = rs.as_slice().try_into().map_err(|_| bad_len)?;
                self.rs = Some(rs);
                self.sym.mix_key(&self.e.dh(&rs)?); // es (initiator: DH(e, rs))
                self.sym.decrypt_and_hash(&msg[80..])?;
                self.step = Step::Three;
                Ok(None)
            }
            (Step::Three, false) => {
                if msg.len() < 64 {
                    return Err(bad_len);
                }
                let rs = self.sym.decrypt_and_hash(&msg[..48])?;
                let rs: [u8; 32] = rs.as_slice().try_into().map_err(|_| bad_len)?;
                self.rs = Some(rs);
                self.sym.mix_key(&self.e.dh(&rs)?); // se (responder: DH(e, rs))
                self.sym.decrypt_and_hash(&msg[48..])?;
                self.step = Step::Done;
                Ok(Some(self.sym.split(false, rs)))
            }
            _ => Err(ProtocolError::Handshake("unexpected message")),
        }
    }
}

#[cfg(test)]
mod tests;
