//! Where attachment bytes live on the server, behind [`BlobStore`], and the staging area of
//! resumable uploads.
//!
//! Decision (2026-11-30): blobs are files in the data directory by default (`blobs/aa/<sha256>`,
//! fanned out by the hash's first two digits so no directory holds millions of entries), or objects
//! in an S3-compatible bucket ([`s3::S3BlobStore`], `serve --blob-store s3`); nothing above this
//! module knows where bytes are. Uploads are staged on the node's own disk
//! (`blobs/staging/<device>-<sha256>`) until the whole file arrived and hashed right; only then is
//! it handed to the store. A node of a PostgreSQL cluster therefore resumes only the uploads it
//! staged itself (a client sent to another node starts that file again).
//!
//! The trait is synchronous: handlers call it on a blocking thread, as they call the databases.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use sitesync_core::attachments::BlobHash;

use crate::error::{Error, Result};

pub mod s3;

/// Content-addressed storage of verified blobs and their cached thumbnails.
pub trait BlobStore: Send + Sync + std::fmt::Debug {
    /// The size of a stored blob, `None` when it is not stored.
    fn size(&self, hash: &BlobHash) -> Result<Option<u64>>;

    /// Takes in a staged file whose bytes hash to `hash` (the caller checked); the file is moved or
    /// copied and no longer the caller's. Storing a blob already stored changes nothing.
    fn put_file(&self, hash: &BlobHash, staged: &Path) -> Result<()>;

    /// Up to `len` bytes of a stored blob from `offset` (fewer at its end).
    fn read_range(&self, hash: &BlobHash, offset: u64, len: usize) -> Result<Vec<u8>>;

    /// The cached thumbnail of a blob, if one was made.
    fn thumbnail(&self, hash: &BlobHash) -> Result<Option<Vec<u8>>>;

    /// Caches a blob's thumbnail.
    fn put_thumbnail(&self, hash: &BlobHash, jpeg: &[u8]) -> Result<()>;
}

fn io(what: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::Internal(format!("{}: {e}", what.display()))
}

/// Blobs as files under a directory (the default: `<data>/blobs`).
#[derive(Debug)]
pub struct FsBlobStore {
    /// The directory; `staging/` inside it is the upload area, not blobs.
    dir: PathBuf,
}

impl FsBlobStore {
    /// The store in `dir`, created (0700) if missing.
    pub fn open(dir: &Path) -> Result<FsBlobStore> {
        crate::files::private_dir(dir)?;
        Ok(FsBlobStore { dir: dir.to_path_buf() })
    }

    fn path(&self, hash: &BlobHash, suffix: &str) -> PathBuf {
        self.dir.join(&hash.as_str()[..2]).join(format!("{hash}{suffix}"))
    }
}

impl BlobStore for FsBlobStore {
    fn size(&self, hash: &BlobHash) -> Result<Option<u64>> {
        match std::fs::metadata(self.path(hash, "")) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Internal(format!("blob {hash}: {e}"))),
        }
    }

    fn put_file(&self, hash: &BlobHash, staged: &Path) -> Result<()> {
        let target = self.path(hash, "");
        if target.exists() {
            std::fs::remove_file(staged).map_err(io(staged))?;
            return Ok(());
        }
        let parent = target.parent().unwrap_or(&self.dir);
        crate::files::private_dir(parent)?;
        // Same file system (staging is inside the directory): the rename is atomic, so a blob
        // file is always whole.
        std::fs::rename(staged, &target).map_err(io(&target))?;
        std::fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(io(parent))
    }

    fn read_range(&self, hash: &BlobHash, offset: u64, len: usize) -> Result<Vec<u8>> {
        let path = self.path(hash, "");
        let mut f = std::fs::File::open(&path).map_err(io(&path))?;
        f.seek(SeekFrom::Start(offset)).map_err(io(&path))?;
        let mut out = Vec::with_capacity(len);
        f.take(len as u64).read_to_end(&mut out).map_err(io(&path))?;
        Ok(out)
    }

    fn thumbnail(&self, hash: &BlobHash) -> Result<Option<Vec<u8>>> {
        match std::fs::read(self.path(hash, ".thumb.jpg")) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Internal(format!("thumbnail {hash}: {e}"))),
        }
    }

    fn put_thumbnail(&self, hash: &BlobHash, jpeg: &[u8]) -> Result<()> {
        let target = self.path(hash, ".thumb.jpg");
        let part = self.path(hash, ".thumb.part");
        if let Some(parent) = target.parent() {
            crate::files::private_dir(parent)?;
        }
        std::fs::write(&part, jpeg).map_err(io(&part))?;
        std::fs::rename(&part, &target).map_err(io(&target))
    }
}

/// The upload staging area: one file per (device, blob) that grows as bytes arrive.
#[derive(Debug, Clone)]
pub struct Staging {
    /// `<data>/blobs/staging`.
    dir: PathBuf,
    /// One lock per staged file, held by the request appending to it and taken by whoever asks its
    /// offset: a client that resumes right after its connection died must not append beside the
    /// request still writing what arrived, nor be told an offset that request has not reached.
    locks: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<PathBuf, std::sync::Arc<tokio::sync::Mutex<()>>>>>,
}

impl Staging {
    /// The staging area in `dir`, created (0700) if missing.
    pub fn open(dir: &Path) -> Result<Staging> {
        crate::files::private_dir(dir)?;
        Ok(Staging {
            dir: dir.to_path_buf(),
            locks: Default::default(),
        })
    }

    /// Takes the lock of `device`'s upload of `hash`, waiting at most `wait`; `None` when another
    /// request still holds it after that.
    pub async fn lock(&self, device: &str, hash: &BlobHash, wait: std::time::Duration) -> Option<StagingLock> {
        let path = self.path(device, hash);
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            locks.entry(path.clone()).or_default().clone()
        };
        let guard = tokio::time::timeout(wait, lock.lock_owned()).await.ok()?;
        Some(StagingLock {
            guard: Some(guard),
            path,
            locks: self.locks.clone(),
        })
    }

    /// The staged file of `device`'s upload of `hash`.
    pub fn path(&self, device: &str, hash: &BlobHash) -> PathBuf {
        // Device ids are `d-<hex>` (checked at enrolment); anything else is kept out of the path.
        let device: String = device
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        self.dir.join(format!("{device}-{hash}"))
    }

    /// How many bytes of the upload arrived (0 when none).
    pub fn offset(&self, device: &str, hash: &BlobHash) -> Result<u64> {
        match std::fs::metadata(self.path(device, hash)) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(Error::Internal(format!("staging: {e}"))),
        }
    }

    /// The SHA-256 of a staged file.
    pub fn hash(&self, device: &str, hash: &BlobHash) -> Result<BlobHash> {
        use sha2::Digest;
        let path = self.path(device, hash);
        let mut f = std::fs::File::open(&path).map_err(io(&path))?;
        let mut digest = sha2::Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = f.read(&mut buf).map_err(io(&path))?;
            if n == 0 {
                break;
            }
            digest.update(&buf[..n]);
        }
        BlobHash::parse(&hex::encode(digest.finalize())).map_err(|e| Error::Internal(e.to_string()))
    }

    /// Deletes every staged upload not written to for longer than `max_age` (by its modification
    /// time, which each arriving piece moves) and not locked by a request; returns how many. A
    /// device that comes back for one later starts that file again.
    pub fn sweep(&self, max_age: std::time::Duration) -> Result<usize> {
        let now = std::time::SystemTime::now();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(Error::Internal(format!("staging: {e}"))),
        };
        let mut removed = 0;
        for entry in entries {
            let entry = entry.map_err(|e| Error::Internal(format!("staging: {e}")))?;
            let path = entry.path();
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
            let Some(_held) = self.try_lock(&path) else { continue };
            match std::fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::Internal(format!("staging: {e}"))),
            }
        }
        Ok(removed)
    }

    /// The lock of a staged file if nobody holds it now.
    fn try_lock(&self, path: &Path) -> Option<StagingLock> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            locks.entry(path.to_path_buf()).or_default().clone()
        };
        let guard = lock.try_lock_owned().ok();
        let held = StagingLock {
            guard,
            path: path.to_path_buf(),
            locks: self.locks.clone(),
        };
        // Not taken: dropping `held` forgets the entry if it was only just made.
        held.guard.is_some().then_some(held)
    }

    /// Drops a staged upload.
    pub fn discard(&self, device: &str, hash: &BlobHash) -> Result<()> {
        match std::fs::remove_file(self.path(device, hash)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::Internal(format!("staging: {e}"))),
        }
    }
}

/// The held lock of one staged upload; dropping it releases it (and forgets it when nobody waits).
#[derive(Debug)]
pub struct StagingLock {
    /// The held lock (taken out on drop, before the entry is looked at).
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
    /// The staged file, the lock's key.
    path: PathBuf,
    /// The staging area's locks, to forget this one.
    locks: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<PathBuf, std::sync::Arc<tokio::sync::Mutex<()>>>>>,
}

impl Drop for StagingLock {
    fn drop(&mut self) {
        self.guard.take();
        let mut locks = self.locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Only the map holds it: nobody waits, and the next request makes a new one.
        if locks
            .get(&self.path)
            .is_some_and(|l| std::sync::Arc::strong_count(l) == 1)
        {
            locks.remove(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_blob_reads_back_by_range_and_storing_it_again_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(&dir.path().join("blobs")).unwrap();
        let staging = Staging::open(&dir.path().join("blobs/staging")).unwrap();
        let bytes = b"a photo of the rebar".to_vec();
        let hash = BlobHash::of(&bytes);
        assert_eq!(store.size(&hash).unwrap(), None);
        std::fs::write(staging.path("d-1", &hash), &bytes).unwrap();
        assert_eq!(staging.hash("d-1", &hash).unwrap(), hash);
        store.put_file(&hash, &staging.path("d-1", &hash)).unwrap();
        assert_eq!(staging.offset("d-1", &hash).unwrap(), 0);
        assert_eq!(store.size(&hash).unwrap(), Some(bytes.len() as u64));
        assert_eq!(store.read_range(&hash, 2, 5).unwrap(), b"photo");
        std::fs::write(staging.path("d-2", &hash), &bytes).unwrap();
        store.put_file(&hash, &staging.path("d-2", &hash)).unwrap();
        assert_eq!(store.read_range(&hash, 0, 1 << 20).unwrap(), bytes);
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
            std::fs::write(staging.path("d-1", h), b"partial").unwrap();
        }
        back_date(&staging.path("d-1", &old), week + std::time::Duration::from_secs(60));
        back_date(
            &staging.path("d-1", &fresh),
            week - std::time::Duration::from_secs(3600),
        );
        back_date(&staging.path("d-1", &held), 2 * week);
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
