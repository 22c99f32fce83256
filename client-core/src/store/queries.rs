//! Offline queries answered from the projections: totals, a worker's month, progress to date.

use chrono::{Datelike, NaiveDate};
use rusqlite::{params, params_from_iter};
use serde::Serialize;

use super::{RowFilter, Store};
use crate::error::{Error, Result};
use crate::ids::{SiteId, WorkItemId, WorkerId};
use crate::report::{Group, GroupBy, Pending, Summary, Sums, WorkItemProgress};

/// The sums of [`Sums`] in SQL over lines `t`, in field order. SQLite's SUM fails rather than wraps
/// on overflow; projected lines are bounded (a line that is not valid is flagged, not projected).
const SUMS: &str = "COALESCE(SUM(t.work_days_centi), 0), COALESCE(SUM(t.hours_min), 0),
    COALESCE(SUM(t.overtime_min), 0), COALESCE(SUM(t.cost_fen), 0), COUNT(*)";

/// [`Sums`] from the columns [`SUMS`] wrote, starting at column `at`.
fn sums(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Sums> {
    Ok(Sums {
        work_days_centi: r.get(at)?,
        hours_min: r.get(at + 1)?,
        overtime_min: r.get(at + 2)?,
        cost_fen: r.get(at + 3)?,
        lines: r.get(at + 4)?,
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

impl Store {
    /// Work-days, hours, overtime, cost and line count over `from..=to` as every day stands now,
    /// optionally grouped.
    pub fn totals(&self, site: Option<&SiteId>, from: NaiveDate, to: NaiveDate, by: Option<GroupBy>) -> Result<Totals> {
        if to < from {
            return Err(Error::invalid("to", "the range ends before it starts"));
        }
        let filter = RowFilter {
            sites: site.map(|s| vec![s.to_string()]),
            from: Some(from),
            to: Some(to),
            approved_only: false,
        };
        let summary = self.summary(&filter, by)?;
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
    pub fn summary(&self, filter: &RowFilter, by: Option<GroupBy>) -> Result<Summary> {
        let (cond, args) = filter.versioned_sql();
        let (key, label) = by.map(GroupBy::columns).unwrap_or(("''", "''"));
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
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params_from_iter(args.iter()), |r| {
            Ok(Group {
                key: r.get(0)?,
                label: r.get(1)?,
                sums: sums(r, 2)?,
            })
        })?;
        let mut total = Sums::default();
        let mut groups = Vec::new();
        for row in rows {
            let row = row?;
            total.add(&row.sums);
            groups.push(row);
        }
        Ok(Summary {
            by,
            rows: if by.is_some() { groups } else { Vec::new() },
            total,
            pending: if filter.approved_only {
                self.amended_pending(filter)?
            } else {
                None
            },
        })
    }

    /// Days in `filter`'s range amended after their approval: their sums now minus as approved.
    fn amended_pending(&self, filter: &RowFilter) -> Result<Option<Pending>> {
        let (cond, args) = filter.versioned_sql();
        let amended = |table: &str| -> Result<(i64, Sums)> {
            let sql = format!(
                "SELECT COUNT(DISTINCT t.doc_id), {SUMS} FROM {table} t
                 JOIN day_status d ON d.doc_id = t.doc_id AND d.status = 'amended_after_approval'
                 WHERE t.deleted = 0 AND {cond}"
            );
            Ok(self
                .conn
                .prepare_cached(&sql)?
                .query_row(params_from_iter(args.iter()), |r| Ok((r.get(0)?, sums(r, 1)?)))?)
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
    pub fn worker_month(&self, worker: &WorkerId, month: NaiveDate) -> Result<WorkerMonth> {
        let first = month.with_day(1).expect("day 1 exists");
        let next = first
            .checked_add_months(chrono::Months::new(1))
            .ok_or_else(|| Error::InvalidDate(month.to_string()))?;
        let last = next.pred_opt().expect("a day before the 1st exists");
        let mut stmt = self.conn.prepare_cached(
            "SELECT day, site_id, work_item_id, work_days_centi, hours_min, overtime_min, cost_fen FROM labor_lines
             WHERE worker_id = ?1 AND deleted = 0 AND day BETWEEN ?2 AND ?3 ORDER BY day, site_id, work_item_id",
        )?;
        let rows = stmt.query_map(params![worker.as_str(), first.to_string(), last.to_string()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })?;
        let mut days = Vec::new();
        let mut total = Sums::default();
        for row in rows {
            let (day, site, item, wd, h, ot, cost) = row?;
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

    /// Quantity installed to `date` (inclusive) per work item of the site, against the plan, as every
    /// day stands now.
    pub fn progress_to_date(&self, site: &SiteId, date: NaiveDate) -> Result<Vec<WorkItemProgress>> {
        self.progress(site, date, false)
    }

    /// Quantity installed and labor booked to `date` (inclusive) per work item of the site, against
    /// plan and budget: as every day stands now, or (`approved_only`) the approved version of each day.
    pub fn progress(&self, site: &SiteId, date: NaiveDate, approved_only: bool) -> Result<Vec<WorkItemProgress>> {
        let f = RowFilter {
            approved_only,
            ..RowFilter::default()
        };
        let (progress, labor) = (f.progress_table(), f.labor_table());
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT wi.work_item_id, wi.code, wi.name, wi.unit, wi.planned_quantity_milli, wi.budget_fen,
               wi.planned_start, wi.planned_end,
               (SELECT COALESCE(SUM(p.quantity_milli), 0) FROM {progress} p
                 WHERE p.site_id = wi.site_id AND p.work_item_id = wi.work_item_id AND p.deleted = 0 AND p.day <= ?2),
               (SELECT COALESCE(SUM(l.cost_fen), 0) FROM {labor} l
                 WHERE l.site_id = wi.site_id AND l.work_item_id = wi.work_item_id AND l.deleted = 0 AND l.day <= ?2)
             FROM work_items wi WHERE wi.site_id = ?1 ORDER BY wi.code, wi.work_item_id"
        ))?;
        let rows = stmt.query_map(params![site.as_str(), date.to_string()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get::<_, i64>(4)?,
                r.get(5)?,
                r.get::<_, Option<String>>(6)?,
                r.get::<_, Option<String>>(7)?,
                r.get::<_, i64>(8)?,
                r.get(9)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, code, name, unit, planned, budget, start, end, done, cost) = row?;
            let date_of = |d: Option<String>| d.map(|d| crate::ids::parse_date(&d)).transpose();
            let percent = if planned > 0 {
                (done as f64 * 1000.0 / planned as f64).round() / 10.0
            } else {
                0.0
            };
            out.push(WorkItemProgress {
                work_item: WorkItemId::new(id)?,
                code,
                name,
                unit,
                planned_quantity_milli: planned,
                quantity_to_date_milli: done,
                percent_complete: percent,
                labor_cost_fen: cost,
                budget_fen: budget,
                planned_start: date_of(start)?,
                planned_end: date_of(end)?,
            });
        }
        if out.is_empty() && !self.sites()?.iter().any(|s| &s.id == site) {
            return Err(Error::UnknownSite(site.to_string()));
        }
        Ok(out)
    }
}

impl Store {
    /// The site-day documents in which a worker has a line in the month of `month` (any day of it).
    pub fn worker_docs(&self, worker: &WorkerId, month: NaiveDate) -> Result<Vec<crate::ids::DocId>> {
        let first = month.with_day(1).unwrap_or(month);
        let next = first.checked_add_months(chrono::Months::new(1)).unwrap_or(first);
        let mut stmt = self.conn.prepare_cached(
            "SELECT DISTINCT doc_id FROM labor_lines WHERE worker_id = ?1 AND day >= ?2 AND day < ?3 ORDER BY doc_id",
        )?;
        let rows = stmt.query_map(
            rusqlite::params![worker.as_str(), first.to_string(), next.to_string()],
            |r| r.get::<_, String>(0),
        )?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row?.parse()?);
        }
        Ok(out)
    }
}
