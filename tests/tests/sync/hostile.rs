//! Hostile input against the real server: every frame of the fuzz corpus (`fuzz/corpus/frame_decode`)
//! and pushes whose change bytes are corrupted. The server answers each malformed frame with an
//! `Error` and each malformed document with a refusal, never a crash or a hang, its store stays what
//! an honest replica computes, and a normal phone still syncs afterwards.

use std::path::Path;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use sitesync_core::Store;
use sitesync_core::ids::DocId;
use sitesync_core::import::Company;
use sitesync_core::sync::protocol::{self, ClientMsg, DocResult, DocSync, Refusal, ServerMsg};
use sitesync_tests::harness::{TestServer, fixtures, phone};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::*;

/// How long the server may take to answer a frame before the test calls it a hang.
const ANSWER: Duration = Duration::from_secs(10);

/// The document the corpus's change seeds belong to.
const DAY_DOC: &str = "day|site-hz-01|2026-09-01";

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let path = e.unwrap().path();
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&path).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// A sync connection that tolerates the server closing it at any point.
struct Conn {
    socket: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
}

impl Conn {
    async fn open(server: &TestServer, token: &str) -> Conn {
        let mut req = format!("ws://{}/v1/sync", server.addr).into_client_request().unwrap();
        req.headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let (socket, _) = tokio::time::timeout(ANSWER, tokio_tungstenite::connect_async(req))
            .await
            .expect("the server accepts a connection in time")
            .expect("the server accepts a connection");
        Conn { socket }
    }

    /// Sends one binary frame; false if the server has already closed the connection.
    async fn send(&mut self, bytes: Vec<u8>) -> bool {
        self.socket.send(Message::Binary(bytes.into())).await.is_ok()
    }

    /// The next message other than a live update; `None` once the server closed the connection.
    async fn next(&mut self) -> Option<ServerMsg> {
        loop {
            let frame = tokio::time::timeout(ANSWER, self.socket.next())
                .await
                .expect("the server answers in time (a hang otherwise)");
            match frame {
                Some(Ok(Message::Binary(b))) => match protocol::decode(&b).expect("the server's frames decode") {
                    ServerMsg::Changed { .. } => continue,
                    msg => return Some(msg),
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => continue,
            }
        }
    }

    async fn hello(&mut self, cursor: u64) {
        assert!(self.send(protocol::encode(&ClientMsg::Hello { cursor })).await);
        assert!(matches!(self.next().await, Some(ServerMsg::Welcome { .. })));
    }

    async fn push(&mut self, docs: Vec<DocSync>) -> Vec<DocResult> {
        let n = docs.len();
        assert!(self.send(protocol::encode(&ClientMsg::Push { req: 7, docs })).await);
        match self.next().await {
            Some(ServerMsg::Ack { req: 7, results }) if results.len() == n => results,
            other => panic!("expected an ack of {n} documents, got {other:?}"),
        }
    }
}

/// A small deterministic generator (xorshift64*), so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1) as u64) as usize
    }
}

/// Corrupts Automerge bytes the ways a bad network or a hostile client would.
fn corrupt(rng: &mut Rng, bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let len = out.len().max(1);
    match rng.below(5) {
        0 => out.truncate(rng.below(len)),
        1 => {
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(len);
                if let Some(b) = out.get_mut(at) {
                    *b ^= 1 << rng.below(8);
                }
            }
        }
        2 => {
            let at = rng.below(len);
            out.insert(at.min(out.len()), rng.below(256) as u8);
        }
        3 => {
            // The header (magic, checksum, type, length) of the first chunk.
            let at = rng.below(12.min(len));
            if let Some(b) = out.get_mut(at) {
                *b = [0x00, 0xff, 0x7f, 0x80][rng.below(4)];
            }
        }
        _ => {
            let at = rng.below(len).min(out.len());
            let n = (1 + rng.below(64)).min(out.len() - at);
            out.drain(at..at + n);
        }
    }
    out
}

fn doc(changes: Vec<u8>) -> DocSync {
    DocSync {
        doc: DAY_DOC.into(),
        base: vec![],
        heads: vec![],
        changes,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_and_corrupted_changes_are_refused_and_the_server_keeps_serving() {
    // Hundreds of connections from one token in seconds: past the default sync rate, which
    // `limits.rs` tests on its own.
    let server = TestServer::start_with_limits(sitesync_server::limits::Limits {
        sync_per_second: 10_000,
        sync_burst: 10_000,
        ..Default::default()
    })
    .await;
    let token = server.device("u-foreman-hz-01").await;
    let id: DocId = DAY_DOC.parse().unwrap();

    // Corrupted changes in well-formed pushes, checked against an honest replica that merges the
    // same bytes: what it refuses the server refuses, what it takes the server stores.
    let dir = tempfile::tempdir().unwrap();
    let mut replica = Store::open(dir.path().join("replica.sqlite3")).unwrap();
    let company: Company = sitesync_core::import::read_json(&fixtures().join("company.json")).unwrap();
    replica.import_company(&company).unwrap();
    let changes = corpus("doc_changes");
    let seed = |name: &str| {
        let name = format!("seed-{name}");
        changes
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("{name} is missing"))
            .1
            .clone()
    };
    let intact = [
        "base-document",
        "amendments-since-base",
        "concurrent-document",
        "document-then-changes",
    ]
    .map(seed);
    let seeds = [seed("second-amendment-alone"), seed("other-day"), seed("site-document")];
    let seeds: Vec<&Vec<u8>> = intact.iter().chain(&seeds).collect();
    let mut conn = Conn::open(&server, &token).await;
    conn.hello(0).await;
    // The day exists on both before the corruption starts (a push of nothing creates nothing).
    assert!(matches!(
        conn.push(vec![doc(intact[0].clone())]).await[..],
        [DocResult::Synced(_)]
    ));
    replica.merge_changes(&id, &intact[0]).unwrap();
    // Inputs that once made Automerge panic while merging into (or saving) exactly this day: refused
    // like any malformed changes, and the connection stays open.
    let regressions: Vec<Vec<u8>> = changes
        .iter()
        .filter(|(name, _)| name.starts_with("regression-"))
        .map(|(_, bytes)| bytes.clone())
        .collect();
    assert!(!regressions.is_empty());
    let results = conn.push(regressions.into_iter().map(doc).collect()).await;
    for result in results {
        assert!(
            matches!(
                result,
                DocResult::Refused {
                    reason: Refusal::Malformed,
                    ..
                }
            ),
            "{result:?}"
        );
    }
    let mut rng = Rng(0x5eed_0fba_5e00);
    let (mut refused, mut merged) = (0, 0);
    // Each refused merge makes both stores reload the day from disk: slow in a debug build.
    for round in 0..20 {
        // Three corrupted documents and an intact one in one push: the refusals block nothing.
        let mut batch: Vec<Vec<u8>> = (0..3)
            .map(|_| {
                let seed = seeds[rng.below(seeds.len())];
                corrupt(&mut rng, seed)
            })
            .collect();
        batch.push(intact[rng.below(intact.len())].clone());
        let results = conn.push(batch.iter().cloned().map(doc).collect()).await;
        for (bytes, result) in batch.iter().zip(results) {
            let expected = replica.merge_changes(&id, bytes);
            match (&expected, &result) {
                (Ok(_), DocResult::Synced(_)) => merged += 1,
                (Err(sitesync_core::Error::MissingHistory { .. }), DocResult::NeedHistory { .. }) => refused += 1,
                (
                    Err(sitesync_core::Error::BadChanges { .. } | sitesync_core::Error::CorruptDocument { .. }),
                    DocResult::Refused {
                        reason: Refusal::Malformed,
                        ..
                    },
                ) => refused += 1,
                _ => panic!("round {round}: the replica says {expected:?}, the server {result:?}"),
            }
        }
    }
    assert!(refused >= 40 && merged >= 20, "{refused} refused, {merged} merged");

    let replica_heads = replica.heads(&id).unwrap();
    let server_heads = server.store(move |s| s.heads(&id).unwrap()).await;
    assert_eq!(sorted(server_heads), sorted(replica_heads));

    // Every corpus frame on a fresh connection that said hello (so pushes get as far as the store);
    // a well-formed one is followed by a hello whose welcome proves the connection still works.
    let frames = corpus("frame_decode");
    assert!(
        frames.len() >= 20,
        "fuzz/corpus/frame_decode holds only {} frames",
        frames.len()
    );
    let cursor = server.store(|s| s.change_cursor().unwrap()).await;
    let probe = protocol::encode(&ClientMsg::Hello { cursor });
    let mut malformed = 0;
    for (name, frame) in &frames {
        let mut conn = Conn::open(&server, &token).await;
        conn.hello(cursor).await;
        assert!(conn.send(frame.clone()).await, "{name}");
        match protocol::decode::<ClientMsg>(frame) {
            // No probe after a malformed frame: the server closes the connection after its error,
            // and a frame arriving at the closed socket makes the kernel reset the connection,
            // which may discard the error before the client reads it.
            Err(e) => {
                malformed += 1;
                match conn.next().await {
                    Some(ServerMsg::Error { code, .. }) => assert_eq!(code, e.code(), "{name}"),
                    other => panic!("{name} ({e}): expected an error, got {other:?}"),
                }
                assert_eq!(
                    conn.next().await,
                    None,
                    "{name}: the connection is closed after an error"
                );
            }
            Ok(msg) => {
                assert!(conn.send(probe.clone()).await, "{name}");
                if let ClientMsg::Hello { .. } = msg {
                    assert!(matches!(conn.next().await, Some(ServerMsg::Welcome { .. })), "{name}");
                }
                if let ClientMsg::Push { req, docs } = &msg {
                    match conn.next().await {
                        Some(ServerMsg::Ack { req: r, results }) => {
                            assert_eq!((r, results.len()), (*req, docs.len()), "{name}");
                            for (d, result) in docs.iter().zip(&results) {
                                if d.doc.parse::<DocId>().is_err() {
                                    assert!(
                                        matches!(
                                            result,
                                            DocResult::Refused {
                                                reason: Refusal::UnknownDocument,
                                                ..
                                            }
                                        ),
                                        "{name}: {result:?}"
                                    );
                                }
                            }
                        }
                        other => panic!("{name}: expected an ack, got {other:?}"),
                    }
                }
                match conn.next().await {
                    Some(ServerMsg::Welcome { .. }) => {}
                    other => panic!("{name} ({msg:?}): expected the probe's welcome, got {other:?}"),
                }
            }
        }
    }
    assert!(
        malformed >= 5,
        "only {malformed} of {} frames are malformed",
        frames.len()
    );

    // And an honest phone syncs as if nothing happened.
    let dir = tempfile::tempdir().unwrap();
    let mut p = phone(dir.path(), "f", &server.url(), &token);
    sync(&mut p).await;
    assert!(p.roster(&hz()).is_ok());
    p.add_labor(&entry("2026-12-01", "w-0001", "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    sync(&mut p).await;
    assert!(p.pending().unwrap().is_empty());
    server.stop().await;
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}
