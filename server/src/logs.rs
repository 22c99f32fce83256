//! Structured logs: the subscriber (`serve --log-format text|json`), and the ids that tie every
//! line to what it is about: each HTTP request runs in a `request` span carrying a `request_id`
//! (the caller's `x-request-id` when it sent a usable one, else a fresh one, echoed in the
//! response), each sync connection in a `sync` span carrying `conn_id`, `device` and the
//! `request_id` of its upgrade.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// The header a request id travels in, both ways.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// `key=value` lines, for people (coloured on a terminal).
    #[default]
    Text,
    /// One JSON object a line, with the current span's fields and every enclosing span's, for a
    /// log collector.
    Json,
}

/// Installs the process's subscriber: lines on stderr, filtered by `RUST_LOG` (default `info`).
pub fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        // Colours only on a terminal: a log file (the audit trail) gets plain `key=value` lines.
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(true).init(),
    }
}

/// A fresh id: 16 hex digits from the OS's randomness (a clock-and-counter fallback if it fails,
/// which only makes ids guessable, never repeated within a process).
pub fn new_id() -> String {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        b = (t ^ n.rotate_left(48)).to_be_bytes();
    }
    hex::encode(b)
}

/// The request id of a request that passed [`layer`] (`-` before it).
pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string()
}

/// Whether a caller's request id is kept: 1 to 128 characters a log line cannot be confused by.
fn usable(id: &HeaderValue) -> bool {
    let b = id.as_bytes();
    !b.is_empty() && b.len() <= 128 && b.iter().all(|c| c.is_ascii_alphanumeric() || b"-_.:".contains(c))
}

/// Gives the request an id (keeping the caller's usable one) before anything else sees it, and
/// echoes it in the response.
pub async fn layer(mut req: Request, next: Next) -> Response {
    let id = match req.headers().get(REQUEST_ID) {
        Some(v) if usable(v) => v.clone(),
        _ => HeaderValue::from_str(&new_id()).unwrap_or(HeaderValue::from_static("-")),
    };
    req.headers_mut().insert(REQUEST_ID, id.clone());
    let mut response = next.run(req).await;
    response.headers_mut().insert(REQUEST_ID, id);
    response
}

/// The span of one HTTP request (tower-http's `TraceLayer` opens it): method, route and id. The
/// path is left out when it carries a credential (a worker link).
pub fn request_span(req: &Request) -> tracing::Span {
    let path = match req.uri().path() {
        p if p.starts_with("/w/") => "/w/…",
        p => p,
    };
    tracing::info_span!(
        "request",
        request_id = %request_id(req.headers()),
        method = %req.method(),
        path = %path,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_request_ids_are_kept() {
        assert!(usable(&HeaderValue::from_static("abc-123_x.y:z")));
        assert!(!usable(&HeaderValue::from_static("")));
        assert!(!usable(&HeaderValue::from_static("a b")));
        assert!(!usable(&HeaderValue::from_static("a\"b")));
        assert!(!usable(&HeaderValue::from_str(&"a".repeat(129)).unwrap()));
        assert_eq!(new_id().len(), 16);
        assert_ne!(new_id(), new_id());
    }
}
