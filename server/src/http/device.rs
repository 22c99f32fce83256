//! The device's own credentials for the site mesh (issue #22): its certificate signed by the org's
//! key, the org's public key and revocation list. A phone asks after each sync; an older server
//! answers 404 and the phone's mesh stays off.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::{Error, Result};
use crate::http::caller::Caller;
use crate::http::extract::QueryParams;
use crate::http::{Conflict, Refusals};
use crate::state::AppState;

/// Which of the device's keys the certificate is for.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CertificateQuery {
    /// The store's Ed25519 public key, hex (registered at its sync hello).
    #[param(pattern = r"^[0-9a-f]{64}$")]
    key: String,
}

/// The caller device's credentials, postcard-encoded (`sitesync_core::mesh::cert::Credentials`):
/// its certificate (device, key, user, role, sites, org, issued, expiry 30 days) signed by the org
/// key, the org's public key, and the org's signed revocation list. The key is registered to the
/// device as the sync hello registers it; a key of another device is refused (409).
#[utoipa::path(get, path = "/v1/device/certificate", params(CertificateQuery), security(("bearer" = [])),
    responses(
        (status = 200, description = "The credentials, postcard", content_type = "application/octet-stream"),
        Refusals, Conflict))]
pub async fn certificate(
    State(state): State<AppState>,
    Caller(who): Caller,
    QueryParams(q): QueryParams<CertificateQuery>,
) -> Result<Response> {
    let mut key = [0u8; 32];
    hex::decode_to_slice(&q.key, &mut key).map_err(|_| Error::BadRequest("key is not 64 hex digits".into()))?;
    let now = chrono::Utc::now().timestamp_millis();
    let creds = state.auth(move |auth| auth.issue_credentials(&who, &key, now)).await?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
        creds.to_bytes(),
    )
        .into_response())
}
