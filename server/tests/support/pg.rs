//! A fresh PostgreSQL database per test, on the server named by `SITESYNC_TEST_DATABASE` (a URL to
//! an admin database, such as `postgresql://postgres@127.0.0.1:55432/postgres`; `.ci/run` starts
//! one). Without it the PostgreSQL tests say they were skipped and pass, unless
//! `SITESYNC_REQUIRE_POSTGRES=1` (CI), where a missing server must fail the run instead.
//!
//! `SITESYNC_TEST_ENGINE=postgres` runs the server suites themselves on PostgreSQL, a fresh database
//! per server ([`engine_database`]). This file is shared by the server's tests (`support::pg`) and
//! the cross-crate harness (`sitesync_tests::pg`, by `#[path]`). Both crates depend on
//! `sitesync-server`; the server's tests cannot use `sitesync-tests` (a dev-dependency back onto the
//! crate that depends on the server builds the server twice, with types that do not match), and a
//! helper in the server's library would ship test code. One file compiled into both avoids both.

use std::sync::atomic::{AtomicUsize, Ordering};

use sitesync_server::storage::{Database, PgDatabase};

/// The admin URL's variable.
pub const ADMIN_URL: &str = "SITESYNC_TEST_DATABASE";

/// The variable choosing the engine the server suites run on: `postgres`, or `sqlite` (the default).
pub const ENGINE: &str = "SITESYNC_TEST_ENGINE";

/// Whether the server suites run on PostgreSQL (`SITESYNC_TEST_ENGINE=postgres`). Any value other
/// than `postgres` or `sqlite` fails, so a typo never runs the suites on SQLite unnoticed.
pub fn on_postgres() -> bool {
    match std::env::var(ENGINE).as_deref() {
        Err(std::env::VarError::NotPresent) | Ok("" | "sqlite") => false,
        Ok("postgres") => true,
        other => panic!("{ENGINE}={other:?}: expected `postgres` or `sqlite`"),
    }
}

/// A fresh database for one server when the suites run on PostgreSQL, `None` on SQLite. Unlike
/// [`database`] it never skips: `SITESYNC_TEST_ENGINE=postgres` without a server fails.
pub fn engine_database() -> Option<TestDatabase> {
    if !on_postgres() {
        return None;
    }
    assert!(
        std::env::var_os(ADMIN_URL).is_some(),
        "{ENGINE}=postgres needs {ADMIN_URL} (an admin URL such as postgresql://postgres@127.0.0.1:5432/postgres)"
    );
    database()
}

/// A database created for one test and dropped (with its connections) when this is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    admin: String,
    name: String,
    url: String,
}

/// A fresh database, or `None` (after saying so) when no server was given.
pub fn database() -> Option<TestDatabase> {
    let Ok(admin) = std::env::var(ADMIN_URL) else {
        assert!(
            std::env::var("SITESYNC_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "SITESYNC_REQUIRE_POSTGRES=1 but {ADMIN_URL} is not set"
        );
        println!("skipped: no PostgreSQL (set {ADMIN_URL})");
        return None;
    };
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "sitesync_t_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    admin_batch(&admin, &format!("CREATE DATABASE {name}")).unwrap_or_else(|e| panic!("{e}"));
    let url = with_database(&admin, &name);
    Some(TestDatabase { admin, name, url })
}

impl TestDatabase {
    /// The database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A pool of up to `max_connections` connections to it.
    pub fn connect(&self, max_connections: usize) -> PgDatabase {
        PgDatabase::connect(&self.url, max_connections).unwrap()
    }

    /// One connection to the server's tables in `schema` ([`sitesync_server::storage::AUTH_SCHEMA`]
    /// or [`sitesync_server::storage::DOCS_SCHEMA`]), for a test that reads what the server stored.
    pub fn connect_to(&self, schema: &str) -> PgDatabase {
        PgDatabase::connect_in(&self.url, 1, Some(schema)).unwrap()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Not a panic: this may run while a failed test unwinds, and a second panic would abort.
        if let Err(e) = admin_batch(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        ) {
            eprintln!("{e}");
        }
    }
}

/// Runs `sql` on the admin database, outside a transaction (`CREATE DATABASE` refuses one). On a
/// thread of its own: the client blocks on a runtime of its own, which panics on a thread already
/// running async code (a test server is created and dropped inside `#[tokio::test]`s).
fn admin_batch(admin: &str, sql: &str) -> Result<(), String> {
    std::thread::scope(|s| {
        s.spawn(|| {
            let db = PgDatabase::connect(admin, 1).map_err(|e| format!("{ADMIN_URL}={admin}: {e}"))?;
            db.run(&mut |conn| conn.batch(sql)).map_err(|e| format!("{sql}: {e}"))
        })
        .join()
        .unwrap_or_else(|_| Err(format!("{sql}: the thread running it panicked")))
    })
}

/// `url` with its database (the path) replaced by `name`, its query string kept.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}
