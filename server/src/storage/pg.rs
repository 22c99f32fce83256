//! PostgreSQL behind the [`Database`] boundary: a pool of `tokio-postgres` clients that the neutral
//! SQL of [`sitesync_core::store::sql`] runs on, and the schema migrations every node may start at
//! the same moment.
//!
//! Decisions (2026-11-30):
//! - **Blocking calls over a runtime of its own.** [`Database::run`] is synchronous, like the
//!   SQLite engine it stands beside, so a [`PgDatabase`] owns a small tokio runtime and bridges with
//!   `block_on`. Callers are blocking threads (`spawn_blocking`, the admin CLI, tests), never an
//!   async task: `block_on` inside one panics ("Cannot start a runtime from within a runtime"), and
//!   would stall a worker thread if it did not. Dropping the database inside async code is fine: the
//!   runtime is shut down in the background.
//! - **No TLS.** The client is built with `NoTls`; a URL asking for `sslmode=require` or
//!   `verify-ca`/`verify-full` is refused at [`PgDatabase::connect`] rather than silently sent in
//!   the clear. Run the database on a trusted network or behind a local TLS tunnel.
//! - **Values by the statement's own types.** PostgreSQL types every parameter at `PREPARE`, and
//!   `tokio-postgres` refuses a Rust type that does not match it (even for a NULL), so a [`Value`] is
//!   bound as the type the server asked for. Results come back as the neutral integers, text and
//!   bytes; a `NUMERIC` or floating-point column (PostgreSQL's `SUM(bigint)` is `NUMERIC`) is
//!   refused with the fix: cast it `AS BIGINT`.
//! - **A connection never goes back with a transaction open.** `tokio-postgres` does not expose
//!   the server's transaction status, so the adaptor notes every statement that may open one
//!   (`BEGIN`, `START TRANSACTION`, any batch) and every one that closes it; a call that ends with
//!   one possibly open sends `ROLLBACK`, and a call that panicked, or whose `ROLLBACK` failed, drops
//!   its connection instead of returning it to the pool.
//! - **Per connection:** `lock_timeout = 10s` (a writer waiting behind a stuck one fails instead of
//!   piling up), `idle_in_transaction_session_timeout = 30s` (a node that died mid-transaction does
//!   not hold its locks for long), and `application_name` (`pg_stat_activity` says who is who). They
//!   travel in the startup packet, so a connection has them before its first statement.

mod migrations;
mod placeholders;

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod};
use sitesync_core::store::sql::{Dialect, Row, Sql, Value};
use sitesync_core::{Error, Result};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{NoTls, Statement};

pub use self::migrations::migrate;
use super::Database;

/// How long a call waits for a free pooled connection before it fails.
const WAIT: Duration = Duration::from_secs(5);
/// How long opening a new connection (TCP, startup, authentication) may take.
const CONNECT: Duration = Duration::from_secs(10);
/// `lock_timeout` of every connection; migrations lift it while they wait for each other.
const LOCK_TIMEOUT: &str = "10s";
/// `idle_in_transaction_session_timeout` of every connection.
const IDLE_IN_TRANSACTION: &str = "30s";
/// `application_name`, unless the URL names one.
const APPLICATION: &str = "sitesync-server";

/// A pool of connections to one PostgreSQL database, shared by every node of the server.
///
/// Call it from blocking code only (see the module's decisions): `run` blocks the calling thread on
/// the database's own runtime.
pub struct PgDatabase {
    /// The runtime the pool's connection tasks run on and `run` blocks on; an `Option` only so that
    /// `Drop` can shut it down without waiting (a plain drop inside async code panics).
    runtime: Option<tokio::runtime::Runtime>,
    /// The connections, each with its own prepared-statement cache.
    pool: Pool,
}

impl std::fmt::Debug for PgDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the pool's own Debug: its configuration holds the password.
        let status = self.pool.status();
        f.debug_struct("PgDatabase")
            .field("max_size", &status.max_size)
            .field("size", &status.size)
            .field("available", &status.available)
            .finish_non_exhaustive()
    }
}

impl PgDatabase {
    /// Connects to the database at `url` (`postgresql://user:password@host:port/database`) with a pool
    /// of up to `max_connections` connections, and opens one now so that a wrong URL, a refused
    /// password or a missing database fails here rather than on the first request.
    pub fn connect(url: &str, max_connections: usize) -> Result<PgDatabase> {
        PgDatabase::connect_in(url, max_connections, None)
    }

    /// [`PgDatabase::connect`] with every connection's `search_path` set to `schema`: the server
    /// keeps its credentials and its documents in schemas of their own (both have a `sites` table).
    pub fn connect_in(url: &str, max_connections: usize, schema: Option<&str>) -> Result<PgDatabase> {
        refuse_tls(url)?;
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| Error::Database(format!("the PostgreSQL URL: {}", describe(&e))))?;
        if matches!(config.get_ssl_mode(), tokio_postgres::config::SslMode::Require) {
            return Err(tls_refused("require"));
        }
        if max_connections == 0 {
            return Err(Error::Database(
                "a PostgreSQL pool needs at least one connection".into(),
            ));
        }
        let mut options = format!(
            "{} -c lock_timeout={LOCK_TIMEOUT} -c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION} -c client_min_messages=warning",
            config.get_options().unwrap_or_default()
        );
        if let Some(schema) = schema {
            if !schema.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                return Err(Error::Database(format!("not a schema name: {schema:?}")));
            }
            options.push_str(&format!(" -c search_path={schema}"));
        }
        config.options(options.trim_start());
        if config.get_application_name().is_none() {
            config.application_name(APPLICATION);
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(max_connections)
            .wait_timeout(Some(WAIT))
            .create_timeout(Some(CONNECT))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| Error::Database(format!("the PostgreSQL pool: {e}")))?;
        // No worker thread: a caller's `block_on` drives the sockets itself, so a statement costs no
        // hand-over between threads (a push runs about a hundred of them). Callers that wait at
        // the same time take turns driving; each is woken when its own answer has arrived.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .thread_name("sitesync-pg")
            .enable_all()
            .build()?;
        let db = PgDatabase {
            runtime: Some(runtime),
            pool,
        };
        drop(db.client()?);
        Ok(db)
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().expect("the runtime lives until Drop")
    }

    /// A pooled connection, or why none came within [`WAIT`].
    fn client(&self) -> Result<Object> {
        self.runtime().block_on(self.pool.get()).map_err(|e| match e {
            PoolError::Backend(e) => Error::Database(format!("connecting to PostgreSQL: {}", describe(&e))),
            PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => Error::Database(format!(
                "no PostgreSQL connection came free within {} s (all {} in use)",
                WAIT.as_secs(),
                self.pool.status().max_size
            )),
            e => Error::Database(format!("PostgreSQL pool: {e}")),
        })
    }
}

/// One connection a [`sitesync_core::Store`] keeps for itself (the server's document writer and
/// reader each hold one), taken from the pool and replaced by a fresh one when PostgreSQL closed
/// it (a restart, a failover) and no transaction was open on it.
pub struct PgConnection {
    db: std::sync::Arc<PgDatabase>,
    client: std::cell::RefCell<Object>,
    /// Whether a transaction may be open (see [`PgSql::open`]).
    open: Cell<bool>,
}

impl std::fmt::Debug for PgConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConnection").finish_non_exhaustive()
    }
}

impl PgDatabase {
    /// A connection of the pool held until dropped.
    pub fn dedicated(self: &std::sync::Arc<Self>) -> Result<PgConnection> {
        Ok(PgConnection {
            db: self.clone(),
            client: std::cell::RefCell::new(self.client()?),
            open: Cell::new(false),
        })
    }
}

impl PgConnection {
    /// Runs `f` on the connection as neutral SQL, reconnected first if PostgreSQL closed it while
    /// no transaction was open (a transaction cut off fails, and the next one reconnects).
    fn with<T>(&self, f: impl FnOnce(&PgSql<'_>) -> Result<T>) -> Result<T> {
        if !self.open.get() && self.client.borrow().is_closed() {
            let fresh = self.db.client()?;
            *self.client.borrow_mut() = fresh;
        }
        let client = self.client.borrow();
        f(&PgSql {
            runtime: self.db.runtime(),
            client: &client,
            open: &self.open,
        })
    }
}

impl Sql for PgConnection {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn exec(&self, sql: &str, params: &[Value]) -> Result<u64> {
        self.with(|c| c.exec(sql, params))
    }

    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        self.with(|c| c.query(sql, params))
    }

    fn batch(&self, sql: &str) -> Result<()> {
        self.with(|c| c.batch(sql))
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Database for PgDatabase {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn run(&self, f: &mut dyn FnMut(&dyn Sql) -> Result<()>) -> Result<()> {
        let client = self.client()?;
        let open = Cell::new(false);
        let conn = PgSql {
            runtime: self.runtime(),
            client: &client,
            open: &open,
        };
        // `f` only borrows the connection, which is dropped below when it panicked: nothing it saw
        // outlives the unwind.
        let result = panic::catch_unwind(AssertUnwindSafe(|| f(&conn)));
        let open = open.get();
        match result {
            Err(panic) => {
                // Whatever it left open dies with the connection: PostgreSQL rolls it back.
                drop(Object::take(client));
                panic::resume_unwind(panic)
            }
            Ok(result) => {
                if open && self.runtime().block_on(client.batch_execute("ROLLBACK")).is_err() {
                    drop(Object::take(client));
                }
                result
            }
        }
    }
}

/// Refuses a URL that asks for TLS, which this build does not speak (`tokio-postgres` also does not
/// parse `verify-*`, and would say only "invalid value for option `sslmode`").
fn refuse_tls(url: &str) -> Result<()> {
    for (i, _) in url.match_indices("sslmode=") {
        let value: String = url[i + "sslmode=".len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        if matches!(value.as_str(), "require" | "verify-ca" | "verify-full") {
            return Err(tls_refused(&value));
        }
    }
    Ok(())
}

fn tls_refused(mode: &str) -> Error {
    Error::Database(format!(
        "sslmode={mode}: sitesync connects to PostgreSQL without TLS (tokio-postgres with NoTls); use \
         sslmode=disable on a trusted network, or a TLS tunnel on the database host"
    ))
}

/// A `tokio-postgres` error in one line: the server's message with its SQLSTATE, or the client's
/// error with its causes (its `Display` alone says only "error connecting to server").
fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{}: {} (SQLSTATE {})", db.severity(), db.message(), db.code().code());
        // The detail is left out: it quotes row values ("Key (phone)=(…) already exists").
        if let Some(hint) = db.hint() {
            s.push_str("; hint: ");
            s.push_str(hint);
        }
        return s;
    }
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

fn pg_error(e: tokio_postgres::Error) -> Error {
    Error::Database(describe(&e))
}

/// One pooled connection seen through the neutral [`Sql`] trait, for the duration of one `run`.
struct PgSql<'a> {
    /// The database's runtime, to block on.
    runtime: &'a tokio::runtime::Runtime,
    /// The connection, with its statement cache.
    client: &'a Object,
    /// Whether a transaction may be open: set by a statement that may open one, cleared by one
    /// that closed it (see the module's decisions).
    open: &'a Cell<bool>,
}

impl PgSql<'_> {
    fn prepare(&self, sql: &str) -> Result<Statement> {
        let sql = placeholders::to_dollar(sql)?;
        self.runtime
            .block_on(self.client.prepare_cached(&sql))
            .map_err(pg_error)
    }

    /// Runs `call` for statement `sql`, keeping [`PgSql::open`] up to date.
    fn tracked<T>(&self, sql: &str, call: impl FnOnce() -> Result<T>) -> Result<T> {
        let effect = TransactionEffect::of(sql);
        if effect == TransactionEffect::Opens {
            self.open.set(true);
        }
        let result = call();
        // A failed COMMIT may or may not have ended the transaction: it stays "maybe open".
        if effect == TransactionEffect::Closes && result.is_ok() {
            self.open.set(false);
        }
        result
    }
}

impl Sql for PgSql<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn exec(&self, sql: &str, params: &[Value]) -> Result<u64> {
        self.tracked(sql, || {
            let stmt = self.prepare(sql)?;
            let bound = bind(&stmt, params)?;
            let refs: Vec<&(dyn ToSql + Sync)> = bound.iter().map(|b| &**b as _).collect();
            self.runtime
                .block_on(self.client.execute(&stmt, &refs))
                .map_err(pg_error)
        })
    }

    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        self.tracked(sql, || {
            let stmt = self.prepare(sql)?;
            let bound = bind(&stmt, params)?;
            let refs: Vec<&(dyn ToSql + Sync)> = bound.iter().map(|b| &**b as _).collect();
            let rows = self
                .runtime
                .block_on(self.client.query(&stmt, &refs))
                .map_err(pg_error)?;
            rows.iter().map(decode).collect()
        })
    }

    fn batch(&self, sql: &str) -> Result<()> {
        // Any of the statements may open a transaction; telling which would mean parsing them.
        self.open.set(true);
        self.runtime.block_on(self.client.batch_execute(sql)).map_err(pg_error)
    }
}

/// What a statement does to the connection's transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TransactionEffect {
    /// `BEGIN` or `START TRANSACTION`.
    Opens,
    /// `COMMIT`, `ROLLBACK`, `END` or `ABORT`, without `AND CHAIN` or `TO SAVEPOINT`.
    Closes,
    /// Anything else: it runs inside the transaction that is open, if any.
    Neither,
}

impl TransactionEffect {
    fn of(sql: &str) -> TransactionEffect {
        let words: Vec<String> = sql
            .trim()
            .trim_end_matches(';')
            .split_whitespace()
            // Three words tell every case below apart; an INSERT's values need not be upper-cased.
            .take(3)
            .map(str::to_ascii_uppercase)
            .collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        match words.as_slice() {
            ["BEGIN" | "START", ..] => TransactionEffect::Opens,
            ["COMMIT" | "ROLLBACK" | "END" | "ABORT"]
            | ["COMMIT" | "ROLLBACK" | "END" | "ABORT", "WORK" | "TRANSACTION"] => TransactionEffect::Closes,
            // A leading comment hides the keyword: assume the worst.
            [first, ..] if first.starts_with("--") || first.starts_with("/*") => TransactionEffect::Opens,
            _ => TransactionEffect::Neither,
        }
    }
}

/// `params` as the Rust types `tokio-postgres` accepts for the statement's parameter types.
fn bind<'v>(stmt: &Statement, params: &'v [Value]) -> Result<Vec<Box<dyn ToSql + Sync + 'v>>> {
    let types = stmt.params();
    if types.len() != params.len() {
        return Err(Error::Database(format!(
            "the statement takes {} parameters, {} given",
            types.len(),
            params.len()
        )));
    }
    types
        .iter()
        .zip(params)
        .enumerate()
        .map(|(i, (ty, value))| bind_one(i + 1, ty, value))
        .collect()
}

fn bind_one<'v>(k: usize, ty: &Type, value: &'v Value) -> Result<Box<dyn ToSql + Sync + 'v>> {
    let refused = |what: &str| {
        Error::Database(format!(
            "parameter ${k} is {ty} on PostgreSQL and cannot take {what}; cast the placeholder (?{k}::BIGINT, \
             ?{k}::TEXT) or the column"
        ))
    };
    let narrow = |v: i64, into: &str| Error::Database(format!("parameter ${k}: {v} does not fit {into}"));
    Ok(match (value, ty) {
        (Value::Int(v), &Type::INT8) => Box::new(*v),
        (Value::Int(v), &Type::INT4) => Box::new(i32::try_from(*v).map_err(|_| narrow(*v, "INTEGER"))?),
        (Value::Int(v), &Type::INT2) => Box::new(i16::try_from(*v).map_err(|_| narrow(*v, "SMALLINT"))?),
        (Value::Int(v), &Type::OID) => Box::new(u32::try_from(*v).map_err(|_| narrow(*v, "OID"))?),
        (Value::Int(v), &Type::BOOL) => match v {
            0 => Box::new(false),
            1 => Box::new(true),
            _ => return Err(narrow(*v, "BOOLEAN (0 or 1)")),
        },
        (Value::Int(_), _) => return Err(refused("an integer")),
        (Value::Text(v), &(Type::TEXT | Type::VARCHAR | Type::NAME | Type::BPCHAR | Type::UNKNOWN)) => {
            Box::new(v.as_str())
        }
        (Value::Text(_), _) => return Err(refused("text")),
        (Value::Bytes(v), &Type::BYTEA) => Box::new(v.as_slice()),
        (Value::Bytes(_), _) => return Err(refused("bytes")),
        // A NULL of the parameter's own type: `tokio-postgres` checks the type of a `None` too.
        (Value::Null, &Type::INT8) => Box::new(None::<i64>),
        (Value::Null, &Type::INT4) => Box::new(None::<i32>),
        (Value::Null, &Type::INT2) => Box::new(None::<i16>),
        (Value::Null, &Type::OID) => Box::new(None::<u32>),
        (Value::Null, &Type::BOOL) => Box::new(None::<bool>),
        (Value::Null, &(Type::TEXT | Type::VARCHAR | Type::NAME | Type::BPCHAR | Type::UNKNOWN)) => {
            Box::new(None::<&str>)
        }
        (Value::Null, &Type::BYTEA) => Box::new(None::<&[u8]>),
        (Value::Null, _) => return Err(refused("NULL of a neutral type")),
    })
}

/// A row as neutral values, by each column's type.
fn decode(row: &tokio_postgres::Row) -> Result<Row> {
    let mut out = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let name = column.name();
        let failed = |e: tokio_postgres::Error| Error::Database(format!("column {i} ({name}): {}", describe(&e)));
        let value = match *column.type_() {
            Type::INT8 => row.try_get::<_, Option<i64>>(i).map_err(failed)?.map(Value::Int),
            Type::INT4 => row
                .try_get::<_, Option<i32>>(i)
                .map_err(failed)?
                .map(|v| Value::Int(v.into())),
            Type::INT2 => row
                .try_get::<_, Option<i16>>(i)
                .map_err(failed)?
                .map(|v| Value::Int(v.into())),
            Type::OID => row
                .try_get::<_, Option<u32>>(i)
                .map_err(failed)?
                .map(|v| Value::Int(v.into())),
            Type::BOOL => row
                .try_get::<_, Option<bool>>(i)
                .map_err(failed)?
                .map(|v| Value::Int(v.into())),
            Type::TEXT | Type::VARCHAR | Type::NAME | Type::BPCHAR | Type::UNKNOWN => {
                row.try_get::<_, Option<String>>(i).map_err(failed)?.map(Value::Text)
            }
            Type::BYTEA => row.try_get::<_, Option<Vec<u8>>>(i).map_err(failed)?.map(Value::Bytes),
            // `SELECT pg_advisory_xact_lock(…)` and other functions that return nothing.
            Type::VOID => None,
            Type::NUMERIC | Type::FLOAT4 | Type::FLOAT8 => {
                return Err(Error::Database(format!(
                    "column {i} ({name}) is {} on PostgreSQL, and the neutral SQL has integers only: cast sums AS \
                     BIGINT (SUM of a BIGINT is NUMERIC there)",
                    column.type_()
                )));
            }
            ref other => {
                return Err(Error::Database(format!(
                    "column {i} ({name}) is {other}, which has no neutral value: cast it AS BIGINT, TEXT or BYTEA"
                )));
            }
        };
        out.push(value.unwrap_or(Value::Null));
    }
    Ok(Row(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_asking_for_tls_are_refused_with_the_reason() {
        for mode in ["require", "verify-ca", "verify-full"] {
            let url = format!("postgresql://u@127.0.0.1:1/db?sslmode={mode}");
            match PgDatabase::connect(&url, 1) {
                Err(Error::Database(why)) => assert!(why.contains("without TLS") && why.contains(mode), "{why}"),
                other => panic!("{mode}: {other:?}"),
            }
        }
        let refused = PgDatabase::connect("host=127.0.0.1 sslmode=require", 1).unwrap_err();
        assert!(refused.to_string().contains("without TLS"), "{refused}");
    }

    #[test]
    fn transaction_boundaries_are_recognised() {
        use TransactionEffect::*;
        for (sql, effect) in [
            ("BEGIN", Opens),
            ("begin isolation level serializable", Opens),
            ("START TRANSACTION", Opens),
            ("COMMIT", Closes),
            ("  rollback ; ", Closes),
            ("END TRANSACTION", Closes),
            ("COMMIT AND CHAIN", Neither),
            ("ROLLBACK TO SAVEPOINT a", Neither),
            ("-- a comment\nBEGIN", Opens),
            ("SELECT 1", Neither),
            ("", Neither),
        ] {
            assert_eq!(TransactionEffect::of(sql), effect, "{sql:?}");
        }
    }
}
