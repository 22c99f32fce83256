//! Limits per device: each one holds against a client that exceeds it, and a client within it (or
//! another device meanwhile) is served as usual.

use std::time::{Duration, Instant};

use sitesync_core::sync::protocol::{ClientMsg, DocResult, DocSync, ErrorCode, ServerMsg};
use sitesync_server::limits::Limits;
use sitesync_tests::harness::{Api, RawClient, TestServer, phone};

use crate::*;

/// A push that only asks about `n` day documents nobody wrote (no changes): cheap, and each is
/// answered `Synced`.
fn asks(n: usize, from: usize) -> Vec<DocSync> {
    (from..from + n)
        .map(|k| DocSync {
            doc: format!("day|site-hz-01|{}", d("2020-01-01") + chrono::Duration::days(k as i64)),
            base: vec![],
            heads: vec![],
            changes: vec![],
            sigs: vec![],
        })
        .collect()
}

async fn welcome(c: &mut RawClient) {
    assert!(matches!(c.welcome(0).await, Some(ServerMsg::Welcome { .. })));
}

/// The answer to a push: its results, or the error the server closed with.
async fn answer(c: &mut RawClient) -> Result<Vec<DocResult>, (ErrorCode, String)> {
    loop {
        match c.recv().await {
            Some(ServerMsg::Ack { results, .. }) => return Ok(results),
            Some(ServerMsg::Error { code, message }) => return Err((code, message)),
            Some(ServerMsg::Changed { .. }) => continue,
            other => panic!("expected an answer, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_per_push_and_per_connection_are_capped() {
    let server = TestServer::start_with_limits(Limits {
        docs_per_push: 8,
        docs_per_connection: 20,
        ..Limits::default()
    })
    .await;
    let token = server.device("u-foreman-hz-01").await;

    // Within the limits: answered document by document.
    let mut c = RawClient::connect(server.addr, &token).await.unwrap();
    welcome(&mut c).await;
    for round in 0..2 {
        c.send(&ClientMsg::Push {
            req: round,
            docs: asks(8, round as usize * 8),
        })
        .await;
        let results = answer(&mut c).await.expect("8 documents are within the limit");
        assert_eq!(results.len(), 8);
    }
    // The same documents again do not count twice.
    c.send(&ClientMsg::Push {
        req: 9,
        docs: asks(8, 0),
    })
    .await;
    assert!(answer(&mut c).await.is_ok());

    // Nine in one push: refused with a reason, and the connection closes.
    let mut c2 = RawClient::connect(server.addr, &token).await.unwrap();
    welcome(&mut c2).await;
    c2.send(&ClientMsg::Push {
        req: 1,
        docs: asks(9, 0),
    })
    .await;
    let (code, message) = answer(&mut c2).await.unwrap_err();
    assert_eq!(code, ErrorCode::RateLimited);
    assert!(message.contains("8 documents per push"), "{message}");
    assert!(c2.recv().await.is_none(), "closed after the error");

    // The first connection has pushed 16 distinct documents; 8 more pass the limit of 20.
    c.send(&ClientMsg::Push {
        req: 10,
        docs: asks(8, 16),
    })
    .await;
    let (code, message) = answer(&mut c).await.unwrap_err();
    assert_eq!(code, ErrorCode::RateLimited);
    assert!(message.contains("per connection"), "{message}");

    // A new connection starts a new count, and a real phone syncs as usual.
    let dir = tempfile::tempdir().unwrap();
    let mut p = phone(dir.path(), "foreman", &server.url(), &token);
    sync_once(&mut p).await.unwrap();
    p.add_labor(&entry("2026-12-01", "w-0001", "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    sync_once(&mut p).await.unwrap();
    assert!(p.pending().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_device_are_capped() {
    let server = TestServer::start_with_limits(Limits {
        connections_per_device: 2,
        ..Limits::default()
    })
    .await;
    let token = server.device("u-foreman-hz-01").await;
    let other = server.device("u-foreman-hz-01").await;
    let mut a = RawClient::connect(server.addr, &token).await.unwrap();
    let _b = RawClient::connect(server.addr, &token).await.unwrap();
    assert_eq!(RawClient::connect(server.addr, &token).await.err(), Some(429));
    // Another device of the same user is not affected.
    let mut o = RawClient::connect(server.addr, &other).await.unwrap();
    welcome(&mut o).await;
    // Once one closes, the device may connect again.
    welcome(&mut a).await;
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match RawClient::connect(server.addr, &token).await {
            Ok(mut c) => {
                welcome(&mut c).await;
                break;
            }
            Err(429) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(s) => panic!("reconnect refused with {s}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_requests_per_token_are_rate_limited() {
    let server = TestServer::start_with_limits(Limits {
        api_per_second: 2,
        api_burst: 5,
        ..Limits::default()
    })
    .await;
    let busy = Api::new(&server, &server.device("u-office-1").await);
    let calm = Api::new(&server, &server.device("u-office-1").await);
    let q = [("site", "site-hz-01"), ("from", "2026-09-01"), ("to", "2026-09-07")];
    for _ in 0..5 {
        assert_eq!(busy.get("/v1/reports/labor", &q).await.0, 200);
    }
    let (status, body) = busy.get("/v1/reports/labor", &q).await;
    assert_eq!(status, 429, "{}", String::from_utf8_lossy(&body));
    let retry = busy.get_headers("/v1/reports/labor", &q).await;
    assert!(retry.get("retry-after").is_some(), "429 says when to retry: {retry:?}");
    // Another token is unaffected.
    assert_eq!(calm.get("/v1/reports/labor", &q).await.0, 200);
    // The bucket refills.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(busy.get("/v1/reports/labor", &q).await.0, 200);
}

/// Each admin request counts once against its token's rate, however many checks it makes (the grant
/// route used to authenticate three times, the others twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_request_counts_once_against_the_rate() {
    const BURST: u32 = 12;
    let server = TestServer::start_with_limits(Limits {
        api_per_second: 1,
        api_burst: BURST,
        ..Limits::default()
    })
    .await;
    let (_, temp) = server.device_with_id("u-foreman-hz-01").await;
    let temp_device = format!("d-{}", temp.split('_').nth(1).unwrap());
    let admin = Api::new(&server, &server.device("u-admin").await);
    let user = serde_json::json!({ "org": "org-zhuyuan", "id": "u-rate", "name": "限速", "role": "foreman" });
    let calls = [
        ("/v1/admin/users", user),
        (
            "/v1/admin/grants",
            serde_json::json!({ "user": "u-rate", "site": "site-hz-01" }),
        ),
        (
            "/v1/admin/grants",
            serde_json::json!({ "user": "u-rate", "site": "site-sz-02" }),
        ),
        (
            "/v1/admin/grants",
            serde_json::json!({ "user": "u-rate", "site": "site-nb-03" }),
        ),
        ("/v1/admin/devices", serde_json::json!({ "user": "u-rate" })),
        ("/v1/admin/devices", serde_json::json!({ "user": "u-rate" })),
        (
            "/v1/admin/orgs",
            serde_json::json!({ "id": "org-zhuyuan", "name": "筑远建设集团有限公司" }),
        ),
        (
            "/v1/admin/import",
            serde_json::json!({ "org": { "id": "org-zhuyuan", "name": "筑远建设集团有限公司" }, "sites": [], "users": [] }),
        ),
        (
            &format!("/v1/admin/devices/{temp_device}/revoke"),
            serde_json::json!({}),
        ),
    ];
    // Nine requests that made 20 authentications: within a burst of 12 only if each counts once
    // (the bucket refills one a second, so a slow run gains a few at most).
    for (path, body) in &calls {
        let (status, answer) = admin.post(path, body).await;
        assert_eq!(status, 200, "POST {path}: {answer}");
    }
    // The bucket does hold: what is left of it runs out.
    let mut refused = false;
    for _ in 0..BURST {
        if admin.post("/v1/admin/orgs", &calls[6].1).await.0 == 429 {
            refused = true;
            break;
        }
    }
    assert!(refused, "the admin token's rate is limited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_past_its_sync_rate_is_slowed_not_refused() {
    let server = TestServer::start_with_limits(Limits {
        sync_per_second: 20,
        sync_burst: 5,
        ..Limits::default()
    })
    .await;
    let token = server.device("u-foreman-hz-01").await;
    let mut c = RawClient::connect(server.addr, &token).await.unwrap();
    welcome(&mut c).await;
    let start = Instant::now();
    for req in 0..25 {
        c.send(&ClientMsg::Push { req, docs: asks(1, 0) }).await;
        assert!(answer(&mut c).await.is_ok(), "every push is answered");
    }
    // 25 messages with a burst of 5 (the hello took one) at 20/s take about a second.
    assert!(start.elapsed() >= Duration::from_millis(800), "{:?}", start.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_over_the_size_limit_is_refused_and_the_server_stays_up() {
    let server = TestServer::start().await;
    let token = server.device("u-foreman-hz-01").await;
    let mut c = RawClient::connect(server.addr, &token).await.unwrap();
    welcome(&mut c).await;
    let too_big = vec![0u8; sitesync_core::sync::protocol::MAX_FRAME + 1];
    c.try_send_bytes(too_big).await;
    assert!(c.recv().await.is_none(), "the connection is closed");
    // Everyone else, and this device on a new connection, carry on.
    let dir = tempfile::tempdir().unwrap();
    let mut p = phone(dir.path(), "foreman", &server.url(), &token);
    sync_once(&mut p).await.unwrap();
    p.add_labor(&entry("2026-12-01", "w-0001", "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    sync_once(&mut p).await.unwrap();
    assert!(p.pending().unwrap().is_empty());
}

/// The server writes no WebSocket frame over 16 KiB: a larger message (a first sync's frames are up
/// to 64 KiB of changes) goes out in fragments, which the phone's WebSocket joins. A client that
/// takes frames of at most 16 KiB reads a whole first sync, messages over 16 KiB included; before
/// the fragments it was cut off at the first such message ("frame too long"), and the server kept a
/// write buffer as large as the largest message for every connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_16_kib_goes_out_in_fragments_the_phone_joins() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::{Message, protocol::WebSocketConfig};

    const FRAGMENT: usize = sitesync_server::sync_conn::websocket::FRAGMENT;
    // The demo company: a quarter of logs, which head office's device reads whole.
    let (server, _) = TestServer::start_demo(7, chrono::Utc::now()).await;
    let tokens = std::fs::read_to_string(server.dir.path().join("demo-tokens.txt")).unwrap();
    let token = tokens
        .lines()
        .find_map(|l| l.strip_prefix("u-office-1\t"))
        .and_then(|rest| rest.split('\t').nth(1))
        .expect("head office's demo token")
        .to_string();
    let mut req = format!("ws://{}/v1/sync", server.addr).into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let config = WebSocketConfig::default()
        .max_frame_size(Some(FRAGMENT))
        .max_message_size(Some(sitesync_core::sync::protocol::MAX_FRAME));
    let (mut socket, _) = tokio_tungstenite::connect_async_with_config(req, Some(config), false)
        .await
        .unwrap();
    let hello = ClientMsg::Hello {
        cursor: 0,
        key: sitesync_core::signing::Keypair::generate().public(),
    };
    socket
        .send(Message::Binary(sitesync_core::sync::protocol::encode(&hello).into()))
        .await
        .unwrap();
    // The whole first sync: the welcome, then `Changed` frames until one reaches its cursor.
    let (mut target, mut largest, mut docs) = (None, 0, 0);
    loop {
        let next = tokio::time::timeout(Duration::from_secs(10), socket.next()).await;
        let bytes = match next.expect("the server answers within 10 s") {
            Some(Ok(Message::Binary(b))) => b,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("the first sync was cut off: {other:?}"),
        };
        largest = largest.max(bytes.len());
        match sitesync_core::sync::protocol::decode(&bytes).unwrap() {
            ServerMsg::Welcome {
                cursor, docs: d, more, ..
            } => {
                docs += d.len();
                if !more {
                    break;
                }
                target = Some(cursor);
            }
            ServerMsg::Changed { cursor, docs: d, .. } => {
                docs += d.len();
                if Some(cursor) >= target {
                    break;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        largest > FRAGMENT,
        "no message passed 16 KiB ({largest} B): nothing was fragmented"
    );
    assert!(docs > 270, "every site's days and more: {docs} documents");
}
