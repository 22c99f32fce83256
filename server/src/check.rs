//! `sitesync-server check`: an offline check of a data directory or PostgreSQL database that only
//! reads. SQLite files are opened read-only (and `query_only`), a PostgreSQL session is made
//! read-only before anything is read, so a check cannot change what it checks. The documents are
//! read in one read transaction (a snapshot), so a check beside a running server compares
//! documents and projections of the same moment.
//!
//! What is checked: the SQLite files' own integrity (`PRAGMA integrity_check`, `foreign_key_check`;
//! on PostgreSQL that is the server's business: data checksums, `amcheck`), then the documents
//! (`sitesync_core::store::check`: every document loads and its recorded heads are its own, every
//! stored signature verifies, the projections equal a rebuild from the documents).

use std::path::Path;

use sitesync_core::store::check::{Problem, Report};
use sitesync_core::store::sql::Sql;

use crate::error::Result;
use crate::storage::Location;

/// Checks the state at `location` (`data` holds the SQLite files).
pub fn check(data: &Path, location: &Location) -> Result<Report> {
    match location {
        Location::Sqlite => {
            let mut problems = Vec::new();
            for file in ["server.sqlite3", "documents.sqlite3"] {
                let conn = open_read_only(&data.join(file))?;
                problems.extend(integrity(&conn, file)?);
            }
            let docs = open_read_only(&data.join("documents.sqlite3"))?;
            docs.execute_batch("BEGIN")?;
            let mut report = sitesync_core::store::check::check(&docs)?;
            docs.execute_batch("COMMIT")?;
            problems.append(&mut report.problems);
            report.problems = problems;
            Ok(report)
        }
        Location::Postgres { url, .. } => {
            let db = crate::storage::PgDatabase::connect_in(url, 1, Some(crate::storage::DOCS_SCHEMA))?;
            Ok(crate::storage::with(&db, |sql| {
                sql.batch("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")?;
                sql.batch("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")?;
                let report = sitesync_core::store::check::check(sql);
                sql.batch("COMMIT")?;
                report
            })?)
        }
    }
}

/// Opens a SQLite file for reading only; a missing file is an error, not a new empty database.
fn open_read_only(path: &Path) -> Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| crate::error::Error::Internal(format!("opening {}: {e}", path.display())))?;
    conn.pragma_update(None, "query_only", true)?;
    Ok(conn)
}

/// What SQLite's own checks find wrong in `conn`'s file.
fn integrity(conn: &rusqlite::Connection, file: &str) -> Result<Vec<Problem>> {
    let mut out = Vec::new();
    for row in conn.query("PRAGMA integrity_check", &[])? {
        let line = row.text(0)?;
        if line != "ok" {
            out.push(Problem {
                doc: None,
                what: format!("{file}: integrity: {line}"),
            });
        }
    }
    for row in conn.query("PRAGMA foreign_key_check", &[])? {
        out.push(Problem {
            doc: None,
            what: format!("{file}: a row of {} names a missing parent", row.text(0)?),
        });
    }
    Ok(out)
}
