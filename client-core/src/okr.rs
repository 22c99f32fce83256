//! OKRs as plain records: cycles, objectives, key results, check-ins, reviews and scores, and the
//! arithmetic of progress, status and score.
//!
//! Values are fixed-point thousandths of the key result's unit (`value_milli`), like every quantity
//! in sitesync. Progress is a fraction 0–1 of the way from the start value to the target; status
//! compares it with the share of the cycle elapsed; the end-of-cycle score is progress rounded to
//! one decimal.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// How long a cycle runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CycleKind {
    /// A calendar quarter (the default).
    Quarter,
    /// A calendar month.
    Month,
    /// A calendar year.
    Year,
}

impl CycleKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CycleKind::Quarter => "quarter",
            CycleKind::Month => "month",
            CycleKind::Year => "year",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<CycleKind> {
        match s {
            "quarter" => Some(CycleKind::Quarter),
            "month" => Some(CycleKind::Month),
            "year" => Some(CycleKind::Year),
            _ => None,
        }
    }
}

/// Where a key result stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub enum Status {
    Green,
    Yellow,
    Red,
}

impl Status {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Green => "green",
            Status::Yellow => "yellow",
            Status::Red => "red",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "green" => Some(Status::Green),
            "yellow" => Some(Status::Yellow),
            "red" => Some(Status::Red),
            _ => None,
        }
    }
}

/// Which way a key result should move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Raise the value to the target.
    Increase,
    /// Lower the value to the target.
    Decrease,
    /// Keep the value at or above the target.
    AtLeast,
    /// Keep the value at or below the target.
    AtMost,
}

impl Direction {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Increase => "increase",
            Direction::Decrease => "decrease",
            Direction::AtLeast => "at_least",
            Direction::AtMost => "at_most",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Direction> {
        match s {
            "increase" => Some(Direction::Increase),
            "decrease" => Some(Direction::Decrease),
            "at_least" => Some(Direction::AtLeast),
            "at_most" => Some(Direction::AtMost),
            _ => None,
        }
    }
}

/// 保底 baseline (committed) or 冲刺 stretch (aspirational).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KrKind {
    /// 保底: expected to be met in full.
    Baseline,
    /// 冲刺: 0.7 is a good result.
    Stretch,
}

impl KrKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            KrKind::Baseline => "baseline",
            KrKind::Stretch => "stretch",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<KrKind> {
        match s {
            "baseline" => Some(KrKind::Baseline),
            "stretch" => Some(KrKind::Stretch),
            _ => None,
        }
    }
}

/// A field metric a key result can be bound to; the server computes it from approved data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "metric", rename_all = "snake_case")]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub enum Metric {
    /// Labor cost in yuan, of a site or one of its work items, over the cycle.
    LaborCost {
        site: String,
        /// One work item, or the whole site.
        work_item: Option<String>,
    },
    /// Work-days logged, of a site or one of its work items, over the cycle.
    WorkDays {
        site: String,
        /// One work item, or the whole site.
        work_item: Option<String>,
    },
    /// Labor cost in yuan per unit of a work item installed, over the cycle.
    CostPerUnit {
        site: String,
        /// The work item.
        work_item: String,
    },
    /// Percent of a work item's planned quantity installed to date.
    ProgressPercent {
        site: String,
        /// The work item.
        work_item: String,
    },
    /// Percent of the cycle's days so far with a submitted (or approved) log.
    LogCoverage { site: String },
    /// Cost performance index (earned value ÷ cost, see [`crate::report::cost`]) of a site or one
    /// of its work items, over everything approved to date; 1.000 is on budget, below is over.
    CostPerformance {
        site: String,
        /// One work item, or the whole site.
        work_item: Option<String>,
    },
}

/// Thresholds of the traffic light: how far (in percentage points) progress may trail the share of
/// the cycle elapsed and still be green, or yellow.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Green while progress trails time by at most this many points (default 10).
    pub green_within: f64,
    /// Yellow while it trails by at most this many (default 25); red beyond.
    pub yellow_within: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            green_within: 10.0,
            yellow_within: 25.0,
        }
    }
}

/// An OKR cycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct Cycle {
    pub org: String,
    /// The cycle id, e.g. `2026-Q4`.
    pub id: String,
    /// Quarter, month or year.
    pub kind: CycleKind,
    pub title: String,
    /// The team, or "" for the whole org.
    pub team: String,
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// Days between mid-cycle reviews (default 14).
    pub review_every_days: i64,
    pub thresholds: Thresholds,
    /// Retrospective notes, once the cycle is closed.
    pub retrospective: String,
    /// Whether the cycle is closed and scored.
    pub closed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct Objective {
    pub id: String,
    pub title: String,
    pub owner: String,
    pub team: String,
    /// The objective this one supports (top-down alignment), if any.
    pub parent: Option<String>,
}

/// A key result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct KeyResult {
    pub id: String,
    /// The objective it measures.
    pub objective: String,
    pub title: String,
    pub owner: String,
    /// Unit (days, %, SKUs, ¥ …).
    pub unit: String,
    /// Baseline value, thousandths.
    pub start_milli: i64,
    /// Target value, thousandths.
    pub target_milli: i64,
    /// Which way it should move.
    pub direction: Direction,
    /// Baseline or stretch.
    pub kind: KrKind,
    /// Weight in its objective's roll-up (default 1).
    pub weight: i64,
    pub due: NaiveDate,
    /// The field metric feeding it, if any.
    pub metric: Option<Metric>,
    /// A status the owner set by hand, with the reason.
    pub status_override: Option<(Status, String)>,
}

/// A check-in on a key result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct CheckIn {
    /// Random id: concurrent check-ins never collide.
    pub id: String,
    /// The key result.
    pub kr: String,
    /// The value, thousandths.
    pub value_milli: i64,
    /// The author's own traffic light, if given.
    pub status: Option<Status>,
    /// Confidence 0–10, if given.
    pub confidence: Option<i64>,
    pub note: String,
    /// Who (`system` for metric-fed values).
    pub author: String,
    /// The date the value is for.
    pub date: NaiveDate,
    /// When it was recorded.
    pub at: DateTime<Utc>,
}

/// A mid-cycle review: the values at the time, to compare the next review against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct Review {
    pub id: String,
    /// The date of the review.
    pub date: NaiveDate,
    /// Who held it.
    pub by: String,
    pub notes: String,
    /// Each key result's value at the review, thousandths.
    pub values: Vec<(String, i64)>,
}

/// Progress (0–1) of a key result at `current`.
pub fn progress(kr: &KeyResult, current: i64) -> f64 {
    let linear = || {
        let span = (kr.target_milli - kr.start_milli) as f64;
        if span == 0.0 {
            1.0
        } else {
            ((current - kr.start_milli) as f64 / span).clamp(0.0, 1.0)
        }
    };
    match kr.direction {
        Direction::Increase | Direction::Decrease => linear(),
        Direction::AtLeast if current >= kr.target_milli => 1.0,
        Direction::AtMost if current <= kr.target_milli => 1.0,
        Direction::AtLeast | Direction::AtMost => linear().min(0.99),
    }
}

/// The share (0–1) of a cycle elapsed on `today`.
pub fn elapsed(cycle: &Cycle, today: NaiveDate) -> f64 {
    let span = (cycle.end - cycle.start).num_days() + 1;
    (((today - cycle.start).num_days() + 1) as f64 / span as f64).clamp(0.0, 1.0)
}

/// The traffic light of a key result with `progress` when `elapsed` of the cycle has passed.
pub fn status(kr: &KeyResult, progress: f64, elapsed: f64, t: &Thresholds) -> Status {
    if let Some((s, _)) = &kr.status_override {
        return *s;
    }
    match kr.direction {
        // A "stay" key result is on track while it holds.
        Direction::AtLeast | Direction::AtMost => {
            if progress >= 1.0 {
                Status::Green
            } else if progress >= 0.9 {
                Status::Yellow
            } else {
                Status::Red
            }
        }
        Direction::Increase | Direction::Decrease => {
            let behind = (elapsed - progress) * 100.0;
            if behind <= t.green_within {
                Status::Green
            } else if behind <= t.yellow_within {
                Status::Yellow
            } else {
                Status::Red
            }
        }
    }
}

/// The end-of-cycle score: progress rounded to one decimal.
pub fn score(progress: f64) -> f64 {
    (progress * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kr(direction: Direction, start: i64, target: i64) -> KeyResult {
        KeyResult {
            id: "k".into(),
            objective: "o".into(),
            title: "t".into(),
            owner: "o".into(),
            unit: "days".into(),
            start_milli: start,
            target_milli: target,
            direction,
            kind: KrKind::Baseline,
            weight: 1,
            due: NaiveDate::from_ymd_opt(2026, 12, 31).unwrap(),
            metric: None,
            status_override: None,
        }
    }

    #[test]
    fn progress_follows_the_direction() {
        let down = kr(Direction::Decrease, 7_000, 4_000);
        assert_eq!(progress(&down, 7_000), 0.0);
        assert_eq!(progress(&down, 5_500), 0.5);
        assert_eq!(progress(&down, 4_000), 1.0);
        assert_eq!(progress(&down, 3_000), 1.0);
        let up = kr(Direction::Increase, 0, 80_000);
        assert_eq!(progress(&up, 20_000), 0.25);
        let stay = kr(Direction::AtLeast, 80_000, 95_000);
        assert_eq!(progress(&stay, 96_000), 1.0);
        assert!(progress(&stay, 94_000) < 1.0);
    }

    #[test]
    fn status_compares_progress_with_time() {
        let t = Thresholds::default();
        let up = kr(Direction::Increase, 0, 100_000);
        assert_eq!(status(&up, 0.5, 0.55, &t), Status::Green);
        assert_eq!(status(&up, 0.5, 0.7, &t), Status::Yellow);
        assert_eq!(status(&up, 0.2, 0.7, &t), Status::Red);
        let mut overridden = up.clone();
        overridden.status_override = Some((Status::Yellow, "supplier strike".into()));
        assert_eq!(status(&overridden, 1.0, 0.1, &t), Status::Yellow);
        assert_eq!(score(0.66), 0.7);
    }
}
