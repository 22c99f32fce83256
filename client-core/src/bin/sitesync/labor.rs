//! Labor lines: adding, editing, deleting and showing one line, and logging a whole crew like
//! another day.

use std::io::Write;

use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use sitesync_core::Store;
use sitesync_core::ids::{CrewId, LineId, SiteId, WorkItemId, WorkerId};
use sitesync_core::labor::{LaborKind, LaborPatch};
use sitesync_core::store::entry;
use sitesync_core::units::{Fen, Minutes, WorkDays};

use crate::day::{Amend, line_json};
use crate::input::date;
use crate::render::json_out;

#[derive(Subcommand, Debug)]
pub enum LaborCmd {
    /// Log a worker on a work item for a day; prints the line's id.
    Add {
        /// Site id.
        #[arg(long)]
        site: String,
        /// Date (YYYY-MM-DD or "today").
        #[arg(long)]
        date: String,
        /// Worker id.
        #[arg(long)]
        worker: String,
        /// Work item id.
        #[arg(long)]
        work_item: String,
        /// Work-days (工日), e.g. 1.0 or 0.5.
        #[arg(long, allow_negative_numbers = true)]
        work_days: String,
        #[command(flatten)]
        fields: LineFields,
        #[command(flatten)]
        amend: Amend,
    },
    /// Change fields of a line.
    Edit {
        /// The line's id.
        id: String,
        /// Work-days (工日).
        #[arg(long, allow_negative_numbers = true)]
        work_days: Option<String>,
        #[command(flatten)]
        fields: LineFields,
        #[command(flatten)]
        amend: Amend,
    },
    /// Delete a line.
    Rm {
        /// The line's id.
        id: String,
        #[command(flatten)]
        amend: Amend,
    },
    /// Show one line.
    Show {
        /// The line's id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct LineFields {
    /// Hours worked, e.g. 8 or 7.5 (default: 8 per work-day).
    #[arg(long, allow_negative_numbers = true)]
    hours: Option<String>,
    /// Overtime hours, e.g. 0.5.
    #[arg(long, allow_negative_numbers = true)]
    overtime: Option<String>,
    /// How the line is paid.
    #[arg(long, value_enum)]
    kind: Option<Kind>,
    /// Day rate in yuan (default: the worker's rate on the roster).
    #[arg(long, allow_negative_numbers = true)]
    rate: Option<String>,
    /// A note.
    #[arg(long)]
    note: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum CrewCmd {
    /// Log a whole crew for a day like another day, in one step; then edit the exceptions.
    Copy {
        /// Site id.
        #[arg(long)]
        site: String,
        /// Crew id.
        #[arg(long)]
        crew: String,
        /// The day to copy.
        #[arg(long)]
        from: String,
        /// The day to fill.
        #[arg(long)]
        to: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Kind {
    /// 点工, paid by the day.
    DayLabor,
    /// 包工, piecework.
    Piecework,
}

pub fn labor(store: &mut Store, out: &mut impl Write, cmd: LaborCmd) -> Result<()> {
    match cmd {
        LaborCmd::Add {
            site,
            date: d,
            worker,
            work_item,
            work_days,
            fields,
            amend,
        } => {
            let site = SiteId::new(site)?;
            let d = date(store, &site, &d)?;
            let mut e = entry(
                site.clone(),
                d,
                WorkerId::new(worker)?,
                WorkItemId::new(work_item)?,
                WorkDays::parse(&work_days)?,
            );
            let patch = patch(None, &fields)?;
            e.hours = patch.hours;
            e.overtime = patch.overtime.unwrap_or_default();
            e.kind = patch.kind.unwrap_or(LaborKind::DayLabor);
            e.day_rate = patch.day_rate;
            e.note = patch.note.unwrap_or_default();
            let line = store.add_labor(&e, amend.amend.as_deref())?;
            writeln!(out, "{}", line.id)?;
        }
        LaborCmd::Edit {
            id,
            work_days,
            fields,
            amend,
        } => {
            let line = store.edit_labor(
                &LineId::new(id)?,
                &patch(work_days.as_deref(), &fields)?,
                amend.amend.as_deref(),
            )?;
            writeln!(out, "{}", line.id)?;
        }
        LaborCmd::Rm { id, amend } => {
            store.delete_labor(&LineId::new(id.clone())?, amend.amend.as_deref())?;
            writeln!(out, "deleted {id}")?;
        }
        LaborCmd::Show { id, json } => {
            let (site, d, line) = store.labor_line(&LineId::new(id)?)?;
            if json {
                json_out(
                    out,
                    &serde_json::json!({"site": site, "date": d, "line": line_json(&line)}),
                )?;
            } else {
                writeln!(
                    out,
                    "{site} {d} {} {} {} work-days, {} + {} overtime, {} ({})",
                    line.worker,
                    line.work_item,
                    line.work_days,
                    line.hours,
                    line.overtime,
                    line.cost(),
                    if line.deleted { "deleted" } else { "active" }
                )?;
            }
        }
    }
    Ok(())
}

pub fn crew(store: &mut Store, out: &mut impl Write, cmd: CrewCmd) -> Result<()> {
    let CrewCmd::Copy {
        site,
        crew,
        from,
        to,
        json,
    } = cmd;
    let site = SiteId::new(site)?;
    let from = date(store, &site, &from)?;
    let to = date(store, &site, &to)?;
    let copy = store.copy_crew_day(&site, &CrewId::new(crew)?, from, to)?;
    if json {
        json_out(out, &copy)?;
    } else {
        writeln!(out, "copied {} lines from {from} to {to}", copy.created.len())?;
        for id in &copy.created {
            writeln!(out, "{id}")?;
        }
        if !copy.skipped.is_empty() {
            let names: Vec<String> = copy.skipped.iter().map(ToString::to_string).collect();
            writeln!(
                out,
                "skipped (already logged that day or inactive): {}",
                names.join(", ")
            )?;
        }
    }
    Ok(())
}

/// Turns the optional text fields of a command into a patch, parsing each exactly.
fn patch(work_days: Option<&str>, f: &LineFields) -> Result<LaborPatch> {
    Ok(LaborPatch {
        work_days: work_days.map(WorkDays::parse).transpose()?,
        hours: f
            .hours
            .as_deref()
            .map(|h| Minutes::parse_hours("hours", h))
            .transpose()?,
        overtime: f
            .overtime
            .as_deref()
            .map(|h| Minutes::parse_hours("overtime", h))
            .transpose()?,
        kind: f.kind.map(|k| match k {
            Kind::DayLabor => LaborKind::DayLabor,
            Kind::Piecework => LaborKind::Piecework,
        }),
        day_rate: f.rate.as_deref().map(|r| Fen::parse_yuan("rate", r)).transpose()?,
        note: f.note.clone(),
    })
}
