//! Workers see their own record (issue #20) through a real server: head office makes a link, the
//! worker's page shows exactly his line of `GET /v1/pay` and his approved days, never another
//! worker's; his name is escaped; altered, expired and revoked links get a Chinese refusal page.

use serde_json::{Value, json};
use sitesync_core::store::NewAdvance;
use sitesync_core::units::Fen;
use sitesync_server::worker_link::{LinkClaims, sign, yuan};
use sitesync_tests::harness::{Api, ServerDb, TestServer, phone};

use crate::*;

const DATE: &str = "2026-11-20";
const NAME: &str = "<script>alert(1)</script>张三";

/// The page at `path` (with `?month=2026-11`), fetched with no credential: status and text.
async fn page(server: &TestServer, path: &str) -> (u16, String) {
    let (status, body) = Api::anonymous(server).get(path, &[("month", "2026-11")]).await;
    (status, String::from_utf8(body).unwrap())
}

/// The worker's line of the crew's November pay sheet, as head office reads it.
async fn pay_line(office: &Api, worker: &str) -> Value {
    let sheet = office
        .json(
            "/v1/pay",
            &[
                ("site", "site-hz-01"),
                ("crew", "site-hz-01/crew-1"),
                ("from", "2026-11-01"),
                ("to", "2026-11-30"),
            ],
        )
        .await;
    sheet["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["worker"] == worker)
        .unwrap_or_else(|| panic!("no {worker} in {sheet}"))
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_link_shows_his_own_approved_figures_and_nothing_else() {
    let server = TestServer::start().await;
    // w-0001's name carries markup; the page must show it as text.
    server
        .store(|s| {
            let mut roster = s.roster(&hz()).unwrap();
            roster
                .workers
                .iter_mut()
                .find(|w| w.id.as_str() == "w-0001")
                .unwrap()
                .name = NAME.into();
            s.put_roster(&roster).unwrap();
        })
        .await;
    let other_name = server
        .store(|s| {
            let roster = s.roster(&hz()).unwrap();
            let w = roster.workers.iter().find(|w| w.id.as_str() == "w-0002").unwrap();
            (w.name.clone(), w.crew.to_string())
        })
        .await;
    assert_eq!(other_name.1, "site-hz-01/crew-1");
    let dir = tempfile::tempdir().unwrap();
    let mut f = phone(dir.path(), "f", &server.url(), &server.device("u-foreman-hz-01").await);
    f.set_user("崔贵").unwrap();
    sync(&mut f).await;
    f.add_labor(&entry(DATE, "w-0001", "site-hz-01/wi-1.1", "1.0"), None)
        .unwrap();
    f.add_labor(&entry(DATE, "w-0002", "site-hz-01/wi-1.1", "0.5"), None)
        .unwrap();
    f.add_advance(
        &NewAdvance {
            site: hz(),
            date: d(DATE),
            worker: WorkerId::new("w-0001").unwrap(),
            amount: Fen::parse_yuan("amount", "123.45").unwrap(),
            paid_by: String::new(),
            note: String::new(),
        },
        None,
    )
    .unwrap();
    // A later day left unapproved: not on the page.
    f.add_labor(&entry("2026-11-21", "w-0001", "site-hz-01/wi-1.1", "0.7"), None)
        .unwrap();
    f.submit_day(&hz(), d(DATE)).unwrap();
    sync(&mut f).await;
    let office = Api::new(&server, &server.device("u-office-1").await);
    let manager = Api::new(&server, &server.device("u-manager-hz-01").await);
    let foreman = Api::new(&server, &server.device("u-foreman-hz-01").await);
    let (status, body) = manager
        .post(
            "/v1/approvals",
            &json!({ "decisions": [{ "site": "site-hz-01", "date": DATE, "decision": "approve" }] }),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // Only head office (and admins) make links; for a worker on the roster; for a sane term.
    let ask = json!({ "site": "site-hz-01", "worker": "w-0001", "days_valid": 30 });
    assert_eq!(foreman.post("/v1/workers/link", &ask).await.0, 403);
    assert_eq!(manager.post("/v1/workers/link", &ask).await.0, 403);
    let unknown = json!({ "site": "site-hz-01", "worker": "w-9999", "days_valid": 30 });
    assert_eq!(office.post("/v1/workers/link", &unknown).await.0, 404);
    let too_long = json!({ "site": "site-hz-01", "worker": "w-0001", "days_valid": 367 });
    assert_eq!(office.post("/v1/workers/link", &too_long).await.0, 400);
    let (status, link) = office.post("/v1/workers/link", &ask).await;
    assert_eq!(status, 200, "{link}");
    let path = link["path"].as_str().unwrap().to_string();
    assert!(link["url"].as_str().unwrap().ends_with(&path), "{link}");
    assert!(path.starts_with("/w/"));

    // His page: his figures exactly as head office's pay sheet has them, his name escaped.
    let (status, html) = page(&server, &path).await;
    assert_eq!(status, 200, "{html}");
    let line = pay_line(&office, "w-0001").await;
    assert_eq!(line["advances_fen"], 12_345);
    for field in [
        "day_pay_fen",
        "overtime_pay_fen",
        "piece_pay_fen",
        "advances_fen",
        "net_fen",
    ] {
        let fen = line[field].as_i64().unwrap();
        assert!(
            html.contains(&format!("<td>{}</td>", yuan(fen))),
            "{field} {fen}: {html}"
        );
    }
    assert!(html.contains("<td>1.00</td>"), "{html}");
    assert!(html.contains("11-20"), "{html}");
    assert!(!html.contains("11-21"), "an unapproved day shows: {html}");
    assert!(html.contains("本月还有 1 天未审批"), "{html}");
    assert!(html.contains("已审批"), "{html}");
    assert!(html.contains("未签字"), "{html}");
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;张三"), "{html}");
    // Nothing of another worker: not his name, not his figures.
    let other = pay_line(&office, "w-0002").await;
    assert!(!html.contains(&other_name.0), "{html}");
    assert!(!html.contains("w-0002"), "{html}");
    assert!(!html.contains(&format!("<td>{}</td>", yuan(other["day_pay_fen"].as_i64().unwrap()))));
    assert!(!html.contains("<td>0.50</td>"), "{html}");

    // Altered links: a changed character, or another worker's payload under his MAC.
    let token = path.trim_start_matches("/w/").to_string();
    let (payload, mac) = token.split_once('.').unwrap();
    let flipped = format!(
        "/w/{payload}.{}{}",
        if mac.starts_with('A') { 'B' } else { 'A' },
        &mac[1..]
    );
    let (status, refused) = page(&server, &flipped).await;
    assert_eq!(status, 403);
    assert!(refused.contains("链接无效") && !refused.contains("张三"), "{refused}");
    let key: String = server
        .sql(ServerDb::Credentials, |sql| {
            sql.one("SELECT value FROM meta WHERE key = 'worker_link_key'", &[])?
                .text(0)
        })
        .await;
    let far = chrono::Utc::now().timestamp() + 3_600;
    let claims = |worker: &str, expires: i64| LinkClaims {
        site: "site-hz-01".into(),
        worker: worker.into(),
        expires,
        generation: 0,
    };
    let other_token = sign(&key, &claims("w-0002", far)).unwrap();
    let (other_payload, _) = other_token.split_once('.').unwrap();
    let (status, refused) = page(&server, &format!("/w/{other_payload}.{mac}")).await;
    assert_eq!(status, 403, "{refused}");
    assert!(!refused.contains(&other_name.0));
    assert_eq!(page(&server, "/w/garbage").await.0, 403);

    // Expired: signed with the server's own key, a second in the past.
    let past = chrono::Utc::now().timestamp() - 1;
    let (status, refused) = page(&server, &format!("/w/{}", sign(&key, &claims("w-0001", past)).unwrap())).await;
    assert_eq!(status, 410);
    assert!(refused.contains("链接已过期") && !refused.contains("张三"), "{refused}");

    // Revoked: the link made before stops, one made after works. Only head office revokes.
    let revoke = json!({ "site": "site-hz-01", "worker": "w-0001" });
    assert_eq!(foreman.post("/v1/workers/link/revoke", &revoke).await.0, 403);
    assert_eq!(page(&server, &path).await.0, 200);
    let (status, body) = office.post("/v1/workers/link/revoke", &revoke).await;
    assert_eq!(status, 200, "{body}");
    let (status, refused) = page(&server, &path).await;
    assert_eq!(status, 410);
    assert!(refused.contains("链接已作废") && !refused.contains("张三"), "{refused}");
    let (_, fresh) = office.post("/v1/workers/link", &ask).await;
    assert_eq!(page(&server, fresh["path"].as_str().unwrap()).await.0, 200);
    server.stop().await;
}
