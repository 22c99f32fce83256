//! Old phones keep working: a phone one protocol version behind (the frozen copy of version 2's
//! encoding in `sitesync_tests::protocol_prev`) syncs against a real server and is told an update is
//! available; older and unknown versions are refused in words the phone can read, and the server
//! keeps serving everyone else. The current client surfaces both states.

use futures_util::{SinkExt, StreamExt};
use sitesync_core::Store;
use sitesync_core::ids::DocId;
use sitesync_core::sync::UpdateState;
use sitesync_core::sync::client::sync_once;
use sitesync_core::sync::protocol::{self, ErrorCode};
use sitesync_tests::harness::{TestServer, phone};
use sitesync_tests::protocol_prev::{v1, v2};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::*;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A phone of protocol version 2 as it was built: it sends no version header, frames every message
/// as version 2 and reads only version 2's messages. Its data lives in a store of today's build (the
/// encoding is what is frozen, not the document engine).
struct OldPhone {
    socket: Socket,
    /// The upgrade's `X-Sitesync-Update`, if any.
    update: Option<String>,
}

impl OldPhone {
    async fn connect(addr: std::net::SocketAddr, token: &str) -> OldPhone {
        let (socket, update) = open(addr, token, None).await.expect("the upgrade is accepted");
        OldPhone { socket, update }
    }

    async fn send(&mut self, msg: &v2::ClientMsg) {
        self.socket.send(Message::Binary(v2::encode(msg).into())).await.unwrap();
    }

    /// The next message as version 2 decodes it; `None` once the server closed.
    async fn recv(&mut self) -> Option<v2::ServerMsg> {
        recv_frame(&mut self.socket)
            .await
            .map(|b| v2::decode(&b).unwrap_or_else(|e| panic!("a v2 phone cannot read the server's frame: {e}")))
    }

    /// Merges updates as a v2 phone did: the signatures kept, the changes merged.
    fn apply(store: &mut Store, docs: &[v2::DocSync]) {
        for update in docs {
            let id: DocId = update.doc.parse().unwrap();
            store.keep_signatures(&id, &update.sigs, None).unwrap();
            if !update.changes.is_empty() {
                store.merge_changes(&id, &update.changes).unwrap();
            }
        }
    }
}

/// Opens `/v1/sync` with `token`, declaring `version` in the header when given; the socket and the
/// upgrade's update header, or the refused upgrade's status, update header and body.
async fn open(
    addr: std::net::SocketAddr,
    token: &str,
    version: Option<&str>,
) -> Result<(Socket, Option<String>), (u16, Option<String>, String)> {
    let mut req = format!("ws://{addr}/v1/sync").into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    if let Some(v) = version {
        req.headers_mut().insert(protocol::VERSION_HEADER, v.parse().unwrap());
    }
    let update = |h: &tokio_tungstenite::tungstenite::http::HeaderMap| {
        h.get(protocol::UPDATE_HEADER).map(|v| v.to_str().unwrap().to_string())
    };
    match tokio_tungstenite::connect_async(req).await {
        Ok((socket, resp)) => Ok((socket, update(resp.headers()))),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Err((
            r.status().as_u16(),
            update(r.headers()),
            String::from_utf8_lossy(r.body().as_deref().unwrap_or_default()).into_owned(),
        )),
        Err(e) => panic!("connect: {e}"),
    }
}

/// The next binary frame (10 s at most); `None` once the server closed.
async fn recv_frame(socket: &mut Socket) -> Option<Vec<u8>> {
    let next = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Binary(b))) => return Some(b.to_vec()),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => continue,
            }
        }
    });
    next.await.expect("the server answers within 10 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_one_version_behind_syncs_and_is_told_to_update() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let token = server.device("u-foreman-hz-01").await;
    let mut old = Store::open(dir.path().join("old.sqlite3")).unwrap();
    let mut manager = phone(
        dir.path(),
        "manager",
        &server.url(),
        &server.device("u-manager-hz-01").await,
    );

    // The upgrade says an update is available: the one notice v2's messages have no room for.
    let mut conn = OldPhone::connect(server.addr, &token).await;
    assert_eq!(conn.update.as_deref(), Some("available"));

    // A full first sync, in version 2's messages.
    conn.send(&v2::ClientMsg::Hello {
        cursor: 0,
        key: old.public_key(),
    })
    .await;
    let Some(v2::ServerMsg::Welcome {
        cursor,
        docs,
        more,
        you,
        ..
    }) = conn.recv().await
    else {
        panic!("expected a version-2 welcome");
    };
    assert_eq!(you.user_id, "u-foreman-hz-01");
    OldPhone::apply(&mut old, &docs);
    let mut at = if more { 0 } else { cursor };
    while at < cursor {
        match conn.recv().await {
            Some(v2::ServerMsg::Changed { cursor: c, docs }) => {
                OldPhone::apply(&mut old, &docs);
                at = c;
            }
            other => panic!("expected the rest of the first sync, got {other:?}"),
        }
    }
    conn.send(&v2::ClientMsg::Applied { cursor }).await;
    assert!(old.roster(&hz()).is_ok(), "the site's master data arrived");
    old.set_author(&you).unwrap();

    // It pushes a day, signed as version 2 signs (every change, with the key it said hello with).
    old.add_labor(&entry("2026-12-07", "w-0001", "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    let day: DocId = "day|site-hz-01|2026-12-07".parse().unwrap();
    let (changes, sigs) = old.export_signed(&day, &[]).unwrap().unwrap();
    conn.send(&v2::ClientMsg::Push {
        req: 1,
        docs: vec![v2::DocSync {
            doc: day.to_string(),
            base: Vec::new(),
            heads: protocol::hashes(&old.heads(&day).unwrap()),
            changes,
            sigs,
        }],
    })
    .await;
    let results = loop {
        match conn.recv().await {
            Some(v2::ServerMsg::Ack { req: 1, results }) => break results,
            Some(v2::ServerMsg::Changed { cursor, .. }) => conn.send(&v2::ClientMsg::Applied { cursor }).await,
            other => panic!("expected the ack, got {other:?}"),
        }
    };
    assert!(matches!(&results[..], [v2::DocResult::Synced(_)]), "{results:?}");
    let lines = server
        .store(|s| s.day(&hz(), d("2026-12-07")).unwrap().labor.len())
        .await;
    assert_eq!(lines, 1, "the old phone's day is at head office");

    // A change made elsewhere reaches it live, in version 2's framing.
    sync(&mut manager).await;
    manager
        .add_labor(&entry("2026-12-07", "w-0002", "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    sync(&mut manager).await;
    let live = loop {
        match conn.recv().await {
            Some(v2::ServerMsg::Changed { cursor, docs }) => {
                OldPhone::apply(&mut old, &docs);
                conn.send(&v2::ClientMsg::Applied { cursor }).await;
                if docs.iter().any(|d| d.doc == day.to_string()) {
                    break docs;
                }
            }
            other => panic!("expected a live change, got {other:?}"),
        }
    };
    assert!(!live.is_empty());
    assert_eq!(old.day(&hz(), d("2026-12-07")).unwrap().labor.len(), 2);

    // Today's client, against the same server: up to date, no notice.
    let (_, update) = open(server.addr, &token, Some(&protocol::VERSION.to_string()))
        .await
        .unwrap();
    assert_eq!(update, None);
    sync(&mut manager).await;
    assert_eq!(manager.update_state().unwrap(), UpdateState::UpToDate);
    assert_eq!(manager.sync_status().unwrap().update, UpdateState::UpToDate);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_and_unknown_versions_are_refused_in_words_the_phone_reads() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let token = server.device("u-foreman-hz-01").await;

    // A version-1 phone (no header then either): its first frame is answered with a refusal it
    // decodes with its own types, and the connection closes.
    let (mut socket, _) = open(server.addr, &token, None).await.unwrap();
    socket
        .send(Message::Binary(v1::encode(&v1::ClientMsg::Hello { cursor: 0 }).into()))
        .await
        .unwrap();
    let frame = recv_frame(&mut socket).await.expect("a refusal before the close");
    assert_eq!(frame[0], 1, "framed in the phone's own version");
    match v1::decode::<v1::ServerMsg>(&frame).unwrap() {
        v1::ServerMsg::Error {
            code: v1::ErrorCode::Version,
            message,
        } => assert!(message.contains("update the app"), "{message}"),
        other => panic!("expected a version refusal, got {other:?}"),
    }
    assert_eq!(recv_frame(&mut socket).await, None, "the connection closes");

    // Version 0 and an unknown 99: the same typed refusal.
    for version in [0u8, 99] {
        let (mut socket, _) = open(server.addr, &token, None).await.unwrap();
        let mut hello = v2::encode(&v2::ClientMsg::Hello {
            cursor: 0,
            key: [7; 32],
        });
        hello[0] = version;
        socket.send(Message::Binary(hello.into())).await.unwrap();
        let mut frame = recv_frame(&mut socket).await.expect("a refusal");
        assert_eq!(frame[0], version);
        frame[0] = v2::VERSION;
        assert!(
            matches!(
                v2::decode::<v2::ServerMsg>(&frame),
                Ok(v2::ServerMsg::Error {
                    code: v2::ErrorCode::Version,
                    ..
                })
            ),
            "version {version}"
        );
    }

    // A phone that says its version at the upgrade is refused before any frame: 426, with why.
    for said in ["1", "99", "three"] {
        let Err((status, update, body)) = open(server.addr, &token, Some(said)).await else {
            panic!("version {said} was upgraded");
        };
        assert_eq!(status, 426, "{said}");
        assert_eq!(update.as_deref(), Some("required"));
        assert!(!body.is_empty());
    }
    let (_, update) = open(server.addr, &token, Some("2")).await.unwrap();
    assert_eq!(update.as_deref(), Some("available"));

    // The server kept serving: a current phone syncs, a v2 phone is welcomed.
    let mut foreman = phone(dir.path(), "foreman", &server.url(), &token);
    sync(&mut foreman).await;
    let mut conn = OldPhone::connect(server.addr, &token).await;
    conn.send(&v2::ClientMsg::Hello {
        cursor: 0,
        key: foreman.public_key(),
    })
    .await;
    assert!(matches!(conn.recv().await, Some(v2::ServerMsg::Welcome { .. })));
}

/// Wire bytes a version-2 phone sends and reads, pinned: a change to a type its messages nest
/// (`Author`, `Role`, `ChangeSig`) would change them, and old phones in the field with them.
#[test]
fn version_two_frames_are_pinned() {
    let hello = v2::encode(&v2::ClientMsg::Hello {
        cursor: 300,
        key: [1; 32],
    });
    assert_eq!(hello[..5], [2, 0, 0, 0xac, 0x02]);
    let welcome = protocol::encode_server(
        2,
        &protocol::ServerMsg::Welcome {
            epoch: "e".into(),
            cursor: 1,
            docs: Vec::new(),
            more: false,
            you: sitesync_core::rules::Author::system("o"),
            directory: Vec::new(),
            update: protocol::UpdateNotice::Available {
                latest: protocol::VERSION,
            },
        },
    );
    let old: v2::ServerMsg = v2::decode(&welcome).unwrap();
    assert!(matches!(old, v2::ServerMsg::Welcome { cursor: 1, .. }), "{old:?}");
    // Exactly the bytes version 2 itself encodes: nothing of version 3 leaks in.
    let v2::ServerMsg::Welcome {
        epoch,
        cursor,
        docs,
        more,
        you,
        directory,
    } = old
    else {
        unreachable!()
    };
    assert_eq!(
        v2::encode(&v2::ServerMsg::Welcome {
            epoch,
            cursor,
            docs,
            more,
            you,
            directory
        }),
        welcome
    );
}

/// A scripted peer standing in for a server of a later version (none exists yet to run): it says
/// what such a server would, so the current client's handling of both notices is tested.
/// `header`: the upgrade says an update is available; `refuse`: the upgrade is answered with 426.
async fn later_server(answer: fn() -> Option<protocol::ServerMsg>, header: bool, refuse: bool) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let Ok((tcp, _)) = listener.accept().await else { return };
        #[allow(clippy::result_large_err, reason = "tungstenite's callback signature")]
        let callback =
            move |_req: &tokio_tungstenite::tungstenite::handshake::server::Request,
                  mut resp: tokio_tungstenite::tungstenite::handshake::server::Response| {
                if refuse {
                    let mut no = tokio_tungstenite::tungstenite::handshake::server::ErrorResponse::new(Some(
                        "protocol 3 is no longer spoken: update the app".to_string(),
                    ));
                    *no.status_mut() = tokio_tungstenite::tungstenite::http::StatusCode::UPGRADE_REQUIRED;
                    return Err(no);
                }
                if header {
                    resp.headers_mut()
                        .insert(protocol::UPDATE_HEADER, "available".parse().unwrap());
                }
                Ok(resp)
            };
        let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
            return;
        };
        while let Some(Ok(Message::Binary(_))) = ws.next().await {
            match answer() {
                Some(msg) => {
                    let _ = ws.send(Message::Binary(protocol::encode(&msg).into())).await;
                }
                None => return,
            }
            if matches!(answer(), Some(protocol::ServerMsg::Error { .. })) {
                let _ = ws.close(None).await;
                return;
            }
        }
    });
    addr
}

#[tokio::test]
async fn the_phone_keeps_update_available_and_required_as_typed_states() {
    let dir = tempfile::tempdir().unwrap();
    let addr = later_server(
        || {
            Some(protocol::ServerMsg::Welcome {
                epoch: "e".into(),
                cursor: 0,
                docs: Vec::new(),
                more: false,
                you: sitesync_core::rules::Author::system("org-zhuyuan"),
                directory: Vec::new(),
                update: protocol::UpdateNotice::Available {
                    latest: protocol::VERSION + 1,
                },
            })
        },
        true,
        false,
    )
    .await;
    let mut store = phone(dir.path(), "a", &format!("http://{addr}"), "t");
    sync_once(&mut store).await.unwrap();
    assert_eq!(store.sync_status().unwrap().update, UpdateState::Available);

    let addr = later_server(
        || {
            Some(protocol::ServerMsg::Error {
                code: ErrorCode::Version,
                message: "update the app".into(),
            })
        },
        false,
        false,
    )
    .await;
    let mut store = phone(dir.path(), "b", &format!("http://{addr}"), "t");
    match sync_once(&mut store).await {
        Err(sitesync_core::Error::UpdateRequired(m)) => assert_eq!(m, "update the app"),
        other => panic!("expected UpdateRequired, got {other:?}"),
    }
    let status = store.sync_status().unwrap();
    assert_eq!(status.update, UpdateState::Required);
    assert!(status.last_error.is_some_and(|e| e.contains("update")));

    // Refused at the upgrade: the same state, the server's words kept.
    let addr = later_server(|| None, false, true).await;
    let mut store = phone(dir.path(), "c", &format!("http://{addr}"), "t");
    match sync_once(&mut store).await {
        Err(sitesync_core::Error::UpdateRequired(m)) => assert!(m.contains("no longer spoken"), "{m}"),
        other => panic!("expected UpdateRequired, got {other:?}"),
    }
    assert_eq!(store.update_state().unwrap(), UpdateState::Required);
}
