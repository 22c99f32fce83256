//! Commands about the store itself: filling it (`import`), binding it to a server (`init`), what
//! master data it holds (`sites`, `roster`), and its upkeep (`compact`, `verify`).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use sitesync_core::Store;

use crate::input;
use crate::msg::{Col, Msg, cols, yes_no};
use crate::render::{json_out, say, table};

#[derive(Args, Debug)]
pub struct RosterArgs {
    /// Site id, code (HZ-01) or name.
    #[arg(long)]
    site: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct InitArgs {
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
    ca_cert: Option<PathBuf>,
}

pub fn import(store: &mut Store, out: &mut impl Write, dir: &Path) -> Result<()> {
    let s = store.import_dir(dir)?;
    say(
        out,
        Msg::Imported {
            sites: s.sites,
            workers: s.workers,
            days: s.days,
            labor_lines: s.labor_lines,
            progress_lines: s.progress_lines,
        },
    )?;
    if s.approved_skipped > 0 {
        say(out, Msg::ApprovedSkipped(s.approved_skipped))?;
    }
    Ok(())
}

pub fn sites(store: &mut Store, out: &mut impl Write, json: bool) -> Result<()> {
    let sites = store.sites()?;
    if json {
        json_out(out, &sites)?;
    } else {
        table(
            out,
            &cols(&[Col::Id, Col::Code, Col::Name, Col::Timezone]),
            sites
                .iter()
                .map(|s| vec![s.id.to_string(), s.code.clone(), s.name.clone(), s.timezone.clone()]),
        )?;
    }
    Ok(())
}

pub fn roster(store: &mut Store, out: &mut impl Write, RosterArgs { site, json }: RosterArgs) -> Result<()> {
    let site = input::site(store, &site)?;
    let r = store.roster(&site)?;
    if json {
        return json_out(out, &r);
    }
    writeln!(out, "{} {} ({})", r.site.code, r.site.name, r.site.timezone)?;
    table(
        out,
        &cols(&[Col::Crew, Col::Name, Col::Leader, Col::Trade]),
        r.crews
            .iter()
            .map(|c| vec![c.id.to_string(), c.name.clone(), c.leader.clone(), c.trade.clone()]),
    )?;
    table(
        out,
        &cols(&[
            Col::Worker,
            Col::Name,
            Col::Trade,
            Col::Crew,
            Col::DayRate,
            Col::OvertimeRate,
            Col::Active,
        ]),
        r.workers.iter().map(|w| {
            vec![
                w.id.to_string(),
                w.name.clone(),
                w.trade.clone(),
                w.crew.to_string(),
                w.day_rate.to_string(),
                w.overtime_rate.to_string(),
                yes_no(w.active).to_string(),
            ]
        }),
    )?;
    table(
        out,
        &cols(&[
            Col::WorkItem,
            Col::Code,
            Col::Name,
            Col::Unit,
            Col::Planned,
            Col::Budget,
        ]),
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
    )
}

/// `path` is the store as the user named it, for the next command to print.
pub fn init(store: &mut Store, out: &mut impl Write, path: &Path, args: InitArgs) -> Result<()> {
    let InitArgs { server, token, ca_cert } = args;
    let pem = match &ca_cert {
        Some(p) => Some(std::fs::read_to_string(p).with_context(|| Msg::Reading(p).to_string())?),
        None => None,
    };
    store.bind_with_ca(&server, &token, pem.as_deref())?;
    say(
        out,
        Msg::Bound {
            server: &server,
            ca: ca_cert.as_deref(),
            store: path,
        },
    )
}

pub fn compact(store: &mut Store, out: &mut impl Write) -> Result<()> {
    say(out, Msg::Compacted(store.compact()?))
}

pub fn verify(store: &mut Store, out: &mut impl Write) -> Result<()> {
    say(out, Msg::Verified(store.verify()?))
}
