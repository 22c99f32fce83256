//! `peer listen` and `peer sync`: two phones that synced once (and got their certificates) exchange a
//! day over loopback TCP after the server went away.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use sitesync_core::import::Company;
use sitesync_server::AppState;

use crate::common::{add_line, json, ok};

#[test]
fn peer_sync_hands_a_day_to_a_listening_phone_with_no_server() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let data = tempfile::tempdir().unwrap();
    let phones = tempfile::tempdir().unwrap();
    let company: Company =
        sitesync_core::import::read_json(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/company.json"))
            .unwrap();
    let state = AppState::open(data.path()).unwrap();
    rt.block_on(state.both(move |auth, store| sitesync_server::admin::import_company(auth, store, &company)))
        .unwrap();
    let device = |user: &'static str| rt.block_on(state.auth(move |a| a.add_device(user, "test"))).unwrap();
    let ((a_device, a_token), (b_device, b_token)) = (device("u-foreman-hz-01"), device("u-manager-hz-01"));
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(sitesync_server::run(listener, state, async move {
        let _ = stopped.await;
    }));
    let (a, b) = (phones.path().join("a.sqlite3"), phones.path().join("b.sqlite3"));
    for (store, token) in [(&a, &a_token), (&b, &b_token)] {
        ok(store, &["init", "--server", &url, "--token", token]);
        ok(store, &["sync"]);
    }
    let _ = stop.send(());
    rt.block_on(server).unwrap().unwrap();

    let out = add_line(&a, "site-hz-01", "2026-12-05", "w-0001", "1.0");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let mut listen = Command::new(env!("CARGO_BIN_EXE_sitesync"))
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .env_remove("LANG")
        .arg("--store")
        .arg(&b)
        .args(["peer", "listen", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(listen.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first
        .strip_prefix("listening for peers on ")
        .unwrap_or_else(|| panic!("{first}"))
        .to_string();

    let summary = ok(&a, &["peer", "sync", "--peer", &addr]);
    assert_eq!(
        summary.trim(),
        format!("peer {b_device} (u-manager-hz-01): 1 documents sent, 0 received, 0 changes refused")
    );
    let served = lines.next().unwrap().unwrap();
    assert_eq!(
        served,
        format!("peer {a_device} (u-foreman-hz-01): 0 documents sent, 1 received, 0 changes refused")
    );
    listen.kill().unwrap();
    let _ = listen.wait();
    let day = json(&b, &["day", "--site", "site-hz-01", "--date", "2026-12-05", "--json"]);
    assert_eq!(day["labor"].as_array().map(Vec::len), Some(1), "{day}");
}
