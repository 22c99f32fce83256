//! Who wrote what, end to end: a foreman's phone logs and submits a day, the site manager approves
//! it in head office's API; the history names both, and the evidence file proves it offline and
//! catches any change to it.

use sitesync_core::evidence::{EvidenceError, Subject, verify_file};
use sitesync_tests::harness::{Api, TestServer, phone};

use crate::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_and_evidence_name_the_devices_users_and_a_changed_byte_is_caught() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (foreman_device, token) = server.device_with_id("u-foreman-hz-01").await;
    let mut foreman = phone(dir.path(), "崔贵", &server.url(), &token);
    sync(&mut foreman).await;
    foreman
        .add_labor(&entry("2026-12-05", "w-0001", "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    foreman
        .add_labor(&entry("2026-12-05", "w-0002", "site-hz-01/wi-4.1", "0.5"), None)
        .unwrap();
    foreman.submit_day(&hz(), d("2026-12-05")).unwrap();
    sync(&mut foreman).await;

    let manager = Api::new(&server, &server.device("u-manager-hz-01").await);
    let (status, body) = manager
        .post(
            "/v1/approvals",
            &serde_json::json!({"decisions": [{"site": "site-hz-01", "date": "2026-12-05", "decision": "approve"}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body[0]["ok"], true, "{body}");

    // The history: each change with the user of the device that signed it.
    let h = manager
        .json("/v1/history", &[("site", "site-hz-01"), ("date", "2026-12-05")])
        .await;
    let changes = h["changes"].as_array().unwrap();
    assert!(changes.iter().all(|c| c["signed"] == true), "{h}");
    let by = |field: &str, value: &str| {
        changes
            .iter()
            .find(|c| {
                c["writes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|w| w["field"] == field && w["value"] == format!("{value:?}"))
            })
            .unwrap_or_else(|| panic!("no change writes {field} = {value}: {h}"))
    };
    let line = by("worker", "w-0001");
    assert_eq!(line["user_name"], "崔贵");
    assert_eq!(line["device"], foreman_device);
    let approval = by("action", "approved");
    assert_eq!(approval["user_name"], "龙东江");
    assert_eq!(
        approval["device"], "server",
        "the server wrote the approval for the signed-in manager"
    );
    // Each current value names who entered it.
    let work_days = h["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == "work_days_centi")
        .unwrap();
    assert_eq!(work_days["values"][0]["user_name"], "崔贵");

    // The same on the phone, offline, from the directory the server sent.
    sync(&mut foreman).await;
    let offline = foreman
        .history(
            &sitesync_core::ids::DocId::Day(hz(), d("2026-12-05")),
            "this device",
            sitesync_core::store::Authors::Directory,
        )
        .unwrap();
    let approved = offline
        .iter()
        .find(|e| {
            e.change
                .writes
                .iter()
                .any(|w| w.field == "action" && w.value.to_string() == "\"approved\"")
        })
        .unwrap();
    assert_eq!(approved.author.device.as_deref(), Some("server"));

    // The evidence file verifies offline against the server's key and says who did what.
    let server_key = server.store(|s| s.public_key()).await;
    let (status, file) = manager
        .get("/v1/evidence", &[("site", "site-hz-01"), ("date", "2026-12-05")])
        .await;
    assert_eq!(status, 200);
    let text = String::from_utf8(file).unwrap();
    let report = verify_file(&text, Some(server_key)).unwrap();
    assert_eq!(report.lines.len(), 2);
    for l in &report.lines {
        assert!(
            l.fields.iter().all(|f| f.by.starts_with("崔贵 (u-foreman-hz-01")),
            "{l:?}"
        );
    }
    assert!(
        report
            .reviews
            .iter()
            .any(|r| r.action == "approved" && r.by.starts_with("龙东江 (u-manager-hz-01, device server)")),
        "{report:?}"
    );
    assert!(
        report
            .reviews
            .iter()
            .any(|r| r.action == "submitted" && r.by.starts_with("崔贵"))
    );

    // A byte changed in a change, in an enrolment record, in a signature: each is caught.
    for needle in ["\"changes\":[\"", "\"user_name\":\"", "\"sig\":\"", "\"signature\":\""] {
        let at = text.find(needle).unwrap() + needle.len() + 3;
        let mut bytes = text.clone().into_bytes();
        bytes[at] = if bytes[at] == b'a' { b'b' } else { b'a' };
        let tampered = String::from_utf8_lossy(&bytes).to_string();
        let err = verify_file(&tampered, Some(server_key)).unwrap_err();
        assert!(
            matches!(err, EvidenceError::ServerSignature | EvidenceError::Malformed(_)),
            "{needle}: {err}"
        );
    }
    // A file re-signed by another key does not pass for the server's.
    assert!(matches!(
        verify_file(&text, Some(sitesync_core::signing::Keypair::generate().public())),
        Err(EvidenceError::WrongServer { .. })
    ));

    // A worker's month: only that worker's lines.
    let (status, file) = manager
        .get("/v1/evidence", &[("worker", "w-0002"), ("month", "2026-12")])
        .await;
    assert_eq!(status, 200);
    let month = verify_file(&String::from_utf8(file).unwrap(), Some(server_key)).unwrap();
    assert!(matches!(month.subject, Subject::WorkerMonth { .. }));
    assert_eq!(month.lines.len(), 1);
    assert!(
        month.lines[0]
            .fields
            .iter()
            .any(|f| f.field == "worker" && f.value == "\"w-0002\"")
    );
}
