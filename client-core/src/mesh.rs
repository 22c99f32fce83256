//! The site mesh: phones of one company exchange the documents they may both read directly, with no
//! server, and carry each other's signed changes to head office.
//!
//! - [`cert`]: device certificates and revocation lists signed by the org's key (head office issues
//!   them; the phone keeps its own in its store).
//! - [`protocol`]: the peer messages.
//! - [`receipt`]: head office's receipts, signed by the org's key: which heads of a document the
//!   server held, handed on over the mesh so authors learn their carried changes arrived.
//! - [`engine`]: the sans-I/O peer exchange: hello with certificates and a signed challenge, then
//!   heads, then the changes each lacks with their signatures and their authors' certificates; the
//!   receiver accepts a change only if its signature verifies and its author's role may write it
//!   (the same gate as the server's, [`crate::store::Screen`]).
//! - `transport` (feature `net`): the exchange over any byte stream, and over TCP.
//!
//! Changes received from a peer are pending for this phone's next server sync like its own: the
//! server verifies each against its original device's key and attributes it to that device. After
//! that sync the phone asks head office for receipts of the documents it carried, keeps them, and
//! hands them on: a phone whose heads of a document equal a receipt's marks it at head office.

pub mod cert;
pub mod engine;
pub mod protocol;
pub mod receipt;
#[cfg(feature = "net")]
pub mod transport;

use cert::{CertError, Certificate, Credentials, SignedRevocations};
use receipt::SignedReceipt;

use crate::store::Store;

/// Store metadata keys of the mesh.
mod keys {
    /// This device's [`super::Credentials`], postcard, hex.
    pub const CREDENTIALS: &str = "mesh.credentials";
    /// The sync upgrade's [`crate::sync::protocol::CREDENTIALS_HEADER`] when [`CREDENTIALS`] were
    /// fetched: what they say, apart from their times, as head office saw it then.
    pub const CREDENTIALS_TAG: &str = "mesh.credentials_tag";
    /// The newest [`super::SignedRevocations`] known (from head office or a peer), postcard, hex.
    pub const REVOCATIONS: &str = "mesh.revocations";
    /// Prefix of the certificates of other devices met or carried, by key (hex).
    pub const CERT_PREFIX: &str = "mesh.cert.";
    /// The documents this phone took changes of from a peer and no receipt matched since, postcard
    /// list of document ids, hex.
    pub const CARRIED: &str = "mesh.carried";
    /// Prefix of the newest [`super::SignedReceipt`] kept per document (by document id).
    pub const RECEIPT_PREFIX: &str = "mesh.receipt.";
}

/// Why a peer exchange failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// This phone has no certificate yet: sync with head office once.
    #[error("this phone has no device certificate yet: sync with the server first")]
    NoCertificate,
    /// This phone refused the peer (its certificate, or its proof of holding the key).
    #[error("refused the peer: {0}")]
    Rejected(String),
    /// The peer refused this phone.
    #[error("the peer refused this phone: {0}")]
    RefusedBy(String),
    /// The peer broke the protocol (a message out of order, a frame that does not decode).
    #[error("peer protocol: {0}")]
    Protocol(String),
    /// The connection failed.
    #[error("peer connection: {0}")]
    Io(#[from] std::io::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::Error),
}

impl From<CertError> for PeerError {
    fn from(e: CertError) -> PeerError {
        PeerError::Rejected(e.to_string())
    }
}

fn put<T: serde::Serialize>(store: &mut Store, key: &str, value: &T) -> crate::Result<()> {
    let bytes = postcard::to_allocvec(value).map_err(|e| crate::Error::invalid("mesh", e.to_string()))?;
    store.set_meta(key, &hex::encode(bytes))
}

fn get<T: serde::de::DeserializeOwned>(store: &Store, key: &str) -> crate::Result<Option<T>> {
    let Some(text) = store.meta(key)? else {
        return Ok(None);
    };
    // A value this build cannot read is as good as none: head office sends a fresh one.
    Ok(hex::decode(text).ok().and_then(|b| postcard::from_bytes(&b).ok()))
}

/// Keeps the credentials head office issued (`bytes` as `GET /v1/device/certificate` answers),
/// after checking them: signed by the org key they name, for this store's key. The revocation list
/// replaces the kept one unless the kept one is newer.
pub fn store_credentials(store: &mut Store, bytes: &[u8]) -> Result<Credentials, PeerError> {
    let creds = Credentials::from_bytes(bytes, &store.public_key())?;
    put(store, keys::CREDENTIALS, &creds)?;
    keep_revocations(store, &creds.revocations)?;
    Ok(creds)
}

/// The credentials kept, if head office issued some.
pub fn credentials(store: &Store) -> crate::Result<Option<Credentials>> {
    Ok(get::<Credentials>(store, keys::CREDENTIALS)?.filter(|c| c.cert.cert.key == store.public_key()))
}

/// Whether the phone should ask head office for fresh credentials after a sync whose upgrade said
/// `tag` ([`crate::sync::protocol::CREDENTIALS_HEADER`]): it holds none, the server sent no tag (an
/// older server), the tag differs from the one kept with them (a grant or the org's revocation list
/// changed), or the certificate is past half its validity at `now_ms` (renewed well before a phone
/// that then goes weeks without signal needs it).
pub fn credentials_due(store: &Store, tag: Option<&str>, now_ms: i64) -> crate::Result<bool> {
    let Some(creds) = credentials(store)? else {
        return Ok(true);
    };
    let Some(tag) = tag else {
        return Ok(true);
    };
    let cert = &creds.cert.cert;
    let half_life = cert.issued_ms + (cert.expires_ms - cert.issued_ms) / 2;
    Ok(store.meta(keys::CREDENTIALS_TAG)?.as_deref() != Some(tag) || now_ms >= half_life)
}

/// Remembers the tag the credentials just kept were fetched under (see [`credentials_due`]).
pub fn keep_credentials_tag(store: &mut Store, tag: &str) -> crate::Result<()> {
    store.set_meta(keys::CREDENTIALS_TAG, tag)
}

/// The newest revocation list kept.
pub fn revocations(store: &Store) -> crate::Result<Option<SignedRevocations>> {
    get(store, keys::REVOCATIONS)
}

/// Keeps `list` if it is newer than the one kept (the caller checked its signature).
fn keep_revocations(store: &mut Store, list: &SignedRevocations) -> crate::Result<bool> {
    let newer = revocations(store)?.is_none_or(|k| list.list.seq > k.list.seq);
    if newer {
        put(store, keys::REVOCATIONS, list)?;
    }
    Ok(newer)
}

/// The certificate of the device with `key`, if this phone met or carried it.
fn carried_cert(store: &Store, key: &[u8; 32]) -> crate::Result<Option<Certificate>> {
    get(store, &format!("{}{}", keys::CERT_PREFIX, hex::encode(key)))
}

/// Keeps a certificate (checked by the caller) to hand on with the changes of its device.
fn keep_cert(store: &mut Store, cert: &Certificate) -> crate::Result<()> {
    let key = format!("{}{}", keys::CERT_PREFIX, hex::encode(cert.cert.key));
    if get::<Certificate>(store, &key)?.is_some_and(|k| k.cert.issued_ms >= cert.cert.issued_ms) {
        return Ok(());
    }
    put(store, &key, cert)
}

/// The documents taken from a peer that no receipt covered yet: the next server sync asks for
/// theirs.
pub fn carried(store: &Store) -> crate::Result<Vec<String>> {
    Ok(get(store, keys::CARRIED)?.unwrap_or_default())
}

/// Adds `doc` to the documents [`carried`].
fn note_carried(store: &mut Store, doc: &str) -> crate::Result<()> {
    let mut list = carried(store)?;
    if !list.iter().any(|d| d == doc) {
        list.push(doc.to_string());
        put(store, keys::CARRIED, &list)?;
    }
    Ok(())
}

/// The newest receipt kept for `doc`.
pub fn receipt(store: &Store, doc: &str) -> crate::Result<Option<SignedReceipt>> {
    get(store, &format!("{}{doc}", keys::RECEIPT_PREFIX))
}

/// Takes in a receipt from head office or a peer: ignored unless the org key of this phone's
/// credentials signed it for its org. A good one is kept (unless one as late is) to be handed on. If
/// the store's heads of the document are exactly the receipt's, everything here of it is at head
/// office: it leaves the [`carried`] list and its synced heads become them. Returns whether that
/// marked the document (it was pending).
pub fn take_receipt(store: &mut Store, creds: &Credentials, r: &SignedReceipt) -> crate::Result<bool> {
    if r.check(&creds.org_key, &creds.cert.cert.org).is_err() {
        return Ok(false);
    }
    let Ok(id) = r.receipt.doc.parse::<crate::ids::DocId>() else {
        return Ok(false);
    };
    let key = format!("{}{}", keys::RECEIPT_PREFIX, r.receipt.doc);
    if get::<SignedReceipt>(store, &key)?.is_none_or(|k| k.receipt.issued_ms < r.receipt.issued_ms) {
        put(store, &key, r)?;
    }
    let mut mine = store.heads(&id)?;
    mine.sort();
    let mut theirs = r.receipt.heads.clone();
    theirs.sort();
    if mine.is_empty() || mine != theirs {
        return Ok(false);
    }
    let list = carried(store)?;
    if list.contains(&r.receipt.doc) {
        let rest: Vec<&String> = list.iter().filter(|d| **d != r.receipt.doc).collect();
        put(store, keys::CARRIED, &rest)?;
    }
    let mut synced = store.synced_heads(&id)?.unwrap_or_default();
    synced.sort();
    if synced == mine {
        return Ok(false);
    }
    store.set_synced_heads(&id, Some(&mine))?;
    Ok(true)
}
