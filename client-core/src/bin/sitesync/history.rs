//! Who wrote what: a document's history from this store, and evidence files checked offline.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use sitesync_core::ids::{SiteId, parse_date};
use sitesync_core::{Error, Store};

use crate::render::json_out;

#[derive(Args, Debug)]
pub struct HistoryArgs {
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
}

#[derive(Args, Debug)]
pub struct EvidenceArgs {
    /// The evidence file.
    file: PathBuf,
    /// The server's public key (hex) to require; by default the key this store's server sent,
    /// if the store exists and has synced.
    #[arg(long)]
    server_key: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn history(store: &mut Store, out: &mut impl Write, args: HistoryArgs) -> Result<()> {
    let HistoryArgs {
        site,
        date,
        cycle,
        org,
        json,
    } = args;
    let id = match (site, date, cycle, org) {
        (Some(site), Some(date), None, None) => sitesync_core::ids::DocId::Day(SiteId::new(site)?, parse_date(&date)?),
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
    Ok(())
}

/// `verify-evidence`: needs no store; uses one's server key to pin the file's only if it exists.
pub fn verify_evidence(store: &Path, args: &EvidenceArgs) -> Result<()> {
    let EvidenceArgs { file, server_key, json } = args;
    let (key, json) = (server_key.as_deref(), *json);
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
