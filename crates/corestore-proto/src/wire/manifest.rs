//! The manifest codec carried in `data.manifest` (spec §4.3; versions 0 and 1 from hypercore
//! 10, 2 and 3 from hypercore 11 with `linked` and `userData`). Only the codec lives here:
//! hashing and verification belong to `corestore-keys`.

use super::limits;
use crate::codec::{Reader, put_buffer, put_uint};
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

impl Manifest {
    /// Appends the encoding (JavaScript's choice of v0 sub-type included).
    pub fn encode(&self, o: &mut Vec<u8>) {
        put_uint(o, self.version);
        if self.version == 0 {
            put_uint(o, 0); // hash: blake2b
            if let (Some(p), true) = (&self.prologue, self.signers.is_empty()) {
                put_uint(o, 0);
                o.extend_from_slice(&p.hash);
            } else if self.quorum == 1 && self.signers.len() == 1 && !self.allow_patch {
                put_uint(o, 1);
                put_signer(o, &self.signers[0]);
            } else {
                put_uint(o, 2);
                put_uint(o, u64::from(self.allow_patch));
                put_uint(o, self.quorum);
                put_signers(o, &self.signers);
            }
            return;
        }
        let flags = u64::from(self.allow_patch)
            | u64::from(self.prologue.is_some()) << 1
            | u64::from(self.linked.is_some()) << 2
            | u64::from(self.user_data.is_some()) << 3;
        put_uint(o, flags);
        put_uint(o, 0); // hash: blake2b
        put_uint(o, self.quorum);
        put_signers(o, &self.signers);
        if let Some(p) = &self.prologue {
            o.extend_from_slice(&p.hash);
            put_uint(o, p.length);
        }
        if let Some(l) = &self.linked {
            put_uint(o, l.len() as u64);
            for k in l {
                o.extend_from_slice(k);
            }
        }
        if let Some(u) = &self.user_data {
            put_buffer(o, u);
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
                    signers: vec![signer(r)?],
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
        0 => Ok(()),
        t => Err(DecodeError::UnknownType(t)),
    }
}

fn signer(r: &mut Reader<'_>) -> Result<Signer, DecodeError> {
    hash_type(r)?; // signature type 0 = ed25519, same numbering
    Ok(Signer {
        namespace: r.fixed()?,
        public_key: r.fixed()?,
    })
}

fn signers(r: &mut Reader<'_>) -> Result<Vec<Signer>, DecodeError> {
    let n = r.count(limits::MAX_SIGNERS, 65)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(signer(r)?);
    }
    Ok(out)
}

fn put_signer(o: &mut Vec<u8>, s: &Signer) {
    put_uint(o, 0);
    o.extend_from_slice(&s.namespace);
    o.extend_from_slice(&s.public_key);
}

fn put_signers(o: &mut Vec<u8>, s: &[Signer]) {
    put_uint(o, s.len() as u64);
    for s in s {
        put_signer(o, s);
    }
}
