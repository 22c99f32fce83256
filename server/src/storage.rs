//! The server's storage boundary: where its databases live and how a call gets a connection.
//!
//! The server keeps its state in one of two engines: SQLite files in the data directory (the
//! embedded default) or one PostgreSQL database shared by any number of nodes. Code above this
//! module writes neutral SQL ([`sitesync_core::store::sql`]) against a [`Database`], which hands
//! each call a connection for its duration: the one SQLite connection under a mutex, or a pooled
//! PostgreSQL client.

mod pg;

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use rusqlite::Connection;
use sitesync_core::store::sql::{Dialect, Sql};

pub use self::pg::{PgDatabase, migrate};

/// Where the server's state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// SQLite files in this data directory.
    Sqlite(PathBuf),
    /// A PostgreSQL database (`postgres://…` URL), shared by every node.
    Postgres {
        /// The connection URL.
        url: String,
    },
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
