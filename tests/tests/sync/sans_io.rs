//! The phone's engine against the server's session logic with no sockets at all: messages are
//! handed across in memory, so the protocol can be checked step by step.

use sitesync_core::sync::Engine;
use sitesync_core::sync::protocol::{self, ClientMsg, DocResult, ServerMsg};
use sitesync_server::session;
use sitesync_tests::harness::{TestServer, phone};

use crate::*;

/// Sends one client message through the server logic (encoded and decoded, as on the wire) and
/// returns the server's replies.
async fn exchange(server: &TestServer, device: &str, msg: ClientMsg) -> Vec<ServerMsg> {
    let msg: ClientMsg = protocol::decode(&protocol::encode(&msg)).unwrap();
    let device = device.to_string();
    let (deliveries, events) = (server.state.deliveries(), server.state.event_sender());
    let replies = server
        .state
        .both(move |auth, store| {
            let who = auth.principal(&device)?.expect("an active device");
            Ok(match msg {
                ClientMsg::Hello { cursor, key } => {
                    // As the session does: the key is registered to the device before anything else.
                    auth.register_key(&device, &key)?;
                    let (now, frames) = session::updates(auth, store, &who, cursor)?;
                    vec![ServerMsg::Welcome {
                        epoch: auth.epoch()?,
                        cursor: now,
                        docs: frames.into_iter().flatten().collect(),
                        more: false,
                        you: who.author(),
                        directory: auth.directory(&who.org_id)?,
                    }]
                }
                ClientMsg::Push { req, docs } => vec![ServerMsg::Ack {
                    req,
                    results: session::push(auth, store, &who, docs, &deliveries, &events)?,
                }],
                ClientMsg::Applied { .. } => Vec::new(),
            })
        })
        .await
        .unwrap();
    replies
        .into_iter()
        .map(|m| protocol::decode(&protocol::encode(&m)).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_and_session_speak_the_protocol_without_sockets() {
    let server = TestServer::start().await;
    let (device, token) = server.device_with_id("u-foreman-hz-01").await;
    let dir = tempfile::tempdir().unwrap();
    let mut p = phone(dir.path(), "foreman", &server.url(), &token);
    let mut engine = Engine::new();

    // Hello → Welcome with the site's master data.
    let hello = engine.hello(&p).unwrap();
    assert_eq!(
        hello,
        ClientMsg::Hello {
            cursor: 0,
            key: p.public_key()
        }
    );
    for reply in exchange(&server, &device, hello).await {
        let back = engine.receive(&mut p, reply).unwrap();
        assert!(matches!(back[..], [ClientMsg::Applied { .. }]));
    }
    assert!(engine.idle());
    assert!(p.roster(&hz()).is_ok());
    // The welcome said who the device is: the phone writes as that user from now on.
    assert_eq!(p.author().map(|a| a.user_id.as_str()), Some("u-foreman-hz-01"));
    assert_eq!(p.user(), "崔贵");
    assert!(engine.push(&mut p).unwrap().is_empty(), "nothing to push yet");

    // A day of work: exactly one push frame, one document, acknowledged in one round trip.
    for n in 1..=30 {
        p.add_labor(
            &entry("2026-12-01", &format!("w-{n:04}"), "site-hz-01/wi-4.1", "1.0"),
            None,
        )
        .unwrap();
    }
    let pushes = engine.push(&mut p).unwrap();
    assert_eq!(pushes.len(), 1);
    let frame = protocol::encode(&pushes[0]);
    eprintln!(
        "a 30-line day pushed in a {} byte frame ({} per line)",
        frame.len(),
        frame.len() / 30
    );
    assert!(!engine.idle(), "a push is in flight");
    let replies = exchange(&server, &device, pushes[0].clone()).await;
    let [ServerMsg::Ack { results, .. }] = &replies[..] else {
        panic!("{replies:?}")
    };
    assert!(matches!(results[..], [DocResult::Synced(_)]));
    engine.receive(&mut p, replies[0].clone()).unwrap();
    assert!(engine.idle());
    assert!(p.pending().unwrap().is_empty());

    // Pushing the same thing again changes nothing on the server.
    let before = server.store(|s| s.change_cursor().unwrap()).await;
    exchange(&server, &device, pushes[0].clone()).await;
    assert_eq!(server.store(|s| s.change_cursor().unwrap()).await, before, "idempotent");
    server.stop().await;
}
