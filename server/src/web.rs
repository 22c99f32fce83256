//! The head-office dashboard: a single page served at `/` from assets built into the binary (no
//! network at run time), a cookie session so the browser can follow links and live events, and a
//! server-sent-events stream that tells the page when synced data changed. The page allows no
//! inline script or style (`security_headers`).

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

/// The cookie holding the browser's device token (HttpOnly, SameSite=Strict).
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

/// The token in the session cookie, if any.
pub fn cookie_token(headers: &HeaderMap) -> Option<String> {
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

/// Signs in: checks the token and sets the session cookie.
#[utoipa::path(post, path = "/v1/session", request_body = SignIn,
    responses(
        (status = 200, description = "Signed in; the session cookie is set", body = Session),
        (status = 400, description = "The body is not a sign-in", body = ErrorBody),
        (status = 401, description = "An unknown or revoked token", body = ErrorBody),
        (status = 415, description = "The body is not sent as JSON", body = ErrorBody)))]
pub async fn sign_in(State(state): State<AppState>, JsonBody(body): JsonBody<SignIn>) -> Result<Response> {
    let token = body.token.trim().to_string();
    let t = token.clone();
    let who = state
        .auth(move |a| a.authenticate(&t))
        .await?
        .ok_or(Error::Unauthorized)?;
    let session = session_of(&state, who).await?;
    let cookie = format!("{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/");
    let cookie = HeaderValue::from_str(&cookie)
        .map_err(|_| Error::BadRequest("the token has characters a cookie cannot hold".into()))?;
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

/// Signs out: clears the cookie.
#[utoipa::path(delete, path = "/v1/session", responses((status = 204)))]
pub async fn sign_out() -> Response {
    let cookie = format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    (StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response()
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
