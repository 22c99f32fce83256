//! Closed pay periods in the server's own database (table `pay_periods`, migration 006 / PostgreSQL
//! 005): a stored sheet never changes; only its payment is added, once.

use sitesync_core::store::sql::{Row, Sql, transaction};

use super::AuthDb;
use crate::error::Result;

/// A closed period as stored. Dates are `YYYY-MM-DD`; JSON columns are kept as text here and typed
/// in `crate::pay::period`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs, reason = "fields named as the table's columns")]
pub struct StoredPeriod {
    pub period_id: String,
    pub org_id: String,
    pub site_id: String,
    pub crew_id: String,
    pub from_date: String,
    pub to_date: String,
    pub sheet: String,
    pub pins: String,
    pub left_out: String,
    pub closed_by: String,
    /// Unix milliseconds.
    pub closed_at: i64,
    pub paid_by: Option<String>,
    pub paid_at: Option<i64>,
    pub paid_reference: Option<String>,
}

/// What storing a period came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// Stored now.
    New(StoredPeriod),
    /// The same site, crew and range was already closed: that period, unchanged.
    Existing(StoredPeriod),
    /// Another closed period of the site and crew overlaps the range.
    Overlaps(StoredPeriod),
}

/// What recording a payment came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Paid {
    /// Recorded now (or already recorded with this very reference: a retried request).
    Recorded(StoredPeriod),
    /// Already paid with another reference: nothing changed.
    AlreadyPaid(StoredPeriod),
    /// No such period.
    Unknown,
}

const COLUMNS: &str = "period_id, org_id, site_id, crew_id, from_date, to_date, sheet, pins, left_out, \
                       closed_by, closed_at, paid_by, paid_at, paid_reference";

fn period(r: &Row) -> sitesync_core::Result<StoredPeriod> {
    Ok(StoredPeriod {
        period_id: r.text(0)?,
        org_id: r.text(1)?,
        site_id: r.text(2)?,
        crew_id: r.text(3)?,
        from_date: r.text(4)?,
        to_date: r.text(5)?,
        sheet: r.text(6)?,
        pins: r.text(7)?,
        left_out: r.text(8)?,
        closed_by: r.text(9)?,
        closed_at: r.int(10)?,
        paid_by: r.opt_text(11)?,
        paid_at: r.opt_int(12)?,
        paid_reference: r.opt_text(13)?,
    })
}

/// The period of `site`/`crew` overlapping `from ..= to` (the exact one first), if any.
fn overlapping(
    db: &dyn Sql,
    site: &str,
    crew: &str,
    from: &str,
    to: &str,
) -> sitesync_core::Result<Option<StoredPeriod>> {
    let row = db.first(
        &format!(
            "SELECT {COLUMNS} FROM pay_periods WHERE site_id = ?1 AND crew_id = ?2 AND from_date <= ?4 AND to_date >= ?3
             ORDER BY (CASE WHEN from_date = ?3 AND to_date = ?4 THEN 0 ELSE 1 END), from_date LIMIT 1"
        ),
        &[site.into(), crew.into(), from.into(), to.into()],
    )?;
    row.as_ref().map(period).transpose()
}

impl AuthDb {
    /// Stores a closed period unless the range is already closed (answered as it is) or overlaps
    /// another closed period of the site and crew; checked and written in one transaction.
    pub fn store_pay_period(&self, p: &StoredPeriod) -> Result<Stored> {
        self.with(|db| {
            transaction(db, true, |tx| {
                if let Some(found) = overlapping(tx, &p.site_id, &p.crew_id, &p.from_date, &p.to_date)? {
                    return Ok(if found.from_date == p.from_date && found.to_date == p.to_date {
                        Stored::Existing(found)
                    } else {
                        Stored::Overlaps(found)
                    });
                }
                let n = tx.exec(
                    &format!(
                        "INSERT INTO pay_periods ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, NULL, NULL, NULL)
                         ON CONFLICT (site_id, crew_id, from_date) DO NOTHING"
                    ),
                    &[
                        p.period_id.as_str().into(),
                        p.org_id.as_str().into(),
                        p.site_id.as_str().into(),
                        p.crew_id.as_str().into(),
                        p.from_date.as_str().into(),
                        p.to_date.as_str().into(),
                        p.sheet.as_str().into(),
                        p.pins.as_str().into(),
                        p.left_out.as_str().into(),
                        p.closed_by.as_str().into(),
                        p.closed_at.into(),
                    ],
                )?;
                if n == 0 {
                    // Another node closed a period starting the same day between our check and
                    // our insert: answer what it stored.
                    if let Some(found) = overlapping(tx, &p.site_id, &p.crew_id, &p.from_date, &p.to_date)? {
                        return Ok(if found.to_date == p.to_date {
                            Stored::Existing(found)
                        } else {
                            Stored::Overlaps(found)
                        });
                    }
                }
                Ok(Stored::New(p.clone()))
            })
        })
    }

    /// The closed period with this id.
    pub fn pay_period(&self, id: &str) -> Result<Option<StoredPeriod>> {
        let row = self.first(
            &format!("SELECT {COLUMNS} FROM pay_periods WHERE period_id = ?1"),
            &[id.into()],
        )?;
        Ok(row.as_ref().map(period).transpose()?)
    }

    /// The closed period of `site`/`crew` over exactly `from ..= to`.
    pub fn pay_period_of(&self, site: &str, crew: &str, from: &str, to: &str) -> Result<Option<StoredPeriod>> {
        let row = self.first(
            &format!("SELECT {COLUMNS} FROM pay_periods WHERE site_id = ?1 AND crew_id = ?2 AND from_date = ?3 AND to_date = ?4"),
            &[site.into(), crew.into(), from.into(), to.into()],
        )?;
        Ok(row.as_ref().map(period).transpose()?)
    }

    /// The closed periods of `site`/`crew` ending before `before`, earliest first.
    pub fn pay_periods_before(&self, site: &str, crew: &str, before: &str) -> Result<Vec<StoredPeriod>> {
        let rows = self.rows(
            &format!(
                "SELECT {COLUMNS} FROM pay_periods WHERE site_id = ?1 AND crew_id = ?2 AND to_date < ?3 ORDER BY from_date"
            ),
            &[site.into(), crew.into(), before.into()],
        )?;
        Ok(rows.iter().map(period).collect::<sitesync_core::Result<_>>()?)
    }

    /// Records that a period was paid, by whom and with which payment reference, unless it was
    /// paid already (the same reference again is a retried request and answers the payment as
    /// recorded).
    pub fn mark_pay_period_paid(&self, id: &str, by: &str, reference: &str) -> Result<Paid> {
        self.with(|db| {
            transaction(db, true, |tx| {
                let found = tx.first(
                    &format!("SELECT {COLUMNS} FROM pay_periods WHERE period_id = ?1"),
                    &[id.into()],
                )?;
                let Some(found) = found.as_ref().map(period).transpose()? else {
                    return Ok(Paid::Unknown);
                };
                match &found.paid_reference {
                    Some(r) if r == reference => return Ok(Paid::Recorded(found)),
                    Some(_) => return Ok(Paid::AlreadyPaid(found)),
                    None => {}
                }
                let at = chrono::Utc::now().timestamp_millis();
                tx.exec(
                    "UPDATE pay_periods SET paid_by = ?2, paid_at = ?3, paid_reference = ?4 WHERE period_id = ?1 AND paid_at IS NULL",
                    &[id.into(), by.into(), at.into(), reference.into()],
                )?;
                Ok(Paid::Recorded(StoredPeriod {
                    paid_by: Some(by.to_string()),
                    paid_at: Some(at),
                    paid_reference: Some(reference.to_string()),
                    ..found
                }))
            })
        })
    }
}
