//! The phone's side of sync as a state machine: it reads and writes the [`Store`] but does no network
//! I/O. The shell hands it what arrived and sends what it returns, so the protocol logic is tested
//! without sockets or sleeps.

use std::collections::HashMap;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::ids::DocId;
use crate::store::Store;
use crate::sync::protocol::{
    ClientMsg, DocResult, DocSync, ErrorCode, Refusal, ServerMsg, UpdateNotice, hashes, hex_heads,
};
use crate::sync::status::UpdateState;

/// Store metadata keys the engine keeps.
pub(crate) mod keys {
    /// The server change cursor applied so far.
    pub const CURSOR: &str = "sync.cursor";
    /// When the last sync completed (RFC 3339).
    pub const LAST_OK: &str = "sync.last_ok";
    /// The last error, or "".
    pub const LAST_ERROR: &str = "sync.last_error";
    /// The server's data epoch last seen.
    pub const EPOCH: &str = "sync.epoch";
    /// What the server last said of this app's protocol version: "available" (a newer one exists,
    /// this one still syncs), "required" (refused until updated), or "" / absent (up to date).
    pub const UPDATE: &str = "sync.update";
}

/// Documents per push frame: a day's work is one or two documents; a first upload of months of
/// history is split so that no frame nears the size limit.
const DOCS_PER_PUSH: usize = 64;

/// What a sync exchange did, for status lines and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// Documents the server acknowledged as stored.
    pub pushed: usize,
    /// Documents that received changes from the server.
    pub received: usize,
    /// Documents refused, with the reason.
    pub refused: Vec<(String, String)>,
    /// Single changes refused and taken out of this store's copy: (document, change hash, rule,
    /// reason). The rest of their documents reached head office.
    pub refused_changes: Vec<RefusedNote>,
}

/// A change the server refused, as the phone tells its user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct RefusedNote {
    pub doc: String,
    /// The change hash, hex.
    pub hash: String,
    /// The rule's stable name.
    pub rule: String,
    /// Why, in words.
    pub reason: String,
}

/// Something the engine did that a person watching sync wants to hear of, in the order it happened.
/// The engine only queues these ([`Engine::take_events`]); the shell decides who hears them, so the
/// protocol stays free of I/O.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncEvent {
    /// Changes from the server were merged into this document.
    Received(DocId),
    /// The server acknowledged every change of this document this phone pushed as durable.
    Acknowledged(DocId),
    /// The server took the document but refused one of its changes, now out of this store's copy.
    ChangeRefused(RefusedNote),
    /// The server refused the whole document; it is pushed again after a backoff.
    Refused(DocId, Refusal),
}

/// The sync state machine for one connection.
#[derive(Debug, Default)]
pub struct Engine {
    /// Next push request number.
    next_req: u64,
    /// Pushes awaiting their `Ack`, with the documents they carried.
    inflight: HashMap<u64, Vec<DocId>>,
    /// Documents the server refused on this connection, for any reason (`Unavailable` included):
    /// not pushed again until reconnect or [`Engine::release`], so a refusal never turns into a
    /// tight loop of pushes.
    refused: HashMap<DocId, Refusal>,
    /// Documents the shell holds back (refused earlier, waiting out a backoff).
    held: std::collections::HashSet<DocId>,
    /// Whether the server's `Welcome` (and any `Changed` it announced) has been applied.
    welcomed: bool,
    /// While a first sync split over several frames is arriving: the cursor its welcome covers.
    /// Each later frame carries the cursor it completes, so the last is the one that reaches this
    /// (a server from before frames carried their own cursor sends it on every frame, and the first
    /// then ends the wait, as it always did).
    first_sync_until: Option<u64>,
    /// What happened so far.
    progress: Progress,
    /// Events not yet taken by the shell; bounded by the documents of one connection.
    events: Vec<SyncEvent>,
}

impl Engine {
    /// A fresh engine for a new connection.
    pub fn new() -> Engine {
        Engine::default()
    }

    /// The first message of a connection.
    pub fn hello(&self, store: &Store) -> Result<ClientMsg> {
        let cursor = store.meta(keys::CURSOR)?.and_then(|c| c.parse().ok()).unwrap_or(0);
        Ok(ClientMsg::Hello {
            cursor,
            key: store.public_key(),
        })
    }

    /// Whether the initial exchange is done and nothing is in flight.
    pub fn idle(&self) -> bool {
        self.welcomed && self.first_sync_until.is_none() && self.inflight.is_empty()
    }

    /// What has happened on this connection.
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// The events since the last call, oldest first.
    pub fn take_events(&mut self) -> Vec<SyncEvent> {
        std::mem::take(&mut self.events)
    }

    /// Documents with local changes the server has not acknowledged and not refused.
    pub fn pending(&self, store: &Store) -> Result<Vec<DocId>> {
        let inflight: Vec<&DocId> = self.inflight.values().flatten().collect();
        Ok(store
            .pending()?
            .into_iter()
            .filter(|d| !self.refused.contains_key(d) && !self.held.contains(d) && !inflight.contains(&d))
            .collect())
    }

    /// The documents refused on this connection and not released, with why.
    pub fn refusals(&self) -> impl Iterator<Item = (&DocId, &Refusal)> {
        self.refused.iter()
    }

    /// Holds a document back from pushes until [`Engine::release`] (a document refused on an
    /// earlier connection, waiting out its backoff).
    pub fn hold(&mut self, id: DocId) {
        self.held.insert(id);
    }

    /// Lets a refused or held document be pushed again (its backoff is over).
    pub fn release(&mut self, id: &DocId) {
        self.refused.remove(id);
        self.held.remove(id);
    }

    /// Pushes of every pending document not already in flight (empty when there is nothing to send).
    pub fn push(&mut self, store: &mut Store) -> Result<Vec<ClientMsg>> {
        let pending = self.pending(store)?;
        let mut out = Vec::new();
        for batch in pending.chunks(DOCS_PER_PUSH) {
            let mut docs = Vec::with_capacity(batch.len());
            for id in batch {
                docs.push(doc_sync(store, id)?);
            }
            self.next_req += 1;
            self.inflight.insert(self.next_req, batch.to_vec());
            out.push(ClientMsg::Push {
                req: self.next_req,
                docs,
            });
        }
        Ok(out)
    }

    /// Applies a server message to the store; returns the messages to send in reply.
    pub fn receive(&mut self, store: &mut Store, msg: ServerMsg) -> Result<Vec<ClientMsg>> {
        match msg {
            ServerMsg::Welcome {
                epoch,
                cursor,
                docs,
                more,
                you,
                directory,
                update,
            } => {
                store.set_update(match update {
                    UpdateNotice::UpToDate => UpdateState::UpToDate,
                    UpdateNotice::Available { .. } => UpdateState::Available,
                })?;
                store.set_author(&you)?;
                store.set_directory(&directory)?;
                let known = store.meta(keys::EPOCH)?;
                if known.as_deref().is_some_and(|k| k != epoch) {
                    // The server was restored from a backup: what it acknowledged before may be
                    // gone. Forget every acknowledgement and start over from cursor 0; the pushes
                    // that follow offer everything, and merging is idempotent.
                    store.forget_sync_state()?;
                    store.set_meta(keys::EPOCH, &epoch)?;
                    self.welcomed = false;
                    return Ok(vec![ClientMsg::Hello {
                        cursor: 0,
                        key: store.public_key(),
                    }]);
                }
                if known.is_none() {
                    store.set_meta(keys::EPOCH, &epoch)?;
                }
                self.apply_updates(store, &docs)?;
                self.welcomed = true;
                if more {
                    self.first_sync_until = Some(cursor);
                    return Ok(Vec::new());
                }
                self.first_sync_until = None;
                store.set_meta(keys::CURSOR, &cursor.to_string())?;
                Ok(vec![ClientMsg::Applied { cursor }])
            }
            ServerMsg::Changed { cursor, docs } => {
                self.apply_updates(store, &docs)?;
                store.set_meta(keys::CURSOR, &cursor.to_string())?;
                if self.first_sync_until.is_some_and(|until| cursor >= until) {
                    self.first_sync_until = None;
                }
                Ok(vec![ClientMsg::Applied { cursor }])
            }
            ServerMsg::Ack { req, results } => {
                let Some(sent) = self.inflight.remove(&req) else {
                    return Err(Error::invalid(
                        "req",
                        format!("the server acknowledged push {req}, which was not sent"),
                    ));
                };
                let mut again = false;
                for result in results {
                    match result {
                        DocResult::Synced(update) => {
                            let id: DocId = update.doc.parse()?;
                            if !sent.contains(&id) {
                                continue;
                            }
                            self.apply_updates(store, std::slice::from_ref(&update))?;
                            self.progress.pushed += 1;
                            self.events.push(SyncEvent::Acknowledged(id));
                        }
                        DocResult::Partial { update, refused } => {
                            let id: DocId = update.doc.parse()?;
                            if !sent.contains(&id) {
                                continue;
                            }
                            let refused: Vec<(String, crate::rules::Violation)> = refused
                                .into_iter()
                                .map(|r| (hex::encode(r.hash), r.violation))
                                .collect();
                            // Out of the copy first: the server's heads do not include them.
                            store.drop_refused(&id, &refused)?;
                            for (hash, v) in refused {
                                let note = RefusedNote {
                                    doc: update.doc.clone(),
                                    hash,
                                    rule: v.rule().to_string(),
                                    reason: v.to_string(),
                                };
                                self.events.push(SyncEvent::ChangeRefused(note.clone()));
                                self.progress.refused_changes.push(note);
                            }
                            self.apply_updates(store, std::slice::from_ref(&update))?;
                            self.progress.pushed += 1;
                            self.events.push(SyncEvent::Acknowledged(id));
                        }
                        DocResult::NeedHistory { doc, .. } => {
                            // The server lost history (a restored backup): resend everything.
                            let id: DocId = doc.parse()?;
                            store.set_synced_heads(&id, None)?;
                            again = true;
                        }
                        DocResult::Refused { doc, reason } => {
                            let id: DocId = doc.parse()?;
                            self.progress.refused.push((doc, format!("{reason:?}")));
                            self.events.push(SyncEvent::Refused(id.clone(), reason.clone()));
                            // Even `Unavailable`: pushing again at once would only meet the same
                            // answer (once ~50 times a second); the shell retries with backoff.
                            self.refused.insert(id, reason);
                        }
                    }
                }
                if self.inflight.is_empty() && !again && self.refused.is_empty() {
                    store.set_meta(keys::LAST_OK, &chrono::Utc::now().to_rfc3339())?;
                    store.set_meta(keys::LAST_ERROR, "")?;
                }
                if again { self.push(store) } else { Ok(Vec::new()) }
            }
            ServerMsg::Error { code, message } => {
                let text = format!("server closed the connection: {code:?}: {message}");
                store.set_meta(keys::LAST_ERROR, &text)?;
                Err(match code {
                    ErrorCode::Unauthorized => Error::Unauthorized(message),
                    ErrorCode::Version => {
                        store.set_update(UpdateState::Required)?;
                        Error::UpdateRequired(message)
                    }
                    _ => Error::Sync(text),
                })
            }
        }
    }

    /// Merges server updates and records the server's heads as acknowledged.
    fn apply_updates(&mut self, store: &mut Store, docs: &[DocSync]) -> Result<()> {
        for update in docs {
            let id: DocId = update.doc.parse()?;
            store.keep_signatures(&id, &update.sigs, None)?;
            if !update.changes.is_empty() {
                store.merge_changes(&id, &update.changes)?;
                self.progress.received += 1;
                self.events.push(SyncEvent::Received(id.clone()));
            }
            let heads = hex_heads(&update.heads);
            if store.synced_heads(&id)?.is_some() || !store.heads(&id)?.is_empty() {
                store.set_synced_heads(&id, Some(&heads))?;
            }
        }
        Ok(())
    }
}

/// A push of one document: everything after the heads the server acknowledged.
fn doc_sync(store: &mut Store, id: &DocId) -> Result<DocSync> {
    let base = store.synced_heads(id)?.unwrap_or_default();
    let (changes, sigs) = store.export_signed(id, &base)?.unwrap_or_default();
    Ok(DocSync {
        doc: id.to_string(),
        base: hashes(&base),
        heads: hashes(&store.heads(id)?),
        changes,
        sigs,
    })
}
