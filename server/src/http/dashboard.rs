//! The head-office dashboard: a single page served at `/` from assets built into the binary (no
//! network at run time), the security headers of every answer (the page allows no inline script or
//! style), and a server-sent-events stream that tells the page when synced data changed. Signing
//! in is `session.rs`'s.

use std::convert::Infallible;
use std::time::Duration;

use axum::http::{HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use futures_util::Stream;

use crate::auth::Access;
use crate::connections::Scheme;
use crate::error::Result;
use crate::http::Refusals;
use crate::http::caller::Caller;
use crate::state::AppState;

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

const INDEX: &str = include_str!("../../assets/index.html");
const APP_JS: &str = include_str!("../../assets/app.js");
const APP_CSS: &str = include_str!("../../assets/app.css");

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

/// Live: an event each time documents the user may read change (a phone synced, a day was
/// approved), so the page refreshes without reloading.
#[utoipa::path(get, path = "/v1/events", security(("bearer" = [])),
    responses((status = 200, description = "text/event-stream of `change` events"), Refusals))]
pub async fn events(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(who): Caller,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
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
                .read(move |auth, store| {
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
