//! The site-day log document: tables `day` (one record, `day`: weather and note), `labor`,
//! `progress`, `delays` and `reviews` (the submission and approval trail).

use std::collections::BTreeMap;

use automerge::transaction::Transaction;
use automerge::{Automerge, ChangeHash, ReadDoc};
use chrono::{DateTime, Utc};

use crate::doc::{Record, heads_hex, heads_parse, put, read_table, table};
use crate::error::{Error, Result};
use crate::ids::{LineId, WorkItemId, WorkerId};
use crate::labor::{Amendment, DayStatus, Delay, LaborKind, LaborLine, ProgressLine, ReviewAction, ReviewEvent};
use crate::units::{Fen, Minutes, Quantity, WorkDays};

/// Labor fields a person may edit concurrently, and so may see in conflict.
const LABOR_FIELDS: &[&str] = &[
    "work_days_centi",
    "hours_min",
    "overtime_min",
    "kind",
    "rate_fen",
    "overtime_rate_fen",
    "note",
    "deleted",
];
/// Progress fields that may be in conflict.
const PROGRESS_FIELDS: &[&str] = &["quantity_milli", "note", "deleted"];

/// Everything in a site-day document, deleted lines included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DayContent {
    /// Weather as written.
    pub weather: String,
    /// Daily note.
    pub note: String,
    /// Every labor line by id, tombstones included.
    pub labor: BTreeMap<String, LaborLine>,
    /// Every progress line by id, tombstones included.
    pub progress: BTreeMap<String, ProgressLine>,
    /// Delays, deleted ones excluded.
    pub delays: Vec<Delay>,
    /// The review trail, oldest first.
    pub reviews: Vec<ReviewEvent>,
}

fn corrupt(e: Error) -> Error {
    Error::CorruptDocument {
        doc: "day".into(),
        reason: e.to_string(),
    }
}

fn labor_line(id: String, r: &Record) -> Result<LaborLine> {
    Ok(LaborLine {
        id: LineId::new(id).map_err(corrupt)?,
        worker: WorkerId::new(r.str("worker")).map_err(corrupt)?,
        work_item: WorkItemId::new(r.str("work_item")).map_err(corrupt)?,
        work_days: WorkDays::from_centi(r.int("work_days_centi")).map_err(corrupt)?,
        hours: Minutes::from_min("hours", r.int("hours_min")).map_err(corrupt)?,
        overtime: Minutes::from_min("overtime", r.int("overtime_min")).map_err(corrupt)?,
        kind: LaborKind::parse(&r.str("kind")).unwrap_or(LaborKind::DayLabor),
        day_rate: Fen::new("rate", r.int("rate_fen")).map_err(corrupt)?,
        overtime_rate: Fen::new("overtime_rate", r.int("overtime_rate_fen")).map_err(corrupt)?,
        note: r.str("note"),
        entered_by: r.str("entered_by"),
        deleted: r.bool("deleted", false),
        conflicts: r.conflicts(LABOR_FIELDS),
    })
}

fn progress_line(id: String, r: &Record) -> Result<ProgressLine> {
    Ok(ProgressLine {
        id: LineId::new(id).map_err(corrupt)?,
        work_item: WorkItemId::new(r.str("work_item")).map_err(corrupt)?,
        quantity: Quantity::from_milli("quantity", r.int("quantity_milli")).map_err(corrupt)?,
        note: r.str("note"),
        entered_by: r.str("entered_by"),
        deleted: r.bool("deleted", false),
        conflicts: r.conflicts(PROGRESS_FIELDS),
    })
}

/// Reads the whole day, now or as of `heads`.
pub(crate) fn read(doc: &Automerge, heads: Option<&[ChangeHash]>) -> Result<DayContent> {
    let day = read_table(doc, &table(doc, "day")?, heads)?;
    let info = day.get("day").cloned().unwrap_or_default();
    let mut labor = BTreeMap::new();
    for (id, r) in read_table(doc, &table(doc, "labor")?, heads)? {
        labor.insert(id.clone(), labor_line(id, &r)?);
    }
    let mut progress = BTreeMap::new();
    for (id, r) in read_table(doc, &table(doc, "progress")?, heads)? {
        progress.insert(id.clone(), progress_line(id, &r)?);
    }
    let delays = read_table(doc, &table(doc, "delays")?, heads)?
        .into_iter()
        .filter(|(_, r)| !r.bool("deleted", false))
        .map(|(id, r)| Delay {
            id,
            text: r.str("text"),
            work_item: WorkItemId::new(r.str("work_item")).ok(),
            entered_by: r.str("entered_by"),
        })
        .collect();
    let mut reviews: Vec<ReviewEvent> = read_table(doc, &table(doc, "reviews")?, heads)?
        .into_iter()
        .filter_map(|(id, r)| {
            Some(ReviewEvent {
                id,
                action: ReviewAction::parse(&r.str("action"))?,
                by: r.str("by"),
                at: DateTime::parse_from_rfc3339(&r.str("at")).ok()?.with_timezone(&Utc),
                reason: r.str("reason"),
                heads: r
                    .str("heads")
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
        })
        .collect();
    // Device clocks decide the order; the id breaks ties so every replica agrees.
    reviews.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
    Ok(DayContent {
        weather: info.str("weather"),
        note: info.str("note"),
        labor,
        progress,
        delays,
        reviews,
    })
}

/// Writes every field of a labor line (only what differs creates operations).
pub(crate) fn put_labor(tx: &mut Transaction<'_>, l: &LaborLine) -> Result<()> {
    let t = table(tx, "labor")?;
    let id = l.id.as_str();
    put(tx, &t, id, "worker", l.worker.as_str())?;
    put(tx, &t, id, "work_item", l.work_item.as_str())?;
    put(tx, &t, id, "work_days_centi", l.work_days.centi())?;
    put(tx, &t, id, "hours_min", l.hours.minutes())?;
    put(tx, &t, id, "overtime_min", l.overtime.minutes())?;
    put(tx, &t, id, "kind", l.kind.as_str())?;
    put(tx, &t, id, "rate_fen", l.day_rate.fen())?;
    put(tx, &t, id, "overtime_rate_fen", l.overtime_rate.fen())?;
    put(tx, &t, id, "note", l.note.as_str())?;
    put(tx, &t, id, "entered_by", l.entered_by.as_str())?;
    put(tx, &t, id, "deleted", l.deleted)
}

/// Writes every field of a progress line.
pub(crate) fn put_progress(tx: &mut Transaction<'_>, p: &ProgressLine) -> Result<()> {
    let t = table(tx, "progress")?;
    let id = p.id.as_str();
    put(tx, &t, id, "work_item", p.work_item.as_str())?;
    put(tx, &t, id, "quantity_milli", p.quantity.milli())?;
    put(tx, &t, id, "note", p.note.as_str())?;
    put(tx, &t, id, "entered_by", p.entered_by.as_str())?;
    put(tx, &t, id, "deleted", p.deleted)
}

/// Writes the day's weather and note.
pub(crate) fn put_info(tx: &mut Transaction<'_>, weather: Option<&str>, note: Option<&str>) -> Result<()> {
    let t = table(tx, "day")?;
    if let Some(w) = weather {
        put(tx, &t, "day", "weather", w)?;
    }
    if let Some(n) = note {
        put(tx, &t, "day", "note", n)?;
    }
    Ok(())
}

/// Writes a delay record.
pub(crate) fn put_delay(tx: &mut Transaction<'_>, d: &Delay) -> Result<()> {
    let t = table(tx, "delays")?;
    put(tx, &t, &d.id, "text", d.text.as_str())?;
    put(
        tx,
        &t,
        &d.id,
        "work_item",
        d.work_item.as_ref().map(|w| w.as_str()).unwrap_or(""),
    )?;
    put(tx, &t, &d.id, "entered_by", d.entered_by.as_str())?;
    put(tx, &t, &d.id, "deleted", false)
}

/// Appends a review event.
pub(crate) fn put_review(tx: &mut Transaction<'_>, e: &ReviewEvent) -> Result<()> {
    let t = table(tx, "reviews")?;
    put(tx, &t, &e.id, "action", e.action.as_str())?;
    put(tx, &t, &e.id, "by", e.by.as_str())?;
    put(tx, &t, &e.id, "at", e.at.to_rfc3339())?;
    put(tx, &t, &e.id, "reason", e.reason.as_str())?;
    put(tx, &t, &e.id, "heads", e.heads.join(","))
}

/// Builds the review event for `action` on the document as it is now.
pub(crate) fn review_event(doc: &Automerge, action: ReviewAction, by: &str, reason: &str) -> ReviewEvent {
    ReviewEvent {
        id: uuid::Uuid::new_v4().simple().to_string(),
        action,
        by: by.to_string(),
        at: Utc::now(),
        reason: reason.to_string(),
        heads: heads_hex(&doc.get_heads()),
    }
}

/// The last decision that sets the day's state (amendments do not: an amended day stays amended).
fn last_decision(reviews: &[ReviewEvent]) -> Option<&ReviewEvent> {
    reviews.iter().rev().find(|e| e.action != ReviewAction::Amended)
}

/// The day's review status, and for an approved day the approved heads.
pub(crate) fn status(doc: &Automerge, content: &DayContent) -> Result<DayStatus> {
    Ok(match last_decision(&content.reviews) {
        None => DayStatus::Draft,
        Some(e) => match e.action {
            ReviewAction::Submitted => DayStatus::Submitted,
            ReviewAction::Rejected => DayStatus::Rejected,
            ReviewAction::Approved if amendments(doc, content)?.is_empty() => DayStatus::Approved,
            ReviewAction::Approved | ReviewAction::Amended => DayStatus::AmendedAfterApproval,
        },
    })
}

/// What differs between the last approved version and now; empty when not approved or unchanged.
pub(crate) fn amendments(doc: &Automerge, now: &DayContent) -> Result<Vec<Amendment>> {
    let Some(approval) = last_decision(&now.reviews).filter(|e| e.action == ReviewAction::Approved) else {
        return Ok(Vec::new());
    };
    let heads = heads_parse(&approval.heads).unwrap_or_default();
    if heads.is_empty() || !doc.get_missing_deps(&heads).is_empty() {
        // The approved version is not (yet) in this replica; nothing can be compared.
        return Ok(Vec::new());
    }
    let then = read(doc, Some(&heads))?;
    let mut out = Vec::new();
    let mut diff = |line: &str, field: &str, a: Option<String>, b: Option<String>| {
        if a != b {
            out.push(Amendment {
                line: line.to_string(),
                field: field.to_string(),
                approved: a,
                now: b,
            });
        }
    };
    diff("day", "weather", Some(then.weather.clone()), Some(now.weather.clone()));
    diff("day", "note", Some(then.note.clone()), Some(now.note.clone()));
    let ids: std::collections::BTreeSet<&String> = then.labor.keys().chain(now.labor.keys()).collect();
    for id in ids {
        let a = then.labor.get(id).filter(|l| !l.deleted).map(labor_fields);
        let b = now.labor.get(id).filter(|l| !l.deleted).map(labor_fields);
        diff_fields(&mut diff, id, a, b);
    }
    let ids: std::collections::BTreeSet<&String> = then.progress.keys().chain(now.progress.keys()).collect();
    for id in ids {
        let a = then.progress.get(id).filter(|l| !l.deleted).map(progress_fields);
        let b = now.progress.get(id).filter(|l| !l.deleted).map(progress_fields);
        diff_fields(&mut diff, id, a, b);
    }
    Ok(out)
}

type Fields = Vec<(&'static str, String)>;

fn diff_fields(
    diff: &mut impl FnMut(&str, &str, Option<String>, Option<String>),
    id: &str,
    a: Option<Fields>,
    b: Option<Fields>,
) {
    match (a, b) {
        (Some(a), Some(b)) => {
            for ((field, x), (_, y)) in a.into_iter().zip(b) {
                diff(id, field, Some(x), Some(y));
            }
        }
        (Some(a), None) => a.into_iter().for_each(|(f, x)| diff(id, f, Some(x), None)),
        (None, Some(b)) => b.into_iter().for_each(|(f, y)| diff(id, f, None, Some(y))),
        (None, None) => {}
    }
}

fn labor_fields(l: &LaborLine) -> Fields {
    vec![
        ("worker", l.worker.to_string()),
        ("work_item", l.work_item.to_string()),
        ("work_days_centi", l.work_days.centi().to_string()),
        ("hours_min", l.hours.minutes().to_string()),
        ("overtime_min", l.overtime.minutes().to_string()),
        ("kind", l.kind.as_str().to_string()),
        ("rate_fen", l.day_rate.fen().to_string()),
        ("overtime_rate_fen", l.overtime_rate.fen().to_string()),
        ("note", l.note.clone()),
    ]
}

fn progress_fields(p: &ProgressLine) -> Fields {
    vec![
        ("work_item", p.work_item.to_string()),
        ("quantity_milli", p.quantity.milli().to_string()),
        ("note", p.note.clone()),
    ]
}
