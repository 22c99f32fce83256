//! Advances, piece rates and pay sheets on the store (issue #20; the computation is `crate::pay`).
//! Every write validates first, writes nothing on error, and is durable when it returns.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate, Utc};

use super::Store;
use crate::doc::{day, heads_parse};
use crate::error::{Error, Result};
use crate::ids::{CrewId, DocId, SiteId, WorkItemId, WorkerId};
use crate::labor::{DayStatus, ReviewAction};
use crate::pay::{self, ADVANCE_PREFIX, Advance, ApprovedDay, MAX_PERIOD_DAYS, PaySheet, PieceRate, PieceScope};
use crate::signoff::{SignoffAction, SignoffEvent, SignoffState};
use crate::units::Fen;
use crate::validate;

/// An advance to enter: who got how much, handed over by whom, on which day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAdvance {
    /// The site.
    pub site: SiteId,
    /// The day the money was handed over.
    pub date: NaiveDate,
    /// Who received it.
    pub worker: WorkerId,
    /// How much; more than zero.
    pub amount: Fen,
    /// Who handed it over ("" : the person entering it).
    pub paid_by: String,
    /// Free text.
    pub note: String,
}

/// What to change in an advance (`None`: leave it).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AdvanceEdit {
    /// The amount; more than zero.
    pub amount: Option<Fen>,
    /// Who handed it over.
    pub paid_by: Option<String>,
    /// The note.
    pub note: Option<String>,
}

/// How one day of a pay period reads.
enum PayDay {
    /// Approved: as the approval pinned it.
    Approved(ApprovedDay),
    /// Holds something but is not approved.
    Unapproved,
    /// Nothing logged.
    Empty,
}

impl Store {
    /// Enters an advance on the day it was handed over and returns it as stored. On an approved day
    /// `amend` must give the reason (an advance is locked with the day's lines).
    pub fn add_advance(&mut self, new: &NewAdvance, amend: Option<&str>) -> Result<Advance> {
        let roster = self.roster(&new.site)?;
        if roster.worker(&new.worker).is_none() {
            return Err(Error::UnknownWorker {
                site: new.site.to_string(),
                worker: new.worker.to_string(),
            });
        }
        let advance = Advance {
            id: format!("{ADVANCE_PREFIX}{}", uuid::Uuid::new_v4().simple()),
            worker: new.worker.clone(),
            amount: new.amount,
            paid_by: match new.paid_by.trim() {
                "" => self.user.clone(),
                p => p.to_string(),
            },
            note: new.note.trim().to_string(),
            entered_by: self.user.clone(),
            at: Utc::now(),
        };
        validate::day_date(new.date)?;
        validate::advance(&new.site, &advance, &roster)?;
        let (_, status) = self.day_content(&new.site, new.date)?;
        let amend = Self::check_unlocked(&new.site, new.date, status, amend)?;
        self.change_day(&new.site, new.date, amend, |tx| {
            crate::doc::pay::put_advance(tx, &advance, false)
        })?;
        Ok(advance)
    }

    /// Deletes an advance entered by mistake (on an approved day, as an amendment with a reason).
    pub fn delete_advance(&mut self, site: &SiteId, date: NaiveDate, id: &str, amend: Option<&str>) -> Result<()> {
        let advance = self
            .advances(site, date)?
            .into_iter()
            .find(|a| a.id == id)
            .ok_or_else(|| Error::invalid("advance", format!("no advance {id:?} on {site} {date}")))?;
        let (_, status) = self.day_content(site, date)?;
        let amend = Self::check_unlocked(site, date, status, amend)?;
        self.change_day(site, date, amend, |tx| crate::doc::pay::put_advance(tx, &advance, true))
    }

    /// Corrects an advance: its amount, who paid it, its note (`None`: as it is). An advance the
    /// worker confirmed keeps the confirmation, which then reads as changed since confirmed, with
    /// what changed ([`Store::advance_signoffs`]). On an approved day, an amendment with a reason.
    pub fn edit_advance(
        &mut self,
        site: &SiteId,
        date: NaiveDate,
        id: &str,
        edit: &AdvanceEdit,
        amend: Option<&str>,
    ) -> Result<Advance> {
        let mut advance = self
            .advances(site, date)?
            .into_iter()
            .find(|a| a.id == id)
            .ok_or_else(|| Error::invalid("advance", format!("no advance {id:?} on {site} {date}")))?;
        if let Some(a) = edit.amount {
            advance.amount = a;
        }
        if let Some(p) = &edit.paid_by {
            advance.paid_by = p.trim().to_string();
        }
        if let Some(n) = &edit.note {
            advance.note = n.trim().to_string();
        }
        // The record names whoever wrote it last (the server checks `entered_by` on every write).
        advance.entered_by = self.user.clone();
        validate::advance(site, &advance, &self.roster(site)?)?;
        let (_, status) = self.day_content(site, date)?;
        let amend = Self::check_unlocked(site, date, status, amend)?;
        self.change_day(site, date, amend, |tx| {
            crate::doc::pay::put_advance(tx, &advance, false)
        })?;
        Ok(advance)
    }

    /// The day's advances as they stand now, by id.
    pub fn advances(&mut self, site: &SiteId, date: NaiveDate) -> Result<Vec<Advance>> {
        Ok(self
            .read_doc(&DocId::Day(site.clone(), date), |doc| {
                crate::doc::pay::advances(doc, None)
            })?
            .unwrap_or_default())
    }

    /// Sets a piece rate (head office's: the server refuses it from anyone else), replacing the
    /// earlier price of the same work item and scope. The work item, crew or worker must be the site's.
    pub fn set_piece_rate(&mut self, site: &SiteId, rate: &PieceRate) -> Result<()> {
        let roster = self.roster(site)?;
        if roster.work_item(&rate.work_item).is_none() {
            return Err(Error::UnknownWorkItem {
                site: site.to_string(),
                work_item: rate.work_item.to_string(),
            });
        }
        match &rate.scope {
            PieceScope::Site => {}
            PieceScope::Crew(c) if roster.crew(c).is_none() => {
                return Err(Error::UnknownCrew {
                    site: site.to_string(),
                    crew: c.to_string(),
                });
            }
            PieceScope::Worker(w) if roster.worker(w).is_none() => {
                return Err(Error::UnknownWorker {
                    site: site.to_string(),
                    worker: w.to_string(),
                });
            }
            _ => {}
        }
        validate::piece_rate(site, rate)?;
        self.change(&DocId::Site(site.clone()), |tx| {
            crate::doc::pay::put_piece_rate(tx, rate)
        })
    }

    /// The site's piece rates, by key.
    pub fn piece_rates(&mut self, site: &SiteId) -> Result<Vec<PieceRate>> {
        Ok(self
            .read_doc(&DocId::Site(site.clone()), crate::doc::pay::piece_rates)?
            .unwrap_or_default())
    }

    /// The pay sheet of `crew` over `from ..= to` (at most [`MAX_PERIOD_DAYS`] days) from the
    /// approved days, listing the days not approved (see [`crate::pay`]).
    pub fn pay_sheet(&mut self, site: &SiteId, crew: &CrewId, from: NaiveDate, to: NaiveDate) -> Result<PaySheet> {
        let roster = self.roster(site)?;
        if roster.crew(crew).is_none() {
            return Err(Error::UnknownCrew {
                site: site.to_string(),
                crew: crew.to_string(),
            });
        }
        let days = (to - from).num_days() + 1;
        if !(1..=MAX_PERIOD_DAYS).contains(&days) {
            return Err(Error::invalid(
                "to",
                format!("a pay period is 1 to {MAX_PERIOD_DAYS} days, from {from} to {to} is {days}"),
            ));
        }
        let rates = self.piece_rates(site)?;
        let mut approved = Vec::new();
        let mut unapproved = Vec::new();
        for date in from.iter_days().take_while(|d| *d <= to) {
            match self.pay_day(site, date)? {
                PayDay::Approved(d) => approved.push(d),
                PayDay::Unapproved => unapproved.push(date),
                PayDay::Empty => {}
            }
        }
        Ok(pay::sheet(&roster, &rates, crew, from, to, &approved, unapproved))
    }

    /// The approved days of `site` over `from ..= to` (at most [`MAX_PERIOD_DAYS`] days), as their
    /// approvals pinned them, and the days holding something that are not approved: the days a pay
    /// sheet counts, for showing one worker his own lines (the server's worker page, issue #20).
    pub fn approved_days(
        &mut self,
        site: &SiteId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<(Vec<ApprovedDay>, Vec<NaiveDate>)> {
        let days = (to - from).num_days() + 1;
        if !(1..=MAX_PERIOD_DAYS).contains(&days) {
            return Err(Error::invalid(
                "to",
                format!("a range is 1 to {MAX_PERIOD_DAYS} days, from {from} to {to} is {days}"),
            ));
        }
        let mut approved = Vec::new();
        let mut unapproved = Vec::new();
        for date in from.iter_days().take_while(|d| *d <= to) {
            match self.pay_day(site, date)? {
                PayDay::Approved(d) => approved.push(d),
                PayDay::Unapproved => unapproved.push(date),
                PayDay::Empty => {}
            }
        }
        Ok((approved, unapproved))
    }

    /// Piecework pay booked per work item of `site` on every day up to `to` (inclusive), in fen: as
    /// each day stands, or (`approved_only`) as approved. The same figures as the pay sheets' piece
    /// pay (each progress line's pay, shared out), summed by work item: the piecework term of cost
    /// against budget. A site without piece rates reads no day at all.
    pub fn piece_pay_by_item(
        &mut self,
        site: &SiteId,
        to: NaiveDate,
        approved_only: bool,
    ) -> Result<BTreeMap<WorkItemId, i64>> {
        let roster = self.roster(site)?;
        let rates = self.piece_rates(site)?;
        let mut out = BTreeMap::new();
        if rates.is_empty() {
            return Ok(out);
        }
        let dates: Vec<NaiveDate> = self
            .doc_ids()?
            .into_iter()
            .filter_map(|id| match id {
                DocId::Day(s, d) if &s == site && d <= to => Some(d),
                _ => None,
            })
            .collect();
        for date in dates {
            let day = if approved_only {
                match self.pay_day(site, date)? {
                    PayDay::Approved(d) => d,
                    _ => continue,
                }
            } else {
                let read = self.read_doc(&DocId::Day(site.clone(), date), |doc| {
                    let now = day::read(doc, None)?;
                    Ok(ApprovedDay {
                        date,
                        labor: now
                            .labor
                            .into_values()
                            .filter(|l| day::shown(l.deleted, &l.conflicts))
                            .collect(),
                        progress: now
                            .progress
                            .into_values()
                            .filter(|l| day::shown(l.deleted, &l.conflicts))
                            .collect(),
                        advances: Vec::new(),
                        unconfirmed_advances: Default::default(),
                    })
                })?;
                match read {
                    Some(d) => d,
                    None => continue,
                }
            };
            let (pay, _) = pay::piece_pay_of_day(&roster, &rates, &day);
            for l in &day.labor {
                if let Some(fen) = pay.get(l.id.as_str()) {
                    let sum = out.entry(l.work_item.clone()).or_insert(0i64);
                    *sum = sum.saturating_add(*fen);
                }
            }
        }
        Ok(out)
    }

    /// The version of each day of `from ..= to` a pay sheet counts: the heads (hex) its last
    /// approval pinned, for the days that are approved (or amended after approval) and hold a
    /// version; what a closed pay period pins, to tell later which of its days changed.
    pub fn approved_heads(
        &mut self,
        site: &SiteId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<(NaiveDate, Vec<String>)>> {
        let mut out = Vec::new();
        for date in from.iter_days().take_while(|d| *d <= to) {
            let heads = self.read_doc(&DocId::Day(site.clone(), date), |doc| {
                let now = day::read(doc, None)?;
                Ok(now
                    .reviews
                    .iter()
                    .rev()
                    .find(|e| e.action != ReviewAction::Amended)
                    .filter(|e| e.action == ReviewAction::Approved)
                    .map(|e| e.heads.clone()))
            })?;
            if let Some(Some(h)) = heads {
                out.push((date, h));
            }
        }
        Ok(out)
    }

    /// One day as a pay period reads it.
    fn pay_day(&mut self, site: &SiteId, date: NaiveDate) -> Result<PayDay> {
        let read = self.read_doc(&DocId::Day(site.clone(), date), |doc| {
            let now = day::read(doc, None)?;
            let status = day::status(doc, &now)?;
            let advances_now = crate::doc::pay::advances(doc, None)?;
            // Confirmations are read as they stand now: a worker confirms after the approval too.
            let events = crate::doc::signoff::events(doc, None)?;
            let unconfirmed = |advances: &[Advance]| -> Result<std::collections::BTreeSet<String>> {
                Ok(crate::doc::signoff::advances(doc, &events, advances.to_vec())?
                    .into_iter()
                    .filter(|a| a.state != SignoffState::Signed)
                    .map(|a| a.advance.id)
                    .collect())
            };
            let holds = |c: &day::DayContent, advances: &[Advance]| {
                c.labor.values().any(|l| day::shown(l.deleted, &l.conflicts))
                    || c.progress.values().any(|l| day::shown(l.deleted, &l.conflicts))
                    || !advances.is_empty()
            };
            let (content, advances) = match status {
                DayStatus::Approved => (now, advances_now),
                DayStatus::AmendedAfterApproval => {
                    // As the last approval pinned it, when this replica holds that version.
                    let heads = now
                        .reviews
                        .iter()
                        .rev()
                        .find(|e| e.action != ReviewAction::Amended)
                        .filter(|e| e.action == ReviewAction::Approved)
                        .and_then(|e| heads_parse(&e.heads));
                    match (heads, day::approved_version(doc, &now)?) {
                        (Some(h), Some(then)) => {
                            let advances = crate::doc::pay::advances(doc, Some(&h))?;
                            (then, advances)
                        }
                        _ => return Ok(PayDay::Unapproved),
                    }
                }
                _ => {
                    return Ok(if holds(&now, &advances_now) {
                        PayDay::Unapproved
                    } else {
                        PayDay::Empty
                    });
                }
            };
            Ok(PayDay::Approved(ApprovedDay {
                date,
                labor: content
                    .labor
                    .into_values()
                    .filter(|l| day::shown(l.deleted, &l.conflicts))
                    .collect(),
                progress: content
                    .progress
                    .into_values()
                    .filter(|l| day::shown(l.deleted, &l.conflicts))
                    .collect(),
                unconfirmed_advances: unconfirmed(&advances)?,
                advances,
            }))
        })?;
        Ok(read.unwrap_or(PayDay::Empty))
    }
}

impl Store {
    /// Each worker of `sheet` (in its order) with his sign-off over the months its range touches:
    /// the worst month's state, so `signed` only when every month is signed as it stands. The state
    /// the server's `GET /v1/pay` and the phone's sheet both show.
    pub fn sheet_signoffs(&mut self, sheet: &PaySheet) -> Result<Vec<SignoffState>> {
        let site = SiteId::new(sheet.site.as_str())?;
        let mut states: Vec<Option<SignoffState>> = vec![None; sheet.workers.len()];
        let mut month = sheet.from.with_day(1).unwrap_or(sheet.from);
        while month <= sheet.to {
            let signoffs = self.month_signoffs(&site, month)?;
            for (i, w) in sheet.workers.iter().enumerate() {
                let state = signoffs
                    .workers
                    .iter()
                    .find(|x| x.worker == w.worker)
                    .map_or(SignoffState::Unsigned, |x| x.state);
                if states[i].is_none_or(|x| worse(state, x)) {
                    states[i] = Some(state);
                }
            }
            month = match month.checked_add_months(chrono::Months::new(1)) {
                Some(m) => m,
                None => break,
            };
        }
        Ok(states
            .into_iter()
            .map(|s| s.unwrap_or(SignoffState::Unsigned))
            .collect())
    }
}

impl Store {
    /// Each of `workers` (a sheet's, in its order) with his latest month sign-off record found in
    /// the days of `from ..= to` (a month's record is in every day of the month he has lines on),
    /// for the signature image the printed sheet draws; `None` when he has not signed a month of it.
    pub fn sheet_signatures(
        &mut self,
        site: &SiteId,
        from: NaiveDate,
        to: NaiveDate,
        workers: &[WorkerId],
    ) -> Result<Vec<Option<SignoffEvent>>> {
        let roster = self.roster(site)?;
        let mut out: Vec<Option<SignoffEvent>> = vec![None; workers.len()];
        for date in from.iter_days().take_while(|d| *d <= to).take(MAX_PERIOD_DAYS as usize) {
            let events = self
                .read_doc(&DocId::Day(site.clone(), date), |doc| {
                    crate::doc::signoff::events(doc, None)
                })?
                .unwrap_or_default();
            for e in events
                .into_iter()
                .filter(|e| e.action == SignoffAction::Signed && e.month.is_some())
            {
                let Some(worker) = e.worker.as_ref().map(|w| pay::resolve_worker(&roster, w)) else {
                    continue;
                };
                if let Some(i) = workers.iter().position(|w| *w == worker)
                    && out[i].as_ref().is_none_or(|o| o.at < e.at)
                {
                    out[i] = Some(e);
                }
            }
        }
        Ok(out)
    }
}

/// Whether `a` is a worse state for a pay sheet than `b`: disputed, then changed since signed,
/// then unsigned, then signed.
fn worse(a: SignoffState, b: SignoffState) -> bool {
    let rank = |s| match s {
        SignoffState::Signed => 0,
        SignoffState::Unsigned => 1,
        SignoffState::ChangedSinceSigned => 2,
        SignoffState::Disputed => 3,
    };
    rank(a) > rank(b)
}

#[cfg(feature = "pdf")]
impl Store {
    /// The pay sheet of `crew` over `from ..= to` as the phone prints it
    /// ([`crate::report::pdf::pay_sheets`]): [`Store::pay_sheet`]'s figures, each worker's masked
    /// ID-card number and bank card, his month sign-off and its signature image when this store
    /// holds it. No company (the phone does not know it), no closed-period record or adjustments
    /// (head office's server alone holds those).
    pub fn pay_sheet_print(
        &mut self,
        site: &SiteId,
        crew: &CrewId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<crate::report::pdf::PaySheetPrint> {
        let sheet = self.pay_sheet(site, crew, from, to)?;
        let roster = self.roster(site)?;
        let states = self.sheet_signoffs(&sheet)?;
        let ids: Vec<WorkerId> = sheet.workers.iter().map(|w| w.worker.clone()).collect();
        let signatures = self.sheet_signatures(site, from, to, &ids)?;
        let mut lines = Vec::with_capacity(sheet.workers.len());
        for ((w, signoff), signature) in sheet.workers.iter().zip(states).zip(signatures) {
            let image = signature.and_then(|e| e.image).unwrap_or_default();
            let bytes = match image.is_empty() {
                true => None,
                false => self.signoff_image(&image)?,
            };
            lines.push(crate::report::pdf::PayPrintLine {
                worker: w.worker.to_string(),
                name: w.name.clone(),
                id_card_masked: roster.id_card_masked(&w.worker),
                bank_masked: roster
                    .worker(&w.worker)
                    .map(|x| x.bank_account().masked())
                    .unwrap_or_default(),
                amounts: w.pay.clone(),
                adjustment_fen: 0,
                signoff,
                image_here: bytes.is_some(),
                picture: bytes.as_deref().and_then(crate::signoff::signature_picture),
                image,
            });
        }
        let c = roster.crew(crew);
        Ok(crate::report::pdf::PaySheetPrint {
            company: String::new(),
            site_code: roster.site.code.clone(),
            site_name: roster.site.name.clone(),
            crew_name: c.map_or_else(|| crew.to_string(), |c| c.name.clone()),
            crew_leader: c.map(|c| c.leader.clone()).unwrap_or_default(),
            from,
            to,
            closed: None,
            lines,
            total: sheet.total.clone(),
            total_adjustment_fen: 0,
            unapproved: sheet.unapproved.clone(),
            unpriced: sheet
                .unpriced
                .iter()
                .map(|u| format!("{} {} {}", u.date, u.worker, u.work_item))
                .collect(),
            adjustments: Vec::new(),
        })
    }
}
