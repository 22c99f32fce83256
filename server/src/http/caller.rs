//! Who is calling: the device behind a bearer token (phones, the API) or a dashboard session cookie,
//! authenticated once per request and counted once against the device's request rate, and the
//! sites it reads.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use sitesync_core::ids::{DocId, SiteId};

use crate::auth::{Access, Principal};
use crate::error::{Error, Result};
use crate::http::session::{self, Origin};
use crate::state::AppState;

/// The caller, authenticated before anything else of the request is read: a request without a
/// valid token is a 401 whatever else is wrong with it. Put it before the query or body extractor,
/// and take the principal from it rather than authenticating again (each authentication counts
/// against the rate).
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        authenticate(state, &parts.headers).await.map(Caller)
    }
}

/// The bearer token of a request.
fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(|t| t.trim().to_string())
}

/// The principal behind the request's bearer token, counted against its API request rate.
pub(crate) async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Principal> {
    let who = principal_of(state, headers, false).await?;
    state.guard().api_request(&who.device_id).map_err(|wait| {
        state.metrics().rate_limited.api.inc();
        Error::TooManyRequests(wait)
    })?;
    Ok(who)
}

/// The principal behind the request's bearer token (phones, the API) or dashboard session cookie.
/// A cookie is refused from a page of another origin (SameSite does not tell ports or sibling
/// subdomains apart), and on the sync WebSocket (`websocket`), whose handshake a browser always
/// sends with its origin, unless the origin is the server's own.
pub(crate) async fn principal_of(state: &AppState, headers: &HeaderMap, websocket: bool) -> Result<Principal> {
    let checked = if let Some(token) = bearer(headers) {
        state.auth(move |a| a.check_token(&token)).await?
    } else if let Some(id) = session::cookie_session(headers) {
        match session::origin_of(headers) {
            Origin::Other => {
                return Err(Error::Forbidden(
                    "a page of another origin may not use the session".into(),
                ));
            }
            Origin::Absent if websocket => {
                return Err(Error::Forbidden(
                    "a sync connection by session cookie must come from this server's page".into(),
                ));
            }
            _ => {}
        }
        let policy = state.browser_sessions();
        let now = chrono::Utc::now().timestamp();
        state.auth(move |a| a.check_browser_session(&id, now, policy)).await?
    } else {
        crate::audit::refuse("no credential");
        return Err(Error::Unauthorized);
    };
    match checked {
        Ok(who) => {
            crate::audit::identify(&who.device_id, Some(&who.user_id));
            Ok(who)
        }
        Err(refusal) => {
            if let Some(device) = &refusal.device {
                crate::audit::identify(device, None);
            }
            crate::audit::refuse(refusal.reason);
            Err(Error::Unauthorized)
        }
    }
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
