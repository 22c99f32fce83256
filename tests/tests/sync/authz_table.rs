//! Authorization as tables: every route the server serves, and every kind of document of the sync
//! protocol, against every kind of caller — no credential, a wrong token, a revoked device, each role
//! on its own site and on another site of its org, the operators' admin, and users of another org
//! aiming at ours. Then the secrets: tokens are stored only hashed, and none reaches the logs.
//!
//! The expected answers are the server's documented behaviour (`docs/protocol.md`, the route docs
//! in `server/src`): 401 for a missing, unknown or revoked token; 403 for a valid token without the
//! role or the grant, whether the site exists or not (so the answer does not tell which sites exist);
//! approvals are decided one by one, so a decision on a site without a grant is refused inside the
//! answer, a 409 when no decision was recorded. Where the behaviour is a decision worth revisiting,
//! a row says so in a `FINDING` comment; the two tests at the end of this file pin down what this
//! table found and what was fixed.
//!
//! The route table is checked against the served OpenAPI document and the routes `server/src` adds
//! outside it, so a new route without a row fails `every_route_answers_every_caller_as_the_table_says`.
//!
//! Every route is called three ways: with the bearer token; with the dashboard's session cookie (a
//! session id the caller got by signing in with its token, the revoked device's before it was
//! revoked) sent as the dashboard's own page sends it; and with the same cookie from a page of
//! another origin, which every route that reads the cookie or signs in or out must refuse.
//!
//! The callers and their server are in `world.rs`, the route table in `routes.rs` (checked against
//! the OpenAPI document by `openapi.rs`), the sync table in `sync.rs`, the search for leaked secrets
//! in `secrets.rs`; this file holds what no table covers: the admins' org scope, and the findings.

mod openapi;
mod routes;
mod secrets;
mod sync;
mod world;

use serde_json::{Value, json};
use sitesync_core::ids::SiteId;
use sitesync_tests::harness::{Api, TestServer};

use secrets::assert_no_secret_leaks;
/// The log capture every test of this binary shares (`audit.rs` reads it too).
pub(crate) use secrets::logs;
use world::*;

use crate::d;

/// Admins act inside their own org only (the operators' admin on every org), and nobody below admin
/// changes their own role or grants.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_stay_inside_their_org_and_nobody_grants_themselves() {
    let w = World::new().await;
    let hz = w.site_records[OWN_SITE].clone();
    let revoke_foreman = format!("/v1/admin/devices/{}/revoke", w.devices[&ForemanOwn]);
    let revoke_operator = format!("/v1/admin/devices/{}/revoke", w.devices[&Operator]);
    let hz_company_site = json!({
        "id": OWN_SITE, "code": hz["code"], "name": hz["name"], "timezone": hz["timezone"],
        "crews": [], "workers": [], "work_items": [],
    });
    #[rustfmt::skip]
    let attempts: Vec<(Who, String, Value, u16)> = vec![
        // The other org's admin cannot pull our users or sites into their org …
        (OtherAdmin, "/v1/admin/users".into(), json!({ "org": OTHER_ORG, "id": "u-foreman-hz-01", "name": "x", "role": "admin" }), 409),
        (OtherAdmin, "/v1/admin/sites".into(), json!({ "org": OTHER_ORG, "site": hz }), 409),
        (OtherAdmin, "/v1/admin/import".into(), json!({ "org": { "id": OTHER_ORG, "name": OTHER_ORG_NAME }, "sites": [hz_company_site] }), 409),
        // … nor grant across orgs either way, nor touch our devices or our org.
        (OtherAdmin, "/v1/admin/grants".into(), json!({ "user": OTHER_FOREMAN, "site": OWN_SITE }), 403),
        (OtherAdmin, "/v1/admin/grants".into(), json!({ "user": "u-foreman-hz-01", "site": OTHER_ORG_SITE }), 403),
        (OtherAdmin, "/v1/admin/devices".into(), json!({ "user": "u-foreman-hz-01" }), 403),
        (OtherAdmin, revoke_foreman.clone(), json!({}), 403),
        (OtherAdmin, "/v1/admin/orgs".into(), json!({ "id": ORG, "name": "taken over" }), 403),
        (OtherAdmin, "/v1/admin/users".into(), json!({ "org": OTHER_ORG, "id": "admin", "name": "x", "role": "admin" }), 409),
        // Our org's admin cannot make orgs or reach the operators.
        (Admin, "/v1/admin/orgs".into(), json!({ "id": "org-new", "name": "new" }), 403),
        (Admin, "/v1/admin/users".into(), json!({ "org": "system", "id": "u-evil", "name": "x", "role": "admin" }), 403),
        (Admin, "/v1/admin/users".into(), json!({ "org": ORG, "id": "admin", "name": "x", "role": "admin" }), 409),
        (Admin, "/v1/admin/devices".into(), json!({ "user": "admin" }), 403),
        (Admin, revoke_operator, json!({}), 403),
        // Nobody below admin promotes or grants themselves.
        (Office, "/v1/admin/users".into(), json!({ "org": ORG, "id": "u-office-1", "name": "x", "role": "admin" }), 403),
        (ForemanOwn, "/v1/admin/grants".into(), json!({ "user": "u-foreman-hz-01", "site": OTHER_SITE }), 403),
        (ManagerOwn, "/v1/admin/grants".into(), json!({ "user": "u-manager-hz-01", "site": OTHER_SITE }), 403),
        (OtherForeman, "/v1/admin/grants".into(), json!({ "user": OTHER_FOREMAN, "site": OWN_SITE }), 403),
    ];
    let before = w.credentials().await;
    let mut wrong = Vec::new();
    for (who, path, body, want) in attempts {
        let (status, _) = Api::new(&w.server, w.token(who).unwrap()).post(&path, &body).await;
        if status != want {
            wrong.push(format!("{who:?} POST {path} {body}: {status}, expected {want}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(
        w.credentials().await,
        before,
        "no attempt changed tenancy, grants or devices"
    );
    assert_no_secret_leaks(&w).await;
    w.server.stop().await;
}

/// Found by this table and fixed (`admin_grant`, server/src/http/admin.rs): the site was looked up
/// before the caller was authenticated, so anyone without a token learned which site ids exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grant_route_tells_nothing_before_authenticating() {
    let server = TestServer::start().await;
    let anonymous = Api::anonymous(&server);
    for site in [OWN_SITE, "site-does-not-exist"] {
        let (status, _) = anonymous
            .post("/v1/admin/grants", &json!({ "user": "u-foreman-hz-01", "site": site }))
            .await;
        assert_eq!(status, 401, "POST /v1/admin/grants for {site} without a token");
    }
    server.stop().await;
}

/// Found by this table and fixed (`events`, server/src/http/dashboard.rs): the event stream
/// authenticated once, when it opened; a device revoked afterwards kept being told when its
/// documents changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_devices_event_stream_ends_at_the_next_change() {
    let server = TestServer::start().await;
    let (device, token) = server.device_with_id("u-foreman-hz-01").await;
    // The fixture import is announced before the stream opens: otherwise the server's first poll
    // for changes, when late, tells the stream of it before the revocation (seen on a loaded run).
    server.state.notify_changes().await.unwrap();
    let mut events = Api::new(&server, &token)
        .request(reqwest::Method::GET, "/v1/events")
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    server.state.auth(move |a| a.revoke_device(&device)).await.unwrap();
    let site: SiteId = OWN_SITE.parse().unwrap();
    server
        .store(move |s| s.set_day_info(&site, d(SEED_DAY), Some("雨"), None, None).unwrap())
        .await;
    server.state.notify_changes().await.unwrap();
    let next = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            match events.chunk().await {
                Ok(Some(c)) if String::from_utf8_lossy(&c).contains("event:") => {
                    return Some(String::from_utf8_lossy(&c).into_owned());
                }
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => return None,
            }
        }
    })
    .await
    .expect("the stream ends or speaks within 10 s");
    assert_eq!(next, None, "a revoked device was sent a change event");
    server.stop().await;
}
