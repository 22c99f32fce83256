//! `GET /metrics`: the operator's counters (`crate::metrics`) in the Prometheus text format.

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use crate::auth::Role;
use crate::error::{Error, Result};
use crate::http::Refusals;
use crate::http::caller::authenticate;
use crate::state::AppState;

/// Counters, gauges and histograms of the whole server (connections, pushes and their latency,
/// group-commit sizes, fan-out, refusals by rule, rate limits, storage time, blob bytes, HTTP
/// requests), in the OpenMetrics text format Prometheus scrapes. For an admin's token or the
/// operators' metrics token (`serve --metrics-token-file`); `serve --metrics-listen` serves it
/// without a token on a second, private address.
#[utoipa::path(get, path = "/metrics", security(("bearer" = [])),
    responses(
        (status = 200, description = "Every series, OpenMetrics text", content_type = "application/openmetrics-text", body = String),
        Refusals))]
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Result<Response> {
    let operator = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|token| state.is_metrics_token(token.trim()));
    if !operator {
        let who = authenticate(&state, &headers).await?;
        if who.role != Role::Admin {
            return Err(Error::Forbidden("the metrics are for admins and operators".into()));
        }
    }
    Ok(scrape(&state))
}

/// The text of every series (also what the private metrics listener serves to anyone).
pub fn scrape(state: &AppState) -> Response {
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        state.metrics().encode(),
    )
        .into_response()
}
