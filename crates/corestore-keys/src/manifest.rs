//! Hypercore manifests: who may sign a core, and how a core's key follows from that
//! (spec §4.3, §4.5; hypercore 10.32+ `lib/messages.js` `manifest`, `lib/verifier.js`).
//!
//! Version 1 encoding:
//!
//! ```text
//! uint version (1) || uint flags (bit0 allowPatch, bit1 prologue) || uint hash (0 = blake2b)
//! || uint quorum || array(signer) || [fixed32 prologue hash || uint prologue length]
//! signer = uint signature type (0 = ed25519) || fixed32 namespace || fixed32 public key
//! ```
//!
//! Version 0 encoding: `uint 0 || uint hash (0) || uint type`, then type 0 (static core:
//! `fixed32` prologue hash, length 0, no signers), type 1 (one signer, quorum 1, no patches)
//! or type 2 (`uint flags || uint quorum || array(signer)`).
//!
//! The encoder mirrors JavaScript exactly, including where version 0 cannot represent a field:
//! a v0 manifest with signers drops its prologue, and a v0 static core drops the prologue
//! length. [`Manifest::hash`] therefore agrees with JavaScript for every manifest.

use crate::caps::{HYPERCORE_DEFAULT_NAMESPACE, MANIFEST};
use crate::compact::{self, Decode, Decoder, Encode, Encoder};
use crate::error::{DecodeError, Error};
use crate::hash::{Hash, h32};
use crate::key::Key;
use crate::sign::PublicKey;

/// The manifest format version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ManifestVersion {
    /// Version 0 (hypercore 10.32+ legacy form, the corestore 6 default for `compat: false`).
    V0,
    /// Version 1 (the hypercore default; corestore 7).
    V1,
}

impl ManifestVersion {
    /// The version number on the wire.
    #[must_use]
    pub const fn number(self) -> u64 {
        match self {
            Self::V0 => 0,
            Self::V1 => 1,
        }
    }
}

/// One Ed25519 signer of a manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signer {
    /// The signer's namespace. Version-0 signers sign with it as context; the default is
    /// [`HYPERCORE_DEFAULT_NAMESPACE`].
    pub namespace: [u8; 32],
    /// The signer's public key.
    pub public_key: PublicKey,
}

impl Signer {
    /// A signer with the default (hypercore) namespace.
    #[must_use]
    pub const fn new(public_key: PublicKey) -> Self {
        Self {
            namespace: HYPERCORE_DEFAULT_NAMESPACE,
            public_key,
        }
    }
}

/// A prologue: the core's first `length` blocks are fixed, with tree hash `hash`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prologue {
    /// Tree hash at `length`.
    pub hash: Hash,
    /// Number of blocks covered.
    pub length: u64,
}

/// A hypercore manifest (the parsed form of JavaScript's `Verifier.createManifest`; the hash
/// algorithm is always BLAKE2b and the signature scheme always Ed25519).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Manifest {
    /// Encoding version.
    pub version: ManifestVersion,
    /// Whether signers may sign a patched (longer) tree.
    pub allow_patch: bool,
    /// How many distinct signers must sign.
    pub quorum: u64,
    /// The signers, in order (signature containers refer to them by index).
    pub signers: Vec<Signer>,
    /// Fixed initial content, if any.
    pub prologue: Option<Prologue>,
}

/// JavaScript's `defaultQuorum`: a majority of `signers` (0 for no signers).
#[must_use]
pub const fn default_quorum(signers: usize) -> u64 {
    if signers == 0 {
        0
    } else {
        (signers as u64 >> 1) + 1
    }
}

impl Manifest {
    /// A manifest with `signers`, majority quorum, no patches and no prologue (JavaScript's
    /// `createManifest({ version, signers })`).
    #[must_use]
    pub fn new(version: ManifestVersion, signers: Vec<Signer>) -> Self {
        Self {
            version,
            allow_patch: false,
            quorum: default_quorum(signers.len()),
            signers,
            prologue: None,
        }
    }

    /// `Verifier.defaultSignerManifest(pk)`: version 1, one signer with the default
    /// namespace, quorum 1. Its hash is the key corestore 7 gives named cores.
    #[must_use]
    pub fn default_signer(public_key: PublicKey) -> Self {
        Self::new(ManifestVersion::V1, vec![Signer::new(public_key)])
    }

    /// The version-0 single-signer manifest corestore 6 uses for `compat: false`
    /// (`{ version: 0, signers: [{ publicKey }] }`).
    #[must_use]
    pub fn single_signer_v0(public_key: PublicKey) -> Self {
        Self::new(ManifestVersion::V0, vec![Signer::new(public_key)])
    }

    /// `manifestHash(m) = H32(MANIFEST || encode(m))`.
    #[must_use]
    pub fn hash(&self) -> Hash {
        Hash(h32(&[&MANIFEST, &self.to_bytes()]))
    }

    /// Decodes a manifest, ignoring trailing bytes.
    ///
    /// # Errors
    ///
    /// [`DecodeError`] for truncated input or an unknown version, hash, type or signature id.
    pub fn decode_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::from_bytes(bytes)
    }

    /// Which of the three version-0 forms JavaScript writes for this manifest.
    fn v0_form(&self) -> V0Form<'_> {
        match (&self.prologue, self.signers.as_slice()) {
            (Some(p), []) => V0Form::Static(&p.hash),
            (_, [only]) if self.quorum == 1 && !self.allow_patch => V0Form::Single(only),
            _ => V0Form::Multi,
        }
    }
}

/// The version-0 encodings ("type" 0, 1 and 2).
enum V0Form<'a> {
    /// Type 0: a static core, only the prologue hash.
    Static(&'a Hash),
    /// Type 1: one signer, quorum 1, no patches.
    Single(&'a Signer),
    /// Type 2: flags, quorum and the signer array.
    Multi,
}

/// `isCompat(key, manifest)`: exactly one signer and it is the key.
#[must_use]
pub fn is_compat(key: &Key, manifest: &Manifest) -> bool {
    matches!(manifest.signers.as_slice(), [only] if only.public_key.0 == key.0)
}

/// The key of a core with this manifest (`Hypercore.key`): the first signer's public key in
/// compat mode, otherwise [`Manifest::hash`].
///
/// # Errors
///
/// [`Error::InvalidManifest`] if `compat` is set but the manifest has no signer.
pub fn core_key(manifest: &Manifest, compat: bool) -> Result<Key, Error> {
    if !compat {
        return Ok(Key::from(manifest.hash()));
    }
    manifest
        .signers
        .first()
        .map(|s| Key::from(s.public_key))
        .ok_or(Error::InvalidManifest("a compat key needs a signer"))
}

const SIGNER_LEN: usize = 1 + 32 + 32;

impl Encode for Signer {
    fn encoded_len(&self) -> usize {
        SIGNER_LEN
    }

    fn encode(&self, enc: &mut Encoder) {
        enc.uint(0).fixed(&self.namespace).fixed(&self.public_key.0);
    }
}

impl Decode for Signer {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        expect_zero(dec, "signature type")?;
        Ok(Self {
            namespace: dec.fixed()?,
            public_key: PublicKey(dec.fixed()?),
        })
    }
}

impl Encode for Manifest {
    fn encoded_len(&self) -> usize {
        let signers =
            compact::uint_len(self.signers.len() as u64) + SIGNER_LEN * self.signers.len();
        match self.version {
            ManifestVersion::V0 => match self.v0_form() {
                V0Form::Static(_) => 3 + 32,
                V0Form::Single(_) => 3 + SIGNER_LEN,
                V0Form::Multi => 4 + compact::uint_len(self.quorum) + signers,
            },
            ManifestVersion::V1 => {
                3 + compact::uint_len(self.quorum)
                    + signers
                    + self
                        .prologue
                        .map_or(0, |p| 32 + compact::uint_len(p.length))
            }
        }
    }

    fn encode(&self, enc: &mut Encoder) {
        enc.uint(self.version.number());
        match self.version {
            ManifestVersion::V0 => {
                enc.uint(0); // hash: blake2b
                match self.v0_form() {
                    V0Form::Static(hash) => {
                        enc.uint(0).fixed(&hash.0);
                    }
                    V0Form::Single(signer) => {
                        enc.uint(1).encode(signer);
                    }
                    V0Form::Multi => {
                        enc.uint(2)
                            .uint(u64::from(self.allow_patch))
                            .uint(self.quorum)
                            .encode_array(&self.signers);
                    }
                }
            }
            ManifestVersion::V1 => {
                let flags = u64::from(self.allow_patch) | (u64::from(self.prologue.is_some()) << 1);
                enc.uint(flags)
                    .uint(0) // hash: blake2b
                    .uint(self.quorum)
                    .encode_array(&self.signers);
                if let Some(p) = self.prologue {
                    enc.fixed(&p.hash.0).uint(p.length);
                }
            }
        }
    }
}

impl Decode for Manifest {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let version = dec.uint()?;
        match version {
            0 => decode_v0(dec),
            1 => {
                let flags = dec.uint()?;
                expect_zero(dec, "manifest hash type")?;
                let quorum = dec.uint()?;
                let signers = dec.decode_array()?;
                let prologue = if flags & 2 == 0 {
                    None
                } else {
                    Some(Prologue {
                        hash: Hash(dec.fixed()?),
                        length: dec.uint()?,
                    })
                };
                Ok(Self {
                    version: ManifestVersion::V1,
                    allow_patch: flags & 1 != 0,
                    quorum,
                    signers,
                    prologue,
                })
            }
            value => Err(DecodeError::UnknownValue {
                what: "manifest version",
                value,
            }),
        }
    }
}

fn decode_v0(dec: &mut Decoder<'_>) -> Result<Manifest, DecodeError> {
    expect_zero(dec, "manifest hash type")?;
    match dec.uint()? {
        0 => Ok(Manifest {
            version: ManifestVersion::V0,
            allow_patch: false,
            quorum: 0,
            signers: Vec::new(),
            prologue: Some(Prologue {
                hash: Hash(dec.fixed()?),
                length: 0,
            }),
        }),
        1 => Ok(Manifest {
            version: ManifestVersion::V0,
            allow_patch: false,
            quorum: 1,
            signers: vec![Signer::decode(dec)?],
            prologue: None,
        }),
        2 => {
            let flags = dec.uint()?;
            Ok(Manifest {
                version: ManifestVersion::V0,
                allow_patch: flags & 1 != 0,
                quorum: dec.uint()?,
                signers: dec.decode_array()?,
                prologue: None,
            })
        }
        value => Err(DecodeError::UnknownValue {
            what: "manifest type",
            value,
        }),
    }
}

fn expect_zero(dec: &mut Decoder<'_>, what: &'static str) -> Result<(), DecodeError> {
    match dec.uint()? {
        0 => Ok(()),
        value => Err(DecodeError::UnknownValue { what, value }),
    }
}

#[cfg(test)]
mod tests;
