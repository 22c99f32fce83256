//! `GET /v1/sync`: the upgrade to a sync connection (`crate::sync_conn`, `docs/protocol.md`).

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sitesync_core::sync::protocol::{self, MAX_FRAME};

use crate::error::{Error, Result};
use crate::http::Refusals;
use crate::http::caller::principal_of;
use crate::state::AppState;
use crate::sync_conn::websocket::Upgrade;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Bytes a sync connection reads from its socket at a time. Allocated up front for every open
/// connection, so it is most of what an idle device costs: 4 KiB (2026-11-30, 2,000 idle devices
/// on loopback, `tests/tests/sync/idle_memory.rs`: 15.4 KB per connection with 8 KiB, 12.0 KB with
/// 4 KiB and the step's state boxed). A phone's frames are a few hundred bytes to a few KiB; a
/// larger one grows the buffer for as long as it takes.
const READ_BUFFER: usize = 4 * 1024;

/// What the phone's [`protocol::VERSION_HEADER`] says: `None` without one (a phone from before
/// version 3), `Some(None)` when it is not a version number at all.
fn declared_version(headers: &HeaderMap) -> Option<Option<u8>> {
    headers
        .get(protocol::VERSION_HEADER)
        .map(|v| v.to_str().ok().and_then(|v| v.trim().parse().ok()))
}

/// The sync WebSocket (see docs/protocol.md): binary frames, bearer device token (or the dashboard's
/// session cookie from the server's own page only). A phone says its protocol version in
/// `X-Sitesync-Protocol`; one the server no longer speaks gets 426 with the reason, one a version
/// behind (or from before the header) is upgraded with `X-Sitesync-Update: available`.
#[utoipa::path(get, path = "/v1/sync", security(("bearer" = [])),
    params(("X-Sitesync-Protocol" = Option<u8>, Header,
        description = "The sync protocol version the phone speaks (from version 3; absent: version 2)")),
    responses(
        (status = 101, description = "Switching to the sync protocol; `X-Sitesync-Protocol` is the \
            server's current version, `X-Sitesync-Update: available` when the phone's is older, \
            `X-Sitesync-Credentials` 16 hex digits that change when the device's certificate \
            (`/v1/device/certificate`) would"),
        (status = 426, description = "The server no longer speaks the phone's protocol version \
            (`X-Sitesync-Update: required`); the body says why, for a person", body = String,
            content_type = "text/plain"),
        Refusals))]
pub async fn sync(State(state): State<AppState>, headers: HeaderMap, ws: Upgrade) -> Result<Response> {
    // A connection attempt counts as a sync message (its rate), not as an API request.
    let who = principal_of(&state, &headers, true).await?;
    let declared = declared_version(&headers);
    let update_available = match declared {
        None => true,
        Some(Some(v)) if protocol::speaks(v) => v < protocol::VERSION,
        Some(v) => {
            let reason = match v {
                Some(v) => protocol::refusal_text(v),
                None => format!("{} is not a protocol version number", protocol::VERSION_HEADER),
            };
            tracing::info!(device = %who.device_id, ?v, "refused a sync protocol version at the upgrade");
            return Ok((
                StatusCode::UPGRADE_REQUIRED,
                [(protocol::UPDATE_HEADER, "required")],
                reason,
            )
                .into_response());
        }
    };
    state.guard().sync_attempt(&who.device_id).map_err(|wait| {
        state.metrics().rate_limited.sync_connect.inc();
        Error::TooManyRequests(wait)
    })?;
    let ticket = state.guard().open_connection(&who.device_id).ok_or_else(|| {
        state.metrics().rate_limited.connections_per_device.inc();
        Error::TooManyRequests(std::time::Duration::from_secs(10))
    })?;
    // Every log line of the connection names it, its device, and the request that opened it.
    let span = tracing::info_span!(
        "sync",
        conn_id = %crate::logs::new_id(),
        device = %who.device_id,
        request_id = %crate::logs::request_id(&headers),
    );
    // What the app says of itself, for the devices page; a failed write costs the page one row's
    // freshness, never the sync.
    let reported = reported(&headers);
    let at = chrono::Utc::now().to_rfc3339();
    let principal = who.clone();
    // And what its site-mesh credentials say, so the phone asks for new ones only when they
    // changed. Either failing costs no sync: a page row's freshness, or a request the phone makes.
    let (recorded, credentials_tag) = state
        .auth(move |a| {
            Ok((
                a.record_connection(&principal.device_id, &at, &reported),
                a.credentials_tag(&principal),
            ))
        })
        .await
        .unwrap_or_else(|e| (Err(e), Err(Error::Internal("the auth store did not answer".into()))));
    if let Err(e) = recorded {
        tracing::warn!(error = %e, "the device's connection could not be recorded");
    }
    let config = WebSocketConfig::default()
        // Small read buffers: tungstenite zeroes its whole buffer on every read, and most frames
        // are a few hundred bytes (the 128 KiB default cost more CPU than the rest of a push).
        .read_buffer_size(READ_BUFFER)
        .max_message_size(Some(MAX_FRAME))
        .max_frame_size(Some(MAX_FRAME));
    let mut response = ws
        .on_upgrade(config, move |socket| {
            tracing::Instrument::instrument(
                async move {
                    // The connection counts against the device's limit while it is served.
                    let _ticket = ticket;
                    tracing::info!("sync connection open");
                    crate::sync_conn::socket::serve(state, socket, who.device_id).await;
                    tracing::info!("sync connection closed");
                },
                span,
            )
        })
        .into_response();
    let out = response.headers_mut();
    out.insert(
        protocol::VERSION_HEADER,
        HeaderValue::from(u16::from(protocol::VERSION)),
    );
    if update_available {
        out.insert(protocol::UPDATE_HEADER, HeaderValue::from_static("available"));
    }
    if let Ok(tag) = credentials_tag
        && let Ok(v) = HeaderValue::from_str(&tag)
    {
        out.insert(protocol::CREDENTIALS_HEADER, v);
    }
    Ok(response)
}

/// The `X-Sitesync-App`, `-Protocol` and `-Pending` headers of an upgrade (docs/protocol.md): each
/// optional, a text cut to 64 printable characters, a count that does not parse left out.
fn reported(headers: &HeaderMap) -> crate::auth::Reported {
    let text = |name: &str| -> String {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().filter(|c| !c.is_control()).take(64).collect())
            .unwrap_or_default()
    };
    crate::auth::Reported {
        app_version: text(APP_HEADER),
        protocol: text(protocol::VERSION_HEADER),
        pending: text(PENDING_HEADER).trim().parse().ok(),
    }
}

/// The app's name and version, e.g. `sitesync-core/0.1.0`.
pub const APP_HEADER: &str = "x-sitesync-app";
/// Documents the phone holds with changes the server has not acknowledged.
pub const PENDING_HEADER: &str = "x-sitesync-pending";
