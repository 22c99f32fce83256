//! A backup taken while the server serves restores to a working server with every acknowledged change.

use sitesync_tests::harness::{Engine, TestServer, phone};

use crate::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_serving_restores_everything_acknowledged() {
    // SQLite whatever the suite's engine: `admin backup` copies SQLite files (PostgreSQL has pg_dump).
    let server = TestServer::start_configured_on(Engine::Sqlite, |s| s).await;
    let dir = tempfile::tempdir().unwrap();
    let token = server.device("u-foreman-hz-01").await;
    // Head office's device, enrolled before the backup, checks the restored server from a fresh store.
    let office = server.device("u-office-1").await;
    let mut p = phone(dir.path(), "foreman", &server.url(), &token);
    sync(&mut p).await;
    for n in 1..=5 {
        p.add_labor(
            &entry("2026-12-01", &format!("w-{n:04}"), "site-hz-01/wi-4.1", "1.0"),
            None,
        )
        .unwrap();
    }
    sync(&mut p).await; // acknowledged: on the server's disk
    let backup = tempfile::tempdir().unwrap();
    let out = backup.path().join("copy");
    let written = sitesync_server::admin::backup(server.state.data_dir(), &out).unwrap();
    assert_eq!(written.len(), 2);
    assert!(
        sitesync_server::admin::backup(server.state.data_dir(), &out).is_err(),
        "never overwrites a backup"
    );
    // Writes after the backup are not in it, and that is fine.
    p.add_labor(&entry("2026-12-01", "w-0006", "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    sync(&mut p).await;
    server.stop().await;

    // Restore: a server started on the copy.
    let restored_dir = tempfile::tempdir().unwrap();
    for name in sitesync_server::admin::DATABASES {
        std::fs::copy(out.join(name), restored_dir.path().join(name)).unwrap();
    }
    let restored = TestServer::start_on(restored_dir).await;
    let mut fresh = phone(dir.path(), "fresh", &restored.url(), &office);
    sync(&mut fresh).await;
    assert_eq!(
        fresh.day(&hz(), d("2026-12-01")).unwrap().labor.len(),
        5,
        "every change acknowledged before the backup"
    );
    p.bind(&restored.url(), &token).unwrap();
    // The old phone still holds the sixth line, acknowledged by the lost server: the restored
    // server's new epoch makes it offer everything again.
    sync(&mut p).await;
    sync(&mut fresh).await;
    assert_eq!(
        fresh.day(&hz(), d("2026-12-01")).unwrap().labor.len(),
        6,
        "the phone heals the restored server"
    );
    restored.stop().await;
}
