//! Worker links (issue #20, see `crate::worker_link`): head office makes and revokes them; the page
//! `/w/{token}` is public, the token being its credential.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{Datelike, Months, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Principal, Role};
use crate::error::{Error, Result};
use crate::http::caller::{Caller, sites};
use crate::http::extract::JsonBody;
use crate::http::{BodyRefusals, NotFound, Refusals};
use crate::state::AppState;
use crate::worker_link::{self, LinkClaims, LinkRefusal, MAX_DAYS_VALID, MONTHS_SHOWN};

/// A link to make.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewLink {
    /// The site.
    pub site: String,
    /// The worker's id on the site's roster.
    pub worker: String,
    /// How long the link works, 1 to 366 days.
    pub days_valid: u32,
}

/// A link made.
#[derive(Debug, Serialize, ToSchema)]
pub struct Link {
    /// The page's address on this server (as the request reached it), to send the worker.
    pub url: String,
    /// The page's path, `/w/{token}`.
    pub path: String,
    /// When it stops working.
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// The worker whose links to revoke.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RevokeLinks {
    /// The site.
    pub site: String,
    /// The worker.
    pub worker: String,
}

/// Links revoked.
#[derive(Debug, Serialize, ToSchema)]
pub struct Revoked {
    /// The worker's link generation now: links made before it no longer work.
    pub generation: u64,
}

/// Head office and admins, of the site's org.
async fn head_office_of(state: &AppState, who: &Principal, site: &str) -> Result<()> {
    if !matches!(who.role, Role::HeadOffice | Role::Admin) {
        return Err(Error::Forbidden("worker links are head office's".into()));
    }
    sites(state, who, Some(site.to_string())).await?;
    Ok(())
}

/// Whether the site's roster has the worker.
async fn on_roster(state: &AppState, site: &str, worker: &str) -> Result<()> {
    let (s, w) = (site.to_string(), worker.to_string());
    let found = state
        .read(move |_, store| {
            let site = sitesync_core::ids::SiteId::new(&s).map_err(|e| Error::BadRequest(e.to_string()))?;
            let worker = sitesync_core::ids::WorkerId::new(&w).map_err(|e| Error::BadRequest(e.to_string()))?;
            Ok(store.roster(&site)?.worker(&worker).is_some())
        })
        .await?;
    if found {
        Ok(())
    } else {
        Err(Error::NotFound(format!("no worker {worker} on site {site}")))
    }
}

/// Makes a link a worker opens to see his own days, pay, advances and sign-offs (read-only, in
/// Chinese, no account), valid for `days_valid` days. Head office and admins of the site's org.
#[utoipa::path(post, path = "/v1/workers/link", request_body = NewLink, security(("bearer" = [])),
    responses((status = 200, description = "The link", body = Link), Refusals, BodyRefusals, NotFound))]
pub async fn create_link(
    State(state): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody<NewLink>,
) -> Result<Json<Link>> {
    if !(1..=MAX_DAYS_VALID).contains(&body.days_valid) {
        return Err(Error::BadRequest(format!("days_valid must be 1 to {MAX_DAYS_VALID}")));
    }
    head_office_of(&state, &who, &body.site).await?;
    on_roster(&state, &body.site, &body.worker).await?;
    let expires_at = chrono::Utc::now() + chrono::Duration::days(i64::from(body.days_valid));
    let (site, worker) = (body.site.clone(), body.worker.clone());
    let token = state
        .auth(move |a| {
            let claims = LinkClaims {
                generation: a.worker_link_generation(&site, &worker)?,
                site,
                worker,
                expires: expires_at.timestamp(),
            };
            worker_link::sign(&a.worker_link_key()?, &claims)
        })
        .await?;
    crate::audit::event("worker_link", Some(&who.device_id), Some(&who.user_id), &body.worker);
    let path = format!("/w/{token}");
    let url = match headers.get(header::HOST).and_then(|h| h.to_str().ok()) {
        Some(host) => format!("{}://{host}{path}", crate::audit::scheme().as_str()),
        None => path.clone(),
    };
    Ok(Json(Link { url, path, expires_at }))
}

/// Revokes every link made so far for a worker (links made afterwards work). Head office and
/// admins of the site's org.
#[utoipa::path(post, path = "/v1/workers/link/revoke", request_body = RevokeLinks, security(("bearer" = [])),
    responses((status = 200, description = "Revoked", body = Revoked), Refusals, BodyRefusals))]
pub async fn revoke_links(
    State(state): State<AppState>,
    Caller(who): Caller,
    JsonBody(body): JsonBody<RevokeLinks>,
) -> Result<Json<Revoked>> {
    head_office_of(&state, &who, &body.site).await?;
    let (site, worker) = (body.site.clone(), body.worker.clone());
    let generation = state.auth(move |a| a.revoke_worker_links(&site, &worker)).await?;
    crate::audit::event(
        "worker_link_revoke",
        Some(&who.device_id),
        Some(&who.user_id),
        &body.worker,
    );
    Ok(Json(Revoked { generation }))
}

/// Which months the page shows.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The newest month shown, `YYYY-MM` (default: this month); the page shows it and the two before.
    month: Option<String>,
}

/// An HTML answer that no cache keeps.
fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// 我的记工: a worker's own days, hours, pay, advances and sign-off states per month, from approved
/// days only; read-only, in Chinese, no script. Public: the signed token in the path is the
/// credential. A malformed or altered link is a 403, an expired or revoked one a 410, each with a
/// Chinese page saying so.
#[utoipa::path(get, path = "/w/{token}", params(("token" = String, Path, description = "The link's token"), PageQuery),
    responses(
        (status = 200, description = "The worker's page", content_type = "text/html", body = String),
        (status = 403, description = "Not a link this server made", content_type = "text/html", body = String),
        (status = 410, description = "The link expired or was revoked, or the worker left the roster", content_type = "text/html", body = String)))]
pub async fn page(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Response> {
    let now = chrono::Utc::now();
    let checked = state
        .auth(move |a| {
            let claims = match worker_link::verify(&a.worker_link_key()?, &token, now.timestamp())? {
                Ok(c) => c,
                Err(why) => return Ok(Err(why)),
            };
            if a.worker_link_generation(&claims.site, &claims.worker)? != claims.generation {
                return Ok(Err(LinkRefusal::Revoked));
            }
            Ok(Ok(claims))
        })
        .await?;
    let claims = match checked {
        Ok(c) => c,
        Err(why) => {
            crate::audit::refuse(match why {
                LinkRefusal::Invalid => "invalid worker link",
                LinkRefusal::Expired => "expired worker link",
                LinkRefusal::Revoked => "revoked worker link",
                LinkRefusal::UnknownWorker => "worker link of an unknown worker",
            });
            let status = if why == LinkRefusal::Invalid {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::GONE
            };
            return Ok(html(status, worker_link::render_refusal(why)));
        }
    };
    // Site calendar dates are China's (UTC+8).
    let today = (now + chrono::Duration::hours(8)).date_naive();
    let last = q
        .month
        .as_deref()
        .and_then(|m| NaiveDate::parse_from_str(&format!("{m}-01"), "%Y-%m-%d").ok())
        .filter(|m| *m <= today)
        .unwrap_or(today);
    let last = last.with_day(1).unwrap_or(last);
    let earlier = last
        .checked_sub_months(Months::new(MONTHS_SHOWN))
        .unwrap_or(last)
        .format("%Y-%m")
        .to_string();
    let (site, worker) = (claims.site.clone(), claims.worker.clone());
    let record = state
        .read(move |_, store| worker_link::worker_record(store, &site, &worker, last))
        .await?;
    Ok(match record {
        Some(r) => html(StatusCode::OK, worker_link::render(&r, &earlier)),
        None => html(
            StatusCode::GONE,
            worker_link::render_refusal(LinkRefusal::UnknownWorker),
        ),
    })
}

/// The worker page's stylesheet.
pub async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], worker_link::STYLE).into_response()
}
