//! What the app shows about sync: bound or not, pending changes, last success and error, and per
//! document whether head office has it (the delivery receipt a foreman can show).

use serde::Serialize;

use crate::error::Result;
use crate::ids::DocId;
use crate::store::Store;
use crate::sync::engine::keys;

/// Store metadata keys of the server binding.
pub(crate) mod binding {
    /// The server's base URL.
    pub const SERVER: &str = "sync.server";
    /// The device token.
    pub const TOKEN: &str = "sync.token";
    /// "1" while a `sync --watch` (or the app's sync loop) holds a connection, else "0".
    pub const CONNECTED: &str = "sync.connected";
}

/// Where this store syncs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The server's base URL, e.g. `http://127.0.0.1:8080`.
    pub server: String,
    /// The device's bearer token.
    pub token: String,
}

/// One document's delivery state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocStatus {
    /// The document id.
    pub doc: String,
    /// Whether the server has acknowledged every change this phone holds.
    pub at_head_office: bool,
}

/// Sync status for the app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncStatus {
    /// The server this store is bound to.
    pub server: Option<String>,
    /// Whether a sync loop reports a live connection.
    pub connected: bool,
    /// Documents with changes head office does not have yet.
    pub pending: Vec<String>,
    /// When the last sync completed (RFC 3339).
    pub last_sync: Option<String>,
    /// The last sync error, if the last attempt failed.
    pub last_error: Option<String>,
    /// The server change cursor applied.
    pub cursor: u64,
    /// Every document with its delivery receipt.
    pub documents: Vec<DocStatus>,
}

impl Store {
    /// Binds the store to a server and device token (replacing any previous binding).
    pub fn bind(&mut self, server: &str, token: &str) -> Result<()> {
        let server = server.trim().trim_end_matches('/');
        if !(server.starts_with("http://") || server.starts_with("https://")) {
            return Err(crate::Error::invalid(
                "server",
                "the server URL starts with http:// or https://",
            ));
        }
        if token.trim().is_empty() {
            return Err(crate::Error::invalid("token", "the device token is empty"));
        }
        self.set_meta(binding::SERVER, server)?;
        self.set_meta(binding::TOKEN, token.trim())
    }

    /// The server binding, if any.
    pub fn binding(&self) -> Result<Option<Binding>> {
        Ok(match (self.meta(binding::SERVER)?, self.meta(binding::TOKEN)?) {
            (Some(server), Some(token)) => Some(Binding { server, token }),
            _ => None,
        })
    }

    /// The sync status, from the store alone (works offline).
    pub fn sync_status(&self) -> Result<SyncStatus> {
        let pending: Vec<DocId> = self.pending()?;
        let documents = self
            .doc_ids()?
            .into_iter()
            .map(|d| DocStatus {
                at_head_office: !pending.contains(&d),
                doc: d.to_string(),
            })
            .collect();
        Ok(SyncStatus {
            server: self.meta(binding::SERVER)?,
            connected: self.meta(binding::CONNECTED)?.as_deref() == Some("1"),
            pending: pending.iter().map(ToString::to_string).collect(),
            last_sync: self.meta(keys::LAST_OK)?.filter(|s| !s.is_empty()),
            last_error: self.meta(keys::LAST_ERROR)?.filter(|s| !s.is_empty()),
            cursor: self.meta(keys::CURSOR)?.and_then(|c| c.parse().ok()).unwrap_or(0),
            documents,
        })
    }
}
