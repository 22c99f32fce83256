//! Reports over a range of days: a site's totals, grouped or not, and a worker's month.

use std::io::Write;

use anyhow::Result;
use clap::{Args, ValueEnum};

use sitesync_core::Store;
use sitesync_core::report::{GroupBy, Sums};
use sitesync_core::units::{fixed, hours, yuan};

use crate::input;
use crate::msg::{Col, Msg, cols};
use crate::render::{json_out, table};

#[derive(Args, Debug)]
pub struct TotalsArgs {
    /// Site id, code (HZ-01) or name.
    #[arg(long)]
    site: String,
    /// First date, inclusive.
    #[arg(long)]
    from: String,
    /// Last date, inclusive.
    #[arg(long)]
    to: String,
    /// Group rows by this.
    #[arg(long, value_enum)]
    by: Option<By>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct MonthArgs {
    /// Worker id, or name where only one worker has it.
    #[arg(long)]
    worker: String,
    /// The month, YYYY-MM.
    #[arg(long)]
    month: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// The CLI's own names for the groupings, so that `--by` keeps its spelling whatever the library's
/// report model becomes; [`group_by`] is the one place they meet it.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum By {
    Day,
    Crew,
    Trade,
    Worker,
    WorkItem,
}

/// The library's grouping for a `--by` value.
fn group_by(by: By) -> GroupBy {
    match by {
        By::Day => GroupBy::Day,
        By::Crew => GroupBy::Crew,
        By::Trade => GroupBy::Trade,
        By::Worker => GroupBy::Worker,
        By::WorkItem => GroupBy::WorkItem,
    }
}

pub fn totals(store: &mut Store, out: &mut impl Write, args: TotalsArgs) -> Result<()> {
    let TotalsArgs {
        site,
        from,
        to,
        by,
        json,
    } = args;
    let site = input::site(store, &site)?;
    let from = input::date(store, &site, &from)?;
    let to = input::date(store, &site, &to)?;
    let t = store.totals(Some(&site), from, to, by.map(group_by))?;
    if json {
        json_out(out, &t)?;
    } else {
        let row = |key: &str, label: &str, s: &Sums| {
            vec![
                key.to_string(),
                label.to_string(),
                fixed(s.work_days_centi, 2),
                hours(s.hours_min),
                hours(s.overtime_min),
                yuan(s.cost_fen),
                s.lines.to_string(),
            ]
        };
        let mut rows: Vec<Vec<String>> = t.rows.iter().map(|r| row(&r.key, &r.label, &r.sums)).collect();
        rows.push(row(&Msg::Total.to_string(), "", &t.total));
        table(
            out,
            &cols(&[
                Col::Key,
                Col::Name,
                Col::WorkDays,
                Col::Hours,
                Col::OvertimeHours,
                Col::Cost,
                Col::Lines,
            ]),
            rows.into_iter(),
        )?;
    }
    Ok(())
}

pub fn month(store: &mut Store, out: &mut impl Write, MonthArgs { worker, month, json }: MonthArgs) -> Result<()> {
    let first = input::month(&month)?;
    let worker = input::worker(store, None, &worker)?;
    let m = store.worker_month(&worker, first)?;
    if json {
        json_out(out, &m)?;
    } else {
        let mut rows: Vec<Vec<String>> = m
            .days
            .iter()
            .map(|d| {
                vec![
                    d.date.to_string(),
                    d.site.to_string(),
                    d.work_item.to_string(),
                    fixed(d.work_days_centi, 2),
                    hours(d.overtime_min),
                    yuan(d.cost_fen),
                ]
            })
            .collect();
        rows.push(vec![
            Msg::Total.to_string(),
            String::new(),
            String::new(),
            fixed(m.total.work_days_centi, 2),
            hours(m.total.overtime_min),
            yuan(m.total.cost_fen),
        ]);
        table(
            out,
            &cols(&[
                Col::Date,
                Col::Site,
                Col::WorkItem,
                Col::WorkDays,
                Col::OvertimeHours,
                Col::Cost,
            ]),
            rows.into_iter(),
        )?;
    }
    Ok(())
}
