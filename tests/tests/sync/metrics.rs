//! `GET /metrics` scraped from a real server while real traffic moves its counters: a push, a
//! hostile change refused by the gate, a blob upload; who may scrape it; and the private listener
//! that answers without a token. On the suite's engine (`SITESYNC_TEST_ENGINE=postgres` too).

use sitesync_core::attachments::BlobHash;
use sitesync_core::ids::{DocId, DocKind};
use sitesync_tests::crafted::Crafted;
use sitesync_tests::harness::{Api, RawClient, TestServer};

/// The value of the series `name` (with its labels, as the text spells them), 0 when absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

async fn scrape(api: &Api) -> String {
    let (status, body) = api.get("/metrics", &[]).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    String::from_utf8(body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_move_with_the_traffic_and_only_admins_and_operators_read_them() {
    let operator = "operator-token-0123456789";
    let server = TestServer::start_configured(|s| s.with_metrics_token(operator)).await;
    let admin = Api::new(&server, &server.device("u-admin").await);
    let ops = Api::new(&server, operator);
    let before = scrape(&admin).await;
    assert!(before.ends_with("# EOF\n"), "OpenMetrics text: {before}");

    // Who may read them: nobody without a token, not a foreman, an admin and the operators' token.
    let foreman_token = server.device("u-foreman-hz-01").await;
    assert_eq!(Api::anonymous(&server).get("/metrics", &[]).await.0, 401);
    assert_eq!(Api::new(&server, "not-a-token").get("/metrics", &[]).await.0, 401);
    assert_eq!(Api::new(&server, &foreman_token).get("/metrics", &[]).await.0, 403);
    assert_eq!(
        Api::new(&server, &server.device("u-office-1").await)
            .get("/metrics", &[])
            .await
            .0,
        403
    );
    scrape(&ops).await;

    // A push: counted by outcome, its latency observed, a group commit sized.
    let mut raw = RawClient::connect(server.addr, &foreman_token).await.unwrap();
    raw.say_hello().await;
    let connected = scrape(&ops).await;
    assert_eq!(value(&connected, "sitesync_sync_connections"), 1.0, "{connected}");
    let site = DocId::Site("site-hz-01".parse().unwrap()).to_string();
    // A foreman changing a piece rate (master data): the gate refuses the change, naming its rule.
    let rec = "piece-rate:site-hz-01/wi-4.1";
    let hostile = Crafted::new(&site, DocKind::Site)
        .put("info", rec, "work_item", "site-hz-01/wi-4.1")
        .put("info", rec, "crew", "")
        .put("info", rec, "worker", "")
        .put("info", rec, "price_fen", 99_999i64)
        .put("info", rec, "from", "")
        .bytes();
    let results = raw.push(vec![(site.clone(), hostile)]).await;
    assert!(
        matches!(&results[0], sitesync_core::sync::protocol::DocResult::Partial { .. }),
        "{results:?}"
    );
    // Head office's own piece rate is stored: a push that reaches the group commit.
    let mut office = RawClient::connect(server.addr, &server.device("u-office-1").await)
        .await
        .unwrap();
    office.say_hello().await;
    let rate = Crafted::new(&site, DocKind::Site)
        .put("info", rec, "work_item", "site-hz-01/wi-4.1")
        .put("info", rec, "crew", "")
        .put("info", rec, "worker", "")
        .put("info", rec, "price_fen", 12_000i64)
        .put("info", rec, "from", "")
        .bytes();
    let results = office.push(vec![(site.clone(), rate)]).await;
    assert!(
        matches!(&results[0], sitesync_core::sync::protocol::DocResult::Synced(_)),
        "{results:?}"
    );
    // … which reaches the foreman's connection live.
    match raw.recv().await {
        Some(sitesync_core::sync::protocol::ServerMsg::Changed { .. }) => {}
        other => panic!("expected the office's change, got {other:?}"),
    }
    // A blob's bytes, uploaded.
    let photo: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
    let hash = BlobHash::of(&photo);
    let resp = Api::new(&server, &foreman_token)
        .request(reqwest::Method::PUT, &format!("/v1/blobs/{}/upload", hash.as_str()))
        .query(&[
            ("site", "site-hz-01"),
            ("date", "2026-11-30"),
            ("size", "5000"),
            ("offset", "0"),
        ])
        .body(photo.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let after = scrape(&ops).await;
    let moved = |series: &str| value(&after, series) - value(&before, series);
    assert_eq!(moved("sitesync_pushes_total{outcome=\"partial\"}"), 1.0, "{after}");
    assert_eq!(moved("sitesync_pushes_total{outcome=\"synced\"}"), 1.0, "{after}");
    assert_eq!(moved("sitesync_push_latency_seconds_count"), 2.0, "{after}");
    assert!(moved("sitesync_group_commit_pushes_count") >= 1.0, "{after}");
    assert!(moved("sitesync_group_commit_documents_sum") >= 1.0, "{after}");
    // The frame the foreman received is counted once its send returned: wait for that, bounded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let now = scrape(&ops).await;
        if value(&now, "sitesync_fanout_frames_total") - value(&before, "sitesync_fanout_frames_total") >= 1.0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no fan-out counted: {now}");
        tokio::task::yield_now().await;
    }
    assert_eq!(
        moved("sitesync_refusals_total{reason=\"site.head_office_only\"}"),
        1.0,
        "{after}"
    );
    assert_eq!(
        moved("sitesync_blob_bytes_total{direction=\"uploaded\"}"),
        5000.0,
        "{after}"
    );
    let engine = if std::env::var("SITESYNC_TEST_ENGINE").as_deref() == Ok("postgres") {
        "postgres"
    } else {
        "sqlite"
    };
    assert!(
        moved(&format!(
            "sitesync_db_seconds_count{{engine=\"{engine}\",call=\"group_commit\"}}"
        )) >= 1.0,
        "{after}"
    );
    assert!(
        value(
            &after,
            "sitesync_http_requests_total{route=\"/metrics\",method=\"GET\",status=\"403\"}"
        ) >= 2.0,
        "{after}"
    );
    raw.close().await;
    office.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_private_listener_answers_without_a_token_and_serves_nothing_else() {
    let server = TestServer::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(sitesync_server::run_metrics(
        listener,
        server.state.clone(),
        async move {
            let _ = stopped.await;
        },
    ));
    let http = reqwest::Client::new();
    let resp = http.get(format!("http://{addr}/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("sitesync_sync_connections"));
    let other = http
        .get(format!("http://{addr}/v1/reports/labor"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404, "only /metrics is served there");
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    server.stop().await;
}
