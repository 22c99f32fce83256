//! The site-day log as plain records: labor lines (点工/包工), progress lines, the day's weather,
//! note and delays, and the submission and approval trail.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{LineId, SiteId, WorkItemId, WorkerId};
use crate::units::{Fen, Minutes, Quantity, WorkDays, line_cost};

/// How a line is paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LaborKind {
    /// 点工: paid by the work-day.
    DayLabor,
    /// 包工: piecework under a lump-sum contract; logged for attendance.
    Piecework,
}

impl LaborKind {
    /// The stored and shown name.
    pub fn as_str(self) -> &'static str {
        match self {
            LaborKind::DayLabor => "day_labor",
            LaborKind::Piecework => "piecework",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "day_labor" => Some(LaborKind::DayLabor),
            "piecework" => Some(LaborKind::Piecework),
            _ => None,
        }
    }
}

/// What a foreman enters for one worker on one work item on one day.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct LaborEntry {
    pub site: SiteId,
    /// The calendar date of the site.
    pub date: NaiveDate,
    pub worker: WorkerId,
    pub work_item: WorkItemId,
    /// Work-days (工日).
    pub work_days: WorkDays,
    /// Hours worked; defaults to 8 hours per work-day when not given.
    pub hours: Option<Minutes>,
    pub overtime: Minutes,
    /// Day labor or piecework.
    pub kind: LaborKind,
    /// Day rate to record; defaults to the worker's rate on the roster now.
    pub day_rate: Option<Fen>,
    pub note: String,
}

/// A change to an existing labor line; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct LaborPatch {
    pub work_days: Option<WorkDays>,
    pub hours: Option<Minutes>,
    pub overtime: Option<Minutes>,
    pub kind: Option<LaborKind>,
    /// New day rate.
    pub day_rate: Option<Fen>,
    pub note: Option<String>,
}

/// One value that lost a concurrent edit but is kept for a person to review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    /// The field, as named in JSON (`work_days_centi`, `note` …).
    pub field: String,
    /// The value every replica shows.
    pub chosen: String,
    /// The concurrent values that lost, as text.
    pub others: Vec<String>,
}

/// One labor line as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct LaborLine {
    /// Derived id: same worker, work item, site and day give the same id on every phone.
    pub id: LineId,
    pub worker: WorkerId,
    pub work_item: WorkItemId,
    /// Work-days in hundredths.
    #[serde(rename = "work_days_centi")]
    pub work_days: WorkDays,
    /// Hours in minutes.
    #[serde(rename = "hours_min")]
    pub hours: Minutes,
    /// Overtime in minutes.
    #[serde(rename = "overtime_min")]
    pub overtime: Minutes,
    /// Day labor or piecework.
    pub kind: LaborKind,
    /// The day rate in force when the line was entered.
    #[serde(rename = "rate_fen")]
    pub day_rate: Fen,
    /// The overtime rate per hour in force when the line was entered.
    #[serde(rename = "overtime_rate_fen")]
    pub overtime_rate: Fen,
    pub note: String,
    /// Who entered it (user name or id).
    pub entered_by: String,
    /// Whether it was deleted (kept as a tombstone so an offline edit cannot silently revive it).
    pub deleted: bool,
    /// Concurrent edits that lost, for review.
    pub conflicts: Vec<Conflict>,
}

impl LaborLine {
    /// What the line costs, rounded half up to the fen.
    pub fn cost(&self) -> Fen {
        line_cost(self.work_days, self.day_rate, self.overtime, self.overtime_rate)
    }
}

/// Quantity installed on one work item on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct ProgressLine {
    /// Derived id: one progress line per work item per day.
    pub id: LineId,
    /// The work item.
    pub work_item: WorkItemId,
    /// Quantity installed that day, in thousandths of the item's unit.
    #[serde(rename = "quantity_milli")]
    pub quantity: Quantity,
    pub note: String,
    /// Who entered it.
    pub entered_by: String,
    /// Whether it was deleted.
    pub deleted: bool,
    /// Concurrent edits that lost, for review.
    pub conflicts: Vec<Conflict>,
}

/// A delay or blocker recorded for the day (rain, missing material, inspection …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct Delay {
    pub id: String,
    /// What held the work up.
    pub text: String,
    /// The work item affected, if one.
    pub work_item: Option<WorkItemId>,
    /// Who recorded it.
    pub entered_by: String,
}

/// A step in the day's review trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewAction {
    /// The foreman submitted the day.
    Submitted,
    /// A manager approved it, pinning the version.
    Approved,
    /// A manager rejected it, with a reason.
    Rejected,
    /// Someone corrected an approved day, with a reason.
    Amended,
}

impl ReviewAction {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewAction::Submitted => "submitted",
            ReviewAction::Approved => "approved",
            ReviewAction::Rejected => "rejected",
            ReviewAction::Amended => "amended",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "submitted" => Some(ReviewAction::Submitted),
            "approved" => Some(ReviewAction::Approved),
            "rejected" => Some(ReviewAction::Rejected),
            "amended" => Some(ReviewAction::Amended),
            _ => None,
        }
    }
}

impl fmt::Display for ReviewAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One record in the review trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct ReviewEvent {
    pub id: String,
    pub action: ReviewAction,
    /// Who did it.
    pub by: String,
    /// When, by the acting device's clock.
    pub at: DateTime<Utc>,
    /// Reason (rejections, amendments) or comment.
    pub reason: String,
    /// The document version the action saw: for an approval, exactly what was approved.
    pub heads: Vec<String>,
}

/// Where a day stands in review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DayStatus {
    /// Being filled in.
    Draft,
    /// Waiting for a manager.
    Submitted,
    /// Approved and locked, unchanged since.
    Approved,
    /// Sent back; the reason is in the trail.
    Rejected,
    /// Approved, then changed: see what changed since the approved version.
    AmendedAfterApproval,
}

impl DayStatus {
    /// Every status, in the order a day moves through them.
    pub const ALL: [DayStatus; 5] = [
        DayStatus::Draft,
        DayStatus::Submitted,
        DayStatus::Approved,
        DayStatus::Rejected,
        DayStatus::AmendedAfterApproval,
    ];

    /// The stored and serialized name (`amended_after_approval`), the same text serde writes.
    pub fn as_str(self) -> &'static str {
        match self {
            DayStatus::Draft => "draft",
            DayStatus::Submitted => "submitted",
            DayStatus::Approved => "approved",
            DayStatus::Rejected => "rejected",
            DayStatus::AmendedAfterApproval => "amended_after_approval",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// Whether a manager has a decision to make: submitted days, and days changed since their approval
    /// (their approved totals stand until the amendment is approved).
    pub fn awaits_review(self) -> bool {
        matches!(self, DayStatus::Submitted | DayStatus::AmendedAfterApproval)
    }
}

impl fmt::Display for DayStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A site-day as the app shows it: the day's sheet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct DaySheet {
    pub site: SiteId,
    /// The calendar date of the site.
    pub date: NaiveDate,
    pub status: DayStatus,
    /// Weather as the foreman wrote it.
    pub weather: String,
    /// The daily note.
    pub note: String,
    /// Concurrent values of weather or note that lost, for review.
    pub conflicts: Vec<Conflict>,
    /// Labor lines ordered by worker then work item; deleted ones are left out unless another phone
    /// edited them concurrently (then they show, with a conflict on `deleted`, for review).
    pub labor: Vec<LaborLine>,
    /// Progress lines ordered by work item, shown like labor lines.
    pub progress: Vec<ProgressLine>,
    /// Delays and blockers.
    pub delays: Vec<Delay>,
    /// The review trail, in causal order: each event after every event it had seen.
    pub reviews: Vec<ReviewEvent>,
}

/// One difference between an approved version of a day and the day now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Amendment {
    /// The line (or `day` for weather and note).
    pub line: String,
    /// The field that differs.
    pub field: String,
    /// Its value in the approved version (`None`: the line did not exist).
    pub approved: Option<String>,
    /// Its value now (`None`: the line is gone).
    pub now: Option<String>,
}
