//! The review of a day: submitting it, approving or rejecting it, and what changed since approval.

use std::io::Write;

use anyhow::Result;
use chrono::NaiveDate;
use clap::Args;
use sitesync_core::Store;
use sitesync_core::ids::SiteId;
use sitesync_core::labor::DaySheet;

use crate::input::date;
use crate::render::{json_out, table};

#[derive(Args, Debug)]
pub struct DayRef {
    /// Site id.
    #[arg(long)]
    site: String,
    /// Date (YYYY-MM-DD or "today").
    #[arg(long)]
    date: String,
}

#[derive(Args, Debug)]
pub struct RejectArgs {
    #[command(flatten)]
    day: DayRef,
    /// Why it is sent back.
    #[arg(long)]
    reason: String,
}

#[derive(Args, Debug)]
pub struct ChangesArgs {
    #[command(flatten)]
    day: DayRef,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn submit(store: &mut Store, out: &mut impl Write, day: DayRef) -> Result<()> {
    let (site, d) = day_ref(store, day)?;
    let sheet = store.submit_day(&site, d)?;
    writeln!(out, "{site} {d}: {}", status_text(&sheet))?;
    Ok(())
}

pub fn approve(store: &mut Store, out: &mut impl Write, day: DayRef) -> Result<()> {
    let (site, d) = day_ref(store, day)?;
    let sheet = store.approve_day(&site, d)?;
    writeln!(out, "{site} {d}: {}", status_text(&sheet))?;
    Ok(())
}

pub fn reject(store: &mut Store, out: &mut impl Write, RejectArgs { day, reason }: RejectArgs) -> Result<()> {
    let (site, d) = day_ref(store, day)?;
    let sheet = store.reject_day(&site, d, &reason)?;
    writeln!(out, "{site} {d}: {}", status_text(&sheet))?;
    Ok(())
}

pub fn changes(store: &mut Store, out: &mut impl Write, ChangesArgs { day, json }: ChangesArgs) -> Result<()> {
    let (site, d) = day_ref(store, day)?;
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
    Ok(())
}

fn day_ref(store: &mut Store, d: DayRef) -> Result<(SiteId, NaiveDate)> {
    let site = SiteId::new(d.site)?;
    let date = date(store, &site, &d.date)?;
    Ok((site, date))
}

pub fn status_text(s: &DaySheet) -> String {
    serde_json::to_value(s.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
