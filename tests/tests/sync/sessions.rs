//! The dashboard's sessions, attacked as they were found (2026-11-30): the cookie was the device
//! token itself, so signing out left it working (200), it never expired, and a page on another port
//! of the same host opened a sync WebSocket with head office's cookie and received 872,273 bytes
//! (267 documents), with write access — SameSite does not separate ports.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sitesync_core::sync::protocol::{self, ClientMsg, ServerMsg};
use sitesync_server::http::session::SESSION_COOKIE;
use sitesync_tests::harness::{ServerDb, TestServer};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Signs in as the dashboard does; returns the session id the cookie is set to.
pub(crate) async fn sign_in(http: &reqwest::Client, server: &TestServer, token: &str) -> String {
    let resp = http
        .post(format!("{}/v1/session", server.url()))
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    let value = cookie.split(';').next().unwrap();
    value.strip_prefix(&format!("{SESSION_COOKIE}=")).unwrap().to_string()
}

/// `GET /v1/session` with a cookie: the status.
async fn whoami(http: &reqwest::Client, server: &TestServer, cookie: &str) -> u16 {
    http.get(format!("{}/v1/session", server.url()))
        .header("cookie", format!("{SESSION_COOKIE}={cookie}"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_and_revoking_the_device_end_the_session_at_once() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let (device, token) = server.device_with_id("u-office-1").await;

    let cookie = sign_in(&http, &server, &token).await;
    assert_ne!(cookie, token, "the cookie holds a session id, not the device token");
    assert_eq!(whoami(&http, &server, &cookie).await, 200);
    let out = http
        .delete(format!("{}/v1/session", server.url()))
        .header("cookie", format!("{SESSION_COOKIE}={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    assert!(out.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    // Before: 200. The browser forgetting the cookie is not enough; the server forgets the session.
    assert_eq!(
        whoami(&http, &server, &cookie).await,
        401,
        "a signed-out session is dead"
    );

    // The device token itself is no cookie.
    assert_eq!(whoami(&http, &server, &token).await, 401);

    // Revoking the device ends its sessions (and the token goes with it).
    let cookie = sign_in(&http, &server, &token).await;
    let other = sign_in(&http, &server, &token).await;
    assert_eq!(whoami(&http, &server, &other).await, 200);
    server.state.auth(move |a| a.revoke_device(&device)).await.unwrap();
    assert_eq!(whoami(&http, &server, &cookie).await, 401);
    assert_eq!(whoami(&http, &server, &other).await, 401);
    let left = server
        .sql(ServerDb::Credentials, |sql| {
            sql.one("SELECT COUNT(*) FROM browser_sessions", &[])?.int(0)
        })
        .await;
    assert_eq!(left, 0, "the revoked device's sessions are deleted");
    server.stop().await;
}

/// Opens `/v1/sync` with the session cookie and an `Origin`; the refused status, or the bytes the
/// server sent in answer to a hello (at most 5 s of them).
async fn sync_with_cookie(server: &TestServer, cookie: &str, origin: Option<&str>) -> Result<usize, u16> {
    let mut req = format!("ws://{}/v1/sync", server.addr).into_client_request().unwrap();
    req.headers_mut()
        .insert("cookie", format!("{SESSION_COOKIE}={cookie}").parse().unwrap());
    if let Some(o) = origin {
        req.headers_mut().insert("origin", o.parse().unwrap());
    }
    let mut socket = match tokio_tungstenite::connect_async(req).await {
        Ok((s, _)) => s,
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => return Err(r.status().as_u16()),
        Err(e) => panic!("{e}"),
    };
    let hello = protocol::encode(&ClientMsg::Hello {
        cursor: 0,
        key: sitesync_core::signing::Keypair::generate().public(),
    });
    socket.send(Message::Binary(hello.into())).await.unwrap();
    let mut bytes = 0;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while let Some(message) = socket.next().await {
            match message {
                Ok(Message::Binary(b)) => {
                    bytes += b.len();
                    if matches!(protocol::decode::<ServerMsg>(&b), Ok(ServerMsg::Welcome { .. })) {
                        break;
                    }
                }
                Ok(Message::Close(c)) => panic!("closed: {c:?}"),
                Ok(_) => {}
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await;
    Ok(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_on_another_port_cannot_use_head_offices_session() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let token = server.device("u-office-1").await;
    let cookie = sign_in(&http, &server, &token).await;
    let own = server.url();
    let port = server.addr.port();
    let evil = format!("http://127.0.0.1:{}", port.wrapping_add(1).max(1));

    // The attack as found: the sync WebSocket from the other port's page, with the cookie.
    assert_eq!(sync_with_cookie(&server, &cookie, Some(&evil)).await, Err(403));
    // A sibling name of the same host, and a sandboxed page.
    let sibling = format!("http://localhost:{port}");
    assert_eq!(sync_with_cookie(&server, &cookie, Some(&sibling)).await, Err(403));
    assert_eq!(sync_with_cookie(&server, &cookie, Some("null")).await, Err(403));
    // No origin at all: not a browser page of ours either.
    assert_eq!(sync_with_cookie(&server, &cookie, None).await, Err(403));
    // From the server's own page it is allowed (a browser app of ours could sync).
    let got = sync_with_cookie(&server, &cookie, Some(&own)).await.unwrap();
    assert!(got > 0);

    // The API: a request from the other port with the cookie is refused, and changes nothing.
    for (method, path, body) in [
        ("GET", "/v1/reports/labor?from=2026-11-01&to=2026-11-30", None),
        ("GET", "/v1/events", None),
        (
            "POST",
            "/v1/approvals",
            Some(json!({ "decisions": [{ "site": "site-hz-01", "date": "2026-11-02", "decision": "approve" }] })),
        ),
        ("DELETE", "/v1/session", None),
    ] {
        let mut req = http
            .request(method.parse().unwrap(), format!("{own}{path}"))
            .header("cookie", format!("{SESSION_COOKIE}={cookie}"))
            .header("origin", &evil);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 403, "{method} {path}");
        let err: Value = resp.json().await.unwrap();
        assert!(err["error"].as_str().unwrap().contains("another origin"), "{err}");
    }
    // Signing in from another origin is refused too (it would sign the victim into the
    // attacker's account).
    let resp = http
        .post(format!("{own}/v1/session"))
        .header("origin", &evil)
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(
        whoami(&http, &server, &cookie).await,
        200,
        "the refused sign-out ended nothing"
    );
    server.stop().await;
}
