//! The document store on PostgreSQL as several nodes use it: each node's store is a handle of its
//! own on the same tables, and two handles writing one document must both commit. Each test gets a
//! database of its own (see `support::pg`) and is skipped without a server.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sitesync_core::Store;
use sitesync_core::ids::{DocId, SiteId, WorkItemId, parse_date};
use sitesync_core::store::entry;
use sitesync_core::store::sql::Sql;
use sitesync_core::units::WorkDays;
use sitesync_server::auth::AuthDb;
use sitesync_server::storage::{PgDatabase, open_postgres, with};

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
