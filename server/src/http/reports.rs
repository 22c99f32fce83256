//! Reports under `/v1/reports/`: 点工汇总, the attendance grid, progress against plan, anomalies and
//! the OKR board, as JSON, CSV or Excel, and the printable 施工日志 of a site-day as PDF or JSON.
//! Authenticated like sync (bearer device token), each covers the sites its caller reads.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{NaiveDate, Weekday};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{Error, Result};
use crate::export::Table;
use crate::http::caller::{Caller, sites};
use crate::http::extract::QueryParams;
use crate::http::{NotFound, Refusals};
use crate::report::{self, AnomalyRules, GroupBy};
use crate::state::AppState;

/// How a report is delivered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub enum Format {
    /// JSON (the default).
    #[default]
    Json,
    /// CSV, UTF-8 with a byte-order mark.
    Csv,
    Xlsx,
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
pub(crate) fn deliver<T: Serialize>(
    format: Format,
    name: &str,
    report: &T,
    table: impl FnOnce() -> Table,
) -> Result<Response> {
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
        Refusals))]
pub async fn labor_report(
    State(state): State<AppState>,
    Caller(who): Caller,
    QueryParams(q): QueryParams<LaborQuery>,
) -> Result<Response> {
    let sites = sites(&state, &who, q.site).await?;
    let by = q.by.unwrap_or(GroupBy::Site);
    let (from, to, all) = (q.from, q.to, q.include_unapproved);
    let summary = state
        .read(move |_, store| report::labor_summary(store, &sites, from, to, by, all))
        .await?;
    deliver(q.format, &format!("labor-{}-{}", q.from, q.to), &summary, || {
        summary.table()
    })
}

/// Query of the attendance grid.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AttendanceQuery {
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
        Refusals))]
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
        .read(move |_, store| report::attendance(store, &site, month, all))
        .await?;
    deliver(q.format, &format!("attendance-{}-{}", q.site, q.month), &grid, || {
        grid.table()
    })
}

/// Query of progress against plan.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProgressQuery {
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
/// cost against budget, a flag where progress lags time, and cost performance per item and for the
/// site (`cost`: earned value, cost to date, CPI, forecast at completion, overrun).
#[utoipa::path(get, path = "/v1/reports/progress", params(ProgressQuery), security(("bearer" = [])),
    responses(
        (status = 200, description = "Progress (JSON, CSV or Excel)", content(
            (report::Progress = "application/json"),
            (String = "text/csv"),
            (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))),
        Refusals))]
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
        .read(move |_, store| report::progress(store, &site, date, lag, all))
        .await?;
    deliver(q.format, &format!("progress-{}-{date}", q.site), &p, || p.table())
}

/// How the 施工日志 is delivered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// A printable PDF, A4, in Chinese (the default).
    #[default]
    Pdf,
    /// The report model the PDF is drawn from.
    Json,
}

/// Query of the daily construction log.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DailyLogQuery {
    #[param(pattern = r"^[^\s|]{1,100}$")]
    site: String,
    /// The site's calendar date, YYYY-MM-DD.
    date: NaiveDate,
    /// pdf (default) or json.
    #[serde(default)]
    #[param(inline)]
    format: LogFormat,
}

/// The log's attachments as the server holds them: a photo's bytes are in the blob storage, not in
/// the document store the log is read from, so `bytes_here` says whether they were uploaded, and for
/// a PDF each uploaded image gets its thumbnail (cached there, made once, as
/// `GET /v1/blobs/{sha256}/thumbnail` makes it).
async fn photos_from_blob_storage(
    state: &AppState,
    mut log: sitesync_core::report::DailyLog,
    thumbnails: bool,
) -> Result<sitesync_core::report::DailyLog> {
    if log.attachments.is_empty() {
        return Ok(log);
    }
    state
        .blobs(move |b, _| {
            for a in &mut log.attachments {
                let Ok(hash) = sitesync_core::attachments::BlobHash::parse(&a.sha256) else {
                    continue;
                };
                let size = b.size(&hash)?;
                a.bytes_here = size.is_some();
                a.thumbnail = None;
                let Some(size) = size.filter(|_| thumbnails && a.media_type.starts_with("image/")) else {
                    continue;
                };
                a.thumbnail = match b.thumbnail(&hash)? {
                    Some(t) => Some(t),
                    None => {
                        let made = sitesync_core::attachments::thumbnail(&b.read_range(&hash, 0, size as usize)?);
                        if let Some(t) = &made {
                            b.put_thumbnail(&hash, t)?;
                        }
                        made
                    }
                };
            }
            Ok(log)
        })
        .await
}

/// The log's signature images as the server holds them: uploaded by the phone that took them into
/// the blob storage (`image_here`), and for a PDF drawn beside their rows. A signature is a few KiB;
/// one larger than a phone keeps is not read.
async fn signatures_from_blob_storage(
    state: &AppState,
    mut log: sitesync_core::report::DailyLog,
    pictures: bool,
) -> Result<sitesync_core::report::DailyLog> {
    if log.sign_offs.iter().all(|s| s.image.is_empty()) {
        return Ok(log);
    }
    state
        .blobs(move |b, _| {
            for s in &mut log.sign_offs {
                (s.image_here, s.picture) = signature_from_blobs(b, &s.image, pictures)?;
            }
            Ok(log)
        })
        .await
}

/// Signature image `image` (SHA-256 hex; "" for none) as the blob storage holds it: whether its
/// bytes are there, and (`picture`) as drawn on a printed page. The 施工日志's sign-offs and the
/// 工资表's signature column read it here.
pub(crate) fn signature_from_blobs(
    b: &dyn crate::blobs::BlobStore,
    image: &str,
    picture: bool,
) -> Result<(bool, Option<Vec<u8>>)> {
    /// The largest signature image a phone keeps (client-core's sign-off).
    const MAX_SIGNATURE: u64 = 512 * 1024;
    let Ok(hash) = sitesync_core::attachments::BlobHash::parse(image) else {
        return Ok((false, None));
    };
    let size = b.size(&hash)?;
    let drawn = match size.filter(|n| picture && *n <= MAX_SIGNATURE) {
        Some(size) => sitesync_core::signoff::signature_picture(&b.read_range(&hash, 0, size as usize)?),
        None => None,
    };
    Ok((size.is_some(), drawn))
}

/// 施工日志: one site-day as a printable log: weather, crews and headcount, labor lines, progress
/// against plan, delays, note, sign-offs, attachments, the approval and who gave it. The day as it
/// stands (its status says whether that is what was approved); a day nobody logged is an empty draft.
#[utoipa::path(get, path = "/v1/reports/daily-log", params(DailyLogQuery), security(("bearer" = [])),
    responses(
        (status = 200, description = "The log (PDF or JSON)", content(
            (String = "application/pdf"),
            (sitesync_core::report::DailyLog = "application/json"))),
        Refusals))]
pub async fn daily_log_report(
    State(state): State<AppState>,
    Caller(who): Caller,
    QueryParams(q): QueryParams<DailyLogQuery>,
) -> Result<Response> {
    let site = sites(&state, &who, Some(q.site.clone())).await?.remove(0);
    let site = sitesync_core::ids::SiteId::new(site).map_err(|e| Error::BadRequest(e.to_string()))?;
    let (date, org) = (q.date, who.org_id.clone());
    let log = state
        .read(move |auth, store| {
            let names = auth
                .user_names(&org)?
                .into_values()
                .collect::<std::collections::HashMap<_, _>>();
            Ok(store.daily_log(&site, date, &names)?)
        })
        .await?;
    let log = photos_from_blob_storage(&state, log, q.format == LogFormat::Pdf).await?;
    let log = signatures_from_blob_storage(&state, log, q.format == LogFormat::Pdf).await?;
    Ok(match q.format {
        LogFormat::Json => Json(log).into_response(),
        LogFormat::Pdf => {
            let pdf = tokio::task::spawn_blocking(move || sitesync_core::report::pdf::daily_log(&log))
                .await
                .map_err(|e| Error::Internal(format!("the PDF writer stopped: {e}")))??;
            if !pdf.missing.is_empty() {
                tracing::warn!(missing = %pdf.missing.iter().collect::<String>(), "daily log: characters the font lacks");
            }
            let disposition = format!("attachment; filename=\"daily-log-{}-{}.pdf\"", q.site, q.date);
            (
                [
                    (header::CONTENT_TYPE, "application/pdf".to_string()),
                    (header::CONTENT_DISPOSITION, disposition),
                ],
                pdf.bytes,
            )
                .into_response()
        }
    })
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
/// that differ from the roster, work items over budget (`cost_overrun`, as of `to` or `today`).
#[utoipa::path(get, path = "/v1/reports/anomalies", params(AnomalyQuery), security(("bearer" = [])),
    responses(
        (status = 200, description = "Anomalies (JSON, CSV or Excel)", content(
            (Vec<report::Anomaly> = "application/json"),
            (String = "text/csv"),
            (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))),
        Refusals))]
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
        .read(move |_, store| report::anomalies(store, &sites, from, to, &rules))
        .await?;
    deliver(q.format, &format!("anomalies-{}-{}", q.from, q.to), &list, || {
        report::anomalies_table(&list)
    })
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
        Refusals, NotFound))]
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
            let people: std::collections::BTreeMap<String, String> =
                auth.user_names(&who.org_id)?.into_values().collect();
            let checkin_signers = checkin_signers(auth, store, &org, &cycle, &who.org_id, &board)?;
            Ok(OkrBoardView {
                board,
                people,
                checkin_signers,
            })
        })
        .await?;
    deliver(q.format, &format!("okr-{}", q.cycle), &board, || {
        okr_table(&board.board)
    })
}

/// The OKR board as the API gives it: the board, and names for the people it names by id.
#[derive(Debug, Serialize)]
struct OkrBoardView {
    #[serde(flatten)]
    board: sitesync_core::store::Board,
    /// The org's users, id → name: owners and check-in authors are user ids.
    people: std::collections::BTreeMap<String, String>,
    /// Each shown check-in's id → the name of the user whose device signed it: a check-in written
    /// on a phone before it knew its user says `local` as its author, and the signature says who.
    checkin_signers: std::collections::BTreeMap<String, String>,
}

/// Who signed each key result's latest check-in (see [`OkrBoardView::checkin_signers`]).
fn checkin_signers(
    auth: &crate::auth::AuthDb,
    store: &mut sitesync_core::Store,
    org: &sitesync_core::ids::OrgId,
    cycle: &str,
    org_id: &str,
    board: &sitesync_core::store::Board,
) -> Result<std::collections::BTreeMap<String, String>> {
    let shown: std::collections::HashSet<&str> = board
        .objectives
        .iter()
        .flat_map(|o| o.key_results.iter())
        .filter_map(|k| k.last_checkin.as_ref().map(|c| c.id.as_str()))
        .collect();
    let mut out = std::collections::BTreeMap::new();
    if shown.is_empty() {
        return Ok(out);
    }
    let id = sitesync_core::ids::DocId::Okr(org.clone(), cycle.to_string());
    let names = auth.user_names(org_id)?;
    let by_hash: std::collections::HashMap<String, String> = store
        .history(
            &id,
            crate::state::SERVER_DEVICE,
            sitesync_core::store::Authors::Users(&names),
        )?
        .into_iter()
        .filter_map(|e| Some((e.change.hash, e.author.user_name?)))
        .collect();
    for f in store.field_values(&id)? {
        if f.table == "checkins"
            && shown.contains(f.record.as_str())
            && let Some(name) = f.values.first().and_then(|(_, h)| by_hash.get(h))
        {
            out.entry(f.record).or_insert_with(|| name.clone());
        }
    }
    Ok(out)
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
