//! A simulated phone: a real WebSocket speaking the sync protocol, with its documents' bytes made
//! beforehand, so that the load generator spends its time on the wire, not in a store.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use sitesync_core::signing::Keypair;
use sitesync_core::sync::protocol::{self, ClientMsg, DocResult, DocSync, ServerMsg, hashes, hex_heads};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One device's connection and what it has received.
pub struct Device {
    socket: Socket,
    /// The last request number used.
    req: u64,
    /// Documents received from the server (welcome and live updates): their latest heads and when.
    pub received: HashMap<String, (Vec<String>, Instant)>,
    /// Bytes of frames received.
    pub bytes_in: usize,
    /// The server change cursor this device has applied.
    pub cursor: u64,
    /// Documents received in live updates (`Changed`, not the welcome): the fan-out this device
    /// took in.
    pub deliveries: usize,
    /// The device's signing key, registered by its hello; its edits are made and signed under it.
    key: Keypair,
}

impl Device {
    /// Connects with a device token, as the device whose store holds `key`.
    pub async fn connect(addr: SocketAddr, token: &str, key: Keypair) -> Result<Device> {
        let mut req = format!("ws://{addr}/v1/sync").into_client_request()?;
        req.headers_mut()
            .insert("authorization", format!("Bearer {token}").parse()?);
        let (socket, _) = tokio_tungstenite::connect_async_with_config(req, None, true)
            .await
            .context("connect")?;
        Ok(Device {
            socket,
            req: 0,
            received: HashMap::new(),
            bytes_in: 0,
            cursor: 0,
            deliveries: 0,
            key,
        })
    }

    /// The device's signing key.
    pub fn key(&self) -> &Keypair {
        &self.key
    }

    async fn send(&mut self, msg: &ClientMsg) -> Result<()> {
        self.socket.send(Message::Binary(protocol::encode(msg).into())).await?;
        Ok(())
    }

    /// The next server message (pings are answered by the socket); `None` after `wait`.
    async fn next(&mut self, wait: Duration) -> Result<Option<ServerMsg>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let frame = match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Err(_) => return Ok(None),
                Ok(f) => f,
            };
            match frame {
                Some(Ok(Message::Binary(b))) => {
                    self.bytes_in += b.len();
                    return Ok(Some(protocol::decode(&b)?));
                }
                Some(Ok(Message::Close(_))) | None => bail!("the server closed the connection"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
            }
        }
    }

    /// Records documents and confirms them up to `cursor` (`None`: the welcome of a first sync
    /// that more frames complete, confirmed by the last), as a phone does after storing them.
    async fn take(&mut self, cursor: Option<u64>, docs: Vec<DocSync>) -> Result<()> {
        let now = Instant::now();
        for d in docs {
            self.received.insert(d.doc, (hex_heads(&d.heads), now));
        }
        let Some(cursor) = cursor else { return Ok(()) };
        self.cursor = self.cursor.max(cursor);
        self.send(&ClientMsg::Applied { cursor }).await
    }

    /// Says hello with `cursor` and takes in the welcome (all of its frames).
    pub async fn hello(&mut self, cursor: u64) -> Result<u64> {
        self.send(&ClientMsg::Hello {
            cursor,
            key: self.key.public(),
        })
        .await?;
        // A first sync split over frames ends with the `Changed` that reaches the welcome's cursor.
        let mut until = None;
        let mut at = 0;
        while until.is_none() || until.is_some_and(|u| at < u) {
            match self.next(Duration::from_secs(120)).await?.context("no welcome")? {
                ServerMsg::Welcome {
                    cursor: now,
                    docs,
                    more: m,
                    ..
                } => {
                    at = if m { 0 } else { now };
                    until = Some(now);
                    // A returning device's catch-up is fan-out too; a first sync is not.
                    if cursor > 0 {
                        self.deliveries += docs.len();
                    }
                    self.take((!m).then_some(now), docs).await?;
                }
                ServerMsg::Changed { cursor: now, docs } => {
                    at = now;
                    if cursor > 0 {
                        self.deliveries += docs.len();
                    }
                    self.take(Some(now), docs).await?;
                }
                other => bail!("expected a welcome, got {other:?}"),
            }
        }
        Ok(at)
    }

    /// Pushes documents and waits for the acknowledgement (taking in live updates meanwhile);
    /// returns the round-trip time and the results.
    pub async fn push(&mut self, docs: Vec<DocSync>) -> Result<(Duration, Vec<DocResult>)> {
        self.req += 1;
        let req = self.req;
        let start = Instant::now();
        self.send(&ClientMsg::Push { req, docs }).await?;
        loop {
            match self
                .next(Duration::from_secs(120))
                .await?
                .context("no ack within 120 s")?
            {
                ServerMsg::Ack { req: r, results } if r == req => {
                    // The acknowledgement carries the server's heads, which the device now holds
                    // (a phone merges what came with it): its own edit counts as received.
                    let now = Instant::now();
                    for r in &results {
                        if let DocResult::Synced(d) | DocResult::Partial { update: d, .. } = r {
                            self.received.insert(d.doc.clone(), (hex_heads(&d.heads), now));
                        }
                    }
                    return Ok((start.elapsed(), results));
                }
                ServerMsg::Changed { cursor, docs } => self.take_live(cursor, docs).await?,
                ServerMsg::Error { code, message } => bail!("server error {code:?}: {message}"),
                _ => {}
            }
        }
    }

    /// [`Device::take`] for a live update, counted as deliveries.
    async fn take_live(&mut self, cursor: u64, docs: Vec<DocSync>) -> Result<()> {
        self.deliveries += docs.len();
        self.take(Some(cursor), docs).await
    }

    /// Takes in live updates until `deadline` (a device between two edits).
    pub async fn listen_until(&mut self, deadline: tokio::time::Instant) -> Result<()> {
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            match self.next(left).await? {
                None => return Ok(()),
                Some(ServerMsg::Changed { cursor, docs }) => self.take_live(cursor, docs).await?,
                Some(ServerMsg::Error { code, message }) => bail!("server error {code:?}: {message}"),
                Some(_) => {}
            }
        }
    }

    /// Takes in live updates until `stop` turns true (a phone that stays connected while other
    /// devices push).
    pub async fn listen_while(&mut self, stop: &mut tokio::sync::watch::Receiver<bool>) -> Result<()> {
        loop {
            let msg = tokio::select! {
                _ = stop.wait_for(|s| *s) => return Ok(()),
                msg = self.next(Duration::from_secs(3600)) => msg?,
            };
            match msg {
                Some(ServerMsg::Changed { cursor, docs }) => self.take_live(cursor, docs).await?,
                Some(ServerMsg::Error { code, message }) => bail!("server error {code:?}: {message}"),
                _ => {}
            }
        }
    }

    /// Takes in live updates until `done` holds or nothing arrives for `quiet`.
    pub async fn listen(&mut self, quiet: Duration, mut done: impl FnMut(&Device) -> bool) -> Result<()> {
        while !done(self) {
            match self.next(quiet).await? {
                None => break,
                Some(ServerMsg::Changed { cursor, docs }) => self.take_live(cursor, docs).await?,
                Some(ServerMsg::Error { code, message }) => bail!("server error {code:?}: {message}"),
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Closes the connection.
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}

/// A push of a whole new document.
pub fn new_doc(doc: &crate::workload::DayDoc) -> DocSync {
    DocSync {
        doc: doc.id.to_string(),
        base: Vec::new(),
        heads: hashes(&doc.heads),
        changes: doc.bytes.clone(),
        sigs: doc.sigs.clone(),
    }
}

/// A push of edit `k` of a chain.
pub fn edit(e: &crate::workload::Edits, k: usize) -> DocSync {
    DocSync {
        doc: e.id.to_string(),
        base: hashes(&e.heads[k]),
        heads: hashes(&e.heads[k + 1]),
        changes: e.changes[k].clone(),
        sigs: vec![e.sigs[k].clone()],
    }
}

/// Whether every result is `Synced` (a `Partial` one had changes refused: an error of the bench).
pub fn all_synced(results: &[DocResult]) -> bool {
    results.iter().all(|r| matches!(r, DocResult::Synced(_)))
}

/// Percentile (0–100) of durations, in milliseconds.
pub fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}
