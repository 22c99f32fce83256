//! `sitesync`: the reference command-line client. It drives the same API the phone apps use, against
//! a store file, with no network needed.
//!
//! This file holds the top-level arguments and the dispatch; each command group lives in a module of
//! its own, with its arguments beside the code that acts on them.

mod attach;
mod day;
mod due;
mod error;
mod history;
mod input;
mod labor;
mod locale;
mod msg;
mod okr;
mod pay;
mod peer;
mod render;
mod report;
mod review;
mod signoff;
mod store;
mod sync;
mod worker;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use sitesync_core::store::StoreKey;
use sitesync_core::{Error, Store};

use crate::error::CliError;
use crate::msg::Msg;

/// Offline-first day-labor and progress logging for construction sites.
#[derive(Parser, Debug)]
#[command(name = "sitesync", version, about, long_about = None)]
struct Cli {
    /// The store file. Only `import` and `init` create it; every other command needs it to exist.
    #[arg(long, global = true, env = "SITESYNC_STORE", default_value = "sitesync.sqlite3")]
    store: PathBuf,
    /// Who you are: recorded as the author of what you enter (remembered in the store).
    #[arg(long, global = true, env = "SITESYNC_USER")]
    user: Option<String>,
    /// A file holding the store's encryption key (64 hex digits): the store is encrypted with it
    /// (SQLCipher) when created, and opened with it after. The key may instead be given as 64 hex
    /// digits in the environment variable SITESYNC_STORE_KEY (never on the command line).
    #[arg(long, global = true, env = "SITESYNC_STORE_KEY_FILE", value_name = "FILE")]
    store_key_file: Option<PathBuf>,
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
    Roster(store::RosterArgs),
    /// Add, edit, delete or show labor lines.
    #[command(subcommand)]
    Labor(labor::LaborCmd),
    /// Crew-wide entry.
    #[command(subcommand)]
    Crew(labor::CrewCmd),
    /// Workers added on site (offline, pending at head office), head office's confirm and merge,
    /// and rates with an effective date.
    #[command(subcommand)]
    Worker(worker::WorkerCmd),
    /// Record or list progress (quantity installed per work item).
    #[command(subcommand)]
    Progress(day::ProgressCmd),
    /// Show a site-day: its labor lines, progress, status and conflicts.
    Day(day::ShowArgs),
    /// Set the day's weather and note.
    DayNote(day::NoteArgs),
    /// Record a delay or blocker for the day.
    Delay(day::DelayArgs),
    /// Attach a photo or file to a day or one of its lines, offline; prints the file's SHA-256.
    Attach(attach::AttachArgs),
    /// List a day's attachments and where their bytes are (queued, sending n%, on the server …).
    Attachments(attach::ListArgs),
    /// Submit a day for approval (foreman).
    Submit(input::SiteDay),
    /// Approve a submitted day, pinning the exact version (manager).
    Approve(review::ApproveArgs),
    /// Send a submitted day back with a reason (manager).
    Reject(review::RejectArgs),
    /// A worker confirms his lines of a day (--date) or month (--month) on this phone, with a
    /// signature image (--image FILE) or a tap of consent; with --advance ID, an advance of that
    /// day he received.
    Sign(signoff::SignArgs),
    /// A worker disputes his lines of a day or month (or, with --advance ID, an advance of the day),
    /// with a reason: the day cannot be approved until the dispute is answered.
    Dispute(signoff::DisputeArgs),
    /// Answer a worker's dispute of a day (what was corrected, or why the lines stand).
    AnswerDispute(signoff::AnswerArgs),
    /// The crew leader (班组长) confirms his crew's day (--date) or month (--month).
    ConfirmCrew(signoff::ConfirmCrewArgs),
    /// The site's monthly sign-off sheet: who has signed, who still has to sign or re-sign.
    Signoffs(signoff::SheetArgs),
    /// Show what changed in a day since it was approved.
    Changes(review::ChangesArgs),
    /// Work-days, hours, overtime, cost and line count over a date range.
    Totals(report::TotalsArgs),
    /// A worker's month across all sites.
    Month(report::MonthArgs),
    /// The printable 施工日志 of a site-day as PDF (weather, crews and headcount, labor lines,
    /// progress against plan, delays, note, sign-offs, photos, the approval), or its JSON.
    DailyLog(report::DailyLogArgs),
    /// Record an advance (借支) handed to a worker on a day, or correct one (--edit ID); locked with
    /// the day once approved. The worker confirms it with `sign --advance ID`.
    Advance(pay::AdvanceArgs),
    /// A day's advances, each with its worker's confirmation: confirmed, changed since confirmed
    /// (and what changed), disputed, or not confirmed.
    Advances(pay::AdvancesArgs),
    /// Set a piecework unit price (包工单价) for a work item: site-wide, per crew or per worker.
    PieceRate(pay::PieceRateArgs),
    /// A crew's pay sheet over a date range from approved days: work-days, hours, day, overtime
    /// and piece pay, advances, net; lists the days not yet approved.
    Pay(pay::PayArgs),
    /// OKRs: cycles, objectives, key results, check-ins, reviews.
    #[command(subcommand)]
    Okr(okr::OkrCmd),
    /// Bind this store to a server and device token (from `sitesync-server admin device add`).
    Init(store::InitArgs),
    /// Sync with the server once (exit status 1 if it could not complete), then move attachment
    /// files and signature images (resumable; a file that cannot move yet is named and left for the
    /// next run), or keep syncing documents and files.
    Sync {
        /// Stay connected: receive changes live, push local writes within a second, reconnect with
        /// backoff after failures; one line for each change received, push acknowledged, drop and
        /// reconnect. Files move beside it every 5 seconds, never holding up the documents. Stop
        /// with Ctrl-C.
        #[arg(long)]
        watch: bool,
    },
    /// The site mesh: exchange with another phone of the company directly, with no server; what it
    /// receives goes to head office with this phone's next sync, still signed by its authors.
    #[command(subcommand)]
    Peer(peer::PeerCmd),
    /// Show the sync status: server, pending documents, last sync, last error, delivery receipts.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// What is due for this store's user, from the store alone (works offline): today's log not
    /// submitted (each site's own today), a rejected day to fix with the manager's reason, a key
    /// result with no check-in for 7 days, last month's sign-offs still to collect.
    Due {
        /// Print JSON (a list of items, each with its `kind`).
        #[arg(long)]
        json: bool,
        /// As of this date (YYYY-MM-DD) at every site, instead of each site's today.
        #[arg(long)]
        at: Option<String>,
    },
    /// Every change of a site-day (or an OKR cycle) in causal order: who wrote it (the signing
    /// device's user, from the directory the server sent), when, and each value written. Offline.
    History(history::HistoryArgs),
    /// Check an evidence file (from GET /v1/evidence) offline, with no server: prints who entered and
    /// who approved every value, or exactly what does not verify (exit status 1).
    VerifyEvidence(history::EvidenceArgs),
    /// Fold every document's incremental chunks into a snapshot and reclaim space.
    Compact,
    /// Check the store file and decode every document.
    Verify,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that stopped early (`sitesync day … | head`) is not an error.
        Err(e) if broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}{e:#}", Msg::Error);
            ExitCode::from(exit_code(&e))
        }
    }
}

/// Bad input is exit 2, like clap's own usage errors; anything else (disk, network, credentials, an
/// evidence file that fails its check) is 1.
fn exit_code(e: &anyhow::Error) -> u8 {
    if let Some(e) = e.downcast_ref::<CliError>() {
        e.exit_code()
    } else if e.downcast_ref::<Error>().is_some_and(Error::is_bad_input) {
        2
    } else {
        1
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
    let Cli {
        store: path,
        user,
        store_key_file,
        command,
    } = cli;
    let key = store_key(store_key_file.as_deref())?;
    let key = key.as_ref();
    match command {
        // Needs no store: it reads one's server key only if the store exists.
        Command::VerifyEvidence(args) => history::verify_evidence(&path, key, &args),
        // Only these make a store; any other command given a path with nothing there is a typo
        // (it used to create an empty store and then fail with "unknown site").
        Command::Import { .. } | Command::Init(_) => with_store(&path, key, user.as_deref(), command),
        _ if !path.exists() => Err(CliError::NoStore(path).into()),
        _ => with_store(&path, key, user.as_deref(), command),
    }
}

/// The store key from `--store-key-file` or, failing that, `SITESYNC_STORE_KEY`.
fn store_key(file: Option<&Path>) -> Result<Option<StoreKey>> {
    let text = match file {
        Some(f) => std::fs::read_to_string(f).with_context(|| Msg::Reading(f).to_string())?,
        None => match std::env::var("SITESYNC_STORE_KEY") {
            Ok(k) if !k.trim().is_empty() => k,
            _ => return Ok(None),
        },
    };
    Ok(Some(StoreKey::from_hex(&text)?))
}

fn with_store(path: &Path, key: Option<&StoreKey>, user: Option<&str>, command: Command) -> Result<()> {
    let mut store = Store::open_keyed(path, key).with_context(|| Msg::OpeningStore(path).to_string())?;
    if let Some(user) = user
        && user != store.user()
    {
        // A store the server has named belongs to that user: entries in another name would be
        // refused as forged, here and at head office.
        if let Some(a) = store.author()
            && !a.is_named(user)
        {
            return Err(CliError::NotYours {
                name: a.user_name.clone(),
                id: a.user_id.clone(),
                user: user.to_string(),
            }
            .into());
        }
        store.set_user(user)?;
    }
    let store = &mut store;
    let out = &mut std::io::stdout().lock();
    match command {
        Command::Import { dir } => store::import(store, out, &dir),
        Command::Sites { json } => store::sites(store, out, json),
        Command::Roster(args) => store::roster(store, out, args),
        Command::Labor(cmd) => labor::labor(store, out, cmd),
        Command::Crew(cmd) => labor::crew(store, out, cmd),
        Command::Worker(cmd) => worker::worker(store, out, cmd),
        Command::Progress(cmd) => day::progress(store, out, cmd),
        Command::Day(args) => day::show(store, out, args),
        Command::DayNote(args) => day::note(store, out, args),
        Command::Delay(args) => day::delay(store, out, args),
        Command::Attach(args) => attach::attach(store, out, args),
        Command::Attachments(args) => attach::list(store, out, args),
        Command::Submit(day) => review::submit(store, out, day),
        Command::Approve(day) => review::approve(store, out, day),
        Command::Reject(args) => review::reject(store, out, args),
        Command::Changes(args) => review::changes(store, out, args),
        Command::Sign(args) => signoff::sign(store, out, args),
        Command::Dispute(args) => signoff::dispute(store, out, args),
        Command::AnswerDispute(args) => signoff::answer(store, out, args),
        Command::ConfirmCrew(args) => signoff::confirm_crew(store, out, args),
        Command::Signoffs(args) => signoff::sheet(store, out, args),
        Command::Totals(args) => report::totals(store, out, args),
        Command::Month(args) => report::month(store, out, args),
        Command::DailyLog(args) => report::daily_log(store, out, args),
        Command::Okr(cmd) => okr::okr(store, out, cmd),
        Command::Advance(args) => pay::advance(store, out, args),
        Command::PieceRate(args) => pay::piece_rate(store, out, args),
        Command::Pay(args) => pay::pay(store, out, args),
        Command::Advances(args) => pay::advances(store, out, args),
        Command::Init(args) => store::init(store, out, path, args),
        Command::Sync { watch } => sync::sync(store, out, watch),
        Command::Peer(cmd) => peer::peer(store, out, cmd),
        Command::Status { json } => sync::status(store, out, json),
        Command::Due { json, at } => due::due(store, out, json, at.as_deref()),
        Command::History(args) => history::history(store, out, args),
        Command::VerifyEvidence(args) => history::verify_evidence(path, key, &args),
        Command::Compact => store::compact(store, out),
        Command::Verify => store::verify(store, out),
    }
}
