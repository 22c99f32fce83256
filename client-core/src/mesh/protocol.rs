//! The peer protocol's messages. Frames are those of the server sync ([`crate::sync::protocol`]:
//! `[version][flags][postcard body]`, deflated when worth it, at most 16 MiB); over a byte stream
//! each frame is preceded by its length (u32, big-endian), see [`super::transport`].

use serde::{Deserialize, Serialize};

use super::cert::{Certificate, SignedRevocations};
use super::receipt::SignedReceipt;
use crate::sync::protocol::{DocSync, Hash};

/// What one phone sends another. Both sides send the same sequence — `Hello`, `Proof`, `Offer`,
/// `Docs` — each step answering the peer's previous one, so neither side leads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerMsg {
    /// Who I am, as head office vouched, the newest revocations I know, and a fresh challenge.
    Hello {
        /// This device's certificate.
        cert: Box<Certificate>,
        /// The org's revocations as this phone knows them (the receiver keeps the newer list).
        revocations: Box<SignedRevocations>,
        /// 32 random bytes the peer must sign with its device key.
        nonce: [u8; 32],
    },
    /// The device key's signature over the peer's nonce (see [`proof_message`]): the certificate's
    /// key is held here, not replayed.
    Proof {
        /// Ed25519, 64 bytes.
        #[serde(with = "serde_bytes")]
        sig: Vec<u8>,
    },
    /// The documents both may read that this phone holds, with its heads of each.
    Offer {
        /// (document id, heads).
        docs: Vec<(String, Vec<Hash>)>,
    },
    /// What the peer lacks of each document, every change with its signature, the certificates
    /// of the changes' authors this phone holds (so the receiver can check each author's rights
    /// with no server), and head office's receipts this phone holds for documents both may read.
    Docs {
        /// One per document, `base` = the heads the peer offered.
        docs: Vec<DocSync>,
        /// Certificates of authors, the senders' own included.
        certs: Vec<Certificate>,
        /// The newest receipt kept of each document both may read (sent or not: the peer may
        /// already hold every change and lack only the word that head office has them).
        receipts: Vec<SignedReceipt>,
    },
    /// The exchange is refused; the connection closes after it.
    Refused {
        /// Why, in a sentence (no personal data).
        reason: String,
    },
}

/// What a [`PeerMsg::Proof`] signs: a domain tag, the challenger's nonce and the prover's key.
pub fn proof_message(nonce: &[u8; 32], prover_key: &[u8; 32]) -> Vec<u8> {
    let mut m = b"sitesync peer proof v1\0".to_vec();
    m.extend_from_slice(nonce);
    m.extend_from_slice(prover_key);
    m
}
