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

/// The caller's org's key for sealing personal numbers (`sitesync_core::pii::OrgPiiKey`): the
/// X25519 public key ID-card and bank-card numbers are sealed to before they enter a document, and
/// the identity key worker ids are derived with. Any enrolled device of the org; made on first use.
#[utoipa::path(get, path = "/v1/org/pii-key", security(("bearer" = [])),
    responses(
        (status = 200, description = "The org's sealing public key and identity key (hex)", body = PiiKeyView),
        Refusals))]
pub async fn pii_key(State(state): State<AppState>, Caller(who): Caller) -> Result<axum::Json<PiiKeyView>> {
    let org = who.org_id.clone();
    let key = state.auth(move |auth| auth.org_pii_key(&org)).await?;
    Ok(axum::Json(PiiKeyView {
        org: key.org,
        seal_key: key.seal_key,
        identity_key: key.identity_key,
    }))
}

/// An org's personal-data key as phones are given it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PiiKeyView {
    /// The org.
    pub org: String,
    /// X25519 public key, 64 hex digits: numbers are sealed to it (anonymous sealed box).
    pub seal_key: String,
    /// HMAC-SHA256 key, 64 hex digits: a worker's id is `w-` and the first 16 hex digits of
    /// HMAC(key, "sitesync-worker" 0x00 normalized-ID-card).
    pub identity_key: String,
}
