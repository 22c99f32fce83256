//! Head office's receipts: the org's key saying which heads of a document the server held, so that a
//! phone whose changes another phone carried to head office learns they arrived from any phone that
//! holds the receipt, and never from a peer's bare word (a peer that could mark a document synced
//! could stop its author from ever uploading it).
//!
//! Signed as certificates are (see [`super::cert`]): Ed25519 over a domain tag and the postcard
//! encoding of the record.

use serde::{Deserialize, Serialize};

use super::cert::CertError;
use crate::signing::{Keypair, verify};

/// Domain tag, so that no other signature of the org's key passes for a receipt.
const RECEIPT_TAG: &[u8] = b"sitesync receipt v1\0";

/// How many documents one `POST /v1/device/receipts` may ask about.
pub const MAX_DOCS: usize = 1000;

/// What head office held of one document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The org whose key signed it.
    pub org: String,
    /// The document id, as `DocId` displays it.
    pub doc: String,
    /// The server's heads of the document when issued, hex, sorted: every change up to them is
    /// durable at head office.
    pub heads: Vec<String>,
    /// Unix milliseconds; of two receipts for a document, the later is kept.
    pub issued_ms: i64,
}

/// A [`Receipt`] with the org key's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedReceipt {
    /// What head office held.
    pub receipt: Receipt,
    /// Ed25519 over the tag and the postcard encoding of `receipt` (64 bytes).
    #[serde(with = "serde_bytes")]
    pub sig: Vec<u8>,
}

fn signed_bytes(receipt: &Receipt) -> Vec<u8> {
    let mut m = RECEIPT_TAG.to_vec();
    m.extend(postcard::to_allocvec(receipt).expect("receipts always serialize"));
    m
}

impl SignedReceipt {
    /// Signs `receipt` with the org's key (the server's part); its heads are sorted first.
    pub fn issue(org_key: &Keypair, mut receipt: Receipt) -> SignedReceipt {
        receipt.heads.sort();
        let sig = org_key.sign(&signed_bytes(&receipt));
        SignedReceipt { receipt, sig }
    }

    /// Whether the org key signed it for `org`.
    pub fn check(&self, org_key: &[u8; 32], org: &str) -> Result<(), CertError> {
        if !verify(org_key, &signed_bytes(&self.receipt), &self.sig) {
            return Err(CertError::BadSignature);
        }
        if self.receipt.org != org {
            return Err(CertError::OtherOrg);
        }
        Ok(())
    }

    /// Encodes a server's answer (a list of receipts) for the wire.
    pub fn list_to_bytes(list: &[SignedReceipt]) -> Vec<u8> {
        postcard::to_allocvec(list).expect("receipts always serialize")
    }

    /// Decodes a server's answer; each receipt still needs [`SignedReceipt::check`].
    pub fn list_from_bytes(bytes: &[u8]) -> Result<Vec<SignedReceipt>, CertError> {
        postcard::from_bytes(bytes).map_err(|e| CertError::Malformed(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_bind_org_key_org_doc_and_heads() {
        let org = Keypair::generate();
        let r = SignedReceipt::issue(
            &org,
            Receipt {
                org: "o".into(),
                doc: "day|site-a|2026-12-01".into(),
                heads: vec!["bb".into(), "aa".into()],
                issued_ms: 5,
            },
        );
        assert_eq!(r.receipt.heads, ["aa", "bb"], "sorted when issued");
        r.check(&org.public(), "o").unwrap();
        assert_eq!(r.check(&org.public(), "p"), Err(CertError::OtherOrg));
        assert_eq!(
            r.check(&Keypair::generate().public(), "o"),
            Err(CertError::BadSignature)
        );
        for alter in [
            |r: &mut Receipt| r.heads.push("cc".into()),
            |r: &mut Receipt| r.doc = "day|site-a|2026-12-02".into(),
            |r: &mut Receipt| r.issued_ms += 1,
        ] {
            let mut forged = r.clone();
            alter(&mut forged.receipt);
            assert_eq!(forged.check(&org.public(), "o"), Err(CertError::BadSignature));
        }
        let bytes = SignedReceipt::list_to_bytes(std::slice::from_ref(&r));
        assert_eq!(SignedReceipt::list_from_bytes(&bytes).unwrap(), vec![r]);
        assert!(SignedReceipt::list_from_bytes(&[0xff, 0xff]).is_err());
    }
}
