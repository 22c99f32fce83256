//! Who wrote what, for people: a document's history change by change (`/v1/history`), the changes
//! the server refused (`/v1/refusals`), and evidence files that prove the history outside this
//! server (`/v1/evidence`).

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sitesync_core::evidence::{self, Payload, Subject};
use sitesync_core::ids::{DocId, OrgId, SiteId};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Access, Principal, RefusalRow, Role};
use crate::error::{Error, Result};
use crate::http::caller::Caller;
use crate::http::extract::QueryParams;
use crate::http::{NotFound, Refusals};
use crate::state::{AppState, SERVER_DEVICE};

/// Which document: a site-day (`site` and `date`) or an OKR cycle (`cycle`, of the caller's org).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// The site of a site-day.
    #[param(pattern = r"^[^\s|]{1,100}$")]
    site: Option<String>,
    /// The date of a site-day (YYYY-MM-DD).
    date: Option<NaiveDate>,
    /// An OKR cycle of the caller's org, e.g. `2026-Q4`.
    #[param(pattern = r"^[^\s|]{1,100}$")]
    cycle: Option<String>,
}

/// One write of a change.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct WriteView {
    /// The table (`labor`, `reviews` …).
    pub table: String,
    pub record: String,
    pub field: String,
    /// The value written, as text (`(deleted)` for a deletion).
    pub value: String,
}

/// One change of a document, with its author as the signature proves it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChangeView {
    /// The change hash.
    pub hash: String,
    /// The signing device (`server` for the server's own writes).
    pub device: Option<String>,
    /// Its user (for the server's writes: the user it wrote for, or `system`).
    pub user_id: Option<String>,
    /// The user's name.
    pub user_name: Option<String>,
    /// Whether the signature verifies.
    pub signed: bool,
    /// When the server received it (RFC 3339), where recorded.
    pub received_at: Option<String>,
    /// The writing device's own clock (RFC 3339).
    pub device_time: String,
    /// What it wrote.
    pub writes: Vec<WriteView>,
}

/// One current value of a field and who entered it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct ValueView {
    /// The value, as text.
    pub value: String,
    /// The change that wrote it.
    pub hash: String,
    /// Who entered it (user name), where known.
    pub user_name: Option<String>,
    /// Their user id.
    pub user_id: Option<String>,
    pub device: Option<String>,
    /// The writing device's clock (RFC 3339).
    pub device_time: String,
}

/// A field of a record with every value it holds now: the one shown first, then those that lost a
/// concurrent edit (a conflict to settle).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct FieldView {
    pub table: String,
    /// The record (a line id, a review event …).
    pub record: String,
    pub field: String,
    /// The values, the shown one first.
    pub values: Vec<ValueView>,
}

/// The changes of a document in causal order, and who entered each current value.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct History {
    pub doc: String,
    /// Its changes, each after those it builds on.
    pub changes: Vec<ChangeView>,
    /// Every field's current values with their authors.
    pub fields: Vec<FieldView>,
}

/// Who wrote a change, for naming the authors of values: user name, user id, device, device time.
type Writer = (Option<String>, Option<String>, Option<String>, i64);

fn history_doc(who: &Principal, q: &HistoryQuery) -> Result<DocId> {
    match (&q.site, q.date, &q.cycle) {
        (Some(site), Some(date), None) => Ok(DocId::Day(
            SiteId::new(site).map_err(|e| Error::BadRequest(e.to_string()))?,
            date,
        )),
        (None, None, Some(cycle)) => Ok(DocId::Okr(
            OrgId::new(&who.org_id).map_err(|e| Error::Internal(e.to_string()))?,
            cycle.clone(),
        )),
        _ => Err(Error::BadRequest("give site and date, or cycle".into())),
    }
}

/// A document's history: every change in causal order with its device, user, times and writes.
#[utoipa::path(get, path = "/v1/history", params(HistoryQuery), security(("bearer" = [])),
    responses(
        (status = 200, description = "The history", body = History),
        Refusals))]
pub async fn history(
    State(state): State<AppState>,
    Caller(who): Caller,
    QueryParams(q): QueryParams<HistoryQuery>,
) -> Result<Json<History>> {
    let id = history_doc(&who, &q)?;
    let out = state
        .both(move |auth, store| {
            if auth.access(&who, &id)? == Access::None {
                return Err(Error::Forbidden(format!("no grant for {id}")));
            }
            let names = auth.user_names(&who.org_id)?;
            let entries = store.history(&id, SERVER_DEVICE, sitesync_core::store::Authors::Users(&names))?;
            let by_hash: std::collections::HashMap<String, Writer> = entries
                .iter()
                .map(|e| {
                    (
                        e.change.hash.clone(),
                        (
                            e.author.user_name.clone(),
                            e.author.user_id.clone(),
                            e.author.device.clone(),
                            e.change.time_ms,
                        ),
                    )
                })
                .collect();
            let fields = store
                .field_values(&id)?
                .into_iter()
                .map(|f| FieldView {
                    table: f.table,
                    record: f.record,
                    field: f.field,
                    values: f
                        .values
                        .into_iter()
                        .map(|(v, hash)| {
                            let (user_name, user_id, device, time) = by_hash.get(&hash).cloned().unwrap_or_default();
                            ValueView {
                                value: v.to_string(),
                                user_name,
                                user_id,
                                device,
                                device_time: chrono::DateTime::from_timestamp_millis(time)
                                    .map(|t| t.to_rfc3339())
                                    .unwrap_or_default(),
                                hash,
                            }
                        })
                        .collect(),
                })
                .collect();
            Ok(History {
                doc: id.to_string(),
                fields,
                changes: entries
                    .into_iter()
                    .map(|e| ChangeView {
                        hash: e.change.hash,
                        device: e.author.device,
                        user_id: e.author.user_id,
                        user_name: e.author.user_name,
                        signed: e.author.signed,
                        received_at: e.received_at,
                        device_time: chrono::DateTime::from_timestamp_millis(e.change.time_ms)
                            .map(|t| t.to_rfc3339())
                            .unwrap_or_default(),
                        writes: e
                            .change
                            .writes
                            .into_iter()
                            .map(|w| WriteView {
                                table: w.table,
                                record: w.record,
                                field: w.field,
                                value: w.value.to_string(),
                            })
                            .collect(),
                    })
                    .collect(),
            })
        })
        .await?;
    Ok(Json(out))
}

/// How many refusals at most.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RefusalsQuery {
    /// At most this many, newest first (default 200, at most 1,000).
    limit: Option<u32>,
}

/// Changes the server refused from the org's devices, with the rule each broke (org admins and head
/// office).
#[utoipa::path(get, path = "/v1/refusals", params(RefusalsQuery), security(("bearer" = [])),
    responses(
        (status = 200, description = "Newest first", body = Vec<RefusalRow>),
        Refusals))]
pub async fn refusals(
    State(state): State<AppState>,
    Caller(who): Caller,
    QueryParams(q): QueryParams<RefusalsQuery>,
) -> Result<Json<Vec<RefusalRow>>> {
    if !matches!(who.role, Role::Admin | Role::HeadOffice) {
        return Err(Error::Forbidden("refusals are for admins and head office".into()));
    }
    let limit = q.limit.unwrap_or(200).min(1000);
    let rows = state.auth(move |a| a.refusals(&who.org_id, limit)).await?;
    Ok(Json(rows))
}

/// What an evidence file covers: a site-day, or a worker's month.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EvidenceQuery {
    /// The site of a site-day.
    #[param(pattern = r"^[^\s|]{1,100}$")]
    site: Option<String>,
    /// The date of a site-day.
    date: Option<NaiveDate>,
    /// The worker of a month.
    #[param(pattern = r"^[^\s|]{1,100}$")]
    worker: Option<String>,
    /// The month (YYYY-MM).
    #[param(pattern = r"^\d{4}-\d{2}$")]
    month: Option<String>,
}

/// A self-contained, signed evidence file of a site-day or of a worker's month: every change, the
/// devices' signatures and enrolment records, signed by the server. `sitesync verify-evidence FILE`
/// checks it offline.
#[utoipa::path(get, path = "/v1/evidence", params(EvidenceQuery), security(("bearer" = [])),
    responses(
        (status = 200, description = "The evidence file (JSON)", content_type = "application/json"),
        Refusals, NotFound))]
pub async fn evidence_file(
    State(state): State<AppState>,
    Caller(who): Caller,
    QueryParams(q): QueryParams<EvidenceQuery>,
) -> Result<Response> {
    let (subject, name) = match (&q.site, q.date, &q.worker, &q.month) {
        (Some(site), Some(date), None, None) => (
            Subject::SiteDay {
                site: site.clone(),
                date: date.to_string(),
            },
            format!("evidence-{site}-{date}.json"),
        ),
        (None, None, Some(worker), Some(month)) => (
            Subject::WorkerMonth {
                worker: worker.clone(),
                month: month.clone(),
            },
            format!("evidence-{worker}-{month}.json"),
        ),
        _ => return Err(Error::BadRequest("give site and date, or worker and month".into())),
    };
    let readable = crate::http::caller::sites(&state, &who, None).await?;
    let file = state
        .both(move |auth, store| {
            let docs: Vec<DocId> = match &subject {
                Subject::SiteDay { site, date } => {
                    let site = SiteId::new(site).map_err(|e| Error::BadRequest(e.to_string()))?;
                    let date: NaiveDate = date.parse().map_err(|_| Error::BadRequest("date".into()))?;
                    let id = DocId::Day(site, date);
                    if auth.access(&who, &id)? == Access::None {
                        return Err(Error::Forbidden(format!("no grant for {id}")));
                    }
                    vec![id]
                }
                Subject::WorkerMonth { worker, month } => {
                    let first = NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
                        .map_err(|_| Error::BadRequest("month is YYYY-MM".into()))?;
                    let worker =
                        sitesync_core::ids::WorkerId::new(worker).map_err(|e| Error::BadRequest(e.to_string()))?;
                    store
                        .worker_docs(&worker, first)?
                        .into_iter()
                        .filter(|d| matches!(d, DocId::Day(s, _) if readable.iter().any(|r| r == s.as_str())))
                        .collect()
                }
            };
            let mut documents = Vec::new();
            for id in &docs {
                if let Some(d) = store.evidence_document(id, SERVER_DEVICE)? {
                    documents.push(d);
                }
            }
            if documents.is_empty() {
                return Err(Error::NotFound("nothing logged".into()));
            }
            let server_key = store.public_key();
            let mut devices: Vec<evidence::Device> = vec![evidence::Device {
                device: SERVER_DEVICE.into(),
                user_id: "system".into(),
                user_name: "server".into(),
                role: "admin".into(),
                enrolled_at: String::new(),
                revoked_at: None,
                keys: vec![hex::encode(server_key)],
            }];
            let mut seen = std::collections::BTreeSet::new();
            let mut users = std::collections::BTreeSet::new();
            for d in &documents {
                for s in &d.signatures {
                    if let Some(u) = &s.for_user {
                        users.insert(u.clone());
                    }
                    let mut key = [0u8; 32];
                    if hex::decode_to_slice(&s.key, &mut key).is_err() || key == server_key {
                        continue;
                    }
                    if let Some(device) = auth.key_device(&key)?
                        && seen.insert(device.clone())
                        && let Some(e) = auth.enrolment(&device)?
                    {
                        devices.push(device_record(e));
                    }
                }
            }
            // Users the server wrote for (approvals in the dashboard) are named by their devices.
            for user in users {
                for device in auth.user_devices(&user)? {
                    if seen.insert(device.clone())
                        && let Some(e) = auth.enrolment(&device)?
                    {
                        devices.push(device_record(e));
                    }
                }
            }
            let payload = Payload {
                subject,
                generated_at: chrono::Utc::now().to_rfc3339(),
                server_key: hex::encode(server_key),
                devices,
                documents,
            };
            Ok(evidence::seal(&payload, |m| store.sign(m)))
        })
        .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        file,
    )
        .into_response())
}

fn device_record(e: crate::auth::Enrolment) -> evidence::Device {
    evidence::Device {
        device: e.device,
        user_id: e.user_id,
        user_name: e.user_name,
        role: e.role,
        enrolled_at: e.enrolled_at,
        revoked_at: e.revoked_at,
        keys: e.keys,
    }
}
