//! The site mesh (#22) end to end: phones exchange over loopback TCP with no server, and a phone
//! carries a lost phone's day to head office, where it is attributed to the phone that wrote it.

use sitesync_core::Store;
use sitesync_core::ids::DocId;
use sitesync_core::mesh::{PeerError, credentials, engine::PeerReport, transport};
use sitesync_core::sync::protocol::DocResult;
use sitesync_tests::harness::{Api, Engine, RawClient, TestServer, phone};

use crate::*;

/// `listener`'s phone serves one exchange while `dialer` syncs with it; both outcomes.
async fn exchange(
    listener: &mut Store,
    dialer: &mut Store,
) -> (Result<PeerReport, PeerError>, Result<PeerReport, PeerError>) {
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut served = None;
    let serve = transport::listen(
        listener,
        tcp,
        async move {
            let _ = stopped.await;
        },
        |_, outcome| {
            // The listener's error is not `Clone`: its words are what the test reads.
            served = Some(match outcome {
                Ok(r) => Ok(r.clone()),
                Err(e) => Err(PeerError::Protocol(e.to_string())),
            })
        },
    );
    let dial = async {
        let r = transport::sync_with(dialer, &addr).await;
        let _ = stop.send(());
        r
    };
    let (listened, dialed) = tokio::join!(serve, dial);
    listened.unwrap();
    (served.expect("the listener saw the exchange"), dialed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_phones_day_reaches_head_office_through_a_peer_signed_by_its_author() {
    let mut server = TestServer::start_configured_on(Engine::Sqlite, |s| s).await;
    let dir = tempfile::tempdir().unwrap();
    let (a_device, a_token) = server.device_with_id("u-foreman-hz-01").await;
    let b_token = server.device("u-manager-hz-01").await;
    let x_token = server.device("u-foreman-sz-02").await;
    let mut a = phone(dir.path(), "崔贵", &server.url(), &a_token);
    let mut b = phone(dir.path(), "龙东江", &server.url(), &b_token);
    let mut x = phone(dir.path(), "x", &server.url(), &x_token);
    for p in [&mut a, &mut b, &mut x] {
        sync(p).await;
        let c = credentials(p).unwrap().expect("a certificate after the first sync");
        assert_eq!(c.cert.cert.key, p.public_key());
    }

    // No signal: the server is down.
    let data = std::mem::replace(&mut server.dir, tempfile::tempdir().unwrap());
    server.stop().await;
    a.add_labor(&entry("2026-12-05", "w-0001", "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    a.add_labor(&entry("2026-12-05", "w-0002", "site-hz-01/wi-4.1", "0.5"), None)
        .unwrap();
    let day = DocId::Day(hz(), d("2026-12-05"));

    let (served, dialed) = exchange(&mut a, &mut b).await;
    let (served, dialed) = (served.unwrap(), dialed.unwrap());
    assert_eq!((served.sent, dialed.received), (1, 1), "{served:?} {dialed:?}");
    assert_eq!(dialed.peer_device, a_device);
    assert!(dialed.refused_changes.is_empty(), "{dialed:?}");
    assert_eq!(b.day(&hz(), d("2026-12-05")).unwrap().labor.len(), 2);

    // A phone of another site gets nothing of site-hz-01.
    let (served, dialed) = exchange(&mut a, &mut x).await;
    assert_eq!(served.unwrap().sent, 0);
    assert_eq!(dialed.unwrap().received, 0);
    assert!(
        x.doc_ids()
            .unwrap()
            .iter()
            .all(|id| !matches!(id, DocId::Day(s, _) | DocId::Site(s) if *s == hz()))
    );

    // A's phone is lost before it ever reaches a network.
    let a_path = a.path().to_path_buf();
    drop(a);
    std::fs::remove_file(&a_path).unwrap();

    // The server is back; B syncs and carries A's day.
    let server = TestServer::start_on(data).await;
    b.bind(&server.url(), &b_token).unwrap();
    sync(&mut b).await;
    assert!(!b.pending().unwrap().contains(&day), "head office acknowledged A's day");
    let office = Api::new(&server, &server.device("u-office-1").await);
    let h = office
        .json("/v1/history", &[("site", "site-hz-01"), ("date", "2026-12-05")])
        .await;
    let changes = h["changes"].as_array().unwrap();
    let lines: Vec<_> = changes
        .iter()
        .filter(|c| c["writes"].as_array().unwrap().iter().any(|w| w["field"] == "worker"))
        .collect();
    assert_eq!(lines.len(), 2, "{h}");
    for c in lines {
        assert_eq!(c["device"], a_device, "attributed to A, not to B that carried it: {h}");
        assert_eq!(c["signed"], true, "{h}");
        assert_eq!(c["user_name"], "崔贵", "{h}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_offices_receipt_reaches_the_author_through_the_phone_that_carried_its_day() {
    let mut server = TestServer::start_configured_on(Engine::Sqlite, |s| s).await;
    let dir = tempfile::tempdir().unwrap();
    let a_token = server.device("u-foreman-hz-01").await;
    let b_token = server.device("u-manager-hz-01").await;
    let x_token = server.device("u-foreman-sz-02").await;
    let mut a = phone(dir.path(), "崔贵", &server.url(), &a_token);
    let mut b = phone(dir.path(), "龙东江", &server.url(), &b_token);
    for p in [&mut a, &mut b] {
        sync(p).await;
    }

    // No signal: A logs a day and hands it to B.
    let data = std::mem::replace(&mut server.dir, tempfile::tempdir().unwrap());
    server.stop().await;
    a.add_labor(&entry("2026-12-05", "w-0001", "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    let day = DocId::Day(hz(), d("2026-12-05"));
    let (served, dialed) = exchange(&mut a, &mut b).await;
    assert_eq!(dialed.unwrap().received, 1, "{served:?}");
    assert!(a.pending().unwrap().contains(&day));
    assert_eq!(sitesync_core::mesh::carried(&b).unwrap(), [day.to_string()]);

    // The server is back; B reaches it, pushes A's day, and takes head office's receipt for it.
    let server = TestServer::start_on(data).await;
    b.bind(&server.url(), &b_token).unwrap();
    sync(&mut b).await;
    assert!(!b.pending().unwrap().contains(&day));
    assert!(
        sitesync_core::mesh::carried(&b).unwrap().is_empty(),
        "receipted, no longer asked"
    );
    let kept = sitesync_core::mesh::receipt(&b, &day.to_string())
        .unwrap()
        .expect("a receipt");
    assert_eq!(kept.receipt.heads, {
        let mut h = b.heads(&day).unwrap();
        h.sort();
        h
    });

    // A meets B again, never having reached the server: its day is at head office.
    assert!(a.pending().unwrap().contains(&day));
    let (served, dialed) = exchange(&mut b, &mut a).await;
    assert_eq!(dialed.unwrap().receipted, 1, "{served:?}");
    assert!(!a.pending().unwrap().contains(&day));
    let status = a.sync_status().unwrap();
    let entry = status
        .documents
        .iter()
        .find(|d| d.doc == day.to_string())
        .expect("the day");
    assert!(entry.at_head_office, "{status:?}");

    // The endpoint itself, to a caller that skips the phone's checks: documents it may not read
    // are left out (not refused: the answer says nothing of them), malformed or too many refused.
    let b_api = Api::new(&server, &b_token);
    let x_api = Api::new(&server, &x_token);
    let ask = |api: &Api, docs: serde_json::Value| {
        api.request(reqwest::Method::POST, "/v1/device/receipts")
            .json(&serde_json::json!({ "docs": docs }))
            .send()
    };
    let sz_site = "site|site-sz-02";
    let resp = ask(
        &b_api,
        serde_json::json!([day.to_string(), sz_site, "day|site-hz-01|2031-01-01"]),
    )
    .await
    .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let list = sitesync_core::mesh::receipt::SignedReceipt::list_from_bytes(&resp.bytes().await.unwrap()).unwrap();
    let org_key = credentials(&b).unwrap().unwrap().org_key;
    assert_eq!(list.len(), 1, "only the day B may read and the server holds: {list:?}");
    list[0].check(&org_key, "org-zhuyuan").unwrap();
    let resp = ask(&x_api, serde_json::json!([day.to_string(), sz_site]))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let list = sitesync_core::mesh::receipt::SignedReceipt::list_from_bytes(&resp.bytes().await.unwrap()).unwrap();
    let docs: Vec<&str> = list.iter().map(|r| r.receipt.doc.as_str()).collect();
    assert_eq!(docs, [sz_site], "another site's foreman learns nothing of site-hz-01");
    let resp = ask(&b_api, serde_json::json!(["not a doc"])).await.unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let many: Vec<String> = (0..1001).map(|_| day.to_string()).collect();
    let resp = ask(&b_api, serde_json::json!(many)).await.unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_phone_is_refused_by_a_peer_that_heard_and_an_altered_relay_by_the_server() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (a_device, a_token) = server.device_with_id("u-foreman-hz-01").await;
    let b_token = server.device("u-manager-hz-01").await;
    let (r_device, r_token) = server.device_with_id("u-foreman-hz-01").await;
    let mut a = phone(dir.path(), "崔贵", &server.url(), &a_token);
    let mut b = phone(dir.path(), "龙东江", &server.url(), &b_token);
    let mut r = phone(dir.path(), "崔贵 (old phone)", &server.url(), &r_token);
    for p in [&mut a, &mut b, &mut r] {
        sync(p).await;
    }
    // R is reported stolen; B hears of it at its next sync, then refuses R with no server.
    server
        .state
        .auth(move |auth| auth.revoke_device(&r_device))
        .await
        .unwrap();
    sync(&mut b).await;
    let (served, dialed) = exchange(&mut b, &mut r).await;
    assert!(
        matches!(served, Err(ref e) if e.to_string().contains("revoked")),
        "{served:?}"
    );
    assert!(matches!(dialed, Err(PeerError::RefusedBy(_))), "{dialed:?}");

    // A logs a line and hands it to B; B, relaying it, re-signs it as its own (a tampered app).
    a.add_labor(&entry("2026-12-06", "w-0001", "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    let day = DocId::Day(hz(), d("2026-12-06"));
    exchange(&mut a, &mut b).await.1.unwrap();
    let (bytes, _) = b.export_signed(&day, &[]).unwrap().unwrap();
    // A key of B's own (a device may hold several), signing what A made.
    let mut relay = RawClient::connect_with_key(server.addr, &b_token, sitesync_core::signing::Keypair::generate())
        .await
        .unwrap();
    relay.say_hello().await;
    let results = relay.push(vec![(day.to_string(), bytes.clone())]).await;
    let refused = match &results[0] {
        DocResult::Partial { refused, .. } => refused.clone(),
        other => panic!("expected the re-signed line refused, got {other:?}"),
    };
    assert!(
        refused.iter().any(|r| r.violation.rule() == "author.foreign_actor"),
        "{refused:?}"
    );
    // Bytes altered on the way: refused whole.
    let mut altered = bytes;
    let at = altered.len() / 2;
    altered[at] ^= 0x55;
    let results = relay.push(vec![(day.to_string(), altered)]).await;
    assert!(matches!(results[0], DocResult::Refused { .. }), "{results:?}");
    relay.close().await;
    // The honest relay of the same line is stored, and attributed to A.
    sync(&mut b).await;
    let office = Api::new(&server, &server.device("u-office-1").await);
    let h = office
        .json("/v1/history", &[("site", "site-hz-01"), ("date", "2026-12-06")])
        .await;
    let line = h["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["writes"].as_array().unwrap().iter().any(|w| w["field"] == "worker"))
        .unwrap_or_else(|| panic!("no line at head office: {h}"));
    assert_eq!(line["device"], a_device, "{h}");
    assert_eq!(line["signed"], true, "{h}");
    server.stop().await;
}

/// One listener serves two phones at once while a third connection stalls: each exchange runs
/// beside the others (a listener serving one at a time would keep both waiting on the stalled one
/// until its exchange timed out, 120 s), and both phones end with the listening phone's day.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_listener_serves_several_peers_at_once_and_a_stalled_one_holds_up_none() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let a_token = server.device("u-foreman-hz-01").await;
    let (b_device, b_token) = server.device_with_id("u-manager-hz-01").await;
    let (c_device, c_token) = server.device_with_id("u-manager-hz-01").await;
    let mut a = phone(dir.path(), "崔贵", &server.url(), &a_token);
    let mut b = phone(dir.path(), "龙东江", &server.url(), &b_token);
    let mut c = phone(dir.path(), "龙东江 (tablet)", &server.url(), &c_token);
    for p in [&mut a, &mut b, &mut c] {
        sync(p).await;
    }
    server.stop().await;
    a.add_labor(&entry("2026-12-07", "w-0001", "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    a.add_labor(&entry("2026-12-07", "w-0002", "site-hz-01/wi-4.1", "0.5"), None)
        .unwrap();

    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut served: Vec<Result<String, String>> = Vec::new();
    let serve = transport::listen(
        &mut a,
        tcp,
        async move {
            let _ = stopped.await;
        },
        |_, outcome| {
            served.push(
                outcome
                    .as_ref()
                    .map(|r| r.peer_device.clone())
                    .map_err(|e| e.to_string()),
            )
        },
    );
    let dial = async {
        // Connected first, then silent: it holds its exchange open.
        let _stalled = tokio::net::TcpStream::connect(&addr).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let within = std::time::Duration::from_secs(30);
        let (rb, rc) = tokio::join!(
            tokio::time::timeout(within, transport::sync_with(&mut b, &addr)),
            tokio::time::timeout(within, transport::sync_with(&mut c, &addr)),
        );
        let _ = stop.send(());
        (rb, rc)
    };
    let (listened, (rb, rc)) = tokio::join!(serve, dial);
    listened.unwrap();
    for r in [rb, rc] {
        let r = r.expect("served beside the stalled peer").unwrap();
        assert_eq!((r.received, r.changes_accepted > 0), (1, true), "{r:?}");
    }
    // The stalled peer hung up after the stop: its exchange ended within the grace, as a failure.
    let (mut ok, failed): (Vec<_>, Vec<_>) = served.into_iter().partition(Result::is_ok);
    ok.sort();
    let mut want = vec![Ok(b_device), Ok(c_device)];
    want.sort();
    assert_eq!(ok, want);
    assert_eq!(failed.len(), 1, "{failed:?}");
    for p in [&mut b, &mut c] {
        assert_eq!(p.day(&hz(), d("2026-12-07")).unwrap().labor.len(), 2);
    }
}

/// `sync --watch` (the `watch` loop) fetches the device certificate at connect, as `sync_once`
/// does after a sync: a phone that only ever watches can still meet peers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watching_phone_fetches_its_device_certificate_at_connect() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let token = server.device("u-foreman-hz-01").await;
    let mut watcher = phone(dir.path(), "崔贵", &server.url(), &token);
    assert!(credentials(&watcher).unwrap().is_none());
    let reader = Store::open(watcher.path()).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let watching = sitesync_core::sync::client::watch(
        &mut watcher,
        std::time::Duration::from_millis(100),
        Default::default(),
        async move {
            let _ = stopped.await;
        },
    );
    let waiting = async {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut found = None;
        while found.is_none() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            found = credentials(&reader).unwrap();
        }
        let _ = stop.send(());
        found
    };
    let (watched, found) = tokio::join!(watching, waiting);
    watched.unwrap();
    let creds = found.expect("a certificate while watching, with no one-shot sync");
    assert_eq!(creds.cert.cert.key, watcher.public_key());
    server.stop().await;
}

/// A phone asks for its certificate and the org's sealing key only when they may have changed,
/// not after every sync (they cost a day's push of 30 lines 62 B a line on the wire): the
/// upgrade's `X-Sitesync-Credentials` changes with a revocation in the org or a new grant, and a
/// certificate past half its validity is renewed whatever the tag says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_asks_for_its_certificate_only_when_it_would_change() {
    let operator = "operator-token-0123456789";
    let server = TestServer::start_configured(|s| s.with_metrics_token(operator)).await;
    let ops = Api::new(&server, operator);
    let asked = |route: &'static str| {
        let ops = &ops;
        async move {
            let (status, body) = ops.get("/metrics", &[]).await;
            assert_eq!(status, 200);
            let series = format!("sitesync_http_requests_total{{route=\"{route}\",method=\"GET\",status=\"200\"}} ");
            String::from_utf8(body)
                .unwrap()
                .lines()
                .find_map(|l| l.strip_prefix(&series)?.parse::<f64>().ok())
                .unwrap_or(0.0)
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let (_, token) = server.device_with_id("u-foreman-hz-01").await;
    let (other, _) = server.device_with_id("u-foreman-hz-01").await;
    let mut p = phone(dir.path(), "崔贵", &server.url(), &token);
    sync(&mut p).await;
    assert_eq!(asked("/v1/device/certificate").await, 1.0);
    assert_eq!(asked("/v1/org/pii-key").await, 1.0);
    let first = credentials(&p).unwrap().expect("credentials after the first sync");

    // Nothing changed: no request, the kept certificate stands.
    sync(&mut p).await;
    sync(&mut p).await;
    assert_eq!(asked("/v1/device/certificate").await, 1.0);
    assert_eq!(asked("/v1/org/pii-key").await, 1.0);
    assert_eq!(
        credentials(&p).unwrap().unwrap().cert.cert.issued_ms,
        first.cert.cert.issued_ms
    );

    // Another device of the org is revoked: the phone fetches the longer list at its next sync.
    server.state.auth(move |a| a.revoke_device(&other)).await.unwrap();
    sync(&mut p).await;
    assert_eq!(asked("/v1/device/certificate").await, 2.0);
    let creds = credentials(&p).unwrap().unwrap();
    assert_eq!(creds.revocations.list.seq, first.revocations.list.seq + 1);

    // A new site for the foreman: his certificate names it after the next sync.
    assert!(!creds.cert.cert.sites.iter().any(|s| s == "site-sz-02"));
    server
        .state
        .auth(|a| a.grant("u-foreman-hz-01", "site-sz-02"))
        .await
        .unwrap();
    sync(&mut p).await;
    assert_eq!(asked("/v1/device/certificate").await, 3.0);
    let creds = credentials(&p).unwrap().unwrap();
    assert!(
        creds.cert.cert.sites.iter().any(|s| s == "site-sz-02"),
        "{:?}",
        creds.cert.cert.sites
    );

    // The tag alone never keeps a certificate past half its validity.
    let tag = p
        .meta("mesh.credentials_tag")
        .unwrap()
        .expect("the tag kept with the credentials");
    let cert = &creds.cert.cert;
    let half = cert.issued_ms + (cert.expires_ms - cert.issued_ms) / 2;
    assert!(!sitesync_core::mesh::credentials_due(&p, Some(&tag), half - 1).unwrap());
    assert!(sitesync_core::mesh::credentials_due(&p, Some(&tag), half).unwrap());
    assert!(sitesync_core::mesh::credentials_due(&p, None, half - 1).unwrap());
    assert!(sitesync_core::mesh::credentials_due(&p, Some("0000000000000000"), half - 1).unwrap());
    server.stop().await;
}
