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
//!
//! The statements run on any [`Sql`] connection (the server projects into PostgreSQL with the
//! same ones); the caller owns the transaction, so a document and its projection commit together.

use automerge::Automerge;

use super::sql::{Sql, Value};
use crate::doc::{day, site};
use crate::error::Result;
use crate::ids::DocId;
use crate::labor::DayStatus;

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
    at.insert(tx, Version::Current, &content)?;
    let status = day::status(doc, &content)?;
    if status == DayStatus::AmendedAfterApproval
        && let Some(approved) = day::approved_version(doc, &content)?
    {
        at.insert(tx, Version::Pinned, &approved)?;
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
    fn insert(&self, tx: &dyn Sql, version: Version, content: &day::DayContent) -> Result<()> {
        let prefix = match version {
            Version::Current => "",
            Version::Pinned => "pinned_",
        };
        let (doc_id, site_id, date) = (self.doc_id, self.site_id, self.date);
        let labor = format!(
            "INSERT INTO {prefix}labor_lines (line_id, doc_id, site_id, day, worker_id, work_item_id, work_days_centi,
             hours_min, overtime_min, kind, rate_fen, overtime_rate_fen, cost_fen, note, entered_by, deleted, conflicts)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
        );
        for l in content.labor.values() {
            tx.exec(
                &labor,
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
        let progress = format!(
            "INSERT INTO {prefix}progress_lines (line_id, doc_id, site_id, day, work_item_id, quantity_milli, note,
             entered_by, deleted) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        );
        for p in content.progress.values() {
            tx.exec(
                &progress,
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
