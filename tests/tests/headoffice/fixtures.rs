//! The whole fixture company, logged on three foremen's phones and synced: the reports equal sums
//! computed independently from logs.json.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;
use sitesync_core::import::LogDay;
use sitesync_tests::harness::{Api, TestServer, fixtures, phone};

use crate::*;

/// Independent sums from logs.json: (work-days, hours, overtime, cost, lines) per site, and cost per crew.
struct Expected {
    per_site: BTreeMap<String, [i64; 5]>,
    per_crew: BTreeMap<String, i64>,
    progress: BTreeMap<String, i64>,
    /// Labor cost per work item.
    item_cost: BTreeMap<String, i64>,
    logged_days: BTreeMap<String, BTreeSet<String>>,
}

fn expected(from: &str, to: &str) -> Expected {
    let company: Value = serde_json::from_slice(&std::fs::read(fixtures().join("company.json")).unwrap()).unwrap();
    let logs: Value = serde_json::from_slice(&std::fs::read(fixtures().join("logs.json")).unwrap()).unwrap();
    let mut ot = HashMap::new();
    let mut crew = HashMap::new();
    for s in company["sites"].as_array().unwrap() {
        for w in s["workers"].as_array().unwrap() {
            ot.insert(
                w["id"].as_str().unwrap().to_string(),
                w["overtime_rate_fen_per_hour"].as_i64().unwrap(),
            );
            crew.insert(
                w["id"].as_str().unwrap().to_string(),
                w["crew"].as_str().unwrap().to_string(),
            );
        }
    }
    let mut e = Expected {
        per_site: BTreeMap::new(),
        per_crew: BTreeMap::new(),
        progress: BTreeMap::new(),
        item_cost: BTreeMap::new(),
        logged_days: BTreeMap::new(),
    };
    for day in logs.as_array().unwrap() {
        let date = day["date"].as_str().unwrap();
        if date < from || date > to {
            continue;
        }
        let site = day["site"].as_str().unwrap().to_string();
        for l in day["labor"].as_array().unwrap() {
            let w = l["worker"].as_str().unwrap();
            let days = l["work_days_centi"].as_i64().unwrap();
            let ot_min = l["overtime_min"].as_i64().unwrap();
            let cost = (days * l["rate_fen"].as_i64().unwrap() * 60 + ot_min * ot[w] * 100 + 3000) / 6000;
            let s = e.per_site.entry(site.clone()).or_default();
            s[0] += days;
            s[1] += l["hours_min"].as_i64().unwrap();
            s[2] += ot_min;
            s[3] += cost;
            s[4] += 1;
            *e.per_crew.entry(crew[w].clone()).or_default() += cost;
            *e.item_cost
                .entry(l["work_item"].as_str().unwrap().to_string())
                .or_default() += cost;
            e.logged_days.entry(site.clone()).or_default().insert(date.to_string());
        }
        for p in day["progress"].as_array().unwrap() {
            *e.progress
                .entry(p["work_item"].as_str().unwrap().to_string())
                .or_default() += p["quantity_milli"].as_i64().unwrap();
        }
    }
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_over_the_synced_fixtures_equal_logs_json() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let all: Vec<LogDay> = sitesync_core::import::read_json(&fixtures().join("logs.json")).unwrap();
    let mut tokens = HashMap::new();
    for (site, user) in [
        ("site-hz-01", "u-foreman-hz-01"),
        ("site-sz-02", "u-foreman-sz-02"),
        ("site-nb-03", "u-foreman-nb-03"),
    ] {
        let token = server.device(user).await;
        let mut p = phone(dir.path(), user, &server.url(), &token);
        tokens.insert(user, token);
        sync(&mut p).await;
        let days: Vec<LogDay> = all.iter().filter(|d| d.site.as_str() == site).cloned().collect();
        p.import_logs(&days).unwrap();
        sync(&mut p).await;
        assert!(p.pending().unwrap().is_empty());
    }
    let office = Api::new(&server, &server.device("u-office-1").await);
    let (from, to) = ("2026-09-01", "2026-11-29");
    let want = expected(from, to);

    // 点工汇总 by site and by crew, unapproved data included.
    let by_site = office
        .json(
            "/v1/reports/labor",
            &[
                ("from", from),
                ("to", to),
                ("by", "site"),
                ("include_unapproved", "true"),
            ],
        )
        .await;
    for row in by_site["rows"].as_array().unwrap() {
        let w = want.per_site[row["key"].as_str().unwrap()];
        let got: Vec<i64> = ["work_days_centi", "hours_min", "overtime_min", "cost_fen", "lines"]
            .iter()
            .map(|f| row[*f].as_i64().unwrap())
            .collect();
        assert_eq!(got, w, "{}", row["key"]);
        assert!(row["cost"].as_str().unwrap().starts_with('¥'));
    }
    assert_eq!(by_site["rows"].as_array().unwrap().len(), 3);
    // A site's row is labelled with the site's name, not its id again.
    let hz_row = by_site["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "site-hz-01")
        .unwrap();
    assert_eq!(hz_row["label"], "杭州滨江商业综合体");
    let by_crew = office
        .json(
            "/v1/reports/labor",
            &[
                ("from", from),
                ("to", to),
                ("by", "crew"),
                ("include_unapproved", "true"),
            ],
        )
        .await;
    for row in by_crew["rows"].as_array().unwrap() {
        assert_eq!(
            row["cost_fen"].as_i64().unwrap(),
            want.per_crew[row["key"].as_str().unwrap()]
        );
    }
    // Approved days only, by default: nothing is approved yet.
    let approved = office.json("/v1/reports/labor", &[("from", from), ("to", to)]).await;
    assert_eq!(approved["total"]["lines"], 0);

    // The monthly attendance grid adds up to the same September.
    let sept = expected("2026-09-01", "2026-09-30");
    let grid = office
        .json(
            "/v1/reports/attendance",
            &[
                ("site", "site-hz-01"),
                ("month", "2026-09"),
                ("include_unapproved", "true"),
            ],
        )
        .await;
    assert_eq!(grid["days_in_month"], 30);
    assert_eq!(
        grid["work_days_centi"].as_i64().unwrap(),
        sept.per_site["site-hz-01"][0]
    );
    assert_eq!(grid["cost_fen"].as_i64().unwrap(), sept.per_site["site-hz-01"][3]);
    let row_sum: i64 = grid["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["work_days_centi"].as_i64().unwrap())
        .sum();
    assert_eq!(row_sum, sept.per_site["site-hz-01"][0]);

    // Progress to date per work item equals the fixture's quantities.
    let progress = office
        .json(
            "/v1/reports/progress",
            &[("site", "site-hz-01"), ("date", to), ("include_unapproved", "true")],
        )
        .await;
    for item in progress["items"].as_array().unwrap() {
        let id = item["work_item"].as_str().unwrap();
        assert_eq!(
            item["quantity_to_date_milli"].as_i64().unwrap(),
            want.progress.get(id).copied().unwrap_or(0),
            "{id}"
        );
    }

    // Cost against budget per work item, recomputed here from company.json and logs.json: earned =
    // budget × installed ÷ planned (installed capped at the plan), rounded half up; CPI = earned ÷
    // cost in thousandths; EAC = budget × cost ÷ earned, or cost + budget − earned.
    let company: Value = serde_json::from_slice(&std::fs::read(fixtures().join("company.json")).unwrap()).unwrap();
    let half_up = |n: i128, d: i128| (2 * n + d) / (2 * d);
    let mut overruns_want = BTreeSet::new();
    for site in company["sites"].as_array().unwrap() {
        let site_id = site["id"].as_str().unwrap();
        let report = office
            .json(
                "/v1/reports/progress",
                &[("site", site_id), ("date", to), ("include_unapproved", "true")],
            )
            .await;
        let mut earned_sum = 0i64;
        for wi in site["work_items"].as_array().unwrap() {
            let id = wi["id"].as_str().unwrap();
            let budget = wi["budget_fen"].as_i64().unwrap() as i128;
            let planned = wi["planned_quantity_milli"].as_i64().unwrap() as i128;
            let done = (want.progress.get(id).copied().unwrap_or(0) as i128).clamp(0, planned);
            let cost = want.item_cost.get(id).copied().unwrap_or(0) as i128;
            let earned = half_up(budget * done, planned);
            let cpi = (cost > 0).then(|| half_up(earned * 1000, cost) as i64);
            let eac = if cost > 0 && earned > 0 {
                half_up(budget * cost, earned)
            } else {
                cost + budget - earned
            };
            let overrun = cost > budget || (cost * 10 >= budget && earned * 1000 < cost * 800);
            if overrun {
                overruns_want.insert((site_id.to_string(), wi["code"].as_str().unwrap().to_string()));
            }
            earned_sum += earned as i64;
            let got = report["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["work_item"] == id)
                .unwrap_or_else(|| panic!("{id} in the progress report"));
            let c = &got["cost"];
            assert_eq!(c["budget_fen"].as_i64().unwrap() as i128, budget, "{id}");
            assert_eq!(c["earned_fen"].as_i64().unwrap() as i128, earned, "{id}");
            assert_eq!(c["labor_cost_fen"].as_i64().unwrap() as i128, cost, "{id}");
            assert_eq!(c["piece_cost_fen"], 0, "no piece rates in the fixture: {id}");
            assert_eq!(c["cost_fen"].as_i64().unwrap() as i128, cost, "{id}");
            assert_eq!(c["cpi_milli"].as_i64(), cpi, "{id}");
            assert_eq!(c["eac_fen"].as_i64().unwrap() as i128, eac, "{id}");
            assert_eq!(
                c["variance_at_completion_fen"].as_i64().unwrap() as i128,
                budget - eac,
                "{id}"
            );
            assert_eq!(c["overrun"], overrun, "{id}");
        }
        assert_eq!(report["cost"]["earned_fen"], earned_sum, "{site_id}");
    }
    // The example: 1.2 桩基承台钢筋绑扎 on site-hz-01, ¥423,661.11 of labor on a ¥25,032 budget.
    assert!(
        overruns_want.contains(&("site-hz-01".to_string(), "1.2".to_string())),
        "{overruns_want:?}"
    );

    // Clean data: the only anomalies are the days the fixture really has no log for, and the work
    // items over budget.
    let anomalies = office
        .json("/v1/reports/anomalies", &[("from", from), ("to", to), ("today", to)])
        .await;
    let mut missing = BTreeSet::new();
    for (site, days) in &want.logged_days {
        let mut d = parse_date(days.first().unwrap()).unwrap();
        while d <= parse_date(to).unwrap() {
            if !days.contains(&d.to_string()) {
                missing.insert((site.clone(), d.to_string()));
            }
            d = d.succ_opt().unwrap();
        }
    }
    let overruns: BTreeSet<(String, String)> = anomalies
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "cost_overrun")
        .map(|a| {
            assert_eq!(a["date"], to, "{a}");
            let detail = a["detail"].as_str().unwrap();
            (
                a["site"].as_str().unwrap().to_string(),
                detail.split(' ').next().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(overruns, overruns_want);
    let hz_12 = anomalies
        .as_array()
        .unwrap()
        .iter()
        .find(|a| {
            a["kind"] == "cost_overrun"
                && a["site"] == "site-hz-01"
                && a["detail"].as_str().unwrap().starts_with("1.2 ")
        })
        .unwrap();
    assert!(
        hz_12["detail"]
            .as_str()
            .unwrap()
            .contains("cost ¥423,661.11 (labor ¥423,661.11, piecework ¥0.00) against a budget of ¥25,032.00"),
        "{hz_12}"
    );
    let found: BTreeSet<(String, String)> = anomalies
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] != "cost_overrun")
        .map(|a| {
            assert_eq!(a["kind"], "missing_log", "a false anomaly on clean data: {a}");
            (
                a["site"].as_str().unwrap().to_string(),
                a["date"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(found, missing);
    assert!(!missing.is_empty(), "the fixture has gaps to find");

    // Approvals: the foreman submits a week; the site manager approves it in bulk. The foreman's
    // phone is the same store on the same device (its key is that device's alone).
    let week: Vec<String> = (1..=7).map(|d| format!("2026-09-{d:02}")).collect();
    let mut foreman = phone(dir.path(), "u-foreman-hz-01", &server.url(), &tokens["u-foreman-hz-01"]);
    for d in &week {
        foreman.submit_day(&hz(), parse_date(d).unwrap()).unwrap();
    }
    sync(&mut foreman).await;
    let manager = Api::new(&server, &server.device("u-manager-hz-01").await);
    let queue = manager.json("/v1/approvals", &[]).await;
    assert_eq!(queue.as_array().unwrap().len(), 7);
    let foreman_api = Api::new(&server, &server.device("u-foreman-hz-01").await);
    let decisions = serde_json::json!({ "decisions": week.iter().map(|d| serde_json::json!({"site": "site-hz-01", "date": d, "decision": "approve"})).collect::<Vec<_>>() });
    assert_eq!(
        foreman_api.post("/v1/approvals", &decisions).await.0,
        403,
        "foremen do not approve"
    );
    let (status, results) = manager.post("/v1/approvals", &decisions).await;
    assert_eq!(status, 200);
    assert!(
        results
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["ok"] == true && r["status"] == "approved"),
        "{results}"
    );
    let week_want = expected("2026-09-01", "2026-09-07");
    let approved = office
        .json(
            "/v1/reports/labor",
            &[("from", from), ("to", to), ("site", "site-hz-01")],
        )
        .await;
    assert_eq!(
        approved["total"]["cost_fen"].as_i64().unwrap(),
        week_want.per_site["site-hz-01"][3]
    );
    // Another site's manager cannot decide on this site.
    let other = Api::new(&server, &server.device("u-manager-sz-02").await);
    let (_, r) = other
        .post(
            "/v1/approvals",
            &serde_json::json!({"decisions": [{"site": "site-hz-01", "date": "2026-09-08", "decision": "approve"}]}),
        )
        .await;
    assert_eq!(r[0]["ok"], false);
    // The foreman's phone sees the decisions at its next sync.
    sync(&mut foreman).await;
    assert_eq!(
        foreman.day(&hz(), parse_date("2026-09-03").unwrap()).unwrap().status,
        sitesync_core::labor::DayStatus::Approved
    );

    // The projection rebuilt from the documents alone equals the incremental one.
    let (before, after) = server
        .store(|s| {
            let before = s.projection_dump().unwrap();
            s.reindex().unwrap();
            (before, s.projection_dump().unwrap())
        })
        .await;
    assert_eq!(before.len(), after.len());
    assert!(before == after, "reindex differs from the incremental projection");
    server.stop().await;
}
