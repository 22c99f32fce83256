//! Who may read and write what: per-site grants, org isolation, revocation, wrong tokens.

use sitesync_core::ids::DocId;
use sitesync_core::import::Company;
use sitesync_core::rules::Violation;
use sitesync_core::sync::protocol::{ClientMsg, DocResult, DocSync, ErrorCode, Refusal, ServerMsg};
use sitesync_tests::harness::{RawClient, TestServer, phone, store_push};

use crate::*;

/// A scratch store holding the fixture rosters, whose key a raw client registers and which signs
/// what that client pushes.
fn scratch(dir: &tempfile::TempDir) -> sitesync_core::Store {
    let mut s = sitesync_core::Store::open(dir.path().join("scratch.sqlite3")).unwrap();
    s.import_dir(&sitesync_tests::harness::fixtures().join("small"))
        .unwrap();
    s
}

/// A push of a real document of `id`, made and signed on a scratch store.
fn doc_bytes(s: &mut sitesync_core::Store, id: &DocId) -> DocSync {
    let (site, date) = match id {
        DocId::Day(s, d) => (s.clone(), *d),
        _ => unreachable!(),
    };
    if s.roster(&site).is_err() {
        // Another org's site: give the scratch store a roster for it.
        let mut r = s.roster(&hz()).unwrap();
        r.site.id = site.clone();
        s.put_roster(&r).unwrap();
    }
    s.set_day_info(&site, date, Some("晴"), None, None).unwrap();
    store_push(s, id)
}

async fn push(client: &mut RawClient, doc: DocSync) -> DocResult {
    client
        .send(&ClientMsg::Push {
            req: 1,
            docs: vec![doc],
        })
        .await;
    ack(client).await.into_iter().next().unwrap()
}

/// The next `Ack`, skipping live updates the server may interleave.
async fn ack(client: &mut RawClient) -> Vec<DocResult> {
    loop {
        match client.recv().await {
            Some(ServerMsg::Ack { results, .. }) => return results,
            Some(ServerMsg::Changed { .. }) => continue,
            other => panic!("expected an ack, got {other:?}"),
        }
    }
}

async fn hello(client: &mut RawClient) -> Vec<String> {
    match client.welcome(0).await {
        Some(ServerMsg::Welcome { docs, .. }) => docs.into_iter().map(|d| d.doc).collect(),
        other => panic!("expected a welcome, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_decide_every_document_and_nothing_crosses_orgs() {
    let server = TestServer::start().await;
    // A second org with its own site and foreman.
    let mut other: Company =
        sitesync_core::import::read_json(&sitesync_tests::harness::fixtures().join("small/company.json")).unwrap();
    other.org.id = "org-other".parse().unwrap();
    other.sites[0].id = "site-other-01".parse().unwrap();
    other.users = vec![
        serde_json::from_value(
            serde_json::json!({"id": "u-other", "name": "别人", "role": "foreman", "sites": ["site-other-01"]}),
        )
        .unwrap(),
    ];
    server
        .state
        .both(move |a, s| sitesync_server::admin::import_company(a, s, &other))
        .await
        .unwrap();

    let own = DocId::Day(hz(), d("2026-12-01"));
    let other_site = DocId::Day("site-sz-02".parse().unwrap(), d("2026-12-01"));
    let other_org = DocId::Day("site-other-01".parse().unwrap(), d("2026-12-01"));

    let dir = tempfile::tempdir().unwrap();
    let mut bench = scratch(&dir);
    let mut foreman = RawClient::connect_as(server.addr, &server.device("u-foreman-hz-01").await, &bench)
        .await
        .unwrap();
    let seen = hello(&mut foreman).await;
    assert!(seen.iter().all(|d| d.contains("site-hz-01")), "{seen:?}");
    assert!(matches!(
        push(&mut foreman, doc_bytes(&mut bench, &own)).await,
        DocResult::Synced(_)
    ));
    assert!(matches!(
        push(&mut foreman, doc_bytes(&mut bench, &other_site)).await,
        DocResult::Refused {
            reason: Refusal::Forbidden,
            ..
        }
    ));
    assert!(matches!(
        push(&mut foreman, doc_bytes(&mut bench, &other_org)).await,
        DocResult::Refused {
            reason: Refusal::Forbidden,
            ..
        }
    ));
    // A refused document does not block the rest of its batch.
    foreman
        .send(&ClientMsg::Push {
            req: 2,
            docs: vec![
                doc_bytes(&mut bench, &other_site),
                DocSync {
                    doc: "not a doc".into(),
                    base: vec![],
                    heads: vec![],
                    changes: vec![1, 2, 3],
                    sigs: vec![],
                },
                doc_bytes(&mut bench, &own),
            ],
        })
        .await;
    let results = ack(&mut foreman).await;
    assert!(matches!(
        results[0],
        DocResult::Refused {
            reason: Refusal::Forbidden,
            ..
        }
    ));
    assert!(matches!(
        results[1],
        DocResult::Refused {
            reason: Refusal::UnknownDocument,
            ..
        }
    ));
    assert!(matches!(results[2], DocResult::Synced(_)));
    // Master data is head office's: a foreman reads it but cannot change it. The phone refuses to
    // make the change …
    let dir = tempfile::tempdir().unwrap();
    let mut p = phone(dir.path(), "f", &server.url(), &server.device("u-foreman-hz-01").await);
    sync(&mut p).await;
    let mut roster = p.roster(&hz()).unwrap();
    roster.workers[0].day_rate = sitesync_core::units::Fen::new("r", 99_900).unwrap();
    let err = p.put_roster(&roster).unwrap_err();
    assert!(
        matches!(
            &err,
            sitesync_core::Error::NotAuthorized {
                violation: Violation::MasterData
            }
        ),
        "{err}"
    );
    assert!(p.pending().unwrap().is_empty(), "nothing was written");
    // … and the server refuses the edit from a client that skips the phone's checks.
    bench.put_roster(&roster).unwrap();
    let result = push(&mut foreman, store_push(&mut bench, &DocId::Site(hz()))).await;
    assert!(
        matches!(&result, DocResult::Partial { refused, .. }
            if refused.iter().any(|r| r.violation.rule() == "site.head_office_only")
                && refused.iter().all(|r| matches!(r.violation.rule(), "site.head_office_only" | "depends_on_refused"))),
        "{result:?}"
    );
    let rate = server.store(|s| s.roster(&hz()).unwrap().workers[0].day_rate).await;
    assert_ne!(rate.fen(), 99_900);

    // Head office reads every site of its org, and none of another org.
    let dir = tempfile::tempdir().unwrap();
    let mut office_bench = scratch(&dir);
    let mut office = RawClient::connect_as(server.addr, &server.device("u-office-1").await, &office_bench)
        .await
        .unwrap();
    let seen = hello(&mut office).await;
    assert!(
        seen.contains(&"site|site-sz-02".to_string()) && seen.contains(&own.to_string()),
        "{seen:?}"
    );
    assert!(!seen.iter().any(|d| d.contains("site-other")), "{seen:?}");
    assert!(matches!(
        push(&mut office, doc_bytes(&mut office_bench, &other_org)).await,
        DocResult::Refused {
            reason: Refusal::Forbidden,
            ..
        }
    ));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_tokens_get_401_and_revoked_devices_are_cut_off_at_their_next_message() {
    let server = TestServer::start().await;
    assert_eq!(RawClient::connect(server.addr, "sst_nope").await.err(), Some(401));
    let (device, token) = server.device_with_id("u-foreman-hz-01").await;
    let mut client = RawClient::connect(server.addr, &token).await.unwrap();
    hello(&mut client).await;
    server.state.auth(move |a| a.revoke_device(&device)).await.unwrap();
    // Live updates sent before the revocation took effect (the OKR feeder's check-ins) may come
    // first; then the refusal, whether the revocation's notice or the next message brought it.
    let mut next = client.welcome(0).await;
    while let Some(ServerMsg::Changed { .. }) = next {
        next = client.recv().await;
    }
    match next {
        Some(ServerMsg::Error {
            code: ErrorCode::Unauthorized,
            ..
        }) => {}
        other => panic!("expected unauthorized, got {other:?}"),
    }
    assert_eq!(client.recv().await, None, "and the connection is closed");
    assert_eq!(RawClient::connect(server.addr, &token).await.err(), Some(401));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_get_a_clear_error_and_the_server_keeps_serving() {
    let server = TestServer::start().await;
    let token = server.device("u-foreman-hz-01").await;
    for junk in [vec![], vec![9, 0, 1], vec![1, 0, 0xff, 0xff, 0xff], vec![1, 1, 0, 0, 0]] {
        let mut client = RawClient::connect(server.addr, &token).await.unwrap();
        client.send_bytes(junk).await;
        match client.recv().await {
            Some(ServerMsg::Error { code, .. }) => assert!(matches!(code, ErrorCode::Malformed | ErrorCode::Version)),
            other => panic!("{other:?}"),
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let mut p = phone(dir.path(), "f", &server.url(), &token);
    sync(&mut p).await;
    assert!(p.roster(&hz()).is_ok());
    server.stop().await;
}

/// The directory a device gets names the devices whose changes it holds: a foreman's phone gets
/// its own site's users, head office and the server, not another site's foreman; head office gets
/// everyone. (The whole org's keys went to every device: 650 KB a hello at 10,000 devices.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_welcome_directory_names_the_devices_a_device_reads_and_head_office_reads_all() {
    let server = TestServer::start().await;
    let mut keys = std::collections::HashMap::new();
    for user in ["u-foreman-hz-01", "u-manager-hz-01", "u-foreman-sz-02", "u-office-1"] {
        let (device, token) = server.device_with_id(user).await;
        let mut client = RawClient::connect(server.addr, &token).await.unwrap();
        hello(&mut client).await;
        keys.insert(user, (device, client));
    }
    let mut directory_of = async |user: &str| -> Vec<String> {
        let (_, client) = keys.get_mut(user).unwrap();
        match client.welcome(0).await {
            Some(ServerMsg::Welcome { directory, .. }) => directory.into_iter().map(|e| e.user_id).collect(),
            other => panic!("expected a welcome, got {other:?}"),
        }
    };
    let foreman = directory_of("u-foreman-hz-01").await;
    for seen in ["u-foreman-hz-01", "u-manager-hz-01", "u-office-1", "system"] {
        assert!(foreman.iter().any(|u| u == seen), "{seen} missing from {foreman:?}");
    }
    assert!(
        !foreman.iter().any(|u| u == "u-foreman-sz-02"),
        "another site's foreman: {foreman:?}"
    );
    let office = directory_of("u-office-1").await;
    for seen in [
        "u-foreman-hz-01",
        "u-manager-hz-01",
        "u-foreman-sz-02",
        "u-office-1",
        "system",
    ] {
        assert!(office.iter().any(|u| u == seen), "{seen} missing from {office:?}");
    }
    server.stop().await;
}
