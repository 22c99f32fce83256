//! Cost against budget (the project cost center): earned value, cost to date, cost performance and
//! the forecast at completion, per work item and per site. Pure arithmetic over a work item's
//! progress ([`WorkItemProgress`]) and its piecework cost; the server's progress report, its
//! anomaly report (`cost_overrun`) and the OKR metric `cost_performance` all read these figures, so
//! they can never disagree.
//!
//! Every amount is in fen and computed exactly in `i128`, then narrowed (saturating) to `i64`:
//! - earned value = budget × installed ÷ planned, with installed taken between 0 and the planned
//!   quantity (an item earns at most its budget), rounded half up to the fen; 0 without a plan;
//! - cost to date = labor cost + piecework cost;
//! - cost performance index (CPI) = earned ÷ cost, in thousandths (1000 = on budget), rounded half
//!   up; undefined (`None`) while nothing has been spent;
//! - forecast at completion (EAC) = budget × cost ÷ earned (that is budget ÷ CPI, from the unrounded
//!   ratio), rounded half up, when both cost and earned are above zero; otherwise (nothing spent, or
//!   nothing earned yet) cost to date + the budget not yet earned;
//! - cost variance = earned − cost (negative: over budget for the work done);
//! - variance at completion = budget − EAC (negative: forecast to finish over budget).
//!
//! An item overruns ([`CostPerformance::overrun`]) when its cost to date exceeds its whole budget,
//! or when it has spent at least a tenth of its budget ([`MATERIAL_SHARE_PERCENT`]) at a CPI below
//! [`OVERRUN_CPI_MILLI`]. The second rule waits for material spending because a few days of labor
//! on an item whose first quantities are not logged yet is the normal start of work, not a runaway
//! (on the fixture company, labor starts before progress on most items). Decided 2026-11-30
//! against `fixtures/`: four items overrun, among them site-hz-01's 1.2 桩基承台钢筋绑扎 (¥423,661.11
//! of labor against a ¥25,032.00 budget); no other item comes near either rule.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;

use crate::Store;
use crate::error::Result;
use crate::ids::{SiteId, WorkItemId};
use crate::report::WorkItemProgress;

/// Below this CPI (thousandths), an item with material spending overruns: it costs 25 % more than
/// the work it has done was budgeted at.
pub const OVERRUN_CPI_MILLI: i64 = 800;

/// Share of its budget (percent) an item must have spent before a low CPI counts as an overrun.
pub const MATERIAL_SHARE_PERCENT: i64 = 10;

/// Amounts are taken within ±2⁶⁰ fen (¥11 quadrillion, beyond any project), so that every product
/// below fits in `i128`; only a corrupt sum comes near it.
const BOUND: i128 = 1 << 60;

fn bounded(v: i128) -> i128 {
    v.clamp(-BOUND, BOUND)
}

/// A figure computed in `i128` as an `i64`, saturating instead of wrapping.
fn narrow(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// `n ÷ d` rounded half away from zero; `d` must be positive.
fn div_round(n: i128, d: i128) -> i128 {
    debug_assert!(d > 0);
    if n >= 0 {
        (2 * n + d) / (2 * d)
    } else {
        -((-2 * n + d) / (2 * d))
    }
}

/// Cost against budget of a work item or, summed, of a site. Amounts in fen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CostPerformance {
    /// The budget.
    pub budget_fen: i64,
    /// Earned value: the budget of the work done (budget × installed ÷ planned, at most the budget).
    pub earned_fen: i64,
    /// Day-labor cost to date.
    pub labor_cost_fen: i64,
    /// Piecework (包工) cost to date.
    pub piece_cost_fen: i64,
    /// Cost to date: labor + piecework.
    pub cost_fen: i64,
    /// Cost performance index, earned ÷ cost, in thousandths (1000 = on budget, below = over);
    /// `null` while nothing has been spent.
    pub cpi_milli: Option<i64>,
    /// Forecast at completion: budget × cost ÷ earned, or cost + the budget not yet earned when
    /// nothing has been spent or earned.
    pub eac_fen: i64,
    /// Earned − cost: negative when the work done cost more than its budget.
    pub cost_variance_fen: i64,
    /// Budget − forecast at completion: negative when the item is forecast to finish over budget.
    pub variance_at_completion_fen: i64,
    /// Cost exceeds the budget, or a tenth of the budget is spent at a CPI below 0.8.
    pub overrun: bool,
}

impl CostPerformance {
    /// A work item's figures from its progress to date and its piecework cost (fen) to date.
    pub fn of_item(item: &WorkItemProgress, piece_cost_fen: i64) -> CostPerformance {
        let budget = bounded(i128::from(item.budget_fen));
        let planned = i128::from(item.planned_quantity_milli);
        let earned = if planned > 0 {
            let done = i128::from(item.quantity_to_date_milli).clamp(0, planned);
            narrow(div_round(budget * done, planned))
        } else {
            0
        };
        Self::from_parts(item.budget_fen, earned, item.labor_cost_fen, piece_cost_fen)
    }

    /// The figures of several items together (a site): amounts summed, ratios and the overrun rule
    /// applied to the sums, the forecast the sum of the items' forecasts.
    pub fn total<'a>(items: impl IntoIterator<Item = &'a CostPerformance>) -> CostPerformance {
        let (mut budget, mut earned, mut labor, mut piece, mut eac) = (0i128, 0i128, 0i128, 0i128, 0i128);
        for c in items {
            budget += i128::from(c.budget_fen);
            earned += i128::from(c.earned_fen);
            labor += i128::from(c.labor_cost_fen);
            piece += i128::from(c.piece_cost_fen);
            eac += i128::from(c.eac_fen);
        }
        let mut t = Self::from_parts(narrow(budget), narrow(earned), narrow(labor), narrow(piece));
        t.eac_fen = narrow(eac);
        t.variance_at_completion_fen = narrow(budget - eac);
        t
    }

    fn from_parts(budget_fen: i64, earned_fen: i64, labor_cost_fen: i64, piece_cost_fen: i64) -> CostPerformance {
        let (budget, earned) = (bounded(i128::from(budget_fen)), bounded(i128::from(earned_fen)));
        let cost = bounded(i128::from(labor_cost_fen) + i128::from(piece_cost_fen));
        let cpi_milli = (cost > 0).then(|| narrow(div_round(earned * 1000, cost)));
        let eac = if cost > 0 && earned > 0 {
            div_round(budget * cost, earned)
        } else {
            cost + (budget - earned)
        };
        let overrun = cost > budget
            || (cost * 100 >= budget * i128::from(MATERIAL_SHARE_PERCENT)
                && earned * 1000 < cost * i128::from(OVERRUN_CPI_MILLI));
        CostPerformance {
            budget_fen,
            earned_fen,
            labor_cost_fen,
            piece_cost_fen,
            cost_fen: narrow(cost),
            cpi_milli,
            eac_fen: narrow(eac),
            cost_variance_fen: narrow(earned - cost),
            variance_at_completion_fen: narrow(budget - eac),
            overrun,
        }
    }
}

/// Piecework (包工) cost booked per work item of `site` to `date` (inclusive), in fen, as every day
/// stands or (`approved_only`) as approved: the second term of cost to date. The same figures as the
/// pay sheets' piece pay ([`Store::piece_pay_by_item`]), so cost and pay can never disagree; an item
/// absent from the map has none.
pub fn piece_costs(
    store: &mut Store,
    site: &SiteId,
    date: NaiveDate,
    approved_only: bool,
) -> Result<BTreeMap<WorkItemId, i64>> {
    store.piece_pay_by_item(site, date, approved_only)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(budget_fen: i64, planned: i64, done: i64, labor: i64) -> WorkItemProgress {
        WorkItemProgress {
            work_item: WorkItemId::new("site-a/wi-1").unwrap(),
            code: "1".into(),
            name: "n".into(),
            unit: "t".into(),
            planned_quantity_milli: planned,
            quantity_to_date_milli: done,
            percent_complete: 0.0,
            labor_cost_fen: labor,
            budget_fen,
            planned_start: None,
            planned_end: None,
        }
    }

    #[test]
    fn figures_by_hand() {
        // Budget ¥1,000.00, 3 t planned, 1 t installed: earned ¥333.33 (33,333.33 fen, rounded).
        // Cost ¥400.00 + ¥50.00 piecework = 45,000 fen. CPI = 33,333 ÷ 45,000 = 0.74073 → 741.
        // EAC = 100,000 × 45,000 ÷ 33,333 = 135,001.35 → 135,001 fen.
        let c = CostPerformance::of_item(&item(100_000, 3_000, 1_000, 40_000), 5_000);
        assert_eq!(c.earned_fen, 33_333);
        assert_eq!(c.cost_fen, 45_000);
        assert_eq!(c.cpi_milli, Some(741));
        assert_eq!(c.eac_fen, 135_001);
        assert_eq!(c.cost_variance_fen, 33_333 - 45_000);
        assert_eq!(c.variance_at_completion_fen, 100_000 - 135_001);
        assert!(c.overrun, "45 % of the budget spent at a CPI of 0.741");
        // Two thirds installed: earned 66,666.67 → 66,667 fen (half up).
        let c = CostPerformance::of_item(&item(100_000, 3_000, 2_000, 60_000), 0);
        assert_eq!(c.earned_fen, 66_667);
        assert_eq!(c.cpi_milli, Some(1_111));
        // 100,000 × 60,000 ÷ 66,667 = 89,999.55 → 90,000.
        assert_eq!(c.eac_fen, 90_000);
        assert!(!c.overrun);
    }

    #[test]
    fn nothing_spent_or_nothing_earned() {
        let c = CostPerformance::of_item(&item(100_000, 3_000, 1_500, 0), 0);
        assert_eq!((c.earned_fen, c.cpi_milli), (50_000, None), "undefined, not zero");
        assert_eq!(c.eac_fen, 50_000, "cost 0 + the budget not yet earned");
        assert!(!c.overrun);
        // Labor before the first quantity: CPI 0, the forecast cost + the whole budget.
        let c = CostPerformance::of_item(&item(100_000, 3_000, 0, 2_000), 0);
        assert_eq!((c.cpi_milli, c.eac_fen), (Some(0), 102_000));
        assert!(!c.overrun, "2 % of the budget is not yet material");
        let c = CostPerformance::of_item(&item(100_000, 3_000, 0, 10_000), 0);
        assert!(c.overrun, "a tenth of the budget spent with nothing to show");
        // No plan: nothing earned; no budget: any cost overruns it.
        let c = CostPerformance::of_item(&item(0, 0, 5_000, 1), 0);
        assert_eq!((c.earned_fen, c.overrun), (0, true));
    }

    #[test]
    fn earned_is_capped_at_the_budget_and_never_negative() {
        let over = CostPerformance::of_item(&item(100_000, 3_000, 4_500, 100_000), 0);
        assert_eq!(
            (over.earned_fen, over.cpi_milli, over.eac_fen),
            (100_000, Some(1_000), 100_000)
        );
        assert!(!over.overrun, "exactly on budget");
        let back = CostPerformance::of_item(&item(100_000, 3_000, -500, 0), 0);
        assert_eq!(back.earned_fen, 0);
        let one_more = CostPerformance::of_item(&item(100_000, 3_000, 3_000, 100_001), 0);
        assert!(one_more.overrun, "a fen over the whole budget");
    }

    #[test]
    fn the_demo_overrun_is_one() {
        // fixtures/: site-hz-01 1.2 桩基承台钢筋绑扎, 158.735 t of 298 t, ¥423,661.11 of labor.
        let c = CostPerformance::of_item(&item(2_503_200, 298_000, 158_735, 42_366_111), 0);
        // 2,503,200 × 158,735 ÷ 298,000 = 1,333,374.0 fen.
        assert_eq!(c.earned_fen, 1_333_374);
        // 1,333,374 × 1000 ÷ 42,366,111 = 31.47 → 31.
        assert_eq!(c.cpi_milli, Some(31));
        // 2,503,200 × 42,366,111 ÷ 1,333,374 = 79,535,710.95 → 79,535,711.
        assert_eq!(c.eac_fen, 79_535_711);
        assert!(c.overrun);
    }

    #[test]
    fn a_site_sums_its_items() {
        let a = CostPerformance::of_item(&item(100_000, 3_000, 1_000, 40_000), 5_000);
        let b = CostPerformance::of_item(&item(100_000, 3_000, 1_500, 0), 0);
        let t = CostPerformance::total([&a, &b]);
        assert_eq!(t.budget_fen, 200_000);
        assert_eq!(t.earned_fen, 83_333);
        assert_eq!(
            (t.labor_cost_fen, t.piece_cost_fen, t.cost_fen),
            (40_000, 5_000, 45_000)
        );
        // 83,333 × 1000 ÷ 45,000 = 1,851.84 → 1,852.
        assert_eq!(t.cpi_milli, Some(1_852));
        assert_eq!(t.eac_fen, 135_001 + 50_000);
        assert_eq!(t.variance_at_completion_fen, 200_000 - 185_001);
        assert!(!t.overrun);
        assert_eq!(CostPerformance::total([]), CostPerformance::default());
    }

    #[test]
    fn extremes_saturate() {
        let c = CostPerformance::of_item(&item(i64::MAX, 1, 1, i64::MAX), i64::MAX);
        assert_eq!(c.cost_fen, 1 << 60);
        assert_eq!((c.cpi_milli, c.eac_fen), (Some(1_000), 1 << 60));
        assert!(!c.overrun);
        let c = CostPerformance::of_item(&item(i64::MIN, i64::MAX, i64::MAX, i64::MIN), i64::MIN);
        assert_eq!((c.cost_fen, c.cpi_milli), (-(1 << 60), None));
    }
}
