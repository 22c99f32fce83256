//! The demo company of `serve --demo`, served on loopback: what a newcomer reads through the API is a
//! company mid-quarter, every change in it is one the push gate would take from the user it names,
//! and the same seed and date make the same company.

use std::collections::{BTreeSet, HashMap};

use chrono::{NaiveDate, TimeZone, Utc};
use serde_json::Value;
use sitesync_core::changes::ChangeInfo;
use sitesync_core::ids::DocId;
use sitesync_core::rules::{Author, Violation};
use sitesync_core::signing::ChangeSig;
use sitesync_core::store::{Authority, Screen};
use sitesync_server::demo::{Loaded, SEED};
use sitesync_tests::harness::{Api, TestServer};

const ORG: &str = "org-zhuyuan";
const SITES: [&str; 3] = ["site-hz-01", "site-sz-02", "site-nb-03"];

/// The token `demo-tokens.txt` gives `user` (`user<TAB>device<TAB>token` per line).
fn demo_token(server: &TestServer, user: &str) -> String {
    let text = std::fs::read_to_string(server.dir.path().join("demo-tokens.txt")).unwrap();
    let line = text
        .lines()
        .find(|l| l.split('\t').next() == Some(user))
        .unwrap_or_else(|| panic!("{user} has no demo token"));
    let fields: Vec<&str> = line.split('\t').collect();
    assert_eq!(fields.len(), 3, "{line:?}");
    assert!(fields[1].starts_with("d-"), "{line:?}");
    fields[2].to_string()
}

fn rows(v: &Value) -> &Vec<Value> {
    v.as_array().unwrap_or_else(|| panic!("not a list: {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_is_a_company_mid_quarter() {
    let (server, loaded) = TestServer::start_demo(SEED, Utc::now()).await;
    let today = loaded.today.to_string();
    let office = Api::new(&server, &demo_token(&server, "u-office-1"));
    let text = std::fs::read_to_string(server.dir.path().join("demo-tokens.txt")).unwrap();
    assert_eq!(text.lines().count(), loaded.users);

    // Days older than a week approved, the last week waiting, today a draft; per site one day
    // rejected and one amended after approval.
    let d = loaded.days;
    assert_eq!((d.draft, d.rejected, d.amended), (3, 3, 3), "{loaded}");
    assert_eq!(
        d.approved + d.submitted + d.draft + d.amended + d.rejected,
        270,
        "{loaded}"
    );
    let queue = office.json("/v1/approvals", &[]).await;
    assert!(!rows(&queue).is_empty(), "the approval queue is empty");
    for day in rows(&queue).iter().filter(|d| d["status"] == "submitted") {
        let age =
            (loaded.today - NaiveDate::parse_from_str(day["date"].as_str().unwrap(), "%Y-%m-%d").unwrap()).num_days();
        assert!((1..=7).contains(&age), "{day}");
    }
    let rejected = office.json("/v1/approvals", &[("status", "rejected")]).await;
    assert_eq!(rows(&rejected).len(), 3);
    for day in rows(&rejected) {
        let review = day["last_review"].as_str().unwrap();
        assert!(
            review.starts_with("rejected by ") && review.contains("请核对"),
            "{review}"
        );
    }
    let amended = office
        .json("/v1/approvals", &[("status", "amended_after_approval")])
        .await;
    assert_eq!(rows(&amended).len(), 3);

    // Approved-only figures are figures.
    let labor = office
        .json(
            "/v1/reports/labor",
            &[("from", "2000-01-01"), ("to", &today), ("by", "site")],
        )
        .await;
    assert_eq!(rows(&labor["rows"]).len(), 3);
    for row in rows(&labor["rows"]) {
        assert!(row["cost_fen"].as_i64().unwrap() > 0, "{row}");
    }

    // Every work item with progress has labor, and the other way round; labor costs what the budget
    // allows for what was built, within a plausible band (one item per site lags, one runs over).
    for site in SITES {
        let progress = office
            .json(
                "/v1/reports/progress",
                &[("site", site), ("date", &today), ("include_unapproved", "true")],
            )
            .await;
        for item in rows(&progress["items"]) {
            let built = item["quantity_to_date_milli"].as_i64().unwrap();
            let cost = item["labor_cost_fen"].as_i64().unwrap();
            assert_eq!(built > 0, cost > 0, "{item}");
            let budget = item["budget_fen"].as_i64().unwrap();
            assert!(budget >= 100_000, "{item}");
            let done = item["percent_complete"].as_f64().unwrap() / 100.0;
            if done >= 0.1 {
                let ratio = cost as f64 / (budget as f64 * done);
                assert!(
                    (0.85..=1.25).contains(&ratio),
                    "labor {ratio:.2} × the budget earned: {item}"
                );
            }
        }
    }

    // This quarter's OKRs: people's check-ins on track, at risk and off track; key results fed from
    // field data carry values computed by the server.
    let cycle = sitesync_server::demo::quarter_id(loaded.today);
    let board = office.json("/v1/reports/okr", &[("cycle", &cycle)]).await;
    let krs: Vec<&Value> = rows(&board["objectives"])
        .iter()
        .flat_map(|o| rows(&o["key_results"]))
        .collect();
    let statuses: BTreeSet<&str> = krs.iter().map(|k| k["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, BTreeSet::from(["green", "red", "yellow"]), "{board}");
    let fed: Vec<&&Value> = krs.iter().filter(|k| !k["metric"].is_null()).collect();
    assert!(fed.len() >= 3, "{board}");
    for k in &fed {
        assert!(k["metric_refused"].is_null(), "{k}");
        // Progress counts every approved day (the quarter's labor cost may still be nil in its
        // first week, all of it waiting for approval).
        if k["metric"]["metric"] == "progress_percent" {
            assert!(k["current_milli"].as_i64().unwrap() > 0, "{k}");
            assert_eq!(k["last_checkin"]["author"], "system", "{k}");
        }
    }
    let last = office
        .json("/v1/reports/okr", &[("cycle", &quarter_before(&cycle))])
        .await;
    assert!(
        rows(&last["objectives"]).iter().all(|o| o["score"].is_number()),
        "{last}"
    );

    // Who did what, as the history tells it: the foreman entered and amended, the manager decided.
    let day = rows(&amended).iter().find(|d| d["site"] == "site-hz-01").unwrap();
    let history = office
        .json(
            "/v1/history",
            &[("site", "site-hz-01"), ("date", day["date"].as_str().unwrap())],
        )
        .await;
    let names: Vec<(&str, &str)> = rows(&history["changes"])
        .iter()
        .map(|c| {
            assert_eq!(c["signed"], true, "{c}");
            (c["user_id"].as_str().unwrap(), c["user_name"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        names,
        [
            ("u-foreman-hz-01", "崔贵"),
            ("u-foreman-hz-01", "崔贵"),
            ("u-manager-hz-01", "龙东江"),
            ("u-foreman-hz-01", "崔贵"),
        ],
        "entered, submitted; approved; amended"
    );

    // Today's draft leaves the first crew to be entered (the README enters w-0001 and w-0002).
    let now = server
        .store(move |s| s.day(&"site-hz-01".parse().unwrap(), loaded.today).unwrap())
        .await;
    assert!(!now.labor.is_empty());
    assert!(
        now.labor
            .iter()
            .all(|l| l.worker.as_str() != "w-0001" && l.worker.as_str() != "w-0002")
    );

    every_change_passes_the_gate_as_its_signer(&server).await;
}

/// The cycle id of the quarter before `cycle` (`2026-Q4` → `2026-Q3`).
fn quarter_before(cycle: &str) -> String {
    let (year, q) = cycle.split_once("-Q").unwrap();
    let (year, q): (i32, u32) = (year.parse().unwrap(), q.parse().unwrap());
    if q == 1 {
        format!("{}-Q4", year - 1)
    } else {
        format!("{year}-Q{}", q - 1)
    }
}

/// Authors as the demo's kept signatures name them, each with the rights the credential database
/// gives that user (the system's for `system`).
struct Signed {
    sigs: HashMap<String, (ChangeSig, Option<String>)>,
    authors: HashMap<String, Author>,
}

impl Authority for Signed {
    fn author(&mut self, doc: &DocId, change: &ChangeInfo) -> Result<Author, Violation> {
        let (sig, user) = self.sigs.get(&change.hash).ok_or(Violation::Unsigned)?;
        if !sig.verifies(&doc.to_string()) {
            return Err(Violation::BadSignature);
        }
        user.as_ref()
            .and_then(|u| self.authors.get(u))
            .cloned()
            .ok_or(Violation::UnknownKey)
    }
}

/// Replays every document of the demo, change by change, through the gate a push passes (the
/// write rules as the signer saw the document, and the records' validity) into an empty store.
async fn every_change_passes_the_gate_as_its_signer(server: &TestServer) {
    let scratch = tempfile::tempdir().unwrap();
    let path = scratch.path().join("replay.sqlite3");
    server
        .state
        .both(move |auth, store| {
            let mut authors = HashMap::from([("system".to_string(), Author::system(ORG))]);
            for user in auth.user_names(ORG)?.into_keys() {
                if let Some(p) = auth.user_principal(&user, "server")? {
                    authors.insert(user, p.author());
                }
            }
            let head = auth.user_principal("u-office-1", "server")?.unwrap();
            let tenancy = sitesync_server::tenancy::Pusher { auth, who: &head };
            let mut fresh = sitesync_core::Store::open(&path)?;
            let mut screen = Screen::new();
            let mut ids = store.doc_ids()?;
            // Master data first: the days are checked against the rosters.
            ids.sort_by_key(|id| !matches!(id, DocId::Site(_)));
            for id in ids {
                let bytes = store.export_changes(&id, &[])?.unwrap();
                let sigs = store
                    .signatures(&id)?
                    .into_iter()
                    .map(|(sig, _, user, _)| {
                        let hash: String = sig.hash.iter().map(|b| format!("{b:02x}")).collect();
                        (hash, (sig, user))
                    })
                    .collect();
                let mut signed = Signed {
                    sigs,
                    authors: authors.clone(),
                };
                let out = screen.check(&mut fresh, &id, &bytes, Some(ORG), &mut signed, &tenancy)?;
                assert!(out.refused.is_empty(), "{id}: {:?}", out.refused);
                fresh.merge_changes(&id, &out.accepted)?;
            }
            Ok(())
        })
        .await
        .unwrap();
}

/// What the API shows of a demo, without what differs between any two runs (review times, random
/// ids of OKR records).
async fn figures(server: &TestServer, today: &str) -> Vec<Value> {
    let office = Api::new(server, &demo_token(server, "u-office-1"));
    let mut out = Vec::new();
    for status in ["draft", "submitted", "approved", "rejected", "amended_after_approval"] {
        let mut queue = office.json("/v1/approvals", &[("status", status)]).await;
        for day in queue.as_array_mut().unwrap() {
            let day = day.as_object_mut().unwrap();
            day.remove("last_review");
            // The same event by its parts: only its time differs.
            if let Some(review) = day.get_mut("review").and_then(Value::as_object_mut) {
                review.remove("at");
            }
        }
        out.push(queue);
    }
    for unapproved in ["false", "true"] {
        for by in ["day", "worker", "work_item"] {
            let q = [
                ("from", "2000-01-01"),
                ("to", today),
                ("by", by),
                ("include_unapproved", unapproved),
            ];
            out.push(office.json("/v1/reports/labor", &q).await);
        }
    }
    for site in SITES {
        let q = [("site", site), ("date", today), ("include_unapproved", "true")];
        out.push(office.json("/v1/reports/progress", &q).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_seed_and_date_make_the_same_demo() {
    let now = Utc.with_ymd_and_hms(2026, 11, 15, 2, 0, 0).unwrap();
    let (a, loaded): (TestServer, Loaded) = TestServer::start_demo(SEED, now).await;
    let (b, again) = TestServer::start_demo(SEED, now).await;
    assert_eq!(loaded.today, NaiveDate::from_ymd_opt(2026, 11, 15).unwrap());
    assert_eq!(loaded.days, again.days);
    let today = loaded.today.to_string();
    let (fa, fb) = (figures(&a, &today).await, figures(&b, &today).await);
    assert_eq!(fa.len(), fb.len());
    for (x, y) in fa.iter().zip(&fb) {
        assert_eq!(x, y);
    }
    assert!(
        fa.iter().any(|v| v.to_string().contains("\"cost_fen\"")),
        "figures were compared"
    );

    // Mid-quarter, the labor cost key result is fed from approved days too.
    let office = Api::new(&a, &demo_token(&a, "u-office-1"));
    let board = office
        .json("/v1/reports/okr", &[("cycle", "2026-Q4"), ("date", &today)])
        .await;
    let cost = rows(&board["objectives"])
        .iter()
        .flat_map(|o| rows(&o["key_results"]))
        .find(|k| k["metric"]["metric"] == "labor_cost")
        .expect("a labor cost key result");
    assert!(cost["current_milli"].as_i64().unwrap() > 0, "{cost}");
}
