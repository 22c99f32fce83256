//! Shared server state: the credential database, the document store, and change notification.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sitesync_core::Store;
use sitesync_core::ids::DocId;
use sitesync_core::sync::protocol::{self, DocResult, DocSync};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::auth::{AuthDb, BrowserSessions, Principal};
use crate::error::{Error, Result};
use crate::limits::{ConnectionLimits, Guard, Limits};
use crate::storage::Location;
use crate::sync_conn::Stores;

/// Everything a request handler needs; cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Tenancy and credentials. Its connection is locked per call (inside `AuthDb`), never while a
    /// caller waits for the document store, so requests authenticate while pushes are stored.
    auth: Arc<AuthDb>,
    /// The documents, in the same store the phones use; one writer.
    docs: Arc<Mutex<Store>>,
    /// A second connection to the same file, for reports only: SQLite's WAL lets it read the last
    /// committed state while the push writer holds `docs`, so reports never wait behind pushes.
    reader: Arc<Mutex<Store>>,
    /// The store's change cursor, watched by every live connection to push updates to its device
    /// after writes other than pushes (approvals, admin commands, other processes).
    changes: Arc<watch::Sender<u64>>,
    /// Every document a push changed, with the changes, so that live connections forward them
    /// without each re-reading the store (a push reaches a thousand devices at the cost of one).
    events: broadcast::Sender<Arc<PushEvent>>,
    /// Pushes waiting for the group-commit writer thread.
    pushes: mpsc::UnboundedSender<PushJob>,
    /// The change cursor the last push event covered: writes already announced by an event need no
    /// wake-up through `changes` (which makes every connection re-read the store).
    evented: Arc<AtomicU64>,
    /// What devices confirmed they hold, written to the credential database in batches.
    deliveries: Deliveries,
    /// Limits per device and their counters.
    guard: Guard,
    /// Flips to true when the server shuts down, so live connections close.
    shutdown: Arc<watch::Sender<bool>>,
    /// Where the data lives.
    data_dir: PathBuf,
    /// How sync connections are kept alive and when silent ones are closed.
    timing: KeepAlive,
    /// The front door's limits: connections, header timeout, body sizes.
    connection_limits: ConnectionLimits,
    /// How long a dashboard sign-in lasts.
    browser_sessions: BrowserSessions,
    /// Devices revoked (here, or on another node when they share PostgreSQL): their live
    /// connections close at once.
    revocations: broadcast::Sender<String>,
    /// What this node shares with others, when the state lives in PostgreSQL.
    shared: Option<SharedDatabase>,
    /// Where verified attachment bytes live (the data directory by default).
    blobs: Arc<dyn crate::blobs::BlobStore>,
    /// Uploads in progress until they are whole and verified: on this node's disk on SQLite, in the
    /// shared database on PostgreSQL.
    staging: crate::blobs::Staging,
    /// The operator's counters, served at `/metrics`.
    metrics: Arc<crate::metrics::Metrics>,
    /// The SHA-256 of the operators' `/metrics` token, when one is configured (besides admins).
    metrics_token: Option<[u8; 32]>,
}

/// What a node on PostgreSQL needs beyond its stores: leases for once-per-service jobs, and where
/// to listen for other nodes' commits.
#[derive(Clone, Debug)]
struct SharedDatabase {
    /// The documents' pool (the `jobs` table lives beside the documents).
    docs: Arc<crate::storage::PgDatabase>,
    /// The URL, for the one direct connection that LISTENs.
    url: String,
    /// This node's name in leases: random per start.
    node: String,
}

/// Keep-alive of sync connections: a ping every `ping_every`; a connection from which nothing (not
/// even a pong) arrived for `idle_after` is closed and its resources freed, as is one whose peer
/// stops reading for that long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepAlive {
    /// How often the server pings.
    pub ping_every: std::time::Duration,
    /// How long a connection may stay silent (or refuse to read) before it is closed.
    pub idle_after: std::time::Duration,
}

impl Default for KeepAlive {
    fn default() -> Self {
        KeepAlive {
            ping_every: std::time::Duration::from_secs(30),
            idle_after: std::time::Duration::from_secs(90),
        }
    }
}

/// Locks a mutex, recovering it if a panicking thread poisoned it (the guarded stores keep their
/// on-disk state consistent on their own).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl AppState {
    /// Opens the data directory (creating it), its credential database and document store.
    pub fn open(data_dir: &Path) -> Result<AppState> {
        AppState::open_at(data_dir, &Location::Sqlite)
    }

    /// Opens the state where `location` says, with `data_dir` for files (created if missing). On
    /// PostgreSQL the schema is migrated first, once however many nodes start together.
    pub fn open_at(data_dir: &Path, location: &Location) -> Result<AppState> {
        crate::files::tighten_data_dir(data_dir)?;
        let blob_dir = data_dir.join("blobs");
        let (auth, mut docs, reader, shared, blobs, staging) = match location {
            Location::Sqlite => {
                let auth = AuthDb::open(data_dir)?;
                let documents = data_dir.join("documents.sqlite3");
                crate::files::private_database(&documents)?;
                let docs = Store::open(&documents)?;
                // Opened after the writer's, which brought the schema up to date; nothing writes
                // through it.
                let reader = Store::open(&documents)?;
                let blobs: Arc<dyn crate::blobs::BlobStore> = Arc::new(crate::blobs::FsBlobStore::open(&blob_dir)?);
                let staging = crate::blobs::Staging::open(&blob_dir.join("staging"))?;
                (auth, docs, reader, None, blobs, staging)
            }
            Location::Postgres { url, connections } => {
                let pg = crate::storage::open_postgres(url, *connections)?;
                let auth = AuthDb::on(pg.auth.clone());
                // Blobs and uploads in progress live beside their claims, shared by every node.
                let blobs: Arc<dyn crate::blobs::BlobStore> =
                    Arc::new(crate::blobs::db::DbBlobStore::new(pg.auth.clone()));
                let staging = crate::blobs::Staging::in_database(pg.auth.clone(), &blob_dir.join("staging"))?;
                let docs = Store::open_on(Box::new(pg.docs.dedicated()?), "postgres (documents)")?;
                let reader = Store::open_on(Box::new(pg.docs.dedicated()?), "postgres (reports)")?;
                let shared = SharedDatabase {
                    docs: pg.docs,
                    url: url.clone(),
                    node: format!("node-{}", hex::encode(rand_bytes()?)),
                };
                (auth, docs, reader, Some(shared), blobs, staging)
            }
        };
        if docs.user() != "server" {
            docs.set_user("server")?;
        }
        docs.set_cache_docs(SERVER_CACHE_DOCS);
        // The server's own writes (approvals through the API, metric check-ins, imports) are signed
        // with its documents store's key, registered like a device's.
        auth.register_key(SERVER_DEVICE, &docs.public_key())?;
        let cursor = docs.change_cursor()?;
        let reader = Arc::new(Mutex::new(reader));
        let (auth, docs) = (Arc::new(auth), Arc::new(Mutex::new(docs)));
        if shared.is_none() {
            let store = lock(&docs);
            crate::checkpoint::hand_off(&store, store.path(), Arc::downgrade(&docs))?;
        }
        let events = broadcast::channel(EVENT_BACKLOG).0;
        let deliveries = Deliveries::default();
        let (pushes, jobs) = mpsc::unbounded_channel();
        let evented = Arc::new(AtomicU64::new(cursor));
        let metrics = Arc::new(crate::metrics::Metrics::new(match location {
            Location::Sqlite => "sqlite",
            Location::Postgres { .. } => "postgres",
        }));
        {
            let shared = Shared {
                auth: auth.clone(),
                docs: docs.clone(),
                deliveries: deliveries.clone(),
                events: events.clone(),
                evented: evented.clone(),
                metrics: metrics.clone(),
            };
            std::thread::Builder::new()
                .name("push-writer".into())
                .spawn(move || writer(shared, jobs))
                .map_err(|e| Error::Internal(format!("push writer: {e}")))?;
        }
        Ok(AppState {
            auth,
            docs,
            reader,
            changes: Arc::new(watch::channel(cursor).0),
            events,
            pushes,
            evented,
            deliveries,
            guard: Guard::new(Limits::default()),
            shutdown: Arc::new(watch::channel(false).0),
            data_dir: data_dir.to_path_buf(),
            timing: KeepAlive::default(),
            connection_limits: ConnectionLimits::default(),
            browser_sessions: BrowserSessions::default(),
            revocations: broadcast::channel(64).0,
            shared,
            blobs,
            staging,
            metrics,
            metrics_token: None,
        })
    }

    /// Whether this node holds (or now takes) the lease of a once-per-service job; on SQLite, one
    /// process serves a data directory and always does.
    pub async fn lease(&self, job: &'static str, ttl: std::time::Duration) -> Result<bool> {
        let Some(shared) = self.shared.clone() else {
            return Ok(true);
        };
        blocking("lease", move || {
            Ok(crate::storage::lease(&*shared.docs, job, &shared.node, ttl)?)
        })
        .await
    }

    /// The PostgreSQL URL other nodes' commits are announced on, if the state lives there.
    pub fn notifications_url(&self) -> Option<&str> {
        self.shared.as_ref().map(|s| s.url.as_str())
    }

    /// Closes the live connections of a revoked device on this node.
    pub fn revoked(&self, device: &str) {
        let _ = self.revocations.send(device.to_string());
    }

    /// A receiver of revoked devices.
    pub fn watch_revocations(&self) -> broadcast::Receiver<String> {
        self.revocations.subscribe()
    }

    /// The same state with other front-door limits (the binary fits them to the open-file limit;
    /// tests use small ones).
    pub fn with_connection_limits(mut self, limits: ConnectionLimits) -> AppState {
        self.connection_limits = limits;
        self
    }

    /// The front door's limits.
    pub fn connection_limits(&self) -> ConnectionLimits {
        self.connection_limits
    }

    /// The same state with other dashboard session lifetimes.
    pub fn with_browser_sessions(mut self, policy: BrowserSessions) -> AppState {
        self.browser_sessions = policy;
        self
    }

    /// How long a dashboard sign-in lasts.
    pub fn browser_sessions(&self) -> BrowserSessions {
        self.browser_sessions
    }

    /// The same state with other keep-alive timing (tests use short ones).
    pub fn with_timing(mut self, timing: KeepAlive) -> AppState {
        self.timing = timing;
        self
    }

    /// The same state with other limits (fresh counters).
    pub fn with_limits(mut self, limits: Limits) -> AppState {
        self.guard = Guard::new(limits);
        self
    }

    /// The limits and their counters.
    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    /// The keep-alive timing of sync connections.
    pub fn timing(&self) -> KeepAlive {
        self.timing
    }

    /// The same state with its blobs kept elsewhere (an object-store provider, or the data
    /// directory's files on PostgreSQL). Uploads stay staged where the engine keeps them.
    pub fn with_blob_store(mut self, blobs: Arc<dyn crate::blobs::BlobStore>) -> AppState {
        self.blobs = blobs;
        self
    }

    /// Runs `f` with the blob storage and the staging area on a blocking thread.
    pub async fn blobs<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn crate::blobs::BlobStore, &crate::blobs::Staging) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (blobs, staging) = (self.blobs.clone(), self.staging.clone());
        blocking("blobs", move || f(&*blobs, &staging)).await
    }

    /// The staging area of uploads (the upload handler appends to its files as bytes arrive).
    pub fn staging(&self) -> &crate::blobs::Staging {
        &self.staging
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The operator's counters.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }

    /// The same state with an operators' token for `/metrics` (kept as its SHA-256 only).
    pub fn with_metrics_token(mut self, token: &str) -> AppState {
        use sha2::Digest;
        self.metrics_token = Some(sha2::Sha256::digest(token.trim().as_bytes()).into());
        self
    }

    /// Whether `token` is the operators' `/metrics` token (compared as hashes, so the comparison's
    /// time says nothing about the token).
    pub fn is_metrics_token(&self, token: &str) -> bool {
        use sha2::Digest;
        let Some(want) = &self.metrics_token else {
            return false;
        };
        let got: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        got == *want
    }

    /// Runs `f` with the credential database on a blocking thread.
    pub async fn auth<T: Send + 'static>(&self, f: impl FnOnce(&AuthDb) -> Result<T> + Send + 'static) -> Result<T> {
        let auth = self.auth.clone();
        let timer = self.metrics.db.auth.clone();
        blocking("auth", move || timed(&timer, || f(&auth))).await
    }

    /// Runs `f` with the credential database and the document store on a blocking thread; only the
    /// document store is held for the whole of `f`.
    pub async fn both<T: Send + 'static>(
        &self,
        f: impl FnOnce(&AuthDb, &mut Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (auth, docs) = (self.auth.clone(), self.docs.clone());
        let timer = self.metrics.db.store.clone();
        blocking("store", move || timed(&timer, || f(&auth, &mut lock(&docs)))).await
    }

    /// Runs `f` on a blocking thread with the credential database and the documents' read-only
    /// connection: what was committed last, without waiting for the push writer (or an approval or
    /// import holding the writer's store). Reports, the approval queue and the dashboard read here;
    /// nothing `f` does through the store may write.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&AuthDb, &mut Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (auth, reader) = (self.auth.clone(), self.reader.clone());
        let timer = self.metrics.db.read.clone();
        blocking("read", move || timed(&timer, || f(&auth, &mut lock(&reader)))).await
    }

    /// Runs `f` on a blocking thread with the document store alone, held for the whole of `f` as
    /// the push writer holds it.
    pub async fn documents<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let docs = self.docs.clone();
        let timer = self.metrics.db.store.clone();
        blocking("store", move || timed(&timer, || f(&mut lock(&docs)))).await
    }

    /// Runs `f` on a blocking thread with the databases offered as [`Stores`]: the document store
    /// locked on first use and held until `f` returns (the credential database locks per call).
    pub(crate) async fn with_stores<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Stores) -> T + Send + 'static,
    ) -> Result<T> {
        let (auth, docs) = (self.auth.clone(), self.docs.clone());
        let timer = self.metrics.db.store.clone();
        blocking("store", move || {
            let _timer = Timer(&timer, std::time::Instant::now());
            let mut stores = Locked {
                auth: &auth,
                docs_lock: &docs,
                docs: None,
            };
            Ok(f(&mut stores))
        })
        .await
    }

    /// Re-reads the change cursor and wakes live connections if documents changed.
    pub async fn notify_changes(&self) -> Result<()> {
        // What was committed: the read connection answers without waiting for the push writer.
        let cursor = self.read(|_, docs| Ok(docs.change_cursor()?)).await?;
        let evented = self.evented.load(Ordering::SeqCst);
        self.changes.send_if_modified(|c| {
            // Writes a push event announced reach connections through it; only others wake them.
            let newer = cursor > *c && cursor > evented;
            if newer {
                *c = cursor;
            }
            newer
        });
        Ok(())
    }

    /// Applies a device's push through the group commit: durable when this returns.
    /// Signatures are verified and signers resolved here, on the blocking pool beside the other
    /// connections' (see `authorship.rs`), so that the one writer thread only does what needs the
    /// documents.
    pub async fn push(&self, who: Principal, docs: Vec<DocSync>) -> Result<Vec<DocResult>> {
        let auth = self.auth.clone();
        let (who, docs, vetted) = blocking("vet", move || {
            let vetted = crate::authorship::vet(&auth, &who, &docs);
            Ok((who, docs, vetted))
        })
        .await?;
        let (reply, answer) = oneshot::channel();
        self.pushes
            .send(PushJob {
                who,
                docs: docs.into_iter().zip(vetted).collect(),
                reply,
            })
            .map_err(|_| Error::Internal("the push writer stopped".into()))?;
        answer
            .await
            .map_err(|_| Error::Internal("the push writer stopped".into()))?
    }

    /// The sender of push events, for the code that applies pushes (it sends while holding the store,
    /// so events go out in cursor order).
    pub fn event_sender(&self) -> broadcast::Sender<Arc<PushEvent>> {
        self.events.clone()
    }

    /// A receiver of push events.
    pub fn subscribe_events(&self) -> broadcast::Receiver<Arc<PushEvent>> {
        self.events.subscribe()
    }

    /// What devices confirmed they hold, not yet written down.
    pub fn deliveries(&self) -> Deliveries {
        self.deliveries.clone()
    }

    /// Writes confirmed deliveries to the credential database.
    pub async fn flush_deliveries(&self) -> Result<()> {
        let d = self.deliveries.clone();
        self.auth(move |a| d.flush(a)).await
    }

    /// A receiver that wakes when documents change.
    pub fn watch_changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// A receiver that wakes when the server shuts down.
    pub fn watch_shutdown(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Tells live connections to close.
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
    }
}

/// Eight random bytes from the OS.
fn rand_bytes() -> Result<[u8; 8]> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(|e| Error::Internal(format!("random: {e}")))?;
    Ok(b)
}

/// Runs `f` on tokio's blocking pool (SQLite calls block); a panic in `f` is an internal error of
/// the `what` task, not of the caller.
async fn blocking<T: Send + 'static>(what: &str, f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("{what} task: {e}")))?
}

/// Runs `f`, recording how long it took (waiting for the lock included) in `h`.
fn timed<T>(h: &prometheus_client::metrics::histogram::Histogram, f: impl FnOnce() -> T) -> T {
    let _timer = Timer(h, std::time::Instant::now());
    f()
}

/// Records the time since its start in a histogram when dropped (also when the call panics).
struct Timer<'a>(&'a prometheus_client::metrics::histogram::Histogram, std::time::Instant);

impl Drop for Timer<'_> {
    fn drop(&mut self) {
        crate::metrics::observe(self.0, self.1.elapsed());
    }
}

/// The databases locked as a sync connection first needs them (`AppState::with_stores`).
struct Locked<'a> {
    /// The credential database (it locks its connection per call).
    auth: &'a AuthDb,
    /// The document store's mutex.
    docs_lock: &'a Mutex<Store>,
    /// The document store, once locked.
    docs: Option<std::sync::MutexGuard<'a, Store>>,
}

impl Stores for Locked<'_> {
    fn auth(&mut self) -> Option<&AuthDb> {
        Some(self.auth)
    }

    fn both(&mut self) -> Option<(&AuthDb, &mut Store)> {
        let docs = self.docs.get_or_insert_with(|| lock(self.docs_lock));
        Some((self.auth, &mut **docs))
    }
}

/// The device id under which the server's own key is registered and its changes attributed.
pub const SERVER_DEVICE: &str = "server";

/// Documents the server keeps decoded in memory (the phone keeps 32).
const SERVER_CACHE_DOCS: usize = 512;

/// How many push events a slow connection may fall behind before it re-reads the store instead.
/// The channel keeps every event until each connection has taken it, so this (times a group
/// commit's changes, up to `PUSHES_PER_COMMIT` pushes) is what one stalled reader can pin for
/// everyone: 1,024 commits, down from 8,192, is a few seconds of the busiest rush (2026-11-30);
/// a connection further behind than that catches up from the store, as one past its window of
/// unconfirmed updates does (`Limits::unconfirmed_updates`).
const EVENT_BACKLOG: usize = 1024;

/// What a batch of pushes changed, in one store transaction.
#[derive(Debug)]
pub struct PushEvent {
    /// The store's change cursor just before the batch (`u64::MAX` if something else was written
    /// at the same time, so that no connection takes this event as the whole story).
    pub prev_cursor: u64,
    /// The change cursor after it.
    pub cursor: u64,
    /// The documents changed.
    pub docs: Vec<EventDoc>,
    /// The event as one `Changed` frame in the current protocol version (deflated where worth it),
    /// encoded by the first connection that sends it whole and shared by every other: a push to a
    /// site of 300 devices is encoded and compressed once, not 300 times (2026-11-30).
    frame: std::sync::OnceLock<bytes::Bytes>,
}

impl PushEvent {
    /// The event of a batch that moved the change cursor from `prev_cursor` to `cursor`.
    pub fn new(prev_cursor: u64, cursor: u64, docs: Vec<EventDoc>) -> PushEvent {
        PushEvent {
            prev_cursor,
            cursor,
            docs,
            frame: std::sync::OnceLock::new(),
        }
    }

    /// Every document of the event, each from its `base` to its `heads`, as one `Changed` at the
    /// event's cursor, framed in [`protocol::VERSION`]: encoded once, then shared.
    pub fn changed_frame(&self) -> bytes::Bytes {
        self.frame
            .get_or_init(|| {
                let docs = self
                    .docs
                    .iter()
                    .map(|d| DocSync {
                        doc: d.doc.to_string(),
                        base: protocol::hashes(&d.base),
                        heads: protocol::hashes(&d.heads),
                        changes: d.changes.clone(),
                        sigs: d.sigs.clone(),
                    })
                    .collect();
                let msg = protocol::ServerMsg::Changed {
                    cursor: self.cursor,
                    docs,
                };
                bytes::Bytes::from(protocol::encode_server(protocol::VERSION, &msg))
            })
            .clone()
    }
}

/// One document a push changed: what a device that held `base` lacks to reach `heads`.
#[derive(Debug)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct EventDoc {
    pub doc: DocId,
    /// The server's heads before, hex, sorted.
    pub base: Vec<String>,
    /// The server's heads after, hex, sorted.
    pub heads: Vec<String>,
    /// The changes from `base` to `heads`, Automerge bytes.
    pub changes: Vec<u8>,
    pub sigs: Vec<sitesync_core::signing::ChangeSig>,
}

/// A push waiting for the group commit.
struct PushJob {
    who: Principal,
    /// Each document with its signers, resolved before the job was queued.
    docs: Vec<(DocSync, crate::authorship::Vetted)>,
    /// Where the results go.
    reply: oneshot::Sender<Result<Vec<DocResult>>>,
}

/// Pushes taken into one transaction at most.
const PUSHES_PER_COMMIT: usize = 256;

/// What the writer thread shares with the server.
struct Shared {
    /// The credential database.
    auth: Arc<AuthDb>,
    /// The document store.
    docs: Arc<Mutex<Store>>,
    /// Deliveries to record.
    deliveries: Deliveries,
    /// Where push events go.
    events: broadcast::Sender<Arc<PushEvent>>,
    /// The cursor the last event covered.
    evented: Arc<AtomicU64>,
    /// Where the group commit's sizes, times and refusals are counted.
    metrics: Arc<crate::metrics::Metrics>,
}

/// The group-commit writer: takes every push waiting, applies them all in one transaction, answers
/// each. Runs until every sender (every `AppState` clone) is gone.
fn writer(shared: Shared, mut jobs: mpsc::UnboundedReceiver<PushJob>) {
    let Shared {
        auth,
        docs,
        deliveries,
        events,
        evented,
        metrics,
    } = shared;
    while let Some(first) = jobs.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < PUSHES_PER_COMMIT {
            match jobs.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let (replies, pushes): (Vec<_>, Vec<_>) = batch.into_iter().map(|j| (j.reply, (j.who, j.docs))).unzip();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut store = lock(&docs);
            crate::push::push_batch(&auth, &mut store, pushes, &deliveries, &events, &evented, &metrics)
        }));
        match outcome {
            Ok(Ok(results)) => {
                for (reply, r) in replies.into_iter().zip(results) {
                    let _ = reply.send(Ok(r));
                }
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "a batch of pushes failed");
                for reply in replies {
                    let _ = reply.send(Err(Error::Internal("push failed".into())));
                }
            }
            Err(_) => {
                tracing::error!("a batch of pushes panicked");
                for reply in replies {
                    let _ = reply.send(Err(Error::Internal("push failed".into())));
                }
            }
        }
    }
}

/// Deliveries devices confirmed (`Applied`, acknowledged pushes), kept in memory and written in one
/// transaction now and then: the record only saves resending, so the last moments of it may be lost
/// in a crash without losing any data (merging what a phone already has changes nothing).
#[derive(Clone, Debug, Default)]
pub struct Deliveries(Arc<Mutex<HashMap<DeviceDoc, Vec<String>>>>);

/// A device and a document it holds.
type DeviceDoc = (String, String);

impl Deliveries {
    /// Records that `device` holds `doc` at `heads`.
    pub fn record(&self, device: &str, doc: &str, heads: Vec<String>) {
        lock(&self.0).insert((device.to_string(), doc.to_string()), heads);
    }

    /// Forgets what is recorded for a device and not yet written.
    pub fn forget(&self, device: &str) {
        lock(&self.0).retain(|(d, _), _| d != device);
    }

    /// Writes what is recorded; on failure it stays recorded for the next attempt.
    pub fn flush(&self, auth: &AuthDb) -> Result<()> {
        let taken = std::mem::take(&mut *lock(&self.0));
        if taken.is_empty() {
            return Ok(());
        }
        let rows: Vec<(String, String, Vec<String>)> = taken
            .iter()
            .map(|((device, doc), heads)| (device.clone(), doc.clone(), heads.clone()))
            .collect();
        auth.set_device_heads_many(&rows).inspect_err(|_| {
            let mut m = lock(&self.0);
            for (k, v) in taken {
                m.entry(k).or_insert(v);
            }
        })
    }
}
