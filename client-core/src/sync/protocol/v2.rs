//! Protocol version 2's messages, as far as they differ from the current version's: the server's
//! decode shim for phones one version behind (`decode_client`, `encode_server`).
//!
//! Version 3 added `update` to `Welcome`; nothing else changed, so the types a v2 message nests
//! (`DocSync`, `DocResult`, `DirectoryEntry`, `Author`, `ErrorCode`) are the current ones. A later
//! version that changes one of those copies it here as it stood, with the conversion, and this module
//! is dropped once the version after next is current (a server speaks the current version and the
//! one before). The tests keep their own frozen copy of a v2 phone's encoding
//! (`tests/src/protocol_v2.rs`), so a slip in this shim fails a real sync rather than agreeing
//! with itself.

use serde::{Deserialize, Serialize};

use super::{DirectoryEntry, DocResult, DocSync, ErrorCode};
use crate::rules::Author;

/// The version this module holds.
pub const VERSION: u8 = 2;

/// What a v2 phone sends: the same messages as now, frozen here so that a later change to the
/// current ones needs a conversion rather than silently changing what a v2 phone must send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs, reason = "as in the current version's ClientMsg")]
pub enum ClientMsg {
    Hello { cursor: u64, key: [u8; 32] },
    Push { req: u64, docs: Vec<DocSync> },
    Applied { cursor: u64 },
}

impl From<ClientMsg> for super::ClientMsg {
    fn from(msg: ClientMsg) -> super::ClientMsg {
        match msg {
            ClientMsg::Hello { cursor, key } => super::ClientMsg::Hello { cursor, key },
            ClientMsg::Push { req, docs } => super::ClientMsg::Push { req, docs },
            ClientMsg::Applied { cursor } => super::ClientMsg::Applied { cursor },
        }
    }
}

/// What a v2 phone reads: `Welcome` has no `update`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs, reason = "as in the current version's ServerMsg")]
pub enum ServerMsg {
    Welcome {
        epoch: String,
        cursor: u64,
        docs: Vec<DocSync>,
        more: bool,
        you: Author,
        directory: Vec<DirectoryEntry>,
    },
    Ack {
        req: u64,
        results: Vec<DocResult>,
    },
    Changed {
        cursor: u64,
        docs: Vec<DocSync>,
    },
    Error {
        code: ErrorCode,
        message: String,
    },
}

impl From<super::ServerMsg> for ServerMsg {
    /// Leaves out the welcome's `update`: a v2 phone is told of the update by the upgrade's
    /// [`super::UPDATE_HEADER`] instead.
    fn from(msg: super::ServerMsg) -> ServerMsg {
        match msg {
            super::ServerMsg::Welcome {
                epoch,
                cursor,
                docs,
                more,
                you,
                directory,
                update: _,
            } => ServerMsg::Welcome {
                epoch,
                cursor,
                docs,
                more,
                you,
                directory,
            },
            super::ServerMsg::Ack { req, results } => ServerMsg::Ack { req, results },
            super::ServerMsg::Changed { cursor, docs } => ServerMsg::Changed { cursor, docs },
            super::ServerMsg::Error { code, message } => ServerMsg::Error { code, message },
        }
    }
}
