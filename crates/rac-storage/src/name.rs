//! Storage names: relative, `/`-separated paths such as `cores/aa/bb/<discovery key>/oplog`.
//!
//! Names can be derived from data a peer sent, so every provider validates them before touching
//! anything: a name must be a relative path of non-empty segments, none of which is `.` or `..`,
//! with no backslash or NUL byte. This keeps every name inside the provider's root.

use crate::error::{Error, Result};

/// The longest accepted name, in bytes (Linux's `PATH_MAX`).
pub const MAX_NAME_LEN: usize = 4096;

/// Checks that `name` is a valid storage name: a relative `/`-separated path of at most
/// [`MAX_NAME_LEN`] bytes whose segments are non-empty and not `.` or `..`, with no backslash
/// or NUL byte.
///
/// # Errors
///
/// [`Error::InvalidName`] saying what is wrong.
///
/// ```
/// use rac_storage::validate_name;
/// assert!(validate_name("cores/aa/bb/0123/oplog").is_ok());
/// assert!(validate_name("../etc/passwd").is_err());
/// assert!(validate_name("/abs").is_err());
/// assert!(validate_name("a//b").is_err());
/// ```
pub fn validate_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        Some("empty name")
    } else if name.len() > MAX_NAME_LEN {
        Some("name too long")
    } else if name.starts_with('/') {
        Some("absolute path")
    } else if name.contains('\\') {
        Some("backslash in name")
    } else if name.contains('\0') {
        Some("NUL byte in name")
    } else {
        name.split('/').find_map(|segment| match segment {
            "" => Some("empty path segment"),
            "." | ".." => Some("`.` or `..` path segment"),
            _ => None,
        })
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(Error::InvalidName {
            name: name.chars().take(256).collect(),
            reason,
        }),
    }
}

/// Checks a listing prefix: empty (everything) or a valid name.
pub(crate) fn validate_prefix(prefix: &str) -> Result<()> {
    if prefix.is_empty() {
        Ok(())
    } else {
        validate_name(prefix)
    }
}

/// Whether `name` lies under the directory-like `prefix` (`""` matches everything).
pub(crate) fn is_under(name: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || name
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_escapes() {
        for bad in [
            "", "/", "/a", "a/", "a//b", ".", "..", "a/../b", "./a", "a/.", "a\\b", "a\0b",
        ] {
            assert!(
                matches!(validate_name(bad), Err(Error::InvalidName { .. })),
                "{bad:?}"
            );
        }
        assert!(validate_name(&"a".repeat(MAX_NAME_LEN + 1)).is_err());
        for good in [
            "a",
            "primary-key",
            "cores/aa/bb/cc/oplog",
            "a.b/..c/d..",
            "...",
        ] {
            assert!(validate_name(good).is_ok(), "{good:?}");
        }
        assert!(validate_prefix("").is_ok());
    }

    #[test]
    fn under() {
        assert!(is_under("cores/a", "cores"));
        assert!(is_under("cores/a", ""));
        assert!(!is_under("cores", "cores"));
        assert!(!is_under("coresx/a", "cores"));
    }
}
