//! The server's error type and its one mapping to HTTP responses, which logs internals and hides them.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Missing, unknown or revoked credentials.
    #[error("unauthorized")]
    Unauthorized,
    /// Authenticated, but not allowed.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The request is malformed.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Something named does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The request contradicts what exists.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The document store refused or failed.
    #[error("store: {0}")]
    Store(#[from] sitesync_core::Error),
    /// The credential database failed.
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    /// Anything else.
    #[error("internal: {0}")]
    Internal(String),
}

/// The server's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, message) = match &self {
            Error::Unauthorized => (StatusCode::UNAUTHORIZED, self.to_string()),
            Error::Forbidden(_) => (StatusCode::FORBIDDEN, self.to_string()),
            Error::BadRequest(_) => (StatusCode::BAD_REQUEST, self.to_string()),
            Error::NotFound(_) => (StatusCode::NOT_FOUND, self.to_string()),
            Error::Conflict(_) => (StatusCode::CONFLICT, self.to_string()),
            Error::Store(e) if e.is_bad_input() => (StatusCode::BAD_REQUEST, self.to_string()),
            _ => {
                tracing::error!(error = %self, "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error".to_string())
            }
        };
        (status, Json(serde_json::json!({ "error": message }))).into_response()
    }
}
