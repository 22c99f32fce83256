//! The audit trail: failed sign-ins (with the device id when the token names a real device), refused
//! requests, sign-ins, admin actions and revocations each leave exactly one structured line on the
//! `audit` target — and none holds a token or a session id. Before, no line recorded any of them.

use serde_json::json;
use sitesync_tests::harness::TestServer;

use crate::authz_table::logs;
use crate::sessions::sign_in;

/// The audit lines logged since `from` (a length of the shared log) that mention `needle`.
fn audit_lines(from: usize, needle: &str) -> Vec<String> {
    let all = logs().lock().unwrap_or_else(|e| e.into_inner()).clone();
    String::from_utf8_lossy(&all[from.min(all.len())..])
        .lines()
        .filter(|l| l.contains(" audit: ") && l.contains(needle))
        .map(str::to_string)
        .collect()
}

fn log_len() -> usize {
    logs().lock().unwrap_or_else(|e| e.into_inner()).len()
}

/// The one line for `event` about `needle`, insisting there is exactly one.
fn one(from: usize, needle: &str, event: &str) -> String {
    let lines: Vec<String> = audit_lines(from, needle)
        .into_iter()
        .filter(|l| l.contains(&format!("event=\"{event}\"")))
        .collect();
    assert_eq!(lines.len(), 1, "one {event} line about {needle}: {lines:#?}");
    lines[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_refusals_and_admin_actions_are_audited_without_secrets() {
    logs();
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let from = log_len();
    let (office, office_token) = server.device_with_id("u-office-1").await;
    let (foreman, foreman_token) = server.device_with_id("u-foreman-hz-01").await;

    // A failed sign-in with a wrong secret for a real device: the device is named, the token not.
    let wrong = format!("{}{}", &office_token[..office_token.len() - 4], "0000");
    let wrong = if wrong == office_token {
        format!("{}1111", &office_token[..office_token.len() - 4])
    } else {
        wrong
    };
    let resp = http
        .post(format!("{}/v1/session", server.url()))
        .json(&json!({ "token": wrong }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let line = one(from, &office, "auth_failed");
    for field in [
        "reason=\"wrong token for the device\"",
        "ip=127.0.0.1",
        "status=401",
        "path=/v1/session",
    ] {
        assert!(line.contains(field), "{field} in {line}");
    }

    // A sign-in, and a refused request: the foreman asks for another site's report.
    let session = sign_in(&http, &server, &office_token).await;
    let line = one(from, &office, "sign_in");
    assert!(line.contains("user=\"u-office-1\""), "{line}");
    let resp = http
        .get(format!("{}/v1/reports/labor", server.url()))
        .bearer_auth(&foreman_token)
        .query(&[("site", "site-sz-02"), ("from", "2026-11-01"), ("to", "2026-11-30")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let line = one(from, &foreman, "refused");
    for field in [
        "user=\"u-foreman-hz-01\"",
        "status=403",
        "reason=\"forbidden: no grant for site site-sz-02\"",
        "path=/v1/reports/labor",
    ] {
        assert!(line.contains(field), "{field} in {line}");
    }

    // An admin action and a revocation through the API, then the revoked device tries again.
    let (admin_device, admin_token) = server.device_with_id("u-admin").await;
    let resp = http
        .post(format!("{}/v1/admin/devices/{foreman}/revoke", server.url()))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let line = one(from, &foreman, "revoke");
    assert!(line.contains(&admin_device), "who revoked: {line}");
    let resp = http
        .post(format!("{}/v1/admin/users", server.url()))
        .bearer_auth(&admin_token)
        .json(&json!({ "org": "org-zhuyuan", "id": "u-audit", "name": "审计", "role": "foreman" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let line = one(from, "put user u-audit", "admin");
    assert!(
        line.contains(&admin_device) && line.contains("user=\"u-admin\""),
        "{line}"
    );
    let resp = http
        .get(format!("{}/v1/session", server.url()))
        .bearer_auth(&foreman_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let revoked: Vec<String> = audit_lines(from, &foreman)
        .into_iter()
        .filter(|l| l.contains("reason=\"revoked device\""))
        .collect();
    assert_eq!(revoked.len(), 1, "{revoked:#?}");

    // No credential at all is a refusal too.
    let resp = http.get(format!("{}/v1/approvals", server.url())).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert!(
        audit_lines(from, "reason=\"no credential\"")
            .iter()
            .any(|l| l.contains("path=/v1/approvals")),
        "anonymous refusal"
    );

    // Never a secret: no token, nor its secret part, nor the session id.
    let everything = String::from_utf8_lossy(&logs().lock().unwrap_or_else(|e| e.into_inner())[from..]).into_owned();
    for secret in [&office_token, &foreman_token, &admin_token, &wrong, &session] {
        let tail = &secret[secret.len() - 40..];
        assert!(!everything.contains(tail), "a secret in the log: {}…", &secret[..12]);
    }
    server.stop().await;
}
