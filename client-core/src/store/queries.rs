//! Offline queries answered from the projections: totals, a worker's month, progress to date.

use chrono::{Datelike, NaiveDate};
use rusqlite::params;
use serde::Serialize;

use super::Store;
use crate::error::{Error, Result};
use crate::ids::{SiteId, WorkItemId, WorkerId};
use crate::units::add_saturating;

/// How totals are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// One row per calendar date.
    Day,
    /// One row per crew (the worker's crew on the roster now).
    Crew,
    /// One row per trade (工种).
    Trade,
    /// One row per worker.
    Worker,
    /// One row per work item (部位/分项).
    WorkItem,
}

impl GroupBy {
    /// SQL for the group key and its label.
    fn columns(self) -> (&'static str, &'static str) {
        match self {
            GroupBy::Day => ("l.day", "l.day"),
            GroupBy::Crew => ("COALESCE(w.crew_id, '')", "COALESCE(c.name, '')"),
            GroupBy::Trade => ("COALESCE(w.trade, '')", "COALESCE(w.trade, '')"),
            GroupBy::Worker => ("l.worker_id", "COALESCE(w.name, '')"),
            GroupBy::WorkItem => ("l.work_item_id", "COALESCE(wi.name, '')"),
        }
    }
}

/// Sums over labor lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Sums {
    /// Work-days in hundredths.
    pub work_days_centi: i64,
    /// Hours in minutes.
    pub hours_min: i64,
    /// Overtime in minutes.
    pub overtime_min: i64,
    /// Cost in fen (each line rounded half up, then summed).
    pub cost_fen: i64,
    /// Number of lines.
    pub lines: i64,
}

impl Sums {
    /// Adds another group's sums, saturating rather than wrapping (see [`add_saturating`]).
    fn add(&mut self, o: &Sums) {
        self.work_days_centi = add_saturating(self.work_days_centi, o.work_days_centi);
        self.hours_min = add_saturating(self.hours_min, o.hours_min);
        self.overtime_min = add_saturating(self.overtime_min, o.overtime_min);
        self.cost_fen = add_saturating(self.cost_fen, o.cost_fen);
        self.lines = add_saturating(self.lines, o.lines);
    }
}

/// One group of [`Totals`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TotalsRow {
    /// The group's key: a date, crew id, trade code, worker id or work item id.
    pub key: String,
    /// A readable name for the key (crew name, worker name …).
    pub label: String,
    /// The sums.
    #[serde(flatten)]
    pub sums: Sums,
}

/// Labor totals over a date range, overall and per group.
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
    pub rows: Vec<TotalsRow>,
}

/// One day in a worker's month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerDay {
    /// The date.
    pub date: NaiveDate,
    /// The site.
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
pub struct WorkerMonth {
    /// The worker.
    pub worker: WorkerId,
    /// First day of the month.
    pub month: NaiveDate,
    /// Lines by date.
    pub days: Vec<WorkerDay>,
    /// The month's sums.
    #[serde(flatten)]
    pub total: Sums,
}

/// Progress to date on one work item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkItemProgress {
    /// The work item.
    pub work_item: WorkItemId,
    /// WBS code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Unit of quantity.
    pub unit: String,
    /// Planned quantity in thousandths.
    pub planned_quantity_milli: i64,
    /// Installed to date, in thousandths.
    pub quantity_to_date_milli: i64,
    /// Installed ÷ planned, in percent, one decimal.
    pub percent_complete: f64,
    /// Labor cost booked on the item to date, in fen.
    pub labor_cost_fen: i64,
    /// The item's budget, in fen.
    pub budget_fen: i64,
}

impl Store {
    /// Work-days, hours, overtime, cost and line count over `from..=to`, optionally grouped.
    pub fn totals(&self, site: Option<&SiteId>, from: NaiveDate, to: NaiveDate, by: Option<GroupBy>) -> Result<Totals> {
        if to < from {
            return Err(Error::invalid("to", "the range ends before it starts"));
        }
        let (key, label) = by.map(GroupBy::columns).unwrap_or(("''", "''"));
        // SQLite's SUM fails rather than wraps on overflow; projected lines are bounded (a line
        // that is not valid is flagged, not projected), so no real sum comes near it.
        let sql = format!(
            "SELECT {key}, {label}, SUM(l.work_days_centi), SUM(l.hours_min), SUM(l.overtime_min), SUM(l.cost_fen), COUNT(*)
             FROM labor_lines l
             LEFT JOIN workers w ON w.site_id = l.site_id AND w.worker_id = l.worker_id
             LEFT JOIN crews c ON c.site_id = w.site_id AND c.crew_id = w.crew_id
             LEFT JOIN work_items wi ON wi.site_id = l.site_id AND wi.work_item_id = l.work_item_id
             WHERE l.deleted = 0 AND (?1 IS NULL OR l.site_id = ?1) AND l.day BETWEEN ?2 AND ?3
             GROUP BY 1 ORDER BY 1"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(
            params![site.map(SiteId::as_str), from.to_string(), to.to_string()],
            |r| {
                Ok(TotalsRow {
                    key: r.get(0)?,
                    label: r.get(1)?,
                    sums: Sums {
                        work_days_centi: r.get(2)?,
                        hours_min: r.get(3)?,
                        overtime_min: r.get(4)?,
                        cost_fen: r.get(5)?,
                        lines: r.get(6)?,
                    },
                })
            },
        )?;
        let mut total = Sums::default();
        let mut out = Vec::new();
        for row in rows {
            let row = row?;
            total.add(&row.sums);
            out.push(row);
        }
        Ok(Totals {
            site: site.cloned(),
            from,
            to,
            by,
            total,
            rows: if by.is_some() { out } else { Vec::new() },
        })
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

    /// Quantity installed to `date` (inclusive) per work item of the site, against the plan.
    pub fn progress_to_date(&self, site: &SiteId, date: NaiveDate) -> Result<Vec<WorkItemProgress>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT wi.work_item_id, wi.code, wi.name, wi.unit, wi.planned_quantity_milli, wi.budget_fen,
               (SELECT COALESCE(SUM(p.quantity_milli), 0) FROM progress_lines p
                 WHERE p.site_id = wi.site_id AND p.work_item_id = wi.work_item_id AND p.deleted = 0 AND p.day <= ?2),
               (SELECT COALESCE(SUM(l.cost_fen), 0) FROM labor_lines l
                 WHERE l.site_id = wi.site_id AND l.work_item_id = wi.work_item_id AND l.deleted = 0 AND l.day <= ?2)
             FROM work_items wi WHERE wi.site_id = ?1 ORDER BY wi.code, wi.work_item_id",
        )?;
        let rows = stmt.query_map(params![site.as_str(), date.to_string()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get::<_, i64>(4)?,
                r.get(5)?,
                r.get::<_, i64>(6)?,
                r.get(7)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, code, name, unit, planned, budget, done, cost) = row?;
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
