//! One device's sync connection: the protocol logic as plain functions over the stores, and the
//! WebSocket loop that feeds them.

use axum::extract::ws::{Message, WebSocket};
use sitesync_core::Store;
use sitesync_core::ids::DocId;
use sitesync_core::sync::protocol::{
    self, ClientMsg, DocResult, DocSync, ErrorCode, Refusal, ServerMsg, hashes, hex_heads,
};

use crate::auth::{Access, AuthDb, Principal};
use crate::error::Result;
use crate::state::AppState;

/// Changes per update frame before the rest goes in another frame, well under the frame limit.
const FRAME_BUDGET: usize = 4 * 1024 * 1024;

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Applies a push, document by document: one refused document never blocks the others. Every
/// `Synced` result is durable on disk before it is returned.
pub fn push(auth: &AuthDb, store: &mut Store, who: &Principal, docs: Vec<DocSync>) -> Result<Vec<DocResult>> {
    let mut results = Vec::with_capacity(docs.len());
    for d in docs {
        let Ok(id) = d.doc.parse::<DocId>() else {
            results.push(DocResult::Refused {
                doc: d.doc,
                reason: Refusal::UnknownDocument,
            });
            continue;
        };
        let access = auth.access(who, &id)?;
        let phone_heads = hex_heads(&d.heads);
        let server_heads = store.heads(&id)?;
        // The phone's heads are all known here: it sends nothing new, it only asks.
        let nothing_new = !d.heads.is_empty() && store.knows_all(&id, &phone_heads)?;
        match access {
            Access::None => {
                results.push(DocResult::Refused {
                    doc: d.doc,
                    reason: Refusal::Forbidden,
                });
                continue;
            }
            Access::Read if !nothing_new && !d.changes.is_empty() => {
                results.push(DocResult::Refused {
                    doc: d.doc,
                    reason: Refusal::ReadOnly,
                });
                continue;
            }
            _ => {}
        }
        if !d.changes.is_empty() && !nothing_new {
            match store.merge_changes(&id, &d.changes) {
                Ok(_) => {}
                Err(sitesync_core::Error::MissingHistory { .. }) => {
                    results.push(DocResult::NeedHistory {
                        doc: d.doc,
                        heads: hashes(&server_heads),
                    });
                    continue;
                }
                Err(e @ (sitesync_core::Error::BadChanges { .. } | sitesync_core::Error::CorruptDocument { .. })) => {
                    tracing::warn!(device = %who.device_id, doc = %d.doc, error = %e, "refused malformed changes");
                    results.push(DocResult::Refused {
                        doc: d.doc,
                        reason: Refusal::Malformed,
                    });
                    continue;
                }
                Err(e) => {
                    tracing::error!(doc = %d.doc, error = %e, "could not store changes");
                    results.push(DocResult::Refused {
                        doc: d.doc,
                        reason: Refusal::Unavailable,
                    });
                    continue;
                }
            }
        }
        let heads = store.heads(&id)?;
        if heads.is_empty() {
            // Asked for a document nobody has written yet: nothing to send.
            results.push(DocResult::Synced(DocSync {
                doc: d.doc,
                base: d.heads.clone(),
                heads: d.heads,
                changes: Vec::new(),
            }));
            continue;
        }
        let (lacks, has) = if sorted(heads.clone()) == sorted(phone_heads.clone()) {
            (Vec::new(), &heads)
        } else {
            // The phone has what it pushed; the rest counts as delivered only once it says so.
            (
                store.export_changes(&id, &phone_heads)?.unwrap_or_default(),
                &phone_heads,
            )
        };
        if store.knows_all(&id, has)? {
            auth.set_device_heads(&who.device_id, &d.doc, has)?;
        }
        results.push(DocResult::Synced(DocSync {
            doc: d.doc,
            base: d.heads,
            heads: hashes(&heads),
            changes: lacks,
        }));
    }
    Ok(results)
}

/// The documents the device may read that changed after `cursor`, each with what the device lacks,
/// split into frames; returns the cursor they cover. Nothing is recorded as delivered here: the
/// phone confirms with `Applied` (see [`delivered`]).
pub fn updates(auth: &AuthDb, store: &mut Store, who: &Principal, cursor: u64) -> Result<(u64, Vec<Vec<DocSync>>)> {
    let now = store.change_cursor()?;
    let mut frames = vec![Vec::new()];
    let mut size = 0;
    for (id, _) in store.changed_since(cursor)? {
        if auth.access(who, &id)? == Access::None {
            continue;
        }
        let doc = id.to_string();
        let heads = store.heads(&id)?;
        let has = auth.device_heads(&who.device_id, &doc)?;
        if has.as_ref().map(|h| sorted(h.clone())) == Some(sorted(heads.clone())) {
            continue;
        }
        let base = has.unwrap_or_default();
        let changes = store.export_changes(&id, &base)?.unwrap_or_default();
        if size + changes.len() > FRAME_BUDGET && !frames.last().is_some_and(Vec::is_empty) {
            frames.push(Vec::new());
            size = 0;
        }
        size += changes.len();
        frames.last_mut().expect("one frame at least").push(DocSync {
            doc,
            base: hashes(&base),
            heads: hashes(&heads),
            changes,
        });
    }
    Ok((now, frames))
}

/// Records that a device applied the updates it confirmed.
pub fn delivered(auth: &AuthDb, device_id: &str, docs: &[(String, Vec<String>)]) -> Result<()> {
    for (doc, heads) in docs {
        auth.set_device_heads(device_id, doc, heads)?;
    }
    Ok(())
}

/// Updates sent on this connection and not yet confirmed, by the cursor they carried.
type Unconfirmed = Vec<(u64, Vec<(String, Vec<String>)>)>;

fn remember(unconfirmed: &mut Unconfirmed, msgs: &[ServerMsg]) {
    for msg in msgs {
        if let ServerMsg::Welcome { cursor, docs, .. } | ServerMsg::Changed { cursor, docs } = msg {
            unconfirmed.push((
                *cursor,
                docs.iter().map(|d| (d.doc.clone(), hex_heads(&d.heads))).collect(),
            ));
        }
    }
}

/// Serves one authenticated device until it disconnects, is revoked, or the server shuts down.
pub async fn serve(state: AppState, mut socket: WebSocket, device_id: String) {
    let mut changes = state.watch_changes();
    let mut shutdown = state.watch_shutdown();
    // The cursor this connection has delivered up to; `None` until the device said hello.
    let mut cursor: Option<u64> = None;
    let mut unconfirmed: Unconfirmed = Vec::new();
    let timing = state.timing();
    let mut last_heard = tokio::time::Instant::now();
    let mut ping = tokio::time::interval(timing.ping_every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let reply: Vec<ServerMsg> = tokio::select! {
            _ = ping.tick() => {
                if last_heard.elapsed() > timing.idle_after {
                    tracing::info!(device = %device_id, "closing a silent sync connection");
                    break;
                }
                let pinged = tokio::time::timeout(timing.idle_after, socket.send(Message::Ping(Default::default()))).await;
                if !matches!(pinged, Ok(Ok(()))) {
                    break;
                }
                continue;
            }
            incoming = socket.recv() => {
                last_heard = tokio::time::Instant::now();
                let bytes = match incoming {
                    Some(Ok(Message::Binary(b))) => b,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(Message::Text(_))) => {
                        let _ = send(&mut socket, &error(ErrorCode::Malformed, "frames are binary")).await;
                        break;
                    }
                    Some(Ok(_)) => continue,
                };
                match handle(&state, &device_id, &bytes, &mut cursor, &mut unconfirmed).await {
                    Ok(msgs) => msgs,
                    Err(msg) => {
                        let _ = send(&mut socket, &msg).await;
                        break;
                    }
                }
            }
            changed = changes.changed(), if cursor.is_some() => {
                if changed.is_err() {
                    break;
                }
                match live_updates(&state, &device_id, &mut cursor).await {
                    Ok(msgs) => msgs,
                    Err(msg) => {
                        let _ = send(&mut socket, &msg).await;
                        break;
                    }
                }
            }
            _ = shutdown.changed() => break,
        };
        remember(&mut unconfirmed, &reply);
        for msg in reply {
            // A peer that stops reading must not hold this task (and its memory) forever.
            match tokio::time::timeout(timing.idle_after, send(&mut socket, &msg)).await {
                Ok(Ok(())) => {}
                _ => return,
            }
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}

fn error(code: ErrorCode, message: &str) -> ServerMsg {
    ServerMsg::Error {
        code,
        message: message.to_string(),
    }
}

async fn send(socket: &mut WebSocket, msg: &ServerMsg) -> Result<(), axum::Error> {
    socket.send(Message::Binary(protocol::encode(msg).into())).await
}

/// The device, re-read for every message so that a revocation cuts it off at once.
async fn principal(state: &AppState, device_id: &str) -> Result<Principal, ServerMsg> {
    let id = device_id.to_string();
    match state.auth(move |a| a.principal(&id)).await {
        Ok(Some(p)) => Ok(p),
        Ok(None) => Err(error(ErrorCode::Unauthorized, "device revoked")),
        Err(e) => {
            tracing::error!(error = %e, "auth lookup failed");
            Err(error(ErrorCode::Internal, "internal error"))
        }
    }
}

/// Handles one frame; an `Err` is the last message before closing.
async fn handle(
    state: &AppState,
    device_id: &str,
    bytes: &[u8],
    cursor: &mut Option<u64>,
    unconfirmed: &mut Unconfirmed,
) -> Result<Vec<ServerMsg>, ServerMsg> {
    let who = principal(state, device_id).await?;
    let msg: ClientMsg = protocol::decode(bytes).map_err(|e| error(e.code(), &e.to_string()))?;
    let internal = |e: crate::error::Error| {
        tracing::error!(error = %e, "sync failed");
        error(ErrorCode::Internal, "internal error")
    };
    match msg {
        ClientMsg::Hello { cursor: from } => {
            let (epoch, now, frames) = state
                .both(move |auth, store| {
                    if from == 0 {
                        // A store that has applied nothing holds nothing, whatever this device
                        // token's earlier stores held (a reinstalled app, a wiped phone).
                        auth.forget_device_docs(&who.device_id)?;
                    }
                    let epoch = auth.epoch()?;
                    updates(auth, store, &who, from).map(|(now, frames)| (epoch, now, frames))
                })
                .await
                .map_err(internal)?;
            *cursor = Some(now);
            let n = frames.len();
            Ok(frames
                .into_iter()
                .enumerate()
                .map(|(i, docs)| {
                    if i == 0 {
                        ServerMsg::Welcome {
                            epoch: epoch.clone(),
                            cursor: now,
                            docs,
                            more: n > 1,
                        }
                    } else {
                        ServerMsg::Changed { cursor: now, docs }
                    }
                })
                .collect())
        }
        ClientMsg::Push { req, docs } => {
            if cursor.is_none() {
                return Err(error(ErrorCode::Malformed, "say hello first"));
            }
            let results = state
                .both(move |auth, store| push(auth, store, &who, docs))
                .await
                .map_err(internal)?;
            if results.iter().any(|r| matches!(r, DocResult::Synced(_))) {
                let _ = state.notify_changes().await;
            }
            Ok(vec![ServerMsg::Ack { req, results }])
        }
        ClientMsg::Applied { cursor: upto } => {
            let (done, rest): (Unconfirmed, Unconfirmed) = unconfirmed.drain(..).partition(|(c, _)| *c <= upto);
            *unconfirmed = rest;
            let docs: Vec<(String, Vec<String>)> = done.into_iter().flat_map(|(_, d)| d).collect();
            let device = who.device_id.clone();
            state
                .auth(move |a| delivered(a, &device, &docs))
                .await
                .map_err(internal)?;
            Ok(Vec::new())
        }
    }
}

/// Documents changed elsewhere since this connection's cursor.
async fn live_updates(
    state: &AppState,
    device_id: &str,
    cursor: &mut Option<u64>,
) -> Result<Vec<ServerMsg>, ServerMsg> {
    let who = principal(state, device_id).await?;
    let from = cursor.unwrap_or(0);
    let (now, frames) = state
        .both(move |auth, store| updates(auth, store, &who, from))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "update failed");
            error(ErrorCode::Internal, "internal error")
        })?;
    *cursor = Some(now);
    Ok(frames
        .into_iter()
        .filter(|f| !f.is_empty())
        .map(|docs| ServerMsg::Changed { cursor: now, docs })
        .collect())
}
