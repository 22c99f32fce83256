//! The local store: Automerge documents in one SQLite file, with projections for offline queries.
//!
//! Every document is a compacted snapshot plus the incremental chunks saved since (`save_after` the
//! heads last saved, never `save_incremental` after a load, which re-saves the whole history). A write
//! appends one chunk and re-projects that one document in a single SQLite transaction; the call
//! returns only after that transaction is committed with `synchronous=FULL`, so an acknowledged write
//! survives a killed process or a dead battery. Documents are compacted into a fresh snapshot once
//! their chunks outgrow it or number [`COMPACT_AFTER_CHUNKS`].

mod day_log;
mod okr;
mod projection;
mod queries;
mod rows;
pub(crate) mod schema;
mod screen;
mod signatures;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use automerge::transaction::Transaction;
use automerge::{ActorId, Automerge, ChangeHash, LoadOptions, OnPartialLoad, ReadDoc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::doc::{self, heads_hex};
use crate::error::{Error, Result};
use crate::ids::{DocId, SiteId};
use crate::roster::Roster;
use crate::validate;

pub use day_log::{CrewCopy, entry};
pub use okr::{AlignmentNode, Board, KrChange, KrView, NewKeyResult, ObjectiveView};
pub use queries::{Totals, WorkItemProgress, WorkerDay, WorkerMonth};
// Until the CLI reads `report` directly.
pub use crate::report::{GroupBy, Sums};
pub use rows::{DayRow, InvalidRow, LaborRow, ProgressRow, ReviewRow, RowFilter};
pub use screen::{Authority, Screen, Screened};
pub use signatures::{Attribution, FieldValues, HistoryEntry, KeptSignature, RefusedRow};

/// A document's chunks are folded into a new snapshot once there are this many.
pub const COMPACT_AFTER_CHUNKS: i64 = 64;
/// A document and the heads an export starts from.
type ExportKey = (DocId, Vec<ChangeHash>);

/// Exports remembered (see [`Store::export_changes`]) before the memory is cleared.
const EXPORT_CACHE: usize = 4096;
/// How many documents stay decoded in memory; memory follows documents in use, not documents stored.
pub const CACHE_DOCS: usize = 32;

/// A document held in memory.
struct Loaded {
    /// The document itself, with this store's actor.
    doc: Automerge,
    /// Heads of what is on disk: the next chunk is `save_after(saved)`.
    saved: Vec<ChangeHash>,
    /// Whether the document has a row yet (a fresh genesis has none until its first write).
    stored: bool,
    /// The row's write counter when this copy was loaded or last saved: a different value on disk
    /// means another handle on the same file wrote since, and this copy must take that in.
    version: i64,
    /// Last use, for eviction.
    used: u64,
    /// Changes merged since `saved`, already encoded (`from` heads, `to` heads, bytes): the next
    /// chunk when `from` is still `saved` and `to` the document's heads.
    encoded: Option<(Vec<ChangeHash>, Vec<ChangeHash>, Vec<u8>)>,
}

/// How one document is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct StorageStats {
    /// Size of the compacted snapshot.
    pub snapshot_bytes: i64,
    /// Incremental chunks saved since the snapshot.
    pub chunk_count: i64,
    /// Their total size.
    pub chunk_bytes: i64,
}

/// The on-device store: open one per file, use it from one thread at a time.
pub struct Store {
    /// The one writer connection; every write is one SQLite transaction, durable at commit.
    conn: Connection,
    /// Where the file is, for messages.
    path: PathBuf,
    /// This handle's Automerge actor, new at every open and never shared with another writer; it
    /// starts with the fingerprint of `key` (see [`crate::signing`]).
    actor: ActorId,
    /// The store's signing key, made at its first open; the secret never leaves the store.
    key: crate::signing::Keypair,
    /// Who the server says this store's device is, once it has said so: every local write is
    /// checked against the same rules the server applies before it is made.
    author: Option<crate::rules::Author>,
    /// Signatures to write in the next write transaction, with the changes they prove (the server's
    /// group commit: one fsync for both, and never a change stored without its proof).
    staged_sigs: Vec<signatures::Staged>,
    /// Who this store writes as (`entered_by`, reviewers); set by the app or CLI.
    user: String,
    /// Recently used documents, so a burst of edits to today's log does not reload it each time.
    cache: HashMap<DocId, Loaded>,
    /// Monotonic use counter for eviction.
    tick: u64,
    /// How many documents the cache keeps.
    cache_docs: usize,
    /// Recent exports by document and starting heads, with the heads they reach: valid while the
    /// document is still at those heads.
    exports: HashMap<ExportKey, (Vec<ChangeHash>, Vec<u8>)>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the store at `path` and brings its schema up to date.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        create_private(&path)?;
        let mut conn = Connection::open(&path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Every statement on the write path stays prepared (the default cache of 16 is too small).
        conn.set_prepared_statement_cache_capacity(64);
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: a commit is on stable storage when it returns, not only safe from a process crash.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let found = schema::migrate(&mut conn)?;
        let key = signatures::load_or_make_key(&conn)?;
        // A fresh actor per open: two handles on one file (the app and a sync process, two CLI runs)
        // must never write changes under the same actor and sequence number.
        let actor = key.new_actor();
        let user = meta_get(&conn, "user")?.unwrap_or_else(|| "local".to_string());
        let author = signatures::stored_author(&conn)?;
        let mut store = Store {
            conn,
            path,
            actor,
            key,
            author,
            staged_sigs: Vec::new(),
            user,
            cache: HashMap::new(),
            tick: 0,
            cache_docs: CACHE_DOCS,
            exports: HashMap::new(),
        };
        if (1..schema::PINNED_VERSIONS).contains(&found) {
            store.reproject_where("SELECT doc_id FROM day_status WHERE status = 'amended_after_approval'")?;
        }
        Ok(store)
    }

    /// Keeps up to `docs` recently used documents in memory (default [`CACHE_DOCS`]: what a phone
    /// works on; a server serving many devices keeps more). Memory follows this, not the store size.
    pub fn set_cache_docs(&mut self, docs: usize) {
        self.cache_docs = docs.max(1);
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Who this store writes as.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Sets who this store writes as, and remembers it in the file.
    pub fn set_user(&mut self, user: &str) -> Result<()> {
        if user.trim().is_empty() {
            return Err(Error::invalid("user", "a user name cannot be empty"));
        }
        meta_set(&self.conn, "user", user)?;
        self.user = user.to_string();
        Ok(())
    }

    /// A value from the store's key-value metadata (used by the sync engine for its binding).
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        meta_get(&self.conn, key)
    }

    /// Sets a metadata value durably.
    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<()> {
        meta_set(&self.conn, key, value)
    }

    /// Takes a document out of the cache or the database; `None` if the store has never held it.
    fn take(&mut self, id: &DocId) -> Result<Option<Loaded>> {
        let key = id.to_string();
        if let Some(l) = self.cache.remove(id) {
            let version: Option<i64> = self
                .conn
                .prepare_cached("SELECT version FROM documents WHERE doc_id = ?1")?
                .query_row([&key], |r| r.get(0))
                .optional()?;
            if version == Some(l.version) {
                return Ok(Some(l));
            }
            // Another handle on this file wrote the document since: reload it.
        }
        Ok(load_from_disk(&self.conn, &key)?.map(|(mut doc, version)| {
            doc.set_actor(self.actor.clone());
            let saved = doc.get_heads();
            Loaded {
                doc,
                saved,
                stored: true,
                version,
                used: 0,
                encoded: None,
            }
        }))
    }

    /// Takes a document, or starts it from its genesis if this store has never held it.
    fn take_or_new(&mut self, id: &DocId) -> Result<Loaded> {
        if let Some(l) = self.take(id)? {
            return Ok(l);
        }
        let mut doc = doc::genesis(id);
        doc.set_actor(self.actor.clone());
        Ok(Loaded {
            doc,
            saved: Vec::new(),
            stored: false,
            version: 0,
            used: 0,
            encoded: None,
        })
    }

    /// Returns a document to the cache, evicting the least recently used beyond the cache size.
    fn put_back(&mut self, id: DocId, mut loaded: Loaded) {
        self.tick += 1;
        loaded.used = self.tick;
        self.cache.insert(id, loaded);
        while self.cache.len() > self.cache_docs {
            let oldest = self.cache.iter().min_by_key(|(_, l)| l.used).map(|(k, _)| k.clone());
            match oldest {
                Some(k) => self.cache.remove(&k),
                None => break,
            };
        }
    }

    /// Runs `f` on a document as it is now; `None` if the store does not hold it.
    pub(crate) fn read_doc<T>(&mut self, id: &DocId, f: impl FnOnce(&Automerge) -> Result<T>) -> Result<Option<T>> {
        let Some(loaded) = self.take(id)? else { return Ok(None) };
        let out = f(&loaded.doc);
        self.put_back(id.clone(), loaded);
        out.map(Some)
    }

    /// Applies `f` as one Automerge change to a document (created from its genesis if new) and makes
    /// it durable before returning. If `f` fails, nothing is changed; if the disk write fails, the
    /// in-memory copy is dropped so memory never runs ahead of disk.
    pub(crate) fn change<T>(&mut self, id: &DocId, f: impl FnOnce(&mut Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut f = Some(f);
        self.change_many(std::slice::from_ref(id), |_, tx| match f.take() {
            Some(f) => f(tx),
            None => unreachable!("one document, one call"),
        })
        .map(|mut v| v.remove(0))
    }

    /// Like [`Store::change`] for several documents, durable together in one SQLite transaction.
    pub(crate) fn change_many<T>(
        &mut self,
        ids: &[DocId],
        mut f: impl FnMut(&DocId, &mut Transaction<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        let distinct: std::collections::HashSet<&DocId> = ids.iter().collect();
        if distinct.len() != ids.len() {
            // Two copies of one document would each commit the same actor and sequence number.
            return Err(Error::invalid("doc_id", "a document appears twice in one change"));
        }
        let mut taken = Vec::with_capacity(ids.len());
        let mut results = Vec::with_capacity(ids.len());
        for id in ids {
            let mut loaded = match self.take_or_new(id) {
                Ok(l) => l,
                Err(e) => return self.abort(taken, e),
            };
            let mut tx = loaded.doc.transaction();
            match f(id, &mut tx) {
                Ok(v) => {
                    let made = doc::commit(tx);
                    let verdict = match (made, &self.author) {
                        (Some(hash), Some(author)) => screen::check_own(&loaded.doc, id, hash, author).err(),
                        _ => None,
                    };
                    if let Some(broken) = verdict {
                        // The change exists only in memory: dropping this copy undoes it.
                        drop(loaded);
                        return self.abort(taken, Error::NotAuthorized { violation: broken });
                    }
                    results.push(v);
                }
                Err(e) => {
                    tx.rollback();
                    taken.push((id.clone(), loaded));
                    return self.abort(taken, e);
                }
            }
            taken.push((id.clone(), loaded));
        }
        match self.persist(&mut taken) {
            Ok(()) => {
                for (id, l) in taken {
                    self.put_back(id, l);
                }
                Ok(results)
            }
            // Dropping `taken` discards in-memory changes that did not reach the disk.
            Err(e) => Err(e),
        }
    }

    /// Gives up a multi-document change: documents already changed in memory are dropped (their
    /// on-disk state is still the truth), untouched ones go back to the cache.
    fn abort<T>(&mut self, taken: Vec<(DocId, Loaded)>, e: Error) -> Result<T> {
        for (id, l) in taken {
            if l.doc.get_heads() == l.saved {
                self.put_back(id, l);
            }
        }
        Err(e)
    }

    /// Writes what changed in each document, re-projects it, and commits, all in one transaction:
    /// if any document fails, nothing is written.
    fn persist(&mut self, docs: &mut [(DocId, Loaded)]) -> Result<()> {
        match self.persist_each(docs, true)?.into_iter().flatten().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Writes what changed in each document and re-projects it, in one transaction (one fsync) with
    /// a savepoint per document: a document that fails to be written is rolled back alone and its
    /// error returned in its place, and the others commit (unless `all_or_nothing`, when the first
    /// failure abandons the transaction and is returned as `Err`). `Err` also when the transaction
    /// itself cannot begin or commit. A document that failed must be dropped from memory.
    fn persist_each(&mut self, docs: &mut [(DocId, Loaded)], all_or_nothing: bool) -> Result<Vec<Option<Error>>> {
        // IMMEDIATE takes the write lock up front, so the version check below cannot race another
        // handle's write.
        let mut tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = chrono::Utc::now().to_rfc3339();
        signatures::write_staged(&tx, std::mem::take(&mut self.staged_sigs), &now)?;
        let mut versions = Vec::with_capacity(docs.len());
        let mut failures = Vec::with_capacity(docs.len());
        for (id, l) in docs.iter_mut() {
            let sp = tx.savepoint()?;
            match write_doc(&sp, id, l, &now) {
                Ok(version) => {
                    sp.commit()?;
                    versions.push(Some(version));
                    failures.push(None);
                }
                // Dropping the savepoint rolls back what this document wrote.
                Err(e) if all_or_nothing => return Err(e),
                Err(e) => {
                    drop(sp);
                    versions.push(None);
                    failures.push(Some(e));
                }
            }
        }
        tx.commit()?;
        for ((_, l), version) in docs.iter_mut().zip(versions) {
            if let Some(version) = version {
                l.saved = l.doc.get_heads();
                l.stored = true;
                l.version = version;
            }
        }
        Ok(failures)
    }

    /// How a document is stored: its snapshot and the incremental chunks saved since.
    pub fn storage_stats(&self, id: &DocId) -> Result<Option<StorageStats>> {
        Ok(self
            .conn
            .prepare_cached("SELECT snapshot_bytes, chunk_count, chunk_bytes FROM documents WHERE doc_id = ?1")?
            .query_row([id.to_string()], |r| {
                Ok(StorageStats {
                    snapshot_bytes: r.get(0)?,
                    chunk_count: r.get(1)?,
                    chunk_bytes: r.get(2)?,
                })
            })
            .optional()?)
    }

    /// The store-wide change cursor: it grows with every write and merge that changes a document.
    pub fn change_cursor(&self) -> Result<u64> {
        let n: i64 = self
            .conn
            .prepare_cached("SELECT COALESCE(MAX(change_seq), 0) FROM documents")?
            .query_row([], |r| r.get(0))?;
        Ok(n as u64)
    }

    /// Documents whose last change is after `cursor`, oldest change first, with their cursor.
    pub fn changed_since(&self, cursor: u64) -> Result<Vec<(DocId, u64)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT doc_id, change_seq FROM documents WHERE change_seq > ?1 ORDER BY change_seq")?;
        let rows = stmt.query_map([cursor as i64], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, seq) = row?;
            out.push((id.parse()?, seq as u64));
        }
        Ok(out)
    }

    /// The heads the server last acknowledged as durable for a document (`None`: never synced).
    pub fn synced_heads(&self, id: &DocId) -> Result<Option<Vec<String>>> {
        let text: Option<Option<String>> = self
            .conn
            .prepare_cached("SELECT synced_heads FROM documents WHERE doc_id = ?1")?
            .query_row([id.to_string()], |r| r.get(0))
            .optional()?;
        Ok(text
            .flatten()
            .map(|t| t.split(',').filter(|h| !h.is_empty()).map(str::to_string).collect()))
    }

    /// Records the heads the server acknowledged for a document (`None` forgets them, so the next
    /// push sends the whole document).
    pub fn set_synced_heads(&mut self, id: &DocId, heads: Option<&[String]>) -> Result<()> {
        let text = heads.map(|h| {
            let mut h = h.to_vec();
            h.sort();
            h.join(",")
        });
        self.conn
            .prepare_cached("UPDATE documents SET synced_heads = ?2 WHERE doc_id = ?1")?
            .execute(params![id.to_string(), text])?;
        Ok(())
    }

    /// Forgets every server acknowledgement and the change cursor, so the next sync offers every
    /// document again (after the server was restored from a backup).
    pub fn forget_sync_state(&mut self) -> Result<()> {
        self.conn
            .prepare_cached("UPDATE documents SET synced_heads = NULL")?
            .execute([])?;
        meta_set(&self.conn, "sync.cursor", "0")
    }

    /// Documents with changes the server has not acknowledged, oldest change first.
    pub fn pending(&self) -> Result<Vec<DocId>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT doc_id, heads, synced_heads FROM documents ORDER BY change_seq")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, heads, synced) = row?;
            let mut heads: Vec<&str> = heads.split(',').filter(|h| !h.is_empty()).collect();
            heads.sort_unstable();
            if synced.as_deref() != Some(heads.join(",").as_str()) {
                out.push(id.parse()?);
            }
        }
        Ok(out)
    }

    /// The ids of every document in the store.
    pub fn doc_ids(&self) -> Result<Vec<DocId>> {
        let mut stmt = self.conn.prepare("SELECT doc_id FROM documents ORDER BY doc_id")?;
        let keys = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        keys.iter().map(|k| k.parse()).collect()
    }

    /// The document's current heads as hex (empty if the store does not hold it).
    pub fn heads(&mut self, id: &DocId) -> Result<Vec<String>> {
        // Every write stores the heads beside the document: no need to load it to know them.
        Ok(self.disk_heads(id)?.unwrap_or_default())
    }

    /// The heads stored with the document (hex), `None` if the store does not hold it.
    fn disk_heads(&self, id: &DocId) -> Result<Option<Vec<String>>> {
        let text: Option<String> = self
            .conn
            .prepare_cached("SELECT heads FROM documents WHERE doc_id = ?1")?
            .query_row([id.to_string()], |r| r.get(0))
            .optional()?;
        Ok(text.map(|t| t.split(',').filter(|h| !h.is_empty()).map(str::to_string).collect()))
    }

    /// Whether the document holds every change named by these hex heads.
    pub fn knows_all(&mut self, id: &DocId, heads: &[String]) -> Result<bool> {
        let Some(wanted) = doc::heads_parse(heads) else {
            return Ok(false);
        };
        Ok(self.read_doc(id, |d| Ok(knows(d, &wanted)))?.unwrap_or(false))
    }

    /// The document's changes that are not ancestors of `since` (hex heads; empty: everything), in
    /// Automerge's compressed encoding. This is what a replica sends to bring another up to date.
    pub fn export_changes(&mut self, id: &DocId, since: &[String]) -> Result<Option<Vec<u8>>> {
        let mut since = doc::heads_parse(since).ok_or_else(|| Error::invalid("heads", "not a change hash"))?;
        since.sort();
        let key = (id.clone(), since);
        if let Some((at, bytes)) = self.exports.get(&key)
            && self.disk_heads(id)?.as_deref() == Some(&heads_hex(at)[..])
        {
            // Many devices that held the same version ask for the same changes (a morning's
            // reconnects): one export serves them all, without even loading the document, until
            // it changes again.
            return Ok(Some(bytes.clone()));
        }
        let cached = self.exports.get(&key).cloned();
        let since = &key.1;
        let out = self.read_doc(id, |d| {
            let heads = d.get_heads();
            if let Some((at, bytes)) = cached
                && at == heads
            {
                return Ok((heads, bytes, true));
            }
            // Heads this replica has never seen cannot bound the export: send everything.
            let known = knows(d, since);
            let bytes = if known && !since.is_empty() {
                d.save_after(since)
            } else {
                d.save()
            };
            Ok((heads, bytes, false))
        })?;
        Ok(out.map(|(heads, bytes, hit)| {
            if !hit {
                if self.exports.len() >= EXPORT_CACHE {
                    self.exports.clear();
                }
                self.exports.insert(key, (heads, bytes.clone()));
            }
            bytes
        }))
    }

    /// Merges changes made elsewhere (from [`Store::export_changes`] or the server) into the document,
    /// creating it from its genesis if new, and makes the result durable. Applying the same bytes
    /// twice changes nothing. Returns whether the document changed.
    pub fn merge_changes(&mut self, id: &DocId, bytes: &[u8]) -> Result<bool> {
        let mut loaded = self.take_or_new(id)?;
        let before = loaded.doc.get_heads();
        // On any error `loaded` is dropped: memory never keeps what the disk does not have.
        let encoded = doc::apply_bytes(&mut loaded.doc, bytes).map_err(|reason| Error::BadChanges {
            doc: id.to_string(),
            reason,
        })?;
        if !loaded.doc.get_missing_deps(&[]).is_empty() {
            return Err(Error::MissingHistory { doc: id.to_string() });
        }
        doc::check_identity(&loaded.doc, id).map_err(|reason| Error::BadChanges {
            doc: id.to_string(),
            reason,
        })?;
        let changed = loaded.doc.get_heads() != before;
        loaded.encoded = Some((before, loaded.doc.get_heads(), encoded));
        let mut batch = [(id.clone(), loaded)];
        if changed || !batch[0].1.stored {
            self.persist(&mut batch)?;
        }
        let [(id, loaded)] = batch;
        self.put_back(id, loaded);
        Ok(changed)
    }

    /// Merges changes into several documents and makes them durable in one SQLite transaction (one
    /// fsync for all: the server's group commit). Each item succeeds or fails on its own, with the
    /// errors of [`Store::merge_changes`]; the returned results are in the order of `items`. A
    /// document may appear more than once. A document that cannot be written is rolled back alone
    /// (a savepoint per document) and its items fail; the others commit. `Err` only if the
    /// transaction itself failed, in which case nothing was merged.
    pub fn merge_many(&mut self, items: &[(DocId, &[u8])]) -> Result<Vec<Result<bool>>> {
        let items: Vec<Item<'_>> = items.iter().map(|(id, bytes)| (id, *bytes, None)).collect();
        self.merge_batch(&items)
    }

    /// [`Store::merge_many`] holding every record the changes touch to [`crate::validate`], as the
    /// server holds what phones push: a document id dated outside the window, a line of a worker
    /// who is not on the site's roster, a negative work-day, a line under an id that is not its own,
    /// a key result bound to a site its author may not read — each fails its item with
    /// [`Error::Refused`] naming the field, and nothing of that item is stored. `tenancy` answers
    /// for the author of each item.
    pub fn merge_many_checked(
        &mut self,
        items: &[(DocId, &[u8], &dyn validate::Tenancy)],
    ) -> Result<Vec<Result<bool>>> {
        let items: Vec<Item<'_>> = items
            .iter()
            .map(|(id, bytes, tenancy)| (id, *bytes, Some(*tenancy)))
            .collect();
        self.merge_batch(&items)
    }

    /// The checks of [`crate::validate`] on what a trial copy's new changes touched. A day's lines
    /// are checked against the roster of its site: the copy in this batch if the site's master data
    /// is part of it, else the stored one (none if the store does not hold the site).
    fn check_trial(
        &mut self,
        trial: &Automerge,
        id: &DocId,
        before: &[ChangeHash],
        tenancy: &dyn validate::Tenancy,
        taken: &[Taken],
        rosters: &mut HashMap<SiteId, Option<Roster>>,
    ) -> Result<()> {
        let refused = |invalid| Error::Refused {
            doc: id.to_string(),
            invalid,
        };
        validate::doc_id(id).map_err(refused)?;
        if trial.get_heads() == before {
            return Ok(());
        }
        let touched = validate::document::touched(trial, id, before).map_err(refused)?;
        let mut roster = None;
        if let DocId::Day(site, _) = id
            && ["labor", "progress", "delays"].iter().any(|t| touched.any(t))
        {
            let master = DocId::Site(site.clone());
            roster = match taken.iter().find(|t| t.id == master) {
                Some(t) => doc::site::read(&t.loaded.doc)?,
                None => match rosters.get(site) {
                    Some(r) => r.clone(),
                    None => {
                        let r = match self.roster(site) {
                            Ok(r) => Some(r),
                            Err(Error::UnknownSite(_)) => None,
                            Err(e) => return Err(e),
                        };
                        rosters.insert(site.clone(), r.clone());
                        r
                    }
                },
            };
        }
        let cx = validate::document::Context {
            roster: roster.as_ref(),
            tenancy,
        };
        validate::document::check(trial, id, &touched, &cx).map_err(refused)
    }

    fn merge_batch(&mut self, items: &[Item<'_>]) -> Result<Vec<Result<bool>>> {
        let mut taken: Vec<Taken> = Vec::new();
        let mut results = Vec::with_capacity(items.len());
        // Rosters read for checks in this batch, unless the site's master data is part of it.
        let mut rosters: HashMap<SiteId, Option<Roster>> = HashMap::new();
        for &(id, bytes, tenancy) in items {
            let slot = match taken.iter().position(|t| t.id == *id) {
                Some(i) => i,
                None => match self.take_or_new(id) {
                    Ok(loaded) => {
                        let before = loaded.doc.get_heads();
                        taken.push(Taken {
                            id: id.clone(),
                            loaded,
                            before,
                            merged: false,
                        });
                        taken.len() - 1
                    }
                    Err(e) => {
                        results.push(Err(e));
                        continue;
                    }
                },
            };
            // Apply to a copy: a bad item must leave nothing of itself in the document.
            let before = taken[slot].loaded.doc.get_heads();
            let mut trial = taken[slot].loaded.doc.fork();
            trial.set_actor(self.actor.clone());
            let mut outcome = merge_trial(&mut trial, id, bytes);
            if let (Ok(_), Some(tenancy)) = (&outcome, tenancy)
                && let Err(e) = self.check_trial(&trial, id, &before, tenancy, &taken, &mut rosters)
            {
                outcome = Err(e);
            }
            let t = &mut taken[slot];
            let outcome = outcome.map(|encoded| {
                let changed = trial.get_heads() != before;
                if changed {
                    // The bytes serve as the next chunk when this is the only change since the
                    // last save; a second one in the same batch is encoded again at persist.
                    t.loaded.encoded = match t.loaded.encoded.take() {
                        None => Some((before, trial.get_heads(), encoded)),
                        Some(_) => None,
                    };
                    let encoded = t.loaded.encoded.take();
                    t.loaded.doc = trial;
                    t.loaded.encoded = encoded;
                }
                t.merged = true;
                changed
            });
            results.push(outcome);
        }
        let mut batch: Vec<(DocId, Loaded)> = Vec::with_capacity(taken.len());
        for t in taken {
            // A document this store never held is stored only if something merged into it.
            if t.loaded.doc.get_heads() != t.before || (!t.loaded.stored && t.merged) {
                batch.push((t.id, t.loaded));
            } else if t.loaded.stored {
                self.put_back(t.id, t.loaded);
            }
        }
        let failures = self.persist_each(&mut batch, false)?;
        for ((id, l), failure) in batch.into_iter().zip(failures) {
            match failure {
                // Not on disk: the copy is dropped, and every item of the document fails with why.
                Some(e) => {
                    for (k, (item, ..)) in items.iter().enumerate() {
                        if **item == id && results[k].is_ok() {
                            results[k] = Err(e.again());
                        }
                    }
                }
                None => self.put_back(id, l),
            }
        }
        Ok(results)
    }

    /// Rebuilds every projection from the documents alone, in one transaction; returns the number of
    /// documents read. The result equals the incrementally maintained projections.
    pub fn reindex(&mut self) -> Result<usize> {
        let ids = self.doc_ids()?;
        let mut docs = Vec::with_capacity(ids.len());
        for id in &ids {
            self.cache.remove(id);
            let (doc, _) = load_from_disk(&self.conn, &id.to_string())?.ok_or_else(|| Error::CorruptDocument {
                doc: id.to_string(),
                reason: "vanished during reindex".into(),
            })?;
            docs.push(doc);
        }
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for table in projection::TABLES {
            tx.execute(&format!("DELETE FROM {table}"), [])?;
        }
        for (id, doc) in ids.iter().zip(&docs) {
            projection::project(&tx, id, doc)?;
        }
        tx.commit()?;
        Ok(ids.len())
    }

    /// Projects again the documents `sql` selects (one `doc_id` column), in one transaction.
    fn reproject_where(&mut self, sql: &str) -> Result<()> {
        let ids: Vec<DocId> = {
            let mut stmt = self.conn.prepare(sql)?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            let mut ids = Vec::new();
            for id in rows {
                ids.push(id?.parse()?);
            }
            ids
        };
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for id in &ids {
            if let Some((doc, _)) = load_from_disk(&tx, &id.to_string())? {
                projection::project(&tx, id, &doc)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Every projected row as text, table by table, for comparing two projections.
    pub fn projection_dump(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for table in projection::TABLES {
            let mut stmt = self.conn.prepare(&format!("SELECT * FROM {table} ORDER BY 1, 2"))?;
            let n = stmt.column_count();
            let rows = stmt.query_map([], |r| {
                let mut cells = vec![table.to_string()];
                for i in 0..n {
                    let v: rusqlite::types::Value = r.get(i)?;
                    cells.push(format!("{v:?}"));
                }
                Ok(cells.join("|"))
            })?;
            for row in rows {
                out.push(row?);
            }
        }
        Ok(out)
    }

    /// Folds every document's chunks into a fresh snapshot and reclaims the space.
    pub fn compact(&mut self) -> Result<usize> {
        let ids: Vec<String> = {
            let mut stmt = self
                .conn
                .prepare("SELECT doc_id FROM documents WHERE chunk_count > 0")?;
            stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
        };
        for key in &ids {
            let id: DocId = key.parse()?;
            let Some(l) = self.take(&id)? else { continue };
            let snapshot = l.doc.save();
            let tx = self.conn.transaction()?;
            tx.prepare_cached("DELETE FROM chunks WHERE doc_id = ?1")?
                .execute([key])?;
            tx.prepare_cached(
                "UPDATE documents SET snapshot = ?2, snapshot_bytes = ?3, chunk_count = 0, chunk_bytes = 0,
                 version = version + 1 WHERE doc_id = ?1",
            )?
            .execute(params![key, snapshot, snapshot.len() as i64])?;
            tx.commit()?;
            self.put_back(id, l);
        }
        self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); VACUUM;")?;
        Ok(ids.len())
    }

    /// Checks the SQLite file and that every document decodes; returns the number of documents.
    pub fn verify(&mut self) -> Result<usize> {
        let check: String = self
            .conn
            .prepare_cached("PRAGMA integrity_check")?
            .query_row([], |r| r.get(0))?;
        if check != "ok" {
            return Err(Error::CorruptDocument {
                doc: self.path.display().to_string(),
                reason: check,
            });
        }
        let ids: Vec<String> = {
            let mut stmt = self.conn.prepare("SELECT doc_id FROM documents")?;
            stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
        };
        for key in &ids {
            let id: DocId = key.parse()?;
            self.cache.remove(&id);
            self.take(&id)?;
        }
        Ok(ids.len())
    }
}

/// Writes one document's new changes (a chunk, or a fresh snapshot) and re-projects it; returns the
/// row's new version.
fn write_doc(tx: &Connection, id: &DocId, l: &mut Loaded, now: &str) -> Result<i64> {
    if l.stored && l.doc.get_heads() == l.saved {
        return Ok(l.version);
    }
    let key = id.to_string();
    let row: Option<(i64, i64, i64, i64)> = tx
        .prepare_cached("SELECT version, chunk_count, chunk_bytes, snapshot_bytes FROM documents WHERE doc_id = ?1")?
        .query_row([&key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?;
    let Some((version, count, bytes, snap)) = row else {
        let snapshot = l.doc.save();
        let (site, day) = match id {
            DocId::Site(s) => (Some(s.to_string()), None),
            DocId::Day(s, d) => (Some(s.to_string()), Some(d.to_string())),
            DocId::Okr(..) => (None, None),
        };
        let heads_text = heads_hex(&l.doc.get_heads()).join(",");
        tx.prepare_cached(
            "INSERT INTO documents (doc_id, kind, site_id, day, snapshot, snapshot_bytes, heads, version, updated_at,
                 change_seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8,
                 (SELECT COALESCE(MAX(change_seq), 0) + 1 FROM documents))",
        )?
        .execute(params![
            key,
            id.kind().as_str(),
            site,
            day,
            snapshot,
            snapshot.len() as i64,
            heads_text,
            now
        ])?;
        projection::project(tx, id, &l.doc)?;
        return Ok(1);
    };
    let mut base = l.saved.clone();
    if !l.stored || version != l.version {
        // Another handle wrote this document since this copy was loaded (or created it while
        // this one started from the genesis): take its changes in before writing ours.
        if let Some((mut disk, _)) = load_from_disk(tx, &key)? {
            l.doc.merge(&mut disk)?;
            base = disk.get_heads();
        }
    }
    let heads_text = heads_hex(&l.doc.get_heads()).join(",");
    let chunk = match l.encoded.take() {
        // What the merge already encoded, if nothing else happened since.
        Some((from, to, bytes)) if from == base && to == l.doc.get_heads() => bytes,
        _ => l.doc.save_after(&base),
    };
    if count + 1 >= COMPACT_AFTER_CHUNKS || bytes + chunk.len() as i64 > snap {
        replace_snapshot(tx, &key, &l.doc, now)?;
    } else if !chunk.is_empty() {
        tx.prepare_cached(
            "INSERT INTO chunks (doc_id, seq, data)
                 VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM chunks WHERE doc_id = ?1), ?2)",
        )?
        .execute(params![key, chunk])?;
        tx.prepare_cached(
            "UPDATE documents SET chunk_count = chunk_count + 1, chunk_bytes = chunk_bytes + ?2,
                 heads = ?3, version = version + 1, updated_at = ?4,
                 change_seq = (SELECT MAX(change_seq) + 1 FROM documents) WHERE doc_id = ?1",
        )?
        .execute(params![key, chunk.len() as i64, heads_text, now])?;
    }
    projection::project(tx, id, &l.doc)?;
    Ok(version + 1)
}

/// One item of a batch merge: the document, its changes, and who answers for the author if the
/// records must be checked.
type Item<'a> = (&'a DocId, &'a [u8], Option<&'a dyn validate::Tenancy>);

/// A document taken for a batch merge: its copy, its heads before, and whether any item of it
/// merged.
struct Taken {
    id: DocId,
    loaded: Loaded,
    before: Vec<ChangeHash>,
    merged: bool,
}

/// Applies one item's bytes to a trial copy of its document: decodable, complete history, and the
/// document the id names. Returns the new changes as encoded.
fn merge_trial(trial: &mut Automerge, id: &DocId, bytes: &[u8]) -> Result<Vec<u8>> {
    let encoded = doc::apply_bytes(trial, bytes).map_err(|reason| Error::BadChanges {
        doc: id.to_string(),
        reason,
    })?;
    if !trial.get_missing_deps(&[]).is_empty() {
        return Err(Error::MissingHistory { doc: id.to_string() });
    }
    doc::check_identity(trial, id).map_err(|reason| Error::BadChanges {
        doc: id.to_string(),
        reason,
    })?;
    Ok(encoded)
}

/// Whether the document holds every change named by `hashes`. (`get_missing_deps` looks the hashes
/// up in the change graph; `get_change_by_hash` would rebuild each change from its operations.)
fn knows(doc: &Automerge, hashes: &[ChangeHash]) -> bool {
    doc.get_missing_deps(hashes).is_empty()
}

/// Loads a document strictly from its snapshot and chunks, with the row's version; a damaged chunk or
/// a gap in the history is an error, never a silently shorter document.
fn load_from_disk(conn: &Connection, key: &str) -> Result<Option<(Automerge, i64)>> {
    let row: Option<(Vec<u8>, i64)> = conn
        .prepare_cached("SELECT snapshot, version FROM documents WHERE doc_id = ?1")?
        .query_row([key], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((snapshot, version)) = row else {
        return Ok(None);
    };
    let corrupt = |reason: String| Error::CorruptDocument {
        doc: key.to_string(),
        reason,
    };
    let strict = LoadOptions::new().on_partial_load(OnPartialLoad::Error);
    let mut doc = Automerge::load_with_options(&snapshot, strict).map_err(|e| corrupt(e.to_string()))?;
    let mut stmt = conn.prepare_cached("SELECT data FROM chunks WHERE doc_id = ?1 ORDER BY seq")?;
    let chunks = stmt.query_map([key], |r| r.get::<_, Vec<u8>>(0))?;
    for chunk in chunks {
        doc::apply_bytes(&mut doc, &chunk?).map_err(corrupt)?;
    }
    if !doc.get_missing_deps(&[]).is_empty() {
        return Err(corrupt("a stored chunk depends on changes that are not stored".into()));
    }
    Ok(Some((doc, version)))
}

/// Replaces a stored document by a fresh snapshot of `doc` (its chunks folded in and deleted),
/// moving its version and the change cursor.
fn replace_snapshot(tx: &Connection, key: &str, doc: &Automerge, now: &str) -> Result<()> {
    let snapshot = doc.save();
    let heads = heads_hex(&doc.get_heads()).join(",");
    tx.prepare_cached("DELETE FROM chunks WHERE doc_id = ?1")?
        .execute([key])?;
    tx.prepare_cached(
        "UPDATE documents SET snapshot = ?2, snapshot_bytes = ?3, chunk_count = 0, chunk_bytes = 0,
             heads = ?4, version = version + 1, updated_at = ?5,
             change_seq = (SELECT MAX(change_seq) + 1 FROM documents) WHERE doc_id = ?1",
    )?
    .execute(params![key, snapshot, snapshot.len() as i64, heads, now])?;
    Ok(())
}

fn meta_get(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?)
}

fn meta_set(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    )?
    .execute([key, value])?;
    Ok(())
}

/// Creates a new store file readable by its owner only (it holds the device token): SQLite then
/// gives its `-wal` and `-shm` files the same mode. An existing file keeps the mode it has.
fn create_private(path: &Path) -> Result<()> {
    if path.as_os_str() == ":memory:" || path.exists() {
        return Ok(());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        // Another process created it meanwhile: open it as it is.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e.into()),
    }
}
