//! What is signed, how signatures are packaged, and how a manifest checks them
//! (spec §4.4; hypercore 10 `lib/caps.js`, `lib/verifier.js`, `lib/multisig.js`).
//!
//! A signature covers a [`TreeHead`] (tree hash, length, fork). The bytes signed depend on the
//! core's mode:
//!
//! | mode | signable | bytes |
//! |---|---|---|
//! | compat (corestore 6 default) | `TREE \|\| hash \|\| u64le(length) \|\| u64le(fork)` | 80 |
//! | compat, hypercore `legacy: true` | `hash \|\| u64le(length) \|\| u64le(fork)` | 48 |
//! | manifest v0, per signer | `TREE \|\| signer.namespace \|\| hash \|\| length \|\| fork` | 112 |
//! | manifest v1, per signer | `TREE \|\| manifest hash \|\| hash \|\| length \|\| fork` | 112 |
//!
//! Compat cores and version-0 single-signer cores carry a raw 64-byte signature. Version-1
//! cores carry a [`MultiSignature`] container even with one signer (`01 00 <sig> 00 00`);
//! version-0 multi-signer cores a [`MultiSignatureV0`].
//!
//! [`Verifier`] reproduces `Verifier.verify` / `Verifier.sign` for compat, v0 and v1 cores,
//! including multi-signer quorums and v1 prologues. Signatures that rely on a *patch* (a signer
//! that signed a longer tree, allowed by `allow_patch`) need the Merkle tree to check and are
//! reported as [`Error::Unsupported`]; `hypercore-lite` can verify those itself.

use crate::caps::TREE;
use crate::compact::{self, Decode, Decoder, Encode, Encoder};
use crate::error::{DecodeError, Error};
use crate::hash::{Hash, Node};
use crate::key::Key;
use crate::manifest::{Manifest, Signer, is_compat};
use crate::sign::{KeyPair, Signature};

/// The state of a tree that a signature covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TreeHead {
    /// Tree hash of the full roots at `length` ([`crate::hash::tree`]).
    pub hash: Hash,
    /// Number of blocks.
    pub length: u64,
    /// Fork id.
    pub fork: u64,
}

impl TreeHead {
    /// The 80-byte compat signable `TREE || hash || u64le(length) || u64le(fork)`.
    #[must_use]
    pub fn signable_compat(&self) -> [u8; 80] {
        let mut out = [0u8; 80];
        out[..32].copy_from_slice(&TREE);
        out[32..].copy_from_slice(&self.signable_legacy());
        out
    }

    /// The 48-byte "ultra legacy" signable `hash || u64le(length) || u64le(fork)` (hypercore
    /// option `legacy: true`).
    #[must_use]
    pub fn signable_legacy(&self) -> [u8; 48] {
        let mut out = [0u8; 48];
        out[..32].copy_from_slice(&self.hash.0);
        out[32..40].copy_from_slice(&self.length.to_le_bytes());
        out[40..].copy_from_slice(&self.fork.to_le_bytes());
        out
    }

    /// The 112-byte manifest signable `TREE || context || hash || u64le(length) ||
    /// u64le(fork)`, where `context` is the signer's namespace (manifest v0) or the manifest
    /// hash (manifest v1).
    #[must_use]
    pub fn signable(&self, context: &[u8; 32]) -> [u8; 112] {
        let mut out = [0u8; 112];
        out[..32].copy_from_slice(&TREE);
        out[32..64].copy_from_slice(context);
        out[64..].copy_from_slice(&self.signable_legacy());
        out
    }
}

/// One signer's entry in a version-1 [`MultiSignature`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignerProof {
    /// Index into the manifest's signers.
    pub signer: u64,
    /// The signer's signature.
    pub signature: Signature,
    /// How many blocks beyond the verified length the signer signed (0: none).
    pub patch: u64,
}

/// The version-1 signature container (`multiSignature`): `array(signer proof) ||
/// array(compact node)`, the nodes being shared patch nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiSignature {
    /// Signer entries, in the order they are checked.
    pub proofs: Vec<SignerProof>,
    /// Tree nodes needed to apply patches.
    pub patch: Vec<Node>,
}

/// The patch of a version-0 signer entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchV0 {
    /// First patched block.
    pub start: u64,
    /// Number of patched blocks.
    pub length: u64,
    /// Indices into the container's shared nodes.
    pub nodes: Vec<u64>,
}

/// One signer's entry in a version-0 [`MultiSignatureV0`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerProofV0 {
    /// Index into the manifest's signers.
    pub signer: u64,
    /// The signer's signature.
    pub signature: Signature,
    /// The patch, if the signer signed a longer tree.
    pub patch: Option<PatchV0>,
}

/// The version-0 multi-signer container (`multiSignaturev0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiSignatureV0 {
    /// Signer entries, in the order they are checked.
    pub proofs: Vec<SignerProofV0>,
    /// Tree nodes shared by the patches.
    pub patch: Vec<Node>,
}

impl Encode for SignerProof {
    fn encoded_len(&self) -> usize {
        compact::uint_len(self.signer) + 64 + compact::uint_len(self.patch)
    }

    fn encode(&self, enc: &mut Encoder) {
        enc.uint(self.signer)
            .fixed(&self.signature.0)
            .uint(self.patch);
    }
}

impl Decode for SignerProof {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            signer: dec.uint()?,
            signature: Signature(dec.fixed()?),
            patch: dec.uint()?,
        })
    }
}

impl Encode for MultiSignature {
    fn encoded_len(&self) -> usize {
        array_len(&self.proofs) + array_len(&self.patch)
    }

    fn encode(&self, enc: &mut Encoder) {
        enc.encode_array(&self.proofs).encode_array(&self.patch);
    }
}

impl Decode for MultiSignature {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            proofs: dec.decode_array()?,
            patch: dec.decode_array()?,
        })
    }
}

impl Encode for SignerProofV0 {
    fn encoded_len(&self) -> usize {
        1 + compact::uint_len(self.signer)
            + 64
            + self.patch.as_ref().map_or(0, |p| {
                compact::uint_len(p.start)
                    + compact::uint_len(p.length)
                    + compact::uint_len(p.nodes.len() as u64)
                    + p.nodes.iter().map(|&n| compact::uint_len(n)).sum::<usize>()
            })
    }

    fn encode(&self, enc: &mut Encoder) {
        enc.uint(u64::from(self.patch.is_some()))
            .uint(self.signer)
            .fixed(&self.signature.0);
        if let Some(p) = &self.patch {
            enc.uint(p.start).uint(p.length).array(&p.nodes, |e, &n| {
                e.uint(n);
            });
        }
    }
}

impl Decode for SignerProofV0 {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let flags = dec.uint()?;
        let signer = dec.uint()?;
        let signature = Signature(dec.fixed()?);
        let patch = if flags & 1 == 0 {
            None
        } else {
            Some(PatchV0 {
                start: dec.uint()?,
                length: dec.uint()?,
                nodes: dec.array(Decoder::uint)?,
            })
        };
        Ok(Self {
            signer,
            signature,
            patch,
        })
    }
}

impl Encode for MultiSignatureV0 {
    fn encoded_len(&self) -> usize {
        array_len(&self.proofs) + array_len(&self.patch)
    }

    fn encode(&self, enc: &mut Encoder) {
        enc.encode_array(&self.proofs).encode_array(&self.patch);
    }
}

impl Decode for MultiSignatureV0 {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            proofs: dec.decode_array()?,
            patch: dec.decode_array()?,
        })
    }
}

fn array_len<T: Encode>(items: &[T]) -> usize {
    compact::uint_len(items.len() as u64) + items.iter().map(Encode::encoded_len).sum::<usize>()
}

/// Checks and makes signatures for one core: its key and manifest (hypercore `Verifier`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    key: Key,
    manifest: Manifest,
    compat: bool,
    legacy: bool,
}

impl Verifier {
    /// The verifier of the core `key` with `manifest`. The core is compat if
    /// [`is_compat`]`(key, manifest)`; otherwise the manifest's hash must be the key.
    ///
    /// # Errors
    ///
    /// [`Error::ManifestKeyMismatch`] for a non-compat manifest whose hash is not `key`.
    pub fn new(key: Key, manifest: Manifest) -> Result<Self, Error> {
        let compat = check_key(&key, &manifest)?;
        Ok(Self {
            key,
            manifest,
            compat,
            legacy: false,
        })
    }

    /// The verifier of a compat core whose key is `public_key` (with the default signer
    /// manifest, as hypercore assumes when a compat core has no stored manifest).
    #[must_use]
    pub fn compat(public_key: crate::sign::PublicKey) -> Self {
        Self {
            key: Key::from(public_key),
            manifest: Manifest::default_signer(public_key),
            compat: true,
            legacy: false,
        }
    }

    /// Uses the 48-byte "ultra legacy" signable for compat cores (hypercore `legacy: true`).
    #[must_use]
    pub const fn with_legacy(mut self, legacy: bool) -> Self {
        self.legacy = legacy;
        self
    }

    /// Whether the core is in compat mode (key = the single signer's public key).
    #[must_use]
    pub const fn is_compat(&self) -> bool {
        self.compat
    }

    /// The core key.
    #[must_use]
    pub const fn key(&self) -> &Key {
        &self.key
    }

    /// The manifest.
    #[must_use]
    pub const fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Checks the signature bytes of an upgrade to `head` (raw or container, see the module
    /// docs). A version-1 upgrade within the prologue needs no signature: it is valid iff it
    /// reaches exactly the prologue with the prologue's hash.
    ///
    /// # Errors
    ///
    /// [`Error::BadSignature`] if the signature (or quorum, or prologue) does not hold,
    /// [`Error::InvalidLength`] for a raw signature that is not 64 bytes,
    /// [`Error::Decode`] for a malformed container, [`Error::Unsupported`] for a patched
    /// signature under `allow_patch`.
    pub fn verify(&self, head: &TreeHead, signature: &[u8]) -> Result<(), Error> {
        check(
            &self.key,
            &self.manifest,
            self.compat,
            self.legacy,
            head,
            signature,
        )
    }

    /// Signs an upgrade to `head` with `key_pair`, producing the bytes [`Verifier::verify`]
    /// expects: a raw signature for compat and version-0 cores and for multi-signer cores
    /// (whose partial signatures the caller assembles into a container), a one-entry
    /// [`MultiSignature`] for single-signer version-1 cores.
    ///
    /// # Errors
    ///
    /// [`Error::NotASigner`] if `key_pair` is not one of the manifest's signers.
    pub fn sign(&self, head: &TreeHead, key_pair: &KeyPair) -> Result<Vec<u8>, Error> {
        sign(
            &self.key,
            &self.manifest,
            self.compat,
            self.legacy,
            head,
            key_pair,
        )
    }
}

impl Manifest {
    /// Checks an upgrade signature for the core `key` with this manifest (non-legacy); see
    /// [`Verifier::verify`].
    ///
    /// # Errors
    ///
    /// As [`Verifier::verify`], plus [`Error::ManifestKeyMismatch`] as [`Verifier::new`].
    pub fn verify(&self, key: &Key, head: &TreeHead, signature: &[u8]) -> Result<(), Error> {
        let compat = check_key(key, self)?;
        check(key, self, compat, false, head, signature)
    }

    /// Signs an upgrade for the core `key` with this manifest (non-legacy); see
    /// [`Verifier::sign`].
    ///
    /// # Errors
    ///
    /// As [`Verifier::sign`], plus [`Error::ManifestKeyMismatch`] as [`Verifier::new`].
    pub fn sign(&self, key: &Key, head: &TreeHead, key_pair: &KeyPair) -> Result<Vec<u8>, Error> {
        let compat = check_key(key, self)?;
        sign(key, self, compat, false, head, key_pair)
    }
}

/// Returns whether the core is compat, or an error if a non-compat manifest is not the key's.
fn check_key(key: &Key, manifest: &Manifest) -> Result<bool, Error> {
    if is_compat(key, manifest) {
        Ok(true)
    } else if manifest.hash().0 == key.0 {
        Ok(false)
    } else {
        Err(Error::ManifestKeyMismatch)
    }
}

/// The signable of one signer, as `Signer.verify`/`CompatSigner.verify` build it.
fn signable_for(
    key: &Key,
    version: u64,
    signer: &Signer,
    compat: bool,
    legacy: bool,
    head: &TreeHead,
) -> Vec<u8> {
    if compat {
        if legacy {
            head.signable_legacy().to_vec()
        } else {
            head.signable_compat().to_vec()
        }
    } else if version == 0 {
        head.signable(&signer.namespace).to_vec()
    } else {
        head.signable(key.as_bytes()).to_vec()
    }
}

fn check(
    key: &Key,
    manifest: &Manifest,
    compat: bool,
    legacy: bool,
    head: &TreeHead,
    signature: &[u8],
) -> Result<(), Error> {
    let version = if compat { 0 } else { manifest.version.number() };
    let allow_patch = !compat && manifest.allow_patch;
    let quorum = if compat { 1 } else { manifest.quorum };

    if version != 1 {
        if let ([only], true) = (manifest.signers.as_slice(), compat || !allow_patch) {
            let msg = signable_for(key, version, only, compat, legacy, head);
            return only.public_key.verify(&msg, signature);
        }
        let v0 = MultiSignatureV0::from_bytes(signature)?;
        let proofs = v0
            .proofs
            .iter()
            .map(|p| (p.signer, &p.signature, p.patch.is_some()));
        return check_multi(key, manifest, version, allow_patch, quorum, head, proofs);
    }

    if let Some(p) = &manifest.prologue
        && head.length <= p.length
    {
        return if head.length == p.length && head.hash == p.hash {
            Ok(())
        } else {
            Err(Error::BadSignature)
        };
    }
    let v1 = MultiSignature::from_bytes(signature)?;
    let proofs = v1
        .proofs
        .iter()
        .map(|p| (p.signer, &p.signature, p.patch != 0));
    check_multi(key, manifest, version, allow_patch, quorum, head, proofs)
}

/// `_verifyMulti`: the first `quorum` entries must be distinct signers with valid signatures.
fn check_multi<'a>(
    key: &Key,
    manifest: &Manifest,
    version: u64,
    allow_patch: bool,
    quorum: u64,
    head: &TreeHead,
    proofs: impl ExactSizeIterator<Item = (u64, &'a Signature, bool)>,
) -> Result<(), Error> {
    let quorum = usize::try_from(quorum).map_err(|_| Error::BadSignature)?;
    if quorum == 0 || proofs.len() < quorum {
        return Err(Error::BadSignature);
    }
    let mut tried = vec![false; manifest.signers.len()];
    for (signer, signature, patched) in proofs.take(quorum) {
        if patched && allow_patch {
            return Err(Error::Unsupported("verifying patched multi-signatures"));
        }
        let index = usize::try_from(signer).map_err(|_| Error::BadSignature)?;
        let (Some(s), Some(seen)) = (manifest.signers.get(index), tried.get_mut(index)) else {
            return Err(Error::BadSignature);
        };
        if *seen {
            return Err(Error::BadSignature);
        }
        *seen = true;
        let msg = signable_for(key, version, s, false, false, head);
        s.public_key.verify(&msg, &signature.0)?;
    }
    Ok(())
}

fn sign(
    key: &Key,
    manifest: &Manifest,
    compat: bool,
    legacy: bool,
    head: &TreeHead,
    key_pair: &KeyPair,
) -> Result<Vec<u8>, Error> {
    let version = if compat { 0 } else { manifest.version.number() };
    let public_key = key_pair.public_key();
    let signer = manifest
        .signers
        .iter()
        .find(|s| s.public_key == public_key)
        .ok_or(Error::NotASigner)?;
    let signature = key_pair.sign(&signable_for(key, version, signer, compat, legacy, head));
    if manifest.signers.len() != 1 || version == 0 {
        return Ok(signature.0.to_vec());
    }
    Ok(MultiSignature {
        proofs: vec![SignerProof {
            signer: 0,
            signature,
            patch: 0,
        }],
        patch: Vec::new(),
    }
    .to_bytes())
}

#[cfg(test)]
mod tests;
