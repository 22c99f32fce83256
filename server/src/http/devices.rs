//! `GET /v1/devices`: the sync health of an org's devices for head office — who each belongs to,
//! when it last connected, what it says it runs and still holds, what the server refused from it,
//! and whether it has gone silent.
//!
//! What the server can know, and what it cannot: it sees each sync connection (its time and the
//! `X-Sitesync-*` headers the app sends, docs/protocol.md) and every change it refused. It cannot
//! see changes a phone made and never pushed; the phone's own count of documents with unacknowledged
//! changes, sent when it connects, is the closest it gets, and is as old as that connection.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;
use sitesync_core::ids::SiteId;
use sitesync_core::store::RowFilter;
use utoipa::ToSchema;

use crate::auth::{DeviceHealth, Role};
use crate::error::{Error, Result};
use crate::http::Refusals;
use crate::http::caller::Caller;
use crate::state::AppState;

/// A device silent this long, with a site that logged nothing on its last full day, is flagged.
const SILENT_AFTER: Duration = Duration::hours(24);

/// A site by id and name.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[allow(missing_docs, reason = "fields named for what they hold")]
pub struct SiteName {
    pub id: String,
    pub name: String,
}

/// A refused change, in short.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RefusalNote {
    /// When (RFC 3339).
    pub at: String,
    /// The rule's stable name (`role_may_not_write`, `invalid_record` …).
    pub rule: String,
    /// Why, in words (English, from the gate).
    pub reason: String,
}

/// One device's sync health.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeviceView {
    /// The device id (`d-…`).
    pub device: String,
    /// The label given at enrolment.
    pub label: String,
    /// Its user's id.
    pub user_id: String,
    /// Its user's name.
    pub user_name: String,
    /// The user's role: `foreman`, `site_manager`, `head_office` or `admin`.
    pub role: String,
    /// Revoked devices are listed, flagged.
    pub revoked: bool,
    /// The last sync connection (RFC 3339); absent for a device that never synced.
    pub last_connection: Option<String>,
    /// The app version the phone reported (`X-Sitesync-App`); empty when it sent none.
    pub app_version: String,
    /// The protocol version the phone reported (`X-Sitesync-Protocol`); empty when it sent none.
    pub protocol: String,
    /// Documents the phone said it held with changes the server had not acknowledged, when it last
    /// connected; absent when it did not say.
    pub pending_documents: Option<u32>,
    /// Changes of this device the server refused, all told.
    pub refused: i64,
    /// The latest refusals, newest first (at most three).
    pub latest_refusals: Vec<RefusalNote>,
    /// No sync connection for a day (or never) while a site of the device logged nothing on the
    /// site's yesterday: that day's log may be on the phone.
    pub silent: bool,
    /// The sites that logged nothing on their yesterday, when `silent`.
    pub silent_sites: Vec<SiteName>,
}

/// Every device of the caller's org with its sync health (admins and head office).
#[utoipa::path(get, path = "/v1/devices", security(("bearer" = [])),
    responses(
        (status = 200, description = "The org's devices, by user", body = Vec<DeviceView>),
        Refusals))]
pub async fn devices(State(state): State<AppState>, Caller(who): Caller) -> Result<Json<Vec<DeviceView>>> {
    if !matches!(who.role, Role::Admin | Role::HeadOffice) {
        return Err(Error::Forbidden(
            "the devices page is for admins and head office".into(),
        ));
    }
    let now = Utc::now();
    let out = state
        .read(move |auth, store| {
            let org_sites = auth.org_sites(&who.org_id)?;
            let names: HashMap<String, String> =
                store.sites()?.into_iter().map(|s| (s.id.to_string(), s.name)).collect();
            // Whether each site logged nothing on its yesterday, asked once a site.
            let mut quiet: HashMap<String, bool> = HashMap::new();
            let mut views = Vec::new();
            for d in auth.device_health(&who.org_id)? {
                let long_ago = d
                    .connected_at
                    .as_deref()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .is_none_or(|t| now.signed_duration_since(t) > SILENT_AFTER);
                let mut silent_sites = Vec::new();
                if long_ago && !d.revoked {
                    let sites = if d.all_sites { &org_sites } else { &d.sites };
                    for site in sites {
                        let q = match quiet.get(site) {
                            Some(q) => *q,
                            None => {
                                let q = logged_nothing_yesterday(store, site)?;
                                quiet.insert(site.clone(), q);
                                q
                            }
                        };
                        if q {
                            silent_sites.push(SiteName {
                                id: site.clone(),
                                name: names.get(site).cloned().unwrap_or_default(),
                            });
                        }
                    }
                }
                views.push(view(d, silent_sites));
            }
            Ok(views)
        })
        .await?;
    Ok(Json(out))
}

/// Whether a site has no labor line on the day before its today (site calendar).
fn logged_nothing_yesterday(store: &mut sitesync_core::Store, site: &str) -> Result<bool> {
    let Ok(id) = SiteId::new(site) else { return Ok(false) };
    let yesterday: Option<NaiveDate> = store.today(&id).ok().and_then(|d| d.pred_opt());
    let Some(day) = yesterday else { return Ok(false) };
    let rows = store.labor_rows(&RowFilter {
        sites: Some(vec![site.to_string()]),
        from: Some(day),
        to: Some(day),
        approved_only: false,
    })?;
    Ok(rows.is_empty())
}

fn view(d: DeviceHealth, silent_sites: Vec<SiteName>) -> DeviceView {
    DeviceView {
        device: d.device_id,
        label: d.label,
        user_id: d.user_id,
        user_name: d.user_name,
        role: d.role,
        revoked: d.revoked,
        last_connection: d.connected_at,
        app_version: d.reported.app_version,
        protocol: d.reported.protocol,
        pending_documents: d.reported.pending,
        refused: d.refused,
        latest_refusals: d
            .latest_refusals
            .into_iter()
            .map(|(at, rule, reason)| RefusalNote { at, rule, reason })
            .collect(),
        silent: !silent_sites.is_empty(),
        silent_sites,
    }
}
