//! The admin API under `/v1/admin/`: organisations, sites, users, grants, devices and company
//! imports, for an admin device of the org (the operators' admin acts on every org). The operations
//! themselves are `crate::admin`'s, shared with the `sitesync-server admin` subcommands.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use serde::Deserialize;
use sitesync_core::import::Company;

use crate::admin::{self, ImportReport, NewSite};
use crate::audit;
use crate::auth::{Principal, Role};
use crate::error::{Error, Result};
use crate::http::caller::{Caller, authenticate};
use crate::http::extract::JsonBody;
use crate::http::{BodyRefusals, Conflict, NotFound, Refusals};
use crate::state::AppState;

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
    responses((status = 200, body = ImportReport), Refusals, BodyRefusals, Conflict))]
pub async fn admin_import(
    State(state): State<AppState>,
    headers: HeaderMap,
    // Authenticated before the body is read: a stranger learns nothing from a 400.
    _caller: Caller,
    JsonBody(company): JsonBody<Company>,
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
pub struct NewOrg {
    id: String,
    name: String,
}

/// Creates or renames an organisation.
#[utoipa::path(post, path = "/v1/admin/orgs", request_body = NewOrg, security(("bearer" = [])), responses((status = 200), Refusals, BodyRefusals, NotFound, Conflict))]
pub async fn admin_org(
    State(state): State<AppState>,
    headers: HeaderMap,
    // Authenticated before the body is read: a stranger learns nothing from a 400.
    _caller: Caller,
    JsonBody(org): JsonBody<NewOrg>,
) -> Result<impl IntoResponse> {
    let who = admin(&state, &headers, Some(&org.id)).await?;
    admin_event(&who, &format!("put org {}", org.id));
    state.auth(move |a| a.put_org(&org.id, &org.name)).await?;
    Ok(Json(serde_json::json!({ "ok": true })))
}

/// Creates a site (with an empty roster) in an organisation.
#[utoipa::path(post, path = "/v1/admin/sites", request_body(content = Object, description = "{org, site: {id, code, name, timezone}}"),
    security(("bearer" = [])), responses((status = 200), Refusals, BodyRefusals, NotFound, Conflict))]
pub async fn admin_site(
    State(state): State<AppState>,
    headers: HeaderMap,
    // Authenticated before the body is read: a stranger learns nothing from a 400.
    _caller: Caller,
    JsonBody(site): JsonBody<NewSite>,
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
pub struct NewUser {
    org: String,
    id: String,
    name: String,
    role: String,
    #[serde(default)]
    all_sites: bool,
}

/// Creates or updates a user.
#[utoipa::path(post, path = "/v1/admin/users", request_body = NewUser, security(("bearer" = [])), responses((status = 200), Refusals, BodyRefusals, NotFound, Conflict))]
pub async fn admin_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    // Authenticated before the body is read: a stranger learns nothing from a 400.
    _caller: Caller,
    JsonBody(u): JsonBody<NewUser>,
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
pub struct NewGrant {
    user: String,
    site: String,
}

/// Grants a user a site of their org.
#[utoipa::path(post, path = "/v1/admin/grants", request_body = NewGrant, security(("bearer" = [])), responses((status = 200), Refusals, BodyRefusals, NotFound, Conflict))]
pub async fn admin_grant(
    State(state): State<AppState>,
    headers: HeaderMap,
    // Authenticated before the body is read: a stranger learns nothing from a 400.
    _caller: Caller,
    JsonBody(g): JsonBody<NewGrant>,
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
pub struct NewDevice {
    user: String,
    #[serde(default)]
    label: String,
}

/// Enrolls a device for a user; the token in the answer is shown only once.
#[utoipa::path(post, path = "/v1/admin/devices", request_body = NewDevice, security(("bearer" = [])), responses((status = 200), Refusals, BodyRefusals, NotFound, Conflict))]
pub async fn admin_device(
    State(state): State<AppState>,
    headers: HeaderMap,
    // Authenticated before the body is read: a stranger learns nothing from a 400.
    _caller: Caller,
    JsonBody(d): JsonBody<NewDevice>,
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
    security(("bearer" = [])), responses((status = 200), Refusals, NotFound))]
pub async fn admin_revoke(
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
