//! What every answer says to a browser (the security headers), and the body limit on every route.
//! (Slow-loris and the connection cap are tested against the real binary: `server/tests/front_door.rs`.)

use serde_json::Value;
use sitesync_server::limits::ConnectionLimits;
use sitesync_tests::harness::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_the_security_headers_and_the_page_has_no_inline_code() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    for path in [
        "/",
        "/app.js",
        "/app.css",
        "/v1/openapi.json",
        "/healthz",
        "/v1/session",
        "/nowhere",
    ] {
        let resp = http.get(format!("{}{path}", server.url())).send().await.unwrap();
        let h = resp.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {directive} in {csp}");
        }
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{path}: {csp}"
        );
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert!(
            h.get("strict-transport-security").is_none(),
            "{path}: HSTS only over HTTPS"
        );
    }
    // The page obeys its policy: no inline script, style or event handler anywhere in it.
    let page = http.get(server.url()).send().await.unwrap().text().await.unwrap();
    let lower = page.to_ascii_lowercase();
    assert!(!lower.contains("<style"), "inline style element");
    assert!(!lower.contains(" style="), "inline style attribute");
    for (i, _) in lower.match_indices("<script") {
        let tag = &lower[i..i + lower[i..].find('>').unwrap()];
        assert!(tag.contains(" src="), "inline script: {tag}");
    }
    let handlers = lower
        .split(|c: char| c.is_whitespace())
        .filter(|w| w.starts_with("on") && w.contains('='))
        .collect::<Vec<_>>();
    assert!(handlers.is_empty(), "inline event handlers: {handlers:?}");
    server.stop().await;
}

/// Sends a request with a declared body length, or chunked (`None`), of `len` bytes of JSON-ish
/// filler; returns the status.
async fn send_body(server: &TestServer, method: &str, path: &str, token: &str, len: usize, declared: bool) -> u16 {
    let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let framing = if declared {
        format!("Content-Length: {len}")
    } else {
        "Transfer-Encoding: chunked".to_string()
    };
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n{framing}\r\nConnection: close\r\n\r\n",
        server.addr
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let body = vec![b' '; len];
    let write = async {
        if declared {
            s.write_all(&body).await
        } else {
            for chunk in body.chunks(16 * 1024) {
                s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await?;
                s.write_all(chunk).await?;
                s.write_all(b"\r\n").await?;
            }
            s.write_all(b"0\r\n\r\n").await
        }
    };
    // The server may answer and close before the body is all sent.
    let _ = write.await;
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    let status: u16 = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{method} {path}: no answer: {text:?}"));
    if status == 413 {
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
        let body = body.trim_start_matches(|c: char| c.is_ascii_hexdigit() || c == '\r' || c == '\n');
        let v: Value = serde_json::from_str(body.split("\r\n").next().unwrap()).unwrap();
        assert!(v["error"].as_str().unwrap().contains("larger than"), "{v}");
    }
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_limits_its_request_body() {
    let limits = ConnectionLimits {
        body_bytes: 8 * 1024,
        import_bytes: 64 * 1024,
        blob_bytes: 32 * 1024,
        ..ConnectionLimits::default()
    };
    let server = TestServer::start_configured(move |s| s.with_connection_limits(limits)).await;
    let admin = {
        let dir = server.dir.path().to_path_buf();
        let file = server
            .state
            .auth(move |a| sitesync_server::admin::bootstrap(a, &dir))
            .await
            .unwrap()
            .unwrap();
        std::fs::read_to_string(file).unwrap().trim().to_string()
    };
    let doc: Value = reqwest::get(format!("{}/v1/openapi.json", server.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut routes: Vec<(String, String)> = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            let path = path
                .replace("{device}", "d-000000000000")
                .replace("{sha256}", &"0".repeat(64));
            routes.push((method.to_uppercase(), path));
        }
    }
    routes.push(("GET".into(), "/".into()));
    assert!(routes.len() > 15);
    for (method, path) in &routes {
        let limit = if path == "/v1/admin/import" {
            limits.import_bytes
        } else if method == "PUT" && path.ends_with("/upload") {
            limits.blob_bytes
        } else {
            limits.body_bytes
        };
        // Declared too large: refused before a byte of it is read, whatever the route.
        let status = send_body(&server, method, path, &admin, limit + 1, true).await;
        assert_eq!(status, 413, "{method} {path} with {} bytes declared", limit + 1);
    }
    // Chunked, so the length is known only while reading: cut off where it passes the limit.
    for path in ["/v1/approvals", "/v1/admin/users", "/v1/session"] {
        let status = send_body(&server, "POST", path, &admin, limits.body_bytes * 4, false).await;
        assert_eq!(status, 413, "chunked POST {path}");
    }
    // Within the limit, a body is read as usual (here: malformed JSON, a 400).
    assert_eq!(
        send_body(&server, "POST", "/v1/approvals", &admin, 100, true).await,
        400
    );
    assert_eq!(
        send_body(&server, "POST", "/v1/admin/import", &admin, limits.body_bytes * 4, true).await,
        400,
        "the company import takes more than other routes"
    );
    server.stop().await;
}
