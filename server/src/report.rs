//! Head-office reports computed from the server's projections: the day-labor summary (点工汇总), the
//! monthly attendance grid, progress against plan, and anomalies. Each has a JSON shape and a table
//! shape (for CSV and Excel).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{Datelike, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};
use sitesync_core::Store;
use sitesync_core::ids::{SiteId, WorkerId};
use sitesync_core::labor::DayStatus;
use sitesync_core::roster::Roster;
use sitesync_core::signoff::SignoffState;
use sitesync_core::store::RowFilter;
use utoipa::ToSchema;

use crate::error::{Error, Result};
use crate::export::{Cell, Table, yuan};
use sitesync_core::units::add_saturating as add;

pub use sitesync_core::report::{CostPerformance, Group, GroupBy, Pending, Sums, WorkItemProgress};

/// [`Sums`] as table cells: work-days, hours, overtime hours, cost, lines.
fn sums_cells(s: &Sums) -> Vec<Cell> {
    vec![
        Cell::Fixed(s.work_days_centi, 2),
        Cell::Fixed(s.hours_min * 100 / 60, 2),
        Cell::Fixed(s.overtime_min * 100 / 60, 2),
        Cell::Fen(s.cost_fen),
        Cell::Int(s.lines),
    ]
}

/// 点工汇总: labor totals over a date range, grouped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct LaborSummary {
    pub sites: Vec<String>,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub by: GroupBy,
    /// Whether days not (yet) approved are counted. Without them, a day amended after its approval
    /// counts as it was approved, and `pending` says what approving the amendments would change.
    pub include_unapproved: bool,
    /// One row per group.
    pub rows: Vec<Group>,
    pub total: Sums,
    /// Days amended since their approval, as approved in `total`; absent when there are none or
    /// `include_unapproved` is set (then they count as they stand).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending: Option<Pending>,
}

fn filter(sites: &[String], from: NaiveDate, to: NaiveDate, approved_only: bool) -> RowFilter {
    RowFilter {
        sites: Some(sites.to_vec()),
        from: Some(from),
        to: Some(to),
        approved_only,
    }
}

/// The rosters of `sites` (those the store holds), to count a merged worker's lines under the worker
/// it was merged into ([`Roster::resolve_worker`]).
struct Rosters(HashMap<String, Roster>);

impl Rosters {
    fn of(store: &mut Store, sites: &[String]) -> Result<Rosters> {
        let mut out = HashMap::new();
        for site in sites {
            let Ok(id) = SiteId::new(site.as_str()) else { continue };
            match store.roster(&id) {
                Ok(r) => {
                    out.insert(site.clone(), r);
                }
                Err(sitesync_core::Error::UnknownSite(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Rosters(out))
    }

    /// The worker `worker`'s lines on `site` count under, and that worker's name (`None`: not on
    /// the site's roster).
    fn resolve(&self, site: &str, worker: &str) -> (String, Option<String>) {
        let (Some(roster), Ok(id)) = (self.0.get(site), WorkerId::new(worker)) else {
            return (worker.to_string(), None);
        };
        let to = roster.resolve_worker(&id);
        let name = roster.worker(&to).map(|w| w.name.clone());
        (to.to_string(), name)
    }

    /// [`Rosters::resolve`] where the site is not known (a group across sites): the first site
    /// whose roster merged the worker decides.
    fn resolve_any(&self, worker: &str) -> (String, Option<String>) {
        let mut sites: Vec<&String> = self.0.keys().collect();
        sites.sort();
        for site in sites {
            let (to, name) = self.resolve(site, worker);
            if to != worker {
                return (to, name);
            }
        }
        (worker.to_string(), None)
    }
}

/// 点工汇总 over `sites`. Grouped by worker, a merged worker's lines count under the worker it was
/// merged into, once.
pub fn labor_summary(
    store: &mut Store,
    sites: &[String],
    from: NaiveDate,
    to: NaiveDate,
    by: GroupBy,
    include_unapproved: bool,
) -> Result<LaborSummary> {
    if to < from {
        return Err(Error::BadRequest("`to` is before `from`".into()));
    }
    let mut summary = store.summary(&filter(sites, from, to, !include_unapproved), Some(by))?;
    if by == GroupBy::Worker {
        let rosters = Rosters::of(store, sites)?;
        let mut merged: BTreeMap<String, Group> = BTreeMap::new();
        for g in std::mem::take(&mut summary.rows) {
            let (key, name) = rosters.resolve_any(&g.key);
            let into = merged.entry(key.clone()).or_insert_with(|| Group {
                key,
                label: String::new(),
                sums: Sums::default(),
            });
            into.sums.add(&g.sums);
            // The target's own row carries its label; a merged-in row names the target.
            if let Some(n) = name {
                into.label = n;
            } else if into.label.is_empty() || g.key == into.key {
                into.label = g.label;
            }
        }
        summary.rows = merged.into_values().collect();
    }
    Ok(LaborSummary {
        sites: sites.to_vec(),
        from,
        to,
        by,
        include_unapproved,
        rows: summary.rows,
        total: summary.total,
        pending: summary.pending,
    })
}

impl LaborSummary {
    /// As a table.
    pub fn table(&self) -> Table {
        let header = [
            "分组 key",
            "名称 name",
            "工日 work-days",
            "工时 hours",
            "加班 overtime h",
            "金额 cost ¥",
            "条数 lines",
        ];
        let rows = self
            .rows
            .iter()
            .map(|r| {
                let mut row = vec![Cell::Text(r.key.clone()), Cell::Text(r.label.clone())];
                row.extend(sums_cells(&r.sums));
                row
            })
            .collect();
        let mut totals = vec![Cell::Text("合计 total".into()), Cell::Empty];
        totals.extend(sums_cells(&self.total));
        Table {
            title: "点工汇总".into(),
            header: header.iter().map(|s| s.to_string()).collect(),
            rows,
            totals: Some(totals),
        }
    }
}

/// One worker's row of the attendance grid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct AttendanceRow {
    pub worker: String,
    pub name: String,
    pub crew: String,
    /// Work-days (hundredths) per day of the month, index 0 = day 1; `null` where not logged.
    pub days: Vec<Option<i64>>,
    /// The month's work-days in hundredths.
    pub work_days_centi: i64,
    /// The month's cost in fen.
    pub cost_fen: i64,
    /// The month's cost as people read it.
    pub cost: String,
    /// Where his month stands against his confirmation of the month's sheet (`sitesync sign
    /// --month`; a day's signature alone does not sign the month): `unsigned`, `signed`,
    /// `changed_since_signed` (re-sign), `disputed`, over every day he has lines, approved or not.
    pub signoff: SignoffState,
}

/// The monthly attendance grid people print: one row per worker, one column per day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct Attendance {
    pub site: String,
    /// First day of the month.
    pub month: NaiveDate,
    /// Days in the month.
    pub days_in_month: u32,
    /// Whether days not (yet) approved are counted.
    pub include_unapproved: bool,
    /// One row per worker, ordered by crew then worker.
    pub rows: Vec<AttendanceRow>,
    /// Work-days per day of the month over all workers.
    pub day_totals: Vec<i64>,
    /// The month's work-days.
    pub work_days_centi: i64,
    /// The month's cost in fen.
    pub cost_fen: i64,
    /// The month's cost as people read it.
    pub cost: String,
}

/// The attendance grid of a site for the month containing `month`.
pub fn attendance(store: &mut Store, site: &str, month: NaiveDate, include_unapproved: bool) -> Result<Attendance> {
    let first = month.with_day(1).expect("day 1 exists");
    let next = first
        .checked_add_months(chrono::Months::new(1))
        .ok_or_else(|| Error::BadRequest("month out of range".into()))?;
    let last = next.pred_opt().expect("a day before the 1st exists");
    let n = last.day();
    let mut rows: BTreeMap<(String, String), AttendanceRow> = BTreeMap::new();
    let mut day_totals = vec![0i64; n as usize];
    let (mut wd, mut cost) = (0, 0);
    let rosters = Rosters::of(store, &[site.to_string()])?;
    for r in store.labor_rows(&filter(&[site.to_string()], first, last, !include_unapproved))? {
        // A merged worker's lines fill the row of the worker it was merged into.
        let (worker, name) = rosters.resolve(site, &r.worker);
        let (crew, crew_name) = match rosters.0.get(site).and_then(|ro| {
            let w = ro.worker(&WorkerId::new(worker.as_str()).ok()?)?;
            Some((
                w.crew.to_string(),
                ro.crew(&w.crew).map(|c| c.name.clone()).unwrap_or_default(),
            ))
        }) {
            Some(c) if worker != r.worker => c,
            _ => (r.crew.clone(), r.crew_name.clone()),
        };
        let row = rows.entry((crew, worker.clone())).or_insert_with(|| AttendanceRow {
            worker: worker.clone(),
            name: name.unwrap_or_else(|| r.worker_name.clone()),
            crew: crew_name,
            days: vec![None; n as usize],
            work_days_centi: 0,
            cost_fen: 0,
            cost: String::new(),
            signoff: SignoffState::Unsigned,
        });
        let i = (r.date.day() - 1) as usize;
        let day = row.days[i].get_or_insert(0);
        *day = add(*day, r.work_days_centi);
        row.work_days_centi = add(row.work_days_centi, r.work_days_centi);
        row.cost_fen = add(row.cost_fen, r.cost_fen);
        row.cost = yuan(row.cost_fen);
        day_totals[i] = add(day_totals[i], r.work_days_centi);
        wd = add(wd, r.work_days_centi);
        cost = add(cost, r.cost_fen);
    }
    let site_id = SiteId::new(site).map_err(|e| Error::BadRequest(e.to_string()))?;
    let sheet = store.month_signoffs(&site_id, first)?;
    for row in rows.values_mut() {
        if let Some(w) = sheet.workers.iter().find(|w| w.worker.as_str() == row.worker) {
            row.signoff = w.state;
        }
    }
    Ok(Attendance {
        site: site.to_string(),
        month: first,
        days_in_month: n,
        include_unapproved,
        rows: rows.into_values().collect(),
        day_totals,
        work_days_centi: wd,
        cost_fen: cost,
        cost: yuan(cost),
    })
}

impl Attendance {
    /// As a table: worker, name, crew, days 1–N, total work-days, cost, sign-off.
    pub fn table(&self) -> Table {
        let mut header = vec!["工号 worker".to_string(), "姓名 name".into(), "班组 crew".into()];
        header.extend((1..=self.days_in_month).map(|d| d.to_string()));
        header.extend([
            "合计工日 work-days".to_string(),
            "金额 cost ¥".into(),
            "签字 sign-off".into(),
        ]);
        let rows = self
            .rows
            .iter()
            .map(|r| {
                let mut row = vec![
                    Cell::Text(r.worker.clone()),
                    Cell::Text(r.name.clone()),
                    Cell::Text(r.crew.clone()),
                ];
                row.extend(r.days.iter().map(|d| d.map_or(Cell::Empty, |v| Cell::Fixed(v, 2))));
                row.extend([
                    Cell::Fixed(r.work_days_centi, 2),
                    Cell::Fen(r.cost_fen),
                    Cell::Text(signoff_text(r.signoff).into()),
                ]);
                row
            })
            .collect();
        let mut totals = vec![Cell::Text("合计 total".into()), Cell::Empty, Cell::Empty];
        totals.extend(self.day_totals.iter().map(|v| Cell::Fixed(*v, 2)));
        totals.extend([
            Cell::Fixed(self.work_days_centi, 2),
            Cell::Fen(self.cost_fen),
            Cell::Empty,
        ]);
        Table {
            title: format!("考勤 {} {}", self.site, self.month.format("%Y-%m")),
            header,
            rows,
            totals: Some(totals),
        }
    }
}

/// A sign-off state as the printed sheet says it: Chinese for the site, the API's name after it.
pub(crate) fn signoff_text(s: SignoffState) -> &'static str {
    match s {
        SignoffState::Unsigned => "未签 unsigned",
        SignoffState::Signed => "已签 signed",
        SignoffState::ChangedSinceSigned => "需重签 changed_since_signed",
        SignoffState::Disputed => "有异议 disputed",
    }
}

/// Progress against plan on one work item, with time elapsed against the plan.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ProgressItem {
    /// Quantity, labor and budget to date.
    #[serde(flatten)]
    pub item: WorkItemProgress,
    /// Share of the planned duration elapsed at `date`, percent with one decimal.
    pub percent_time_elapsed: f64,
    /// Labor cost as people read it.
    pub labor_cost: String,
    /// Budget as people read it.
    pub budget: String,
    /// Progress trails elapsed time by more than the lag threshold.
    pub lagging: bool,
    /// Cost against budget: earned value, cost to date, CPI, forecast, overrun.
    pub cost: CostPerformance,
}

/// Progress against plan for a site.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct Progress {
    pub site: String,
    /// As of this date.
    pub date: NaiveDate,
    /// Percentage points by which progress may trail time before it is flagged.
    pub lag_threshold: f64,
    /// Whether days not (yet) approved are counted.
    pub include_unapproved: bool,
    /// The work items.
    pub items: Vec<ProgressItem>,
    /// Cost against budget of the whole site: the items' figures summed.
    pub cost: CostPerformance,
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Progress against plan per work item of a site, as of `date`.
pub fn progress(
    store: &mut Store,
    site: &str,
    date: NaiveDate,
    lag_threshold: f64,
    include_unapproved: bool,
) -> Result<Progress> {
    let costs = item_costs(store, site, date, !include_unapproved)?;
    let items: Vec<ProgressItem> = costs
        .into_iter()
        .map(|(item, cost)| {
            let elapsed = match (item.planned_start, item.planned_end) {
                (Some(s), Some(e)) if e > s => {
                    let span = (e - s).num_days() as f64;
                    round1(((date - s).num_days() as f64 / span * 100.0).clamp(0.0, 100.0))
                }
                (Some(s), Some(_)) if date >= s => 100.0,
                _ => 0.0,
            };
            ProgressItem {
                percent_time_elapsed: elapsed,
                labor_cost: yuan(item.labor_cost_fen),
                budget: yuan(item.budget_fen),
                lagging: elapsed - item.percent_complete > lag_threshold,
                item,
                cost,
            }
        })
        .collect();
    let cost = CostPerformance::total(items.iter().map(|i| &i.cost));
    Ok(Progress {
        site: site.to_string(),
        date,
        lag_threshold,
        include_unapproved,
        items,
        cost,
    })
}

/// Each work item of `site` to `date` with its cost against budget (labor and piecework).
fn item_costs(
    store: &mut Store,
    site: &str,
    date: NaiveDate,
    approved_only: bool,
) -> Result<Vec<(WorkItemProgress, CostPerformance)>> {
    let site = SiteId::new(site)?;
    let piece = sitesync_core::report::cost::piece_costs(store, &site, date, approved_only)?;
    Ok(store
        .progress(&site, date, approved_only)?
        .into_iter()
        .map(|item| {
            let cost = CostPerformance::of_item(&item, piece.get(&item.work_item).copied().unwrap_or(0));
            (item, cost)
        })
        .collect())
}

impl Progress {
    /// As a table.
    pub fn table(&self) -> Table {
        let header = [
            "部位 work item",
            "名称 name",
            "单位 unit",
            "计划量 planned",
            "累计完成 to date",
            "完成% complete",
            "计划开始 start",
            "计划结束 end",
            "时间% elapsed",
            "人工成本 labor cost ¥",
            "预算 budget ¥",
            "滞后 lagging",
        ]
        .into_iter()
        .chain(COST_HEADER);
        let rows = self
            .items
            .iter()
            .map(|i| {
                let mut row = vec![
                    Cell::Text(i.item.code.clone()),
                    Cell::Text(i.item.name.clone()),
                    Cell::Text(i.item.unit.clone()),
                    Cell::Fixed(i.item.planned_quantity_milli, 3),
                    Cell::Fixed(i.item.quantity_to_date_milli, 3),
                    Cell::Percent(i.item.percent_complete),
                    i.item.planned_start.map_or(Cell::Empty, Cell::Date),
                    i.item.planned_end.map_or(Cell::Empty, Cell::Date),
                    Cell::Percent(i.percent_time_elapsed),
                    Cell::Fen(i.item.labor_cost_fen),
                    Cell::Fen(i.item.budget_fen),
                    Cell::Text(if i.lagging { "是 yes".into() } else { String::new() }),
                ];
                row.extend(cost_cells(&i.cost));
                row
            })
            .collect();
        let labor = self.items.iter().map(|i| i.item.labor_cost_fen).fold(0, add);
        let budget = self.items.iter().map(|i| i.item.budget_fen).fold(0, add);
        let mut totals = vec![Cell::Text("合计 total".into())];
        totals.extend(std::iter::repeat_n(Cell::Empty, 8));
        totals.extend([Cell::Fen(labor), Cell::Fen(budget), Cell::Empty]);
        totals.extend(cost_cells(&self.cost));
        Table {
            title: format!("进度 {} {}", self.site, self.date),
            header: header.map(|s| s.to_string()).collect(),
            rows,
            totals: Some(totals),
        }
    }
}

/// The progress table's cost-against-budget columns, after the others.
const COST_HEADER: [&str; 8] = [
    "计件 piecework ¥",
    "成本 cost to date ¥",
    "挣值 earned ¥",
    "成本绩效 CPI",
    "预测完工 EAC ¥",
    "成本偏差 cost variance ¥",
    "完工偏差 VAC ¥",
    "超支 overrun",
];

/// [`CostPerformance`] as the cells under [`COST_HEADER`]; an undefined CPI is an empty cell.
fn cost_cells(c: &CostPerformance) -> [Cell; 8] {
    [
        Cell::Fen(c.piece_cost_fen),
        Cell::Fen(c.cost_fen),
        Cell::Fen(c.earned_fen),
        c.cpi_milli.map_or(Cell::Empty, |v| Cell::Fixed(v, 3)),
        Cell::Fen(c.eac_fen),
        Cell::Fen(c.cost_variance_fen),
        Cell::Fen(c.variance_at_completion_fen),
        Cell::Text(if c.overrun { "是 yes".into() } else { String::new() }),
    ]
}

/// What kind of anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    /// A worker's work-days across all sites exceed the limit on one day.
    OverWorkDays,
    /// A worker logged more than the hour limit (hours + overtime) on one day.
    OverHours,
    /// An active site has no log for a working day.
    MissingLog,
    /// A day was changed after it was approved.
    AmendedAfterApproval,
    /// A labor line's day rate differs from the worker's rate in force on the line's date.
    RateMismatch,
    /// A labor line's worker is not on that site's roster.
    NotOnRoster,
    /// A stored line that does not read as a valid one (a negative work-day, a cost that overflows,
    /// an id not its own): left out of every sum.
    InvalidLine,
    /// A work item's cost to date (labor + piecework) exceeds its budget, or a tenth of its budget is
    /// spent at a cost performance index below 0.8 (see `sitesync_core::report::cost`).
    CostOverrun,
}

impl Anomaly {
    /// The fields a construction leaves to this (`..Anomaly::rest()`): no parameters, and the names
    /// that [`anomalies`] fills in last. Every construction sets kind, site, date, worker and detail.
    fn rest() -> Self {
        Anomaly {
            kind: AnomalyKind::MissingLog,
            site: String::new(),
            date: NaiveDate::MIN,
            worker: None,
            detail: String::new(),
            site_name: String::new(),
            worker_name: None,
            params: BTreeMap::new(),
        }
    }
}

impl AnomalyKind {
    /// The name the API writes (`over_work_days`).
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::OverWorkDays => "over_work_days",
            AnomalyKind::OverHours => "over_hours",
            AnomalyKind::MissingLog => "missing_log",
            AnomalyKind::AmendedAfterApproval => "amended_after_approval",
            AnomalyKind::RateMismatch => "rate_mismatch",
            AnomalyKind::NotOnRoster => "not_on_roster",
            AnomalyKind::InvalidLine => "invalid_line",
            AnomalyKind::CostOverrun => "cost_overrun",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct Anomaly {
    pub kind: AnomalyKind,
    /// The site (for a worker over the limit across sites: every site involved, comma-separated).
    pub site: String,
    pub date: NaiveDate,
    /// The worker, where one is involved.
    pub worker: Option<String>,
    /// A sentence for a person, in English (the CSV and Excel files carry it).
    pub detail: String,
    /// The site's name (names joined with `,` where `site` lists several); empty if unknown.
    #[serde(default)]
    pub site_name: String,
    /// The worker's name, where one is involved and known.
    #[serde(default)]
    pub worker_name: Option<String>,
    /// The figures `detail` is made of, by name, for a page to say them in its reader's language:
    /// `rate`, `in_force` (yuan); `work_days`; `hours`; `line`, `reason`; `changes`; `item`,
    /// `cost`, `labor`, `piecework`, `budget`, `earned`, `cpi`, `eac` — as each kind has them.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
}

/// [`Anomaly::params`] from pairs.
fn params<const N: usize>(pairs: [(&str, String); N]) -> BTreeMap<String, String> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct AnomalyRules {
    /// Work-days per worker per day across all sites, hundredths (default 100).
    pub max_work_days_centi: i64,
    /// Hours plus overtime per worker per day, minutes (default 12 h).
    pub max_minutes: i64,
    /// Weekdays that are not working days (default none: sites work every day).
    pub rest_days: Vec<Weekday>,
    /// The last day that can be missing (days after it have not happened yet).
    pub today: NaiveDate,
}

/// One worker's day across sites: work-days, minutes, the sites, the worker's name.
type WorkerDay = (i64, i64, BTreeSet<String>, String);

/// Anomalies over `sites` in `from..=to`, on all logged data (approved or not).
pub fn anomalies(
    store: &mut Store,
    sites: &[String],
    from: NaiveDate,
    to: NaiveDate,
    rules: &AnomalyRules,
) -> Result<Vec<Anomaly>> {
    let mut out = Vec::new();
    let f = filter(sites, from, to, false);
    let rows = store.labor_rows(&f)?;
    let rosters = Rosters::of(store, sites)?;
    // Per worker-day across every site in scope, a merged worker counted as the worker it was
    // merged into.
    let mut per: BTreeMap<(String, NaiveDate), WorkerDay> = BTreeMap::new();
    for r in &rows {
        let (worker, name) = rosters.resolve(&r.site, &r.worker);
        let e = per
            .entry((worker, r.date))
            .or_insert_with(|| (0, 0, BTreeSet::new(), name.unwrap_or_else(|| r.worker_name.clone())));
        e.0 = add(e.0, r.work_days_centi);
        e.1 = add(e.1, add(r.hours_min, r.overtime_min));
        e.2.insert(r.site.clone());
        // The rate in force on the line's date (dated rates, else the roster's), not today's.
        let in_force = match (rosters.0.get(&r.site), WorkerId::new(r.worker.as_str())) {
            (Some(roster), Ok(id)) => roster
                .worker(&roster.resolve_worker(&id))
                .map(|_| roster.rate_on(&id, r.date).0.fen()),
            _ => r.roster_rate_fen,
        };
        if in_force.is_none() {
            // Not on this site's roster: its rate cannot be compared, which is why it is flagged.
            out.push(Anomaly {
                kind: AnomalyKind::NotOnRoster,
                site: r.site.clone(),
                date: r.date,
                worker: Some(r.worker.clone()),
                detail: format!(
                    "{}: worker not on the roster of {}, logged at {}",
                    r.worker,
                    r.site,
                    yuan(r.rate_fen)
                ),
                params: params([("rate", yuan(r.rate_fen))]),
                ..Anomaly::rest()
            });
        }
        if let Some(roster) = in_force
            && roster != r.rate_fen
        {
            out.push(Anomaly {
                kind: AnomalyKind::RateMismatch,
                site: r.site.clone(),
                date: r.date,
                worker: Some(r.worker.clone()),
                detail: format!(
                    "{} {}: rate {} on the line, {} in force on its date",
                    r.worker,
                    r.worker_name,
                    yuan(r.rate_fen),
                    yuan(roster)
                ),
                params: params([("rate", yuan(r.rate_fen)), ("in_force", yuan(roster))]),
                ..Anomaly::rest()
            });
        }
    }
    for ((worker, date), (centi, minutes, in_sites, name)) in per {
        let site = in_sites.into_iter().collect::<Vec<_>>().join(",");
        if centi > rules.max_work_days_centi {
            out.push(Anomaly {
                kind: AnomalyKind::OverWorkDays,
                site: site.clone(),
                date,
                worker: Some(worker.clone()),
                detail: format!("{worker} {name}: {:.2} work-days on {site}", centi as f64 / 100.0),
                params: params([("work_days", format!("{:.2}", centi as f64 / 100.0))]),
                ..Anomaly::rest()
            });
        }
        if minutes > rules.max_minutes {
            out.push(Anomaly {
                kind: AnomalyKind::OverHours,
                site,
                date,
                worker: Some(worker),
                detail: format!("{name}: {:.1} hours in the day", minutes as f64 / 60.0),
                params: params([("hours", format!("{:.1}", minutes as f64 / 60.0))]),
                ..Anomaly::rest()
            });
        }
    }
    // Days with a log: a document with at least one labor line. A site is active from its first log.
    let mut logged: BTreeMap<String, BTreeSet<NaiveDate>> = BTreeMap::new();
    for r in &rows {
        logged.entry(r.site.clone()).or_default().insert(r.date);
    }
    for site in sites {
        let first = store
            .labor_rows(&RowFilter {
                sites: Some(vec![site.clone()]),
                from: None,
                to: Some(to),
                approved_only: false,
            })?
            .first()
            .map(|r| r.date);
        let Some(first) = first else { continue };
        let days = logged.get(site).cloned().unwrap_or_default();
        let mut d = from.max(first);
        while d <= to.min(rules.today) {
            if !rules.rest_days.contains(&d.weekday()) && !days.contains(&d) {
                out.push(Anomaly {
                    kind: AnomalyKind::MissingLog,
                    site: site.clone(),
                    date: d,
                    worker: None,
                    detail: format!("{site}: no labor logged on {d}"),
                    ..Anomaly::rest()
                });
            }
            // The last representable date has no next one.
            let Some(next) = d.succ_opt() else { break };
            d = next;
        }
    }
    for bad in store.invalid_rows(&f)? {
        out.push(Anomaly {
            kind: AnomalyKind::InvalidLine,
            site: bad.site,
            date: bad.date,
            worker: None,
            detail: format!("line {} left out of every sum: {}", bad.record, bad.reason),
            params: params([("line", bad.record.clone()), ("reason", bad.reason.clone())]),
            ..Anomaly::rest()
        });
    }
    for day in store.day_rows(&f)? {
        if day.status == DayStatus::AmendedAfterApproval {
            let changes = store.amendments(&SiteId::new(&day.site)?, day.date)?;
            let what: Vec<String> = changes
                .iter()
                .map(|c| {
                    format!(
                        "{} {}: {} → {}",
                        c.line,
                        c.field,
                        c.approved.as_deref().unwrap_or("—"),
                        c.now.as_deref().unwrap_or("—")
                    )
                })
                .collect();
            out.push(Anomaly {
                kind: AnomalyKind::AmendedAfterApproval,
                site: day.site.clone(),
                date: day.date,
                worker: None,
                detail: if what.is_empty() {
                    "corrected after approval".into()
                } else {
                    what.join("; ")
                },
                params: params([("changes", what.join("; "))]),
                ..Anomaly::rest()
            });
        }
    }
    out.extend(cost_overruns(store, sites, to.min(rules.today))?);
    // Names beside the ids, for people.
    for a in &mut out {
        a.site_name = a
            .site
            .split(',')
            .map(|s| rosters.0.get(s).map(|r| r.site.name.clone()).unwrap_or_default())
            .collect::<Vec<_>>()
            .join(",");
        if let Some(w) = &a.worker {
            a.worker_name = a.site.split(',').find_map(|s| {
                let r = rosters.0.get(s)?;
                r.worker(&r.resolve_worker(&WorkerId::new(w.as_str()).ok()?))
                    .map(|w| w.name.clone())
            });
        }
    }
    out.sort_by(|a, b| (a.date, &a.site, a.kind, &a.worker).cmp(&(b.date, &b.site, b.kind, &b.worker)));
    Ok(out)
}

/// Work items of `sites` over budget as of `date`, on every logged day to then (approved or not):
/// one [`AnomalyKind::CostOverrun`] per item, dated `date`, its detail the figures behind it.
fn cost_overruns(store: &mut Store, sites: &[String], date: NaiveDate) -> Result<Vec<Anomaly>> {
    let mut out = Vec::new();
    for site in sites {
        let items = match item_costs(store, site, date, false) {
            // A site granted but whose master data has not arrived has no budget to overrun.
            Err(Error::Store(sitesync_core::Error::UnknownSite(_))) => continue,
            other => other?,
        };
        for (item, c) in items {
            if !c.overrun {
                continue;
            }
            let cpi = c.cpi_milli.map_or("—".into(), |v| sitesync_core::units::fixed(v, 3));
            out.push(Anomaly {
                kind: AnomalyKind::CostOverrun,
                site: site.clone(),
                date,
                worker: None,
                detail: format!(
                    "{} {}: cost {} (labor {}, piecework {}) against a budget of {}; earned {}, CPI {cpi}, forecast at completion {}",
                    item.code,
                    item.name,
                    yuan(c.cost_fen),
                    yuan(c.labor_cost_fen),
                    yuan(c.piece_cost_fen),
                    yuan(c.budget_fen),
                    yuan(c.earned_fen),
                    yuan(c.eac_fen),
                ),
                params: params([
                    ("item", format!("{} {}", item.code, item.name)),
                    ("cost", yuan(c.cost_fen)),
                    ("labor", yuan(c.labor_cost_fen)),
                    ("piecework", yuan(c.piece_cost_fen)),
                    ("budget", yuan(c.budget_fen)),
                    ("earned", yuan(c.earned_fen)),
                    ("cpi", cpi.clone()),
                    ("eac", yuan(c.eac_fen)),
                ]),
                ..Anomaly::rest()
            });
        }
    }
    Ok(out)
}

/// Anomalies as a table.
pub fn anomalies_table(list: &[Anomaly]) -> Table {
    let header = ["日期 date", "工地 site", "类型 kind", "工人 worker", "说明 detail"];
    let rows = list
        .iter()
        .map(|a| {
            vec![
                Cell::Date(a.date),
                Cell::Text(a.site.clone()),
                Cell::Text(a.kind.as_str().into()),
                Cell::Text(a.worker.clone().unwrap_or_default()),
                Cell::Text(a.detail.clone()),
            ]
        })
        .collect();
    Table {
        title: "异常 anomalies".into(),
        header: header.iter().map(|s| s.to_string()).collect(),
        rows,
        totals: None,
    }
}
