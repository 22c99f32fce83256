//! Workers added on site under `/v1/workers`: head office lists the pending ones (with the pairs
//! that may be one person) and confirms them onto the roster or merges them into another worker.
//! The server writes the decision into the site's master data in the caller's name, as it writes
//! approvals; it reaches the phones at their next sync. Head office sets a worker's rates from a
//! date on the same way (`POST /v1/workers/rate`).

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use sitesync_core::ids::{DocId, SiteId, WorkerId};
use sitesync_core::roster::{PendingStatus, PendingWorker, PossibleDuplicate};
use sitesync_core::units::Fen;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Access;
use crate::error::{Error, Result};
use crate::http::caller::{Caller, sites};
use crate::http::extract::{JsonBody, QueryParams};
use crate::http::{BodyRefusals, Refusals};
use crate::state::AppState;

/// Query of the pending workers.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PendingQuery {
    /// The site.
    #[param(pattern = r"^[^\s|]{1,100}$")]
    site: String,
    /// `true`: also the whole ID-card numbers (opened by the server from their sealed copies, for
    /// head office checking a card against the person; the default shows them masked only).
    #[serde(default)]
    whole: bool,
}

/// A worker added on site, as head office sees it before deciding.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct PendingView {
    pub worker: String,
    pub name: String,
    pub phone: String,
    pub trade: String,
    pub crew: String,
    pub day_rate_fen: i64,
    pub overtime_rate_fen: i64,
    /// The ID-card number masked to its last four characters ("" if none was given).
    pub id_card_masked: String,
    /// The whole ID-card number, only when asked for with `whole=true` and one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_card: Option<String>,
    /// Who added the worker, and when (the phone's clock, RFC 3339).
    pub added_by: String,
    pub added_at: String,
}

/// Two workers that may be one person.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct DuplicateView {
    /// The pending worker.
    pub worker: String,
    /// The worker with the same name and phone.
    pub other: String,
}

/// The pending workers of a site.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct PendingList {
    pub site: String,
    pub workers: Vec<PendingView>,
    /// Pairs with the same name and phone but different ids (no ID card, or two different ones).
    pub possible_duplicates: Vec<DuplicateView>,
}

/// One decision on a pending worker.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct Confirm {
    pub site: String,
    pub worker: String,
}

/// Merge a pending worker into another worker of the site.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct Merge {
    pub site: String,
    pub worker: String,
    /// The worker whose lines the merged worker's lines count as from now on.
    pub into: String,
}

/// What became of the worker.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct Decided {
    pub site: String,
    pub worker: String,
    /// `confirmed` or `merged`.
    pub status: String,
    /// The worker it now counts as (itself when confirmed).
    pub counts_as: String,
}

fn view(p: &PendingWorker, whole: Option<&sitesync_core::pii::OrgPiiSecret>) -> PendingView {
    PendingView {
        worker: p.id.to_string(),
        name: p.name.clone(),
        phone: p.phone.clone(),
        trade: p.trade.clone(),
        crew: p.crew.to_string(),
        day_rate_fen: p.day_rate.fen(),
        overtime_rate_fen: p.overtime_rate.fen(),
        id_card_masked: p.id_card_masked.clone(),
        id_card: whole
            .filter(|_| !p.id_card_sealed.is_empty())
            .and_then(|k| k.open(&p.id_card_sealed).ok()),
        added_by: p.added_by.clone(),
        added_at: p.added_at.clone(),
    }
}

/// The workers added on a site that head office has not decided on, and the pairs among the
/// site's workers that may be one person. Head office and admins of the site's org.
#[utoipa::path(get, path = "/v1/workers/pending", params(PendingQuery), security(("bearer" = [])),
    responses(
        (status = 200, description = "The pending workers and possible duplicates", body = PendingList),
        Refusals))]
pub async fn pending(
    State(state): State<AppState>,
    Caller(who): Caller,
    QueryParams(q): QueryParams<PendingQuery>,
) -> Result<Json<PendingList>> {
    head_office(&who)?;
    let site = sites(&state, &who, Some(q.site)).await?.remove(0);
    let list = state
        .read(move |auth, store| {
            let id = SiteId::new(&site).map_err(|e| Error::BadRequest(e.to_string()))?;
            let secret = if q.whole {
                Some(auth.site_pii_secret(&site)?)
            } else {
                None
            };
            let roster = store.roster(&id)?;
            Ok(PendingList {
                workers: roster
                    .pending_workers
                    .iter()
                    .filter(|p| p.status == PendingStatus::Pending)
                    .map(|p| view(p, secret.as_ref()))
                    .collect(),
                possible_duplicates: roster
                    .possible_duplicates()
                    .into_iter()
                    .map(|PossibleDuplicate { worker, other }| DuplicateView {
                        worker: worker.to_string(),
                        other: other.to_string(),
                    })
                    .collect(),
                site,
            })
        })
        .await?;
    Ok(Json(list))
}

/// Takes a pending worker onto the site's roster. Confirming a confirmed worker again changes
/// nothing. Head office and admins of the site's org.
#[utoipa::path(post, path = "/v1/workers/confirm", request_body = Confirm, security(("bearer" = [])),
    responses(
        (status = 200, description = "The worker is on the roster", body = Decided),
        (status = 404, description = "No worker of that id was added on the site", body = crate::error::ErrorBody),
        (status = 409, description = "The worker was merged into another", body = crate::error::ErrorBody),
        Refusals, BodyRefusals))]
pub async fn confirm(
    State(state): State<AppState>,
    Caller(who): Caller,
    JsonBody(body): JsonBody<Confirm>,
) -> Result<Json<Decided>> {
    decide(state, who, body.site, body.worker, None).await
}

/// Records that a pending worker is the same person as another worker of the site: every line of
/// the merged worker counts under that worker in every report from now on (no line is rewritten,
/// so none is lost or counted twice). Merging into the same worker again changes nothing. Head
/// office and admins of the site's org.
#[utoipa::path(post, path = "/v1/workers/merge", request_body = Merge, security(("bearer" = [])),
    responses(
        (status = 200, description = "The worker is merged", body = Decided),
        (status = 404, description = "No worker of that id was added on the site", body = crate::error::ErrorBody),
        (status = 409, description = "The worker was already confirmed or merged into another", body = crate::error::ErrorBody),
        Refusals, BodyRefusals))]
pub async fn merge(
    State(state): State<AppState>,
    Caller(who): Caller,
    JsonBody(body): JsonBody<Merge>,
) -> Result<Json<Decided>> {
    decide(state, who, body.site, body.worker, Some(body.into)).await
}

fn head_office(who: &crate::auth::Principal) -> Result<()> {
    if who.role.is_head_office() {
        Ok(())
    } else {
        Err(Error::Forbidden("head office decides on workers added on site".into()))
    }
}

/// Confirms (`into` none) or merges a pending worker, in the caller's name.
async fn decide(
    state: AppState,
    who: crate::auth::Principal,
    site: String,
    worker: String,
    into: Option<String>,
) -> Result<Json<Decided>> {
    head_office(&who)?;
    let bad = |e: sitesync_core::Error| Error::BadRequest(e.to_string());
    let site_id = SiteId::new(&site).map_err(bad)?;
    let worker_id = WorkerId::new(&worker).map_err(bad)?;
    let into_id = into.as_deref().map(WorkerId::new).transpose().map_err(bad)?;
    let decided = state
        .both(move |auth, store| {
            let doc = DocId::Site(site_id.clone());
            if auth.access(&who, &doc)? != Access::Write {
                return Err(Error::Forbidden(format!("no grant for site {site}")));
            }
            let roster = store.roster(&site_id)?;
            let Some(p) = roster.pending_worker(&worker_id) else {
                return Err(Error::NotFound(format!("no worker {worker} was added on site {site}")));
            };
            let wanted = match &into_id {
                None => PendingStatus::Confirmed,
                Some(_) => PendingStatus::Merged,
            };
            let target = into_id.as_ref().map(|i| roster.resolve_worker(i));
            let same = p.status == wanted && p.merged_into == target;
            if !same {
                if p.status != PendingStatus::Pending {
                    return Err(Error::Conflict(format!(
                        "worker {worker} is already {}",
                        p.status.as_str()
                    )));
                }
                match &into_id {
                    None => store.confirm_worker(&site_id, &worker_id)?,
                    Some(i) => store.merge_worker(&site_id, &worker_id, i)?,
                }
                // The server made the change for this user: signed with its key, in their name.
                store.sign_own_changes(&doc, crate::state::SERVER_DEVICE, &who.user_id)?;
            }
            Ok(Decided {
                site,
                worker: worker_id.to_string(),
                status: wanted.as_str().to_string(),
                counts_as: target.unwrap_or(worker_id).to_string(),
            })
        })
        .await?;
    let _ = state.notify_changes().await;
    Ok(Json(decided))
}

/// A worker's rates from a date on.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateBody {
    /// The site.
    pub site: String,
    /// A worker on the site's roster (a merged worker's rates are his target's).
    pub worker: String,
    /// The first site calendar date (YYYY-MM-DD) the rates apply to.
    pub from: chrono::NaiveDate,
    /// Pay for one work-day, in fen: 0 to 10,000,000 (¥100,000).
    pub day_rate_fen: i64,
    /// Pay for one hour of overtime, in fen, bounded like the day rate.
    pub overtime_rate_fen: i64,
}

/// The rates as recorded.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[allow(missing_docs, reason = "fields named as in `RateBody`")]
pub struct RateSet {
    pub site: String,
    pub worker: String,
    pub from: chrono::NaiveDate,
    pub day_rate_fen: i64,
    pub overtime_rate_fen: i64,
    /// Whether this call changed the site's master data (false: the same rates were recorded already).
    pub changed: bool,
}

/// Sets a worker's day and overtime rates from a date on (the site's `rates` table): a labor line
/// takes the rate in force on its date, and the anomaly report flags a line whose rate differs from
/// it. Setting the same rates for the same date again changes nothing; other rates for that date
/// replace them. Bad input (a rate out of bounds, a worker not on the roster, a malformed date) is
/// refused with 400 and changes nothing. Head office and admins of the site's org.
#[utoipa::path(post, path = "/v1/workers/rate", request_body = RateBody, security(("bearer" = [])),
    responses(
        (status = 200, description = "The rates are recorded", body = RateSet),
        Refusals, BodyRefusals))]
pub async fn set_rate(
    State(state): State<AppState>,
    Caller(who): Caller,
    JsonBody(body): JsonBody<RateBody>,
) -> Result<Json<RateSet>> {
    if !who.role.is_head_office() {
        return Err(Error::Forbidden("rates are head office's".into()));
    }
    let bad = |e: sitesync_core::Error| Error::BadRequest(e.to_string());
    let site_id = SiteId::new(&body.site).map_err(bad)?;
    let worker_id = WorkerId::new(&body.worker).map_err(bad)?;
    sitesync_core::validate::day_date(body.from).map_err(|e| Error::BadRequest(e.to_string()))?;
    let day = Fen::new("day_rate_fen", body.day_rate_fen).map_err(bad)?;
    let overtime = Fen::new("overtime_rate_fen", body.overtime_rate_fen).map_err(bad)?;
    let set = state
        .both(move |auth, store| {
            let doc = DocId::Site(site_id.clone());
            if auth.access(&who, &doc)? != Access::Write {
                return Err(Error::Forbidden(format!("no grant for site {}", body.site)));
            }
            let roster = store.roster(&site_id)?;
            let same = roster.rates.iter().any(|r| {
                r.worker == worker_id && r.from == body.from && r.day_rate == day && r.overtime_rate == overtime
            });
            if !same {
                store.set_rate(&site_id, &worker_id, body.from, day, overtime)?;
                // The server made the change for this user: signed with its key, in their name.
                store.sign_own_changes(&doc, crate::state::SERVER_DEVICE, &who.user_id)?;
            }
            Ok(RateSet {
                site: body.site,
                worker: body.worker,
                from: body.from,
                day_rate_fen: day.fen(),
                overtime_rate_fen: overtime.fen(),
                changed: !same,
            })
        })
        .await?;
    if set.changed {
        let _ = state.notify_changes().await;
    }
    Ok(Json(set))
}
