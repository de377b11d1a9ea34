//! Textual key formats: hex, z-base-32 and `pear://` links (spec §2.5).
//!
//! [`parse_key`] accepts exactly what `hypercore-id-encoding.decode` accepts for strings:
//! 64 hex characters (either case), 52 z-base-32 characters, or a `pear://` URL whose first
//! path segment is one of those. [`key_from_bytes`] is its byte-buffer counterpart. Errors say
//! what was wrong (length, or which character at which position); nothing here panics.
//!
//! z-base-32 uses the alphabet `ybndrfg8ejkmcpqxot1uwisza345h769`, most significant bits
//! first, no padding. Like the JavaScript `z32` package, decoding ignores the unused low bits
//! of the last character (so a few distinct 52-character strings decode to the same key); it
//! is case-sensitive (uppercase letters are invalid).

use crate::error::{KeyEncoding, ParseKeyError};
use crate::key::Key;

/// The z-base-32 alphabet.
pub const Z32_ALPHABET: &[u8; 32] = b"ybndrfg8ejkmcpqxot1uwisza345h769";

/// Length of a key in z-base-32 characters.
pub const Z32_KEY_LEN: usize = 52;

/// Length of a key in hex characters.
pub const HEX_KEY_LEN: usize = 64;

const PEAR_PREFIX: &str = "pear://";

/// Parses a key from 64 hex characters, 52 z-base-32 characters or a
/// `pear://<z32-or-hex>/...` URL.
///
/// # Errors
///
/// [`ParseKeyError::WrongLength`] if the key part is neither 52 nor 64 characters long,
/// [`ParseKeyError::InvalidCharacter`] for the first character outside the alphabet
/// (position counted in characters from the start of the key part).
///
/// ```
/// use corestore_keys::id::parse_key;
///
/// let hex = "37966fe2bbd8113f13fb54c571217097ab64c6140fb6694e8ef4d9f774ab935b";
/// let key = parse_key(hex)?;
/// assert_eq!(parse_key("g6mg9ai55yeu6r95kunznemo16isjtowb65g1uwq6uc9q7fm1ppo")?, key);
/// assert_eq!(parse_key(&format!("pear://{}/app", key.id()))?, key);
/// assert_eq!(parse_key(&hex.to_uppercase())?, key);
/// assert!(parse_key("not a key").is_err());
/// # Ok::<(), corestore_keys::ParseKeyError>(())
/// ```
pub fn parse_key(input: &str) -> Result<Key, ParseKeyError> {
    let id = match input.strip_prefix(PEAR_PREFIX) {
        Some(rest) => rest.split('/').next().unwrap_or_default(),
        None => input,
    };
    match id.chars().count() {
        Z32_KEY_LEN => {
            let bytes = z32_decode(id)?;
            <[u8; 32]>::try_from(bytes.as_slice())
                .map(Key)
                .map_err(|_| ParseKeyError::WrongByteLength { got: bytes.len() })
        }
        HEX_KEY_LEN => decode_hex32(id).map(Key),
        got => Err(ParseKeyError::WrongLength {
            expected: "52 z-base-32 or 64 hex characters",
            got,
        }),
    }
}

/// A key from a byte buffer, which must be exactly 32 bytes (hypercore-id-encoding's buffer
/// case).
///
/// # Errors
///
/// [`ParseKeyError::WrongByteLength`] for any other length.
pub fn key_from_bytes(bytes: &[u8]) -> Result<Key, ParseKeyError> {
    <[u8; 32]>::try_from(bytes)
        .map(Key)
        .map_err(|_| ParseKeyError::WrongByteLength { got: bytes.len() })
}

/// Encodes bytes as z-base-32 (`ceil(8 * len / 5)` characters), as the `z32` package does.
#[must_use]
pub fn z32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity((bytes.len() * 8).div_ceil(5));
    let mut acc: u16 = 0;
    let mut bits = 0u32;
    for &b in bytes {
        acc = (acc << 8) | u16::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(Z32_ALPHABET[usize::from((acc >> bits) & 0x1f)]));
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(
            Z32_ALPHABET[usize::from((acc << (5 - bits)) & 0x1f)],
        ));
    }
    out
}

/// Decodes z-base-32 into `floor(5 * len / 8)` bytes, ignoring leftover low bits.
///
/// # Errors
///
/// [`ParseKeyError::WrongLength`] for a length [`z32_encode`] never produces (`len % 8` of
/// 1, 3 or 6, where the JavaScript decoder returns inconsistent results), and
/// [`ParseKeyError::InvalidCharacter`] for the first character outside the alphabet.
pub fn z32_decode(s: &str) -> Result<Vec<u8>, ParseKeyError> {
    let len = s.chars().count();
    if matches!(len % 8, 1 | 3 | 6) {
        return Err(ParseKeyError::WrongLength {
            expected: "a z-base-32 length (not 1, 3 or 6 modulo 8)",
            got: len,
        });
    }
    let mut out = Vec::with_capacity(len * 5 / 8);
    let mut acc: u16 = 0;
    let mut bits = 0u32;
    for (position, character) in s.chars().enumerate() {
        let v = z32_value(character).ok_or(ParseKeyError::InvalidCharacter {
            character,
            position,
            encoding: KeyEncoding::Z32,
        })?;
        acc = (acc << 5) | u16::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits).to_le_bytes()[0]);
        }
        acc &= (1 << bits) - 1;
    }
    Ok(out)
}

fn z32_value(c: char) -> Option<u8> {
    let b = u8::try_from(c).ok()?;
    Z32_ALPHABET
        .iter()
        .position(|&a| a == b)
        .and_then(|i| u8::try_from(i).ok())
}

/// Decodes exactly 64 hex characters (either case) into 32 bytes.
pub(crate) fn decode_hex32(s: &str) -> Result<[u8; 32], ParseKeyError> {
    let got = s.chars().count();
    if got != HEX_KEY_LEN {
        return Err(ParseKeyError::WrongLength {
            expected: "64 hex characters",
            got,
        });
    }
    let mut out = [0u8; 32];
    let mut hi = 0u8;
    for (position, character) in s.chars().enumerate() {
        let v = character
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
            .ok_or(ParseKeyError::InvalidCharacter {
                character,
                position,
                encoding: KeyEncoding::Hex,
            })?;
        if position % 2 == 0 {
            hi = v;
        } else {
            out[position / 2] = (hi << 4) | v;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "37966fe2bbd8113f13fb54c571217097ab64c6140fb6694e8ef4d9f774ab935b";
    const Z32: &str = "g6mg9ai55yeu6r95kunznemo16isjtowb65g1uwq6uc9q7fm1ppo";

    #[test]
    fn z32_vector() {
        let key = Key::from_hex(HEX).unwrap();
        assert_eq!(z32_encode(key.as_bytes()), Z32);
        assert_eq!(z32_decode(Z32).unwrap(), key.as_bytes());
    }

    #[test]
    fn z32_short_inputs_match_the_js_package() {
        // Outputs of the `z32` package's encode.
        assert_eq!(z32_encode(b""), "");
        assert_eq!(z32_encode(b"a"), "cr");
        assert_eq!(z32_encode(b"hello"), "pb1sa5dx");
        assert_eq!(z32_decode("pb1sa5dx").unwrap(), b"hello");
        assert_eq!(z32_decode("cr").unwrap(), b"a");
    }

    #[test]
    fn parse_key_accepts_every_js_form() {
        let key = Key::from_hex(HEX).unwrap();
        for input in [
            HEX.to_owned(),
            HEX.to_uppercase(),
            Z32.to_owned(),
            format!("pear://{Z32}"),
            format!("pear://{Z32}/some/path"),
            format!("pear://{HEX}/x"),
        ] {
            assert_eq!(parse_key(&input), Ok(key), "{input}");
        }
        assert_eq!(key_from_bytes(key.as_bytes()), Ok(key));
    }

    #[test]
    fn parse_key_errors_are_precise() {
        assert_eq!(
            parse_key("abc"),
            Err(ParseKeyError::WrongLength {
                expected: "52 z-base-32 or 64 hex characters",
                got: 3
            })
        );
        assert_eq!(
            parse_key("pear://"),
            Err(ParseKeyError::WrongLength {
                expected: "52 z-base-32 or 64 hex characters",
                got: 0
            })
        );
        let mut bad_hex = HEX.to_owned();
        bad_hex.replace_range(10..11, "g");
        assert_eq!(
            parse_key(&bad_hex),
            Err(ParseKeyError::InvalidCharacter {
                character: 'g',
                position: 10,
                encoding: KeyEncoding::Hex
            })
        );
        // '0', 'l', 'v' and '2' are not in the z-base-32 alphabet; uppercase is invalid too.
        let mut bad_z32 = Z32.to_owned();
        bad_z32.replace_range(5..6, "l");
        assert_eq!(
            parse_key(&bad_z32),
            Err(ParseKeyError::InvalidCharacter {
                character: 'l',
                position: 5,
                encoding: KeyEncoding::Z32
            })
        );
        assert!(parse_key(&Z32.to_uppercase()).is_err());
        // Non-ASCII input is counted in characters and reported, not sliced.
        let unicode = format!("é{}", &HEX[1..]);
        assert_eq!(
            parse_key(&unicode),
            Err(ParseKeyError::InvalidCharacter {
                character: 'é',
                position: 0,
                encoding: KeyEncoding::Hex
            })
        );
        assert_eq!(
            key_from_bytes(&[0; 31]),
            Err(ParseKeyError::WrongByteLength { got: 31 })
        );
        assert!(z32_decode("y").is_err());
    }

    #[test]
    fn z32_decoding_ignores_unused_trailing_bits_like_js() {
        // The last character carries one data bit; 'y' (0) and 'b' (1) differ only in unused bits.
        let mut alt = Z32.to_owned();
        let last = alt.pop().unwrap();
        assert_eq!(last, 'o');
        let base = z32_decode(Z32).unwrap();
        for c in Z32_ALPHABET.iter().map(|&b| char::from(b)) {
            let decoded = z32_decode(&format!("{alt}{c}")).unwrap();
            assert_eq!(decoded[..31], base[..31]);
        }
    }
}
