//! Sync health and conflicts at head office (issue #21): the devices page's API and the conflicts
//! page's, with "keep this one" and the approval that warns about open conflicts.

use serde_json::{Value, json};
use sitesync_core::ids::parse_date;
use sitesync_tests::harness::{Api, RawClient, TestServer, phone};

use crate::*;

async fn get(api: &Api, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
    let (status, body) = api.get(path, query).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Devices of the caller's org only, each with its user, last connection and what its app reported
/// (a hostile header is cut, a count that does not parse is left out); foremen are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_devices_page_shows_each_devices_sync_health_within_the_org() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (foreman_id, foreman_token) = server.device_with_id("u-foreman-hz-01").await;
    let mut foreman = phone(dir.path(), "崔贵", &server.url(), &foreman_token);
    sync(&mut foreman).await;
    foreman
        .add_labor(&entry("2026-12-01", "w-0001", "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    // The phone says what it holds when it connects: the day above, not yet pushed.
    sync(&mut foreman).await;
    let (office_id, office_token) = server.device_with_id("u-office-1").await;
    // A device that skips the app's manners: a header past 64 characters with control characters,
    // a negative count.
    let (raw_id, raw_token) = server.device_with_id("u-manager-hz-01").await;
    let long = format!("evil\tapp{}", "x".repeat(200));
    let mut raw = RawClient::connect_with_headers(
        server.addr,
        &[
            ("authorization", format!("Bearer {raw_token}")),
            ("x-sitesync-app", long),
            ("x-sitesync-pending", "-5".to_string()),
        ],
    )
    .await
    .unwrap();
    raw.welcome(0).await;
    raw.close().await;
    server.add_org("org-other", "site-other-01", "u-other").await;
    let (other_id, _) = server.device_with_id("u-other").await;

    let office = Api::new(&server, &office_token);
    let (status, list) = get(&office, "/v1/devices", &[]).await;
    assert_eq!(status, 200, "{list}");
    let list = list.as_array().unwrap();
    let of = |id: &str| list.iter().find(|d| d["device"] == id).cloned();
    assert!(
        of(&other_id).is_none(),
        "another org's device is never listed: {list:?}"
    );
    let f = of(&foreman_id).unwrap();
    assert_eq!(f["user_name"], "崔贵");
    assert_eq!(f["role"], "foreman");
    assert!(f["last_connection"].is_string(), "{f}");
    assert!(f["app_version"].as_str().unwrap().starts_with("sitesync-core/"), "{f}");
    assert_eq!(f["protocol"], sitesync_core::sync::protocol::VERSION.to_string());
    assert_eq!(
        f["pending_documents"], 1,
        "the day not yet pushed when it connected: {f}"
    );
    assert_eq!(f["silent"], false, "it synced just now");
    let r = of(&raw_id).unwrap();
    assert_eq!(r["app_version"].as_str().unwrap().chars().count(), 64, "{r}");
    assert!(
        r["app_version"].as_str().unwrap().starts_with("evilappxx"),
        "the tab taken out: {r}"
    );
    assert_eq!(r["pending_documents"], Value::Null, "{r}");
    assert_eq!(r["protocol"], "", "not reported");
    // Head office's own browser device never synced, and its other sites logged nothing yesterday.
    let o = of(&office_id).unwrap();
    assert_eq!(o["last_connection"], Value::Null);
    assert_eq!(o["silent"], true, "{o}");
    assert!(
        o["silent_sites"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "苏州工业园区厂房二期"),
        "{o}"
    );

    let (status, _) = get(&Api::new(&server, &foreman_token), "/v1/devices", &[]).await;
    assert_eq!(status, 403, "a foreman does not see the devices page");
    server.stop().await;
}

/// Two phones enter the same worker-day with different work-days on two days; the conflicts page
/// lists both values with their authors; approving a day with a conflict is refused until confirmed;
/// "keep this one" settles it as head office, and the phones then show the one value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_is_listed_settled_by_head_office_and_warned_about_at_approval() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let foreman_token = server.device("u-foreman-hz-01").await;
    let mut foreman = phone(dir.path(), "崔贵", &server.url(), &foreman_token);
    let mut manager = phone(
        dir.path(),
        "龙东江",
        &server.url(),
        &server.device("u-manager-hz-01").await,
    );
    sync(&mut foreman).await;
    sync(&mut manager).await;
    let days = ["2026-12-01", "2026-12-02"];
    for day in days {
        foreman
            .add_labor(&entry(day, "w-0040", "site-hz-01/wi-4.1", "1.0"), None)
            .unwrap();
        manager
            .add_labor(&entry(day, "w-0040", "site-hz-01/wi-4.1", "0.5"), None)
            .unwrap();
    }
    sync(&mut foreman).await;
    sync(&mut manager).await;
    sync(&mut foreman).await;
    for day in days {
        foreman.submit_day(&hz(), parse_date(day).unwrap()).unwrap();
    }
    sync(&mut foreman).await;

    let office = Api::new(&server, &server.device("u-office-1").await);
    let range = [("site", "site-hz-01"), ("from", days[0]), ("to", days[1])];
    let (status, list) = get(&office, "/v1/conflicts", &range).await;
    assert_eq!(status, 200, "{list}");
    // The line's work-days differ, and so its hours (a day's hours follow its work-days); the other
    // fields were written alike on both phones, which is no conflict.
    let list = list.as_array().unwrap().clone();
    let fields: Vec<(&str, &str)> = list
        .iter()
        .map(|c| (c["date"].as_str().unwrap(), c["field"].as_str().unwrap()))
        .collect();
    assert_eq!(
        fields,
        [
            (days[0], "hours_min"),
            (days[0], "work_days_centi"),
            (days[1], "hours_min"),
            (days[1], "work_days_centi")
        ]
    );
    let c = &list[1];
    assert_eq!(
        (c["date"].as_str(), c["table"].as_str()),
        (Some(days[0]), Some("labor"))
    );
    assert_eq!(c["field"], "work_days_centi");
    assert_eq!(c["site_name"], "杭州滨江商业综合体");
    assert!(c["record_label"].as_str().unwrap().contains('·'), "{c}");
    let mut by: Vec<(String, String)> = c["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["value"].as_str().unwrap().to_string(),
                v["user_name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    by.sort();
    assert_eq!(by, [("100".into(), "崔贵".into()), ("50".into(), "龙东江".into())]);

    // Approving a day with a conflict: not recorded, the conflict in the answer.
    let approve = |day: &str, confirm: bool| json!({ "decisions": [{ "site": "site-hz-01", "date": day, "decision": "approve" }], "confirm_conflicts": confirm });
    let (status, res) = office.post("/v1/approvals", &approve(days[0], false)).await;
    assert_eq!(status, 409, "{res}");
    assert_eq!(res[0]["code"], "open_conflicts");
    assert_eq!(res[0]["conflicts"].as_array().unwrap().len(), 2, "{res}");
    let status_of = |day: &'static str| server.store(move |s| s.day(&hz(), parse_date(day).unwrap()).unwrap().status);
    assert_eq!(status_of(days[0]).await, sitesync_core::labor::DayStatus::Submitted);

    // A foreman may not settle it; a bogus hash changes nothing.
    let keep = |field: &str, hash: &str| json!({ "doc": c["doc"], "table": "labor", "record": c["record"], "field": field, "hash": hash });
    // The manager's change wrote both of the line's values.
    let managers = c["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["user_name"] == "龙东江")
        .unwrap()["hash"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = Api::new(&server, &foreman_token)
        .post("/v1/conflicts/resolve", &keep("work_days_centi", &managers))
        .await;
    assert_eq!(status, 403);
    let bogus = keep("work_days_centi", &"ab".repeat(32));
    let (status, body) = office.post("/v1/conflicts/resolve", &bogus).await;
    assert_eq!(status, 409, "{body}");
    let (status, left) = office
        .post("/v1/conflicts/resolve", &keep("work_days_centi", &managers))
        .await;
    assert_eq!(status, 200, "{left}");
    assert_eq!(left.as_array().unwrap().len(), 1, "the hours are left: {left}");
    assert_eq!(left[0]["field"], "hours_min");
    let (status, left) = office
        .post("/v1/conflicts/resolve", &keep("hours_min", &managers))
        .await;
    assert_eq!(status, 200, "{left}");
    assert_eq!(left, json!([]), "the day holds no other conflict");
    let (status, again) = office
        .post("/v1/conflicts/resolve", &keep("work_days_centi", &managers))
        .await;
    assert_eq!(status, 409, "nothing left to settle: {again}");

    // Every phone shows the kept value, with no conflict, after its next sync.
    sync(&mut foreman).await;
    sync(&mut manager).await;
    for p in [&mut foreman, &mut manager] {
        let sheet = p.day(&hz(), parse_date(days[0]).unwrap()).unwrap();
        let line = sheet.labor.iter().find(|l| l.worker.as_str() == "w-0040").unwrap();
        assert_eq!(
            (line.work_days.centi(), line.hours.minutes()),
            (50, 240),
            "{:?}",
            p.path()
        );
        assert!(line.conflicts.is_empty(), "{:?}", line.conflicts);
    }
    let (_, list) = get(&office, "/v1/conflicts", &range).await;
    assert_eq!(
        list.as_array().unwrap().len(),
        2,
        "the other day's conflicts are still open"
    );

    // The settled day approves as before; the other only when confirmed.
    let (status, res) = office.post("/v1/approvals", &approve(days[0], false)).await;
    assert_eq!(status, 200, "{res}");
    let (status, res) = office.post("/v1/approvals", &approve(days[1], true)).await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(status_of(days[1]).await, sitesync_core::labor::DayStatus::Approved);
    server.stop().await;
}
