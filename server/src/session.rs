//! One device's sync connection: the protocol logic as plain functions over the stores, and the
//! WebSocket loop that feeds them.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket};
use sitesync_core::Store;
use sitesync_core::ids::DocId;
use sitesync_core::rules::Author;
use sitesync_core::signing::ChangeSig;
use sitesync_core::store::Screen;
use sitesync_core::sync::protocol::{
    self, ClientMsg, DocResult, DocSync, ErrorCode, Refusal, RefusedChange, ServerMsg, hashes, hex_heads,
};

use crate::auth::{Access, AuthDb, Principal};
use crate::authorship::Signers;
use crate::error::Result;
use crate::state::{AppState, Deliveries, EventDoc, PushEvent};
use crate::tenancy::Pusher;
use sitesync_core::validate::Tenancy;
use tokio::sync::broadcast;

/// Changes per update frame before the rest goes in another frame, well under the frame limit.
const FRAME_BUDGET: usize = 4 * 1024 * 1024;

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Applies a push, document by document: one refused document never blocks the others. Every
/// `Synced` result is durable on disk before it is returned.
pub fn push(
    auth: &AuthDb,
    store: &mut Store,
    who: &Principal,
    docs: Vec<DocSync>,
    deliveries: &Deliveries,
    events: &broadcast::Sender<Arc<PushEvent>>,
) -> Result<Vec<DocResult>> {
    let mut out = push_batch(auth, store, vec![(who.clone(), docs)], deliveries, events)?;
    Ok(out.pop().unwrap_or_default())
}

/// What to do with one pushed document, decided before anything is written.
enum Plan {
    /// Answered without writing (refused, or nothing new).
    Answer(DocResult),
    /// Answered after the batch's merges (`merge`: the index of its changes among them), with the
    /// changes the gate refused.
    After {
        id: DocId,
        doc: DocSync,
        merge: Option<usize>,
        refused: Vec<RefusedChange>,
    },
}

/// Applies the pushes of several devices with one transaction (one fsync) for all of their
/// documents: the group commit that lets a server on one disk take thousands of pushes a second.
/// Every change first passes the gate (`sitesync_core::store::Screen`): its signature names its
/// author, and the author's role and grants must allow each of its writes; refused changes are left
/// out and named in the answer, the rest is stored. Returns each push's results in order, and sends
/// one [`PushEvent`] with every document changed.
pub fn push_batch(
    auth: &AuthDb,
    store: &mut Store,
    pushes: Vec<(Principal, Vec<DocSync>)>,
    deliveries: &Deliveries,
    events: &broadcast::Sender<Arc<PushEvent>>,
) -> Result<Vec<Vec<DocResult>>> {
    // 1. Decide per document, reading only.
    let mut before: HashMap<DocId, Vec<String>> = HashMap::new();
    let mut plans: Vec<Vec<Plan>> = Vec::with_capacity(pushes.len());
    let mut merges: Vec<(DocId, Vec<u8>)> = Vec::new();
    // The signatures of each merge's changes, with their signers.
    let mut merge_sigs: Vec<Vec<(ChangeSig, Author)>> = Vec::new();
    // The push each merge came from: its device answers for the checks of its records.
    let mut merge_push: Vec<usize> = Vec::new();
    let mut whos = Vec::with_capacity(pushes.len());
    let mut screen = Screen::new();
    for (who, docs) in pushes {
        let mut plan = Vec::with_capacity(docs.len());
        for d in docs {
            let Ok(id) = d.doc.parse::<DocId>() else {
                plan.push(Plan::Answer(DocResult::Refused {
                    doc: d.doc,
                    reason: Refusal::UnknownDocument,
                }));
                continue;
            };
            let site_org = match &id {
                DocId::Site(site) | DocId::Day(site, _) => auth.site_org(site.as_str())?,
                DocId::Okr(..) => None,
            };
            let access = crate::auth::access_in(&who, &id, site_org.as_deref());
            if access == Access::None {
                crate::audit::event(
                    "sync_refused",
                    Some(&who.device_id),
                    Some(&who.user_id),
                    &format!("no grant for {}", d.doc),
                );
                plan.push(Plan::Answer(DocResult::Refused {
                    doc: d.doc,
                    reason: Refusal::Forbidden,
                }));
                continue;
            }
            if !before.contains_key(&id) {
                before.insert(id.clone(), sorted(store.heads(&id)?));
            }
            // The phone's heads are all known here: it sends nothing new, it only asks.
            let nothing_new = !d.heads.is_empty() && store.knows_all(&id, &hex_heads(&d.heads))?;
            // A device that may only read a document (a foreman and the site's master data) gets
            // its changes refused one by one by the gate, naming the rule, so that a store used
            // before enrolment gets back in step instead of holding the document pending forever.
            if d.changes.is_empty() || nothing_new {
                plan.push(Plan::After {
                    id,
                    doc: d,
                    merge: None,
                    refused: Vec::new(),
                });
                continue;
            }
            let mut signers = Signers::new(auth, &d.sigs);
            let tenancy = Pusher { auth, who: &who };
            let screened = screen.check(store, &id, &d.changes, site_org.as_deref(), &mut signers, &tenancy);
            if let Some(e) = signers.failed.take() {
                tracing::error!(doc = %d.doc, error = %e, "could not check a push");
                plan.push(Plan::Answer(DocResult::Refused {
                    doc: d.doc,
                    reason: Refusal::Unavailable,
                }));
                continue;
            }
            let screened = match screened {
                Ok(s) => s,
                Err(sitesync_core::Error::MissingHistory { .. }) => {
                    plan.push(Plan::Answer(DocResult::NeedHistory {
                        heads: hashes(&store.heads(&id)?),
                        doc: d.doc,
                    }));
                    continue;
                }
                Err(e @ (sitesync_core::Error::BadChanges { .. } | sitesync_core::Error::CorruptDocument { .. })) => {
                    tracing::warn!(device = %who.device_id, doc = %d.doc, error = %e, "refused malformed changes");
                    plan.push(Plan::Answer(DocResult::Refused {
                        doc: d.doc,
                        reason: Refusal::Malformed,
                    }));
                    continue;
                }
                Err(sitesync_core::Error::Refused { invalid, .. }) => {
                    tracing::warn!(device = %who.device_id, doc = %d.doc, error = %invalid, "refused an invalid document");
                    plan.push(Plan::Answer(DocResult::Refused {
                        doc: d.doc,
                        reason: Refusal::Invalid {
                            field: invalid.field().to_string(),
                            reason: invalid.to_string(),
                        },
                    }));
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let log: Vec<(String, String, String, String)> = screened
                .refused
                .iter()
                .map(|(hash, v)| (d.doc.clone(), hash.clone(), v.rule().to_string(), v.to_string()))
                .collect();
            if let Err(e) = auth.record_refusals(&who, &log) {
                tracing::error!(error = %e, "could not record refusals");
            }
            let refused: Vec<RefusedChange> = screened
                .refused
                .into_iter()
                .map(|(hash, violation)| {
                    crate::audit::event(
                        "change_refused",
                        Some(&who.device_id),
                        Some(&who.user_id),
                        &format!("{} change {hash}: {} ({violation})", d.doc, violation.rule()),
                    );
                    RefusedChange {
                        hash: hashes(std::slice::from_ref(&hash)).pop().unwrap_or([0; 32]),
                        violation,
                    }
                })
                .collect();
            let merge = if screened.accepted.is_empty() {
                None
            } else {
                merges.push((id.clone(), screened.accepted));
                merge_push.push(whos.len());
                merge_sigs.push(
                    screened
                        .accepted_hashes
                        .iter()
                        .filter_map(|h| signers.signed.remove(h))
                        .collect(),
                );
                Some(merges.len() - 1)
            };
            plan.push(Plan::After {
                id,
                doc: d,
                merge,
                refused,
            });
        }
        plans.push(plan);
        whos.push(who);
    }

    // 2. The changes and their signatures in one transaction (one fsync): a change is never stored
    //    without the proof of who made it.
    for (k, (id, _)) in merges.iter().enumerate() {
        let mut by_signer: HashMap<(String, String), Vec<ChangeSig>> = HashMap::new();
        for (sig, author) in &merge_sigs[k] {
            by_signer
                .entry((author.device.clone(), author.user_id.clone()))
                .or_default()
                .push(sig.clone());
        }
        for ((device, user), sigs) in by_signer {
            store.stage_signatures(id, &sigs, &device, &user);
        }
    }
    let cursor_before = store.change_cursor()?;
    let pushers: Vec<Pusher<'_>> = merge_push.iter().map(|&i| Pusher { auth, who: &whos[i] }).collect();
    let items: Vec<(DocId, &[u8], &dyn Tenancy)> = merges
        .iter()
        .zip(&pushers)
        .map(|((id, b), p)| (id.clone(), b.as_slice(), p as &dyn Tenancy))
        .collect();
    let merged: Vec<std::result::Result<bool, sitesync_core::Error>> = if items.is_empty() {
        Vec::new()
    } else {
        match store.merge_many_checked(&items) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "could not store a batch of changes");
                items
                    .iter()
                    .map(|(id, ..)| Err(sitesync_core::Error::Sync(format!("{id}: store unavailable"))))
                    .collect()
            }
        }
    };

    // 3. Answer, and tell live connections what changed.
    let mut changed: Vec<DocId> = Vec::new();
    for (k, r) in merged.iter().enumerate() {
        if matches!(r, Ok(true)) && !changed.contains(&merges[k].0) {
            changed.push(merges[k].0.clone());
        }
    }
    // A document changed by exactly one merge: the accepted changes are exactly what a device at the
    // server's earlier heads lacks, no need to export them again.
    let mut exact: HashMap<DocId, usize> = HashMap::new();
    for (id, _) in &merges {
        *exact.entry(id.clone()).or_default() += 1;
    }
    let mut out = Vec::with_capacity(plans.len());
    for (plan, who) in plans.into_iter().zip(&whos) {
        let mut results = Vec::with_capacity(plan.len());
        for p in plan {
            let (id, d, merge, refused) = match p {
                Plan::Answer(r) => {
                    results.push(r);
                    continue;
                }
                Plan::After {
                    id,
                    doc,
                    merge,
                    refused,
                } => (id, doc, merge, refused),
            };
            if let Some(k) = merge {
                let refusal = match &merged[k] {
                    Ok(_) => None,
                    Err(sitesync_core::Error::MissingHistory { .. }) => {
                        results.push(DocResult::NeedHistory {
                            doc: d.doc,
                            heads: hashes(&store.heads(&id)?),
                        });
                        continue;
                    }
                    Err(
                        e @ (sitesync_core::Error::BadChanges { .. } | sitesync_core::Error::CorruptDocument { .. }),
                    ) => {
                        tracing::warn!(device = %who.device_id, doc = %d.doc, error = %e, "refused malformed changes");
                        Some(Refusal::Malformed)
                    }
                    Err(sitesync_core::Error::Refused { invalid, .. }) => {
                        tracing::warn!(device = %who.device_id, doc = %d.doc, error = %invalid, "refused invalid records");
                        Some(Refusal::Invalid {
                            field: invalid.field().to_string(),
                            reason: invalid.to_string(),
                        })
                    }
                    Err(e) => {
                        tracing::error!(doc = %d.doc, error = %e, "could not store changes");
                        Some(Refusal::Unavailable)
                    }
                };
                if let Some(reason) = refusal {
                    results.push(DocResult::Refused { doc: d.doc, reason });
                    continue;
                }
            }
            let answer = answer(store, deliveries, who, &id, d, !refused.is_empty())?;
            results.push(match answer {
                DocResult::Synced(update) if !refused.is_empty() => DocResult::Partial { update, refused },
                other => other,
            });
        }
        out.push(results);
    }
    if !changed.is_empty() {
        let cursor = store.change_cursor()?;
        // Each stored document moves the cursor by one; any other step means something else was
        // written too, and connections must re-read the store rather than trust this event alone.
        let prev_cursor = if cursor == cursor_before + changed.len() as u64 {
            cursor_before
        } else {
            u64::MAX
        };
        let mut docs = Vec::with_capacity(changed.len());
        for id in changed {
            let base = before.remove(&id).unwrap_or_default();
            let (changes, sigs) = match merges.iter().position(|(m, _)| *m == id) {
                Some(k) if exact.get(&id) == Some(&1) => (
                    std::mem::take(&mut merges[k].1),
                    merge_sigs[k].iter().map(|(s, _)| s.clone()).collect(),
                ),
                _ => store.export_signed(&id, &base)?.unwrap_or_default(),
            };
            docs.push(EventDoc {
                heads: sorted(store.heads(&id)?),
                doc: id,
                base,
                changes,
                sigs,
            });
        }
        let _ = events.send(Arc::new(PushEvent {
            prev_cursor,
            cursor,
            docs,
        }));
    }
    Ok(out)
}

/// The `Synced` answer to a pushed document once its changes are stored: the server's heads and
/// what the phone lacks.
fn answer(
    store: &mut Store,
    deliveries: &Deliveries,
    who: &Principal,
    id: &DocId,
    d: DocSync,
    partial: bool,
) -> Result<DocResult> {
    // With refused changes, the phone's heads name changes the server will never hold: what it
    // lacks is counted from the server's own earlier heads instead.
    let phone_heads = if partial {
        d.base.iter().map(hex::encode).collect()
    } else {
        hex_heads(&d.heads)
    };
    let heads = store.heads(id)?;
    if heads.is_empty() {
        // Asked for a document nobody has written yet: nothing to send.
        return Ok(DocResult::Synced(DocSync {
            doc: d.doc,
            base: d.heads.clone(),
            heads: d.heads,
            changes: Vec::new(),
            sigs: Vec::new(),
        }));
    }
    let ((lacks, sigs), has) = if sorted(heads.clone()) == sorted(phone_heads.clone()) {
        ((Vec::new(), Vec::new()), &heads)
    } else {
        // The phone has what it pushed; the rest counts as delivered only once it says so.
        (store.export_signed(id, &phone_heads)?.unwrap_or_default(), &phone_heads)
    };
    if store.knows_all(id, has)? {
        deliveries.record(&who.device_id, &d.doc, has.clone());
    }
    Ok(DocResult::Synced(DocSync {
        doc: d.doc,
        base: d.heads,
        heads: hashes(&heads),
        changes: lacks,
        sigs,
    }))
}

/// The documents the device may read that changed after `cursor`, each with what the device lacks,
/// split into frames; returns the cursor they cover. Nothing is recorded as delivered here: the
/// phone confirms with `Applied` (see [`delivered`]).
pub fn updates(auth: &AuthDb, store: &mut Store, who: &Principal, cursor: u64) -> Result<(u64, Vec<Vec<DocSync>>)> {
    let now = store.change_cursor()?;
    let mut frames = vec![Vec::new()];
    let mut size = 0;
    let changed = store.changed_since(cursor)?;
    // One read each of what the device holds and of the sites' orgs, not one per document.
    let mut holds = if changed.is_empty() {
        HashMap::new()
    } else {
        auth.device_docs(&who.device_id)?
    };
    let mut orgs: HashMap<String, Option<String>> = HashMap::new();
    for (id, _) in changed {
        let org = match &id {
            DocId::Site(site) | DocId::Day(site, _) => {
                if !orgs.contains_key(site.as_str()) {
                    orgs.insert(site.to_string(), auth.site_org(site.as_str())?);
                }
                orgs[site.as_str()].clone()
            }
            DocId::Okr(..) => None,
        };
        if crate::auth::access_in(who, &id, org.as_deref()) == Access::None {
            continue;
        }
        let doc = id.to_string();
        let heads = store.heads(&id)?;
        let has = holds.remove(&doc);
        if has.as_ref().map(|h| sorted(h.clone())) == Some(sorted(heads.clone())) {
            continue;
        }
        let base = has.unwrap_or_default();
        let (changes, sigs) = store.export_signed(&id, &base)?.unwrap_or_default();
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
            sigs,
        });
    }
    Ok((now, frames))
}

/// Updates sent on this connection and not yet confirmed, by the cursor they carried.
type Unconfirmed = Vec<(u64, Vec<(String, Vec<String>)>)>;

/// How long a connection trusts the device's grants for forwarding live updates before re-reading
/// them (every message from the device re-reads them at once).
const PRINCIPAL_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// One device's connection: where it is in the change stream and what its device holds.
struct Conn {
    /// The device.
    device_id: String,
    /// The change cursor delivered up to; `None` until the device said hello.
    cursor: Option<u64>,
    /// Updates sent and not yet confirmed with `Applied`.
    unconfirmed: Unconfirmed,
    /// What the device holds of each document (sorted hex heads), as far as this connection knows:
    /// read at hello, then kept up to date by what is sent and acknowledged.
    holds: HashMap<String, Vec<String>>,
    /// The device's grants and when they were read, for live updates.
    who: Option<(Principal, tokio::time::Instant)>,
    /// The org of each site seen, for access checks without the database.
    site_orgs: HashMap<String, Option<String>>,
    /// Documents this connection has pushed, against the per-connection limit.
    pushed: std::collections::HashSet<String>,
}

/// Serves one authenticated device until it disconnects, is revoked, or the server shuts down.
pub async fn serve(state: AppState, mut socket: WebSocket, device_id: String) {
    let mut changes = state.watch_changes();
    let mut events = state.subscribe_events();
    let mut shutdown = state.watch_shutdown();
    let mut conn = Conn {
        device_id,
        cursor: None,
        unconfirmed: Vec::new(),
        holds: HashMap::new(),
        who: None,
        site_orgs: HashMap::new(),
        pushed: std::collections::HashSet::new(),
    };
    let timing = state.timing();
    let mut last_heard = tokio::time::Instant::now();
    let mut ping = tokio::time::interval(timing.ping_every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let said_hello = conn.cursor.is_some();
        let reply: Result<Vec<ServerMsg>, ServerMsg> = tokio::select! {
            _ = ping.tick() => {
                if last_heard.elapsed() > timing.idle_after {
                    tracing::info!(device = %conn.device_id, "closing a silent sync connection");
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
                conn.handle(&state, &bytes).await
            }
            event = events.recv(), if said_hello => match event {
                Ok(e) => conn.on_events(&state, e, &mut events).await,
                Err(broadcast::error::RecvError::Lagged(_)) => conn.catch_up(&state).await,
                Err(broadcast::error::RecvError::Closed) => break,
            },
            changed = changes.changed(), if said_hello => {
                if changed.is_err() {
                    break;
                }
                let at = *changes.borrow_and_update();
                if conn.cursor.is_some_and(|c| at <= c) {
                    continue;
                }
                conn.catch_up(&state).await
            }
            _ = shutdown.changed() => break,
        };
        let reply = match reply {
            Ok(msgs) => msgs,
            Err(last) => {
                let _ = send(&mut socket, &last).await;
                break;
            }
        };
        remember(&mut conn.unconfirmed, &reply);
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

fn error(code: ErrorCode, message: &str) -> ServerMsg {
    ServerMsg::Error {
        code,
        message: message.to_string(),
    }
}

fn internal(e: crate::error::Error) -> ServerMsg {
    tracing::error!(error = %e, "sync failed");
    error(ErrorCode::Internal, "internal error")
}

async fn send(socket: &mut WebSocket, msg: &ServerMsg) -> Result<(), axum::Error> {
    socket.send(Message::Binary(protocol::encode(msg).into())).await
}

impl Conn {
    /// The device, re-read from the database so that a revocation cuts it off at once.
    async fn principal(&mut self, state: &AppState) -> Result<Principal, ServerMsg> {
        let id = self.device_id.clone();
        match state.auth(move |a| a.principal(&id)).await {
            Ok(Some(p)) => {
                self.who = Some((p.clone(), tokio::time::Instant::now()));
                Ok(p)
            }
            Ok(None) => Err(error(ErrorCode::Unauthorized, "device revoked")),
            Err(e) => Err(internal(e)),
        }
    }

    /// The device's grants, re-read if older than [`PRINCIPAL_TTL`].
    async fn recent_principal(&mut self, state: &AppState) -> Result<Principal, ServerMsg> {
        match &self.who {
            Some((p, at)) if at.elapsed() < PRINCIPAL_TTL => Ok(p.clone()),
            _ => self.principal(state).await,
        }
    }

    /// What the device may do with a document (the site's org cached per connection).
    async fn access(&mut self, state: &AppState, who: &Principal, doc: &DocId) -> Result<Access, ServerMsg> {
        let site = match doc {
            DocId::Site(s) | DocId::Day(s, _) => s.to_string(),
            DocId::Okr(..) => return Ok(crate::auth::access_in(who, doc, None)),
        };
        if !self.site_orgs.contains_key(&site) {
            let s = site.clone();
            let org = state.auth(move |a| a.site_org(&s)).await.map_err(internal)?;
            self.site_orgs.insert(site.clone(), org);
        }
        Ok(crate::auth::access_in(who, doc, self.site_orgs[&site].as_deref()))
    }

    /// Notes what the device will hold once it applies `docs`.
    fn sent(&mut self, docs: &[DocSync]) {
        for d in docs {
            self.holds.insert(d.doc.clone(), sorted(hex_heads(&d.heads)));
        }
    }

    /// Handles one frame from the device; an `Err` is the last message before closing.
    async fn handle(&mut self, state: &AppState, bytes: &[u8]) -> Result<Vec<ServerMsg>, ServerMsg> {
        let msg: ClientMsg = protocol::decode(bytes).map_err(|e| error(e.code(), &e.to_string()))?;
        if let ClientMsg::Applied { cursor: upto } = msg {
            // A receipt reads and writes no document: it needs no fresh look at the grants.
            let (done, rest): (Unconfirmed, Unconfirmed) = std::mem::take(&mut self.unconfirmed)
                .into_iter()
                .partition(|(c, _)| *c <= upto);
            self.unconfirmed = rest;
            let deliveries = state.deliveries();
            for (doc, heads) in done.into_iter().flat_map(|(_, d)| d) {
                deliveries.record(&self.device_id, &doc, heads);
            }
            return Ok(Vec::new());
        }
        // Past its rate a device is read more slowly, not refused: nothing it sends is lost.
        state.guard().sync_message(&self.device_id).await;
        let who = self.principal(state).await?;
        match msg {
            ClientMsg::Hello { cursor: from, key } => {
                let deliveries = state.deliveries();
                let you = who.author();
                let registered = {
                    let device = who.device_id.clone();
                    let org = who.org_id.clone();
                    state
                        .auth(move |a| {
                            a.register_key(&device, &key)?;
                            a.directory(&org)
                        })
                        .await
                };
                let directory = match registered {
                    Ok(d) => d,
                    Err(crate::error::Error::Conflict(m)) => {
                        tracing::warn!(target: "audit", event = "key_refused", device = %self.device_id, "{m}");
                        return Err(error(ErrorCode::Unauthorized, &m));
                    }
                    Err(e) => return Err(internal(e)),
                };
                let (epoch, now, holds, frames) = state
                    .both(move |auth, store| {
                        if from == 0 {
                            // A store that has applied nothing holds nothing, whatever this device
                            // token's earlier stores held (a reinstalled app, a wiped phone).
                            deliveries.forget(&who.device_id);
                            auth.forget_device_docs(&who.device_id)?;
                        } else {
                            deliveries.flush(auth)?;
                        }
                        let epoch = auth.epoch()?;
                        let holds = auth.device_docs(&who.device_id)?;
                        updates(auth, store, &who, from).map(|(now, frames)| (epoch, now, holds, frames))
                    })
                    .await
                    .map_err(internal)?;
                self.cursor = Some(now);
                self.holds = holds.into_iter().map(|(d, h)| (d, sorted(h))).collect();
                let n = frames.len();
                for f in &frames {
                    self.sent(f);
                }
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
                                you: you.clone(),
                                directory: directory.clone(),
                            }
                        } else {
                            ServerMsg::Changed { cursor: now, docs }
                        }
                    })
                    .collect())
            }
            ClientMsg::Push { req, docs } => {
                if self.cursor.is_none() {
                    return Err(error(ErrorCode::Malformed, "say hello first"));
                }
                let limits = state.guard().limits();
                if docs.len() > limits.docs_per_push {
                    return Err(error(
                        ErrorCode::RateLimited,
                        &format!("at most {} documents per push", limits.docs_per_push),
                    ));
                }
                self.pushed.extend(docs.iter().map(|d| d.doc.clone()));
                if self.pushed.len() > limits.docs_per_connection {
                    return Err(error(
                        ErrorCode::RateLimited,
                        &format!(
                            "at most {} documents per connection: reconnect",
                            limits.docs_per_connection
                        ),
                    ));
                }
                let results = state.push(who, docs).await.map_err(internal)?;
                for r in &results {
                    if let DocResult::Synced(d) | DocResult::Partial { update: d, .. } = r {
                        // The acknowledgement carries what the device lacked: it now holds `heads`.
                        self.holds.insert(d.doc.clone(), sorted(hex_heads(&d.heads)));
                    }
                }
                Ok(vec![ServerMsg::Ack { req, results }])
            }
            ClientMsg::Applied { .. } => Ok(Vec::new()),
        }
    }

    /// Everything that changed since this connection's cursor, read from the store.
    async fn catch_up(&mut self, state: &AppState) -> Result<Vec<ServerMsg>, ServerMsg> {
        let who = self.principal(state).await?;
        let from = self.cursor.unwrap_or(0);
        let deliveries = state.deliveries();
        let (now, frames) = state
            .both(move |auth, store| {
                deliveries.flush(auth)?;
                updates(auth, store, &who, from)
            })
            .await
            .map_err(internal)?;
        self.cursor = Some(now);
        let frames: Vec<Vec<DocSync>> = frames.into_iter().filter(|f| !f.is_empty()).collect();
        for f in &frames {
            self.sent(f);
        }
        Ok(frames
            .into_iter()
            .map(|docs| ServerMsg::Changed { cursor: now, docs })
            .collect())
    }

    /// Forwards push events (this one and any already queued behind it) as one `Changed`, reading the
    /// store only for a document the device holds at other heads than the event starts from.
    async fn on_events(
        &mut self,
        state: &AppState,
        first: Arc<PushEvent>,
        events: &mut broadcast::Receiver<Arc<PushEvent>>,
    ) -> Result<Vec<ServerMsg>, ServerMsg> {
        let mut docs = Vec::new();
        let mut next = Some(first);
        while let Some(e) = next.take() {
            let Some(cursor) = self.cursor else { break };
            if e.cursor > cursor {
                if e.prev_cursor != cursor {
                    // Something was written that this connection has no event for: read the store.
                    let mut out = self.flush_docs(docs);
                    out.extend(self.catch_up(state).await?);
                    return Ok(out);
                }
                self.cursor = Some(e.cursor);
                for d in &e.docs {
                    if let Some(d) = self.forward(state, d).await? {
                        docs.push(d);
                    }
                }
            }
            if docs.len() >= EVENTS_PER_FRAME {
                break;
            }
            next = match events.try_recv() {
                Ok(e) => Some(e),
                Err(broadcast::error::TryRecvError::Lagged(_)) => {
                    let mut out = self.flush_docs(docs);
                    out.extend(self.catch_up(state).await?);
                    return Ok(out);
                }
                Err(_) => None,
            };
        }
        Ok(self.flush_docs(docs))
    }

    /// The documents gathered from events as one `Changed` at the connection's cursor.
    fn flush_docs(&mut self, docs: Vec<DocSync>) -> Vec<ServerMsg> {
        if docs.is_empty() {
            return Vec::new();
        }
        self.sent(&docs);
        vec![ServerMsg::Changed {
            cursor: self.cursor.unwrap_or(0),
            docs,
        }]
    }

    /// What the device lacks of one changed document, if it may read it and lacks anything.
    async fn forward(&mut self, state: &AppState, e: &EventDoc) -> Result<Option<DocSync>, ServerMsg> {
        let who = self.recent_principal(state).await?;
        if self.access(state, &who, &e.doc).await? == Access::None {
            return Ok(None);
        }
        let doc = e.doc.to_string();
        let holds = self.holds.get(&doc);
        if holds == Some(&e.heads) {
            return Ok(None);
        }
        if holds.map_or(e.base.is_empty(), |h| *h == e.base) {
            return Ok(Some(DocSync {
                doc,
                base: hashes(&e.base),
                heads: hashes(&e.heads),
                changes: e.changes.clone(),
                sigs: e.sigs.clone(),
            }));
        }
        // The device holds something else (or nothing, and the event is not the whole document).
        let (id, base) = (e.doc.clone(), holds.cloned().unwrap_or_default());
        state
            .both(move |_, store| {
                let heads = store.heads(&id)?;
                let (changes, sigs) = store.export_signed(&id, &base)?.unwrap_or_default();
                Ok(Some(DocSync {
                    doc,
                    base: hashes(&base),
                    heads: hashes(&heads),
                    changes,
                    sigs,
                }))
            })
            .await
            .map_err(internal)
    }
}

/// Documents per live `Changed` frame gathered from queued events.
const EVENTS_PER_FRAME: usize = 256;
