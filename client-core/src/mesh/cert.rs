//! Device certificates: what head office vouches for about a device, signed with the org's key, so
//! that two phones with no server in reach can tell each other's user, role and sites, and a phone
//! can tell who wrote a change it carries for a third.
//!
//! Decision (2026-11-30): the signed bytes are the postcard encoding of the record behind a domain
//! tag. Postcard is deterministic for these types (no maps, no floats), so a verifier re-encodes what
//! it decoded and checks the signature over exactly what the server signed.

use serde::{Deserialize, Serialize};

use crate::rules::{Author, Role};
use crate::signing::{Keypair, verify};

/// How long a certificate is good for from its issue: a phone must reach head office (or a phone
/// that did) within this to keep exchanging with peers.
pub const VALIDITY_MS: i64 = 30 * 24 * 3600 * 1000;

/// Domain tags, so that no signature of one kind passes for another.
const CERT_TAG: &[u8] = b"sitesync device cert v1\0";
const REVOCATIONS_TAG: &[u8] = b"sitesync revocations v1\0";

/// What the org's key says about one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs, reason = "fields named for what they hold")]
pub struct DeviceCert {
    pub device: String,
    /// The device's Ed25519 public key (the store's, registered at its hello).
    pub key: [u8; 32],
    pub user_id: String,
    /// The user's name, as records name their writer.
    pub user_name: String,
    pub role: Role,
    /// Every site of the org.
    pub all_sites: bool,
    /// Sites granted one by one.
    pub sites: Vec<String>,
    pub org: String,
    /// Unix milliseconds.
    pub issued_ms: i64,
    /// Unix milliseconds; the certificate authenticates no peer from then on.
    pub expires_ms: i64,
}

impl DeviceCert {
    /// The device's user as the author of changes, for the write rules.
    pub fn author(&self) -> Author {
        Author {
            device: self.device.clone(),
            user_id: self.user_id.clone(),
            user_name: self.user_name.clone(),
            org: self.org.clone(),
            role: self.role,
            all_sites: self.all_sites,
            sites: self.sites.clone(),
            system: false,
        }
    }
}

/// A [`DeviceCert`] with the org key's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    /// What is vouched for.
    pub cert: DeviceCert,
    /// Ed25519 over the tag and the postcard encoding of `cert` (64 bytes).
    #[serde(with = "serde_bytes")]
    pub sig: Vec<u8>,
}

/// The devices of an org head office revoked, as of `seq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Revocations {
    /// The org the list is for.
    pub org: String,
    /// Grows with every revocation: of two lists, the larger `seq` is the newer.
    pub seq: u64,
    /// Revoked device ids.
    pub devices: Vec<String>,
    /// Their registered keys.
    pub keys: Vec<[u8; 32]>,
}

impl Revocations {
    /// Whether the list names this device or key.
    pub fn revokes(&self, device: &str, key: &[u8; 32]) -> bool {
        self.devices.iter().any(|d| d == device) || self.keys.contains(key)
    }
}

/// A [`Revocations`] list with the org key's signature: a peer can hand on a newer list, never
/// forge one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedRevocations {
    /// The list.
    pub list: Revocations,
    /// Ed25519 over the tag and the postcard encoding of `list`.
    #[serde(with = "serde_bytes")]
    pub sig: Vec<u8>,
}

/// What a phone receives from head office for the mesh: its certificate, the key that signs
/// certificates, and the org's revocations. Served by `GET /v1/device/certificate`, postcard-encoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// The org's public key.
    pub org_key: [u8; 32],
    /// This device's certificate.
    pub cert: Certificate,
    /// The org's revocations when the certificate was issued.
    pub revocations: SignedRevocations,
}

impl Credentials {
    /// Encodes for the wire and the store.
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("credentials always serialize")
    }

    /// Decodes, checking that the org key signed the certificate and the list and that the
    /// certificate is for `key` (the store's own).
    pub fn from_bytes(bytes: &[u8], key: &[u8; 32]) -> Result<Credentials, CertError> {
        let c: Credentials = postcard::from_bytes(bytes).map_err(|e| CertError::Malformed(e.to_string()))?;
        c.cert.check_signature(&c.org_key)?;
        c.revocations.check(&c.org_key, &c.cert.cert.org)?;
        if c.cert.cert.key != *key {
            return Err(CertError::OtherKey);
        }
        Ok(c)
    }
}

/// Why a certificate or list is not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// Bytes that do not decode.
    #[error("malformed certificate: {0}")]
    Malformed(String),
    /// The org key did not sign it.
    #[error("the certificate is not signed by the org's key")]
    BadSignature,
    /// Signed for another org.
    #[error("the certificate is of another org")]
    OtherOrg,
    /// Past its expiry.
    #[error("the certificate of device {device} expired")]
    Expired {
        /// The device it names.
        device: String,
    },
    /// The device is on the org's revocation list.
    #[error("device {device} is revoked")]
    Revoked {
        /// The device it names.
        device: String,
    },
    /// The certificate names another key than the one that holds it.
    #[error("the certificate is for another key")]
    OtherKey,
}

fn signed_bytes<T: Serialize>(tag: &[u8], value: &T) -> Vec<u8> {
    let mut m = tag.to_vec();
    m.extend(postcard::to_allocvec(value).expect("certificates always serialize"));
    m
}

impl Certificate {
    /// Signs `cert` with the org's key (the server's part).
    pub fn issue(org_key: &Keypair, cert: DeviceCert) -> Certificate {
        let sig = org_key.sign(&signed_bytes(CERT_TAG, &cert));
        Certificate { cert, sig }
    }

    /// Whether the org key signed it.
    pub fn check_signature(&self, org_key: &[u8; 32]) -> Result<(), CertError> {
        if verify(org_key, &signed_bytes(CERT_TAG, &self.cert), &self.sig) {
            Ok(())
        } else {
            Err(CertError::BadSignature)
        }
    }

    /// Whether it authenticates a peer now: signed by `org_key` for `org`, not expired at `now_ms`,
    /// not revoked in `revoked`.
    pub fn check(&self, org_key: &[u8; 32], org: &str, now_ms: i64, revoked: &Revocations) -> Result<(), CertError> {
        self.check_author(org_key, org, revoked)?;
        if now_ms >= self.cert.expires_ms {
            return Err(CertError::Expired {
                device: self.cert.device.clone(),
            });
        }
        Ok(())
    }

    /// Whether it may name the author of a change carried for a third party: signed for `org`, not
    /// revoked. Its expiry does not count here: the change may have been made while it was good,
    /// and head office decides again on its own records.
    pub fn check_author(&self, org_key: &[u8; 32], org: &str, revoked: &Revocations) -> Result<(), CertError> {
        self.check_signature(org_key)?;
        if self.cert.org != org {
            return Err(CertError::OtherOrg);
        }
        if revoked.revokes(&self.cert.device, &self.cert.key) {
            return Err(CertError::Revoked {
                device: self.cert.device.clone(),
            });
        }
        Ok(())
    }
}

impl SignedRevocations {
    /// Signs `list` with the org's key (the server's part).
    pub fn issue(org_key: &Keypair, list: Revocations) -> SignedRevocations {
        let sig = org_key.sign(&signed_bytes(REVOCATIONS_TAG, &list));
        SignedRevocations { list, sig }
    }

    /// Whether the org key signed it for `org`.
    pub fn check(&self, org_key: &[u8; 32], org: &str) -> Result<(), CertError> {
        if !verify(org_key, &signed_bytes(REVOCATIONS_TAG, &self.list), &self.sig) {
            return Err(CertError::BadSignature);
        }
        if self.list.org != org {
            return Err(CertError::OtherOrg);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(key: [u8; 32], org: &str, expires_ms: i64) -> DeviceCert {
        DeviceCert {
            device: "d1".into(),
            key,
            user_id: "u1".into(),
            user_name: "Cui".into(),
            role: Role::Foreman,
            all_sites: false,
            sites: vec!["site-a".into()],
            org: org.into(),
            issued_ms: 0,
            expires_ms,
        }
    }

    #[test]
    fn certificates_bind_org_key_org_expiry_and_revocation() {
        let org = Keypair::generate();
        let device = Keypair::generate();
        let c = Certificate::issue(&org, cert(device.public(), "o", 1000));
        let none = Revocations::default();
        c.check(&org.public(), "o", 999, &none).unwrap();
        assert_eq!(
            c.check(&org.public(), "o", 1000, &none),
            Err(CertError::Expired { device: "d1".into() })
        );
        assert_eq!(c.check(&org.public(), "p", 0, &none), Err(CertError::OtherOrg));
        assert_eq!(
            c.check(&Keypair::generate().public(), "o", 0, &none),
            Err(CertError::BadSignature)
        );
        let mut forged = c.clone();
        forged.cert.role = Role::HeadOffice;
        assert_eq!(forged.check(&org.public(), "o", 0, &none), Err(CertError::BadSignature));
        let by_key = Revocations {
            org: "o".into(),
            seq: 1,
            devices: vec![],
            keys: vec![device.public()],
        };
        assert!(matches!(
            c.check(&org.public(), "o", 0, &by_key),
            Err(CertError::Revoked { .. })
        ));
        // Expired certificates still name the author of a carried change.
        c.check_author(&org.public(), "o", &none).unwrap();

        let list = SignedRevocations::issue(&org, by_key.clone());
        list.check(&org.public(), "o").unwrap();
        let mut grown = list.clone();
        grown.list.seq = 9;
        assert_eq!(grown.check(&org.public(), "o"), Err(CertError::BadSignature));

        let creds = Credentials {
            org_key: org.public(),
            cert: c.clone(),
            revocations: list,
        };
        let bytes = creds.to_bytes();
        assert_eq!(Credentials::from_bytes(&bytes, &device.public()).unwrap(), creds);
        assert_eq!(
            Credentials::from_bytes(&bytes, &Keypair::generate().public()),
            Err(CertError::OtherKey)
        );
    }
}
