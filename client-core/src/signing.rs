//! Signed changes: each device signs every change it makes with its own Ed25519 key, so that who
//! wrote a value can be proven outside our server, and no device can pass its writes off as another's.
//!
//! Decision (2026-11-30): a store makes its key when it is first opened (so that a store used
//! offline before `init` already writes under it) and keeps the private half in its own database;
//! it never leaves the store. Every Automerge actor a store writes with starts with the first
//! [`FINGERPRINT`] bytes of SHA-256 of its public key, so that anyone holding the public keys can tell
//! which device's actor made a change without asking a server, and the server can refuse a change
//! whose actor names one device while another device's key signed it. The signed message binds the
//! change hash to its document: a signature cannot be replayed onto another document.

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Bytes of a key's fingerprint that lead every actor made under it.
pub const FINGERPRINT: usize = 8;

/// What is signed for a change: a domain tag, the document id and the change hash.
fn message(doc: &str, hash: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(32 + doc.len() + 32);
    m.extend_from_slice(b"sitesync change v1\0");
    m.extend_from_slice(doc.as_bytes());
    m.push(0);
    m.extend_from_slice(hash);
    m
}

/// A change's signature: which key, and the signature itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeSig {
    /// The change hash.
    pub hash: [u8; 32],
    /// The signer's Ed25519 public key.
    pub key: [u8; 32],
    /// The Ed25519 signature over [`message`] (64 bytes).
    #[serde(with = "serde_bytes")]
    pub sig: Vec<u8>,
}

impl ChangeSig {
    /// Whether the signature is `key`'s over this change of `doc`.
    pub fn verifies(&self, doc: &str) -> bool {
        verify(&self.key, &message(doc, &self.hash), &self.sig)
    }
}

/// Whether `sig` is `key`'s signature of `msg`.
pub fn verify(key: &[u8; 32], msg: &[u8], sig: &[u8]) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(key) else {
        return false;
    };
    let Ok(sig) = ed25519_dalek::Signature::from_slice(sig) else {
        return false;
    };
    // `verify_strict` checks the same equation as `verify` and also refuses small-order keys and
    // `R`s (ed25519-dalek 2.2 `verifying.rs`), so checking both did the curve arithmetic twice.
    key.verify_strict(msg, &sig).is_ok()
}

/// A device's (or the server's) signing key.
#[derive(Clone)]
pub struct Keypair(SigningKey);

impl std::fmt::Debug for Keypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keypair({})", hex::encode(self.public()))
    }
}

impl Keypair {
    /// A new key from the operating system's random source.
    pub fn generate() -> Keypair {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).expect("the operating system's random source");
        Keypair(SigningKey::from_bytes(&seed))
    }

    /// The key whose secret half is `secret` (as [`Keypair::secret_hex`] wrote it).
    pub fn from_secret_hex(secret: &str) -> Option<Keypair> {
        let mut seed = [0u8; 32];
        hex::decode_to_slice(secret.trim(), &mut seed).ok()?;
        Some(Keypair(SigningKey::from_bytes(&seed)))
    }

    /// The secret half, for the store that keeps it.
    pub(crate) fn secret_hex(&self) -> String {
        hex::encode(self.0.to_bytes())
    }

    /// The public half.
    pub fn public(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }

    /// Signs a change of `doc`.
    pub fn sign_change(&self, doc: &str, hash: [u8; 32]) -> ChangeSig {
        ChangeSig {
            hash,
            key: self.public(),
            sig: self.0.sign(&message(doc, &hash)).to_bytes().to_vec(),
        }
    }

    /// Signs arbitrary bytes (the server's evidence files and enrolment records).
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        self.0.sign(msg).to_bytes().to_vec()
    }

    /// A fresh Automerge actor under this key: its fingerprint, then random bytes.
    pub fn new_actor(&self) -> automerge::ActorId {
        let mut bytes = fingerprint(&self.public()).to_vec();
        bytes.extend_from_slice(&uuid::Uuid::new_v4().as_bytes()[..8]);
        automerge::ActorId::from(bytes)
    }
}

/// The first bytes of SHA-256 of a public key.
pub fn fingerprint(key: &[u8; 32]) -> [u8; FINGERPRINT] {
    let d = Sha256::digest(key);
    let mut out = [0u8; FINGERPRINT];
    out.copy_from_slice(&d[..FINGERPRINT]);
    out
}

/// The key fingerprint an actor (hex) was made under, if it has the shape of one made by
/// [`Keypair::new_actor`] (older stores made fully random actors).
pub fn actor_fingerprint(actor_hex: &str) -> Option<[u8; FINGERPRINT]> {
    let bytes = hex::decode(actor_hex).ok()?;
    if bytes.len() != 16 {
        return None;
    }
    let mut out = [0u8; FINGERPRINT];
    out.copy_from_slice(&bytes[..FINGERPRINT]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_key_document_and_change() {
        let k = Keypair::generate();
        let s = k.sign_change("day|s|2026-12-01", [7; 32]);
        assert!(s.verifies("day|s|2026-12-01"));
        assert!(!s.verifies("day|s|2026-12-02"));
        let mut other = s.clone();
        other.hash[0] ^= 1;
        assert!(!other.verifies("day|s|2026-12-01"));
        let mut forged = s.clone();
        forged.key = Keypair::generate().public();
        assert!(!forged.verifies("day|s|2026-12-01"));
        let back = Keypair::from_secret_hex(&k.secret_hex()).unwrap();
        assert_eq!(back.public(), k.public());
        let actor = k.new_actor().to_hex_string();
        assert_eq!(actor_fingerprint(&actor), Some(fingerprint(&k.public())));
    }
}
