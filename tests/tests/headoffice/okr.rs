//! A key result fed by field data: it follows approvals, and phones see the new value after sync.

use std::time::Duration;

use sitesync_core::import::LogDay;
use sitesync_core::okr::{Cycle, CycleKind, Direction, KrKind, Metric};
use sitesync_core::store::NewKeyResult;
use sitesync_tests::harness::{Api, TestServer, fixtures, phone};

use crate::*;

const ORG: &str = "org-zhuyuan";

/// The server's value of a key result, once the field-data feed has caught up (10 s at most).
async fn server_value(server: &TestServer, kr: &str, want: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let kr_id = kr.to_string();
        let now = server
            .store(move |s| {
                let board = s.okr_board(ORG, "2026-Q4", parse_date("2026-12-31").unwrap()).ok()?;
                board
                    .objectives
                    .iter()
                    .flat_map(|o| o.key_results.clone())
                    .find(|k| k.kr.id == kr_id)
                    .map(|k| k.current_milli)
            })
            .await;
        if now == Some(want) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the key result stayed at {now:?}, expected {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metric_key_result_follows_approved_field_data_to_the_phone() {
    let server = TestServer::start().await;
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

    // October's fixture logs for the site, logged and submitted on the foreman's phone.
    let october: Vec<LogDay> = sitesync_core::import::read_json::<Vec<LogDay>>(&fixtures().join("logs.json"))
        .unwrap()
        .into_iter()
        .filter(|d| d.site.as_str() == "site-hz-01" && d.date.format("%Y-%m").to_string() == "2026-10")
        .collect();
    foreman.import_logs(&october).unwrap();
    for d in &october {
        foreman.submit_day(&hz(), d.date).unwrap();
    }
    sync(&mut foreman).await;

    // Head office sets a Q4 key result on the site's labor cost, fed by field data.
    let cycle = Cycle::new(
        ORG,
        "2026-Q4",
        CycleKind::Quarter,
        "2026 Q4",
        "",
        parse_date("2026-10-15").unwrap(),
    );
    let end = cycle.end;
    office.put_cycle(&cycle).unwrap();
    let o = office
        .add_objective(ORG, "2026-Q4", "控制杭州项目人工成本", "付志", "成本", None)
        .unwrap();
    let kr = office
        .add_key_result(
            ORG,
            "2026-Q4",
            &NewKeyResult {
                objective: o.id.clone(),
                title: "HZ-01 人工成本不超过 ¥2,000,000".into(),
                owner: "付志".into(),
                unit: "¥".into(),
                start_milli: 0,
                target_milli: Some(2_000_000_000),
                direction: Direction::AtMost,
                kind: KrKind::Baseline,
                weight: 1,
                due: Some(end),
                metric: Some(Metric::LaborCost {
                    site: "site-hz-01".into(),
                    work_item: None,
                }),
            },
        )
        .unwrap();
    sync(&mut office).await;
    // Nothing approved yet: the feed says 0.
    server_value(&server, &kr.id, 0).await;

    // The manager approves October; the key result becomes October's approved cost (in yuan).
    let manager = Api::new(&server, &server.device("u-manager-hz-01").await);
    let decisions: Vec<_> = october
        .iter()
        .map(|d| serde_json::json!({"site": "site-hz-01", "date": d.date, "decision": "approve"}))
        .collect();
    let (status, results) = manager
        .post("/v1/approvals", &serde_json::json!({ "decisions": decisions }))
        .await;
    assert_eq!(status, 200);
    assert!(results.as_array().unwrap().iter().all(|r| r["ok"] == true), "{results}");
    let october_cost: i64 = foreman
        .labor_rows(&Default::default())
        .unwrap()
        .iter()
        .filter(|r| r.date.format("%Y-%m").to_string() == "2026-10")
        .map(|r| r.cost_fen)
        .sum();
    assert!(october_cost > 0);
    server_value(&server, &kr.id, october_cost * 10).await;

    // A new day is logged and approved: the value moves again.
    let roster = foreman.roster(&hz()).unwrap();
    for w in roster.workers.iter().take(5) {
        foreman
            .add_labor(&entry("2026-11-20", w.id.as_str(), "site-hz-01/wi-4.1", "1.0"), None)
            .unwrap();
    }
    foreman.submit_day(&hz(), parse_date("2026-11-20").unwrap()).unwrap();
    sync(&mut foreman).await;
    let new_day: i64 = roster.workers.iter().take(5).map(|w| w.day_rate.fen()).sum();
    let (_, r) = manager
        .post(
            "/v1/approvals",
            &serde_json::json!({"decisions": [{"site": "site-hz-01", "date": "2026-11-20", "decision": "approve"}]}),
        )
        .await;
    assert_eq!(r[0]["ok"], true, "{r}");
    server_value(&server, &kr.id, (october_cost + new_day) * 10).await;
    // The feed's check-ins are signed by the server as `system` when it writes them, like every
    // change it writes: the history names their author (none waits for an evidence export).
    let (changes, signed) = server
        .store(|s| {
            let doc = sitesync_core::ids::DocId::Okr(ORG.parse().unwrap(), "2026-Q4".into());
            let bytes = s.export_changes(&doc, &[]).unwrap().unwrap();
            let mut all = automerge::Automerge::new();
            all.load_incremental(&bytes).unwrap();
            let changes = all.get_changes(&[]).len();
            let signed = s.signatures(&doc).unwrap();
            let system = signed
                .iter()
                .filter(|k| k.1.as_deref() == Some("server") && k.2.as_deref() == Some("system"))
                .count();
            (changes, (signed.len(), system))
        })
        .await;
    // Every change but the genesis, which every replica makes alike and nobody signs.
    assert_eq!(signed.0, changes - 1, "every change of the cycle is signed");
    assert!(signed.1 >= 2, "the two feeds are the server's own: {signed:?}");

    // The phone sees it after its next sync, offline from then on.
    sync(&mut office).await;
    let board = office
        .okr_board(ORG, "2026-Q4", parse_date("2026-12-01").unwrap())
        .unwrap();
    let k = &board.objectives[0].key_results[0];
    assert_eq!(k.current_milli, (october_cost + new_day) * 10);
    assert_eq!(k.last_checkin.as_ref().unwrap().author, "system");

    // And head office reads the dashboard, also as Excel.
    let hq = Api::new(&server, &server.device("u-office-1").await);
    let dash = hq
        .json("/v1/reports/okr", &[("cycle", "2026-Q4"), ("date", "2026-12-01")])
        .await;
    assert_eq!(
        dash["objectives"][0]["key_results"][0]["current_milli"],
        (october_cost + new_day) * 10
    );
    assert_eq!(dash["alignment"][0]["id"], o.id.as_str());
    let (status, bytes) = hq
        .get("/v1/reports/okr", &[("cycle", "2026-Q4"), ("format", "xlsx")])
        .await;
    assert_eq!(status, 200);
    assert_eq!(&bytes[..2], b"PK", "an xlsx is a zip");
    assert_eq!(hq.get("/v1/reports/okr", &[("cycle", "2031-Q1")]).await.0, 404);
    server.stop().await;
}

/// A key result fed by `cost_performance`: undefined while nothing approved is spent, then the CPI
/// of the approved figures (earned value ÷ labor cost, thousandths) computed here by hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cost_performance_key_result_is_fed_the_cpi() {
    let server = TestServer::start().await;
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

    let cycle = Cycle::new(
        ORG,
        "2026-Q4",
        CycleKind::Quarter,
        "2026 Q4",
        "",
        parse_date("2026-10-15").unwrap(),
    );
    let end = cycle.end;
    office.put_cycle(&cycle).unwrap();
    let o = office
        .add_objective(ORG, "2026-Q4", "杭州项目不超预算", "付志", "成本", None)
        .unwrap();
    let item = "site-hz-01/wi-1.2";
    let mut krs = Vec::new();
    for work_item in [Some(item.to_string()), None] {
        let kr = office
            .add_key_result(
                ORG,
                "2026-Q4",
                &NewKeyResult {
                    objective: o.id.clone(),
                    title: format!("成本绩效 ≥ 1.0 ({})", work_item.as_deref().unwrap_or("site")),
                    owner: "付志".into(),
                    unit: "CPI".into(),
                    start_milli: 0,
                    target_milli: Some(1_000),
                    direction: Direction::AtLeast,
                    kind: KrKind::Baseline,
                    weight: 1,
                    due: Some(end),
                    metric: Some(Metric::CostPerformance {
                        site: "site-hz-01".into(),
                        work_item,
                    }),
                },
            )
            .unwrap();
        krs.push(kr);
    }
    sync(&mut office).await;

    // One day on 1.2 桩基承台钢筋绑扎 (budget ¥25,032.00 for 298 t): 29.8 t tied by five workers.
    let date = "2026-11-20";
    let roster = foreman.roster(&hz()).unwrap();
    for w in roster.workers.iter().take(5) {
        foreman
            .add_labor(&entry(date, w.id.as_str(), item, "1.0"), None)
            .unwrap();
    }
    foreman
        .set_progress(
            &hz(),
            parse_date(date).unwrap(),
            &sitesync_core::ids::WorkItemId::new(item).unwrap(),
            sitesync_core::units::Quantity::parse("quantity", "29.8").unwrap(),
            "",
            None,
        )
        .unwrap();
    foreman.submit_day(&hz(), parse_date(date).unwrap()).unwrap();
    sync(&mut foreman).await;

    // Submitted, not approved: nothing counts yet, so the CPI is undefined and nothing is fed.
    let value = |kr: String| {
        server.store(move |s| {
            let board = s.okr_board(ORG, "2026-Q4", parse_date("2026-12-31").unwrap()).unwrap();
            board
                .objectives
                .iter()
                .flat_map(|o| o.key_results.clone())
                .find(|k| k.kr.id == kr)
                .map(|k| (k.current_milli, k.last_checkin.map(|c| c.author)))
                .unwrap()
        })
    };
    assert_eq!(value(krs[0].id.clone()).await.1, None, "no check-in while undefined");

    let manager = Api::new(&server, &server.device("u-manager-hz-01").await);
    let (_, r) = manager
        .post(
            "/v1/approvals",
            &serde_json::json!({"decisions": [{"site": "site-hz-01", "date": date, "decision": "approve"}]}),
        )
        .await;
    assert_eq!(r[0]["ok"], true, "{r}");
    // Earned = 2,503,200 × 29,800 ÷ 298,000 = 250,320 fen; cost = the five day rates (no overtime).
    let cost: i64 = roster.workers.iter().take(5).map(|w| w.day_rate.fen()).sum();
    assert!(cost > 0);
    let cpi_milli = (2 * 250_320 * 1000 + cost) / (2 * cost);
    // The key result's unit is the CPI, so its value in thousandths is the CPI in thousandths.
    for kr in &krs {
        server_value(&server, &kr.id, cpi_milli).await;
        assert_eq!(value(kr.id.clone()).await.1.as_deref(), Some("system"));
    }
    // The progress report says the same.
    let hq = Api::new(&server, &server.device("u-office-1").await);
    let p = hq
        .json("/v1/reports/progress", &[("site", "site-hz-01"), ("date", date)])
        .await;
    assert_eq!(p["cost"]["cpi_milli"], cpi_milli, "{}", p["cost"]);
    server.stop().await;
}
