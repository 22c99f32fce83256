//! What a crew is owed for a period (工资表): day-labor pay, piecework pay (包工) and advances (借支)
//! from approved days, per worker. Pure: the store gathers the approved days
//! ([`crate::Store::pay_sheet`]), this module computes.
//!
//! Decisions (2026-11-30, issue #20, shared with `/work/wages-design.md`):
//! - Only approved days count, as approved: a day amended after its approval counts as the approval
//!   pinned it, like every cost figure. Days of the range that hold anything and are not approved are
//!   listed in [`PaySheet::unapproved`], so nobody mistakes a partial sheet for a whole one.
//! - Day pay: each day-labor line's cost is split into a day part, `work_days × day_rate`
//!   rounded half up to the fen, and an overtime part, the line's cost minus the day part; the two
//!   sum to the line cost every labor report shows, to the fen. Piecework lines count their
//!   work-days, hours and overtime on the sheet but are paid by quantity, not by the day.
//! - Piecework pay is tied to progress lines: an approved progress line of work item I on day D is
//!   paid out to that day's piecework lines on I (every crew's), its quantity split by the lines'
//!   work-days (equally if none has work-days). Each line's share is priced at the piece rate in
//!   force for its worker ([`PieceRate`]: the worker's own, else the crew's, else the site's). The
//!   progress line's pay is the exact sum rounded half away from zero once, and shared out by largest
//!   remainder (ties to the earlier worker id): the workers' piece pay for a progress line adds up to
//!   that line's pay to the fen, so piecework pay and progress can never disagree. A piecework line
//!   with no rate in force is unpaid and listed in [`PaySheet::unpriced`].
//! - A worker is counted under [`resolve_worker`] (one place, so merged workers from the field count
//!   once, under the worker they were merged into) and in the crew the roster gives them now.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{CrewId, WorkItemId, WorkerId};
use crate::labor::{LaborKind, LaborLine, ProgressLine};
use crate::roster::Roster;
use crate::units::{Fen, checked_line_cost};

/// The record-id prefix of an advance in a day document's `day` table.
pub(crate) const ADVANCE_PREFIX: &str = "adv-";

/// The record-id prefix of a piece rate in a site document's `info` table.
pub(crate) const PIECE_RATE_PREFIX: &str = "piece-rate:";

/// The largest single advance, in fen: ¥1,000,000. Larger is a typing error or an attack.
pub const MAX_ADVANCE_FEN: i64 = 100_000_000;

/// The longest range one sheet covers, in days: a year and a day.
pub const MAX_PERIOD_DAYS: i64 = 366;

/// Money handed to a worker ahead of pay (借支), entered on the day it was handed over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Advance {
    /// Record id, `adv-` and 32 hex digits.
    pub id: String,
    /// Who received it.
    pub worker: WorkerId,
    /// How much; more than zero.
    pub amount: Fen,
    /// Who handed the money over (free text: a name, "head office", "bank").
    pub paid_by: String,
    /// Free text.
    pub note: String,
    /// Who entered it: the writer, as the server checks.
    pub entered_by: String,
    /// When it was entered.
    pub at: DateTime<Utc>,
}

/// What a piece rate applies to, narrowest first when rates are looked up.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "scope", content = "id")]
pub enum PieceScope {
    /// Every worker on the site.
    Site,
    /// Every worker of one crew.
    Crew(CrewId),
    /// One worker.
    Worker(WorkerId),
}

/// A unit price for a work item (包工单价): fen per ONE unit of the work item's unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PieceRate {
    /// The work item priced.
    pub work_item: WorkItemId,
    /// Who the price is for.
    pub scope: PieceScope,
    /// Fen per unit of the work item.
    pub price: Fen,
    /// The first day the price applies (`None`: always). Before it, a broader rate applies, if any.
    pub from: Option<NaiveDate>,
}

impl PieceRate {
    /// The record key: `{work_item}`, `{work_item}@{crew}` or `{work_item}@{worker}` (one price per
    /// scope; setting it again replaces it).
    pub fn key(&self) -> String {
        match &self.scope {
            PieceScope::Site => self.work_item.to_string(),
            PieceScope::Crew(c) => format!("{}@{c}", self.work_item),
            PieceScope::Worker(w) => format!("{}@{w}", self.work_item),
        }
    }
}

/// One approved day as the approval pinned it: its lines (deleted ones left out) and advances.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApprovedDay {
    /// The day.
    pub date: NaiveDate,
    /// Labor lines shown on the approved version.
    pub labor: Vec<LaborLine>,
    /// Progress lines shown on the approved version.
    pub progress: Vec<ProgressLine>,
    /// Advances of the approved version.
    pub advances: Vec<Advance>,
    /// Ids of those its worker has not confirmed as they stand (never confirmed, changed since he
    /// confirmed, or disputed): deductions that lack his signature.
    pub unconfirmed_advances: std::collections::BTreeSet<String>,
}

/// One worker's line on the pay sheet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayLine {
    /// The worker (resolved: a merged worker's days count under the target).
    pub worker: WorkerId,
    /// The worker's name on the roster.
    pub name: String,
    /// What the worker worked, earned and was advanced (flat in JSON, beside `worker`).
    #[serde(flatten)]
    pub pay: PayAmounts,
}

/// The figures of a pay-sheet line or of its total. Money in fen, work-days in hundredths, time in
/// minutes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PayAmounts {
    /// Work-days, day labor and piecework.
    pub work_days_centi: i64,
    /// Hours worked.
    pub hours_min: i64,
    /// Overtime.
    pub overtime_min: i64,
    /// Day-labor pay for the work-days.
    pub day_pay_fen: i64,
    /// Day-labor pay for overtime.
    pub overtime_pay_fen: i64,
    /// Piecework pay.
    pub piece_pay_fen: i64,
    /// Advances handed over in the period.
    pub advances_fen: i64,
    /// The part of `advances_fen` whose worker has not confirmed it as it stands (not confirmed,
    /// changed since confirmed, or disputed): deducted without his signature.
    #[serde(default)]
    pub advances_unconfirmed_fen: i64,
    /// How many advances that is.
    #[serde(default)]
    pub advances_unconfirmed: i64,
    /// Day + overtime + piece − advances; negative when advances exceed what was earned.
    pub net_fen: i64,
}

/// A piecework line no rate was in force for: its share of the quantity is unpaid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unpriced {
    /// The day.
    pub date: NaiveDate,
    /// The worker.
    pub worker: WorkerId,
    /// The work item.
    pub work_item: WorkItemId,
}

/// A crew's pay sheet over a date range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaySheet {
    /// The site.
    pub site: String,
    /// The crew.
    pub crew: CrewId,
    /// First day, inclusive.
    pub from: NaiveDate,
    /// Last day, inclusive.
    pub to: NaiveDate,
    /// One line per worker with anything in the period, by worker id.
    pub workers: Vec<PayLine>,
    /// The column sums.
    pub total: PayAmounts,
    /// Days of the range that hold lines or advances and are not approved: not counted.
    pub unapproved: Vec<NaiveDate>,
    /// Piecework lines of the crew without a piece rate in force: counted for time, not paid.
    pub unpriced: Vec<Unpriced>,
}

/// The worker a line or advance counts under: a worker head office merged into another counts as
/// that one ([`Roster::resolve_worker`]), once.
pub fn resolve_worker(roster: &Roster, id: &WorkerId) -> WorkerId {
    roster.resolve_worker(id)
}

/// The rate in force for `worker` (of `crew`) on `work_item` on `date`: the worker's own, else the
/// crew's, else the site's, each only from its `from` date on.
pub fn rate_for<'a>(
    rates: &'a [PieceRate],
    work_item: &WorkItemId,
    worker: &WorkerId,
    crew: Option<&CrewId>,
    date: NaiveDate,
) -> Option<&'a PieceRate> {
    let in_force = |scope: &PieceScope| {
        rates
            .iter()
            .find(|r| &r.work_item == work_item && &r.scope == scope && r.from.is_none_or(|f| f <= date))
    };
    in_force(&PieceScope::Worker(worker.clone()))
        .or_else(|| crew.and_then(|c| in_force(&PieceScope::Crew(c.clone()))))
        .or_else(|| in_force(&PieceScope::Site))
}

/// Day pay of one day-labor line as (day part, overtime part); they sum to the line's cost.
pub fn day_labor_pay(line: &LaborLine) -> (i64, i64) {
    let day = (i128::from(line.work_days.centi()) * i128::from(line.day_rate.fen()) + 50) / 100;
    let day = i64::try_from(day).unwrap_or(i64::MAX);
    let cost = checked_line_cost(line.work_days, line.day_rate, line.overtime, line.overtime_rate)
        .map(Fen::fen)
        .unwrap_or(i64::MAX);
    (day, cost.saturating_sub(day))
}

/// Shares `total` out over `parts` (numerators over the common `denominator`) by largest remainder,
/// ties to the earlier part. `total` is at least the sum of the floors and at most that plus the
/// number of parts, as rounding the exact sum makes it.
fn largest_remainder(parts: &[i128], denominator: i128, total: i128) -> Vec<i128> {
    let mut out: Vec<i128> = parts.iter().map(|n| n / denominator).collect();
    let mut left = total - out.iter().sum::<i128>();
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by(|a, b| (parts[*b] % denominator).cmp(&(parts[*a] % denominator)).then(a.cmp(b)));
    for i in order {
        if left <= 0 {
            break;
        }
        out[i] += 1;
        left -= 1;
    }
    out
}

/// The piece pay of one approved day, per labor line id: every progress line shared out over that
/// day's piecework lines on its work item (see the module doc). Lines without a rate come back in
/// the second list.
pub fn piece_pay_of_day(
    roster: &Roster,
    rates: &[PieceRate],
    day: &ApprovedDay,
) -> (BTreeMap<String, i64>, Vec<Unpriced>) {
    let mut pay = BTreeMap::new();
    let mut unpriced = Vec::new();
    for p in &day.progress {
        let mut lines: Vec<&LaborLine> = day
            .labor
            .iter()
            .filter(|l| l.kind == LaborKind::Piecework && l.work_item == p.work_item)
            .collect();
        if lines.is_empty() {
            continue;
        }
        lines.sort_by(|a, b| (&a.worker, &a.id).cmp(&(&b.worker, &b.id)));
        let weights: Vec<i128> = if lines.iter().all(|l| l.work_days.centi() == 0) {
            vec![1; lines.len()]
        } else {
            lines.iter().map(|l| i128::from(l.work_days.centi())).collect()
        };
        let weight_sum: i128 = weights.iter().sum();
        let mut parts = Vec::with_capacity(lines.len());
        for (l, w) in lines.iter().zip(&weights) {
            let worker = resolve_worker(roster, &l.worker);
            let crew = roster.worker(&worker).map(|w| &w.crew);
            let price = match rate_for(rates, &p.work_item, &worker, crew, day.date) {
                Some(r) => i128::from(r.price.fen()),
                None => {
                    unpriced.push(Unpriced {
                        date: day.date,
                        worker,
                        work_item: p.work_item.clone(),
                    });
                    0
                }
            };
            parts.push(i128::from(p.quantity.milli()) * w * price);
        }
        let denominator = 1000 * weight_sum;
        // The exact sum is not negative: half away from zero is half up.
        let total = (parts.iter().sum::<i128>() * 2 + denominator) / (2 * denominator);
        for (l, fen) in lines.iter().zip(largest_remainder(&parts, denominator, total)) {
            *pay.entry(l.id.to_string()).or_insert(0) += i64::try_from(fen).unwrap_or(i64::MAX);
        }
    }
    (pay, unpriced)
}

/// The pay sheet of `crew` over `from ..= to` from the approved days given (any order; days outside
/// the range are ignored), with `unapproved` the range's days that were left out.
pub fn sheet(
    roster: &Roster,
    rates: &[PieceRate],
    crew: &CrewId,
    from: NaiveDate,
    to: NaiveDate,
    days: &[ApprovedDay],
    unapproved: Vec<NaiveDate>,
) -> PaySheet {
    let mut by_worker: BTreeMap<WorkerId, PayLine> = BTreeMap::new();
    let mut unpriced_out = Vec::new();
    let of_crew = |w: &WorkerId| roster.worker(w).is_some_and(|w| &w.crew == crew);
    let line_of = |w: &WorkerId| -> PayLine {
        PayLine {
            worker: w.clone(),
            name: roster.worker(w).map(|w| w.name.clone()).unwrap_or_default(),
            pay: PayAmounts::default(),
        }
    };
    let mut sorted: Vec<&ApprovedDay> = days.iter().filter(|d| (from..=to).contains(&d.date)).collect();
    sorted.sort_by_key(|d| d.date);
    for day in sorted {
        let (piece, unpriced) = piece_pay_of_day(roster, rates, day);
        unpriced_out.extend(unpriced.into_iter().filter(|u| of_crew(&u.worker)));
        for l in &day.labor {
            let worker = resolve_worker(roster, &l.worker);
            if !of_crew(&worker) {
                continue;
            }
            let line = &mut by_worker.entry(worker.clone()).or_insert_with(|| line_of(&worker)).pay;
            line.work_days_centi += l.work_days.centi();
            line.hours_min += l.hours.minutes();
            line.overtime_min += l.overtime.minutes();
            if l.kind == LaborKind::DayLabor {
                let (day_part, overtime_part) = day_labor_pay(l);
                line.day_pay_fen = line.day_pay_fen.saturating_add(day_part);
                line.overtime_pay_fen = line.overtime_pay_fen.saturating_add(overtime_part);
            }
            line.piece_pay_fen = line
                .piece_pay_fen
                .saturating_add(piece.get(l.id.as_str()).copied().unwrap_or(0));
        }
        for a in &day.advances {
            let worker = resolve_worker(roster, &a.worker);
            if !of_crew(&worker) {
                continue;
            }
            let line = &mut by_worker.entry(worker.clone()).or_insert_with(|| line_of(&worker)).pay;
            line.advances_fen = line.advances_fen.saturating_add(a.amount.fen());
            if day.unconfirmed_advances.contains(&a.id) {
                line.advances_unconfirmed_fen = line.advances_unconfirmed_fen.saturating_add(a.amount.fen());
                line.advances_unconfirmed += 1;
            }
        }
    }
    let mut total = PayAmounts::default();
    let workers: Vec<PayLine> = by_worker
        .into_values()
        .map(|mut line| {
            let l = &mut line.pay;
            l.net_fen = l
                .day_pay_fen
                .saturating_add(l.overtime_pay_fen)
                .saturating_add(l.piece_pay_fen)
                .saturating_sub(l.advances_fen);
            total.work_days_centi += l.work_days_centi;
            total.hours_min += l.hours_min;
            total.overtime_min += l.overtime_min;
            total.day_pay_fen = total.day_pay_fen.saturating_add(l.day_pay_fen);
            total.overtime_pay_fen = total.overtime_pay_fen.saturating_add(l.overtime_pay_fen);
            total.piece_pay_fen = total.piece_pay_fen.saturating_add(l.piece_pay_fen);
            total.advances_fen = total.advances_fen.saturating_add(l.advances_fen);
            total.advances_unconfirmed_fen = total
                .advances_unconfirmed_fen
                .saturating_add(l.advances_unconfirmed_fen);
            total.advances_unconfirmed += l.advances_unconfirmed;
            total.net_fen = total.net_fen.saturating_add(l.net_fen);
            line
        })
        .collect();
    PaySheet {
        site: roster.site.id.to_string(),
        crew: crew.clone(),
        from,
        to,
        workers,
        total,
        unapproved,
        unpriced: unpriced_out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_remainder_loses_no_fen() {
        // 10 fen over three equal shares of 10/3 each: 4, 3, 3 (ties to the first).
        assert_eq!(largest_remainder(&[10, 10, 10], 3, 10), vec![4, 3, 3]);
        // Remainders 2/3 and 1/3 and 0: the single leftover fen goes to the largest remainder.
        assert_eq!(largest_remainder(&[5, 4, 3], 3, 4), vec![2, 1, 1]);
        let parts = [7i128, 11, 13, 17];
        let d = 9;
        let total = (parts.iter().sum::<i128>() * 2 + d) / (2 * d);
        assert_eq!(largest_remainder(&parts, d, total).iter().sum::<i128>(), total);
    }
}
