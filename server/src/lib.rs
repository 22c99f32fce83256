//! `sitesync-server`: the relay and head-office service.
//!
//! Phones sync Automerge documents over a WebSocket at `/v1/sync` (see `docs/protocol.md`); the
//! server stores them durably in SQLite (the same store the phones use, in `documents.sqlite3`),
//! checks every message against the device's grants (`server.sqlite3`), and pushes changes live to
//! connected phones.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let state = sitesync_server::AppState::open(std::path::Path::new("./sitesync-data")).unwrap();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! sitesync_server::run(listener, state, std::future::pending()).await
//! # }
//! ```

pub mod admin;
pub mod api;
pub mod audit;
pub mod auth;
pub mod authorship;
pub mod connections;
pub mod demo;
pub mod error;
pub mod export;
pub mod files;
pub mod history;
pub mod limits;
pub mod push;
pub mod report;
pub mod state;
pub mod sync_conn;
pub mod tenancy;
pub mod tls;
pub mod web;

use std::future::Future;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::{Json, Router};
use serde::Deserialize;
use sitesync_core::import::Company;
use sitesync_core::sync::protocol::MAX_FRAME;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use crate::auth::{Principal, Role};
pub use crate::error::{Error, Result};
pub use crate::state::AppState;

/// The OpenAPI document's fixed parts; the paths come from the routes themselves.
#[derive(OpenApi)]
#[openapi(
    info(title = "sitesync", description = "Offline-first day-labor and progress logging: sync, reports, approvals, administration."),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

/// Declares the bearer device token every route but `/healthz` takes.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The routes and the OpenAPI document generated from them (so the two cannot disagree).
pub fn routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(sync))
        .routes(routes!(api::labor_report))
        .routes(routes!(api::attendance_report))
        .routes(routes!(api::progress_report))
        .routes(routes!(api::anomaly_report))
        .routes(routes!(api::okr_report))
        .routes(routes!(api::decide, api::queue))
        .routes(routes!(web::sign_in, web::whoami, web::sign_out))
        .routes(routes!(web::events))
        .routes(routes!(history::history))
        .routes(routes!(history::refusals))
        .routes(routes!(history::evidence_file))
        .routes(routes!(admin_import))
        .routes(routes!(admin_org))
        .routes(routes!(admin_site))
        .routes(routes!(admin_user))
        .routes(routes!(admin_grant))
        .routes(routes!(admin_device))
        .routes(routes!(admin_revoke))
        .split_for_parts()
}

/// The HTTP routes, with the OpenAPI document at `/v1/openapi.json` and the dashboard at `/`; every
/// answer carries the security headers, every request body is limited, every refusal is audited.
pub fn app(state: AppState) -> Router {
    let (router, openapi) = routes();
    let openapi = std::sync::Arc::new(openapi);
    let limits = state.connection_limits();
    router
        .route(
            "/v1/openapi.json",
            axum::routing::get(move || async move { Json(openapi.as_ref().clone()) }),
        )
        .route("/", axum::routing::get(web::index))
        .route("/app.js", axum::routing::get(web::app_js))
        .route("/app.css", axum::routing::get(web::app_css))
        .with_state(state)
        // The limit is `body_limit`'s, per route, for every extractor alike.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(limits, body_limit))
        .layer(axum::middleware::from_fn(web::security_headers))
        .layer(axum::middleware::from_fn(audit::layer))
}

/// The body limit a request is held to (read by `api::JsonBody` to say so in its 413).
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimit(pub usize);

/// Limits every request's body: the company import to `import_bytes`, everything else to
/// `body_bytes`. A declared length over it is a 413 before anything is read; a chunked body is cut
/// off where it passes the limit (also a 413, from the extractor reading it).
async fn body_limit(
    State(limits): State<limits::ConnectionLimits>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let limit = if req.uri().path() == "/v1/admin/import" {
        limits.import_bytes
    } else {
        limits.body_bytes
    };
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Error::TooLarge(limit).into_response();
    }
    req.extensions_mut().insert(BodyLimit(limit));
    let req = req.map(|body| axum::body::Body::new(http_body_util::Limited::new(body, limit)));
    next.run(req).await
}

/// Serves plain HTTP until `shutdown` completes, then closes live sync connections and drains.
pub async fn run(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve(listener, state, None, shutdown).await
}

/// Serves HTTPS with the certificate `tls` holds (reloadable) until `shutdown` completes, then
/// closes live sync connections and drains.
pub async fn run_tls(
    listener: tokio::net::TcpListener,
    state: AppState,
    tls: std::sync::Arc<tls::Tls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve(listener, state, Some(tls), shutdown).await
}

async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    tls: Option<std::sync::Arc<tls::Tls>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Writes made by other processes on the same data directory (admin commands) reach live
    // connections within a second; the server's own writes notify at once.
    let poller = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                tick.tick().await;
                if let Err(e) = state.notify_changes().await {
                    tracing::warn!(error = %e, "change poll failed");
                }
            }
        })
    };
    // What devices confirmed they hold is written down in batches (it only saves resending).
    let recorder = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
            loop {
                tick.tick().await;
                if let Err(e) = state.flush_deliveries().await {
                    tracing::warn!(error = %e, "recording deliveries failed");
                }
                state.guard().tidy();
            }
        })
    };
    // Key results fed by field data follow every change: recomputed from approved data and written
    // into the OKR documents as check-ins by `system`, which phones then receive like any change.
    let feeder = {
        let state = state.clone();
        let mut changes = state.watch_changes();
        let mut pushed = state.subscribe_events();
        tokio::spawn(async move {
            loop {
                let today = chrono::Utc::now().date_naive();
                // Whether each key result may be fed is asked again on every feed: grants change.
                let feed = move |auth: &auth::AuthDb, store: &mut sitesync_core::Store| {
                    Ok(store
                        .refresh_metrics(today, &|org, kr, metric| tenancy::metric_allowed(auth, org, kr, metric))?)
                };
                match state.both(feed).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(check_ins = n, "key results updated from field data");
                        let _ = state.notify_changes().await;
                    }
                    Err(e) => tracing::warn!(error = %e, "key result refresh failed"),
                }
                // At most one recomputation a second however fast pushes come.
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                tokio::select! {
                    changed = changes.changed() => if changed.is_err() { break },
                    event = pushed.recv() => if matches!(event, Err(tokio::sync::broadcast::error::RecvError::Closed)) { break },
                }
                while !matches!(
                    pushed.try_recv(),
                    Err(tokio::sync::broadcast::error::TryRecvError::Empty
                        | tokio::sync::broadcast::error::TryRecvError::Closed)
                ) {}
            }
        })
    };
    let closing = state.clone();
    let state_for_exit = state.clone();
    let limits = state.connection_limits();
    let result = connections::serve(listener, app(state), tls, limits, async move {
        shutdown.await;
        closing.begin_shutdown();
    })
    .await;
    poller.abort();
    feeder.abort();
    recorder.abort();
    if let Err(e) = state_for_exit.flush_deliveries().await {
        tracing::warn!(error = %e, "recording deliveries at shutdown failed");
    }
    result
}

/// Liveness: answers when the server is up.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "Up")))]
async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// The bearer token of a request.
fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(|t| t.trim().to_string())
}

/// The principal behind the request's bearer token, counted against its API request rate.
pub(crate) async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Principal> {
    let who = principal_of(state, headers, false).await?;
    state
        .guard()
        .api_request(&who.device_id)
        .map_err(Error::TooManyRequests)?;
    Ok(who)
}

/// The principal behind the request's bearer token (phones, the API) or dashboard session cookie.
/// A cookie is refused from a page of another origin (SameSite does not tell ports or sibling
/// subdomains apart), and on the sync WebSocket (`websocket`), whose handshake a browser always
/// sends with its origin, unless the origin is the server's own.
async fn principal_of(state: &AppState, headers: &HeaderMap, websocket: bool) -> Result<Principal> {
    let checked = if let Some(token) = bearer(headers) {
        state.auth(move |a| a.check_token(&token)).await?
    } else if let Some(id) = web::cookie_session(headers) {
        match web::origin_of(headers) {
            web::Origin::Other => {
                return Err(Error::Forbidden(
                    "a page of another origin may not use the session".into(),
                ));
            }
            web::Origin::Absent if websocket => {
                return Err(Error::Forbidden(
                    "a sync connection by session cookie must come from this server's page".into(),
                ));
            }
            _ => {}
        }
        let policy = state.browser_sessions();
        let now = chrono::Utc::now().timestamp();
        state.auth(move |a| a.check_browser_session(&id, now, policy)).await?
    } else {
        audit::refuse("no credential");
        return Err(Error::Unauthorized);
    };
    match checked {
        Ok(who) => {
            audit::identify(&who.device_id, Some(&who.user_id));
            Ok(who)
        }
        Err(refusal) => {
            if let Some(device) = &refusal.device {
                audit::identify(device, None);
            }
            audit::refuse(refusal.reason);
            Err(Error::Unauthorized)
        }
    }
}

/// Bytes a sync connection reads from its socket at a time.
const READ_BUFFER: usize = 8 * 1024;

/// The sync WebSocket (see docs/protocol.md): binary frames, bearer device token (or the dashboard's
/// session cookie from the server's own page only).
#[utoipa::path(get, path = "/v1/sync", security(("bearer" = [])),
    responses((status = 101, description = "Switching to the sync protocol"), (status = 401, description = "Unknown or revoked token"),
        (status = 403, description = "A session cookie from a page of another origin")))]
async fn sync(State(state): State<AppState>, headers: HeaderMap, ws: WebSocketUpgrade) -> Result<impl IntoResponse> {
    // A connection attempt counts as a sync message (its rate), not as an API request.
    let who = principal_of(&state, &headers, true).await?;
    state
        .guard()
        .sync_attempt(&who.device_id)
        .map_err(Error::TooManyRequests)?;
    let ticket = state
        .guard()
        .open_connection(&who.device_id)
        .ok_or(Error::TooManyRequests(std::time::Duration::from_secs(10)))?;
    Ok(ws
        // Small read buffers: tungstenite zeroes its whole buffer on every read, and most frames
        // are a few hundred bytes (the 128 KiB default cost more CPU than the rest of a push).
        .read_buffer_size(READ_BUFFER)
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| async move {
            // The connection counts against the device's limit while it is served.
            let _ticket = ticket;
            sync_conn::socket::serve(state, socket, who.device_id).await;
        }))
}

/// Audits a change made through the admin API, with the admin who made it.
fn admin_event(who: &Principal, action: &str) {
    audit::event("admin", Some(&who.device_id), Some(&who.user_id), action);
}

/// An admin principal allowed to act on `org` (the operators' admin acts on every org).
async fn admin(state: &AppState, headers: &HeaderMap, org: Option<&str>) -> Result<Principal> {
    let who = authenticate(state, headers).await?;
    if who.role != Role::Admin {
        return Err(Error::Forbidden("the admin API needs an admin device".into()));
    }
    if let Some(org) = org
        && who.org_id != admin::SYSTEM_ORG
        && who.org_id != org
    {
        return Err(Error::Forbidden("an org admin administers only their org".into()));
    }
    Ok(who)
}

/// Imports a company.json (org, sites with master data, users, grants).
#[utoipa::path(post, path = "/v1/admin/import", request_body(content = Object, description = "company.json"), security(("bearer" = [])),
    responses((status = 200, body = admin::ImportReport), (status = 400, description = "Malformed body", body = error::ErrorBody), (status = 401), (status = 403), (status = 415, description = "Not JSON", body = error::ErrorBody), (status = 429, description = "Too many requests", body = error::ErrorBody)))]
async fn admin_import(
    State(state): State<AppState>,
    headers: HeaderMap,
    // Authenticated before the body is read: a stranger learns nothing from a 400.
    _caller: api::Caller,
    api::JsonBody(company): api::JsonBody<Company>,
) -> Result<impl IntoResponse> {
    let who = admin(&state, &headers, Some(company.org.id.as_str())).await?;
    let report = state
        .both(move |auth, store| admin::import_company(auth, store, &company))
        .await?;
    admin_event(&who, &format!("import org {}", report.org));
    let _ = state.notify_changes().await;
    Ok(Json(report))
}

/// A new organisation.
#[derive(Deserialize, utoipa::ToSchema)]
struct NewOrg {
    id: String,
    name: String,
}

/// Creates or renames an organisation.
#[utoipa::path(post, path = "/v1/admin/orgs", request_body = NewOrg, security(("bearer" = [])), responses((status = 200), (status = 400, description = "Malformed body", body = error::ErrorBody), (status = 401), (status = 403), (status = 404, description = "Unknown user or site", body = error::ErrorBody), (status = 415, description = "Not JSON", body = error::ErrorBody), (status = 429, description = "Too many requests", body = error::ErrorBody)))]
async fn admin_org(
    State(state): State<AppState>,
    headers: HeaderMap,
    // Authenticated before the body is read: a stranger learns nothing from a 400.
    _caller: api::Caller,
    api::JsonBody(org): api::JsonBody<NewOrg>,
) -> Result<impl IntoResponse> {
    let who = admin(&state, &headers, Some(&org.id)).await?;
    admin_event(&who, &format!("put org {}", org.id));
    state.auth(move |a| a.put_org(&org.id, &org.name)).await?;
    Ok(Json(serde_json::json!({ "ok": true })))
}

/// Creates a site (with an empty roster) in an organisation.
#[utoipa::path(post, path = "/v1/admin/sites", request_body(content = Object, description = "{org, site: {id, code, name, timezone}}"),
    security(("bearer" = [])), responses((status = 200), (status = 400, description = "Malformed body", body = error::ErrorBody), (status = 401), (status = 403), (status = 404, description = "Unknown user or site", body = error::ErrorBody), (status = 415, description = "Not JSON", body = error::ErrorBody), (status = 429, description = "Too many requests", body = error::ErrorBody)))]
async fn admin_site(
    State(state): State<AppState>,
    headers: HeaderMap,
    // Authenticated before the body is read: a stranger learns nothing from a 400.
    _caller: api::Caller,
    api::JsonBody(site): api::JsonBody<admin::NewSite>,
) -> Result<impl IntoResponse> {
    let who = admin(&state, &headers, Some(&site.org)).await?;
    admin_event(&who, &format!("put site {} in org {}", site.site.id, site.org));
    state
        .both(move |auth, store| admin::add_site(auth, store, &site))
        .await?;
    let _ = state.notify_changes().await;
    Ok(Json(serde_json::json!({ "ok": true })))
}

/// A new or changed user.
#[derive(Deserialize, utoipa::ToSchema)]
struct NewUser {
    org: String,
    id: String,
    name: String,
    role: String,
    #[serde(default)]
    all_sites: bool,
}

/// Creates or updates a user.
#[utoipa::path(post, path = "/v1/admin/users", request_body = NewUser, security(("bearer" = [])), responses((status = 200), (status = 400, description = "Malformed body", body = error::ErrorBody), (status = 401), (status = 403), (status = 404, description = "Unknown user or site", body = error::ErrorBody), (status = 415, description = "Not JSON", body = error::ErrorBody), (status = 429, description = "Too many requests", body = error::ErrorBody)))]
async fn admin_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    // Authenticated before the body is read: a stranger learns nothing from a 400.
    _caller: api::Caller,
    api::JsonBody(u): api::JsonBody<NewUser>,
) -> Result<impl IntoResponse> {
    let who = admin(&state, &headers, Some(&u.org)).await?;
    let role = crate::auth::parse_role(&u.role)?;
    admin_event(&who, &format!("put user {} ({}) in org {}", u.id, role.as_str(), u.org));
    state
        .auth(move |a| a.put_user(&u.org, &u.id, &u.name, role, u.all_sites))
        .await?;
    Ok(Json(serde_json::json!({ "ok": true })))
}

/// A site grant.
#[derive(Deserialize, utoipa::ToSchema)]
struct NewGrant {
    user: String,
    site: String,
}

/// Grants a user a site of their org.
#[utoipa::path(post, path = "/v1/admin/grants", request_body = NewGrant, security(("bearer" = [])), responses((status = 200), (status = 400, description = "Malformed body", body = error::ErrorBody), (status = 401), (status = 403), (status = 404, description = "Unknown user or site", body = error::ErrorBody), (status = 415, description = "Not JSON", body = error::ErrorBody), (status = 429, description = "Too many requests", body = error::ErrorBody)))]
async fn admin_grant(
    State(state): State<AppState>,
    headers: HeaderMap,
    // Authenticated before the body is read: a stranger learns nothing from a 400.
    _caller: api::Caller,
    api::JsonBody(g): api::JsonBody<NewGrant>,
) -> Result<impl IntoResponse> {
    // Authenticate before looking anything up: an unknown site must tell a stranger nothing.
    admin(&state, &headers, None).await?;
    let site = g.site.clone();
    let org = state
        .auth(move |a| a.site_org(&site))
        .await?
        .ok_or_else(|| Error::NotFound(format!("site {}", g.site)))?;
    let who = admin(&state, &headers, Some(&org)).await?;
    admin_event(&who, &format!("grant {} site {}", g.user, g.site));
    state.auth(move |a| a.grant(&g.user, &g.site)).await?;
    Ok(Json(serde_json::json!({ "ok": true })))
}

/// A device to enroll.
#[derive(Deserialize, utoipa::ToSchema)]
struct NewDevice {
    user: String,
    #[serde(default)]
    label: String,
}

/// Enrolls a device for a user; the token in the answer is shown only once.
#[utoipa::path(post, path = "/v1/admin/devices", request_body = NewDevice, security(("bearer" = [])), responses((status = 200), (status = 400, description = "Malformed body", body = error::ErrorBody), (status = 401), (status = 403), (status = 404, description = "Unknown user or site", body = error::ErrorBody), (status = 415, description = "Not JSON", body = error::ErrorBody), (status = 429, description = "Too many requests", body = error::ErrorBody)))]
async fn admin_device(
    State(state): State<AppState>,
    headers: HeaderMap,
    // Authenticated before the body is read: a stranger learns nothing from a 400.
    _caller: api::Caller,
    api::JsonBody(d): api::JsonBody<NewDevice>,
) -> Result<impl IntoResponse> {
    let who = admin(&state, &headers, None).await?;
    let by = who.clone();
    let (device_id, token) = state
        .auth(move |a| {
            let org: Option<String> = a.user_org(&d.user)?;
            let org = org.ok_or_else(|| Error::NotFound(format!("user {}", d.user)))?;
            if who.org_id != admin::SYSTEM_ORG && who.org_id != org {
                return Err(Error::Forbidden(
                    "an org admin enrolls devices only in their org".into(),
                ));
            }
            a.add_device(&d.user, &d.label)
                .map(|(device, token)| (device, token, d.user))
        })
        .await
        .map(|(device, token, user)| {
            admin_event(&by, &format!("enroll device {device} for user {user}"));
            (device, token)
        })?;
    Ok(Json(serde_json::json!({ "device_id": device_id, "token": token })))
}

/// Revokes a device: it is cut off at its next message.
#[utoipa::path(post, path = "/v1/admin/devices/{device}/revoke", params(("device" = String, Path, description = "Device id")),
    security(("bearer" = [])), responses((status = 200), (status = 401), (status = 403), (status = 404)))]
async fn admin_revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(device): Path<String>,
) -> Result<impl IntoResponse> {
    let who = admin(&state, &headers, None).await?;
    let (by, revoked) = (who.clone(), device.clone());
    state
        .auth(move |a| {
            if who.org_id != admin::SYSTEM_ORG && a.device_org(&device)?.as_deref() != Some(who.org_id.as_str()) {
                return Err(Error::Forbidden("an org admin revokes only their org's devices".into()));
            }
            a.revoke_device(&device)
        })
        .await?;
    audit::event(
        "revoke",
        Some(&revoked),
        None,
        &format!("by device {} of user {}", by.device_id, by.user_id),
    );
    Ok(Json(serde_json::json!({ "ok": true })))
}
