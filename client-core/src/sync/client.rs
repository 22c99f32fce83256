//! The tokio shell around the [`Engine`]: a WebSocket to the server, one exchange (`sync_once`) or a
//! long-lived loop (`watch`) that reconnects with exponential backoff and jitter and pushes as soon
//! as local writes appear.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::error::{Error, Result};
use crate::store::Store;
use crate::sync::backoff::Refusals;
use crate::sync::engine::{Engine, Progress, SyncEvent, keys};
use crate::sync::protocol::{self, ClientMsg, ServerMsg};
use crate::sync::status::{Binding, SyncStatus, UpdateState, binding, host_of, is_loopback_http};
use crate::sync::tls;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long one exchange may take before it is abandoned (and retried later).
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(60);

/// The WebSocket URL of a server base URL.
fn sync_url(server: &str) -> String {
    let base = server.trim_end_matches('/');
    let ws = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_string()
    };
    format!("{ws}/v1/sync")
}

/// An open sync connection and whether the server's upgrade said a newer protocol exists.
struct Connected {
    socket: Socket,
    /// The upgrade's [`protocol::UPDATE_HEADER`] said `available`.
    update_available: bool,
    /// The upgrade's [`protocol::CREDENTIALS_HEADER`].
    credentials_tag: Option<String>,
}

/// Opens an authenticated sync connection: TLS for `https://` (see `sync::tls` for whom it trusts),
/// plain only to a server on this machine. Says the protocol version it speaks, so a server that no
/// longer speaks it answers HTTP 426 (`Error::UpdateRequired`). (Takes the binding, not the store:
/// a future that held a shared borrow of the store across an await could not move between threads.)
async fn connect(b: Binding, pending: usize) -> Result<Connected> {
    let connector = if b.server.starts_with("https://") {
        Connector::Rustls(tls::client_config(b.ca_cert.as_deref())?)
    } else if is_loopback_http(&b.server) {
        Connector::Plain
    } else {
        // A store bound before plain text to other hosts was refused: never send the token in clear.
        return Err(Error::Tls {
            reason: format!(
                "{} is plain http:// to another host: bind the store to https://",
                b.server
            ),
        });
    };
    let mut request = sync_url(&b.server)
        .into_client_request()
        .map_err(|e| Error::Sync(e.to_string()))?;
    let auth = format!("Bearer {}", b.token)
        .parse()
        .map_err(|_| Error::invalid("token", "not a valid header value"))?;
    request.headers_mut().insert("authorization", auth);
    // What the server's devices page shows of this phone (docs/protocol.md, "Headers").
    let app = concat!("sitesync-core/", env!("CARGO_PKG_VERSION"));
    for (name, value) in [
        ("x-sitesync-app", app.to_string()),
        ("x-sitesync-protocol", protocol::VERSION.to_string()),
        ("x-sitesync-pending", pending.to_string()),
    ] {
        if let Ok(v) = value.parse() {
            request.headers_mut().insert(name, v);
        }
    }
    match tokio_tungstenite::connect_async_tls_with_config(request, None, true, Some(connector)).await {
        Ok((socket, resp)) => Ok(Connected {
            socket,
            update_available: resp
                .headers()
                .get(protocol::UPDATE_HEADER)
                .is_some_and(|v| v.as_bytes() == b"available"),
            credentials_tag: resp
                .headers()
                .get(protocol::CREDENTIALS_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        }),
        Err(tungstenite::Error::Http(resp)) if resp.status() == 401 => {
            Err(Error::Unauthorized("the server refused this device's token".into()))
        }
        Err(tungstenite::Error::Http(resp)) if resp.status() == 426 => {
            let reason = resp
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .filter(|t| !t.trim().is_empty())
                .map(|t| t.trim().to_string())
                .unwrap_or_else(|| protocol::refusal_text(protocol::VERSION));
            Err(Error::UpdateRequired(reason))
        }
        Err(e) => match tls::explain(&e, host_of(&b.server), b.ca_cert.is_some()) {
            Some(reason) => Err(Error::Tls { reason }),
            None => Err(Error::Sync(format!("cannot reach {}: {e}", b.server))),
        },
    }
}

async fn send(socket: &mut Socket, msg: &ClientMsg) -> Result<()> {
    socket
        .send(Message::Binary(protocol::encode(msg).into()))
        .await
        .map_err(|e| Error::Sync(e.to_string()))
}

/// The next protocol message; `None` when the server closed the connection.
async fn recv(socket: &mut Socket) -> Result<Option<ServerMsg>> {
    loop {
        match socket.next().await {
            Some(Ok(Message::Binary(b))) => {
                return protocol::decode(&b)
                    .map(Some)
                    .map_err(|e| Error::Sync(format!("bad frame from server: {e}")));
            }
            Some(Ok(Message::Close(_))) | None => return Ok(None),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(Error::Sync(e.to_string())),
        }
    }
}

/// Feeds one server message to the engine and sends its replies.
async fn step(socket: &mut Socket, store: &mut Store, engine: &mut Engine, msg: ServerMsg) -> Result<()> {
    let replies = engine.receive(store, msg)?;
    for reply in &replies {
        send(socket, reply).await?;
    }
    Ok(())
}

/// Connects, takes in what changed on the server, pushes every pending document, and returns once
/// the server has acknowledged them all as durable.
pub async fn sync_once(store: &mut Store) -> Result<Progress> {
    let result = tokio::time::timeout(EXCHANGE_TIMEOUT, exchange(store)).await;
    let result = match result {
        Ok(r) => r,
        Err(_) => Err(Error::Sync(format!(
            "no answer within {} s",
            EXCHANGE_TIMEOUT.as_secs()
        ))),
    };
    match result {
        Ok((progress, credentials_tag)) => {
            store.set_meta(keys::LAST_OK, &chrono::Utc::now().to_rfc3339())?;
            store.set_meta(keys::LAST_ERROR, "")?;
            refresh_credentials(store, credentials_tag.as_deref()).await;
            // Receipts for what this phone carried from peers, now at head office, to hand back
            // to their authors over the mesh (no request when it carried nothing); a failure is
            // tried again after the next sync.
            let _ = crate::mesh::transport::fetch_receipts(store).await;
            Ok(progress)
        }
        Err(e) => {
            store.set_meta(keys::LAST_ERROR, &e.to_string())?;
            Err(e)
        }
    }
}

/// After a sync, or at a (re)connect of [`watch`]: the site mesh's certificate and revocation
/// list when they may have changed ([`crate::mesh::credentials_due`], from the upgrade's
/// `credentials_tag`), and the org's sealing key for ID-card and bank-card numbers when the phone
/// holds none (an org's key never changes). Asking after every sync cost a phone's day of 30
/// lines 62 B a line on the wire (BENCHMARKS.md). The sync itself succeeded: a server that issues
/// neither (404), or a failure here, leaves what is kept (or the mesh off) and is tried again at
/// the next sync.
async fn refresh_credentials(store: &mut Store, credentials_tag: Option<&str>) {
    let now_ms = chrono::Utc::now().timestamp_millis();
    if crate::mesh::credentials_due(store, credentials_tag, now_ms).unwrap_or(true)
        && let Ok(true) = crate::mesh::transport::fetch_credentials(store).await
        && let Some(tag) = credentials_tag
    {
        let _ = crate::mesh::keep_credentials_tag(store, tag);
    }
    if !matches!(store.org_pii_key(), Ok(Some(_))) {
        let _ = fetch_pii_key(store).await;
    }
}

/// Asks the server for the org's personal-data key (`GET /v1/org/pii-key`) and keeps it: what
/// [`Store::add_worker`] with an ID card and [`Store::put_roster`] with an account number need.
/// `Ok(false)` when the server gives none (an older server).
pub async fn fetch_pii_key(store: &mut Store) -> Result<bool> {
    let binding = store.binding()?.ok_or(Error::NotBound)?;
    let (status, body) =
        crate::sync::blobs::request(&binding, hyper::Method::GET, "/v1/org/pii-key", None, None).await?;
    if status == hyper::StatusCode::NOT_FOUND {
        return Ok(false);
    }
    if !status.is_success() {
        return Err(Error::Sync(format!("the server answered {status} for the org key")));
    }
    let key: crate::pii::OrgPiiKey =
        serde_json::from_slice(&body).map_err(|_| Error::Pii(crate::pii::PiiError::MalformedKey))?;
    store.set_org_pii_key(&key)?;
    Ok(true)
}

/// Remembers what the server said of this app's protocol version: the upgrade's notice, or a
/// refusal (HTTP 426, or an `Error { Version }` the engine already noted).
fn note_update(store: &mut Store, outcome: &Result<Connected>) -> Result<()> {
    match outcome {
        Ok(c) if c.update_available => store.set_update(UpdateState::Available),
        Err(Error::UpdateRequired(_)) => store.set_update(UpdateState::Required),
        _ => Ok(()),
    }
}

/// The sync itself, and the upgrade's [`protocol::CREDENTIALS_HEADER`].
async fn exchange(store: &mut Store) -> Result<(Progress, Option<String>)> {
    let binding = store.binding()?.ok_or(Error::NotBound)?;
    let connected = connect(binding, store.pending()?.len()).await;
    note_update(store, &connected)?;
    let Connected {
        mut socket,
        credentials_tag,
        ..
    } = connected?;
    let mut engine = Engine::new();
    let hello = engine.hello(store)?;
    send(&mut socket, &hello).await?;
    let mut pushed = false;
    loop {
        if engine.idle() {
            if pushed && engine.pending(store)?.is_empty() {
                break;
            }
            let pushes = engine.push(store)?;
            pushed = true;
            if pushes.is_empty() {
                break;
            }
            for p in &pushes {
                send(&mut socket, p).await?;
            }
        }
        match recv(&mut socket).await? {
            Some(msg) => step(&mut socket, store, &mut engine, msg).await?,
            None => return Err(Error::Sync("the server closed the connection mid-sync".into())),
        }
    }
    let _ = socket.close(None).await;
    let progress = engine.progress().clone();
    if let Some((doc, reason)) = progress.refused.first() {
        return Err(Error::Sync(format!(
            "{} document(s) refused, first {doc}: {reason}",
            progress.refused.len()
        )));
    }
    Ok((progress, credentials_tag))
}

pub use crate::sync::backoff::backoff;

/// Called with the sync status as it changes.
pub type StatusCallback = Box<dyn FnMut(&SyncStatus) + Send>;

/// Hooks for an app that runs [`watch`] in-process.
#[derive(Default)]
pub struct WatchHooks {
    /// Notified by the app after a local write, so the push goes out at once instead of at the next
    /// poll.
    pub wake: Option<std::sync::Arc<tokio::sync::Notify>>,
    /// Called with the sync status whenever the loop connects, disconnects, or finishes an exchange.
    pub on_status: Option<StatusCallback>,
}

impl std::fmt::Debug for WatchHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchHooks")
            .field("wake", &self.wake.is_some())
            .field("on_status", &self.on_status.is_some())
            .finish()
    }
}

impl WatchHooks {
    fn report(&mut self, store: &Store) {
        if let Some(f) = &mut self.on_status
            && let Ok(status) = store.sync_status()
        {
            f(&status);
        }
    }
}

/// What the [`watch`] loop tells an observer, one event per thing a person watching would want to
/// see: the connection coming and going, and what each document did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WatchEvent {
    /// Connected (or reconnected) and greeted the server.
    Connected {
        /// The server's base URL.
        server: String,
    },
    /// What the engine did on this connection.
    Sync(SyncEvent),
    /// The connection dropped, or could not be made; the loop tries again after `retry_in`.
    Disconnected {
        /// Why, as the error says it.
        reason: String,
        /// The backoff before the next attempt.
        retry_in: Duration,
    },
}

/// Keeps the store in sync until `stop` resolves: stays connected, applies live changes, pushes
/// within `poll` of a local write (written by this or any other process; at once when `hooks.wake`
/// is notified), and reconnects after failures with [`backoff`]. A document the server refuses
/// (for any reason, `Unavailable` included) is pushed again only after a backoff of its own
/// ([`Refusals`]), on this connection or the next. Fails only when the server refuses the device or
/// no longer speaks its protocol version ([`Error::UpdateRequired`]).
pub async fn watch(
    store: &mut Store,
    poll: Duration,
    hooks: WatchHooks,
    stop: impl std::future::Future<Output = ()>,
) -> Result<()> {
    watch_reporting(store, poll, hooks, |_| {}, stop).await
}

/// [`watch`], telling `on_event` of each connection, drop and document as it happens (the CLI's
/// `sync --watch` prints them). A separate function rather than a field of [`WatchHooks`], which
/// apps build field by field.
pub async fn watch_reporting(
    store: &mut Store,
    poll: Duration,
    mut hooks: WatchHooks,
    mut on_event: impl FnMut(&WatchEvent),
    stop: impl std::future::Future<Output = ()>,
) -> Result<()> {
    tokio::pin!(stop);
    let wake = hooks.wake.clone().unwrap_or_default();
    let mut attempt = 0u32;
    let mut refusals = Refusals::default();
    loop {
        let session = async {
            let binding = store.binding()?.ok_or(Error::NotBound)?;
            let server = binding.server.clone();
            let connected = connect(binding, store.pending()?.len()).await;
            note_update(store, &connected)?;
            let Connected {
                mut socket,
                credentials_tag,
                ..
            } = connected?;
            let mut engine = Engine::new();
            refusals.hold(&mut engine, std::time::Instant::now());
            let hello = engine.hello(store)?;
            send(&mut socket, &hello).await?;
            store.set_meta(binding::CONNECTED, "1")?;
            hooks.report(store);
            on_event(&WatchEvent::Connected { server });
            // The site mesh's certificate and revocation list, and the org's sealing key, at
            // every (re)connect as after `sync_once` (when they may have changed): a phone that
            // only ever watches must not keep meeting peers on a stale grant or an old list, and
            // can add a worker with his ID card. Failure leaves the kept ones.
            refresh_credentials(store, credentials_tag.as_deref()).await;
            let mut tick = tokio::time::interval(poll);
            loop {
                let push_now = tokio::select! {
                    msg = recv(&mut socket) => match msg? {
                        Some(msg) => {
                            let stepped = step(&mut socket, store, &mut engine, msg).await;
                            // What was merged or acknowledged before a failed reply still happened.
                            for e in engine.take_events() {
                                on_event(&WatchEvent::Sync(e));
                            }
                            stepped?;
                            refusals.note(&engine, std::time::Instant::now());
                            if engine.idle() && engine.pending(store)?.is_empty() {
                                store.set_meta(keys::LAST_OK, &chrono::Utc::now().to_rfc3339())?;
                                store.set_meta(keys::LAST_ERROR, "")?;
                                // In step: receipts for what was carried from peers, as after
                                // `sync_once` (no request when nothing was carried).
                                let _ = crate::mesh::transport::fetch_receipts(store).await;
                                hooks.report(store);
                            }
                            false
                        }
                        None => return Err::<(), Error>(Error::Sync("the server closed the connection".into())),
                    },
                    _ = tick.tick() => true,
                    () = wake.notified() => true,
                };
                if push_now {
                    if !refusals.is_empty() {
                        refusals.forget_done(&store.pending()?);
                        refusals.release_due(&mut engine, std::time::Instant::now());
                    }
                    let pushes = if engine.idle() { engine.push(store)? } else { Vec::new() };
                    for p in &pushes {
                        send(&mut socket, p).await?;
                    }
                }
            }
        };
        let outcome = tokio::select! {
            r = session => r,
            () = &mut stop => {
                store.set_meta(binding::CONNECTED, "0")?;
                hooks.report(store);
                return Ok(());
            }
        };
        store.set_meta(binding::CONNECTED, "0")?;
        let retry_in = match outcome {
            // Retrying cannot help these: a new token, a binding or an updated app must come first.
            Err(e @ (Error::Unauthorized(_) | Error::NotBound | Error::UpdateRequired(_))) => {
                store.set_meta(keys::LAST_ERROR, &e.to_string())?;
                hooks.report(store);
                return Err(e);
            }
            Err(e) => {
                store.set_meta(keys::LAST_ERROR, &e.to_string())?;
                attempt = attempt.saturating_add(1);
                hooks.report(store);
                let retry_in = backoff(attempt);
                on_event(&WatchEvent::Disconnected {
                    reason: e.to_string(),
                    retry_in,
                });
                retry_in
            }
            Ok(()) => {
                attempt = 0;
                hooks.report(store);
                backoff(attempt)
            }
        };
        tokio::select! {
            () = tokio::time::sleep(retry_in) => {}
            () = &mut stop => return Ok(()),
        }
    }
}
