//! Sealing personal numbers (ID-card and bank-card numbers, PIPL) before they enter a document.
//!
//! Site documents are replicated to every phone of a site and kept by the server, so a number
//! written into one in clear would lie in every copy and in the server's data directory. Instead a
//! writer stores three things: the number sealed to its org's X25519 public key (an anonymous
//! `crypto_box` sealed box, base64), which only the server (holding the secret half) opens, for
//! head office and payroll; the masked number every other reader shows; and, where an identity or
//! a "same number?" test is needed, a keyed hash (HMAC-SHA256 under the org's identity key) that
//! every enrolled device computes alike, so two offline phones adding the same card still name one
//! worker, while a reader without the key cannot test guesses against it.
//!
//! Phones get the public half and the identity key from the server after a sync
//! (`GET /v1/org/pii-key`, kept in the store's metadata); the server makes both on first use.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use crypto_box::{PublicKey, SecretKey};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Bytes a sealed box adds to its plaintext: an ephemeral public key (32) and a MAC tag (16).
pub const SEAL_OVERHEAD: usize = 48;
/// Longest plaintext sealed here (a 32-character ID card or a 30-digit account).
const MAX_CLEAR: usize = 64;

/// What a phone needs to write personal numbers: the org's sealing public key and identity key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgPiiKey {
    /// The org the key belongs to.
    pub org: String,
    /// X25519 public key, hex: numbers are sealed to it.
    pub seal_key: String,
    /// HMAC key, hex: worker ids and "same number?" digests are keyed with it.
    pub identity_key: String,
}

/// A key that is not what [`OrgPiiKey`] or [`OrgPiiSecret`] must hold, or a sealed value that does
/// not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PiiError {
    /// The key text is not 32 bytes of hex (or two such halves for a secret).
    #[error("malformed personal-data key")]
    MalformedKey,
    /// A sealed value is not base64 of a sealed box of a plausible length.
    #[error("malformed sealed value")]
    MalformedSealed,
    /// A sealed value does not open with this org's key (another org's, or tampered with).
    #[error("a sealed value does not open with the org's key")]
    WrongKey,
}

fn key32(hex_text: &str) -> Result<[u8; 32], PiiError> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_text, &mut out).map_err(|_| PiiError::MalformedKey)?;
    Ok(out)
}

impl OrgPiiKey {
    /// Checks both halves are 32 bytes of hex.
    pub fn check(&self) -> Result<(), PiiError> {
        key32(&self.seal_key)?;
        key32(&self.identity_key)?;
        Ok(())
    }

    /// `clear` sealed to the org (base64); only [`OrgPiiSecret::open`] reads it back. Two seals of
    /// the same text differ (fresh ephemeral key each time).
    pub fn seal(&self, clear: &str) -> Result<String, PiiError> {
        let public = PublicKey::from(key32(&self.seal_key)?);
        let sealed = public
            .seal(&mut crypto_box::aead::OsRng, clear.as_bytes())
            .map_err(|_| PiiError::MalformedKey)?;
        Ok(B64.encode(sealed))
    }

    /// The first 16 hex digits of HMAC-SHA256 under the identity key over `purpose`, a zero byte,
    /// and `clear`: equal for equal numbers on every enrolled device, unguessable without the key.
    pub fn digest(&self, purpose: &str, clear: &str) -> Result<String, PiiError> {
        let key = key32(&self.identity_key)?;
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).map_err(|_| PiiError::MalformedKey)?;
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(clear.as_bytes());
        Ok(hex::encode(&mac.finalize().into_bytes()[..8]))
    }
}

/// The org's secret halves, held by the server alone: opens sealed numbers for head office.
#[derive(Clone)]
pub struct OrgPiiSecret {
    /// X25519 secret key.
    secret: [u8; 32],
    /// The HMAC key phones get too.
    identity: [u8; 32],
}

impl std::fmt::Debug for OrgPiiSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OrgPiiSecret(..)")
    }
}

impl OrgPiiSecret {
    /// A fresh key pair and identity key from the OS's random source.
    pub fn generate() -> Result<OrgPiiSecret, getrandom::Error> {
        let mut secret = [0u8; 32];
        let mut identity = [0u8; 32];
        getrandom::fill(&mut secret)?;
        getrandom::fill(&mut identity)?;
        Ok(OrgPiiSecret { secret, identity })
    }

    /// Parses [`OrgPiiSecret::to_hex`]'s text: the secret key's hex, `:`, the identity key's hex.
    pub fn from_hex(text: &str) -> Result<OrgPiiSecret, PiiError> {
        let (s, i) = text.trim().split_once(':').ok_or(PiiError::MalformedKey)?;
        Ok(OrgPiiSecret {
            secret: key32(s)?,
            identity: key32(i)?,
        })
    }

    /// The stored form (secret; keep it where the data directory's readers cannot read it).
    pub fn to_hex(&self) -> String {
        format!("{}:{}", hex::encode(self.secret), hex::encode(self.identity))
    }

    /// What phones of `org` are given.
    pub fn public(&self, org: &str) -> OrgPiiKey {
        let public = SecretKey::from(self.secret).public_key();
        OrgPiiKey {
            org: org.to_string(),
            seal_key: hex::encode(public.as_bytes()),
            identity_key: hex::encode(self.identity),
        }
    }

    /// The clear text of a value sealed by [`OrgPiiKey::seal`] to this org.
    pub fn open(&self, sealed: &str) -> Result<String, PiiError> {
        let bytes = check_sealed(sealed)?;
        let clear = SecretKey::from(self.secret)
            .unseal(&bytes)
            .map_err(|_| PiiError::WrongKey)?;
        String::from_utf8(clear).map_err(|_| PiiError::MalformedSealed)
    }
}

/// The bytes of a sealed value, if it has the shape of one (base64, overhead plus 1 to 64 bytes):
/// what the gate checks of a value it cannot open.
pub fn check_sealed(sealed: &str) -> Result<Vec<u8>, PiiError> {
    let bytes = B64.decode(sealed).map_err(|_| PiiError::MalformedSealed)?;
    if !(SEAL_OVERHEAD + 1..=SEAL_OVERHEAD + MAX_CLEAR).contains(&bytes.len()) {
        return Err(PiiError::MalformedSealed);
    }
    Ok(bytes)
}

/// What each sealed field's keyed digest is computed for, so an ID-card and an account number
/// that happen to share digits never share a digest.
pub mod purpose {
    /// A worker's id from his ID card (`w-` + the digest).
    pub const WORKER: &str = "sitesync-worker";
    /// A bank account, to tell whether the sealed one on record is the same number.
    pub const BANK_ACCOUNT: &str = "sitesync-bank-account";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_opens_only_with_its_orgs_secret() {
        let a = OrgPiiSecret::generate().unwrap();
        let b = OrgPiiSecret::generate().unwrap();
        let key = a.public("org-a");
        key.check().unwrap();
        let s1 = key.seal("33010619900101123X").unwrap();
        let s2 = key.seal("33010619900101123X").unwrap();
        assert_ne!(s1, s2, "a fresh ephemeral key per seal");
        assert!(!s1.contains("123X"));
        assert_eq!(a.open(&s1).unwrap(), "33010619900101123X");
        assert_eq!(b.open(&s1), Err(PiiError::WrongKey));
        assert_eq!(a.open("not base64!"), Err(PiiError::MalformedSealed));
        assert_eq!(OrgPiiSecret::from_hex(&a.to_hex()).unwrap().public("org-a"), key);
        assert!(OrgPiiSecret::from_hex("00").is_err());
    }

    #[test]
    fn digests_are_keyed_and_per_purpose() {
        let a = OrgPiiSecret::generate().unwrap().public("o");
        let b = OrgPiiSecret::generate().unwrap().public("o");
        let d = a.digest(purpose::WORKER, "X1").unwrap();
        assert_eq!(d.len(), 16);
        assert_eq!(d, a.digest(purpose::WORKER, "X1").unwrap());
        assert_ne!(d, b.digest(purpose::WORKER, "X1").unwrap());
        assert_ne!(d, a.digest(purpose::BANK_ACCOUNT, "X1").unwrap());
    }
}
