//! What the server's tests share: the real `sitesync-server` binary as a child process, its admin
//! commands, a seeded PRNG whose seed is printed so a failure can be replayed, SQLite's own
//! integrity check, and a fresh PostgreSQL database per test ([`pg`]).
//!
//! A server's state lives where its [`DataDir`] says: on the suite's engine (SQLite files in the
//! directory, or with `SITESYNC_TEST_ENGINE=postgres` a PostgreSQL database of its own, which
//! [`admin`] and [`start_with`] pass as `--database`), or on SQLite whatever the engine for a test
//! about SQLite's files. The commands take a `DataDir`, not a path, so no test can forget to say.
//!
//! Each test file says `mod support;` (cargo builds every file in `tests/` as its own crate, and
//! not this folder), so a helper one of them does not use is not dead code.
#![allow(dead_code)]

pub mod pg;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sitesync_core::Store;

/// The server binary cargo built for this test.
pub fn server_bin() -> &'static str {
    env!("CARGO_BIN_EXE_sitesync-server")
}

/// The repository's fixtures folder.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// The fixture company's site people: a foreman and a site manager per site, each with the one site.
pub const SITE_USERS: [(&str, &str); 6] = [
    ("u-foreman-hz-01", "site-hz-01"),
    ("u-manager-hz-01", "site-hz-01"),
    ("u-foreman-sz-02", "site-sz-02"),
    ("u-manager-sz-02", "site-sz-02"),
    ("u-foreman-nb-03", "site-nb-03"),
    ("u-manager-nb-03", "site-nb-03"),
];

/// A server's data directory, and the PostgreSQL database its state lives in when the suite runs
/// on PostgreSQL. Clones share the database, which is dropped with the last of them: keep one for
/// as long as a server runs on it (declared before the server's [`Process`], it outlives it).
#[derive(Debug, Clone)]
pub struct DataDir {
    /// The directory (`--data`): SQLite's files, or on PostgreSQL the admin token and demo tokens.
    path: PathBuf,
    /// The state's database, if it is in PostgreSQL.
    database: Option<Arc<pg::TestDatabase>>,
}

impl DataDir {
    /// `path`, with the state on the suite's engine.
    pub fn new(path: impl Into<PathBuf>) -> DataDir {
        DataDir {
            path: path.into(),
            database: pg::engine_database().map(Arc::new),
        }
    }

    /// `path`, with the state in SQLite files whatever the suite's engine: for a test about them.
    pub fn sqlite(path: impl Into<PathBuf>) -> DataDir {
        DataDir {
            path: path.into(),
            database: None,
        }
    }

    /// `path` for a test that passes `--database` itself (several nodes on a database it made).
    pub fn with_own_database(path: impl Into<PathBuf>) -> DataDir {
        DataDir::sqlite(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The PostgreSQL database the state lives in, if it does.
    pub fn postgres(&self) -> Option<&pg::TestDatabase> {
        self.database.as_deref()
    }

    /// What follows a command to say where the state is: `--data DIR`, and `--database URL` on
    /// PostgreSQL.
    pub fn args(&self) -> Vec<std::ffi::OsString> {
        let mut args = vec!["--data".into(), self.path.clone().into_os_string()];
        if let Some(db) = &self.database {
            args.extend(["--database".into(), db.url().into()]);
        }
        args
    }

    /// The server's document store, opened on a connection of its own. From blocking code only: on
    /// PostgreSQL every call blocks the thread (in async code, see [`DataDir::with_documents`]).
    pub fn documents(&self) -> Store {
        match &self.database {
            None => Store::open(self.path.join("documents.sqlite3")).unwrap(),
            Some(db) => {
                let docs = Arc::new(db.connect_to(sitesync_server::storage::DOCS_SCHEMA));
                Store::open_on(Box::new(docs.dedicated().unwrap()), "postgres (documents)").unwrap()
            }
        }
    }

    /// Runs `f` on [`DataDir::documents`] on a thread of its own, so that async code may call it.
    pub fn with_documents<T: Send>(&self, f: impl FnOnce(&mut Store) -> T + Send) -> T {
        std::thread::scope(|s| {
            s.spawn(|| f(&mut self.documents()))
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}

impl AsRef<Path> for DataDir {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl std::ops::Deref for DataDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.path
    }
}

/// Runs `sitesync-server admin --data DATA [--database URL] ARGS…` and returns its trimmed stdout.
pub fn admin(data: &DataDir, args: &[&str]) -> String {
    let out = Command::new(server_bin())
        .arg("admin")
        .args(data.args())
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "admin {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A data directory holding the fixture company, and a device token for each user asked for.
pub fn company(data: &DataDir, users: &[&str]) -> Vec<String> {
    admin(data, &["import", fixtures().join("company.json").to_str().unwrap()]);
    users
        .iter()
        .enumerate()
        .map(|(i, user)| {
            admin(
                data,
                &["device", "add", "--user", user, "--label", &format!("phone-{i}")],
            )
        })
        .collect()
}

/// A loopback address nothing listens on (the port stays the same across restarts).
pub fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// A child process that is SIGKILLed when dropped, so that no server or phone outlives a test that
/// failed.
#[derive(Debug)]
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `sitesync-server serve` on `data`, appending its warnings to `log`.
pub fn start(data: &DataDir, addr: SocketAddr, log: &Path) -> Process {
    start_with(Command::new(server_bin()), data, addr, log, &[])
}

/// Starts `serve` on `data` with more arguments, through `command` (the server binary, or a program
/// that runs it, such as `prlimit`), appending its warnings to `log`.
pub fn start_with(mut command: Command, data: &DataDir, addr: SocketAddr, log: &Path, args: &[&str]) -> Process {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    let child = command
        .args(["serve", "--listen", &addr.to_string()])
        .args(data.args())
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Process(child)
}

/// Whether the server answers `/healthz` with 200.
fn answers(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(b"GET /healthz HTTP/1.0\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    buf.starts_with(b"HTTP/1.0 200") || buf.starts_with(b"HTTP/1.1 200")
}

/// Waits (120 s at most: `--demo` generates 90 days of a company before it answers, ~12 s in a debug
/// build on an idle machine, much more beside a loaded test run) until the server answers
/// `/healthz`; panics with the end of its log if it exits or never answers.
pub fn healthy(server: &mut Process, addr: SocketAddr, log: &Path, context: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if answers(addr) {
            return;
        }
        if let Some(status) = server.0.try_wait().unwrap() {
            panic!(
                "{context}: the server exited ({status}) instead of starting:\n{}",
                tail(log)
            );
        }
        assert!(
            Instant::now() < deadline,
            "{context}: the server did not come up within 120 s:\n{}",
            tail(log)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// SIGKILL, exactly what a crash or the OOM killer does, and reaps the process.
pub fn sigkill(process: &mut Process) {
    let _ = process.0.kill();
    process.0.wait().unwrap();
}

/// Stops the server the way an operator does (SIGTERM, graceful shutdown), SIGKILL after 30 s.
pub fn stop(mut server: Process) {
    let _ = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.0.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            sigkill(&mut server);
            panic!("the server ignored SIGTERM for 30 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Copies a stopped server's databases with their write-ahead logs (not their shared-memory
/// indexes, which SQLite rebuilds) to `to`, so they can be checked without recovering the originals:
/// the restarted server must find the crash exactly as it was left.
pub fn copy_databases(data: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for db in ["documents.sqlite3", "server.sqlite3"] {
        for suffix in ["", "-wal"] {
            let from = data.join(format!("{db}{suffix}"));
            if from.exists() {
                std::fs::copy(&from, to.join(format!("{db}{suffix}"))).unwrap();
            }
        }
    }
}

/// The last lines of a log file, for failure messages.
pub fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// `PRAGMA integrity_check` of a SQLite file, opened on its own connection.
pub fn integrity(path: &Path) -> String {
    let conn = rusqlite::Connection::open(path).unwrap();
    let rows: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    rows.join("; ")
}

/// A number from the environment, or the default.
pub fn env_or(var: &str, default: u64) -> u64 {
    match std::env::var(var) {
        Ok(v) => v.parse().unwrap_or_else(|_| panic!("{var}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// The run's seed: `var` from the environment to replay a failure, else from the clock.
pub fn seed(var: &str) -> u64 {
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    env_or(var, clock)
}

/// A small deterministic PRNG (xorshift64*): no dependency, and a printed seed replays the choices.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for this seed (any value, zero included).
    pub fn new(seed: u64) -> Rng {
        // splitmix64 of the seed: neighbouring seeds (phone 1, phone 2 …) give unrelated streams.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    /// An index into a slice of `len` items.
    pub fn index(&mut self, len: usize) -> usize {
        (self.next() % len as u64) as usize
    }
}
