//! The SQL both engines speak: values, rows and a connection trait, so that projections, reports
//! and the server's credential store are written once and run on SQLite (the phone, the embedded
//! server) and on PostgreSQL (the server's scale-out engine).
//!
//! Statements are written with SQLite's placeholders, `?` or `?N` (never both in one statement);
//! the PostgreSQL adaptor rewrites them to `$k`. What differs between the engines beyond that
//! (`BEGIN IMMEDIATE`, a date guard) is asked of [`Dialect`]. Integers are `i64` on both sides
//! (`BIGINT` on PostgreSQL, booleans stored as 0/1), text is compared byte-wise (`COLLATE "C"`),
//! and there are no floating-point columns: money, work-days and quantities are integers.

use rusqlite::types::{ToSqlOutput, ValueRef};

use crate::error::{Error, Result};

/// A value bound to a statement or read from a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// SQL `NULL`.
    Null,
    /// An integer; booleans are 0 or 1.
    Int(i64),
    /// UTF-8 text.
    Text(String),
    /// A blob (`BLOB` / `BYTEA`).
    Bytes(Vec<u8>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Int(i64::from(v))
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(v)
    }
}

impl From<&String> for Value {
    fn from(v: &String) -> Value {
        Value::Text(v.clone())
    }
}

impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Value {
        Value::Bytes(v.to_vec())
    }
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Value {
        Value::Bytes(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

/// One row of a result, read by column index with the type the caller expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row(pub Vec<Value>);

impl Row {
    fn at(&self, i: usize) -> Result<&Value> {
        self.0
            .get(i)
            .ok_or_else(|| Error::Database(format!("column {i} is past the row's {} columns", self.0.len())))
    }

    fn mismatch(&self, i: usize, want: &str) -> Error {
        Error::Database(format!("column {i}: expected {want}, found {:?}", self.0.get(i)))
    }

    /// An integer column that is never NULL.
    pub fn int(&self, i: usize) -> Result<i64> {
        match self.at(i)? {
            Value::Int(v) => Ok(*v),
            _ => Err(self.mismatch(i, "an integer")),
        }
    }

    /// An integer column that may be NULL.
    pub fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        match self.at(i)? {
            Value::Int(v) => Ok(Some(*v)),
            Value::Null => Ok(None),
            _ => Err(self.mismatch(i, "an integer or NULL")),
        }
    }

    /// A text column that is never NULL.
    pub fn text(&self, i: usize) -> Result<String> {
        match self.at(i)? {
            Value::Text(v) => Ok(v.clone()),
            _ => Err(self.mismatch(i, "text")),
        }
    }

    /// A text column that may be NULL.
    pub fn opt_text(&self, i: usize) -> Result<Option<String>> {
        match self.at(i)? {
            Value::Text(v) => Ok(Some(v.clone())),
            Value::Null => Ok(None),
            _ => Err(self.mismatch(i, "text or NULL")),
        }
    }

    /// A blob column that is never NULL.
    pub fn bytes(&self, i: usize) -> Result<Vec<u8>> {
        match self.at(i)? {
            Value::Bytes(v) => Ok(v.clone()),
            _ => Err(self.mismatch(i, "a blob")),
        }
    }

    /// A blob column that may be NULL (an outer join's missing row).
    pub fn opt_bytes(&self, i: usize) -> Result<Option<Vec<u8>>> {
        match self.at(i)? {
            Value::Bytes(v) => Ok(Some(v.clone())),
            Value::Null => Ok(None),
            _ => Err(self.mismatch(i, "a blob or NULL")),
        }
    }
}

/// Which engine a [`Sql`] connection talks to, for the few statements that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite through rusqlite: the phone and the embedded server.
    Sqlite,
    /// PostgreSQL: the server's scale-out engine.
    Postgres,
}

impl Dialect {
    /// The statement that opens a transaction which will write. SQLite takes its write lock at
    /// `BEGIN IMMEDIATE`, so two writers never deadlock upgrading a read lock; PostgreSQL locks rows.
    pub fn begin_write(self) -> &'static str {
        match self {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        }
    }

    /// A condition that `col` holds a `YYYY-MM-DD` date (rows from before dates were validated).
    pub fn date_guard(self, col: &str) -> String {
        match self {
            Dialect::Sqlite => format!("{col} GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'"),
            Dialect::Postgres => format!("{col} ~ '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}$'"),
        }
    }
}

/// A connection that runs the neutral SQL of this module.
///
/// Methods take `&self`: an implementation serialises its own use (rusqlite's `Connection` is used
/// from one thread at a time; the PostgreSQL adaptor holds one pooled client).
pub trait Sql {
    /// The engine, for [`Dialect`]'s differences.
    fn dialect(&self) -> Dialect;

    /// Runs one statement and returns the number of rows it changed.
    fn exec(&self, sql: &str, params: &[Value]) -> Result<u64>;

    /// Runs one statement and returns every row.
    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>>;

    /// Runs statements separated by `;` without parameters (schema changes).
    fn batch(&self, sql: &str) -> Result<()>;

    /// The first row, if any.
    fn first(&self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// Exactly the first row: a statement that returned none is a database error.
    fn one(&self, sql: &str, params: &[Value]) -> Result<Row> {
        self.first(sql, params)?
            .ok_or_else(|| Error::Database(format!("no row from: {sql}")))
    }
}

/// A connection a [`crate::Store`] owns: the neutral SQL, movable to another thread.
pub trait Conn: Sql + Send {}

impl<T: Sql + Send> Conn for T {}

/// Runs `f` inside one transaction on `db`: committed if it returns `Ok`, rolled back otherwise.
/// `write` takes the write lock at the start (see [`Dialect::begin_write`]).
pub fn transaction<T>(db: &dyn Sql, write: bool, f: impl FnOnce(&dyn Sql) -> Result<T>) -> Result<T> {
    db.exec(if write { db.dialect().begin_write() } else { "BEGIN" }, &[])?;
    match f(db) {
        Ok(v) => {
            db.exec("COMMIT", &[])?;
            Ok(v)
        }
        Err(e) => {
            // The transaction's own error is the one worth reporting; a failed rollback (the
            // connection is gone) leaves nothing committed either.
            let _ = db.exec("ROLLBACK", &[]);
            Err(e)
        }
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(v) => ToSqlOutput::Borrowed(ValueRef::Integer(*v)),
            Value::Text(v) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
            Value::Bytes(v) => ToSqlOutput::Borrowed(ValueRef::Blob(v)),
        })
    }
}

/// A SQLite value as a neutral one; a `REAL` (never written by this code) is refused.
fn from_sqlite(v: ValueRef<'_>, column: usize) -> Result<Value> {
    Ok(match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Text(t) => Value::Text(
            String::from_utf8(t.to_vec())
                .map_err(|_| Error::Database(format!("column {column}: text is not UTF-8")))?,
        ),
        ValueRef::Blob(b) => Value::Bytes(b.to_vec()),
        ValueRef::Real(r) => return Err(Error::Database(format!("column {column}: unexpected REAL {r}"))),
    })
}

impl Sql for rusqlite::Connection {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn exec(&self, sql: &str, params: &[Value]) -> Result<u64> {
        let n = self.prepare_cached(sql)?.execute(rusqlite::params_from_iter(params))?;
        Ok(n as u64)
    }

    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        let mut stmt = self.prepare_cached(sql)?;
        let width = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let mut row = Vec::with_capacity(width);
            for i in 0..width {
                row.push(from_sqlite(r.get_ref(i)?, i)?);
            }
            out.push(Row(row));
        }
        Ok(out)
    }

    fn batch(&self, sql: &str) -> Result<()> {
        Ok(self.execute_batch(sql)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_sqlite_and_a_failed_transaction_leaves_nothing() {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        db.batch("CREATE TABLE t (i INTEGER, s TEXT, b BLOB)").unwrap();
        let n = db
            .exec(
                "INSERT INTO t VALUES (?1, ?2, ?3)",
                &[7.into(), "工地".into(), Value::Bytes(vec![0, 255])],
            )
            .unwrap();
        assert_eq!(n, 1);
        db.exec(
            "INSERT INTO t VALUES (?, ?, ?)",
            &[Value::Null, Option::<&str>::None.into(), Value::Null],
        )
        .unwrap();
        let rows = db.query("SELECT i, s, b FROM t ORDER BY i", &[]).unwrap();
        assert_eq!(rows[0].opt_int(0).unwrap(), None);
        assert_eq!(rows[1].int(0).unwrap(), 7);
        assert_eq!(rows[1].text(1).unwrap(), "工地");
        assert_eq!(rows[1].bytes(2).unwrap(), vec![0, 255]);
        assert!(matches!(rows[1].text(0), Err(Error::Database(_))));

        let failed: Result<()> = transaction(&db, true, |tx| {
            tx.exec("INSERT INTO t VALUES (8, 'x', NULL)", &[])?;
            Err(Error::Database("refused".into()))
        });
        assert!(failed.is_err());
        let count = db.one("SELECT COUNT(*) FROM t", &[]).unwrap().int(0).unwrap();
        assert_eq!(count, 2, "the rolled-back insert is gone");
    }

    #[test]
    fn the_date_guard_accepts_dates_only_on_sqlite() {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        let guard = Dialect::Sqlite.date_guard("?1");
        let ok = |d: &str| db.one(&format!("SELECT {guard}"), &[d.into()]).unwrap().int(0).unwrap() == 1;
        assert!(ok("2026-11-30"));
        assert!(!ok("10000-01-01"));
        assert!(!ok("2026-1-30"));
    }
}
