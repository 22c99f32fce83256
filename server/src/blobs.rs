//! Where attachment bytes live on the server, behind [`BlobStore`], and the staging area of
//! resumable uploads.
//!
//! Decision (2026-11-30): blobs are files in the data directory by default (`blobs/aa/<sha256>`,
//! fanned out by the hash's first two digits so no directory holds millions of entries), or objects
//! in an S3-compatible bucket ([`s3::S3BlobStore`], `serve --blob-store s3`), or rows of the shared
//! database on PostgreSQL ([`db::DbBlobStore`], that engine's default: nodes keep nothing of their
//! own); nothing above this module knows where bytes are. Uploads are staged ([`staging`]) until the
//! whole file arrived and hashed right; only then is it handed to the store.
//!
//! The trait is synchronous: handlers call it on a blocking thread, as they call the databases.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use sitesync_core::attachments::BlobHash;

use crate::error::{Error, Result};

pub mod db;
pub mod s3;
pub mod staging;

pub use staging::{Staging, StagingLock};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_blob_reads_back_by_range_and_storing_it_again_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(&dir.path().join("blobs")).unwrap();
        let staging = dir.path().join("blobs/staging");
        std::fs::create_dir_all(&staging).unwrap();
        let bytes = b"a photo of the rebar".to_vec();
        let hash = BlobHash::of(&bytes);
        assert_eq!(store.size(&hash).unwrap(), None);
        std::fs::write(staging.join("one"), &bytes).unwrap();
        store.put_file(&hash, &staging.join("one")).unwrap();
        assert!(!staging.join("one").exists(), "the staged file is the store's now");
        assert_eq!(store.size(&hash).unwrap(), Some(bytes.len() as u64));
        assert_eq!(store.read_range(&hash, 2, 5).unwrap(), b"photo");
        std::fs::write(staging.join("two"), &bytes).unwrap();
        store.put_file(&hash, &staging.join("two")).unwrap();
        assert_eq!(store.read_range(&hash, 0, 1 << 20).unwrap(), bytes);
    }
}
