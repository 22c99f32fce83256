//! A phone answered `Unavailable` backs off: one push per document per backoff, never a tight loop
//! (a phone whose document the server could not store once pushed it ~50 times a second), and a
//! single `sync_once` returns at once with the refusal.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use sitesync_core::Store;
use sitesync_core::sync::client::{WatchHooks, sync_once, watch};
use sitesync_core::sync::protocol::{self, ClientMsg, DocResult, Refusal, ServerMsg};
use tokio_tungstenite::tungstenite::Message;

use crate::*;

/// The document the tests count pushes of.
const DAY: &str = "day|site-hz-01|2026-11-20";

/// A sync server that welcomes every device and refuses every pushed document as `Unavailable`,
/// counting how often the day is pushed.
struct Refusing {
    /// Where it listens.
    addr: std::net::SocketAddr,
    /// Pushes of the day so far.
    pushes: Arc<AtomicUsize>,
    /// The accepting task.
    task: tokio::task::JoinHandle<()>,
}

impl Refusing {
    async fn start() -> Refusing {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let pushes = Arc::new(AtomicUsize::new(0));
        let counted = pushes.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                let counted = counted.clone();
                tokio::spawn(async move {
                    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                        return;
                    };
                    while let Some(Ok(frame)) = ws.next().await {
                        let Message::Binary(bytes) = frame else { continue };
                        let reply = match protocol::decode::<ClientMsg>(&bytes).unwrap() {
                            ClientMsg::Hello { .. } => ServerMsg::Welcome {
                                epoch: "e".into(),
                                cursor: 0,
                                docs: vec![],
                                more: false,
                                you: sitesync_core::rules::Author::system("org-zhuyuan"),
                                directory: vec![],
                                update: protocol::UpdateNotice::UpToDate,
                            },
                            ClientMsg::Push { req, docs } => {
                                let day = docs.iter().filter(|d| d.doc == DAY).count();
                                counted.fetch_add(day, Ordering::SeqCst);
                                let results = docs
                                    .into_iter()
                                    .map(|d| DocResult::Refused {
                                        doc: d.doc,
                                        reason: Refusal::Unavailable,
                                    })
                                    .collect();
                                ServerMsg::Ack { req, results }
                            }
                            ClientMsg::Applied { .. } => continue,
                        };
                        if ws.send(Message::Binary(protocol::encode(&reply).into())).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Refusing { addr, pushes, task }
    }

    fn pushes(&self) -> usize {
        self.pushes.load(Ordering::SeqCst)
    }
}

impl Drop for Refusing {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A phone with the day logged, bound to `server`.
fn phone_with_a_day(dir: &std::path::Path, server: &Refusing) -> Store {
    let mut p = Store::open(dir.join("p.sqlite3")).unwrap();
    p.set_user("崔贵").unwrap();
    p.import_dir(&sitesync_tests::harness::fixtures().join("small"))
        .unwrap();
    p.add_labor(&entry("2026-11-20", "w-0001", "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    p.bind(&format!("http://{}", server.addr), "sst_any").unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_once_returns_at_once_when_a_document_is_refused() {
    let server = Refusing::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut p = phone_with_a_day(dir.path(), &server);
    let outcome = tokio::time::timeout(Duration::from_secs(10), sync_once(&mut p))
        .await
        .expect("sync_once returns instead of pushing again and again");
    let err = outcome.unwrap_err();
    assert!(err.to_string().contains("Unavailable"), "{err}");
    assert_eq!(server.pushes(), 1);
    assert!(p.pending().unwrap().iter().any(|d| d.to_string() == DAY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_loop_retries_a_refused_document_with_backoff() {
    let server = Refusing::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut p = phone_with_a_day(dir.path(), &server);
    // Polling every 10 ms for 3 s: a tight loop would push hundreds of times. With backoff the
    // day goes at 0 s, after 0.5–1.5 s, then 1–3 s later: two or three times in the window.
    let window = Duration::from_secs(3);
    watch(
        &mut p,
        Duration::from_millis(10),
        WatchHooks::default(),
        tokio::time::sleep(window),
    )
    .await
    .unwrap();
    let n = server.pushes();
    assert!((2..=3).contains(&n), "pushed {n} times in {window:?}");
}
