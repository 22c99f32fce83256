//! `GET /v1/pay`: a crew's pay sheet (工资表) over a date range, as JSON, CSV or Excel (see
//! `crate::pay` for who may read it and why).

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::Deserialize;
use sitesync_core::report::pdf::PaySheetPrint;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Role;
use crate::error::{Error, Result};
use crate::http::Refusals;
use crate::http::caller::{Caller, sites};
use crate::http::extract::{JsonBody, QueryParams};
use crate::http::reports::{Format, deliver};
use crate::state::AppState;

/// Query of the pay sheet.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PayQuery {
    #[param(pattern = r"^[^\s|]{1,100}$")]
    site: String,
    /// The crew's id (`site-hz-01/crew-1`).
    #[param(pattern = r"^[^\s|]{1,200}$")]
    crew: String,
    /// First date (YYYY-MM-DD), inclusive.
    from: NaiveDate,
    /// Last date, inclusive; at most 366 days after `from`.
    to: NaiveDate,
    /// json (default), csv, xlsx or pdf.
    #[serde(default)]
    #[param(inline)]
    format: PayFormat,
}

/// How a pay sheet is delivered: a report's formats, or printed in the 施工日志's style.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PayFormat {
    /// JSON (the default).
    #[default]
    Json,
    /// CSV, UTF-8 with a byte-order mark.
    Csv,
    /// Excel, typed cells.
    Xlsx,
    /// A4 landscape PDF with the workers' signature images.
    Pdf,
}

/// 工资表: per worker of the crew, from approved days only: work-days, hours, overtime, day-labor
/// pay, overtime pay, piecework pay (approved progress × piece rate), advances, adjustments
/// carried from closed periods, net, the bank card masked, and his sign-off state; lists the
/// range's days not approved. Exactly a closed period's range answers its stored sheet (`closed`
/// set). `format=pdf` prints it (A4 landscape, the company, site, crew, period and whether it is
/// closed; per worker the masked ID-card number and bank card, the figures, and his month
/// sign-off signature drawn, or why there is none; the totals). Head office and the site's
/// managers.
#[utoipa::path(get, path = "/v1/pay", params(PayQuery), security(("bearer" = [])),
    responses(
        (status = 200, description = "The pay sheet (JSON, CSV, Excel or PDF)", content(
            (crate::pay::PayReport = "application/json"),
            (String = "text/csv"),
            (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
            (String = "application/pdf"))),
        Refusals))]
pub async fn pay_sheet(
    State(state): State<AppState>,
    Caller(who): Caller,
    QueryParams(q): QueryParams<PayQuery>,
) -> Result<Response> {
    if who.role == Role::Foreman {
        return Err(Error::Forbidden(
            "pay sheets are head office's and the site managers'".into(),
        ));
    }
    let site = sites(&state, &who, Some(q.site.clone())).await?.remove(0);
    let (crew, from, to) = (q.crew.clone(), q.from, q.to);
    let name = format!("pay-{}-{}-{}", q.site, q.from, q.to);
    let format = match q.format {
        PayFormat::Json => Format::Json,
        PayFormat::Csv => Format::Csv,
        PayFormat::Xlsx => Format::Xlsx,
        PayFormat::Pdf => {
            let org = who.org_id.clone();
            let print = state
                .read(move |auth, store| {
                    let report = crate::pay::period::sheet(auth, store, &site, &crew, from, to)?;
                    report.print(store, auth.org_name(&org)?.unwrap_or_default())
                })
                .await?;
            return pdf(&state, print, &name).await;
        }
    };
    let report = state
        .read(move |auth, store| crate::pay::period::sheet(auth, store, &site, &crew, from, to))
        .await?;
    deliver(format, &name, &report, || report.table())
}

/// The printed sheet, its signature images read from the blob storage.
async fn pdf(state: &AppState, mut print: PaySheetPrint, name: &str) -> Result<Response> {
    let print = state
        .blobs(move |b, _| {
            for l in &mut print.lines {
                (l.image_here, l.picture) = crate::http::reports::signature_from_blobs(b, &l.image, true)?;
            }
            Ok(print)
        })
        .await?;
    let pdf = tokio::task::spawn_blocking(move || sitesync_core::report::pdf::pay_sheets(&[print]))
        .await
        .map_err(|e| Error::Internal(format!("the PDF writer stopped: {e}")))??;
    if !pdf.missing.is_empty() {
        tracing::warn!(missing = %pdf.missing.iter().collect::<String>(), "pay sheet: characters the font lacks");
    }
    let disposition = format!("attachment; filename=\"{name}.pdf\"");
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        pdf.bytes,
    )
        .into_response())
}

/// Who may close, pay and pay out periods: head office and admins of the site's org.
async fn head_office(state: &AppState, who: &crate::auth::Principal, site: &str) -> Result<String> {
    if !matches!(who.role, Role::HeadOffice | Role::Admin) {
        return Err(Error::Forbidden("pay periods are head office's".into()));
    }
    Ok(sites(state, who, Some(site.to_string())).await?.remove(0))
}

/// A pay period to close.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CloseRequest {
    /// The site.
    site: String,
    /// The crew's id.
    crew: String,
    /// First date, inclusive.
    from: NaiveDate,
    /// Last date, inclusive.
    to: NaiveDate,
    /// Close even though days of the range are not approved (they are left out and listed).
    #[serde(default)]
    force: bool,
}

/// Closes a crew's pay period: stores the sheet (figures per worker, the approved version of each
/// day counted, who closed it and when). Refused (409 `unapproved_days`, with the dates) while days
/// are not approved unless `force`; refused (409 `overlaps_closed_period`) over a range overlapping
/// another closed period; closing the same range again answers the period closed (200, not 201).
/// Head office.
#[utoipa::path(post, path = "/v1/pay/close", request_body = CloseRequest, security(("bearer" = [])),
    responses(
        (status = 201, description = "Closed now", body = crate::pay::PayReport),
        (status = 200, description = "The range was closed already: that period", body = crate::pay::PayReport),
        (status = 409, description = "Days not approved, or an overlapping closed period", body = crate::pay::period::PeriodErrorBody),
        Refusals))]
pub async fn close(
    State(state): State<AppState>,
    Caller(who): Caller,
    JsonBody(req): JsonBody<CloseRequest>,
) -> Result<Response> {
    if req.to < req.from {
        return Err(Error::BadRequest("`to` is before `from`".into()));
    }
    let site = head_office(&state, &who, &req.site).await?;
    let (report, created) = state
        .read(move |auth, store| {
            crate::pay::period::close(auth, store, &who, &site, &req.crew, req.from, req.to, req.force)
        })
        .await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(report)).into_response())
}

/// A payment to record: the period by id, or by site, crew and range.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PaidRequest {
    /// The period's id (`pp-…`), or leave it out and name site, crew, from and to.
    #[serde(default)]
    period: Option<String>,
    #[serde(default)]
    site: Option<String>,
    #[serde(default)]
    crew: Option<String>,
    #[serde(default)]
    from: Option<NaiveDate>,
    #[serde(default)]
    to: Option<NaiveDate>,
    /// The bank's or payroll's payment reference (1 to 200 characters).
    reference: String,
}

/// Marks a closed period paid: who, when, the payment reference. Once: the same reference again
/// answers the payment recorded; another is refused (409 `already_paid`). Head office.
#[utoipa::path(post, path = "/v1/pay/paid", request_body = PaidRequest, security(("bearer" = [])),
    responses(
        (status = 200, description = "The period's sheet with its payment", body = crate::pay::PayReport),
        (status = 409, description = "Paid already with another reference", body = crate::pay::period::PeriodErrorBody),
        Refusals))]
pub async fn paid(
    State(state): State<AppState>,
    Caller(who): Caller,
    JsonBody(req): JsonBody<PaidRequest>,
) -> Result<Json<crate::pay::PayReport>> {
    let reference = crate::pay::period::check_reference(&req.reference)?;
    let found = match (&req.period, &req.site, &req.crew, req.from, req.to) {
        (Some(id), None, None, None, None) => {
            let id = id.clone();
            state.auth(move |a| a.pay_period(&id)).await?
        }
        (None, Some(site), Some(crew), Some(from), Some(to)) => {
            let (site, crew) = (site.clone(), crew.clone());
            state
                .auth(move |a| a.pay_period_of(&site, &crew, &from.to_string(), &to.to_string()))
                .await?
        }
        _ => {
            return Err(Error::BadRequest(
                "name the period: `period`, or `site`, `crew`, `from` and `to`".into(),
            ));
        }
    };
    // A period of a site the caller may not read is answered as one that does not exist.
    let Some(found) = found else {
        if let Some(site) = &req.site {
            head_office(&state, &who, site).await?;
        } else if !matches!(who.role, Role::HeadOffice | Role::Admin) {
            return Err(Error::Forbidden("pay periods are head office's".into()));
        }
        return Err(Error::NotFound("no such closed pay period".into()));
    };
    head_office(&state, &who, &found.site_id).await?;
    let id = found.period_id;
    let report = state
        .auth(move |a| crate::pay::period::mark_paid(a, &id, &who, &reference))
        .await?;
    Ok(Json(report))
}

/// Query of the bank payment file.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BankQuery {
    #[param(pattern = r"^[^\s|]{1,100}$")]
    site: String,
    /// The crew's id.
    #[param(pattern = r"^[^\s|]{1,200}$")]
    crew: String,
    /// First date of the closed period.
    from: NaiveDate,
    /// Last date of the closed period.
    to: NaiveDate,
    /// The columns, in order, comma-separated, from name, account, bank, amount, remark, worker
    /// (default `name,account,amount,remark`).
    #[serde(default)]
    columns: Option<String>,
}

/// 代发: the bank payment file of a closed period, CSV: one row per worker paid (net above zero),
/// the columns asked for in their order; the account number whole. 409 `not_closed` for a range
/// that is not a closed period. Head office.
#[utoipa::path(get, path = "/v1/pay/bank", params(BankQuery), security(("bearer" = [])),
    responses(
        (status = 200, description = "The bank file", content((String = "text/csv"))),
        (status = 409, description = "Not a closed period", body = crate::pay::period::PeriodErrorBody),
        Refusals))]
pub async fn bank_file(
    State(state): State<AppState>,
    Caller(who): Caller,
    QueryParams(q): QueryParams<BankQuery>,
) -> Result<Response> {
    let columns =
        crate::pay::period::BankColumn::parse_list(q.columns.as_deref().unwrap_or("name,account,amount,remark"))?;
    let site = head_office(&state, &who, &q.site).await?;
    let (crew, from, to) = (q.crew.clone(), q.from, q.to);
    let table = state
        .read(move |auth, store| crate::pay::period::bank_file(auth, store, &site, &crew, from, to, &columns))
        .await?;
    let name = format!("bank-{}-{}-{}", q.site, q.from, q.to);
    deliver(Format::Csv, &name, &(), || table)
}
