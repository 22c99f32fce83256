//! A connected phone receives changes made elsewhere without polling, and pushes its own writes.

use std::time::Duration;

use sitesync_core::Store;
use sitesync_core::sync::client::watch;
use sitesync_tests::harness::{TestServer, phone};

use crate::*;

/// Waits (10 s at most) until `check` holds on a fresh handle of the store file.
async fn eventually(path: &std::path::Path, what: &str, check: impl Fn(&mut Store) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut s = Store::open(path).unwrap();
        if check(&mut s) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watching_phone_gets_changes_live_and_pushes_its_own() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut watcher = phone(
        dir.path(),
        "foreman",
        &server.url(),
        &server.device("u-foreman-hz-01").await,
    );
    let path = watcher.path().to_path_buf();
    let mut manager = phone(
        dir.path(),
        "manager",
        &server.url(),
        &server.device("u-manager-hz-01").await,
    );
    sync(&mut manager).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        watch(&mut watcher, Duration::from_millis(100), Default::default(), async {
            let _ = stopped.await;
        })
        .await
    });
    eventually(&path, "the first sync", |s| s.roster(&hz()).is_ok()).await;

    // Head office changes something: it appears on the watching phone.
    manager
        .add_labor(&entry("2026-12-06", "w-0001", "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    sync(&mut manager).await;
    eventually(&path, "the manager's line", |s| {
        s.day(&hz(), d("2026-12-06")).unwrap().labor.len() == 1
    })
    .await;

    // A write on the phone (here by another process on the same file) reaches the server.
    let mut local = Store::open(&path).unwrap();
    local
        .add_labor(&entry("2026-12-06", "w-0002", "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while server
        .store(|s| s.day(&hz(), d("2026-12-06")).map(|d| d.labor.len()).unwrap_or(0))
        .await
        < 2
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the phone's write never reached the server"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eventually(&path, "the delivery receipt", |s| s.pending().unwrap().is_empty()).await;
    assert!(Store::open(&path).unwrap().sync_status().unwrap().connected);
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    assert!(!Store::open(&path).unwrap().sync_status().unwrap().connected);
    server.stop().await;
}
