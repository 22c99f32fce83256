//! The phone's engine against the server's own sync connection (`sitesync_server::sync_conn`) with
//! no sockets at all: messages are handed across in memory, encoded and decoded as on the wire, and
//! the server side runs exactly what its WebSocket loop runs (`socket::drive`), so the protocol can
//! be checked step by step.

use sitesync_core::Store;
use sitesync_core::sync::Engine;
use sitesync_core::sync::protocol::{self, ClientMsg, DocResult, ServerMsg};
use sitesync_server::sync_conn::socket::drive;
use sitesync_server::sync_conn::{Input, SyncConn};
use sitesync_tests::harness::{TestServer, phone};

use crate::*;

/// A device's connection to `server`, as the WebSocket handler makes it.
fn conn(server: &TestServer, device: &str) -> SyncConn {
    SyncConn::new(
        device.to_string(),
        server.state.guard().limits(),
        server.state.deliveries(),
    )
}

/// Hands one client message to the connection as a frame and returns the server's replies, decoded
/// from their wire form.
async fn exchange(server: &TestServer, conn: &mut SyncConn, msg: &ClientMsg) -> Vec<ServerMsg> {
    let replies = drive(&server.state, conn, Input::Frame(protocol::encode(msg)))
        .await
        .unwrap_or_else(|last| panic!("the connection closed: {last:?}"));
    wire(replies)
}

fn wire(msgs: Vec<ServerMsg>) -> Vec<ServerMsg> {
    msgs.into_iter()
        .map(|m| protocol::decode(&protocol::encode(&m)).unwrap())
        .collect()
}

/// Hands every server message to the phone's engine and what the engine answers back to the
/// connection, until neither has anything more to say.
async fn converse(server: &TestServer, conn: &mut SyncConn, engine: &mut Engine, p: &mut Store, msgs: Vec<ServerMsg>) {
    let mut pending = msgs;
    while !pending.is_empty() {
        let mut next = Vec::new();
        for reply in pending {
            for back in engine.receive(p, reply).unwrap() {
                next.extend(exchange(server, conn, &back).await);
            }
        }
        pending = next;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_and_sync_connection_speak_the_protocol_without_sockets() {
    let server = TestServer::start().await;
    let (device, token) = server.device_with_id("u-foreman-hz-01").await;
    let dir = tempfile::tempdir().unwrap();
    let mut p = phone(dir.path(), "foreman", &server.url(), &token);
    let mut engine = Engine::new();
    let mut foreman = conn(&server, &device);

    // Hello → Welcome with the site's master data; the engine confirms it with `Applied`.
    let hello = engine.hello(&p).unwrap();
    assert_eq!(
        hello,
        ClientMsg::Hello {
            cursor: 0,
            key: p.public_key()
        }
    );
    let welcome = exchange(&server, &mut foreman, &hello).await;
    assert!(matches!(welcome[..], [ServerMsg::Welcome { .. }]), "{welcome:?}");
    for reply in welcome {
        let back = engine.receive(&mut p, reply).unwrap();
        assert!(matches!(back[..], [ClientMsg::Applied { .. }]));
        for b in back {
            assert!(
                exchange(&server, &mut foreman, &b).await.is_empty(),
                "a receipt is not answered"
            );
        }
    }
    assert!(engine.idle());
    assert!(p.roster(&hz()).is_ok());
    // The welcome said who the device is: the phone writes as that user from now on.
    assert_eq!(p.author().map(|a| a.user_id.as_str()), Some("u-foreman-hz-01"));
    assert_eq!(p.user(), "崔贵");
    assert!(engine.push(&mut p).unwrap().is_empty(), "nothing to push yet");

    // The site manager's phone is connected too, and hears of the foreman's push live.
    let (manager_device, manager_token) = server.device_with_id("u-manager-hz-01").await;
    let mut q = phone(dir.path(), "manager", &server.url(), &manager_token);
    let mut manager_engine = Engine::new();
    let mut manager = conn(&server, &manager_device);
    let hello = manager_engine.hello(&q).unwrap();
    let welcome = exchange(&server, &mut manager, &hello).await;
    converse(&server, &mut manager, &mut manager_engine, &mut q, welcome).await;
    assert!(manager_engine.idle());
    let (mut events, mut own_events) = (server.state.subscribe_events(), server.state.subscribe_events());

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
    let replies = exchange(&server, &mut foreman, &pushes[0]).await;
    let [ServerMsg::Ack { results, .. }] = &replies[..] else {
        panic!("{replies:?}")
    };
    assert!(matches!(results[..], [DocResult::Synced(_)]));
    engine.receive(&mut p, replies[0].clone()).unwrap();
    assert!(engine.idle());
    assert!(p.pending().unwrap().is_empty());

    // The push's event, handed to the manager's connection, is forwarded as one `Changed` holding
    // the day, from the event alone; the manager's phone then has all thirty lines.
    let event = events.try_recv().expect("the push sent an event");
    let live = wire(
        drive(&server.state, &mut manager, Input::Events(vec![event]))
            .await
            .unwrap(),
    );
    let [ServerMsg::Changed { docs, .. }] = &live[..] else {
        panic!("{live:?}")
    };
    assert_eq!(docs.len(), 1);
    converse(&server, &mut manager, &mut manager_engine, &mut q, live).await;
    assert_eq!(q.day(&hz(), d("2026-12-01")).unwrap().labor.len(), 30);
    // The foreman's own connection forwards nothing of it: the acknowledgement said it all.
    let event = own_events.try_recv().expect("the push sent an event");
    let own = drive(&server.state, &mut foreman, Input::Events(vec![event]))
        .await
        .unwrap();
    assert!(own.is_empty(), "{own:?}");
    assert!(
        drive(&server.state, &mut foreman, Input::Moved(0))
            .await
            .unwrap()
            .is_empty(),
        "a cursor the connection is past reads nothing"
    );

    // Pushing the same thing again changes nothing on the server.
    let before = server.store(|s| s.change_cursor().unwrap()).await;
    exchange(&server, &mut foreman, &pushes[0]).await;
    assert_eq!(server.store(|s| s.change_cursor().unwrap()).await, before, "idempotent");

    // A revoked device is cut off at its next message, with the reason.
    let revoked = device.clone();
    server.state.auth(move |a| a.revoke_device(&revoked)).await.unwrap();
    let last = drive(&server.state, &mut foreman, Input::Frame(protocol::encode(&pushes[0])))
        .await
        .unwrap_err();
    assert!(
        matches!(&last[..], [ServerMsg::Error { message, .. }] if message == "device revoked"),
        "{last:?}"
    );
    server.stop().await;
}

/// Workers `workers` logged on one day, one push each; returns the push events, one per push.
async fn pushes_in_steps(
    server: &TestServer,
    engine: &mut Engine,
    conn: &mut SyncConn,
    p: &mut Store,
    workers: std::ops::RangeInclusive<usize>,
) -> Vec<std::sync::Arc<sitesync_server::state::PushEvent>> {
    let mut events = server.state.subscribe_events();
    let mut out = Vec::new();
    for k in workers {
        p.add_labor(
            &entry("2026-12-02", &format!("w-{k:04}"), "site-hz-01/wi-4.1", "1.0"),
            None,
        )
        .unwrap();
        let pushes = engine.push(p).unwrap();
        let replies = exchange(server, conn, &pushes[0]).await;
        for r in replies {
            engine.receive(p, r).unwrap();
        }
        out.push(events.try_recv().expect("the push sent an event"));
    }
    out
}

/// A device whose connection is handed several push events on one document at once gets one
/// update for it, which the phone's engine applies and confirms with one receipt; a device that
/// stops confirming gets nothing more queued, then everything it missed from the store once it
/// confirms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_goes_out_as_one_update_per_document_and_a_slow_reader_catches_up_from_the_store() {
    let server = TestServer::start_with_limits(sitesync_server::limits::Limits {
        unconfirmed_updates: 1,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut said_hello = Vec::new();
    for user in ["u-foreman-hz-01", "u-manager-hz-01"] {
        let (device, token) = server.device_with_id(user).await;
        let mut store = phone(dir.path(), user, &server.url(), &token);
        let mut engine = Engine::new();
        let mut c = conn(&server, &device);
        let hello = engine.hello(&store).unwrap();
        let welcome = exchange(&server, &mut c, &hello).await;
        converse(&server, &mut c, &mut engine, &mut store, welcome).await;
        said_hello.push((store, engine, c));
    }
    let [
        (mut p, mut foreman_engine, mut foreman),
        (mut q, mut engine, mut manager),
    ] = said_hello.try_into().ok().unwrap();

    // Three pushes of one day, handed to the manager's connection together: one update.
    let events = pushes_in_steps(&server, &mut foreman_engine, &mut foreman, &mut p, 1..=3).await;
    let live = wire(drive(&server.state, &mut manager, Input::Events(events)).await.unwrap());
    let [ServerMsg::Changed { docs, .. }] = &live[..] else {
        panic!("{live:?}")
    };
    assert_eq!(docs.len(), 1, "one update for the day: {docs:?}");
    let back = engine.receive(&mut q, live[0].clone()).unwrap();
    assert!(matches!(back[..], [ClientMsg::Applied { .. }]), "one receipt: {back:?}");
    assert_eq!(q.day(&hz(), d("2026-12-02")).unwrap().labor.len(), 3);
    for b in back {
        assert!(exchange(&server, &mut manager, &b).await.is_empty());
    }

    // The manager's phone stops confirming: with its one unconfirmed update, what follows is not
    // queued (nothing is sent, whatever arrives).
    let events = pushes_in_steps(&server, &mut foreman_engine, &mut foreman, &mut p, 4..=6).await;
    let first = wire(
        drive(&server.state, &mut manager, Input::Events(vec![events[0].clone()]))
            .await
            .unwrap(),
    );
    assert!(matches!(first[..], [ServerMsg::Changed { .. }]), "{first:?}");
    for e in &events[1..] {
        let held = drive(&server.state, &mut manager, Input::Events(vec![e.clone()]))
            .await
            .unwrap();
        assert!(held.is_empty(), "{held:?}");
    }
    // It confirms: the receipt brings the rest, read from the store, and the phone has every line.
    let back = engine.receive(&mut q, first[0].clone()).unwrap();
    let [receipt] = &back[..] else { panic!("{back:?}") };
    let rest = exchange(&server, &mut manager, receipt).await;
    assert!(matches!(rest[..], [ServerMsg::Changed { .. }]), "{rest:?}");
    converse(&server, &mut manager, &mut engine, &mut q, rest).await;
    assert_eq!(q.day(&hz(), d("2026-12-02")).unwrap().labor.len(), 6);
    assert_eq!(
        q.heads(&"day|site-hz-01|2026-12-02".parse().unwrap()).unwrap(),
        p.heads(&"day|site-hz-01|2026-12-02".parse().unwrap()).unwrap()
    );
    server.stop().await;
}

/// A first sync split over many frames ends with its last frame, not the first after the welcome,
/// and each frame carries the cursor it completes: a phone whose connection drops half-way stores
/// only what it has and gets the rest on its next hello.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_sync_over_many_frames_ends_with_the_last_and_resumes_where_it_dropped() {
    let server = TestServer::start_with_limits(sitesync_server::limits::Limits {
        // One document a frame.
        frame_bytes: 1,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (device, token) = server.device_with_id("u-foreman-hz-01").await;
    let mut p = phone(dir.path(), "foreman", &server.url(), &token);
    let mut engine = Engine::new();
    let mut foreman = conn(&server, &device);
    let welcome = exchange(&server, &mut foreman, &engine.hello(&p).unwrap()).await;
    converse(&server, &mut foreman, &mut engine, &mut p, welcome).await;
    let days = ["2026-12-01", "2026-12-02", "2026-12-03", "2026-12-04"];
    for day in days {
        p.add_labor(&entry(day, "w-0001", "site-hz-01/wi-4.1", "1.0"), None)
            .unwrap();
    }
    for push in engine.push(&mut p).unwrap() {
        for r in exchange(&server, &mut foreman, &push).await {
            engine.receive(&mut p, r).unwrap();
        }
    }
    assert!(engine.idle() && p.pending().unwrap().is_empty());

    // The manager's phone: the welcome and a frame each for the site and the four days.
    let (device, token) = server.device_with_id("u-manager-hz-01").await;
    let mut q = phone(dir.path(), "manager", &server.url(), &token);
    let mut first = Engine::new();
    let mut c = conn(&server, &device);
    let frames = exchange(&server, &mut c, &first.hello(&q).unwrap()).await;
    let Some(ServerMsg::Welcome {
        cursor: end,
        more: true,
        ..
    }) = frames.first()
    else {
        panic!("a first sync in several frames: {frames:?}")
    };
    let end = *end;
    assert!(frames.len() >= 5, "{} frames", frames.len());
    let cursors: Vec<u64> = frames[1..]
        .iter()
        .map(|m| match m {
            ServerMsg::Changed { cursor, .. } => *cursor,
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(cursors.windows(2).all(|w| w[0] <= w[1]), "{cursors:?}");
    assert_eq!(cursors.last(), Some(&end), "the last frame completes the welcome");
    assert!(
        cursors[0] < end,
        "an earlier frame claims only what it holds: {cursors:?}"
    );

    // The phone takes the welcome and one more frame, then the connection drops.
    for msg in &frames[..2] {
        first.receive(&mut q, msg.clone()).unwrap();
        assert!(!first.idle(), "the first sync is not over after {msg:?}");
    }
    let ClientMsg::Hello { cursor: stored, .. } = Engine::new().hello(&q).unwrap() else {
        panic!("a hello")
    };
    assert_eq!(
        stored, cursors[0],
        "the phone stored the cursor of the frame it applied"
    );

    // Its next connection sends what it lacks, and the phone ends up with all four days.
    let mut again = Engine::new();
    let mut c = conn(&server, &device);
    let rest = exchange(&server, &mut c, &again.hello(&q).unwrap()).await;
    converse(&server, &mut c, &mut again, &mut q, rest).await;
    assert!(again.idle());
    for day in days {
        assert_eq!(q.day(&hz(), d(day)).unwrap().labor.len(), 1, "{day}");
    }

    // A phone that reads every frame is idle only after the last, and stores the welcome's cursor.
    let (device, token) = server.device_with_id("u-manager-hz-01").await;
    let mut r = phone(dir.path(), "manager-2", &server.url(), &token);
    let mut whole = Engine::new();
    let mut c = conn(&server, &device);
    let frames = exchange(&server, &mut c, &whole.hello(&r).unwrap()).await;
    let n = frames.len();
    for (i, msg) in frames.into_iter().enumerate() {
        for back in whole.receive(&mut r, msg).unwrap() {
            exchange(&server, &mut c, &back).await;
        }
        assert_eq!(whole.idle(), i + 1 == n, "idle after frame {i} of {n}");
    }
    let ClientMsg::Hello { cursor, .. } = Engine::new().hello(&r).unwrap() else {
        panic!("a hello")
    };
    assert_eq!(cursor, end);
    server.stop().await;
}
