//! The sync connection's WebSocket, on tokio-tungstenite itself rather than axum's wrapper of it,
//! for one reason: a frame larger than [`FRAGMENT`] goes out as WebSocket fragments of that size.
//!
//! tungstenite copies a whole frame into its connection's write buffer before writing it, and that
//! buffer never shrinks: each connection kept the largest frame it ever sent. A live update of a
//! busy site is a few hundred KiB, so in the worst-case rush (1,000 connections) the write buffers
//! held 254 MB, 45 % of the server's live heap (BENCHMARKS.md). Fragments bound each buffer by the
//! fragment; the phone's WebSocket (any conforming one) joins them into the one message it was.

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message, handshake::derive_accept_key};

use crate::error::Error;

/// The largest WebSocket frame the server writes: a message longer than this goes out in
/// fragments of it. 16 KiB, a TLS record's worth of plaintext, so fragments cost no extra records.
pub const FRAGMENT: usize = 16 * 1024;

/// A valid HTTP/1.1 WebSocket upgrade request (RFC 6455 §4.2.1), before its answer.
pub struct Upgrade {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
}

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        if parts.method != Method::GET {
            return Err(Error::BadRequest("a WebSocket upgrade is a GET".into()));
        }
        let h = &parts.headers;
        if !has_token(h, header::CONNECTION, "upgrade") {
            return Err(Error::BadRequest("`Connection: upgrade` is missing".into()));
        }
        if !has_token(h, header::UPGRADE, "websocket") {
            return Err(Error::BadRequest("`Upgrade: websocket` is missing".into()));
        }
        if h.get(header::SEC_WEBSOCKET_VERSION).map(HeaderValue::as_bytes) != Some(b"13") {
            return Err(Error::BadRequest("`Sec-WebSocket-Version: 13` is missing".into()));
        }
        let key = h
            .get(header::SEC_WEBSOCKET_KEY)
            .cloned()
            .ok_or_else(|| Error::BadRequest("`Sec-WebSocket-Key` is missing".into()))?;
        let on_upgrade = parts
            .extensions
            .remove::<OnUpgrade>()
            .ok_or_else(|| Error::BadRequest("this connection cannot be upgraded".into()))?;
        Ok(Upgrade { key, on_upgrade })
    }
}

/// Whether the comma-separated header `name` holds `token`, in any case.
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

impl Upgrade {
    /// Answers 101 and runs `serve` on the socket once the connection has switched, on a task of
    /// its own. An upgrade that fails (the client went away) is logged and ends there.
    pub fn on_upgrade<F, Fut>(self, config: WebSocketConfig, serve: F) -> Response<Body>
    where
        F: FnOnce(Socket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let inner =
                        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
                    serve(Socket { inner }).await;
                }
                Err(e) => tracing::info!(error = %e, "a WebSocket upgrade did not complete"),
            }
        });
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = response.headers_mut();
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        let accept = derive_accept_key(self.key.as_bytes());
        // Base64 of a SHA-1: always a valid header value.
        if let Ok(accept) = HeaderValue::from_str(&accept) {
            h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        response
    }
}

/// A switched connection, server side.
pub struct Socket {
    inner: WebSocketStream<TokioIo<Upgraded>>,
}

impl Socket {
    /// The next message (fragments already joined; pings answered by tungstenite), `None` once the
    /// connection is gone.
    pub async fn recv(&mut self) -> Option<Result<Message, tungstenite::Error>> {
        self.inner.next().await
    }

    /// Sends one binary message, in fragments of at most [`FRAGMENT`] bytes, each written out
    /// before the next is buffered.
    pub async fn send_binary(&mut self, mut message: Bytes) -> Result<(), tungstenite::Error> {
        if message.len() <= FRAGMENT {
            return self.inner.send(Message::Binary(message)).await;
        }
        let mut opcode = Data::Binary;
        while !message.is_empty() {
            let part = message.split_to(FRAGMENT.min(message.len()));
            let last = message.is_empty();
            self.inner
                .send(Message::Frame(Frame::message(part, OpCode::Data(opcode), last)))
                .await?;
            opcode = Data::Continue;
        }
        Ok(())
    }

    /// Sends any other message (a ping, a close).
    pub async fn send(&mut self, message: Message) -> Result<(), tungstenite::Error> {
        self.inner.send(message).await
    }
}
