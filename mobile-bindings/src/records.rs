//! Plain records crossing the boundary. Dates are ISO 8601 calendar dates (`2026-09-01`) in the
//! site's time zone; timestamps are RFC 3339; money is fen, work-days hundredths, time minutes,
//! quantities thousandths — the units of the JSON API.

use sitesync_core::labor::{DaySheet, DayStatus, LaborKind, LaborLine, ProgressLine, ReviewEvent};
use sitesync_core::roster::Roster;
use sitesync_core::sync::SyncStatus;

/// 点工 day labor or 包工 piecework.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub enum LaborKindRecord {
    /// Paid by the work-day.
    DayLabor,
    Piecework,
}

impl From<LaborKind> for LaborKindRecord {
    fn from(k: LaborKind) -> Self {
        match k {
            LaborKind::DayLabor => LaborKindRecord::DayLabor,
            LaborKind::Piecework => LaborKindRecord::Piecework,
        }
    }
}

impl From<LaborKindRecord> for LaborKind {
    fn from(k: LaborKindRecord) -> Self {
        match k {
            LaborKindRecord::DayLabor => LaborKind::DayLabor,
            LaborKindRecord::Piecework => LaborKind::Piecework,
        }
    }
}

/// Where a day stands in review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum DayStatusRecord {
    /// Being filled in.
    Draft,
    /// Waiting for a manager.
    Submitted,
    /// Approved and locked.
    Approved,
    /// Sent back with a reason.
    Rejected,
    /// Changed after approval.
    AmendedAfterApproval,
}

impl From<DayStatus> for DayStatusRecord {
    fn from(s: DayStatus) -> Self {
        match s {
            DayStatus::Draft => DayStatusRecord::Draft,
            DayStatus::Submitted => DayStatusRecord::Submitted,
            DayStatus::Approved => DayStatusRecord::Approved,
            DayStatus::Rejected => DayStatusRecord::Rejected,
            DayStatus::AmendedAfterApproval => DayStatusRecord::AmendedAfterApproval,
        }
    }
}

/// One worker on one work item for one day, as the foreman enters it.
#[derive(Debug, Clone, uniffi::Record)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct LaborInput {
    pub site: String,
    /// Date, `YYYY-MM-DD`.
    pub date: String,
    pub worker: String,
    /// Work item id.
    pub work_item: String,
    /// Work-days in hundredths (100 = one day).
    pub work_days_centi: i64,
    /// Hours in minutes; `None`: 8 hours per work-day.
    pub hours_min: Option<i64>,
    /// Overtime in minutes.
    pub overtime_min: i64,
    /// Day labor or piecework.
    pub kind: LaborKindRecord,
    /// Day rate in fen; `None`: the worker's rate in force on the line's date.
    pub rate_fen: Option<i64>,
    pub note: String,
}

/// A worker who turned up on site, added by the foreman offline.
#[derive(Debug, Clone, uniffi::Record)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct WorkerInput {
    pub site: String,
    pub name: String,
    pub phone: String,
    /// Trade code (工种), e.g. `rebar`.
    pub trade: String,
    /// Crew id.
    pub crew: String,
    /// Day rate in fen.
    pub day_rate_fen: i64,
    /// Overtime rate per hour in fen.
    pub overtime_rate_fen: i64,
    /// The ID-card number, if shown: the worker's id is derived from it, so two phones adding the
    /// same person make one worker.
    pub id_card: Option<String>,
}

/// Changes to a line; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, uniffi::Record)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct LaborPatchInput {
    /// Work-days in hundredths.
    pub work_days_centi: Option<i64>,
    /// Hours in minutes.
    pub hours_min: Option<i64>,
    /// Overtime in minutes.
    pub overtime_min: Option<i64>,
    pub kind: Option<LaborKindRecord>,
    /// Day rate in fen.
    pub rate_fen: Option<i64>,
    pub note: Option<String>,
}

/// A value that lost a concurrent edit, kept for review.
#[derive(Debug, Clone, uniffi::Record)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct ConflictRecord {
    pub field: String,
    /// The value shown.
    pub chosen: String,
    /// The other values.
    pub others: Vec<String>,
}

/// A labor line.
#[derive(Debug, Clone, uniffi::Record)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct LaborLineRecord {
    pub id: String,
    pub worker: String,
    /// Work item id.
    pub work_item: String,
    /// Work-days in hundredths.
    pub work_days_centi: i64,
    /// Hours in minutes.
    pub hours_min: i64,
    /// Overtime in minutes.
    pub overtime_min: i64,
    pub kind: LaborKindRecord,
    /// Day rate in fen.
    pub rate_fen: i64,
    /// Overtime rate per hour in fen.
    pub overtime_rate_fen: i64,
    /// Cost in fen.
    pub cost_fen: i64,
    pub note: String,
    /// Who entered it.
    pub entered_by: String,
    /// Concurrent edits that lost, for review.
    pub conflicts: Vec<ConflictRecord>,
}

impl From<&LaborLine> for LaborLineRecord {
    fn from(l: &LaborLine) -> Self {
        LaborLineRecord {
            id: l.id.to_string(),
            worker: l.worker.to_string(),
            work_item: l.work_item.to_string(),
            work_days_centi: l.work_days.centi(),
            hours_min: l.hours.minutes(),
            overtime_min: l.overtime.minutes(),
            kind: l.kind.into(),
            rate_fen: l.day_rate.fen(),
            overtime_rate_fen: l.overtime_rate.fen(),
            cost_fen: l.cost().fen(),
            note: l.note.clone(),
            entered_by: l.entered_by.clone(),
            conflicts: l
                .conflicts
                .iter()
                .map(|c| ConflictRecord {
                    field: c.field.clone(),
                    chosen: c.chosen.clone(),
                    others: c.others.clone(),
                })
                .collect(),
        }
    }
}

/// A progress line.
#[derive(Debug, Clone, uniffi::Record)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct ProgressRecord {
    pub id: String,
    /// Work item id.
    pub work_item: String,
    /// Quantity installed that day, thousandths.
    pub quantity_milli: i64,
    pub note: String,
}

impl From<&ProgressLine> for ProgressRecord {
    fn from(p: &ProgressLine) -> Self {
        ProgressRecord {
            id: p.id.to_string(),
            work_item: p.work_item.to_string(),
            quantity_milli: p.quantity.milli(),
            note: p.note.clone(),
        }
    }
}

/// A step of the review trail.
#[derive(Debug, Clone, uniffi::Record)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct ReviewRecord {
    /// submitted, approved, rejected or amended.
    pub action: String,
    pub by: String,
    /// When (RFC 3339).
    pub at: String,
    /// Reason or comment.
    pub reason: String,
}

impl From<&ReviewEvent> for ReviewRecord {
    fn from(e: &ReviewEvent) -> Self {
        ReviewRecord {
            action: e.action.as_str().into(),
            by: e.by.clone(),
            at: e.at.to_rfc3339(),
            reason: e.reason.clone(),
        }
    }
}

/// A site-day: today's sheet.
#[derive(Debug, Clone, uniffi::Record)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct DaySheetRecord {
    pub site: String,
    pub date: String,
    pub status: DayStatusRecord,
    pub weather: String,
    pub note: String,
    pub labor: Vec<LaborLineRecord>,
    pub progress: Vec<ProgressRecord>,
    /// Review trail, oldest first.
    pub reviews: Vec<ReviewRecord>,
    /// Work-days in hundredths over the lines.
    pub work_days_centi: i64,
    /// Cost in fen over the lines.
    pub cost_fen: i64,
}

impl From<&DaySheet> for DaySheetRecord {
    fn from(s: &DaySheet) -> Self {
        DaySheetRecord {
            site: s.site.to_string(),
            date: s.date.to_string(),
            status: s.status.into(),
            weather: s.weather.clone(),
            note: s.note.clone(),
            labor: s.labor.iter().map(Into::into).collect(),
            progress: s.progress.iter().map(Into::into).collect(),
            reviews: s.reviews.iter().map(Into::into).collect(),
            work_days_centi: s.labor.iter().map(|l| l.work_days.centi()).sum(),
            cost_fen: s.labor.iter().map(|l| l.cost().fen()).sum(),
        }
    }
}

/// A worker on the roster.
#[derive(Debug, Clone, uniffi::Record)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct WorkerRecord {
    pub id: String,
    pub name: String,
    pub trade: String,
    pub crew: String,
    /// Day rate in fen.
    pub day_rate_fen: i64,
    /// Overtime rate per hour in fen.
    pub overtime_rate_fen: i64,
    /// Still on site.
    pub active: bool,
}

#[derive(Debug, Clone, uniffi::Record)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct CrewRecord {
    pub id: String,
    pub name: String,
    pub leader: String,
    pub trade: String,
}

/// A work item.
#[derive(Debug, Clone, uniffi::Record)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct WorkItemRecord {
    /// Work item id.
    pub id: String,
    pub code: String,
    pub name: String,
    pub unit: String,
    /// Planned quantity, thousandths.
    pub planned_quantity_milli: i64,
}

/// A site's master data.
#[derive(Debug, Clone, uniffi::Record)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct RosterRecord {
    pub site: String,
    pub code: String,
    pub name: String,
    /// IANA time zone.
    pub timezone: String,
    pub crews: Vec<CrewRecord>,
    pub workers: Vec<WorkerRecord>,
    pub work_items: Vec<WorkItemRecord>,
}

impl From<&Roster> for RosterRecord {
    fn from(r: &Roster) -> Self {
        RosterRecord {
            site: r.site.id.to_string(),
            code: r.site.code.clone(),
            name: r.site.name.clone(),
            timezone: r.site.timezone.clone(),
            crews: r
                .crews
                .iter()
                .map(|c| CrewRecord {
                    id: c.id.to_string(),
                    name: c.name.clone(),
                    leader: c.leader.clone(),
                    trade: c.trade.clone(),
                })
                .collect(),
            workers: r
                .workers
                .iter()
                .map(|w| WorkerRecord {
                    id: w.id.to_string(),
                    name: w.name.clone(),
                    trade: w.trade.clone(),
                    crew: w.crew.to_string(),
                    day_rate_fen: w.day_rate.fen(),
                    overtime_rate_fen: w.overtime_rate.fen(),
                    active: w.active,
                })
                .collect(),
            work_items: r
                .work_items
                .iter()
                .map(|w| WorkItemRecord {
                    id: w.id.to_string(),
                    code: w.code.clone(),
                    name: w.name.clone(),
                    unit: w.unit.clone(),
                    planned_quantity_milli: w.planned_quantity.milli(),
                })
                .collect(),
        }
    }
}

/// What a crew-day copy did.
#[derive(Debug, Clone, uniffi::Record)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct CrewCopyRecord {
    pub created: Vec<String>,
    /// Workers skipped (already logged that day, or inactive).
    pub skipped: Vec<String>,
}

/// How totals are grouped: the core's one grouping, exposed as it is (uniffi checks this mirror
/// against the real enum, variant by variant).
pub type GroupByRecord = sitesync_core::report::GroupBy;

#[uniffi::remote(Enum)]
pub enum GroupByRecord {
    Site,
    Crew,
    Trade,
    Worker,
    WorkItem,
    Day,
}

/// One group of totals.
#[derive(Debug, Clone, uniffi::Record)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct TotalsRowRecord {
    /// The group's key.
    pub key: String,
    /// A readable name.
    pub label: String,
    /// Work-days in hundredths.
    pub work_days_centi: i64,
    /// Hours in minutes.
    pub hours_min: i64,
    /// Overtime in minutes.
    pub overtime_min: i64,
    /// Cost in fen.
    pub cost_fen: i64,
    pub lines: i64,
}

/// Totals over a date range.
#[derive(Debug, Clone, uniffi::Record)]
pub struct TotalsRecord {
    /// The overall sums.
    pub total: TotalsRowRecord,
    /// Per group, when grouped.
    pub rows: Vec<TotalsRowRecord>,
}

/// A worker's day in a month.
#[derive(Debug, Clone, uniffi::Record)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct WorkerDayRecord {
    pub date: String,
    pub site: String,
    /// Work item id.
    pub work_item: String,
    /// Work-days in hundredths.
    pub work_days_centi: i64,
    /// Overtime in minutes.
    pub overtime_min: i64,
    /// Cost in fen.
    pub cost_fen: i64,
}

/// A worker's month across sites.
#[derive(Debug, Clone, uniffi::Record)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct WorkerMonthRecord {
    pub worker: String,
    /// The month, `YYYY-MM`.
    pub month: String,
    pub days: Vec<WorkerDayRecord>,
    /// Work-days in hundredths.
    pub work_days_centi: i64,
    /// Cost in fen.
    pub cost_fen: i64,
}

/// The sync status an app shows.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SyncStatusRecord {
    /// The server, if bound.
    pub server: Option<String>,
    /// Whether the background sync holds a connection.
    pub connected: bool,
    /// Documents with changes head office does not have yet.
    pub pending: Vec<String>,
    /// When the last sync completed (RFC 3339).
    pub last_sync: Option<String>,
    /// The last error, if the last attempt failed.
    pub last_error: Option<String>,
    /// Head office has everything this phone holds: nothing pending and a sync completed.
    pub synced: bool,
    /// Changes of this phone's head office refused, all told: taken out of the phone's records, so
    /// the app must tell the user what did not count (each refusal is reported once, here and in
    /// the sync that met it, never dropped silently).
    pub refused_changes: u64,
    /// The latest refusals, newest first (at most 5): what was refused and why.
    pub latest_refusals: Vec<RefusalRecord>,
    /// Whether the app must be updated to keep syncing, as the server last said.
    pub update: UpdateStateRecord,
}

/// Whether this app's sync protocol is still the server's (`docs/protocol.md`, *Versions*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum UpdateStateRecord {
    /// The server speaks this app's version.
    UpToDate,
    /// The server speaks a newer version: sync still works; offer the update.
    Available,
    /// The server no longer speaks this app's version: nothing syncs until the app is updated
    /// (writes go on offline and sync once it is).
    Required,
}

impl From<sitesync_core::sync::UpdateState> for UpdateStateRecord {
    fn from(s: sitesync_core::sync::UpdateState) -> Self {
        match s {
            sitesync_core::sync::UpdateState::UpToDate => UpdateStateRecord::UpToDate,
            sitesync_core::sync::UpdateState::Available => UpdateStateRecord::Available,
            sitesync_core::sync::UpdateState::Required => UpdateStateRecord::Required,
        }
    }
}

/// A change of this phone's head office refused, taken out of the phone's copy.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RefusalRecord {
    /// The document (`day:site-hz-01:2026-12-01`).
    pub doc: String,
    /// The change's hash, hex.
    pub hash: String,
    /// The rule's stable name (`role_may_not_write`, `forged_author` …), for the app to act on.
    pub rule: String,
    /// Why, in words, to show the user.
    pub reason: String,
}

impl From<&sitesync_core::sync::engine::RefusedNote> for RefusalRecord {
    fn from(r: &sitesync_core::sync::engine::RefusedNote) -> Self {
        RefusalRecord {
            doc: r.doc.clone(),
            hash: r.hash.clone(),
            rule: r.rule.clone(),
            reason: r.reason.clone(),
        }
    }
}

impl From<&SyncStatus> for SyncStatusRecord {
    fn from(s: &SyncStatus) -> Self {
        SyncStatusRecord {
            server: s.server.clone(),
            connected: s.connected,
            pending: s.pending.clone(),
            last_sync: s.last_sync.clone(),
            last_error: s.last_error.clone(),
            synced: s.pending.is_empty() && s.last_sync.is_some(),
            refused_changes: s.refused_changes as u64,
            latest_refusals: s.latest_refusals.iter().map(RefusalRecord::from).collect(),
            update: s.update.into(),
        }
    }
}

/// What a sync exchange did.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SyncProgressRecord {
    /// Documents head office acknowledged.
    pub pushed: u64,
    /// Documents that received changes.
    pub received: u64,
    /// Changes head office refused in this exchange, taken out of the phone's copy (the rest of
    /// their documents arrived): empty when all were taken.
    pub refused: Vec<RefusalRecord>,
}

/// Where an attachment's bytes are, as the phone's lists show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum TransferRecord {
    /// Here, waiting to be uploaded.
    Queued,
    /// Uploading: `sent` bytes are on the server.
    Sending {
        /// Bytes the server holds.
        sent: u64,
    },
    /// The server holds it.
    OnServer,
    /// Not on this phone yet; the next file sync fetches it.
    Missing,
    /// Downloading: `received` bytes are here.
    Receiving {
        /// Bytes this phone holds.
        received: u64,
    },
    /// Here, received from the server.
    Downloaded,
}

impl From<sitesync_core::attachments::Transfer> for TransferRecord {
    fn from(t: sitesync_core::attachments::Transfer) -> Self {
        use sitesync_core::attachments::Transfer as T;
        match t {
            T::Queued => TransferRecord::Queued,
            T::Sending { sent } => TransferRecord::Sending { sent },
            T::OnServer => TransferRecord::OnServer,
            T::Missing => TransferRecord::Missing,
            T::Receiving { received } => TransferRecord::Receiving { received },
            T::Downloaded => TransferRecord::Downloaded,
        }
    }
}

/// A photo or file attached to a day or one of its lines.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AttachmentRecord {
    /// The file's SHA-256 (hex): its address on the phone and the server.
    pub sha256: String,
    /// What it is attached to: `day`, `labor:ID`, `progress:ID` or `delay:ID`.
    pub target: String,
    /// `image/jpeg` …
    pub media_type: String,
    /// The file's size in bytes.
    pub size_bytes: u64,
    /// What it shows.
    pub caption: String,
    /// Who attached it.
    pub added_by: String,
    /// When (RFC 3339).
    pub added_at: String,
    /// Latitude in millionths of a degree, if the app gave a position.
    pub lat_micro: Option<i64>,
    /// Longitude in millionths of a degree, if the app gave a position.
    pub lon_micro: Option<i64>,
    /// Where its bytes are.
    pub transfer: TransferRecord,
    /// Whether the last approval's pinned version includes it.
    pub approved: bool,
    /// The file of its bytes on this phone, when they are here.
    pub file_path: Option<String>,
    /// A cached JPEG thumbnail (at most 256 px), when the bytes are here and are an image.
    pub thumbnail_path: Option<String>,
}

/// What one file sync moved.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct FileSyncRecord {
    /// Files the server now holds that it did not before.
    pub uploaded: u64,
    /// Files this phone now holds that it did not before.
    pub downloaded: u64,
    /// Files left for a later sync (not on the server yet, or the network failed).
    pub waiting: u64,
    /// Whether nothing moved because the network is metered and files wait for an unmetered one.
    pub skipped_metered: bool,
}

#[cfg(test)]
mod tests {
    use sitesync_core::ids::{DocId, SiteId, WorkItemId, WorkerId};
    use sitesync_core::rules::Violation;
    use sitesync_core::units::WorkDays;

    use crate::{SiteSync, runtime};

    /// A change head office refused is taken out of the phone's copy by the same call the sync makes
    /// on a refusal (`drop_refused`); the app's sync status then counts it and names it with why,
    /// rather than the entry vanishing without a word.
    #[test]
    fn the_sync_status_reports_refused_changes_with_their_reasons() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("phone.sqlite3").display().to_string();
        let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/small");
        runtime().block_on(async {
            let phone = SiteSync::open(path, None, None, Some("崔贵".into()), None)
                .await
                .unwrap();
            let before = phone.sync_status().await.unwrap();
            assert_eq!((before.refused_changes, before.latest_refusals.len()), (0, 0));
            let (doc, hash) = phone
                .with_store(move |s| {
                    s.import_dir(&fixture)?;
                    let site = SiteId::new("site-hz-01")?;
                    let date = sitesync_core::ids::parse_date("2026-12-01")?;
                    let e = sitesync_core::store::entry(
                        site.clone(),
                        date,
                        WorkerId::new("w-0001")?,
                        WorkItemId::new("site-hz-01/wi-4.1")?,
                        WorkDays::parse("1.0")?,
                    );
                    s.add_labor(&e, None)?;
                    let doc = DocId::Day(site.clone(), date);
                    let hash = s.heads(&doc)?.remove(0);
                    let refusal = Violation::SiteNotGranted { site: site.to_string() };
                    s.drop_refused(&doc, &[(hash.clone(), refusal)])?;
                    Ok((doc.to_string(), hash))
                })
                .await
                .unwrap();
            let status = phone.sync_status().await.unwrap();
            assert_eq!(status.refused_changes, 1);
            assert_eq!(status.latest_refusals.len(), 1);
            let r = &status.latest_refusals[0];
            assert_eq!((r.doc.as_str(), r.hash.as_str()), (doc.as_str(), hash.as_str()));
            assert!(r.reason.contains("no grant for site site-hz-01"), "{r:?}");
            assert!(!r.rule.is_empty());
        });
    }
}
