//! Browser sessions of the dashboard: signing in exchanges a device token for a session whose id
//! the cookie holds, signing out ends it, and who is signed in.
//!
//! The session (2026-11-30): signing in exchanges the device token for a random session id (256
//! bits) that the cookie holds and the server stores hashed, with an idle and an absolute expiry
//! (`auth::BrowserSessions`: 12 h and 7 days); signing out and revoking the device end it at once.
//! Before, the cookie held the device token itself: signing out left it working, it never expired,
//! and any page of another port of the same host could use it (SameSite does not separate ports),
//! so requests that carry the cookie and an `Origin` other than the server's own are refused.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::connections::Scheme;
use crate::error::{Error, ErrorBody, Result};
use crate::http::caller::Caller;
use crate::http::extract::JsonBody;
use crate::http::{BodyRefusals, Refusals};
use crate::state::AppState;

/// The cookie holding the browser's session id (HttpOnly, SameSite=Strict, Secure over HTTPS).
pub const SESSION_COOKIE: &str = "sitesync_session";

/// The session id in the session cookie, if any.
pub fn cookie_session(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == SESSION_COOKIE && !v.is_empty()).then(|| v.to_string())
        })
}

/// Where a request says it comes from (browsers send `Origin` with every cross-origin request,
/// every POST and DELETE, and every WebSocket handshake).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// No `Origin` header: not a cross-origin request of a browser.
    Absent,
    /// The server's own origin (scheme and `Host`).
    Same,
    /// Another origin, `null`, or a request without `Host`.
    Other,
}

/// Compares the request's `Origin` with the server's own: the scheme it was served on and its
/// `Host`, default ports ignored.
pub fn origin_of(headers: &HeaderMap) -> Origin {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Origin::Absent;
    };
    let scheme = crate::audit::scheme();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match (origin.to_str(), host) {
        (Ok(origin), Some(host)) => {
            let own = normal_origin(&format!("{}://{host}", scheme.as_str()));
            if own.is_some() && normal_origin(origin) == own {
                Origin::Same
            } else {
                Origin::Other
            }
        }
        _ => Origin::Other,
    }
}

/// `scheme://host[:port]` in lower case, without a default port; `None` if it is not one.
fn normal_origin(origin: &str) -> Option<String> {
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    let (scheme, authority) = origin.split_once("://")?;
    if authority.is_empty() || authority.contains('/') {
        return None;
    }
    let authority = match scheme {
        "http" => authority.strip_suffix(":80").unwrap_or(authority),
        "https" => authority.strip_suffix(":443").unwrap_or(authority),
        _ => return None,
    };
    Some(format!("{scheme}://{authority}"))
}

/// Refuses a request from a page of another origin.
fn refuse_other_origin(headers: &HeaderMap) -> Result<()> {
    if origin_of(headers) == Origin::Other {
        return Err(Error::Forbidden("a page of another origin may not do this".into()));
    }
    Ok(())
}

/// The cookie's attributes: `Secure` when served over HTTPS.
fn cookie_attributes() -> &'static str {
    if crate::audit::scheme() == Scheme::Https {
        "HttpOnly; SameSite=Strict; Path=/; Secure"
    } else {
        "HttpOnly; SameSite=Strict; Path=/"
    }
}

/// A sign-in with a credential issued by the admin API (`device add`).
#[derive(Debug, Deserialize, ToSchema)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct SignIn {
    pub token: String,
}

/// Who is signed in: the user of the device the browser session belongs to.
#[derive(Debug, Serialize, ToSchema)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct Session {
    pub user: String,
    pub role: String,
    pub org: String,
    /// Sites the user may read, with names.
    pub sites: Vec<SiteName>,
}

/// A site and its name.
#[derive(Debug, Serialize, ToSchema)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct SiteName {
    pub id: String,
    pub code: String,
    pub name: String,
}

/// What the dashboard shows of who is signed in: the user and the sites it reads, with names.
async fn session_of(state: &AppState, who: crate::auth::Principal) -> Result<Session> {
    let w = who.clone();
    let ids = state
        .auth(move |a| {
            if w.all_sites {
                a.org_sites(&w.org_id)
            } else {
                Ok(w.sites.clone())
            }
        })
        .await?;
    let sites = state
        .read(move |_, store| {
            Ok(store
                .sites()?
                .into_iter()
                .filter(|s| ids.iter().any(|i| i == s.id.as_str()))
                .map(|s| SiteName {
                    id: s.id.to_string(),
                    code: s.code,
                    name: s.name,
                })
                .collect())
        })
        .await?;
    Ok(Session {
        user: who.user_id,
        role: who.role.as_str().into(),
        org: who.org_id,
        sites,
    })
}

/// Signs in: checks the token and starts a session, whose id the cookie holds (never the token).
#[utoipa::path(post, path = "/v1/session", request_body = SignIn,
    responses(
        (status = 200, description = "Signed in; the session cookie is set", body = Session),
        Refusals, BodyRefusals))]
pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<SignIn>,
) -> Result<Response> {
    refuse_other_origin(&headers)?;
    let token = body.token.trim().to_string();
    let who = match state.auth(move |a| a.check_token(&token)).await? {
        Ok(who) => who,
        Err(refusal) => {
            if let Some(device) = &refusal.device {
                crate::audit::identify(device, None);
            }
            crate::audit::refuse(refusal.reason);
            return Err(Error::Unauthorized);
        }
    };
    let policy = state.browser_sessions();
    let device = who.device_id.clone();
    let now = chrono::Utc::now().timestamp();
    let id = state
        .auth(move |a| a.open_browser_session(&device, now, policy))
        .await?;
    crate::audit::event("sign_in", Some(&who.device_id), Some(&who.user_id), "dashboard");
    let session = session_of(&state, who).await?;
    let cookie = format!(
        "{SESSION_COOKIE}={id}; Max-Age={}; {}",
        policy.lifetime.as_secs(),
        cookie_attributes()
    );
    let cookie = HeaderValue::from_str(&cookie).map_err(|e| Error::Internal(format!("cookie: {e}")))?;
    Ok(([(header::SET_COOKIE, cookie)], Json(session)).into_response())
}

/// Who is signed in (by cookie or bearer token).
#[utoipa::path(get, path = "/v1/session", security(("bearer" = [])),
    responses(
        (status = 200, description = "The signed-in user", body = Session),
        Refusals))]
pub async fn whoami(State(state): State<AppState>, Caller(who): Caller) -> Result<Json<Session>> {
    Ok(Json(session_of(&state, who).await?))
}

/// Signs out: ends the session on the server (the cookie no longer works anywhere) and clears it.
#[utoipa::path(delete, path = "/v1/session",
    responses((status = 204), (status = 403, description = "Sent by a page of another origin", body = ErrorBody)))]
pub async fn sign_out(State(state): State<AppState>, headers: HeaderMap) -> Result<Response> {
    refuse_other_origin(&headers)?;
    if let Some(id) = cookie_session(&headers)
        && let Some(device) = state.auth(move |a| a.close_browser_session(&id)).await?
    {
        crate::audit::event("sign_out", Some(&device), None, "dashboard");
    }
    let cookie = format!("{SESSION_COOKIE}=; Max-Age=0; {}", cookie_attributes());
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}
