//! OKRs: cycles, objectives, key results, check-ins, reviews and the board.

use std::io::Write;

use anyhow::Result;
use chrono::NaiveDate;
use clap::{Args, Subcommand};
use sitesync_core::Store;
use sitesync_core::units::{Quantity, fixed};

use crate::error::{CliError, Expected};
use crate::input;
use crate::msg::{Col, Msg, okr_status};
use crate::render::{json_out, say, table};

#[derive(Args, Debug)]
pub struct CycleRef {
    /// Org id (default: the org of the imported company).
    #[arg(long)]
    org: Option<String>,
    /// Cycle id, e.g. 2026-Q4.
    #[arg(long)]
    cycle: String,
}

#[derive(Subcommand, Debug)]
pub enum OkrCmd {
    /// Create a cycle (quarter by default) containing --date.
    Cycle {
        #[command(flatten)]
        at: CycleRef,
        /// Title.
        #[arg(long)]
        title: String,
        /// quarter, month or year.
        #[arg(long, default_value = "quarter")]
        kind: String,
        /// A date inside the cycle (default today).
        #[arg(long)]
        date: Option<String>,
        /// The team, or the whole org.
        #[arg(long, default_value = "")]
        team: String,
    },
    /// Add an objective; prints its id.
    Objective {
        #[command(flatten)]
        at: CycleRef,
        /// Title.
        #[arg(long)]
        title: String,
        /// Owner.
        #[arg(long)]
        owner: String,
        /// Team.
        #[arg(long, default_value = "")]
        team: String,
        /// The objective it supports (alignment).
        #[arg(long)]
        parent: Option<String>,
    },
    /// Add a key result; prints its id.
    Kr {
        #[command(flatten)]
        at: CycleRef,
        /// The objective.
        #[arg(long)]
        objective: String,
        /// Title.
        #[arg(long)]
        title: String,
        /// Owner.
        #[arg(long)]
        owner: String,
        /// Unit (days, %, SKUs, ¥ …).
        #[arg(long, default_value = "")]
        unit: String,
        /// Baseline value.
        #[arg(long, allow_negative_numbers = true)]
        start: String,
        /// Target value.
        #[arg(long, allow_negative_numbers = true)]
        target: Option<String>,
        /// increase, decrease, at_least or at_most.
        #[arg(long, default_value = "increase")]
        direction: String,
        /// baseline (保底) or stretch (冲刺).
        #[arg(long, default_value = "baseline")]
        kind: String,
        /// Weight in the objective's roll-up.
        #[arg(long, default_value_t = 1)]
        weight: i64,
        /// Due date.
        #[arg(long)]
        due: Option<String>,
        /// Feed it from field data: a JSON metric, e.g. {"metric":"labor_cost","site":"site-hz-01"}.
        #[arg(long)]
        metric: Option<String>,
    },
    /// Check in a value on a key result.
    Checkin {
        #[command(flatten)]
        at: CycleRef,
        /// The key result.
        #[arg(long)]
        kr: String,
        /// The value.
        #[arg(long, allow_negative_numbers = true)]
        value: String,
        /// green, yellow or red, in your judgement.
        #[arg(long)]
        status: Option<String>,
        /// Confidence 0–10.
        #[arg(long)]
        confidence: Option<i64>,
        /// Note.
        #[arg(long, default_value = "")]
        note: String,
        /// The date the value is for (default today).
        #[arg(long)]
        date: Option<String>,
    },
    /// Override a key result's status (with a note), or clear the override.
    Override {
        #[command(flatten)]
        at: CycleRef,
        /// The key result.
        #[arg(long)]
        kr: String,
        /// green, yellow or red; leave out to clear.
        #[arg(long)]
        status: Option<String>,
        /// Why.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Hold a mid-cycle review (records every key result's value).
    Review {
        #[command(flatten)]
        at: CycleRef,
        /// Notes.
        #[arg(long, default_value = "")]
        notes: String,
    },
    /// Close the cycle: score every key result and objective.
    Close {
        #[command(flatten)]
        at: CycleRef,
        /// Retrospective notes.
        #[arg(long, default_value = "")]
        retrospective: String,
    },
    /// Show the cycle: objectives, key results, progress, status, scores.
    Show {
        #[command(flatten)]
        at: CycleRef,
        /// As of this date (default today).
        #[arg(long)]
        date: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn okr(store: &mut Store, out: &mut impl Write, cmd: OkrCmd) -> Result<()> {
    use sitesync_core::okr::{Cycle, CycleKind, Direction, KrKind, Status};
    let org_of = |store: &Store, r: &CycleRef| -> Result<(String, String)> {
        let org = match &r.org {
            Some(o) => o.clone(),
            None => store.meta("org")?.ok_or(CliError::NeedOrg)?,
        };
        Ok((org, r.cycle.clone()))
    };
    let today = chrono::Utc::now().date_naive();
    let day =
        |d: &Option<String>| -> Result<NaiveDate> { Ok(d.as_deref().map(input::day).transpose()?.unwrap_or(today)) };
    let milli = |field: &'static str, v: &str| -> Result<i64> {
        Ok(Quantity::parse(field, v.trim_start_matches('-'))
            .map(|q| if v.starts_with('-') { -q.milli() } else { q.milli() })?)
    };
    let status = |s: &str| {
        Status::parse(s).ok_or(CliError::Invalid {
            field: "status",
            expected: Expected::Status,
        })
    };
    match cmd {
        OkrCmd::Cycle {
            at,
            title,
            kind,
            date,
            team,
        } => {
            let (org, id) = org_of(store, &at)?;
            let kind = CycleKind::parse(&kind).ok_or(CliError::Invalid {
                field: "kind",
                expected: Expected::CycleKind,
            })?;
            let cycle = Cycle::new(&org, &id, kind, &title, &team, day(&date)?);
            store.put_cycle(&cycle)?;
            writeln!(out, "{} {} – {}", cycle.id, cycle.start, cycle.end)?;
        }
        OkrCmd::Objective {
            at,
            title,
            owner,
            team,
            parent,
        } => {
            let (org, cycle) = org_of(store, &at)?;
            writeln!(
                out,
                "{}",
                store
                    .add_objective(&org, &cycle, &title, &owner, &team, parent.as_deref())?
                    .id
            )?;
        }
        OkrCmd::Kr {
            at,
            objective,
            title,
            owner,
            unit,
            start,
            target,
            direction,
            kind,
            weight,
            due,
            metric,
        } => {
            let (org, cycle) = org_of(store, &at)?;
            let new = sitesync_core::store::NewKeyResult {
                objective,
                title,
                owner,
                unit,
                start_milli: milli("start", &start)?,
                target_milli: target.as_deref().map(|t| milli("target", t)).transpose()?,
                direction: Direction::parse(&direction).ok_or(CliError::Invalid {
                    field: "direction",
                    expected: Expected::Direction,
                })?,
                kind: KrKind::parse(&kind).ok_or(CliError::Invalid {
                    field: "kind",
                    expected: Expected::KrKind,
                })?,
                weight,
                due: due.as_deref().map(input::day).transpose()?,
                metric: metric
                    .as_deref()
                    .map(serde_json::from_str)
                    .transpose()
                    .map_err(|e| CliError::Invalid {
                        field: "metric",
                        expected: Expected::Metric(e.to_string()),
                    })?,
            };
            writeln!(out, "{}", store.add_key_result(&org, &cycle, &new)?.id)?;
        }
        OkrCmd::Checkin {
            at,
            kr,
            value,
            status: s,
            confidence,
            note,
            date,
        } => {
            let (org, cycle) = org_of(store, &at)?;
            let s = s.as_deref().map(status).transpose()?;
            let c = store.check_in(
                &org,
                &cycle,
                &kr,
                milli("value", &value)?,
                s,
                confidence,
                &note,
                day(&date)?,
            )?;
            writeln!(out, "{}", c.id)?;
        }
        OkrCmd::Override {
            at,
            kr,
            status: s,
            note,
        } => {
            let (org, cycle) = org_of(store, &at)?;
            let s = s.as_deref().map(status).transpose()?;
            store.override_status(&org, &cycle, &kr, s.map(|s| (s, note.as_str())))?;
            say(out, Msg::Saved)?;
        }
        OkrCmd::Review { at, notes } => {
            let (org, cycle) = org_of(store, &at)?;
            let board = store.review_cycle(&org, &cycle, today, &notes)?;
            for c in &board.since_last_review {
                writeln!(out, "{}  {}", c.title, fixed(c.now_milli, 3))?;
            }
        }
        OkrCmd::Close { at, retrospective } => {
            let (org, cycle) = org_of(store, &at)?;
            let board = store.close_cycle(&org, &cycle, &retrospective, &Default::default())?;
            for o in &board.objectives {
                writeln!(out, "{:.1}  {}", o.score.unwrap_or(0.0), o.objective.title)?;
            }
        }
        OkrCmd::Show { at, date, json } => {
            let (org, cycle) = org_of(store, &at)?;
            let board = store.okr_board(&org, &cycle, day(&date)?)?;
            if json {
                json_out(out, &board)?;
            } else {
                say(
                    out,
                    Msg::BoardHeader {
                        id: &board.cycle.id,
                        title: &board.cycle.title,
                        start: &board.cycle.start.to_string(),
                        end: &board.cycle.end.to_string(),
                        elapsed_pct: board.elapsed * 100.0,
                    },
                )?;
                for o in &board.objectives {
                    writeln!(
                        out,
                        "{} {:>3.0}% {:<6} {}  [{}]",
                        o.objective.id,
                        o.progress * 100.0,
                        okr_status(o.status),
                        o.objective.title,
                        o.objective.owner
                    )?;
                    table(
                        out,
                        &[
                            format!("  {}", Col::KeyResult.label()),
                            Col::Title.label().into(),
                            Col::Current.label().into(),
                            Col::Target.label().into(),
                            Col::Unit.label().into(),
                            Col::Progress.label().into(),
                            Col::Status.label().into(),
                            Col::LastCheckIn.label().into(),
                        ],
                        o.key_results.iter().map(|k| {
                            vec![
                                format!("  {}", k.kr.id),
                                k.kr.title.clone(),
                                fixed(k.current_milli, 3),
                                fixed(k.kr.target_milli, 3),
                                k.kr.unit.clone(),
                                format!("{:.0}%", k.progress * 100.0),
                                okr_status(k.status).to_string(),
                                k.last_checkin
                                    .as_ref()
                                    .map(|c| {
                                        Msg::CheckedIn {
                                            date: &c.date.to_string(),
                                            by: &c.author,
                                        }
                                        .to_string()
                                    })
                                    .unwrap_or_default(),
                            ]
                        }),
                    )?;
                }
                for w in &board.warnings {
                    say(out, Msg::Note(w))?;
                }
            }
        }
    }
    Ok(())
}
