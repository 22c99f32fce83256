//! Planted anomalies, the Excel file read back cell by cell, and the OpenAPI document.

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};
use sitesync_core::labor::LaborPatch;
use sitesync_core::units::{Fen, Minutes};
use sitesync_tests::harness::{Api, TestServer, phone};

use crate::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_anomalies_are_each_found() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut foreman = phone(
        dir.path(),
        "foreman",
        &server.url(),
        &server.device("u-foreman-hz-01").await,
    );
    sync(&mut foreman).await;
    let item = "site-hz-01/wi-4.1";
    for day in ["2026-12-01", "2026-12-02", "2026-12-03"] {
        foreman.add_labor(&entry(day, "w-0005", item, "1.0"), None).unwrap();
    }
    // A double-booked worker: 1.0 + 0.5 work-days on one day.
    foreman
        .add_labor(&entry("2026-12-01", "w-0001", item, "1.0"), None)
        .unwrap();
    foreman
        .add_labor(&entry("2026-12-01", "w-0001", "site-hz-01/wi-3.2", "0.5"), None)
        .unwrap();
    // A 14-hour day.
    let mut long = entry("2026-12-02", "w-0002", item, "1.0");
    long.hours = Some(Minutes::parse_hours("hours", "10").unwrap());
    long.overtime = Minutes::parse_hours("overtime", "4").unwrap();
    foreman.add_labor(&long, None).unwrap();
    // A rate that differs from the roster.
    let mut odd = entry("2026-12-02", "w-0003", item, "1.0");
    odd.day_rate = Some(Fen::parse_yuan("rate", "500").unwrap());
    foreman.add_labor(&odd, None).unwrap();
    // A day approved, then corrected.
    foreman.submit_day(&hz(), parse_date("2026-12-03").unwrap()).unwrap();
    sync(&mut foreman).await;
    let manager = Api::new(&server, &server.device("u-manager-hz-01").await);
    let (status, r) = manager
        .post(
            "/v1/approvals",
            &serde_json::json!({"decisions": [{"site": "site-hz-01", "date": "2026-12-03", "decision": "approve"}]}),
        )
        .await;
    assert_eq!((status, &r[0]["ok"]), (200, &serde_json::json!(true)), "{r}");
    sync(&mut foreman).await;
    let line = foreman.day(&hz(), parse_date("2026-12-03").unwrap()).unwrap().labor[0]
        .id
        .clone();
    foreman
        .edit_labor(
            &line,
            &LaborPatch {
                overtime: Some(Minutes::parse_hours("o", "2").unwrap()),
                ..Default::default()
            },
            Some("加班漏记"),
        )
        .unwrap();
    sync(&mut foreman).await;

    let office = Api::new(&server, &server.device("u-office-1").await);
    let list = office
        .json(
            "/v1/reports/anomalies",
            &[("from", "2026-12-01"), ("to", "2026-12-03"), ("today", "2026-12-03")],
        )
        .await;
    let kinds: Vec<(String, String, String)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["kind"].as_str().unwrap().into(),
                a["date"].as_str().unwrap().into(),
                a["worker"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    assert!(
        kinds.contains(&("over_work_days".into(), "2026-12-01".into(), "w-0001".into())),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("over_hours".into(), "2026-12-02".into(), "w-0002".into())),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("rate_mismatch".into(), "2026-12-02".into(), "w-0003".into())),
        "{kinds:?}"
    );
    let amended = list
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "amended_after_approval")
        .expect("the amendment is found");
    assert_eq!(amended["date"], "2026-12-03");
    assert!(
        amended["detail"].as_str().unwrap().contains("overtime_min: 0 → 120"),
        "{amended}"
    );
    assert_eq!(kinds.len(), 4, "and nothing else: {kinds:?}");
    // A stricter limit finds more; a looser one fewer.
    let strict = office
        .json(
            "/v1/reports/anomalies",
            &[
                ("from", "2026-12-01"),
                ("to", "2026-12-03"),
                ("today", "2026-12-03"),
                ("max_hours", "8"),
            ],
        )
        .await;
    assert!(strict.as_array().unwrap().len() > list.as_array().unwrap().len());
    let (status, _) = office
        .get(
            "/v1/reports/anomalies",
            &[("from", "2026-12-01"), ("to", "2026-12-03"), ("rest_days", "someday")],
        )
        .await;
    assert_eq!(status, 400);

    // A rejection needs a reason, and the reason reaches the phone.
    foreman.submit_day(&hz(), parse_date("2026-12-02").unwrap()).unwrap();
    sync(&mut foreman).await;
    let reject = |reason: &str| serde_json::json!({"decisions": [{"site": "site-hz-01", "date": "2026-12-02", "decision": "reject", "reason": reason}]});
    assert_eq!(manager.post("/v1/approvals", &reject("")).await.1[0]["ok"], false);
    assert_eq!(
        manager
            .post("/v1/approvals", &reject("w-0002 工时过长，请核实"))
            .await
            .1[0]["ok"],
        true
    );
    sync(&mut foreman).await;
    let sheet = foreman.day(&hz(), parse_date("2026-12-02").unwrap()).unwrap();
    assert_eq!(sheet.status, sitesync_core::labor::DayStatus::Rejected);
    assert_eq!(sheet.reviews.last().unwrap().reason, "w-0002 工时过长，请核实");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn excel_and_csv_exports_read_back_cell_by_cell() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut foreman = phone(
        dir.path(),
        "foreman",
        &server.url(),
        &server.device("u-foreman-hz-01").await,
    );
    sync(&mut foreman).await;
    let mut e = entry("2026-12-01", "w-0001", "site-hz-01/wi-4.1", "1.0");
    e.overtime = Minutes::parse_hours("overtime", "0.5").unwrap();
    foreman.add_labor(&e, None).unwrap();
    foreman
        .add_labor(&entry("2026-12-01", "w-0003", "site-hz-01/wi-4.1", "0.5"), None)
        .unwrap();
    sync(&mut foreman).await;
    let office = Api::new(&server, &server.device("u-office-1").await);
    let q = [
        ("from", "2026-12-01"),
        ("to", "2026-12-01"),
        ("by", "worker"),
        ("include_unapproved", "true"),
    ];

    let (status, bytes) = office
        .get("/v1/reports/labor", &[q.as_slice(), &[("format", "xlsx")]].concat())
        .await;
    assert_eq!(status, 200);
    let mut book: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).unwrap();
    let sheet = book.worksheet_range("点工汇总").unwrap();
    let rows: Vec<Vec<Data>> = sheet.rows().map(|r| r.to_vec()).collect();
    assert_eq!(rows.len(), 4, "header, two workers, totals");
    assert_eq!(rows[0][0], Data::String("分组 key".into()));
    assert_eq!(rows[0][5], Data::String("金额 cost ¥".into()));
    // w-0001: 1.00 work-day, 8 h, 0.5 h overtime, 430 + 40.31 yuan, 1 line — numbers as numbers.
    assert_eq!(rows[1][0], Data::String("w-0001".into()));
    assert_eq!(rows[1][1], Data::String("高平".into()));
    assert_eq!(rows[1][2], Data::Float(1.0));
    assert_eq!(rows[1][3], Data::Float(8.0));
    assert_eq!(rows[1][4], Data::Float(0.5));
    assert_eq!(rows[1][5], Data::Float(470.31));
    assert_eq!(rows[1][6], Data::Float(1.0));
    // w-0003: half a day at 380.
    assert_eq!(rows[2][0], Data::String("w-0003".into()));
    assert_eq!(rows[2][2], Data::Float(0.5));
    assert_eq!(rows[2][5], Data::Float(190.0));
    // Totals.
    assert_eq!(rows[3][0], Data::String("合计 total".into()));
    assert_eq!(rows[3][2], Data::Float(1.5));
    assert_eq!(rows[3][5], Data::Float(660.31));
    assert_eq!(rows[3][6], Data::Float(2.0));

    // Dates are dates: the progress report's planned dates.
    let (_, bytes) = office
        .get(
            "/v1/reports/progress",
            &[("site", "site-hz-01"), ("date", "2026-12-01"), ("format", "xlsx")],
        )
        .await;
    let mut book: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).unwrap();
    let name = book.sheet_names()[0].clone();
    let sheet = book.worksheet_range(&name).unwrap();
    let first = sheet.rows().nth(1).unwrap();
    match &first[6] {
        Data::DateTime(dt) => assert_eq!(dt.as_datetime().unwrap().date().to_string(), "2026-09-16"),
        other => panic!("planned start is not a date: {other:?}"),
    }

    // CSV with a byte-order mark and the same figures.
    let (status, bytes) = office
        .get("/v1/reports/labor", &[q.as_slice(), &[("format", "csv")]].concat())
        .await;
    assert_eq!(status, 200);
    assert_eq!(&bytes[..3], &[0xef, 0xbb, 0xbf]);
    let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[1], "w-0001,高平,1.00,8.00,0.50,470.31,1");
    assert_eq!(lines[3], "合计 total,,1.50,12.00,0.50,660.31,2");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_matches_the_routes_and_guards_them() {
    let server = TestServer::start().await;
    let anonymous = Api::new(&server, "no-token");
    let doc = anonymous.json("/v1/openapi.json", &[]).await;
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/healthz",
        "/v1/sync",
        "/v1/reports/labor",
        "/v1/reports/attendance",
        "/v1/reports/progress",
        "/v1/reports/anomalies",
        "/v1/reports/daily-log",
        "/v1/approvals",
        "/v1/admin/import",
        "/v1/admin/devices",
        "/v1/devices",
        "/v1/conflicts",
        "/v1/conflicts/resolve",
    ] {
        assert!(paths.contains_key(path), "{path} is documented");
    }
    // Every schema a response names is in the document (the report model's types come from
    // client-core, whose schemas are written by hand where serde reshapes them).
    let text = doc.to_string();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in text
        .split("\"#/components/schemas/")
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap()])
    {
        assert!(schemas.contains_key(name), "{name} is referenced but not defined");
    }
    let sums = &schemas["Sums"]["properties"];
    for field in [
        "work_days_centi",
        "hours_min",
        "overtime_min",
        "cost_fen",
        "cost",
        "lines",
    ] {
        assert!(sums.get(field).is_some(), "Sums documents {field}: {sums}");
    }
    // Cost against budget is in the progress report's schema, and the overrun among anomaly kinds.
    let cost = &schemas["CostPerformance"]["properties"];
    for field in [
        "earned_fen",
        "cost_fen",
        "piece_cost_fen",
        "cpi_milli",
        "eac_fen",
        "overrun",
    ] {
        assert!(cost.get(field).is_some(), "CostPerformance documents {field}: {cost}");
    }
    assert!(
        schemas["AnomalyKind"].to_string().contains("cost_overrun"),
        "{}",
        schemas["AnomalyKind"]
    );
    // Every documented operation exists (no 404/405) and, but for /healthz, refuses a bad token.
    let http = reqwest::Client::new();
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let path_filled = path
                .replace("{device}", "d-nothing")
                .replace("{sha256}", &"0".repeat(64));
            let url = format!("{}{}", server.url(), path_filled);
            let req = match method.as_str() {
                "get" => http.get(&url),
                "post" => http.post(&url).json(&serde_json::json!({})),
                "put" => http.put(&url).body(Vec::new()),
                "delete" => http.delete(&url),
                other => panic!("unexpected method {other}"),
            };
            let status = req.bearer_auth("no-token").send().await.unwrap().status().as_u16();
            if path == "/healthz" {
                assert_eq!(status, 200);
            } else if method == "delete" && path == "/v1/session" {
                assert_eq!(status, 204, "signing out needs no credential");
            } else if path == "/w/{token}" {
                // A worker's page takes no bearer token: the link is the credential, and `{token}`
                // is not one.
                assert_eq!(status, 403, "a worker's page refuses a link that is not one");
            } else {
                assert!(
                    status == 401 || status == 400 || status == 422,
                    "{method} {path}: {status}"
                );
            }
        }
    }
    let foreman = Api::new(&server, &server.device("u-foreman-hz-01").await);
    let (status, _) = foreman
        .get(
            "/v1/reports/labor",
            &[("from", "2026-09-01"), ("to", "2026-09-30"), ("site", "site-sz-02")],
        )
        .await;
    assert_eq!(status, 403, "a foreman reads only their sites");
    server.stop().await;
}

/// Reports read the last committed state on connections of their own, and requests authenticate
/// without waiting for the documents: a report answers while the document store's writer is held
/// (as a batch of pushes holds it), instead of queueing behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_do_not_wait_for_the_document_writer() {
    let server = TestServer::start().await;
    let office = Api::new(&server, &server.device("u-office-1").await);
    let (held_tx, held_rx) = std::sync::mpsc::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = tokio::spawn({
        let state = server.state.clone();
        async move {
            state
                .documents(move |_| {
                    held_tx.send(()).unwrap();
                    // Held until the report has answered (or for 30 s, if it never does).
                    let _ = release_rx.recv_timeout(std::time::Duration::from_secs(30));
                    Ok(())
                })
                .await
        }
    });
    tokio::task::spawn_blocking(move || held_rx.recv().unwrap())
        .await
        .unwrap();
    // Long enough for the server's change poller to start waiting for the store too.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let report = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        office.get("/v1/reports/labor", &[("from", "2026-09-01"), ("to", "2026-09-30")]),
    )
    .await;
    let still_held = !holder.is_finished();
    release_tx.send(()).unwrap();
    holder.await.unwrap().unwrap();
    let (status, body) = report.expect("the report answered while the writer was held");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(still_held, "the writer was still held when the report answered");
}
