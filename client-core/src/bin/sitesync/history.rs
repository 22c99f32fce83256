//! Who wrote what: a document's history from this store, and evidence files checked offline.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use sitesync_core::Store;
use sitesync_core::ids::{DocId, OrgId};
use sitesync_core::store::StoreKey;

use crate::error::{CliError, Expected};
use crate::input;
use crate::msg::Msg;
use crate::render::{json_out, say, short_hash};

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Site id, code or name (with --date).
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
        (Some(site), Some(date), None, None) => DocId::Day(input::site(store, &site)?, input::day(&date)?),
        (None, None, Some(cycle), Some(org)) => DocId::Okr(OrgId::new(org)?, cycle),
        _ => return Err(CliError::HistoryArgs.into()),
    };
    let entries = store.history(&id, "this device", sitesync_core::store::Authors::Directory)?;
    if json {
        json_out(out, &entries)?;
    } else if entries.is_empty() {
        say(out, Msg::NothingInStore(&id.to_string()))?;
    } else {
        for e in &entries {
            let who = match (&e.author.user_name, &e.author.user_id, &e.author.device) {
                (Some(n), Some(u), Some(d)) => format!("{n} ({u}, {d})"),
                (Some(n), None, Some(d)) => format!("{n} ({d})"),
                (_, _, Some(d)) => d.clone(),
                _ => Msg::UnknownDevice.to_string(),
            };
            let at = chrono::DateTime::from_timestamp_millis(e.change.time_ms)
                .map(|t| t.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_default();
            say(
                out,
                Msg::HistoryEntry {
                    hash: short_hash(&e.change.hash),
                    at: &at,
                    who: &who,
                    received: e.received_at.as_deref(),
                    signed: e.author.signed,
                },
            )?;
            for w in &e.change.writes {
                writeln!(out, "    {}.{}.{} = {}", w.table, w.record, w.field, w.value)?;
            }
        }
    }
    Ok(())
}

/// `verify-evidence`: needs no store; uses one's server key to pin the file's only if it exists.
pub fn verify_evidence(store: &Path, store_key: Option<&StoreKey>, args: &EvidenceArgs) -> Result<()> {
    let EvidenceArgs { file, server_key, json } = args;
    let (key, json) = (server_key.as_deref(), *json);
    let text = std::fs::read_to_string(file).with_context(|| Msg::Reading(file).to_string())?;
    let pinned = match key {
        Some(k) => {
            let mut out = [0u8; 32];
            hex::decode_to_slice(k.trim(), &mut out).map_err(|_| CliError::Invalid {
                field: "server_key",
                expected: Expected::HexKey,
            })?;
            Some(out)
        }
        None if store.exists() => Store::open_keyed(store, store_key)?
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
                    say(out, Msg::NoServerKey)?;
                }
            }
            Ok(())
        }
        Err(e) => {
            say(out, Msg::DoesNotVerify(&e.to_string()))?;
            Err(CliError::DoesNotVerify(file.clone()).into())
        }
    }
}
