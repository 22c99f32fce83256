//! Reports: a site's totals over a range of days, grouped or not, a worker's month, and the
//! printable 施工日志 of one site-day.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
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

#[derive(Args, Debug)]
pub struct DailyLogArgs {
    #[command(flatten)]
    day: input::SiteDay,
    /// Write the PDF here.
    #[arg(long, required_unless_present = "json")]
    out: Option<PathBuf>,
    /// Print the log as JSON (the report model the PDF is drawn from) instead.
    #[arg(long, conflicts_with = "out")]
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

pub fn daily_log(store: &mut Store, out: &mut impl Write, args: DailyLogArgs) -> Result<()> {
    let DailyLogArgs { day, out: path, json } = args;
    let (site, date) = day.read(store)?;
    // Review events name users by id where the server recorded them: the directory it sent names them.
    let names = store
        .directory()?
        .into_iter()
        .map(|e| (e.user_id, e.user_name))
        .collect();
    let log = store.daily_log(&site, date, &names)?;
    match path {
        Some(path) if !json => {
            let pdf = sitesync_core::report::pdf::daily_log(&log)?;
            std::fs::write(&path, &pdf.bytes).with_context(|| path.display().to_string())?;
            if !pdf.missing.is_empty() {
                let chars: String = pdf.missing.iter().collect();
                eprintln!("{}{}", Msg::Warning, Msg::MissingGlyphs(&chars));
            }
            writeln!(
                out,
                "{}",
                Msg::WrotePdf {
                    path: &path,
                    pages: pdf.pages,
                }
            )?;
        }
        _ => json_out(out, &log)?,
    }
    Ok(())
}
