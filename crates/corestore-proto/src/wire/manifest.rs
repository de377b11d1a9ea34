//! The manifest codec carried in `data.manifest` (spec §4.3; versions 0 and 1 from hypercore
//! 10, 2 and 3 from hypercore 11 with `linked` and `userData`). Only the codec lives here:
//! hashing and verification belong to `corestore-keys`.
//!
//! # Why this is not [`corestore_keys::Manifest`]
//!
//! The wire needs three things `corestore_keys::Manifest` cannot give without changing
//! `corestore-keys`:
//!
//! - **hypercore 11 fields.** [`corestore_keys::ManifestVersion`] has only versions 0 and 1,
//!   and the type has no `linked` or `userData`. hypercore 11 reads both behind flag bits 2 and
//!   3 for *every* version from 1 on, so even a version-1 manifest from a JavaScript peer may
//!   carry them; the `corestore-keys` decoder ignores those bits (leaving the fields unread and
//!   re-encoding different bytes).
//! - **wire bounds.** A peer's signer array is bounded by [`limits::MAX_SIGNERS`] and 65 bytes
//!   per signer before anything is allocated; `corestore-keys` decodes it with compact-encoding's
//!   generic 2^20 count and one byte per item.
//! - **plain bytes.** Like every struct of [`crate::wire`], the fields are raw byte arrays.
//!
//! What the two share goes through `corestore-keys`: every primitive
//! ([`Encoder`] / the [`Reader`] over its `Decoder`) and each signer's codec
//! ([`corestore_keys::Signer`]'s `Encode`/`Decode`). [`From`] / [`TryFrom`] convert between the
//! types, and the tests check that both codecs write and accept the same bytes for every
//! manifest both can represent.

use corestore_keys::compact::Encoder;
use corestore_keys::{Hash, PublicKey};

use super::limits;
use crate::codec::{Reader, append};
use crate::error::DecodeError;

/// One Ed25519 signer (`uint sigType (0) || fixed32 namespace || fixed32 publicKey`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signer {
    /// The signer's namespace.
    pub namespace: [u8; 32],
    /// The signer's Ed25519 public key.
    pub public_key: [u8; 32],
}

/// A manifest prologue (`fixed32 hash || uint length`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prologue {
    /// Tree hash of the prologue.
    pub hash: [u8; 32],
    /// Its length.
    pub length: u64,
}

/// A core manifest as on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    /// 0..=3.
    pub version: u64,
    /// Signers may patch.
    pub allow_patch: bool,
    /// Signatures required.
    pub quorum: u64,
    /// The signers.
    pub signers: Vec<Signer>,
    /// Optional prologue.
    pub prologue: Option<Prologue>,
    /// Linked cores (version ≥ 2).
    pub linked: Option<Vec<[u8; 32]>>,
    /// Opaque user data (version ≥ 2).
    pub user_data: Option<Vec<u8>>,
}

/// The only hash (`0` = BLAKE2b).
const HASH_BLAKE2B: u64 = 0;

impl Manifest {
    /// Appends the encoding (JavaScript's choice of v0 sub-type included).
    pub fn encode(&self, o: &mut Vec<u8>) {
        append(o, |e| self.encode_to(e));
    }

    /// Appends the encoding to a `corestore-keys` [`Encoder`].
    pub fn encode_to(&self, e: &mut Encoder) {
        e.uint(self.version);
        if self.version == 0 {
            e.uint(HASH_BLAKE2B);
            match (&self.prologue, self.signers.as_slice()) {
                (Some(p), []) => {
                    e.uint(0).fixed(&p.hash);
                }
                (_, [only]) if self.quorum == 1 && !self.allow_patch => {
                    e.uint(1).encode(&corestore_keys::Signer::from(*only));
                }
                _ => {
                    e.uint(2)
                        .uint(u64::from(self.allow_patch))
                        .uint(self.quorum);
                    encode_signers(e, &self.signers);
                }
            }
            return;
        }
        let flags = u64::from(self.allow_patch)
            | u64::from(self.prologue.is_some()) << 1
            | u64::from(self.linked.is_some()) << 2
            | u64::from(self.user_data.is_some()) << 3;
        e.uint(flags).uint(HASH_BLAKE2B).uint(self.quorum);
        encode_signers(e, &self.signers);
        if let Some(p) = &self.prologue {
            e.fixed(&p.hash).uint(p.length);
        }
        if let Some(l) = &self.linked {
            e.array(l, |e, k| {
                e.fixed(k);
            });
        }
        if let Some(u) = &self.user_data {
            e.buffer(u);
        }
    }

    /// Decodes a manifest.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = r.uint()?;
        if version == 0 {
            hash_type(r)?;
            return match r.uint()? {
                0 => Ok(Self {
                    prologue: Some(Prologue {
                        hash: r.fixed()?,
                        length: 0,
                    }),
                    ..Self::default()
                }),
                1 => Ok(Self {
                    quorum: 1,
                    signers: vec![r.decode::<corestore_keys::Signer>()?.into()],
                    ..Self::default()
                }),
                2 => {
                    let flags = r.uint()?;
                    let quorum = r.uint()?;
                    let signers = signers(r)?;
                    Ok(Self {
                        allow_patch: flags & 1 != 0,
                        quorum,
                        signers,
                        ..Self::default()
                    })
                }
                t => Err(DecodeError::UnknownType(t)),
            };
        }
        if version > 3 {
            return Err(DecodeError::UnknownVersion(version));
        }
        let flags = r.uint()?;
        hash_type(r)?;
        let quorum = r.uint()?;
        let signers = signers(r)?;
        let prologue = if flags & 2 != 0 {
            Some(Prologue {
                hash: r.fixed()?,
                length: r.uint()?,
            })
        } else {
            None
        };
        let linked = if flags & 4 != 0 {
            let n = r.count(limits::MAX_LINKED, 32)?;
            let mut l = Vec::with_capacity(n);
            for _ in 0..n {
                l.push(r.fixed()?);
            }
            Some(l)
        } else {
            None
        };
        let user_data = if flags & 8 != 0 {
            Some(r.buffer(limits::MAX_USER_DATA)?.to_vec())
        } else {
            None
        };
        Ok(Self {
            version,
            allow_patch: flags & 1 != 0,
            quorum,
            signers,
            prologue,
            linked,
            user_data,
        })
    }
}

fn hash_type(r: &mut Reader<'_>) -> Result<(), DecodeError> {
    match r.uint()? {
        HASH_BLAKE2B => Ok(()),
        t => Err(DecodeError::UnknownType(t)),
    }
}

fn signers(r: &mut Reader<'_>) -> Result<Vec<Signer>, DecodeError> {
    let n = r.count(limits::MAX_SIGNERS, 65)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(r.decode::<corestore_keys::Signer>()?.into());
    }
    Ok(out)
}

fn encode_signers(e: &mut Encoder, signers: &[Signer]) {
    e.array(signers, |e, s| {
        e.encode(&corestore_keys::Signer::from(*s));
    });
}

impl From<corestore_keys::Signer> for Signer {
    fn from(s: corestore_keys::Signer) -> Self {
        Self {
            namespace: s.namespace,
            public_key: s.public_key.0,
        }
    }
}

impl From<Signer> for corestore_keys::Signer {
    fn from(s: Signer) -> Self {
        Self {
            namespace: s.namespace,
            public_key: PublicKey(s.public_key),
        }
    }
}

impl From<corestore_keys::Prologue> for Prologue {
    fn from(p: corestore_keys::Prologue) -> Self {
        Self {
            hash: p.hash.0,
            length: p.length,
        }
    }
}

impl From<Prologue> for corestore_keys::Prologue {
    fn from(p: Prologue) -> Self {
        Self {
            hash: Hash(p.hash),
            length: p.length,
        }
    }
}

impl From<&corestore_keys::Manifest> for Manifest {
    fn from(m: &corestore_keys::Manifest) -> Self {
        Self {
            version: m.version.number(),
            allow_patch: m.allow_patch,
            quorum: m.quorum,
            signers: m.signers.iter().copied().map(Signer::from).collect(),
            prologue: m.prologue.map(Prologue::from),
            linked: None,
            user_data: None,
        }
    }
}

/// A wire manifest as the `corestore-keys` type that hashes and verifies it.
impl TryFrom<&Manifest> for corestore_keys::Manifest {
    type Error = corestore_keys::Error;

    /// # Errors
    ///
    /// [`corestore_keys::Error::Unsupported`] for what `corestore-keys` cannot represent:
    /// versions above 1, `linked` and `user_data`.
    fn try_from(m: &Manifest) -> Result<Self, Self::Error> {
        let version = match m.version {
            0 => corestore_keys::ManifestVersion::V0,
            1 => corestore_keys::ManifestVersion::V1,
            _ => {
                return Err(corestore_keys::Error::Unsupported(
                    "manifest version above 1",
                ));
            }
        };
        if m.linked.is_some() || m.user_data.is_some() {
            return Err(corestore_keys::Error::Unsupported(
                "manifest linked cores or user data",
            ));
        }
        Ok(Self {
            version,
            allow_patch: m.allow_patch,
            quorum: m.quorum,
            signers: m.signers.iter().copied().map(Into::into).collect(),
            prologue: m.prologue.map(Into::into),
        })
    }
}
