//! Encryption of the store file at rest: SQLCipher (AES-256 pages, HMAC per page), with a raw
//! 256-bit key the app keeps in the platform keystore (Android Keystore, iOS Keychain).
//!
//! Decisions (2026-11-30, #20 "Personal data"):
//! - The key is raw (`PRAGMA key = "x'…'"`), not a passphrase: a keystore key is already random, so
//!   SQLCipher's PBKDF2 (256,000 rounds, ~0.3 s on a phone at every open) would buy nothing.
//! - Whether a key can be applied is asked of the linked library at run time (`PRAGMA
//!   cipher_version`), not of a cargo feature: a build without SQLCipher would otherwise take a key,
//!   ignore it, and write a clear file. It refuses the key instead ([`StoreKeyProblem::Unavailable`]).
//! - A wrong key, a missing key and a key for a clear file are told apart (the clear file's first
//!   16 bytes are SQLite's magic string; an encrypted file's are random salt), so the app can say
//!   which, instead of SQLite's "file is not a database".
//! - The `-wal` file holds the same encrypted pages; the `-shm` index holds no row data. Attachments
//!   in the `.blobs` folder are not encrypted by this.

use std::io::Read;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use crate::error::{Error, Result};

/// The key of an encrypted store: 32 random bytes from the platform keystore.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreKey([u8; 32]);

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreKey(…)")
    }
}

impl StoreKey {
    /// The key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> StoreKey {
        StoreKey(bytes)
    }

    /// The key from 64 hex digits (surrounding white space ignored, as in a key file).
    ///
    /// Errors: anything else, as [`Error::StoreKey`] with [`StoreKeyProblem::Malformed`].
    pub fn from_hex(text: &str) -> Result<StoreKey> {
        let bytes = hex::decode(text.trim()).ok().and_then(|b| <[u8; 32]>::try_from(b).ok());
        bytes.map(StoreKey).ok_or(Error::StoreKey {
            path: String::new(),
            problem: StoreKeyProblem::Malformed,
        })
    }

    /// The key from a slice that must be 32 bytes long (the mobile API's `bytes`).
    ///
    /// Errors: another length, as [`StoreKeyProblem::Malformed`].
    pub fn from_slice(bytes: &[u8]) -> Result<StoreKey> {
        <[u8; 32]>::try_from(bytes).map(StoreKey).map_err(|_| Error::StoreKey {
            path: String::new(),
            problem: StoreKeyProblem::Malformed,
        })
    }
}

/// Why an encrypted store could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreKeyProblem {
    /// The file is encrypted and the key given does not open it.
    #[error("the key does not open this encrypted store")]
    Wrong,
    /// The file is encrypted and no key was given.
    #[error("the store is encrypted: give its key")]
    Required,
    /// A key was given but the file is a clear (unencrypted) store.
    #[error("the store is not encrypted; open it without a key")]
    NotEncrypted,
    /// A key was given but this build has no SQLCipher (the `sqlcipher` feature is off).
    #[error("this build cannot encrypt stores (built without SQLCipher)")]
    Unavailable,
    /// The key is not 32 bytes (64 hex digits).
    #[error("a store key is 32 bytes, written as 64 hex digits")]
    Malformed,
}

/// SQLite's magic string, the first 16 bytes of every clear database file.
const CLEAR_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Whether the linked SQLite is SQLCipher.
pub fn available() -> bool {
    Connection::open_in_memory().is_ok_and(|c| cipher_version(&c).is_some())
}

fn cipher_version(conn: &Connection) -> Option<String> {
    conn.query_row("PRAGMA cipher_version", [], |r| r.get::<_, String>(0))
        .optional()
        .ok()
        .flatten()
}

/// Applies `key` to a just-opened connection on `path` and proves it opens the file: the first
/// statement on the connection, before any other pragma.
pub(super) fn unlock(conn: &Connection, path: &Path, key: Option<&StoreKey>) -> Result<()> {
    let fail = |problem| Error::StoreKey {
        path: path.display().to_string(),
        problem,
    };
    if let Some(k) = key {
        if cipher_version(conn).is_none() {
            return Err(fail(StoreKeyProblem::Unavailable));
        }
        // Only hex digits are formatted in: no quoting question.
        conn.execute_batch(&format!("PRAGMA key = \"x'{}'\";", hex::encode(k.0)))?;
    }
    match conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0)) {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::NotADatabase => {
            Err(fail(match (key, is_clear(path)) {
                (Some(_), true) => StoreKeyProblem::NotEncrypted,
                (Some(_), false) => StoreKeyProblem::Wrong,
                (None, _) => StoreKeyProblem::Required,
            }))
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether the file at `path` starts as a clear SQLite database.
fn is_clear(path: &Path) -> bool {
    let mut head = [0u8; 16];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| &head == CLEAR_MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_keys_are_refused() {
        for bad in ["", "abcd", &"0".repeat(63), &"g".repeat(64)] {
            assert!(matches!(
                StoreKey::from_hex(bad),
                Err(Error::StoreKey {
                    problem: StoreKeyProblem::Malformed,
                    ..
                })
            ));
        }
        assert!(StoreKey::from_hex(&format!(" {}\n", "ab".repeat(32))).is_ok());
        assert!(StoreKey::from_slice(&[1; 31]).is_err());
    }

    #[test]
    fn the_key_is_never_printed() {
        assert_eq!(format!("{:?}", StoreKey::from_bytes([7; 32])), "StoreKey(…)");
    }
}
