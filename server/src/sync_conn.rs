//! One device's sync connection (`docs/protocol.md`) as a state machine, like the phone's
//! `sitesync_core::sync::Engine`: it is handed what happened — a frame from the device, the group
//! commit's answer to its push, other devices' push events, a moved change cursor — and answers with
//! a [`Step`]: messages to send, the connection to close, a push to apply, or that it needs the
//! databases. It does no I/O and never waits; [`socket`] is the thin tokio shell that feeds it from
//! the WebSocket and carries out its steps, and tests drive it the same way without a socket.
//!
//! The databases are reached through [`Stores`]. Most live updates are forwarded from the push event
//! alone, so that a push reaches a thousand devices at the cost of one store read: the shell first
//! offers no stores ([`NoStores`]), and only when the connection asks ([`Step::NeedStores`]) resumes
//! it on a blocking thread with the databases locked (2026-12-01: the same store reads as when this
//! logic awaited the stores inline, in fewer hops).
//!
//! Fan-out (2026-11-30): the events a connection finds queued go out as one `Changed` with one
//! update per document (several pushes to one day in a rush become one `DocSync`, applied and
//! confirmed once), and a device may have only a window of updates unconfirmed
//! ([`Limits::unconfirmed_updates`]): past it the connection drops what waits for it and catches up
//! from the store once the device confirms, so a slow reader costs its window, not the backlog.
//! An update that is one push event whole, as most are, goes out as the event's own frame, encoded
//! and deflated once for every connection ([`SyncConn::take_shared`]).
//!
//! Length: the state machine is one match over inputs (~750 lines) followed by its unit tests;
//! splitting the match would hide which input leads to which step.

mod heads;
pub mod socket;
pub mod websocket;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sitesync_core::Store;
use sitesync_core::ids::DocId;
use sitesync_core::sync::protocol::{self, ClientMsg, DocResult, DocSync, ErrorCode, ServerMsg, hashes, hex_heads};

use crate::auth::{Access, AuthDb, Principal};
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::push::sorted;
use crate::state::{Deliveries, EventDoc, PushEvent};
use heads::Heads;

/// Documents per live `Changed` frame gathered from queued events.
const EVENTS_PER_FRAME: usize = 256;

/// How long a connection trusts the device's grants for forwarding live updates before re-reading
/// them (every message from the device re-reads them at once).
const PRINCIPAL_TTL: Duration = Duration::from_secs(1);

/// The databases as a connection may reach them at one step: `None` where the shell did not offer
/// them (the connection then asks for them with [`Step::NeedStores`]).
pub trait Stores {
    /// The credential database.
    fn auth(&mut self) -> Option<&AuthDb>;
    /// The credential database and the document store (the store held until the step ends).
    fn both(&mut self) -> Option<(&AuthDb, &mut Store)>;
}

/// No databases: what the shell offers first, so that a step that can do without them does.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoStores;

impl Stores for NoStores {
    fn auth(&mut self) -> Option<&AuthDb> {
        None
    }

    fn both(&mut self) -> Option<(&AuthDb, &mut Store)> {
        None
    }
}

/// What happened, for the connection to act on.
#[derive(Debug)]
pub enum Input {
    /// A binary frame from the device.
    Frame(Vec<u8>),
    /// The group commit's results for the push asked for with [`Step::Push`].
    Pushed(Result<Vec<DocResult>>),
    /// Push events, in the order they were sent (the first one and those queued behind it).
    Events(Vec<Arc<PushEvent>>),
    /// Push events were missed (the connection fell behind): what changed is read from the store.
    Missed,
    /// The store's change cursor moved, by a write that may have no push event (an approval, an
    /// admin command, another process).
    Moved(u64),
    /// The device was revoked (on this node or another): its grants are read again, which closes
    /// the connection.
    Revoked,
}

/// What the connection asks of its shell.
#[derive(Debug)]
pub enum Step {
    /// Send these, in order (none is fine).
    Send(Vec<ServerMsg>),
    /// Send these, the last one saying why, and close the connection.
    Close(Vec<ServerMsg>),
    /// Call [`SyncConn::resume`] with the databases; with `throttle`, first wait until the device's
    /// message rate allows another message (past its rate a device is read more slowly, not refused:
    /// nothing it sends is lost).
    NeedStores {
        /// Whether a request from the device waits for the stores (rather than live updates).
        throttle: bool,
    },
    /// Apply this push through the group commit (durable when it answers), and hand its results
    /// back as [`Input::Pushed`].
    Push {
        /// The device, as its grants were read for this push.
        who: Principal,
        /// The documents pushed.
        docs: Vec<DocSync>,
    },
}

/// Why a step stopped short.
enum Halt {
    /// The connection ends with this message, which says why (boxed: the error path is rare, the
    /// `Result`s carrying it are not).
    Close(Box<ServerMsg>),
    /// The step needs databases it was not offered; it resumes where it stopped.
    NeedStores,
}

impl From<ServerMsg> for Halt {
    fn from(last: ServerMsg) -> Halt {
        Halt::Close(Box::new(last))
    }
}

/// A failure of the server's own, logged; the device is told only that it happened.
fn fail(e: impl Into<Error>) -> Halt {
    internal(e.into()).into()
}

/// An update sent on this connection and not yet confirmed.
#[derive(Debug)]
struct Sent {
    /// The cursor it carried: an `Applied` at or past it confirms it.
    cursor: u64,
    /// Bytes of changes it carried, against the connection's window.
    bytes: usize,
}

/// Updates sent on this connection and not yet confirmed, oldest first.
type Unconfirmed = Vec<Sent>;

/// What a device holds of a document, and whether that is still to be confirmed.
#[derive(Debug)]
struct Held {
    /// The heads it holds once it applies what was sent.
    heads: Heads,
    /// The cursor of the last unconfirmed update that carried the document: once the device
    /// confirms it, it holds `heads` and the delivery is recorded. One per document however many
    /// updates carried it, so that what a connection keeps is bounded by the documents its device
    /// reads, not by its window (per update, 64 updates of a busy site's group commits were
    /// thousands of entries a device, a gigabyte for 1,000 devices in the rush; 2026-12-01).
    confirm_at: Option<u64>,
}

/// Live work waiting, in order.
#[derive(Debug)]
enum Live {
    /// A push event to forward.
    Event(Arc<PushEvent>),
    /// Read what changed since the connection's cursor from the store.
    CatchUp,
}

/// One device's connection: where it is in the change stream, what its device holds, and the work
/// a step left for the next.
#[derive(Debug, Default)]
pub struct SyncConn {
    /// The device, as authenticated when the connection opened.
    device_id: String,
    /// Documents per push and per connection the device may send.
    limits: Limits,
    /// Where confirmed deliveries are recorded (written to the database in batches).
    deliveries: Deliveries,
    /// The change cursor delivered up to; `None` until the device said hello.
    cursor: Option<u64>,
    /// Updates sent and not yet confirmed with `Applied`.
    unconfirmed: Unconfirmed,
    /// Bytes of changes in `unconfirmed`.
    unconfirmed_bytes: usize,
    /// Documents of `holds` in an unconfirmed update (their `confirm_at` set).
    awaiting: usize,
    /// Whether live work was dropped because the device had too much unconfirmed
    /// ([`Limits::unconfirmed_updates`]): it is owed a catch-up from the store once it confirms.
    behind: bool,
    /// What the device holds of each document, as far as this connection knows: read at hello,
    /// then kept up to date by what is sent and acknowledged.
    holds: HashMap<String, Held>,
    /// The device's grants and when they were read, for live updates.
    who: Option<(Principal, Instant)>,
    /// The org of each site seen, for access checks without the database.
    site_orgs: HashMap<String, Option<String>>,
    /// Documents this connection has pushed, against the per-connection limit.
    pushed: HashSet<String>,
    /// A hello or push from the device, decoded and waiting for the databases.
    request: Option<ClientMsg>,
    /// The request number of the push handed to the group commit, until its results come back.
    pushing: Option<u64>,
    /// Live work not done yet (what a step left when it needed the databases).
    live: VecDeque<Live>,
    /// How far forwarding got into the first queued event: its documents before this index are in
    /// `frame`; `None` before it started (its cursor not yet taken).
    started: Option<usize>,
    /// Documents gathered from events for the next `Changed`, one update per document however
    /// many events touched it.
    frame: Vec<DocSync>,
    /// Where each document of `frame` is in it and the heads (hex, sorted) that update brings the
    /// device to, so that a later event on the same document extends it.
    gathered: HashMap<String, (usize, Heads)>,
    /// Bytes of changes in `frame`.
    frame_bytes: usize,
    /// Messages made before a step needed the databases, sent with the rest of the step.
    outbox: Vec<ServerMsg>,
    /// The push event `frame` holds whole and unchanged (every document of it, each from the
    /// event's base, nothing else), while it does: that frame is the event's own
    /// [`PushEvent::changed_frame`], encoded once for every connection that sends it.
    whole: Option<Arc<PushEvent>>,
    /// Positions in `outbox` of frames that are a push event's whole (see `whole`).
    shared: Vec<(usize, Arc<PushEvent>)>,
    /// `shared` of the last [`Step::Send`], for the shell to take ([`SyncConn::take_shared`]).
    shared_sent: Vec<(usize, Arc<PushEvent>)>,
    /// The protocol version the device speaks, from its first frame (`None` before it): every
    /// message to it is framed in that version, a refusal of an unknown one included.
    speaks: Option<u8>,
}

impl SyncConn {
    /// A connection of an authenticated device that has said nothing yet.
    pub fn new(device_id: String, limits: Limits, deliveries: Deliveries) -> SyncConn {
        SyncConn {
            device_id,
            limits,
            deliveries,
            ..SyncConn::default()
        }
    }

    /// The device this connection serves.
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// The protocol version to frame messages to the device in (the current one until it spoke).
    pub fn version(&self) -> u8 {
        self.speaks.unwrap_or(protocol::VERSION)
    }

    /// Whether the device said hello: only then does it get live updates.
    pub fn said_hello(&self) -> bool {
        self.cursor.is_some()
    }

    /// The frames of the last [`Step::Send`] that are a push event's whole update, by their position
    /// in it: the shell sends the event's [`PushEvent::changed_frame`] for them, encoded once for
    /// every connection, instead of encoding its own copy. Take them with every step sent.
    pub fn take_shared(&mut self) -> Vec<(usize, Arc<PushEvent>)> {
        std::mem::take(&mut self.shared_sent)
    }

    /// Acts on `input` at `now`, with whatever databases `stores` offers.
    pub fn handle(&mut self, input: Input, now: Instant, stores: &mut dyn Stores) -> Step {
        match input {
            Input::Frame(bytes) => match protocol::decode_client(&bytes) {
                Err(protocol::FrameError::Version(v)) => {
                    // Answered in the device's own framing, so that even a phone this server no
                    // longer speaks reads why it is refused.
                    self.speaks.get_or_insert(v);
                    tracing::info!(device = %self.device_id, version = v, "refused a sync protocol version");
                    Step::Close(vec![error(ErrorCode::Version, &protocol::refusal_text(v))])
                }
                Err(e) => Step::Close(vec![error(e.code(), &e.to_string())]),
                Ok((v, _)) if self.speaks.is_some_and(|s| s != v) => Step::Close(vec![error(
                    ErrorCode::Version,
                    &format!("this connection speaks protocol {}, not {v}", self.version()),
                )]),
                Ok((v, msg)) => {
                    self.speaks = Some(v);
                    self.frame(msg, now, stores)
                }
            },
            Input::Pushed(results) => self.pushed(results),
            Input::Events(events) => {
                if self.said_hello() {
                    self.live.extend(events.into_iter().map(Live::Event));
                }
                self.run_live(now, stores)
            }
            Input::Missed => {
                if self.said_hello() {
                    self.live.push_back(Live::CatchUp);
                }
                self.run_live(now, stores)
            }
            Input::Revoked => {
                if self.said_hello() {
                    self.live.push_back(Live::CatchUp);
                }
                self.run_live(now, stores)
            }
            Input::Moved(at) => {
                if self.cursor.is_some_and(|c| at > c) {
                    self.live.push_back(Live::CatchUp);
                }
                self.run_live(now, stores)
            }
        }
    }

    /// A decoded message from the device.
    fn frame(&mut self, msg: ClientMsg, now: Instant, stores: &mut dyn Stores) -> Step {
        match msg {
            ClientMsg::Applied { cursor } => {
                self.applied(cursor);
                // A catch-up owed since the window filled runs now.
                self.run_live(now, stores)
            }
            request => {
                // Every other message re-reads the device's grants: it always needs the stores.
                self.request = Some(request);
                Step::NeedStores { throttle: true }
            }
        }
    }

    /// Carries on where the last step stopped for the databases, now offered in `stores`.
    pub fn resume(&mut self, now: Instant, stores: &mut dyn Stores) -> Step {
        let Some(request) = self.request.take() else {
            return self.run_live(now, stores);
        };
        if stores.auth().is_none() {
            self.request = Some(request);
            return Step::NeedStores { throttle: false };
        }
        match self.request(request, now, stores) {
            Ok(step) => step,
            Err(Halt::Close(last)) => self.close(*last),
            Err(Halt::NeedStores) => self.close(internal(Error::Internal(
                "a request was resumed without the document store".into(),
            ))),
        }
    }

    /// A receipt: the updates sent up to `upto` are applied on the device. It reads and writes no
    /// document, so it needs no fresh look at the grants.
    fn applied(&mut self, upto: u64) {
        let (done, rest): (Unconfirmed, Unconfirmed) = std::mem::take(&mut self.unconfirmed)
            .into_iter()
            .partition(|s| s.cursor <= upto);
        self.unconfirmed = rest;
        if done.is_empty() {
            return self.owe_catch_up();
        }
        for sent in done {
            self.unconfirmed_bytes = self.unconfirmed_bytes.saturating_sub(sent.bytes);
        }
        if self.awaiting > 0 {
            for (doc, held) in &mut self.holds {
                if held.confirm_at.is_some_and(|c| c <= upto) {
                    held.confirm_at = None;
                    self.awaiting -= 1;
                    self.deliveries.record(&self.device_id, doc, held.heads.to_hex());
                }
            }
        }
        self.owe_catch_up();
    }

    /// Once a device that fell behind confirmed enough, queues the catch-up it is owed.
    fn owe_catch_up(&mut self) {
        if self.behind && !self.window_full() {
            // The device caught up with what was sent: what it missed meanwhile is read from the
            // store, once, however much that was.
            self.behind = false;
            self.live.push_back(Live::CatchUp);
        }
    }

    /// Whether the device has as much unconfirmed, counting what this step made, as
    /// [`Limits::unconfirmed_updates`] and [`Limits::unconfirmed_bytes`] allow. The frame being
    /// gathered counts by its bytes only: more events extend it without adding an update.
    fn window_full(&self) -> bool {
        let made = self.outbox.iter().filter(|m| update(m).is_some()).count();
        let made_bytes = self.outbox.iter().map(update_bytes).sum::<usize>() + self.frame_bytes;
        self.unconfirmed.len() + made >= self.limits.unconfirmed_updates
            || self.unconfirmed_bytes + made_bytes >= self.limits.unconfirmed_bytes
    }

    /// A hello or a push, with the stores.
    fn request(&mut self, msg: ClientMsg, now: Instant, stores: &mut dyn Stores) -> Result<Step, Halt> {
        let who = self.principal(now, stores)?;
        match msg {
            ClientMsg::Hello { cursor: from, key } => self.hello(who, from, &key, stores),
            ClientMsg::Push { req, docs } => {
                if self.cursor.is_none() {
                    return Err(error(ErrorCode::Malformed, "say hello first").into());
                }
                if docs.len() > self.limits.docs_per_push {
                    return Err(error(
                        ErrorCode::RateLimited,
                        &format!("at most {} documents per push", self.limits.docs_per_push),
                    )
                    .into());
                }
                self.pushed.extend(docs.iter().map(|d| d.doc.clone()));
                if self.pushed.len() > self.limits.docs_per_connection {
                    return Err(error(
                        ErrorCode::RateLimited,
                        &format!(
                            "at most {} documents per connection: reconnect",
                            self.limits.docs_per_connection
                        ),
                    )
                    .into());
                }
                self.pushing = Some(req);
                Ok(Step::Push { who, docs })
            }
            ClientMsg::Applied { cursor } => {
                self.applied(cursor);
                Ok(self.run_live(now, stores))
            }
        }
    }

    /// The welcome: the device's key registered, and everything it may read and lacks since `from`.
    fn hello(&mut self, who: Principal, from: u64, key: &[u8; 32], stores: &mut dyn Stores) -> Result<Step, Halt> {
        let auth = stores.auth().ok_or(Halt::NeedStores)?;
        let directory = match auth
            .register_key(&who.device_id, key)
            .and_then(|()| auth.directory(&who))
        {
            Ok(d) => d,
            Err(Error::Conflict(m)) => {
                tracing::warn!(target: "audit", event = "key_refused", device = %self.device_id, "{m}");
                return Err(error(ErrorCode::Unauthorized, &m).into());
            }
            Err(e) => return Err(fail(e)),
        };
        let (auth, store) = stores.both().ok_or(Halt::NeedStores)?;
        let mut read = || -> Result<_> {
            if from == 0 {
                // A store that has applied nothing holds nothing, whatever this device token's
                // earlier stores held (a reinstalled app, a wiped phone).
                self.deliveries.forget(&who.device_id);
                auth.forget_device_docs(&who.device_id)?;
            } else {
                self.deliveries.flush(auth)?;
            }
            let epoch = auth.epoch()?;
            let holds = auth.device_docs(&who.device_id)?;
            // A first sync sends everything at once (the phone confirms it once, at its end).
            let (now, frames) = updates(auth, store, &who, from, usize::MAX, self.limits.frame_bytes)?;
            Ok((epoch, holds, now, frames))
        };
        let (epoch, holds, now, frames) = read().map_err(fail)?;
        self.cursor = Some(now);
        self.holds = holds
            .into_iter()
            .map(|(d, h)| {
                let heads = Heads::from_hex(&h);
                (
                    d,
                    Held {
                        heads,
                        confirm_at: None,
                    },
                )
            })
            .collect();
        self.awaiting = 0;
        for (_, f) in &frames {
            self.sent(f);
        }
        let (n, you) = (frames.len(), who.author());
        // The welcome carries the cursor the whole first sync covers (the phone stores it only
        // when nothing more follows, and with `more` waits for a `Changed` that reaches it); each
        // later frame carries the cursor it completes.
        let msgs = frames
            .into_iter()
            .enumerate()
            .map(|(i, (covers, docs))| {
                if i == 0 {
                    ServerMsg::Welcome {
                        epoch: epoch.clone(),
                        cursor: now,
                        docs,
                        more: n > 1,
                        you: you.clone(),
                        directory: directory.clone(),
                        update: protocol::UpdateNotice::for_version(self.version()),
                    }
                } else {
                    ServerMsg::Changed { cursor: covers, docs }
                }
            })
            .collect();
        Ok(self.send(msgs))
    }

    /// The acknowledgement of the push in flight.
    fn pushed(&mut self, results: Result<Vec<DocResult>>) -> Step {
        let Some(req) = self.pushing.take() else {
            return self.close(internal(Error::Internal("push results without a push".into())));
        };
        let results = match results {
            Ok(r) => r,
            Err(e) => return self.close(internal(e)),
        };
        for r in &results {
            if let DocResult::Synced(d) | DocResult::Partial { update: d, .. } = r {
                // The acknowledgement carries what the device lacked: it now holds `heads`. An
                // update of the document still unconfirmed then records nothing when confirmed:
                // `heads` count as delivered only once the device says so (the push recorded what
                // it had), and a confirmation of the earlier update does not say that.
                self.now_holds(&d.doc, Heads::from_hashes(&d.heads));
                if let Some(held) = self.holds.get_mut(&d.doc)
                    && held.confirm_at.take().is_some()
                {
                    self.awaiting -= 1;
                }
            }
        }
        self.send(vec![ServerMsg::Ack { req, results }])
    }

    /// Does the live work queued, as far as `stores` allows.
    fn run_live(&mut self, now: Instant, stores: &mut dyn Stores) -> Step {
        match self.forward_live(now, stores) {
            Ok(()) => {
                self.flush_frame();
                self.send(Vec::new())
            }
            Err(Halt::NeedStores) => Step::NeedStores { throttle: false },
            Err(Halt::Close(last)) => {
                self.live.clear();
                self.started = None;
                self.frame.clear();
                self.gathered.clear();
                self.frame_bytes = 0;
                self.whole = None;
                self.close(*last)
            }
        }
    }

    /// Forwards queued push events, one `Changed` per [`EVENTS_PER_FRAME`] documents (or
    /// [`Limits::frame_bytes`]) with one update per document, reading the store only for a document
    /// the device holds at other heads than the event starts from, and reads the store instead where
    /// events were missed. Once the device has its window of updates unconfirmed, drops what waits
    /// and owes it a catch-up instead. Stops, resumable, where it needs the stores.
    fn forward_live(&mut self, now: Instant, stores: &mut dyn Stores) -> Result<(), Halt> {
        while let Some(next) = self.live.front() {
            if self.started.is_none() && (self.behind || self.window_full()) {
                // A slow reader: nothing more queues for it. Its grants are still checked (a
                // revocation closes the connection now, not once the device reads again).
                if matches!(next, Live::CatchUp) {
                    self.principal(now, stores)?;
                }
                self.live.clear();
                self.behind = true;
                break;
            }
            let event = match next {
                Live::CatchUp => {
                    self.flush_frame();
                    let msgs = self.catch_up(now, stores)?;
                    self.outbox.extend(msgs);
                    self.live.pop_front();
                    continue;
                }
                Live::Event(e) => e.clone(),
            };
            let Some(cursor) = self.cursor else {
                self.live.clear();
                break;
            };
            let from = match self.started {
                Some(i) => i,
                None if event.cursor <= cursor => {
                    self.live.pop_front();
                    continue;
                }
                None if event.prev_cursor != cursor => {
                    // Something was written that this connection has no event for: read the store
                    // (which covers this event too).
                    self.live[0] = Live::CatchUp;
                    continue;
                }
                None => {
                    self.cursor = Some(event.cursor);
                    // Whole so far if it starts the frame; `forward` says otherwise.
                    self.whole = self.frame.is_empty().then(|| event.clone());
                    0
                }
            };
            for (i, doc) in event.docs.iter().enumerate().skip(from) {
                self.started = Some(i);
                self.forward(doc, now, stores)?;
            }
            self.started = None;
            self.live.pop_front();
            if self.frame.len() >= EVENTS_PER_FRAME || self.frame_bytes >= self.limits.frame_bytes {
                self.flush_frame();
            }
        }
        Ok(())
    }

    /// Adds to the frame what the device lacks of one changed document, if it may read it and lacks
    /// anything: a new update, or the one the frame already holds for the document, extended.
    fn forward(&mut self, e: &EventDoc, now: Instant, stores: &mut dyn Stores) -> Result<(), Halt> {
        let who = self.recent_principal(now, stores)?;
        if self.access(&who, &e.doc, stores)? == Access::None {
            self.whole = None;
            return Ok(());
        }
        let doc = e.doc.to_string();
        // What the device will hold once it applies what is gathered so far.
        let gathered = self.gathered.get(&doc);
        let holds = gathered
            .map(|(_, h)| h)
            .or_else(|| self.holds.get(&doc).map(|h| &h.heads));
        let heads = Heads::from_hex(&e.heads);
        if holds == Some(&heads) {
            self.whole = None;
            return Ok(());
        }
        if holds.map_or(e.base.is_empty(), |h| *h == Heads::from_hex(&e.base)) {
            match gathered {
                Some(&(i, _)) => {
                    self.whole = None;
                    // The event starts where the gathered update ends: one update from the
                    // earliest base to the latest heads, the changes one run after the other.
                    let d = &mut self.frame[i];
                    d.heads = hashes(&e.heads);
                    d.changes.extend_from_slice(&e.changes);
                    let known: HashSet<[u8; 32]> = d.sigs.iter().map(|s| s.hash).collect();
                    d.sigs
                        .extend(e.sigs.iter().filter(|s| !known.contains(&s.hash)).cloned());
                    self.gathered.insert(doc, (i, heads));
                }
                None => self.gather(DocSync {
                    doc,
                    base: hashes(&e.base),
                    heads: hashes(&e.heads),
                    changes: e.changes.clone(),
                    sigs: e.sigs.clone(),
                }),
            }
            self.frame_bytes += e.changes.len();
            return Ok(());
        }
        // The device holds something else (or nothing, and the event is not the whole document):
        // what it lacks from what it holds before the frame, read from the store, replaces the
        // update gathered for it.
        self.whole = None;
        let base = match gathered {
            Some(&(i, _)) => hex_heads(&self.frame[i].base),
            None => self.holds.get(&doc).map(|h| h.heads.to_hex()).unwrap_or_default(),
        };
        let (_, store) = stores.both().ok_or(Halt::NeedStores)?;
        let heads = store.heads(&e.doc).map_err(fail)?;
        let (changes, sigs) = store.export_signed(&e.doc, &base).map_err(fail)?.unwrap_or_default();
        let update = DocSync {
            doc,
            base: hashes(&base),
            heads: hashes(&heads),
            changes,
            sigs,
        };
        match gathered {
            Some(&(i, _)) => {
                self.frame_bytes = self.frame_bytes - self.frame[i].changes.len() + update.changes.len();
                self.gathered.insert(update.doc.clone(), (i, Heads::from_hex(&heads)));
                self.frame[i] = update;
            }
            None => {
                self.frame_bytes += update.changes.len();
                self.gather(update);
            }
        }
        Ok(())
    }

    /// Adds a document's update to the frame (its bytes counted by the caller).
    fn gather(&mut self, update: DocSync) {
        self.gathered.insert(
            update.doc.clone(),
            (self.frame.len(), Heads::from_hashes(&update.heads)),
        );
        self.frame.push(update);
    }

    /// What changed since this connection's cursor, read from the store: as much as the device's
    /// window of unconfirmed bytes has room for; the rest is owed (`behind`) until it confirms.
    fn catch_up(&mut self, now: Instant, stores: &mut dyn Stores) -> Result<Vec<ServerMsg>, Halt> {
        let who = self.principal(now, stores)?;
        let from = self.cursor.unwrap_or(0);
        let room = self
            .limits
            .unconfirmed_bytes
            .saturating_sub(self.unconfirmed_bytes + self.outbox.iter().map(update_bytes).sum::<usize>());
        let (auth, store) = stores.both().ok_or(Halt::NeedStores)?;
        self.deliveries.flush(auth).map_err(fail)?;
        let (now, frames) = updates(auth, store, &who, from, room, self.limits.frame_bytes).map_err(fail)?;
        if now < store.change_cursor().map_err(fail)? {
            self.behind = true;
        }
        self.cursor = Some(now);
        let frames: Vec<Frame> = frames.into_iter().filter(|(_, f)| !f.is_empty()).collect();
        for (_, f) in &frames {
            self.sent(f);
        }
        Ok(frames
            .into_iter()
            .map(|(cursor, docs)| ServerMsg::Changed { cursor, docs })
            .collect())
    }

    /// The device, re-read from the database so that a revocation cuts it off at once.
    fn principal(&mut self, now: Instant, stores: &mut dyn Stores) -> Result<Principal, Halt> {
        let auth = stores.auth().ok_or(Halt::NeedStores)?;
        match auth.principal(&self.device_id) {
            Ok(Some(p)) => {
                self.who = Some((p.clone(), now));
                Ok(p)
            }
            Ok(None) => Err(error(ErrorCode::Unauthorized, "device revoked").into()),
            Err(e) => Err(fail(e)),
        }
    }

    /// The device's grants, re-read if older than [`PRINCIPAL_TTL`].
    fn recent_principal(&mut self, now: Instant, stores: &mut dyn Stores) -> Result<Principal, Halt> {
        match &self.who {
            Some((p, at)) if now.saturating_duration_since(*at) < PRINCIPAL_TTL => Ok(p.clone()),
            _ => self.principal(now, stores),
        }
    }

    /// What the device may do with a document (the site's org cached per connection).
    fn access(&mut self, who: &Principal, doc: &DocId, stores: &mut dyn Stores) -> Result<Access, Halt> {
        let site = match doc {
            DocId::Site(s) | DocId::Day(s, _) => s.to_string(),
            DocId::Okr(..) => return Ok(crate::auth::access_in(who, doc, None)),
        };
        if !self.site_orgs.contains_key(&site) {
            let auth = stores.auth().ok_or(Halt::NeedStores)?;
            let org = auth.site_org(&site).map_err(fail)?;
            self.site_orgs.insert(site.clone(), org);
        }
        Ok(crate::auth::access_in(who, doc, self.site_orgs[&site].as_deref()))
    }

    /// Notes what the device will hold once it applies `docs`.
    fn sent(&mut self, docs: &[DocSync]) {
        for d in docs {
            self.now_holds(&d.doc, Heads::from_hashes(&d.heads));
        }
    }

    /// Notes that the device holds (or will, once it applies what was sent) `heads` of `doc`.
    fn now_holds(&mut self, doc: &str, heads: Heads) {
        match self.holds.get_mut(doc) {
            Some(held) => held.heads = heads,
            None => {
                let held = Held {
                    heads,
                    confirm_at: None,
                };
                self.holds.insert(doc.to_string(), held);
            }
        }
    }

    /// The documents gathered from events as one `Changed` at the connection's cursor.
    fn flush_frame(&mut self) {
        // Taken, not cleared: an idle connection keeps no capacity from its last burst.
        self.gathered = HashMap::new();
        self.frame_bytes = 0;
        let whole = self.whole.take();
        if self.frame.is_empty() {
            return;
        }
        let docs = std::mem::take(&mut self.frame);
        self.sent(&docs);
        if let Some(event) = whole
            && event.docs.len() == docs.len()
            && self.cursor == Some(event.cursor)
        {
            self.shared.push((self.outbox.len(), event));
        }
        self.outbox.push(ServerMsg::Changed {
            cursor: self.cursor.unwrap_or(0),
            docs,
        });
    }

    /// Sends what the step made, after anything made earlier in it, and remembers the updates
    /// among them until the device confirms them.
    fn send(&mut self, msgs: Vec<ServerMsg>) -> Step {
        // Positions in the outbox are positions in what is sent: it goes first.
        self.shared_sent = std::mem::take(&mut self.shared);
        let mut out = std::mem::take(&mut self.outbox);
        out.extend(msgs);
        for msg in &out {
            if let Some((cursor, docs)) = update(msg) {
                let bytes = update_bytes(msg);
                self.unconfirmed_bytes += bytes;
                self.unconfirmed.push(Sent { cursor, bytes });
                for d in docs {
                    if !self.holds.contains_key(&d.doc) {
                        self.now_holds(&d.doc, Heads::from_hashes(&d.heads));
                    }
                    if let Some(held) = self.holds.get_mut(&d.doc)
                        && held.confirm_at.replace(cursor).is_none()
                    {
                        self.awaiting += 1;
                    }
                }
            }
        }
        Step::Send(out)
    }

    /// Ends the connection with `last`, after what the step made before it.
    fn close(&mut self, last: ServerMsg) -> Step {
        self.shared.clear();
        self.shared_sent.clear();
        let mut out = std::mem::take(&mut self.outbox);
        out.push(last);
        Step::Close(out)
    }
}

/// The cursor and documents of an update (a `Welcome` or a `Changed`).
fn update(msg: &ServerMsg) -> Option<(u64, &[DocSync])> {
    match msg {
        ServerMsg::Welcome { cursor, docs, .. } | ServerMsg::Changed { cursor, docs } => Some((*cursor, docs)),
        _ => None,
    }
}

/// Bytes of changes an update carries (0 for any other message).
fn update_bytes(msg: &ServerMsg) -> usize {
    update(msg).map_or(0, |(_, docs)| docs.iter().map(|d| d.changes.len()).sum())
}

fn error(code: ErrorCode, message: &str) -> ServerMsg {
    ServerMsg::Error {
        code,
        message: message.to_string(),
    }
}

/// The message for a failure of the server's own, which is logged and not shown.
fn internal(e: Error) -> ServerMsg {
    tracing::error!(error = %e, "sync failed");
    error(ErrorCode::Internal, "internal error")
}

/// A frame of updates and the cursor it completes: every document changed up to it is in this
/// frame or an earlier one, so a phone that stores it and loses the connection before the next
/// frame is sent what it missed, not skipped past it.
type Frame = (u64, Vec<DocSync>);

/// The documents the device may read that changed after `cursor`, each with what the device lacks,
/// split into frames; returns the cursor they cover. Past `budget` bytes of changes it stops
/// between two documents' change numbers, and the cursor returned is the last one covered (a later
/// read from it finds every document changed after it, whatever it held before). The last frame's
/// cursor is the one returned; each earlier frame's is the change number before the next frame's
/// first document (documents come in change-number order). Nothing is recorded as delivered here:
/// the phone confirms with `Applied`.
fn updates(
    auth: &AuthDb,
    store: &mut Store,
    who: &Principal,
    cursor: u64,
    budget: usize,
    frame_bytes: usize,
) -> Result<(u64, Vec<Frame>)> {
    let now = store.change_cursor()?;
    let mut frames: Vec<Frame> = vec![(cursor, Vec::new())];
    let mut size = 0;
    let changed = store.changed_since(cursor)?;
    // One read each of what the device holds and of the sites' orgs, not one per document.
    let mut holds = if changed.is_empty() {
        HashMap::new()
    } else {
        auth.device_docs(&who.device_id)?
    };
    let mut orgs: HashMap<String, Option<String>> = HashMap::new();
    let (mut total, mut covered) = (0usize, None);
    for (id, seq) in changed {
        if let Some(last) = covered
            && total >= budget
            && last != seq
        {
            return Ok((last, close_frames(frames, last)));
        }
        covered = Some(seq);
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
        if size + changes.len() > frame_bytes && !frames.last().is_some_and(|(_, f)| f.is_empty()) {
            // Every document before this one changed at or before `seq`; those at `seq` itself may
            // follow in the new frame.
            frames.last_mut().expect("one frame at least").0 = seq - 1;
            frames.push((seq - 1, Vec::new()));
            size = 0;
        }
        size += changes.len();
        total += changes.len();
        frames.last_mut().expect("one frame at least").1.push(DocSync {
            doc,
            base: hashes(&base),
            heads: hashes(&heads),
            changes,
            sigs,
        });
    }
    Ok((now, close_frames(frames, now)))
}

/// Gives the last frame the cursor the read covers.
fn close_frames(mut frames: Vec<Frame>, covered: u64) -> Vec<Frame> {
    if let Some(last) = frames.last_mut() {
        last.0 = covered;
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> SyncConn {
        SyncConn::new("d-000000000001".into(), Limits::default(), Deliveries::default())
    }

    #[test]
    fn a_frame_that_does_not_decode_closes_the_connection_without_the_stores() {
        let mut c = conn();
        // The right version, then a body that is no message.
        let step = c.handle(Input::Frame(vec![2, 0, 0xff, 0xff]), Instant::now(), &mut NoStores);
        let Step::Close(last) = step else { panic!("{step:?}") };
        assert!(
            matches!(
                &last[..],
                [ServerMsg::Error {
                    code: ErrorCode::Malformed,
                    ..
                }]
            ),
            "{last:?}"
        );
    }

    #[test]
    fn a_request_waits_for_the_stores_and_the_devices_rate_and_keeps_until_they_come() {
        let mut c = conn();
        let hello = protocol::encode(&ClientMsg::Hello {
            cursor: 0,
            key: [7; 32],
        });
        let step = c.handle(Input::Frame(hello), Instant::now(), &mut NoStores);
        assert!(matches!(step, Step::NeedStores { throttle: true }), "{step:?}");
        // Resumed without them, it asks again and loses nothing.
        let step = c.resume(Instant::now(), &mut NoStores);
        assert!(matches!(step, Step::NeedStores { throttle: false }), "{step:?}");
        assert!(matches!(c.request, Some(ClientMsg::Hello { cursor: 0, .. })));
        assert!(!c.said_hello());
    }

    #[test]
    fn a_receipt_confirms_exactly_the_updates_up_to_its_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let auth = AuthDb::open(dir.path()).unwrap();
        let mut c = conn();
        let update = |cursor, doc: &str| ServerMsg::Changed {
            cursor,
            docs: vec![DocSync {
                doc: doc.into(),
                base: Vec::new(),
                heads: vec![[cursor as u8; 32]],
                changes: Vec::new(),
                sigs: Vec::new(),
            }],
        };
        assert!(matches!(c.send(vec![update(3, "a"), update(5, "b"), update(9, "c")]), Step::Send(m) if m.len() == 3));
        let receipt = protocol::encode(&ClientMsg::Applied { cursor: 5 });
        let step = c.handle(Input::Frame(receipt), Instant::now(), &mut NoStores);
        assert!(matches!(&step, Step::Send(m) if m.is_empty()), "{step:?}");
        c.deliveries.flush(&auth).unwrap();
        let held = auth.device_docs(&c.device_id).unwrap();
        let mut docs: Vec<&str> = held.keys().map(String::as_str).collect();
        docs.sort();
        assert_eq!(docs, ["a", "b"]);
        assert_eq!(held["b"], vec![hex::encode([5u8; 32])]);
        assert_eq!(c.unconfirmed.len(), 1, "the update at 9 is still unconfirmed");
    }

    #[test]
    fn a_document_in_several_unconfirmed_updates_is_remembered_once_and_recorded_at_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let auth = AuthDb::open(dir.path()).unwrap();
        let mut c = conn();
        let docs = |cursor: u64| {
            vec![DocSync {
                doc: "a".into(),
                base: Vec::new(),
                heads: vec![[cursor as u8; 32]],
                changes: vec![0; 10],
                sigs: Vec::new(),
            }]
        };
        // As the connection does: what the device will hold is noted as each update is made.
        for cursor in [3, 5] {
            c.sent(&docs(cursor));
            c.send(vec![ServerMsg::Changed {
                cursor,
                docs: docs(cursor),
            }]);
        }
        assert_eq!((c.holds.len(), c.awaiting, c.unconfirmed.len()), (1, 1, 2));
        let applied = |c: &mut SyncConn, cursor| {
            let receipt = protocol::encode(&ClientMsg::Applied { cursor });
            c.handle(Input::Frame(receipt), Instant::now(), &mut NoStores);
            c.deliveries.flush(&auth).unwrap();
            auth.device_docs(&c.device_id).unwrap()
        };
        // The first update confirmed: the device may not hold the second yet, nothing is recorded.
        assert!(applied(&mut c, 3).is_empty());
        assert_eq!((c.awaiting, c.unconfirmed.len()), (1, 1));
        let held = applied(&mut c, 5);
        assert_eq!(held["a"], vec![hex::encode([5u8; 32])]);
        assert_eq!((c.awaiting, c.unconfirmed.len(), c.unconfirmed_bytes), (0, 0, 0));

        // An update of "a" unconfirmed, then the device's own push of "a" acknowledged with what
        // it lacked: confirming the update does not count the acknowledgement as delivered.
        c.sent(&docs(7));
        c.send(vec![ServerMsg::Changed {
            cursor: 7,
            docs: docs(7),
        }]);
        c.pushing = Some(1);
        let mut acked = docs(8).remove(0);
        acked.heads = vec![[8u8; 32]];
        assert!(matches!(c.pushed(Ok(vec![DocResult::Synced(acked)])), Step::Send(_)));
        assert_eq!(c.holds["a"].heads, Heads::One([8u8; 32]));
        let held = applied(&mut c, 7);
        assert_eq!(
            held["a"],
            vec![hex::encode([5u8; 32])],
            "still the last delivery the device confirmed"
        );
        assert_eq!((c.awaiting, c.unconfirmed.len()), (0, 0));
    }

    /// A connection that said hello at cursor 0, whose device is a foreman of site-hz-01 with
    /// grants fresh at `now` and the site's org known, so that it forwards events without stores.
    fn foreman_at(now: Instant, limits: Limits) -> SyncConn {
        let mut c = SyncConn::new("d-000000000001".into(), limits, Deliveries::default());
        c.cursor = Some(0);
        let who = Principal {
            device_id: c.device_id.clone(),
            user_id: "u-foreman-hz-01".into(),
            user_name: "崔贵".into(),
            org_id: "org-zhuyuan".into(),
            role: crate::auth::Role::Foreman,
            all_sites: false,
            sites: vec!["site-hz-01".into()],
        };
        c.who = Some((who, now));
        c.site_orgs.insert("site-hz-01".into(), Some("org-zhuyuan".into()));
        c
    }

    /// A store with the fixture company and a day document written in `steps` pushes: one event
    /// per step (cursor k-1 → k), each carrying the changes from the step before.
    fn day_in_steps(dir: &std::path::Path, steps: usize) -> (Store, DocId, Vec<Arc<PushEvent>>) {
        let auth = AuthDb::open(dir).unwrap();
        let mut store = Store::open(dir.join("docs.sqlite3")).unwrap();
        let company: sitesync_core::import::Company = sitesync_core::import::read_json(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/company.json"
        )))
        .unwrap();
        crate::admin::import_company(&auth, &mut store, &company).unwrap();
        let site: sitesync_core::ids::SiteId = "site-hz-01".parse().unwrap();
        let date = sitesync_core::ids::parse_date("2026-11-02").unwrap();
        let id = DocId::Day(site.clone(), date);
        let mut events = Vec::new();
        let mut before: Vec<String> = Vec::new();
        for k in 1..=steps {
            let e = sitesync_core::store::entry(
                site.clone(),
                date,
                format!("w-{k:04}").parse().unwrap(),
                "site-hz-01/wi-4.1".parse().unwrap(),
                sitesync_core::units::WorkDays::parse("1.0").unwrap(),
            );
            store.add_labor(&e, None).unwrap();
            let heads = sorted(store.heads(&id).unwrap());
            let changes = store.export_changes(&id, &before).unwrap().unwrap();
            events.push(Arc::new(PushEvent::new(
                k as u64 - 1,
                k as u64,
                vec![EventDoc {
                    doc: id.clone(),
                    base: before.clone(),
                    heads: heads.clone(),
                    changes,
                    sigs: vec![sitesync_core::signing::ChangeSig {
                        hash: [k as u8; 32],
                        key: [0; 32],
                        sig: vec![k as u8],
                    }],
                }],
            )));
            before = heads;
        }
        (store, id, events)
    }

    #[test]
    fn events_on_one_document_go_out_as_one_update_the_phone_applies() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, id, events) = day_in_steps(dir.path(), 3);
        let now = Instant::now();
        let mut c = foreman_at(now, Limits::default());
        // The last event again (a connection may be handed one it already forwarded).
        let mut drained = events.clone();
        drained.push(events[2].clone());
        let step = c.handle(Input::Events(drained), now, &mut NoStores);
        let Step::Send(msgs) = step else { panic!("{step:?}") };
        let [ServerMsg::Changed { cursor: 3, docs }] = &msgs[..] else {
            panic!("{msgs:?}")
        };
        let [d] = &docs[..] else { panic!("{docs:?}") };
        assert_eq!(d.doc, id.to_string());
        assert!(d.base.is_empty(), "from the earliest base");
        assert_eq!(d.heads, hashes(&events[2].docs[0].heads), "to the latest heads");
        let concatenated: Vec<u8> = events.iter().flat_map(|e| e.docs[0].changes.clone()).collect();
        assert_eq!(d.changes, concatenated);
        let signed: Vec<u8> = d.sigs.iter().map(|s| s.hash[0]).collect();
        assert_eq!(signed, [1, 2, 3], "signatures unioned");
        // A phone that held nothing merges the one update and reaches the server's heads.
        let phone_dir = tempfile::tempdir().unwrap();
        let mut phone = Store::open(phone_dir.path().join("phone.sqlite3")).unwrap();
        phone.merge_changes(&id, &d.changes).unwrap();
        assert_eq!(sorted(phone.heads(&id).unwrap()), sorted(store.heads(&id).unwrap()));
        let DocId::Day(site, date) = &id else {
            unreachable!("a day")
        };
        let master = DocId::Site(site.clone());
        let roster = store.export_changes(&master, &[]).unwrap().unwrap();
        phone.merge_changes(&master, &roster).unwrap();
        assert_eq!(phone.day(site, *date).unwrap().labor.len(), 3);
    }

    #[test]
    fn an_event_sent_whole_is_encoded_once_for_every_connection_and_a_merged_one_is_not_shared() {
        let dir = tempfile::tempdir().unwrap();
        let (_store, _, events) = day_in_steps(dir.path(), 2);
        let now = Instant::now();
        // Two devices that hold the document at the first event's heads get the second whole.
        let mut frames = Vec::new();
        for _ in 0..2 {
            let mut c = foreman_at(now, Limits::default());
            let step = c.handle(Input::Events(vec![events[0].clone()]), now, &mut NoStores);
            assert!(matches!(&step, Step::Send(m) if m.len() == 1), "{step:?}");
            c.take_shared();
            let step = c.handle(Input::Events(vec![events[1].clone()]), now, &mut NoStores);
            let Step::Send(msgs) = step else { panic!("{step:?}") };
            let shared = c.take_shared();
            let [(0, event)] = &shared[..] else {
                panic!("{shared:?}")
            };
            assert!(Arc::ptr_eq(event, &events[1]));
            // The shared frame is, byte for byte, what this connection would have encoded.
            let own = protocol::encode_server(protocol::VERSION, &msgs[0]);
            let frame = event.changed_frame();
            assert_eq!(frame[..], own[..]);
            frames.push(frame);
        }
        assert_eq!(frames[0].as_ptr(), frames[1].as_ptr(), "encoded once, shared");
        // Both events at once become one merged update: not either event's frame.
        let mut c = foreman_at(now, Limits::default());
        let step = c.handle(Input::Events(events.clone()), now, &mut NoStores);
        assert!(matches!(&step, Step::Send(m) if m.len() == 1), "{step:?}");
        assert!(c.take_shared().is_empty());
        // A device that may not read the site gets nothing, and nothing shared.
        let mut c = foreman_at(now, Limits::default());
        c.site_orgs.insert("site-hz-01".into(), Some("org-other".into()));
        let step = c.handle(Input::Events(vec![events[0].clone()]), now, &mut NoStores);
        assert!(matches!(&step, Step::Send(m) if m.is_empty()), "{step:?}");
        assert!(c.take_shared().is_empty());
    }

    #[test]
    fn a_device_that_does_not_confirm_gets_nothing_more_queued_and_a_catch_up_once_it_does() {
        let dir = tempfile::tempdir().unwrap();
        let (_store, _, events) = day_in_steps(dir.path(), 3);
        let now = Instant::now();
        let limits = Limits {
            unconfirmed_updates: 2,
            ..Limits::default()
        };
        let mut c = foreman_at(now, limits);
        for (k, e) in events.iter().take(2).enumerate() {
            let step = c.handle(Input::Events(vec![e.clone()]), now, &mut NoStores);
            assert!(matches!(&step, Step::Send(m) if m.len() == 1), "update {k}: {step:?}");
        }
        // Two updates unconfirmed: the third event is dropped, not queued, and no store is read.
        let step = c.handle(Input::Events(vec![events[2].clone()]), now, &mut NoStores);
        assert!(matches!(&step, Step::Send(m) if m.is_empty()), "{step:?}");
        assert!(c.live.is_empty() && c.behind);
        assert_eq!(c.cursor, Some(2), "the cursor stays where the device was served");
        // A receipt for the first update makes room: the connection reads the store for the rest.
        let receipt = protocol::encode(&ClientMsg::Applied { cursor: 1 });
        let step = c.handle(Input::Frame(receipt), now, &mut NoStores);
        assert!(matches!(step, Step::NeedStores { throttle: false }), "{step:?}");
        assert!(matches!(c.live.front(), Some(Live::CatchUp)) && !c.behind);
    }

    #[test]
    fn live_updates_wait_for_a_hello() {
        let mut c = conn();
        let event = Arc::new(PushEvent::new(0, 1, Vec::new()));
        let step = c.handle(Input::Events(vec![event]), Instant::now(), &mut NoStores);
        assert!(matches!(&step, Step::Send(m) if m.is_empty()), "{step:?}");
        let step = c.handle(Input::Missed, Instant::now(), &mut NoStores);
        assert!(matches!(&step, Step::Send(m) if m.is_empty()), "{step:?}");
    }
}
