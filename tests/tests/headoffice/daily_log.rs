//! The 施工日志 from head office: a day logged, submitted and approved through the API, fetched as
//! JSON and as PDF (read back with poppler's `pdftotext`), naming the manager who approved it.

use serde_json::json;
use sitesync_tests::harness::{Api, TestServer};

use crate::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_log_names_the_lines_and_who_approved_the_day() {
    let server = TestServer::start().await;
    let date = parse_date("2026-12-07").unwrap();
    server
        .store(move |s| {
            s.add_labor(&entry("2026-12-07", "w-0001", "site-hz-01/wi-4.1", "1.0"), None)
                .unwrap();
            s.add_labor(&entry("2026-12-07", "w-0003", "site-hz-01/wi-4.1", "0.5"), None)
                .unwrap();
            s.set_day_info(&hz(), date, Some("小雨"), Some("下午停电两小时"), None)
                .unwrap();
            s.submit_day(&hz(), date).unwrap();
        })
        .await;
    let manager = Api::new(&server, &server.device("u-manager-hz-01").await);
    let decision = json!({ "decisions": [{ "site": "site-hz-01", "date": "2026-12-07", "decision": "approve" }] });
    let (status, results) = manager.post("/v1/approvals", &decision).await;
    assert_eq!(status, 200, "{results}");

    let office = Api::new(&server, &server.device("u-office-1").await);
    let q = [("site", "site-hz-01"), ("date", "2026-12-07")];
    let log = office
        .json("/v1/reports/daily-log", &[&q[..], &[("format", "json")]].concat())
        .await;
    assert_eq!(log["status"], "approved");
    assert_eq!(log["weather"], "小雨");
    assert_eq!(log["approval"]["by"], "u-manager-hz-01");
    assert_eq!(log["approval"]["by_name"], "龙东江");
    assert_eq!(log["headcount"], 2);
    assert_eq!(log["total"]["work_days_centi"], 150);
    assert_eq!(log["labor"].as_array().unwrap().len(), 2);
    // Nobody signed: each worker with lines is listed unsigned, his crew unconfirmed.
    let sign_offs = log["sign_offs"].as_array().unwrap();
    let workers: Vec<(&str, &str)> = sign_offs
        .iter()
        .filter(|s| s["role"] == "worker")
        .map(|s| (s["id"].as_str().unwrap(), s["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        workers,
        [("w-0001", "unsigned"), ("w-0003", "unsigned")],
        "{sign_offs:?}"
    );
    assert!(
        sign_offs
            .iter()
            .filter(|s| s["role"] == "crew_leader")
            .all(|s| s["state"] == "unconfirmed" && s["at"].is_null()),
        "{sign_offs:?}"
    );
    assert!(sign_offs.iter().any(|s| s["role"] == "crew_leader"), "{sign_offs:?}");
    assert_eq!(log["attachments"], json!([]));

    // PDF is the default format.
    let (status, pdf) = office.get("/v1/reports/daily-log", &q).await;
    assert_eq!(status, 200);
    assert!(pdf.starts_with(b"%PDF-"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("log.pdf");
    std::fs::write(&file, &pdf).unwrap();
    let out = std::process::Command::new("pdftotext")
        .args([file.to_str().unwrap(), "-"])
        .output();
    // Read back where poppler is installed (`.ci/run` installs it and requires it).
    let text: Option<String> = match out {
        Ok(out) => {
            assert!(out.status.success());
            Some(String::from_utf8(out.stdout).unwrap().split_whitespace().collect())
        }
        Err(e) => {
            assert!(
                std::env::var_os("SITESYNC_REQUIRE_POPPLER").is_none(),
                "pdftotext: {e} (install poppler-utils)"
            );
            eprintln!("poppler-utils is not installed: the PDF is not read back");
            None
        }
    };
    for want in [
        "施工日志",
        log["site_name"].as_str().unwrap(),
        "小雨",
        "下午停电两小时",
        "审批人：龙东江",
        "未签认",
        log["labor"][0]["worker_name"].as_str().unwrap(),
        log["labor"][1]["worker_name"].as_str().unwrap(),
        log["total"]["cost"].as_str().unwrap(),
    ] {
        if let Some(text) = &text {
            assert!(text.contains(want), "{want:?} is not in {text}");
        }
    }

    // A bad date is the caller's error; another site's manager reads nothing of it.
    let (status, _) = office
        .get(
            "/v1/reports/daily-log",
            &[("site", "site-hz-01"), ("date", "2026-02-30")],
        )
        .await;
    assert_eq!(status, 400);
    let other = Api::new(&server, &server.device("u-manager-sz-02").await);
    let (status, body) = other.get("/v1/reports/daily-log", &q).await;
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
}
