//! Offline queries answered from the projections: totals, a worker's month, progress to date.
//!
//! The functions take any [`Sql`] connection, so the server answers the same reports from its
//! PostgreSQL projections with the same statements; [`Store`]'s methods of the same names pass the
//! phone's SQLite connection. What keeps the text valid on both engines: sums are cast back to
//! `BIGINT` (PostgreSQL's `SUM` over `BIGINT` is `NUMERIC`), and a grouped label is `MAX(label)`
//! (PostgreSQL refuses a bare column beside `GROUP BY`; SQLite would take it from any row).

use chrono::{Datelike, NaiveDate};
use serde::Serialize;

use super::sql::{Row, Sql};
use super::{RowFilter, Store};
use crate::error::{Error, Result};
use crate::ids::{DocId, SiteId, WorkItemId, WorkerId};
use crate::report::{Group, GroupBy, Pending, Summary, Sums, WorkItemProgress};
use crate::roster::Site;

/// The sums of [`Sums`] in SQL over lines `t`, in field order. Both engines fail rather than wrap
/// on overflow (SQLite's `SUM`, PostgreSQL's cast of its `NUMERIC` sum); projected lines are
/// bounded (a line that is not valid is flagged, not projected).
const SUMS: &str = "CAST(COALESCE(SUM(t.work_days_centi), 0) AS BIGINT), CAST(COALESCE(SUM(t.hours_min), 0) AS BIGINT),
    CAST(COALESCE(SUM(t.overtime_min), 0) AS BIGINT), CAST(COALESCE(SUM(t.cost_fen), 0) AS BIGINT), COUNT(*)";

/// [`Sums`] from the columns [`SUMS`] wrote, starting at column `at`.
fn sums(r: &Row, at: usize) -> Result<Sums> {
    Ok(Sums {
        work_days_centi: r.int(at)?,
        hours_min: r.int(at + 1)?,
        overtime_min: r.int(at + 2)?,
        cost_fen: r.int(at + 3)?,
        lines: r.int(at + 4)?,
    })
}

/// Labor totals over a date range on the phone: every day as it stands, whatever its review status
/// (the foreman's own view), overall and per group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// The site, or `None` for every site in the store.
    pub site: Option<SiteId>,
    /// First date, inclusive.
    pub from: NaiveDate,
    /// Last date, inclusive.
    pub to: NaiveDate,
    /// The grouping, if any.
    pub by: Option<GroupBy>,
    /// The overall sums.
    #[serde(flatten)]
    pub total: Sums,
    /// One row per group, ordered by key; empty when not grouped.
    pub rows: Vec<Group>,
}

/// One day in a worker's month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct WorkerDay {
    pub date: NaiveDate,
    pub site: SiteId,
    /// The work item.
    pub work_item: WorkItemId,
    /// Work-days in hundredths.
    pub work_days_centi: i64,
    /// Hours in minutes.
    pub hours_min: i64,
    /// Overtime in minutes.
    pub overtime_min: i64,
    /// Cost in fen.
    pub cost_fen: i64,
}

/// A worker's month across every site: the lines and the sums.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct WorkerMonth {
    pub worker: WorkerId,
    /// First day of the month.
    pub month: NaiveDate,
    /// Lines by date.
    pub days: Vec<WorkerDay>,
    /// The month's sums.
    #[serde(flatten)]
    pub total: Sums,
}

/// Work-days, hours, overtime, cost and line count over `from..=to` as every day stands now,
/// optionally grouped.
pub fn totals(
    db: &dyn Sql,
    site: Option<&SiteId>,
    from: NaiveDate,
    to: NaiveDate,
    by: Option<GroupBy>,
) -> Result<Totals> {
    if to < from {
        return Err(Error::invalid("to", "the range ends before it starts"));
    }
    let filter = RowFilter {
        sites: site.map(|s| vec![s.to_string()]),
        from: Some(from),
        to: Some(to),
        approved_only: false,
    };
    let summary = summary(db, &filter, by)?;
    Ok(Totals {
        site: site.cloned(),
        from,
        to,
        by,
        total: summary.total,
        rows: summary.rows,
    })
}

/// The labor lines `filter` selects, summed overall and per group, labels resolved. Reading the
/// approved version, it also says what the days amended since their approval would change.
///
/// A key with two labels (a worker id named differently on two sites) is reported with the greater
/// label, byte-wise.
pub fn summary(db: &dyn Sql, filter: &RowFilter, by: Option<GroupBy>) -> Result<Summary> {
    let (cond, args) = filter.versioned_sql(db.dialect());
    let (key, label) = match by.map(GroupBy::columns) {
        Some((key, label)) => (key, format!("MAX({label})")),
        None => ("''", "''".to_string()),
    };
    let sql = format!(
        "SELECT {key}, {label}, {SUMS}
         FROM {table} t
         LEFT JOIN workers w ON w.site_id = t.site_id AND w.worker_id = t.worker_id
         LEFT JOIN crews c ON c.site_id = w.site_id AND c.crew_id = w.crew_id
         LEFT JOIN work_items wi ON wi.site_id = t.site_id AND wi.work_item_id = t.work_item_id
         LEFT JOIN sites s ON s.site_id = t.site_id
         WHERE t.deleted = 0 AND {cond}
         GROUP BY 1 ORDER BY 1",
        table = filter.labor_table(),
    );
    let mut total = Sums::default();
    let mut groups = Vec::new();
    for r in db.query(&sql, &args)? {
        let row = Group {
            key: r.text(0)?,
            label: r.text(1)?,
            sums: sums(&r, 2)?,
        };
        total.add(&row.sums);
        groups.push(row);
    }
    Ok(Summary {
        by,
        rows: if by.is_some() { groups } else { Vec::new() },
        total,
        pending: if filter.approved_only {
            amended_pending(db, filter)?
        } else {
            None
        },
    })
}

/// Days in `filter`'s range amended after their approval: their sums now minus as approved.
fn amended_pending(db: &dyn Sql, filter: &RowFilter) -> Result<Option<Pending>> {
    let (cond, args) = filter.versioned_sql(db.dialect());
    let amended = |table: &str| -> Result<(i64, Sums)> {
        let sql = format!(
            "SELECT COUNT(DISTINCT t.doc_id), {SUMS} FROM {table} t
             JOIN day_status d ON d.doc_id = t.doc_id AND d.status = 'amended_after_approval'
             WHERE t.deleted = 0 AND {cond}"
        );
        let r = db.one(&sql, &args)?;
        Ok((r.int(0)?, sums(&r, 1)?))
    };
    let (days_now, now) = amended("labor_lines")?;
    let (days_then, then) = amended("pinned_labor_lines")?;
    let days = days_now.max(days_then);
    Ok((days > 0).then(|| Pending {
        days,
        difference: now.minus(&then),
    }))
}

/// A worker's lines in the month containing `month`, on every site.
pub fn worker_month(db: &dyn Sql, worker: &WorkerId, month: NaiveDate) -> Result<WorkerMonth> {
    let first = month.with_day(1).expect("day 1 exists");
    let next = first
        .checked_add_months(chrono::Months::new(1))
        .ok_or_else(|| Error::InvalidDate(month.to_string()))?;
    let last = next.pred_opt().expect("a day before the 1st exists");
    let rows = db.query(
        "SELECT day, site_id, work_item_id, work_days_centi, hours_min, overtime_min, cost_fen FROM labor_lines
         WHERE worker_id = ?1 AND deleted = 0 AND day BETWEEN ?2 AND ?3 ORDER BY day, site_id, work_item_id",
        &[
            worker.as_str().into(),
            first.to_string().into(),
            last.to_string().into(),
        ],
    )?;
    let mut days = Vec::new();
    let mut total = Sums::default();
    for r in rows {
        let (day, site, item) = (r.text(0)?, r.text(1)?, r.text(2)?);
        let (wd, h, ot, cost) = (r.int(3)?, r.int(4)?, r.int(5)?, r.int(6)?);
        total.add(&Sums {
            work_days_centi: wd,
            hours_min: h,
            overtime_min: ot,
            cost_fen: cost,
            lines: 1,
        });
        days.push(WorkerDay {
            date: crate::ids::parse_date(&day)?,
            site: SiteId::new(site)?,
            work_item: WorkItemId::new(item)?,
            work_days_centi: wd,
            hours_min: h,
            overtime_min: ot,
            cost_fen: cost,
        });
    }
    Ok(WorkerMonth {
        worker: worker.clone(),
        month: first,
        days,
        total,
    })
}

/// Quantity installed and labor booked to `date` (inclusive) per work item of the site, against
/// plan and budget: as every day stands now, or (`approved_only`) the approved version of each day.
pub fn progress(db: &dyn Sql, site: &SiteId, date: NaiveDate, approved_only: bool) -> Result<Vec<WorkItemProgress>> {
    let f = RowFilter {
        approved_only,
        ..RowFilter::default()
    };
    let (progress, labor) = (f.progress_table(), f.labor_table());
    let rows = db.query(
        &format!(
            "SELECT wi.work_item_id, wi.code, wi.name, wi.unit, wi.planned_quantity_milli, wi.budget_fen,
               wi.planned_start, wi.planned_end,
               (SELECT CAST(COALESCE(SUM(p.quantity_milli), 0) AS BIGINT) FROM {progress} p
                 WHERE p.site_id = wi.site_id AND p.work_item_id = wi.work_item_id AND p.deleted = 0 AND p.day <= ?2),
               (SELECT CAST(COALESCE(SUM(l.cost_fen), 0) AS BIGINT) FROM {labor} l
                 WHERE l.site_id = wi.site_id AND l.work_item_id = wi.work_item_id AND l.deleted = 0 AND l.day <= ?2
                   AND l.kind = 'day_labor')
             FROM work_items wi WHERE wi.site_id = ?1 ORDER BY wi.code, wi.work_item_id"
        ),
        &[site.as_str().into(), date.to_string().into()],
    )?;
    let mut out = Vec::new();
    for r in rows {
        let (planned, done) = (r.int(4)?, r.int(8)?);
        let date_of = |d: Option<String>| d.map(|d| crate::ids::parse_date(&d)).transpose();
        let percent = if planned > 0 {
            (done as f64 * 1000.0 / planned as f64).round() / 10.0
        } else {
            0.0
        };
        out.push(WorkItemProgress {
            work_item: WorkItemId::new(r.text(0)?)?,
            code: r.text(1)?,
            name: r.text(2)?,
            unit: r.text(3)?,
            planned_quantity_milli: planned,
            quantity_to_date_milli: done,
            percent_complete: percent,
            labor_cost_fen: r.int(9)?,
            budget_fen: r.int(5)?,
            planned_start: date_of(r.opt_text(6)?)?,
            planned_end: date_of(r.opt_text(7)?)?,
        });
    }
    if out.is_empty() && !sites(db)?.iter().any(|s| &s.id == site) {
        return Err(Error::UnknownSite(site.to_string()));
    }
    Ok(out)
}

/// Every site in the projections.
pub fn sites(db: &dyn Sql) -> Result<Vec<Site>> {
    db.query("SELECT site_id, code, name, timezone FROM sites ORDER BY site_id", &[])?
        .into_iter()
        .map(|r| {
            Ok(Site {
                id: SiteId::new(r.text(0)?)?,
                code: r.text(1)?,
                name: r.text(2)?,
                timezone: r.text(3)?,
            })
        })
        .collect()
}

/// The site-day documents in which a worker has a line in the month of `month` (any day of it).
pub fn worker_docs(db: &dyn Sql, worker: &WorkerId, month: NaiveDate) -> Result<Vec<DocId>> {
    let first = month.with_day(1).unwrap_or(month);
    let next = first.checked_add_months(chrono::Months::new(1)).unwrap_or(first);
    db.query(
        "SELECT DISTINCT doc_id FROM labor_lines WHERE worker_id = ?1 AND day >= ?2 AND day < ?3 ORDER BY doc_id",
        &[
            worker.as_str().into(),
            first.to_string().into(),
            next.to_string().into(),
        ],
    )?
    .into_iter()
    .map(|r| r.text(0)?.parse())
    .collect()
}

impl Store {
    /// Work-days, hours, overtime, cost and line count over `from..=to` as every day stands now,
    /// optionally grouped: [`totals`] on this store.
    pub fn totals(&self, site: Option<&SiteId>, from: NaiveDate, to: NaiveDate, by: Option<GroupBy>) -> Result<Totals> {
        totals(self.db(), site, from, to, by)
    }

    /// The labor lines `filter` selects, summed overall and per group: [`summary`] on this store.
    pub fn summary(&self, filter: &RowFilter, by: Option<GroupBy>) -> Result<Summary> {
        summary(self.db(), filter, by)
    }

    /// A worker's lines in the month containing `month`, on every site: [`worker_month`] on this
    /// store.
    pub fn worker_month(&self, worker: &WorkerId, month: NaiveDate) -> Result<WorkerMonth> {
        worker_month(self.db(), worker, month)
    }

    /// Quantity installed to `date` (inclusive) per work item of the site, against the plan, as every
    /// day stands now.
    pub fn progress_to_date(&self, site: &SiteId, date: NaiveDate) -> Result<Vec<WorkItemProgress>> {
        self.progress(site, date, false)
    }

    /// Quantity installed and labor booked to `date` (inclusive) per work item of the site:
    /// [`progress`] on this store.
    pub fn progress(&self, site: &SiteId, date: NaiveDate, approved_only: bool) -> Result<Vec<WorkItemProgress>> {
        progress(self.db(), site, date, approved_only)
    }

    /// The site-day documents in which a worker has a line in the month of `month`: [`worker_docs`]
    /// on this store.
    pub fn worker_docs(&self, worker: &WorkerId, month: NaiveDate) -> Result<Vec<DocId>> {
        worker_docs(self.db(), worker, month)
    }
}
