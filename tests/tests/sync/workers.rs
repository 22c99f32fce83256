//! Workers added on site (#20), end to end: a foreman may write only the pending section of a site's
//! master data, only as pending, in his own name, with values that pass, the ID card sealed (never
//! in clear) and an id derived from it with the org's key — proven with a raw client that skips the
//! phone's checks — and head office confirms or
//! merges over REST, with reports counting a merged worker's lines under the target, once.

use serde_json::{Value, json};
use sitesync_core::ids::{DocId, DocKind, WorkerId, mask_id_card};
use sitesync_core::pii::{OrgPiiKey, OrgPiiSecret};
use sitesync_core::roster::PendingStatus;
use sitesync_core::rules::Violation;
use sitesync_core::store::NewWorker;
use sitesync_core::sync::protocol::DocResult;
use sitesync_core::units::Fen;
use sitesync_tests::crafted::Crafted;
use sitesync_tests::harness::{Api, RawClient, TestServer, phone};

use crate::*;

const CARD: &str = "33010619900101123X";

/// The org's personal-data key, as the pii-key route gives it to an enrolled device.
async fn org_key(api: &Api) -> OrgPiiKey {
    serde_json::from_value(api.json("/v1/org/pii-key", &[]).await).unwrap()
}

/// A site document from its genesis with one pending worker written straight into the table the
/// library keeps it in (`info`, records `pending_workers:{id}`), every field given, [`CARD`]
/// sealed to `key`.
fn pending_doc(id: &str, key: &OrgPiiKey, fields: &[(&str, Value)]) -> Vec<u8> {
    let site = DocId::Site(hz());
    let mut doc = Crafted::new(&site.to_string(), DocKind::Site);
    let record = format!("pending_workers:{id}");
    let mut all: Vec<(&str, Value)> = vec![
        ("name", json!("李四")),
        ("phone", json!("13900001111")),
        ("trade", json!("rebar")),
        ("crew", json!("site-hz-01/crew-1")),
        ("day_rate_fen", json!(35_000)),
        ("overtime_rate_fen", json!(5_000)),
        ("id_card_sealed", json!(key.seal(CARD).unwrap())),
        ("id_card_masked", json!(mask_id_card(CARD))),
        ("added_by", json!("崔贵")),
        ("added_at", json!("2026-12-01T08:00:00+08:00")),
        ("status", json!("pending")),
        ("merged_into", json!("")),
    ];
    for (k, v) in fields {
        match all.iter_mut().find(|(f, _)| f == k) {
            Some(slot) => slot.1 = v.clone(),
            None => all.push((k, v.clone())),
        }
    }
    for (field, value) in all {
        match value {
            Value::String(s) => doc.put("info", &record, field, s.as_str()),
            Value::Number(n) => doc.put("info", &record, field, n.as_i64().unwrap()),
            other => panic!("{other}"),
        };
    }
    doc.bytes()
}

/// The rule a push broke, if its one change was refused.
fn refused(result: &DocResult) -> Option<Violation> {
    match result {
        DocResult::Partial { refused, .. } => refused.first().map(|r| r.violation.clone()),
        _ => None,
    }
}

async fn pending_on_server(server: &TestServer) -> usize {
    server.store(|s| s.roster(&hz()).unwrap().pending_workers.len()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreman_writes_only_honest_pending_workers() {
    let server = TestServer::start().await;
    let mut foreman = RawClient::connect(server.addr, &server.device("u-foreman-hz-01").await)
        .await
        .unwrap();
    foreman.say_hello().await;
    let site = DocId::Site(hz()).to_string();
    let key = org_key(&Api::new(&server, &server.device("u-foreman-hz-01").await)).await;
    let derived = WorkerId::from_id_card_keyed(CARD, &key).unwrap().to_string();
    let pending_doc = |id: &str, fields: &[(&str, Value)]| pending_doc(id, &key, fields);

    // A forged write to the roster itself, and to the dated rates: head office's.
    let mut doc = Crafted::new(&site, DocKind::Site);
    doc.put("workers", "w-0001", "day_rate_fen", 99_999i64);
    let r = foreman.push(vec![(site.clone(), doc.bytes())]).await;
    assert_eq!(refused(&r[0]), Some(Violation::MasterData), "{r:?}");
    let mut doc = Crafted::new(&site, DocKind::Site);
    doc.put("info", "rates:w-0001@2026-12-01", "worker", "w-0001")
        .put("info", "rates:w-0001@2026-12-01", "from", "2026-12-01")
        .put("info", "rates:w-0001@2026-12-01", "day_rate_fen", 99_999i64)
        .put("info", "rates:w-0001@2026-12-01", "overtime_rate_fen", 0i64);
    let r = foreman.push(vec![(site.clone(), doc.bytes())]).await;
    assert_eq!(refused(&r[0]), Some(Violation::MasterData), "{r:?}");
    // A worker he confirms himself.
    let r = foreman
        .push(vec![(
            site.clone(),
            pending_doc(&derived, &[("status", json!("confirmed"))]),
        )])
        .await;
    assert_eq!(refused(&r[0]), Some(Violation::MasterData), "{r:?}");
    // In someone else's name, or in nobody's.
    for name in ["付志", "", "local"] {
        let r = foreman
            .push(vec![(
                site.clone(),
                pending_doc(&derived, &[("added_by", json!(name))]),
            )])
            .await;
        assert!(
            matches!(refused(&r[0]), Some(Violation::ForgedAuthor { .. })),
            "{name:?}: {r:?}"
        );
    }
    // An id that is not the one the ID card derives (another person's, or a made-up one).
    for id in ["w-0001", "w-00000000000000ff"] {
        let r = foreman.push(vec![(site.clone(), pending_doc(id, &[]))]).await;
        assert!(
            matches!(&refused(&r[0]), Some(Violation::Invalid { field, .. }) if field == "id"),
            "{id}: {r:?}"
        );
    }
    // Without a card the id must have a fresh id's shape.
    let no_card = [("id_card_sealed", json!("")), ("id_card_masked", json!(""))];
    let r = foreman
        .push(vec![(site.clone(), pending_doc("w-0001", &no_card))])
        .await;
    assert!(
        matches!(&refused(&r[0]), Some(Violation::Invalid { field, .. }) if field == "id"),
        "{r:?}"
    );
    // The card in clear (PIPL: it enters a document only sealed), beside a sealed one or alone.
    let fresh = WorkerId::fresh().to_string();
    for (id, fields) in [
        (&derived, vec![("id_card", json!(CARD))]),
        (
            &fresh,
            vec![no_card[0].clone(), no_card[1].clone(), ("id_card", json!(CARD))],
        ),
    ] {
        let r = foreman.push(vec![(site.clone(), pending_doc(id, &fields))]).await;
        assert!(
            matches!(&refused(&r[0]), Some(Violation::Invalid { field, .. }) if field == "id_card"),
            "{r:?}"
        );
    }
    // A mask that is not the sealed card's (it would show another person), a card sealed to
    // another org's key (the server cannot open it), a seal that is not one.
    let other_org = OrgPiiSecret::generate().unwrap().public("org-other");
    for fields in [
        vec![("id_card_masked", json!(mask_id_card("11010119800101999X")))],
        vec![("id_card_sealed", json!(other_org.seal(CARD).unwrap()))],
        vec![("id_card_sealed", json!("AAAA"))],
    ] {
        let r = foreman.push(vec![(site.clone(), pending_doc(&derived, &fields))]).await;
        assert!(
            matches!(&refused(&r[0]), Some(Violation::Invalid { field, .. }) if field.starts_with("id_card")),
            "{fields:?}: {r:?}"
        );
    }
    // Values: a crew the site does not have, a negative rate, no name.
    for (field, value) in [
        ("crew", json!("site-hz-01/crew-99")),
        ("day_rate_fen", json!(-1)),
        ("name", json!(" ")),
    ] {
        let r = foreman
            .push(vec![(site.clone(), pending_doc(&derived, &[(field, value.clone())]))])
            .await;
        assert!(
            matches!(refused(&r[0]), Some(Violation::Invalid { .. })),
            "{field}={value}: {r:?}"
        );
    }
    assert_eq!(pending_on_server(&server).await, 0, "nothing refused was stored");

    // The honest add is stored, and the worker is pending on the server's roster.
    let r = foreman.push(vec![(site.clone(), pending_doc(&derived, &[]))]).await;
    assert!(matches!(r[0], DocResult::Synced(_)), "{r:?}");
    let roster = server.store(|s| s.roster(&hz()).unwrap()).await;
    let w = roster.worker(&WorkerId::new(&derived).unwrap()).unwrap();
    assert!(w.pending);
    assert_eq!(roster.pending_workers[0].added_by, "崔贵");
    // Once head office confirmed it, the foreman cannot touch it any more.
    let office = Api::new(&server, &server.device("u-office-1").await);
    let (status, _) = office
        .post(
            "/v1/workers/confirm",
            &json!({ "site": "site-hz-01", "worker": derived }),
        )
        .await;
    assert_eq!(status, 200);
    let r = foreman
        .push(vec![(site.clone(), pending_doc(&derived, &[("phone", json!("1"))]))])
        .await;
    assert_eq!(refused(&r[0]), Some(Violation::MasterData), "{r:?}");
}

/// The labor report by worker of site-hz-01 in December 2026, unapproved days included.
async fn by_worker(api: &Api) -> Value {
    api.json(
        "/v1/reports/labor",
        &[
            ("site", "site-hz-01"),
            ("from", "2026-12-01"),
            ("to", "2026-12-31"),
            ("by", "worker"),
            ("include_unapproved", "true"),
        ],
    )
    .await
}

/// The attendance grid of site-hz-01 for December 2026, unapproved days included.
async fn attendance(api: &Api) -> Value {
    api.json(
        "/v1/reports/attendance",
        &[
            ("site", "site-hz-01"),
            ("month", "2026-12"),
            ("include_unapproved", "true"),
        ],
    )
    .await
}

/// The row of `rows` whose `key_field` is `key`.
fn find<'a>(rows: &'a Value, key_field: &str, key: &str) -> Option<&'a Value> {
    rows.as_array().unwrap().iter().find(|r| r[key_field] == key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_office_merges_a_worker_added_twice_and_nothing_is_lost_or_counted_twice() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let token = server.device("u-foreman-hz-01").await;
    let mut p = phone(dir.path(), "崔贵", &server.url(), &token);
    sync(&mut p).await;
    let w1 = WorkerId::new("w-0001").unwrap();
    let known = p.roster(&hz()).unwrap().worker(&w1).unwrap().clone();
    // Offline: the foreman adds w-0001 again (no ID card, same name and phone) and a newcomer, and
    // logs them at once.
    let new = |name: &str, phone: &str| NewWorker {
        site: hz(),
        name: name.into(),
        phone: phone.into(),
        trade: "rebar".into(),
        crew: known.crew.clone(),
        day_rate: Fen::new("r", 40_000).unwrap(),
        overtime_rate: Fen::new("r", 5_000).unwrap(),
        id_card: None,
    };
    let again = p.add_worker(&new(&known.name, &known.phone)).unwrap();
    let newcomer = p.add_worker(&new("孙七", "13900005555")).unwrap();
    p.add_labor(&entry("2026-12-01", again.as_str(), "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    p.add_labor(
        &entry("2026-12-01", newcomer.as_str(), "site-hz-01/wi-4.1", "1.0"),
        None,
    )
    .unwrap();
    p.add_labor(&entry("2026-12-02", "w-0001", "site-hz-01/wi-4.1", "0.5"), None)
        .unwrap();
    let progress = sync(&mut p).await;
    assert!(
        progress.refused.is_empty() && progress.refused_changes.is_empty(),
        "{progress:?}"
    );

    let office = Api::new(&server, &server.device("u-office-1").await);
    let foreman = Api::new(&server, &token);
    let listed = office.json("/v1/workers/pending", &[("site", "site-hz-01")]).await;
    assert_eq!(listed["workers"].as_array().unwrap().len(), 2, "{listed}");
    assert!(
        listed["possible_duplicates"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["worker"] == again.as_str() && d["other"] == "w-0001"),
        "{listed}"
    );
    // Foremen and site managers neither list nor decide.
    let (status, _) = foreman.get("/v1/workers/pending", &[("site", "site-hz-01")]).await;
    assert_eq!(status, 403);
    let (status, _) = foreman
        .post(
            "/v1/workers/merge",
            &json!({ "site": "site-hz-01", "worker": again, "into": "w-0001" }),
        )
        .await;
    assert_eq!(status, 403);

    let labor_before = by_worker(&office).await;
    let grid_before = attendance(&office).await;
    let merged_days = find(&labor_before["rows"], "key", again.as_str()).unwrap()["work_days_centi"].clone();
    assert_eq!(merged_days, 100);
    let (status, body) = office
        .post(
            "/v1/workers/merge",
            &json!({ "site": "site-hz-01", "worker": again, "into": "w-0001" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["counts_as"], "w-0001");
    // Merging again into the same worker changes nothing; into another, or confirming, conflicts.
    let (status, _) = office
        .post(
            "/v1/workers/merge",
            &json!({ "site": "site-hz-01", "worker": again, "into": "w-0001" }),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = office
        .post("/v1/workers/confirm", &json!({ "site": "site-hz-01", "worker": again }))
        .await;
    assert_eq!(status, 409);
    let (status, _) = office
        .post(
            "/v1/workers/confirm",
            &json!({ "site": "site-hz-01", "worker": "w-00000000000000aa" }),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = office
        .post(
            "/v1/workers/confirm",
            &json!({ "site": "site-hz-01", "worker": newcomer }),
        )
        .await;
    assert_eq!(status, 200);

    let labor_after = by_worker(&office).await;
    let grid_after = attendance(&office).await;
    assert_eq!(
        labor_before["total"], labor_after["total"],
        "nothing lost or counted twice"
    );
    assert_eq!(grid_before["work_days_centi"], grid_after["work_days_centi"]);
    assert_eq!(grid_before["cost_fen"], grid_after["cost_fen"]);
    assert!(
        find(&labor_after["rows"], "key", again.as_str()).is_none(),
        "{labor_after}"
    );
    let target = find(&labor_after["rows"], "key", "w-0001").unwrap();
    let target_before = find(&labor_before["rows"], "key", "w-0001").unwrap();
    assert_eq!(
        target["work_days_centi"].as_i64().unwrap(),
        target_before["work_days_centi"].as_i64().unwrap() + 100
    );
    assert_eq!(target["label"], known.name);
    assert!(
        find(&grid_after["rows"], "worker", again.as_str()).is_none(),
        "{grid_after}"
    );
    let grid_row = find(&grid_after["rows"], "worker", "w-0001").unwrap();
    assert_eq!(grid_row["days"][0], 100);
    assert_eq!(grid_row["days"][1], 50);

    // The phone learns the decisions at its next sync and keeps logging the merged id's old days.
    sync(&mut p).await;
    let roster = p.roster(&hz()).unwrap();
    assert_eq!(roster.resolve_worker(&again), w1);
    assert_eq!(
        roster.pending_worker(&newcomer).unwrap().status,
        PendingStatus::Confirmed
    );
    assert!(!roster.worker(&newcomer).unwrap().pending);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_anomaly_report_compares_a_line_with_the_rate_in_force_on_its_date() {
    let server = TestServer::start().await;
    let w1 = WorkerId::new("w-0001").unwrap();
    let (old, raised) = server
        .store(move |s| {
            let old = s.roster(&hz()).unwrap().worker(&w1).unwrap().day_rate;
            let raised = Fen::new("r", old.fen() + 3_000).unwrap();
            s.set_rate(&hz(), &w1, d("2026-12-10"), raised, Fen::default()).unwrap();
            s.set_user("付志").unwrap();
            // Before the raise at the old rate, after it at the new one: both as in force.
            s.add_labor(&entry("2026-12-09", "w-0001", "site-hz-01/wi-4.1", "1.0"), None)
                .unwrap();
            s.add_labor(&entry("2026-12-10", "w-0001", "site-hz-01/wi-4.1", "1.0"), None)
                .unwrap();
            // After the raise at the old rate: a mismatch.
            let mut e = entry("2026-12-11", "w-0001", "site-hz-01/wi-4.1", "1.0");
            e.day_rate = Some(old);
            s.add_labor(&e, None).unwrap();
            (old, raised)
        })
        .await;
    let office = Api::new(&server, &server.device("u-office-1").await);
    let list = office
        .json(
            "/v1/reports/anomalies",
            &[
                ("site", "site-hz-01"),
                ("from", "2026-12-01"),
                ("to", "2026-12-12"),
                ("today", "2026-12-12"),
            ],
        )
        .await;
    let mismatches: Vec<&Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "rate_mismatch")
        .collect();
    assert_eq!(mismatches.len(), 1, "{list}");
    assert_eq!(mismatches[0]["date"], "2026-12-11");
    assert_ne!(old, raised);
}

/// Head office sets a worker's rates from a date on over REST (`POST /v1/workers/rate`): the rate
/// reaches the phone and a new line on that date takes it; the same rates again change nothing;
/// bad input is a 400 that changes nothing; foremen and site managers are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_office_sets_a_rate_with_an_effective_date_over_rest() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let token = server.device("u-foreman-hz-01").await;
    let mut p = phone(dir.path(), "p", &server.url(), &token);
    sync(&mut p).await;
    let office = Api::new(&server, &server.device("u-office-1").await);
    let manager = Api::new(&server, &server.device("u-manager-hz-01").await);
    let foreman = Api::new(&server, &token);
    let rate = json!({
        "site": "site-hz-01", "worker": "w-0001", "from": "2026-12-10",
        "day_rate_fen": 45_500, "overtime_rate_fen": 8_500
    });
    let rates = || server.store(|s| s.roster(&hz()).unwrap().rates);
    for api in [&foreman, &manager] {
        assert_eq!(api.post("/v1/workers/rate", &rate).await.0, 403);
    }
    assert!(rates().await.is_empty());
    // Bad input: each a 400, nothing written.
    for (field, value) in [
        ("day_rate_fen", json!(-1)),
        ("overtime_rate_fen", json!(10_000_001)),
        ("worker", json!("w-9999")),
        ("worker", json!("")),
        ("from", json!("2026-13-01")),
        ("site", json!("site-nowhere")),
    ] {
        let mut bad = rate.clone();
        bad[field] = value.clone();
        let (status, body) = office.post("/v1/workers/rate", &bad).await;
        assert!(
            status == 400 || (field == "site" && status == 403),
            "{field}={value}: {status} {body}"
        );
    }
    let mut unknown = rate.clone();
    unknown["bonus"] = json!(1);
    assert_eq!(office.post("/v1/workers/rate", &unknown).await.0, 400);
    assert!(rates().await.is_empty(), "bad input changed nothing");

    let (status, body) = office.post("/v1/workers/rate", &rate).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["changed"], true);
    let (status, body) = office.post("/v1/workers/rate", &rate).await;
    assert_eq!((status, &body["changed"]), (200, &json!(false)), "{body}");
    assert_eq!(rates().await.len(), 1);

    sync(&mut p).await;
    let r = p.roster(&hz()).unwrap();
    let w = WorkerId::new("w-0001").unwrap();
    assert_eq!(r.rate_on(&w, d("2026-12-10")).0.fen(), 45_500);
    assert_ne!(r.rate_on(&w, d("2026-12-09")).0.fen(), 45_500);
    let line = p
        .add_labor(&entry("2026-12-11", "w-0001", "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    assert_eq!(line.day_rate.fen(), 45_500);
}
