//! The real `sitesync-server` binary is killed with SIGKILL while a phone syncs, and restarted:
//! no change the phone saw acknowledged is lost, the phone resumes, and the database is intact.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sitesync_core::Store;
use sitesync_core::ids::{SiteId, WorkItemId, WorkerId, parse_date};
use sitesync_core::sync::client::sync_once;
use sitesync_core::units::WorkDays;
use support::{DataDir, Process, admin, fixtures};

const ROUNDS: usize = 16;

/// Starts the server on `data` and waits until it answers (off the runtime's threads: the wait
/// blocks).
async fn start(data: &DataDir, addr: std::net::SocketAddr, log: &Path) -> Process {
    let (data, log) = (data.clone(), log.to_path_buf());
    tokio::task::spawn_blocking(move || {
        let mut server = support::start(&data, addr, &log);
        support::healthy(&mut server, addr, &log, "start");
        server
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_changes_survive_server_sigkill_and_clients_resume() {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::new(dir.path().join("data"));
    admin(&data, &["import", fixtures().join("company.json").to_str().unwrap()]);
    let token = admin(&data, &["device", "add", "--user", "u-foreman-hz-01"]);
    let (addr, log) = (support::free_addr(), dir.path().join("server.log"));
    let mut server = start(&data, addr, &log).await;

    let mut phone = Store::open(dir.path().join("phone.sqlite3")).unwrap();
    phone.bind(&format!("http://{addr}"), &token).unwrap();
    sync_once(&mut phone).await.unwrap();
    let site = SiteId::new("site-hz-01").unwrap();
    let roster = phone.roster(&site).unwrap();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let mut added = Vec::new();
    let mut acked = Vec::new();
    let mut interrupted = 0;
    for round in 0..ROUNDS {
        let date = parse_date("2026-12-01").unwrap() + chrono::Days::new((round / 4) as u64);
        for k in 0..4 {
            let w = &roster.workers[(round * 4 + k) % roster.workers.len()];
            let e = sitesync_core::store::entry(
                site.clone(),
                date,
                WorkerId::new(w.id.as_str()).unwrap(),
                WorkItemId::new("site-hz-01/wi-4.1").unwrap(),
                WorkDays::parse("1.0").unwrap(),
            );
            added.push(phone.add_labor(&e, None).unwrap().id);
        }
        // Kill the server at a random moment of this sync (or just after it).
        let delay = Duration::from_micros((seed.wrapping_mul(round as u64 + 1) >> 7) % 100_000);
        let pid = server.0.id();
        let killer = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            // SIGKILL, exactly what a crash or the OOM killer does.
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        });
        match sync_once(&mut phone).await {
            Ok(_) => acked = added.clone(),
            Err(_) => interrupted += 1,
        }
        killer.await.unwrap();
        support::sigkill(&mut server);
        server = start(&data, addr, &log).await;
    }
    // The phone resumes: everything it still has pending goes through now.
    sync_once(&mut phone).await.unwrap();
    assert!(phone.pending().unwrap().is_empty());

    // Head office, from a fresh phone enrolled while the server runs, sees every line exactly once.
    let office = admin(&data, &["device", "add", "--user", "u-office-1"]);
    let mut hq = Store::open(dir.path().join("hq.sqlite3")).unwrap();
    hq.bind(&format!("http://{addr}"), &office).unwrap();
    sync_once(&mut hq).await.unwrap();
    let t = hq
        .totals(
            Some(&site),
            parse_date("2026-12-01").unwrap(),
            parse_date("2026-12-31").unwrap(),
            None,
        )
        .unwrap();
    assert_eq!(t.total.lines as usize, added.len(), "seed {seed}");
    for id in &acked {
        hq.labor_line(id)
            .unwrap_or_else(|e| panic!("seed {seed}: acknowledged {id} lost: {e}"));
    }
    eprintln!("{interrupted} of {ROUNDS} syncs were interrupted by the kill");
    // Revoking from the command line while the server runs cuts the device off at once.
    let admin_token = std::fs::read_to_string(data.join("admin-token")).unwrap();
    assert!(admin_token.starts_with("sst_"), "the first start wrote an admin token");
    let foreman_device = format!("d-{}", token.split('_').nth(1).unwrap());
    admin(&data, &["device", "revoke", &foreman_device]);
    let err = sync_once(&mut phone).await.unwrap_err();
    assert!(matches!(err, sitesync_core::Error::Unauthorized(_)), "{err}");
    support::sigkill(&mut server);
    data.with_documents(|docs| docs.verify()).unwrap();
}
