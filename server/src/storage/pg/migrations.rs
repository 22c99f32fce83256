//! Schema versions of the shared PostgreSQL database, applied once however many nodes start at the
//! same moment.
//!
//! SQLite keeps its version in `PRAGMA user_version` and has one writer; here several nodes may
//! start together, so the steps run in one transaction that first takes a transaction-scoped
//! advisory lock: the other nodes wait on it, then find the steps recorded in `schema_migrations`
//! and apply nothing. A node that dies mid-way rolls everything back and frees the lock. (An
//! advisory lock needs a session of its own for the transaction: PgBouncer's transaction mode
//! would break it, as it breaks `LISTEN`.)

use std::collections::BTreeSet;

use sitesync_core::store::sql::{Dialect, Sql, transaction};
use sitesync_core::{Error, Result};

use super::LOCK_TIMEOUT;
use crate::storage::{Database, with};

/// The advisory lock key of migrations: "sitesync" in ASCII, so it is recognisable in `pg_locks`.
const MIGRATION_LOCK: i64 = 0x7369_7465_7379_6e63;

/// Brings the PostgreSQL database behind `db` up to the last of `steps` (`(version, SQL)`, versions
/// increasing from 1) and returns the versions this call applied: none when another node was
/// first. A database with a version newer than the last step, written by a newer build, is refused
/// with [`Error::StoreTooNew`] and left as it is.
///
/// Each step's SQL runs as one batch inside the transaction, so it must not commit itself
/// (`COMMIT`, `CREATE INDEX CONCURRENTLY`, `VACUUM`).
pub fn migrate(db: &dyn Database, steps: &[(i64, &str)]) -> Result<Vec<i64>> {
    if db.dialect() != Dialect::Postgres {
        return Err(Error::Database(
            "these migrations are PostgreSQL's; SQLite has its own".into(),
        ));
    }
    let mut previous = 0;
    for &(version, _) in steps {
        if version <= previous {
            return Err(Error::Database(format!(
                "migration versions must increase from 1: {version} follows {previous}"
            )));
        }
        previous = version;
    }
    let supported = previous;
    with(db, |sql| transaction(sql, true, |tx| apply(tx, steps, supported)))
}

fn apply(tx: &dyn Sql, steps: &[(i64, &str)], supported: i64) -> Result<Vec<i64>> {
    // Waiting for another node's migration is the point, however long its steps take: that node is
    // either running a statement, idle (and cut off by the idle-in-transaction timeout) or gone.
    tx.batch("SET LOCAL lock_timeout = 0")?;
    tx.exec("SELECT pg_advisory_xact_lock(?1)", &[MIGRATION_LOCK.into()])?;
    // The steps themselves wait for locks no longer than any other writer.
    tx.batch(&format!("SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))?;
    // In a schema of its own: steps set their own `search_path` (the server's credentials and
    // documents live in separate schemas).
    tx.batch(
        "CREATE SCHEMA IF NOT EXISTS sitesync;
         CREATE TABLE IF NOT EXISTS sitesync.schema_migrations (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)",
    )?;
    let done = tx
        .query("SELECT version FROM sitesync.schema_migrations", &[])?
        .iter()
        .map(|row| row.int(0))
        .collect::<Result<BTreeSet<i64>>>()?;
    if let Some(&found) = done.last()
        && found > supported
    {
        return Err(Error::StoreTooNew { found, supported });
    }
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut applied = Vec::new();
    for &(version, step) in steps.iter().filter(|(v, _)| !done.contains(v)) {
        tx.batch(step)?;
        tx.exec(
            "INSERT INTO sitesync.schema_migrations (version, applied_at) VALUES (?1, ?2)",
            &[version.into(), now.as_str().into()],
        )?;
        applied.push(version);
    }
    Ok(applied)
}
