//! The server's error type and its one mapping to HTTP responses, which logs internals and hides them.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
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
    /// The request body is not JSON (no `Content-Type: application/json`).
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// The document store refused or failed.
    #[error("store: {0}")]
    Store(#[from] sitesync_core::Error),
    /// The credential database failed.
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    /// The token made too many requests; it may try again after the duration.
    #[error("too many requests: try again in {} s", .0.as_secs().max(1))]
    TooManyRequests(std::time::Duration),
    /// The request body is larger than the route takes.
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    /// An upload's bytes do not hash to the address it was sent to; the staged bytes were dropped.
    #[error("the uploaded bytes hash to {actual}, not {expected}; nothing was stored")]
    HashMismatch { expected: String, actual: String },
    /// The server's configuration (a certificate or key file) is wrong.
    #[error("configuration: {0}")]
    Config(String),
    #[error("internal: {0}")]
    Internal(String),
    /// A pay period cannot be closed, paid or paid out as asked (409, with a code and the dates).
    #[error("{0}")]
    PayPeriod(#[from] crate::pay::period::PeriodError),
}

/// The body of every error response: a sentence for a person; internals are logged, never shown.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: String,
}

/// The server's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if let Error::PayPeriod(e) = &self {
            let body = crate::pay::period::PeriodErrorBody {
                error: e.to_string(),
                code: e.code().to_string(),
                dates: e.dates(),
            };
            return (StatusCode::CONFLICT, Json(body)).into_response();
        }
        let (status, message) = match &self {
            Error::Unauthorized => (StatusCode::UNAUTHORIZED, self.to_string()),
            Error::Forbidden(_) => (StatusCode::FORBIDDEN, self.to_string()),
            Error::BadRequest(_) => (StatusCode::BAD_REQUEST, self.to_string()),
            Error::NotFound(_) => (StatusCode::NOT_FOUND, self.to_string()),
            Error::Conflict(_) => (StatusCode::CONFLICT, self.to_string()),
            Error::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, self.to_string()),
            Error::TooManyRequests(_) => (StatusCode::TOO_MANY_REQUESTS, self.to_string()),
            Error::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, self.to_string()),
            Error::HashMismatch { .. } => (StatusCode::UNPROCESSABLE_ENTITY, self.to_string()),
            Error::Store(e) if e.is_bad_input() => (StatusCode::BAD_REQUEST, self.to_string()),
            _ => {
                tracing::error!(error = %self, "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error".to_string())
            }
        };
        if matches!(status.as_u16(), 401 | 403 | 413 | 429) {
            crate::audit::refuse(&message);
        }
        if let Error::TooManyRequests(wait) = &self {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(axum::http::header::RETRY_AFTER, secs.max(1).to_string())],
                Json(ErrorBody { error: message }),
            )
                .into_response();
        }
        (status, Json(ErrorBody { error: message })).into_response()
    }
}
