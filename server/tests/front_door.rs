//! Slow-loris against the real binary, as it was found: 300 connections that each send half a
//! request header and then nothing. Before the front door had limits, with a 256-descriptor limit
//! this made `/healthz` time out for 30 s and filled the log with `accept error: Too many open
//! files`. Now: the open-file limit caps the connections (here 256 − 64 reserved = 192), the ones over
//! the cap are closed at once, the rest when their header timeout runs out, and a fresh client is
//! served as soon as a slot is free; with the default cap, 300 such connections do not delay it at
//! all.

mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LORIS: usize = 300;

/// Opens `LORIS` connections that each send half a header; returns, per connection, when the server
/// closed it (measured from the first connection), `None` if it is still open after `wait`.
async fn loris(addr: SocketAddr, wait: Duration) -> (Instant, tokio::task::JoinSet<Option<Duration>>) {
    let start = Instant::now();
    let mut closed = tokio::task::JoinSet::new();
    for _ in 0..LORIS {
        let mut s = TcpStream::connect(addr).await.unwrap();
        // The server may already have closed it (over the cap): a failed write is a close too.
        let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: loris\r\nX-Slow: ").await;
        closed.spawn(async move {
            let mut buf = Vec::new();
            match tokio::time::timeout(wait, s.read_to_end(&mut buf)).await {
                Ok(_) => Some(start.elapsed()),
                Err(_) => None,
            }
        });
    }
    (start, closed)
}

/// `GET /healthz` on a fresh connection, retried at once while the server refuses connections;
/// how long until it answered 200.
async fn healthz_within(addr: SocketAddr, bound: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let attempt = async {
            let mut s = TcpStream::connect(addr).await.ok()?;
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await
                .ok()?;
            let mut buf = Vec::new();
            s.read_to_end(&mut buf).await.ok()?;
            buf.starts_with(b"HTTP/1.1 200").then_some(())
        };
        if tokio::time::timeout(bound, attempt).await.ok().flatten().is_some() {
            return start.elapsed();
        }
        assert!(start.elapsed() < bound, "/healthz did not answer within {bound:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_loris_under_256_descriptors_is_refused_fast_and_timed_out() {
    let dir = tempfile::tempdir().unwrap();
    let (data, log) = (
        support::DataDir::new(dir.path().join("data")),
        dir.path().join("server.log"),
    );
    support::company(&data, &[]);
    let addr = support::free_addr();
    let mut prlimit = Command::new("prlimit");
    prlimit.args(["--nofile=256:256", support::server_bin()]);
    let mut server = support::start_with(prlimit, &data, addr, &log, &["--header-timeout", "4"]);
    support::healthy(&mut server, addr, &log, "under prlimit");
    let told = std::fs::read_to_string(&log).unwrap();
    assert!(
        told.contains("the open-file limit allows fewer connections than asked")
            && told.contains("max_connections=192"),
        "the server fits its cap to the 256 descriptors it has:\n{told}"
    );

    let header_timeout = Duration::from_secs(4);
    let (start, mut closed) = loris(addr, header_timeout * 3).await;
    let opened = start.elapsed();
    // A fresh client while the cap is full: refused fast, served once the loris time out.
    let waited = healthz_within(addr, header_timeout + Duration::from_secs(3)).await;

    let mut times = Vec::new();
    while let Some(t) = closed.join_next().await {
        times.push(t.unwrap().expect("every half-header connection is closed"));
    }
    times.sort();
    let fast = times.iter().filter(|t| **t < opened + Duration::from_secs(1)).count();
    let slowest = *times.last().unwrap();
    assert!(
        fast >= LORIS - 192,
        "the {} connections over the cap are closed at once, not queued: {fast} were",
        LORIS - 192
    );
    assert!(
        slowest < opened + header_timeout + Duration::from_secs(2),
        "the rest are closed when the header timeout runs out: the last after {slowest:?}"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("Too many open files"), "{}", support::tail(&log));
    assert!(
        text.contains("connection cap reached"),
        "refusals are audited:\n{}",
        support::tail(&log)
    );
    assert!(
        text.contains("request header not received in time"),
        "{}",
        support::tail(&log)
    );
    println!(
        "slow-loris, 256 descriptors: {LORIS} connections opened in {opened:?}; {fast} closed at once; \
         the last closed after {slowest:?}; a fresh /healthz answered after {waited:?}"
    );
    // And the server serves as before.
    assert!(healthz_within(addr, Duration::from_secs(2)).await < Duration::from_secs(2));
    support::stop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_loris_below_the_default_cap_does_not_delay_anyone() {
    let dir = tempfile::tempdir().unwrap();
    let (data, log) = (
        support::DataDir::new(dir.path().join("data")),
        dir.path().join("server.log"),
    );
    support::company(&data, &[]);
    let addr = support::free_addr();
    let mut server = support::start_with(
        Command::new(support::server_bin()),
        &data,
        addr,
        &log,
        &["--header-timeout", "2"],
    );
    support::healthy(&mut server, addr, &log, "default cap");
    let (_, mut closed) = loris(addr, Duration::from_secs(10)).await;
    let waited = healthz_within(addr, Duration::from_secs(1)).await;
    println!("slow-loris, default cap: a fresh /healthz answered after {waited:?}");
    while let Some(t) = closed.join_next().await {
        assert!(
            t.unwrap().expect("closed") < Duration::from_secs(5),
            "closed by the 2 s header timeout"
        );
    }
    support::stop(server);
}
