//! Three phones log the same site for three days offline, then reconnect in different orders.

use std::collections::BTreeSet;

use sitesync_core::ids::LineId;
use sitesync_core::labor::LaborPatch;
use sitesync_tests::harness::{TestServer, phone};

use crate::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_offline_phones_converge_with_conflicts_visible_and_nothing_duplicated() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut a = phone(
        dir.path(),
        "foreman",
        &server.url(),
        &server.device("u-foreman-hz-01").await,
    );
    let mut b = phone(
        dir.path(),
        "manager",
        &server.url(),
        &server.device("u-manager-hz-01").await,
    );
    let mut c = phone(dir.path(), "office", &server.url(), &server.device("u-office-1").await);
    for p in [&mut a, &mut b, &mut c] {
        sync(p).await; // each phone receives the rosters it may see
    }
    assert!(a.roster(&hz()).is_ok() && b.roster(&hz()).is_ok() && c.roster(&hz()).is_ok());
    assert_eq!(c.sites().unwrap().len(), 3, "head office sees every site of the org");
    assert_eq!(a.sites().unwrap().len(), 1, "a foreman sees only their site");

    // Offline for three days.
    let days = ["2026-12-01", "2026-12-02", "2026-12-03"];
    let items = ["site-hz-01/wi-4.1", "site-hz-01/wi-3.2"];
    for (i, day) in days.iter().enumerate() {
        for n in 1..=6 {
            let w = format!("w-{:04}", n + i);
            a.add_labor(&entry(day, &w, items[0], "1.0"), None).unwrap();
        }
        for n in 20..=24 {
            b.add_labor(&entry(day, &format!("w-{n:04}"), items[1], "0.5"), None)
                .unwrap();
        }
        c.set_day_info(&hz(), d(day), Some("晴"), None, None).unwrap();
    }
    // The same worker-day entered on two phones, with different values.
    a.add_labor(&entry("2026-12-02", "w-0040", items[0], "1.0"), None)
        .unwrap();
    b.add_labor(&entry("2026-12-02", "w-0040", items[0], "0.5"), None)
        .unwrap();
    // Reconnect in one order, then another, twice round so everyone sees everyone.
    sync(&mut b).await;
    sync(&mut a).await;
    sync(&mut c).await;
    // Concurrent edits of one field while offline again.
    let line = LineId::labor(
        &hz(),
        d("2026-12-01"),
        &"w-0001".parse().unwrap(),
        &items[0].parse().unwrap(),
    );
    a.edit_labor(
        &line,
        &LaborPatch {
            note: Some("上午".into()),
            ..Default::default()
        },
        None,
    )
    .unwrap();
    c.edit_labor(
        &line,
        &LaborPatch {
            note: Some("全天".into()),
            ..Default::default()
        },
        None,
    )
    .unwrap();
    for _ in 0..2 {
        sync(&mut c).await;
        sync(&mut a).await;
        sync(&mut b).await;
    }

    for day in days {
        let on_server = server.store(move |s| s.day(&hz(), d(day)).unwrap()).await;
        for p in [&mut a, &mut b, &mut c] {
            assert_eq!(p.day(&hz(), d(day)).unwrap(), on_server, "{day} on {:?}", p.path());
            assert!(p.pending().unwrap().is_empty());
        }
        let keys: BTreeSet<_> = on_server.labor.iter().map(|l| (&l.worker, &l.work_item)).collect();
        assert_eq!(keys.len(), on_server.labor.len(), "no duplicated line on {day}");
        let expected = 6 + 5 + usize::from(day == "2026-12-02");
        assert_eq!(on_server.labor.len(), expected, "{day}");
    }
    let twice = server.store(|s| s.day(&hz(), d("2026-12-02")).unwrap()).await;
    let w40 = twice.labor.iter().find(|l| l.worker.as_str() == "w-0040").unwrap();
    assert!(
        w40.conflicts.iter().any(|c| c.field == "work_days_centi"),
        "{:?}",
        w40.conflicts
    );
    let edited = a.labor_line(&line).unwrap().2;
    let note = edited
        .conflicts
        .iter()
        .find(|c| c.field == "note")
        .expect("the losing note stays visible");
    let mut both = vec![note.chosen.clone(), note.others[0].clone()];
    both.sort();
    assert_eq!(both, ["上午", "全天"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_of_work_is_one_round_trip_and_the_approval_comes_back() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut foreman = phone(
        dir.path(),
        "foreman",
        &server.url(),
        &server.device("u-foreman-hz-01").await,
    );
    let mut manager = phone(
        dir.path(),
        "manager",
        &server.url(),
        &server.device("u-manager-hz-01").await,
    );
    sync(&mut foreman).await;
    sync(&mut manager).await;
    let roster = foreman.roster(&hz()).unwrap();
    for w in roster.workers.iter().take(30) {
        foreman
            .add_labor(&entry("2026-12-05", w.id.as_str(), "site-hz-01/wi-4.1", "1.0"), None)
            .unwrap();
    }
    foreman.submit_day(&hz(), d("2026-12-05")).unwrap();
    let p = sync(&mut foreman).await;
    assert_eq!(p.pushed, 1, "one document, one push");
    assert!(
        foreman.pending().unwrap().is_empty(),
        "head office has it: the delivery receipt"
    );
    assert!(
        foreman
            .sync_status()
            .unwrap()
            .documents
            .iter()
            .all(|d| d.at_head_office)
    );
    sync(&mut manager).await;
    manager.approve_day(&hz(), d("2026-12-05")).unwrap();
    sync(&mut manager).await;
    sync(&mut foreman).await;
    assert_eq!(
        foreman.day(&hz(), d("2026-12-05")).unwrap().status,
        sitesync_core::labor::DayStatus::Approved
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reinstalled_phone_with_its_old_token_receives_everything_again() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let token = server.device("u-foreman-hz-01").await;
    let mut first = phone(dir.path(), "first", &server.url(), &token);
    let got = sync(&mut first).await;
    assert!(got.received > 0);
    // The app is reinstalled: a new, empty store with the same device token.
    let mut again = phone(dir.path(), "again", &server.url(), &token);
    let got = sync(&mut again).await;
    assert_eq!(
        got.received,
        first.doc_ids().unwrap().len(),
        "the empty store gets every document"
    );
    assert!(again.roster(&hz()).is_ok());
    server.stop().await;
}
