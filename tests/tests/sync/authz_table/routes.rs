//! The route table: every route the server serves against every kind of caller, called with the
//! bearer token, with the dashboard's session cookie from its own page, and with the same cookie
//! from a page of another origin.
//!
//! Length: the route table is one table, every route × every caller, kept whole so a new route
//! cannot be added without a row.

use chrono::NaiveDate;
use serde_json::{Value, json};
use sitesync_core::labor::DayStatus;
use sitesync_core::sync::protocol::ServerMsg;
use sitesync_tests::harness::{Api, RawClient};

use super::openapi::assert_table_is_complete;
use super::secrets::{assert_no_secret_leaks, contains};
use super::world::*;
use crate::d;

/// What the server must answer a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expect {
    /// 2xx (101 for the sync WebSocket, which then welcomes the device).
    Allowed,
    /// 401: no, unknown or revoked credential.
    Unauthorized,
    /// 403: authenticated, but not allowed.
    Forbidden,
    /// 409, with every decision refused as forbidden (approvals are decided one by one).
    RefusedInBody,
}

pub(super) const OK: Expect = Expect::Allowed;
pub(super) const E401: Expect = Expect::Unauthorized;
pub(super) const E403: Expect = Expect::Forbidden;
pub(super) const ITEM: Expect = Expect::RefusedInBody;

// The answers, one column per caller, in `CALLERS` order:
//                                   anon  bad   revkd f-own f-oth m-own m-oth offic admin oper  x-for x-adm
#[rustfmt::skip]
pub(super) const PUBLIC: [Expect; 12]        = [OK,   OK,   OK,   OK,   OK,   OK,   OK,   OK,   OK,   OK,   OK,   OK];
#[rustfmt::skip]
pub(super) const SIGNED_IN: [Expect; 12]     = [E401, E401, E401, OK,   OK,   OK,   OK,   OK,   OK,   OK,   OK,   OK];
#[rustfmt::skip]
pub(super) const SITE_READ: [Expect; 12]     = [E401, E401, E401, OK,   E403, OK,   E403, OK,   OK,   E403, E403, E403];
#[rustfmt::skip]
pub(super) const ORG_READ: [Expect; 12]      = [E401, E401, E401, OK,   OK,   OK,   OK,   OK,   OK,   E403, E403, E403];
#[rustfmt::skip]
pub(super) const DECIDE: [Expect; 12]        = [E401, E401, E401, E403, E403, OK,   ITEM, OK,   OK,   ITEM, E403, ITEM];
#[rustfmt::skip]
pub(super) const ADMIN: [Expect; 12]         = [E401, E401, E401, E403, E403, E403, E403, E403, OK,   OK,   E403, E403];
/// Pay sheets: head office, admins, and managers of the site; not foremen (issue #20).
#[rustfmt::skip]
pub(super) const PAY_READ: [Expect; 12]      = [E401, E401, E401, E403, E403, OK,   E403, OK,   OK,   E403, E403, E403];
/// Pay periods (close, paid, bank file): head office and admins of the site's org (issue #20).
#[rustfmt::skip]
pub(super) const PAY_OFFICE: [Expect; 12]    = [E401, E401, E401, E403, E403, E403, E403, OK,   OK,   E403, E403, E403];
/// Worker links (issue #20): head office and admins of the site's org.
#[rustfmt::skip]
pub(super) const WORKER_LINKS: [Expect; 12]  = [E401, E401, E401, E403, E403, E403, E403, OK,   OK,   E403, E403, E403];
/// Head office and admins, each of their own org (the refusal log).
#[rustfmt::skip]
pub(super) const HEAD_OFFICE: [Expect; 12]   = [E401, E401, E401, E403, E403, E403, E403, OK,   OK,   OK,   E403, OK];
/// The server's metrics: admins (of any org: the series are the server's, not an org's) and the
/// operators' admin.
#[rustfmt::skip]
pub(super) const METRICS: [Expect; 12]       = [E401, E401, E401, E403, E403, E403, E403, E403, OK,   OK,   E403, OK];
/// Settling a conflict (issue #21): whoever may decide on the site's days, never a foreman.
pub(super) const SETTLE: [Expect; 12] = [E401, E401, E401, E403, E403, OK, E403, OK, OK, E403, E403, E403];
/// Head office and admins of the site's org (workers added on site: listing, confirming, merging).
#[rustfmt::skip]
pub(super) const SITE_OFFICE: [Expect; 12]   = [E401, E401, E401, E403, E403, E403, E403, OK,   OK,   E403, E403, E403];

/// How a route is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
    Get,
    Post,
    Put,
    Delete,
    /// A WebSocket upgrade (a GET in the OpenAPI document).
    WebSocket,
}

use Method::*;

impl Method {
    /// The method as the OpenAPI document names it.
    pub(super) fn verb(self) -> &'static str {
        match self {
            Get | WebSocket => "get",
            Post => "post",
            Put => "put",
            Delete => "delete",
        }
    }
}

/// What a request needs made before it, so that an allowed call succeeds each time it is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Prep {
    Nothing,
    /// A fresh submitted day on the target site (a day is approved once).
    SubmittedDay,
    /// A fresh device of `TEMP_USER` (a device is revoked once).
    Device,
    /// A fresh dashboard session for the cookie (signing out ends the one it is called with).
    Session,
    /// The photo attached to the target site's seeded day (`{sha256}` in the path).
    Blob,
    /// A fresh worker added on the target site (a worker is confirmed or merged once).
    PendingWorker,
    /// A fresh link to a worker's page (`{token}` in the path), made by head office.
    WorkerLink,
    /// A fresh reminder channel of the target org (`{id}` in the path), made by the operators' admin.
    NotifyChannel,
}

/// What a row's request is built from.
pub(super) struct Target<'a> {
    /// The site aimed at.
    site: &'a str,
    /// The org aimed at.
    org: &'a str,
    /// The site's record (`{id, code, name, timezone}`), for the admin API.
    site_record: &'a Value,
    /// The day made by `Prep::SubmittedDay`.
    day: NaiveDate,
    /// The caller's own token ("" for none), for signing in.
    token: &'a str,
    /// The photo of the target site's seeded day: its hash and bytes.
    blob: &'a (String, Vec<u8>),
    /// The worker made by `Prep::PendingWorker`, and a worker of the site's roster to merge it into.
    worker: &'a (String, String),
}

/// A request: query pairs and a JSON body, or raw bytes.
#[derive(Default)]
pub(super) struct Req {
    query: Vec<(&'static str, String)>,
    body: Option<Value>,
    raw: Option<Vec<u8>>,
}

pub(super) fn query(pairs: &[(&'static str, &str)]) -> Req {
    Req {
        query: pairs.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        ..Req::default()
    }
}

pub(super) fn body(body: Value) -> Req {
    Req {
        body: Some(body),
        ..Req::default()
    }
}

/// One route and how every caller must be answered.
pub(super) struct Row {
    pub(super) method: Method,
    /// As in the OpenAPI document (`{device}` is filled with a fresh device).
    pub(super) path: &'static str,
    /// `format=` of a report.
    pub(super) format: Option<&'static str>,
    pub(super) prep: Prep,
    pub(super) request: fn(&Target<'_>) -> Req,
    pub(super) expect: [Expect; 12],
}

pub(super) fn row(
    method: Method,
    path: &'static str,
    format: Option<&'static str>,
    prep: Prep,
    request: fn(&Target<'_>) -> Req,
    expect: [Expect; 12],
) -> Row {
    Row {
        method,
        path,
        format,
        prep,
        request,
        expect,
    }
}

pub(super) fn nothing(_: &Target<'_>) -> Req {
    Req::default()
}

/// A store key of the caller's own: one per token, so no two callers claim the same key.
pub(super) fn device_key(t: &Target<'_>) -> Req {
    use sha2::Digest;
    let key: String = sha2::Sha256::digest(t.token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    query(&[("key", &key)])
}

pub(super) fn receipts(t: &Target<'_>) -> Req {
    body(json!({ "docs": [format!("site|{}", t.site)] }))
}

pub(super) fn sign_in(t: &Target<'_>) -> Req {
    body(json!({ "token": t.token }))
}

pub(super) fn labor(t: &Target<'_>) -> Req {
    query(&[
        ("site", t.site),
        ("from", "2026-11-01"),
        ("to", "2026-11-30"),
        ("include_unapproved", "true"),
    ])
}

pub(super) fn attendance(t: &Target<'_>) -> Req {
    query(&[("site", t.site), ("month", "2026-11"), ("include_unapproved", "true")])
}

pub(super) fn progress(t: &Target<'_>) -> Req {
    query(&[("site", t.site), ("date", "2026-11-30")])
}

pub(super) fn daily_log(t: &Target<'_>) -> Req {
    query(&[("site", t.site), ("date", "2026-11-30")])
}

pub(super) fn anomalies(t: &Target<'_>) -> Req {
    query(&[
        ("site", t.site),
        ("from", "2026-11-01"),
        ("to", "2026-11-30"),
        ("today", "2026-11-30"),
    ])
}

pub(super) fn okr(t: &Target<'_>) -> Req {
    query(&[("cycle", CYCLE), ("org", t.org), ("date", "2026-11-30")])
}

pub(super) fn day_of_site(t: &Target<'_>) -> Req {
    let day = t.day.to_string();
    query(&[("site", t.site), ("date", day.as_str())])
}

/// Where the upload of the target site's photo stands (complete once it is stored).
pub(super) fn blob_upload(t: &Target<'_>) -> Req {
    let size = t.blob.1.len().to_string();
    query(&[("site", t.site), ("date", SEED_DAY), ("size", size.as_str())])
}

/// The whole photo again: a stored blob answers complete at once.
pub(super) fn blob_put(t: &Target<'_>) -> Req {
    let mut r = blob_upload(t);
    r.query.push(("offset", "0".into()));
    r.raw = Some(t.blob.1.clone());
    r
}

pub(super) fn pay(t: &Target<'_>) -> Req {
    let crew = format!("{}/crew-1", t.site);
    query(&[
        ("site", t.site),
        ("crew", &crew),
        ("from", "2026-11-01"),
        ("to", "2026-11-30"),
    ])
}

/// October of crew-1, closed with `force` (closing it again answers the period: repeatable).
pub(super) fn pay_close(t: &Target<'_>) -> Req {
    let crew = format!("{}/crew-1", t.site);
    body(json!({ "site": t.site, "crew": crew, "from": "2026-10-01", "to": "2026-10-31", "force": true }))
}

/// October marked paid, always with the same reference (a repeat answers the payment).
pub(super) fn pay_paid(t: &Target<'_>) -> Req {
    let crew = format!("{}/crew-1", t.site);
    body(json!({ "site": t.site, "crew": crew, "from": "2026-10-01", "to": "2026-10-31", "reference": "AUTHZ-1" }))
}

/// October's bank file (closed by the `pay_close` row before it).
pub(super) fn pay_bank(t: &Target<'_>) -> Req {
    let crew = format!("{}/crew-1", t.site);
    query(&[
        ("site", t.site),
        ("crew", &crew),
        ("from", "2026-10-01"),
        ("to", "2026-10-31"),
    ])
}

pub(super) fn worker_link(t: &Target<'_>) -> Req {
    body(json!({ "site": t.site, "worker": "w-0001", "days_valid": 7 }))
}

pub(super) fn worker_link_revoke(t: &Target<'_>) -> Req {
    body(json!({ "site": t.site, "worker": "w-0001" }))
}

pub(super) fn sheet(t: &Target<'_>) -> Req {
    query(&[("site", t.site), ("month", "2026-11")])
}

pub(super) fn queue(t: &Target<'_>) -> Req {
    query(&[("site", t.site), ("status", "submitted")])
}

pub(super) fn decide(t: &Target<'_>) -> Req {
    body(json!({ "decisions": [{ "site": t.site, "date": t.day, "decision": "approve" }] }))
}

pub(super) fn conflicts_of(t: &Target<'_>) -> Req {
    let day = t.day.to_string();
    query(&[("site", t.site), ("from", day.as_str()), ("to", day.as_str())])
}

pub(super) fn settle(t: &Target<'_>) -> Req {
    body(
        json!({ "doc": format!("day|{}|{}", t.site, t.day), "table": "labor", "record": "l-none",
                 "field": "work_days_centi", "hash": "00" }),
    )
}

pub(super) fn pending_workers(t: &Target<'_>) -> Req {
    query(&[("site", t.site)])
}

pub(super) fn confirm_worker(t: &Target<'_>) -> Req {
    body(json!({ "site": t.site, "worker": t.worker.0 }))
}

pub(super) fn merge_worker(t: &Target<'_>) -> Req {
    body(json!({ "site": t.site, "worker": t.worker.0, "into": t.worker.1 }))
}

pub(super) fn worker_rate(t: &Target<'_>) -> Req {
    body(
        json!({ "site": t.site, "worker": t.worker.1, "from": "2026-11-01", "day_rate_fen": 40_000, "overtime_rate_fen": 6_000 }),
    )
}

pub(super) fn import(t: &Target<'_>) -> Req {
    // The org as it is, with no sites or users: changes nothing when allowed.
    body(json!({ "org": { "id": t.org, "name": ORG_NAME }, "sites": [], "users": [] }))
}

pub(super) fn org(t: &Target<'_>) -> Req {
    body(json!({ "id": t.org, "name": ORG_NAME }))
}

pub(super) fn site(t: &Target<'_>) -> Req {
    body(json!({ "org": t.org, "site": t.site_record }))
}

pub(super) fn user(t: &Target<'_>) -> Req {
    body(json!({ "org": t.org, "id": TEMP_USER, "name": "临时工长", "role": "foreman" }))
}

pub(super) fn grant(t: &Target<'_>) -> Req {
    body(json!({ "user": TEMP_USER, "site": t.site }))
}

/// The target org's reminder channels or delivery log.
pub(super) fn org_query(t: &Target<'_>) -> Req {
    query(&[("org", t.org)])
}

/// A webhook channel of the target org (nothing listens at its address; nothing is due either).
pub(super) fn notify_add(t: &Target<'_>) -> Req {
    body(json!({ "org": t.org, "kind": "webhook", "url": "http://127.0.0.1:9/authz-table", "rules": ["kr_red"] }))
}

pub(super) fn device(_: &Target<'_>) -> Req {
    body(json!({ "user": TEMP_USER, "label": "authz table" }))
}

/// Every route the server serves. A route missing here fails the completeness check.
#[rustfmt::skip]
pub(super) fn routes() -> Vec<Row> {
    use Prep::{Blob, Device, Nothing, NotifyChannel, PendingWorker, Session, SubmittedDay, WorkerLink};
    vec![
        // Public: liveness, the API description, the dashboard's page and assets, signing out.
        row(Get,       "/healthz",                          None,          Nothing,      nothing,    PUBLIC),
        row(Get,       "/v1/openapi.json",                  None,          Nothing,      nothing,    PUBLIC),
        row(Get,       "/",                                 None,          Nothing,      nothing,    PUBLIC),
        row(Get,       "/app.js",                           None,          Nothing,      nothing,    PUBLIC),
        row(Get,       "/app.css",                          None,          Nothing,      nothing,    PUBLIC),
        row(Delete,    "/v1/session",                       None,          Session,      nothing,    PUBLIC),
        // A worker's own page: public, the signed token in the path is its credential (issue #20).
        row(Get,       "/w/{token}",                        None,          WorkerLink,   nothing,    PUBLIC),
        row(Get,       "/w.css",                            None,          Nothing,      nothing,    PUBLIC),
        // Any valid device: signing in (the token is in the body), who am I, live events, sync.
        row(Post,      "/v1/session",                       None,          Nothing,      sign_in,    SIGNED_IN),
        row(Get,       "/v1/session",                       None,          Nothing,      nothing,    SIGNED_IN),
        row(Get,       "/v1/events",                        None,          Nothing,      nothing,    SIGNED_IN),
        row(WebSocket, "/v1/sync",                          None,          Nothing,      nothing,    SIGNED_IN),
        // The device's own mesh certificate (issue #22): any valid device, for a key of its own.
        row(Get,       "/v1/device/certificate",            None,          Nothing,      device_key, SIGNED_IN),
        // The org's key for sealing ID-card and bank-card numbers (issue #20): any valid device.
        row(Get,       "/v1/org/pii-key",                   None,          Nothing,      nothing,    SIGNED_IN),
        // Head office's receipts (issue #22): any valid device; documents it may not read are left
        // out of the answer, not refused.
        row(Post,      "/v1/device/receipts",               None,          Nothing,      receipts,   SIGNED_IN),
        // Reports of one site: whoever reads the site, in every format.
        row(Get,       "/v1/reports/labor",                 Some("json"),  Nothing,      labor,      SITE_READ),
        row(Get,       "/v1/reports/labor",                 Some("csv"),   Nothing,      labor,      SITE_READ),
        row(Get,       "/v1/reports/labor",                 Some("xlsx"),  Nothing,      labor,      SITE_READ),
        row(Get,       "/v1/reports/attendance",            Some("json"),  Nothing,      attendance, SITE_READ),
        row(Get,       "/v1/reports/attendance",            Some("csv"),   Nothing,      attendance, SITE_READ),
        row(Get,       "/v1/reports/attendance",            Some("xlsx"),  Nothing,      attendance, SITE_READ),
        row(Get,       "/v1/reports/progress",              Some("json"),  Nothing,      progress,   SITE_READ),
        row(Get,       "/v1/reports/progress",              Some("csv"),   Nothing,      progress,   SITE_READ),
        row(Get,       "/v1/reports/progress",              Some("xlsx"),  Nothing,      progress,   SITE_READ),
        row(Get,       "/v1/reports/daily-log",             Some("pdf"),   Nothing,      daily_log,  SITE_READ),
        row(Get,       "/v1/reports/daily-log",             Some("json"),  Nothing,      daily_log,  SITE_READ),
        row(Get,       "/v1/reports/anomalies",             Some("json"),  Nothing,      anomalies,  SITE_READ),
        row(Get,       "/v1/reports/anomalies",             Some("csv"),   Nothing,      anomalies,  SITE_READ),
        row(Get,       "/v1/reports/anomalies",             Some("xlsx"),  Nothing,      anomalies,  SITE_READ),
        // The pay sheet of a crew: head office and the site's managers, in every format.
        row(Get,       "/v1/pay",                           Some("json"),  Nothing,      pay,        PAY_READ),
        row(Get,       "/v1/pay",                           Some("csv"),   Nothing,      pay,        PAY_READ),
        row(Get,       "/v1/pay",                           Some("xlsx"),  Nothing,      pay,        PAY_READ),
        row(Get,       "/v1/pay",                           Some("pdf"),   Nothing,      pay,        PAY_READ),
        // Pay periods: head office's; closing first, so that paid and the bank file find it.
        row(Post,      "/v1/pay/close",                     None,          Nothing,      pay_close,  PAY_OFFICE),
        row(Post,      "/v1/pay/paid",                      None,          Nothing,      pay_paid,   PAY_OFFICE),
        row(Get,       "/v1/pay/bank",                      None,          Nothing,      pay_bank,   PAY_OFFICE),
        // Worker links: made and revoked by head office and admins of the site's org.
        row(Post,      "/v1/workers/link",                  None,          Nothing,      worker_link, WORKER_LINKS),
        row(Post,      "/v1/workers/link/revoke",           None,          Nothing,      worker_link_revoke, WORKER_LINKS),
        // The OKR board: every member of the org, never another org.
        row(Get,       "/v1/reports/okr",                   Some("json"),  Nothing,      okr,        ORG_READ),
        row(Get,       "/v1/reports/okr",                   Some("csv"),   Nothing,      okr,        ORG_READ),
        row(Get,       "/v1/reports/okr",                   Some("xlsx"),  Nothing,      okr,        ORG_READ),
        // Approvals: the queue is read like a report; deciding takes a manager's role and a grant.
        row(Get,       "/v1/approvals",                     None,          Nothing,      queue,      SITE_READ),
        row(Post,      "/v1/approvals",                     None,          SubmittedDay, decide,     DECIDE),
        // Workers added on site: head office of the site's org lists, confirms and merges them.
        row(Get,       "/v1/workers/pending",               None,          Nothing,      pending_workers, SITE_OFFICE),
        row(Post,      "/v1/workers/confirm",               None,          PendingWorker, confirm_worker, SITE_OFFICE),
        row(Post,      "/v1/workers/merge",                 None,          PendingWorker, merge_worker, SITE_OFFICE),
        // Rates from a date on: head office of the site's org sets them.
        row(Post,      "/v1/workers/rate",                  None,          PendingWorker, worker_rate, SITE_OFFICE),
        // Sign-off states of a day and the month's sheet: read like a report.
        row(Get,       "/v1/signoffs",                      None,          SubmittedDay, day_of_site, SITE_READ),
        row(Get,       "/v1/signoffs/sheet",                None,          Nothing,      sheet,      SITE_READ),
        // Who wrote what: a day's history and its evidence are read like a report; the log of refused
        // changes is head office's.
        row(Get,       "/v1/history",                       None,          SubmittedDay, day_of_site, SITE_READ),
        row(Get,       "/v1/evidence",                      None,          SubmittedDay, day_of_site, SITE_READ),
        row(Get,       "/v1/refusals",                      None,          Nothing,      nothing,    HEAD_OFFICE),
        // Sync health and conflicts (issue #21): the devices page is head office's, of its own org;
        // conflicts are read like a report and settled like a decision.
        row(Get,       "/v1/devices",                       None,          Nothing,      nothing,    HEAD_OFFICE),
        row(Get,       "/v1/conflicts",                     None,          SubmittedDay, conflicts_of, SITE_READ),
        row(Post,      "/v1/conflicts/resolve",             None,          SubmittedDay, settle,     SETTLE),
        // Attachments: uploaded by whoever may write the day, read by whoever may read a day that
        // references them (a device of another site is refused even with the hash).
        row(Get,       "/v1/blobs/{sha256}/upload",         None,          Blob,         blob_upload, SITE_READ),
        row(Put,       "/v1/blobs/{sha256}/upload",         None,          Blob,         blob_put,   SITE_READ),
        row(Get,       "/v1/blobs/{sha256}",                None,          Blob,         nothing,    SITE_READ),
        row(Get,       "/v1/blobs/{sha256}/thumbnail",      None,          Blob,         nothing,    SITE_READ),
        // The admin API: admins of the org, and the operators' admin.
        row(Post,      "/v1/admin/import",                  None,          Nothing,      import,     ADMIN),
        row(Post,      "/v1/admin/orgs",                    None,          Nothing,      org,        ADMIN),
        row(Post,      "/v1/admin/sites",                   None,          Nothing,      site,       ADMIN),
        row(Post,      "/v1/admin/users",                   None,          Nothing,      user,       ADMIN),
        row(Post,      "/v1/admin/grants",                  None,          Nothing,      grant,      ADMIN),
        row(Post,      "/v1/admin/devices",                 None,          Nothing,      device,     ADMIN),
        row(Post,      "/v1/admin/devices/{device}/revoke", None,          Device,       nothing,    ADMIN),
        // Reminder channels and their delivery log (issue #21): admins of the org, and the operators'.
        row(Get,       "/v1/admin/notify",                  None,          Nothing,      org_query,  ADMIN),
        row(Post,      "/v1/admin/notify",                  None,          Nothing,      notify_add, ADMIN),
        row(Delete,    "/v1/admin/notify/{id}",             None,          NotifyChannel, nothing,   ADMIN),
        row(Get,       "/v1/admin/notify/log",              None,          Nothing,      org_query,  ADMIN),
        // The operator's window: admins and the operators (or anyone on `serve --metrics-listen`).
        row(Get,       "/metrics",                          None,          Nothing,      nothing,    METRICS),
    ]
}

/// Routes the server adds outside the OpenAPI document (`server/src/lib.rs`, `fn app`).
pub(super) const NON_API: [(&str, &str); 5] = [
    ("get", "/v1/openapi.json"),
    ("get", "/"),
    ("get", "/app.js"),
    ("get", "/app.css"),
    ("get", "/w.css"),
];

/// How the route table presents credentials: the API's bearer header, the dashboard's session
/// cookie from the dashboard's own page, or the same cookie from a page of another origin (a port of
/// the same host: the browser sends the cookie, since SameSite does not separate ports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transport {
    Bearer,
    Cookie,
    CrossOrigin,
}

/// A page on another port of the server's host.
pub(super) const OTHER_ORIGIN: &str = "http://127.0.0.1:1";

/// What a route must answer a call from a page of another origin: the public pages and documents as
/// usual; signing in or out refused (403) whoever calls; every other route refused (403) whatever
/// session the cookie holds, and 401 without a cookie, as ever.
pub(super) fn cross_origin(row: &Row, expect: Expect, who: Who) -> Expect {
    match (row.method, row.path) {
        (Post | Delete, "/v1/session") => E403,
        _ if row.expect == PUBLIC => expect,
        _ if who == Anonymous => expect,
        _ => E403,
    }
}

/// The answer to one call.
pub(super) struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

/// Calls `/v1/sync`: an allowed connection must welcome a `Hello`.
async fn call_sync(addr: std::net::SocketAddr, cred: &Cred) -> Answer {
    let mut client = match RawClient::connect_with_headers(addr, &cred.headers()).await {
        Ok(c) => c,
        Err(status) => {
            return Answer {
                status,
                content_type: String::new(),
                body: Vec::new(),
            };
        }
    };
    let first = client.welcome(0).await;
    client.close().await;
    match first {
        Some(ServerMsg::Welcome { .. }) => Answer {
            status: 101,
            content_type: "websocket".into(),
            body: Vec::new(),
        },
        other => Answer {
            status: 0,
            content_type: "websocket".into(),
            body: format!("no welcome: {other:?}").into_bytes(),
        },
    }
}

/// A fresh worker link's token, made by head office for a worker of the target site.
async fn worker_link_token(w: &World) -> String {
    let office = Api::new(&w.server, w.token(Office).unwrap());
    let (status, link) = office
        .post(
            "/v1/workers/link",
            &json!({ "site": OWN_SITE, "worker": "w-0001", "days_valid": 7 }),
        )
        .await;
    assert_eq!(status, 200, "{link}");
    link["path"].as_str().unwrap().trim_start_matches("/w/").to_string()
}

/// A fresh reminder channel of our org, made by the operators' admin: its id.
async fn notify_channel(w: &World) -> String {
    let operator = Api::new(&w.server, w.token(Operator).unwrap());
    let (status, added) = operator.post("/v1/admin/notify", &notify_add_body()).await;
    assert_eq!(status, 200, "{added}");
    added["id"].as_str().unwrap().to_string()
}

fn notify_add_body() -> Value {
    json!({ "org": ORG, "kind": "webhook", "url": "http://127.0.0.1:9/authz-table", "rules": ["kr_red"] })
}

/// Makes one call of the table. A caller over its API rate (429: the table's calls come faster than
/// a person's, and a fast machine passes a caller's burst) waits and calls again: the rate limit is
/// tested on its own, and a 429 is answered before any handler runs, so nothing was done.
pub(super) async fn call(w: &World, row: &Row, path: &str, req: &Req, cred: &Cred) -> Answer {
    for _ in 0..10 {
        let answer = call_once(w, row, path, req, cred).await;
        if answer.status != 429 {
            return answer;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    call_once(w, row, path, req, cred).await
}

async fn call_once(w: &World, row: &Row, path: &str, req: &Req, cred: &Cred) -> Answer {
    if row.method == WebSocket {
        return call_sync(w.server.addr, cred).await;
    }
    let method = match row.method {
        Get => reqwest::Method::GET,
        Post => reqwest::Method::POST,
        Put => reqwest::Method::PUT,
        Delete => reqwest::Method::DELETE,
        WebSocket => unreachable!(),
    };
    let mut b = w.api.request(method, path);
    let mut q = req.query.clone();
    if let Some(f) = row.format {
        q.push(("format", f.to_string()));
    }
    b = b.query(&q);
    if let Some(body) = &req.body {
        b = b.json(body);
    }
    if let Some(raw) = &req.raw {
        b = b.body(raw.clone());
    }
    for (name, value) in cred.headers() {
        b = b.header(name, value);
    }
    let resp = b.send().await.unwrap();
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    // An event stream never ends: its headers are the answer.
    let body = if content_type.starts_with("text/event-stream") {
        Vec::new()
    } else {
        resp.bytes().await.unwrap().to_vec()
    };
    Answer {
        status,
        content_type,
        body,
    }
}

/// What an answer amounts to.
pub(super) fn classify(row: &Row, a: &Answer) -> Result<Expect, String> {
    let text = || String::from_utf8_lossy(&a.body[..a.body.len().min(300)]).into_owned();
    match a.status {
        401 => Ok(Expect::Unauthorized),
        403 => Ok(Expect::Forbidden),
        200..=299 | 409 if row.method == Post && row.path == "/v1/approvals" => {
            let results: Vec<Value> = serde_json::from_slice(&a.body).map_err(|e| format!("{e}: {}", text()))?;
            let refused = |r: &Value| r["error"].as_str().is_some_and(|e| e.starts_with("forbidden"));
            if a.status == 200 && !results.is_empty() && results.iter().all(|r| r["ok"] == true) {
                Ok(Expect::Allowed)
            } else if a.status == 409 && !results.is_empty() && results.iter().all(refused) {
                Ok(Expect::RefusedInBody)
            } else {
                Err(format!("{} {}", a.status, text()))
            }
        }
        // The table's day holds no conflict: an allowed caller gets past the grant check to the
        // answer that there is nothing to settle.
        409 if row.path == "/v1/conflicts/resolve" && text().contains("no field") => Ok(Expect::Allowed),
        101 | 200..=299 => Ok(Expect::Allowed),
        s => Err(format!("{s} {}", text())),
    }
}

/// The content type an allowed call must answer with, where it says something.
pub(super) fn content_type_of(row: &Row) -> Option<&'static str> {
    match (row.format, row.path) {
        (Some("json"), _) => Some("application/json"),
        (Some("csv"), _) => Some("text/csv"),
        (Some("xlsx"), _) => Some("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (Some("pdf"), _) => Some("application/pdf"),
        (_, "/v1/events") => Some("text/event-stream"),
        (_, "/v1/pay/bank") => Some("text/csv"),
        (_, "/v1/blobs/{sha256}") => Some("application/octet-stream"),
        (_, "/v1/blobs/{sha256}/thumbnail") => Some("image/jpeg"),
        (_, "/w/{token}") => Some("text/html"),
        (_, "/w.css") => Some("text/css"),
        _ => None,
    }
}

/// Runs every row for every caller; returns what differed from the table.
pub(super) async fn run_routes(w: &mut World, transport: Transport) -> Vec<String> {
    let mut wrong = Vec::new();
    for row in routes() {
        for (col, who) in CALLERS.into_iter().enumerate() {
            let expect = match transport {
                Transport::CrossOrigin => cross_origin(&row, row.expect[col], who),
                _ => row.expect[col],
            };
            let token = w.token(who).map(str::to_string);
            let own = w.server.url();
            let fresh = match (row.prep, &token) {
                (Prep::Session, Some(t)) if !matches!(who, BadToken | Revoked) && transport != Transport::Bearer => {
                    let s = w.sign_in(t).await;
                    w.signed_out.push(s.clone());
                    Some(s)
                }
                _ => None,
            };
            let session = fresh.as_ref().or(w.sessions.get(&who));
            let cred = match (session, who, transport) {
                (_, Anonymous, Transport::CrossOrigin) => Cred::Origin(OTHER_ORIGIN.into()),
                (_, Anonymous, _) => Cred::Nothing,
                (_, _, Transport::Bearer) => Cred::Bearer(token.clone().unwrap()),
                (Some(s), _, Transport::Cookie) => Cred::Cookie {
                    session: s.clone(),
                    origin: Some(own),
                },
                (Some(s), _, Transport::CrossOrigin) => Cred::Cookie {
                    session: s.clone(),
                    origin: Some(OTHER_ORIGIN.into()),
                },
                (None, _, _) => unreachable!("every caller but Anonymous has a session"),
            };
            let site = who.site();
            let day = match row.prep {
                Prep::SubmittedDay => w.submitted_day(site).await,
                _ => d("2026-11-30"),
            };
            let worker = match row.prep {
                Prep::PendingWorker => w.pending_worker(site).await,
                _ => Default::default(),
            };
            let path = match row.prep {
                Prep::Device => row.path.replace("{device}", &w.spare_device().await),
                Prep::Blob => row.path.replace("{sha256}", &w.blobs[site].0),
                Prep::WorkerLink => row.path.replace("{token}", &worker_link_token(w).await),
                Prep::NotifyChannel => row.path.replace("{id}", &notify_channel(w).await),
                _ => row.path.to_string(),
            };
            let target = Target {
                site,
                org: ORG,
                site_record: &w.site_records[site],
                day,
                token: token.as_deref().unwrap_or(""),
                blob: &w.blobs[site],
                worker: &worker,
            };
            let req = (row.request)(&target);
            let before = if expect == OK {
                None
            } else {
                Some(w.credentials().await)
            };
            let answer = call(w, &row, &path, &req, &cred).await;
            let what = format!(
                "{} {}{} as {who:?} via {transport:?}",
                row.method.verb().to_uppercase(),
                path,
                row.format.map(|f| format!(" ({f})")).unwrap_or_default()
            );
            match classify(&row, &answer) {
                Ok(seen) if seen == expect => {}
                Ok(seen) => wrong.push(format!("{what}: expected {expect:?}, got {seen:?} ({})", answer.status)),
                Err(e) => wrong.push(format!("{what}: expected {expect:?}, got {e}")),
            }
            if let Some(before) = before
                && w.credentials().await != before
            {
                wrong.push(format!("{what}: refused, yet the credential database changed"));
            }
            if row.prep == Prep::PendingWorker && expect != OK && !w.still_pending(site, &worker.0).await {
                wrong.push(format!("{what}: refused, yet the worker was decided"));
            }
            if row.prep == Prep::SubmittedDay && expect != OK && w.day_status(site, day).await != DayStatus::Submitted {
                wrong.push(format!("{what}: refused, yet the day was decided"));
            }
            // Signing out ends the session on the server at once; a refused sign-out ends nothing.
            if let Some(session) = &fresh {
                let still = w.session_works(session).await;
                if expect == OK && still {
                    wrong.push(format!("{what}: signed out, yet the session still works"));
                } else if expect != OK && !still {
                    wrong.push(format!("{what}: refused, yet the session ended"));
                }
            }
            if expect == OK
                && let Some(ct) = content_type_of(&row)
                && !answer.content_type.starts_with(ct)
            {
                wrong.push(format!("{what}: content type {:?}, expected {ct}", answer.content_type));
            }
            if let Some(t) = &token
                && contains(&answer.body, t.as_bytes())
            {
                wrong.push(format!("{what}: the answer echoes the caller's token"));
            }
            // An enrolled device's token is shown once, in the answer: it too must never be stored.
            if let Ok(v) = serde_json::from_slice::<Value>(&answer.body)
                && let Some(t) = v["token"].as_str()
            {
                assert_token_shape(t);
                w.seen.push(t.to_string());
            }
        }
    }
    wrong
}

// ---- The test -------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
pub(super) async fn every_route_answers_every_caller_as_the_table_says() {
    let mut w = World::new().await;
    assert_table_is_complete(&w).await;
    let mut wrong = run_routes(&mut w, Transport::Bearer).await;
    wrong.extend(run_routes(&mut w, Transport::Cookie).await);
    wrong.extend(run_routes(&mut w, Transport::CrossOrigin).await);
    assert!(
        wrong.is_empty(),
        "{} answers differ from the table:\n{}",
        wrong.len(),
        wrong.join("\n")
    );

    // Requests rejected before the handler looks at the token are logged by axum (at trace level):
    // send one with every token, so that a rejection logging its request would show here.
    let tokens: Vec<String> = w.tokens.values().cloned().collect();
    for t in &tokens {
        let status = Api::new(&w.server, t)
            .request(reqwest::Method::POST, "/v1/approvals")
            .header("content-type", "application/json")
            .body("{")
            .send()
            .await
            .unwrap()
            .status();
        // Bad JSON from a valid token is a 400; revoked and wrong tokens are refused first.
        assert!(status == 400 || status == 401, "{status}");
    }

    // Without a site, each caller's reports, queue and session cover exactly the sites it reads.
    #[rustfmt::skip]
    let scope: [(Who, &[&str]); 7] = [
        (ForemanOwn,   &[OWN_SITE]),
        (ManagerOwn,   &[OWN_SITE]),
        (Office,       &[OWN_SITE, THIRD_SITE, OTHER_SITE]),
        (Admin,        &[OWN_SITE, THIRD_SITE, OTHER_SITE]),
        (Operator,     &[]),
        (OtherForeman, &[OTHER_ORG_SITE]),
        (OtherAdmin,   &[OTHER_ORG_SITE]),
    ];
    for (who, sites) in scope {
        let api = Api::new(&w.server, w.token(who).unwrap());
        let get = |path: &'static str, q: &'static [(&'static str, &'static str)]| api.json(path, q);
        let session = get("/v1/session", &[]).await;
        let mut ids: Vec<&str> = session["sites"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap())
            .collect();
        ids.sort();
        assert_eq!(ids, sites, "the session of {who:?}");
        let labor = get(
            "/v1/reports/labor",
            &[
                ("from", "2026-11-01"),
                ("to", "2026-11-30"),
                ("include_unapproved", "true"),
            ],
        )
        .await;
        let covered: Vec<&str> = labor["sites"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert_eq!(covered, sites, "the labor report of {who:?}");
        let rows = labor["rows"].as_array().unwrap();
        assert!(
            rows.iter().all(|r| sites.contains(&r["key"].as_str().unwrap_or(""))),
            "the labor report of {who:?} shows another site: {labor}"
        );
        let queue = get("/v1/approvals", &[("status", "draft")]).await;
        let days = queue.as_array().unwrap();
        assert!(
            days.iter().all(|d| sites.contains(&d["site"].as_str().unwrap())),
            "the queue of {who:?}: {queue}"
        );
        assert_eq!(
            days.is_empty(),
            sites.is_empty(),
            "the queue of {who:?} has the seeded days"
        );
        let found = get("/v1/reports/anomalies", &[("from", "2026-11-01"), ("to", "2026-11-30")]).await;
        assert!(
            found.as_array().unwrap().iter().all(|a| a["site"]
                .as_str()
                .unwrap()
                .split(',')
                .all(|s| sites.contains(&s))),
            "the anomalies of {who:?}: {found}"
        );
    }
    assert_no_secret_leaks(&w).await;
    w.server.stop().await;
}
