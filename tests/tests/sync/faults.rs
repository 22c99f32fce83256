//! A proxy that refuses, delays and cuts connections mid-frame: every entry a phone saw
//! acknowledged reaches the server exactly once.

use std::time::Duration;

use sitesync_core::sync::client::sync_once;
use sitesync_tests::harness::{TestServer, phone};
use sitesync_tests::proxy::{Cut, FaultProxy, Faults};

use crate::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_entries_arrive_exactly_once_through_a_faulty_network() {
    let server = TestServer::start().await;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let faults = Faults {
        refuse: 0.2,
        cut: Some(Cut {
            chance: 0.5,
            after: (40, 4_000),
        }),
        max_delay: Duration::from_millis(3),
        seed,
    };
    let proxy = FaultProxy::start(server.addr, faults).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token = server.device("u-foreman-hz-01").await;
    let mut p = phone(dir.path(), "foreman", &format!("http://{}", proxy.addr()), &token);
    // The first sync (the roster) through the faults too.
    let mut attempts = 0;
    while sync_once(&mut p).await.is_err() {
        attempts += 1;
        assert!(attempts < 500, "seed {seed}: never got through");
    }
    let roster = p.roster(&hz()).unwrap();
    let mut added = Vec::new();
    let mut acked = Vec::new();
    let (mut ok, mut failed) = (0, 0);
    // Until the faults have both bitten and let through, whatever the seed drew.
    let mut round = 0usize;
    while round < 40 || ok < 8 || failed < 4 || proxy.stats().cut < 2 {
        assert!(
            round < 200,
            "seed {seed}: {ok} ok, {failed} failed, {:?}",
            proxy.stats()
        );
        let date = format!("2026-12-{:02}", 1 + round / 10);
        for k in 0..3 {
            let w = &roster.workers[(round * 3 + k) % roster.workers.len()];
            let line = p
                .add_labor(&entry(&date, w.id.as_str(), "site-hz-01/wi-4.1", "0.5"), None)
                .unwrap();
            added.push(line.id);
        }
        match sync_once(&mut p).await {
            Ok(_) => {
                ok += 1;
                acked = added.clone();
            }
            Err(_) => failed += 1,
        }
        round += 1;
    }
    eprintln!(
        "seed {seed}: {round} rounds, {ok} ok {failed} failed {:?}",
        proxy.stats()
    );
    let last_day = d(&format!("2026-12-{:02}", 1 + (round - 1) / 10));
    // Heal the network and finish.
    proxy.set_faults(Faults::default());
    sync(&mut p).await;
    let on_server = server
        .store(move |s| {
            let t = s.totals(Some(&hz()), d("2026-12-01"), last_day, None).unwrap();
            let days = chrono::Datelike::day(&last_day);
            let ids: Vec<_> = (1..=days)
                .flat_map(|day| s.day(&hz(), d(&format!("2026-12-{day:02}"))).unwrap().labor)
                .map(|l| l.id)
                .collect();
            (t.total.lines, ids)
        })
        .await;
    assert_eq!(
        on_server.0 as usize,
        added.len(),
        "seed {seed}: every entry exactly once"
    );
    for id in &acked {
        assert!(on_server.1.contains(id), "seed {seed}: acknowledged {id} missing");
    }
    server.stop().await;
}
