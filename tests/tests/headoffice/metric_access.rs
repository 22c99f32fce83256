//! A key result is fed only figures its org and its owner may see (issue #13, part 3): another org's
//! key result bound to our site, or a foreman's bound to a site not theirs, is refused when pushed,
//! and if it is already stored the feed passes it by, on every feed, and the board says why.

use std::time::Duration;

use sitesync_core::ids::DocId;
use sitesync_core::import::Company;
use sitesync_core::okr::{Cycle, CycleKind, Direction, KrKind, Metric};
use sitesync_core::store::{KrView, NewKeyResult};
use sitesync_core::sync::protocol::{DocResult, Refusal};
use sitesync_tests::harness::{Api, RawClient, TestServer, fixtures, phone};

use crate::*;

const ORG: &str = "org-zhuyuan";
const CYCLE: &str = "2026-Q4";

fn cycle(org: &str) -> Cycle {
    Cycle::new(
        org,
        CYCLE,
        CycleKind::Quarter,
        "2026 Q4",
        "",
        parse_date("2026-11-01").unwrap(),
    )
}

fn cost_kr(objective: &str, owner: &str, site: &str) -> NewKeyResult {
    NewKeyResult {
        objective: objective.into(),
        title: format!("{site} 人工成本"),
        owner: owner.into(),
        unit: "¥".into(),
        start_milli: 0,
        target_milli: Some(2_000_000_000),
        direction: Direction::AtMost,
        kind: KrKind::Baseline,
        weight: 1,
        due: Some(parse_date("2026-12-31").unwrap()),
        metric: Some(Metric::LaborCost {
            site: site.into(),
            work_item: None,
        }),
    }
}

/// A cycle of `org` with one key result bound to `site`, written on a scratch store that holds every
/// fixture site (so the phone's own check, "a site this store holds", passes): the document, the
/// bytes a crafted client pushes, and the key result's id.
fn crafted_cycle(org: &str, owner: &str, site: &str) -> (DocId, Vec<u8>, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut s = sitesync_core::Store::open(dir.path().join("x.sqlite3")).unwrap();
    let company: Company = sitesync_core::import::read_json(&fixtures().join("company.json")).unwrap();
    s.import_company(&company).unwrap();
    s.put_cycle(&cycle(org)).unwrap();
    let o = s.add_objective(org, CYCLE, "成本", owner, "", None).unwrap();
    let kr = s.add_key_result(org, CYCLE, &cost_kr(&o.id, owner, site)).unwrap();
    let id = DocId::Okr(org.parse().unwrap(), CYCLE.into());
    let bytes = s.export_changes(&id, &[]).unwrap().unwrap();
    (id, bytes, kr.id)
}

/// Pushes `bytes` as a new device of `user` and insists they are refused as invalid on the metric.
async fn refused_on_metric(server: &TestServer, user: &str, id: &DocId, bytes: Vec<u8>) {
    let mut c = RawClient::connect(server.addr, &server.device(user).await)
        .await
        .unwrap();
    c.say_hello().await;
    let results = c.push(vec![(id.to_string(), bytes)]).await;
    // A foreman may not shape a cycle at all since writes are checked per change: the key result is
    // refused for that rule before its metric is read; a document that gets past the rules is
    // refused on the metric.
    let refused = match &results[0] {
        DocResult::Refused {
            reason: Refusal::Invalid { field, .. },
            ..
        } => field == "metric",
        DocResult::Partial { refused, .. } => refused.iter().any(|r| {
            matches!(&r.violation, sitesync_core::rules::Violation::Invalid { field, .. } if field == "metric")
                || matches!(r.violation, sitesync_core::rules::Violation::OkrStructure { .. })
        }),
        _ => false,
    };
    assert!(refused, "{user}: {results:?}");
}

/// A key result of a cycle on the server.
async fn server_kr(server: &TestServer, org: &str, kr: &str) -> KrView {
    let (org, kr) = (org.to_string(), kr.to_string());
    server
        .store(move |s| {
            let board = s.okr_board(&org, CYCLE, parse_date("2026-12-01").unwrap()).unwrap();
            board
                .objectives
                .into_iter()
                .flat_map(|o| o.key_results)
                .find(|k| k.kr.id == kr)
                .unwrap()
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_result_is_fed_only_what_its_org_and_owner_may_read() {
    let server = TestServer::start().await;
    server.add_org("org-other", "site-other-01", "u-other").await;
    let dir = tempfile::tempdir().unwrap();
    let mut office = phone(dir.path(), "office", &server.url(), &server.device("u-office-1").await);
    let mut foreman = phone(
        dir.path(),
        "foreman",
        &server.url(),
        &server.device("u-foreman-hz-01").await,
    );
    sync(&mut office).await;
    sync(&mut foreman).await;

    // Head office binds a key result to site-hz-01's labor cost: the control, which is fed.
    office.put_cycle(&cycle(ORG)).unwrap();
    let o = office
        .add_objective(ORG, CYCLE, "控制人工成本", "付志", "", None)
        .unwrap();
    let ours = office
        .add_key_result(ORG, CYCLE, &cost_kr(&o.id, "付志", "site-hz-01"))
        .unwrap();
    sync(&mut office).await;
    sync(&mut foreman).await;

    // The foreman's own phone refuses to bind a key result to a site it does not hold …
    let err = foreman
        .add_key_result(ORG, CYCLE, &cost_kr(&o.id, "崔贵", "site-sz-02"))
        .unwrap_err();
    assert!(
        matches!(err, sitesync_core::Error::Invalid { field: "metric", .. }),
        "{err}"
    );
    // … and the server refuses it from a crafted one, as it refuses another org's binding to ours.
    let (mine, mine_bytes, foremans) = crafted_cycle(ORG, "崔贵", "site-sz-02");
    refused_on_metric(&server, "u-foreman-hz-01", &mine, mine_bytes.clone()).await;
    let (theirs, their_bytes, others) = crafted_cycle("org-other", "u-other", "site-hz-01");
    refused_on_metric(&server, "u-other", &theirs, their_bytes.clone()).await;
    // Both were stored before pushes were checked.
    server
        .store(move |s| {
            s.merge_changes(&mine, &mine_bytes).unwrap();
            s.merge_changes(&theirs, &their_bytes).unwrap();
        })
        .await;

    // A day is logged and approved: the control follows it, the others are passed by.
    for w in ["w-0001", "w-0002", "w-0003"] {
        foreman
            .add_labor(&entry("2026-11-20", w, "site-hz-01/wi-4.1", "1.0"), None)
            .unwrap();
    }
    let day = parse_date("2026-11-20").unwrap();
    foreman.submit_day(&hz(), day).unwrap();
    sync(&mut foreman).await;
    let cost: i64 = foreman
        .day(&hz(), day)
        .unwrap()
        .labor
        .iter()
        .map(|l| l.cost().fen())
        .sum();
    let manager = Api::new(&server, &server.device("u-manager-hz-01").await);
    let (status, r) = manager
        .post(
            "/v1/approvals",
            &serde_json::json!({"decisions": [{"site": "site-hz-01", "date": "2026-11-20", "decision": "approve"}]}),
        )
        .await;
    assert_eq!((status, &r[0]["ok"]), (200, &serde_json::Value::Bool(true)), "{r}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while server_kr(&server, ORG, &ours.id).await.current_milli != cost * 10 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the control key result was never fed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The feed that fed the control ran after both were stored, and fed neither.
    for (org, kr) in [(ORG, &foremans), ("org-other", &others)] {
        let k = server_kr(&server, org, kr).await;
        assert_eq!((k.checkins, k.current_milli), (0, 0), "{org} {kr} was fed: {k:?}");
    }

    // The board says why the foreman's key result is not fed.
    let hq = Api::new(&server, &server.device("u-office-1").await);
    let board = hq
        .json("/v1/reports/okr", &[("cycle", CYCLE), ("date", "2026-12-01")])
        .await;
    let krs: Vec<&serde_json::Value> = board["objectives"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|o| o["key_results"].as_array().unwrap())
        .collect();
    let find = |id: &str| *krs.iter().find(|k| k["id"] == id).unwrap();
    assert!(find(&ours.id).get("metric_refused").is_none(), "{board}");
    let why = find(&foremans)["metric_refused"].as_str().unwrap();
    assert!(why.contains("site-sz-02"), "{why}");
    server.stop().await;
}
