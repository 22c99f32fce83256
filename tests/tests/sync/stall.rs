//! A connection that stalls forever is timed out and freed; a live one is kept alive by pings.

use std::time::Duration;

use sitesync_server::state::KeepAlive;
use sitesync_tests::harness::{Engine, RawClient, TestServer, phone};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_connection_is_closed_and_a_pinged_one_stays() {
    let timing = KeepAlive {
        ping_every: Duration::from_millis(100),
        idle_after: Duration::from_millis(500),
    };
    let server = TestServer::start_with_timing(timing).await;
    let token = server.device("u-foreman-hz-01").await;
    // A peer that says hello and then never reads nor answers pings.
    let mut stalled = RawClient::connect(server.addr, &token).await.unwrap();
    let hello = stalled.hello(0);
    stalled.send(&hello).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await; // the peer is silent: nothing to wait on
    // By now the server has given up on it: after the welcome, the connection ends.
    let mut ended = false;
    for _ in 0..10 {
        if stalled.recv().await.is_none() {
            ended = true;
            break;
        }
    }
    assert!(ended, "the silent connection was closed");

    // A phone that reads (and so answers pings) stays connected well past the idle limit.
    let dir = tempfile::tempdir().unwrap();
    let mut watcher = phone(dir.path(), "watcher", &server.url(), &token);
    let path = watcher.path().to_path_buf();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        sitesync_core::sync::client::watch(&mut watcher, Duration::from_millis(50), Default::default(), async {
            let _ = stopped.await;
        })
        .await
    });
    let connected = |p: &std::path::Path| sitesync_core::Store::open(p).unwrap().sync_status().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !connected(&path).connected {
        assert!(tokio::time::Instant::now() < deadline, "never connected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await; // three idle limits, kept alive by pings
    let status = connected(&path);
    assert!(status.connected && status.last_error.is_none(), "{status:?}");
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    server.stop().await;
}

/// A device waiting for the answer to its push is not silent, however long the server takes: the
/// time a connection spends on a step (here a push waiting 1.5 s for a store held elsewhere, three
/// idle limits) is not counted as the device's silence. Before, the keep-alive judged the device by
/// the time since its push arrived and closed it right after acknowledging, as silent; in the
/// 7 a.m. rush that was a device waiting 90 s for its acknowledgement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_waiting_on_a_slow_push_is_not_closed_as_silent() {
    use sitesync_core::ids::DocId;
    use sitesync_core::sync::protocol::{ClientMsg, ServerMsg};
    use sitesync_core::units::WorkDays;
    use sitesync_tests::harness::store_push;
    let timing = KeepAlive {
        ping_every: Duration::from_millis(100),
        idle_after: Duration::from_millis(500),
    };
    // On SQLite files whatever the suite's engine: holding the document store holds SQLite's one
    // writer, so the push waits for certain (PostgreSQL's pushes write on connections of their own).
    let server = TestServer::start_configured_on(Engine::Sqlite, move |s| s.with_timing(timing)).await;
    let token = server.device("u-foreman-hz-01").await;
    // A scratch store with the site's master data: it signs what the raw client pushes.
    let dir = tempfile::tempdir().unwrap();
    let mut store = sitesync_core::Store::open(dir.path().join("raw.sqlite3")).unwrap();
    let site = sitesync_core::ids::SiteId::new("site-hz-01").unwrap();
    server.copy_master_data(&mut store, &site).await;
    let mut c = RawClient::connect_as(server.addr, &token, &store).await.unwrap();
    c.say_hello().await;
    let roster = store.roster(&site).unwrap();
    let line = |store: &mut sitesync_core::Store, k: usize| {
        let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 2).unwrap();
        let e = sitesync_core::store::entry(
            site.clone(),
            date,
            roster.workers[k].id.clone(),
            roster.work_items[0].id.clone(),
            WorkDays::parse("1.0").unwrap(),
        );
        store.add_labor(&e, None).unwrap();
        ClientMsg::Push {
            req: k as u64,
            docs: vec![store_push(store, &DocId::Day(site.clone(), date))],
        }
    };
    let acked = |m: Option<ServerMsg>| matches!(m, Some(ServerMsg::Ack { .. }));
    // The store is held elsewhere (an import, say) for 1.5 s; the push waits for it.
    let state = server.state.clone();
    let held = tokio::spawn(async move {
        state
            .both(|_, _| {
                std::thread::sleep(Duration::from_millis(1_500));
                Ok(())
            })
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    c.send(&line(&mut store, 1)).await;
    // Not reading meanwhile (so not answering pings, as a phone busy elsewhere does): what the
    // server heard last is the push.
    tokio::time::sleep(Duration::from_millis(1_700)).await;
    assert!(acked(c.recv().await), "the slow push is acknowledged");
    held.await.unwrap();
    // The device says nothing for 300 ms (within the idle limit) after the acknowledgement: the
    // connection is still open, and answers its next push.
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.send(&line(&mut store, 2)).await;
    assert!(
        acked(c.recv().await),
        "the connection was closed as silent after the slow push"
    );
    server.stop().await;
}
