//! The local store: Automerge documents in one SQLite file, with projections for offline queries.
//!
//! Every document is a compacted snapshot plus the incremental chunks saved since (`save_after` the
//! heads last saved, never `save_incremental` after a load, which re-saves the whole history). The
//! snapshot lives in `snapshots`, apart from the document's row in `documents` (heads, counters),
//! so a write touches that small row and one chunk, never the snapshot's bytes. (They used to share
//! the row, and each one-entry write rewrote the snapshot's overflow pages: 17.5% of the server's
//! CPU on one-entry pushes, 2026-11-30. Moving it out, with one export per (document, heads) for
//! the changes and their signatures, took the bench's hot one-entry pushes from ~2.9 to ~2.7 server
//! CPU s per 1,000.) A write appends one chunk and re-projects that one document in a single
//! transaction; the call returns only after that transaction is committed with `synchronous=FULL`,
//! so an acknowledged write survives a killed process or a dead battery. Documents are compacted
//! into a fresh snapshot once their chunks outgrow it or number [`COMPACT_AFTER_CHUNKS`].
//!
//! Why ~700 lines: the document cache and the disk version it mirrors (`take`, `persist`, `put_back`)
//! share one invariant that must be read in one place; merging and maintenance live in
//! `store/merge.rs` and `store/maintenance.rs`.

pub mod attachments;
pub mod check;
pub mod cipher;
mod day_log;
mod maintenance;
mod merge;
mod okr;
mod pay;
pub mod projection;
pub mod queries;
pub mod rows;
pub(crate) mod schema;
mod screen;
mod signatures;
mod signoff;
pub mod sql;
mod workers;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use automerge::transaction::Transaction;
use automerge::{ActorId, Automerge, ChangeHash, LoadOptions, OnPartialLoad, ReadDoc};
use rusqlite::Connection;

use sql::{Conn, Dialect, Sql, Value};

use crate::doc::{self, heads_hex};
use crate::error::{Error, Result};
use crate::ids::DocId;

pub use cipher::{StoreKey, StoreKeyProblem};
pub use day_log::{CrewCopy, entry};
pub use okr::{AlignmentNode, Board, KrChange, KrView, NewKeyResult, ObjectiveView};
pub use pay::{AdvanceEdit, NewAdvance};
pub use queries::{Totals, WorkerDay, WorkerMonth};
pub use rows::{DayRow, InvalidRow, LaborRow, ProgressRow, ReviewRow, RowFilter};
pub use screen::{Authority, Screen, Screened};
pub use signatures::{Attribution, Authors, FieldValues, HistoryEntry, KeptSignature, RefusedRow};
pub use signoff::Period;
pub use workers::NewWorker;

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
    /// The one writer connection; every write is one transaction, durable at commit. SQLite on a
    /// phone; SQLite or PostgreSQL on the server (see [`Store::open_on`]).
    conn: Box<dyn Conn>,
    /// Where the file is, for messages.
    path: PathBuf,
    /// The key the file was opened with, so [`Store::reopen`] opens a second handle on it.
    cipher: Option<StoreKey>,
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
    /// Recent exports by document and starting heads: each is valid while the document is still
    /// at the heads it was made at.
    exports: HashMap<ExportKey, Arc<Export>>,
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
        Store::open_keyed(path, None)
    }

    /// [`Store::open`] for a store encrypted with `key` (created encrypted if new); `None` opens a
    /// clear store. See [`cipher`] for what is encrypted.
    ///
    /// Errors: [`Error::StoreKey`] when the key does not open the file (wrong, missing, given for
    /// a clear file, or this build has no SQLCipher); nothing is written then.
    pub fn open_keyed(path: impl AsRef<Path>, key: Option<&StoreKey>) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        create_private(&path)?;
        let mut conn = Connection::open(&path)?;
        cipher::unlock(&conn, &path, key)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Every statement on the write path stays prepared (the default cache of 16 is too small).
        conn.set_prepared_statement_cache_capacity(64);
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: a commit is on stable storage when it returns, not only safe from a process crash.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let found = schema::migrate(&mut conn)?;
        let mut store = Store::assemble(Box::new(conn), path)?;
        store.cipher = key.cloned();
        if (1..schema::PINNED_VERSIONS).contains(&found) {
            store.reproject_where("SELECT doc_id FROM day_status WHERE status = 'amended_after_approval'")?;
        }
        Ok(store)
    }

    /// A second handle on this store's file, opened with the same key (the file sync beside the
    /// document sync).
    pub fn reopen(&self) -> Result<Store> {
        Store::open_keyed(&self.path, self.cipher.as_ref())
    }

    /// A store on a connection whose schema is already migrated: the server's documents on
    /// PostgreSQL, where every node opens one (see `server/migrations/postgres`). `label` names it
    /// in messages. Each handle writes under an actor of its own, so nodes never share one.
    #[doc(hidden)]
    pub fn open_on(conn: Box<dyn Conn>, label: impl Into<PathBuf>) -> Result<Store> {
        Store::assemble(conn, label.into())
    }

    /// The store around an open, migrated connection.
    fn assemble(conn: Box<dyn Conn>, path: PathBuf) -> Result<Store> {
        let key = signatures::load_or_make_key(&*conn)?;
        // A fresh actor per open: two handles on one file (the app and a sync process, two CLI runs)
        // must never write changes under the same actor and sequence number.
        let actor = key.new_actor();
        let user = meta_get(&*conn, "user")?.unwrap_or_else(|| "local".to_string());
        let author = signatures::stored_author(&*conn)?;
        Ok(Store {
            conn,
            path,
            cipher: None,
            actor,
            key,
            author,
            staged_sigs: Vec::new(),
            user,
            cache: HashMap::new(),
            tick: 0,
            cache_docs: CACHE_DOCS,
            exports: HashMap::new(),
        })
    }

    /// The connection, as the neutral SQL both engines speak.
    pub(crate) fn db(&self) -> &dyn Sql {
        &*self.conn
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
        meta_set(self.db(), "user", user)?;
        self.user = user.to_string();
        Ok(())
    }

    /// A value from the store's key-value metadata (used by the sync engine for its binding).
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        meta_get(self.db(), key)
    }

    /// Sets a metadata value durably.
    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<()> {
        meta_set(self.db(), key, value)
    }

    /// Takes a document out of the cache or the database; `None` if the store has never held it.
    fn take(&mut self, id: &DocId) -> Result<Option<Loaded>> {
        let key = id.to_string();
        if let Some(l) = self.cache.remove(id) {
            let version = self
                .db()
                .first(
                    "SELECT version FROM documents WHERE doc_id = ?1",
                    &[key.as_str().into()],
                )?
                .map(|r| r.int(0))
                .transpose()?;
            if version == Some(l.version) {
                return Ok(Some(l));
            }
            // Another handle on this file wrote the document since: reload it.
        }
        Ok(load_from_disk(self.db(), &key)?.map(|(mut doc, version)| {
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
        self.refresh_author()?;
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
        let now = chrono::Utc::now().to_rfc3339();
        let staged = std::mem::take(&mut self.staged_sigs);
        // Documents are written (and on PostgreSQL row-locked) in id order, whatever order the
        // batch came in: two nodes writing overlapping batches then never wait on each other in a
        // cycle.
        let mut order: Vec<usize> = (0..docs.len()).collect();
        order.sort_by(|&a, &b| docs[a].0.cmp(&docs[b].0));
        let db = &*self.conn;
        // On SQLite, IMMEDIATE takes the write lock up front, so the version check in `write_doc`
        // cannot race another handle's write; on PostgreSQL `write_doc` locks the document's row.
        let outcome = sql::transaction(db, true, |tx| {
            signatures::write_staged(tx, staged, &now)?;
            let mut versions: Vec<Option<i64>> = vec![None; docs.len()];
            let mut failures: Vec<Option<Error>> = (0..docs.len()).map(|_| None).collect();
            let mut written = Vec::new();
            for &i in &order {
                let (id, l) = &mut docs[i];
                tx.exec("SAVEPOINT doc", &[])?;
                match write_doc(tx, id, l, &now) {
                    Ok((version, wrote)) => {
                        tx.exec("RELEASE SAVEPOINT doc", &[])?;
                        versions[i] = Some(version);
                        if wrote {
                            written.push(id.to_string());
                        }
                    }
                    Err(e) => {
                        // Undoes what this document wrote, and (PostgreSQL) clears the error.
                        tx.exec("ROLLBACK TO SAVEPOINT doc", &[])?;
                        tx.exec("RELEASE SAVEPOINT doc", &[])?;
                        if all_or_nothing {
                            return Err(e);
                        }
                        failures[i] = Some(e);
                    }
                }
            }
            number_changes(tx, &written)?;
            Ok((versions, failures))
        });
        let (versions, failures) = outcome?;
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
        let row = self.db().first(
            "SELECT snapshot_bytes, chunk_count, chunk_bytes FROM documents WHERE doc_id = ?1",
            &[id.to_string().into()],
        )?;
        row.map(|r| {
            Ok(StorageStats {
                snapshot_bytes: r.int(0)?,
                chunk_count: r.int(1)?,
                chunk_bytes: r.int(2)?,
            })
        })
        .transpose()
    }

    /// The store-wide change cursor: it grows with every write and merge that changes a document.
    pub fn change_cursor(&self) -> Result<u64> {
        let sql = match self.db().dialect() {
            Dialect::Sqlite => "SELECT COALESCE(MAX(change_seq), 0) FROM documents",
            Dialect::Postgres => "SELECT cursor FROM change_cursor WHERE id = 1",
        };
        Ok(self.db().one(sql, &[])?.int(0)? as u64)
    }

    /// Documents whose last change is after `cursor`, oldest change first, with their cursor.
    pub fn changed_since(&self, cursor: u64) -> Result<Vec<(DocId, u64)>> {
        let rows = self.db().query(
            "SELECT doc_id, change_seq FROM documents WHERE change_seq > ?1 ORDER BY change_seq, doc_id",
            &[(cursor as i64).into()],
        )?;
        rows.iter()
            .map(|r| Ok((r.text(0)?.parse()?, r.int(1)? as u64)))
            .collect()
    }

    /// The heads the server last acknowledged as durable for a document (`None`: never synced).
    pub fn synced_heads(&self, id: &DocId) -> Result<Option<Vec<String>>> {
        let row = self.db().first(
            "SELECT synced_heads FROM documents WHERE doc_id = ?1",
            &[id.to_string().into()],
        )?;
        let text = row.map(|r| r.opt_text(0)).transpose()?;
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
        self.db().exec(
            "UPDATE documents SET synced_heads = ?2 WHERE doc_id = ?1",
            &[id.to_string().into(), text.into()],
        )?;
        Ok(())
    }

    /// Forgets every server acknowledgement and the change cursor, so the next sync offers every
    /// document again (after the server was restored from a backup).
    pub fn forget_sync_state(&mut self) -> Result<()> {
        self.db().exec("UPDATE documents SET synced_heads = NULL", &[])?;
        meta_set(self.db(), "sync.cursor", "0")
    }

    /// Documents with changes the server has not acknowledged, oldest change first.
    pub fn pending(&self) -> Result<Vec<DocId>> {
        let rows = self.db().query(
            "SELECT doc_id, heads, synced_heads FROM documents ORDER BY change_seq, doc_id",
            &[],
        )?;
        let mut out = Vec::new();
        for row in rows {
            let (id, heads, synced) = (row.text(0)?, row.text(1)?, row.opt_text(2)?);
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
        let rows = self.db().query("SELECT doc_id FROM documents ORDER BY doc_id", &[])?;
        rows.iter().map(|r| r.text(0)?.parse()).collect()
    }

    /// The document's current heads as hex (empty if the store does not hold it).
    pub fn heads(&mut self, id: &DocId) -> Result<Vec<String>> {
        // Every write stores the heads beside the document: no need to load it to know them.
        Ok(self.disk_heads(id)?.unwrap_or_default())
    }

    /// The heads stored with the document (hex), `None` if the store does not hold it.
    fn disk_heads(&self, id: &DocId) -> Result<Option<Vec<String>>> {
        let row = self.db().first(
            "SELECT heads FROM documents WHERE doc_id = ?1",
            &[id.to_string().into()],
        )?;
        let text = row.map(|r| r.text(0)).transpose()?;
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
        Ok(self.export(id, since)?.map(|e| e.bytes.clone()))
    }

    /// [`Store::export_changes`] with the changes it holds, from the cache while the document is
    /// still at the heads the export was made at.
    fn export(&mut self, id: &DocId, since: &[String]) -> Result<Option<Arc<Export>>> {
        let mut since = doc::heads_parse(since).ok_or_else(|| Error::invalid("heads", "not a change hash"))?;
        since.sort();
        let key = (id.clone(), since);
        if let Some(e) = self.exports.get(&key)
            && self.disk_heads(id)?.as_deref() == Some(&heads_hex(&e.at)[..])
        {
            // Many devices that held the same version ask for the same changes (a morning's
            // reconnects): one export serves them all, without even loading the document, until
            // it changes again.
            return Ok(Some(e.clone()));
        }
        let cached = self.exports.get(&key).cloned();
        let since = &key.1;
        let out = self.read_doc(id, |d| {
            let heads = d.get_heads();
            if let Some(e) = cached
                && e.at == heads
            {
                return Ok((e, true));
            }
            Ok((Arc::new(Export::of(d, since)), false))
        })?;
        Ok(out.map(|(export, hit)| {
            if !hit {
                if self.exports.len() >= EXPORT_CACHE {
                    self.exports.clear();
                }
                self.exports.insert(key, export.clone());
            }
            export
        }))
    }
}

/// A document's changes past some heads, encoded once for every replica that asks.
struct Export {
    /// The document's heads when it was made: it is valid while the document is still at them.
    at: Vec<ChangeHash>,
    /// The changes as sent: `save_after(since)`, or the whole document `save()`d.
    bytes: Vec<u8>,
    /// Each change it holds with its actor (hex), to sign or find the signature of.
    made: Vec<(ChangeHash, String)>,
}

impl Export {
    /// The changes of `doc` that are not ancestors of `since` (sorted heads); everything when
    /// `since` is empty or names a change `doc` does not hold (heads it never saw cannot bound it).
    fn of(doc: &Automerge, since: &[ChangeHash]) -> Export {
        let at = doc.get_heads();
        if since.is_empty() || !knows(doc, since) {
            // The compressed document is smaller than its changes one by one; the list comes from
            // the change graph alone (`get_changes_meta` rebuilds no change).
            let made = doc
                .get_changes_meta(&[])
                .into_iter()
                .map(|m| (m.hash, m.actor.to_hex_string()))
                .collect();
            return Export {
                at,
                bytes: doc.save(),
                made,
            };
        }
        // What `save_after(since)` gives (it concatenates these same changes' raw bytes), with the
        // list from the same pass: `get_changes` rebuilds every change from the op set, the largest
        // single cost of a push when it ran twice (15% of the server's CPU, 2026-11-30).
        let changes = doc.get_changes(since);
        let mut bytes = Vec::with_capacity(changes.iter().map(|c| c.raw_bytes().len()).sum());
        let mut made = Vec::with_capacity(changes.len());
        for c in &changes {
            bytes.extend_from_slice(c.raw_bytes());
            made.push((c.hash(), c.actor_id().to_hex_string()));
        }
        Export { at, bytes, made }
    }
}

/// Writes one document's new changes (a chunk, or a fresh snapshot) and re-projects it; returns the
/// row's new version and whether anything was written.
///
/// On PostgreSQL the document's row is locked first (`FOR UPDATE`) and held to the commit, so two
/// nodes writing one document write one after the other, each merging what the other stored; its
/// `change_seq` is given by [`number_changes`] at the end of the transaction.
fn write_doc(tx: &dyn Sql, id: &DocId, l: &mut Loaded, now: &str) -> Result<(i64, bool)> {
    if l.stored && l.doc.get_heads() == l.saved {
        return Ok((l.version, false));
    }
    let dialect = tx.dialect();
    let key = id.to_string();
    let lock = match dialect {
        Dialect::Sqlite => "",
        Dialect::Postgres => " FOR UPDATE",
    };
    let locked = |tx: &dyn Sql| {
        tx.first(
            &format!("SELECT version, chunk_count, chunk_bytes, snapshot_bytes FROM documents WHERE doc_id = ?1{lock}"),
            &[key.as_str().into()],
        )
    };
    let row = match locked(tx)? {
        Some(row) => row,
        None => {
            if insert_doc(tx, id, &l.doc, now)? {
                projection::project(tx, id, &l.doc)?;
                return Ok((1, true));
            }
            // Another node created the document between the look and the insert (a row not yet
            // committed is invisible to `FOR UPDATE`, and the insert waited for its commit): write
            // as into any document another node wrote, merging what it stored. Found 2026-11-30 by
            // two phones starting one day's log through two nodes at once: the second push was
            // refused on the duplicate key, about one run in five of `multinode.rs`.
            locked(tx)?.ok_or_else(|| Error::Database(format!("{key} was created, then vanished")))?
        }
    };
    let (version, count, bytes, snap) = (row.int(0)?, row.int(1)?, row.int(2)?, row.int(3)?);
    let mut base = l.saved.clone();
    if !l.stored || version != l.version {
        // Another handle (another node) wrote this document since this copy was loaded (or
        // created it while this one started from the genesis): take its changes in before writing.
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
        tx.exec(
            "INSERT INTO chunks (doc_id, seq, data)
                 VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM chunks WHERE doc_id = ?1), ?2)",
            &[key.as_str().into(), Value::Bytes(chunk.clone())],
        )?;
        tx.exec(
            &format!(
                "UPDATE documents SET chunk_count = chunk_count + 1, chunk_bytes = chunk_bytes + ?2,
                 heads = ?3, version = version + 1, updated_at = ?4, change_seq = {} WHERE doc_id = ?1",
                next_seq(dialect, "change_seq")
            ),
            &[
                key.as_str().into(),
                (chunk.len() as i64).into(),
                heads_text.into(),
                now.into(),
            ],
        )?;
    }
    projection::project_since(tx, id, &l.doc, &base)?;
    Ok((version + 1, true))
}

/// Inserts a document not stored yet; `false` if another handle (another node) stored it first.
fn insert_doc(tx: &dyn Sql, id: &DocId, doc: &Automerge, now: &str) -> Result<bool> {
    let snapshot = doc.save();
    let (site, day) = match id {
        DocId::Site(s) => (Some(s.to_string()), None),
        DocId::Day(s, d) => (Some(s.to_string()), Some(d.to_string())),
        DocId::Okr(..) => (None, None),
    };
    let heads_text = heads_hex(&doc.get_heads()).join(",");
    let snapshot_bytes = snapshot.len() as i64;
    let key = id.to_string();
    let inserted = tx.exec(
        &format!(
            "INSERT INTO documents (doc_id, kind, site_id, day, snapshot_bytes, heads, version, updated_at,
             change_seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, {}) ON CONFLICT (doc_id) DO NOTHING",
            next_seq(tx.dialect(), "0")
        ),
        &[
            key.as_str().into(),
            id.kind().as_str().into(),
            site.into(),
            day.into(),
            snapshot_bytes.into(),
            heads_text.into(),
            now.into(),
        ],
    )?;
    if inserted == 0 {
        return Ok(false);
    }
    tx.exec(
        "INSERT INTO snapshots (doc_id, data) VALUES (?1, ?2)",
        &[key.into(), Value::Bytes(snapshot)],
    )?;
    Ok(true)
}

/// The `change_seq` a written document takes: on SQLite (one writer at a time) the next number at
/// once; on PostgreSQL `placeholder` until [`number_changes`] numbers the transaction's documents.
fn next_seq(dialect: Dialect, placeholder: &str) -> String {
    match dialect {
        Dialect::Sqlite => "(SELECT COALESCE(MAX(change_seq), 0) + 1 FROM documents)".to_string(),
        Dialect::Postgres => placeholder.to_string(),
    }
}

/// Numbers the documents a PostgreSQL transaction wrote, last thing before its commit, and wakes
/// the other nodes. The counter row is updated here and nowhere else: a second transaction waits on
/// it until the first has committed, so numbers follow commit order, and a reader that sees number
/// N has every number below it (the gap Couchbase Sync Gateway's sequences had cannot open). The
/// notification is sent at commit, and only wakes: nodes poll the cursor anyway.
fn number_changes(tx: &dyn Sql, written: &[String]) -> Result<()> {
    if tx.dialect() != Dialect::Postgres || written.is_empty() {
        return Ok(());
    }
    let last = tx
        .one(
            "UPDATE change_cursor SET cursor = cursor + ?1 WHERE id = 1 RETURNING cursor",
            &[(written.len() as i64).into()],
        )?
        .int(0)?;
    let first = last - written.len() as i64 + 1;
    for (k, doc) in written.iter().enumerate() {
        tx.exec(
            "UPDATE documents SET change_seq = ?2 WHERE doc_id = ?1",
            &[doc.into(), (first + k as i64).into()],
        )?;
    }
    tx.exec("SELECT pg_notify('sitesync_changes', ?1)", &[last.to_string().into()])?;
    Ok(())
}

/// Whether the document holds every change named by `hashes`. (`get_missing_deps` looks the hashes
/// up in the change graph; `get_change_by_hash` would rebuild each change from its operations.)
fn knows(doc: &Automerge, hashes: &[ChangeHash]) -> bool {
    doc.get_missing_deps(hashes).is_empty()
}

/// Loads a document strictly from its snapshot and chunks, with the row's version; a damaged chunk or
/// a gap in the history is an error, never a silently shorter document.
fn load_from_disk(conn: &dyn Sql, key: &str) -> Result<Option<(Automerge, i64)>> {
    // One statement, so one view of the document: read as two, a compaction committed between
    // them (another node's, or another handle's) gave the old snapshot without the chunks it
    // folded in, and the next change made on that copy reused a sequence number already stored
    // (found 2026-11-30 by `compaction_beside_writers_loses_no_chunk`).
    let rows = conn.query(
        "SELECT 0 AS part, s.data, d.version, 0 AS seq FROM documents d
             LEFT JOIN snapshots s ON s.doc_id = d.doc_id WHERE d.doc_id = ?1
         UNION ALL
         SELECT 1 AS part, c.data, 0 AS version, c.seq FROM chunks c WHERE c.doc_id = ?1
         ORDER BY part, seq",
        &[key.into()],
    )?;
    let mut rows = rows.into_iter();
    let Some(first) = rows.next() else {
        return Ok(None);
    };
    let corrupt = |reason: String| Error::CorruptDocument {
        doc: key.to_string(),
        reason,
    };
    if first.int(0)? != 0 {
        return Err(corrupt("chunks are stored without their document".into()));
    }
    let (snapshot, version) = (first.opt_bytes(1)?, first.int(2)?);
    let snapshot = snapshot.ok_or_else(|| corrupt("the document's snapshot is missing".into()))?;
    let strict = LoadOptions::new().on_partial_load(OnPartialLoad::Error);
    let mut doc = Automerge::load_with_options(&snapshot, strict).map_err(|e| corrupt(e.to_string()))?;
    for chunk in rows {
        doc::apply_bytes(&mut doc, &chunk.bytes(1)?).map_err(corrupt)?;
    }
    if !doc.get_missing_deps(&[]).is_empty() {
        return Err(corrupt("a stored chunk depends on changes that are not stored".into()));
    }
    Ok(Some((doc, version)))
}

/// Replaces a stored document by a fresh snapshot of `doc` (its chunks folded in and deleted),
/// moving its version and the change cursor. The caller holds the document (SQLite's write lock, or
/// the row lock on PostgreSQL), so no chunk another writer appends can be deleted unread.
fn replace_snapshot(tx: &dyn Sql, key: &str, doc: &Automerge, now: &str) -> Result<()> {
    let snapshot = doc.save();
    let heads = heads_hex(&doc.get_heads()).join(",");
    let size = snapshot.len() as i64;
    tx.exec("DELETE FROM chunks WHERE doc_id = ?1", &[key.into()])?;
    write_snapshot(tx, key, snapshot)?;
    tx.exec(
        &format!(
            "UPDATE documents SET snapshot_bytes = ?2, chunk_count = 0, chunk_bytes = 0,
             heads = ?3, version = version + 1, updated_at = ?4, change_seq = {} WHERE doc_id = ?1",
            next_seq(tx.dialect(), "change_seq")
        ),
        &[key.into(), size.into(), heads.into(), now.into()],
    )?;
    Ok(())
}

/// Stores `snapshot` as the document's snapshot, in place of the one it had.
fn write_snapshot(tx: &dyn Sql, key: &str, snapshot: Vec<u8>) -> Result<()> {
    tx.exec(
        "INSERT INTO snapshots (doc_id, data) VALUES (?1, ?2)
         ON CONFLICT (doc_id) DO UPDATE SET data = excluded.data",
        &[key.into(), Value::Bytes(snapshot)],
    )?;
    Ok(())
}

fn meta_get(conn: &dyn Sql, key: &str) -> Result<Option<String>> {
    conn.first("SELECT value FROM meta WHERE key = ?1", &[key.into()])?
        .map(|r| r.text(0))
        .transpose()
}

fn meta_set(conn: &dyn Sql, key: &str, value: &str) -> Result<()> {
    conn.exec(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[key.into(), value.into()],
    )?;
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
