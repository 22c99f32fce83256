//! The staging area of resumable uploads: the bytes of one device's upload of one blob, growing as
//! they arrive, until the whole file is there and hashes to its address.
//!
//! Decision (2026-11-30): on SQLite (one process serves a data directory) an upload is a file in
//! `<data>/blobs/staging`; on PostgreSQL it is rows in the shared database (`blob_uploads`, one per
//! upload with its size so far, and `blob_upload_pieces`), so a phone whose connection died resumes
//! on whichever node its next request reaches. Either way a piece is appended only at the offset
//! the upload has reached, a compare-and-set: two requests on two nodes can never interleave their
//! bytes, the later one is told where the upload is.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use sha2::Digest;
use sitesync_core::attachments::BlobHash;
use sitesync_core::store::sql::{Sql, transaction};

use super::BlobStore;
use crate::error::{Error, Result};
use crate::storage::{Database, with};

/// Per-upload locks of this process, by [`key`].
type Locks = Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>;

/// Where uploads are staged.
#[derive(Clone)]
enum Place {
    /// One file per upload in this directory.
    Dir(PathBuf),
    /// Rows in the shared database; `scratch` is this node's directory where a whole upload is put
    /// together to be hashed and handed to the blob store.
    Database { db: Arc<dyn Database>, scratch: PathBuf },
}

impl std::fmt::Debug for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::Dir(dir) => write!(f, "files in {}", dir.display()),
            Place::Database { .. } => f.write_str("the shared database"),
        }
    }
}

/// The uploads in progress.
#[derive(Debug, Clone)]
pub struct Staging {
    place: Place,
    /// One lock per upload, held by the request appending to it and taken by whoever asks its
    /// offset: a client that resumes right after its connection died must not append beside the
    /// request still writing what arrived, nor be told an offset that request has not reached.
    /// (Across nodes the compare-and-set of [`Staging::append`] keeps the bytes in order.)
    locks: Locks,
}

/// The name of `device`'s upload of `hash`: a file name and a lock's key. Device ids are
/// `d-<hex>` (checked at enrolment); anything else is kept out of it.
fn key(device: &str, hash: &BlobHash) -> String {
    let device: String = device
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    format!("{device}-{hash}")
}

fn io(what: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::Internal(format!("staging {}: {e}", what.display()))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Staging {
    /// Uploads staged as files in `dir`, created (0700) if missing.
    pub fn open(dir: &Path) -> Result<Staging> {
        crate::files::private_dir(dir)?;
        Ok(Staging {
            place: Place::Dir(dir.to_path_buf()),
            locks: Locks::default(),
        })
    }

    /// Uploads staged in `db` (PostgreSQL, shared by every node), put together in `scratch`
    /// (created, 0700) once whole.
    pub fn in_database(db: Arc<dyn Database>, scratch: &Path) -> Result<Staging> {
        crate::files::private_dir(scratch)?;
        Ok(Staging {
            place: Place::Database {
                db,
                scratch: scratch.to_path_buf(),
            },
            locks: Locks::default(),
        })
    }

    /// Takes the lock of `device`'s upload of `hash`, waiting at most `wait`; `None` when another
    /// request still holds it after that.
    pub async fn lock(&self, device: &str, hash: &BlobHash, wait: std::time::Duration) -> Option<StagingLock> {
        let key = key(device, hash);
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            locks.entry(key.clone()).or_default().clone()
        };
        let guard = tokio::time::timeout(wait, lock.lock_owned()).await.ok()?;
        Some(StagingLock {
            guard: Some(guard),
            key,
            locks: self.locks.clone(),
        })
    }

    /// The file of `device`'s upload of `hash`, when uploads are staged as files.
    pub fn path(&self, device: &str, hash: &BlobHash) -> Option<PathBuf> {
        match &self.place {
            Place::Dir(dir) => Some(dir.join(key(device, hash))),
            Place::Database { .. } => None,
        }
    }

    /// How many bytes of the upload arrived (0 when none).
    pub fn offset(&self, device: &str, hash: &BlobHash) -> Result<u64> {
        match &self.place {
            Place::Dir(dir) => match std::fs::metadata(dir.join(key(device, hash))) {
                Ok(m) => Ok(m.len()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
                Err(e) => Err(Error::Internal(format!("staging: {e}"))),
            },
            Place::Database { db, .. } => Ok(with(&**db, |sql| db_offset(sql, device, hash))?),
        }
    }

    /// Appends `bytes` to the upload if it is `at` bytes long now (the bytes are durable when this
    /// returns); returns its new length. [`Error::Conflict`] when it is not at `at`: another
    /// request (on this node or another) moved it.
    pub fn append(&self, device: &str, hash: &BlobHash, at: u64, bytes: &[u8]) -> Result<u64> {
        let end = at + bytes.len() as u64;
        match &self.place {
            Place::Dir(dir) => {
                let path = dir.join(key(device, hash));
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(io(&path))?;
                let len = f.metadata().map_err(io(&path))?.len();
                if len != at {
                    return Err(moved(len, at));
                }
                f.write_all(bytes).map_err(io(&path))?;
                f.sync_data().map_err(io(&path))?;
                Ok(end)
            }
            Place::Database { db, .. } => {
                let (to, len) = (i64::try_from(end).unwrap_or(i64::MAX), bytes.len() as i64);
                let appended = with(&**db, |sql| {
                    transaction(sql, true, |sql| {
                        sql.exec(
                            "INSERT INTO blob_uploads (device_id, sha256, size_bytes, touched_ms)
                             VALUES (?1, ?2, 0, ?3) ON CONFLICT (device_id, sha256) DO NOTHING",
                            &[device.into(), hash.as_str().into(), now_ms().into()],
                        )?;
                        // The compare-and-set: only an upload still `at` bytes long grows.
                        let grown = sql.exec(
                            "UPDATE blob_uploads SET size_bytes = ?3, touched_ms = ?4
                             WHERE device_id = ?1 AND sha256 = ?2 AND size_bytes = ?5",
                            &[
                                device.into(),
                                hash.as_str().into(),
                                to.into(),
                                now_ms().into(),
                                (to - len).into(),
                            ],
                        )?;
                        if grown == 0 {
                            return Ok(Some(db_offset(sql, device, hash)?));
                        }
                        sql.exec(
                            "INSERT INTO blob_upload_pieces (device_id, sha256, at_bytes, bytes) VALUES (?1, ?2, ?3, ?4)",
                            &[device.into(), hash.as_str().into(), (to - len).into(), bytes.into()],
                        )?;
                        Ok(None)
                    })
                })?;
                match appended {
                    None => Ok(end),
                    Some(len) => Err(moved(len, at)),
                }
            }
        }
    }

    /// Checks that the whole upload hashes to `hash` and hands it to `blobs`; the staged bytes are
    /// gone either way. [`Error::HashMismatch`] when they hash to something else (nothing stored).
    pub fn store(&self, blobs: &dyn BlobStore, device: &str, hash: &BlobHash) -> Result<()> {
        let file = match &self.place {
            Place::Dir(dir) => dir.join(key(device, hash)),
            Place::Database { db, scratch } => {
                let file = scratch.join(key(device, hash));
                let assembled = assemble(&**db, device, hash, &file);
                if let Err(e) = assembled {
                    let _ = std::fs::remove_file(&file);
                    return Err(e);
                }
                file
            }
        };
        let actual = hash_file(&file);
        let kept = match actual {
            Ok(actual) if &actual == hash => blobs.put_file(hash, &file),
            Ok(actual) => Err(Error::HashMismatch {
                expected: hash.to_string(),
                actual: actual.to_string(),
            }),
            Err(e) => Err(e),
        };
        if kept.is_err() {
            let _ = std::fs::remove_file(&file);
        }
        // Stored or refused, the upload is over (a file store moved the file away already).
        self.discard(device, hash)?;
        kept
    }

    /// Deletes every staged upload not written to for longer than `max_age` and not locked by a
    /// request on this node; returns how many. A device that comes back for one later starts that
    /// file again.
    pub fn sweep(&self, max_age: std::time::Duration) -> Result<usize> {
        match &self.place {
            Place::Dir(dir) => self.sweep_dir(dir, max_age),
            Place::Database { db, .. } => {
                let before = now_ms().saturating_sub(i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX));
                let idle = with(&**db, |sql| {
                    let rows = sql.query(
                        "SELECT device_id, sha256 FROM blob_uploads WHERE touched_ms < ?1",
                        &[before.into()],
                    )?;
                    rows.iter()
                        .map(|r| Ok((r.text(0)?, r.text(1)?)))
                        .collect::<sitesync_core::Result<Vec<_>>>()
                })?;
                let mut removed = 0;
                for (device, sha256) in idle {
                    let Ok(hash) = BlobHash::parse(&sha256) else { continue };
                    let Some(_held) = self.try_lock(&key(&device, &hash)) else {
                        continue;
                    };
                    // Still idle now that it is held here (a request on another node may have
                    // touched it since).
                    let gone = with(&**db, |sql| {
                        transaction(sql, true, |sql| {
                            let n = sql.exec(
                                "DELETE FROM blob_uploads WHERE device_id = ?1 AND sha256 = ?2 AND touched_ms < ?3",
                                &[device.as_str().into(), sha256.as_str().into(), before.into()],
                            )?;
                            if n > 0 {
                                sql.exec(
                                    "DELETE FROM blob_upload_pieces WHERE device_id = ?1 AND sha256 = ?2",
                                    &[device.as_str().into(), sha256.as_str().into()],
                                )?;
                            }
                            Ok(n)
                        })
                    })?;
                    removed += gone as usize;
                }
                Ok(removed)
            }
        }
    }

    fn sweep_dir(&self, dir: &Path, max_age: std::time::Duration) -> Result<usize> {
        let now = std::time::SystemTime::now();
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(Error::Internal(format!("staging: {e}"))),
        };
        let mut removed = 0;
        for entry in entries {
            let entry = entry.map_err(|e| Error::Internal(format!("staging: {e}")))?;
            let Ok(meta) = entry.metadata() else { continue };
            let idle = meta
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .unwrap_or_default();
            if !meta.is_file() || idle <= max_age {
                continue;
            }
            // A request holding (or waiting for) this upload keeps it; held, nobody else starts one.
            let Some(_held) = self.try_lock(&entry.file_name().to_string_lossy()) else {
                continue;
            };
            match std::fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::Internal(format!("staging: {e}"))),
            }
        }
        Ok(removed)
    }

    /// The lock of an upload if nobody holds it now.
    fn try_lock(&self, key: &str) -> Option<StagingLock> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            locks.entry(key.to_string()).or_default().clone()
        };
        let guard = lock.try_lock_owned().ok();
        let held = StagingLock {
            guard,
            key: key.to_string(),
            locks: self.locks.clone(),
        };
        // Not taken: dropping `held` forgets the entry if it was only just made.
        held.guard.is_some().then_some(held)
    }

    /// Drops a staged upload.
    pub fn discard(&self, device: &str, hash: &BlobHash) -> Result<()> {
        match &self.place {
            Place::Dir(dir) => match std::fs::remove_file(dir.join(key(device, hash))) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(Error::Internal(format!("staging: {e}"))),
            },
            Place::Database { db, .. } => Ok(with(&**db, |sql| {
                transaction(sql, true, |sql| {
                    for table in ["blob_upload_pieces", "blob_uploads"] {
                        sql.exec(
                            &format!("DELETE FROM {table} WHERE device_id = ?1 AND sha256 = ?2"),
                            &[device.into(), hash.as_str().into()],
                        )?;
                    }
                    Ok(())
                })
            })?),
        }
    }
}

/// The answer to an append at `at` when the upload is `len` bytes long.
fn moved(len: u64, at: u64) -> Error {
    Error::Conflict(format!("the upload is at byte {len}, not {at}; continue from there"))
}

fn db_offset(sql: &dyn Sql, device: &str, hash: &BlobHash) -> sitesync_core::Result<u64> {
    let row = sql.first(
        "SELECT size_bytes FROM blob_uploads WHERE device_id = ?1 AND sha256 = ?2",
        &[device.into(), hash.as_str().into()],
    )?;
    Ok(match row {
        Some(r) => u64::try_from(r.int(0)?).unwrap_or(0),
        None => 0,
    })
}

/// Writes the pieces of an upload staged in `db`, in order, to `file` (synced).
fn assemble(db: &dyn Database, device: &str, hash: &BlobHash, file: &Path) -> Result<()> {
    let mut out = std::fs::File::create(file).map_err(io(file))?;
    let mut at = 0i64;
    loop {
        // A few pieces per query: the upload may be larger than memory should hold at once.
        let rows = with(db, |sql| {
            sql.query(
                "SELECT at_bytes, bytes FROM blob_upload_pieces WHERE device_id = ?1 AND sha256 = ?2 AND at_bytes >= ?3
                 ORDER BY at_bytes LIMIT 8",
                &[device.into(), hash.as_str().into(), at.into()],
            )
        })?;
        if rows.is_empty() {
            break;
        }
        for row in rows {
            let (from, bytes) = (row.int(0)?, row.bytes(1)?);
            if from != at {
                return Err(Error::Internal(format!(
                    "staged upload {hash}: a piece at byte {from}, expected {at}"
                )));
            }
            out.write_all(&bytes).map_err(io(file))?;
            at += bytes.len() as i64;
        }
    }
    out.sync_all().map_err(io(file))
}

/// The SHA-256 of a file.
fn hash_file(path: &Path) -> Result<BlobHash> {
    let mut f = std::fs::File::open(path).map_err(io(path))?;
    let mut digest = sha2::Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        digest.update(&buf[..n]);
    }
    BlobHash::parse(&hex::encode(digest.finalize())).map_err(|e| Error::Internal(e.to_string()))
}

/// The held lock of one staged upload; dropping it releases it (and forgets it when nobody waits).
#[derive(Debug)]
pub struct StagingLock {
    /// The held lock (taken out on drop, before the entry is looked at).
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
    /// The upload's [`key`].
    key: String,
    locks: Locks,
}

impl Drop for StagingLock {
    fn drop(&mut self) {
        self.guard.take();
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        // Only the map holds it: nobody waits, and the next request makes a new one.
        if locks.get(&self.key).is_some_and(|l| Arc::strong_count(l) == 1) {
            locks.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_append_only_where_the_upload_ends_and_a_wrong_hash_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = super::super::FsBlobStore::open(&dir.path().join("blobs")).unwrap();
        let staging = Staging::open(&dir.path().join("blobs/staging")).unwrap();
        let bytes = b"a photo of the rebar".to_vec();
        let hash = BlobHash::of(&bytes);
        assert_eq!(staging.append("d-1", &hash, 0, &bytes[..8]).unwrap(), 8);
        assert!(matches!(
            staging.append("d-1", &hash, 4, &bytes[4..]),
            Err(Error::Conflict(_))
        ));
        assert_eq!(
            staging.offset("d-1", &hash).unwrap(),
            8,
            "a refused piece changes nothing"
        );
        assert_eq!(
            staging.append("d-1", &hash, 8, &bytes[8..]).unwrap(),
            bytes.len() as u64
        );
        staging.store(&store, "d-1", &hash).unwrap();
        assert_eq!(store.read_range(&hash, 0, 100).unwrap(), bytes);
        assert_eq!(staging.offset("d-1", &hash).unwrap(), 0);

        let other = BlobHash::of(b"something else");
        staging.append("d-1", &other, 0, &bytes).unwrap();
        assert!(matches!(
            staging.store(&store, "d-1", &other),
            Err(Error::HashMismatch { .. })
        ));
        assert_eq!(store.size(&other).unwrap(), None);
        assert_eq!(
            staging.offset("d-1", &other).unwrap(),
            0,
            "a refused upload starts again"
        );
    }

    #[tokio::test]
    async fn the_sweep_deletes_staged_uploads_idle_past_the_age_unless_a_request_holds_them() {
        let dir = tempfile::tempdir().unwrap();
        let staging = Staging::open(&dir.path().join("staging")).unwrap();
        let week = std::time::Duration::from_secs(7 * 24 * 3600);
        let back_date = |path: &Path, age: std::time::Duration| {
            let f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
            f.set_modified(std::time::SystemTime::now() - age).unwrap();
        };
        let (old, fresh, held) = (BlobHash::of(b"old"), BlobHash::of(b"fresh"), BlobHash::of(b"held"));
        for h in [&old, &fresh, &held] {
            staging.append("d-1", h, 0, b"partial").unwrap();
        }
        let path = |h: &BlobHash| staging.path("d-1", h).unwrap();
        back_date(&path(&old), week + std::time::Duration::from_secs(60));
        back_date(&path(&fresh), week - std::time::Duration::from_secs(3600));
        back_date(&path(&held), 2 * week);
        let lock = staging
            .lock("d-1", &held, std::time::Duration::from_secs(1))
            .await
            .unwrap();

        assert_eq!(staging.sweep(week).unwrap(), 1);
        assert_eq!(staging.offset("d-1", &old).unwrap(), 0, "idle over a week: deleted");
        assert_eq!(staging.offset("d-1", &fresh).unwrap(), 7, "idle under a week: kept");
        assert_eq!(staging.offset("d-1", &held).unwrap(), 7, "a request holds it: kept");
        drop(lock);
        assert_eq!(staging.sweep(week).unwrap(), 1);
        assert_eq!(staging.offset("d-1", &held).unwrap(), 0);
        assert!(
            staging.locks.lock().unwrap().is_empty(),
            "the sweep leaves no locks behind"
        );
    }
}
