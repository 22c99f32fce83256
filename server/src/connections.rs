//! The front door: one accept loop for plain HTTP and HTTPS, serving HTTP/1.1 (and WebSocket
//! upgrades) with hyper, under `ConnectionLimits`.
//!
//! Why not `axum::serve`: it has no header-read timeout and no connection cap, so a slow-loris
//! client holds a socket forever and enough of them exhaust the descriptors (measured 2026-11-30:
//! 300 half-header connections under a 256-descriptor limit, `/healthz` down for 30 s). Here:
//! - at most `max_connections` at once, each holding a slot until its socket closes (an upgraded
//!   WebSocket included); one over the cap is closed as soon as it is accepted, so the client fails
//!   fast and retries instead of waiting in the kernel's queue;
//! - the TLS handshake and every request header must arrive within `header_timeout` (hyper's
//!   `header_read_timeout`, which also closes idle keep-alive connections);
//! - an `accept` error (out of descriptors) is logged once a second at most and retried after a
//!   pause, instead of spinning.
//!
//! Each request carries the peer's address (`ConnectInfo`) and the `Scheme` it came in on, for the
//! audit trail, the session cookie's `Secure` flag and the origin check.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tower::ServiceExt;

use crate::limits::ConnectionLimits;
use crate::tls::Tls;

/// The scheme a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub enum Scheme {
    Http,
    /// HTTP over TLS.
    Https,
}

impl Scheme {
    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// A request header's largest size (hyper's read buffer; its minimum is 8 KiB).
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Accepts connections on `listener` until `shutdown` completes, then lets the open ones finish
/// (idle keep-alive connections close at once, requests in flight complete) and returns.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<Tls>>,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let slots = Arc::new(Semaphore::new(max));
    let (closing, closed) = watch::channel(false);
    let mut refusals = Throttled::default();
    let mut accept_errors = Throttled::default();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    if let Some(skipped) = accept_errors.due() {
                        tracing::error!(error = %e, skipped, "accept failed");
                    }
                    // Out of descriptors: the error repeats until a connection closes.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            drop(tcp);
            if let Some(skipped) = refusals.due() {
                crate::audit::refused_connection(peer, max, skipped);
            }
            continue;
        };
        // No Nagle: sync frames are small, and a reply held back for a delayed ACK costs 40 ms.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "could not set TCP_NODELAY");
        }
        tokio::spawn(connection(
            tcp,
            peer,
            slot,
            app.clone(),
            tls.clone(),
            limits.header_timeout,
            closed.clone(),
        ));
    }
    drop(listener);
    closing.send_replace(true);
    // Every connection holds a slot until its socket closes.
    let _all = slots.acquire_many(max as u32).await;
    Ok(())
}

/// Serves one connection: the TLS handshake if any, then HTTP/1.1 until the client goes, the
/// connection upgrades (and the upgraded socket closes), or the server shuts down.
async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    slot: OwnedSemaphorePermit,
    app: Router,
    tls: Option<Arc<Tls>>,
    header_timeout: Duration,
    mut closing: watch::Receiver<bool>,
) {
    let (io, scheme) = match tls {
        None => (Io::Plain(tcp), Scheme::Http),
        Some(tls) => match tokio::time::timeout(header_timeout, tls.acceptor().accept(tcp)).await {
            Ok(Ok(stream)) => (Io::Tls(Box::new(stream)), Scheme::Https),
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                crate::audit::timed_out(peer, "TLS handshake");
                return;
            }
        },
    };
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req.extensions_mut().insert(scheme);
        app.clone().oneshot(req)
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(MAX_HEADER_BYTES);
    let io = TokioIo::new(Counted { io, _slot: slot });
    let conn = http.serve_connection(io, service).with_upgrades();
    tokio::pin!(conn);
    let closing = async move {
        let _ = closing.wait_for(|c| *c).await;
    };
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = closing => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        if e.is_timeout() {
            crate::audit::timed_out(peer, "request header");
        } else {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        }
    }
}

/// A log line at most once a second, with the number of lines skipped since the last one.
#[derive(Default)]
struct Throttled {
    last: Option<Instant>,
    skipped: u64,
}

impl Throttled {
    /// `Some(skipped)` when a line is due.
    fn due(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            self.skipped += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.skipped))
    }
}

/// A client's socket, plain or TLS.
enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// A socket that holds its connection slot until it is dropped, wherever it ends up (hyper hands an
/// upgraded connection's socket to the WebSocket task).
struct Counted {
    io: Io,
    _slot: OwnedSemaphorePermit,
}

impl AsyncRead for Counted {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Counted {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
