//! Approvals as head office relies on them: the answer's status says whether every decision was
//! recorded (the body says which), and days amended after approval wait in the default queue.

use chrono::NaiveDate;
use serde_json::{Value, json};
use sitesync_core::ids::parse_date;
use sitesync_tests::harness::{Api, TestServer};

use crate::*;

/// Days on site-hz-01, made on the server's own store: `submitted` ones submitted, the rest drafts.
async fn days(server: &TestServer, drafts: &[&str], submitted: &[&str]) {
    let (drafts, submitted): (Vec<NaiveDate>, Vec<NaiveDate>) = (
        drafts.iter().map(|d| parse_date(d).unwrap()).collect(),
        submitted.iter().map(|d| parse_date(d).unwrap()).collect(),
    );
    server
        .store(move |s| {
            for &date in drafts.iter().chain(&submitted) {
                s.set_day_info(&hz(), date, Some("晴"), None, None).unwrap();
            }
            for &date in &submitted {
                s.submit_day(&hz(), date).unwrap();
            }
        })
        .await;
}

fn approve(dates: &[&str]) -> Value {
    let decisions: Vec<Value> = dates
        .iter()
        .map(|d| json!({ "site": "site-hz-01", "date": d, "decision": "approve" }))
        .collect();
    json!({ "decisions": decisions })
}

/// `ok` of each result, in order.
fn oks(results: &Value) -> Vec<bool> {
    results
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ok"].as_bool().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_of_a_batch_of_decisions_says_whether_each_was_recorded() {
    let server = TestServer::start().await;
    days(&server, &["2026-12-01"], &["2026-12-02", "2026-12-03"]).await;
    let manager = Api::new(&server, &server.device("u-manager-hz-01").await);

    // A draft cannot be approved: nothing was recorded, and the status says so (it said 200).
    let (status, results) = manager.post("/v1/approvals", &approve(&["2026-12-01"])).await;
    assert_eq!(status, 409, "{results}");
    assert_eq!(oks(&results), [false]);
    assert_eq!(results[0]["site"], "site-hz-01");
    assert_eq!(results[0]["date"], "2026-12-01");
    assert_eq!(results[0]["status"], Value::Null);
    assert!(results[0]["error"].as_str().unwrap().contains("Draft"), "{results}");

    // One recorded, one not: Multi-Status, one result per decision in order.
    let (status, results) = manager
        .post("/v1/approvals", &approve(&["2026-12-02", "2026-12-01"]))
        .await;
    assert_eq!(status, 207, "{results}");
    assert_eq!(oks(&results), [true, false]);
    assert_eq!(results[0]["status"], "approved");

    // Every one recorded: 200, as before; so is a batch of none (nothing failed).
    let (status, results) = manager.post("/v1/approvals", &approve(&["2026-12-03"])).await;
    assert_eq!((status, oks(&results)), (200, vec![true]), "{results}");
    let (status, results) = manager.post("/v1/approvals", &approve(&[])).await;
    assert_eq!((status, results), (200, json!([])));

    // A decision on a site without a grant is refused inside the answer: nothing recorded, 409.
    let other = Api::new(&server, &server.device("u-manager-sz-02").await);
    days(&server, &[], &["2026-12-04"]).await;
    let (status, results) = other.post("/v1/approvals", &approve(&["2026-12-04"])).await;
    assert_eq!(status, 409, "{results}");
    assert!(results[0]["error"].as_str().unwrap().starts_with("forbidden"));
    server.stop().await;
}

/// `(date, status)` of each day in a queue answer.
fn queued(queue: &Value) -> Vec<(String, String)> {
    queue
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["date"].as_str().unwrap().to_string(),
                d["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_amended_after_approval_waits_in_the_default_queue() {
    let server = TestServer::start().await;
    days(&server, &[], &["2026-12-05", "2026-12-06"]).await;
    let manager = Api::new(&server, &server.device("u-manager-hz-01").await);
    let (status, results) = manager.post("/v1/approvals", &approve(&["2026-12-05"])).await;
    assert_eq!(status, 200, "{results}");
    // A line added after the approval, as an audited amendment.
    server
        .store(|s| {
            let late = entry("2026-12-05", "w-0001", "site-hz-01/wi-4.1", "1.0");
            s.add_labor(&late, Some("补记：漏记一人")).unwrap();
        })
        .await;
    let amended = ("2026-12-05".to_string(), "amended_after_approval".to_string());
    let submitted = ("2026-12-06".to_string(), "submitted".to_string());

    // The default queue: every day waiting for a decision (the amended one was missing).
    let queue = manager.json("/v1/approvals", &[]).await;
    assert_eq!(queued(&queue), [amended.clone(), submitted.clone()], "{queue}");
    assert_eq!(queue[0]["lines"], 1);
    // A status asked for is that status alone.
    let only = |status: &'static str| {
        let manager = &manager;
        async move { queued(&manager.json("/v1/approvals", &[("status", status)]).await) }
    };
    assert_eq!(only("submitted").await, std::slice::from_ref(&submitted));
    assert_eq!(only("amended_after_approval").await, [amended]);
    assert_eq!(only("approved").await, []);

    // Approved again from the queue, it leaves it.
    let (status, results) = manager.post("/v1/approvals", &approve(&["2026-12-05"])).await;
    assert_eq!(status, 200, "{results}");
    assert_eq!(queued(&manager.json("/v1/approvals", &[]).await), [submitted]);
    server.stop().await;
}
