//! Trust in the data (issue #13, part 3): the server checks every pushed document as an honest phone
//! checks it before writing, refuses what fails with a typed reason for that document only, and
//! keeps serving — reports included — whatever older data it already holds. Each test is one
//! reproduction from the security review, sent by a crafted client that skips the phone's checks.
//!
//! "Already stored" is what the server held before it checked pushes: such documents are put into
//! its store the way a replica merges them (`Store::merge_changes`, which does not check), and the
//! server must not wedge on them.

use serde_json::Value;
use sitesync_core::ids::{DocId, DocKind};
use sitesync_core::sync::protocol::{DocResult, Refusal};
use sitesync_tests::crafted::{Crafted, Line};
use sitesync_tests::harness::{Api, RawClient, TestServer, phone};

use crate::*;

/// Whether the server refused a document as invalid on `field`.
/// Whether the push was refused for `field`: its change refused alone by the gate (what a document
/// of one bad change gets), or the whole document by the backstop check.
fn invalid_on(result: &DocResult, field: &str) -> bool {
    match result {
        DocResult::Refused {
            reason: Refusal::Invalid { field: f, .. },
            ..
        } => f == field,
        DocResult::Partial { refused, .. } => refused
            .iter()
            .any(|r| matches!(&r.violation, sitesync_core::rules::Violation::Invalid { field: f, .. } if f == field)),
        _ => false,
    }
}

/// A raw connection of a fixture user's new device, welcomed.
async fn crafted_client(server: &TestServer, user: &str) -> RawClient {
    let mut c = RawClient::connect(server.addr, &server.device(user).await)
        .await
        .unwrap();
    c.say_hello().await;
    c
}

/// Puts a document into the server's store as a replica merges it: no checks, as before part 3.
async fn already_stored(server: &TestServer, id: DocId, bytes: Vec<u8>) {
    server.store(move |s| s.merge_changes(&id, &bytes)).await.unwrap();
}

/// The anomalies of site-hz-01 between two dates, as of the last.
async fn anomalies(api: &Api, from: &str, to: &str) -> Vec<Value> {
    let list = api
        .json(
            "/v1/reports/anomalies",
            &[("site", "site-hz-01"), ("from", from), ("to", to), ("today", to)],
        )
        .await;
    list.as_array().unwrap().clone()
}

fn of_kind<'a>(list: &'a [Value], kind: &str) -> Vec<&'a Value> {
    list.iter().filter(|a| a["kind"] == kind).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_orgs_day_holding_our_line_id_cannot_block_our_pushes() {
    let server = TestServer::start().await;
    server.add_org("org-other", "site-other-01", "u-other").await;
    let date = "2026-11-20";
    let ours = DocId::Day(hz(), d(date));
    let our_line = Line::of(&ours, "w-0001", "site-hz-01/wi-4.1");
    // Another org writes a line under our line's derived id into its own day.
    let theirs = DocId::Day("site-other-01".parse().unwrap(), d(date));
    let bytes = Crafted::day(&theirs)
        .labor(&Line {
            id: our_line.id.clone(),
            ..Line::of(&theirs, "w-0001", "site-hz-01/wi-4.1")
        })
        .bytes();
    let mut other = crafted_client(&server, "u-other").await;
    let results = other.push(vec![(theirs.to_string(), bytes.clone())]).await;
    assert!(invalid_on(&results[0], "id"), "{results:?}");
    // Before lines were checked the server took exactly this; it must not matter now.
    already_stored(&server, theirs.clone(), bytes).await;

    // Our foreman logs that very line and another day: both reach head office at the first try
    // (this once failed on UNIQUE(labor_lines.line_id), and the phone retried ~50 times a second).
    let dir = tempfile::tempdir().unwrap();
    let mut p = phone(dir.path(), "f", &server.url(), &server.device("u-foreman-hz-01").await);
    sync(&mut p).await;
    let line = p
        .add_labor(&entry(date, "w-0001", "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    assert_eq!(line.id.as_str(), our_line.id);
    p.add_labor(&entry("2026-11-21", "w-0002", "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    let progress = sync(&mut p).await;
    assert_eq!(progress.pushed, 2, "{progress:?}");
    assert!(p.pending().unwrap().is_empty());
    // Head office finds the line in our day, not in theirs.
    let id = line.id.clone();
    let (site, on, found) = server.store(move |s| s.labor_line(&id).unwrap()).await;
    assert_eq!((site, on, found.worker.as_str()), (hz(), d(date), "w-0001"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_negative_work_day_is_refused_alone_and_the_rest_of_the_group_commit_lands() {
    let server = TestServer::start().await;
    let bad_day = DocId::Day(hz(), d("2026-11-10"));
    let good_day = DocId::Day(hz(), d("2026-11-11"));
    let bad = Crafted::day(&bad_day)
        .labor(&Line {
            work_days_centi: -100,
            ..Line::of(&bad_day, "w-0001", "site-hz-01/wi-4.1")
        })
        .bytes();
    let good = Crafted::day(&good_day)
        .labor(&Line::of(&good_day, "w-0001", "site-hz-01/wi-4.1"))
        .bytes();
    let mut crafted = crafted_client(&server, "u-foreman-hz-01").await;
    let dir = tempfile::tempdir().unwrap();
    let mut manager = phone(dir.path(), "m", &server.url(), &server.device("u-manager-hz-01").await);
    sync(&mut manager).await;
    manager
        .add_labor(&entry("2026-11-12", "w-0003", "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    // The bad document, a good one beside it, and another device pushing at the same time.
    let (results, progress) = tokio::join!(
        crafted.push(vec![(bad_day.to_string(), bad.clone()), (good_day.to_string(), good)]),
        sync(&mut manager)
    );
    assert!(invalid_on(&results[0], "work_days"), "{results:?}");
    assert!(matches!(results[1], DocResult::Synced(_)), "{results:?}");
    assert_eq!(progress.pushed, 1);
    let (bad_heads, good_lines) = server
        .store(move |s| {
            let good = s.day(&hz(), d("2026-11-11")).unwrap().labor.len();
            (s.heads(&bad_day).unwrap(), good)
        })
        .await;
    assert!(bad_heads.is_empty(), "nothing of the refused document is stored");
    assert_eq!(good_lines, 1);

    // Stored before it was checked: the line is left out of the sums and shown as an anomaly, and
    // pushes of the same batch and of the same document still land.
    already_stored(&server, DocId::Day(hz(), d("2026-11-10")), bad).await;
    manager
        .set_day_info(&hz(), d("2026-11-10"), Some("晴"), None, None)
        .unwrap();
    manager
        .add_labor(&entry("2026-11-13", "w-0004", "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    let progress = sync(&mut manager).await;
    assert_eq!(progress.pushed, 2, "{progress:?}");
    // The manager's phone received the damaged day and reads it without the bad line.
    let sheet = manager.day(&hz(), d("2026-11-10")).unwrap();
    assert!(sheet.labor.is_empty() && sheet.weather == "晴");
    let office = Api::new(&server, &server.device("u-office-1").await);
    let list = anomalies(&office, "2026-11-10", "2026-11-13").await;
    let flagged = of_kind(&list, "invalid_line");
    assert_eq!(flagged.len(), 1, "{list:?}");
    assert!(flagged[0]["detail"].as_str().unwrap().contains("work_days"), "{list:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_in_the_year_ten_thousand_is_refused_and_cannot_hide_missing_logs() {
    let server = TestServer::start().await;
    let id = "day|site-hz-01|+10000-01-01";
    let doc: DocId = id.parse().unwrap();
    let bytes = Crafted::new(id, DocKind::Day)
        .labor(&Line::of(&doc, "w-0001", "site-hz-01/wi-4.1"))
        .bytes();
    let mut crafted = crafted_client(&server, "u-foreman-hz-01").await;
    let results = crafted.push(vec![(id.to_string(), bytes.clone())]).await;
    assert!(invalid_on(&results[0], "date"), "{results:?}");
    already_stored(&server, doc, bytes).await;

    // A real day is logged and submitted; the next days are missing.
    let dir = tempfile::tempdir().unwrap();
    let mut p = phone(dir.path(), "f", &server.url(), &server.device("u-foreman-hz-01").await);
    sync(&mut p).await;
    p.add_labor(&entry("2026-11-02", "w-0001", "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    p.submit_day(&hz(), d("2026-11-02")).unwrap();
    sync(&mut p).await;

    let office = Api::new(&server, &server.device("u-office-1").await);
    let queue = office.json("/v1/approvals", &[]).await;
    let dates: Vec<&str> = queue
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["date"].as_str().unwrap())
        .collect();
    assert_eq!(dates, ["2026-11-02"]);
    let list = anomalies(&office, "2026-11-01", "2026-11-05").await;
    let missing: Vec<&str> = of_kind(&list, "missing_log")
        .iter()
        .map(|a| a["date"].as_str().unwrap())
        .collect();
    assert_eq!(missing, ["2026-11-03", "2026-11-04", "2026-11-05"], "{list:?}");
    let summary = office
        .json(
            "/v1/reports/labor",
            &[
                ("from", "2026-11-01"),
                ("to", "2026-11-30"),
                ("include_unapproved", "true"),
            ],
        )
        .await;
    assert_eq!(summary["total"]["lines"], 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_past_the_bound_is_refused_and_never_wraps_a_sum() {
    let server = TestServer::start().await;
    let day = DocId::Day(hz(), d("2026-11-16"));
    // ¥61,489,146,912,364,838.72 a day, for three days: 2⁶⁴ fen, which once wrapped.
    let huge = Line {
        work_days_centi: 300,
        hours_min: 600,
        rate_fen: 6_148_914_691_236_483_872,
        ..Line::of(&day, "w-0001", "site-hz-01/wi-4.1")
    };
    let honest = Line::of(&day, "w-0002", "site-hz-01/wi-4.1");
    let bytes = Crafted::day(&day).labor(&huge).labor(&honest).bytes();
    let mut crafted = crafted_client(&server, "u-foreman-hz-01").await;
    let results = crafted.push(vec![(day.to_string(), bytes.clone())]).await;
    assert!(invalid_on(&results[0], "rate"), "{results:?}");
    // A rate that is merely high passes: ¥99,999.99 a day for three days computes exactly.
    let dear_day = DocId::Day(hz(), d("2026-11-17"));
    let dear = Line {
        work_days_centi: 300,
        hours_min: 600,
        rate_fen: 9_999_999,
        ..Line::of(&dear_day, "w-0001", "site-hz-01/wi-4.1")
    };
    let results = crafted
        .push(vec![(
            dear_day.to_string(),
            Crafted::day(&dear_day).labor(&dear).bytes(),
        )])
        .await;
    assert!(matches!(results[0], DocResult::Synced(_)), "{results:?}");

    already_stored(&server, day, bytes).await;
    let office = Api::new(&server, &server.device("u-office-1").await);
    let summary = office
        .json(
            "/v1/reports/labor",
            &[
                ("from", "2026-11-16"),
                ("to", "2026-11-17"),
                ("include_unapproved", "true"),
                ("by", "day"),
            ],
        )
        .await;
    let cost: Vec<i64> = summary["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["cost_fen"].as_i64().unwrap())
        .collect();
    // The honest line alone on the 16th; 3 × 9,999,999 fen on the 17th.
    assert_eq!(cost, [43_000, 29_999_997], "{summary}");
    assert_eq!(summary["total"]["cost_fen"], 43_000 + 29_999_997);
    let list = anomalies(&office, "2026-11-16", "2026-11-17").await;
    assert_eq!(of_kind(&list, "invalid_line").len(), 1, "{list:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_of_another_site_is_refused_and_an_anomaly_once_stored() {
    let server = TestServer::start().await;
    let day = DocId::Day(hz(), d("2026-11-18"));
    // w-0054 works on site-sz-02; logged on site-hz-01 at ¥99,999 a day.
    let stranger = Line {
        rate_fen: 9_999_900,
        ..Line::of(&day, "w-0054", "site-hz-01/wi-4.1")
    };
    let bytes = Crafted::day(&day).labor(&stranger).bytes();
    let mut crafted = crafted_client(&server, "u-foreman-hz-01").await;
    let results = crafted.push(vec![(day.to_string(), bytes.clone())]).await;
    assert!(invalid_on(&results[0], "worker"), "{results:?}");
    let reason = match &results[0] {
        DocResult::Refused {
            reason: Refusal::Invalid { reason, .. },
            ..
        } => reason.clone(),
        DocResult::Partial { refused, .. } => refused[0].violation.to_string(),
        other => panic!("{other:?}"),
    };
    assert!(reason.contains("w-0054"), "{reason}");

    already_stored(&server, day, bytes).await;
    let office = Api::new(&server, &server.device("u-office-1").await);
    let list = anomalies(&office, "2026-11-18", "2026-11-18").await;
    let flagged = of_kind(&list, "not_on_roster");
    assert_eq!(flagged.len(), 1, "{list:?}");
    assert_eq!(flagged[0]["worker"], "w-0054");
    assert!(
        flagged[0]["detail"].as_str().unwrap().contains("¥99,999.00"),
        "{list:?}"
    );
    server.stop().await;
}
