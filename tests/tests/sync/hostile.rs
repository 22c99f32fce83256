//! Hostile input against the real server: every frame of the fuzz corpus (`fuzz/corpus/frame_decode`)
//! and pushes whose change bytes are corrupted. The server answers each malformed frame with an
//! `Error` and each malformed document with a refusal, never a crash or a hang, its store stays what
//! an honest replica computes, and a normal phone still syncs afterwards.
//!
//! The hostile device signs whatever it sends (a valid signature is no protection against bad bytes),
//! and the honest replica runs the same gate as the server (`sitesync_core::store::Screen`, with the
//! author the server's welcome named), so a corrupted change that still decodes is judged by the
//! same rules on both sides.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use sitesync_core::Store;
use sitesync_core::changes::ChangeInfo;
use sitesync_core::ids::DocId;
use sitesync_core::import::Company;
use sitesync_core::rules::{Author, Violation};
use sitesync_core::signing::{ChangeSig, Keypair};
use sitesync_core::store::{Authority, Screen};
use sitesync_core::sync::protocol::{self, ClientMsg, DocResult, DocSync, Refusal, ServerMsg};
use sitesync_tests::harness::{TestServer, fixtures, phone, sign_changes};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::*;

/// How long the server may take to answer a frame before the test calls it a hang.
const ANSWER: Duration = Duration::from_secs(10);

/// The document the corpus's change seeds belong to.
const DAY_DOC: &str = "day|site-hz-01|2026-09-01";

/// The user the corpus's change seeds were written as (`write_seeds` in
/// `client-core/tests/fuzz_corpus.rs`): the hostile device is theirs, so intact seeds pass the rules.
const SEED_USER: &str = "u-manager-hz-01";

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
    /// The device's key: registered by every hello, signing every push.
    key: Keypair,
}

impl Conn {
    async fn open(server: &TestServer, token: &str, key: &Keypair) -> Conn {
        let mut req = format!("ws://{}/v1/sync", server.addr).into_client_request().unwrap();
        req.headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let (socket, _) = tokio::time::timeout(ANSWER, tokio_tungstenite::connect_async(req))
            .await
            .expect("the server accepts a connection in time")
            .expect("the server accepts a connection");
        Conn {
            socket,
            key: key.clone(),
        }
    }

    fn hello_frame(&self, cursor: u64) -> Vec<u8> {
        protocol::encode(&ClientMsg::Hello {
            cursor,
            key: self.key.public(),
        })
    }

    /// A push of `changes` to the day, every change in them signed with the device's key.
    fn doc(&self, changes: Vec<u8>) -> DocSync {
        DocSync {
            doc: DAY_DOC.into(),
            base: vec![],
            heads: vec![],
            sigs: sign_changes(&self.key, DAY_DOC, &changes),
            changes,
        }
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

    /// Says hello; returns who the server says the device is.
    async fn hello(&mut self, cursor: u64) -> Author {
        assert!(self.send(self.hello_frame(cursor)).await);
        match self.next().await {
            Some(ServerMsg::Welcome { you, .. }) => you,
            other => panic!("expected a welcome, got {other:?}"),
        }
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

/// What the server must answer for one pushed document.
#[derive(Debug, PartialEq, Eq)]
enum Expect {
    Synced,
    /// Stored but for these changes (hex hash, rule broken).
    Partial(Vec<(String, Violation)>),
    NeedHistory,
    Malformed,
}

impl Expect {
    fn of(result: &DocResult) -> Option<Expect> {
        Some(match result {
            DocResult::Synced(_) => Expect::Synced,
            DocResult::Partial { refused, .. } => Expect::Partial(
                refused
                    .iter()
                    .map(|r| (protocol::hex_heads(&[r.hash]).remove(0), r.violation.clone()))
                    .collect(),
            ),
            DocResult::NeedHistory { .. } => Expect::NeedHistory,
            DocResult::Refused {
                reason: Refusal::Malformed,
                ..
            } => Expect::Malformed,
            _ => return None,
        })
    }
}

/// The server's judgement of a change's author, for the one device of this test: a signature by
/// the device's registered key names the user the welcome named.
struct OneDevice<'a> {
    key: [u8; 32],
    sigs: HashMap<[u8; 32], &'a ChangeSig>,
    author: &'a Author,
}

impl Authority for OneDevice<'_> {
    fn author(&mut self, doc: &DocId, change: &ChangeInfo) -> Result<Author, Violation> {
        let hash = protocol::hashes(std::slice::from_ref(&change.hash));
        let sig = hash.first().and_then(|h| self.sigs.get(h)).ok_or(Violation::Unsigned)?;
        if !sig.verifies(&doc.to_string()) {
            return Err(Violation::BadSignature);
        }
        if sig.key != self.key {
            return Err(Violation::UnknownKey);
        }
        Ok(self.author.clone())
    }
}

/// An honest replica's answers to one push, which it applies to itself as the server does: every
/// document through one gate, then the accepted changes merged in one batch.
fn replicate(replica: &mut Store, you: &Author, key: [u8; 32], docs: &[DocSync]) -> Vec<Expect> {
    let id: DocId = DAY_DOC.parse().unwrap();
    let mut screen = Screen::new();
    let mut plans = Vec::new();
    let mut merges: Vec<Vec<u8>> = Vec::new();
    for d in docs {
        let mut who = OneDevice {
            key,
            sigs: d.sigs.iter().map(|s| (s.hash, s)).collect(),
            author: you,
        };
        plans.push(
            match screen.check(
                replica,
                &id,
                &d.changes,
                Some(&you.org),
                &mut who,
                &SameOrg(you.org.clone()),
            ) {
                Ok(s) if s.accepted.is_empty() => Ok((None, s.refused)),
                Ok(s) => {
                    merges.push(s.accepted);
                    Ok((Some(merges.len() - 1), s.refused))
                }
                Err(sitesync_core::Error::MissingHistory { .. }) => Err(Expect::NeedHistory),
                Err(sitesync_core::Error::BadChanges { .. } | sitesync_core::Error::CorruptDocument { .. }) => {
                    Err(Expect::Malformed)
                }
                Err(e) => panic!("the replica's gate failed: {e}"),
            },
        );
    }
    let items: Vec<(DocId, &[u8])> = merges.iter().map(|b| (id.clone(), b.as_slice())).collect();
    let merged = replica.merge_many(&items).unwrap();
    plans
        .into_iter()
        .map(|plan| match plan {
            Err(e) => e,
            Ok((merge, refused)) => match merge.map(|k| &merged[k]) {
                Some(Err(sitesync_core::Error::MissingHistory { .. })) => Expect::NeedHistory,
                Some(Err(sitesync_core::Error::BadChanges { .. } | sitesync_core::Error::CorruptDocument { .. })) => {
                    Expect::Malformed
                }
                Some(Err(e)) => panic!("the replica could not store: {e}"),
                _ if refused.is_empty() => Expect::Synced,
                _ => Expect::Partial(refused),
            },
        })
        .collect()
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
    let token = server.device(SEED_USER).await;
    let key = Keypair::generate();
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
    // The day exists on both before the corruption starts, as the server held it before changes
    // were signed (its changes name `foreman` and `manager`, who are nobody's device).
    let (base, at) = (intact[0].clone(), id.clone());
    assert!(server.store(move |s| s.merge_changes(&at, &base).unwrap()).await);
    replica.merge_changes(&id, &intact[0]).unwrap();
    let mut conn = Conn::open(&server, &token, &key).await;
    let you = conn.hello(0).await;
    assert_eq!(you.user_id, SEED_USER);
    assert!(matches!(
        conn.push(vec![conn.doc(intact[0].clone())]).await[..],
        [DocResult::Synced(_)]
    ));
    // The intact seeds are the seed user's to make: they pass the rules whole.
    let whole: Vec<DocSync> = intact[1..].iter().map(|b| conn.doc(b.clone())).collect();
    let expected = replicate(&mut replica, &you, key.public(), &whole);
    assert!(expected.iter().all(|e| *e == Expect::Synced), "{expected:?}");
    let results = conn.push(whole).await;
    assert_eq!(
        results.iter().map(Expect::of).collect::<Vec<_>>(),
        expected.into_iter().map(Some).collect::<Vec<_>>()
    );
    // Inputs that once made Automerge panic while merging into (or saving) exactly this day: refused
    // like any malformed changes, and the connection stays open.
    let regressions: Vec<Vec<u8>> = changes
        .iter()
        .filter(|(name, _)| name.starts_with("regression-"))
        .map(|(_, bytes)| bytes.clone())
        .collect();
    assert!(!regressions.is_empty());
    let at = id.clone();
    let heads = server.store(move |s| s.heads(&at).unwrap()).await;
    let pushed: Vec<DocSync> = regressions.into_iter().map(|b| conn.doc(b)).collect();
    let expected = replicate(&mut replica, &you, key.public(), &pushed);
    let results = conn.push(pushed).await;
    for (result, expected) in results.iter().zip(expected) {
        assert_eq!(Expect::of(result), Some(expected), "{result:?}");
        assert!(!matches!(result, DocResult::Synced(_)), "{result:?}");
    }
    let at = id.clone();
    assert_eq!(
        server.store(move |s| s.heads(&at).unwrap()).await,
        heads,
        "none is stored"
    );
    let mut rng = Rng(0x5eed_0fba_5e00);
    let (mut refused, mut merged, mut partial) = (0, 0, 0);
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
        let pushed: Vec<DocSync> = batch.into_iter().map(|b| conn.doc(b)).collect();
        let expected = replicate(&mut replica, &you, key.public(), &pushed);
        let results = conn.push(pushed).await;
        for (expected, result) in expected.into_iter().zip(results) {
            match Expect::of(&result) {
                Some(seen) if seen == expected => match seen {
                    Expect::Synced => merged += 1,
                    Expect::Partial(_) => partial += 1,
                    Expect::NeedHistory | Expect::Malformed => refused += 1,
                },
                _ => panic!("round {round}: the replica says {expected:?}, the server {result:?}"),
            }
        }
    }
    eprintln!("{refused} refused, {merged} merged, {partial} partly refused by the rules");
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
    let mut malformed = 0;
    for (name, frame) in &frames {
        let mut conn = Conn::open(&server, &token, &key).await;
        let probe = conn.hello_frame(cursor);
        conn.hello(cursor).await;
        assert!(conn.send(frame.clone()).await, "{name}");
        // As the server reads it: a frame of the current version or the one before
        // (`decode_client`), refused as another version than the hello's if it decodes.
        let read = match protocol::decode_client(frame) {
            Ok((v, _)) if v != protocol::VERSION => Err(protocol::FrameError::Version(v)),
            other => other.map(|(_, msg)| msg),
        };
        match read {
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

/// The replica's tenancy: every site it holds is of the one org, and readable.
struct SameOrg(String);

impl sitesync_core::validate::Tenancy for SameOrg {
    fn site_org(&self, _: &sitesync_core::ids::SiteId) -> Option<sitesync_core::ids::OrgId> {
        sitesync_core::ids::OrgId::new(&self.0).ok()
    }

    fn may_read(&self, _: &sitesync_core::ids::SiteId) -> bool {
        true
    }
}
