//! Schema versions of the local store, in `PRAGMA user_version`, one transaction per step.

use rusqlite::Connection;

use crate::error::{Error, Result};

/// The migrations, in order; step N brings the schema from version N-1 to N.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/001_init.sql"),
    include_str!("../../migrations/002_signatures.sql"),
];

/// The schema version this build writes.
pub(crate) const VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database up to [`VERSION`], refusing a database from a newer build.
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
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
    Ok(())
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
        // A store left at every older version, then upgraded, ends up as a fresh one.
        for at in 0..VERSION {
            let mut stepped = Connection::open_in_memory().unwrap();
            for (v, sql) in MIGRATIONS.iter().enumerate().take(at as usize) {
                stepped.execute_batch(sql).unwrap();
                stepped.pragma_update(None, "user_version", v as i64 + 1).unwrap();
            }
            migrate(&mut stepped).unwrap();
            assert_eq!(dump(&fresh), dump(&stepped), "upgraded from version {at}");
        }
    }

    #[test]
    fn refuses_newer_store() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", VERSION + 1).unwrap();
        assert!(matches!(migrate(&mut conn), Err(Error::StoreTooNew { .. })));
    }
}
