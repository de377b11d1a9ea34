//! Hypercore keys and discovery keys (spec §4.2, §2.5).
//!
//! A core's [`Key`] is either its signer's Ed25519 public key (compat cores, the corestore 6
//! default) or the hash of its manifest (corestore 7, `compat: false`). Peers find each other
//! by [`DiscoveryKey`], which does not reveal the key.

use crate::hash::h32_keyed;
use crate::sign::PublicKey;

bytes32!(
    /// The 32-byte key of a hypercore (its public identity).
    ///
    /// `Display` is lowercase hex; [`Key::id`] gives the z-base-32 `core.id`; `FromStr`
    /// accepts everything [`crate::id::parse_key`] accepts.
    Key,
    "key"
);

bytes32!(
    /// The discovery key of a hypercore, `H32k(key = core key, msg = "hypercore")`: the
    /// protomux channel id, the topic peers announce, and (as lowercase hex) corestore's
    /// storage directory name.
    DiscoveryKey,
    "discovery key"
);

impl Key {
    /// The discovery key of this core.
    #[must_use]
    pub fn discovery_key(&self) -> DiscoveryKey {
        discovery_key(self)
    }

    /// The z-base-32 id of this key (52 characters), as JavaScript's `core.id`.
    #[must_use]
    pub fn id(&self) -> String {
        crate::id::z32_encode(&self.0)
    }
}

impl From<PublicKey> for Key {
    fn from(pk: PublicKey) -> Self {
        Self(pk.0)
    }
}

impl From<crate::Hash> for Key {
    fn from(h: crate::Hash) -> Self {
        Self(h.0)
    }
}

impl std::str::FromStr for Key {
    type Err = crate::ParseKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::id::parse_key(s)
    }
}

/// hypercore-crypto `discoveryKey(key)`: keyed BLAKE2b-256 with the core key as the BLAKE2b
/// key and the 9 bytes `hypercore` as the message.
#[must_use]
pub fn discovery_key(key: &Key) -> DiscoveryKey {
    DiscoveryKey(h32_keyed(key.as_bytes(), &[b"hypercore"]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_key_vector() {
        let key: Key = "37966fe2bbd8113f13fb54c571217097ab64c6140fb6694e8ef4d9f774ab935b"
            .parse()
            .unwrap();
        assert_eq!(
            key.discovery_key().to_string(),
            "911ce76d4bb2b62e4073e9abe50109b614850dbdba5e013241fc8b2eb2ed8e28"
        );
        assert_eq!(
            key.id(),
            "g6mg9ai55yeu6r95kunznemo16isjtowb65g1uwq6uc9q7fm1ppo"
        );
        assert_eq!(key.id().parse::<Key>(), Ok(key));
    }
}
