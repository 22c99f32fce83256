//! Sign-off on the foreman's phone: a worker signs (or disputes) his day or month, a crew leader
//! confirms his crew's day, a dispute is answered; and the month's attendance sheet.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::NaiveDate;
use clap::Args;
use sitesync_core::Store;
use sitesync_core::ids::{CrewId, SiteId};
use sitesync_core::signoff::{SignoffAction, SignoffEvent};
use sitesync_core::store::Period;

use crate::input;
use crate::msg::Msg;
use crate::render::{json_out, say};

/// The site and the day, or the month, a sign-off is for.
#[derive(Args, Debug)]
pub struct When {
    /// Site id, code (HZ-01) or name.
    #[arg(long)]
    site: String,
    /// Date (YYYY-MM-DD, or "today" at the site).
    #[arg(long, required_unless_present = "month", conflicts_with = "month")]
    date: Option<String>,
    /// A month (YYYY-MM) instead of a date: every day of it with lines, one record on each day.
    #[arg(long)]
    month: Option<String>,
    /// Print the records written as JSON.
    #[arg(long)]
    json: bool,
}

impl When {
    fn read(&self, store: &mut Store) -> Result<(SiteId, Period)> {
        let site = input::site(store, &self.site)?;
        let period = match (&self.date, &self.month) {
            (_, Some(m)) => Period::Month(input::month(m)?),
            (Some(d), None) => Period::Day(input::date(store, &site, d)?),
            (None, None) => unreachable!("clap requires --date or --month"),
        };
        Ok((site, period))
    }

    /// The site and the day, for what is signed on one day only (an advance).
    fn day(&self, store: &mut Store) -> Result<(SiteId, NaiveDate)> {
        match self.read(store)? {
            (site, Period::Day(d)) => Ok((site, d)),
            (_, Period::Month(_)) => Err(anyhow::anyhow!(
                "an advance is signed on its day: give --date, not --month"
            )),
        }
    }
}

#[derive(Args, Debug)]
pub struct SignArgs {
    #[command(flatten)]
    when: When,
    /// The worker who signs (id or name).
    #[arg(long)]
    worker: String,
    /// The signature image (PNG or stroke data); without it, a tap of consent.
    #[arg(long)]
    image: Option<PathBuf>,
    /// Confirm this advance of the day (its id, `adv-…`, from `sitesync advances`) instead of the
    /// lines: the worker received it.
    #[arg(long, conflicts_with = "month")]
    advance: Option<String>,
}

#[derive(Args, Debug)]
pub struct DisputeArgs {
    #[command(flatten)]
    when: When,
    /// The worker who disputes his lines (id or name).
    #[arg(long)]
    worker: String,
    /// What he says is wrong.
    #[arg(long)]
    reason: String,
    /// Dispute this advance of the day (its id) instead of the lines.
    #[arg(long, conflicts_with = "month")]
    advance: Option<String>,
}

#[derive(Args, Debug)]
pub struct ConfirmCrewArgs {
    #[command(flatten)]
    when: When,
    /// The crew whose leader confirms (crew id).
    #[arg(long)]
    crew: String,
}

#[derive(Args, Debug)]
pub struct AnswerArgs {
    #[command(flatten)]
    day: input::SiteDay,
    /// The dispute record's id (from `sitesync day --json`, `signoffs.events`).
    #[arg(long)]
    dispute: String,
    /// The answer: what was corrected, or why the lines stand.
    #[arg(long)]
    reason: String,
}

#[derive(Args, Debug)]
pub struct SheetArgs {
    /// Site id, code (HZ-01) or name.
    #[arg(long)]
    site: String,
    /// The month (YYYY-MM).
    #[arg(long)]
    month: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn sign(store: &mut Store, out: &mut impl Write, a: SignArgs) -> Result<()> {
    let (site, period) = a.when.read(store)?;
    let worker = input::worker(store, Some(&site), &a.worker)?;
    let image = match &a.image {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?),
        None => None,
    };
    if let Some(advance) = &a.advance {
        let (site, date) = a.when.day(store)?;
        let e = store.confirm_advance(&site, date, &worker, advance, image.as_deref())?;
        return report_advance(out, &site, a.when.json, &e);
    }
    let events = store.sign_off(&site, period, &worker, image.as_deref())?;
    report(out, &site, a.when.json, &events)
}

pub fn dispute(store: &mut Store, out: &mut impl Write, a: DisputeArgs) -> Result<()> {
    let (site, period) = a.when.read(store)?;
    let worker = input::worker(store, Some(&site), &a.worker)?;
    if let Some(advance) = &a.advance {
        let (site, date) = a.when.day(store)?;
        let e = store.dispute_advance(&site, date, &worker, advance, &a.reason)?;
        return report_advance(out, &site, a.when.json, &e);
    }
    let events = store.dispute(&site, period, &worker, &a.reason)?;
    report(out, &site, a.when.json, &events)
}

pub fn confirm_crew(store: &mut Store, out: &mut impl Write, a: ConfirmCrewArgs) -> Result<()> {
    let (site, period) = a.when.read(store)?;
    let crew = CrewId::new(a.crew.as_str())?;
    let events = store.confirm_crew(&site, period, &crew)?;
    report(out, &site, a.when.json, &events)
}

pub fn answer(store: &mut Store, out: &mut impl Write, a: AnswerArgs) -> Result<()> {
    let (site, d) = a.day.read(store)?;
    let event = store.answer_dispute(&site, d, &a.dispute, &a.reason)?;
    report(out, &site, false, std::slice::from_ref(&event))
}

pub fn sheet(store: &mut Store, out: &mut impl Write, a: SheetArgs) -> Result<()> {
    let site = input::site(store, &a.site)?;
    let sheet = store.month_signoffs(&site, input::month(&a.month)?)?;
    if a.json {
        return json_out(out, &sheet);
    }
    for w in &sheet.workers {
        say(
            out,
            Msg::SignoffState {
                who: w.worker.as_str(),
                when: &sheet.month,
                state: w.state.as_str(),
            },
        )?;
    }
    Ok(())
}

/// The advance's confirmation or dispute written, as a line or (`json`) the record.
fn report_advance(out: &mut impl Write, site: &SiteId, json: bool, e: &SignoffEvent) -> Result<()> {
    if json {
        return json_out(out, &[e]);
    }
    say(
        out,
        Msg::AdvanceSignoffRecorded {
            who: e.worker.as_ref().map_or("", |w| w.as_str()),
            disputed: e.action == SignoffAction::AdvanceDisputed,
            advance: e.advance.as_deref().unwrap_or_default(),
            site: site.as_str(),
            date: &e.date.to_string(),
            record: &e.id,
        },
    )
}

/// One line per record written ("w-0001 signed site-hz-01 2026-09-01 (2 lines)"), or the records.
fn report(out: &mut impl Write, site: &SiteId, json: bool, events: &[SignoffEvent]) -> Result<()> {
    if json {
        return json_out(out, &events);
    }
    for e in events {
        let who = match (&e.worker, &e.crew) {
            (Some(w), _) => w.to_string(),
            (None, Some(c)) => c.to_string(),
            (None, None) => e.by.clone(),
        };
        let day = match (&e.month, e.action) {
            (Some(m), _) => format!("{} ({m})", e.date),
            (None, _) => e.date.to_string(),
        };
        say(
            out,
            Msg::SignoffRecorded {
                who: &who,
                action: e.action,
                site: site.as_str(),
                date: &day,
                lines: e.lines.len(),
                record: &e.id,
            },
        )?;
    }
    Ok(())
}
