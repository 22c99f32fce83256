//! The demo's OKRs as data: last quarter's cycle, checked in every two weeks and closed with scores,
//! and this quarter's under way. This quarter has key results fed from field data (the progress of
//! the work item each site is busy with, HZ-01's labor cost and its log coverage), which the server
//! computes from approved days, and key results people check in on: on track, at risk and off track.
//!
//! A checked-in value is placed where its status says it is (on track: 3 points ahead of the share of
//! the cycle elapsed; at risk: 17 behind; off track: 35 behind). Early in a quarter "behind" has no
//! room yet (nor has a count of a few, checked in whole), so where the value alone does not show the
//! intended status today, the owner overrides it with a note, as a person would.

use chrono::{Days, NaiveDate};
use serde::Serialize;
use sitesync_core::ids::WorkItemId;
use sitesync_core::import::CompanySite;
use sitesync_core::okr::{self, Cycle, CycleKind, Direction, KeyResult, KrKind, Metric, Status};

use super::plan::{SitePlan, UserRef, quarter_id};

/// A cycle to create, with what happens in it.
#[derive(Debug, Clone, Serialize)]
pub struct CyclePlan {
    /// The cycle's settings.
    pub cycle: Cycle,
    /// Its objectives, parents before children.
    pub objectives: Vec<ObjectivePlan>,
    /// Check-ins, reviews and overrides, in the order they happen.
    pub events: Vec<Event>,
    /// Closes the cycle with this retrospective (`None`: still open).
    pub retrospective: Option<String>,
}

/// An objective (written by head office, whoever owns it).
#[derive(Debug, Clone, Serialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct ObjectivePlan {
    pub title: String,
    pub owner: UserRef,
    pub team: String,
    /// The objective it supports, by index in the cycle.
    pub parent: Option<usize>,
    /// Its key results.
    pub key_results: Vec<KrPlan>,
}

/// A key result (written by head office; checked in by its owner or fed by the server).
#[derive(Debug, Clone, Serialize)]
pub struct KrPlan {
    /// The record as written, but for its `id` and `objective`, which are made when it is written
    /// (empty here); `owner` is the owner's name, as people write it.
    pub kr: KeyResult,
    /// Its owner, who checks in and may override the status.
    pub owner: UserRef,
    /// Where its check-ins place it (`None` for a fed key result).
    pub intended: Option<Status>,
}

/// A key result to plan, from its start to its target (thousandths): weight 1, a baseline.
fn key_result(
    title: String,
    owner: &UserRef,
    unit: &str,
    (start_milli, target_milli): (i64, i64),
    direction: Direction,
    due: NaiveDate,
    metric: Option<Metric>,
) -> KeyResult {
    KeyResult {
        id: String::new(),
        objective: String::new(),
        title,
        owner: owner.name.clone(),
        unit: unit.into(),
        start_milli,
        target_milli,
        direction,
        kind: KrKind::Baseline,
        weight: 1,
        due,
        metric,
        status_override: None,
    }
}

/// Something that happens in a cycle. Key results are named by (objective, key result) index.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub enum Event {
    /// The key result's owner checks in.
    CheckIn {
        objective: usize,
        /// Key result index within it.
        kr: usize,
        /// The date the value is for.
        date: NaiveDate,
        /// The value, thousandths of the unit.
        value_milli: i64,
        /// The owner's judgement.
        status: Status,
        /// Confidence 0–10.
        confidence: i64,
        note: String,
    },
    /// Head office holds the fortnightly review.
    Review { date: NaiveDate, notes: String },
    /// The owner overrides the status the numbers give.
    Override {
        objective: usize,
        /// Key result index within it.
        kr: usize,
        /// The status the owner sees.
        status: Status,
        note: String,
    },
}

/// Builds a key result checked in by people.
fn manual(
    title: &str,
    owner: &UserRef,
    unit: &str,
    start: i64,
    target: i64,
    due: NaiveDate,
    intended: Status,
) -> KrPlan {
    let direction = if target >= start {
        Direction::Increase
    } else {
        Direction::Decrease
    };
    KrPlan {
        kr: key_result(
            title.into(),
            owner,
            unit,
            (start * 1000, target * 1000),
            direction,
            due,
            None,
        ),
        owner: owner.clone(),
        intended: Some(intended),
    }
}

/// Builds a key result fed from field data.
fn fed(
    title: String,
    owner: &UserRef,
    unit: &str,
    target_milli: i64,
    direction: Direction,
    due: NaiveDate,
    metric: Metric,
) -> KrPlan {
    KrPlan {
        kr: key_result(title, owner, unit, (0, target_milli), direction, due, Some(metric)),
        owner: owner.clone(),
        intended: None,
    }
}

fn objective(
    title: &str,
    owner: &UserRef,
    team: &str,
    parent: Option<usize>,
    key_results: Vec<KrPlan>,
) -> ObjectivePlan {
    ObjectivePlan {
        title: title.into(),
        owner: owner.clone(),
        team: team.into(),
        parent,
        key_results,
    }
}

/// The quarter containing `date` as a cycle.
fn quarter(org: &str, date: NaiveDate) -> Cycle {
    let id = quarter_id(date);
    let q = &id[id.len() - 1..];
    let name = match q {
        "1" => "一",
        "2" => "二",
        "3" => "三",
        _ => "四",
    };
    let year = &id[..4];
    Cycle::new(org, &id, CycleKind::Quarter, &format!("{year} 第{name}季度"), "", date)
}

/// Last quarter's cycle (closed) and this quarter's (open), as of `today`.
pub(super) fn cycles(
    org: &str,
    head: &UserRef,
    sites: &[SitePlan],
    rosters: &[CompanySite],
    today: NaiveDate,
) -> Vec<CyclePlan> {
    let current = quarter(org, today);
    let previous = quarter(org, current.start - Days::new(1));
    vec![
        last_quarter(previous, head, sites),
        this_quarter(current, head, sites, rosters, today),
    ]
}

fn last_quarter(cycle: Cycle, head: &UserRef, sites: &[SitePlan]) -> CyclePlan {
    let due = cycle.end;
    let second = sites.get(1).map_or(head, |s| &s.manager);
    let objectives = vec![
        objective(
            "地下室及基础工程按期完成",
            head,
            "",
            None,
            vec![
                manual("各项目基础验收通过 3 个", head, "个", 0, 3, due, Status::Green),
                manual(
                    "桩基承台钢筋绑扎按期完成率 100%",
                    second,
                    "%",
                    0,
                    100,
                    due,
                    Status::Yellow,
                ),
            ],
        ),
        objective(
            "点工记录上线",
            head,
            "",
            None,
            vec![
                manual("日报上线项目 3 个", head, "个", 0, 3, due, Status::Green),
                manual("班组长培训 30 人", head, "人", 0, 30, due, Status::Yellow),
            ],
        ),
        objective(
            "人工成本可控",
            head,
            "",
            None,
            vec![
                manual("人工费超支工作项 4 → 0 项", head, "项", 4, 0, due, Status::Red),
                manual("点工结算差错 10 → 6 次", head, "次", 10, 6, due, Status::Green),
            ],
        ),
    ];
    let events = check_ins(&cycle, &objectives, cycle.end, cycle.start + Days::new(42));
    CyclePlan {
        cycle,
        objectives,
        events,
        retrospective: Some(
            "基础工程按期完成；人工费超支项没有清零，本季度按工作项定预算，由现场数据自动跟踪。".into(),
        ),
    }
}

fn this_quarter(
    cycle: Cycle,
    head: &UserRef,
    sites: &[SitePlan],
    rosters: &[CompanySite],
    today: NaiveDate,
) -> CyclePlan {
    let due = cycle.end;
    let item = |site: &SitePlan, id: &WorkItemId| {
        rosters
            .iter()
            .filter(|r| r.id == site.site)
            .flat_map(|r| &r.work_items)
            .find(|w| &w.id == id)
            .map_or_else(|| id.to_string(), |w| format!("{} {}", w.code, w.name))
    };
    // Progress of the item each site is busy with; the last site's is the item that lags.
    let progress = sites
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let busy = s.under_way.iter().find(|w| Some(*w) != s.lagging.as_ref());
            let chosen = if i + 1 == sites.len() {
                s.lagging.as_ref().or(busy)
            } else {
                busy.or(s.lagging.as_ref())
            }?;
            Some(fed(
                format!("{} {} 完成 100%", s.code, item(s, chosen)),
                &s.manager,
                "%",
                100_000,
                Direction::Increase,
                due,
                Metric::ProgressPercent {
                    site: s.site.to_string(),
                    work_item: chosen.to_string(),
                },
            ))
        })
        .collect();
    let mut objectives = vec![objective("各项目主体施工按计划推进", head, "", None, progress)];
    if let Some(first) = sites.first() {
        // The quarter's planned labor plus 5 %, in whole ten-thousands of yuan.
        let cap_yuan = ((first.quarter_cost_fen * 105 / 100 / 100 + 9_999) / 10_000).max(1) * 10_000;
        objectives.push(objective(
            "人工成本控制在预算内",
            head,
            "",
            None,
            vec![
                fed(
                    format!(
                        "{} 本季度人工费不超过 {}",
                        first.code,
                        sitesync_core::units::yuan(cap_yuan * 100)
                    ),
                    head,
                    "¥",
                    cap_yuan * 1000,
                    Direction::AtMost,
                    due,
                    Metric::LaborCost {
                        site: first.site.to_string(),
                        work_item: None,
                    },
                ),
                manual("点工结算差错率 6% → 1%", head, "%", 6, 1, due, Status::Yellow),
            ],
        ));
        objectives.push(objective(
            "日报当天提交、一周内审批",
            head,
            "",
            None,
            vec![
                fed(
                    format!("{} 日报覆盖率不低于 90%", first.code),
                    head,
                    "%",
                    90_000,
                    Direction::AtLeast,
                    due,
                    Metric::LogCoverage {
                        site: first.site.to_string(),
                    },
                ),
                manual("平均审批周期 6 → 3 天", head, "天", 6, 3, due, Status::Green),
            ],
        ));
        objectives.push(objective(
            &format!("{} 项目部安全文明施工", first.code),
            &first.manager,
            &first.code,
            Some(0),
            vec![
                manual("隐患整改闭环 40 项", &first.manager, "项", 0, 40, due, Status::Green),
                manual(
                    "实名制考勤覆盖 60% → 100%",
                    &first.manager,
                    "%",
                    60,
                    100,
                    due,
                    Status::Red,
                ),
            ],
        ));
    }
    let mut events = check_ins(&cycle, &objectives, today, cycle.start + Days::new(14));
    events.extend(overrides(&cycle, &objectives, &events, today));
    CyclePlan {
        cycle,
        objectives,
        events,
        retrospective: None,
    }
}

/// Where a value with `intended` status sits on `date`, as a share of the way from start to target.
fn share(intended: Status, elapsed: f64) -> f64 {
    match intended {
        Status::Green => (elapsed + 0.03).min(1.0),
        Status::Yellow => (elapsed - 0.17).max(0.0),
        Status::Red => (elapsed - 0.35).max(0.0),
    }
}

/// Counts are checked in whole; other units to a tenth.
fn rounding(unit: &str) -> i64 {
    if matches!(unit, "个" | "人" | "项" | "次") {
        1000
    } else {
        100
    }
}

/// Fortnightly check-ins on every key result people check in on, from a week into the cycle up to
/// `until` (at least one, on `until`), and one review on `review` if it falls by then.
fn check_ins(cycle: &Cycle, objectives: &[ObjectivePlan], until: NaiveDate, review: NaiveDate) -> Vec<Event> {
    let until = until.min(cycle.end);
    let mut dates: Vec<NaiveDate> =
        std::iter::successors(Some(cycle.start + Days::new(7)), |d| Some(*d + Days::new(14)))
            .take_while(|d| *d <= until)
            .collect();
    if dates.last() != Some(&until) && until >= cycle.start {
        dates.push(until);
    }
    let mut events = Vec::new();
    for date in dates {
        if review <= date && !events.iter().any(|e| matches!(e, Event::Review { .. })) && review <= until {
            events.push(Event::Review {
                date: review,
                notes: "双周例会：逐项过关键结果，滞后项明确责任人和追赶计划".into(),
            });
        }
        let elapsed = okr::elapsed(cycle, date);
        for (o, obj) in objectives.iter().enumerate() {
            for (k, plan) in obj.key_results.iter().enumerate() {
                let Some(intended) = plan.intended else { continue };
                let kr = &plan.kr;
                let step = rounding(&kr.unit);
                let raw = kr.start_milli as f64 + (kr.target_milli - kr.start_milli) as f64 * share(intended, elapsed);
                let (confidence, note) = match intended {
                    Status::Green => (8, "按计划推进"),
                    Status::Yellow => (6, "略有滞后，已加派人手"),
                    Status::Red => (3, "严重滞后，需要总部协调"),
                };
                events.push(Event::CheckIn {
                    objective: o,
                    kr: k,
                    date,
                    value_milli: (raw / step as f64).round() as i64 * step,
                    status: intended,
                    confidence,
                    note: note.into(),
                });
            }
        }
    }
    events
}

/// Overrides by the owner where the last check-in does not by itself show the intended status today.
fn overrides(cycle: &Cycle, objectives: &[ObjectivePlan], events: &[Event], today: NaiveDate) -> Vec<Event> {
    let elapsed = okr::elapsed(cycle, today);
    let mut out = Vec::new();
    for (o, obj) in objectives.iter().enumerate() {
        for (k, plan) in obj.key_results.iter().enumerate() {
            let Some(intended) = plan.intended else { continue };
            let kr = &plan.kr;
            let last = events.iter().rev().find_map(|e| match e {
                Event::CheckIn {
                    objective,
                    kr: i,
                    value_milli,
                    ..
                } if *objective == o && *i == k => Some(*value_milli),
                _ => None,
            });
            let value = last.unwrap_or(kr.start_milli);
            if okr::status(kr, okr::progress(kr, value), elapsed, &cycle.thresholds) != intended {
                out.push(Event::Override {
                    objective: o,
                    kr: k,
                    status: intended,
                    note: "数字还没反映出来，按负责人判断".into(),
                });
            }
        }
    }
    out
}
