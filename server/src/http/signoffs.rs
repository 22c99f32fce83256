//! Sign-off reads (issue #19): where each worker and crew of a site-day stands (`/v1/signoffs`), and
//! a site's monthly attendance sheet: who still has to sign or re-sign (`/v1/signoffs/sheet`). Read
//! like a report: whoever reads the site. The records themselves come from phones through sync.

use axum::Json;
use axum::extract::State;
use chrono::NaiveDate;
use serde::Deserialize;
use sitesync_core::ids::SiteId;
use sitesync_core::signoff::{DaySignoffs, MonthSheet};
use utoipa::IntoParams;

use crate::error::{Error, Result};
use crate::http::Refusals;
use crate::http::caller::{Caller, sites};
use crate::http::extract::QueryParams;
use crate::state::AppState;

/// Which site-day.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DayQuery {
    #[param(pattern = r"^[^\s|]{1,100}$")]
    site: String,
    /// YYYY-MM-DD.
    date: NaiveDate,
}

/// Which site and month.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SheetQuery {
    #[param(pattern = r"^[^\s|]{1,100}$")]
    site: String,
    /// YYYY-MM.
    #[param(pattern = r"^\d{4}-\d{2}$")]
    month: String,
}

/// A site-day's sign-off: each worker with lines or a record (`unsigned`, `signed`,
/// `changed_since_signed` with what changed since, `disputed` with the open disputes), each crew
/// with its confirmation, and every sign-off record. A day nothing was logged on has none.
#[utoipa::path(get, path = "/v1/signoffs", params(DayQuery), security(("bearer" = [])),
    responses(
        (status = 200, description = "The day's sign-off states", body = DaySignoffs),
        Refusals))]
pub async fn day_signoffs(
    State(state): State<AppState>,
    Caller(who): Caller,
    QueryParams(q): QueryParams<DayQuery>,
) -> Result<Json<DaySignoffs>> {
    let site = site(sites(&state, &who, Some(q.site)).await?.remove(0))?;
    let date = q.date;
    let out = state.read(move |_, store| Ok(store.day_signoffs(&site, date)?)).await?;
    Ok(Json(out))
}

/// The site's monthly attendance sheet: each worker with lines that month, each of his days' state
/// against his month's confirmation, and the month's state (the worst day's): who still has to sign
/// (`unsigned`), re-sign (`changed_since_signed`) or has a dispute open (`disputed`).
#[utoipa::path(get, path = "/v1/signoffs/sheet", params(SheetQuery), security(("bearer" = [])),
    responses(
        (status = 200, description = "The month's sheet", body = MonthSheet),
        Refusals))]
pub async fn month_sheet(
    State(state): State<AppState>,
    Caller(who): Caller,
    QueryParams(q): QueryParams<SheetQuery>,
) -> Result<Json<MonthSheet>> {
    let month = NaiveDate::parse_from_str(&format!("{}-01", q.month), "%Y-%m-%d")
        .map_err(|_| Error::BadRequest(format!("month {:?} is not YYYY-MM", q.month)))?;
    let site = site(sites(&state, &who, Some(q.site)).await?.remove(0))?;
    let out = state
        .read(move |_, store| Ok(store.month_signoffs(&site, month)?))
        .await?;
    Ok(Json(out))
}

fn site(id: String) -> Result<SiteId> {
    SiteId::new(&id).map_err(|e| Error::BadRequest(e.to_string()))
}
