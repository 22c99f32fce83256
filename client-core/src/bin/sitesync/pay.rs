//! Money owed and paid (issue #20): advances entered on the phone or at head office, piece rates set
//! by head office, and a crew's pay sheet over a period from the approved days.

use std::io::Write;

use anyhow::{Context, Result};
use clap::Args;
use sitesync_core::Store;
use sitesync_core::ids::{CrewId, WorkItemId};
use sitesync_core::pay::{PieceRate, PieceScope};
use sitesync_core::store::{AdvanceEdit, NewAdvance};
use sitesync_core::units::{Fen, fixed, hours, yuan};

use crate::input;
use crate::msg::{Col, Msg, cols};
use crate::render::{json_out, say, table};

#[derive(Args, Debug)]
pub struct AdvanceArgs {
    #[command(flatten)]
    day: input::SiteDay,
    /// The worker who received the money (id or name).
    #[arg(long, required_unless_present = "edit", conflicts_with = "edit")]
    worker: Option<String>,
    /// The amount in yuan (`500`, `500.50`); more than zero.
    #[arg(long, required_unless_present = "edit")]
    amount: Option<String>,
    /// Correct this advance of the day (its id) instead of entering one: --amount, --paid-by and
    /// --note replace what it holds. A confirmation the worker gave stays, marked changed since.
    #[arg(long, value_name = "ADV_ID")]
    edit: Option<String>,
    /// Who handed the money over (default: you).
    #[arg(long)]
    paid_by: Option<String>,
    /// A note.
    #[arg(long)]
    note: Option<String>,
    /// On an approved day: the reason for this correction.
    #[arg(long)]
    amend: Option<String>,
    /// Print the advance as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct AdvancesArgs {
    #[command(flatten)]
    day: input::SiteDay,
    /// Print JSON: each advance with `state` (`unsigned`, `signed`, `changed_since_signed`,
    /// `disputed`), its `confirmation` record, `changes` since and `open_disputes`.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct PieceRateArgs {
    /// Site id, code (HZ-01) or name.
    #[arg(long)]
    site: String,
    /// The work item priced (id).
    #[arg(long)]
    work_item: String,
    /// Yuan per one unit of the work item's unit (`35`, `12.50`).
    #[arg(long)]
    price: String,
    /// Only for this crew (id); without it (and --worker), for the whole site.
    #[arg(long, conflicts_with = "worker")]
    crew: Option<String>,
    /// Only for this worker (id or name).
    #[arg(long)]
    worker: Option<String>,
    /// The first day the price applies (YYYY-MM-DD); without it, every day.
    #[arg(long)]
    from: Option<String>,
}

#[derive(Args, Debug)]
pub struct PayArgs {
    /// Site id, code (HZ-01) or name.
    #[arg(long)]
    site: String,
    /// The crew (id).
    #[arg(long)]
    crew: String,
    /// First day (YYYY-MM-DD), inclusive.
    #[arg(long)]
    from: String,
    /// Last day (YYYY-MM-DD), inclusive.
    #[arg(long)]
    to: String,
    /// Print the sheet as JSON.
    #[arg(long, conflicts_with = "pdf")]
    json: bool,
    /// Write the sheet as a PDF (A4 landscape, with the workers' signature images) to this file.
    #[arg(long, value_name = "OUT.pdf")]
    pdf: Option<std::path::PathBuf>,
}

pub fn advance(store: &mut Store, out: &mut impl Write, args: AdvanceArgs) -> Result<()> {
    let (site, date) = args.day.write(store)?;
    let amount = args
        .amount
        .as_deref()
        .map(|a| Fen::parse_yuan("amount", a))
        .transpose()?;
    let a = match (&args.edit, &args.worker, amount) {
        (Some(id), _, amount) => {
            let edit = AdvanceEdit {
                amount,
                paid_by: args.paid_by,
                note: args.note,
            };
            store.edit_advance(&site, date, id, &edit, args.amend.as_deref())?
        }
        (None, Some(worker), Some(amount)) => {
            let worker = input::worker(store, Some(&site), worker)?;
            let new = NewAdvance {
                site,
                date,
                worker,
                amount,
                paid_by: args.paid_by.unwrap_or_default(),
                note: args.note.unwrap_or_default(),
            };
            store.add_advance(&new, args.amend.as_deref())?
        }
        _ => unreachable!("clap requires --worker and --amount without --edit"),
    };
    if args.json {
        return json_out(out, &a);
    }
    say(
        out,
        Msg::AdvanceRecorded {
            worker: a.worker.as_str(),
            amount: &yuan(a.amount.fen()),
            date: &date.to_string(),
            id: &a.id,
        },
    )
}

pub fn advances(store: &mut Store, out: &mut impl Write, args: AdvancesArgs) -> Result<()> {
    let (site, date) = args.day.read(store)?;
    let list = store.advance_signoffs(&site, date)?;
    if args.json {
        return json_out(out, &list);
    }
    for a in &list {
        say(
            out,
            Msg::AdvanceState {
                id: &a.advance.id,
                worker: a.advance.worker.as_str(),
                amount: &yuan(a.advance.amount.fen()),
                paid_by: &a.advance.paid_by,
                state: a.state.as_str(),
            },
        )?;
        for c in &a.changes {
            say(
                out,
                Msg::AdvanceChanged {
                    field: &c.field,
                    was: c.approved.as_deref().unwrap_or("—"),
                    now: c.now.as_deref().unwrap_or("—"),
                },
            )?;
        }
    }
    Ok(())
}

pub fn piece_rate(store: &mut Store, out: &mut impl Write, args: PieceRateArgs) -> Result<()> {
    let site = input::site(store, &args.site)?;
    let scope = match (&args.crew, &args.worker) {
        (Some(c), _) => PieceScope::Crew(CrewId::new(c.as_str())?),
        (None, Some(w)) => PieceScope::Worker(input::worker(store, Some(&site), w)?),
        (None, None) => PieceScope::Site,
    };
    let rate = PieceRate {
        work_item: WorkItemId::new(args.work_item.as_str())?,
        scope,
        price: Fen::parse_yuan("price", &args.price)?,
        from: args.from.as_deref().map(input::day).transpose()?,
    };
    store.set_piece_rate(&site, &rate)?;
    say(
        out,
        Msg::PieceRateSet {
            key: &rate.key(),
            price: &yuan(rate.price.fen()),
        },
    )
}

pub fn pay(store: &mut Store, out: &mut impl Write, args: PayArgs) -> Result<()> {
    let site = input::site(store, &args.site)?;
    let from = input::date(store, &site, &args.from)?;
    let to = input::date(store, &site, &args.to)?;
    let crew = CrewId::new(args.crew.as_str())?;
    if let Some(path) = &args.pdf {
        let print = store.pay_sheet_print(&site, &crew, from, to)?;
        let pdf = sitesync_core::report::pdf::pay_sheets(&[print])?;
        std::fs::write(path, &pdf.bytes).with_context(|| path.display().to_string())?;
        if !pdf.missing.is_empty() {
            let chars: String = pdf.missing.iter().collect();
            eprintln!("{}{}", Msg::Warning, Msg::MissingGlyphs(&chars));
        }
        return writeln!(out, "{}", Msg::WrotePdf { path, pages: pdf.pages }).map_err(Into::into);
    }
    let sheet = store.pay_sheet(&site, &crew, from, to)?;
    if args.json {
        return json_out(out, &sheet);
    }
    let row = |worker: &str, name: &str, p: &sitesync_core::pay::PayAmounts| {
        vec![
            worker.to_string(),
            name.to_string(),
            fixed(p.work_days_centi, 2),
            hours(p.hours_min),
            hours(p.overtime_min),
            yuan(p.day_pay_fen),
            yuan(p.overtime_pay_fen),
            yuan(p.piece_pay_fen),
            yuan(p.advances_fen),
            yuan(p.net_fen),
        ]
    };
    let mut rows: Vec<Vec<String>> = sheet
        .workers
        .iter()
        .map(|l| row(l.worker.as_str(), &l.name, &l.pay))
        .collect();
    rows.push(row(&Msg::Total.to_string(), "", &sheet.total));
    table(
        out,
        &cols(&[
            Col::Worker,
            Col::Name,
            Col::WorkDays,
            Col::Hours,
            Col::OvertimeHours,
            Col::DayPay,
            Col::OvertimePay,
            Col::PiecePay,
            Col::Advances,
            Col::Net,
        ]),
        rows.into_iter(),
    )?;
    if !sheet.unapproved.is_empty() {
        let days: Vec<String> = sheet.unapproved.iter().map(ToString::to_string).collect();
        say(out, Msg::PayUnapproved(&days.join(", ")))?;
    }
    for w in sheet.workers.iter().filter(|w| w.pay.advances_unconfirmed > 0) {
        say(
            out,
            Msg::PayAdvancesUnconfirmed {
                worker: w.worker.as_str(),
                amount: &yuan(w.pay.advances_unconfirmed_fen),
                count: w.pay.advances_unconfirmed,
            },
        )?;
    }
    for u in &sheet.unpriced {
        say(
            out,
            Msg::PayUnpriced {
                date: &u.date.to_string(),
                worker: u.worker.as_str(),
                work_item: u.work_item.as_str(),
            },
        )?;
    }
    Ok(())
}
