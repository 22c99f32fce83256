//! Money on the foreman's phone (issue #20): advances (借支) entered on the day the money was handed
//! over, and a crew's pay sheet (工资表) computed from the approved days this phone holds, with the
//! fields of the server's `GET /v1/pay` JSON. Money in fen, work-days in hundredths, time in minutes.

use sitesync_core::ids::{CrewId, SiteId, WorkerId};
use sitesync_core::pay::{Advance, MAX_ADVANCE_FEN, PayAmounts};
use sitesync_core::signoff::AdvanceSignoff;
use sitesync_core::signoff::SignoffState;
use sitesync_core::store::{AdvanceEdit, NewAdvance};
use sitesync_core::units::Fen;

use crate::{Result, SignoffChangeRecord, SignoffRecord, SignoffStateRecord, SiteSync, SiteSyncError, date};

/// An advance as stored.
#[derive(Debug, Clone, uniffi::Record)]
#[allow(missing_docs, reason = "fields named as in `sitesync_core::pay::Advance`")]
pub struct AdvanceRecord {
    /// `adv-` and 32 hex digits.
    pub id: String,
    pub worker: String,
    /// More than zero.
    pub amount_fen: i64,
    /// Who handed the money over.
    pub paid_by: String,
    pub note: String,
    /// The phone's user.
    pub entered_by: String,
    /// RFC 3339, the device's clock.
    pub at: String,
    /// Where the worker's confirmation stands: `Unsigned` (not confirmed), `Signed` (confirmed as
    /// it stands), `ChangedSinceSigned` (edited since he confirmed it), `Disputed`.
    pub confirmation_state: SignoffStateRecord,
    /// His last confirmation, kept through later edits.
    pub confirmation: Option<SignoffRecord>,
    /// What changed since he confirmed it (`line` is the advance's id).
    pub changes: Vec<SignoffChangeRecord>,
    /// His disputes of it not yet answered.
    pub open_disputes: Vec<SignoffRecord>,
}

impl From<&Advance> for AdvanceRecord {
    /// A new advance: nobody has confirmed it yet.
    fn from(a: &Advance) -> Self {
        AdvanceRecord {
            id: a.id.clone(),
            worker: a.worker.to_string(),
            amount_fen: a.amount.fen(),
            paid_by: a.paid_by.clone(),
            note: a.note.clone(),
            entered_by: a.entered_by.clone(),
            at: a.at.to_rfc3339(),
            confirmation_state: SignoffStateRecord::Unsigned,
            confirmation: None,
            changes: Vec::new(),
            open_disputes: Vec::new(),
        }
    }
}

impl From<&AdvanceSignoff> for AdvanceRecord {
    fn from(s: &AdvanceSignoff) -> Self {
        AdvanceRecord {
            confirmation_state: s.state.into(),
            confirmation: s.confirmation.as_ref().map(Into::into),
            changes: s.changes.iter().map(Into::into).collect(),
            open_disputes: s.open_disputes.iter().map(Into::into).collect(),
            ..(&s.advance).into()
        }
    }
}

/// One worker's line of a pay sheet, or its totals (`worker` "合计 total").
#[derive(Debug, Clone, uniffi::Record)]
#[allow(missing_docs, reason = "fields named as in the server's `GET /v1/pay` JSON")]
pub struct PayLineRecord {
    pub worker: String,
    pub name: String,
    pub work_days_centi: i64,
    pub hours_min: i64,
    pub overtime_min: i64,
    pub day_pay_fen: i64,
    pub overtime_pay_fen: i64,
    pub piece_pay_fen: i64,
    pub advances_fen: i64,
    /// The part of `advances_fen` its worker has not confirmed as it stands (never confirmed,
    /// edited since, or disputed).
    pub advances_unconfirmed_fen: i64,
    /// How many advances that is.
    pub advances_unconfirmed: i64,
    /// Day + overtime + piece − advances; negative when advances exceed it.
    pub net_fen: i64,
    /// The worst of his month sign-off states over the range's months (`Unsigned` on the totals).
    pub signoff: SignoffStateRecord,
}

/// A crew's pay sheet over a range, from the approved days on this phone.
#[derive(Debug, Clone, uniffi::Record)]
#[allow(missing_docs, reason = "fields named as in the server's `GET /v1/pay` JSON")]
pub struct PaySheetRecord {
    pub site: String,
    pub crew: String,
    /// `YYYY-MM-DD`, inclusive.
    pub from: String,
    /// `YYYY-MM-DD`, inclusive.
    pub to: String,
    pub workers: Vec<PayLineRecord>,
    pub total: PayLineRecord,
    /// Days of the range holding something that are not approved (`YYYY-MM-DD`): not counted.
    pub unapproved: Vec<String>,
    /// `date worker work_item` of piecework lines without a piece rate: counted for time, not paid.
    pub unpriced: Vec<String>,
}

fn line(worker: String, name: String, p: &PayAmounts, signoff: SignoffState) -> PayLineRecord {
    PayLineRecord {
        worker,
        name,
        work_days_centi: p.work_days_centi,
        hours_min: p.hours_min,
        overtime_min: p.overtime_min,
        day_pay_fen: p.day_pay_fen,
        overtime_pay_fen: p.overtime_pay_fen,
        piece_pay_fen: p.piece_pay_fen,
        advances_fen: p.advances_fen,
        advances_unconfirmed_fen: p.advances_unconfirmed_fen,
        advances_unconfirmed: p.advances_unconfirmed,
        net_fen: p.net_fen,
        signoff: signoff.into(),
    }
}

/// Advance `id` of the day as it stands now on `s`, with its confirmation.
fn advance_now(
    s: &mut sitesync_core::Store,
    site: &SiteId,
    day: chrono::NaiveDate,
    id: String,
) -> Result<AdvanceRecord> {
    match s.advance_signoffs(site, day)?.into_iter().find(|a| a.advance.id == id) {
        Some(a) => Ok((&a).into()),
        None => Err(SiteSyncError::NotFound { what: id }),
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl SiteSync {
    /// Enters an advance of `amount_fen` (more than zero, at most ¥1,000,000) handed to `worker` on
    /// `date` (`YYYY-MM-DD`) by this phone's user; returns it as stored. Refused, writing nothing:
    /// a bad amount or date (`Validation`), a worker not on the roster (`NotFound`), an approved day
    /// (`Validation` on `amend_reason`: an approved day's advances are locked with its lines).
    pub async fn add_advance(
        &self,
        site: String,
        worker: String,
        date: String,
        amount_fen: i64,
        note: String,
    ) -> Result<AdvanceRecord> {
        if !(1..=MAX_ADVANCE_FEN).contains(&amount_fen) {
            return Err(SiteSyncError::Validation {
                field: "amount_fen".into(),
                reason: format!("an advance is 1 to {MAX_ADVANCE_FEN} fen"),
            });
        }
        self.write(move |s| {
            let new = NewAdvance {
                site: SiteId::new(site)?,
                date: crate::date("date", &date)?,
                worker: WorkerId::new(worker)?,
                amount: Fen::new("amount_fen", amount_fen)?,
                paid_by: String::new(),
                note,
            };
            Ok((&s.add_advance(&new, None)?).into())
        })
        .await
    }

    /// The advances of a site-day as they stand on this phone, by id, each with where its
    /// worker's confirmation stands.
    pub async fn advances(&self, site: String, date: String) -> Result<Vec<AdvanceRecord>> {
        self.with_store(move |s| {
            let day = crate::date("date", &date)?;
            Ok(s.advance_signoffs(&SiteId::new(site)?, day)?
                .iter()
                .map(Into::into)
                .collect())
        })
        .await
    }

    /// Corrects advance `id` of `date`: a new amount (`None`: as it is) and note (`None`: as it
    /// is). A confirmation the worker gave stays and then reads `ChangedSinceSigned`, with what
    /// changed. Refused, writing nothing: no such advance, a bad amount (`Validation`), an approved
    /// day (`Validation` on `amend_reason`).
    pub async fn edit_advance(
        &self,
        site: String,
        date: String,
        id: String,
        amount_fen: Option<i64>,
        note: Option<String>,
    ) -> Result<AdvanceRecord> {
        self.write(move |s| {
            let site = SiteId::new(site)?;
            let day = crate::date("date", &date)?;
            let edit = AdvanceEdit {
                amount: amount_fen.map(|f| Fen::new("amount_fen", f)).transpose()?,
                paid_by: None,
                note,
            };
            s.edit_advance(&site, day, &id, &edit, None)?;
            advance_now(s, &site, day, id)
        })
        .await
    }

    /// The worker confirms, on this phone, that he received advance `id` of `date`: `image` is his
    /// signature (PNG or stroke data), none for a tap of consent. Returns the advance with its
    /// confirmation. Refused, writing nothing: no such advance on the day, or `worker` is not who
    /// received it (`Validation`); the server refuses the same from a phone that skips this check.
    pub async fn confirm_advance(
        &self,
        site: String,
        date: String,
        worker: String,
        id: String,
        image: Option<Vec<u8>>,
    ) -> Result<AdvanceRecord> {
        self.write(move |s| {
            let site = SiteId::new(site)?;
            let day = crate::date("date", &date)?;
            s.confirm_advance(&site, day, &WorkerId::new(worker)?, &id, image.as_deref())?;
            advance_now(s, &site, day, id)
        })
        .await
    }

    /// The worker disputes advance `id` of `date`, with a reason: the day cannot be approved until
    /// the dispute is answered (`answer_dispute` with the returned dispute's id).
    pub async fn dispute_advance(
        &self,
        site: String,
        date: String,
        worker: String,
        id: String,
        reason: String,
    ) -> Result<AdvanceRecord> {
        self.write(move |s| {
            let site = SiteId::new(site)?;
            let day = crate::date("date", &date)?;
            s.dispute_advance(&site, day, &WorkerId::new(worker)?, &id, &reason)?;
            advance_now(s, &site, day, id)
        })
        .await
    }

    /// The pay sheet of `crew` over `from ..= to` (`YYYY-MM-DD`, at most 366 days) from the approved
    /// days on this phone: the figures head office reads from `GET /v1/pay` once the phone has
    /// synced. An unknown crew is `NotFound`; a bad range `Validation`.
    pub async fn pay_sheet(&self, site: String, crew: String, from: String, to: String) -> Result<PaySheetRecord> {
        self.with_store(move |s| {
            let (from, to) = (date("from", &from)?, date("to", &to)?);
            let site = SiteId::new(site)?;
            let sheet = s.pay_sheet(&site, &CrewId::new(crew)?, from, to)?;
            let states = s.sheet_signoffs(&sheet)?;
            Ok(PaySheetRecord {
                site: sheet.site.clone(),
                crew: sheet.crew.to_string(),
                from: from.to_string(),
                to: to.to_string(),
                workers: sheet
                    .workers
                    .iter()
                    .zip(states)
                    .map(|(w, st)| line(w.worker.to_string(), w.name.clone(), &w.pay, st))
                    .collect(),
                total: line("合计 total".into(), String::new(), &sheet.total, SignoffState::Unsigned),
                unapproved: sheet.unapproved.iter().map(ToString::to_string).collect(),
                unpriced: sheet
                    .unpriced
                    .iter()
                    .map(|u| format!("{} {} {}", u.date, u.worker, u.work_item))
                    .collect(),
            })
        })
        .await
    }
}
