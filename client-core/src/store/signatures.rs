//! Authorship in the store: its signing key, who the server says its device is, the org's directory
//! of device keys, the signatures of changes, the changes the server refused, and each document's
//! history with the author of every change.
//!
//! Why one file: keys, signatures and the directory are written in the transaction that stores the
//! changes they sign, and history reads them back; one schema, one file.

use std::collections::{HashMap, HashSet};

use super::sql::{Sql, transaction};
use automerge::{Automerge, Change, ChangeHash, ReadDoc};
use serde::Serialize;

use crate::changes::{self, ChangeInfo, Tables, Value};
use crate::doc;
use crate::error::{Error, Result};
use crate::ids::DocId;
use crate::rules::{Author, Role, Violation};
use crate::signing::{ChangeSig, Keypair, actor_fingerprint, fingerprint};
use crate::store::{Loaded, Store, meta_get, meta_set, projection};
use crate::sync::protocol::DirectoryEntry;

/// Store metadata keys of authorship.
mod keys {
    /// The secret half of the store's signing key, hex.
    pub const SIGNING_KEY: &str = "identity.signing_key";
    /// Keys the store signed with before it was bound to another device (JSON list of secret hex):
    /// its changes made under them are still signed with them.
    pub const OLD_KEYS: &str = "identity.old_keys";
    /// Who the server says the device is (JSON of [`crate::rules::Author`]).
    pub const AUTHOR: &str = "identity.author";
}

/// A signature waiting for the next write transaction.
pub(super) struct Staged {
    doc: String,
    sig: ChangeSig,
    device: String,
    user_id: String,
}

/// Writes staged signatures inside the caller's transaction.
pub(super) fn write_staged(tx: &dyn Sql, mut staged: Vec<Staged>, now: &str) -> Result<()> {
    // In hash order: two server nodes storing the same changes at once (a phone that retried
    // through another node) then wait for each other on the first, never in a cycle.
    staged.sort_by_key(|s| s.sig.hash);
    for s in staged {
        tx.exec(
            "INSERT INTO signatures (hash, doc_id, key, sig, device, user_id, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (hash) DO NOTHING",
            &[
                hex::encode(s.sig.hash).into(),
                s.doc.into(),
                s.sig.key[..].into(),
                s.sig.sig.into(),
                s.device.into(),
                s.user_id.into(),
                now.into(),
            ],
        )?;
    }
    Ok(())
}

/// Loads the store's key, making and keeping one on first open.
pub(super) fn load_or_make_key(conn: &dyn Sql) -> Result<Keypair> {
    if meta_get(conn, keys::SIGNING_KEY)?.is_none() {
        // Two server nodes opening one new database at once: the first key stored is everyone's.
        conn.exec(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
            &[keys::SIGNING_KEY.into(), Keypair::generate().secret_hex().into()],
        )?;
    }
    let secret = meta_get(conn, keys::SIGNING_KEY)?.unwrap_or_default();
    Keypair::from_secret_hex(&secret).ok_or_else(|| Error::CorruptDocument {
        doc: "meta".into(),
        reason: "the store's signing key is damaged".into(),
    })
}

/// The identity the server gave this store's device, if it has.
pub(super) fn stored_author(conn: &dyn Sql) -> Result<Option<Author>> {
    Ok(meta_get(conn, keys::AUTHOR)?.and_then(|j| serde_json::from_str(&j).ok()))
}

/// A kept signature with what the server recorded of it: the signing device, its user, and when
/// the change was received (RFC 3339); all `None` on a phone.
pub type KeptSignature = (ChangeSig, Option<String>, Option<String>, Option<String>);

/// Who wrote a change, as far as this store can tell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attribution {
    /// The signing device (`server` for the server's own changes), if known.
    pub device: Option<String>,
    /// Its user's id, if known.
    pub user_id: Option<String>,
    /// Its user's name, if known.
    pub user_name: Option<String>,
    /// Whether a signature over the change verified with the device's key.
    pub signed: bool,
}

/// Where [`Store::history`] finds the people behind the keys that signed changes.
#[derive(Debug, Clone, Copy)]
pub enum Authors<'a> {
    /// A phone's: the directory of devices and users the server sent it.
    Directory,
    /// The server's: its org's users, user id → (user id, user name), from the credential
    /// database. The server keeps no directory (on PostgreSQL its schema has no such table): the
    /// signatures it kept already name each signer's device and user.
    Users(&'a HashMap<String, (String, String)>),
}

/// One change of a document's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    /// The change and its writes.
    #[serde(flatten)]
    pub change: ChangeInfo,
    /// Who wrote it.
    pub author: Attribution,
    /// When the server received it (RFC 3339), where known.
    pub received_at: Option<String>,
}

/// Every value a field holds now — the one every replica shows first, then those that lost a
/// concurrent edit — each with the change that wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct FieldValues {
    pub table: String,
    pub record: String,
    pub field: String,
    /// (value, hash of the change that wrote it), the shown value first.
    pub values: Vec<(Value, String)>,
}

/// A change of this phone's that the server refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct RefusedRow {
    /// The change hash.
    pub hash: String,
    pub doc: String,
    /// The rule's stable name.
    pub rule: String,
    /// Why, in words.
    pub reason: String,
    /// What the change wrote.
    pub writes: Vec<changes::Write>,
    /// When the refusal arrived (RFC 3339).
    pub refused_at: String,
}

impl Store {
    /// The store's public key: every change it makes is signed with its secret half.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.public()
    }

    /// Signs arbitrary bytes with the store's key (the server signs its evidence files with it).
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        self.key.sign(msg)
    }

    /// Who the server says this store's device is.
    pub fn author(&self) -> Option<&Author> {
        self.author.as_ref()
    }

    /// Starts signing with a new key (the store was bound to another device token): the old key
    /// is kept to sign the changes made under it, and who the device is must be learnt again.
    pub(crate) fn rotate_key(&mut self) -> Result<()> {
        let mut old: Vec<String> = meta_get(self.db(), keys::OLD_KEYS)?
            .and_then(|j| serde_json::from_str(&j).ok())
            .unwrap_or_default();
        old.push(self.key.secret_hex());
        let json = serde_json::to_string(&old).map_err(|e| Error::invalid("old_keys", e.to_string()))?;
        let key = Keypair::generate();
        transaction(self.db(), true, |tx| {
            meta_set(tx, keys::OLD_KEYS, &json)?;
            meta_set(tx, keys::SIGNING_KEY, &key.secret_hex())?;
            tx.exec("DELETE FROM meta WHERE key = ?1", &[keys::AUTHOR.into()])?;
            Ok(())
        })?;
        self.key = key;
        self.author = None;
        self.actor = self.key.new_actor();
        for l in self.cache.values_mut() {
            l.doc.set_actor(self.actor.clone());
        }
        Ok(())
    }

    /// Keys this store signed with before its current one.
    fn old_keys(&self) -> Result<Vec<Keypair>> {
        Ok(meta_get(self.db(), keys::OLD_KEYS)?
            .and_then(|j| serde_json::from_str::<Vec<String>>(&j).ok())
            .unwrap_or_default()
            .iter()
            .filter_map(|s| Keypair::from_secret_hex(s))
            .collect())
    }

    /// Reads who this device is from the file when this handle does not know it yet: another
    /// handle on the same file (the mobile bindings sync on their own) may have learnt it from the
    /// server since this one opened, and a write made without it names no device (a sign-off says
    /// `local`), skips the check of the writer's rights, and is refused by the server as forged.
    pub(crate) fn refresh_author(&mut self) -> Result<()> {
        if self.author.is_none() {
            self.author = stored_author(self.db())?;
        }
        Ok(())
    }

    /// Records who the server says this device is; from then on every write is checked against
    /// that user's rights before it is made, and names the user.
    pub fn set_author(&mut self, author: &Author) -> Result<()> {
        if self.author.as_ref() == Some(author) {
            return Ok(());
        }
        let json = serde_json::to_string(author).map_err(|e| Error::invalid("author", e.to_string()))?;
        meta_set(self.db(), keys::AUTHOR, &json)?;
        self.author = Some(author.clone());
        self.set_user(&author.user_name)
    }

    /// Replaces the directory of the org's devices.
    pub fn set_directory(&mut self, entries: &[DirectoryEntry]) -> Result<()> {
        transaction(self.db(), true, |tx| {
            tx.exec("DELETE FROM directory", &[])?;
            for e in entries {
                tx.exec(
                    "INSERT INTO directory (key, device, user_id, user_name, role) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (key) DO UPDATE SET device = excluded.device, user_id = excluded.user_id,
                     user_name = excluded.user_name, role = excluded.role",
                    &[
                        e.key[..].into(),
                        e.device.as_str().into(),
                        e.user_id.as_str().into(),
                        e.user_name.as_str().into(),
                        e.role.as_str().into(),
                    ],
                )?;
            }
            Ok(())
        })
    }

    /// The directory of the org's devices as the server last sent it.
    pub fn directory(&self) -> Result<Vec<DirectoryEntry>> {
        let rows = self.db().query(
            "SELECT key, device, user_id, user_name, role FROM directory ORDER BY device",
            &[],
        )?;
        let mut out = Vec::new();
        for row in rows {
            let (key, device, user_id, user_name, role) =
                (row.bytes(0)?, row.text(1)?, row.text(2)?, row.text(3)?, row.text(4)?);
            let Ok(key) = <[u8; 32]>::try_from(key.as_slice()) else {
                continue;
            };
            out.push(DirectoryEntry {
                key,
                device,
                user_id,
                user_name,
                role: Role::parse(&role).unwrap_or(Role::Foreman),
            });
        }
        Ok(out)
    }

    /// Keeps signatures of changes of `doc` (from the server's updates, or verified by the server
    /// itself with the signer and the time of receipt). A signature already kept is not replaced.
    pub fn keep_signatures(&mut self, doc: &DocId, sigs: &[ChangeSig], signer: Option<(&str, &str)>) -> Result<()> {
        if sigs.is_empty() {
            return Ok(());
        }
        let now = chrono::Utc::now().to_rfc3339();
        let doc = doc.to_string();
        transaction(self.db(), true, |tx| {
            for s in sigs {
                tx.exec(
                    "INSERT INTO signatures (hash, doc_id, key, sig, device, user_id, received_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (hash) DO NOTHING",
                    &[
                        hex::encode(s.hash).into(),
                        doc.as_str().into(),
                        s.key[..].into(),
                        s.sig.clone().into(),
                        signer.map(|x| x.0).into(),
                        signer.map(|x| x.1).into(),
                        signer.map(|_| now.as_str()).into(),
                    ],
                )?;
            }
            Ok(())
        })
    }

    /// Signatures the server verified, written in the same transaction as the next merge (the group
    /// commit), with the device that signed and its user.
    pub fn stage_signatures(&mut self, doc: &DocId, sigs: &[ChangeSig], device: &str, user_id: &str) {
        let doc = doc.to_string();
        self.staged_sigs.extend(sigs.iter().map(|sig| Staged {
            doc: doc.clone(),
            sig: sig.clone(),
            device: device.to_string(),
            user_id: user_id.to_string(),
        }));
    }

    /// Signatures for the changes of `doc` named by `hashes`: kept ones, and this store's own changes
    /// signed now. A change with neither is left out (the receiver decides).
    fn signatures_for(&self, doc: &DocId, changes: &[(ChangeHash, String)]) -> Result<Vec<ChangeSig>> {
        let own = fingerprint(&self.key.public());
        let old = self.old_keys()?;
        let doc_text = doc.to_string();
        let mut out = Vec::with_capacity(changes.len());
        for (hash, actor) in changes {
            let kept = match self.db().first(
                "SELECT key, sig FROM signatures WHERE hash = ?1",
                &[hash.to_string().into()],
            )? {
                Some(r) => Some((r.bytes(0)?, r.bytes(1)?)),
                None => None,
            };
            if let Some((key, sig)) = kept
                && let Ok(key) = <[u8; 32]>::try_from(key.as_slice())
            {
                out.push(ChangeSig { hash: hash.0, key, sig });
            } else if actor_fingerprint(actor) == Some(own) {
                out.push(self.key.sign_change(&doc_text, hash.0));
            } else if let Some(k) = old
                .iter()
                .find(|k| actor_fingerprint(actor) == Some(fingerprint(&k.public())))
            {
                out.push(k.sign_change(&doc_text, hash.0));
            }
        }
        Ok(out)
    }

    /// What a replica at `since` (hex heads; empty: nothing) lacks of a document, with a signature
    /// for each change: [`Store::export_changes`] plus the proof of who made each change.
    pub fn export_signed(&mut self, id: &DocId, since: &[String]) -> Result<Option<(Vec<u8>, Vec<ChangeSig>)>> {
        let Some(export) = self.export(id, since)? else {
            return Ok(None);
        };
        // Signatures are looked up each time: one kept after the export was made still counts.
        let sigs = self.signatures_for(id, &export.made)?;
        Ok(Some((export.bytes.clone(), sigs)))
    }

    /// Signs this store's own changes of `doc` that have no kept signature yet and keeps the
    /// signatures, naming `user_id` as the user they were made for (the server, after writing for a
    /// signed-in user or for itself). Returns how many were signed.
    pub fn sign_own_changes(&mut self, doc: &DocId, device: &str, user_id: &str) -> Result<usize> {
        let own = fingerprint(&self.key.public());
        let mine: Vec<(ChangeHash, String)> = self
            .read_doc(doc, |d| {
                Ok(d.get_changes(&[])
                    .into_iter()
                    .filter(|c| actor_fingerprint(&c.actor_id().to_hex_string()) == Some(own))
                    .map(|c| (c.hash(), c.actor_id().to_hex_string()))
                    .collect::<Vec<_>>())
            })?
            .unwrap_or_default();
        let mut fresh = Vec::new();
        for (hash, actor) in mine {
            let kept = self
                .db()
                .first("SELECT 1 FROM signatures WHERE hash = ?1", &[hash.to_string().into()])?;
            if kept.is_none() {
                fresh.push((hash, actor));
            }
        }
        let sigs = self.signatures_for(doc, &fresh)?;
        self.keep_signatures(doc, &sigs, Some((device, user_id)))?;
        Ok(sigs.len())
    }

    /// The kept signatures of a document's changes, by hash.
    pub fn signatures(&self, doc: &DocId) -> Result<Vec<KeptSignature>> {
        let rows = self.db().query(
            "SELECT hash, key, sig, device, user_id, received_at FROM signatures WHERE doc_id = ?1 ORDER BY hash",
            &[doc.to_string().into()],
        )?;
        let mut out = Vec::new();
        for row in rows {
            let (hash, key, sig) = (row.text(0)?, row.bytes(1)?, row.bytes(2)?);
            let (device, user, at) = (row.opt_text(3)?, row.opt_text(4)?, row.opt_text(5)?);
            let (Ok(key), Some(hash)) = (<[u8; 32]>::try_from(key.as_slice()), hash_bytes(&hash)) else {
                continue;
            };
            out.push((ChangeSig { hash, key, sig }, device, user, at));
        }
        Ok(out)
    }

    /// A document's changes in causal order (every change after those it builds on), each with its
    /// writes and its author as far as this store knows: the signer's device and user from the
    /// signature kept for it, resolved through `authors` (the directory on a phone, the org's users
    /// on the server).
    ///
    /// `own` names this store's device in the answer: `this device` on a phone, `server` on the
    /// server, whose own unrecorded changes (imports, metric check-ins) are the system's.
    pub fn history(&mut self, id: &DocId, own: &str, authors: Authors<'_>) -> Result<Vec<HistoryEntry>> {
        let tables = Tables::of(id);
        let infos: Vec<ChangeInfo> = self
            .read_doc(id, |d| {
                let mut out = Vec::new();
                // The genesis is the same on every device and writes no record: nobody's entry.
                for c in d.get_changes(&[]).into_iter().filter(|c| c.hash() != tables.genesis()) {
                    // Every stored change passed the gate (or is the genesis); one that no longer
                    // decodes as writes is shown without them rather than hiding the rest.
                    out.push(changes::decode(&tables, &c).unwrap_or_else(|_| ChangeInfo {
                        hash: c.hash().to_string(),
                        actor: c.actor_id().to_hex_string(),
                        seq: c.seq(),
                        time_ms: c.timestamp(),
                        deps: c.deps().iter().map(|h| h.to_string()).collect(),
                        writes: Vec::new(),
                    }));
                }
                Ok(out)
            })?
            .unwrap_or_default();
        let sigs: HashMap<String, KeptSignature> = self
            .signatures(id)?
            .into_iter()
            .map(|s| (hex::encode(s.0.hash), s))
            .collect();
        let (directory, users): (HashMap<[u8; 32], DirectoryEntry>, _) = match authors {
            Authors::Directory => (self.directory()?.into_iter().map(|e| (e.key, e)).collect(), None),
            Authors::Users(users) => (HashMap::new(), Some(users)),
        };
        let own_key = self.key.public();
        let doc_text = id.to_string();
        let mut out = Vec::with_capacity(infos.len());
        for info in infos {
            let mut author = Attribution {
                device: None,
                user_id: None,
                user_name: None,
                signed: false,
            };
            let mut received_at = None;
            if let Some((sig, device, user, at)) = sigs.get(&info.hash) {
                author.signed = sig.verifies(&doc_text);
                received_at = at.clone();
                if let Some(d) = device {
                    author.device = Some(d.clone());
                    author.user_id = user.clone();
                } else if let Some(e) = directory.get(&sig.key) {
                    author.device = Some(e.device.clone());
                    author.user_id = Some(e.user_id.clone());
                    author.user_name = Some(e.user_name.clone());
                } else if sig.key == own_key {
                    author.device = Some(own.to_string());
                }
            } else if actor_fingerprint(&info.actor) == Some(fingerprint(&own_key)) {
                author.device = Some(own.to_string());
                author.signed = true;
                match &self.author {
                    Some(a) => {
                        author.user_id = Some(a.user_id.clone());
                        author.user_name = Some(a.user_name.clone());
                    }
                    None => {
                        author.user_id = Some("system".into());
                        author.user_name = Some("system".into());
                    }
                }
            } else if let Some(e) = directory
                .values()
                .find(|e| actor_fingerprint(&info.actor) == Some(fingerprint(&e.key)))
            {
                author.device = Some(e.device.clone());
                author.user_id = Some(e.user_id.clone());
                author.user_name = Some(e.user_name.clone());
            }
            if let Some(u) = &author.user_id
                && author.user_name.is_none()
            {
                author.user_name = users
                    .and_then(|users| users.get(u))
                    .map(|(_, name)| name.clone())
                    .or_else(|| {
                        directory
                            .values()
                            .find(|e| &e.user_id == u)
                            .map(|e| e.user_name.clone())
                    });
            }
            out.push(HistoryEntry {
                change: info,
                author,
                received_at,
            });
        }
        Ok(out)
    }

    /// A document as an evidence file holds it: every change and its signature, the server's own
    /// changes signed now if they were not yet (attributed to `system` unless recorded otherwise).
    pub fn evidence_document(&mut self, id: &DocId, own_device: &str) -> Result<Option<crate::evidence::Document>> {
        self.sign_own_changes(id, own_device, "system")?;
        let Some(changes) = self.read_doc(id, |d| Ok(crate::evidence::document_changes(d)))? else {
            return Ok(None);
        };
        let kept: HashMap<String, KeptSignature> = self
            .signatures(id)?
            .into_iter()
            .map(|s| (hex::encode(s.0.hash), s))
            .collect();
        let own = self.key.public();
        let mut signatures = Vec::new();
        for (hash, _, _) in &changes {
            if let Some((sig, _, user, at)) = kept.get(&hash.to_string()) {
                signatures.push(crate::evidence::Signature {
                    hash: hash.to_string(),
                    key: hex::encode(sig.key),
                    sig: hex::encode(&sig.sig),
                    for_user: if sig.key == own { user.clone() } else { None },
                    received_at: at.clone(),
                });
            }
        }
        Ok(Some(crate::evidence::Document {
            doc: id.to_string(),
            changes: changes.into_iter().map(|(_, _, bytes)| bytes).collect(),
            signatures,
        }))
    }

    /// The open conflicts of a site-day: the fields a person edits (the day sheet's conflicts) that
    /// hold several different values, each distinct value once with the first change that wrote it,
    /// the shown value first. Concurrent writes of the same value are no conflict, nor are
    /// bookkeeping fields such as who entered a line.
    pub fn open_conflicts(&mut self, id: &DocId) -> Result<Vec<FieldValues>> {
        if !matches!(id, DocId::Day(..)) {
            return Ok(Vec::new());
        }
        Ok(self
            .field_values(id)?
            .into_iter()
            .filter(|f| doc::day::contested_fields(&f.table).contains(&f.field.as_str()))
            .filter_map(|mut f| {
                let mut seen: Vec<Value> = Vec::new();
                f.values.retain(|(v, _)| {
                    let new = !seen.contains(v);
                    if new {
                        seen.push(v.clone());
                    }
                    new
                });
                (f.values.len() > 1).then_some(f)
            })
            .collect())
    }

    /// Settles a conflict on one field of a record: writes again the value that change `hash` wrote,
    /// as one new change that supersedes every concurrent value of the field (an Automerge put names
    /// all the values it replaces), so it merges on every phone like any other edit and the field
    /// then holds that one value. The caller signs the change ([`Store::sign_own_changes`]).
    /// A field that holds one value, or no value written by `hash`, is refused and nothing changes.
    pub fn keep_value(&mut self, id: &DocId, table: &str, record: &str, field: &str, hash: &str) -> Result<()> {
        let current = self
            .field_values(id)?
            .into_iter()
            .find(|f| f.table == table && f.record == record && f.field == field)
            .ok_or_else(|| Error::invalid("field", format!("{id} has no field {table} {record}.{field}")))?;
        let open = self
            .open_conflicts(id)?
            .into_iter()
            .any(|f| f.table == table && f.record == record && f.field == field);
        if !open {
            return Err(Error::invalid(
                "field",
                format!("{table} {record}.{field} has no conflict to settle"),
            ));
        }
        if !current.values.iter().any(|(_, h)| h == hash) {
            return Err(Error::invalid(
                "hash",
                format!("no value of {record}.{field} was written by change {hash}"),
            ));
        }
        let key = format!("{record}.{field}");
        // The scalar itself, not its text: the chosen op's value exactly as it was written.
        let chosen = self
            .read_doc(id, |d| {
                let obj = doc::table(d, table)?;
                let hashes: HashMap<automerge::ActorId, Vec<(u64, u64, String)>> =
                    d.get_changes(&[]).iter().fold(HashMap::new(), |mut m, c| {
                        let start = c.start_op().get();
                        m.entry(c.actor_id().clone()).or_default().push((
                            start,
                            start + c.len() as u64,
                            c.hash().to_string(),
                        ));
                        m
                    });
                for (v, op) in d.get_all(&obj, key.as_str())? {
                    if let automerge::ObjId::Id(counter, actor, _) = &op
                        && hashes
                            .get(actor)
                            .is_some_and(|rs| rs.iter().any(|(a, b, h)| (*a..*b).contains(counter) && h == hash))
                        && let Some(s) = v.as_scalar()
                    {
                        return Ok(Some(s.clone()));
                    }
                }
                Ok(None)
            })?
            .flatten()
            .ok_or_else(|| {
                Error::invalid(
                    "hash",
                    format!("change {hash} wrote no plain value of {record}.{field}"),
                )
            })?;
        let table = table.to_string();
        self.change(id, move |tx| {
            use automerge::transaction::Transactable;
            let obj = doc::table(tx, &table)?;
            tx.put(&obj, key.as_str(), chosen)?;
            Ok(())
        })
    }

    /// Every field of every record of a document with the change that wrote each of its current
    /// values (several where concurrent edits conflict), for showing who entered each value.
    pub fn field_values(&mut self, id: &DocId) -> Result<Vec<FieldValues>> {
        let tables = crate::changes::Tables::of(id);
        let names = tables.names();
        Ok(self
            .read_doc(id, |d| {
                // Which change made each operation: an actor's changes hold consecutive op counters.
                let mut ranges: HashMap<automerge::ActorId, Vec<(u64, u64, String)>> = HashMap::new();
                for c in d.get_changes(&[]) {
                    let start = c.start_op().get();
                    ranges.entry(c.actor_id().clone()).or_default().push((
                        start,
                        start + c.len() as u64,
                        c.hash().to_string(),
                    ));
                }
                let made_by = |op: &automerge::ObjId| -> String {
                    if let automerge::ObjId::Id(counter, actor, _) = op
                        && let Some(rs) = ranges.get(actor)
                        && let Some((_, _, h)) = rs.iter().find(|(a, b, _)| (*a..*b).contains(counter))
                    {
                        return h.clone();
                    }
                    String::new()
                };
                let mut out = Vec::new();
                for table in &names {
                    let obj = doc::table(d, table)?;
                    for item in d.map_range(&obj, ..) {
                        let Some((record, field)) = item.key.rsplit_once('.') else {
                            continue;
                        };
                        let mut values = Vec::new();
                        if let Some((v, op)) = d.get(&obj, item.key.as_ref())?
                            && let Some(s) = v.as_scalar()
                        {
                            values.push((Value::from_scalar(s), made_by(&op)));
                        }
                        if item.conflict {
                            for (v, op) in d.get_all(&obj, item.key.as_ref())? {
                                let h = made_by(&op);
                                if values.iter().any(|(_, seen)| *seen == h) {
                                    continue;
                                }
                                if let Some(s) = v.as_scalar() {
                                    values.push((Value::from_scalar(s), h));
                                }
                            }
                        }
                        out.push(FieldValues {
                            table: table.clone(),
                            record: record.to_string(),
                            field: field.to_string(),
                            values,
                        });
                    }
                }
                Ok(out)
            })?
            .unwrap_or_default())
    }

    /// Changes of this phone's the server refused, newest first.
    pub fn refused_changes(&self) -> Result<Vec<RefusedRow>> {
        let rows = self.db().query(
            "SELECT hash, doc_id, rule, reason, writes, refused_at FROM refused_changes ORDER BY refused_at DESC, hash",
            &[],
        )?;
        rows.iter()
            .map(|r| {
                Ok(RefusedRow {
                    hash: r.text(0)?,
                    doc: r.text(1)?,
                    rule: r.text(2)?,
                    reason: r.text(3)?,
                    writes: serde_json::from_str(&r.text(4)?).unwrap_or_default(),
                    refused_at: r.text(5)?,
                })
            })
            .collect()
    }

    /// Takes changes the server refused out of this store's copy of a document, with every change
    /// built on them; this device's own changes among the latter that the server did not refuse in
    /// their own right are made again on top of what remains, so no entry the server would take is
    /// lost and later edits no longer build on the refused ones. The refused changes are kept in
    /// [`Store::refused_changes`] to show the user. Returns how many changes were taken out.
    pub fn drop_refused(&mut self, id: &DocId, refused: &[(String, Violation)]) -> Result<usize> {
        let Some(mut loaded) = self.take(id)? else { return Ok(0) };
        let direct: HashMap<ChangeHash, &Violation> = refused
            .iter()
            .filter_map(|(h, v)| h.parse().ok().map(|h| (h, v)))
            .collect();
        let all: Vec<Change> = loaded.doc.get_changes(&[]);
        let mut dropped: HashSet<ChangeHash> = HashSet::new();
        for c in &all {
            if direct.contains_key(&c.hash()) || c.deps().iter().any(|d| dropped.contains(d)) {
                dropped.insert(c.hash());
            }
        }
        if dropped.is_empty() {
            self.put_back(id.clone(), loaded);
            return Ok(0);
        }
        let tables = Tables::of(id);
        let own = fingerprint(&self.key.public());
        let mut kept = Automerge::new();
        kept.apply_changes(all.iter().filter(|c| !dropped.contains(&c.hash())).cloned())?;
        // A new actor for what is made again: the dropped changes' sequence numbers may have been
        // seen elsewhere, and an actor never reuses one.
        self.actor = self.key.new_actor();
        for l in self.cache.values_mut() {
            l.doc.set_actor(self.actor.clone());
        }
        kept.set_actor(self.actor.clone());
        let now = chrono::Utc::now().to_rfc3339();
        let mut rows = Vec::new();
        for c in all.iter().filter(|c| dropped.contains(&c.hash())) {
            let info = changes::decode(&tables, c).ok();
            match direct.get(&c.hash()) {
                Some(v) => rows.push((c.hash(), (*v).clone(), info)),
                None if actor_fingerprint(&c.actor_id().to_hex_string()) == Some(own) => {
                    if let Some(info) = info {
                        replay(&mut kept, &info, c.timestamp())?;
                    }
                }
                None => {
                    // Another device's change that built on a refused one: it cannot be stored as
                    // it is; its author's phone still has it and will offer it again.
                    let dep = c.deps().iter().find(|d| dropped.contains(d)).map(|d| d.to_string());
                    rows.push((
                        c.hash(),
                        Violation::DependsOnRefused {
                            hash: dep.unwrap_or_default(),
                        },
                        info,
                    ));
                }
            }
        }
        loaded.doc = kept;
        loaded.encoded = None;
        self.rewrite(id, &mut loaded)?;
        for (hash, v, info) in &rows {
            let writes = serde_json::to_string(&info.as_ref().map(|i| i.writes.clone()).unwrap_or_default())
                .unwrap_or_else(|_| "[]".into());
            self.db().exec(
                "INSERT INTO refused_changes (hash, doc_id, rule, reason, writes, refused_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (hash) DO UPDATE SET doc_id = excluded.doc_id, rule = excluded.rule,
                 reason = excluded.reason, writes = excluded.writes, refused_at = excluded.refused_at",
                &[
                    hash.to_string().into(),
                    id.to_string().into(),
                    v.rule().into(),
                    v.to_string().into(),
                    writes.into(),
                    now.as_str().into(),
                ],
            )?;
        }
        let n = dropped.len();
        self.put_back(id.clone(), loaded);
        Ok(n)
    }

    /// Replaces a document's stored form with `loaded` as it is now (a fresh snapshot, no chunks) and
    /// re-projects it, in one transaction.
    fn rewrite(&mut self, id: &DocId, loaded: &mut Loaded) -> Result<()> {
        let key = id.to_string();
        let now = chrono::Utc::now().to_rfc3339();
        let version = transaction(self.db(), true, |tx| {
            super::replace_snapshot(tx, &key, &loaded.doc, &now)?;
            projection::project(tx, id, &loaded.doc)?;
            tx.one(
                "SELECT version FROM documents WHERE doc_id = ?1",
                &[key.as_str().into()],
            )?
            .int(0)
        })?;
        loaded.saved = loaded.doc.get_heads();
        loaded.stored = true;
        loaded.version = version;
        Ok(())
    }
}

/// Makes a change's writes again on top of `doc`, as a new change with the original's time.
fn replay(doc: &mut Automerge, info: &ChangeInfo, time_ms: i64) -> Result<()> {
    use automerge::transaction::{CommitOptions, Transactable};
    let mut tx = doc.transaction();
    for w in &info.writes {
        let table = doc::table(&tx, &w.table)?;
        let key = format!("{}.{}", w.record, w.field);
        match &w.value {
            Value::Str(s) => tx.put(&table, key, s.as_str())?,
            Value::Int(i) => tx.put(&table, key, *i)?,
            Value::Bool(b) => tx.put(&table, key, *b)?,
            Value::Deleted => tx.delete(&table, key)?,
            Value::Other(_) => {}
        }
    }
    tx.commit_with(CommitOptions::default().with_time(time_ms));
    Ok(())
}

fn hash_bytes(hex_hash: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_hash, &mut out).ok().map(|()| out)
}
