//! `sitesync-server`: the relay and head-office service.
//!
//! Phones sync Automerge documents over a WebSocket at `/v1/sync` (see `docs/protocol.md`); the
//! server stores them durably in SQLite (the same store the phones use, in `documents.sqlite3`),
//! checks every message against the device's grants (`server.sqlite3`), and pushes changes live to
//! connected phones.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let state = sitesync_server::AppState::open(std::path::Path::new("./sitesync-data")).unwrap();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! sitesync_server::run(listener, state, std::future::pending()).await
//! # }
//! ```

/// The allocator a server process should run on, as its `#[global_allocator]` (the
/// `sitesync-server` binary and the bench's server child declare it): jemalloc with its background
/// thread, which hands pages freed by a burst back to the system within seconds. On glibc's malloc
/// a 200-device rush peaked at 603 MiB with 168 MB live (an arena per thread kept what bursts
/// freed; see BENCHMARKS.md, "Where the time goes").
pub use tikv_jemallocator::Jemalloc as Allocator;

pub mod admin;
pub mod audit;
pub mod auth;
pub mod authorship;
pub mod blobs;
pub mod check;
mod checkpoint;
pub mod connections;
pub mod demo;
pub mod error;
pub mod export;
pub mod files;
pub mod http;
pub mod limits;
pub mod logs;
pub mod metrics;
pub mod pay;
pub mod push;
pub mod reminders;
pub mod report;
pub mod state;
pub mod storage;
pub mod sync_conn;
pub mod tenancy;
pub mod tls;
pub mod worker_link;

use std::future::Future;

use axum::extract::State;
use axum::response::IntoResponse;
use axum::{Json, Router};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use crate::auth::{Principal, Role};
pub use crate::error::{Error, Result};
pub use crate::state::AppState;

/// The OpenAPI document's fixed parts; the paths come from the routes themselves.
#[derive(OpenApi)]
#[openapi(
    info(title = "sitesync", description = "Offline-first day-labor and progress logging: sync, reports, approvals, administration."),
    // The body of every refusal; the shared response lists (`http::Refusals` …) refer to it.
    components(schemas(error::ErrorBody)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

/// Declares the bearer device token every route but `/healthz` takes.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The routes and the OpenAPI document generated from them (so the two cannot disagree).
pub fn routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    use http::{admin, approvals, blobs, dashboard, history, reports, session, signoffs, workers};
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(http::healthz))
        .routes(routes!(http::sync::sync))
        .routes(routes!(reports::labor_report))
        .routes(routes!(reports::attendance_report))
        .routes(routes!(reports::progress_report))
        .routes(routes!(reports::daily_log_report))
        .routes(routes!(reports::anomaly_report))
        .routes(routes!(reports::okr_report))
        .routes(routes!(http::pay::pay_sheet))
        .routes(routes!(http::pay::close))
        .routes(routes!(http::pay::paid))
        .routes(routes!(http::pay::bank_file))
        .routes(routes!(http::worker_links::create_link))
        .routes(routes!(http::worker_links::revoke_links))
        .routes(routes!(http::worker_links::page))
        .routes(routes!(approvals::decide, approvals::queue))
        .routes(routes!(workers::pending))
        .routes(routes!(workers::confirm))
        .routes(routes!(workers::merge))
        .routes(routes!(workers::set_rate))
        .routes(routes!(signoffs::day_signoffs))
        .routes(routes!(signoffs::month_sheet))
        .routes(routes!(http::device::certificate))
        .routes(routes!(http::device::pii_key))
        .routes(routes!(http::device::receipts))
        .routes(routes!(session::sign_in, session::whoami, session::sign_out))
        .routes(routes!(dashboard::events))
        .routes(routes!(history::history))
        .routes(routes!(history::refusals))
        .routes(routes!(http::devices::devices))
        .routes(routes!(http::conflicts::conflicts))
        .routes(routes!(http::conflicts::resolve))
        .routes(routes!(history::evidence_file))
        .routes(routes!(blobs::upload_offset, blobs::upload))
        .routes(routes!(blobs::download))
        .routes(routes!(blobs::thumbnail))
        .routes(routes!(admin::admin_import))
        .routes(routes!(admin::admin_org))
        .routes(routes!(admin::admin_site))
        .routes(routes!(admin::admin_user))
        .routes(routes!(admin::admin_grant))
        .routes(routes!(admin::admin_device))
        .routes(routes!(admin::admin_revoke))
        .routes(routes!(http::notify::list, http::notify::add))
        .routes(routes!(http::notify::remove))
        .routes(routes!(http::notify::log))
        .routes(routes!(http::metrics::metrics))
        .split_for_parts()
}

/// The HTTP routes, with the OpenAPI document at `/v1/openapi.json` and the dashboard at `/`; every
/// answer carries the security headers, every request body is limited, every refusal is audited.
pub fn app(state: AppState) -> Router {
    let (router, openapi) = routes();
    let openapi = std::sync::Arc::new(openapi);
    let limits = state.connection_limits();
    router
        .route(
            "/v1/openapi.json",
            axum::routing::get(move || async move { Json(openapi.as_ref().clone()) }),
        )
        .route("/", axum::routing::get(http::dashboard::index))
        .route("/app.js", axum::routing::get(http::dashboard::app_js))
        .route("/app.css", axum::routing::get(http::dashboard::app_css))
        .route("/w.css", axum::routing::get(http::worker_links::style))
        // Counted per matched route (a route layer: the route is known only inside the router).
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), count_request))
        .with_state(state)
        // The limit is `body_limit`'s, per route, for every extractor alike.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(limits, body_limit))
        .layer(axum::middleware::from_fn(http::dashboard::security_headers))
        .layer(axum::middleware::from_fn(audit::layer))
        // Outermost: every line logged while a request is answered (the audit's too) carries its id.
        .layer(
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(logs::request_span)
                .on_request(())
                .on_response(tower_http::trace::DefaultOnResponse::new().level(tracing::Level::INFO))
                .on_failure(()),
        )
        .layer(axum::middleware::from_fn(logs::layer))
}

/// Serves `GET /metrics` alone, without a token, in plain HTTP on `listener` until `shutdown`
/// completes (`serve --metrics-listen`): bind it to an address only operators reach. Every other
/// path is a 404, every other method a 405.
pub async fn run_metrics(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = axum::routing::get(private_metrics).with_state(state);
    axum::serve(listener, app.into_make_service())
        .with_graceful_shutdown(shutdown)
        .await
}

/// The private listener's one answer: the metrics at `/metrics`, nothing anywhere else.
async fn private_metrics(State(state): State<AppState>, uri: axum::http::Uri) -> axum::response::Response {
    if uri.path() == "/metrics" {
        http::metrics::scrape(&state)
    } else {
        axum::http::StatusCode::NOT_FOUND.into_response()
    }
}

/// Counts an answered request by its matched route, method and status.
async fn count_request(
    State(state): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "-".to_string());
    let method = req.method().clone();
    let response = next.run(req).await;
    state
        .metrics()
        .http_request(&route, method.as_str(), response.status().as_u16());
    response
}

/// The body limit a request is held to (read by `http::extract::JsonBody` to say so in its 413).
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimit(pub usize);

/// Limits every request's body: the company import to `import_bytes`, a blob upload to
/// `blob_bytes`, everything else to `body_bytes`. A declared length over it is a 413 before anything is read; a chunked body is cut
/// off where it passes the limit (also a 413, from the extractor reading it).
async fn body_limit(
    State(limits): State<limits::ConnectionLimits>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let path = req.uri().path();
    let limit = if path == "/v1/admin/import" {
        limits.import_bytes
    } else if req.method() == axum::http::Method::PUT && path.starts_with("/v1/blobs/") && path.ends_with("/upload") {
        limits.blob_bytes
    } else {
        limits.body_bytes
    };
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Error::TooLarge(limit).into_response();
    }
    req.extensions_mut().insert(BodyLimit(limit));
    let req = req.map(|body| axum::body::Body::new(http_body_util::Limited::new(body, limit)));
    next.run(req).await
}

/// Serves plain HTTP until `shutdown` completes, then closes live sync connections and drains.
pub async fn run(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve(listener, state, None, shutdown).await
}

/// Serves HTTPS with the certificate `tls` holds (reloadable) until `shutdown` completes, then
/// closes live sync connections and drains.
pub async fn run_tls(
    listener: tokio::net::TcpListener,
    state: AppState,
    tls: std::sync::Arc<tls::Tls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve(listener, state, Some(tls), shutdown).await
}

/// How long the OKR feeder's lease lasts without renewal: a node that dies hands feeding to
/// another within this.
const FEEDER_LEASE: std::time::Duration = std::time::Duration::from_secs(10);

async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    tls: Option<std::sync::Arc<tls::Tls>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Writes made by other processes on the same data directory (admin commands) reach live
    // connections within a second; the server's own writes notify at once.
    let poller = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                tick.tick().await;
                if let Err(e) = state.notify_changes().await {
                    tracing::warn!(error = %e, "change poll failed");
                }
            }
        })
    };
    // Other nodes on the same PostgreSQL announce their commits and revocations: a push through
    // another node reaches this node's connections without waiting for the poll.
    let other_nodes = state
        .notifications_url()
        .map(|url| tokio::spawn(storage::listen::listen(state.clone(), url.to_string())));
    // What devices confirmed they hold is written down in batches (it only saves resending).
    let recorder = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
            loop {
                tick.tick().await;
                if let Err(e) = state.flush_deliveries().await {
                    tracing::warn!(error = %e, "recording deliveries failed");
                }
                state.guard().tidy();
            }
        })
    };
    // Partial uploads nobody came back for are deleted at start, then every hour (or sooner when
    // the configured age is shorter).
    let sweeper = {
        let state = state.clone();
        let max_age = state.connection_limits().staging_max_age;
        let every = (max_age / 4).clamp(std::time::Duration::from_secs(1), std::time::Duration::from_secs(3600));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let staging = state.staging().clone();
                match tokio::task::spawn_blocking(move || staging.sweep(max_age)).await {
                    Ok(Ok(0)) => {}
                    Ok(Ok(n)) => tracing::info!(removed = n, "abandoned partial uploads deleted"),
                    Ok(Err(e)) => tracing::warn!(error = %e, "sweeping the upload staging area failed"),
                    Err(e) => tracing::warn!(error = %e, "the staging sweep stopped"),
                }
            }
        })
    };
    // Key results fed by field data follow every change: recomputed from approved data and written
    // into the OKR documents as check-ins by `system`, which phones then receive like any change.
    let feeder = {
        let state = state.clone();
        let mut changes = state.watch_changes();
        let mut pushed = state.subscribe_events();
        tokio::spawn(async move {
            loop {
                // One node feeds for the whole service (two would each write the same check-in).
                match state.lease("okr-feeder", FEEDER_LEASE).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "the feeder's lease could not be read");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        continue;
                    }
                }
                // Whether each key result may be fed is asked again on every feed: grants change.
                // Figures run to each site's own today; the check-ins are signed by the server as
                // `system` at once, as every other change the server writes, so the history and an
                // evidence file name their author.
                let feed = move |auth: &auth::AuthDb, store: &mut sitesync_core::Store| {
                    let n = store
                        .refresh_metrics(None, &|org, kr, metric| tenancy::metric_allowed(auth, org, kr, metric))?;
                    if n > 0 {
                        for (org, cycle) in store.okr_cycles()? {
                            let doc = sitesync_core::ids::DocId::Okr(sitesync_core::ids::OrgId::new(&org)?, cycle);
                            store.sign_own_changes(&doc, state::SERVER_DEVICE, "system")?;
                        }
                    }
                    Ok(n)
                };
                match state.both(feed).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(check_ins = n, "key results updated from field data");
                        let _ = state.notify_changes().await;
                    }
                    Err(e) => tracing::warn!(error = %e, "key result refresh failed"),
                }
                // At most one recomputation a second however fast pushes come.
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                tokio::select! {
                    changed = changes.changed() => if changed.is_err() { break },
                    event = pushed.recv() => if matches!(event, Err(tokio::sync::broadcast::error::RecvError::Closed)) { break },
                }
                while !matches!(
                    pushed.try_recv(),
                    Err(tokio::sync::broadcast::error::TryRecvError::Empty
                        | tokio::sync::broadcast::error::TryRecvError::Closed)
                ) {}
            }
        })
    };
    // Reminders to the org's chat channels, evaluated every minute.
    let reminders = tokio::spawn(reminders::schedule(state.clone()));
    let closing = state.clone();
    let state_for_exit = state.clone();
    let limits = state.connection_limits();
    let result = connections::serve(listener, app(state), tls, limits, async move {
        shutdown.await;
        closing.begin_shutdown();
    })
    .await;
    poller.abort();
    if let Some(other_nodes) = other_nodes {
        other_nodes.abort();
    }
    feeder.abort();
    reminders.abort();
    recorder.abort();
    sweeper.abort();
    if let Err(e) = state_for_exit.flush_deliveries().await {
        tracing::warn!(error = %e, "recording deliveries at shutdown failed");
    }
    result
}
