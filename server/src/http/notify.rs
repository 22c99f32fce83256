//! The reminder channels under `/v1/admin/notify`: list, add, remove, and the delivery log, for
//! the org's admin (the operators' admin for every org). The same operations as `sitesync-server
//! admin notify …`; the rules and delivery are `crate::reminders`'.

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Attempt;
use crate::error::{Error, Result};
use crate::http::admin::{Admin, OWN_ORG};
use crate::http::caller::Caller;
use crate::http::extract::{JsonBody, QueryParams};
use crate::http::{BodyRefusals, NotFound, Refusals};
use crate::reminders::channel::{Channel, ChannelView, NewChannel};
use crate::state::AppState;

/// Which org's channels or log.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrgQuery {
    /// The org; default the caller's own.
    #[param(pattern = r"^[^\s|]{1,100}$")]
    org: Option<String>,
    /// Log entries answered at most, newest first (default 200, at most 1000).
    limit: Option<i64>,
}

impl OrgQuery {
    /// The org asked for, checked against the admin's.
    fn org(&self, admin: &Admin) -> Result<String> {
        let org = self.org.clone().unwrap_or_else(|| admin.0.org_id.clone());
        admin.check_org(Some(&org), OWN_ORG)?;
        Ok(org)
    }
}

/// The org's reminder channels (secrets are never shown).
#[utoipa::path(get, path = "/v1/admin/notify", params(OrgQuery), security(("bearer" = [])),
    responses((status = 200, body = Vec<ChannelView>), Refusals))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<OrgQuery>,
) -> Result<Json<Vec<ChannelView>>> {
    let admin = Admin::of(caller)?;
    let org = q.org(&admin)?;
    let rows = state.auth(move |a| a.channels(Some(&org))).await?;
    let views = rows
        .iter()
        .map(|r| Channel::try_from(r).map(|c| c.view()))
        .collect::<Result<_>>()?;
    Ok(Json(views))
}

/// What adding a channel answers.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Added {
    /// The new channel's id.
    pub id: String,
}

/// Adds a reminder channel to an org: a WeCom, DingTalk or Feishu bot's webhook, or a generic
/// JSON webhook, with the rules it receives (default all), whom it mentions, and quiet hours.
#[utoipa::path(post, path = "/v1/admin/notify", request_body = NewChannel, security(("bearer" = [])),
    responses((status = 200, body = Added), Refusals, BodyRefusals))]
pub async fn add(
    State(state): State<AppState>,
    // Authenticated before the body is read: a stranger learns nothing from a 400.
    caller: Caller,
    JsonBody(new): JsonBody<NewChannel>,
) -> Result<Json<Added>> {
    let admin = Admin::of(caller)?;
    admin.check_org(Some(&new.org), OWN_ORG)?;
    let row = new.row()?;
    let org = new.org.clone();
    let stored = state
        .auth(move |a| {
            if !a.org_exists(&org)? {
                return Err(Error::NotFound(format!("org {org}")));
            }
            a.add_channel(&row)
        })
        .await?;
    admin.event(&format!(
        "add reminder channel {} ({}) to org {}",
        stored.channel_id, stored.kind, stored.org_id
    ));
    Ok(Json(Added { id: stored.channel_id }))
}

/// Removes a reminder channel (its delivery log stays).
#[utoipa::path(delete, path = "/v1/admin/notify/{id}", params(("id" = String, Path, description = "Channel id (nc-…)")),
    security(("bearer" = [])), responses((status = 200), Refusals, NotFound))]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>> {
    let admin = Admin::of(caller)?;
    let i = id.clone();
    let found = state.auth(move |a| a.channel(&i)).await?;
    // A channel not found is the operators' admin's alone to learn of.
    admin.check_org(found.as_ref().map(|c| c.org_id.as_str()), OWN_ORG)?;
    if found.is_none() {
        return Err(Error::NotFound(format!("channel {id}")));
    }
    let i = id.clone();
    state.auth(move |a| a.remove_channel(&i)).await?;
    admin.event(&format!("remove reminder channel {id}"));
    Ok(Json(serde_json::json!({ "ok": true })))
}

/// The org's delivery attempts, newest first: each reminder event sent to each channel, with the
/// HTTP status and error of every attempt.
#[utoipa::path(get, path = "/v1/admin/notify/log", params(OrgQuery), security(("bearer" = [])),
    responses((status = 200, body = Vec<Attempt>), Refusals))]
pub async fn log(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<OrgQuery>,
) -> Result<Json<Vec<Attempt>>> {
    let admin = Admin::of(caller)?;
    let org = q.org(&admin)?;
    let limit = q.limit.unwrap_or(200).clamp(1, 1000);
    Ok(Json(state.auth(move |a| a.delivery_log(&org, limit)).await?))
}
