//! Keeping a store healthy: projections rebuilt from the documents alone, compaction, and a full
//! read of every document.

use rusqlite::{TransactionBehavior, params};

use super::{Store, load_from_disk, projection};
use crate::error::{Error, Result};
use crate::ids::DocId;

impl Store {
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
            projection::project(&*tx, id, doc)?;
        }
        tx.commit()?;
        Ok(ids.len())
    }

    /// Projects again the documents `sql` selects (one `doc_id` column), in one transaction.
    pub(super) fn reproject_where(&mut self, sql: &str) -> Result<()> {
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
                projection::project(&*tx, id, &doc)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Every projected row as text, table by table, for comparing two projections:
    /// [`projection::dump`] on this store.
    pub fn projection_dump(&self) -> Result<Vec<String>> {
        projection::dump(&self.conn)
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
