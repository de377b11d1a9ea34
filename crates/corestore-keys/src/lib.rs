//! Keys, hashes, signatures, manifests and compact-encoding for corestore-rs, byte-compatible
//! with JavaScript Corestore 6 / Hypercore 10 (and the key formats of Corestore 7).
//!
//! This crate is the bottom layer shared by `hypercore-lite`, `corestore-proto` and
//! `corestore`. It holds only pure functions and data types: it does **no I/O** (no files,
//! no sockets, no async runtime) and depends on no other workspace crate. Reading the
//! `primary-key` file, for example, is the caller's job; [`PrimaryKey::from_file_bytes`]
//! only parses its contents.
//!
//! # What is here
//!
//! | module | contents | spec |
//! |---|---|---|
//! | [`compact`] | [`compact::Encoder`], [`compact::Decoder`], [`compact::Encode`], [`compact::Decode`] | §1 |
//! | [`caps`] | [`caps::namespace`], every namespaced constant, [`caps::capability`] | §2.2, §2.3, §9.1 |
//! | [`hash`] | [`Hash`](struct@Hash), [`Node`], leaf/parent/tree hashes, [`hash::crc32`] | §4.1, §2.4 |
//! | [`key`] | [`Key`], [`DiscoveryKey`], [`key::discovery_key`] | §4.2 |
//! | [`id`] | hex / z-base-32 / `pear://` parsing ([`id::parse_key`]) | §2.5 |
//! | [`sign`] | [`KeyPair`], [`PublicKey`], [`Signature`], [`SecretKey`], [`Seed`] | §2.1 |
//! | [`corestore`] | [`PrimaryKey`], [`Namespace`], [`corestore::derive_seed`], [`corestore::named_key_pair`] | §6.2–§6.4 |
//! | [`manifest`] | [`Manifest`], [`manifest::core_key`], [`manifest::is_compat`] | §4.3, §4.5 |
//! | [`verify`] | [`TreeHead`] signables, [`verify::MultiSignature`] containers, [`Verifier`] | §4.4 |
//!
//! Section numbers refer to the byte-level specification `hypercore-v10.md`.
//!
//! Secret types ([`PrimaryKey`], [`KeyPair`], [`SecretKey`], [`Seed`]) print no key material in
//! their `Debug` output and have no `Display`.
//!
//! # Example
//!
//! Deriving the key of the core a corestore names `test` (spec §11):
//!
//! ```
//! use corestore_keys::{Manifest, Namespace, PrimaryKey, corestore::named_key_pair};
//!
//! let primary = PrimaryKey::from_bytes([0x11; 32]);
//! let key_pair = named_key_pair(&primary, &Namespace::DEFAULT, "test");
//!
//! // Corestore 6 (compat): the core key is the public key.
//! let key = corestore_keys::Key::from(key_pair.public_key());
//! assert_eq!(key.to_string(), "37966fe2bbd8113f13fb54c571217097ab64c6140fb6694e8ef4d9f774ab935b");
//! assert_eq!(key.id(), "g6mg9ai55yeu6r95kunznemo16isjtowb65g1uwq6uc9q7fm1ppo");
//! assert_eq!(
//!     key.discovery_key().to_string(),
//!     "911ce76d4bb2b62e4073e9abe50109b614850dbdba5e013241fc8b2eb2ed8e28"
//! );
//!
//! // Corestore 7: the core key is the hash of the default signer manifest.
//! let manifest = Manifest::default_signer(key_pair.public_key());
//! assert_eq!(
//!     manifest.hash().to_string(),
//!     "8c7d10e2614b9f937e1583a9a2ed0201a5c3f3e4c21830a7ea722dad1ca303e5"
//! );
//! ```
//!
//! # Crate features
//!
//! None. The crate has no optional features and no default features.

#![forbid(unsafe_code)]

#[macro_use]
mod macros;

pub mod caps;
pub mod compact;
pub mod corestore;
mod error;
pub mod hash;
pub mod id;
pub mod index_hash;
pub mod key;
pub mod manifest;
pub mod sign;
pub mod verify;

pub use crate::corestore::{Namespace, PrimaryKey};
pub use crate::error::{DecodeError, Error, KeyEncoding, ParseKeyError};
pub use crate::hash::{Hash, Node};
pub use crate::key::{DiscoveryKey, Key};
pub use crate::manifest::{Manifest, ManifestVersion, Prologue, Signer};
pub use crate::sign::{KeyPair, PublicKey, SecretKey, Seed, Signature};
pub use crate::verify::{TreeHead, Verifier};
