//! Flat rows from the projections for reports: labor and progress lines with their roster context,
//! day statuses and review trails. Grouping and formatting are the reader's.
//!
//! The functions take any [`Sql`] connection, so the server reads the same rows from its
//! PostgreSQL projections with the same statements; [`Store`]'s methods of the same names pass the
//! phone's SQLite connection.

use chrono::NaiveDate;
use serde::Serialize;

use super::Store;
use super::sql::{Dialect, Row, Sql, Value};
use crate::error::{Error, Result};
use crate::ids::parse_date;
use crate::labor::{DayStatus, ReviewAction};

/// Which rows to read.
#[derive(Debug, Clone, Default)]
pub struct RowFilter {
    /// Only these sites (`None`: every site in the store).
    pub sites: Option<Vec<String>>,
    /// First date, inclusive.
    pub from: Option<NaiveDate>,
    /// Last date, inclusive.
    pub to: Option<NaiveDate>,
    /// Only the approved version of each day (the default for cost figures): approved days as they
    /// stand, days amended after approval as the approval pinned them (until the amendment is
    /// approved), and nothing of drafts, submitted or rejected days.
    pub approved_only: bool,
}

impl RowFilter {
    /// SQL conditions on table alias `t` with columns `site_id`, `day`, `doc_id`, and their values.
    /// `versioned`: `t` already reads the approved version (an `approved_*` view), so
    /// `approved_only` needs no condition of its own.
    fn sql(&self, dialect: Dialect, versioned: bool) -> (String, Vec<Value>) {
        // Only rows dated in the storable window: a day dated `+10000-01-01` in a projection made
        // before such days were skipped sorts before every real date and ranges wrongly.
        let mut cond = vec![format!("{} AND t.day >= '2000-01-01'", dialect.date_guard("t.day"))];
        let mut args = Vec::new();
        if let Some(sites) = &self.sites {
            if sites.is_empty() {
                cond.push("0 = 1".into());
            } else {
                cond.push(format!("t.site_id IN ({})", vec!["?"; sites.len()].join(", ")));
                args.extend(sites.iter().map(Value::from));
            }
        }
        if let Some(from) = self.from {
            cond.push("t.day >= ?".into());
            args.push(from.to_string().into());
        }
        if let Some(to) = self.to {
            cond.push("t.day <= ?".into());
            args.push(to.to_string().into());
        }
        if self.approved_only && !versioned {
            cond.push(
                "(SELECT status FROM day_status s WHERE s.doc_id = t.doc_id) IN ('approved', 'amended_after_approval')"
                    .into(),
            );
        }
        (cond.join(" AND "), args)
    }

    /// The labor table to read: every line as it stands, or the approved version.
    pub(super) fn labor_table(&self) -> &'static str {
        if self.approved_only {
            "approved_labor_lines"
        } else {
            "labor_lines"
        }
    }

    /// The progress table to read, as [`RowFilter::labor_table`].
    pub(super) fn progress_table(&self) -> &'static str {
        if self.approved_only {
            "approved_progress_lines"
        } else {
            "progress_lines"
        }
    }

    /// Conditions for reading [`RowFilter::labor_table`] or [`RowFilter::progress_table`].
    pub(super) fn versioned_sql(&self, dialect: Dialect) -> (String, Vec<Value>) {
        self.sql(dialect, true)
    }

    /// Conditions for a table that holds one row set per day (statuses, reviews, flags).
    pub(super) fn day_sql(&self, dialect: Dialect) -> (String, Vec<Value>) {
        self.sql(dialect, false)
    }
}

/// One labor line with its roster context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct LaborRow {
    /// The line id.
    pub line_id: String,
    pub site: String,
    pub date: NaiveDate,
    pub worker: String,
    /// Worker name ("" if no longer on the roster).
    pub worker_name: String,
    /// The worker's crew now.
    pub crew: String,
    /// The crew's name.
    pub crew_name: String,
    /// The worker's trade.
    pub trade: String,
    /// Work item id.
    pub work_item: String,
    /// Work item name.
    pub work_item_name: String,
    /// Work-days in hundredths.
    pub work_days_centi: i64,
    /// Hours in minutes.
    pub hours_min: i64,
    /// Overtime in minutes.
    pub overtime_min: i64,
    /// `day_labor` or `piecework`.
    pub kind: String,
    /// Day rate recorded on the line.
    pub rate_fen: i64,
    /// Overtime rate recorded on the line.
    pub overtime_rate_fen: i64,
    /// The worker's day rate on the roster now.
    pub roster_rate_fen: Option<i64>,
    /// Cost in fen.
    pub cost_fen: i64,
    pub note: String,
    /// The day's review status.
    pub status: DayStatus,
}

/// One progress line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct ProgressRow {
    pub site: String,
    pub date: NaiveDate,
    /// Work item id.
    pub work_item: String,
    /// Quantity in thousandths.
    pub quantity_milli: i64,
    /// The day's review status.
    pub status: DayStatus,
}

/// A site-day's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct DayRow {
    pub site: String,
    pub date: NaiveDate,
    /// Where the day stands in review.
    pub status: DayStatus,
}

/// One review event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct ReviewRow {
    pub site: String,
    pub date: NaiveDate,
    pub action: ReviewAction,
    pub by: String,
    /// When (RFC 3339).
    pub at: String,
    /// Reason or comment.
    pub reason: String,
}

/// A record left out of the projections because it does not read as a valid one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct InvalidRow {
    pub site: String,
    pub date: NaiveDate,
    /// The record (a line id).
    pub record: String,
    /// The field that failed.
    pub field: String,
    pub reason: String,
}

/// A stored date. One that does not parse was written by no build: the projection is corrupt, not
/// the query.
fn date(row: &Row, i: usize) -> Result<NaiveDate> {
    let text = row.text(i)?;
    parse_date(&text).map_err(|e| Error::Database(format!("column {i}: {e} in the projection")))
}

/// A stored name that no build wrote: the projection is corrupt, not the query.
fn unknown(kind: &str, text: &str) -> Error {
    Error::Database(format!("unknown {kind} {text:?} in the projection"))
}

fn status(row: &Row, i: usize) -> Result<DayStatus> {
    let text = row.text(i)?;
    DayStatus::parse(&text).ok_or_else(|| unknown("day status", &text))
}

fn action(row: &Row, i: usize) -> Result<ReviewAction> {
    let text = row.text(i)?;
    ReviewAction::parse(&text).ok_or_else(|| unknown("review action", &text))
}

/// Labor lines (deleted ones excluded) with roster context.
pub fn labor_rows(db: &dyn Sql, filter: &RowFilter) -> Result<Vec<LaborRow>> {
    let (cond, args) = filter.versioned_sql(db.dialect());
    let table = filter.labor_table();
    let sql = format!(
        "SELECT t.line_id, t.site_id, t.day, t.worker_id, COALESCE(w.name, ''), COALESCE(w.crew_id, ''),
                COALESCE(c.name, ''), COALESCE(w.trade, ''), t.work_item_id, COALESCE(wi.name, ''),
                t.work_days_centi, t.hours_min, t.overtime_min, t.kind, t.rate_fen, t.overtime_rate_fen,
                w.day_rate_fen, t.cost_fen, t.note, COALESCE(s.status, 'draft')
         FROM {table} t
         LEFT JOIN workers w ON w.site_id = t.site_id AND w.worker_id = t.worker_id
         LEFT JOIN crews c ON c.site_id = w.site_id AND c.crew_id = w.crew_id
         LEFT JOIN work_items wi ON wi.site_id = t.site_id AND wi.work_item_id = t.work_item_id
         LEFT JOIN day_status s ON s.doc_id = t.doc_id
         WHERE t.deleted = 0 AND {cond}
         ORDER BY t.site_id, t.day, t.worker_id, t.work_item_id"
    );
    db.query(&sql, &args)?
        .iter()
        .map(|r| {
            Ok(LaborRow {
                line_id: r.text(0)?,
                site: r.text(1)?,
                date: date(r, 2)?,
                worker: r.text(3)?,
                worker_name: r.text(4)?,
                crew: r.text(5)?,
                crew_name: r.text(6)?,
                trade: r.text(7)?,
                work_item: r.text(8)?,
                work_item_name: r.text(9)?,
                work_days_centi: r.int(10)?,
                hours_min: r.int(11)?,
                overtime_min: r.int(12)?,
                kind: r.text(13)?,
                rate_fen: r.int(14)?,
                overtime_rate_fen: r.int(15)?,
                roster_rate_fen: r.opt_int(16)?,
                cost_fen: r.int(17)?,
                note: r.text(18)?,
                status: status(r, 19)?,
            })
        })
        .collect()
}

/// Progress lines (deleted ones excluded).
pub fn progress_rows(db: &dyn Sql, filter: &RowFilter) -> Result<Vec<ProgressRow>> {
    let (cond, args) = filter.versioned_sql(db.dialect());
    let table = filter.progress_table();
    let sql = format!(
        "SELECT t.site_id, t.day, t.work_item_id, t.quantity_milli, COALESCE(s.status, 'draft')
         FROM {table} t LEFT JOIN day_status s ON s.doc_id = t.doc_id
         WHERE t.deleted = 0 AND {cond} ORDER BY t.site_id, t.day, t.work_item_id"
    );
    db.query(&sql, &args)?
        .iter()
        .map(|r| {
            Ok(ProgressRow {
                site: r.text(0)?,
                date: date(r, 1)?,
                work_item: r.text(2)?,
                quantity_milli: r.int(3)?,
                status: status(r, 4)?,
            })
        })
        .collect()
}

/// Site-days with a document, and their status.
pub fn day_rows(db: &dyn Sql, filter: &RowFilter) -> Result<Vec<DayRow>> {
    let (cond, args) = filter.day_sql(db.dialect());
    let sql = format!("SELECT t.site_id, t.day, t.status FROM day_status t WHERE {cond} ORDER BY t.site_id, t.day");
    db.query(&sql, &args)?
        .iter()
        .map(|r| {
            Ok(DayRow {
                site: r.text(0)?,
                date: date(r, 1)?,
                status: status(r, 2)?,
            })
        })
        .collect()
}

/// Records left out of the projections (flagged lines), with why.
pub fn invalid_rows(db: &dyn Sql, filter: &RowFilter) -> Result<Vec<InvalidRow>> {
    let filter = RowFilter {
        // Flagged lines are on no approved day's sums: list them whatever the day's status.
        approved_only: false,
        ..filter.clone()
    };
    let (cond, args) = filter.day_sql(db.dialect());
    let sql = format!(
        "SELECT t.site_id, t.day, t.record_id, t.field, t.reason FROM invalid_records t WHERE {cond}
         ORDER BY t.site_id, t.day, t.record_id"
    );
    db.query(&sql, &args)?
        .iter()
        .map(|r| {
            Ok(InvalidRow {
                site: r.text(0)?,
                date: date(r, 1)?,
                record: r.text(2)?,
                field: r.text(3)?,
                reason: r.text(4)?,
            })
        })
        .collect()
}

/// Review events in causal order per day.
pub fn review_rows(db: &dyn Sql, filter: &RowFilter) -> Result<Vec<ReviewRow>> {
    let (cond, args) = filter.day_sql(db.dialect());
    let sql = format!(
        "SELECT t.site_id, t.day, t.action, t.by_user, t.at, t.reason FROM reviews t WHERE {cond}
         ORDER BY t.site_id, t.day, t.seq"
    );
    db.query(&sql, &args)?
        .iter()
        .map(|r| {
            Ok(ReviewRow {
                site: r.text(0)?,
                date: date(r, 1)?,
                action: action(r, 2)?,
                by: r.text(3)?,
                at: r.text(4)?,
                reason: r.text(5)?,
            })
        })
        .collect()
}

impl Store {
    /// Labor lines (deleted ones excluded) with roster context: [`labor_rows`] on this store.
    pub fn labor_rows(&self, filter: &RowFilter) -> Result<Vec<LaborRow>> {
        labor_rows(self.db(), filter)
    }

    /// Progress lines (deleted ones excluded): [`progress_rows`] on this store.
    pub fn progress_rows(&self, filter: &RowFilter) -> Result<Vec<ProgressRow>> {
        progress_rows(self.db(), filter)
    }

    /// Site-days with a document, and their status: [`day_rows`] on this store.
    pub fn day_rows(&self, filter: &RowFilter) -> Result<Vec<DayRow>> {
        day_rows(self.db(), filter)
    }

    /// Records left out of the projections (flagged lines), with why: [`invalid_rows`] on this store.
    pub fn invalid_rows(&self, filter: &RowFilter) -> Result<Vec<InvalidRow>> {
        invalid_rows(self.db(), filter)
    }

    /// Review events in causal order per day: [`review_rows`] on this store.
    pub fn review_rows(&self, filter: &RowFilter) -> Result<Vec<ReviewRow>> {
        review_rows(self.db(), filter)
    }
}
