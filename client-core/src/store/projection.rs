//! Relational projections of documents, brought up to date for one document whenever it changes.
//!
//! Decision (2026-11-30): a change to a day's lines re-projects only the lines it touched
//! ([`project_since`]); the whole day is re-projected as before whenever a touched record could
//! move anything else — a review (status, review rows, and the pinned approved version), any change
//! to a day approved or amended after approval (whose status follows from comparing every line with
//! the approved version), or anything the diff does not bound to records. Re-projecting the whole
//! day on every one-entry push was 4.5% of the server's CPU, and grew with the day's lines. The
//! result is the rebuild's, row for row: `tests/store/projection.rs` replays random edits, reviews,
//! amendments and concurrent merges against a rebuild after each step.
//!
//! Rows of a document are keyed by the document and the record id (`(doc_id, line_id)`), so no
//! document can write, collide with, or delete another's rows: a day of another org that holds a
//! line under the id of one of ours once failed every push of ours on `UNIQUE(line_id)`.
//!
//! Projecting never fails on what a document holds: a line that does not read as a valid one is
//! written to `invalid_records` instead of the sums (see `doc::day::read`), and a day dated outside
//! the storable window (`validate::storable_date`) is projected as one such row and nothing else,
//! so a date like `+10000-01-01` cannot reach the reports that sort and range over dates.
//!
//! The statements run on any [`Sql`] connection (the server projects into PostgreSQL with the
//! same ones); the caller owns the transaction, so a document and its projection commit together.

use std::collections::{BTreeMap, BTreeSet};

use automerge::{Automerge, ChangeHash, PatchAction, Prop, ROOT, ReadDoc};

use super::sql::{Sql, Value};
use crate::doc::{day, site};
use crate::error::Result;
use crate::ids::DocId;
use crate::labor::{DayStatus, LaborLine, ProgressLine};

/// Every projection table, in the order a rebuild clears them.
pub const TABLES: &[&str] = &[
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

/// Replaces the projected rows of `id` with what the document holds now. Run it inside the
/// transaction that stores the document.
pub fn project(tx: &dyn Sql, id: &DocId, doc: &Automerge) -> Result<()> {
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

/// Brings the projected rows of `id` from what the document held at `base` — the heads its rows
/// were last projected at — to what it holds now, re-projecting only the lines the changes since
/// touched where that provably gives the rows a whole re-projection would ([`project`]), and
/// re-projecting it whole otherwise. Run it inside the transaction that stores the document.
pub fn project_since(tx: &dyn Sql, id: &DocId, doc: &Automerge, base: &[ChangeHash]) -> Result<()> {
    if let DocId::Day(site, date) = id
        && crate::validate::storable_date(*date)
        && let Some(lines) = touched_lines(tx, id, doc, base)?
    {
        let doc_id = id.to_string();
        return project_lines(tx, &doc_id, site.as_str(), &date.to_string(), doc, &lines);
    }
    project(tx, id, doc)
}

/// The ids of the labor and progress lines whose rows changed from `base` to now, if nothing else
/// of the day's rows can have: `None` when the day must be re-projected whole.
fn touched_lines(tx: &dyn Sql, id: &DocId, doc: &Automerge, base: &[ChangeHash]) -> Result<Option<BTreeSet<String>>> {
    if base.is_empty() || !doc.get_missing_deps(base).is_empty() {
        return Ok(None);
    }
    // A draft, submitted or rejected day's status and review rows follow from its review records
    // alone, and it pins no approved version; an approved or amended one's status compares every
    // line with the approved version.
    let status = tx.first(
        "SELECT status FROM day_status WHERE doc_id = ?1",
        &[id.to_string().into()],
    )?;
    let Some(status) = status else { return Ok(None) };
    let status = status.text(0)?;
    if ![DayStatus::Draft, DayStatus::Submitted, DayStatus::Rejected]
        .iter()
        .any(|s| s.as_str() == status)
    {
        return Ok(None);
    }
    let mut tables = Vec::new();
    for name in crate::doc::tables(id.kind()) {
        tables.push((*name, crate::doc::table(doc, name)?));
    }
    let mut lines = BTreeSet::new();
    for patch in doc.diff(base, &doc.get_heads()) {
        if patch.obj == ROOT {
            return Ok(None);
        }
        // Anything inside an object in a table is read by nobody, but is not bounded here either.
        let Some((table, _)) = tables.iter().find(|(_, o)| *o == patch.obj) else {
            return Ok(None);
        };
        let key = match patch.action {
            PatchAction::PutMap { key, .. } | PatchAction::DeleteMap { key } => key,
            PatchAction::Conflict { prop: Prop::Map(key) }
            | PatchAction::Increment {
                prop: Prop::Map(key), ..
            } => key,
            _ => return Ok(None),
        };
        match *table {
            "labor" | "progress" => {
                if let Some((record, _)) = key.rsplit_once('.') {
                    lines.insert(record.to_string());
                }
            }
            // Weather, notes and delays are projected nowhere.
            "day" | "delays" => {}
            _ => return Ok(None),
        }
    }
    Ok(Some(lines))
}

/// Re-projects the named lines of a day: both tables' rows and flags under each id, as a whole
/// re-projection writes them (labor before progress, so a progress line's flag wins an id both
/// tables flag, as in [`project_day`]).
fn project_lines(
    tx: &dyn Sql,
    doc_id: &str,
    site_id: &str,
    date: &str,
    doc: &Automerge,
    ids: &BTreeSet<String>,
) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    for line in ids {
        for table in ["labor_lines", "progress_lines"] {
            tx.exec(
                &format!("DELETE FROM {table} WHERE doc_id = ?1 AND line_id = ?2"),
                &[doc_id.into(), line.as_str().into()],
            )?;
        }
        tx.exec(
            "DELETE FROM invalid_records WHERE doc_id = ?1 AND record_id = ?2",
            &[doc_id.into(), line.as_str().into()],
        )?;
    }
    let names = || ids.iter().map(String::as_str);
    let lines = day::read_lines(doc, names(), names())?;
    let at = Lines { doc_id, site_id, date };
    at.insert(tx, Version::Current, &lines.labor, &lines.progress)?;
    flag_lines(tx, doc_id, site_id, date, &lines.flagged)
}

fn project_site(tx: &dyn Sql, site_id: &str, doc: &Automerge) -> Result<()> {
    for table in ["sites", "crews", "workers", "work_items"] {
        tx.exec(&format!("DELETE FROM {table} WHERE site_id = ?1"), &[site_id.into()])?;
    }
    let Some(r) = site::read(doc)? else { return Ok(()) };
    tx.exec(
        "INSERT INTO sites (site_id, code, name, timezone) VALUES (?1, ?2, ?3, ?4)",
        &[
            site_id.into(),
            (&r.site.code).into(),
            (&r.site.name).into(),
            (&r.site.timezone).into(),
        ],
    )?;
    for c in &r.crews {
        tx.exec(
            "INSERT INTO crews (site_id, crew_id, name, leader, trade) VALUES (?1, ?2, ?3, ?4, ?5)",
            &[
                site_id.into(),
                c.id.as_str().into(),
                (&c.name).into(),
                (&c.leader).into(),
                (&c.trade).into(),
            ],
        )?;
    }
    for w in &r.workers {
        tx.exec(
            "INSERT INTO workers (site_id, worker_id, name, phone, trade, crew_id, day_rate_fen, overtime_rate_fen, active)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            &[
                site_id.into(),
                w.id.as_str().into(),
                (&w.name).into(),
                (&w.phone).into(),
                (&w.trade).into(),
                w.crew.as_str().into(),
                w.day_rate.fen().into(),
                w.overtime_rate.fen().into(),
                w.active.into(),
            ],
        )?;
    }
    // A worker head office merged into another is off the roster, but his lines stay his: they
    // count under the worker he resolves to, so his row carries that worker's crew and trade (and
    // is inactive), and every summary grouped by crew or trade counts them there, once.
    for p in r
        .pending_workers
        .iter()
        .filter(|p| p.status == crate::roster::PendingStatus::Merged)
    {
        let target = r.resolve_worker(&p.id);
        let Some(t) = r.worker(&target).filter(|_| target != p.id) else {
            continue;
        };
        tx.exec(
            "INSERT INTO workers (site_id, worker_id, name, phone, trade, crew_id, day_rate_fen, overtime_rate_fen, active)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            &[
                site_id.into(),
                p.id.as_str().into(),
                (&p.name).into(),
                (&p.phone).into(),
                (&t.trade).into(),
                t.crew.as_str().into(),
                p.day_rate.fen().into(),
                p.overtime_rate.fen().into(),
                false.into(),
            ],
        )?;
    }
    for wi in &r.work_items {
        tx.exec(
            "INSERT INTO work_items (site_id, work_item_id, code, name, unit, planned_quantity_milli, budget_fen, planned_start, planned_end)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            &[
                site_id.into(),
                wi.id.as_str().into(),
                (&wi.code).into(),
                (&wi.name).into(),
                (&wi.unit).into(),
                wi.planned_quantity.milli().into(),
                wi.budget.fen().into(),
                wi.planned_start.map(|d| d.to_string()).into(),
                wi.planned_end.map(|d| d.to_string()).into(),
            ],
        )?;
    }
    Ok(())
}

/// Removes every row a day document projected.
fn clear_day(tx: &dyn Sql, doc_id: &str) -> Result<()> {
    for table in [
        "labor_lines",
        "progress_lines",
        "pinned_labor_lines",
        "pinned_progress_lines",
        "reviews",
        "day_status",
        "invalid_records",
    ] {
        tx.exec(&format!("DELETE FROM {table} WHERE doc_id = ?1"), &[doc_id.into()])?;
    }
    Ok(())
}

/// Records a record that is left out of the projection, and why.
/// Records the lines a read left out as invalid, each under its record id.
fn flag_lines(tx: &dyn Sql, doc_id: &str, site_id: &str, date: &str, flagged: &[day::Flagged]) -> Result<()> {
    for f in flagged {
        let reason = format!("{} line: {}", f.table, f.invalid);
        flag(tx, doc_id, site_id, date, &f.record, f.invalid.field(), &reason)?;
    }
    Ok(())
}

fn flag(tx: &dyn Sql, doc_id: &str, site_id: &str, date: &str, record: &str, field: &str, reason: &str) -> Result<()> {
    tx.exec(
        "INSERT INTO invalid_records (doc_id, record_id, site_id, day, field, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(doc_id, record_id) DO UPDATE SET field = excluded.field, reason = excluded.reason",
        &[
            doc_id.into(),
            record.into(),
            site_id.into(),
            date.into(),
            field.into(),
            reason.into(),
        ],
    )?;
    Ok(())
}

fn project_day(tx: &dyn Sql, doc_id: &str, site_id: &str, date: &str, doc: &Automerge) -> Result<()> {
    let content = day::read(doc, None)?;
    let at = Lines { doc_id, site_id, date };
    at.insert(tx, Version::Current, &content.labor, &content.progress)?;
    let status = day::status(doc, &content)?;
    if status == DayStatus::AmendedAfterApproval
        && let Some(approved) = day::approved_version(doc, &content)?
    {
        at.insert(tx, Version::Pinned, &approved.labor, &approved.progress)?;
    }
    for (i, e) in content.reviews.iter().enumerate() {
        tx.exec(
            "INSERT INTO reviews (event_id, doc_id, site_id, day, seq, action, by_user, at, reason, heads)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            &[
                (&e.id).into(),
                doc_id.into(),
                site_id.into(),
                date.into(),
                (i as i64).into(),
                e.action.as_str().into(),
                (&e.by).into(),
                e.at.to_rfc3339().into(),
                (&e.reason).into(),
                e.heads.join(",").into(),
            ],
        )?;
    }
    flag_lines(tx, doc_id, site_id, date, &content.flagged)?;
    tx.exec(
        "INSERT INTO day_status (doc_id, site_id, day, status) VALUES (?1, ?2, ?3, ?4)",
        &[doc_id.into(), site_id.into(), date.into(), status.as_str().into()],
    )?;
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
    fn insert(
        &self,
        tx: &dyn Sql,
        version: Version,
        labor: &BTreeMap<String, LaborLine>,
        progress: &BTreeMap<String, ProgressLine>,
    ) -> Result<()> {
        let prefix = match version {
            Version::Current => "",
            Version::Pinned => "pinned_",
        };
        let (doc_id, site_id, date) = (self.doc_id, self.site_id, self.date);
        let labor_sql = format!(
            "INSERT INTO {prefix}labor_lines (line_id, doc_id, site_id, day, worker_id, work_item_id, work_days_centi,
             hours_min, overtime_min, kind, rate_fen, overtime_rate_fen, cost_fen, note, entered_by, deleted, conflicts)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
        );
        for l in labor.values() {
            tx.exec(
                &labor_sql,
                &[
                    l.id.as_str().into(),
                    doc_id.into(),
                    site_id.into(),
                    date.into(),
                    l.worker.as_str().into(),
                    l.work_item.as_str().into(),
                    l.work_days.centi().into(),
                    l.hours.minutes().into(),
                    l.overtime.minutes().into(),
                    l.kind.as_str().into(),
                    l.day_rate.fen().into(),
                    l.overtime_rate.fen().into(),
                    l.cost().fen().into(),
                    (&l.note).into(),
                    (&l.entered_by).into(),
                    l.deleted.into(),
                    (l.conflicts.len() as i64).into(),
                ],
            )?;
        }
        let progress_sql = format!(
            "INSERT INTO {prefix}progress_lines (line_id, doc_id, site_id, day, work_item_id, quantity_milli, note,
             entered_by, deleted) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        );
        for p in progress.values() {
            tx.exec(
                &progress_sql,
                &[
                    p.id.as_str().into(),
                    doc_id.into(),
                    site_id.into(),
                    date.into(),
                    p.work_item.as_str().into(),
                    p.quantity.milli().into(),
                    (&p.note).into(),
                    (&p.entered_by).into(),
                    p.deleted.into(),
                ],
            )?;
        }
        Ok(())
    }
}

/// Every projected row as text, table by table in [`TABLES`] order and by the first two columns
/// within a table, for comparing two projections (a rebuild against the incremental one, a store
/// before and after a refused merge). Cells are spelled as rusqlite's `Value` debug output, as this
/// dump always spelled them.
pub fn dump(db: &dyn Sql) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for table in TABLES {
        for row in db.query(&format!("SELECT * FROM {table} ORDER BY 1, 2"), &[])? {
            let mut cells = vec![table.to_string()];
            cells.extend(row.0.iter().map(|v| match v {
                Value::Null => "Null".to_string(),
                Value::Int(i) => format!("Integer({i})"),
                Value::Text(t) => format!("Text({t:?})"),
                Value::Bytes(b) => format!("Blob({b:?})"),
            }));
            out.push(cells.join("|"));
        }
    }
    Ok(out)
}
