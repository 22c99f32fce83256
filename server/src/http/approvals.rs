//! Approvals under `/v1/approvals`: the queue of days waiting for a decision, and the decisions
//! (approve, or reject with a reason), which reach the foreman's phone at its next sync.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sitesync_core::ids::{DocId, SiteId};
use sitesync_core::labor::ReviewAction;
use sitesync_core::store::RowFilter;
use sitesync_core::units::add_saturating as add;
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Access, Role};
use crate::error::{Error, Result};
use crate::export::yuan;
use crate::http::caller::{Caller, sites};
use crate::http::extract::{JsonBody, QueryParams};
use crate::http::{BodyRefusals, Refusals};
use crate::state::AppState;

/// Approve or reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Approve the day as it is now (the exact version is pinned).
    Approve,
    /// Send it back with a reason.
    Reject,
}

/// One decision on a site-day.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct Decision {
    pub site: String,
    pub date: NaiveDate,
    /// Approve or reject.
    pub decision: Verdict,
    /// Why (required to reject).
    #[serde(default)]
    pub reason: String,
}

/// Decisions, singly or in bulk.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct Decisions {
    /// The decisions, applied in order; one failing does not stop the others.
    pub decisions: Vec<Decision>,
    /// Approve days that hold open conflicts (fields with competing values, `GET /v1/conflicts`)
    /// as they are shown now. Without it such an approval is not recorded: its result carries
    /// `code` `open_conflicts` and the `conflicts`.
    #[serde(default)]
    pub confirm_conflicts: bool,
}

/// The outcome of one decision.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct DecisionResult {
    pub site: String,
    pub date: NaiveDate,
    /// Whether it was recorded.
    pub ok: bool,
    /// The day's status afterwards.
    pub status: Option<String>,
    /// Why not, if not.
    pub error: Option<String>,
    /// Why not, as a stable name a program can act on: `dispute_open` (a worker disputes the day and
    /// no one has answered; answer it first), `open_conflicts` (the day holds conflicts: settle them
    /// or send `confirm_conflicts`), absent for other refusals.
    pub code: Option<String>,
    /// With `open_conflicts`: the day's conflicts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<crate::http::conflicts::ConflictView>,
}

/// Approves or rejects submitted days. Site managers decide on their sites; head office on every
/// site of the org. The decision reaches the foreman's phone at its next sync. The status says
/// whether every decision was recorded; the body says which were, in the same shape whatever the
/// status.
#[utoipa::path(post, path = "/v1/approvals", request_body = Decisions, security(("bearer" = [])),
    responses(
        (status = 200, description = "Every decision was recorded: one result per decision", body = Vec<DecisionResult>),
        (status = 207, description = "Some decisions were recorded and some not: one result per decision, each with `ok` and the `error` of those not recorded", body = Vec<DecisionResult>),
        (status = 409, description = "No decision was recorded (a day not submitted, no grant for the site, no reason for a rejection …): one result per decision, each with its `error` (and `code` `dispute_open` for a day a worker disputes, unanswered; `open_conflicts` with the `conflicts` for a day holding competing values, unless `confirm_conflicts`)", body = Vec<DecisionResult>),
        Refusals, BodyRefusals))]
pub async fn decide(
    State(state): State<AppState>,
    Caller(who): Caller,
    JsonBody(body): JsonBody<Decisions>,
) -> Result<(StatusCode, Json<Vec<DecisionResult>>)> {
    if who.role == Role::Foreman {
        return Err(Error::Forbidden("foremen submit days; managers decide on them".into()));
    }
    let results = state
        .both(move |auth, store| {
            let mut out = Vec::with_capacity(body.decisions.len());
            let confirmed = body.confirm_conflicts;
            for d in body.decisions {
                let mut code = None;
                let mut conflicts = Vec::new();
                let outcome = (|| -> Result<String> {
                    let site = SiteId::new(&d.site).map_err(|e| Error::BadRequest(e.to_string()))?;
                    if auth.access(&who, &DocId::Day(site.clone(), d.date))? != Access::Write {
                        return Err(Error::Forbidden(format!("no grant for site {}", d.site)));
                    }
                    let action = match d.decision {
                        Verdict::Approve => ReviewAction::Approved,
                        Verdict::Reject => ReviewAction::Rejected,
                    };
                    if d.decision == Verdict::Approve && !confirmed {
                        let id = DocId::Day(site.clone(), d.date);
                        conflicts = crate::http::conflicts::day_conflicts(auth, store, &who, &id, None)?;
                        if !conflicts.is_empty() {
                            code = Some("open_conflicts".to_string());
                            return Err(Error::Conflict(format!(
                                "{} field(s) of the day hold competing values: settle them or confirm",
                                conflicts.len()
                            )));
                        }
                    }
                    let sheet = store
                        .review_as(&site, d.date, action, &d.reason, &who.user_id)
                        .inspect_err(|e| {
                            if matches!(e, sitesync_core::Error::DisputeOpen { .. }) {
                                code = Some("dispute_open".to_string());
                            }
                        })?;
                    // The server made the change for this user: signed with its key, in their name.
                    store.sign_own_changes(
                        &DocId::Day(site.clone(), d.date),
                        crate::state::SERVER_DEVICE,
                        &who.user_id,
                    )?;
                    Ok(sheet.status.to_string())
                })();
                out.push(match outcome {
                    Ok(status) => DecisionResult {
                        site: d.site,
                        date: d.date,
                        ok: true,
                        status: Some(status),
                        error: None,
                        code: None,
                        conflicts: Vec::new(),
                    },
                    Err(e) => DecisionResult {
                        site: d.site,
                        date: d.date,
                        ok: false,
                        status: None,
                        error: Some(e.to_string()),
                        code,
                        conflicts,
                    },
                });
            }
            Ok(out)
        })
        .await?;
    let _ = state.notify_changes().await;
    Ok((decided(&results), Json(results)))
}

/// The status of a batch of decisions: 200 when every one was recorded (none is every one), 409
/// when none was, 207 Multi-Status in between.
fn decided(results: &[DecisionResult]) -> StatusCode {
    let recorded = results.iter().filter(|r| r.ok).count();
    if recorded == results.len() {
        StatusCode::OK
    } else if recorded == 0 {
        StatusCode::CONFLICT
    } else {
        StatusCode::MULTI_STATUS
    }
}

/// Query of the approval queue.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QueueQuery {
    /// One site; default every site the caller may read.
    #[param(pattern = r"^[^\s|]{1,100}$")]
    site: Option<String>,
    /// Which days: draft, submitted, approved, rejected or amended_after_approval; by default those
    /// waiting for a decision, `submitted` and `amended_after_approval` (a correction of an approved
    /// day is approved again or rejected like a submission).
    status: Option<String>,
}

/// A day in the approval queue.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct QueueItem {
    pub site: String,
    pub date: NaiveDate,
    pub status: String,
    pub lines: i64,
    /// Work-days in hundredths.
    pub work_days_centi: i64,
    /// Cost in fen.
    pub cost_fen: i64,
    /// Cost as people read it.
    pub cost: String,
    /// The last review event (who submitted, rejected …), if any, as an English sentence.
    pub last_review: Option<String>,
    /// The same event by its parts, for a page to say in its reader's language.
    pub review: Option<ReviewNote>,
}

/// A review event by its parts.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReviewNote {
    /// `submitted`, `approved`, `rejected` or `amended`.
    pub action: String,
    /// The reviewer's name (their id if unknown).
    pub by: String,
    /// When (RFC 3339).
    pub at: String,
    /// Why (a rejection's reason), possibly empty.
    pub reason: String,
}

/// The days waiting for a decision (submitted, or amended after approval), or those in the status
/// asked for.
#[utoipa::path(get, path = "/v1/approvals", params(QueueQuery), security(("bearer" = [])),
    responses(
        (status = 200, description = "The queue", body = Vec<QueueItem>),
        Refusals))]
pub async fn queue(
    State(state): State<AppState>,
    Caller(who): Caller,
    QueryParams(q): QueryParams<QueueQuery>,
) -> Result<Json<Vec<QueueItem>>> {
    let sites = sites(&state, &who, q.site).await?;
    let wanted = q.status;
    let org = who.org_id.clone();
    let items = state
        .read(move |auth, store| {
            // The gate lets a review name only its signer, by id or by name: show the name.
            let names = auth.user_names(&org)?;
            let f = RowFilter {
                sites: Some(sites),
                ..RowFilter::default()
            };
            let days: Vec<_> = store
                .day_rows(&f)?
                .into_iter()
                .filter(|d| match &wanted {
                    Some(status) => d.status.as_str() == status,
                    None => d.status.awaits_review(),
                })
                .collect();
            let lines = store.labor_rows(&f)?;
            let reviews = store.review_rows(&f)?;
            Ok(days
                .into_iter()
                .map(|d| {
                    let of_day = lines.iter().filter(|l| l.site == d.site && l.date == d.date);
                    let (n, wd, cost) = of_day.fold((0, 0, 0), |(n, wd, c), l| {
                        (n + 1, add(wd, l.work_days_centi), add(c, l.cost_fen))
                    });
                    let last_event = reviews.iter().rfind(|r| r.site == d.site && r.date == d.date);
                    let review = last_event.map(|r| ReviewNote {
                        action: r.action.to_string(),
                        by: names
                            .get(&r.by)
                            .map_or(r.by.as_str(), |(_, name)| name.as_str())
                            .to_string(),
                        at: r.at.to_string(),
                        reason: r.reason.clone(),
                    });
                    let last = review.as_ref().map(|r| {
                        format!("{} by {} at {} {}", r.action, r.by, r.at, r.reason)
                            .trim()
                            .to_string()
                    });
                    QueueItem {
                        site: d.site,
                        date: d.date,
                        status: d.status.to_string(),
                        lines: n,
                        work_days_centi: wd,
                        cost_fen: cost,
                        cost: yuan(cost),
                        last_review: last,
                        review,
                    }
                })
                .collect())
        })
        .await?;
    Ok(Json(items))
}
