//! OKR operations on the store: cycles, objectives, key results, check-ins, overrides, reviews,
//! closing, the board, and key results fed by field metrics.
//!
//! Why one file: the board, the check-ins and the metric feed read one OKR document's content the
//! same way; the feed's figures and the board's warnings must agree line for line.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate, Utc};
use serde::Serialize;

use super::Store;
use crate::doc::okr as doc;
use crate::error::{Error, Result};
use crate::ids::{DocId, OrgId, SiteId};
use crate::labor::DayStatus;
use crate::okr::{self, CheckIn, Cycle, CycleKind, Direction, KeyResult, KrKind, Metric, Objective, Review, Status};
use crate::report::cost::{self, CostPerformance};
use crate::store::RowFilter;
use crate::units::add_saturating;
use crate::validate::{self, Invalid};

/// A computed metric as an `i64`, saturating instead of wrapping.
fn narrow(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// A key result to add. `target` and `due` are optional here only so that leaving them out is a
/// typed validation error (SMART: measurable and time-bound), not a compile error in a form.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct NewKeyResult {
    /// The objective it measures.
    pub objective: String,
    pub title: String,
    pub owner: String,
    pub unit: String,
    /// Baseline, thousandths.
    pub start_milli: i64,
    /// Target, thousandths.
    pub target_milli: Option<i64>,
    pub direction: Direction,
    /// Baseline or stretch.
    pub kind: KrKind,
    /// Weight (default 1).
    pub weight: i64,
    pub due: Option<NaiveDate>,
    /// Field metric feeding it.
    pub metric: Option<Metric>,
}

/// A key result on the board.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct KrView {
    /// The key result.
    #[serde(flatten)]
    pub kr: KeyResult,
    /// Current value (the latest check-in by date, else the start), thousandths.
    pub current_milli: i64,
    /// Progress 0–1.
    pub progress: f64,
    pub status: Status,
    /// The latest check-in.
    pub last_checkin: Option<CheckIn>,
    /// Number of check-ins.
    pub checkins: usize,
    /// Final score 0.0–1.0, once the cycle is closed.
    pub score: Option<f64>,
    /// Why the key result's metric is not fed (its site is not the org's, or its owner may not read
    /// it), where the server says so; `None` on a phone's own board.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_refused: Option<String>,
}

/// An objective on the board.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct ObjectiveView {
    #[serde(flatten)]
    pub objective: Objective,
    /// Weighted progress of its key results, 0–1.
    pub progress: f64,
    /// Its worst key result's status.
    pub status: Status,
    /// Final score 0.0–1.0, once closed.
    pub score: Option<f64>,
    /// Retrospective note, once closed.
    pub retrospective: Option<String>,
    /// Its key results.
    pub key_results: Vec<KrView>,
}

/// A node of the alignment tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct AlignmentNode {
    pub id: String,
    pub title: String,
    /// Objectives supporting it.
    pub children: Vec<AlignmentNode>,
}

/// What changed for a key result since the last review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct KrChange {
    /// Key result id.
    pub kr: String,
    pub title: String,
    /// Value at the last review (`None`: no review yet, or the key result is new).
    pub at_review_milli: Option<i64>,
    pub now_milli: i64,
}

/// A cycle at a glance.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct Board {
    pub cycle: Cycle,
    /// The day the board is computed for.
    pub today: NaiveDate,
    /// Share of the cycle elapsed, 0–1.
    pub elapsed: f64,
    /// Objectives with their key results.
    pub objectives: Vec<ObjectiveView>,
    /// The alignment tree (roots: objectives without a parent in this cycle).
    pub alignment: Vec<AlignmentNode>,
    /// Good-practice warnings (3–5 objectives, 2–4 key results each).
    pub warnings: Vec<String>,
    /// Reviews held so far.
    pub reviews: Vec<Review>,
    /// When the next mid-cycle review is due.
    pub next_review: NaiveDate,
    /// What changed per key result since the last review.
    pub since_last_review: Vec<KrChange>,
}

/// A short random id with a prefix.
fn new_id(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

impl Cycle {
    /// A new open cycle over the calendar quarter, month or year containing `date`, reviewed every
    /// two weeks, with the default traffic-light thresholds.
    pub fn new(org: &str, id: &str, kind: CycleKind, title: &str, team: &str, date: NaiveDate) -> Cycle {
        let (start, end) = Cycle::period(kind, date);
        Cycle {
            org: org.to_string(),
            id: id.to_string(),
            kind,
            title: title.to_string(),
            team: team.to_string(),
            start,
            end,
            review_every_days: 14,
            thresholds: okr::Thresholds::default(),
            retrospective: String::new(),
            closed: false,
        }
    }

    /// The calendar quarter, month or year containing `date`.
    pub fn period(kind: CycleKind, date: NaiveDate) -> (NaiveDate, NaiveDate) {
        let ymd = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("valid date");
        let (start, months) = match kind {
            CycleKind::Month => (ymd(date.year(), date.month(), 1), 1),
            CycleKind::Quarter => (ymd(date.year(), (date.month0() / 3) * 3 + 1, 1), 3),
            CycleKind::Year => (ymd(date.year(), 1, 1), 12),
        };
        let end = start
            .checked_add_months(chrono::Months::new(months))
            .and_then(|d| d.pred_opt())
            .expect("valid date");
        (start, end)
    }
}

impl Store {
    fn okr_doc(org: &str, cycle: &str) -> Result<DocId> {
        crate::ids::check_cycle(cycle)?;
        Ok(DocId::Okr(OrgId::new(org)?, cycle.to_string()))
    }

    fn okr_content(&mut self, org: &str, cycle: &str) -> Result<doc::OkrContent> {
        let id = Self::okr_doc(org, cycle)?;
        let content = self.read_doc(&id, |d| doc::read(d, org, cycle))?;
        match content {
            Some(c) if c.cycle.is_some() => Ok(c),
            _ => Err(Error::UnknownCycle(format!("{org}/{cycle}"))),
        }
    }

    /// Creates (or updates the settings of) a cycle.
    pub fn put_cycle(&mut self, cycle: &Cycle) -> Result<()> {
        validate::cycle(cycle)?;
        if cycle.end < cycle.start {
            return Err(Error::invalid("end", "the cycle ends before it starts"));
        }
        if cycle.title.trim().is_empty() {
            return Err(Error::invalid("title", "a cycle needs a title"));
        }
        if !(cycle.thresholds.green_within >= 0.0 && cycle.thresholds.yellow_within >= cycle.thresholds.green_within) {
            return Err(Error::invalid(
                "thresholds",
                "yellow must allow at least as much lag as green",
            ));
        }
        let id = Self::okr_doc(&cycle.org, &cycle.id)?;
        self.change(&id, |tx| doc::put_cycle(tx, cycle))
    }

    /// The cycles this store holds, as (org, cycle id).
    pub fn okr_cycles(&self) -> Result<Vec<(String, String)>> {
        Ok(self
            .doc_ids()?
            .into_iter()
            .filter_map(|d| match d {
                DocId::Okr(org, cycle) => Some((org.to_string(), cycle)),
                _ => None,
            })
            .collect())
    }

    /// Adds an objective; `parent` aligns it under another objective of the cycle.
    pub fn add_objective(
        &mut self,
        org: &str,
        cycle: &str,
        title: &str,
        owner: &str,
        team: &str,
        parent: Option<&str>,
    ) -> Result<Objective> {
        let content = self.okr_content(org, cycle)?;
        if title.trim().is_empty() {
            return Err(Error::invalid("title", "an objective needs a title"));
        }
        if owner.trim().is_empty() {
            return Err(Error::invalid("owner", "an objective needs an owner"));
        }
        if let Some(p) = parent
            && !content.objectives.contains_key(p)
        {
            return Err(Error::UnknownObjective(p.to_string()));
        }
        let o = Objective {
            id: new_id("o"),
            title: title.trim().to_string(),
            owner: owner.trim().to_string(),
            team: team.trim().to_string(),
            parent: parent.map(str::to_string),
        };
        self.change(&Self::okr_doc(org, cycle)?, |tx| doc::put_objective(tx, &o))?;
        Ok(o)
    }

    /// Adds a key result, refusing one that is not measurable (no target, or a target the direction
    /// cannot move towards) or not time-bound (no due date).
    pub fn add_key_result(&mut self, org: &str, cycle: &str, new: &NewKeyResult) -> Result<KeyResult> {
        let content = self.okr_content(org, cycle)?;
        if !content.objectives.contains_key(&new.objective) {
            return Err(Error::UnknownObjective(new.objective.clone()));
        }
        if new.title.trim().is_empty() {
            return Err(Error::invalid("title", "a key result needs a title"));
        }
        let target = new
            .target_milli
            .ok_or_else(|| Error::invalid("target", "a key result needs a measurable target"))?;
        let due = new
            .due
            .ok_or_else(|| Error::invalid("due", "a key result needs a due date"))?;
        match new.direction {
            Direction::Increase if target <= new.start_milli => {
                return Err(Error::invalid(
                    "target",
                    "an increasing key result needs a target above its start",
                ));
            }
            Direction::Decrease if target >= new.start_milli => {
                return Err(Error::invalid(
                    "target",
                    "a decreasing key result needs a target below its start",
                ));
            }
            _ => {}
        }
        if new.weight < 1 {
            return Err(Error::invalid("weight", "weights are whole numbers from 1"));
        }
        let kr = KeyResult {
            id: new_id("k"),
            objective: new.objective.clone(),
            title: new.title.trim().to_string(),
            owner: new.owner.trim().to_string(),
            unit: new.unit.trim().to_string(),
            start_milli: new.start_milli,
            target_milli: target,
            direction: new.direction,
            kind: new.kind,
            weight: new.weight,
            due,
            metric: new.metric.clone(),
            status_override: None,
        };
        // A phone holds the sites of its org that it may read: a metric must name one of them.
        let held = self.sites()?;
        let org_id = OrgId::new(org)?;
        validate::key_result(&kr, &org_id, &|s| {
            held.iter().any(|h| &h.id == s).then(|| org_id.clone())
        })?;
        self.change(&Self::okr_doc(org, cycle)?, |tx| doc::put_key_result(tx, &kr))?;
        Ok(kr)
    }

    /// Records a check-in on a key result. Any number of people may check in concurrently offline.
    #[allow(clippy::too_many_arguments)]
    pub fn check_in(
        &mut self,
        org: &str,
        cycle: &str,
        kr: &str,
        value_milli: i64,
        status: Option<Status>,
        confidence: Option<i64>,
        note: &str,
        date: NaiveDate,
    ) -> Result<CheckIn> {
        let content = self.okr_content(org, cycle)?;
        if !content.key_results.contains_key(kr) {
            return Err(Error::UnknownKeyResult(kr.to_string()));
        }
        if let Some(c) = confidence
            && !(0..=10).contains(&c)
        {
            return Err(Error::invalid("confidence", "confidence is 0 to 10"));
        }
        let c = CheckIn {
            id: new_id("c"),
            kr: kr.to_string(),
            value_milli,
            status,
            confidence,
            note: note.to_string(),
            author: self.user.clone(),
            date,
            at: Utc::now(),
        };
        validate::check_in(&c)?;
        self.change(&Self::okr_doc(org, cycle)?, |tx| doc::put_checkin(tx, &c))?;
        Ok(c)
    }

    /// Sets (or with `None` clears) the owner's status override on a key result; a note is required.
    pub fn override_status(&mut self, org: &str, cycle: &str, kr: &str, status: Option<(Status, &str)>) -> Result<()> {
        let content = self.okr_content(org, cycle)?;
        let mut k = content
            .key_results
            .get(kr)
            .cloned()
            .ok_or_else(|| Error::UnknownKeyResult(kr.to_string()))?;
        if let Some((_, note)) = status
            && note.trim().is_empty()
        {
            return Err(Error::invalid("note", "say why the status is overridden"));
        }
        k.status_override = status.map(|(s, n)| (s, n.trim().to_string()));
        self.change(&Self::okr_doc(org, cycle)?, |tx| doc::put_key_result(tx, &k))
    }

    /// Holds a mid-cycle review: records every key result's value now, to compare the next against.
    pub fn review_cycle(&mut self, org: &str, cycle: &str, date: NaiveDate, notes: &str) -> Result<Board> {
        let board = self.okr_board(org, cycle, date)?;
        let values = board
            .objectives
            .iter()
            .flat_map(|o| &o.key_results)
            .map(|k| (k.kr.id.clone(), k.current_milli))
            .collect();
        let r = Review {
            id: new_id("r"),
            date,
            by: self.user.clone(),
            notes: notes.to_string(),
            values,
        };
        self.change(&Self::okr_doc(org, cycle)?, |tx| doc::put_review(tx, &r))?;
        self.okr_board(org, cycle, date)
    }

    /// Closes a cycle: scores every key result and objective (0.0–1.0, one decimal) as of the cycle's
    /// end and records the retrospective.
    pub fn close_cycle(
        &mut self,
        org: &str,
        cycle: &str,
        retrospective: &str,
        notes: &BTreeMap<String, String>,
    ) -> Result<Board> {
        let end = self.okr_content(org, cycle)?.cycle.expect("checked").end;
        let mut board = self.okr_board(org, cycle, end)?;
        board.cycle.closed = true;
        board.cycle.retrospective = retrospective.to_string();
        let c = board.cycle.clone();
        self.change(&Self::okr_doc(org, cycle)?, |tx| {
            doc::put_cycle(tx, &c)?;
            for o in &board.objectives {
                doc::put_score(
                    tx,
                    "objectives",
                    &o.objective.id,
                    (okr::score(o.progress) * 10.0).round() as i64,
                    notes.get(&o.objective.id).map(String::as_str),
                )?;
                for k in &o.key_results {
                    doc::put_score(
                        tx,
                        "key_results",
                        &k.kr.id,
                        (okr::score(k.progress) * 10.0).round() as i64,
                        None,
                    )?;
                }
            }
            Ok(())
        })?;
        board = self.okr_board(org, cycle, c.end)?;
        Ok(board)
    }

    /// The cycle at a glance on `today`: progress, status, scores, alignment, review status.
    pub fn okr_board(&mut self, org: &str, cycle: &str, today: NaiveDate) -> Result<Board> {
        let content = self.okr_content(org, cycle)?;
        let c = content.cycle.clone().expect("checked by okr_content");
        let elapsed = okr::elapsed(&c, today);
        let latest: BTreeMap<&str, &CheckIn> = content.checkins.iter().map(|ch| (ch.kr.as_str(), ch)).collect();
        let mut objectives = Vec::new();
        let mut warnings = Vec::new();
        for o in content.objectives.values() {
            let mut krs = Vec::new();
            for k in content.key_results.values().filter(|k| k.objective == o.id) {
                let last = latest.get(k.id.as_str()).map(|c| (*c).clone());
                let current = last.as_ref().map_or(k.start_milli, |c| c.value_milli);
                let progress = okr::progress(k, current);
                krs.push(KrView {
                    status: okr::status(k, progress, elapsed, &c.thresholds),
                    kr: k.clone(),
                    current_milli: current,
                    progress,
                    last_checkin: last,
                    checkins: content.checkins.iter().filter(|ch| ch.kr == k.id).count(),
                    score: content.scores.get(&k.id).map(|t| *t as f64 / 10.0),
                    metric_refused: None,
                });
            }
            if !(2..=4).contains(&krs.len()) {
                let n = krs.len();
                let noun = if n == 1 { "key result" } else { "key results" };
                warnings.push(format!("objective “{}” has {n} {noun}; 2–4 is good practice", o.title));
            }
            let weight: i64 = krs.iter().map(|k| k.kr.weight).sum();
            let progress = if weight == 0 {
                0.0
            } else {
                krs.iter().map(|k| k.progress * k.kr.weight as f64).sum::<f64>() / weight as f64
            };
            let status = krs.iter().map(|k| k.status).max().unwrap_or(Status::Green);
            objectives.push(ObjectiveView {
                objective: o.clone(),
                progress,
                status,
                score: content.scores.get(&o.id).map(|t| *t as f64 / 10.0),
                retrospective: content.retro.get(&o.id).cloned(),
                key_results: krs,
            });
        }
        if !(3..=5).contains(&objectives.len()) {
            let n = objectives.len();
            let noun = if n == 1 { "objective" } else { "objectives" };
            warnings.push(format!("the cycle has {n} {noun}; 3–5 is good practice"));
        }
        fn tree(parent: Option<&str>, all: &BTreeMap<String, Objective>) -> Vec<AlignmentNode> {
            all.values()
                .filter(|o| {
                    o.parent.as_deref() == parent
                        || (parent.is_none() && o.parent.as_ref().is_some_and(|p| !all.contains_key(p)))
                })
                .map(|o| AlignmentNode {
                    id: o.id.clone(),
                    title: o.title.clone(),
                    children: tree(Some(&o.id), all),
                })
                .collect()
        }
        let last_review = content.reviews.last();
        let since_last_review = objectives
            .iter()
            .flat_map(|o| &o.key_results)
            .map(|k| KrChange {
                kr: k.kr.id.clone(),
                title: k.kr.title.clone(),
                at_review_milli: last_review
                    .and_then(|r| r.values.iter().find(|(id, _)| *id == k.kr.id).map(|(_, v)| *v)),
                now_milli: k.current_milli,
            })
            .collect();
        let next_review = last_review.map_or(c.start, |r| r.date) + chrono::Days::new(c.review_every_days as u64);
        Ok(Board {
            alignment: tree(None, &content.objectives),
            cycle: c,
            today,
            elapsed,
            objectives,
            warnings,
            reviews: content.reviews,
            next_review,
            since_last_review,
        })
    }

    /// The value of a field metric over approved data from the cycle's start to `today` (capped at
    /// its end), in thousandths of the metric's unit; `None` where it is undefined (no quantity yet).
    pub fn metric_value(&mut self, metric: &Metric, cycle: &Cycle, today: NaiveDate) -> Result<Option<i64>> {
        let to = today.min(cycle.end);
        let site = metric_site(metric).to_string();
        let f = RowFilter {
            sites: Some(vec![site.clone()]),
            from: Some(cycle.start),
            to: Some(to),
            approved_only: true,
        };
        let on = |item: &Option<String>, wi: &str| item.as_deref().is_none_or(|i| i == wi);
        Ok(match metric {
            Metric::LaborCost { work_item, .. } => Some(
                self.labor_rows(&f)?
                    .iter()
                    .filter(|r| on(work_item, &r.work_item))
                    .map(|r| r.cost_fen)
                    .fold(0, add_saturating)
                    .saturating_mul(10),
            ),
            Metric::WorkDays { work_item, .. } => Some(
                self.labor_rows(&f)?
                    .iter()
                    .filter(|r| on(work_item, &r.work_item))
                    .map(|r| r.work_days_centi)
                    .fold(0, add_saturating)
                    .saturating_mul(10),
            ),
            Metric::CostPerUnit { work_item, .. } => {
                let cost: i64 = self
                    .labor_rows(&f)?
                    .iter()
                    .filter(|r| &r.work_item == work_item)
                    .map(|r| r.cost_fen)
                    .fold(0, add_saturating);
                let qty: i64 = self
                    .progress_rows(&f)?
                    .iter()
                    .filter(|r| &r.work_item == work_item)
                    .map(|r| r.quantity_milli)
                    .fold(0, add_saturating);
                // yuan per unit in thousandths = (fen / 100) / (milli / 1000) × 1000.
                (qty > 0).then(|| narrow(cost as i128 * 10_000 / qty as i128))
            }
            Metric::ProgressPercent { work_item, .. } => {
                let all = RowFilter {
                    from: None,
                    ..f.clone()
                };
                let qty: i64 = self
                    .progress_rows(&all)?
                    .iter()
                    .filter(|r| &r.work_item == work_item)
                    .map(|r| r.quantity_milli)
                    .fold(0, add_saturating);
                let planned = self
                    .db()
                    .first(
                        "SELECT planned_quantity_milli FROM work_items WHERE site_id = ?1 AND work_item_id = ?2",
                        &[site.as_str().into(), work_item.as_str().into()],
                    )?
                    .map(|r| r.int(0))
                    .transpose()?
                    .unwrap_or(0);
                (planned > 0).then(|| narrow(qty as i128 * 100_000 / planned as i128))
            }
            Metric::LogCoverage { .. } => {
                let days = (to - cycle.start).num_days() + 1;
                let any = RowFilter {
                    approved_only: false,
                    ..f.clone()
                };
                let logged = self
                    .day_rows(&any)?
                    .iter()
                    .filter(|d| !matches!(d.status, DayStatus::Draft | DayStatus::Rejected))
                    .count() as i64;
                (days > 0).then(|| logged * 100_000 / days)
            }
            Metric::CostPerformance { work_item, .. } => {
                self.cost_performance_milli(&site, work_item.as_deref(), to)?
            }
        })
    }

    /// The cost performance index (thousandths) of a site, or of one of its work items, over every
    /// approved day to `to`: earned value and cost to date as the progress report computes them.
    /// `None` while nothing has been spent (or the work item is not the site's).
    fn cost_performance_milli(&mut self, site: &str, work_item: Option<&str>, to: NaiveDate) -> Result<Option<i64>> {
        let site = SiteId::new(site)?;
        let piece = cost::piece_costs(self, &site, to, true)?;
        let mut items = Vec::new();
        for item in self.progress(&site, to, true)? {
            if work_item.is_none_or(|w| w == item.work_item.as_str()) {
                items.push(CostPerformance::of_item(
                    &item,
                    piece.get(&item.work_item).copied().unwrap_or(0),
                ));
            }
        }
        Ok(CostPerformance::total(&items).cpi_milli)
    }

    /// Recomputes every metric-fed key result of every cycle in the store and records a check-in by
    /// `system` where the value changed; returns how many were recorded.
    ///
    /// `today` is the date the figures run to; `None` is each metric's site's own today, in the
    /// site's time zone: at 01:00 in Hangzhou it is still yesterday in UTC, and a feed that used the
    /// server's UTC date would record a different value from one made at the site's date.
    ///
    /// `allowed` is asked on every feed, for every bound key result, whether it may be fed: the
    /// server answers that the metric's site must be of the cycle's org and readable by the key
    /// result's owner (another org's key result, or a foreman's bound to a site not theirs, was
    /// once fed figures it may not see). A key result refused is skipped and keeps its last value.
    pub fn refresh_metrics(
        &mut self,
        today: Option<NaiveDate>,
        allowed: &dyn Fn(&OrgId, &KeyResult, &Metric) -> std::result::Result<(), Invalid>,
    ) -> Result<usize> {
        let mut written = 0;
        for (org, cycle) in self.okr_cycles()? {
            let Ok(content) = self.okr_content(&org, &cycle) else {
                continue;
            };
            let c = content.cycle.clone().expect("checked");
            if c.closed {
                continue;
            }
            let Ok(org_id) = OrgId::new(&org) else { continue };
            let latest: BTreeMap<&str, i64> = content
                .checkins
                .iter()
                .map(|ch| (ch.kr.as_str(), ch.value_milli))
                .collect();
            let mut feeds = Vec::new();
            for k in content.key_results.values() {
                let Some(metric) = &k.metric else { continue };
                if allowed(&org_id, k, metric).is_err() {
                    continue;
                }
                let today = match today {
                    Some(d) => d,
                    None => self.today(&SiteId::new(metric_site(metric))?)?,
                };
                let Some(value) = self.metric_value(metric, &c, today)? else {
                    continue;
                };
                if latest.get(k.id.as_str()) != Some(&value) {
                    feeds.push((k.id.clone(), value, today.min(c.end).max(c.start)));
                }
            }
            if feeds.is_empty() {
                continue;
            }
            let checkins: Vec<CheckIn> = feeds
                .into_iter()
                .map(|(kr, value, date)| CheckIn {
                    id: new_id("c"),
                    kr,
                    value_milli: value,
                    status: None,
                    confidence: None,
                    note: "computed from approved field data".into(),
                    author: "system".into(),
                    date,
                    at: Utc::now(),
                })
                .collect();
            written += checkins.len();
            self.change(&Self::okr_doc(&org, &cycle)?, |tx| {
                checkins.iter().try_for_each(|ch| doc::put_checkin(tx, ch))
            })?;
        }
        Ok(written)
    }
}

/// The site whose field data feeds `metric`.
fn metric_site(metric: &Metric) -> &str {
    match metric {
        Metric::LaborCost { site, .. }
        | Metric::WorkDays { site, .. }
        | Metric::CostPerUnit { site, .. }
        | Metric::ProgressPercent { site, .. }
        | Metric::CostPerformance { site, .. }
        | Metric::LogCoverage { site } => site,
    }
}
