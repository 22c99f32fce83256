//! Keeping a store healthy: projections rebuilt from the documents alone, compaction, and a full
//! read of every document.

use super::sql::{Dialect, transaction};
use super::{Store, load_from_disk, projection, write_snapshot};
use crate::error::{Error, Result};
use crate::ids::DocId;

impl Store {
    /// Leaves checkpoints of the write-ahead log to another connection (SQLite only): commits on
    /// this one then never copy the log into the database themselves, so none waits for that.
    pub fn stop_auto_checkpoint(&self) -> Result<()> {
        self.db().batch("PRAGMA wal_autocheckpoint = 0")
    }

    /// Rebuilds every projection from the documents alone, in one transaction; returns the number of
    /// documents read. The result equals the incrementally maintained projections.
    pub fn reindex(&mut self) -> Result<usize> {
        let ids = self.doc_ids()?;
        let mut docs = Vec::with_capacity(ids.len());
        for id in &ids {
            self.cache.remove(id);
            let (doc, _) = load_from_disk(self.db(), &id.to_string())?.ok_or_else(|| Error::CorruptDocument {
                doc: id.to_string(),
                reason: "vanished during reindex".into(),
            })?;
            docs.push(doc);
        }
        transaction(self.db(), true, |tx| {
            for table in projection::TABLES {
                tx.exec(&format!("DELETE FROM {table}"), &[])?;
            }
            for (id, doc) in ids.iter().zip(&docs) {
                projection::project(tx, id, doc)?;
            }
            Ok(())
        })?;
        Ok(ids.len())
    }

    /// Projects again the documents `sql` selects (one `doc_id` column), in one transaction.
    pub(super) fn reproject_where(&mut self, sql: &str) -> Result<()> {
        let ids = self
            .db()
            .query(sql, &[])?
            .iter()
            .map(|r| r.text(0)?.parse())
            .collect::<Result<Vec<DocId>>>()?;
        transaction(self.db(), true, |tx| {
            for id in &ids {
                if let Some((doc, _)) = load_from_disk(tx, &id.to_string())? {
                    projection::project(tx, id, &doc)?;
                }
            }
            Ok(())
        })
    }

    /// Every projected row as text, table by table, for comparing two projections:
    /// [`projection::dump`] on this store.
    pub fn projection_dump(&self) -> Result<Vec<String>> {
        projection::dump(self.db())
    }

    /// Folds every document's chunks into a fresh snapshot and reclaims the space.
    pub fn compact(&mut self) -> Result<usize> {
        let ids = self
            .db()
            .query("SELECT doc_id FROM documents WHERE chunk_count > 0", &[])?
            .iter()
            .map(|r| r.text(0))
            .collect::<Result<Vec<String>>>()?;
        for key in &ids {
            let id: DocId = key.parse()?;
            let Some(l) = self.take(&id)? else { continue };
            let snapshot = l.doc.save();
            let size = snapshot.len() as i64;
            let lock = match self.db().dialect() {
                Dialect::Sqlite => "",
                Dialect::Postgres => " FOR UPDATE",
            };
            let loaded_version = l.version;
            transaction(self.db(), true, |tx| {
                // Another node may have appended a chunk since this copy was loaded: deleting the
                // chunks then would lose it. Such a document is left for the next compaction.
                let on_disk = tx
                    .first(
                        &format!("SELECT version FROM documents WHERE doc_id = ?1{lock}"),
                        &[key.into()],
                    )?
                    .map(|r| r.int(0))
                    .transpose()?;
                if on_disk != Some(loaded_version) {
                    return Ok(());
                }
                tx.exec("DELETE FROM chunks WHERE doc_id = ?1", &[key.into()])?;
                write_snapshot(tx, key, snapshot)?;
                tx.exec(
                    "UPDATE documents SET snapshot_bytes = ?2, chunk_count = 0, chunk_bytes = 0,
                     version = version + 1 WHERE doc_id = ?1",
                    &[key.into(), size.into()],
                )?;
                Ok(())
            })?;
            self.put_back(id, l);
        }
        if self.db().dialect() == Dialect::Sqlite {
            self.db().batch("PRAGMA wal_checkpoint(TRUNCATE); VACUUM;")?;
        }
        Ok(ids.len())
    }

    /// Checks the SQLite file (PostgreSQL checks its own pages) and that every document decodes;
    /// returns the number of documents.
    pub fn verify(&mut self) -> Result<usize> {
        let check = match self.db().dialect() {
            Dialect::Sqlite => self.db().one("PRAGMA integrity_check", &[])?.text(0)?,
            Dialect::Postgres => "ok".to_string(),
        };
        if check != "ok" {
            return Err(Error::CorruptDocument {
                doc: self.path.display().to_string(),
                reason: check,
            });
        }
        let ids = self
            .db()
            .query("SELECT doc_id FROM documents", &[])?
            .iter()
            .map(|r| r.text(0))
            .collect::<Result<Vec<String>>>()?;
        for key in &ids {
            let id: DocId = key.parse()?;
            self.cache.remove(&id);
            self.take(&id)?;
        }
        Ok(ids.len())
    }
}
