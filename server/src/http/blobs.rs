//! Attachment bytes: resumable upload, download and thumbnails (`/v1/blobs/{sha256}…`).
//!
//! The protocol, tus-like and kept small (docs/blobs.md):
//! 1. `GET /v1/blobs/{sha256}/upload?site&date&size` tells how many bytes of this device's upload
//!    arrived (`offset`), or that the blob is already stored for that day (`complete`).
//! 2. `PUT /v1/blobs/{sha256}/upload?site&date&size&offset` sends the bytes from `offset` on. They
//!    are appended to the staged upload *as they arrive*, so a connection cut mid-file keeps what
//!    came through; the client asks (1) again and continues from there.
//! 3. When the staged upload reaches `size` it is hashed: a wrong hash drops it (422), a right one
//!    moves it into the blob storage and records the claim "this device, which may write this day,
//!    sent these bytes for it".
//!
//! Who may do what: an upload needs write access to the day it names (a site the device may write);
//! a download or thumbnail needs read access to a day the blob was uploaded for *and* that day's
//! document, as the server holds it, must reference the blob (the document may arrive before or
//! after the bytes; until it references them nobody downloads them). Knowing a hash is not enough:
//! a device that references a stored blob from another site's day must still upload the bytes
//! itself to claim them for its day.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sitesync_core::attachments::BlobHash;
use sitesync_core::ids::{DocId, SiteId};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Access, Principal};
use crate::error::{Error, ErrorBody, Result};
use crate::http::caller::Caller;
use crate::http::extract::QueryParams;
use crate::http::{NotFound, Refusals};
use crate::state::AppState;

/// Bytes read from the blob storage per piece of a download.
const PIECE: usize = 256 * 1024;

/// Bytes of an upload gathered before they are appended to its staged bytes (and made durable):
/// a cut connection loses none of them (they are appended when the body ends), only a crash of
/// the node does.
const FLUSH: usize = 256 * 1024;

/// How long a request waits for another request on the same staged upload (one whose connection
/// died is still writing what arrived) before it answers 409.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long an upload waits for its next bytes before it keeps what arrived and ends: a phone
/// that vanished without closing its connection must not hold the upload's lock.
const IDLE_BODY: std::time::Duration = std::time::Duration::from_secs(30);

/// The day an upload is for, and the file's size.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The site of the day document that references the blob.
    #[param(pattern = r"^[^\s|]{1,100}$")]
    site: String,
    /// The date of that day.
    date: NaiveDate,
    /// The whole file's size in bytes.
    size: u64,
    /// Where the bytes of this request start (`PUT` only): the offset the server last reported.
    offset: Option<u64>,
}

/// How far an upload got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UploadState {
    /// Bytes the server holds of this device's upload; the next `PUT` starts here.
    pub offset: u64,
    /// Whether the blob is stored (verified) for this day: nothing more to send.
    pub complete: bool,
}

/// What an upload may answer on top of [`Refusals`].
#[derive(utoipa::IntoResponses)]
#[allow(missing_docs)] // Each variant's `description` is its documentation, in the OpenAPI document.
pub enum UploadRefusals {
    #[response(
        status = 409,
        description = "`offset` is not where the staged upload ends; the body says where"
    )]
    Conflict(ErrorBody),
    #[response(
        status = 413,
        description = "The file is larger than the server takes; nothing was stored"
    )]
    TooLarge(ErrorBody),
    #[response(
        status = 422,
        description = "The bytes do not hash to the address; nothing was stored"
    )]
    HashMismatch(ErrorBody),
}

fn parse_hash(text: &str) -> Result<BlobHash> {
    BlobHash::parse(text).map_err(|e| Error::BadRequest(e.to_string()))
}

/// The day an upload names, which the caller must be allowed to write.
async fn writable_day(state: &AppState, who: &Principal, q: &UploadQuery) -> Result<DocId> {
    let site = SiteId::new(&q.site).map_err(|e| Error::BadRequest(e.to_string()))?;
    let doc = DocId::Day(site, q.date);
    let (who, d) = (who.clone(), doc.clone());
    if state.auth(move |a| a.access(&who, &d)).await? != Access::Write {
        return Err(Error::Forbidden(format!("no grant to write {doc}")));
    }
    let limit = state.connection_limits().blob_bytes as u64;
    if q.size > limit {
        return Err(Error::TooLarge(limit as usize));
    }
    sitesync_core::attachments::ByteSize::new(q.size).map_err(|e| Error::BadRequest(e.to_string()))?;
    Ok(doc)
}

/// The lock of this device's upload of a blob, or 409 while another request holds it.
async fn lock(state: &AppState, who: &Principal, hash: &BlobHash) -> Result<crate::blobs::StagingLock> {
    state
        .staging()
        .lock(&who.device_id, hash, LOCK_WAIT)
        .await
        .ok_or_else(|| Error::Conflict("another request is sending this file; try again".into()))
}

/// Appends `bytes` at `at` to this device's staged upload; returns where it ends now.
async fn stage(state: &AppState, who: &Principal, hash: &BlobHash, at: u64, bytes: Vec<u8>) -> Result<u64> {
    let (device, h) = (who.device_id.clone(), hash.clone());
    state.blobs(move |_, s| s.append(&device, &h, at, &bytes)).await
}

/// Where this device's upload of a blob stands.
async fn upload_state(state: &AppState, who: &Principal, hash: &BlobHash, doc: &DocId) -> Result<UploadState> {
    let (h, d) = (hash.clone(), doc.to_string());
    let claimed = state.auth(move |a| Ok(a.blob_claims(h.as_str())?.contains(&d))).await?;
    let (h, device) = (hash.clone(), who.device_id.clone());
    let stored = state
        .blobs(move |b, s| Ok((b.size(&h)?, s.offset(&device, &h)?)))
        .await?;
    Ok(match (claimed, stored) {
        (true, (Some(size), _)) => UploadState {
            offset: size,
            complete: true,
        },
        (_, (_, offset)) => UploadState {
            offset,
            complete: false,
        },
    })
}

/// How many bytes of a blob the server holds from this device, or that it is stored for the day.
#[utoipa::path(get, path = "/v1/blobs/{sha256}/upload", params(("sha256" = String, Path, description = "The file's SHA-256, hex"), UploadQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "Where the upload stands", body = UploadState), Refusals, UploadRefusals))]
pub async fn upload_offset(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(sha256): Path<String>,
    QueryParams(q): QueryParams<UploadQuery>,
) -> Result<Json<UploadState>> {
    let hash = parse_hash(&sha256)?;
    let doc = writable_day(&state, &who, &q).await?;
    let _lock = lock(&state, &who, &hash).await?;
    Ok(Json(upload_state(&state, &who, &hash, &doc).await?))
}

/// Sends a blob's bytes from `offset` on (the body is raw bytes). Bytes are kept as they arrive; the
/// upload completes when the staged file reaches `size` and hashes to the address.
#[utoipa::path(put, path = "/v1/blobs/{sha256}/upload", params(("sha256" = String, Path, description = "The file's SHA-256, hex"), UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file's bytes from `offset` on"),
    security(("bearer" = [])),
    responses((status = 200, description = "Where the upload stands now", body = UploadState), Refusals, UploadRefusals))]
pub async fn upload(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(sha256): Path<String>,
    QueryParams(q): QueryParams<UploadQuery>,
    body: Body,
) -> Result<Json<UploadState>> {
    let hash = parse_hash(&sha256)?;
    let doc = writable_day(&state, &who, &q).await?;
    let _lock = lock(&state, &who, &hash).await?;
    let now = upload_state(&state, &who, &hash, &doc).await?;
    if now.complete {
        return Ok(Json(now));
    }
    let offset = q.offset.unwrap_or(0);
    if offset != now.offset {
        return Err(Error::Conflict(format!(
            "the upload is at byte {}, not {offset}; continue from there",
            now.offset
        )));
    }
    let mut at = offset;
    let mut pending: Vec<u8> = Vec::new();
    let mut stream = body.into_data_stream();
    let mut cut = false;
    loop {
        let piece = match tokio::time::timeout(IDLE_BODY, stream.next()).await {
            Ok(Some(piece)) => piece,
            Ok(None) => break,
            Err(_) => {
                cut = true;
                break;
            }
        };
        let Ok(piece) = piece else {
            // The connection broke (or the body passed the route's limit): keep what arrived.
            cut = true;
            break;
        };
        if at + (pending.len() + piece.len()) as u64 > q.size {
            let (device, h) = (who.device_id.clone(), hash.clone());
            state.blobs(move |_, s| s.discard(&device, &h)).await?;
            return Err(Error::BadRequest(format!(
                "more bytes than the declared size {}; the upload starts again",
                q.size
            )));
        }
        state.metrics().blob_bytes_uploaded.inc_by(piece.len() as u64);
        pending.extend_from_slice(&piece);
        if pending.len() >= FLUSH {
            at = stage(&state, &who, &hash, at, std::mem::take(&mut pending)).await?;
        }
    }
    // What is reported as arrived is durable where the engine stages uploads.
    if !pending.is_empty() {
        at = stage(&state, &who, &hash, at, pending).await?;
    }
    if cut || at < q.size {
        return Ok(Json(UploadState {
            offset: at,
            complete: false,
        }));
    }
    let (device, h) = (who.device_id.clone(), hash.clone());
    state.blobs(move |b, s| s.store(b, &device, &h)).await?;
    let (h, d, device, size) = (hash.clone(), doc.to_string(), who.device_id.clone(), q.size);
    state.auth(move |a| a.claim_blob(h.as_str(), &d, &device, size)).await?;
    Ok(Json(UploadState {
        offset: q.size,
        complete: true,
    }))
}

/// Whether the caller may read the blob: a day it was uploaded for is readable by the caller and
/// references it. Otherwise 403, whether or not the blob exists.
async fn readable(state: &AppState, who: &Principal, hash: &BlobHash) -> Result<()> {
    let (h, who) = (hash.clone(), who.clone());
    let found = state
        .read(move |auth, store| {
            for doc in auth.blob_claims(h.as_str())? {
                let Ok(id) = doc.parse::<DocId>() else { continue };
                if auth.access(&who, &id)? != Access::None && store.references_blob(&id, &h)? {
                    return Ok(true);
                }
            }
            Ok(false)
        })
        .await?;
    if found {
        Ok(())
    } else {
        // The same answer whether the blob exists or not: a hash is no way to probe other sites.
        Err(Error::Forbidden(format!("no day you may read references blob {hash}")))
    }
}

/// The first byte a `Range: bytes=N-` header asks for (other forms are served whole).
fn range_start(headers: &HeaderMap) -> Option<u64> {
    let v = headers.get(header::RANGE)?.to_str().ok()?;
    let rest = v.strip_prefix("bytes=")?;
    let (start, end) = rest.split_once('-')?;
    if !end.is_empty() {
        return None;
    }
    start.parse().ok()
}

/// The bytes of a blob, to a caller who may read a day that references it. `Range: bytes=N-`
/// resumes an interrupted download (206).
#[utoipa::path(get, path = "/v1/blobs/{sha256}", params(("sha256" = String, Path, description = "The file's SHA-256, hex")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The bytes", content_type = "application/octet-stream"),
        (status = 206, description = "The bytes from the range's start", content_type = "application/octet-stream"),
        Refusals, NotFound))]
pub async fn download(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(sha256): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let hash = parse_hash(&sha256)?;
    readable(&state, &who, &hash).await?;
    let h = hash.clone();
    let Some(size) = state.blobs(move |b, _| b.size(&h)).await? else {
        return Err(Error::NotFound(format!("no blob {hash} in a day you may read")));
    };
    let start = range_start(&headers).unwrap_or(0).min(size);
    let status = if start > 0 {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let pieces = futures_util::stream::unfold(start, move |at| {
        let (state, h) = (state.clone(), hash.clone());
        async move {
            if at >= size {
                return None;
            }
            let piece = state.blobs(move |b, _| b.read_range(&h, at, PIECE)).await;
            match piece {
                Ok(p) if !p.is_empty() => {
                    let next = at + p.len() as u64;
                    state.metrics().blob_bytes_downloaded.inc_by(p.len() as u64);
                    Some((Ok::<_, std::io::Error>(p), next))
                }
                Ok(_) => None,
                Err(e) => Some((Err(std::io::Error::other(e.to_string())), size)),
            }
        }
    });
    let mut response = (
        status,
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, (size - start).to_string()),
            (header::ACCEPT_RANGES, "bytes".to_string()),
        ],
        Body::from_stream(pieces),
    )
        .into_response();
    if start > 0 {
        let value = format!("bytes {start}-{}/{size}", size.saturating_sub(1));
        if let Ok(v) = value.parse() {
            response.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(response)
}

/// A JPEG thumbnail (at most 256 px) of an image blob, made once and cached; 404 for files that
/// are not images this server decodes.
#[utoipa::path(get, path = "/v1/blobs/{sha256}/thumbnail", params(("sha256" = String, Path, description = "The file's SHA-256, hex")),
    security(("bearer" = [])),
    responses((status = 200, description = "The thumbnail", content_type = "image/jpeg"), Refusals, NotFound))]
pub async fn thumbnail(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(sha256): Path<String>,
) -> Result<Response> {
    let hash = parse_hash(&sha256)?;
    readable(&state, &who, &hash).await?;
    let jpeg = state
        .blobs(move |b, _| {
            if let Some(t) = b.thumbnail(&hash)? {
                return Ok(t);
            }
            let size = b
                .size(&hash)?
                .ok_or_else(|| Error::NotFound(format!("no blob {hash} in a day you may read")))?;
            let bytes = b.read_range(&hash, 0, size as usize)?;
            let t = sitesync_core::attachments::thumbnail(&bytes)
                .ok_or_else(|| Error::NotFound(format!("blob {hash} is not an image with a thumbnail")))?;
            b.put_thumbnail(&hash, &t)?;
            Ok(t)
        })
        .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "private, max-age=31536000, immutable"),
        ],
        jpeg,
    )
        .into_response())
}
