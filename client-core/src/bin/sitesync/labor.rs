//! Labor lines: adding, editing, deleting and showing one line, and logging a whole crew like
//! another day.

use std::io::Write;

use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use sitesync_core::Store;
use sitesync_core::ids::{CrewId, LineId, WorkItemId};
use sitesync_core::labor::{LaborKind, LaborLine, LaborPatch};
use sitesync_core::store::entry;
use sitesync_core::units::{Fen, Minutes, WorkDays};

use crate::day::{Amend, LineRm, line_json};
use crate::input::{self, SiteDay};
use crate::msg::Msg;
use crate::render::{json_out, say};

#[derive(Subcommand, Debug)]
pub enum LaborCmd {
    /// Log a worker on a work item for a day; prints the line's id.
    Add {
        #[command(flatten)]
        day: SiteDay,
        /// Worker id, or name where only one worker has it.
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
        /// Work-days (工日); without --hours the line's hours follow, at 8 a work-day.
        #[arg(long, allow_negative_numbers = true)]
        work_days: Option<String>,
        #[command(flatten)]
        fields: LineFields,
        #[command(flatten)]
        amend: Amend,
    },
    /// Delete a line.
    Rm(LineRm),
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
        /// Site id, code (HZ-01) or name.
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
            day,
            worker,
            work_item,
            work_days,
            fields,
            amend,
        } => {
            let (site, d) = day.write(store)?;
            let worker = input::worker(store, Some(&site), &worker)?;
            let work_days = WorkDays::parse(&work_days)?;
            if work_days.centi() == 0 {
                input::warn(&Msg::ZeroWorkDays);
            }
            let mut e = entry(site.clone(), d, worker, WorkItemId::new(work_item)?, work_days);
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
            let id = LineId::new(id)?;
            let patch = patch(work_days.as_deref(), &fields)?;
            if patch.work_days.is_some_and(|w| w.centi() == 0) {
                input::warn(&Msg::ZeroWorkDays);
            }
            // Work-days without hours: the store decides the hours; say what it decided.
            let before = match (patch.work_days, patch.hours) {
                (Some(_), None) => Some(store.labor_line(&id)?.2),
                _ => None,
            };
            let line = store.edit_labor(&id, &patch, amend.amend.as_deref())?;
            if let Some(before) = &before {
                explain_hours(before, &line);
            }
            writeln!(out, "{}", line.id)?;
        }
        LaborCmd::Rm(LineRm { id, amend }) => {
            store.delete_labor(&LineId::new(id.clone())?, amend.amend.as_deref())?;
            say(out, Msg::Deleted(&id))?;
        }
        LaborCmd::Show { id, json } => {
            let (site, d, line) = store.labor_line(&LineId::new(id)?)?;
            if json {
                json_out(
                    out,
                    &serde_json::json!({"site": site, "date": d, "line": line_json(&line)}),
                )?;
            } else {
                say(
                    out,
                    Msg::LineSummary {
                        site: site.as_str(),
                        date: &d.to_string(),
                        worker: line.worker.as_str(),
                        work_item: line.work_item.as_str(),
                        work_days: &line.work_days.to_string(),
                        hours: &line.hours.to_string(),
                        overtime: &line.overtime.to_string(),
                        cost: &line.cost().to_string(),
                        deleted: line.deleted,
                    },
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
    let site = input::site(store, &site)?;
    let from = input::date(store, &site, &from)?;
    let to = input::date_to_write(store, &site, &to)?;
    let copy = store.copy_crew_day(&site, &CrewId::new(crew)?, from, to)?;
    if json {
        json_out(out, &copy)?;
    } else {
        say(
            out,
            Msg::Copied {
                lines: copy.created.len(),
                from: &from.to_string(),
                to: &to.to_string(),
            },
        )?;
        for id in &copy.created {
            writeln!(out, "{id}")?;
        }
        if !copy.skipped.is_empty() {
            let names: Vec<String> = copy.skipped.iter().map(ToString::to_string).collect();
            say(out, Msg::CopySkipped(&names.join(", ")))?;
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

/// Says on stderr what became of a line's hours when its work-days were edited without `--hours`:
/// the store moves hours that were the default (8 a work-day) to the new default and keeps hours
/// set by hand, and a person should not have to run `labor show` to learn which. `before` is the
/// line as it was, `after` as the store wrote it.
fn explain_hours(before: &LaborLine, after: &LaborLine) {
    if after.work_days == before.work_days {
        return;
    }
    let work_days = after.work_days.to_string();
    if after.hours != before.hours {
        eprintln!(
            "{}",
            Msg::HoursFollow {
                work_days: &work_days,
                from: &before.hours.to_string(),
                to: &after.hours.to_string(),
            }
        );
    } else {
        eprintln!(
            "{}",
            Msg::HoursKept {
                work_days: &work_days,
                hours: &after.hours.to_string(),
            }
        );
    }
}
