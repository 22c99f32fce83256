//! The site mesh on the phone (issue #22): exchange with another phone of the company directly, no
//! server — over the local network (listen, or sync with a listening phone's address), or over any
//! byte stream the app provides ([`PeerTransport`]: Bluetooth, Nearby Connections, Multipeer).
//!
//! The exchange is symmetric (`docs/protocol.md`, *Site mesh*): both phones send the same messages
//! and neither leads, so both ends of an app transport call the same
//! [`SiteSync::sync_over_transport`]. Changes taken from a peer are pending for this phone's next
//! server sync like its own: head office verifies each against its author's key.

use std::sync::{Arc, Mutex};

use sitesync_core::Store;
use sitesync_core::mesh::PeerError;
use sitesync_core::mesh::engine::PeerReport;
use sitesync_core::mesh::transport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{RefusalRecord, Result, SiteSync, SiteSyncError, notify, runtime};

/// A byte stream to another phone that the app opened (Bluetooth, Nearby Connections, Multipeer).
/// The library frames its messages itself: any chunking of the bytes works. Both methods are
/// called on library threads and may block.
#[uniffi::export(with_foreign)]
pub trait PeerTransport: Send + Sync {
    /// Sends `bytes` to the peer, in order; returns once the stream took them. A closed stream:
    /// [`SiteSyncError::TransportClosed`].
    fn send(&self, bytes: Vec<u8>) -> Result<(), SiteSyncError>;
    /// The next bytes the peer sent (at least one), blocking until some arrive. A stream that
    /// closed or failed: [`SiteSyncError::TransportClosed`]; an empty result also ends the stream.
    /// After the exchange returns, the library calls no more `send`; a `receive` under way may
    /// still wait: close the stream then so it ends.
    fn receive(&self) -> Result<Vec<u8>, SiteSyncError>;
}

/// A peer's document that was refused whole; nothing of it was applied.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RefusedDocumentRecord {
    /// The document (`day|site-hz-01|2026-12-01`).
    pub doc: String,
    /// Why, in words (not readable by both phones, malformed, history missing).
    pub reason: String,
}

/// What one peer exchange did.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PeerSyncRecord {
    /// The peer's device id, as head office's certificate names it.
    pub peer_device: String,
    /// The peer's user id.
    pub peer_user: String,
    /// Documents this phone sent changes of.
    pub documents_sent: u64,
    /// Documents that took changes from the peer.
    pub documents_received: u64,
    /// Changes sent, each with its author's signature.
    pub changes_sent: u64,
    /// The peer's changes that passed the checks and were merged.
    pub changes_accepted: u64,
    /// The peer's changes refused, each with the rule it broke; not applied.
    pub refused_changes: Vec<RefusalRecord>,
    /// The peer's documents refused whole.
    pub refused_documents: Vec<RefusedDocumentRecord>,
}

impl From<&PeerReport> for PeerSyncRecord {
    fn from(r: &PeerReport) -> Self {
        PeerSyncRecord {
            peer_device: r.peer_device.clone(),
            peer_user: r.peer_user.clone(),
            documents_sent: r.sent as u64,
            documents_received: r.received as u64,
            changes_sent: r.changes_sent as u64,
            changes_accepted: r.changes_accepted as u64,
            refused_changes: r.refused_changes.iter().map(RefusalRecord::from).collect(),
            refused_documents: r
                .refused_docs
                .iter()
                .map(|(doc, reason)| RefusedDocumentRecord {
                    doc: doc.clone(),
                    reason: reason.clone(),
                })
                .collect(),
        }
    }
}

impl From<PeerError> for SiteSyncError {
    fn from(e: PeerError) -> Self {
        match e {
            PeerError::NoCertificate => SiteSyncError::NoDeviceCertificate,
            PeerError::Rejected(reason) => SiteSyncError::PeerRejected { reason },
            PeerError::RefusedBy(reason) => SiteSyncError::PeerRefused { reason },
            PeerError::Store(e) => e.into(),
            e @ (PeerError::Protocol(_) | PeerError::Io(_)) => SiteSyncError::PeerUnreachable { reason: e.to_string() },
            e => SiteSyncError::Internal { reason: e.to_string() },
        }
    }
}

/// The running listener: its address, what stops it, and its task (awaited on stop).
pub(crate) struct PeerListening {
    /// The address bound, `host:port`.
    addr: String,
    /// Resolves the listener's stop future.
    stop: tokio::sync::oneshot::Sender<()>,
    /// The listener's task.
    task: tokio::task::JoinHandle<()>,
}

impl PeerListening {
    /// Stops the listener without waiting for it (the store is going away).
    pub(crate) fn stop_now(self) {
        let _ = self.stop.send(());
    }
}

/// Waits for a library task; its panic becomes [`SiteSyncError::Internal`].
async fn joined<T>(task: tokio::task::JoinHandle<Result<T>>) -> Result<T> {
    match task.await {
        Ok(r) => r,
        Err(e) if e.is_panic() => Err(SiteSyncError::Internal {
            reason: "a panic inside the library was caught".into(),
        }),
        Err(e) => Err(SiteSyncError::Internal { reason: e.to_string() }),
    }
}

/// One exchange over the app's transport. The engine runs over an in-memory stream; two pumps move
/// its bytes to and from `transport` on blocking threads. A failure the app's transport reported
/// is what the call returns (typed as the app threw it), rather than the broken exchange it caused.
async fn over_transport(store: &mut Store, transport: Arc<dyn PeerTransport>) -> Result<PeerReport> {
    const CHUNK: usize = 64 * 1024;
    let failed: Arc<Mutex<Option<SiteSyncError>>> = Arc::default();
    let fail = |f: &Arc<Mutex<Option<SiteSyncError>>>, e: SiteSyncError| {
        f.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
    };
    // Peer → engine: `inbound` is written here and read by the engine.
    let (engine_in, mut inbound) = tokio::io::duplex(CHUNK);
    // Engine → peer: the engine writes `engine_out`, the pump reads `outbound`.
    let (engine_out, mut outbound) = tokio::io::duplex(CHUNK);
    let stream = tokio::io::join(engine_in, engine_out);

    let receiving = {
        let (t, f) = (transport.clone(), failed.clone());
        tokio::spawn(async move {
            loop {
                let t = t.clone();
                let got = tokio::task::spawn_blocking(move || t.receive()).await;
                match got {
                    Ok(Ok(bytes)) if !bytes.is_empty() => {
                        if inbound.write_all(&bytes).await.is_err() {
                            return; // The exchange is over.
                        }
                    }
                    Ok(Ok(_)) => return, // The peer ended the stream: the engine reads its end.
                    Ok(Err(e)) => return fail(&f, e),
                    Err(e) => {
                        return fail(
                            &f,
                            SiteSyncError::Internal {
                                reason: format!("the transport's receive failed: {e}"),
                            },
                        );
                    }
                }
            }
        })
    };
    let sending = async {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match outbound.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let (t, chunk) = (transport.clone(), buf[..n].to_vec());
            match tokio::task::spawn_blocking(move || t.send(chunk)).await {
                Ok(Ok(())) => {}
                // Dropping `outbound` on return breaks the engine's writes: it stops at once.
                Ok(Err(e)) => return fail(&failed, e),
                Err(e) => {
                    return fail(
                        &failed,
                        SiteSyncError::Internal {
                            reason: format!("the transport's send failed: {e}"),
                        },
                    );
                }
            }
        }
    };
    let (report, ()) = tokio::join!(transport::exchange(store, stream), sending);
    // A receive still blocked in the app returns when the app closes its stream; its bytes go
    // nowhere.
    receiving.abort();
    match report {
        Ok(r) => Ok(r),
        Err(e) => Err(failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_else(|| e.into())),
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl SiteSync {
    /// Serves other phones of the company on `address` (`0.0.0.0:7420`; port 0 picks a free one)
    /// until [`SiteSync::stop_peer_listening`], several at once, and returns the address bound.
    /// Each exchange's result reaches the sync listeners as a new status (what is pending for head
    /// office). Already listening: returns the address bound then. An address that cannot be bound:
    /// [`SiteSyncError::Validation`] on `address`.
    pub async fn start_peer_listening(&self, address: String) -> Result<String> {
        let mut listening = self.peer_listener.lock().await;
        if let Some(l) = &*listening {
            return Ok(l.addr.clone());
        }
        let (path, key) = (self.path.clone(), self.key.clone());
        let (listeners, app_store, wake) = (self.listeners.clone(), self.store.clone(), self.wake.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (bound_tx, bound) = tokio::sync::oneshot::channel::<Result<String>>();
        let task = runtime().spawn(async move {
            let opened = async {
                let tcp = tokio::net::TcpListener::bind(&address)
                    .await
                    .map_err(|e| SiteSyncError::Validation {
                        field: "address".into(),
                        reason: format!("cannot listen on {address:?}: {e}"),
                    })?;
                let addr = tcp.local_addr().map_err(|e| SiteSyncError::Validation {
                    field: "address".into(),
                    reason: e.to_string(),
                })?;
                let store = Store::open_keyed(&path, key.as_ref())?;
                Ok::<_, SiteSyncError>((tcp, addr, store))
            };
            let (tcp, addr, mut store) = match opened.await {
                Ok(o) => o,
                Err(e) => return drop(bound_tx.send(Err(e))),
            };
            let _ = bound_tx.send(Ok(addr.to_string()));
            let each = |_: std::net::SocketAddr, outcome: &Result<PeerReport, PeerError>| {
                if outcome.as_ref().is_ok_and(|r| r.received > 0) {
                    // What a peer handed over is pending for head office: push it now if connected.
                    wake.notify_one();
                    let status = app_store.lock().unwrap_or_else(|e| e.into_inner()).sync_status();
                    if let Ok(status) = status {
                        notify(&listeners, &(&status).into());
                    }
                }
            };
            let stop = async {
                let _ = stopped.await;
            };
            // An accept failure (out of file handles) ends the listener; the app starts it again.
            let _ = transport::listen(&mut store, tcp, stop, each).await;
        });
        let addr = bound.await.unwrap_or_else(|_| {
            Err(SiteSyncError::Internal {
                reason: "the listener ended before it bound".into(),
            })
        })?;
        *listening = Some(PeerListening {
            addr: addr.clone(),
            stop,
            task,
        });
        Ok(addr)
    }

    /// Stops serving peers and returns once the listener has stopped (exchanges under way are cut
    /// off; what each merged before is kept). Not listening: does nothing.
    pub async fn stop_peer_listening(&self) {
        let running = self.peer_listener.lock().await.take();
        if let Some(l) = running {
            let _ = l.stop.send(());
            let _ = l.task.await;
        }
    }

    /// One exchange with the phone listening at `address` (`host:port`). Needs this phone's device
    /// certificate: [`SiteSyncError::NoDeviceCertificate`] before its first server sync.
    pub async fn sync_with_peer(&self, address: String) -> Result<PeerSyncRecord> {
        let (path, key) = (self.path.clone(), self.key.clone());
        let report = joined(runtime().spawn(async move {
            let mut store = Store::open_keyed(&path, key.as_ref())?;
            Ok(transport::sync_with(&mut store, &address).await?)
        }))
        .await?;
        self.after_exchange(&report).await;
        Ok((&report).into())
    }

    /// One exchange over a stream the app opened to another phone; the phone at the other end
    /// calls this too (the exchange is symmetric). Fails with the error the transport threw, or
    /// as [`SiteSyncError::PeerRefused`] / [`SiteSyncError::PeerRejected`] /
    /// [`SiteSyncError::PeerUnreachable`].
    pub async fn sync_over_transport(&self, transport: Arc<dyn PeerTransport>) -> Result<PeerSyncRecord> {
        let (path, key) = (self.path.clone(), self.key.clone());
        let report = joined(runtime().spawn(async move {
            let mut store = Store::open_keyed(&path, key.as_ref())?;
            over_transport(&mut store, transport).await
        }))
        .await?;
        self.after_exchange(&report).await;
        Ok((&report).into())
    }
}

impl SiteSync {
    /// After an exchange this phone started: the background sync pushes what the peer handed over,
    /// and the listeners see the new status.
    async fn after_exchange(&self, report: &PeerReport) {
        if report.received == 0 {
            return;
        }
        self.wake.notify_one();
        let listeners = self.listeners.clone();
        let _ = self
            .with_store(move |s| {
                notify(&listeners, &(&s.sync_status()?).into());
                Ok(())
            })
            .await;
    }
}
