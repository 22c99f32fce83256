//! A fresh PostgreSQL database per test, on the server named by `SITESYNC_TEST_DATABASE` (a URL to
//! an admin database, such as `postgresql://postgres@127.0.0.1:55432/postgres`; `.ci/run` starts
//! one). Without it the PostgreSQL tests say they were skipped and pass, unless
//! `SITESYNC_REQUIRE_POSTGRES=1` (CI), where a missing server must fail the run instead.

use std::sync::atomic::{AtomicUsize, Ordering};

use sitesync_server::storage::{Database, PgDatabase};

/// The admin URL's variable.
pub const ADMIN_URL: &str = "SITESYNC_TEST_DATABASE";

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

/// Runs `sql` on the admin database, outside a transaction (`CREATE DATABASE` refuses one).
fn admin_batch(admin: &str, sql: &str) -> Result<(), String> {
    let db = PgDatabase::connect(admin, 1).map_err(|e| format!("{ADMIN_URL}={admin}: {e}"))?;
    db.run(&mut |conn| conn.batch(sql)).map_err(|e| format!("{sql}: {e}"))
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
