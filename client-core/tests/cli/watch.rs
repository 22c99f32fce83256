//! `sync --watch` against a real server on loopback, run in this process: each change received, each
//! push acknowledged and each drop and reconnect is one line on stdout.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use sitesync_core::import::Company;
use sitesync_server::AppState;

use crate::common::{add_line, ok};

/// How long any one awaited line may take: a reconnect waits out a backoff of up to ~1.3 s first.
const PATIENCE: Duration = Duration::from_secs(30);

/// A server on a loopback port, serving until [`Server::stop`].
struct Server {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Serves the data directory `dir` on `addr` (port 0 for any).
    fn start(rt: &tokio::runtime::Runtime, dir: &Path, addr: SocketAddr) -> Server {
        let state = AppState::open(dir).unwrap();
        let listener = rt.block_on(tokio::net::TcpListener::bind(addr)).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = rt.spawn(sitesync_server::run(listener, state, async move {
            let _ = stopped.await;
        }));
        Server { addr, stop, task }
    }

    /// Stops it, closing live sync connections, and waits until it has let go of its data.
    fn stop(self, rt: &tokio::runtime::Runtime) {
        let _ = self.stop.send(());
        rt.block_on(self.task).unwrap().unwrap();
    }
}

/// The next line of `lines` for which `wanted` holds, within [`PATIENCE`]; fails with every line
/// seen on the way.
fn expect(lines: &Receiver<String>, seen: &mut Vec<String>, wanted: impl Fn(&str) -> bool, what: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                let hit = wanted(&line);
                seen.push(line);
                if hit {
                    return;
                }
            }
            Err(RecvTimeoutError::Timeout) => panic!("no line {what} within {PATIENCE:?}; saw {seen:#?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("sync --watch ended before {what}; saw {seen:#?}"),
        }
    }
}

/// `sitesync --store STORE sync --watch`, its stdout read line by line into a channel.
fn watch(store: &Path) -> (Child, Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sitesync"))
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .env_remove("LANG")
        .arg("--store")
        .arg(store)
        .args(["sync", "--watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

fn add(store: &Path, worker: &str) {
    let out = add_line(store, "site-hz-01", "2026-09-05", worker, "1.0");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn watch_reports_changes_received_pushes_acknowledged_and_reconnects() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let data = tempfile::tempdir().unwrap();
    let phones = tempfile::tempdir().unwrap();
    let company: Company =
        sitesync_core::import::read_json(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/company.json"))
            .unwrap();
    let (a_token, b_token) = {
        let state = AppState::open(data.path()).unwrap();
        rt.block_on(state.both(move |auth, store| sitesync_server::admin::import_company(auth, store, &company)))
            .unwrap();
        let device = |user: &'static str| rt.block_on(state.auth(move |a| a.add_device(user, "test"))).unwrap().1;
        (device("u-foreman-hz-01"), device("u-foreman-hz-01"))
    };
    let server = Server::start(&rt, data.path(), "127.0.0.1:0".parse().unwrap());
    let url = format!("http://{}", server.addr);

    let (a, b) = (phones.path().join("a.sqlite3"), phones.path().join("b.sqlite3"));
    for (store, token) in [(&a, &a_token), (&b, &b_token)] {
        ok(store, &["init", "--server", &url, "--token", token]);
        ok(store, &["sync"]);
    }

    let (mut child, lines) = watch(&b);
    let mut seen = Vec::new();
    let connected = format!("connected to {url}");
    expect(&lines, &mut seen, |l| l == connected, "saying it connected");

    // Another phone's change arrives live.
    add(&a, "w-0001");
    ok(&a, &["sync"]);
    expect(
        &lines,
        &mut seen,
        |l| l == "received site-hz-01 2026-09-05",
        "for the change received",
    );

    // This phone's own write (by another process on the same store) goes out and is acknowledged.
    add(&b, "w-0002");
    expect(
        &lines,
        &mut seen,
        |l| l == "pushed site-hz-01 2026-09-05: head office has it",
        "for the push acknowledged",
    );

    // The server goes away: one line for the drop; back on the same port: one line for the reconnect.
    let addr = server.addr;
    server.stop(&rt);
    expect(
        &lines,
        &mut seen,
        |l| l.starts_with("disconnected: ") && l.contains("; reconnecting in "),
        "for the drop",
    );
    let server = Server::start(&rt, data.path(), addr);
    expect(&lines, &mut seen, |l| l == connected, "for the reconnect");

    let _ = child.kill();
    let _ = child.wait();
    server.stop(&rt);
    // One line per event, nothing else: every line seen is one of the kinds above.
    for l in &seen {
        assert!(
            l.starts_with("connected to ")
                || l.starts_with("received ")
                || l.starts_with("pushed ")
                || l.starts_with("disconnected: "),
            "{l}"
        );
    }
}

/// Files move in the same `sync --watch`, beside the documents: a photo attached and a signature
/// taken by other processes on the store go up (the day's record first, not held up by them), and
/// a second phone's watch downloads the photo the first attached.
#[test]
fn watch_moves_files_beside_the_documents() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let data = tempfile::tempdir().unwrap();
    let phones = tempfile::tempdir().unwrap();
    let company: Company =
        sitesync_core::import::read_json(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/company.json"))
            .unwrap();
    let (a_token, b_token) = {
        let state = AppState::open(data.path()).unwrap();
        rt.block_on(state.both(move |auth, store| sitesync_server::admin::import_company(auth, store, &company)))
            .unwrap();
        let device = |user: &'static str| rt.block_on(state.auth(move |a| a.add_device(user, "test"))).unwrap().1;
        (device("u-foreman-hz-01"), device("u-foreman-hz-01"))
    };
    let server = Server::start(&rt, data.path(), "127.0.0.1:0".parse().unwrap());
    let url = format!("http://{}", server.addr);
    let (a, b) = (phones.path().join("a.sqlite3"), phones.path().join("b.sqlite3"));
    for (store, token) in [(&a, &a_token), (&b, &b_token)] {
        ok(store, &["init", "--server", &url, "--token", token]);
        ok(store, &["sync"]);
    }
    let (mut watch_a, lines_a) = watch(&a);
    let (mut watch_b, lines_b) = watch(&b);
    let (mut seen_a, mut seen_b) = (Vec::new(), Vec::new());

    add(&a, "w-0001");
    let photo = phones.path().join("rebar.jpg");
    std::fs::write(&photo, b"the bytes of a photo of the rebar").unwrap();
    let sha = ok(
        &a,
        &[
            "attach",
            "--site",
            "site-hz-01",
            "--date",
            "2026-09-05",
            photo.to_str().unwrap(),
        ],
    );
    let sha = sha.trim().to_string();
    assert_eq!(sha.len(), 64, "{sha}");
    let sig = phones.path().join("sig.png");
    std::fs::write(&sig, b"strokes of a signature").unwrap();
    ok(
        &a,
        &[
            "sign",
            "--site",
            "site-hz-01",
            "--date",
            "2026-09-05",
            "--worker",
            "w-0001",
            "--image",
            sig.to_str().unwrap(),
        ],
    );
    expect(
        &lines_a,
        &mut seen_a,
        |l| l == "pushed site-hz-01 2026-09-05: head office has it",
        "for the day pushed",
    );
    // Both files up: in one pass or two.
    let mut uploaded = 0;
    while uploaded < 2 {
        expect(
            &lines_a,
            &mut seen_a,
            |l| l.starts_with("files: "),
            "for the files uploaded",
        );
        let l = seen_a.last().unwrap();
        uploaded += l
            .trim_start_matches("files: ")
            .split(' ')
            .next()
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("{l}"));
    }
    // The other phone's watch receives the day, then the photo.
    expect(
        &lines_b,
        &mut seen_b,
        |l| l == "received site-hz-01 2026-09-05",
        "for the day received",
    );
    expect(
        &lines_b,
        &mut seen_b,
        |l| l == "files: 0 uploaded, 1 downloaded",
        "for the photo downloaded",
    );
    let _ = watch_a.kill();
    let _ = watch_a.wait();
    let _ = watch_b.kill();
    let _ = watch_b.wait();
    server.stop(&rt);
    let held = std::fs::read(phones.path().join("b.sqlite3.blobs").join(&sha)).unwrap();
    assert_eq!(held, b"the bytes of a photo of the rebar");
    // The phone that took them never had to wait (the other may have asked for the photo before
    // it was up, and says so once).
    assert!(
        !seen_a.iter().any(|l| l.contains("waits") || l.contains("not moved")),
        "{seen_a:#?}"
    );
}
