//! Workers added on site (`worker add`, offline, by the foreman), what head office decides on them
//! (`worker confirm`, `worker merge`), the list of those pending, and rates with an effective date.

use std::io::Write;

use anyhow::{Result, bail};
use clap::Subcommand;
use sitesync_core::Store;
use sitesync_core::ids::{CrewId, SiteId};
use sitesync_core::roster::PendingStatus;
use sitesync_core::store::NewWorker;
use sitesync_core::units::Fen;

use crate::input;
use crate::render::json_out;

#[derive(Subcommand, Debug)]
pub enum WorkerCmd {
    /// Add a worker who turned up on site, offline; prints the new worker's id. The worker can be
    /// logged at once and is pending at head office until confirmed or merged. With --id-card the
    /// id is derived from the number, so two phones adding the same person make one worker.
    Add {
        /// Site id, code (HZ-01) or name.
        #[arg(long)]
        site: String,
        /// The worker's name.
        #[arg(long)]
        name: String,
        /// The worker's phone number.
        #[arg(long, default_value = "")]
        phone: String,
        /// Trade code (工种), e.g. rebar.
        #[arg(long, default_value = "")]
        trade: String,
        /// Crew id (site-hz-01/crew-1) or name.
        #[arg(long)]
        crew: String,
        /// Day rate in yuan.
        #[arg(long, allow_negative_numbers = true)]
        rate: String,
        /// Overtime rate in yuan per hour (default 0).
        #[arg(long, allow_negative_numbers = true)]
        overtime_rate: Option<String>,
        /// ID-card number (身份证号): stored only sealed to the org's key and masked, and the
        /// worker's id derived from it, so the store must have synced once (for the org's key).
        #[arg(long)]
        id_card: Option<String>,
    },
    /// List the workers added on a site that head office has not decided on, and the pairs that
    /// may be one person (same name and phone, different ids).
    Pending {
        /// Site id, code (HZ-01) or name.
        #[arg(long)]
        site: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Take a pending worker onto the roster (head office).
    Confirm {
        /// Site id, code (HZ-01) or name.
        #[arg(long)]
        site: String,
        /// The pending worker's id.
        #[arg(long)]
        worker: String,
    },
    /// Record that a pending worker is the same person as another worker: his lines count under
    /// that worker from now on (head office).
    Merge {
        /// Site id, code (HZ-01) or name.
        #[arg(long)]
        site: String,
        /// The pending worker's id.
        #[arg(long)]
        worker: String,
        /// The worker to merge into.
        #[arg(long)]
        into: String,
    },
    /// Set a worker's rates from a date on (head office): lines dated from then take them.
    Rate {
        /// Site id, code (HZ-01) or name.
        #[arg(long)]
        site: String,
        /// Worker id or name.
        #[arg(long)]
        worker: String,
        /// The first date the rates apply to (YYYY-MM-DD).
        #[arg(long)]
        from: String,
        /// Day rate in yuan.
        #[arg(long, allow_negative_numbers = true)]
        rate: String,
        /// Overtime rate in yuan per hour (default: the worker's rate in force before).
        #[arg(long, allow_negative_numbers = true)]
        overtime_rate: Option<String>,
    },
}

/// A crew of `site` given by id or name.
fn crew(store: &mut Store, site: &SiteId, given: &str) -> Result<CrewId> {
    let roster = store.roster(site)?;
    let found: Vec<&CrewId> = roster
        .crews
        .iter()
        .filter(|c| c.id.as_str() == given || c.name == given)
        .map(|c| &c.id)
        .collect();
    match found.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(sitesync_core::Error::UnknownCrew {
            site: site.to_string(),
            crew: given.to_string(),
        }
        .into()),
        _ => bail!("{given:?} names {} crews; give the crew's id", found.len()),
    }
}

pub fn worker(store: &mut Store, out: &mut impl Write, cmd: WorkerCmd) -> Result<()> {
    match cmd {
        WorkerCmd::Add {
            site,
            name,
            phone,
            trade,
            crew: c,
            rate,
            overtime_rate,
            id_card,
        } => {
            let site = input::site(store, &site)?;
            let crew = crew(store, &site, &c)?;
            let w = NewWorker {
                site,
                name,
                phone,
                trade,
                crew,
                day_rate: Fen::parse_yuan("rate", &rate)?,
                overtime_rate: match overtime_rate {
                    Some(r) => Fen::parse_yuan("overtime_rate", &r)?,
                    None => Fen::default(),
                },
                id_card,
            };
            let id = store.add_worker(&w)?;
            writeln!(out, "{id}")?;
        }
        WorkerCmd::Pending { site, json } => {
            let site = input::site(store, &site)?;
            let roster = store.roster(&site)?;
            let pending: Vec<_> = roster
                .pending_workers
                .iter()
                .filter(|p| p.status == PendingStatus::Pending)
                .collect();
            let duplicates = roster.possible_duplicates();
            if json {
                let workers: Vec<serde_json::Value> = pending
                    .iter()
                    .map(|p| {
                        serde_json::json!({
                            "worker": p.id, "name": p.name, "phone": p.phone, "trade": p.trade,
                            "crew": p.crew, "day_rate_fen": p.day_rate.fen(),
                            "overtime_rate_fen": p.overtime_rate.fen(), "added_by": p.added_by,
                            "added_at": p.added_at,
                        })
                    })
                    .collect();
                json_out(
                    out,
                    &serde_json::json!({ "site": site, "workers": workers, "possible_duplicates": duplicates }),
                )?;
            } else {
                for p in &pending {
                    writeln!(
                        out,
                        "{}\t{}\t{}\t{}\t{}\tadded by {}",
                        p.id, p.name, p.phone, p.crew, p.day_rate, p.added_by
                    )?;
                }
                for d in &duplicates {
                    writeln!(out, "possible duplicate: {} and {}", d.worker, d.other)?;
                }
            }
        }
        WorkerCmd::Confirm { site, worker } => {
            let site = input::site(store, &site)?;
            store.confirm_worker(&site, &worker.parse()?)?;
        }
        WorkerCmd::Merge { site, worker, into } => {
            let site = input::site(store, &site)?;
            let into = input::worker(store, Some(&site), &into)?;
            store.merge_worker(&site, &worker.parse()?, &into)?;
        }
        WorkerCmd::Rate {
            site,
            worker,
            from,
            rate,
            overtime_rate,
        } => {
            let site = input::site(store, &site)?;
            let worker = input::worker(store, Some(&site), &worker)?;
            let from = input::day(&from)?;
            let overtime = match overtime_rate {
                Some(r) => Fen::parse_yuan("overtime_rate", &r)?,
                None => store.roster(&site)?.rate_on(&worker, from).1,
            };
            store.set_rate(&site, &worker, from, Fen::parse_yuan("rate", &rate)?, overtime)?;
        }
    }
    Ok(())
}
