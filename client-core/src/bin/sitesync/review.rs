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
pub struct ApproveArgs {
    #[command(flatten)]
    day: SiteDay,
    /// Approve even though fields of the day hold competing values from different phones (the
    /// values shown now are approved); without it such a day is listed and left unapproved.
    #[arg(long)]
    confirm_conflicts: bool,
}

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

pub fn approve(
    store: &mut Store,
    out: &mut impl Write,
    ApproveArgs { day, confirm_conflicts }: ApproveArgs,
) -> Result<()> {
    let (site, d) = day.read(store)?;
    if !confirm_conflicts {
        let open = store.open_conflicts(&sitesync_core::ids::DocId::Day(site.clone(), d))?;
        if !open.is_empty() {
            for c in &open {
                let values: Vec<String> = c.values.iter().map(|(v, _)| v.to_string()).collect();
                say(
                    out,
                    Msg::OpenConflict {
                        record: &c.record,
                        field: &c.field,
                        values: &values.join(" / "),
                    },
                )?;
            }
            anyhow::bail!(
                "{} field(s) of {site} {d} hold competing values: settle them, or approve with --confirm-conflicts",
                open.len()
            );
        }
    }
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
