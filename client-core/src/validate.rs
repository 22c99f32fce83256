//! What a record may hold: the checks an honest phone makes before it writes, and the server makes
//! before it stores what a phone sent (issue #13, "trust in the data").
//!
//! Every function here is pure: plain records in, a typed [`Invalid`] naming the field out. The
//! phone's store calls them on its write path (so bad input is refused before anything is written)
//! and the server calls them on every record a pushed change touched (`validate/document.rs`), so
//! a crafted client that skips the phone's checks gets the same answer, for that document only.
//!
//! Decisions (2026-11-30):
//! - Bounds are generous enough that no real site meets them and tight enough that every sum of
//!   money fits in an `i64` with room to spare: [`MAX_RATE_FEN`] makes the dearest possible line
//!   3 days × ¥100,000 + 24 h × ¥100,000 = ¥2.7 million, so 3.4 × 10¹⁰ such lines still sum
//!   without overflow. Arithmetic on money is checked anyway ([`crate::units::checked_line_cost`]).
//! - A log date is within 2000-01-01 ..= today + [`DAYS_AHEAD`] days, "today" in UTC. UTC rather
//!   than the site's zone because the check must not need the roster (a document id is checked
//!   before anything is loaded), and a year of slack covers every zone and a phone's clock that is
//!   a few days out. The lower bound is fixed, so a record valid once stays valid.
//! - Plan dates (work items, OKR cycles, due dates) may lie years ahead; they are checked against a
//!   fixed window, [`EARLIEST_DATE`] ..= [`LATEST_PLAN_DATE`].
//!
//! Length: a third of the file is its tests, one per refused value, next to the rule they prove.

pub(crate) mod document;

use chrono::{Datelike, NaiveDate, Utc};

use crate::ids::{LineId, OrgId, SiteId};
use crate::labor::{Delay, LaborLine, ProgressLine};
use crate::okr::{CheckIn, Cycle, KeyResult, Metric};
use crate::roster::{Roster, WorkItem, Worker};
use crate::units::{Minutes, WorkDays, checked_line_cost};

/// The earliest date any record may carry: nothing on a phone predates the system by decades.
pub const EARLIEST_DATE: NaiveDate = match NaiveDate::from_ymd_opt(2000, 1, 1) {
    Some(d) => d,
    None => unreachable!(),
};

/// The latest date a plan (work item, OKR cycle, due date) may name.
pub const LATEST_PLAN_DATE: NaiveDate = match NaiveDate::from_ymd_opt(2099, 12, 31) {
    Some(d) => d,
    None => unreachable!(),
};

/// How far past today (UTC) a day log may be dated: a year and a day, for planned rest days and
/// every time zone.
pub const DAYS_AHEAD: u64 = 366;

/// The highest day rate, and the highest overtime rate per hour, in fen: ¥100,000. A skilled
/// worker earned ¥300–1,000 a day in 2026; a hundred times that is a typing error or an attack,
/// and at this bound no sum of lines can overflow (see the module doc).
pub const MAX_RATE_FEN: i64 = 10_000_000;

/// The highest budget of one work item, in fen: ¥100 billion, more than the largest projects.
pub const MAX_BUDGET_FEN: i64 = 10_000_000_000_000;

/// The highest quantity of one work item's plan or one day's progress, in thousandths: a thousand
/// billion units (m³, t, m² …).
pub const MAX_QUANTITY_MILLI: i64 = 1_000_000_000_000_000;

/// The largest magnitude of a key result's start, target or check-in value, in thousandths: a
/// thousand billion of its unit (yuan, days, percent …), so progress arithmetic stays exact in f64.
pub const MAX_OKR_MILLI: i64 = 1_000_000_000_000_000;

/// The highest weight of a key result within its objective.
pub const MAX_WEIGHT: i64 = 100;

/// What the checks of pushed changes need to know beyond the document and the store: which org a
/// site belongs to, and what the author of the changes may read. The server answers from its
/// credential database, per pushing device.
pub trait Tenancy {
    /// The org of a site; `None` if no org holds it.
    fn site_org(&self, site: &SiteId) -> Option<OrgId>;
    /// Whether the author of the changes may read the site.
    fn may_read(&self, site: &SiteId) -> bool;
    /// The personal-data secret of the site's org, where the checker holds it (the server): then
    /// a sealed ID card is opened and the worker's id and masked card checked against it, so a
    /// phone cannot name one person with another's id. Phones hold none (`None`): they check
    /// shapes only.
    fn pii_secret(&self, _site: &SiteId) -> Option<crate::pii::OrgPiiSecret> {
        None
    }
}

/// Why a record may not be stored. Each variant names the field, as the API and the wire name it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub enum Invalid {
    /// A field is missing, of the wrong type, or does not parse (an id with a space, a date
    /// `2026-02-30`, a kind nobody knows).
    #[error("malformed {field}: {reason}")]
    Malformed {
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A number outside what the domain allows (4 work-days, 25 hours, a ¥1 million day rate).
    #[error("{field} out of range: {reason}")]
    Range {
        field: &'static str,
        /// The value and the range, in a sentence.
        reason: String,
    },
    /// A date outside the sane window.
    #[error("{field} out of range: {reason}")]
    Date {
        field: &'static str,
        /// The date and the window.
        reason: String,
    },
    /// A worker, work item or crew that is not on the site's roster.
    #[error("{field} {id:?} is not on the site's roster")]
    NotOnRoster {
        /// The field (`worker`, `work_item`, `crew`).
        field: &'static str,
        /// The id that was not found.
        id: String,
    },
    /// A site that is not the org's, or one the author may not read.
    #[error("{field} names site {site:?}, which is not readable here")]
    Foreign {
        /// The field (`metric`, `site`).
        field: &'static str,
        /// The site named.
        site: String,
    },
    /// A record whose id is not the one derived from what it is.
    #[error("line {record:?} should have the id {expected:?}")]
    WrongId {
        /// The id the record has.
        record: String,
        /// The id derived from its site, date, worker and work item.
        expected: String,
    },
    /// Money that does not fit in 64 bits.
    #[error("{field} overflows")]
    Overflow { field: &'static str },
    /// A change to the document's layout (its root, which only the genesis writes).
    #[error("the document's layout cannot change: {reason}")]
    Layout {
        /// What the change did.
        reason: String,
    },
}

impl Invalid {
    /// The field the record was refused for.
    pub fn field(&self) -> &'static str {
        match self {
            Invalid::Malformed { field, .. }
            | Invalid::Range { field, .. }
            | Invalid::Date { field, .. }
            | Invalid::NotOnRoster { field, .. }
            | Invalid::Foreign { field, .. }
            | Invalid::Overflow { field } => field,
            Invalid::WrongId { .. } => "id",
            Invalid::Layout { .. } => "document",
        }
    }

    /// Whether the record does not even decode (as opposed to decoding to values out of bounds).
    pub fn is_malformed(&self) -> bool {
        matches!(self, Invalid::Malformed { .. } | Invalid::Layout { .. })
    }

    fn range(field: &'static str, reason: impl Into<String>) -> Invalid {
        Invalid::Range {
            field,
            reason: reason.into(),
        }
    }
}

/// A log date must lie within 2000-01-01 ..= today (UTC) + [`DAYS_AHEAD`] days.
pub fn day_date(date: NaiveDate) -> Result<(), Invalid> {
    day_date_on(date, Utc::now().date_naive())
}

/// [`day_date`] as of `today`.
pub fn day_date_on(date: NaiveDate, today: NaiveDate) -> Result<(), Invalid> {
    let latest = today
        .checked_add_days(chrono::Days::new(DAYS_AHEAD))
        .unwrap_or(NaiveDate::MAX);
    if date < EARLIEST_DATE || date > latest {
        return Err(Invalid::Date {
            field: "date",
            reason: format!("{date} is not within {EARLIEST_DATE} ..= {latest}"),
        });
    }
    Ok(())
}

/// Whether a date can be a stored log's date at all, whatever today is: four-digit years from
/// [`EARLIEST_DATE`]. Projections skip documents dated outside it (see `store/projection.rs`).
pub fn storable_date(date: NaiveDate) -> bool {
    date >= EARLIEST_DATE && date.year() <= 9999
}

/// A plan date (work item start and end, OKR cycle bounds, due dates) within the fixed window.
pub fn plan_date(field: &'static str, date: NaiveDate) -> Result<(), Invalid> {
    if !(EARLIEST_DATE..=LATEST_PLAN_DATE).contains(&date) {
        return Err(Invalid::Date {
            field,
            reason: format!("{date} is not within {EARLIEST_DATE} ..= {LATEST_PLAN_DATE}"),
        });
    }
    Ok(())
}

/// A document id that may be stored: a day log's date within [`day_date`]'s window. Checked where
/// an id arrives from the network, before anything is loaded.
pub fn doc_id(id: &crate::ids::DocId) -> Result<(), Invalid> {
    match id {
        crate::ids::DocId::Day(_, date) => day_date(*date),
        _ => Ok(()),
    }
}

pub(crate) fn rate(field: &'static str, fen: i64) -> Result<(), Invalid> {
    if !(0..=MAX_RATE_FEN).contains(&fen) {
        return Err(Invalid::range(
            field,
            format!("{fen} fen is not within 0 ..= {MAX_RATE_FEN} (¥100,000)"),
        ));
    }
    Ok(())
}

/// The checks of a labor line that need no roster: ranges, the derived id, a cost that computes.
/// Projections apply these to every stored line (a line that fails is flagged, not summed).
pub fn labor_values(site: &SiteId, date: NaiveDate, line: &LaborLine) -> Result<(), Invalid> {
    let expected = LineId::labor(site, date, &line.worker, &line.work_item);
    if line.id != expected {
        return Err(Invalid::WrongId {
            record: line.id.to_string(),
            expected: expected.to_string(),
        });
    }
    if line.work_days > WorkDays::MAX {
        return Err(Invalid::range(
            "work_days",
            format!("{} is more than 3", line.work_days),
        ));
    }
    if line.hours.minutes() + line.overtime.minutes() > Minutes::DAY.minutes() {
        return Err(Invalid::range(
            "hours",
            format!("{} plus {} overtime is more than 24 hours", line.hours, line.overtime),
        ));
    }
    rate("rate", line.day_rate.fen())?;
    rate("overtime_rate", line.overtime_rate.fen())?;
    checked_line_cost(line.work_days, line.day_rate, line.overtime, line.overtime_rate)
        .ok_or(Invalid::Overflow { field: "cost" })?;
    Ok(())
}

/// A labor line of `site` on `date`: the worker and the work item are on that site's roster (the
/// worker may since have left: a line entered while they were active stays valid), work-days
/// 0–3.00, hours plus overtime at most 24 h, rates within [`MAX_RATE_FEN`], the id derived from
/// (site, date, worker, work item) as [`LineId::labor`] derives it — crew-day copies and amendments
/// derive theirs the same way — and a cost that computes without overflow.
pub fn labor_line(site: &SiteId, date: NaiveDate, line: &LaborLine, roster: &Roster) -> Result<(), Invalid> {
    day_date(date)?;
    on_roster(site, roster)?;
    // A line of a worker head office merged into another (logged offline before the merge was seen)
    // counts under that other worker and stays valid.
    if roster.worker(&roster.resolve_worker(&line.worker)).is_none() {
        return Err(Invalid::NotOnRoster {
            field: "worker",
            id: line.worker.to_string(),
        });
    }
    if roster.work_item(&line.work_item).is_none() {
        return Err(Invalid::NotOnRoster {
            field: "work_item",
            id: line.work_item.to_string(),
        });
    }
    labor_values(site, date, line)
}

/// The checks of a progress line that need no roster: the derived id and the quantity's bound.
pub fn progress_values(site: &SiteId, date: NaiveDate, line: &ProgressLine) -> Result<(), Invalid> {
    let expected = LineId::progress(site, date, &line.work_item);
    if line.id != expected {
        return Err(Invalid::WrongId {
            record: line.id.to_string(),
            expected: expected.to_string(),
        });
    }
    if line.quantity.milli() > MAX_QUANTITY_MILLI {
        return Err(Invalid::range(
            "quantity",
            format!("{} is more than {}", line.quantity, MAX_QUANTITY_MILLI / 1000),
        ));
    }
    Ok(())
}

/// A progress line of `site` on `date`: its work item on the roster, a bounded quantity, and the
/// id [`LineId::progress`] derives.
pub fn progress_line(site: &SiteId, date: NaiveDate, line: &ProgressLine, roster: &Roster) -> Result<(), Invalid> {
    day_date(date)?;
    on_roster(site, roster)?;
    if roster.work_item(&line.work_item).is_none() {
        return Err(Invalid::NotOnRoster {
            field: "work_item",
            id: line.work_item.to_string(),
        });
    }
    progress_values(site, date, line)
}

/// The longest text of a delay, in characters: a paragraph, not a file.
pub const MAX_TEXT_CHARS: usize = 2000;

/// A delay of `site`: some text, not a file's worth, and a work item (if one) on the roster.
pub fn delay(site: &SiteId, d: &Delay, roster: &Roster) -> Result<(), Invalid> {
    on_roster(site, roster)?;
    if d.text.trim().is_empty() {
        return Err(Invalid::range("text", "say what held the work up"));
    }
    if d.text.chars().count() > MAX_TEXT_CHARS {
        return Err(Invalid::range("text", format!("more than {MAX_TEXT_CHARS} characters")));
    }
    if let Some(wi) = &d.work_item
        && roster.work_item(wi).is_none()
    {
        return Err(Invalid::NotOnRoster {
            field: "work_item",
            id: wi.to_string(),
        });
    }
    Ok(())
}

/// An advance of `site` (issue #20): more than zero and at most [`crate::pay::MAX_ADVANCE_FEN`], to a
/// worker on the roster, an id `adv-` and 32 hex digits, and a paragraph of note at most.
pub fn advance(site: &SiteId, a: &crate::pay::Advance, roster: &Roster) -> Result<(), Invalid> {
    on_roster(site, roster)?;
    let hex = a.id.strip_prefix(crate::pay::ADVANCE_PREFIX).unwrap_or_default();
    if !(hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())) {
        return Err(Invalid::Malformed {
            field: "id",
            reason: format!("{:?} is not adv- and 32 hex digits", a.id),
        });
    }
    if !(1..=crate::pay::MAX_ADVANCE_FEN).contains(&a.amount.fen()) {
        return Err(Invalid::range(
            "amount",
            format!(
                "{} fen is not within 1 ..= {} (¥1,000,000)",
                a.amount.fen(),
                crate::pay::MAX_ADVANCE_FEN
            ),
        ));
    }
    if roster.worker(&a.worker).is_none() {
        return Err(Invalid::NotOnRoster {
            field: "worker",
            id: a.worker.to_string(),
        });
    }
    for (field, text) in [("note", &a.note), ("paid_by", &a.paid_by)] {
        if text.chars().count() > MAX_TEXT_CHARS {
            return Err(Invalid::range(field, format!("more than {MAX_TEXT_CHARS} characters")));
        }
    }
    Ok(())
}

/// A piece rate of `site`: a price within [`MAX_RATE_FEN`] per unit, a work item of the site's, a
/// start date (if any) in the plan window. (Whether the crew or worker is on the roster is checked
/// where the roster is at hand, on the phone; the server holds a site document's records to their
/// own shape, as it does workers.)
pub fn piece_rate(site: &SiteId, r: &crate::pay::PieceRate) -> Result<(), Invalid> {
    of_site("work_item", site, r.work_item.as_str())?;
    rate("price", r.price.fen())?;
    if let Some(d) = r.from {
        plan_date("from", d)?;
    }
    Ok(())
}

/// The roster given is the site's own (a caller's mistake otherwise, reported like a stranger).
fn on_roster(site: &SiteId, roster: &Roster) -> Result<(), Invalid> {
    if &roster.site.id != site {
        return Err(Invalid::NotOnRoster {
            field: "site",
            id: site.to_string(),
        });
    }
    Ok(())
}

/// A record id of a site's own (`site-hz-01/wi-1.1`, `site-hz-01/crew-1`).
fn of_site(field: &'static str, site: &SiteId, id: &str) -> Result<(), Invalid> {
    match id.strip_prefix(site.as_str()).and_then(|rest| rest.strip_prefix('/')) {
        Some(rest) if !rest.is_empty() => Ok(()),
        _ => Err(Invalid::Malformed {
            field,
            reason: format!("{id:?} is not an id of site {site}"),
        }),
    }
}

/// A worker on a site's roster: rates within [`MAX_RATE_FEN`].
pub fn worker(w: &Worker) -> Result<(), Invalid> {
    rate("day_rate", w.day_rate.fen())?;
    rate("overtime_rate", w.overtime_rate.fen())
}

/// A work item of a site: plan quantity and budget bounded, plan dates within the plan window and
/// in order. (Its id is conventionally `site/wi-…`; what makes it the site's is being on the site's
/// roster, which is what lines are checked against.)
pub fn work_item(wi: &WorkItem) -> Result<(), Invalid> {
    if wi.planned_quantity.milli() > MAX_QUANTITY_MILLI {
        return Err(Invalid::range(
            "planned_quantity",
            format!("{} is more than {}", wi.planned_quantity, MAX_QUANTITY_MILLI / 1000),
        ));
    }
    if wi.budget.fen() > MAX_BUDGET_FEN {
        return Err(Invalid::range(
            "budget",
            format!("{} is more than ¥100 billion", wi.budget),
        ));
    }
    if let Some(d) = wi.planned_start {
        plan_date("planned_start", d)?;
    }
    if let Some(d) = wi.planned_end {
        plan_date("planned_end", d)?;
    }
    if let (Some(s), Some(e)) = (wi.planned_start, wi.planned_end)
        && e < s
    {
        return Err(Invalid::Date {
            field: "planned_end",
            reason: format!("{e} is before the planned start {s}"),
        });
    }
    Ok(())
}

/// A site's master data: the site record is the document's own, and every worker and work item
/// passes its check.
pub fn roster(site: &SiteId, r: &Roster) -> Result<(), Invalid> {
    if &r.site.id != site {
        return Err(Invalid::Malformed {
            field: "site",
            reason: format!("the master data of {site} names site {}", r.site.id),
        });
    }
    r.workers.iter().try_for_each(worker)?;
    r.work_items.iter().try_for_each(work_item)
}

fn okr_value(field: &'static str, milli: i64) -> Result<(), Invalid> {
    if milli.unsigned_abs() > MAX_OKR_MILLI as u64 {
        return Err(Invalid::range(
            field,
            format!("{milli} thousandths is beyond ±{MAX_OKR_MILLI}"),
        ));
    }
    Ok(())
}

/// An OKR cycle: within the plan window, ending after it starts, reviewed every 1–366 days, with
/// traffic-light thresholds 0 ≤ green ≤ yellow ≤ 100 points.
pub fn cycle(c: &Cycle) -> Result<(), Invalid> {
    plan_date("start", c.start)?;
    plan_date("end", c.end)?;
    if c.end < c.start {
        return Err(Invalid::Date {
            field: "end",
            reason: format!("{} is before the start {}", c.end, c.start),
        });
    }
    if !(1..=366).contains(&c.review_every_days) {
        return Err(Invalid::range("review_every_days", "reviews are 1 to 366 days apart"));
    }
    let (g, y) = (c.thresholds.green_within, c.thresholds.yellow_within);
    if !(g.is_finite() && y.is_finite() && 0.0 <= g && g <= y && y <= 100.0) {
        return Err(Invalid::range(
            "thresholds",
            format!("green {g} and yellow {y} must satisfy 0 ≤ green ≤ yellow ≤ 100"),
        ));
    }
    Ok(())
}

/// The site a metric reads.
pub fn metric_site(m: &Metric) -> &str {
    match m {
        Metric::LaborCost { site, .. }
        | Metric::WorkDays { site, .. }
        | Metric::CostPerUnit { site, .. }
        | Metric::ProgressPercent { site, .. }
        | Metric::CostPerformance { site, .. }
        | Metric::LogCoverage { site } => site,
    }
}

/// A metric binding of a key result of `org`: it names a site of `org` (as `site_org` says) and,
/// if it names a work item, one of that site's. (Whether the *author* may read the site is the
/// caller's to ask: see `validate/document.rs` and the server's feed.)
pub fn metric(m: &Metric, org: &OrgId, site_org: &dyn Fn(&SiteId) -> Option<OrgId>) -> Result<(), Invalid> {
    let site = SiteId::new(metric_site(m)).map_err(|e| Invalid::Malformed {
        field: "metric",
        reason: e.to_string(),
    })?;
    if site_org(&site).as_ref() != Some(org) {
        return Err(Invalid::Foreign {
            field: "metric",
            site: site.to_string(),
        });
    }
    let item = match m {
        Metric::LaborCost { work_item, .. }
        | Metric::WorkDays { work_item, .. }
        | Metric::CostPerformance { work_item, .. } => work_item.as_deref(),
        Metric::CostPerUnit { work_item, .. } | Metric::ProgressPercent { work_item, .. } => Some(work_item.as_str()),
        Metric::LogCoverage { .. } => None,
    };
    match item {
        Some(wi) => of_site("metric", &site, wi),
        None => Ok(()),
    }
}

/// A key result of `org`: start and target within ±[`MAX_OKR_MILLI`], a weight 1–[`MAX_WEIGHT`],
/// a due date in the plan window, and a metric binding (if any) that passes [`metric`].
pub fn key_result(kr: &KeyResult, org: &OrgId, site_org: &dyn Fn(&SiteId) -> Option<OrgId>) -> Result<(), Invalid> {
    okr_value("start", kr.start_milli)?;
    okr_value("target", kr.target_milli)?;
    if !(1..=MAX_WEIGHT).contains(&kr.weight) {
        return Err(Invalid::range("weight", format!("weights are 1 to {MAX_WEIGHT}")));
    }
    plan_date("due", kr.due)?;
    match &kr.metric {
        Some(m) => metric(m, org, site_org),
        None => Ok(()),
    }
}

/// A check-in: a value within ±[`MAX_OKR_MILLI`], confidence 0–10, a date in the plan window.
pub fn check_in(c: &CheckIn) -> Result<(), Invalid> {
    okr_value("value", c.value_milli)?;
    if let Some(conf) = c.confidence
        && !(0..=10).contains(&conf)
    {
        return Err(Invalid::range("confidence", "confidence is 0 to 10"));
    }
    plan_date("date", c.date)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{CrewId, WorkItemId, WorkerId, parse_date};
    use crate::labor::LaborKind;
    use crate::roster::{Crew, Site};
    use crate::units::{Fen, Quantity};

    fn site() -> SiteId {
        SiteId::new("site-hz-01").unwrap()
    }

    fn date() -> NaiveDate {
        parse_date("2026-09-01").unwrap()
    }

    fn roster() -> Roster {
        Roster {
            site: Site {
                id: site(),
                code: "HZ-01".into(),
                name: "杭州".into(),
                timezone: "Asia/Shanghai".into(),
            },
            crews: vec![Crew {
                id: CrewId::new("site-hz-01/crew-1").unwrap(),
                name: "一班".into(),
                leader: "周长".into(),
                trade: "rebar".into(),
            }],
            workers: vec![Worker {
                id: WorkerId::new("w-0001").unwrap(),
                name: "高平".into(),
                phone: String::new(),
                trade: "rebar".into(),
                crew: CrewId::new("site-hz-01/crew-1").unwrap(),
                day_rate: Fen::new("r", 43_000).unwrap(),
                overtime_rate: Fen::new("r", 8_062).unwrap(),
                active: false,
                pending: false,
                bank: Default::default(),
            }],
            work_items: vec![WorkItem {
                id: WorkItemId::new("site-hz-01/wi-4.1").unwrap(),
                code: "4.1".into(),
                name: "砌筑".into(),
                unit: "m³".into(),
                planned_quantity: Quantity::from_milli("q", 1_000_000).unwrap(),
                budget: Fen::new("b", 1_000_000).unwrap(),
                planned_start: Some(parse_date("2026-09-01").unwrap()),
                planned_end: Some(parse_date("2026-12-31").unwrap()),
            }],
            pending_workers: Vec::new(),
            rates: Vec::new(),
        }
    }

    fn line() -> LaborLine {
        let worker = WorkerId::new("w-0001").unwrap();
        let work_item = WorkItemId::new("site-hz-01/wi-4.1").unwrap();
        LaborLine {
            id: LineId::labor(&site(), date(), &worker, &work_item),
            worker,
            work_item,
            work_days: WorkDays::from_centi(100).unwrap(),
            hours: Minutes::from_min("h", 480).unwrap(),
            overtime: Minutes::default(),
            kind: LaborKind::DayLabor,
            day_rate: Fen::new("r", 43_000).unwrap(),
            overtime_rate: Fen::new("r", 8_062).unwrap(),
            note: String::new(),
            entered_by: "崔贵".into(),
            deleted: false,
            conflicts: Vec::new(),
        }
    }

    #[test]
    fn an_honest_line_passes_even_for_a_worker_who_has_since_left() {
        // The fixture worker is inactive: lines entered while they worked stay valid.
        assert_eq!(labor_line(&site(), date(), &line(), &roster()), Ok(()));
    }

    #[test]
    fn a_line_is_refused_naming_the_field() {
        let r = roster();
        let stranger = WorkerId::new("w-9999").unwrap();
        let mut l = line();
        l.id = LineId::labor(&site(), date(), &stranger, &l.work_item);
        l.worker = stranger;
        let err = labor_line(&site(), date(), &l, &r).unwrap_err();
        assert_eq!(err.field(), "worker");
        assert!(matches!(err, Invalid::NotOnRoster { .. }));

        let mut l = line();
        let other_item = WorkItemId::new("site-sz-02/wi-4.1").unwrap();
        l.id = LineId::labor(&site(), date(), &l.worker, &other_item);
        l.work_item = other_item;
        assert_eq!(labor_line(&site(), date(), &l, &r).unwrap_err().field(), "work_item");

        let mut l = line();
        l.day_rate = Fen::new("r", MAX_RATE_FEN + 1).unwrap();
        assert_eq!(labor_line(&site(), date(), &l, &r).unwrap_err().field(), "rate");
        let mut l = line();
        l.overtime_rate = Fen::new("r", 6_148_914_691_236_483_872).unwrap();
        assert_eq!(
            labor_line(&site(), date(), &l, &r).unwrap_err().field(),
            "overtime_rate"
        );

        let mut l = line();
        l.hours = Minutes::from_min("h", 20 * 60).unwrap();
        l.overtime = Minutes::from_min("o", 4 * 60 + 1).unwrap();
        assert_eq!(labor_line(&site(), date(), &l, &r).unwrap_err().field(), "hours");

        // Another day's id, or another site's: the line sits in the wrong document.
        let mut l = line();
        l.id = LineId::labor(&site(), date().succ_opt().unwrap(), &l.worker, &l.work_item);
        assert!(matches!(
            labor_line(&site(), date(), &l, &r),
            Err(Invalid::WrongId { .. })
        ));
        let mut l = line();
        l.id = LineId::new("L-made-up").unwrap();
        assert_eq!(labor_line(&site(), date(), &l, &r).unwrap_err().field(), "id");

        // A roster of another site is not this site's.
        let mut other = roster();
        other.site.id = SiteId::new("site-sz-02").unwrap();
        assert_eq!(
            labor_line(&site(), date(), &line(), &other).unwrap_err().field(),
            "site"
        );
    }

    #[test]
    fn rates_at_the_bound_compute_exactly() {
        let mut l = line();
        l.day_rate = Fen::new("r", MAX_RATE_FEN).unwrap();
        l.overtime_rate = Fen::new("r", MAX_RATE_FEN).unwrap();
        l.work_days = WorkDays::MAX;
        l.hours = Minutes::default();
        l.overtime = Minutes::DAY;
        assert_eq!(labor_line(&site(), date(), &l, &roster()), Ok(()));
        // 3 days × ¥100,000 + 24 h × ¥100,000 = ¥2.7 million, exactly.
        assert_eq!(l.cost().fen(), 270_000_000);
        l.day_rate = Fen::new("r", 9_999_999).unwrap();
        l.overtime = Minutes::default();
        assert_eq!(l.cost().fen(), 29_999_997, "¥99,999.99 × 3 days");
    }

    #[test]
    fn dates_are_within_the_window() {
        let today = parse_date("2026-11-30").unwrap();
        assert!(day_date_on(parse_date("2000-01-01").unwrap(), today).is_ok());
        assert!(day_date_on(parse_date("1999-12-31").unwrap(), today).is_err());
        assert!(day_date_on(parse_date("2027-12-01").unwrap(), today).is_ok());
        assert!(day_date_on(parse_date("2027-12-02").unwrap(), today).is_err());
        let far = NaiveDate::from_ymd_opt(10_000, 1, 1).unwrap();
        let err = day_date_on(far, today).unwrap_err();
        assert_eq!(err.field(), "date");
        assert!(!storable_date(far));
        assert!(
            day_date_on(NaiveDate::MAX, NaiveDate::MAX).is_ok(),
            "no overflow at the end of time"
        );
        // A document id from the network is checked before anything is loaded.
        assert!(doc_id(&crate::ids::DocId::Day(site(), far)).is_err());
        assert!(doc_id(&crate::ids::DocId::Site(site())).is_ok());
    }

    #[test]
    fn progress_and_delays_are_checked_against_the_roster() {
        let r = roster();
        let wi = WorkItemId::new("site-hz-01/wi-4.1").unwrap();
        let mut p = ProgressLine {
            id: LineId::progress(&site(), date(), &wi),
            work_item: wi.clone(),
            quantity: Quantity::from_milli("q", 12_500).unwrap(),
            note: String::new(),
            entered_by: String::new(),
            deleted: false,
            conflicts: Vec::new(),
        };
        assert_eq!(progress_line(&site(), date(), &p, &r), Ok(()));
        p.quantity = Quantity::from_milli("q", MAX_QUANTITY_MILLI + 1).unwrap();
        assert_eq!(progress_line(&site(), date(), &p, &r).unwrap_err().field(), "quantity");
        let mut d = Delay {
            id: "x".into(),
            text: "雨".into(),
            work_item: Some(wi),
            entered_by: String::new(),
        };
        assert_eq!(delay(&site(), &d, &r), Ok(()));
        d.work_item = Some(WorkItemId::new("site-hz-01/wi-99").unwrap());
        assert_eq!(delay(&site(), &d, &r).unwrap_err().field(), "work_item");
        d.work_item = None;
        d.text = " ".into();
        assert_eq!(delay(&site(), &d, &r).unwrap_err().field(), "text");
    }

    #[test]
    fn master_data_holds_bounded_plans_of_its_own_site() {
        let mut r = roster();
        assert_eq!(roster_check(&r), Ok(()));
        r.workers[0].day_rate = Fen::new("r", MAX_RATE_FEN + 1).unwrap();
        assert_eq!(roster_check(&r).unwrap_err().field(), "day_rate");
        let mut r = roster();
        r.work_items[0].budget = Fen::new("b", MAX_BUDGET_FEN + 1).unwrap();
        assert_eq!(roster_check(&r).unwrap_err().field(), "budget");
        let mut r = roster();
        r.work_items[0].planned_end = Some(parse_date("2026-08-01").unwrap());
        assert_eq!(roster_check(&r).unwrap_err().field(), "planned_end");
        let mut r = roster();
        r.site.id = SiteId::new("site-sz-02").unwrap();
        assert_eq!(roster_check(&r).unwrap_err().field(), "site");
    }

    fn roster_check(r: &Roster) -> Result<(), Invalid> {
        super::roster(&site(), r)
    }

    #[test]
    fn a_metric_names_a_site_of_the_cycle_org() {
        let org = OrgId::new("org-zhuyuan").unwrap();
        let orgs = |s: &SiteId| (s.as_str() == "site-hz-01").then(|| OrgId::new("org-zhuyuan").unwrap());
        let ours = Metric::LaborCost {
            site: "site-hz-01".into(),
            work_item: Some("site-hz-01/wi-4.1".into()),
        };
        assert_eq!(metric(&ours, &org, &orgs), Ok(()));
        let other_org = OrgId::new("org-other").unwrap();
        let err = metric(&ours, &other_org, &orgs).unwrap_err();
        assert!(matches!(err, Invalid::Foreign { field: "metric", .. }), "{err:?}");
        let wrong_item = Metric::ProgressPercent {
            site: "site-hz-01".into(),
            work_item: "site-sz-02/wi-4.1".into(),
        };
        assert_eq!(metric(&wrong_item, &org, &orgs).unwrap_err().field(), "metric");
        let unknown = Metric::LogCoverage {
            site: "site-nowhere".into(),
        };
        assert!(metric(&unknown, &org, &orgs).is_err());
    }

    #[test]
    fn okr_values_are_bounded() {
        let c = Cycle::new(
            "org-zhuyuan",
            "2026-Q4",
            crate::okr::CycleKind::Quarter,
            "t",
            "",
            date(),
        );
        assert_eq!(cycle(&c), Ok(()));
        let mut bad = c.clone();
        bad.thresholds.green_within = f64::NAN;
        assert_eq!(cycle(&bad).unwrap_err().field(), "thresholds");
        let mut bad = c.clone();
        bad.end = NaiveDate::from_ymd_opt(10_000, 1, 1).unwrap();
        assert_eq!(cycle(&bad).unwrap_err().field(), "end");
        let mut ci = CheckIn {
            id: "c".into(),
            kr: "k".into(),
            value_milli: MAX_OKR_MILLI,
            status: None,
            confidence: Some(10),
            note: String::new(),
            author: String::new(),
            date: date(),
            at: Utc::now(),
        };
        assert_eq!(check_in(&ci), Ok(()));
        ci.value_milli = i64::MIN;
        assert_eq!(check_in(&ci).unwrap_err().field(), "value");
    }
}
