//! Corestore name-to-key derivation (spec §6.2–§6.4), identical in corestore 6 and 7.
//!
//! ```text
//! namespace.child(name) = H32( namespace(32) || name bytes )          // unkeyed, chainable
//! seed                  = H32k( key = primary key, msg = CORESTORE_NS || namespace(32) || utf8(name) )
//! key pair              = Ed25519 key pair of seed
//! ```
//!
//! The core key then depends on the store: corestore 6 (compat) uses the public key itself,
//! corestore 7 the hash of the default signer manifest (see [`crate::manifest`]).
//!
//! Corestore rejects empty names (`get({ name: '' })` throws "Must provide either a name or a
//! publicKey" because `''` is falsy); [`derive_seed`] derives one anyway and leaves the
//! rejection to the caller.

use crate::caps::CORESTORE_NS;
use crate::error::Error;
use crate::hash::{h32, h32_keyed};
use crate::sign::{KeyPair, Seed};

/// A corestore primary key: 32 secret bytes from which every named key pair is derived.
///
/// Corestore 6 stores it in the file `primary-key` as exactly these 32 raw bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct PrimaryKey([u8; 32]);

redacted_debug!(PrimaryKey);

impl PrimaryKey {
    /// Wraps 32 bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A fresh random primary key (operating-system randomness).
    ///
    /// # Errors
    ///
    /// [`Error::Random`] if the operating system's generator fails.
    pub fn generate() -> Result<Self, Error> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(Error::Random)?;
        Ok(Self(key))
    }

    /// Parses the contents of a corestore 6 `primary-key` file: the first 32 bytes are the
    /// key; later bytes are ignored, as corestore 6 reads only 32.
    ///
    /// # Errors
    ///
    /// [`Error::PrimaryKeyTooShort`] for fewer than 32 bytes (corestore 6 would overwrite such
    /// a file with a new key; that decision is left to the caller).
    pub fn from_file_bytes(contents: &[u8]) -> Result<Self, Error> {
        contents
            .get(..32)
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .map(Self)
            .ok_or(Error::PrimaryKeyTooShort {
                got: contents.len(),
            })
    }

    /// The contents of a corestore 6 `primary-key` file (the 32 raw bytes).
    #[must_use]
    pub const fn to_file_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// The 32 key bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

bytes32!(
    /// A corestore namespace (32 bytes). The root is [`Namespace::DEFAULT`] (all zeros);
    /// `store.namespace(a).namespace(b)` is `Namespace::DEFAULT.child(a).child(b)`.
    Namespace,
    "namespace"
);

impl Namespace {
    /// Corestore's root namespace, 32 zero bytes.
    pub const DEFAULT: Self = Self(crate::caps::CORESTORE_DEFAULT_NAMESPACE);

    /// The child namespace `H32(self || name)` (corestore `generateNamespace`). `name` is the
    /// UTF-8 of a string name, or raw bytes for a buffer name.
    #[must_use]
    pub fn child(&self, name: impl AsRef<[u8]>) -> Self {
        Self(h32(&[&self.0, name.as_ref()]))
    }
}

impl Default for Namespace {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Corestore `deriveSeed(primaryKey, namespace, name)`.
#[must_use]
pub fn derive_seed(primary_key: &PrimaryKey, namespace: &Namespace, name: &str) -> Seed {
    Seed(h32_keyed(
        &primary_key.0,
        &[&CORESTORE_NS, &namespace.0, name.as_bytes()],
    ))
}

/// Corestore `createKeyPair(name)`: the key pair of [`derive_seed`].
#[must_use]
pub fn named_key_pair(primary_key: &PrimaryKey, namespace: &Namespace, name: &str) -> KeyPair {
    KeyPair::from_seed(&derive_seed(primary_key, namespace, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PK: PrimaryKey = PrimaryKey::from_bytes([0x11; 32]);

    #[test]
    fn spec_vectors() {
        let seed = derive_seed(&PK, &Namespace::DEFAULT, "test");
        assert_eq!(
            hex::encode(seed.as_bytes()),
            "2e7a439bab2885db5c6885191a875f04c5ea667cecba6066064076853ee3765f"
        );
        let kp = named_key_pair(&PK, &Namespace::DEFAULT, "test");
        assert_eq!(
            kp.public_key().to_string(),
            "37966fe2bbd8113f13fb54c571217097ab64c6140fb6694e8ef4d9f774ab935b"
        );
        assert_eq!(&kp.secret_key().as_bytes()[..32], seed.as_bytes());

        let foo = Namespace::DEFAULT.child("foo");
        assert_eq!(
            foo.to_string(),
            "28ea4588ea0002b8730720c48627f60e07f57419942fc0601752adf5e7d46ea7"
        );
        assert_eq!(
            named_key_pair(&PK, &foo, "test").public_key().to_string(),
            "2bd5236ca0e7c32caea60024469bab3d3fb6ecac1567da5bf8da3bc00f6f4524"
        );
    }

    #[test]
    fn namespaces_chain() {
        let ab = Namespace::DEFAULT.child("a").child("b");
        let manual = h32(&[&h32(&[&[0; 32], b"a"]), b"b"]);
        assert_eq!(ab.0, manual);
        assert_eq!(Namespace::default(), Namespace::DEFAULT);
    }

    #[test]
    fn primary_key_file() {
        assert_eq!(PrimaryKey::from_file_bytes(&[0x11; 32]).unwrap(), PK);
        let mut longer = vec![0x11; 32];
        longer.push(9);
        assert_eq!(PrimaryKey::from_file_bytes(&longer).unwrap(), PK);
        assert!(matches!(
            PrimaryKey::from_file_bytes(&[1; 31]),
            Err(Error::PrimaryKeyTooShort { got: 31 })
        ));
        assert!(matches!(
            PrimaryKey::from_file_bytes(&[]),
            Err(Error::PrimaryKeyTooShort { got: 0 })
        ));
        assert_eq!(PK.to_file_bytes(), [0x11; 32]);
        let random = PrimaryKey::generate().unwrap();
        assert_ne!(random, PrimaryKey::generate().unwrap());
    }

    #[test]
    fn primary_key_debug_is_redacted() {
        let out = format!("{PK:?}");
        assert_eq!(out, "PrimaryKey(..)");
        assert!(!out.contains("11"));
    }
}
