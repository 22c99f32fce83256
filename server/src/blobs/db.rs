//! Blobs in the shared PostgreSQL database: the default there, so that nodes are stateless (any node
//! serves any blob; a node's disk holds only what an upload in progress is put together in).
//!
//! A blob is `blob_pieces` rows of [`PIECE`] bytes (the last shorter) and, written in the same
//! transaction after them, its `blob_objects` row with the size: a blob with that row is whole and
//! verified, one without it is not there. Photos of a few MB stay well inside PostgreSQL's 1 GB
//! field limit and TOAST compresses nothing of JPEG, so pieces are stored as they are; a range read
//! fetches only the pieces it overlaps.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use sitesync_core::attachments::BlobHash;
use sitesync_core::store::sql::transaction;

use super::BlobStore;
use crate::error::{Error, Result};
use crate::storage::{Database, with};

/// Bytes per stored piece.
pub const PIECE: usize = 1024 * 1024;

/// Blobs and their thumbnails in the database's `blob_objects`, `blob_pieces` and
/// `blob_thumbnails` tables (the credential schema, beside `blob_claims`).
pub struct DbBlobStore {
    db: Arc<dyn Database>,
}

impl std::fmt::Debug for DbBlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DbBlobStore")
    }
}

impl DbBlobStore {
    /// The store in `db` (migrated: PostgreSQL step 8).
    pub fn new(db: Arc<dyn Database>) -> DbBlobStore {
        DbBlobStore { db }
    }
}

impl BlobStore for DbBlobStore {
    fn size(&self, hash: &BlobHash) -> Result<Option<u64>> {
        let row = with(&*self.db, |sql| {
            sql.first(
                "SELECT size_bytes FROM blob_objects WHERE sha256 = ?1",
                &[hash.as_str().into()],
            )
        })?;
        Ok(match row {
            Some(r) => Some(u64::try_from(r.int(0)?).unwrap_or(0)),
            None => None,
        })
    }

    fn put_file(&self, hash: &BlobHash, staged: &Path) -> Result<()> {
        let io = |e: std::io::Error| Error::Internal(format!("{}: {e}", staged.display()));
        if self.size(hash)?.is_none() {
            let mut file = std::fs::File::open(staged).map_err(io)?;
            with(&*self.db, |sql| {
                transaction(sql, true, |sql| {
                    let mut at = 0i64;
                    let mut piece = Vec::with_capacity(PIECE);
                    loop {
                        piece.clear();
                        (&mut file)
                            .take(PIECE as u64)
                            .read_to_end(&mut piece)
                            .map_err(|e| sitesync_core::Error::Database(format!("{}: {e}", staged.display())))?;
                        if piece.is_empty() && at > 0 {
                            break;
                        }
                        // Another node storing the same blob at the same moment wrote the same bytes.
                        sql.exec(
                            "INSERT INTO blob_pieces (sha256, at_bytes, bytes) VALUES (?1, ?2, ?3)
                             ON CONFLICT (sha256, at_bytes) DO NOTHING",
                            &[hash.as_str().into(), at.into(), piece.as_slice().into()],
                        )?;
                        at += piece.len() as i64;
                        if piece.len() < PIECE {
                            break;
                        }
                    }
                    sql.exec(
                        "INSERT INTO blob_objects (sha256, size_bytes) VALUES (?1, ?2) ON CONFLICT (sha256) DO NOTHING",
                        &[hash.as_str().into(), at.into()],
                    )?;
                    Ok(())
                })
            })?;
        }
        std::fs::remove_file(staged).map_err(io)
    }

    fn read_range(&self, hash: &BlobHash, offset: u64, len: usize) -> Result<Vec<u8>> {
        let (from, to) = (
            i64::try_from(offset).unwrap_or(i64::MAX),
            i64::try_from(offset.saturating_add(len as u64)).unwrap_or(i64::MAX),
        );
        let rows = with(&*self.db, |sql| {
            sql.query(
                "SELECT at_bytes, bytes FROM blob_pieces WHERE sha256 = ?1 AND at_bytes > ?2 AND at_bytes < ?3
                 ORDER BY at_bytes",
                &[hash.as_str().into(), (from - PIECE as i64).into(), to.into()],
            )
        })?;
        let mut out = Vec::with_capacity(len.min(PIECE * 2));
        for row in rows {
            let (at, bytes) = (row.int(0)?, row.bytes(1)?);
            let start = (from - at).clamp(0, bytes.len() as i64) as usize;
            let end = (to - at).clamp(0, bytes.len() as i64) as usize;
            out.extend_from_slice(&bytes[start..end]);
        }
        Ok(out)
    }

    fn thumbnail(&self, hash: &BlobHash) -> Result<Option<Vec<u8>>> {
        let row = with(&*self.db, |sql| {
            sql.first(
                "SELECT jpeg FROM blob_thumbnails WHERE sha256 = ?1",
                &[hash.as_str().into()],
            )
        })?;
        Ok(match row {
            Some(r) => Some(r.bytes(0)?),
            None => None,
        })
    }

    fn put_thumbnail(&self, hash: &BlobHash, jpeg: &[u8]) -> Result<()> {
        with(&*self.db, |sql| {
            sql.exec(
                "INSERT INTO blob_thumbnails (sha256, jpeg) VALUES (?1, ?2) ON CONFLICT (sha256) DO NOTHING",
                &[hash.as_str().into(), jpeg.into()],
            )
        })?;
        Ok(())
    }
}
