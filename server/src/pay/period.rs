//! Pay periods (#20): closing a crew's sheet over a range, the closed sheet that never changes,
//! corrections carried as adjustments into the next sheet, marking a period paid, and the bank
//! payment file (代发).
//!
//! Decisions (2026-11-30):
//! - Closing is head office's (and admins'). It refuses while days of the range are unapproved
//!   unless forced (the period then records the days left out), refuses a range overlapping another
//!   closed period of the site and crew, and a repeated close of the same range answers the period
//!   already closed (a retried request must not close twice).
//! - The closed sheet is stored with the approved version (heads) of each day it counted. A later
//!   correction (an amendment approved after the close) never changes it: every later sheet of the
//!   site and crew carries, per worker, the difference between a recomputation of the closed range
//!   with the approved data as it is now and what was paid for it (the closed figures plus what
//!   closed later periods already carried), with the figures that changed and the days whose
//!   approved version changed. Once a period carrying it is closed, that difference is part of
//!   what was paid and is not carried again.
//! - Marking paid records who, when and the payment reference, once: the same reference again is a
//!   retried request and answers the payment as recorded; another one is refused.
//! - The bank file comes from a closed period only (what is paid is what was closed) and is the one
//!   output with the whole account number.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sitesync_core::Store;
use sitesync_core::ids::{SiteId, WorkerId};
use utoipa::ToSchema;

use super::{PayReport, PayReportLine, pay_report};
use crate::auth::{AuthDb, Paid, Principal, Stored, StoredPeriod};
use crate::error::{Error, Result};
use crate::export::{Cell, Table};

/// Why a period cannot be closed, paid or paid out; each answered 409 with the details.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[allow(missing_docs, reason = "fields named for what they hold")]
pub enum PeriodError {
    /// Days of the range hold lines or advances not approved (close with `force` to leave them out).
    #[error("days of the period are not approved: {}", dates(.0))]
    Unapproved(Vec<NaiveDate>),
    /// Another closed period of the site and crew overlaps the range.
    #[error("the range overlaps closed period {period} ({from} to {to})")]
    Overlaps { period: String, from: String, to: String },
    /// The period was paid already, with another reference.
    #[error("period {period} was paid already (reference {reference:?})")]
    AlreadyPaid { period: String, reference: String },
    /// The range is not a closed period (the bank file is made from closed periods only).
    #[error("{site} {crew} {from} to {to} is not a closed pay period")]
    NotClosed {
        site: String,
        crew: String,
        from: NaiveDate,
        to: NaiveDate,
    },
}

fn dates(d: &[NaiveDate]) -> String {
    d.iter().map(NaiveDate::to_string).collect::<Vec<_>>().join(", ")
}

impl PeriodError {
    /// A stable code for programs.
    pub fn code(&self) -> &'static str {
        match self {
            PeriodError::Unapproved(_) => "unapproved_days",
            PeriodError::Overlaps { .. } => "overlaps_closed_period",
            PeriodError::AlreadyPaid { .. } => "already_paid",
            PeriodError::NotClosed { .. } => "not_closed",
        }
    }

    /// The dates the error is about (the unapproved days), if any.
    pub fn dates(&self) -> Vec<NaiveDate> {
        match self {
            PeriodError::Unapproved(d) => d.clone(),
            _ => Vec::new(),
        }
    }
}

/// The body of a 409 about a pay period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PeriodErrorBody {
    /// What went wrong, in a sentence.
    pub error: String,
    /// `unapproved_days`, `overlaps_closed_period`, `already_paid` or `not_closed`.
    pub code: String,
    /// For `unapproved_days`: the days not approved.
    pub dates: Vec<NaiveDate>,
}

/// One day's approved version a closed period counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Pin {
    /// The day.
    pub date: NaiveDate,
    /// The heads (hex change hashes) its approval pinned.
    pub heads: Vec<String>,
}

/// A period's payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Payment {
    /// Who marked it paid.
    pub paid_by: String,
    /// When.
    pub paid_at: DateTime<Utc>,
    /// The bank's or payroll's reference.
    pub reference: String,
}

/// What makes a sheet a closed period's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Closed {
    /// The period's id (`pp-` and 32 hex digits).
    pub period: String,
    /// Who closed it.
    pub closed_by: String,
    /// When.
    pub closed_at: DateTime<Utc>,
    /// Days a forced close left out, not approved then.
    pub left_out: Vec<NaiveDate>,
    /// The approved version of each day counted.
    pub pins: Vec<Pin>,
    /// The payment, once recorded.
    pub paid: Option<Payment>,
}

/// One worker's correction to a closed period, carried by a later sheet: now minus what was paid
/// (money in fen, work-days in hundredths, time in minutes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[allow(missing_docs, reason = "figures named as in `PayReportLine`, each a difference")]
pub struct Adjustment {
    /// The closed period corrected.
    pub period: String,
    /// Its range.
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub worker: String,
    pub name: String,
    /// The figures that changed (`day_pay_fen`, `advances_fen`, …).
    pub fields: Vec<String>,
    /// The period's days whose approved version changed since it was closed.
    pub days: Vec<NaiveDate>,
    pub work_days_centi: i64,
    pub hours_min: i64,
    pub overtime_min: i64,
    pub day_pay_fen: i64,
    pub overtime_pay_fen: i64,
    pub piece_pay_fen: i64,
    pub advances_fen: i64,
    /// What the worker is owed more (negative: overpaid), added to this sheet's net.
    pub net_fen: i64,
}

/// The figures of a line, in `Adjustment` field order, with their names.
fn figures(l: &PayReportLine) -> [(&'static str, i64); 8] {
    [
        ("work_days_centi", l.work_days_centi),
        ("hours_min", l.hours_min),
        ("overtime_min", l.overtime_min),
        ("day_pay_fen", l.day_pay_fen),
        ("overtime_pay_fen", l.overtime_pay_fen),
        ("piece_pay_fen", l.piece_pay_fen),
        ("advances_fen", l.advances_fen),
        // The line's own net, without what it carried from earlier periods.
        ("net_fen", l.net_fen - l.adjustment_fen),
    ]
}

fn millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn json<T: for<'a> Deserialize<'a>>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| Error::Internal(format!("stored pay period {what}: {e}")))
}

fn to_json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::Internal(format!("pay period as JSON: {e}")))
}

/// A fresh period id: `pp-` and 32 hex digits from the OS's randomness.
fn period_id() -> Result<String> {
    let mut buf = [0u8; 16];
    getrandom::fill(&mut buf).map_err(|e| Error::Internal(format!("random: {e}")))?;
    Ok(format!("pp-{}", hex::encode(buf)))
}

/// A stored period's sheet, marked closed.
fn closed_sheet(p: &StoredPeriod) -> Result<PayReport> {
    let mut sheet: PayReport = json(&p.sheet, "sheet")?;
    sheet.closed = Some(Closed {
        period: p.period_id.clone(),
        closed_by: p.closed_by.clone(),
        closed_at: millis(p.closed_at),
        left_out: json(&p.left_out, "left_out")?,
        pins: json(&p.pins, "pins")?,
        paid: match (&p.paid_by, p.paid_at, &p.paid_reference) {
            (Some(by), Some(at), Some(reference)) => Some(Payment {
                paid_by: by.clone(),
                paid_at: millis(at),
                reference: reference.clone(),
            }),
            _ => None,
        },
    });
    Ok(sheet)
}

fn site_id(site: &str) -> Result<SiteId> {
    SiteId::new(site).map_err(|e| Error::BadRequest(e.to_string()))
}

/// The approved versions of `from ..= to` as pins.
fn pins(store: &mut Store, site: &str, from: NaiveDate, to: NaiveDate) -> Result<Vec<Pin>> {
    Ok(store
        .approved_heads(&site_id(site)?, from, to)?
        .into_iter()
        .map(|(date, heads)| Pin { date, heads })
        .collect())
}

/// The corrections to closed periods of `site`/`crew` ending before `from` not yet carried by a
/// closed period, per period and worker.
fn carried(auth: &AuthDb, store: &mut Store, site: &str, crew: &str, from: NaiveDate) -> Result<Vec<Adjustment>> {
    let earlier = auth.pay_periods_before(site, crew, &from.to_string())?;
    if earlier.is_empty() {
        return Ok(Vec::new());
    }
    // What closed periods (any of the site and crew) already carried, by period and worker.
    let mut paid_for: BTreeMap<(String, String), [i64; 8]> = BTreeMap::new();
    for p in auth.pay_periods_before(site, crew, "9999-12-31")? {
        let sheet: PayReport = json(&p.sheet, "sheet")?;
        for a in sheet.adjustments {
            let sums = paid_for.entry((a.period.clone(), a.worker.clone())).or_default();
            let diffs = [
                a.work_days_centi,
                a.hours_min,
                a.overtime_min,
                a.day_pay_fen,
                a.overtime_pay_fen,
                a.piece_pay_fen,
                a.advances_fen,
                a.net_fen,
            ];
            for (s, d) in sums.iter_mut().zip(diffs) {
                *s += d;
            }
        }
    }
    let mut out = Vec::new();
    for p in earlier {
        let closed = closed_sheet(&p)?;
        let (pf, pt) = (closed.from, closed.to);
        let now = pay_report(store, site, crew, pf, pt)?;
        let now_pins = pins(store, site, pf, pt)?;
        let was: BTreeMap<NaiveDate, &Vec<String>> = closed
            .closed
            .as_ref()
            .map(|c| c.pins.iter().map(|p| (p.date, &p.heads)).collect())
            .unwrap_or_default();
        let is: BTreeMap<NaiveDate, &Vec<String>> = now_pins.iter().map(|p| (p.date, &p.heads)).collect();
        let days: Vec<NaiveDate> = pf
            .iter_days()
            .take_while(|d| *d <= pt)
            .filter(|d| was.get(d) != is.get(d))
            .collect();
        let mut workers: BTreeMap<String, (String, [i64; 8], [i64; 8])> = BTreeMap::new();
        for l in &closed.workers {
            let e = workers.entry(l.worker.clone()).or_default();
            e.0 = l.name.clone();
            e.1 = figures(l).map(|(_, v)| v);
        }
        for l in &now.workers {
            let e = workers.entry(l.worker.clone()).or_default();
            e.0 = l.name.clone();
            e.2 = figures(l).map(|(_, v)| v);
        }
        let names = figures(&now.total).map(|(n, _)| n);
        for (worker, (name, then, now)) in workers {
            let already = paid_for
                .get(&(p.period_id.clone(), worker.clone()))
                .copied()
                .unwrap_or_default();
            let d: Vec<i64> = (0..8).map(|i| now[i] - then[i] - already[i]).collect();
            if d.iter().all(|x| *x == 0) {
                continue;
            }
            out.push(Adjustment {
                period: p.period_id.clone(),
                from: pf,
                to: pt,
                worker,
                name,
                fields: names
                    .iter()
                    .zip(&d)
                    .filter(|(_, x)| **x != 0)
                    .map(|(n, _)| (*n).to_string())
                    .collect(),
                days: days.clone(),
                work_days_centi: d[0],
                hours_min: d[1],
                overtime_min: d[2],
                day_pay_fen: d[3],
                overtime_pay_fen: d[4],
                piece_pay_fen: d[5],
                advances_fen: d[6],
                net_fen: d[7],
            });
        }
    }
    Ok(out)
}

/// Adds the adjustments to the sheet: each worker's `adjustment_fen` and net, a line for a worker
/// with nothing else in the range, and the totals.
fn apply(store: &mut Store, report: &mut PayReport, adjustments: Vec<Adjustment>) -> Result<()> {
    if adjustments.is_empty() {
        return Ok(());
    }
    let roster = store.roster(&site_id(&report.site)?)?;
    for a in &adjustments {
        let i = match report.workers.iter().position(|l| l.worker == a.worker) {
            Some(i) => i,
            None => {
                let mut l = super::line(
                    a.worker.clone(),
                    a.name.clone(),
                    &sitesync_core::pay::PayAmounts::default(),
                    sitesync_core::signoff::SignoffState::Unsigned,
                );
                l.bank_account = WorkerId::new(&a.worker)
                    .ok()
                    .and_then(|w| roster.worker(&w).map(|w| w.bank_account().masked()))
                    .unwrap_or_default();
                report.workers.push(l);
                report.workers.sort_by(|x, y| x.worker.cmp(&y.worker));
                report
                    .workers
                    .iter()
                    .position(|l| l.worker == a.worker)
                    .unwrap_or_default()
            }
        };
        let line = &mut report.workers[i];
        line.adjustment_fen = line.adjustment_fen.saturating_add(a.net_fen);
        line.net_fen = line.net_fen.saturating_add(a.net_fen);
        report.total.adjustment_fen = report.total.adjustment_fen.saturating_add(a.net_fen);
        report.total.net_fen = report.total.net_fen.saturating_add(a.net_fen);
    }
    report.adjustments = adjustments;
    Ok(())
}

/// The sheet of `crew` over `from ..= to`: the stored sheet when the range is exactly a closed
/// period, else computed from the approved days now, with the corrections to earlier closed
/// periods carried.
pub fn sheet(
    auth: &AuthDb,
    store: &mut Store,
    site: &str,
    crew: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<PayReport> {
    if let Some(p) = auth.pay_period_of(site, crew, &from.to_string(), &to.to_string())? {
        return closed_sheet(&p);
    }
    let mut report = pay_report(store, site, crew, from, to)?;
    let adjustments = carried(auth, store, site, crew, from)?;
    apply(store, &mut report, adjustments)?;
    Ok(report)
}

/// Closes the period of `crew` over `from ..= to` (see the module doc): the closed sheet, and
/// whether it was closed by this call (false: it was closed already).
#[allow(clippy::too_many_arguments, reason = "the request's fields, named")]
pub fn close(
    auth: &AuthDb,
    store: &mut Store,
    who: &Principal,
    site: &str,
    crew: &str,
    from: NaiveDate,
    to: NaiveDate,
    force: bool,
) -> Result<(PayReport, bool)> {
    if let Some(p) = auth.pay_period_of(site, crew, &from.to_string(), &to.to_string())? {
        return Ok((closed_sheet(&p)?, false));
    }
    let report = sheet(auth, store, site, crew, from, to)?;
    if !report.unapproved.is_empty() && !force {
        return Err(PeriodError::Unapproved(report.unapproved.clone()).into());
    }
    let stored = StoredPeriod {
        period_id: period_id()?,
        org_id: who.org_id.clone(),
        site_id: site.to_string(),
        crew_id: report.crew.clone(),
        from_date: from.to_string(),
        to_date: to.to_string(),
        sheet: to_json(&report)?,
        pins: to_json(&pins(store, site, from, to)?)?,
        left_out: to_json(&report.unapproved)?,
        closed_by: who.user_name.clone(),
        closed_at: Utc::now().timestamp_millis(),
        paid_by: None,
        paid_at: None,
        paid_reference: None,
    };
    match auth.store_pay_period(&stored)? {
        Stored::New(p) => Ok((closed_sheet(&p)?, true)),
        Stored::Existing(p) => Ok((closed_sheet(&p)?, false)),
        Stored::Overlaps(p) => Err(PeriodError::Overlaps {
            period: p.period_id,
            from: p.from_date,
            to: p.to_date,
        }
        .into()),
    }
}

/// A payment reference as typed, trimmed: 1 to 200 characters, no control characters.
pub fn check_reference(reference: &str) -> Result<String> {
    let reference = reference.trim();
    if reference.is_empty() || reference.chars().count() > 200 || reference.chars().any(char::is_control) {
        return Err(Error::BadRequest(
            "reference: 1 to 200 characters, no control characters".into(),
        ));
    }
    Ok(reference.to_string())
}

/// Records the payment of a closed period (see the module doc) and answers its sheet.
pub fn mark_paid(auth: &AuthDb, id: &str, who: &Principal, reference: &str) -> Result<PayReport> {
    match auth.mark_pay_period_paid(id, &who.user_name, reference)? {
        Paid::Recorded(p) => closed_sheet(&p),
        Paid::AlreadyPaid(p) => Err(PeriodError::AlreadyPaid {
            period: p.period_id,
            reference: p.paid_reference.unwrap_or_default(),
        }
        .into()),
        Paid::Unknown => Err(Error::NotFound(format!("pay period {id}"))),
    }
}

/// A column of the bank payment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BankColumn {
    /// The worker's name.
    Name,
    /// The whole account number.
    Account,
    /// The bank's name.
    Bank,
    /// The net pay, in yuan.
    Amount,
    /// `工资 {from}~{to}`.
    Remark,
    /// The worker's id.
    Worker,
}

impl BankColumn {
    /// Parses `name,account,amount,remark` (any order, no repeats).
    pub fn parse_list(s: &str) -> Result<Vec<BankColumn>> {
        let mut out = Vec::new();
        for c in s.split(',').map(str::trim) {
            let col = match c {
                "name" => BankColumn::Name,
                "account" => BankColumn::Account,
                "bank" => BankColumn::Bank,
                "amount" => BankColumn::Amount,
                "remark" => BankColumn::Remark,
                "worker" => BankColumn::Worker,
                other => {
                    return Err(Error::BadRequest(format!(
                        "unknown bank file column {other:?} (name, account, bank, amount, remark, worker)"
                    )));
                }
            };
            if out.contains(&col) {
                return Err(Error::BadRequest(format!("bank file column {c:?} named twice")));
            }
            out.push(col);
        }
        Ok(out)
    }

    fn header(self) -> &'static str {
        match self {
            BankColumn::Name => "户名 name",
            BankColumn::Account => "账号 account",
            BankColumn::Bank => "开户行 bank",
            BankColumn::Amount => "金额 amount",
            BankColumn::Remark => "用途 remark",
            BankColumn::Worker => "工号 worker",
        }
    }
}

/// The bank payment file of a closed period: one row per worker with a net above zero, the
/// columns asked for; the account number whole.
pub fn bank_file(
    auth: &AuthDb,
    store: &mut Store,
    site: &str,
    crew: &str,
    from: NaiveDate,
    to: NaiveDate,
    columns: &[BankColumn],
) -> Result<Table> {
    let Some(p) = auth.pay_period_of(site, crew, &from.to_string(), &to.to_string())? else {
        return Err(PeriodError::NotClosed {
            site: site.to_string(),
            crew: crew.to_string(),
            from,
            to,
        }
        .into());
    };
    let sheet = closed_sheet(&p)?;
    let roster = store.roster(&site_id(site)?)?;
    // The one place account numbers leave the server whole: opened from their sealed copies.
    let secret = auth.site_pii_secret(site)?;
    let rows = sheet
        .workers
        .iter()
        .filter(|l| l.net_fen > 0)
        .map(|l| {
            let worker = WorkerId::new(&l.worker).ok().and_then(|w| roster.worker(&w).cloned());
            let bank = worker.as_ref().map(|w| w.bank_account().clone()).unwrap_or_default();
            let number = bank
                .open(&secret)
                .map_err(|e| Error::Internal(format!("worker {}'s bank account: {e}", l.worker)))?;
            Ok(columns
                .iter()
                .map(|c| match c {
                    BankColumn::Name => Cell::Text(l.name.clone()),
                    BankColumn::Account => Cell::Text(number.clone()),
                    BankColumn::Bank => Cell::Text(bank.bank_name().to_string()),
                    BankColumn::Amount => Cell::Fen(l.net_fen),
                    BankColumn::Remark => Cell::Text(format!("工资 {}~{}", sheet.from, sheet.to)),
                    BankColumn::Worker => Cell::Text(l.worker.clone()),
                })
                .collect())
        })
        .collect::<Result<_>>()?;
    Ok(Table {
        title: format!("代发 {} {} {}~{}", sheet.site, sheet.crew, sheet.from, sheet.to),
        header: columns.iter().map(|c| c.header().to_string()).collect(),
        rows,
        totals: None,
    })
}
