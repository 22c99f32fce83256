//! The server's storage boundary: where its databases live and how a call gets a connection.
//!
//! The server keeps its state in one of two engines: SQLite files in the data directory (the
//! embedded default) or one PostgreSQL database shared by any number of nodes. Code above this
//! module writes neutral SQL ([`sitesync_core::store::sql`]) against a [`Database`], which hands
//! each call a connection for its duration: the one SQLite connection under a mutex, or a pooled
//! PostgreSQL client.

pub mod listen;
mod pg;

use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::Connection;
use sitesync_core::store::sql::{Dialect, Sql};

pub use self::pg::{PgConnection, PgDatabase, migrate};

/// Where the server's state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// SQLite files in the data directory: `server.sqlite3` (credentials) and `documents.sqlite3`.
    Sqlite,
    /// One PostgreSQL database shared by every node; the data directory then holds files only
    /// (the admin token a first start writes, demo tokens).
    Postgres {
        /// `postgres://user@host:port/database`.
        url: String,
        /// Pooled connections for the credential store (requests authenticate through it); the
        /// documents take three more (writer, reader, jobs) and notifications one.
        connections: usize,
    },
}

/// PostgreSQL's schema steps. Credentials and documents live in schemas of their own (both have
/// a `sites` table: the org's sites, and their projected master data); each step sets its own.
pub const POSTGRES_MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        concat!(
            "CREATE SCHEMA sitesync_auth; SET LOCAL search_path TO sitesync_auth;\n",
            include_str!("../migrations/postgres/001_credentials.sql")
        ),
    ),
    (
        2,
        concat!(
            "CREATE SCHEMA sitesync_docs; SET LOCAL search_path TO sitesync_docs;\n",
            include_str!("../migrations/postgres/002_documents.sql")
        ),
    ),
    (
        3,
        concat!(
            "SET LOCAL search_path TO sitesync_docs;\n",
            include_str!("../migrations/postgres/003_snapshots.sql")
        ),
    ),
    (
        4,
        concat!(
            "SET LOCAL search_path TO sitesync_auth;\n",
            include_str!("../migrations/postgres/004_blob_claims.sql")
        ),
    ),
    (
        5,
        concat!(
            "SET LOCAL search_path TO sitesync_auth;\n",
            include_str!("../migrations/postgres/005_pay_periods.sql")
        ),
    ),
    (
        6,
        concat!(
            "SET LOCAL search_path TO sitesync_auth;\n",
            include_str!("../migrations/postgres/006_notify.sql")
        ),
    ),
    (
        7,
        concat!(
            "SET LOCAL search_path TO sitesync_auth;\n",
            include_str!("../migrations/postgres/007_device_health.sql")
        ),
    ),
    (
        8,
        concat!(
            "SET LOCAL search_path TO sitesync_auth;\n",
            include_str!("../migrations/postgres/008_blobs.sql")
        ),
    ),
];

/// The schema of the credential tables.
pub const AUTH_SCHEMA: &str = "sitesync_auth";
/// The schema of the documents and their projections.
pub const DOCS_SCHEMA: &str = "sitesync_docs";

/// The server's databases on PostgreSQL, migrated.
#[derive(Debug)]
pub struct Postgres {
    /// The credential store's pool.
    pub auth: Arc<PgDatabase>,
    /// The documents' pool: the store's writer and reader keep one connection each.
    pub docs: Arc<PgDatabase>,
}

/// Connects to PostgreSQL at `url` and brings its schema up to date (once, however many nodes start
/// at the same moment).
pub fn open_postgres(url: &str, connections: usize) -> sitesync_core::Result<Postgres> {
    migrate(&PgDatabase::connect(url, 1)?, POSTGRES_MIGRATIONS)?;
    Ok(Postgres {
        auth: Arc::new(PgDatabase::connect_in(url, connections, Some(AUTH_SCHEMA))?),
        docs: Arc::new(PgDatabase::connect_in(url, 3, Some(DOCS_SCHEMA))?),
    })
}

/// Takes or renews the lease `name` for `ttl` as `holder`: whether `holder` now holds it. A job
/// that must run once for the whole service (the OKR feeder, loading the demo) runs on the node
/// that holds its lease; a node that dies loses it when the time is up. A row, not a session lock,
/// so it survives PgBouncer's transaction mode.
pub fn lease(db: &dyn Database, name: &str, holder: &str, ttl: std::time::Duration) -> sitesync_core::Result<bool> {
    let now = chrono::Utc::now().timestamp_millis();
    let until = now.saturating_add(ttl.as_millis() as i64);
    with(db, |sql| {
        let row = sql.first(
            "INSERT INTO jobs (name, holder, until_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms
             WHERE jobs.until_ms < ?4 OR jobs.holder = excluded.holder
             RETURNING holder",
            &[name.into(), holder.into(), until.into(), now.into()],
        )?;
        Ok(row.is_some())
    })
}

/// Connections to one database, handed out one call at a time.
pub trait Database: Send + Sync + std::fmt::Debug {
    /// The engine behind the connections.
    fn dialect(&self) -> Dialect;

    /// Runs `f` with a connection held for its whole duration: statements it runs are not
    /// interleaved with another call's, so `f` may run a transaction.
    fn run(&self, f: &mut dyn FnMut(&dyn Sql) -> sitesync_core::Result<()>) -> sitesync_core::Result<()>;
}

/// Runs `f` on a connection of `db` and returns its value.
pub fn with<T>(db: &dyn Database, f: impl FnOnce(&dyn Sql) -> sitesync_core::Result<T>) -> sitesync_core::Result<T> {
    let mut f = Some(f);
    let mut out = None;
    db.run(&mut |sql| {
        let f = f
            .take()
            .ok_or_else(|| sitesync_core::Error::Database("a call ran twice".into()))?;
        out = Some(f(sql)?);
        Ok(())
    })?;
    out.ok_or_else(|| sitesync_core::Error::Database("a call did not run".into()))
}

/// One SQLite connection, locked per call.
#[derive(Debug)]
pub struct SqliteDatabase {
    conn: Mutex<Connection>,
}

impl SqliteDatabase {
    /// Wraps an open, configured connection.
    pub fn new(conn: Connection) -> SqliteDatabase {
        SqliteDatabase { conn: Mutex::new(conn) }
    }
}

impl Database for SqliteDatabase {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn run(&self, f: &mut dyn FnMut(&dyn Sql) -> sitesync_core::Result<()>) -> sitesync_core::Result<()> {
        // A panic while the lock was held leaves nothing half-written (every write is one statement
        // or one transaction, and an open transaction is rolled back below), so a poisoned lock is
        // taken over.
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        if !conn.is_autocommit() {
            // A panic inside a transaction left it open: nothing of it was committed.
            conn.execute_batch("ROLLBACK")?;
        }
        f(&*conn)
    }
}
