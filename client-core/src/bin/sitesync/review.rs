//! The review of a day: submitting it, approving or rejecting it, and what changed since approval.

use std::io::Write;

use anyhow::Result;
use chrono::NaiveDate;
use clap::Args;
use sitesync_core::Store;
use sitesync_core::ids::SiteId;
use sitesync_core::labor::DaySheet;

use crate::input::SiteDay;
use crate::msg::{Col, Msg, cols};
use crate::render::{json_out, say, table};

#[derive(Args, Debug)]
pub struct RejectArgs {
    #[command(flatten)]
    day: SiteDay,
    /// Why it is sent back.
    #[arg(long)]
    reason: String,
}

#[derive(Args, Debug)]
pub struct ChangesArgs {
    #[command(flatten)]
    day: SiteDay,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn submit(store: &mut Store, out: &mut impl Write, day: SiteDay) -> Result<()> {
    let (site, d) = day.read(store)?;
    let sheet = store.submit_day(&site, d)?;
    day_is(out, &site, d, &sheet)
}

pub fn approve(store: &mut Store, out: &mut impl Write, day: SiteDay) -> Result<()> {
    let (site, d) = day.read(store)?;
    let sheet = store.approve_day(&site, d)?;
    day_is(out, &site, d, &sheet)
}

pub fn reject(store: &mut Store, out: &mut impl Write, RejectArgs { day, reason }: RejectArgs) -> Result<()> {
    let (site, d) = day.read(store)?;
    let sheet = store.reject_day(&site, d, &reason)?;
    day_is(out, &site, d, &sheet)
}

pub fn changes(store: &mut Store, out: &mut impl Write, ChangesArgs { day, json }: ChangesArgs) -> Result<()> {
    let (site, d) = day.read(store)?;
    let changes = store.amendments(&site, d)?;
    if json {
        json_out(out, &changes)?;
    } else if changes.is_empty() {
        say(out, Msg::NoChanges)?;
    } else {
        table(
            out,
            &cols(&[Col::Line, Col::Field, Col::Approved, Col::Now]),
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

/// Where the day stands after a review action: "site-hz-01 2026-09-01: approved".
fn day_is(out: &mut impl Write, site: &SiteId, d: NaiveDate, sheet: &DaySheet) -> Result<()> {
    say(
        out,
        Msg::DayIs {
            site: site.as_str(),
            date: &d.to_string(),
            status: sheet.status,
        },
    )
}
