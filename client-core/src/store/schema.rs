//! Schema versions of the local store, in `PRAGMA user_version`, one transaction per step.

use rusqlite::Connection;

use crate::error::{Error, Result};

/// The migrations, in order; step N brings the schema from version N-1 to N.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/001_init.sql"),
    include_str!("../../migrations/002_keyed_projections.sql"),
    include_str!("../../migrations/003_signatures.sql"),
    include_str!("../../migrations/004_approved_versions.sql"),
    include_str!("../../migrations/005_snapshots.sql"),
    include_str!("../../migrations/006_blob_transfers.sql"),
    include_str!("../../migrations/007_signoff_images.sql"),
];

/// The first version holding the approved version of amended days: a store upgraded from before it
/// has to project those days again (SQL cannot read a document).
pub(crate) const PINNED_VERSIONS: i64 = 4;

/// The schema version this build writes.
pub(crate) const VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database up to [`VERSION`], refusing a database from a newer build; returns the version
/// it found (0 for a new file).
pub(crate) fn migrate(conn: &mut Connection) -> Result<i64> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > VERSION {
        return Err(Error::StoreTooNew {
            found,
            supported: VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dump(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY name")
            .unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().map(|r| r.unwrap()).collect()
    }

    #[test]
    fn stepwise_upgrade_equals_fresh() {
        let mut fresh = Connection::open_in_memory().unwrap();
        migrate(&mut fresh).unwrap();
        // A store written by every earlier build, brought up to date by this one.
        for from in 0..VERSION {
            let mut old = Connection::open_in_memory().unwrap();
            for (v, sql) in MIGRATIONS.iter().enumerate().take(from as usize) {
                old.execute_batch(sql).unwrap();
                old.pragma_update(None, "user_version", v as i64 + 1).unwrap();
            }
            migrate(&mut old).unwrap();
            assert_eq!(dump(&fresh), dump(&old), "upgraded from version {from}");
        }
    }

    #[test]
    fn keyed_projections_keep_the_lines_of_a_version_1_store() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        let line = |line: &str, doc: &str, day: &str| {
            format!(
                "INSERT INTO labor_lines (line_id, doc_id, site_id, day, worker_id, work_item_id, work_days_centi,
                 hours_min, overtime_min, kind, rate_fen, overtime_rate_fen, cost_fen, note, entered_by, deleted,
                 conflicts) VALUES ('{line}', '{doc}', 's', '{day}', 'w', 's/wi', 100, 480, 0, 'day_labor',
                 43000, 8062, 43000, '', 'x', 0, 0)"
            )
        };
        conn.execute_batch(&line("L1", "day|s|2026-09-01", "2026-09-01"))
            .unwrap();
        // A version 1 store could not hold the same id twice; the date of a crafted day could be anything.
        conn.execute_batch(&line("L2", "day|s|+10000-01-01", "+10000-01-01"))
            .unwrap();
        migrate(&mut conn).unwrap();
        let rows: Vec<(String, String)> = conn
            .prepare("SELECT doc_id, line_id FROM labor_lines")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(rows, vec![("day|s|2026-09-01".to_string(), "L1".to_string())]);
        // Now two documents may hold the same line id.
        conn.execute_batch(&line("L1", "day|t|2026-09-01", "2026-09-01"))
            .unwrap();
    }

    #[test]
    fn a_version_4_store_keeps_its_documents_when_snapshots_move_out() {
        use automerge::transaction::Transactable;
        use automerge::{Automerge, ROOT};

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.sqlite3");
        let snapshot = include_bytes!("../../tests/fixtures/day-site-hz-01-2026-09-01.automerge");
        let mut doc = Automerge::load(snapshot).unwrap();
        let base = doc.get_heads();
        let mut tx = doc.transaction();
        tx.put(ROOT, "note", "written after the snapshot").unwrap();
        tx.commit();
        let chunk = doc.save_after(&base);
        let heads = doc.get_heads();
        {
            // The store as a build of schema 4 left it: the snapshot inline in its document's row.
            let conn = Connection::open(&path).unwrap();
            for (v, sql) in MIGRATIONS.iter().enumerate().take(4) {
                conn.execute_batch(sql).unwrap();
                conn.pragma_update(None, "user_version", v as i64 + 1).unwrap();
            }
            conn.execute(
                "INSERT INTO documents (doc_id, kind, site_id, day, snapshot, snapshot_bytes, chunk_count,
                 chunk_bytes, heads, version, change_seq, updated_at)
                 VALUES ('day|site-hz-01|2026-09-01', 'day', 'site-hz-01', '2026-09-01', ?1, ?2, 1, ?3, ?4, 2, 2, 'x')",
                rusqlite::params![
                    &snapshot[..],
                    snapshot.len() as i64,
                    chunk.len() as i64,
                    crate::doc::heads_hex(&heads).join(",")
                ],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO chunks (doc_id, seq, data) VALUES ('day|site-hz-01|2026-09-01', 1, ?1)",
                [&chunk],
            )
            .unwrap();
        }
        let mut store = crate::Store::open(&path).unwrap();
        assert_eq!(store.verify().unwrap(), 1);
        let id: crate::ids::DocId = "day|site-hz-01|2026-09-01".parse().unwrap();
        assert!(store.knows_all(&id, &crate::doc::heads_hex(&heads)).unwrap());
        let loaded = Automerge::load(&store.export_changes(&id, &[]).unwrap().unwrap()).unwrap();
        assert_eq!(loaded.get_heads(), heads);
        assert!(loaded.get_changes_added(&doc).is_empty() && doc.get_changes_added(&loaded).is_empty());
        let columns: Vec<String> = store
            .db()
            .query("SELECT name FROM pragma_table_info('documents')", &[])
            .unwrap()
            .iter()
            .map(|r| r.text(0).unwrap())
            .collect();
        assert!(!columns.iter().any(|c| c == "snapshot"), "{columns:?}");
        assert_eq!(
            store.storage_stats(&id).unwrap().unwrap().snapshot_bytes,
            snapshot.len() as i64
        );
        // Compaction folds the old chunk into the moved snapshot.
        assert_eq!(store.compact().unwrap(), 1);
        drop(store);
        let mut store = crate::Store::open(&path).unwrap();
        assert_eq!(store.storage_stats(&id).unwrap().unwrap().chunk_count, 0);
        assert!(store.knows_all(&id, &crate::doc::heads_hex(&heads)).unwrap());
    }

    #[test]
    fn refuses_newer_store() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", VERSION + 1).unwrap();
        assert!(matches!(migrate(&mut conn), Err(Error::StoreTooNew { .. })));
    }
}
