//! The site-day log document: tables `day` (one record, `day`: weather and note), `labor`,
//! `progress`, `delays` and `reviews` (the submission and approval trail).
//!
//! Length: under 600 lines of code; the rest is its unit tests, kept beside the table layout they pin.

use std::collections::BTreeMap;

use automerge::transaction::Transaction;
use automerge::{Automerge, ChangeHash, ReadDoc};
use chrono::{DateTime, NaiveDate, Utc};

use crate::attachments::{Attachment, BlobHash, ByteSize, Gps, RECORD_PREFIX, Target};
use crate::doc::{Record, assert_false, heads_hex, heads_parse, put, read_records, read_table, table};
use crate::error::{Error, Result};
use crate::ids::{DocId, LineId, SiteId, WorkItemId, WorkerId};
use crate::labor::{Amendment, DayStatus, Delay, LaborKind, LaborLine, ProgressLine, ReviewAction, ReviewEvent};
use crate::units::{Fen, Minutes, Quantity, WorkDays};
use crate::validate::Invalid;

/// Labor fields a person may edit concurrently, and so may see in conflict.
pub(crate) const LABOR_FIELDS: &[&str] = &[
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
pub(crate) const PROGRESS_FIELDS: &[&str] = &["quantity_milli", "note", "deleted"];

/// The fields of a site-day's table whose concurrent values a person settles (the day sheet shows
/// them as conflicts); other fields written concurrently (who entered a line, when) are bookkeeping.
pub(crate) fn contested_fields(table: &str) -> &'static [&'static str] {
    match table {
        "labor" => LABOR_FIELDS,
        "progress" => PROGRESS_FIELDS,
        "day" => &["weather", "note"],
        _ => &[],
    }
}

/// Everything in a site-day document, deleted lines included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DayContent {
    /// Weather as written.
    pub weather: String,
    pub note: String,
    /// Concurrent values of weather or note that lost, for review.
    pub info_conflicts: Vec<crate::labor::Conflict>,
    /// Every labor line by id, tombstones included.
    pub labor: BTreeMap<String, LaborLine>,
    /// Every progress line by id, tombstones included.
    pub progress: BTreeMap<String, ProgressLine>,
    /// Delays, deleted ones excluded.
    pub delays: Vec<Delay>,
    /// The review trail, oldest first.
    pub reviews: Vec<ReviewEvent>,
    /// Lines that cannot be read as valid lines, left out of `labor` and `progress` (see [`read`]).
    pub flagged: Vec<Flagged>,
    /// Attachments (records `att-*` of the `day` table), removed ones excluded, by record id.
    pub attachments: Vec<Attachment>,
}

/// A stored line that does not read as a valid one: it is left out of the day and of every sum, and
/// shown to people as such (the projection's `invalid_records`, the anomaly report).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Flagged {
    /// `labor` or `progress`.
    pub table: &'static str,
    /// The record's id.
    pub record: String,
    pub invalid: Invalid,
}

/// A unit's own refusal (`WorkDays::from_centi`, `Fen::new` …) as a range error on its field.
fn out_of_range(e: Error) -> Invalid {
    match e {
        Error::Invalid { field, reason } => Invalid::Range { field, reason },
        other => Invalid::Malformed {
            field: "record",
            reason: other.to_string(),
        },
    }
}

fn bad_id(field: &'static str) -> impl Fn(Error) -> Invalid {
    move |e| Invalid::Malformed {
        field,
        reason: e.to_string(),
    }
}

/// Reads a labor record. `strict` is what a pushed record is held to: every field present with its
/// type and a known kind. Otherwise a missing field reads as its default, as it always has on disk.
pub(crate) fn labor_record(id: &str, r: &Record, strict: bool) -> std::result::Result<LaborLine, Invalid> {
    let int = |f: &'static str| if strict { r.int_strict(f) } else { Ok(r.int(f)) };
    let text = |f: &'static str| if strict { r.str_strict(f) } else { Ok(r.str(f)) };
    let kind = text("kind")?;
    let kind = match LaborKind::parse(&kind) {
        Some(k) => k,
        None if !strict => LaborKind::DayLabor,
        None => {
            return Err(Invalid::Malformed {
                field: "kind",
                reason: format!("{kind:?} is not a kind of labor"),
            });
        }
    };
    Ok(LaborLine {
        id: LineId::new(id).map_err(bad_id("id"))?,
        worker: WorkerId::new(text("worker")?).map_err(bad_id("worker"))?,
        work_item: WorkItemId::new(text("work_item")?).map_err(bad_id("work_item"))?,
        work_days: WorkDays::from_centi(int("work_days_centi")?).map_err(out_of_range)?,
        hours: Minutes::from_min("hours", int("hours_min")?).map_err(out_of_range)?,
        overtime: Minutes::from_min("overtime", int("overtime_min")?).map_err(out_of_range)?,
        kind,
        day_rate: Fen::new("rate", int("rate_fen")?).map_err(out_of_range)?,
        overtime_rate: Fen::new("overtime_rate", int("overtime_rate_fen")?).map_err(out_of_range)?,
        note: text("note")?,
        entered_by: text("entered_by")?,
        deleted: if strict {
            r.bool_strict("deleted")?
        } else {
            r.bool("deleted", false)
        },
        conflicts: r.conflicts(LABOR_FIELDS),
    })
}

/// Reads a progress record, `strict` as in [`labor_record`].
pub(crate) fn progress_record(id: &str, r: &Record, strict: bool) -> std::result::Result<ProgressLine, Invalid> {
    let text = |f: &'static str| if strict { r.str_strict(f) } else { Ok(r.str(f)) };
    let quantity = if strict {
        r.int_strict("quantity_milli")?
    } else {
        r.int("quantity_milli")
    };
    Ok(ProgressLine {
        id: LineId::new(id).map_err(bad_id("id"))?,
        work_item: WorkItemId::new(text("work_item")?).map_err(bad_id("work_item"))?,
        quantity: Quantity::from_milli("quantity", quantity).map_err(out_of_range)?,
        note: text("note")?,
        entered_by: text("entered_by")?,
        deleted: if strict {
            r.bool_strict("deleted")?
        } else {
            r.bool("deleted", false)
        },
        conflicts: r.conflicts(PROGRESS_FIELDS),
    })
}

/// Whether a record is marked deleted: strictly a boolean when `strict`, else absent is not.
fn deleted(r: &Record, strict: bool) -> std::result::Result<bool, Invalid> {
    if strict {
        r.bool_strict("deleted")
    } else {
        Ok(r.bool("deleted", false))
    }
}

/// Reads a delay record (`None`: deleted), `strict` as in [`labor_record`].
pub(crate) fn delay_record(id: &str, r: &Record, strict: bool) -> std::result::Result<Option<Delay>, Invalid> {
    if deleted(r, strict)? {
        return Ok(None);
    }
    let text = |f: &'static str| if strict { r.str_strict(f) } else { Ok(r.str(f)) };
    let item = text("work_item")?;
    Ok(Some(Delay {
        id: id.to_string(),
        text: text("text")?,
        work_item: match item.as_str() {
            "" => None,
            _ if strict => Some(WorkItemId::new(item).map_err(bad_id("work_item"))?),
            _ => WorkItemId::new(item).ok(),
        },
        entered_by: text("entered_by")?,
    }))
}

/// Reads an attachment record (`None`: removed), `strict` as in [`labor_record`].
pub(crate) fn attachment_record(
    id: &str,
    r: &Record,
    strict: bool,
) -> std::result::Result<Option<Attachment>, Invalid> {
    if deleted(r, strict)? {
        return Ok(None);
    }
    let text = |f: &'static str| if strict { r.str_strict(f) } else { Ok(r.str(f)) };
    let sha256 = BlobHash::parse(&text("sha256")?).map_err(bad_id("sha256"))?;
    let size = u64::try_from(r.int_strict("size_bytes")?).map_err(|_| Invalid::Range {
        field: "size_bytes",
        reason: "a size is not negative".into(),
    })?;
    let size = ByteSize::new(size).map_err(out_of_range)?;
    let media_type = text("media_type")?;
    crate::attachments::check_media_type(&media_type).map_err(|reason| Invalid::Malformed {
        field: "media_type",
        reason,
    })?;
    let caption = text("caption")?;
    if caption.chars().count() > crate::attachments::MAX_CAPTION_CHARS {
        return Err(Invalid::Range {
            field: "caption",
            reason: "a caption is at most 1000 characters".into(),
        });
    }
    let target = text("target")?;
    let parsed = Target::parse(&target).map_err(bad_id("target"))?;
    if crate::attachments::record_id(&parsed, &sha256) != id {
        return Err(Invalid::Malformed {
            field: "id",
            reason: format!("{id} is not the id of {target} and {sha256}"),
        });
    }
    let at = text("added_at")?;
    let added_at = DateTime::parse_from_rfc3339(&at)
        .map_err(|_| Invalid::Malformed {
            field: "added_at",
            reason: format!("{at:?} is not a time"),
        })?
        .with_timezone(&Utc);
    let gps = match (r.fields.contains_key("lat_micro"), r.fields.contains_key("lon_micro")) {
        (false, false) => None,
        _ => Some(Gps::new(r.int_strict("lat_micro")?, r.int_strict("lon_micro")?).map_err(out_of_range)?),
    };
    Ok(Some(Attachment {
        id: id.to_string(),
        sha256,
        size,
        media_type,
        caption,
        target,
        added_by: text("added_by")?,
        added_at,
        gps,
    }))
}

/// Writes an attachment record (every field: it is written once, whole).
pub(crate) fn put_attachment(tx: &mut Transaction<'_>, a: &Attachment) -> Result<()> {
    let t = table(tx, "day")?;
    let id = a.id.as_str();
    put(tx, &t, id, "sha256", a.sha256.as_str())?;
    put(
        tx,
        &t,
        id,
        "size_bytes",
        i64::try_from(a.size.bytes()).unwrap_or(i64::MAX),
    )?;
    put(tx, &t, id, "media_type", a.media_type.as_str())?;
    put(tx, &t, id, "caption", a.caption.as_str())?;
    put(tx, &t, id, "target", a.target.as_str())?;
    put(tx, &t, id, "added_by", a.added_by.as_str())?;
    put(tx, &t, id, "added_at", a.added_at.to_rfc3339())?;
    if let Some(g) = a.gps {
        put(tx, &t, id, "lat_micro", g.lat_micro)?;
        put(tx, &t, id, "lon_micro", g.lon_micro)?;
    }
    put(tx, &t, id, "deleted", false)
}

/// The site and date of the document, from the id its genesis wrote.
fn site_day(doc: &Automerge) -> Option<(SiteId, NaiveDate)> {
    let (value, _) = doc.get(automerge::ROOT, "id").ok().flatten()?;
    match value.into_string().ok()?.parse::<DocId>().ok()? {
        DocId::Day(site, date) => Some((site, date)),
        _ => None,
    }
}

/// Reads the whole day, now or as of `heads`.
///
/// Decision (2026-11-30): a line that does not read as a valid one — a negative work-day, an
/// unknown kind, a cost that overflows, an id that is not the one derived from the day and what the
/// line is — is *flagged* ([`DayContent::flagged`]) and left out, rather than failing the read. A
/// failing read used to fail the projection inside `Store::persist`, and with it the group commit of
/// every device in the batch; documents already on disk, and merges of what another replica
/// accepted, must never wedge a store. The server refuses such lines when they are pushed
/// (`validate/document.rs`), so flagged lines are what older data or another replica holds, and
/// people see them in the anomaly report instead of in sums.
pub(crate) fn read(doc: &Automerge, heads: Option<&[ChangeHash]>) -> Result<DayContent> {
    let day = read_table(doc, &table(doc, "day")?, heads)?;
    let info = day.get("day").cloned().unwrap_or_default();
    let attachments = day
        .iter()
        .filter(|(id, _)| id.starts_with(RECORD_PREFIX))
        .filter_map(|(id, r)| attachment_record(id, r, false).ok().flatten())
        .collect();
    let whose = site_day(doc);
    let lines = lines(
        &whose,
        read_table(doc, &table(doc, "labor")?, heads)?,
        read_table(doc, &table(doc, "progress")?, heads)?,
    );
    let (labor, progress, flagged) = (lines.labor, lines.progress, lines.flagged);
    let delays = read_table(doc, &table(doc, "delays")?, heads)?
        .into_iter()
        .filter_map(|(id, r)| delay_record(&id, &r, false).ok().flatten())
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
    sort_causally(doc, &mut reviews)?;
    Ok(DayContent {
        weather: info.str("weather"),
        note: info.str("note"),
        info_conflicts: info.conflicts(&["weather", "note"]),
        labor,
        progress,
        delays,
        reviews,
        flagged,
        attachments,
    })
}

/// Some of a day's lines, read and flagged as [`read`] reads them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Lines {
    /// Labor lines by id.
    pub labor: BTreeMap<String, LaborLine>,
    /// Progress lines by id.
    pub progress: BTreeMap<String, ProgressLine>,
    /// Lines that do not read as valid ones: labor first, then progress, each by id.
    pub flagged: Vec<Flagged>,
}

/// The named lines of a day as they are now, exactly as [`read`] would hold them (an id with no
/// record in a table is absent from it): what re-projecting only the lines a change touched reads.
pub(crate) fn read_lines<'a>(
    doc: &Automerge,
    labor: impl IntoIterator<Item = &'a str>,
    progress: impl IntoIterator<Item = &'a str>,
) -> Result<Lines> {
    Ok(lines(
        &site_day(doc),
        read_records(doc, &table(doc, "labor")?, labor)?,
        read_records(doc, &table(doc, "progress")?, progress)?,
    ))
}

/// Labor and progress records as lines, the ones that do not read as valid lines flagged.
fn lines(
    whose: &Option<(SiteId, NaiveDate)>,
    labor_records: BTreeMap<String, Record>,
    progress_records: BTreeMap<String, Record>,
) -> Lines {
    let mut out = Lines::default();
    for (id, r) in labor_records {
        let line = labor_record(&id, &r, false).and_then(|l| match whose {
            Some((site, date)) => crate::validate::labor_values(site, *date, &l).map(|()| l),
            None => Ok(l),
        });
        match line {
            Ok(l) => {
                out.labor.insert(id, l);
            }
            Err(invalid) => out.flagged.push(Flagged {
                table: "labor",
                record: id,
                invalid,
            }),
        }
    }
    for (id, r) in progress_records {
        let line = progress_record(&id, &r, false).and_then(|p| match whose {
            Some((site, date)) => crate::validate::progress_values(site, *date, &p).map(|()| p),
            None => Ok(p),
        });
        match line {
            Ok(p) => {
                out.progress.insert(id, p);
            }
            Err(invalid) => out.flagged.push(Flagged {
                table: "progress",
                record: id,
                invalid,
            }),
        }
    }
    out
}

/// Orders review events so that an event comes after every event it had seen, whatever the device
/// clocks say; only events made concurrently are ordered by clock, then id, the same on every replica.
///
/// An event pins the heads it saw, and the review records visible at those heads are the events it
/// saw. If B saw A, B also saw everything A saw, so B saw strictly more events: sorting by how many
/// events each one saw is a linear extension of "happened before".
fn sort_causally(doc: &Automerge, reviews: &mut [ReviewEvent]) -> Result<()> {
    let table = table(doc, "reviews")?;
    let mut seen = std::collections::HashMap::new();
    for e in reviews.iter() {
        let n = match heads_parse(&e.heads) {
            Some(h) if !h.is_empty() && doc.get_missing_deps(&h).is_empty() => read_table(doc, &table, Some(&h))?
                .keys()
                .filter(|k| reviews.iter().any(|r| &r.id == *k))
                .count(),
            _ => 0,
        };
        seen.insert(e.id.clone(), n);
    }
    reviews.sort_by(|a, b| (seen[&a.id], a.at, &a.id).cmp(&(seen[&b.id], b.at, &b.id)));
    Ok(())
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

/// Writes only the fields a patch sets, so that a conflict on a field nobody touched stays visible.
/// `deleted = false` is always written: an edit made while another phone deleted the line then shows
/// as a conflict on `deleted` instead of vanishing with the line.
pub(crate) fn patch_labor(tx: &mut Transaction<'_>, id: &LineId, p: &crate::labor::LaborPatch) -> Result<()> {
    let t = table(tx, "labor")?;
    let id = id.as_str();
    if let Some(v) = p.work_days {
        put(tx, &t, id, "work_days_centi", v.centi())?;
    }
    if let Some(v) = p.hours {
        put(tx, &t, id, "hours_min", v.minutes())?;
    }
    if let Some(v) = p.overtime {
        put(tx, &t, id, "overtime_min", v.minutes())?;
    }
    if let Some(v) = p.kind {
        put(tx, &t, id, "kind", v.as_str())?;
    }
    if let Some(v) = p.day_rate {
        put(tx, &t, id, "rate_fen", v.fen())?;
    }
    if let Some(v) = &p.note {
        put(tx, &t, id, "note", v.as_str())?;
    }
    assert_false(tx, &t, id, "deleted")
}

/// Writes every field of a progress line.
pub(crate) fn put_progress(tx: &mut Transaction<'_>, p: &ProgressLine) -> Result<()> {
    let t = table(tx, "progress")?;
    let id = p.id.as_str();
    put(tx, &t, id, "work_item", p.work_item.as_str())?;
    put(tx, &t, id, "quantity_milli", p.quantity.milli())?;
    put(tx, &t, id, "note", p.note.as_str())?;
    put(tx, &t, id, "entered_by", p.entered_by.as_str())?;
    // Setting a day's figure again must not lose to a concurrent delete without a trace.
    if p.deleted {
        put(tx, &t, id, "deleted", true)
    } else {
        assert_false(tx, &t, id, "deleted")
    }
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

/// The index of the last decision that sets the day's state (amendments do not: an amended day
/// stays amended until it is approved again).
fn last_decision(reviews: &[ReviewEvent]) -> Option<usize> {
    reviews.iter().rposition(|e| e.action != ReviewAction::Amended)
}

/// The day's review status.
pub(crate) fn status(doc: &Automerge, content: &DayContent) -> Result<DayStatus> {
    let Some(i) = last_decision(&content.reviews) else {
        return Ok(DayStatus::Draft);
    };
    Ok(match content.reviews[i].action {
        ReviewAction::Submitted => DayStatus::Submitted,
        ReviewAction::Rejected => DayStatus::Rejected,
        ReviewAction::Approved => {
            // An audited correction after the approval marks the day even if it was later undone.
            let corrected = content.reviews[i + 1..]
                .iter()
                .any(|e| e.action == ReviewAction::Amended);
            if corrected || !amendments(doc, content)?.is_empty() {
                DayStatus::AmendedAfterApproval
            } else {
                DayStatus::Approved
            }
        }
        ReviewAction::Amended => DayStatus::AmendedAfterApproval,
    })
}

/// The day as the last decision approved it (at the heads the approval pinned), or `None` when the
/// last decision is not an approval or the approved version is not (yet) in this replica.
pub(crate) fn approved_version(doc: &Automerge, now: &DayContent) -> Result<Option<DayContent>> {
    let Some(approval) = last_decision(&now.reviews)
        .map(|i| &now.reviews[i])
        .filter(|e| e.action == ReviewAction::Approved)
    else {
        return Ok(None);
    };
    let heads = heads_parse(&approval.heads).unwrap_or_default();
    if heads.is_empty() || !doc.get_missing_deps(&heads).is_empty() {
        return Ok(None);
    }
    read(doc, Some(&heads)).map(Some)
}

/// What differs between the last approved version and now, conflicts included (a concurrent edit
/// that lost the merge is still a change to review); empty when not approved or unchanged.
pub(crate) fn amendments(doc: &Automerge, now: &DayContent) -> Result<Vec<Amendment>> {
    let Some(then) = approved_version(doc, now)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let mut diff = differ(&mut out);
    diff("day", "weather", Some(then.weather.clone()), Some(now.weather.clone()));
    diff("day", "note", Some(then.note.clone()), Some(now.note.clone()));
    diff(
        "day",
        "conflicts",
        Some(conflicts_text(&then.info_conflicts)),
        Some(conflicts_text(&now.info_conflicts)),
    );
    // An opaque closure may have a destructor: drop it by hand to end its borrow of `out`.
    drop(diff);
    // Labor lines compare exactly as a worker's signature compares them.
    let ids: std::collections::BTreeSet<&String> = then.labor.keys().chain(now.labor.keys()).collect();
    for id in ids {
        out.extend(labor_line_changes(id, then.labor.get(id), now.labor.get(id)));
    }
    let mut diff = differ(&mut out);
    let ids: std::collections::BTreeSet<&String> = then.progress.keys().chain(now.progress.keys()).collect();
    for id in ids {
        let a = then
            .progress
            .get(id)
            .filter(|l| shown(l.deleted, &l.conflicts))
            .map(progress_fields);
        let b = now
            .progress
            .get(id)
            .filter(|l| shown(l.deleted, &l.conflicts))
            .map(progress_fields);
        diff_fields(&mut diff, id, a, b);
    }
    let ids: std::collections::BTreeSet<&String> = then
        .delays
        .iter()
        .map(|d| &d.id)
        .chain(now.delays.iter().map(|d| &d.id))
        .collect();
    for id in ids {
        let a = then
            .delays
            .iter()
            .find(|d| &d.id == id)
            .map(|d| vec![("text", d.text.clone())]);
        let b = now
            .delays
            .iter()
            .find(|d| &d.id == id)
            .map(|d| vec![("text", d.text.clone())]);
        diff_fields(&mut diff, id, a, b);
    }
    // Photos are evidence: one added or removed since the approval is a change to review.
    let ids: std::collections::BTreeSet<&String> = then
        .attachments
        .iter()
        .map(|a| &a.id)
        .chain(now.attachments.iter().map(|a| &a.id))
        .collect();
    for id in ids {
        let fields = |c: &DayContent| {
            c.attachments.iter().find(|a| &a.id == id).map(|a| {
                vec![
                    ("sha256", a.sha256.to_string()),
                    ("target", a.target.clone()),
                    ("caption", a.caption.clone()),
                ]
            })
        };
        diff_fields(&mut diff, id, fields(&then), fields(now));
    }
    drop(diff);
    Ok(out)
}

/// What differs in labor line `id` between `then` and `now` (each as read, `None`: absent), in the
/// terms of [`amendments`]: what a worker's signature compares (see `doc/signoff.rs`).
pub(crate) fn labor_line_changes(id: &str, then: Option<&LaborLine>, now: Option<&LaborLine>) -> Vec<Amendment> {
    let mut out = Vec::new();
    let mut diff = differ(&mut out);
    let fields = |l: Option<&LaborLine>| l.filter(|l| shown(l.deleted, &l.conflicts)).map(labor_fields);
    diff_fields(&mut diff, id, fields(then), fields(now));
    drop(diff);
    out
}

/// A sink for field differences: pushes an [`Amendment`] onto `out` when the two values differ.
fn differ(out: &mut Vec<Amendment>) -> impl FnMut(&str, &str, Option<String>, Option<String>) + '_ {
    |line, field, a, b| {
        if a != b {
            out.push(Amendment {
                line: line.to_string(),
                field: field.to_string(),
                approved: a,
                now: b,
            });
        }
    }
}

/// Whether a line is shown: not deleted, or deleted while another phone edited it (a conflict on
/// `deleted` that a person must resolve).
pub(crate) fn shown(deleted: bool, conflicts: &[crate::labor::Conflict]) -> bool {
    !deleted || conflicts.iter().any(|c| c.field == "deleted")
}

fn conflicts_text(c: &[crate::labor::Conflict]) -> String {
    c.iter()
        .map(|c| format!("{}: {} vs {}", c.field, c.chosen, c.others.join("/")))
        .collect::<Vec<_>>()
        .join("; ")
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
        // A line that exists on one side only: its bookkeeping fields at their defaults say nothing.
        (Some(a), None) => a
            .into_iter()
            .filter(meaningful)
            .for_each(|(f, x)| diff(id, f, Some(x), None)),
        (None, Some(b)) => b
            .into_iter()
            .filter(meaningful)
            .for_each(|(f, y)| diff(id, f, None, Some(y))),
        (None, None) => {}
    }
}

fn meaningful(field: &(&'static str, String)) -> bool {
    !matches!((field.0, field.1.as_str()), ("deleted", "false") | ("conflicts", ""))
}

fn labor_fields(l: &LaborLine) -> Fields {
    vec![
        ("deleted", l.deleted.to_string()),
        ("conflicts", conflicts_text(&l.conflicts)),
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
        ("deleted", p.deleted.to_string()),
        ("conflicts", conflicts_text(&p.conflicts)),
        ("work_item", p.work_item.to_string()),
        ("quantity_milli", p.quantity.milli().to_string()),
        ("note", p.note.clone()),
    ]
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::doc::{commit, genesis};
    use crate::ids::{DocId, SiteId, parse_date};

    fn event(doc: &Automerge, id: &str, action: ReviewAction, at: (u32, u32)) -> ReviewEvent {
        let mut e = review_event(doc, action, "x", "");
        e.id = id.to_string();
        e.at = Utc.with_ymd_and_hms(2026, 12, 1, at.0, at.1, 0).unwrap();
        e
    }

    #[test]
    fn an_approval_supersedes_the_submission_it_saw_whatever_the_clocks_say() {
        let mut doc = genesis(&DocId::Day(
            SiteId::new("s").unwrap(),
            parse_date("2026-12-01").unwrap(),
        ));
        let submit = event(&doc, "b-submit", ReviewAction::Submitted, (12, 0));
        let mut tx = doc.transaction();
        put_review(&mut tx, &submit).unwrap();
        commit(tx);
        // The manager's phone runs an hour slow: its approval is stamped before the submission.
        let approve = event(&doc, "a-approve", ReviewAction::Approved, (11, 30));
        let mut tx = doc.transaction();
        put_review(&mut tx, &approve).unwrap();
        commit(tx);
        let content = read(&doc, None).unwrap();
        let order: Vec<&str> = content.reviews.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(order, ["b-submit", "a-approve"]);
        assert_eq!(status(&doc, &content).unwrap(), DayStatus::Approved);
    }
}
