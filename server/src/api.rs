//! The head-office REST API under `/v1/`: reports (JSON, CSV, Excel) and approvals. Authenticated
//! like sync (bearer device token), authorized by role and site grants.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Query, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use chrono::{NaiveDate, Weekday};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sitesync_core::ids::{DocId, SiteId};
use sitesync_core::labor::ReviewAction;
use sitesync_core::store::RowFilter;
use sitesync_core::units::add_saturating as add;
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Access, Principal, Role};
use crate::error::{Error, ErrorBody, Result};
use crate::export::{Table, yuan};
use crate::report::{self, AnomalyRules, GroupBy};
use crate::state::AppState;

/// How a report is delivered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// JSON (the default).
    #[default]
    Json,
    /// CSV, UTF-8 with a byte-order mark.
    Csv,
    /// Excel workbook.
    Xlsx,
}

/// The caller, authenticated before anything else of the request is read: a request without a
/// valid token is a 401 whatever else is wrong with it. Put it before the query or body extractor.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        crate::authenticate(state, &parts.headers).await.map(Caller)
    }
}

/// The query string, deserialized; a malformed one is this API's typed 400 (`ErrorBody`), not
/// axum's plain-text rejection.
#[derive(Debug, Clone)]
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(QueryParams(value)),
            Err(e) => Err(Error::BadRequest(e.body_text())),
        }
    }
}

/// The JSON request body, deserialized; a malformed one is this API's typed 400, a body sent
/// without `Content-Type: application/json` a typed 415.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self> {
        let limit = req.extensions().get::<crate::BodyLimit>().map(|l| l.0);
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(JsonBody(value)),
            Err(JsonRejection::MissingJsonContentType(e)) => Err(Error::UnsupportedMediaType(e.body_text())),
            Err(e) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                Err(Error::TooLarge(limit.unwrap_or_default()))
            }
            Err(e) => Err(Error::BadRequest(e.body_text())),
        }
    }
}

/// A number a query may give, refused unless finite and not negative (NaN would slip through every
/// comparison, and would be written back as `null`).
fn non_negative(name: &str, value: Option<f64>, default: f64) -> Result<f64> {
    match value {
        None => Ok(default),
        Some(v) if v.is_finite() && v >= 0.0 => Ok(v),
        Some(v) => Err(Error::BadRequest(format!(
            "{name} must be a number not below 0, not {v}"
        ))),
    }
}

/// The longest date range of an anomaly report: every day of it may be a missing log of every site.
pub const MAX_ANOMALY_DAYS: i64 = 732;

/// Sends a report in the asked format.
fn deliver<T: Serialize>(format: Format, name: &str, report: &T, table: impl FnOnce() -> Table) -> Result<Response> {
    Ok(match format {
        Format::Json => Json(report).into_response(),
        Format::Csv => {
            let bytes = table().to_csv()?;
            let disposition = format!("attachment; filename=\"{name}.csv\"");
            (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                    (header::CONTENT_DISPOSITION, disposition),
                ],
                bytes,
            )
                .into_response()
        }
        Format::Xlsx => {
            let bytes = table().to_xlsx()?;
            let disposition = format!("attachment; filename=\"{name}.xlsx\"");
            let kind = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_string();
            (
                [(header::CONTENT_TYPE, kind), (header::CONTENT_DISPOSITION, disposition)],
                bytes,
            )
                .into_response()
        }
    })
}

/// The sites a request covers: the one asked for (if readable), or every site the principal reads.
pub(crate) async fn sites(state: &AppState, who: &Principal, site: Option<String>) -> Result<Vec<String>> {
    let who = who.clone();
    state
        .auth(move |a| match site {
            Some(site) => {
                let id = SiteId::new(&site).map_err(|e| Error::BadRequest(e.to_string()))?;
                match a.access(&who, &DocId::Site(id))? {
                    Access::None => Err(Error::Forbidden(format!("no grant for site {site}"))),
                    _ => Ok(vec![site]),
                }
            }
            None if who.all_sites => a.org_sites(&who.org_id),
            None => Ok(who.sites.clone()),
        })
        .await
}

/// Query of the labor summary.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LaborQuery {
    /// One site; default every site the caller may read.
    #[param(pattern = r"^[^\s|]{1,100}$")]
    site: Option<String>,
    /// First date (YYYY-MM-DD), inclusive.
    from: NaiveDate,
    /// Last date, inclusive.
    to: NaiveDate,
    /// Grouping (default `site`).
    #[param(inline)]
    by: Option<GroupBy>,
    /// Count days not yet approved too (default false: approved days only).
    #[serde(default)]
    include_unapproved: bool,
    /// json (default), csv or xlsx.
    #[serde(default)]
    #[param(inline)]
    format: Format,
}

/// 点工汇总: work-days, hours, overtime and cost over a date range, grouped.
#[utoipa::path(get, path = "/v1/reports/labor", params(LaborQuery), security(("bearer" = [])),
    responses(
        (status = 200, description = "The summary (JSON, CSV or Excel)", content(
            (report::LaborSummary = "application/json"),
            (String = "text/csv"),
            (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))),
        (status = 400, description = "The query is malformed or contradicts itself", body = ErrorBody),
        (status = 401, description = "No token, or an unknown or revoked one", body = ErrorBody),
        (status = 403, description = "No grant for the site", body = ErrorBody),
        (status = 429, description = "Too many requests from this token: retry after `Retry-After` seconds", body = ErrorBody)))]
pub async fn labor_report(
    State(state): State<AppState>,
    Caller(who): Caller,
    QueryParams(q): QueryParams<LaborQuery>,
) -> Result<Response> {
    let sites = sites(&state, &who, q.site).await?;
    let by = q.by.unwrap_or(GroupBy::Site);
    let (from, to, all) = (q.from, q.to, q.include_unapproved);
    let summary = state
        .both(move |_, store| report::labor_summary(store, &sites, from, to, by, all))
        .await?;
    deliver(q.format, &format!("labor-{}-{}", q.from, q.to), &summary, || {
        summary.table()
    })
}

/// Query of the attendance grid.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AttendanceQuery {
    /// The site.
    #[param(pattern = r"^[^\s|]{1,100}$")]
    site: String,
    /// The month, YYYY-MM.
    #[param(pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])$", example = "2026-09")]
    month: String,
    /// Count days not yet approved too.
    #[serde(default)]
    include_unapproved: bool,
    /// json (default), csv or xlsx.
    #[serde(default)]
    #[param(inline)]
    format: Format,
}

/// The monthly attendance grid: one row per worker, one column per day, totals and cost.
#[utoipa::path(get, path = "/v1/reports/attendance", params(AttendanceQuery), security(("bearer" = [])),
    responses(
        (status = 200, description = "The grid (JSON, CSV or Excel)", content(
            (report::Attendance = "application/json"),
            (String = "text/csv"),
            (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))),
        (status = 400, description = "The query is malformed or contradicts itself", body = ErrorBody),
        (status = 401, description = "No token, or an unknown or revoked one", body = ErrorBody),
        (status = 403, description = "No grant for the site", body = ErrorBody),
        (status = 429, description = "Too many requests from this token: retry after `Retry-After` seconds", body = ErrorBody)))]
pub async fn attendance_report(
    State(state): State<AppState>,
    Caller(who): Caller,
    QueryParams(q): QueryParams<AttendanceQuery>,
) -> Result<Response> {
    let site = sites(&state, &who, Some(q.site.clone())).await?.remove(0);
    let month = NaiveDate::parse_from_str(&format!("{}-01", q.month), "%Y-%m-%d")
        .map_err(|_| Error::BadRequest(format!("month {:?} is not YYYY-MM", q.month)))?;
    let all = q.include_unapproved;
    let grid = state
        .both(move |_, store| report::attendance(store, &site, month, all))
        .await?;
    deliver(q.format, &format!("attendance-{}-{}", q.site, q.month), &grid, || {
        grid.table()
    })
}

/// Query of progress against plan.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProgressQuery {
    /// The site.
    #[param(pattern = r"^[^\s|]{1,100}$")]
    site: String,
    /// As of this date (default today).
    date: Option<NaiveDate>,
    /// Percentage points progress may trail time before it is flagged (default 10).
    #[param(minimum = 0)]
    lag_threshold: Option<f64>,
    /// Count days not yet approved too.
    #[serde(default)]
    include_unapproved: bool,
    /// json (default), csv or xlsx.
    #[serde(default)]
    #[param(inline)]
    format: Format,
}

/// Progress against plan per work item: quantity, percent complete, percent of time elapsed, labor
/// cost against budget, and a flag where progress lags time.
#[utoipa::path(get, path = "/v1/reports/progress", params(ProgressQuery), security(("bearer" = [])),
    responses(
        (status = 200, description = "Progress (JSON, CSV or Excel)", content(
            (report::Progress = "application/json"),
            (String = "text/csv"),
            (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))),
        (status = 400, description = "The query is malformed or contradicts itself", body = ErrorBody),
        (status = 401, description = "No token, or an unknown or revoked one", body = ErrorBody),
        (status = 403, description = "No grant for the site", body = ErrorBody),
        (status = 429, description = "Too many requests from this token: retry after `Retry-After` seconds", body = ErrorBody)))]
pub async fn progress_report(
    State(state): State<AppState>,
    Caller(who): Caller,
    QueryParams(q): QueryParams<ProgressQuery>,
) -> Result<Response> {
    let site = sites(&state, &who, Some(q.site.clone())).await?.remove(0);
    let date = q.date.unwrap_or_else(|| chrono::Utc::now().date_naive());
    let (lag, all) = (
        non_negative("lag_threshold", q.lag_threshold, 10.0)?,
        q.include_unapproved,
    );
    let p = state
        .both(move |_, store| report::progress(store, &site, date, lag, all))
        .await?;
    deliver(q.format, &format!("progress-{}-{date}", q.site), &p, || p.table())
}

/// Query of the anomaly report.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AnomalyQuery {
    /// One site; default every site the caller may read.
    #[param(pattern = r"^[^\s|]{1,100}$")]
    site: Option<String>,
    /// First date, inclusive.
    from: NaiveDate,
    /// Last date, inclusive.
    to: NaiveDate,
    /// Work-days per worker per day across sites before it is flagged (default 1.0).
    #[param(minimum = 0)]
    max_work_days: Option<f64>,
    /// Hours (with overtime) per worker per day before it is flagged (default 12).
    #[param(minimum = 0)]
    max_hours: Option<f64>,
    /// Comma-separated rest days (`sun` or `sat,sun`); default none.
    rest_days: Option<String>,
    /// Days after this are not yet due (default today).
    today: Option<NaiveDate>,
    /// json (default), csv or xlsx.
    #[serde(default)]
    #[param(inline)]
    format: Format,
}

/// Anomalies: over-booked workers, over-long days, missing logs, amendments after approval, rates
/// that differ from the roster.
#[utoipa::path(get, path = "/v1/reports/anomalies", params(AnomalyQuery), security(("bearer" = [])),
    responses(
        (status = 200, description = "Anomalies (JSON, CSV or Excel)", content(
            (Vec<report::Anomaly> = "application/json"),
            (String = "text/csv"),
            (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))),
        (status = 400, description = "The query is malformed or contradicts itself", body = ErrorBody),
        (status = 401, description = "No token, or an unknown or revoked one", body = ErrorBody),
        (status = 403, description = "No grant for the site", body = ErrorBody),
        (status = 429, description = "Too many requests from this token: retry after `Retry-After` seconds", body = ErrorBody)))]
pub async fn anomaly_report(
    State(state): State<AppState>,
    Caller(who): Caller,
    QueryParams(q): QueryParams<AnomalyQuery>,
) -> Result<Response> {
    if q.to < q.from {
        return Err(Error::BadRequest("`to` is before `from`".into()));
    }
    if (q.to - q.from).num_days() >= MAX_ANOMALY_DAYS {
        return Err(Error::BadRequest(format!(
            "at most {MAX_ANOMALY_DAYS} days at a time: ask for one period after another"
        )));
    }
    let sites = sites(&state, &who, q.site.clone()).await?;
    let rest_days = q
        .rest_days
        .as_deref()
        .unwrap_or("")
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .parse::<Weekday>()
                .map_err(|_| Error::BadRequest(format!("{s:?} is not a weekday")))
        })
        .collect::<Result<Vec<_>>>()?;
    let rules = AnomalyRules {
        max_work_days_centi: (non_negative("max_work_days", q.max_work_days, 1.0)? * 100.0).round() as i64,
        max_minutes: (non_negative("max_hours", q.max_hours, 12.0)? * 60.0).round() as i64,
        rest_days,
        today: q.today.unwrap_or_else(|| chrono::Utc::now().date_naive()),
    };
    let (from, to) = (q.from, q.to);
    let list = state
        .both(move |_, store| report::anomalies(store, &sites, from, to, &rules))
        .await?;
    deliver(q.format, &format!("anomalies-{}-{}", q.from, q.to), &list, || {
        report::anomalies_table(&list)
    })
}

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
pub struct Decision {
    /// The site.
    pub site: String,
    /// The date.
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
}

/// The outcome of one decision.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DecisionResult {
    /// The site.
    pub site: String,
    /// The date.
    pub date: NaiveDate,
    /// Whether it was recorded.
    pub ok: bool,
    /// The day's status afterwards.
    pub status: Option<String>,
    /// Why not, if not.
    pub error: Option<String>,
}

/// Approves or rejects submitted days. Site managers decide on their sites; head office on every
/// site of the org. The decision reaches the foreman's phone at its next sync.
#[utoipa::path(post, path = "/v1/approvals", request_body = Decisions, security(("bearer" = [])),
    responses(
        (status = 200, description = "One result per decision", body = Vec<DecisionResult>),
        (status = 400, description = "The body is not a list of decisions", body = ErrorBody),
        (status = 401, description = "No token, or an unknown or revoked one", body = ErrorBody),
        (status = 403, description = "Foremen do not decide", body = ErrorBody),
        (status = 415, description = "The body is not sent as JSON", body = ErrorBody),
        (status = 429, description = "Too many requests from this token: retry after `Retry-After` seconds", body = ErrorBody)))]
pub async fn decide(
    State(state): State<AppState>,
    Caller(who): Caller,
    JsonBody(body): JsonBody<Decisions>,
) -> Result<Json<Vec<DecisionResult>>> {
    if who.role == Role::Foreman {
        return Err(Error::Forbidden("foremen submit days; managers decide on them".into()));
    }
    let results = state
        .both(move |auth, store| {
            let mut out = Vec::with_capacity(body.decisions.len());
            for d in body.decisions {
                let outcome = (|| -> Result<String> {
                    let site = SiteId::new(&d.site).map_err(|e| Error::BadRequest(e.to_string()))?;
                    if auth.access(&who, &DocId::Day(site.clone(), d.date))? != Access::Write {
                        return Err(Error::Forbidden(format!("no grant for site {}", d.site)));
                    }
                    let action = match d.decision {
                        Verdict::Approve => ReviewAction::Approved,
                        Verdict::Reject => ReviewAction::Rejected,
                    };
                    let sheet = store.review_as(&site, d.date, action, &d.reason, &who.user_id)?;
                    // The server made the change for this user: signed with its key, in their name.
                    store.sign_own_changes(
                        &DocId::Day(site.clone(), d.date),
                        crate::state::SERVER_DEVICE,
                        &who.user_id,
                    )?;
                    Ok(serde_json::to_value(sheet.status)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default())
                })();
                out.push(match outcome {
                    Ok(status) => DecisionResult {
                        site: d.site,
                        date: d.date,
                        ok: true,
                        status: Some(status),
                        error: None,
                    },
                    Err(e) => DecisionResult {
                        site: d.site,
                        date: d.date,
                        ok: false,
                        status: None,
                        error: Some(e.to_string()),
                    },
                });
            }
            Ok(out)
        })
        .await?;
    let _ = state.notify_changes().await;
    Ok(Json(results))
}

/// Query of the approval queue.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QueueQuery {
    /// One site; default every site the caller may read.
    #[param(pattern = r"^[^\s|]{1,100}$")]
    site: Option<String>,
    /// Which days (default `submitted`): draft, submitted, approved, rejected, amended_after_approval.
    status: Option<String>,
}

/// A day in the approval queue.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QueueItem {
    /// The site.
    pub site: String,
    /// The date.
    pub date: NaiveDate,
    /// Its status.
    pub status: String,
    /// Labor lines.
    pub lines: i64,
    /// Work-days in hundredths.
    pub work_days_centi: i64,
    /// Cost in fen.
    pub cost_fen: i64,
    /// Cost as people read it.
    pub cost: String,
    /// The last review event (who submitted, rejected …), if any.
    pub last_review: Option<String>,
}

/// The days waiting for a decision (or in another status).
#[utoipa::path(get, path = "/v1/approvals", params(QueueQuery), security(("bearer" = [])),
    responses(
        (status = 200, description = "The queue", body = Vec<QueueItem>),
        (status = 400, description = "The query is malformed or contradicts itself", body = ErrorBody),
        (status = 401, description = "No token, or an unknown or revoked one", body = ErrorBody),
        (status = 403, description = "No grant for the site", body = ErrorBody),
        (status = 429, description = "Too many requests from this token: retry after `Retry-After` seconds", body = ErrorBody)))]
pub async fn queue(
    State(state): State<AppState>,
    Caller(who): Caller,
    QueryParams(q): QueryParams<QueueQuery>,
) -> Result<Json<Vec<QueueItem>>> {
    let sites = sites(&state, &who, q.site).await?;
    let wanted = q.status.unwrap_or_else(|| "submitted".into());
    let org = who.org_id.clone();
    let items = state
        .both(move |auth, store| {
            // The gate lets a review name only its signer, by id or by name: show the name.
            let names = auth.user_names(&org)?;
            let f = RowFilter {
                sites: Some(sites),
                ..RowFilter::default()
            };
            let days: Vec<_> = store
                .day_rows(&f)?
                .into_iter()
                .filter(|d| d.status.as_str() == wanted)
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
                    let last = reviews.iter().rfind(|r| r.site == d.site && r.date == d.date).map(|r| {
                        let by = names.get(&r.by).map_or(r.by.as_str(), |(_, name)| name.as_str());
                        format!("{} by {} at {} {}", r.action, by, r.at, r.reason)
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
                    }
                })
                .collect())
        })
        .await?;
    Ok(Json(items))
}

/// Query of the OKR dashboard.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OkrQuery {
    /// The cycle, e.g. 2026-Q4.
    #[param(pattern = r"^[^\s|]{1,100}$", example = "2026-Q4")]
    cycle: String,
    /// The org (default the caller's).
    org: Option<String>,
    /// As of this date (default today).
    date: Option<NaiveDate>,
    /// json (default), csv or xlsx.
    #[serde(default)]
    #[param(inline)]
    format: Format,
}

/// The OKR dashboard of a cycle: objectives and key results with progress, status, last check-in,
/// owner and scores, and the alignment tree. Every member of the org may read it.
#[utoipa::path(get, path = "/v1/reports/okr", params(OkrQuery), security(("bearer" = [])),
    responses(
        (status = 200, description = "The board (JSON, CSV or Excel)", content(
            (Object = "application/json"),
            (String = "text/csv"),
            (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))),
        (status = 400, description = "The query is malformed or contradicts itself", body = ErrorBody),
        (status = 401, description = "No token, or an unknown or revoked one", body = ErrorBody),
        (status = 403, description = "Another org's OKRs", body = ErrorBody),
        (status = 404, description = "No such cycle", body = ErrorBody),
        (status = 429, description = "Too many requests from this token: retry after `Retry-After` seconds", body = ErrorBody)))]
pub async fn okr_report(
    State(state): State<AppState>,
    Caller(who): Caller,
    QueryParams(q): QueryParams<OkrQuery>,
) -> Result<Response> {
    let org = q.org.clone().unwrap_or_else(|| who.org_id.clone());
    if org != who.org_id {
        return Err(Error::Forbidden("OKRs are read within one's own org".into()));
    }
    let date = q.date.unwrap_or_else(|| chrono::Utc::now().date_naive());
    let cycle = q.cycle.clone();
    let board = state
        .both(move |auth, store| {
            let mut board = match store.okr_board(&org, &cycle, date) {
                Err(sitesync_core::Error::UnknownCycle(c)) => return Err(Error::NotFound(format!("cycle {c}"))),
                other => other?,
            };
            // Why a bound key result is not fed, asked as the feed asks it.
            let org = sitesync_core::ids::OrgId::new(&org).map_err(|e| Error::BadRequest(e.to_string()))?;
            for k in board.objectives.iter_mut().flat_map(|o| o.key_results.iter_mut()) {
                if let Some(m) = &k.kr.metric {
                    k.metric_refused = crate::tenancy::metric_allowed(auth, &org, &k.kr, m)
                        .err()
                        .map(|e| e.to_string());
                }
            }
            Ok(board)
        })
        .await?;
    deliver(q.format, &format!("okr-{}", q.cycle), &board, || okr_table(&board))
}

fn okr_table(board: &sitesync_core::store::Board) -> Table {
    use crate::export::Cell;
    let header = [
        "目标 objective",
        "关键结果 key result",
        "负责人 owner",
        "单位 unit",
        "起点 start",
        "当前 current",
        "目标值 target",
        "进度% progress",
        "状态 status",
        "最近签到 last check-in",
        "得分 score",
    ];
    let mut rows = Vec::new();
    for o in &board.objectives {
        rows.push(vec![
            Cell::Text(o.objective.title.clone()),
            Cell::Empty,
            Cell::Text(o.objective.owner.clone()),
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
            Cell::Percent((o.progress * 1000.0).round() / 10.0),
            Cell::Text(o.status.as_str().into()),
            Cell::Empty,
            o.score
                .map_or(Cell::Empty, |s| Cell::Fixed((s * 10.0).round() as i64, 1)),
        ]);
        for k in &o.key_results {
            rows.push(vec![
                Cell::Empty,
                Cell::Text(k.kr.title.clone()),
                Cell::Text(k.kr.owner.clone()),
                Cell::Text(k.kr.unit.clone()),
                Cell::Fixed(k.kr.start_milli, 3),
                Cell::Fixed(k.current_milli, 3),
                Cell::Fixed(k.kr.target_milli, 3),
                Cell::Percent((k.progress * 1000.0).round() / 10.0),
                Cell::Text(k.status.as_str().into()),
                k.last_checkin.as_ref().map_or(Cell::Empty, |c| Cell::Date(c.date)),
                k.score
                    .map_or(Cell::Empty, |s| Cell::Fixed((s * 10.0).round() as i64, 1)),
            ]);
        }
    }
    Table {
        title: format!("OKR {}", board.cycle.id),
        header: header.iter().map(|s| s.to_string()).collect(),
        rows,
        totals: None,
    }
}
