//! The peer exchange over a byte stream: any `AsyncRead + AsyncWrite` (a TCP connection here; the
//! app's Bluetooth or Nearby stream through the mobile API), frames preceded by their length (u32,
//! big-endian). Also fetches this phone's certificate, and receipts for the documents it carried,
//! from head office after a sync.
//!
//! Traffic is not encrypted yet: what authenticates a peer is its certificate and its signature
//! over a fresh challenge, and every change carries its author's signature, so a listener on the
//! hotspot can read the day but can neither pass for a phone nor alter what it carries.

use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::PeerError;
use super::engine::{PeerEngine, PeerReport};
use super::protocol::PeerMsg;
use crate::store::Store;
use crate::sync::protocol::{self, MAX_FRAME};

/// How long one exchange may take, start to end.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(120);

/// Reads one length-prefixed frame; `None` at a clean end of stream.
async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<Vec<u8>>, PeerError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(PeerError::Protocol(format!("a frame of {len} bytes")));
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf).await?;
    Ok(Some(buf))
}

async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, frame: &[u8]) -> std::io::Result<()> {
    w.write_all(&(frame.len() as u32).to_be_bytes()).await?;
    w.write_all(frame).await?;
    w.flush().await
}

/// Runs one exchange with the peer at the other end of `stream`, until both sides sent their
/// documents, the peer refused, or [`EXCHANGE_TIMEOUT`] passed.
pub async fn exchange<S>(store: &mut Store, stream: S) -> Result<PeerReport, PeerError>
where
    S: AsyncRead + AsyncWrite + Send,
{
    exchange_shared(&Mutex::new(store), stream).await
}

/// [`exchange`] on a store other exchanges share: the store is locked only while the engine takes
/// one message (never across an await), so concurrent exchanges interleave whole store writes and
/// each stays as durable and consistent as a lone one.
async fn exchange_shared<S>(store: &Mutex<&mut Store>, stream: S) -> Result<PeerReport, PeerError>
where
    S: AsyncRead + AsyncWrite + Send,
{
    match tokio::time::timeout(EXCHANGE_TIMEOUT, run(store, stream)).await {
        Ok(r) => r,
        Err(_) => Err(PeerError::Protocol(format!(
            "no end of exchange within {} s",
            EXCHANGE_TIMEOUT.as_secs()
        ))),
    }
}

/// Runs `f` on the shared store. A panic in an earlier holder poisons nothing worth refusing: the
/// store's writes are transactions, so what it left is whole.
fn with_store<T>(store: &Mutex<&mut Store>, f: impl FnOnce(&mut Store) -> T) -> T {
    f(&mut store.lock().unwrap_or_else(|e| e.into_inner()))
}

async fn run<S>(store: &Mutex<&mut Store>, stream: S) -> Result<PeerReport, PeerError>
where
    S: AsyncRead + AsyncWrite + Send,
{
    let (mut r, mut w) = tokio::io::split(stream);
    let (engine, hello) = with_store(store, |s| PeerEngine::start(s, chrono::Utc::now().timestamp_millis()))?;
    // Writing runs beside reading: both sides send their documents at once, and neither may wait
    // for the other to read before it reads.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let writer = async move {
        while let Some(frame) = rx.recv().await {
            write_frame(&mut w, &frame).await?;
        }
        w.shutdown().await
    };
    let reader = async move {
        let mut engine = engine;
        let _ = tx.send(protocol::encode(&hello));
        while !engine.done() {
            let Some(frame) = read_frame(&mut r).await? else {
                return Err(PeerError::Protocol(
                    "the peer closed the connection mid-exchange".into(),
                ));
            };
            let msg: PeerMsg = protocol::decode(&frame).map_err(|e| PeerError::Protocol(e.to_string()))?;
            match with_store(store, |s| engine.receive(s, msg)) {
                Ok(replies) => {
                    for m in replies {
                        let _ = tx.send(protocol::encode(&m));
                    }
                }
                Err(e) => {
                    if let Some(m) = engine.refusal() {
                        let _ = tx.send(protocol::encode(&m));
                    }
                    return Err(e);
                }
            }
        }
        Ok(engine.report().clone())
    };
    let (written, report) = tokio::join!(writer, reader);
    let report = report?;
    written?;
    Ok(report)
}

/// One exchange with the phone listening at `addr` (`host:port`).
pub async fn sync_with(store: &mut Store, addr: &str) -> Result<PeerReport, PeerError> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    exchange(store, tcp).await
}

/// How many exchanges a listener runs at once; a further peer waits in the accept queue until one
/// ends (each ends within [`EXCHANGE_TIMEOUT`]).
pub const MAX_PEERS: usize = 16;

/// How long a stopped listener lets the exchanges under way finish.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// Serves peers on `listener` until `stop` resolves, up to [`MAX_PEERS`] at once, calling `each`
/// with the outcome of every exchange (a failed one does not stop the listener). The exchanges run
/// concurrently on this task and share `store` through [`exchange_shared`]: a peer that stalls
/// holds up no other. Once stopped, no new peer is taken and the exchanges under way get
/// [`STOP_GRACE`] to end; any still running then is dropped (what it merged so far is kept whole).
pub async fn listen(
    store: &mut Store,
    listener: tokio::net::TcpListener,
    stop: impl std::future::Future<Output = ()>,
    mut each: impl FnMut(std::net::SocketAddr, &Result<PeerReport, PeerError>),
) -> Result<(), PeerError> {
    use futures_util::StreamExt;
    use futures_util::stream::FuturesUnordered;

    tokio::pin!(stop);
    let store = Mutex::new(store);
    let mut running = FuturesUnordered::new();
    loop {
        tokio::select! {
            // Stop first: a stopped listener takes no new peer.
            biased;
            () = &mut stop => break,
            Some((from, outcome)) = running.next(), if !running.is_empty() => each(from, &outcome),
            accepted = listener.accept(), if running.len() < MAX_PEERS => {
                let (tcp, from) = accepted?;
                let _ = tcp.set_nodelay(true);
                let store = &store;
                running.push(async move { (from, exchange_shared(store, tcp).await) });
            }
        }
    }
    let finishing = async {
        while let Some((from, outcome)) = running.next().await {
            each(from, &outcome);
        }
    };
    let _ = tokio::time::timeout(STOP_GRACE, finishing).await;
    Ok(())
}

/// Asks head office for this device's certificate (`GET /v1/device/certificate`) and keeps it.
/// `Ok(false)`: the server issues none (an older server); the mesh stays off.
pub async fn fetch_credentials(store: &mut Store) -> Result<bool, PeerError> {
    let binding = store.binding()?.ok_or(crate::Error::NotBound)?;
    let path = format!("/v1/device/certificate?key={}", hex::encode(store.public_key()));
    let (status, body) = crate::sync::blobs::request(&binding, hyper::Method::GET, &path, None, None).await?;
    if status == hyper::StatusCode::NOT_FOUND {
        return Ok(false);
    }
    if !status.is_success() {
        return Err(PeerError::Protocol(format!(
            "the server answered {status} for the device certificate"
        )));
    }
    super::store_credentials(store, &body)?;
    Ok(true)
}

/// Asks head office for receipts of the documents this phone took from peers
/// (`POST /v1/device/receipts`) and takes them in ([`super::take_receipt`]): called after a
/// successful sync, when what it carried is at head office. Nothing carried, or no credentials
/// yet to check receipts with: no request. `Ok(n)`: `n` documents newly marked at head office
/// (normally none: the sync itself marked them); 404 from a server without receipts is `Ok(0)`.
pub async fn fetch_receipts(store: &mut Store) -> Result<usize, PeerError> {
    let carried = super::carried(store)?;
    let Some(creds) = super::credentials(store)? else {
        return Ok(0);
    };
    if carried.is_empty() {
        return Ok(0);
    }
    let binding = store.binding()?.ok_or(crate::Error::NotBound)?;
    let mut marked = 0;
    for chunk in carried.chunks(super::receipt::MAX_DOCS) {
        let body = serde_json::to_vec(&serde_json::json!({ "docs": chunk }))
            .map_err(|e| PeerError::Protocol(e.to_string()))?;
        let (status, answer) = crate::sync::blobs::post_json(&binding, "/v1/device/receipts", body).await?;
        if status == hyper::StatusCode::NOT_FOUND {
            return Ok(marked);
        }
        if !status.is_success() {
            return Err(PeerError::Protocol(format!(
                "the server answered {status} for receipts"
            )));
        }
        for r in super::receipt::SignedReceipt::list_from_bytes(&answer)? {
            if super::take_receipt(store, &creds, &r)? {
                marked += 1;
            }
        }
    }
    Ok(marked)
}
