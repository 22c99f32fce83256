//! The one report model: how labor lines are grouped and what is summed over them. The phone's
//! totals, the server's 点工汇总 and the dashboard, the CLI and the mobile API all read these types;
//! the store fills them ([`crate::Store::summary`]) with every label resolved there, so a reader
//! only chooses the grouping and renders. The 施工日志 of one site-day is [`DailyLog`], printed by
//! [`pdf`] (feature `pdf`).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::ids::WorkItemId;

use crate::units::{add_saturating, yuan};

pub mod cost;
mod daily_log;
#[cfg(feature = "pdf")]
pub mod pdf;

pub use cost::CostPerformance;
pub use daily_log::{AttachmentRow, CrewDay, DailyLog, DelayRow, LaborRow, ProgressRow, ReviewRow, SignOffRow};

/// How labor lines are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum GroupBy {
    /// One row per site, labelled with the site's name.
    Site,
    /// One row per crew (the worker's crew on the roster now).
    Crew,
    /// One row per trade (工种).
    Trade,
    /// One row per worker.
    Worker,
    /// One row per work item (部位/分项).
    WorkItem,
    /// One row per calendar date of the site.
    Day,
}

impl GroupBy {
    /// The group's key and label in SQL over the line `t` and its roster rows: worker `w`, crew `c`,
    /// work item `wi`, site `s`. A key no longer on the roster has an empty label, never a made-up one.
    pub(crate) fn columns(self) -> (&'static str, &'static str) {
        match self {
            GroupBy::Site => ("t.site_id", "COALESCE(s.name, '')"),
            GroupBy::Crew => ("COALESCE(w.crew_id, '')", "COALESCE(c.name, '')"),
            GroupBy::Trade => ("COALESCE(w.trade, '')", "COALESCE(w.trade, '')"),
            GroupBy::Worker => ("t.worker_id", "COALESCE(w.name, '')"),
            GroupBy::WorkItem => ("t.work_item_id", "COALESCE(wi.name, '')"),
            GroupBy::Day => ("t.day", "t.day"),
        }
    }
}

/// Sums over labor lines, in the stored units. Sums saturate rather than wrap (see
/// [`add_saturating`]); every projected line is bounded, so no real sum comes near.
///
/// Serialized with `cost`, the amount as people read it (`¥1,234.50`), beside `cost_fen`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(into = "SumsJson")]
pub struct Sums {
    /// Work-days in hundredths.
    pub work_days_centi: i64,
    /// Hours in minutes.
    pub hours_min: i64,
    /// Overtime in minutes.
    pub overtime_min: i64,
    /// Cost in fen (each line rounded half up, then summed).
    pub cost_fen: i64,
    /// How many lines were summed.
    pub lines: i64,
}

impl Sums {
    /// Adds another set of sums.
    pub fn add(&mut self, o: &Sums) {
        self.work_days_centi = add_saturating(self.work_days_centi, o.work_days_centi);
        self.hours_min = add_saturating(self.hours_min, o.hours_min);
        self.overtime_min = add_saturating(self.overtime_min, o.overtime_min);
        self.cost_fen = add_saturating(self.cost_fen, o.cost_fen);
        self.lines = add_saturating(self.lines, o.lines);
    }

    /// `self − o`, field by field: what an amendment adds to (or takes from) the approved sums.
    pub fn minus(&self, o: &Sums) -> Sums {
        Sums {
            work_days_centi: self.work_days_centi.saturating_sub(o.work_days_centi),
            hours_min: self.hours_min.saturating_sub(o.hours_min),
            overtime_min: self.overtime_min.saturating_sub(o.overtime_min),
            cost_fen: self.cost_fen.saturating_sub(o.cost_fen),
            lines: self.lines.saturating_sub(o.lines),
        }
    }

    /// Whether nothing was summed or everything cancelled out.
    pub fn is_zero(&self) -> bool {
        *self == Sums::default()
    }
}

/// [`Sums`] as the API and the CLI's JSON write them.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Sums))]
pub struct SumsJson {
    /// Work-days in hundredths.
    pub work_days_centi: i64,
    /// Hours in minutes.
    pub hours_min: i64,
    /// Overtime in minutes.
    pub overtime_min: i64,
    /// Cost in fen.
    pub cost_fen: i64,
    /// Cost as people read it, e.g. `¥1,234.50`.
    pub cost: String,
    /// How many lines were summed.
    pub lines: i64,
}

impl From<Sums> for SumsJson {
    fn from(s: Sums) -> Self {
        SumsJson {
            work_days_centi: s.work_days_centi,
            hours_min: s.hours_min,
            overtime_min: s.overtime_min,
            cost_fen: s.cost_fen,
            cost: yuan(s.cost_fen),
            lines: s.lines,
        }
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Sums {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <SumsJson as utoipa::PartialSchema>::schema()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Sums {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("Sums")
    }
}

/// One group of a [`Summary`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Group {
    /// The group's key: a site id, crew id, trade code, worker id, work item id or date.
    pub key: String,
    /// What people call the key: the site's, crew's, worker's or work item's name, the trade, the date.
    pub label: String,
    /// The group's sums.
    #[serde(flatten)]
    pub sums: Sums,
}

/// Days amended after their approval, whose amendments are not approved yet: the approved sums leave
/// them as approved, and this is what approving the amendments would change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Pending {
    /// How many amended days are in the range.
    pub days: i64,
    /// Their sums now minus their sums as approved (negative where an amendment took work away).
    pub difference: Sums,
}

/// Labor sums over a range, overall and per group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// The grouping, if any.
    pub by: Option<GroupBy>,
    /// One row per group ordered by key; empty when not grouped.
    pub rows: Vec<Group>,
    /// The sums over every line.
    pub total: Sums,
    /// When the approved version was read and some day in range was amended since its approval.
    pub pending: Option<Pending>,
}

/// Progress against plan on one work item, to a date.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[allow(missing_docs, reason = "fields named for what they hold")]
pub struct WorkItemProgress {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub work_item: WorkItemId,
    /// WBS code (`1.2`): the order people read work items in.
    pub code: String,
    pub name: String,
    /// Unit of quantity (m³, t …).
    pub unit: String,
    /// Planned quantity in thousandths of the unit.
    pub planned_quantity_milli: i64,
    /// Installed to date, in thousandths of the unit.
    pub quantity_to_date_milli: i64,
    /// Installed ÷ planned, in percent, one decimal; 0 without a plan.
    pub percent_complete: f64,
    /// Day-labor (点工) cost booked on the item to date, in fen. Piecework (包工) lines are paid by
    /// the piece, not by the day: their pay is the cost report's piecework term
    /// ([`cost::piece_costs`]), so counting their day rate here would count them twice.
    pub labor_cost_fen: i64,
    /// The item's budget, in fen.
    pub budget_fen: i64,
    /// When the work is planned to start and end, where the plan says.
    pub planned_start: Option<NaiveDate>,
    pub planned_end: Option<NaiveDate>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_serialize_with_the_amount_people_read() {
        let s = Sums {
            work_days_centi: 150,
            hours_min: 720,
            overtime_min: 30,
            cost_fen: 12_345_678,
            lines: 2,
        };
        let v = serde_json::to_value(Group {
            key: "k".into(),
            label: "l".into(),
            sums: s,
        })
        .unwrap();
        assert_eq!(v["cost"], "¥123,456.78");
        assert_eq!(v["cost_fen"], 12_345_678);
        assert_eq!(v["work_days_centi"], 150);
        assert_eq!(v["key"], "k");
    }

    #[test]
    fn difference_can_be_negative() {
        let approved = Sums {
            work_days_centi: 100,
            cost_fen: 43_000,
            lines: 1,
            ..Sums::default()
        };
        let now = Sums {
            work_days_centi: 50,
            cost_fen: 21_500,
            lines: 1,
            ..Sums::default()
        };
        let d = now.minus(&approved);
        assert_eq!((d.work_days_centi, d.cost_fen, d.lines), (-50, -21_500, 0));
        assert!(!d.is_zero());
        assert!(now.minus(&now).is_zero());
    }
}
