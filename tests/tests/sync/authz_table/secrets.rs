//! The secrets: no token, nor its secret part, nor a dashboard session id, is stored anywhere in the
//! data directory or reaches the logs.

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use sha2::{Digest, Sha256};
use sitesync_core::store::sql::{Dialect, Sql, Value};
use sitesync_tests::harness::ServerDb;

use super::world::*;

/// Every text and blob column of every table of one database that holds one of `needles`.
fn stored_anywhere(sql: &dyn Sql, needles: &[String]) -> sitesync_core::Result<Vec<String>> {
    let (tables, columns) = match sql.dialect() {
        Dialect::Sqlite => (
            "SELECT name FROM sqlite_master WHERE type = 'table'",
            "SELECT name, type FROM pragma_table_info(?1)",
        ),
        Dialect::Postgres => (
            "SELECT table_name::TEXT FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
            "SELECT column_name::TEXT, data_type::TEXT FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name::TEXT = ?1::TEXT",
        ),
    };
    let mut problems = Vec::new();
    for table in sql.query(tables, &[])? {
        let table = table.text(0)?;
        for column in sql.query(columns, &[table.as_str().into()])? {
            let (column, ty) = (column.text(0)?, column.text(1)?);
            // Whatever the column's type, its bytes are searched (SQLite stores any value anywhere).
            let (hit, as_bytes) = match sql.dialect() {
                Dialect::Sqlite => (format!("instr(CAST(\"{column}\" AS BLOB), ?1) > 0"), true),
                Dialect::Postgres if ty == "bytea" => (format!("position(?1 IN \"{column}\") > 0"), true),
                Dialect::Postgres => (format!("strpos(\"{column}\"::TEXT, ?1) > 0"), false),
            };
            let count = format!("SELECT COUNT(*) FROM \"{table}\" WHERE {hit}");
            for needle in needles {
                let value = if as_bytes {
                    Value::Bytes(needle.as_bytes().to_vec())
                } else {
                    Value::Text(needle.clone())
                };
                if sql.one(&count, &[value])?.int(0)? > 0 {
                    problems.push(format!("{table}.{column} holds {}…", &needle[..12]));
                }
            }
        }
    }
    Ok(problems)
}

/// Everything the process logs through `tracing`, from the first call on. One global subscriber for
/// the test binary: other tests' lines land here too, which only widens the search. Every level of
/// every crate but Automerge's op-by-op tracing. The `log` crate is not bridged: the server logs
/// through `tracing`; `log` is used by the clients of these tests (tungstenite logs its client
/// handshake request, Authorization header included, at trace level).
pub(crate) fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("trace,automerge=info"))
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("one global subscriber per test binary: use this one (authz_table::logs)");
        buf
    })
    .clone()
}

/// Appends log lines to the shared buffer.
pub(super) struct Sink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub(super) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The secrets (64 hex digits) found in `bytes`, in one pass: a secret can only sit in a run of hex
/// digits at least as long.
pub(super) fn secrets_in(bytes: &[u8], secrets: &HashSet<&[u8]>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut start = 0;
    for i in 0..=bytes.len() {
        if i < bytes.len() && bytes[i].is_ascii_hexdigit() {
            continue;
        }
        if i - start >= 64 {
            for w in bytes[start..i].windows(64) {
                if secrets.contains(w) {
                    found.insert(String::from_utf8_lossy(&w[..8]).into_owned() + "…");
                }
            }
        }
        start = i + 1;
    }
    found
}

/// No token, nor its secret part, nor a dashboard session id, is stored anywhere in the data
/// directory (every text and blob column of every table of both databases, and the raw files with
/// their write-ahead logs), the devices table holds each token's SHA-256, and no token or session id
/// reaches the logs.
pub(super) async fn assert_no_secret_leaks(w: &World) {
    let mut tokens = w.seen.clone();
    tokens.sort();
    tokens.dedup();
    for t in &tokens {
        assert_token_shape(t);
    }
    let sessions: Vec<String> = w.sessions.values().chain(&w.signed_out).cloned().collect();
    let needles: Vec<String> = tokens
        .iter()
        .flat_map(|t| [t.clone(), secret_of(t).to_string()])
        .chain(sessions.iter().cloned())
        .collect();
    let mut problems = Vec::new();
    for db in [ServerDb::Credentials, ServerDb::Documents] {
        let needles = needles.clone();
        let found = w.server.sql(db, move |sql| stored_anywhere(sql, &needles)).await;
        problems.extend(found.into_iter().map(|p| format!("{db:?}: {p}")));
    }
    // What is stored is the token's SHA-256, so a token still authenticates.
    let t2 = tokens.clone();
    problems.extend(
        w.server
            .sql(ServerDb::Credentials, move |sql| {
                let mut problems = Vec::new();
                for t in t2.iter().filter(|t| *t != BAD_TOKEN) {
                    let hash: String = Sha256::digest(t.as_bytes())
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect();
                    let n = sql
                        .one(
                            "SELECT COUNT(*) FROM devices WHERE device_id = ?1 AND token_hash = ?2",
                            &[device_of(t).into(), hash.into()],
                        )?
                        .int(0)?;
                    if n != 1 {
                        problems.push(format!("device {} is not stored with its token's hash", device_of(t)));
                    }
                }
                Ok(problems)
            })
            .await,
    );
    // The raw files of the data directory: SQLite's databases with their write-ahead logs, or on
    // PostgreSQL (whose own files are the database server's) what the server keeps beside it.
    let dir = w.server.dir.path().to_path_buf();
    let (s2, t2) = (sessions.clone(), tokens.clone());
    problems.extend(
        tokio::task::spawn_blocking(move || {
            let mut problems = Vec::new();
            let secrets: HashSet<&[u8]> = t2
                .iter()
                .map(|t| secret_of(t).as_bytes())
                .chain(s2.iter().map(|s| s.as_bytes()))
                .collect();
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                // The first start's admin credential is a file by design (mode 0600), for the operators
                // to pick up: the one place a token may be.
                if path.file_name().is_some_and(|n| n == "admin-token") {
                    #[cfg(unix)]
                    {
                        use std::os::unix::fs::PermissionsExt;
                        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
                        if mode != 0o600 {
                            problems.push(format!("admin-token has mode {mode:o}"));
                        }
                    }
                    continue;
                }
                if path.is_file() {
                    let found = secrets_in(&std::fs::read(&path).unwrap(), &secrets);
                    if !found.is_empty() {
                        problems.push(format!("{} holds {found:?}", path.display()));
                    }
                }
            }
            problems
        })
        .await
        .unwrap(),
    );
    assert!(problems.is_empty(), "secrets at rest: {problems:#?}");

    let logged = logs().lock().unwrap_or_else(|e| e.into_inner()).clone();
    let secrets: HashSet<&[u8]> = tokens
        .iter()
        .map(|t| secret_of(t).as_bytes())
        .chain(sessions.iter().map(|s| s.as_bytes()))
        .collect();
    let found = secrets_in(&logged, &secrets);
    let whole: Vec<&String> = tokens.iter().filter(|t| contains(&logged, t.as_bytes())).collect();
    assert!(
        found.is_empty() && whole.is_empty(),
        "tokens in the logs: {found:?} {:?}",
        whole.iter().map(|t| &t[..16]).collect::<Vec<_>>()
    );
}
