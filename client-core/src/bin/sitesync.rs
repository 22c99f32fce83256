//! `sitesync`: the reference command-line client. It drives the same API the phone apps use, against
//! a store file, with no network needed.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};
use sitesync_core::ids::{CrewId, LineId, SiteId, WorkItemId, WorkerId, parse_date};
use sitesync_core::labor::{DaySheet, LaborKind, LaborPatch};
use sitesync_core::store::{GroupBy, entry};
use sitesync_core::units::{Fen, Minutes, Quantity, WorkDays};
use sitesync_core::{Error, Store};
use unicode_width::UnicodeWidthStr;

/// Offline-first day-labor and progress logging for construction sites.
#[derive(Parser, Debug)]
#[command(name = "sitesync", version, about, long_about = None)]
struct Cli {
    /// The store file (created if missing).
    #[arg(long, global = true, env = "SITESYNC_STORE", default_value = "sitesync.sqlite3")]
    store: PathBuf,
    /// Who you are: recorded as the author of what you enter (remembered in the store).
    #[arg(long, global = true, env = "SITESYNC_USER")]
    user: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Load DIR/company.json and DIR/logs.json (the fixtures' shape). Safe to repeat.
    Import {
        /// Folder holding company.json and optionally logs.json.
        dir: PathBuf,
    },
    /// List the sites in the store.
    Sites {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show a site's crews, workers and work items.
    Roster {
        /// Site id.
        #[arg(long)]
        site: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Add, edit, delete or show labor lines.
    #[command(subcommand)]
    Labor(LaborCmd),
    /// Crew-wide entry.
    #[command(subcommand)]
    Crew(CrewCmd),
    /// Record or list progress (quantity installed per work item).
    #[command(subcommand)]
    Progress(ProgressCmd),
    /// Show a site-day: its labor lines, progress, status and conflicts.
    Day {
        /// Site id.
        #[arg(long)]
        site: String,
        /// Date (YYYY-MM-DD or "today" at the site).
        #[arg(long)]
        date: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Set the day's weather and note.
    DayNote {
        /// Site id.
        #[arg(long)]
        site: String,
        /// Date (YYYY-MM-DD or "today").
        #[arg(long)]
        date: String,
        /// Weather, e.g. 晴.
        #[arg(long)]
        weather: Option<String>,
        /// The daily note.
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        amend: Amend,
    },
    /// Record a delay or blocker for the day.
    Delay {
        /// Site id.
        #[arg(long)]
        site: String,
        /// Date (YYYY-MM-DD or "today").
        #[arg(long)]
        date: String,
        /// What held the work up.
        #[arg(long)]
        text: String,
        /// The work item affected.
        #[arg(long)]
        work_item: Option<String>,
        #[command(flatten)]
        amend: Amend,
    },
    /// Submit a day for approval (foreman).
    Submit(DayRef),
    /// Approve a submitted day, pinning the exact version (manager).
    Approve(DayRef),
    /// Send a submitted day back with a reason (manager).
    Reject {
        #[command(flatten)]
        day: DayRef,
        /// Why it is sent back.
        #[arg(long)]
        reason: String,
    },
    /// Show what changed in a day since it was approved.
    Changes {
        #[command(flatten)]
        day: DayRef,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Work-days, hours, overtime, cost and line count over a date range.
    Totals {
        /// Site id.
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
    },
    /// A worker's month across all sites.
    Month {
        /// Worker id.
        #[arg(long)]
        worker: String,
        /// The month, YYYY-MM.
        #[arg(long)]
        month: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// OKRs: cycles, objectives, key results, check-ins, reviews.
    #[command(subcommand)]
    Okr(OkrCmd),
    /// Bind this store to a server and device token (from `sitesync-server admin device add`).
    Init {
        /// The server's base address: https://host[:port] (http:// only for a server on this
        /// machine, e.g. http://127.0.0.1:8080).
        #[arg(long)]
        server: String,
        /// The device token.
        #[arg(long, env = "SITESYNC_TOKEN")]
        token: String,
        /// A company CA certificate (PEM file): the server's certificate must then chain to it, and
        /// to nothing else. Without it, the system's trusted roots are used.
        #[arg(long)]
        ca_cert: Option<std::path::PathBuf>,
    },
    /// Sync with the server once (exit status 1 if it could not complete), or keep syncing.
    Sync {
        /// Stay connected: receive changes live, push local writes within a second, reconnect with
        /// backoff after failures. Stop with Ctrl-C.
        #[arg(long)]
        watch: bool,
    },
    /// Show the sync status: server, pending documents, last sync, last error, delivery receipts.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Every change of a site-day (or an OKR cycle) in causal order: who wrote it (the signing
    /// device's user, from the directory the server sent), when, and each value written. Offline.
    History {
        /// Site id (with --date).
        #[arg(long, requires = "date", conflicts_with = "cycle")]
        site: Option<String>,
        /// Date (YYYY-MM-DD).
        #[arg(long, requires = "site")]
        date: Option<String>,
        /// OKR cycle id (with --org).
        #[arg(long, requires = "org")]
        cycle: Option<String>,
        /// The cycle's org.
        #[arg(long, requires = "cycle")]
        org: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check an evidence file (from GET /v1/evidence) offline, with no server: prints who entered and
    /// who approved every value, or exactly what does not verify (exit status 1).
    VerifyEvidence {
        /// The evidence file.
        file: PathBuf,
        /// The server's public key (hex) to require; by default the key this store's server sent,
        /// if the store exists and has synced.
        #[arg(long)]
        server_key: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Fold every document's incremental chunks into a snapshot and reclaim space.
    Compact,
    /// Check the store file and decode every document.
    Verify,
}

#[derive(Subcommand, Debug)]
enum LaborCmd {
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
struct LineFields {
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

#[derive(Args, Debug)]
struct Amend {
    /// On an approved day: record this change as an amendment, with this reason.
    #[arg(long, value_name = "REASON")]
    amend: Option<String>,
}

#[derive(Args, Debug)]
struct DayRef {
    /// Site id.
    #[arg(long)]
    site: String,
    /// Date (YYYY-MM-DD or "today").
    #[arg(long)]
    date: String,
}

#[derive(Subcommand, Debug)]
enum CrewCmd {
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

#[derive(Subcommand, Debug)]
enum ProgressCmd {
    /// Record the quantity installed on a work item that day (replaces that day's figure); prints the id.
    Set {
        /// Site id.
        #[arg(long)]
        site: String,
        /// Date (YYYY-MM-DD or "today").
        #[arg(long)]
        date: String,
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
    Rm {
        /// The line's id.
        id: String,
        #[command(flatten)]
        amend: Amend,
    },
    /// Progress to date per work item against plan.
    List {
        /// Site id.
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

#[derive(Args, Debug)]
struct CycleRef {
    /// Org id (default: the org of the imported company).
    #[arg(long)]
    org: Option<String>,
    /// Cycle id, e.g. 2026-Q4.
    #[arg(long)]
    cycle: String,
}

#[derive(Subcommand, Debug)]
enum OkrCmd {
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

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Kind {
    /// 点工, paid by the day.
    DayLabor,
    /// 包工, piecework.
    Piecework,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum By {
    Day,
    Crew,
    Trade,
    Worker,
    WorkItem,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that stopped early (`sitesync day … | head`) is not an error.
        Err(e) if broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            // Bad input is exit 2, like clap's own usage errors; anything else (disk, network,
            // credentials) is 1.
            let usage = e.downcast_ref::<Error>().is_some_and(Error::is_bad_input);
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

/// Whether the error is stdout's reader having gone away.
fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == Some(std::io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> Result<()> {
    if let Command::VerifyEvidence { file, server_key, json } = &cli.command {
        return verify_evidence(&cli.store, file, server_key.as_deref(), *json);
    }
    let mut store = Store::open(&cli.store).with_context(|| format!("opening store {}", cli.store.display()))?;
    if let Some(user) = &cli.user
        && user != store.user()
    {
        // A store the server has named belongs to that user: entries in another name would be
        // refused as forged, here and at head office.
        if let Some(a) = store.author()
            && !a.is_named(user)
        {
            return Err(Error::invalid_public(
                "user",
                &format!(
                    "this store belongs to {} ({}); it cannot write as {user}",
                    a.user_name, a.user_id
                ),
            )
            .into());
        }
        store.set_user(user)?;
    }
    let out = &mut std::io::stdout().lock();
    match cli.command {
        Command::Import { dir } => {
            let s = store.import_dir(&dir)?;
            writeln!(
                out,
                "imported {} sites, {} workers, {} days, {} labor lines, {} progress lines",
                s.sites, s.workers, s.days, s.labor_lines, s.progress_lines
            )?;
            if s.approved_skipped > 0 {
                writeln!(
                    out,
                    "left {} approved days untouched (correct them with --amend)",
                    s.approved_skipped
                )?;
            }
        }
        Command::Sites { json } => {
            let sites = store.sites()?;
            if json {
                json_out(out, &sites)?;
            } else {
                table(
                    out,
                    &["id", "code", "name", "timezone"],
                    sites
                        .iter()
                        .map(|s| vec![s.id.to_string(), s.code.clone(), s.name.clone(), s.timezone.clone()]),
                )?;
            }
        }
        Command::Roster { site, json } => {
            let r = store.roster(&SiteId::new(site)?)?;
            if json {
                json_out(out, &r)?;
            } else {
                writeln!(out, "{} {} ({})", r.site.code, r.site.name, r.site.timezone)?;
                table(
                    out,
                    &["crew", "name", "leader", "trade"],
                    r.crews
                        .iter()
                        .map(|c| vec![c.id.to_string(), c.name.clone(), c.leader.clone(), c.trade.clone()]),
                )?;
                table(
                    out,
                    &["worker", "name", "trade", "crew", "day rate", "ot rate/h", "active"],
                    r.workers.iter().map(|w| {
                        vec![
                            w.id.to_string(),
                            w.name.clone(),
                            w.trade.clone(),
                            w.crew.to_string(),
                            w.day_rate.to_string(),
                            w.overtime_rate.to_string(),
                            w.active.to_string(),
                        ]
                    }),
                )?;
                table(
                    out,
                    &["work item", "code", "name", "unit", "planned", "budget"],
                    r.work_items.iter().map(|w| {
                        vec![
                            w.id.to_string(),
                            w.code.clone(),
                            w.name.clone(),
                            w.unit.clone(),
                            w.planned_quantity.to_string(),
                            w.budget.to_string(),
                        ]
                    }),
                )?;
            }
        }
        Command::Labor(cmd) => labor(&mut store, out, cmd)?,
        Command::Crew(CrewCmd::Copy {
            site,
            crew,
            from,
            to,
            json,
        }) => {
            let site = SiteId::new(site)?;
            let from = date(&mut store, &site, &from)?;
            let to = date(&mut store, &site, &to)?;
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
        }
        Command::Progress(cmd) => progress(&mut store, out, cmd)?,
        Command::Day { site, date: d, json } => {
            let site = SiteId::new(site)?;
            let d = date(&mut store, &site, &d)?;
            let sheet = store.day(&site, d)?;
            if json {
                json_out(out, &day_json(&sheet))?;
            } else {
                print_day(&mut store, out, &sheet)?;
            }
        }
        Command::DayNote {
            site,
            date: d,
            weather,
            note,
            amend,
        } => {
            let site = SiteId::new(site)?;
            let d = date(&mut store, &site, &d)?;
            store.set_day_info(&site, d, weather.as_deref(), note.as_deref(), amend.amend.as_deref())?;
            writeln!(out, "saved")?;
        }
        Command::Delay {
            site,
            date: d,
            text,
            work_item,
            amend,
        } => {
            let site = SiteId::new(site)?;
            let d = date(&mut store, &site, &d)?;
            let wi = work_item.map(WorkItemId::new).transpose()?;
            writeln!(
                out,
                "{}",
                store.add_delay(&site, d, &text, wi.as_ref(), amend.amend.as_deref())?
            )?;
        }
        Command::Submit(day) => {
            let (site, d) = day_ref(&mut store, day)?;
            let sheet = store.submit_day(&site, d)?;
            writeln!(out, "{site} {d}: {}", status_text(&sheet))?;
        }
        Command::Approve(day) => {
            let (site, d) = day_ref(&mut store, day)?;
            let sheet = store.approve_day(&site, d)?;
            writeln!(out, "{site} {d}: {}", status_text(&sheet))?;
        }
        Command::Reject { day, reason } => {
            let (site, d) = day_ref(&mut store, day)?;
            let sheet = store.reject_day(&site, d, &reason)?;
            writeln!(out, "{site} {d}: {}", status_text(&sheet))?;
        }
        Command::Changes { day, json } => {
            let (site, d) = day_ref(&mut store, day)?;
            let changes = store.amendments(&site, d)?;
            if json {
                json_out(out, &changes)?;
            } else if changes.is_empty() {
                writeln!(out, "no changes since approval")?;
            } else {
                table(
                    out,
                    &["line", "field", "approved", "now"],
                    changes.iter().map(|c| {
                        vec![
                            c.line.clone(),
                            c.field.clone(),
                            c.approved.clone().unwrap_or("—".into()),
                            c.now.clone().unwrap_or("—".into()),
                        ]
                    }),
                )?;
            }
        }
        Command::Totals {
            site,
            from,
            to,
            by,
            json,
        } => {
            let site = SiteId::new(site)?;
            let from = date(&mut store, &site, &from)?;
            let to = date(&mut store, &site, &to)?;
            let by = by.map(|b| match b {
                By::Day => GroupBy::Day,
                By::Crew => GroupBy::Crew,
                By::Trade => GroupBy::Trade,
                By::Worker => GroupBy::Worker,
                By::WorkItem => GroupBy::WorkItem,
            });
            store.roster(&site)?;
            let t = store.totals(Some(&site), from, to, by)?;
            if json {
                json_out(out, &t)?;
            } else {
                let row = |key: &str, label: &str, s: &sitesync_core::store::Sums| {
                    vec![
                        key.to_string(),
                        label.to_string(),
                        fixed(s.work_days_centi, 100, 2),
                        fixed(s.hours_min * 100 / 60, 100, 2),
                        fixed(s.overtime_min * 100 / 60, 100, 2),
                        Fen::new("cost", s.cost_fen).map(|f| f.to_string()).unwrap_or_default(),
                        s.lines.to_string(),
                    ]
                };
                let mut rows: Vec<Vec<String>> = t.rows.iter().map(|r| row(&r.key, &r.label, &r.sums)).collect();
                rows.push(row("total", "", &t.total));
                table(
                    out,
                    &["key", "name", "work-days", "hours", "overtime h", "cost", "lines"],
                    rows.into_iter(),
                )?;
            }
        }
        Command::Month { worker, month, json } => {
            let first = parse_date(&format!("{month}-01")).map_err(|_| Error::InvalidDate(month.clone()))?;
            let m = store.worker_month(&WorkerId::new(worker)?, first)?;
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
                            fixed(d.work_days_centi, 100, 2),
                            fixed(d.overtime_min * 100 / 60, 100, 2),
                            fixed(d.cost_fen, 100, 2),
                        ]
                    })
                    .collect();
                rows.push(vec![
                    "total".into(),
                    String::new(),
                    String::new(),
                    fixed(m.total.work_days_centi, 100, 2),
                    fixed(m.total.overtime_min * 100 / 60, 100, 2),
                    fixed(m.total.cost_fen, 100, 2),
                ]);
                table(
                    out,
                    &["date", "site", "work item", "work-days", "overtime h", "cost ¥"],
                    rows.into_iter(),
                )?;
            }
        }
        Command::Okr(cmd) => okr(&mut store, out, cmd)?,
        Command::Init { server, token, ca_cert } => {
            let pem = match &ca_cert {
                Some(path) => {
                    Some(std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?)
                }
                None => None,
            };
            store.bind_with_ca(&server, &token, pem.as_deref())?;
            let trust = match &ca_cert {
                Some(path) => format!(" (trusting only the CA in {})", path.display()),
                None => String::new(),
            };
            writeln!(out, "bound to {server}{trust}; run `sitesync sync` to sync")?;
        }
        Command::Sync { watch } => {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            if watch {
                let stop = async {
                    let _ = tokio::signal::ctrl_c().await;
                };
                rt.block_on(sitesync_core::sync::client::watch(
                    &mut store,
                    std::time::Duration::from_secs(1),
                    Default::default(),
                    stop,
                ))?;
            } else {
                let p = rt.block_on(sitesync_core::sync::client::sync_once(&mut store))?;
                writeln!(out, "synced: {} documents pushed, {} received", p.pushed, p.received)?;
                for r in &p.refused_changes {
                    writeln!(
                        out,
                        "refused by head office: {} change {}: {} ({}); not kept in this store",
                        r.doc,
                        &r.hash[..12],
                        r.reason,
                        r.rule
                    )?;
                }
            }
        }
        Command::Status { json } => {
            let s = store.sync_status()?;
            if json {
                json_out(out, &s)?;
            } else {
                writeln!(
                    out,
                    "server:     {}",
                    s.server.as_deref().unwrap_or("(not bound; run `sitesync init`)")
                )?;
                writeln!(out, "connected:  {}", if s.connected { "yes" } else { "no" })?;
                writeln!(out, "last sync:  {}", s.last_sync.as_deref().unwrap_or("never"))?;
                if let Some(e) = &s.last_error {
                    writeln!(out, "last error: {e}")?;
                }
                let delivered = s.documents.iter().filter(|d| d.at_head_office).count();
                writeln!(
                    out,
                    "documents:  {} at head office, {} pending",
                    delivered,
                    s.pending.len()
                )?;
                for p in &s.pending {
                    writeln!(out, "  pending {p}")?;
                }
                let refused = store.refused_changes()?;
                if !refused.is_empty() {
                    writeln!(
                        out,
                        "refused:    {} change(s) head office did not accept",
                        refused.len()
                    )?;
                    for r in &refused {
                        let mut what: Vec<String> = r
                            .writes
                            .iter()
                            .take(4)
                            .map(|w| format!("{}.{}.{}={}", w.table, w.record, w.field, w.value))
                            .collect();
                        if r.writes.len() > 4 {
                            what.push(format!("and {} more", r.writes.len() - 4));
                        }
                        writeln!(
                            out,
                            "  {} {} at {}: {} ({})\n    wrote {}",
                            r.doc,
                            &r.hash[..12],
                            r.refused_at,
                            r.reason,
                            r.rule,
                            what.join(", ")
                        )?;
                    }
                }
            }
        }
        Command::History {
            site,
            date,
            cycle,
            org,
            json,
        } => {
            let id = match (site, date, cycle, org) {
                (Some(site), Some(date), None, None) => {
                    sitesync_core::ids::DocId::Day(SiteId::new(site)?, parse_date(&date)?)
                }
                (None, None, Some(cycle), Some(org)) => {
                    sitesync_core::ids::DocId::Okr(sitesync_core::ids::OrgId::new(org)?, cycle)
                }
                _ => anyhow::bail!("give --site and --date, or --cycle and --org"),
            };
            let entries = store.history(&id, "this device", &Default::default())?;
            if json {
                json_out(out, &entries)?;
            } else if entries.is_empty() {
                writeln!(out, "{id}: nothing in this store")?;
            } else {
                for e in &entries {
                    let who = match (&e.author.user_name, &e.author.user_id, &e.author.device) {
                        (Some(n), Some(u), Some(d)) => format!("{n} ({u}, {d})"),
                        (Some(n), None, Some(d)) => format!("{n} ({d})"),
                        (_, _, Some(d)) => d.clone(),
                        _ => "unknown device".to_string(),
                    };
                    let at = chrono::DateTime::from_timestamp_millis(e.change.time_ms)
                        .map(|t| t.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M:%S").to_string())
                        .unwrap_or_default();
                    let received = e
                        .received_at
                        .as_deref()
                        .map(|r| format!(", received {r}"))
                        .unwrap_or_default();
                    let signed = if e.author.signed { "" } else { " [unsigned]" };
                    writeln!(out, "{} {at} by {who}{received}{signed}", &e.change.hash[..12])?;
                    for w in &e.change.writes {
                        writeln!(out, "    {}.{}.{} = {}", w.table, w.record, w.field, w.value)?;
                    }
                }
            }
        }
        Command::VerifyEvidence { .. } => unreachable!("handled before the store is opened"),
        Command::Compact => writeln!(out, "compacted {} documents", store.compact()?)?,
        Command::Verify => writeln!(out, "ok: {} documents decode, integrity check passed", store.verify()?)?,
    }
    Ok(())
}

/// `verify-evidence`: needs no store; uses one's server key to pin the file's only if it exists.
fn verify_evidence(store: &std::path::Path, file: &std::path::Path, key: Option<&str>, json: bool) -> Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let pinned = match key {
        Some(k) => {
            let mut out = [0u8; 32];
            hex::decode_to_slice(k.trim(), &mut out)
                .map_err(|_| Error::invalid_public("server_key", "64 hex digits"))?;
            Some(out)
        }
        None if store.exists() => Store::open(store)?
            .directory()?
            .into_iter()
            .find(|e| e.device == "server")
            .map(|e| e.key),
        None => None,
    };
    let out = &mut std::io::stdout().lock();
    match sitesync_core::evidence::verify_file(&text, pinned) {
        Ok(report) => {
            if json {
                json_out(out, &report)?;
            } else {
                write!(out, "{}", report.to_text())?;
                if pinned.is_none() {
                    writeln!(
                        out,
                        "note: no server key to compare with; check the fingerprint above against your server's"
                    )?;
                }
            }
            Ok(())
        }
        Err(e) => {
            writeln!(out, "DOES NOT VERIFY: {e}")?;
            anyhow::bail!("{} does not verify", file.display())
        }
    }
}

fn labor(store: &mut Store, out: &mut impl Write, cmd: LaborCmd) -> Result<()> {
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

fn progress(store: &mut Store, out: &mut impl Write, cmd: ProgressCmd) -> Result<()> {
    match cmd {
        ProgressCmd::Set {
            site,
            date: d,
            work_item,
            quantity,
            note,
            amend,
        } => {
            let site = SiteId::new(site)?;
            let d = date(store, &site, &d)?;
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
        ProgressCmd::Rm { id, amend } => {
            store.delete_progress(&LineId::new(id.clone())?, amend.amend.as_deref())?;
            writeln!(out, "deleted {id}")?;
        }
        ProgressCmd::List { site, date: d, json } => {
            let site = SiteId::new(site)?;
            let d = date(store, &site, d.as_deref().unwrap_or("today"))?;
            let items = store.progress_to_date(&site, d)?;
            if json {
                json_out(out, &items)?;
            } else {
                table(
                    out,
                    &[
                        "work item",
                        "name",
                        "unit",
                        "planned",
                        "to date",
                        "%",
                        "labor cost",
                        "budget",
                    ],
                    items.iter().map(|p| {
                        vec![
                            p.code.clone(),
                            p.name.clone(),
                            p.unit.clone(),
                            fixed(p.planned_quantity_milli, 1000, 1),
                            fixed(p.quantity_to_date_milli, 1000, 1),
                            format!("{:.1}", p.percent_complete),
                            fixed(p.labor_cost_fen, 100, 2),
                            fixed(p.budget_fen, 100, 2),
                        ]
                    }),
                )?;
            }
        }
    }
    Ok(())
}

fn okr(store: &mut Store, out: &mut impl Write, cmd: OkrCmd) -> Result<()> {
    use sitesync_core::okr::{Cycle, CycleKind, Direction, KrKind, Status};
    let org_of = |store: &Store, r: &CycleRef| -> Result<(String, String)> {
        let org = match &r.org {
            Some(o) => o.clone(),
            None => store
                .meta("org")?
                .ok_or_else(|| anyhow::anyhow!("say which org with --org"))?,
        };
        Ok((org, r.cycle.clone()))
    };
    let today = chrono::Utc::now().date_naive();
    let day =
        |d: &Option<String>| -> Result<NaiveDate> { Ok(d.as_deref().map(parse_date).transpose()?.unwrap_or(today)) };
    let milli = |field: &'static str, v: &str| -> Result<i64> {
        Ok(Quantity::parse(field, v.trim_start_matches('-'))
            .map(|q| if v.starts_with('-') { -q.milli() } else { q.milli() })?)
    };
    let status = |s: &str| Status::parse(s).ok_or_else(|| Error::invalid_public("status", "green, yellow or red"));
    match cmd {
        OkrCmd::Cycle {
            at,
            title,
            kind,
            date,
            team,
        } => {
            let (org, id) = org_of(store, &at)?;
            let kind =
                CycleKind::parse(&kind).ok_or_else(|| Error::invalid_public("kind", "quarter, month or year"))?;
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
                direction: Direction::parse(&direction)
                    .ok_or_else(|| Error::invalid_public("direction", "increase, decrease, at_least or at_most"))?,
                kind: KrKind::parse(&kind).ok_or_else(|| Error::invalid_public("kind", "baseline or stretch"))?,
                weight,
                due: due.as_deref().map(parse_date).transpose()?,
                metric: metric
                    .as_deref()
                    .map(serde_json::from_str)
                    .transpose()
                    .map_err(|e| Error::invalid_public("metric", &e.to_string()))?,
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
            writeln!(out, "saved")?;
        }
        OkrCmd::Review { at, notes } => {
            let (org, cycle) = org_of(store, &at)?;
            let board = store.review_cycle(&org, &cycle, today, &notes)?;
            for c in &board.since_last_review {
                writeln!(out, "{}  {}", c.title, fixed(c.now_milli, 1000, 1))?;
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
                writeln!(
                    out,
                    "{} {} ({} – {}), {:.0}% elapsed",
                    board.cycle.id,
                    board.cycle.title,
                    board.cycle.start,
                    board.cycle.end,
                    board.elapsed * 100.0
                )?;
                for o in &board.objectives {
                    writeln!(
                        out,
                        "{} {:>3.0}% {:<6} {}  [{}]",
                        o.objective.id,
                        o.progress * 100.0,
                        o.status.as_str(),
                        o.objective.title,
                        o.objective.owner
                    )?;
                    table(
                        out,
                        &[
                            "  kr",
                            "title",
                            "current",
                            "target",
                            "unit",
                            "progress",
                            "status",
                            "last check-in",
                        ],
                        o.key_results.iter().map(|k| {
                            vec![
                                format!("  {}", k.kr.id),
                                k.kr.title.clone(),
                                fixed(k.current_milli, 1000, 1),
                                fixed(k.kr.target_milli, 1000, 1),
                                k.kr.unit.clone(),
                                format!("{:.0}%", k.progress * 100.0),
                                k.status.as_str().to_string(),
                                k.last_checkin
                                    .as_ref()
                                    .map(|c| format!("{} by {}", c.date, c.author))
                                    .unwrap_or_default(),
                            ]
                        }),
                    )?;
                }
                for w in &board.warnings {
                    writeln!(out, "note: {w}")?;
                }
            }
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

/// A date argument: `YYYY-MM-DD`, or `today` in the site's time zone.
fn date(store: &mut Store, site: &SiteId, text: &str) -> Result<NaiveDate> {
    Ok(if text == "today" {
        store.today(site)?
    } else {
        parse_date(text)?
    })
}

fn day_ref(store: &mut Store, d: DayRef) -> Result<(SiteId, NaiveDate)> {
    let site = SiteId::new(d.site)?;
    let date = date(store, &site, &d.date)?;
    Ok((site, date))
}

fn status_text(s: &DaySheet) -> String {
    serde_json::to_value(s.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn line_json(l: &sitesync_core::labor::LaborLine) -> serde_json::Value {
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
    writeln!(
        out,
        "{} {} {}  status: {}  weather: {}",
        roster.site.code,
        roster.site.name,
        s.date,
        status_text(s),
        if s.weather.is_empty() { "—" } else { &s.weather }
    )?;
    if !s.note.is_empty() {
        writeln!(out, "note: {}", s.note)?;
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
        &[
            "id",
            "worker",
            "name",
            "work item",
            "work-days",
            "hours",
            "overtime",
            "cost",
            "note",
            "conflicts",
        ],
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
                    .map(|c| format!("{}: {} vs {}", c.field, c.chosen, c.others.join("/")))
                    .collect::<Vec<_>>()
                    .join("; "),
            ]
        }),
    )?;
    let total: i64 = s.labor.iter().map(|l| l.cost().fen()).sum();
    let days: i64 = s.labor.iter().map(|l| l.work_days.centi()).sum();
    writeln!(
        out,
        "{} lines, {} work-days, {}",
        s.labor.len(),
        fixed(days, 100, 2),
        Fen::new("cost", total).map(|f| f.to_string()).unwrap_or_default()
    )?;
    if !s.progress.is_empty() {
        table(
            out,
            &["id", "work item", "quantity", "note"],
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
        writeln!(out, "delay: {}", d.text)?;
    }
    for r in &s.reviews {
        writeln!(
            out,
            "{} {} by {} {}",
            r.at.format("%Y-%m-%d %H:%M"),
            r.action.as_str(),
            r.by,
            r.reason
        )?;
    }
    Ok(())
}

/// `value / scale` with `decimals` decimals, for tables.
fn fixed(value: i64, scale: i64, decimals: u32) -> String {
    let f = value as f64 / scale as f64;
    format!("{f:.*}", decimals as usize)
}

fn json_out(out: &mut impl Write, v: &impl serde::Serialize) -> Result<()> {
    serde_json::to_writer_pretty(&mut *out, v)?;
    writeln!(out)?;
    Ok(())
}

/// Prints rows as columns aligned by display width (CJK names are two columns wide).
fn table(out: &mut impl Write, header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> Result<()> {
    let rows: Vec<Vec<String>> = rows.collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.width()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.width());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            s.push_str(c);
            if i + 1 < cells.len() {
                s.push_str(&" ".repeat(w - c.width() + 2));
            }
        }
        s.trim_end().to_string()
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for r in &rows {
        writeln!(out, "{}", line(r.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}
