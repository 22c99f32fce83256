//! The audit trail: one line per security event on the `audit` tracing target, with the same
//! structured fields every time — `event`, `device`, `user`, `ip`, `reason` (`-` where unknown) —
//! and never a token or a session id. `RUST_LOG=audit=info` (the default `info` includes it) keeps
//! them; `grep ' audit: '` finds them.
//!
//! Events:
//! - `sign_in`, `sign_out`: the dashboard, with the device and user;
//! - `auth_failed` (401): no credential, an unknown or revoked token, an unknown or expired session,
//!   with the device id when it is known (a revoked device's, or the id a token names);
//! - `refused` (403, 413, 429): authenticated but not allowed, a page of another origin, a body
//!   too large, a rate limit; also connections refused at the cap (one line a second at most, with
//!   the number skipped) and clients that did not finish a handshake or header in time;
//! - `admin`: every change made through the admin API or the `admin` subcommands, and `revoke`.
//!
//! Each HTTP request runs inside `layer`, which holds what the request has learned about its caller
//! (`identify`, `refuse`) and writes the one line for a refused request when the answer is known.

use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::Response;

use crate::connections::Scheme;

/// What one request has learned about its caller.
struct Caller {
    /// The peer's address.
    ip: Option<IpAddr>,
    /// The scheme the request came in on.
    scheme: Scheme,
    /// The device it authenticated as, or the one its token names.
    device: RefCell<Option<String>>,
    /// The device's user.
    user: RefCell<Option<String>>,
    /// Why it was refused.
    reason: RefCell<Option<String>>,
}

tokio::task_local! {
    static REQUEST: Caller;
}

/// The middleware around every route: notes the peer and the scheme, and writes the audit line of
/// a refused request (401, 403, 413, 429).
pub async fn layer(req: Request, next: Next) -> Response {
    let caller = Caller {
        ip: req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()),
        scheme: req.extensions().get::<Scheme>().copied().unwrap_or(Scheme::Http),
        device: RefCell::new(None),
        user: RefCell::new(None),
        reason: RefCell::new(None),
    };
    let method = req.method().clone();
    // A worker link's path is its credential: logged without it.
    let path = match req.uri().path() {
        p if p.starts_with("/w/") => "/w/…".to_string(),
        p => p.to_string(),
    };
    REQUEST
        .scope(caller, async move {
            let response = next.run(req).await;
            let status = response.status().as_u16();
            let event = match status {
                401 => "auth_failed",
                403 | 413 | 429 => "refused",
                _ => return response,
            };
            REQUEST.with(|c| {
                let device = c.device.borrow();
                let user = c.user.borrow();
                let reason = c.reason.borrow();
                tracing::warn!(
                    target: "audit",
                    event,
                    device = device.as_deref().unwrap_or("-"),
                    user = user.as_deref().unwrap_or("-"),
                    ip = %ip_text(c.ip),
                    reason = reason.as_deref().unwrap_or("-"),
                    status,
                    method = %method,
                    path = %path,
                );
            });
            response
        })
        .await
}

fn ip_text(ip: Option<IpAddr>) -> String {
    ip.map_or_else(|| "-".to_string(), |ip| ip.to_string())
}

/// The scheme the current request came in on (plain HTTP outside a request: an origin check made
/// there fails closed for a server on HTTPS).
pub(crate) fn scheme() -> Scheme {
    REQUEST.try_with(|c| c.scheme).unwrap_or(Scheme::Http)
}

/// Records who the current request is (or claims to be).
pub(crate) fn identify(device: &str, user: Option<&str>) {
    let _ = REQUEST.try_with(|c| {
        *c.device.borrow_mut() = Some(device.to_string());
        *c.user.borrow_mut() = user.map(str::to_string);
    });
}

/// Records why the current request is refused, unless a reason is recorded already (the first is
/// the most precise: "revoked device" rather than "unauthorized").
pub(crate) fn refuse(reason: &str) {
    let _ = REQUEST.try_with(|c| {
        c.reason.borrow_mut().get_or_insert_with(|| reason.to_string());
    });
}

/// Writes one audit line (`sign_in`, `sign_out`, `admin`, `revoke` …); the peer's address is the
/// current request's, `-` outside one (an `admin` subcommand).
pub fn event(event: &str, device: Option<&str>, user: Option<&str>, reason: &str) {
    let ip = REQUEST.try_with(|c| c.ip).ok().flatten();
    tracing::info!(
        target: "audit",
        event,
        device = device.unwrap_or("-"),
        user = user.unwrap_or("-"),
        ip = %ip_text(ip),
        reason,
    );
}

/// A connection closed at once because the server holds its maximum.
pub(crate) fn refused_connection(peer: SocketAddr, cap: usize, skipped: u64) {
    tracing::warn!(
        target: "audit",
        event = "refused",
        device = "-",
        user = "-",
        ip = %peer.ip(),
        reason = "connection cap reached",
        cap,
        skipped,
    );
}

/// A connection closed because its TLS handshake or a request header did not arrive in time.
pub(crate) fn timed_out(peer: SocketAddr, what: &str) {
    tracing::warn!(
        target: "audit",
        event = "refused",
        device = "-",
        user = "-",
        ip = %peer.ip(),
        reason = %format_args!("{what} not received in time"),
    );
}
