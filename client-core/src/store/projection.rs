//! Relational projections of documents, rebuilt for one document whenever it changes.
//!
//! Rows of a document are keyed by the document and the record id (`(doc_id, line_id)`), so no
//! document can write, collide with, or delete another's rows: a day of another org that holds a
//! line under the id of one of ours once failed every push of ours on `UNIQUE(line_id)`.
//!
//! Projecting never fails on what a document holds: a line that does not read as a valid one is
//! written to `invalid_records` instead of the sums (see `doc::day::read`), and a day dated outside
//! the storable window (`validate::storable_date`) is projected as one such row and nothing else,
//! so a date like `+10000-01-01` cannot reach the reports that sort and range over dates.

use automerge::Automerge;
use rusqlite::{Connection, params};

use crate::doc::{day, site};
use crate::error::Result;
use crate::ids::DocId;
use crate::labor::DayStatus;

/// Every projection table, in the order a rebuild clears them.
pub(super) const TABLES: &[&str] = &[
    "sites",
    "crews",
    "workers",
    "work_items",
    "labor_lines",
    "progress_lines",
    "pinned_labor_lines",
    "pinned_progress_lines",
    "reviews",
    "day_status",
    "invalid_records",
];

/// Replaces the projected rows of `id` with what the document holds now.
pub(super) fn project(tx: &Connection, id: &DocId, doc: &Automerge) -> Result<()> {
    match id {
        DocId::Site(s) => project_site(tx, s.as_str(), doc),
        DocId::Day(s, d) => {
            let doc_id = id.to_string();
            clear_day(tx, &doc_id)?;
            if crate::validate::storable_date(*d) {
                project_day(tx, &doc_id, s.as_str(), &d.to_string(), doc)
            } else {
                flag(
                    tx,
                    &doc_id,
                    s.as_str(),
                    &d.to_string(),
                    "day",
                    "date",
                    "the date is outside 2000-01-01 ..= 9999-12-31",
                )
            }
        }
        DocId::Okr(..) => Ok(()),
    }
}

fn project_site(tx: &Connection, site_id: &str, doc: &Automerge) -> Result<()> {
    for table in ["sites", "crews", "workers", "work_items"] {
        tx.execute(&format!("DELETE FROM {table} WHERE site_id = ?1"), [site_id])?;
    }
    let Some(r) = site::read(doc)? else { return Ok(()) };
    tx.prepare_cached("INSERT INTO sites (site_id, code, name, timezone) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![site_id, r.site.code, r.site.name, r.site.timezone])?;
    let mut crew =
        tx.prepare_cached("INSERT INTO crews (site_id, crew_id, name, leader, trade) VALUES (?1, ?2, ?3, ?4, ?5)")?;
    for c in &r.crews {
        crew.execute(params![site_id, c.id.as_str(), c.name, c.leader, c.trade])?;
    }
    let mut worker = tx.prepare_cached(
        "INSERT INTO workers (site_id, worker_id, name, phone, trade, crew_id, day_rate_fen, overtime_rate_fen, active)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for w in &r.workers {
        worker.execute(params![
            site_id,
            w.id.as_str(),
            w.name,
            w.phone,
            w.trade,
            w.crew.as_str(),
            w.day_rate.fen(),
            w.overtime_rate.fen(),
            w.active
        ])?;
    }
    let mut item = tx.prepare_cached(
        "INSERT INTO work_items (site_id, work_item_id, code, name, unit, planned_quantity_milli, budget_fen, planned_start, planned_end)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for wi in &r.work_items {
        item.execute(params![
            site_id,
            wi.id.as_str(),
            wi.code,
            wi.name,
            wi.unit,
            wi.planned_quantity.milli(),
            wi.budget.fen(),
            wi.planned_start.map(|d| d.to_string()),
            wi.planned_end.map(|d| d.to_string())
        ])?;
    }
    Ok(())
}

/// Removes every row a day document projected.
fn clear_day(tx: &Connection, doc_id: &str) -> Result<()> {
    for table in [
        "labor_lines",
        "progress_lines",
        "pinned_labor_lines",
        "pinned_progress_lines",
        "reviews",
        "day_status",
        "invalid_records",
    ] {
        tx.prepare_cached(&format!("DELETE FROM {table} WHERE doc_id = ?1"))?
            .execute([doc_id])?;
    }
    Ok(())
}

/// Records a record that is left out of the projection, and why.
fn flag(
    tx: &Connection,
    doc_id: &str,
    site_id: &str,
    date: &str,
    record: &str,
    field: &str,
    reason: &str,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO invalid_records (doc_id, record_id, site_id, day, field, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(doc_id, record_id) DO UPDATE SET field = excluded.field, reason = excluded.reason",
    )?
    .execute(params![doc_id, record, site_id, date, field, reason])?;
    Ok(())
}

fn project_day(tx: &Connection, doc_id: &str, site_id: &str, date: &str, doc: &Automerge) -> Result<()> {
    let content = day::read(doc, None)?;
    let at = Lines { doc_id, site_id, date };
    at.insert(tx, Version::Current, &content)?;
    let status = day::status(doc, &content)?;
    if status == DayStatus::AmendedAfterApproval
        && let Some(approved) = day::approved_version(doc, &content)?
    {
        at.insert(tx, Version::Pinned, &approved)?;
    }
    let mut review = tx.prepare_cached(
        "INSERT INTO reviews (event_id, doc_id, site_id, day, seq, action, by_user, at, reason, heads)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    for (i, e) in content.reviews.iter().enumerate() {
        review.execute(params![
            e.id,
            doc_id,
            site_id,
            date,
            i as i64,
            e.action.as_str(),
            e.by,
            e.at.to_rfc3339(),
            e.reason,
            e.heads.join(",")
        ])?;
    }
    for f in &content.flagged {
        flag(
            tx,
            doc_id,
            site_id,
            date,
            &f.record,
            f.invalid.field(),
            &format!("{} line: {}", f.table, f.invalid),
        )?;
    }
    tx.prepare_cached("INSERT INTO day_status (doc_id, site_id, day, status) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![doc_id, site_id, date, status.as_str()])?;
    Ok(())
}

/// Which tables a day's lines go to: the day as it stands, or (for a day amended after approval) the
/// version its approval pinned, which the approved totals read until the amendment is approved.
#[derive(Clone, Copy)]
enum Version {
    Current,
    Pinned,
}

/// Where a day's lines are projected.
struct Lines<'a> {
    doc_id: &'a str,
    site_id: &'a str,
    date: &'a str,
}

impl Lines<'_> {
    fn insert(&self, tx: &Connection, version: Version, content: &day::DayContent) -> Result<()> {
        let prefix = match version {
            Version::Current => "",
            Version::Pinned => "pinned_",
        };
        let (doc_id, site_id, date) = (self.doc_id, self.site_id, self.date);
        let mut labor = tx.prepare_cached(&format!(
            "INSERT INTO {prefix}labor_lines (line_id, doc_id, site_id, day, worker_id, work_item_id, work_days_centi,
             hours_min, overtime_min, kind, rate_fen, overtime_rate_fen, cost_fen, note, entered_by, deleted, conflicts)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
        ))?;
        for l in content.labor.values() {
            labor.execute(params![
                l.id.as_str(),
                doc_id,
                site_id,
                date,
                l.worker.as_str(),
                l.work_item.as_str(),
                l.work_days.centi(),
                l.hours.minutes(),
                l.overtime.minutes(),
                l.kind.as_str(),
                l.day_rate.fen(),
                l.overtime_rate.fen(),
                l.cost().fen(),
                l.note,
                l.entered_by,
                l.deleted,
                l.conflicts.len() as i64
            ])?;
        }
        let mut progress = tx.prepare_cached(&format!(
            "INSERT INTO {prefix}progress_lines (line_id, doc_id, site_id, day, work_item_id, quantity_milli, note,
             entered_by, deleted) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        ))?;
        for p in content.progress.values() {
            progress.execute(params![
                p.id.as_str(),
                doc_id,
                site_id,
                date,
                p.work_item.as_str(),
                p.quantity.milli(),
                p.note,
                p.entered_by,
                p.deleted
            ])?;
        }
        Ok(())
    }
}
