//! The document store's guarantees when several writers share one database: two server nodes on
//! PostgreSQL, or two handles on one SQLite file. The same cases run on both engines where both
//! have the property; the change cursor's ordering is PostgreSQL's alone (SQLite has one writer).

mod support;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use sitesync_core::Store;
use sitesync_core::ids::{DocId, SiteId, WorkItemId, WorkerId, parse_date};
use sitesync_core::store::entry;
use sitesync_core::store::sql::Sql;
use sitesync_core::units::WorkDays;
use sitesync_server::auth::AuthDb;
use sitesync_server::storage::{PgDatabase, open_postgres, with};

/// Opens handles on one database: `open()` gives a new one each call, as another node would.
type Opener = Box<dyn Fn() -> Store + Send + Sync>;

/// Two engines, each with a way to open another handle on the same database, with the fixture
/// company imported through the first.
fn engines() -> Vec<(&'static str, Opener, Box<dyn std::any::Any>)> {
    let mut out: Vec<(&'static str, Opener, Box<dyn std::any::Any>)> = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("documents.sqlite3");
    out.push(("sqlite", Box::new(move || Store::open(&path).unwrap()), Box::new(dir)));
    if let Some(db) = support::pg::database() {
        let docs = documents(&db);
        out.push(("postgres", Box::new(move || node_store(&docs, "node")), Box::new(db)));
    }
    for (_, open, _) in &out {
        let company = sitesync_core::import::read_json(&support::fixtures().join("company.json")).unwrap();
        open().import_company(&company).unwrap();
    }
    out
}

fn site() -> SiteId {
    SiteId::new("site-hz-01").unwrap()
}

/// Writer `w` adds `n` lines to one day, each under a worker of its own, waiting at `start` so
/// that the writers run at the same time.
fn write_lines(store: Store, w: usize, n: usize, start: Arc<Barrier>) -> Store {
    write_days(store, w, n, 1, start)
}

/// [`write_lines`] spread over `days` days from 2026-12-01: line `k` on day `k % days`.
fn write_days(mut store: Store, w: usize, n: usize, days: usize, start: Arc<Barrier>) -> Store {
    let roster = store.roster(&site()).unwrap();
    let item = &roster.work_items[w % roster.work_items.len()];
    start.wait();
    for k in 0..n {
        let worker = &roster.workers[k % roster.workers.len()];
        let date = parse_date("2026-12-01").unwrap() + chrono::Days::new((k % days) as u64);
        let e = sitesync_core::store::entry(
            site(),
            date,
            WorkerId::new(worker.id.as_str()).unwrap(),
            WorkItemId::new(item.id.as_str()).unwrap(),
            WorkDays::parse("0.5").unwrap(),
        );
        store.add_labor(&e, None).unwrap();
    }
    store
}

#[test]
fn concurrent_writers_on_one_document_equal_serial_writes_and_compaction_loses_nothing() {
    for (engine, open, _keep) in engines() {
        let day = DocId::Day(site(), parse_date("2026-12-01").unwrap());
        // Three writers, 40 lines each: more writes than a document keeps as chunks before it is
        // compacted, so compaction runs while the others append.
        let start = Arc::new(Barrier::new(3));
        let writers: Vec<_> = (0..3)
            .map(|w| {
                let (store, start) = (open(), start.clone());
                std::thread::spawn(move || write_lines(store, w, 40, start))
            })
            .collect();
        let mut stores: Vec<Store> = writers.into_iter().map(|t| t.join().unwrap()).collect();
        let mut fresh = open();
        let lines = fresh.day(&site(), parse_date("2026-12-01").unwrap()).unwrap().labor;
        assert_eq!(lines.len(), 120, "{engine}: every line of every writer, once");
        let heads = fresh.heads(&day).unwrap();
        for s in &mut stores {
            // A writer's next read takes in what the others stored.
            assert_eq!(
                s.day(&site(), parse_date("2026-12-01").unwrap()).unwrap().labor.len(),
                120
            );
            assert_eq!(s.heads(&day).unwrap(), heads, "{engine}: one state");
        }
        assert_eq!(fresh.verify().unwrap(), fresh.doc_ids().unwrap().len(), "{engine}");
        let stats = fresh.storage_stats(&day).unwrap().unwrap();
        assert!(
            stats.chunk_count < sitesync_core::store::COMPACT_AFTER_CHUNKS,
            "{engine}: compacted on the way ({stats:?})"
        );
        // What the writers projected, one after another, is what the documents alone give.
        let projected = fresh.projection_dump().unwrap();
        fresh.reindex().unwrap();
        assert_eq!(
            fresh.projection_dump().unwrap(),
            projected,
            "{engine}: projection = rebuild"
        );
    }
}

#[test]
fn compaction_beside_writers_loses_no_chunk() {
    for (engine, open, _keep) in engines() {
        // Two writers append while a third handle compacts over and over: a chunk appended
        // between the compactor's load and its transaction must survive (found 2026-11-30 by
        // review: compaction deleted every chunk without locking the row).
        let start = Arc::new(Barrier::new(3));
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writers: Vec<_> = (0..2)
            .map(|w| {
                let (store, start) = (open(), start.clone());
                std::thread::spawn(move || write_lines(store, w, 40, start))
            })
            .collect();
        let compactor = {
            let (mut store, start, done) = (open(), start.clone(), done.clone());
            std::thread::spawn(move || {
                start.wait();
                let mut rounds = 0;
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    store.compact().unwrap();
                    rounds += 1;
                    // Room for the writers: SQLite's VACUUM takes the whole file while it runs.
                    std::thread::sleep(Duration::from_millis(5));
                }
                rounds
            })
        };
        for w in writers {
            w.join().unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        let rounds = compactor.join().unwrap();
        assert!(rounds > 0, "{engine}: the compactor ran");
        let mut fresh = open();
        let lines = fresh.day(&site(), parse_date("2026-12-01").unwrap()).unwrap().labor;
        assert_eq!(lines.len(), 80, "{engine}: every line survives {rounds} compactions");
        assert_eq!(fresh.verify().unwrap(), fresh.doc_ids().unwrap().len(), "{engine}");
    }
}

#[test]
fn the_same_changes_through_another_node_change_nothing() {
    for (engine, open, _keep) in engines() {
        let (mut a, mut b) = (open(), open());
        let start = Arc::new(Barrier::new(1));
        a = write_lines(a, 0, 3, start);
        let day = DocId::Day(site(), parse_date("2026-12-01").unwrap());
        let bytes = a.export_changes(&day, &[]).unwrap().unwrap();
        let cursor = b.change_cursor().unwrap();
        assert!(!b.merge_changes(&day, &bytes).unwrap(), "{engine}: nothing new");
        assert_eq!(b.change_cursor().unwrap(), cursor, "{engine}: the cursor did not move");
    }
}

/// The documents' schema of a migrated test database, with a pool large enough for every handle a
/// test opens (a node holds three; these tests play several nodes).
fn documents(db: &support::pg::TestDatabase) -> Arc<PgDatabase> {
    sitesync_server::storage::open_postgres(db.url(), 1).unwrap();
    Arc::new(PgDatabase::connect_in(db.url(), 16, Some(sitesync_server::storage::DOCS_SCHEMA)).unwrap())
}

/// A connection of the documents' pool, for holding a transaction open by hand.
fn raw(pg: &Arc<PgDatabase>) -> sitesync_server::storage::PgConnection {
    pg.dedicated().unwrap()
}

/// Opens a transaction on `t` that writes document `doc`, as a commit's first steps do.
fn begin_writing(t: &dyn Sql, doc: &str) {
    t.exec("BEGIN", &[]).unwrap();
    t.exec(
        "UPDATE documents SET version = version + 1 WHERE doc_id = ?1",
        &[doc.into()],
    )
    .unwrap();
}

/// Numbers document `doc` in `t`'s open transaction, as a commit's last step does; returns its number.
fn take_number(t: &dyn Sql, doc: &str) -> i64 {
    let n = t
        .one(
            "UPDATE change_cursor SET cursor = cursor + 1 WHERE id = 1 RETURNING cursor",
            &[],
        )
        .unwrap()
        .int(0)
        .unwrap();
    t.exec(
        "UPDATE documents SET change_seq = ?1 WHERE doc_id = ?2",
        &[n.into(), doc.into()],
    )
    .unwrap();
    n
}

/// Every `(doc, change_seq)` past `cursor`, as a node polling for changes reads them.
fn changed(sql: &dyn Sql, cursor: i64) -> Vec<(String, i64)> {
    sql.query(
        "SELECT doc_id, change_seq FROM documents WHERE change_seq > ?1 ORDER BY change_seq",
        &[cursor.into()],
    )
    .unwrap()
    .iter()
    .map(|r| (r.text(0).unwrap(), r.int(1).unwrap()))
    .collect()
}

#[test]
fn the_cursor_has_no_gap_while_a_numbered_transaction_waits_to_commit() {
    let Some(db) = support::pg::database() else { return };
    let pg = documents(&db);
    let company = sitesync_core::import::read_json(&support::fixtures().join("company.json")).unwrap();
    let mut node = node_store(&pg, "node");
    node.import_company(&company).unwrap();
    let before = node.change_cursor().unwrap() as i64;
    // T1 takes its number, as the last step of a commit does, and waits before COMMIT.
    let t1 = raw(&pg);
    begin_writing(&t1, "site|site-sz-02");
    let n1 = take_number(&t1, "site|site-sz-02");
    // T2, a whole write through another node, commits meanwhile: it must wait for T1's number.
    let t2 = std::thread::spawn(move || {
        let start = Arc::new(Barrier::new(1));
        write_lines(node, 0, 1, start)
    });
    let reader = raw(&pg);
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(25));
        assert_eq!(changed(&reader, before), vec![], "nothing is visible before T1 commits");
    }
    assert!(!t2.is_finished(), "T2 waits on the counter row T1 holds");
    t1.exec("COMMIT", &[]).unwrap();
    let node = t2.join().unwrap();
    let seen = changed(&reader, before);
    assert_eq!(seen[0], ("site|site-sz-02".to_string(), n1), "T1 keeps its number");
    assert!(seen[1..].iter().all(|(_, n)| *n > n1), "T2 is numbered after: {seen:?}");
    assert_eq!(node.change_cursor().unwrap() as i64, seen.last().unwrap().1);
}

#[test]
fn a_transaction_that_numbers_late_is_numbered_after_one_that_committed_meanwhile() {
    let Some(db) = support::pg::database() else { return };
    let pg = documents(&db);
    let company = sitesync_core::import::read_json(&support::fixtures().join("company.json")).unwrap();
    let mut node = node_store(&pg, "node");
    node.import_company(&company).unwrap();
    // T1 writes a document and has not taken its number yet.
    let t1 = raw(&pg);
    begin_writing(&t1, "site|site-nb-03");
    // T2 commits a whole write of another document.
    let node = write_lines(node, 0, 1, Arc::new(Barrier::new(1)));
    let reader = raw(&pg);
    let after_t2 = node.change_cursor().unwrap() as i64;
    // A node that read up to T2's number must still see T1 when it commits: T1's number is higher.
    let n1 = take_number(&t1, "site|site-nb-03");
    t1.exec("COMMIT", &[]).unwrap();
    assert!(n1 > after_t2);
    assert_eq!(changed(&reader, after_t2), vec![("site|site-nb-03".to_string(), n1)]);
}

#[test]
fn readers_never_skip_a_change_under_concurrent_commits_from_two_nodes() {
    let Some(db) = support::pg::database() else { return };
    let pg = documents(&db);
    let company = sitesync_core::import::read_json(&support::fixtures().join("company.json")).unwrap();
    let mut first = node_store(&pg, "node");
    first.import_company(&company).unwrap();
    let start_cursor = first.change_cursor().unwrap() as i64;
    drop(first);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // A poller reads as a node does: everything past its cursor, then moves its cursor to the
    // largest number it saw. A skipped number would be a change it never reads.
    let poller = {
        let (reader, stop) = (raw(&pg), stop.clone());
        std::thread::spawn(move || {
            let (mut cursor, mut seen) = (start_cursor, Vec::new());
            loop {
                let done = stop.load(std::sync::atomic::Ordering::SeqCst);
                for (_, n) in changed(&reader, cursor) {
                    seen.push(n);
                    cursor = cursor.max(n);
                }
                if done {
                    return seen;
                }
            }
        })
    };
    let start = Arc::new(Barrier::new(4));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let store = node_store(&pg, "node");
            let start = start.clone();
            std::thread::spawn(move || write_days(store, w, 25, 25, start))
        })
        .collect();
    let last = writers
        .into_iter()
        .map(|t| t.join().unwrap().change_cursor().unwrap())
        .max()
        .unwrap() as i64;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut seen = poller.join().unwrap();
    seen.sort_unstable();
    // Every number from the start to the last was read at least once (a document written again
    // moves to its newest number, so an older one may be superseded before it is read: but the
    // newest is never skipped, and the largest is the last one given).
    assert_eq!(seen.last().copied(), Some(last), "the poller reached the last change");
    let skipped: Vec<i64> = (start_cursor + 1..=last)
        .filter(|n| !seen.contains(n))
        .filter(|n| {
            // A number no document holds any more was superseded by a later write of the same
            // document, which the poller read: not a skip.
            let reader = raw(&pg);
            !reader
                .query("SELECT 1 FROM documents WHERE change_seq = ?1", &[(*n).into()])
                .unwrap()
                .is_empty()
        })
        .collect();
    assert_eq!(
        skipped,
        Vec::<i64>::new(),
        "numbers a document still holds were never read"
    );
}

/// A node's document store: a handle on a connection of its own.
fn node_store(docs: &Arc<PgDatabase>, name: &str) -> Store {
    Store::open_on(Box::new(docs.dedicated().unwrap()), name).unwrap()
}

/// Waits (10 s at most: the connections' `lock_timeout`) until `n` statements wait for a lock.
fn until_waiting(watcher: &PgDatabase, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting = with(watcher, |sql| {
            sql.one(
                "SELECT COUNT(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                 WHERE NOT l.granted AND a.datname = current_database()",
                &[],
            )?
            .int(0)
        })
        .unwrap();
        if waiting >= n {
            return;
        }
        assert!(Instant::now() < deadline, "{n} writers never waited together");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn two_nodes_creating_one_document_at_once_both_commit() {
    let Some(test) = support::pg::database() else { return };
    let pg = open_postgres(test.url(), 2).unwrap();
    let mut x = node_store(&pg.docs, "node x");
    let company = sitesync_core::import::read_json(&support::fixtures().join("company.json")).unwrap();
    sitesync_server::admin::import_company(&AuthDb::on(pg.auth.clone()), &mut x, &company).unwrap();
    let mut y = node_store(&pg.docs, "node y");
    let site = SiteId::new("site-hz-01").unwrap();
    let date = parse_date("2026-11-02").unwrap();
    let workers = x.roster(&site).unwrap().workers;
    let line = |k: usize| {
        let item = WorkItemId::new("site-hz-01/wi-1.1").unwrap();
        entry(
            site.clone(),
            date,
            workers[k].id.clone(),
            item,
            WorkDays::parse("1.0").unwrap(),
        )
    };
    let (first, second) = (line(0), line(1));

    // Both nodes must reach the insert of the day's new document before either commits: X's commit
    // is held at the change counter, which every writing transaction takes last.
    let blocker = pg.docs.dedicated().unwrap();
    blocker.exec("BEGIN", &[]).unwrap();
    blocker
        .exec("SELECT cursor FROM change_cursor WHERE id = 1 FOR UPDATE", &[])
        .unwrap();
    let watcher = test.connect(1);
    let x = std::thread::spawn(move || x.add_labor(&first, None).map(|_| x));
    until_waiting(&watcher, 1);
    // Y finds no document (X's is not committed) and inserts one: it waits for X's fate.
    let y = std::thread::spawn(move || y.add_labor(&second, None).map(|_| y));
    until_waiting(&watcher, 2);
    blocker.exec("COMMIT", &[]).unwrap();
    drop(blocker);
    drop(x.join().unwrap().unwrap());
    let mut y = y.join().unwrap().expect("the second node's write commits too");

    let mut reader = node_store(&pg.docs, "reader");
    assert_eq!(
        reader.day(&site, date).unwrap().labor.len(),
        2,
        "both lines in the document"
    );
    let projected = reader.totals(Some(&site), date, date, None).unwrap();
    assert_eq!(projected.total.lines, 2, "and in its projection");
    let doc = DocId::Day(site.clone(), date);
    // Y's change was made beside X's (both from the genesis): two heads, as Y stored them.
    assert_eq!(reader.heads(&doc).unwrap().len(), 2);
    assert_eq!(y.heads(&doc).unwrap(), reader.heads(&doc).unwrap());
}

#[test]
fn a_postgres_store_from_before_the_snapshots_table_keeps_its_documents() {
    let Some(db) = support::pg::database() else { return };
    // A document as the SQLite store holds it, written into the schema as step 2 left it (the
    // snapshot inline in the document's row).
    let dir = tempfile::tempdir().unwrap();
    let mut phone = Store::open(dir.path().join("phone.sqlite3")).unwrap();
    let company = sitesync_core::import::read_json(&support::fixtures().join("company.json")).unwrap();
    phone.import_company(&company).unwrap();
    let id = DocId::Site(site());
    let snapshot = phone.export_changes(&id, &[]).unwrap().unwrap();
    let heads = phone.heads(&id).unwrap();
    let steps = sitesync_server::storage::POSTGRES_MIGRATIONS;
    sitesync_server::storage::migrate(&PgDatabase::connect(db.url(), 1).unwrap(), &steps[..2]).unwrap();
    let old = PgDatabase::connect_in(db.url(), 1, Some(sitesync_server::storage::DOCS_SCHEMA)).unwrap();
    with(&old, |sql| {
        sql.exec(
            "INSERT INTO documents (doc_id, kind, site_id, snapshot, snapshot_bytes, heads, version, change_seq,
             updated_at) VALUES (?1, 'site', ?2, ?3, ?4, ?5, 1, 1, 'x')",
            &[
                id.to_string().into(),
                site().to_string().into(),
                snapshot.clone().into(),
                (snapshot.len() as i64).into(),
                heads.join(",").into(),
            ],
        )
    })
    .unwrap();
    drop(old);
    let docs = documents(&db);
    let mut node = node_store(&docs, "node");
    assert_eq!(node.verify().unwrap(), 1);
    assert!(node.knows_all(&id, &heads).unwrap());
    assert_eq!(node.roster(&site()).unwrap(), phone.roster(&site()).unwrap());
    // It takes writes on top, through the moved snapshot.
    let start = Arc::new(Barrier::new(1));
    let mut node = write_lines(node, 0, 1, start);
    let day = DocId::Day(site(), parse_date("2026-12-01").unwrap());
    assert_eq!(node.verify().unwrap(), 2);
    assert!(node.export_changes(&day, &[]).unwrap().is_some());
}

/// The server's push writer never checkpoints SQLite's write-ahead log inside a commit (a push that
/// did waited behind the copy: the steady state's slowest pushes); the checkpoint thread copies it
/// instead, so the log is reused from its start and stays the size of what is written between two
/// checkpoints. Without that thread the log grows with every write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_write_ahead_log_is_copied_off_the_push_writer_and_stays_small() {
    let dir = tempfile::tempdir().unwrap();
    let state = sitesync_server::state::AppState::open(dir.path()).unwrap();
    let wal = dir.path().join("documents.sqlite3-wal");
    let mut sizes = Vec::new();
    for round in 0..10u64 {
        state
            .documents(move |s| {
                if round == 0 {
                    let company = sitesync_core::import::read_json(&support::fixtures().join("company.json")).unwrap();
                    s.import_company(&company).unwrap();
                }
                let roster = s.roster(&site()).unwrap();
                let date = parse_date("2026-12-01").unwrap() + chrono::Days::new(round);
                for (k, worker) in roster.workers.iter().take(40).enumerate() {
                    let item = &roster.work_items[k % roster.work_items.len()];
                    let e = entry(
                        site(),
                        date,
                        WorkerId::new(worker.id.as_str()).unwrap(),
                        WorkItemId::new(item.id.as_str()).unwrap(),
                        WorkDays::from_centi(100).unwrap(),
                    );
                    s.add_labor(&e, None).unwrap();
                }
                Ok(())
            })
            .await
            .unwrap();
        sizes.push(std::fs::metadata(&wal).unwrap().len());
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    eprintln!("write-ahead log after each round: {sizes:?}");
    let (first, last) = (sizes[1], sizes[sizes.len() - 1]);
    assert!(last < first * 2, "the log was reused, not grown: {sizes:?}");
}
