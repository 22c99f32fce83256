//! One site-day: showing it, its weather, note and delays, and the progress recorded on it.

use std::io::Write;

use anyhow::Result;
use clap::{Args, Subcommand};
use sitesync_core::Store;
use sitesync_core::ids::{LineId, WorkItemId, WorkerId};
use sitesync_core::labor::DaySheet;
use sitesync_core::units::{Quantity, add_saturating, fixed, yuan};

use crate::input::{self, SiteDay};
use crate::msg::{Col, Msg, cols};
use crate::render::{json_out, say, table};

#[derive(Args, Debug)]
pub struct ShowArgs {
    #[command(flatten)]
    day: SiteDay,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct NoteArgs {
    #[command(flatten)]
    day: SiteDay,
    /// Weather, e.g. 晴.
    #[arg(long)]
    weather: Option<String>,
    /// The daily note.
    #[arg(long)]
    note: Option<String>,
    #[command(flatten)]
    amend: Amend,
}

#[derive(Args, Debug)]
pub struct DelayArgs {
    #[command(flatten)]
    day: SiteDay,
    /// What held the work up.
    #[arg(long)]
    text: String,
    /// The work item affected.
    #[arg(long)]
    work_item: Option<String>,
    #[command(flatten)]
    amend: Amend,
}

/// The line `rm` deletes, for labor and progress alike.
#[derive(Args, Debug)]
pub struct LineRm {
    /// The line's id.
    pub id: String,
    #[command(flatten)]
    pub amend: Amend,
}

#[derive(Args, Debug)]
pub struct Amend {
    /// On an approved day: record this change as an amendment, with this reason.
    #[arg(long, value_name = "REASON")]
    pub amend: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum ProgressCmd {
    /// Record the quantity installed on a work item that day (replaces that day's figure); prints the id.
    Set {
        #[command(flatten)]
        day: SiteDay,
        /// Work item id.
        #[arg(long)]
        work_item: String,
        /// Quantity in the work item's unit, e.g. 12.5.
        #[arg(long, allow_negative_numbers = true)]
        quantity: String,
        /// A note.
        #[arg(long, default_value = "")]
        note: String,
        #[command(flatten)]
        amend: Amend,
    },
    /// Delete a progress line.
    Rm(LineRm),
    /// Progress to date per work item against plan.
    List {
        /// Site id, code (HZ-01) or name.
        #[arg(long)]
        site: String,
        /// Up to and including this date (default today at the site).
        #[arg(long)]
        date: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn show(store: &mut Store, out: &mut impl Write, ShowArgs { day, json }: ShowArgs) -> Result<()> {
    let (site, d) = day.read(store)?;
    let sheet = store.day(&site, d)?;
    if json {
        let mut v = day_json(&sheet);
        v["signoffs"] = serde_json::to_value(store.day_signoffs(&site, d)?)?;
        json_out(out, &v)?;
    } else {
        print_day(store, out, &sheet)?;
    }
    Ok(())
}

pub fn note(store: &mut Store, out: &mut impl Write, args: NoteArgs) -> Result<()> {
    let NoteArgs {
        day,
        weather,
        note,
        amend,
    } = args;
    let (site, d) = day.write(store)?;
    store.set_day_info(&site, d, weather.as_deref(), note.as_deref(), amend.amend.as_deref())?;
    say(out, Msg::Saved)?;
    Ok(())
}

pub fn delay(store: &mut Store, out: &mut impl Write, args: DelayArgs) -> Result<()> {
    let DelayArgs {
        day,
        text,
        work_item,
        amend,
    } = args;
    let (site, d) = day.write(store)?;
    let wi = work_item.map(WorkItemId::new).transpose()?;
    writeln!(
        out,
        "{}",
        store.add_delay(&site, d, &text, wi.as_ref(), amend.amend.as_deref())?
    )?;
    Ok(())
}

pub fn progress(store: &mut Store, out: &mut impl Write, cmd: ProgressCmd) -> Result<()> {
    match cmd {
        ProgressCmd::Set {
            day,
            work_item,
            quantity,
            note,
            amend,
        } => {
            let (site, d) = day.write(store)?;
            let line = store.set_progress(
                &site,
                d,
                &WorkItemId::new(work_item)?,
                Quantity::parse("quantity", &quantity)?,
                &note,
                amend.amend.as_deref(),
            )?;
            writeln!(out, "{}", line.id)?;
        }
        ProgressCmd::Rm(LineRm { id, amend }) => {
            store.delete_progress(&LineId::new(id.clone())?, amend.amend.as_deref())?;
            say(out, Msg::Deleted(&id))?;
        }
        ProgressCmd::List { site, date: d, json } => {
            let site = input::site(store, &site)?;
            let d = input::date(store, &site, d.as_deref().unwrap_or("today"))?;
            let items = store.progress_to_date(&site, d)?;
            if json {
                json_out(out, &items)?;
            } else {
                table(
                    out,
                    &cols(&[
                        Col::WorkItem,
                        Col::Name,
                        Col::Unit,
                        Col::Planned,
                        Col::ToDate,
                        Col::Percent,
                        Col::LaborCost,
                        Col::Budget,
                    ]),
                    items.iter().map(|p| {
                        vec![
                            p.code.clone(),
                            p.name.clone(),
                            p.unit.clone(),
                            fixed(p.planned_quantity_milli, 3),
                            fixed(p.quantity_to_date_milli, 3),
                            format!("{:.1}", p.percent_complete),
                            yuan(p.labor_cost_fen),
                            yuan(p.budget_fen),
                        ]
                    }),
                )?;
            }
        }
    }
    Ok(())
}

pub fn line_json(l: &sitesync_core::labor::LaborLine) -> serde_json::Value {
    let mut v = serde_json::to_value(l).unwrap_or_default();
    v["cost_fen"] = l.cost().fen().into();
    v
}

fn day_json(s: &DaySheet) -> serde_json::Value {
    let mut v = serde_json::to_value(s).unwrap_or_default();
    v["labor"] = s.labor.iter().map(line_json).collect();
    let totals = s.labor.iter().fold([0i64; 5], |mut t, l| {
        t[0] += l.work_days.centi();
        t[1] += l.hours.minutes();
        t[2] += l.overtime.minutes();
        t[3] += l.cost().fen();
        t[4] += 1;
        t
    });
    v["totals"] = serde_json::json!({
        "work_days_centi": totals[0], "hours_min": totals[1], "overtime_min": totals[2], "cost_fen": totals[3], "lines": totals[4]
    });
    v
}

fn print_day(store: &mut Store, out: &mut impl Write, s: &DaySheet) -> Result<()> {
    let roster = store.roster(&s.site)?;
    say(
        out,
        Msg::DayHeader {
            code: &roster.site.code,
            name: &roster.site.name,
            date: &s.date.to_string(),
            status: s.status,
            weather: if s.weather.is_empty() { "—" } else { &s.weather },
        },
    )?;
    if !s.note.is_empty() {
        say(out, Msg::DayNote(&s.note))?;
    }
    let name = |w: &WorkerId| roster.worker(w).map(|w| w.name.clone()).unwrap_or_default();
    let item = |w: &WorkItemId| {
        roster
            .work_item(w)
            .map(|w| format!("{} {}", w.code, w.name))
            .unwrap_or_else(|| w.to_string())
    };
    table(
        out,
        &cols(&[
            Col::Id,
            Col::Worker,
            Col::Name,
            Col::WorkItem,
            Col::WorkDays,
            Col::Hours,
            Col::Overtime,
            Col::Cost,
            Col::Note,
            Col::Conflicts,
        ]),
        s.labor.iter().map(|l| {
            vec![
                l.id.to_string(),
                l.worker.to_string(),
                name(&l.worker),
                item(&l.work_item),
                l.work_days.to_string(),
                l.hours.to_string(),
                l.overtime.to_string(),
                l.cost().to_string(),
                l.note.clone(),
                l.conflicts
                    .iter()
                    .map(|c| {
                        Msg::Conflict {
                            field: &c.field,
                            chosen: &c.chosen,
                            others: &c.others.join("/"),
                        }
                        .to_string()
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            ]
        }),
    )?;
    let total = s.labor.iter().map(|l| l.cost().fen()).fold(0, add_saturating);
    let days: i64 = s.labor.iter().map(|l| l.work_days.centi()).sum();
    say(
        out,
        Msg::DayTotals {
            lines: s.labor.len(),
            work_days: &fixed(days, 2),
            cost: &yuan(total),
        },
    )?;
    if !s.progress.is_empty() {
        table(
            out,
            &cols(&[Col::Id, Col::WorkItem, Col::Quantity, Col::Note]),
            s.progress.iter().map(|p| {
                vec![
                    p.id.to_string(),
                    item(&p.work_item),
                    p.quantity.to_string(),
                    p.note.clone(),
                ]
            }),
        )?;
    }
    for d in &s.delays {
        say(out, Msg::Delay(&d.text))?;
    }
    for r in &s.reviews {
        say(
            out,
            Msg::Reviewed {
                at: &r.at.format("%Y-%m-%d %H:%M").to_string(),
                action: r.action,
                by: &r.by,
                reason: &r.reason,
            },
        )?;
    }
    Ok(())
}
