//! The demo's sites as data: work items planned around today, who worked on what each day, what got
//! built, and each day's review trail. Pure: the same company, seed and date give the same plan.
//!
//! Decision (2026-11-30): the shipped `fixtures/logs.json` has fixed dates, only drafts, and budgets
//! drawn apart from its labor (rebar on HZ-01 cost ¥423,661 against ¥25,032; a ¥202 budget). Here the
//! labor comes first and the plan follows from it: each work item gets a gang for its planned window,
//! its planned quantity is what that gang builds by the planned end at the item's productivity
//! (rounded up to whole units), and its budget is that labor's cost plus a 4–12 % margin. Percent
//! complete then follows percent of time elapsed and labor cost follows percent complete, except
//! where the story says otherwise: per site one item lags (its gang builds 78 % of plan) and one
//! runs 4 % over its budget.

use chrono::{Datelike, NaiveDate};
use serde::Serialize;
use sitesync_core::ids::{SiteId, WorkItemId, WorkerId};
use sitesync_core::import::{Company, CompanySite, LogDay, LogLabor, LogProgress, SiteGrant, User};
use sitesync_core::units::{Fen, Minutes, WorkDays, line_cost};

use super::Error;

/// Days of logs the demo holds, today included.
pub const DAYS: i64 = 90;

/// Days before today still waiting for a decision ("the last week"); older days are approved.
pub const WAITING_DAYS: i64 = 7;

/// A small deterministic generator (xorshift64* seeded through splitmix64): no dependency whose
/// algorithm could change under us, so a seed means the same demo in every build.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A stream for `seed`; neighbouring seeds give unrelated streams.
    pub fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1).max(1) as u64) as i64
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: i64) -> bool {
        self.range(0, 99) < percent
    }
}

/// A user as the demo's writes name them: by id in signatures, by name in the records a phone writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserRef {
    /// The user id (`u-foreman-hz-01`).
    pub id: String,
    /// The name people know (`崔贵`).
    pub name: String,
}

impl UserRef {
    fn of(u: &User) -> UserRef {
        UserRef {
            id: u.id.clone(),
            name: u.name.clone(),
        }
    }
}

/// The one user of `role` granted `site` (or, with `site` `None`, the first user of `role`).
pub(super) fn staff(company: &Company, role: &'static str, site: Option<&SiteId>) -> Result<UserRef, Error> {
    company
        .users
        .iter()
        .find(|u| {
            u.role == role
                && match (&u.sites, site) {
                    (_, None) => true,
                    (SiteGrant::All(s), Some(_)) => s == "*",
                    (SiteGrant::Some(list), Some(site)) => list.contains(site),
                }
        })
        .map(UserRef::of)
        .ok_or_else(|| Error::Staff {
            site: site.map_or_else(|| "the org".to_string(), |s| s.to_string()),
            role,
        })
}

/// One thing done to a day after its lines were entered, by the site's foreman (submit, correct) or
/// its site manager (approve, reject).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Step {
    /// The foreman submits the day.
    Submit,
    /// The site manager approves it as it is.
    Approve,
    /// The site manager sends it back.
    Reject {
        /// Why, as the manager wrote it.
        reason: String,
    },
    /// The foreman corrects one line: with a reason on an approved day this is an audited amendment;
    /// on a rejected day it is the fix before submitting again.
    Correct {
        /// The line's worker.
        worker: WorkerId,
        /// The line's work item.
        work_item: WorkItemId,
        /// New work-days, hundredths.
        work_days_centi: i64,
        /// New hours, minutes (kept in step with the work-days: 8 hours a work-day).
        hours_min: i64,
        /// New overtime, minutes.
        overtime_min: i64,
        /// The amendment's reason (`None` on a day not approved).
        reason: Option<String>,
    },
}

/// One site-day: what the foreman entered, a delay if the weather stopped work, and what happened
/// to it after.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedDay {
    /// The lines as first entered.
    pub log: LogDay,
    /// What held work up, if anything.
    pub delay: Option<String>,
    /// Review steps in order.
    pub trail: Vec<Step>,
}

/// Who runs a site in the demo, and its calendar.
#[derive(Debug, Clone, Serialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct SitePlan {
    pub site: SiteId,
    /// Its short code (`HZ-01`).
    pub code: String,
    /// Today in the site's time zone: the last day of logs, still a draft.
    pub today: NaiveDate,
    /// Enters lines, submits, corrects.
    pub foreman: UserRef,
    /// Approves and rejects.
    pub manager: UserRef,
    /// Work items under way for two weeks or more and not past their planned end (so approved
    /// progress exists), earliest end first.
    pub under_way: Vec<WorkItemId>,
    /// The item whose gang builds less than planned.
    pub lagging: Option<WorkItemId>,
    /// The site's labor cost over the calendar quarter containing today, as planned (days past
    /// today included), in fen.
    pub quarter_cost_fen: i64,
    /// Workers whose lines today the foreman has not entered yet (the site's first crew): the README
    /// walkthrough enters two of them on two phones.
    pub not_yet_today: Vec<WorkerId>,
}

/// How a work item is built: when, how fast, by whom.
struct Template {
    /// Planned start, days after the first day of logs.
    start: i64,
    /// Planned length, days.
    days: i64,
    /// What one work-day builds, thousandths of the unit; `None` for a lump sum (1 项) done in step
    /// with the labor spent on it.
    per_work_day_milli: Option<i64>,
    /// Trades drawn first for the gang, best first.
    trades: &'static [&'static str],
    /// Gang size on a site of 50 workers.
    gang: i64,
}

/// The fixture's work items by WBS code; any other code gets a plain plan.
fn template(code: &str, index: usize) -> Template {
    let t = |start, days, per, trades, gang| Template {
        start,
        days,
        per_work_day_milli: per,
        trades,
        gang,
    };
    match code {
        "1.1" => t(0, 42, Some(25_000), &["general", "concrete"][..], 6),
        "1.2" => t(12, 46, Some(800), &["rebar", "welder", "concrete"][..], 6),
        "2.1" => t(26, 54, Some(12_000), &["concrete", "general"][..], 7),
        "2.2" => t(40, 76, Some(15_000), &["carpenter", "scaffolder", "welder"][..], 6),
        "3.1" => t(54, 84, Some(1_500), &["mason", "general", "concrete"][..], 5),
        "3.2" => t(10, 118, Some(40_000), &["scaffolder", "welder", "carpenter"][..], 5),
        "4.1" => t(60, 80, Some(18_000), &["plumber", "welder"][..], 5),
        "4.2" => t(76, 70, Some(15_000), &["electrician", "welder"][..], 5),
        "5.1" => t(0, 150, None, &["general"][..], 2),
        _ => t((index as i64 * 9) % 60, 60, Some(10_000), &[][..], 4),
    }
}

/// One worker's line on one day: (worker index, item index, work-days centi, hours min, overtime min).
type Line = (usize, usize, i64, i64, i64);

/// Weather and how much of the day it leaves: heavy rain stops work at noon.
const WEATHER: [(&str, i64); 6] = [
    ("晴", 30),
    ("多云", 24),
    ("阴", 16),
    ("小雨", 16),
    ("中雨", 10),
    ("大雨", 4),
];

/// The weather that stops work at noon.
const HEAVY_RAIN: &str = "大雨";

/// A site planned: its work items re-planned, its days, who runs it.
pub(super) struct Planned {
    /// The site with its work items' plans and budgets replaced.
    pub site: CompanySite,
    /// Who runs it and what is under way.
    pub plan: SitePlan,
    /// Its days, oldest first.
    pub days: Vec<PlannedDay>,
}

/// Plans one site's 90 days ending `today`.
pub(super) fn site(company: &Company, site: &CompanySite, today: NaiveDate, rng: &mut Rng) -> Result<Planned, Error> {
    let foreman = staff(company, "foreman", Some(&site.id))?;
    let manager = staff(company, "site_manager", Some(&site.id))?;
    let first = today - chrono::Days::new((DAYS - 1) as u64);
    let last = DAYS - 1;
    let date = |d: i64| first + chrono::Days::new(d as u64);

    // When, how fast and by whom each item is built.
    let templates: Vec<Template> = site
        .work_items
        .iter()
        .enumerate()
        .map(|(i, wi)| template(&wi.code, i))
        .collect();
    let windows: Vec<(i64, i64)> = templates
        .iter()
        .map(|t| {
            let start = (t.start + rng.range(-3, 3)).max(0);
            (start, start + t.days * rng.range(90, 110) / 100 - 1)
        })
        .collect();
    let gangs = gangs(site, &templates, &windows, rng)?;
    let in_progress_at =
        |i: usize, before: i64, after: i64| windows[i].0 <= last - before && windows[i].1 >= last + after;
    let pick = |rng: &mut Rng, of: Vec<usize>| (!of.is_empty()).then(|| of[rng.range(0, of.len() as i64 - 1) as usize]);
    let lagging = pick(rng, (0..windows.len()).filter(|&i| in_progress_at(i, 20, 10)).collect());
    let over_budget = pick(
        rng,
        (0..windows.len())
            .filter(|&i| windows[i].0 <= last - 10 && Some(i) != lagging)
            .collect(),
    );

    // Every day of every item's life, past and planned, drawn in one order so the seed fixes it.
    let horizon = windows.iter().map(|w| w.1).max().unwrap_or(last).max(last);
    let mut weather = Vec::new();
    let mut lines: Vec<Vec<Line>> = Vec::new();
    let mut nominal = vec![0i64; windows.len()];
    let mut built: Vec<Vec<i64>> = vec![vec![0; (last + 1) as usize]; windows.len()];
    let mut cost = vec![0i64; windows.len()];
    let mut centi_by_day: Vec<Vec<i64>> = vec![vec![0; (horizon + 1) as usize]; windows.len()];
    let (quarter_start, quarter_end) = sitesync_core::okr::Cycle::period(sitesync_core::okr::CycleKind::Quarter, today);
    let mut quarter_cost_fen = 0;
    for d in 0..=horizon {
        let w = weighted(rng, &WEATHER);
        weather.push(w);
        let mut today_lines = Vec::new();
        for (i, gang) in gangs.iter().enumerate() {
            if d < windows[i].0 || d > windows[i].1 {
                continue;
            }
            let mut centi = 0;
            for &k in gang {
                if !rng.chance(94) {
                    continue;
                }
                let (wd, hours, ot) = if w == HEAVY_RAIN || rng.chance(10) {
                    (50, 240, 0)
                } else if rng.chance(7) {
                    (100, 480, 60 * rng.range(1, 3))
                } else {
                    (100, 480, 0)
                };
                centi += wd;
                let worker = &site.workers[k];
                let fen = line_cost(
                    WorkDays::from_centi(wd)?,
                    Fen::new("day_rate_fen", worker.day_rate_fen)?,
                    Minutes::from_min("overtime_min", ot)?,
                    Fen::new("overtime_rate_fen_per_hour", worker.overtime_rate_fen_per_hour)?,
                )
                .fen();
                cost[i] += fen;
                if (quarter_start..=quarter_end).contains(&date(d)) {
                    quarter_cost_fen += fen;
                }
                today_lines.push((k, i, wd, hours, ot));
            }
            centi_by_day[i][d as usize] = centi;
            let noise = rng.range(85, 115);
            if let Some(per) = templates[i].per_work_day_milli {
                let qty = centi * per / 100 * noise / 100;
                nominal[i] += qty;
                if d <= last {
                    built[i][d as usize] = qty * if Some(i) == lagging { 78 } else { 100 } / 100;
                }
            }
        }
        lines.push(today_lines);
    }

    // The plan follows from the labor: quantity rounded up to whole units, cost plus margin.
    let mut planned_site = site.clone();
    for (i, wi) in planned_site.work_items.iter_mut().enumerate() {
        let total_centi: i64 = centi_by_day[i].iter().sum();
        match templates[i].per_work_day_milli {
            Some(_) => wi.planned_quantity_milli = ((nominal[i] + 999) / 1000).max(1) * 1000,
            None => {
                // A lump sum: 1 unit, done in the share of its labor spent so far.
                wi.planned_quantity_milli = 1000;
                let mut spent = 0;
                let mut done = 0;
                for d in 0..=last as usize {
                    spent += centi_by_day[i][d];
                    let now = if total_centi > 0 { spent * 1000 / total_centi } else { 0 };
                    built[i][d] = now - done;
                    done = now;
                }
            }
        }
        let margin = if Some(i) == over_budget {
            96
        } else {
            rng.range(104, 112)
        };
        wi.budget_fen = ((cost[i] * margin / 100 + 50_000) / 100_000).max(1) * 100_000;
        wi.planned_start = Some(date(windows[i].0));
        wi.planned_end = Some(date(windows[i].1));
    }

    let not_yet_today: Vec<WorkerId> = match site.crews.first() {
        Some(crew) => site
            .workers
            .iter()
            .filter(|w| w.crew == crew.id)
            .map(|w| w.id.clone())
            .collect(),
        None => Vec::new(),
    };
    let mut days: Vec<PlannedDay> = (0..=last)
        .map(|d| {
            let is_today = d == last;
            let heavy = weather[d as usize] == HEAVY_RAIN;
            let mut labor: Vec<LogLabor> = lines[d as usize]
                .iter()
                .filter(|l| !(is_today && not_yet_today.contains(&site.workers[l.0].id)))
                .map(|&(k, i, wd, hours, ot)| LogLabor {
                    worker: site.workers[k].id.clone(),
                    work_item: site.work_items[i].id.clone(),
                    work_days_centi: wd,
                    hours_min: hours,
                    overtime_min: ot,
                    kind: "day_labor".into(),
                    rate_fen: site.workers[k].day_rate_fen,
                    note: String::new(),
                })
                .collect();
            labor.sort_by(|a, b| (&a.worker, &a.work_item).cmp(&(&b.worker, &b.work_item)));
            // Progress is entered at the end of the day: today has none yet.
            let progress = (0..windows.len())
                .filter(|&i| !is_today && built[i][d as usize] > 0)
                .map(|i| LogProgress {
                    work_item: site.work_items[i].id.clone(),
                    quantity_milli: built[i][d as usize],
                    cumulative_milli: 0,
                    note: String::new(),
                })
                .collect();
            let age = last - d;
            PlannedDay {
                log: LogDay {
                    site: site.id.clone(),
                    date: date(d),
                    weather: weather[d as usize].to_string(),
                    labor,
                    progress,
                    note: if heavy {
                        "大雨，下午停工".into()
                    } else {
                        String::new()
                    },
                },
                delay: heavy.then(|| "大雨停工半天".to_string()),
                trail: match age {
                    0 => Vec::new(),
                    a if a <= WAITING_DAYS => vec![Step::Submit],
                    _ => vec![Step::Submit, Step::Approve],
                },
            }
        })
        .collect();
    stories(site, &mut days, rng)?;

    let mut under_way: Vec<usize> = (0..windows.len()).filter(|&i| in_progress_at(i, 14, 0)).collect();
    under_way.sort_by_key(|&i| (windows[i].1, i));
    Ok(Planned {
        site: planned_site,
        plan: SitePlan {
            site: site.id.clone(),
            code: site.code.clone(),
            today,
            foreman,
            manager,
            under_way: under_way.iter().map(|&i| site.work_items[i].id.clone()).collect(),
            lagging: lagging.map(|i| site.work_items[i].id.clone()),
            quarter_cost_fen,
            not_yet_today,
        },
        days,
    })
}

fn weighted<'a>(rng: &mut Rng, table: &[(&'a str, i64)]) -> &'a str {
    let total: i64 = table.iter().map(|t| t.1).sum();
    let mut roll = rng.range(0, total - 1);
    for (name, weight) in table {
        if roll < *weight {
            return name;
        }
        roll -= weight;
    }
    table[0].0
}

/// A gang per work item: workers free for the item's whole window, of its trades first. A worker is
/// in one gang at a time, so nobody works two items (or more than a day) in a day.
fn gangs(
    site: &CompanySite,
    templates: &[Template],
    windows: &[(i64, i64)],
    rng: &mut Rng,
) -> Result<Vec<Vec<usize>>, Error> {
    let n = site.workers.len();
    let active = site.workers.iter().filter(|w| w.active).count() as i64;
    let mut busy: Vec<Vec<(i64, i64)>> = vec![Vec::new(); n];
    let mut gangs = vec![Vec::new(); templates.len()];
    let mut order: Vec<usize> = (0..templates.len()).collect();
    order.sort_by_key(|&i| (windows[i].0, i));
    for i in order {
        let (s, e) = windows[i];
        let want = ((templates[i].gang * active + 25) / 50).max(1) as usize;
        let offset = rng.range(0, n as i64 - 1) as usize;
        let rank = |k: usize| {
            templates[i]
                .trades
                .iter()
                .position(|t| *t == site.workers[k].trade)
                .unwrap_or(templates[i].trades.len())
        };
        let mut free: Vec<usize> = (0..n)
            .filter(|&k| site.workers[k].active && busy[k].iter().all(|&(a, b)| b < s || a > e))
            .collect();
        free.sort_by_key(|&k| (rank(k), (k + n - offset) % n));
        free.truncate(want);
        if free.is_empty() {
            return Err(Error::Roster(format!(
                "{}: no worker is free for {}",
                site.id, site.work_items[i].id
            )));
        }
        for &k in &free {
            busy[k].push((s, e));
        }
        gangs[i] = free;
    }
    Ok(gangs)
}

/// The days that are not plain: per site one day rejected in the last week and not yet resubmitted,
/// one amended after approval and waiting for a new decision, one rejected, fixed and approved, and
/// one amended and approved again.
fn stories(site: &CompanySite, days: &mut [PlannedDay], rng: &mut Rng) -> Result<(), Error> {
    let name = |w: &WorkerId| {
        site.workers
            .iter()
            .find(|x| &x.id == w)
            .map_or_else(|| w.to_string(), |x| x.name.clone())
    };
    // A day of the age range with a full-day line without overtime, not cut short by rain.
    let find = |days: &[PlannedDay], rng: &mut Rng, lo: i64, hi: i64| -> Result<(usize, usize), Error> {
        let last = days.len() as i64 - 1;
        let start = rng.range(lo, hi);
        (start..=hi)
            .chain(lo..start)
            .filter_map(|age| {
                let d = (last - age) as usize;
                let day = &days[d];
                (day.delay.is_none())
                    .then(|| {
                        day.log
                            .labor
                            .iter()
                            .position(|l| l.work_days_centi == 100 && l.overtime_min == 0)
                    })
                    .flatten()
                    .map(|l| (d, l))
            })
            .next()
            .ok_or_else(|| Error::Roster(format!("{}: no day of age {lo}..={hi} to tell a story with", site.id)))
    };
    let correct = |l: &LogLabor, wd: i64, ot: i64, reason: Option<String>| Step::Correct {
        worker: l.worker.clone(),
        work_item: l.work_item.clone(),
        work_days_centi: wd,
        hours_min: wd * 480 / 100,
        overtime_min: ot,
        reason,
    };

    let (d, l) = find(days, rng, 2, WAITING_DAYS)?;
    let who = name(&days[d].log.labor[l].worker);
    days[d].trail = vec![
        Step::Submit,
        Step::Reject {
            reason: format!("{who} 的工日与考勤机记录不符，请核对后重新提交"),
        },
    ];

    let (d, l) = find(days, rng, WAITING_DAYS + 2, 20)?;
    let line = &days[d].log.labor[l];
    let step = correct(line, 50, 0, Some(format!("{} 下午请假，按半天计", name(&line.worker))));
    days[d].trail = vec![Step::Submit, Step::Approve, step];

    // The foreman entered two hours of overtime nobody signed for; the manager sends the day back.
    let (d, l) = find(days, rng, 21, 40)?;
    days[d].log.labor[l].overtime_min = 120;
    let line = &days[d].log.labor[l];
    let who = name(&line.worker);
    let fix = correct(line, 100, 0, None);
    days[d].trail = vec![
        Step::Submit,
        Step::Reject {
            reason: format!("{who} 加班 2 小时没有签字单，请核实"),
        },
        fix,
        Step::Submit,
        Step::Approve,
    ];

    let (d, l) = find(days, rng, 41, DAYS - 20)?;
    let line = &days[d].log.labor[l];
    let step = correct(
        line,
        100,
        60,
        Some(format!("{} 漏记加班 1 小时，补录", name(&line.worker))),
    );
    days[d].trail = vec![Step::Submit, Step::Approve, step, Step::Approve];
    Ok(())
}

/// The calendar quarter containing `date`, as a cycle id (`2026-Q4`).
pub fn quarter_id(date: NaiveDate) -> String {
    format!("{}-Q{}", date.year(), date.month0() / 3 + 1)
}
