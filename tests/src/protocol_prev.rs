//! A frozen copy of a phone's sync encoding one and two versions behind the current protocol: the
//! messages and framing of protocol version 2 exactly as `client-core/src/sync/protocol.rs` had them
//! at commit 870e09b (the last build that spoke it), and of version 1 as at f2fc86e^. The server's
//! decode shim (`sitesync_core::sync::protocol::v2`) is a separate copy, so a slip in it fails a real
//! sync here (`tests/tests/sync/old_phones.rs`) instead of agreeing with itself.
//!
//! The types version 2 nests from elsewhere in client-core (`Author`, `Role`, `Violation`,
//! `ChangeSig`) are used as they are now; a change to their encoding is a protocol change, and the
//! pinned frame bytes in `old_phones.rs` catch it. Edit nothing here except to delete version 1's
//! copy once no test needs it: this is what old phones in the field send and read.

#![allow(
    missing_docs,
    reason = "a verbatim copy; the docs are those of the version it copies"
)]

/// Protocol version 2: signed changes, no update notice in the welcome.
pub mod v2 {
    use serde::{Deserialize, Serialize};

    use sitesync_core::rules::{Author, Role, Violation};
    pub use sitesync_core::signing::ChangeSig;

    /// The version byte of every frame.
    pub const VERSION: u8 = 2;
    /// Frames larger than this are refused by both sides, compressed or not.
    pub const MAX_FRAME: usize = 16 * 1024 * 1024;
    const DEFLATE_FROM: usize = 1024;
    const FLAG_DEFLATE: u8 = 1;

    /// A change hash, as Automerge makes it.
    pub type Hash = [u8; 32];

    /// One document's part of a push or a server update.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct DocSync {
        /// The document id (`day|site-hz-01|2026-09-01`).
        pub doc: String,
        /// Heads the receiver is known to have (the server's last acknowledgement, for a push); the
        /// changes are everything after them. Empty: the changes are the whole document.
        pub base: Vec<Hash>,
        /// The sender's heads once `changes` are applied.
        pub heads: Vec<Hash>,
        /// Automerge changes (or a whole saved document), possibly empty.
        #[serde(with = "serde_bytes")]
        pub changes: Vec<u8>,
        /// A signature for every change in `changes` that the receiver may lack: in a push, the server
        /// refuses a change without one; in an update, the phone keeps them to hand changes on.
        pub sigs: Vec<ChangeSig>,
    }

    /// What a phone sends.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[allow(missing_docs, reason = "fields and variants named for what they hold")]
    pub enum ClientMsg {
        /// First message on a connection: the last change cursor this device has applied.
        Hello {
            /// Server change sequence number seen so far (0 for a new phone).
            cursor: u64,
            /// The store's Ed25519 public key, registered to the device on first sight: every change
            /// the store pushes is signed with it.
            key: [u8; 32],
        },
        /// Changes for any number of documents; also asks for what the phone lacks of them.
        Push {
            /// Echoed in the [`ServerMsg::Ack`].
            req: u64,
            docs: Vec<DocSync>,
        },
        /// Acknowledges a [`ServerMsg::Changed`] up to `cursor` (the phone applied and stored it).
        Applied {
            /// The cursor of the update that was applied.
            cursor: u64,
        },
    }

    /// Why a document was refused; the rest of the batch is unaffected.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub enum Refusal {
        /// The device has no grant for the document's site (or org).
        Forbidden,
        /// The device may read but not write the document.
        ReadOnly,
        /// The document id is not one this server knows how to hold.
        UnknownDocument,
        /// The changes are malformed, or belong to another document.
        Malformed,
        /// The server could not store it (disk); retry later.
        Unavailable,
        /// A record the changes touch fails the server's checks (`sitesync_core::validate`): a worker
        /// not on the site's roster, a negative work-day, a rate past the bound, a line under another
        /// document's id, a date outside the window. Nothing of the document's changes was stored.
        Invalid {
            /// The field, as the API names it.
            field: String,
            /// Why, in a sentence.
            reason: String,
        },
    }

    /// The outcome for one document of a push.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[allow(missing_docs, reason = "fields and variants named for what they hold")]
    pub enum DocResult {
        /// Stored durably. `update.heads` are the server's heads (the phone's new acknowledged heads);
        /// `update.changes` is what the phone lacks.
        Synced(DocSync),
        /// The server lacks history the changes depend on (e.g. restored from a backup): send the whole
        /// document. `heads` are what the server has.
        NeedHistory {
            doc: String,
            /// The server's heads.
            heads: Vec<Hash>,
        },
        /// Stored, except the changes listed: each broke a rule (or builds on one that did) and is not
        /// stored. `update` is as in `Synced`; the phone takes the refused changes out of its copy.
        Partial {
            /// The server's heads and what the phone lacks.
            update: DocSync,
            /// The changes not stored, each with the rule it broke.
            refused: Vec<RefusedChange>,
        },
        Refused {
            doc: String,
            reason: Refusal,
        },
    }

    /// One change the server did not store, and why.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct RefusedChange {
        /// The change hash.
        pub hash: Hash,
        /// The rule it broke.
        pub violation: Violation,
    }

    /// A device of the org, for showing authors while offline.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[allow(missing_docs, reason = "fields and variants named for what they hold")]
    pub struct DirectoryEntry {
        /// The device's public key.
        pub key: [u8; 32],
        pub device: String,
        pub user_id: String,
        /// The user's name.
        pub user_name: String,
        /// The user's role.
        pub role: Role,
    }

    /// Connection-level errors; the server closes the connection after sending one.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub enum ErrorCode {
        /// The frame could not be decoded.
        Malformed,
        /// The frame is larger than [`MAX_FRAME`].
        TooLarge,
        /// The peer speaks another protocol version.
        Version,
        /// The device's token is revoked or unknown.
        Unauthorized,
        /// Too many messages or documents.
        RateLimited,
        /// Something failed on the server.
        Internal,
    }

    /// What the server sends.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[allow(missing_docs, reason = "fields and variants named for what they hold")]
    pub enum ServerMsg {
        /// Answer to `Hello`: the documents the device may read that changed since its cursor, with
        /// what it lacks of them, and the cursor to store once they are applied.
        Welcome {
            /// The server's data epoch: a new one after a restore from backup, telling phones that the
            /// server may have lost changes they saw acknowledged, so they must offer everything again.
            epoch: String,
            /// The server's change cursor covered by `docs`.
            cursor: u64,
            /// The documents, each with `base` = what the server believes the device has.
            docs: Vec<DocSync>,
            /// More updates follow in `Changed` messages (a large first sync is split).
            more: bool,
            /// Who this device is to the server: the phone checks its own writes against the same
            /// rules before making them.
            you: Author,
            /// The org's devices and their keys (the server's own included).
            directory: Vec<DirectoryEntry>,
        },
        /// Answer to a `Push`, one result per document in the same order.
        Ack {
            /// The push's `req`.
            req: u64,
            results: Vec<DocResult>,
        },
        /// Live: documents the device may read changed elsewhere.
        Changed {
            /// The server cursor covered.
            cursor: u64,
            /// The documents with what the device lacks.
            docs: Vec<DocSync>,
        },
        /// The connection is being closed for this reason.
        Error {
            /// What went wrong.
            code: ErrorCode,
            /// A message for logs (no secrets, no personal data).
            message: String,
        },
    }

    /// Encodes a message as a version-2 frame, deflating bodies worth it.
    pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
        let body = postcard::to_allocvec(msg).expect("protocol messages always serialize");
        let mut out = Vec::with_capacity(body.len() + 2);
        out.push(VERSION);
        if body.len() >= DEFLATE_FROM {
            let packed = miniz_oxide::deflate::compress_to_vec(&body, 1);
            if packed.len() < body.len() {
                out.push(FLAG_DEFLATE);
                out.extend_from_slice(&packed);
                return out;
            }
        }
        out.push(0);
        out.extend_from_slice(&body);
        out
    }

    /// Decodes a version-2 frame; `Err` says why in words (the old phone's error type is not needed).
    pub fn decode<T: for<'de> Deserialize<'de>>(frame: &[u8]) -> Result<T, String> {
        if frame.len() > MAX_FRAME {
            return Err("too large".into());
        }
        let [version, flags, body @ ..] = frame else {
            return Err("shorter than the header".into());
        };
        if *version != VERSION {
            return Err(format!("protocol version {version} is not {VERSION}"));
        }
        let inflated;
        let body = match *flags {
            0 => body,
            FLAG_DEFLATE => {
                inflated = miniz_oxide::inflate::decompress_to_vec_with_limit(body, MAX_FRAME)
                    .map_err(|_| "bad deflate stream".to_string())?;
                &inflated[..]
            }
            f => return Err(format!("unknown flags {f:#x}")),
        };
        let (msg, rest) = postcard::take_from_bytes(body).map_err(|e| e.to_string())?;
        if !rest.is_empty() {
            return Err("trailing bytes".into());
        }
        Ok(msg)
    }
}

/// Protocol version 1 (unsigned changes): only what a phone of it sends first and reads back, to
/// prove it is refused in words it can read.
pub mod v1 {
    use serde::{Deserialize, Serialize};

    /// The version byte of every frame.
    pub const VERSION: u8 = 1;
    /// A change hash, as Automerge makes it.
    pub type Hash = [u8; 32];

    /// One document's part of a push or a server update.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct DocSync {
        /// The document id (`day|site-hz-01|2026-09-01`).
        pub doc: String,
        /// Heads the receiver is known to have (the server's last acknowledgement, for a push); the
        /// changes are everything after them. Empty: the changes are the whole document.
        pub base: Vec<Hash>,
        /// The sender's heads once `changes` are applied.
        pub heads: Vec<Hash>,
        /// Automerge changes (or a whole saved document), possibly empty.
        #[serde(with = "serde_bytes")]
        pub changes: Vec<u8>,
    }

    /// What a phone sends.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub enum ClientMsg {
        /// First message on a connection: the last change cursor this device has applied.
        Hello {
            /// Server change sequence number seen so far (0 for a new phone).
            cursor: u64,
        },
        /// Changes for any number of documents; also asks for what the phone lacks of them.
        Push {
            /// Echoed in the [`ServerMsg::Ack`].
            req: u64,
            /// The documents.
            docs: Vec<DocSync>,
        },
        /// Acknowledges a [`ServerMsg::Changed`] up to `cursor` (the phone applied and stored it).
        Applied {
            /// The cursor of the update that was applied.
            cursor: u64,
        },
    }

    /// Why a document was refused; the rest of the batch is unaffected.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub enum Refusal {
        /// The device has no grant for the document's site (or org).
        Forbidden,
        /// The device may read but not write the document.
        ReadOnly,
        /// The document id is not one this server knows how to hold.
        UnknownDocument,
        /// The changes are malformed, or belong to another document.
        Malformed,
        /// The server could not store it (disk); retry later.
        Unavailable,
    }

    /// The outcome for one document of a push.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub enum DocResult {
        /// Stored durably. `update.heads` are the server's heads (the phone's new acknowledged heads);
        /// `update.changes` is what the phone lacks.
        Synced(DocSync),
        /// The server lacks history the changes depend on (e.g. restored from a backup): send the whole
        /// document. `heads` are what the server has.
        NeedHistory {
            /// The document.
            doc: String,
            /// The server's heads.
            heads: Vec<Hash>,
        },
        /// Not accepted.
        Refused {
            /// The document.
            doc: String,
            /// Why.
            reason: Refusal,
        },
    }

    /// Connection-level errors; the server closes the connection after sending one.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub enum ErrorCode {
        /// The frame could not be decoded.
        Malformed,
        /// The frame is larger than [`MAX_FRAME`].
        TooLarge,
        /// The peer speaks another protocol version.
        Version,
        /// The device's token is revoked or unknown.
        Unauthorized,
        /// Too many messages or documents.
        RateLimited,
        /// Something failed on the server.
        Internal,
    }

    /// What the server sends.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub enum ServerMsg {
        /// Answer to `Hello`: the documents the device may read that changed since its cursor, with
        /// what it lacks of them, and the cursor to store once they are applied.
        Welcome {
            /// The server's data epoch: a new one after a restore from backup, telling phones that the
            /// server may have lost changes they saw acknowledged, so they must offer everything again.
            epoch: String,
            /// The server's change cursor covered by `docs`.
            cursor: u64,
            /// The documents, each with `base` = what the server believes the device has.
            docs: Vec<DocSync>,
            /// More updates follow in `Changed` messages (a large first sync is split).
            more: bool,
        },
        /// Answer to a `Push`, one result per document in the same order.
        Ack {
            /// The push's `req`.
            req: u64,
            /// Results.
            results: Vec<DocResult>,
        },
        /// Live: documents the device may read changed elsewhere.
        Changed {
            /// The server cursor covered.
            cursor: u64,
            /// The documents with what the device lacks.
            docs: Vec<DocSync>,
        },
        /// The connection is being closed for this reason.
        Error {
            /// What went wrong.
            code: ErrorCode,
            /// A message for logs (no secrets, no personal data).
            message: String,
        },
    }

    /// Encodes a message as a version-1 frame (small messages only: never deflated).
    pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
        let mut out = vec![VERSION, 0];
        out.extend(postcard::to_allocvec(msg).expect("protocol messages always serialize"));
        out
    }

    /// Decodes an undeflated version-1 frame.
    pub fn decode<T: for<'de> Deserialize<'de>>(frame: &[u8]) -> Result<T, String> {
        match frame {
            [VERSION, 0, body @ ..] => postcard::from_bytes(body).map_err(|e| e.to_string()),
            _ => Err("not an undeflated version-1 frame".into()),
        }
    }
}
