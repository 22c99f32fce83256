//! The head-office dashboard: a single page served at `/` from assets built into the binary (no
//! network at run time), a cookie session so the browser can follow links and live events, and a
//! server-sent-events stream that tells the page when synced data changed.
//!
//! The session (2026-11-30): signing in exchanges the device token for a random session id (256
//! bits) that the cookie holds and the server stores hashed, with an idle and an absolute expiry
//! (`auth::BrowserSessions`: 12 h and 7 days); signing out and revoking the device end it at once.
//! Before, the cookie held the device token itself: signing out left it working, it never expired,
//! and any page of another port of the same host could use it (SameSite does not separate ports),
//! so requests that carry the cookie and an `Origin` other than the server's own are refused. The
//! page allows no inline script or style (`security_headers`).

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::JsonBody;
use crate::auth::Access;
use crate::connections::Scheme;
use crate::error::{Error, ErrorBody, Result};
use crate::state::AppState;

/// The cookie holding the browser's session id (HttpOnly, SameSite=Strict, Secure over HTTPS).
pub const SESSION_COOKIE: &str = "sitesync_session";

/// What a page may load: its own script and styles only, never inline; nothing may frame it.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// Adds the security headers to every answer: the content security policy, no framing, no MIME
/// sniffing, no referrer, and on HTTPS a year of HSTS.
pub async fn security_headers(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let https = req.extensions().get::<Scheme>() == Some(&Scheme::Https);
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if https {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
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

const INDEX: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const APP_CSS: &str = include_str!("../assets/app.css");

/// The dashboard page.
pub async fn index() -> Html<&'static str> {
    Html(INDEX)
}

/// The dashboard's script.
pub async fn app_js() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], APP_JS).into_response()
}

/// The dashboard's styles.
pub async fn app_css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], APP_CSS).into_response()
}

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

/// A sign-in with a credential issued by the admin API (`device add`).
#[derive(Debug, Deserialize, ToSchema)]
pub struct SignIn {
    /// The token.
    pub token: String,
}

/// Who is signed in.
#[derive(Debug, Serialize, ToSchema)]
pub struct Session {
    /// User id.
    pub user: String,
    /// Role.
    pub role: String,
    /// Org.
    pub org: String,
    /// Sites the user may read, with names.
    pub sites: Vec<SiteName>,
}

/// A site and its name.
#[derive(Debug, Serialize, ToSchema)]
pub struct SiteName {
    /// Site id.
    pub id: String,
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
}

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
        .both(move |_, store| {
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
        (status = 400, description = "The body is not a sign-in", body = ErrorBody),
        (status = 401, description = "An unknown or revoked token", body = ErrorBody),
        (status = 403, description = "Sent by a page of another origin", body = ErrorBody),
        (status = 415, description = "The body is not sent as JSON", body = ErrorBody)))]
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
        (status = 401, description = "No token, or an unknown or revoked one", body = ErrorBody),
        (status = 429, description = "Too many requests from this token: retry after `Retry-After` seconds", body = ErrorBody)))]
pub async fn whoami(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Session>> {
    let who = crate::authenticate(&state, &headers).await?;
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

/// Live: an event each time documents the user may read change (a phone synced, a day was
/// approved), so the page refreshes without reloading.
#[utoipa::path(get, path = "/v1/events", security(("bearer" = [])),
    responses((status = 200, description = "text/event-stream of `change` events"), (status = 401)))]
pub async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let who = crate::authenticate(&state, &headers).await?;
    let mut changes = state.watch_changes();
    let mut pushed = state.subscribe_events();
    let mut shutdown = state.watch_shutdown();
    let mut seen = *changes.borrow();
    let stream = async_stream(move |tx| async move {
        loop {
            tokio::select! {
                r = changes.changed() => if r.is_err() { break },
                e = pushed.recv() => if matches!(e, Err(tokio::sync::broadcast::error::RecvError::Closed)) { break },
                _ = shutdown.changed() => break,
            }
            // Pushes come in bursts: one event for all that arrived meanwhile.
            while !matches!(
                pushed.try_recv(),
                Err(tokio::sync::broadcast::error::TryRecvError::Empty
                    | tokio::sync::broadcast::error::TryRecvError::Closed)
            ) {}
            let (from, device) = (seen, who.device_id.clone());
            // The grants as they are now: a revoked device's stream ends here.
            let relevant = state
                .both(move |auth, store| {
                    let Some(who) = auth.principal(&device)? else {
                        return Ok(None);
                    };
                    let now = store.change_cursor()?;
                    for (doc, _) in store.changed_since(from)? {
                        if auth.access(&who, &doc)? != Access::None {
                            return Ok(Some((now, true)));
                        }
                    }
                    Ok(Some((now, false)))
                })
                .await
                .unwrap_or(Some((from, false)));
            let Some((now, relevant)) = relevant else { break };
            seen = now;
            if relevant
                && tx
                    .send(Event::default().event("change").data(now.to_string()))
                    .await
                    .is_err()
            {
                break;
            }
            // At most two updates a second to a page, however busy the sites are.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// A stream fed by a task through a channel (the task ends when the client goes away).
fn async_stream<F, Fut>(f: F) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Event>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(f(tx));
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) })
}
