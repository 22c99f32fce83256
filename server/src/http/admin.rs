//! The admin API under `/v1/admin/`: organisations, sites, users, grants, devices and company
//! imports, for an admin device of the org (the operators' admin acts on every org). The operations
//! themselves are `crate::admin`'s, shared with the `sitesync-server admin` subcommands.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use serde::Deserialize;
use sitesync_core::import::Company;

use crate::admin::{self, ImportReport, NewSite};
use crate::audit;
use crate::auth::{Principal, Role};
use crate::error::{Error, Result};
use crate::http::caller::Caller;
use crate::http::extract::JsonBody;
use crate::http::{BodyRefusals, Conflict, NotFound, Refusals};
use crate::state::AppState;

/// An admin device calling the admin API. Made from the principal the request was authenticated as
/// ([`Caller`]), never by authenticating again: each authentication counts against the rate.
pub(crate) struct Admin(pub(crate) Principal);

impl Admin {
    /// The caller, if it is an admin device.
    pub(crate) fn of(Caller(who): Caller) -> Result<Admin> {
        if who.role != Role::Admin {
            return Err(Error::Forbidden("the admin API needs an admin device".into()));
        }
        Ok(Admin(who))
    }

    /// Refuses, saying `refusal`, unless this admin administers `org`: their own org, or every org
    /// for the operators' admin. An org not known (`None`) is the operators' admin's alone, so that
    /// an org admin learns nothing of it.
    pub(crate) fn check_org(&self, org: Option<&str>, refusal: &str) -> Result<()> {
        if self.0.org_id == admin::SYSTEM_ORG || org == Some(self.0.org_id.as_str()) {
            return Ok(());
        }
        Err(Error::Forbidden(format!("an org admin {refusal}")))
    }

    /// Audits a change made through the admin API, with the admin who made it.
    pub(crate) fn event(&self, action: &str) {
        audit::event("admin", Some(&self.0.device_id), Some(&self.0.user_id), action);
    }
}

/// What an org admin is told when the org is another's.
pub(crate) const OWN_ORG: &str = "administers only their org";

/// Imports a company.json (org, sites with master data, users, grants).
#[utoipa::path(post, path = "/v1/admin/import", request_body(content = Object, description = "company.json"), security(("bearer" = [])),
    responses((status = 200, body = ImportReport), Refusals, BodyRefusals, Conflict))]
pub async fn admin_import(
    State(state): State<AppState>,
    // Authenticated before the body is read: a stranger learns nothing from a 400.
    caller: Caller,
    JsonBody(company): JsonBody<Company>,
) -> Result<impl IntoResponse> {
    let admin = Admin::of(caller)?;
    admin.check_org(Some(company.org.id.as_str()), OWN_ORG)?;
    let report = state
        .both(move |auth, store| admin::import_company(auth, store, &company))
        .await?;
    admin.event(&format!("import org {}", report.org));
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
    // Authenticated before the body is read: a stranger learns nothing from a 400.
    caller: Caller,
    JsonBody(org): JsonBody<NewOrg>,
) -> Result<impl IntoResponse> {
    let admin = Admin::of(caller)?;
    admin.check_org(Some(&org.id), OWN_ORG)?;
    admin.event(&format!("put org {}", org.id));
    state.auth(move |a| a.put_org(&org.id, &org.name)).await?;
    Ok(Json(serde_json::json!({ "ok": true })))
}

/// Creates a site (with an empty roster) in an organisation.
#[utoipa::path(post, path = "/v1/admin/sites", request_body(content = Object, description = "{org, site: {id, code, name, timezone}}"),
    security(("bearer" = [])), responses((status = 200), Refusals, BodyRefusals, NotFound, Conflict))]
pub async fn admin_site(
    State(state): State<AppState>,
    // Authenticated before the body is read: a stranger learns nothing from a 400.
    caller: Caller,
    JsonBody(site): JsonBody<NewSite>,
) -> Result<impl IntoResponse> {
    let admin = Admin::of(caller)?;
    admin.check_org(Some(&site.org), OWN_ORG)?;
    admin.event(&format!("put site {} in org {}", site.site.id, site.org));
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
    // Authenticated before the body is read: a stranger learns nothing from a 400.
    caller: Caller,
    JsonBody(u): JsonBody<NewUser>,
) -> Result<impl IntoResponse> {
    let admin = Admin::of(caller)?;
    admin.check_org(Some(&u.org), OWN_ORG)?;
    let role = crate::auth::parse_role(&u.role)?;
    admin.event(&format!("put user {} ({}) in org {}", u.id, role.as_str(), u.org));
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
    // Authenticated before the body is read: a stranger learns nothing from a 400.
    caller: Caller,
    JsonBody(g): JsonBody<NewGrant>,
) -> Result<impl IntoResponse> {
    // The role is checked before anything is looked up: an unknown site must tell a stranger nothing.
    let admin = Admin::of(caller)?;
    let site = g.site.clone();
    let org = state
        .auth(move |a| a.site_org(&site))
        .await?
        .ok_or_else(|| Error::NotFound(format!("site {}", g.site)))?;
    admin.check_org(Some(&org), OWN_ORG)?;
    admin.event(&format!("grant {} site {}", g.user, g.site));
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
    // Authenticated before the body is read: a stranger learns nothing from a 400.
    caller: Caller,
    JsonBody(d): JsonBody<NewDevice>,
) -> Result<impl IntoResponse> {
    let admin = Admin::of(caller)?;
    let (by, user) = (Admin(admin.0.clone()), d.user.clone());
    let (device_id, token) = state
        .auth(move |a| {
            let org = a.user_org(&d.user)?;
            let org = org.ok_or_else(|| Error::NotFound(format!("user {}", d.user)))?;
            by.check_org(Some(&org), "enrolls devices only in their org")?;
            a.add_device(&d.user, &d.label)
        })
        .await?;
    admin.event(&format!("enroll device {device_id} for user {user}"));
    Ok(Json(serde_json::json!({ "device_id": device_id, "token": token })))
}

/// Revokes a device: its live connections close at once (on every node), and its token is refused.
#[utoipa::path(post, path = "/v1/admin/devices/{device}/revoke", params(("device" = String, Path, description = "Device id")),
    security(("bearer" = [])), responses((status = 200), Refusals, NotFound))]
pub async fn admin_revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(device): Path<String>,
) -> Result<impl IntoResponse> {
    let admin = Admin::of(caller)?;
    let (by, d) = (Admin(admin.0.clone()), device.clone());
    state
        .auth(move |a| {
            by.check_org(a.device_org(&d)?.as_deref(), "revokes only their org's devices")?;
            a.revoke_device(&d)
        })
        .await?;
    state.revoked(&device);
    audit::event(
        "revoke",
        Some(&device),
        None,
        &format!("by device {} of user {}", admin.0.device_id, admin.0.user_id),
    );
    Ok(Json(serde_json::json!({ "ok": true })))
}
