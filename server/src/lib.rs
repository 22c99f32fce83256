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
pub mod auth;
pub mod error;
pub mod session;
pub mod state;

use std::future::Future;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use sitesync_core::import::Company;
use sitesync_core::sync::protocol::MAX_FRAME;

pub use crate::auth::{Principal, Role};
pub use crate::error::{Error, Result};
pub use crate::state::AppState;

/// The HTTP routes.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/sync", get(sync))
        .route("/v1/admin/import", post(admin_import))
        .route("/v1/admin/orgs", post(admin_org))
        .route("/v1/admin/sites", post(admin_site))
        .route("/v1/admin/users", post(admin_user))
        .route("/v1/admin/grants", post(admin_grant))
        .route("/v1/admin/devices", post(admin_device))
        .route("/v1/admin/devices/{device}/revoke", post(admin_revoke))
        .with_state(state)
}

/// Serves until `shutdown` completes, then closes live sync connections and drains.
pub async fn run(
    listener: tokio::net::TcpListener,
    state: AppState,
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
    let closing = state.clone();
    let result = axum::serve(listener, app(state))
        .with_graceful_shutdown(async move {
            shutdown.await;
            closing.begin_shutdown();
        })
        .await;
    poller.abort();
    result
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// The bearer token of a request.
fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(|t| t.trim().to_string())
}

/// The principal behind the request's bearer token.
async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Principal> {
    let token = bearer(headers).ok_or(Error::Unauthorized)?;
    state
        .auth(move |a| a.authenticate(&token))
        .await?
        .ok_or(Error::Unauthorized)
}

async fn sync(State(state): State<AppState>, headers: HeaderMap, ws: WebSocketUpgrade) -> Result<impl IntoResponse> {
    let who = authenticate(&state, &headers).await?;
    Ok(ws
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| session::serve(state, socket, who.device_id)))
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

async fn admin_import(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(company): Json<Company>,
) -> Result<impl IntoResponse> {
    admin(&state, &headers, Some(company.org.id.as_str())).await?;
    let report = state
        .both(move |auth, store| admin::import_company(auth, store, &company))
        .await?;
    let _ = state.notify_changes().await;
    Ok(Json(report))
}

#[derive(Deserialize)]
struct NewOrg {
    id: String,
    name: String,
}

async fn admin_org(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(org): Json<NewOrg>,
) -> Result<impl IntoResponse> {
    admin(&state, &headers, Some(&org.id)).await?;
    state.auth(move |a| a.put_org(&org.id, &org.name)).await?;
    Ok(Json(serde_json::json!({ "ok": true })))
}

async fn admin_site(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(site): Json<admin::NewSite>,
) -> Result<impl IntoResponse> {
    admin(&state, &headers, Some(&site.org)).await?;
    state
        .both(move |auth, store| admin::add_site(auth, store, &site))
        .await?;
    let _ = state.notify_changes().await;
    Ok(Json(serde_json::json!({ "ok": true })))
}

#[derive(Deserialize)]
struct NewUser {
    org: String,
    id: String,
    name: String,
    role: String,
    #[serde(default)]
    all_sites: bool,
}

async fn admin_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(u): Json<NewUser>,
) -> Result<impl IntoResponse> {
    admin(&state, &headers, Some(&u.org)).await?;
    let role = Role::parse(&u.role)?;
    state
        .auth(move |a| a.put_user(&u.org, &u.id, &u.name, role, u.all_sites))
        .await?;
    Ok(Json(serde_json::json!({ "ok": true })))
}

#[derive(Deserialize)]
struct NewGrant {
    user: String,
    site: String,
}

async fn admin_grant(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(g): Json<NewGrant>,
) -> Result<impl IntoResponse> {
    let site = g.site.clone();
    let org = state
        .auth(move |a| a.site_org(&site))
        .await?
        .ok_or_else(|| Error::NotFound(format!("site {}", g.site)))?;
    admin(&state, &headers, Some(&org)).await?;
    state.auth(move |a| a.grant(&g.user, &g.site)).await?;
    Ok(Json(serde_json::json!({ "ok": true })))
}

#[derive(Deserialize)]
struct NewDevice {
    user: String,
    #[serde(default)]
    label: String,
}

async fn admin_device(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(d): Json<NewDevice>,
) -> Result<impl IntoResponse> {
    let who = admin(&state, &headers, None).await?;
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
        })
        .await?;
    Ok(Json(serde_json::json!({ "device_id": device_id, "token": token })))
}

async fn admin_revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(device): Path<String>,
) -> Result<impl IntoResponse> {
    let who = admin(&state, &headers, None).await?;
    state
        .auth(move |a| {
            if who.org_id != admin::SYSTEM_ORG && a.device_org(&device)?.as_deref() != Some(who.org_id.as_str()) {
                return Err(Error::Forbidden("an org admin revokes only their org's devices".into()));
            }
            a.revoke_device(&device)
        })
        .await?;
    Ok(Json(serde_json::json!({ "ok": true })))
}
