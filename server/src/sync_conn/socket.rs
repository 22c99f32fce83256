//! The tokio shell of a sync connection: reads the WebSocket and the server's change notices, hands
//! them to the [`SyncConn`] state machine, and does what it asks (send, close, apply a push through
//! the group commit, lend it the databases on a blocking thread). Keep-alive is the shell's alone.

use std::time::Instant;

use sitesync_core::sync::protocol::{self, ErrorCode, ServerMsg};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::{self, Message};

use super::websocket::Socket;
use super::{Input, NoStores, Step, SyncConn, error, internal};
use crate::state::AppState;

/// Serves one authenticated device until it disconnects, is revoked, or the server shuts down.
pub async fn serve(state: AppState, mut socket: Socket, device_id: String) {
    let mut changes = state.watch_changes();
    let mut events = state.subscribe_events();
    let mut shutdown = state.watch_shutdown();
    let mut revocations = state.watch_revocations();
    let mut conn = SyncConn::new(device_id, state.guard().limits(), state.deliveries());
    let timing = state.timing();
    let _open = Open::count(&state);
    // When the frame being answered arrived: a push's latency runs from it to its `Ack` sent.
    let mut received = Instant::now();
    let mut last_heard = tokio::time::Instant::now();
    let mut ping = tokio::time::interval(timing.ping_every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let said_hello = conn.said_hello();
        // The keep-alive tick is taken only when nothing else is ready: what the device sent is
        // read before its silence is judged. A connection busy sending (a slow reader's fan-out)
        // or waiting for the group commit reads nothing meanwhile, and taking the tick first
        // closed, as silent, a device whose pongs and receipts were waiting in the socket. Among
        // the device, the push events and the cursor, no order (a busy site's events must not
        // starve a push, nor the device's receipts the events).
        let inputs: Vec<Input> = tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            revoked = revocations.recv() => match revoked {
                Ok(device) if device == conn.device_id() => vec![Input::Revoked],
                // Revocations missed: check this device's anyway.
                Err(broadcast::error::RecvError::Lagged(_)) => vec![Input::Revoked],
                Ok(_) | Err(broadcast::error::RecvError::Closed) => continue,
            },
            ready = next_ready(&mut socket, &mut events, &mut changes, said_hello) => match ready {
                Ready::Incoming(incoming) => {
                    last_heard = tokio::time::Instant::now();
                    received = Instant::now();
                    match incoming {
                        Some(Ok(Message::Binary(b))) => vec![Input::Frame(b.into())],
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                        Some(Ok(Message::Text(_))) => {
                            let _ = send(&mut socket, conn.version(), &error(ErrorCode::Malformed, "frames are binary")).await;
                            break;
                        }
                        Some(Ok(_)) => continue,
                    }
                }
                Ready::Event(event) => match event {
                    Ok(first) => queued_behind(first, &mut events),
                    Err(broadcast::error::RecvError::Lagged(_)) => vec![Input::Missed],
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                Ready::Moved(changed) => {
                    if changed.is_err() {
                        break;
                    }
                    vec![Input::Moved(*changes.borrow_and_update())]
                }
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > timing.idle_after {
                    tracing::info!(device = %conn.device_id(), "closing a silent sync connection");
                    break;
                }
                let pinged = tokio::time::timeout(timing.idle_after, socket.send(Message::Ping(Default::default()))).await;
                if !matches!(pinged, Ok(Ok(()))) {
                    break;
                }
                continue;
            }
        };
        // Silence is counted only while the connection listens: the time it spends on a step
        // (a push waiting for the group commit, sends to a slow reader) is not the device's. A
        // device waiting 90 s for the acknowledgement of its push in a rush was closed as silent.
        let busy = tokio::time::Instant::now();
        for input in inputs {
            // Boxed: the state of a step (store hops, the push, the rate limiter's wait) takes
            // memory only while a step runs, not in every idle connection's task.
            match Box::pin(drive(&state, &mut conn, input)).await {
                Ok(reply) => {
                    let shared = conn.take_shared();
                    // Each message is dropped once sent: a slow socket holds what is still to go,
                    // not the copies of everything this step made.
                    for (i, msg) in reply.into_iter().enumerate() {
                        let frame = match shared.iter().find(|(at, _)| *at == i) {
                            // A push event's whole update, as every site-mate gets it: encoded once.
                            Some((_, event)) if conn.version() == protocol::VERSION => event.changed_frame(),
                            _ => protocol::encode_server(conn.version(), &msg).into(),
                        };
                        // A peer that stops reading must not hold this task (and its memory) forever.
                        match tokio::time::timeout(timing.idle_after, socket.send_binary(frame)).await {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => {
                                tracing::info!(error = %e, "a sync connection's send failed");
                                return;
                            }
                            Err(_) => {
                                tracing::info!(
                                    seconds = timing.idle_after.as_secs(),
                                    "closing a sync connection whose device stopped reading"
                                );
                                return;
                            }
                        }
                        sent(&state, &msg, received);
                    }
                }
                Err(last) => {
                    for msg in last {
                        let _ = send(&mut socket, conn.version(), &msg).await;
                    }
                    close(socket).await;
                    return;
                }
            }
        }
        last_heard += busy.elapsed();
    }
    close(socket).await;
}

/// What woke a connection, besides the keep-alive tick, a revocation and the shutdown.
enum Ready {
    /// The device sent something (or went away).
    Incoming(Option<Result<Message, tungstenite::Error>>),
    /// A push event, or how many were missed.
    Event(Result<std::sync::Arc<crate::state::PushEvent>, broadcast::error::RecvError>),
    /// The store's change cursor moved (a write without a push event).
    Moved(Result<(), tokio::sync::watch::error::RecvError>),
}

/// The first of the device, the push events and the cursor to be ready, in no set order; events
/// and the cursor only once the device said hello.
async fn next_ready(
    socket: &mut Socket,
    events: &mut broadcast::Receiver<std::sync::Arc<crate::state::PushEvent>>,
    changes: &mut tokio::sync::watch::Receiver<u64>,
    said_hello: bool,
) -> Ready {
    tokio::select! {
        incoming = socket.recv() => Ready::Incoming(incoming),
        event = events.recv(), if said_hello => Ready::Event(event),
        changed = changes.changed(), if said_hello => Ready::Moved(changed),
    }
}

/// Ends the connection with the WebSocket closing handshake: sends Close, then reads (and drops)
/// what the device still sends until its Close arrives, for at most [`CLOSE_GRACE`]. Dropping the
/// socket with the device's frames unread would make the kernel answer with a reset, and a reset
/// can reach the device before the last messages it was sent (the refusal saying why), which it
/// then never reads.
async fn close(mut socket: Socket) {
    if socket.send(Message::Close(None)).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while let Some(Ok(msg)) = socket.recv().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// How long a closing connection waits for the device's side of the closing handshake.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// A push event and those already queued behind it, which go out in the same `Changed` (pushes come
/// in bursts); events missed while draining the queue are read from the store after them.
fn queued_behind(
    first: std::sync::Arc<crate::state::PushEvent>,
    events: &mut broadcast::Receiver<std::sync::Arc<crate::state::PushEvent>>,
) -> Vec<Input> {
    let mut batch = vec![first];
    loop {
        match events.try_recv() {
            Ok(e) => batch.push(e),
            Err(broadcast::error::TryRecvError::Lagged(_)) => return vec![Input::Events(batch), Input::Missed],
            Err(_) => return vec![Input::Events(batch)],
        }
    }
}

/// Hands `input` to the connection and carries out its steps until it has something to send:
/// `Ok` with the messages to send, `Err` with the last ones before closing. This is all of the sync
/// logic a WebSocket connection runs, without the socket.
pub async fn drive(state: &AppState, conn: &mut SyncConn, input: Input) -> Result<Vec<ServerMsg>, Vec<ServerMsg>> {
    let mut step = conn.handle(input, Instant::now(), &mut NoStores);
    loop {
        step = match step {
            Step::Send(msgs) => return Ok(msgs),
            Step::Close(last) => {
                if last.iter().any(|m| {
                    matches!(
                        m,
                        ServerMsg::Error {
                            code: ErrorCode::RateLimited,
                            ..
                        }
                    )
                }) {
                    state.metrics().rate_limited.push_documents.inc();
                }
                return Err(last);
            }
            Step::NeedStores { throttle } => {
                if throttle && state.guard().sync_message(conn.device_id()).await {
                    state.metrics().rate_limited.sync_messages.inc();
                }
                // The connection goes to the blocking thread and comes back with its step; a panic
                // there loses it, and the connection closes.
                let mut lent = std::mem::take(conn);
                let resumed = state
                    .with_stores(move |stores| {
                        let step = lent.resume(Instant::now(), stores);
                        (lent, step)
                    })
                    .await;
                match resumed {
                    Ok((back, step)) => {
                        *conn = back;
                        step
                    }
                    Err(e) => return Err(vec![internal(e)]),
                }
            }
            Step::Push { who, docs } => {
                let results = state.push(who, docs).await;
                match &results {
                    Ok(r) => state.metrics().pushes.count(r),
                    Err(_) => {
                        state.metrics().pushes.failed.inc();
                    }
                }
                conn.handle(Input::Pushed(results), Instant::now(), &mut NoStores)
            }
        };
    }
}

/// Counts a message sent: a live update (fan-out), or a push's acknowledgement and its latency from
/// `received`.
fn sent(state: &AppState, msg: &ServerMsg, received: Instant) {
    let m = state.metrics();
    match msg {
        ServerMsg::Changed { .. } => {
            m.changed_frames.inc();
        }
        ServerMsg::Ack { .. } => crate::metrics::observe(&m.push_seconds, received.elapsed()),
        _ => {}
    }
}

/// One open sync connection, counted in the connections gauge until dropped.
struct Open(prometheus_client::metrics::gauge::Gauge);

impl Open {
    fn count(state: &AppState) -> Open {
        let gauge = state.metrics().connections.clone();
        gauge.inc();
        Open(gauge)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Sends `msg` framed in `version`, the one the device speaks.
async fn send(socket: &mut Socket, version: u8, msg: &ServerMsg) -> Result<(), tungstenite::Error> {
    socket.send_binary(protocol::encode_server(version, msg).into()).await
}
