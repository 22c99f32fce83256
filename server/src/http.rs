//! The HTTP handlers, by area: reports, approvals, history, admin, the dashboard, its browser
//! sessions, and the sync WebSocket's upgrade. Routing is `lib.rs`'s; what every handler shares is
//! here and in [`caller`] (who is calling, and what they read) and [`extract`] (typed rejections).

pub mod admin;
pub mod approvals;
pub mod blobs;
pub mod caller;
pub mod conflicts;
pub mod dashboard;
pub mod device;
pub mod devices;
pub mod extract;
pub mod history;
pub mod metrics;
pub mod notify;
pub mod pay;
pub mod reports;
pub mod session;
pub mod signoffs;
pub mod sync;
pub mod worker_links;
pub mod workers;

use axum::Json;

use crate::error::ErrorBody;

/// Liveness: answers when the server is up.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "Up")))]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// The refusals every authenticated route may answer, declared once for the OpenAPI document
/// (`responses(..., Refusals)`); each carries an [`ErrorBody`].
#[derive(utoipa::IntoResponses)]
#[allow(missing_docs)] // Each variant's `description` is its documentation, in the OpenAPI document.
pub enum Refusals {
    #[response(status = 400, description = "The query or body is malformed or contradicts itself")]
    BadRequest(ErrorBody),
    #[response(status = 401, description = "No token, or an unknown or revoked one")]
    Unauthorized(ErrorBody),
    #[response(
        status = 403,
        description = "Not allowed: no grant for the site, or not the caller's role or org"
    )]
    Forbidden(ErrorBody),
    #[response(
        status = 429,
        description = "Too many requests from this token: retry after `Retry-After` seconds"
    )]
    TooManyRequests(ErrorBody),
}

/// What a route that takes a JSON body may answer on top of [`Refusals`].
#[derive(utoipa::IntoResponses)]
#[allow(missing_docs)] // As for `Refusals`.
pub enum BodyRefusals {
    #[response(status = 413, description = "The body is larger than the route takes")]
    TooLarge(ErrorBody),
    #[response(status = 415, description = "The body is not sent as JSON")]
    UnsupportedMediaType(ErrorBody),
}

/// What a route that looks up what the request names may answer on top of [`Refusals`].
#[derive(utoipa::IntoResponses)]
#[response(
    status = 404,
    description = "Something the request names does not exist, or nothing matches it"
)]
pub struct NotFound(pub ErrorBody);

/// What an admin route may answer when the request contradicts what exists (an id of another org).
#[derive(utoipa::IntoResponses)]
#[response(status = 409, description = "The request contradicts what exists")]
pub struct Conflict(pub ErrorBody);
