//! Commands about the store itself: filling it (`import`), binding it to a server (`init`), what
//! master data it holds (`sites`, `roster`), and its upkeep (`compact`, `verify`).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use sitesync_core::Store;
use sitesync_core::ids::SiteId;

use crate::render::{json_out, table};

#[derive(Args, Debug)]
pub struct RosterArgs {
    /// Site id.
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
    Ok(())
}

pub fn sites(store: &mut Store, out: &mut impl Write, json: bool) -> Result<()> {
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
    Ok(())
}

pub fn roster(store: &mut Store, out: &mut impl Write, RosterArgs { site, json }: RosterArgs) -> Result<()> {
    let r = store.roster(&SiteId::new(site)?)?;
    if json {
        return json_out(out, &r);
    }
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
    )
}

pub fn init(store: &mut Store, out: &mut impl Write, InitArgs { server, token, ca_cert }: InitArgs) -> Result<()> {
    let pem = match &ca_cert {
        Some(path) => Some(std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?),
        None => None,
    };
    store.bind_with_ca(&server, &token, pem.as_deref())?;
    let trust = match &ca_cert {
        Some(path) => format!(" (trusting only the CA in {})", path.display()),
        None => String::new(),
    };
    writeln!(out, "bound to {server}{trust}; run `sitesync sync` to sync")?;
    Ok(())
}

pub fn compact(store: &mut Store, out: &mut impl Write) -> Result<()> {
    writeln!(out, "compacted {} documents", store.compact()?)?;
    Ok(())
}

pub fn verify(store: &mut Store, out: &mut impl Write) -> Result<()> {
    writeln!(out, "ok: {} documents decode, integrity check passed", store.verify()?)?;
    Ok(())
}
