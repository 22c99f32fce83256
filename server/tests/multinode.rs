//! Two real `sitesync-server` nodes on one PostgreSQL database, as an operator scales out: a line
//! pushed through one node reaches a phone connected to the other live, a device revoked through one
//! is cut off on the other, reports agree on both, nodes started together migrate once, and a node
//! SIGKILLed under eight pushing phones loses nothing it acknowledged (`multinode/failover.rs`), and
//! an upload cut at one node resumes at the other (`multinode/blobs.rs`).
//!
//! Each test gets a database of its own (`support::pg`) and is skipped without a server: run them
//! with `SITESYNC_TEST_DATABASE=postgresql://postgres@127.0.0.1:5432/postgres`.
//!
//! Length: one test per promise an operator relies on when adding a node, each with its own setup of
//! two real processes; splitting them would only spread that setup over more files.

mod support;

#[path = "multinode/blobs.rs"]
mod blobs;
#[path = "multinode/failover.rs"]
mod failover;
// The cross-crate harness's fault proxy, compiled in here as `support/pg.rs` is compiled into the
// harness: the server's tests cannot depend on `sitesync-tests`, which depends on the server.
#[path = "../../tests/src/proxy.rs"]
#[allow(dead_code, reason = "the proxy's faults and counters are not all used here")]
mod proxy;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::NaiveDate;
use sitesync_core::Store;
use sitesync_core::ids::{DocId, SiteId, WorkItemId, WorkerId, parse_date};
use sitesync_core::store::entry;
use sitesync_core::store::sql::Sql;
use sitesync_core::sync::SyncEvent;
use sitesync_core::sync::client::{WatchEvent, WatchHooks, sync_once, watch_reporting};
use sitesync_core::units::WorkDays;
use sitesync_server::storage::{DOCS_SCHEMA, POSTGRES_MIGRATIONS, PgDatabase, with};
use support::Process;
use support::pg::TestDatabase;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// How long a change or a revocation may take to cross from one node to the other. The target is a
/// second (the poll's period; LISTEN makes it milliseconds); timing targets belong in benches, so
/// this bound is loose, but a change that waits for a reconnect or a restart fails it.
const CROSSING: Duration = Duration::from_secs(5);

/// Nodes A and B serving one database into which the fixture company was imported.
struct Cluster {
    /// The first node started: it wrote the admin token.
    a: Node,
    /// The second.
    b: Node,
    /// Declared after the nodes, so it is dropped (with its connections) after they are killed.
    db: Db,
    /// Data directories, logs and phones.
    dir: tempfile::TempDir,
}

impl Cluster {
    /// The company imported into a fresh database and two nodes serving it; `None` without
    /// PostgreSQL.
    async fn start() -> Option<Cluster> {
        let db = Db::create()?;
        let dir = tempfile::tempdir().unwrap();
        let company = support::fixtures().join("company.json");
        admin(&db, dir.path(), &["import", company.to_str().unwrap()]).await;
        let a = Node::spawn(&db, dir.path(), "a").healthy().await;
        let b = Node::spawn(&db, dir.path(), "b").healthy().await;
        Some(Cluster { a, b, db, dir })
    }

    /// A new device's token for `user`, enrolled through the admin command.
    async fn device(&self, user: &str) -> String {
        admin(&self.db, self.dir.path(), &["device", "add", "--user", user]).await
    }

    /// A phone in the test's directory bound to the server at `addr` with `token`.
    fn phone(&self, name: &str, addr: SocketAddr, token: &str) -> Store {
        let mut store = Store::open(self.dir.path().join(format!("{name}.sqlite3"))).unwrap();
        store.bind(&format!("http://{addr}"), token).unwrap();
        store
    }
}

/// The test's database, used from async code. Its client blocks on a runtime of its own, which
/// panics on a runtime's worker thread: every call (and the drop, which drops the database) runs in
/// `block_in_place`, which hands the worker's other tasks to another thread meanwhile.
struct Db(Option<TestDatabase>);

impl Db {
    /// A fresh database; `None` without PostgreSQL.
    fn create() -> Option<Db> {
        tokio::task::block_in_place(support::pg::database).map(|db| Db(Some(db)))
    }

    fn url(&self) -> &str {
        self.0.as_ref().unwrap().url()
    }

    /// A connection of the test's own.
    fn connect(&self) -> PgDatabase {
        tokio::task::block_in_place(|| self.0.as_ref().unwrap().connect(1))
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let db = self.0.take();
        tokio::task::block_in_place(move || drop(db));
    }
}

/// Runs `f` on a connection of `pg` (see [`Db`]).
fn query<T>(pg: &PgDatabase, f: impl FnOnce(&dyn Sql) -> sitesync_core::Result<T>) -> T {
    tokio::task::block_in_place(|| with(pg, f)).unwrap()
}

/// One `sitesync-server serve --database …` process with a data directory and a log of its own.
struct Node {
    process: Process,
    addr: SocketAddr,
    /// Where a first start writes the admin token.
    data: PathBuf,
    log: PathBuf,
}

impl Node {
    /// Starts a node on the test's database without waiting for it.
    fn spawn(db: &Db, dir: &Path, name: &str) -> Node {
        let (addr, data, log) = (
            support::free_addr(),
            dir.join(format!("node-{name}")),
            dir.join(format!("node-{name}.log")),
        );
        let command = Command::new(support::server_bin());
        let own = support::DataDir::with_own_database(&data);
        let process = support::start_with(command, &own, addr, &log, &["--database", db.url()]);
        Node {
            process,
            addr,
            data,
            log,
        }
    }

    /// Waits until the node answers `/healthz` (off the runtime's threads: the wait blocks).
    async fn healthy(mut self) -> Node {
        tokio::task::spawn_blocking(move || {
            support::healthy(&mut self.process, self.addr, &self.log, "a node");
            self
        })
        .await
        .unwrap()
    }

    /// The admin token the node wrote at its first start.
    fn admin_token(&self) -> String {
        let token = std::fs::read_to_string(self.data.join("admin-token")).unwrap();
        token.trim().to_string()
    }
}

/// `sitesync-server admin --database URL --data DIR/admin ARGS…`, off the runtime's threads.
async fn admin(db: &Db, dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["--database".to_string(), db.url().to_string()];
    all.extend(args.iter().map(|a| a.to_string()));
    let data = dir.join("admin");
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = all.iter().map(String::as_str).collect();
        support::admin(&support::DataDir::with_own_database(&data), &args)
    })
    .await
    .unwrap()
}

/// The device id a token names (`sst_<id>_<secret>`).
fn device_of(token: &str) -> String {
    format!("d-{}", token.split('_').nth(1).unwrap())
}

/// `method path` with a bearer token, over HTTP/1.0 (no chunked body to decode): the status and body.
async fn http(addr: SocketAddr, method: &str, path: &str, token: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
        .await
        .expect("no answer within 30 s")
        .unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, body.to_string())
}

/// The labor summary of every site over `from..=to`, unapproved days included, as a node answers it.
async fn labor_report(node: &Node, token: &str, from: NaiveDate, to: NaiveDate) -> serde_json::Value {
    let path = format!("/v1/reports/labor?from={from}&to={to}&by=site&include_unapproved=true");
    let (status, body) = http(node.addr, "GET", &path, token).await;
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// The heads the database holds for a document, sorted (empty if it holds none).
fn server_heads(db: &PgDatabase, doc: &DocId) -> Vec<String> {
    let row = query(db, |sql| {
        sql.first(
            &format!("SELECT heads FROM {DOCS_SCHEMA}.documents WHERE doc_id = ?1"),
            &[doc.to_string().into()],
        )
    });
    let text = row.map(|r| r.text(0).unwrap()).unwrap_or_default();
    sorted(text.split(',').filter(|h| !h.is_empty()).map(str::to_string).collect())
}

/// A phone's heads of a document, sorted.
fn heads(phone: &mut Store, doc: &DocId) -> Vec<String> {
    sorted(phone.heads(doc).unwrap())
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn d(text: &str) -> NaiveDate {
    parse_date(text).unwrap()
}

fn site(id: &str) -> SiteId {
    SiteId::new(id).unwrap()
}

/// The active workers of a site, as the phone's roster has them.
fn workers(phone: &mut Store, site: &SiteId) -> Vec<WorkerId> {
    let roster = phone.roster(site).unwrap();
    roster.workers.into_iter().filter(|w| w.active).map(|w| w.id).collect()
}

/// What [`Watcher`] saw, when.
#[derive(Debug)]
enum Seen {
    Event(WatchEvent),
    /// `watch` returned (it does only when the server refuses the device, or when stopped).
    Ended(sitesync_core::Result<()>),
}

/// A phone kept connected by `watch` in a task of its own; what it sees comes out timestamped.
struct Watcher {
    /// The phone's store file, for reading it on a handle of the test's own.
    path: PathBuf,
    seen: mpsc::UnboundedReceiver<(Instant, Seen)>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Watcher {
    fn start(mut phone: Store) -> Watcher {
        let path = phone.path().to_path_buf();
        let (tx, seen) = mpsc::unbounded_channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let events = tx.clone();
            let on_event = move |e: &WatchEvent| {
                let _ = events.send((Instant::now(), Seen::Event(e.clone())));
            };
            let stopped = async {
                let _ = stopped.await;
            };
            let ended = watch_reporting(
                &mut phone,
                Duration::from_millis(100),
                WatchHooks::default(),
                on_event,
                stopped,
            )
            .await;
            let _ = tx.send((Instant::now(), Seen::Ended(ended)));
        });
        Watcher {
            path,
            seen,
            stop: Some(stop),
            task,
        }
    }

    /// Waits until the phone sees something `wanted` accepts, before `deadline`; when it saw it.
    async fn until(&mut self, deadline: Instant, what: &str, wanted: impl Fn(&Seen) -> bool) -> (Instant, Seen) {
        loop {
            match tokio::time::timeout_at(deadline, self.seen.recv()).await {
                Ok(Some((at, seen))) if wanted(&seen) => return (at, seen),
                Ok(Some((_, Seen::Ended(r)))) => panic!("waiting for {what}, the watching phone stopped: {r:?}"),
                Ok(Some(_)) => {}
                Ok(None) => panic!("waiting for {what}, the watching phone's task ended"),
                Err(_) => panic!("{what}: not before the deadline"),
            }
        }
    }

    /// Waits for the phone's first exchange: it holds the site's document.
    async fn synced(&mut self, site: &SiteId) {
        let doc = DocId::Site(site.clone());
        let deadline = Instant::now() + Duration::from_secs(60);
        self.until(
            deadline,
            "the watching phone's first exchange",
            |s| matches!(s, Seen::Event(WatchEvent::Sync(SyncEvent::Received(d))) if *d == doc),
        )
        .await;
    }

    /// The phone's store on a handle of the test's own.
    fn open(&self) -> Store {
        Store::open(&self.path).unwrap()
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(30), &mut self.task)
            .await
            .expect("the watching phone did not stop")
            .unwrap();
    }
}

/// Waits (`within` at most) until `check` holds, trying every 10 ms.
async fn eventually(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phones_on_two_nodes_converge_live() {
    let Some(cluster) = Cluster::start().await else { return };
    let hz = site("site-hz-01");
    let mut pusher = cluster.phone("pusher", cluster.a.addr, &cluster.device("u-foreman-hz-01").await);
    sync_once(&mut pusher).await.unwrap();
    let token = cluster.device("u-manager-hz-01").await;
    let mut watcher = Watcher::start(cluster.phone("watcher", cluster.b.addr, &token));
    watcher.synced(&hz).await;

    let date = d("2026-11-02");
    let doc = DocId::Day(hz.clone(), date);
    let worker = workers(&mut pusher, &hz).remove(0);
    let item = WorkItemId::new("site-hz-01/wi-1.1").unwrap();
    let line = pusher
        .add_labor(
            &entry(hz.clone(), date, worker, item, WorkDays::parse("1.0").unwrap()),
            None,
        )
        .unwrap();
    let pushed = Instant::now();
    sync_once(&mut pusher).await.unwrap();
    let acknowledged = pushed.elapsed();
    let (arrived, _) = watcher
        .until(
            pushed + CROSSING,
            "the line pushed through A on the phone at B",
            |s| matches!(s, Seen::Event(WatchEvent::Sync(SyncEvent::Received(d))) if *d == doc),
        )
        .await;
    println!(
        "a line pushed through A: acknowledged after {acknowledged:?}; on the phone watching B {:?} after the push \
         began, {:?} after its acknowledgement",
        arrived - pushed,
        arrived.saturating_duration_since(pushed + acknowledged)
    );

    let server = server_heads(&cluster.db.connect(), &doc);
    assert!(!server.is_empty());
    assert_eq!(
        heads(&mut pusher, &doc),
        server,
        "the pushing phone holds what the server holds"
    );
    eventually(CROSSING, "the watching phone at the server's heads", || {
        heads(&mut watcher.open(), &doc) == server
    })
    .await;
    assert_eq!(watcher.open().labor_line(&line.id).unwrap().2, line);
    watcher.stop().await;
}

/// Revokes `device` through node A's admin API; waits until the phone watching B is cut off (within
/// [`CROSSING`]) and refused.
async fn revoke_through_a(cluster: &Cluster, watcher: &mut Watcher, device: &str) -> Duration {
    let revoked = Instant::now();
    let path = format!("/v1/admin/devices/{device}/revoke");
    let (status, body) = http(cluster.a.addr, "POST", &path, &cluster.a.admin_token()).await;
    assert_eq!(status, 200, "{body}");
    // The phone is idle: nothing it sends makes B check its token. Only the revocation can end it.
    let (closed, how) = watcher
        .until(revoked + CROSSING, "B closing the device's connection", |s| {
            matches!(s, Seen::Ended(_) | Seen::Event(WatchEvent::Disconnected { .. }))
        })
        .await;
    // Refused with the closing message, or on trying again: either ends the phone's loop.
    let ended = match how {
        Seen::Ended(r) => r,
        Seen::Event(_) => {
            let deadline = Instant::now() + Duration::from_secs(60);
            match watcher
                .until(deadline, "the watching phone's reconnection", |s| {
                    matches!(s, Seen::Ended(_))
                })
                .await
            {
                (_, Seen::Ended(r)) => r,
                (_, other) => unreachable!("{other:?}"),
            }
        }
    };
    assert!(matches!(ended, Err(sitesync_core::Error::Unauthorized(_))), "{ended:?}");
    closed - revoked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_on_a_cuts_the_device_off_on_b() {
    let Some(cluster) = Cluster::start().await else { return };
    let token = cluster.device("u-foreman-hz-01").await;
    let mut watcher = Watcher::start(cluster.phone("revoked", cluster.b.addr, &token));
    watcher.synced(&site("site-hz-01")).await;

    let closed = revoke_through_a(&cluster, &mut watcher, &device_of(&token)).await;
    println!("revoked through A: B closed the device's connection {closed:?} later");
    watcher.stop().await;
    for node in [&cluster.a, &cluster.b] {
        let mut again = cluster.phone(&format!("again-{}", node.addr.port()), node.addr, &token);
        let err = sync_once(&mut again).await.unwrap_err();
        assert!(matches!(err, sitesync_core::Error::Unauthorized(_)), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_b_did_not_hear_still_cuts_the_device_off() {
    let Some(cluster) = Cluster::start().await else { return };
    let token = cluster.device("u-foreman-hz-01").await;
    let mut watcher = Watcher::start(cluster.phone("revoked", cluster.b.addr, &token));
    watcher.synced(&site("site-hz-01")).await;

    // The nodes' listening sessions end (PostgreSQL restarted, a connection dropped); they listen
    // again a second later, after the revocation was announced to nobody.
    let pg = cluster.db.connect();
    let listening = "FROM pg_stat_activity WHERE application_name = 'sitesync-listen' AND datname = current_database()";
    let cut = query(&pg, |sql| {
        sql.one(&format!("SELECT COUNT(pg_terminate_backend(pid)) {listening}"), &[])?
            .int(0)
    });
    assert_eq!(cut, 2, "each node listens on one session");
    eventually(CROSSING, "the listening sessions gone", || {
        query(&pg, |sql| sql.one(&format!("SELECT COUNT(*) {listening}"), &[])?.int(0)) == 0
    })
    .await;
    let closed = revoke_through_a(&cluster, &mut watcher, &device_of(&token)).await;
    println!("revoked through A while B was not listening: B closed the device's connection {closed:?} later");
    watcher.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_on_either_node_include_everything_acknowledged() {
    let Some(cluster) = Cluster::start().await else { return };
    let (hz, sz) = (site("site-hz-01"), site("site-sz-02"));
    // Two phones on one site through different nodes write the same day documents at the same time.
    let mut phones = [
        (
            cluster.phone("hz-a", cluster.a.addr, &cluster.device("u-foreman-hz-01").await),
            hz.clone(),
            0,
        ),
        (
            cluster.phone("hz-b", cluster.b.addr, &cluster.device("u-manager-hz-01").await),
            hz.clone(),
            1,
        ),
        (
            cluster.phone("sz-b", cluster.b.addr, &cluster.device("u-foreman-sz-02").await),
            sz.clone(),
            0,
        ),
    ];
    for (phone, ..) in &mut phones {
        sync_once(phone).await.unwrap();
    }
    let amounts = ["0.5", "1.0", "1.5"];
    let (mut lines, mut centi) = (0, 0);
    let first = d("2026-11-02");
    for round in 0..4u64 {
        let date = first + chrono::Days::new(round);
        for (phone, site, slot) in &mut phones {
            let workers = workers(phone, site);
            let item = WorkItemId::new(format!("{site}/wi-1.1")).unwrap();
            for (k, amount) in amounts.iter().enumerate() {
                let worker = workers[2 * k + *slot].clone();
                let e = entry(
                    site.clone(),
                    date,
                    worker,
                    item.clone(),
                    WorkDays::parse(amount).unwrap(),
                );
                centi += phone.add_labor(&e, None).unwrap().work_days.centi();
                lines += 1;
            }
        }
        // Both nodes create the day's document at once: neither push may be refused for it.
        let [(p0, ..), (p1, ..), (p2, ..)] = &mut phones;
        let (r0, r1, r2) = tokio::join!(sync_once(p0), sync_once(p1), sync_once(p2));
        for r in [r0, r1, r2] {
            r.unwrap_or_else(|e| {
                panic!(
                    "round {round}: {e}\nA:\n{}\nB:\n{}",
                    support::tail(&cluster.a.log),
                    support::tail(&cluster.b.log)
                )
            });
        }
    }
    for (phone, ..) in &mut phones {
        assert!(phone.pending().unwrap().is_empty(), "every line acknowledged");
    }

    let office = cluster.device("u-office-1").await;
    let last = first + chrono::Days::new(3);
    let on_a = labor_report(&cluster.a, &office, first, last).await;
    let on_b = labor_report(&cluster.b, &office, first, last).await;
    assert_eq!(on_a["rows"], on_b["rows"]);
    assert_eq!(on_a["total"], on_b["total"]);
    assert_eq!(on_a["total"]["lines"], lines, "{on_a}");
    assert_eq!(on_a["total"]["work_days_centi"], centi, "{on_a}");
    let by_site: Vec<(&str, i64)> = on_a["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["key"].as_str().unwrap(), r["lines"].as_i64().unwrap()))
        .collect();
    assert!(by_site.contains(&(hz.as_str(), 24)), "{by_site:?}");
    assert!(by_site.contains(&(sz.as_str(), 12)), "{by_site:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_started_together_migrate_once() {
    let Some(db) = Db::create() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (Node::spawn(&db, dir.path(), "a"), Node::spawn(&db, dir.path(), "b"));
    let (a, b) = tokio::join!(a.healthy(), b.healthy());
    let recorded = query(&db.connect(), |sql| {
        sql.query(
            "SELECT version, COUNT(*) FROM sitesync.schema_migrations GROUP BY version ORDER BY version",
            &[],
        )
    });
    let recorded: Vec<(i64, i64)> = recorded
        .iter()
        .map(|r| (r.int(0).unwrap(), r.int(1).unwrap()))
        .collect();
    let each_once: Vec<(i64, i64)> = POSTGRES_MIGRATIONS.iter().map(|(v, _)| (*v, 1)).collect();
    assert_eq!(recorded, each_once);
    for node in [&a, &b] {
        let log = std::fs::read_to_string(&node.log).unwrap();
        assert!(!log.contains("ERROR"), "{log}");
    }
}

/// The words of the README's line that starts a node on PostgreSQL.
fn readme_postgres_command() -> Vec<String> {
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = std::fs::read_to_string(&readme).unwrap();
    let Some(line) = readme.lines().find(|l| l.contains("serve --database postgres://")) else {
        panic!(
            "README.md has no line with `serve --database postgres://…`: the command that starts a node on \
             PostgreSQL must be there, and this test runs it as written"
        );
    };
    let words: Vec<&str> = line.split_whitespace().map(|w| w.trim_matches('`')).collect();
    let serve = words.iter().position(|w| *w == "serve").unwrap();
    words[serve..]
        .iter()
        .take_while(|w| !(w.starts_with('#') || ["&&", "||", "|", ";", "\\"].contains(w)))
        .map(|w| w.to_string())
        .collect()
}

#[test]
fn the_readme_postgres_command_starts_a_node() {
    let mut args = readme_postgres_command();
    let Some(db) = support::pg::database() else { return };
    let urls = args
        .iter_mut()
        .filter(|w| w.starts_with("postgres://") || w.starts_with("postgresql://"))
        .map(|w| *w = db.url().to_string())
        .count();
    assert_eq!(urls, 1, "one database URL in {args:?}");
    let dir = tempfile::tempdir().unwrap();
    let (addr, log) = (support::free_addr(), dir.path().join("server.log"));
    // Where the README leaves the defaults (8080, ./sitesync-data), a free port and a temp dir.
    for (flag, value) in [
        ("--listen", addr.to_string()),
        ("--data", dir.path().join("data").display().to_string()),
    ] {
        match args.iter().position(|w| w == flag) {
            Some(i) => args[i + 1] = value,
            None => args.extend([flag.to_string(), value]),
        }
    }
    let stderr = std::fs::File::create(&log).unwrap();
    let mut node = Process(
        Command::new(support::server_bin())
            .args(&args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap(),
    );
    support::healthy(&mut node, addr, &log, &format!("the README's command ({args:?})"));
}
