//! The operator's tools with the real binary: JSON logs whose every line of a request or a sync
//! connection names it (`serve --log-format json`), the metrics token and the private metrics
//! listener, and `check` on a healthy data directory and on one with a document's bytes, a
//! signature and a report row damaged directly in the SQLite file.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use sitesync_core::Store;
use sitesync_core::ids::{SiteId, WorkItemId, WorkerId, parse_date};
use sitesync_core::sync::client::sync_once;
use sitesync_core::units::WorkDays;
use support::{DataDir, Process, company, free_addr, healthy};

/// One HTTP/1.0 GET with `headers`; the status line's code and the whole answer.
fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let code = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, text)
}

/// Runs `check` on `data`: whether it succeeded, and its stdout and stderr.
fn check(data: &DataDir) -> (bool, String, String) {
    let out = Command::new(support::server_bin())
        .arg("check")
        .args(data.args())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A phone of `token` that logs a day on site-hz-01 and syncs it (a push, signatures stored).
async fn log_a_day(dir: &std::path::Path, addr: SocketAddr, token: &str) {
    let mut phone = Store::open(dir.join("phone.sqlite3")).unwrap();
    phone.bind(&format!("http://{addr}"), token).unwrap();
    sync_once(&mut phone).await.unwrap();
    let site = SiteId::new("site-hz-01").unwrap();
    let roster = phone.roster(&site).unwrap();
    let e = sitesync_core::store::entry(
        site,
        parse_date("2026-12-01").unwrap(),
        WorkerId::new(roster.workers[0].id.as_str()).unwrap(),
        WorkItemId::new("site-hz-01/wi-4.1").unwrap(),
        WorkDays::parse("1.0").unwrap(),
    );
    phone.add_labor(&e, None).unwrap();
    let progress = sync_once(&mut phone).await.unwrap();
    assert_eq!(progress.pushed, 1, "{progress:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_name_every_request_and_connection_and_check_passes_a_healthy_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::new(dir.path().join("data"));
    let tokens = company(&data, &["u-foreman-hz-01"]);
    let device = format!("d-{}", tokens[0].split('_').nth(1).unwrap());
    let token_file = dir.path().join("metrics-token");
    std::fs::write(&token_file, "operators-0123456789\n").unwrap();
    let (addr, metrics_addr) = (free_addr(), free_addr());
    let log = dir.path().join("server.log");
    let mut server = Process(
        Command::new(support::server_bin())
            .args(["serve", "--listen", &addr.to_string()])
            .args(data.args())
            .args(["--log-format", "json", "--metrics-listen", &metrics_addr.to_string()])
            .arg("--metrics-token-file")
            .arg(&token_file)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    healthy(&mut server, addr, &log, "serve --log-format json");

    // A request's id is the caller's when it sends one, echoed back; else a fresh one.
    let (code, answer) = get(
        addr,
        "/v1/session",
        &[
            ("authorization", &format!("Bearer {}", tokens[0])),
            ("x-request-id", "it-req-42"),
        ],
    );
    assert_eq!(code, 200, "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("x-request-id: it-req-42"),
        "{answer}"
    );
    let (_, answer) = get(addr, "/healthz", &[]);
    assert!(answer.to_ascii_lowercase().contains("x-request-id: "), "{answer}");
    // The metrics: the operators' token here, nothing without one; anyone on the private listener.
    assert_eq!(get(addr, "/metrics", &[]).0, 401);
    assert_eq!(
        get(addr, "/metrics", &[("authorization", "Bearer operators-0123456789")]).0,
        200
    );
    let (code, scraped) = get(metrics_addr, "/metrics", &[]);
    assert_eq!(code, 200, "{scraped}");
    assert!(scraped.contains("sitesync_pushes_total"), "{scraped}");
    // The binary runs on jemalloc and reports its heap: live bytes, within the resident ones.
    let gauge = |name: &str| -> u64 {
        scraped
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {scraped}"))
    };
    let (allocated, resident) = (
        gauge("sitesync_heap_allocated_bytes"),
        gauge("sitesync_heap_resident_bytes"),
    );
    assert!(
        (1 << 20..=resident).contains(&allocated),
        "a serving process holds at least 1 MiB live: {allocated} of {resident}"
    );
    // A sync connection, with a push.
    log_a_day(dir.path(), addr, &tokens[0]).await;
    let (_, scraped) = get(metrics_addr, "/metrics", &[]);
    assert!(
        scraped.contains("sitesync_pushes_total{outcome=\"synced\"} 1"),
        "{scraped}"
    );
    support::stop(server);

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let spans = |line: &serde_json::Value, name: &str| -> Vec<serde_json::Value> {
        line["spans"]
            .as_array()
            .map(|s| s.iter().filter(|s| s["name"] == name).cloned().collect())
            .unwrap_or_default()
    };
    let (mut requests, mut ours, mut syncs) = (0, 0, 0);
    for line in &lines {
        for span in spans(line, "request") {
            requests += 1;
            let id = span["request_id"]
                .as_str()
                .unwrap_or_else(|| panic!("no request id: {line}"));
            assert!(!id.is_empty() && id != "-", "{line}");
            ours += usize::from(id == "it-req-42");
        }
        for span in spans(line, "sync") {
            syncs += 1;
            assert!(span["conn_id"].as_str().is_some_and(|c| c.len() == 16), "{line}");
            assert_eq!(span["device"].as_str(), Some(device.as_str()), "{line}");
        }
    }
    assert!(requests > 0 && ours > 0, "a line of our request: {text}");
    assert!(syncs >= 2, "the sync connections' lines: {text}");

    let (ok, stdout, stderr) = check(&data);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.starts_with("ok: "), "{stdout}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_a_damaged_document_signature_and_report_row_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::sqlite(dir.path().join("data"));
    let tokens = company(&data, &["u-foreman-hz-01"]);
    let addr = free_addr();
    let log = dir.path().join("server.log");
    let mut server = support::start(&data, addr, &log);
    healthy(&mut server, addr, &log, "serve");
    log_a_day(dir.path(), addr, &tokens[0]).await;
    support::stop(server);
    let (ok, stdout, stderr) = check(&data);
    assert!(ok, "healthy first: {stdout}{stderr}");

    let file = data.path().join("documents.sqlite3");
    let conn = rusqlite::Connection::open(&file).unwrap();
    conn.execute(
        "UPDATE snapshots SET data = X'00010203' WHERE doc_id = 'site|site-nb-03'",
        [],
    )
    .unwrap();
    let damaged_sig: String = conn
        .query_row(
            "SELECT hash FROM signatures WHERE doc_id = 'day|site-hz-01|2026-12-01' LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    conn.execute(
        "UPDATE signatures SET sig = zeroblob(64) WHERE hash = ?1",
        [&damaged_sig],
    )
    .unwrap();
    assert_eq!(
        conn.execute("UPDATE sites SET name = 'tampered' WHERE site_id = 'site-hz-01'", [])
            .unwrap(),
        1
    );
    drop(conn);
    let before = std::fs::read(&file).unwrap();

    let (ok, stdout, stderr) = check(&data);
    assert!(!ok, "{stdout}");
    assert!(stderr.contains("problems found"), "{stderr}");
    assert!(
        stdout.lines().any(|l| l.starts_with("site|site-nb-03: does not load")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("day|site-hz-01|2026-12-01: ") && l.contains(&damaged_sig)),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("not in a rebuild") && l.contains("tampered")),
        "{stdout}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), before, "check wrote nothing");
}
