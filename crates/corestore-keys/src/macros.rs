//! Internal macros: the 32-byte public newtypes ([`Hash`](struct@crate::Hash), [`crate::Key`], ...) share
//! one set of conversions and formatting impls.

/// Defines a public `Copy` newtype over `[u8; 32]` with conversions, hex `Display`/`Debug`
/// and strict hex parsing. For non-secret values only.
macro_rules! bytes32 {
    ($(#[$meta:meta])* $name:ident, $what:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// Wraps 32 bytes.
            #[must_use]
            pub const fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }

            /// The 32 bytes.
            #[must_use]
            pub const fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// The 32 bytes, by value.
            #[must_use]
            pub const fn to_bytes(self) -> [u8; 32] {
                self.0
            }

            #[doc = concat!("Copies a ", $what, " from a slice that must be exactly 32 bytes long.")]
            ///
            /// # Errors
            ///
            /// [`crate::Error::InvalidLength`] for any other length.
            pub fn from_slice(bytes: &[u8]) -> Result<Self, crate::Error> {
                <[u8; 32]>::try_from(bytes).map(Self).map_err(|_| crate::Error::InvalidLength {
                    what: $what,
                    expected: 32,
                    got: bytes.len(),
                })
            }

            #[doc = concat!("Parses a ", $what, " from exactly 64 hex characters (either case).")]
            ///
            /// # Errors
            ///
            /// [`crate::ParseKeyError`] naming the wrong length or the first invalid character.
            pub fn from_hex(s: &str) -> Result<Self, crate::ParseKeyError> {
                crate::id::decode_hex32(s).map(Self)
            }

            /// Lowercase hex (64 characters), as JavaScript's `b4a.toString(x, 'hex')`.
            #[must_use]
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
        }

        impl From<[u8; 32]> for $name {
            fn from(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }
        }

        impl From<$name> for [u8; 32] {
            fn from(v: $name) -> Self {
                v.0
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl TryFrom<&[u8]> for $name {
            type Error = crate::Error;

            fn try_from(bytes: &[u8]) -> Result<Self, crate::Error> {
                Self::from_slice(bytes)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut buf = [0u8; 64];
                // Encoding 32 bytes into a 64-byte buffer cannot fail.
                match hex::encode_to_slice(self.0, &mut buf) {
                    Ok(()) => f.write_str(std::str::from_utf8(&buf).unwrap_or_default()),
                    Err(_) => Err(std::fmt::Error),
                }
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }
    };
}

/// Implements `Debug` for a secret type without printing any key material.
macro_rules! redacted_debug {
    ($name:ident) => {
        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "(..)"))
            }
        }
    };
}
