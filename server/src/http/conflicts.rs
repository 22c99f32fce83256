//! Conflicts at head office: `GET /v1/conflicts` lists every field of a site-day that holds several
//! values because phones edited it concurrently (Automerge keeps them all and shows one), each value
//! with who entered it and when; `POST /v1/conflicts/resolve` keeps one of them by writing it again
//! as a change of the server's, signed in the caller's name, which supersedes the others and
//! reaches every phone like any edit (a phone offline meanwhile merges it when it comes back).

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};
use sitesync_core::ids::{DocId, SiteId};
use sitesync_core::store::{Authors, RowFilter, Store};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Access, AuthDb, Principal, Role};
use crate::error::{Error, Result};
use crate::http::caller::{Caller, sites};
use crate::http::extract::{JsonBody, QueryParams};
use crate::http::history::ValueView;
use crate::http::{BodyRefusals, Refusals};
use crate::state::{AppState, SERVER_DEVICE};

/// The longest range one request scans (each day's document is loaded).
const MAX_DAYS: i64 = 92;

/// Which days to look at.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConflictsQuery {
    /// One site; default every site the caller may read.
    #[param(pattern = r"^[^\s|]{1,100}$")]
    site: Option<String>,
    /// First date (default 30 days before `to`).
    from: Option<NaiveDate>,
    /// Last date (default today, UTC).
    to: Option<NaiveDate>,
}

/// One field of a site-day's record with its competing values.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConflictView {
    /// The day's document id.
    pub doc: String,
    /// The site's id.
    pub site: String,
    /// The site's name.
    pub site_name: String,
    /// The site-day's date.
    pub date: NaiveDate,
    /// The table: `labor`, `progress`, `day`, `delays` or `reviews`.
    pub table: String,
    /// The record (a line id …).
    pub record: String,
    /// The record as a clerk reads it: for a labor line, the worker's name and the work item.
    pub record_label: String,
    /// The field (`work_days_centi`, `deleted` …).
    pub field: String,
    /// The competing values, the one every phone shows now first; each with its author.
    pub values: Vec<ValueView>,
}

/// Every open conflict on the days of the range the caller may read, by site and date.
#[utoipa::path(get, path = "/v1/conflicts", params(ConflictsQuery), security(("bearer" = [])),
    responses(
        (status = 200, description = "Open conflicts, oldest day first", body = Vec<ConflictView>),
        Refusals))]
pub async fn conflicts(
    State(state): State<AppState>,
    Caller(who): Caller,
    QueryParams(q): QueryParams<ConflictsQuery>,
) -> Result<Json<Vec<ConflictView>>> {
    let to = q.to.unwrap_or_else(|| chrono::Utc::now().date_naive());
    let from = q.from.unwrap_or(to - Duration::days(30));
    if from > to || (to - from).num_days() >= MAX_DAYS {
        return Err(Error::BadRequest(format!(
            "from must be on or before to, at most {MAX_DAYS} days apart"
        )));
    }
    let sites = sites(&state, &who, q.site).await?;
    let out = state
        .both(move |auth, store| {
            let mut out = Vec::new();
            let names: HashMap<String, String> =
                store.sites()?.into_iter().map(|s| (s.id.to_string(), s.name)).collect();
            for id in store.doc_ids()? {
                let DocId::Day(site, date) = &id else { continue };
                if date < &from || date > &to || !sites.iter().any(|s| s == site.as_str()) {
                    continue;
                }
                out.extend(day_conflicts(auth, store, &who, &id, names.get(site.as_str()))?);
            }
            Ok(out)
        })
        .await?;
    Ok(Json(out))
}

/// A site-day's open conflicts.
pub(crate) fn day_conflicts(
    auth: &AuthDb,
    store: &mut Store,
    who: &Principal,
    id: &DocId,
    site_name: Option<&String>,
) -> Result<Vec<ConflictView>> {
    let DocId::Day(site, date) = id else {
        return Ok(Vec::new());
    };
    let open = store.open_conflicts(id)?;
    if open.is_empty() {
        return Ok(Vec::new());
    }
    let names = auth.user_names(&who.org_id)?;
    let writers: HashMap<String, ValueView> = store
        .history(id, SERVER_DEVICE, Authors::Users(&names))?
        .into_iter()
        .map(|e| {
            let v = ValueView {
                value: String::new(),
                hash: e.change.hash.clone(),
                user_name: e.author.user_name,
                user_id: e.author.user_id,
                device: e.author.device,
                device_time: chrono::DateTime::from_timestamp_millis(e.change.time_ms)
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default(),
            };
            (e.change.hash, v)
        })
        .collect();
    let lines: HashMap<String, String> = store
        .labor_rows(&RowFilter {
            sites: Some(vec![site.to_string()]),
            from: Some(*date),
            to: Some(*date),
            approved_only: false,
        })?
        .into_iter()
        .map(|r| (r.line_id, format!("{} · {}", r.worker_name, r.work_item_name)))
        .collect();
    Ok(open
        .into_iter()
        .map(|f| ConflictView {
            doc: id.to_string(),
            site: site.to_string(),
            site_name: site_name.cloned().unwrap_or_default(),
            date: *date,
            record_label: lines.get(&f.record).cloned().unwrap_or_default(),
            values: f
                .values
                .into_iter()
                .map(|(v, hash)| {
                    let mut w = writers.get(&hash).cloned().unwrap_or(ValueView {
                        value: String::new(),
                        hash: hash.clone(),
                        user_name: None,
                        user_id: None,
                        device: None,
                        device_time: String::new(),
                    });
                    w.value = v.to_string();
                    w
                })
                .collect(),
            table: f.table,
            record: f.record,
            field: f.field,
        })
        .collect())
}

/// Which value to keep.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct Resolve {
    /// The day's document id, as `GET /v1/conflicts` gives it (`day|site-hz-01|2026-11-03`).
    pub doc: String,
    /// The table, record and field, as listed.
    pub table: String,
    #[allow(missing_docs)]
    pub record: String,
    #[allow(missing_docs)]
    pub field: String,
    /// The `hash` of the value to keep (the change that wrote it).
    pub hash: String,
}

/// Keeps one of a field's competing values (site managers on their sites, head office and admins):
/// the server writes it again in the caller's name, and the field holds that one value on every
/// phone after its next sync. Answers the day's conflicts that remain.
#[utoipa::path(post, path = "/v1/conflicts/resolve", request_body = Resolve, security(("bearer" = [])),
    responses(
        (status = 200, description = "Kept; the day's remaining conflicts", body = Vec<ConflictView>),
        (status = 409, description = "The field has no conflict (any more), or no value of it was written by that change", body = crate::error::ErrorBody),
        Refusals, BodyRefusals))]
pub async fn resolve(
    State(state): State<AppState>,
    Caller(who): Caller,
    JsonBody(body): JsonBody<Resolve>,
) -> Result<Json<Vec<ConflictView>>> {
    if who.role == Role::Foreman {
        return Err(Error::Forbidden(
            "foremen settle conflicts by editing the day on the phone".into(),
        ));
    }
    let id: DocId = body
        .doc
        .parse()
        .map_err(|e: sitesync_core::Error| Error::BadRequest(e.to_string()))?;
    let DocId::Day(site, _) = &id else {
        return Err(Error::BadRequest("conflicts are settled on site-days".into()));
    };
    let site: SiteId = site.clone();
    let out = state
        .both(move |auth, store| {
            if auth.access(&who, &id)? != Access::Write {
                return Err(Error::Forbidden(format!("no grant to write {id}")));
            }
            store
                .keep_value(&id, &body.table, &body.record, &body.field, &body.hash)
                .map_err(|e| match e {
                    sitesync_core::Error::Invalid { .. } => Error::Conflict(e.to_string()),
                    e => e.into(),
                })?;
            store.sign_own_changes(&id, SERVER_DEVICE, &who.user_id)?;
            let name = store.sites()?.into_iter().find(|s| s.id == site).map(|s| s.name);
            day_conflicts(auth, store, &who, &id, name.as_ref())
        })
        .await?;
    let _ = state.notify_changes().await;
    Ok(Json(out))
}
