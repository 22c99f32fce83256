//! The device's own credentials for the site mesh (issue #22): its certificate signed by the org's
//! key, the org's public key and revocation list. A phone asks after a sync when the upgrade's
//! `X-Sitesync-Credentials` says they changed (`auth::certificates`); an older server answers 404 and the phone's mesh stays off. And head office's receipts: which heads of the
//! documents a phone carried for others the server holds, for the phone to hand back to their
//! authors over the mesh.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::error::{Error, Result};
use crate::http::caller::Caller;
use crate::http::extract::{JsonBody, QueryParams};
use crate::http::{BodyRefusals, Conflict, Refusals};
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

/// The documents a phone asks receipts for.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ReceiptsRequest {
    /// Document ids (`site|…`, `day|…|…`, `okr|…|…`), at most 1000.
    docs: Vec<String>,
}

/// Receipts for the named documents, postcard-encoded (a list of
/// `sitesync_core::mesh::receipt::SignedReceipt`): for each document the caller may read and the
/// server holds, the org, the document, the server's heads of it (hex, sorted) and the time, signed
/// with the org key that signs certificates. Documents the caller may not read, or the server does
/// not hold, are left out; a malformed id or more than 1000 is refused (400).
#[utoipa::path(post, path = "/v1/device/receipts", request_body = ReceiptsRequest, security(("bearer" = [])),
    responses(
        (status = 200, description = "The receipts, postcard", content_type = "application/octet-stream"),
        Refusals, BodyRefusals))]
pub async fn receipts(
    State(state): State<AppState>,
    // Authenticated before the body is read: a stranger learns nothing from a 400.
    Caller(who): Caller,
    JsonBody(req): JsonBody<ReceiptsRequest>,
) -> Result<Response> {
    use sitesync_core::mesh::receipt::{MAX_DOCS, SignedReceipt};
    if req.docs.len() > MAX_DOCS {
        return Err(Error::BadRequest(format!("at most {MAX_DOCS} documents per request")));
    }
    let mut ids = Vec::with_capacity(req.docs.len());
    for d in &req.docs {
        ids.push(
            d.parse::<sitesync_core::ids::DocId>()
                .map_err(|_| Error::BadRequest(format!("{d:?} is not a document id")))?,
        );
    }
    let now = chrono::Utc::now().timestamp_millis();
    // What was committed: a push acknowledged to the carrier is durable, so the read connection
    // holds it.
    let list = state
        .read(move |auth, docs| auth.issue_receipts(&who, &ids, docs, now))
        .await?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
        SignedReceipt::list_to_bytes(&list),
    )
        .into_response())
}
