//! A connection that stalls forever is timed out and freed; a live one is kept alive by pings.

use std::time::Duration;

use sitesync_server::state::KeepAlive;
use sitesync_tests::harness::{RawClient, TestServer, phone};

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
