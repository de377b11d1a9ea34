//! Ed25519 key pairs, signing and strict verification (spec §2.1).
//!
//! Key pairs follow libsodium's layout: a [`KeyPair`] is made from a 32-byte seed, and its
//! 64-byte [`SecretKey`] is `seed || public key` (`crypto_sign_seed_keypair`). Verification
//! uses ed25519-dalek's `verify_strict`, the closest match to libsodium ≥ 1.0.18 (it rejects
//! non-canonical `S`, small-order `R` and small-order public keys).
//!
//! Secret types implement `Debug` without printing key material.

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};

use crate::error::Error;

bytes32!(
    /// An Ed25519 public key (32 bytes). Not checked to be a valid curve point until used to
    /// verify.
    PublicKey,
    "public key"
);

/// A 64-byte Ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; 64]);

/// A libsodium-style Ed25519 secret key: `seed(32) || public key(32)`.
#[derive(Clone)]
pub struct SecretKey([u8; 64]);

/// A 32-byte Ed25519 seed (for example one derived by [`crate::corestore::derive_seed`]).
#[derive(Clone, PartialEq, Eq)]
pub struct Seed(pub [u8; 32]);

/// An Ed25519 key pair that can sign.
#[derive(Clone)]
pub struct KeyPair {
    signing: SigningKey,
}

redacted_debug!(SecretKey);
redacted_debug!(Seed);

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("public_key", &self.public_key())
            .finish_non_exhaustive()
    }
}

impl PublicKey {
    /// Verifies `signature` over `message` with `verify_strict`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidLength`] if `signature` is not 64 bytes, [`Error::BadSignature`] if it
    /// does not verify (including when this public key is not a valid point).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), Error> {
        let sig = <[u8; 64]>::try_from(signature).map_err(|_| Error::InvalidLength {
            what: "signature",
            expected: 64,
            got: signature.len(),
        })?;
        let vk = VerifyingKey::from_bytes(&self.0).map_err(|_| Error::BadSignature)?;
        vk.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&sig))
            .map_err(|_| Error::BadSignature)
    }
}

/// hypercore-crypto `verify(message, signature, publicKey)`: `false` unless the signature is
/// 64 bytes, the key 32 bytes and the signature valid.
#[must_use]
pub fn verify(message: &[u8], signature: &[u8], public_key: &[u8]) -> bool {
    PublicKey::from_slice(public_key).is_ok_and(|pk| pk.verify(message, signature).is_ok())
}

impl Signature {
    /// Copies a signature from a slice that must be exactly 64 bytes.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidLength`] for any other length.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        <[u8; 64]>::try_from(bytes)
            .map(Self)
            .map_err(|_| Error::InvalidLength {
                what: "signature",
                expected: 64,
                got: bytes.len(),
            })
    }

    /// The 64 bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }
}

impl AsRef<[u8]> for Signature {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signature({})", hex::encode(self.0))
    }
}

impl SecretKey {
    /// The 64 bytes `seed || public key`, as stored in hypercore's oplog header.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }
}

impl Seed {
    /// The 32 seed bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl KeyPair {
    /// The key pair of a 32-byte seed (libsodium `crypto_sign_seed_keypair`).
    #[must_use]
    pub fn from_seed(seed: &Seed) -> Self {
        Self {
            signing: SigningKey::from_bytes(&seed.0),
        }
    }

    /// A fresh random key pair (operating-system randomness).
    ///
    /// # Errors
    ///
    /// [`Error::Random`] if the operating system's generator fails.
    pub fn generate() -> Result<Self, Error> {
        let mut seed = Seed([0; 32]);
        getrandom::fill(&mut seed.0).map_err(Error::Random)?;
        Ok(Self::from_seed(&seed))
    }

    /// A key pair from a libsodium 64-byte secret key (`seed || public key`), checking that
    /// the public half belongs to the seed.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidLength`] unless 64 bytes, [`Error::KeyPairMismatch`] if the halves
    /// disagree.
    pub fn from_secret_key(secret_key: &[u8]) -> Result<Self, Error> {
        let bytes = <&[u8; 64]>::try_from(secret_key).map_err(|_| Error::InvalidLength {
            what: "secret key",
            expected: 64,
            got: secret_key.len(),
        })?;
        SigningKey::from_keypair_bytes(bytes)
            .map(|signing| Self { signing })
            .map_err(|_| Error::KeyPairMismatch)
    }

    /// The public key.
    #[must_use]
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key().to_bytes())
    }

    /// The libsodium 64-byte secret key, `seed || public key`.
    #[must_use]
    pub fn secret_key(&self) -> SecretKey {
        SecretKey(self.signing.to_keypair_bytes())
    }

    /// Signs `message` (libsodium `crypto_sign_detached`; Ed25519 is deterministic).
    #[must_use]
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.signing.sign(message).to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libsodium_layout() {
        let seed = Seed([7; 32]);
        let kp = KeyPair::from_seed(&seed);
        let sk = kp.secret_key();
        assert_eq!(&sk.as_bytes()[..32], &[7; 32]);
        assert_eq!(&sk.as_bytes()[32..], kp.public_key().as_bytes());
        let again = KeyPair::from_secret_key(sk.as_bytes()).unwrap();
        assert_eq!(again.public_key(), kp.public_key());

        let mut wrong = *sk.as_bytes();
        wrong[40] ^= 1;
        assert!(matches!(
            KeyPair::from_secret_key(&wrong),
            Err(Error::KeyPairMismatch)
        ));
        assert!(matches!(
            KeyPair::from_secret_key(&wrong[..63]),
            Err(Error::InvalidLength { got: 63, .. })
        ));
    }

    #[test]
    fn sign_and_verify() {
        let kp = KeyPair::generate().unwrap();
        let sig = kp.sign(b"msg");
        let pk = kp.public_key();
        assert!(pk.verify(b"msg", sig.as_bytes()).is_ok());
        assert!(matches!(
            pk.verify(b"msh", sig.as_bytes()),
            Err(Error::BadSignature)
        ));
        assert!(matches!(
            pk.verify(b"msg", &sig.as_bytes()[..63]),
            Err(Error::InvalidLength { expected: 64, .. })
        ));
        assert!(verify(b"msg", sig.as_bytes(), pk.as_bytes()));
        assert!(!verify(b"msg", sig.as_bytes(), &pk.as_bytes()[..31]));
        assert!(!verify(b"msg", &[0; 64], pk.as_bytes()));
        // A public key that is not a valid point never verifies.
        assert!(!verify(b"msg", sig.as_bytes(), &[0xff; 32]));
    }

    #[test]
    fn debug_output_contains_no_secret_bytes() {
        let seed = Seed([0x5a; 32]);
        let kp = KeyPair::from_seed(&seed);
        let secret_hex = hex::encode(seed.0);
        let secret_list = format!("{:?}", seed.0);
        for out in [
            format!("{kp:?}"),
            format!("{kp:#?}"),
            format!("{:?}", kp.secret_key()),
            format!("{seed:?}"),
        ] {
            assert!(!out.contains(&secret_hex), "{out}");
            assert!(!out.contains(&secret_list[1..20]), "{out}");
        }
        assert_eq!(format!("{seed:?}"), "Seed(..)");
        assert!(format!("{kp:?}").contains(&kp.public_key().to_string()));
    }
}
