//! `GET /v1/pay`: a crew's pay sheet (工资表) over a date range, as JSON, CSV or Excel (see
//! `crate::pay` for who may read it and why).

use axum::extract::State;
use axum::response::Response;
use chrono::NaiveDate;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Role;
use crate::error::{Error, Result};
use crate::http::Refusals;
use crate::http::caller::{Caller, sites};
use crate::http::extract::QueryParams;
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
    /// json (default), csv or xlsx.
    #[serde(default)]
    #[param(inline)]
    format: Format,
}

/// 工资表: per worker of the crew, from approved days only: work-days, hours, overtime, day-labor
/// pay, overtime pay, piecework pay (approved progress × piece rate), advances, net, and his
/// sign-off state; lists the range's days not approved. Head office and the site's managers.
#[utoipa::path(get, path = "/v1/pay", params(PayQuery), security(("bearer" = [])),
    responses(
        (status = 200, description = "The pay sheet (JSON, CSV or Excel)", content(
            (crate::pay::PayReport = "application/json"),
            (String = "text/csv"),
            (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))),
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
    let report = state
        .read(move |_, store| crate::pay::pay_report(store, &site, &crew, from, to))
        .await?;
    let name = format!("pay-{}-{}-{}", q.site, q.from, q.to);
    deliver(q.format, &name, &report, || report.table())
}
