//! The pay sheet (工资表) head office and the site's managers read: `sitesync_core::pay` over the
//! server's store, with each worker's sign-off state beside his figures, as JSON, CSV or Excel.
//!
//! Decision (2026-11-30): head office, admins and site managers granted the site read it (they
//! approve the days it is computed from); foremen do not — what each worker of a crew earns and was
//! advanced is not theirs to read from the server.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sitesync_core::Store;
use sitesync_core::ids::{CrewId, SiteId, WorkerId};
use sitesync_core::pay::{PayAmounts, PaySheet};
use sitesync_core::report::pdf::{ClosedPrint, PayPrintLine, PaySheetPrint};
use sitesync_core::signoff::SignoffState;
use utoipa::ToSchema;

use crate::error::{Error, Result};
use crate::export::{Cell, Table};
use crate::report::signoff_text;

pub mod period;

/// One worker's figures (money in fen, work-days in hundredths, time in minutes) and where his
/// month's sign-off stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[allow(missing_docs, reason = "fields named as in `sitesync_core::pay::PayLine`")]
pub struct PayReportLine {
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
    /// edited since, or disputed): deductions without his signature.
    #[serde(default)]
    pub advances_unconfirmed_fen: i64,
    /// How many advances that is.
    #[serde(default)]
    pub advances_unconfirmed: i64,
    /// Corrections to closed earlier periods carried here (see `adjustments`).
    pub adjustment_fen: i64,
    /// Day + overtime + piece − advances + adjustment (negative when advances exceed it).
    pub net_fen: i64,
    /// His bank account masked (`6222 **** **** 1234`; "" when none is on record).
    pub bank_account: String,
    /// The worst of his month sign-off states over the months of the range (`signed` only when
    /// every month is signed as it stands).
    pub signoff: SignoffState,
}

/// A crew's pay sheet over a range, from approved days only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PayReport {
    /// The site.
    pub site: String,
    /// The crew.
    pub crew: String,
    /// First day, inclusive.
    pub from: NaiveDate,
    /// Last day, inclusive.
    pub to: NaiveDate,
    /// One line per worker, by worker id.
    pub workers: Vec<PayReportLine>,
    /// Column sums (`worker` "合计 total", `signoff` `unsigned`).
    pub total: PayReportLine,
    /// Days of the range holding lines or advances that are not approved: not counted.
    pub unapproved: Vec<NaiveDate>,
    /// `date worker work_item` of piecework lines without a piece rate: counted for time, not paid.
    pub unpriced: Vec<String>,
    /// Corrections to closed earlier periods of the site and crew, carried here once.
    pub adjustments: Vec<period::Adjustment>,
    /// Set when this is a closed period's stored sheet: who closed it, when, and its payment.
    pub closed: Option<period::Closed>,
}

fn line(worker: String, name: String, p: &PayAmounts, signoff: SignoffState) -> PayReportLine {
    PayReportLine {
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
        adjustment_fen: 0,
        net_fen: p.net_fen,
        bank_account: String::new(),
        signoff,
    }
}

/// The pay sheet of `crew` on `site` over `from ..= to`.
pub fn pay_report(store: &mut Store, site: &str, crew: &str, from: NaiveDate, to: NaiveDate) -> Result<PayReport> {
    if to < from {
        return Err(Error::BadRequest("`to` is before `from`".into()));
    }
    let site_id = SiteId::new(site).map_err(|e| Error::BadRequest(e.to_string()))?;
    let crew_id = CrewId::new(crew).map_err(|e| Error::BadRequest(e.to_string()))?;
    let sheet: PaySheet = store.pay_sheet(&site_id, &crew_id, from, to)?;
    let roster = store.roster(&site_id)?;
    let states = store.sheet_signoffs(&sheet)?;
    Ok(PayReport {
        site: sheet.site.clone(),
        crew: sheet.crew.to_string(),
        from,
        to,
        workers: sheet
            .workers
            .iter()
            .zip(states)
            .map(|(w, s)| {
                let mut l = line(w.worker.to_string(), w.name.clone(), &w.pay, s);
                l.bank_account = roster
                    .worker(&w.worker)
                    .map(|w| w.bank_account().masked())
                    .unwrap_or_default();
                l
            })
            .collect(),
        total: line("合计 total".into(), String::new(), &sheet.total, SignoffState::Unsigned),
        unapproved: sheet.unapproved,
        unpriced: sheet
            .unpriced
            .iter()
            .map(|u| format!("{} {} {}", u.date, u.worker, u.work_item))
            .collect(),
        adjustments: Vec::new(),
        closed: None,
    })
}

impl PayReport {
    /// As printed ([`sitesync_core::report::pdf::pay_sheets`]): the figures as they are here, with
    /// `company`, the roster's site and crew names, each worker's masked ID-card number and his
    /// latest month signature record's image hash. Whether the image's bytes are here, and the
    /// picture, are the caller's to fill (the server's blob storage holds them).
    pub fn print(&self, store: &mut Store, company: String) -> Result<PaySheetPrint> {
        let site = SiteId::new(self.site.as_str()).map_err(|e| Error::BadRequest(e.to_string()))?;
        let roster = store.roster(&site)?;
        let crew = CrewId::new(self.crew.as_str())
            .ok()
            .and_then(|c| roster.crew(&c).cloned());
        let ids: Vec<WorkerId> = self
            .workers
            .iter()
            .map(|l| WorkerId::new(l.worker.as_str()).map_err(|e| Error::Internal(e.to_string())))
            .collect::<Result<_>>()?;
        let signatures = store.sheet_signatures(&site, self.from, self.to, &ids)?;
        let amounts = |l: &PayReportLine| PayAmounts {
            work_days_centi: l.work_days_centi,
            hours_min: l.hours_min,
            overtime_min: l.overtime_min,
            day_pay_fen: l.day_pay_fen,
            overtime_pay_fen: l.overtime_pay_fen,
            piece_pay_fen: l.piece_pay_fen,
            advances_fen: l.advances_fen,
            advances_unconfirmed_fen: l.advances_unconfirmed_fen,
            advances_unconfirmed: l.advances_unconfirmed,
            net_fen: l.net_fen,
        };
        Ok(PaySheetPrint {
            company,
            site_code: roster.site.code.clone(),
            site_name: roster.site.name.clone(),
            crew_name: crew.as_ref().map_or_else(|| self.crew.clone(), |c| c.name.clone()),
            crew_leader: crew.map(|c| c.leader).unwrap_or_default(),
            from: self.from,
            to: self.to,
            closed: self.closed.as_ref().map(|c| ClosedPrint {
                period: c.period.clone(),
                closed_by: c.closed_by.clone(),
                closed_at: c.closed_at,
                paid: c
                    .paid
                    .as_ref()
                    .map(|p| (p.paid_by.clone(), p.paid_at, p.reference.clone())),
            }),
            lines: self
                .workers
                .iter()
                .zip(&ids)
                .zip(signatures)
                .map(|((l, id), signature)| PayPrintLine {
                    worker: l.worker.clone(),
                    name: l.name.clone(),
                    id_card_masked: roster.id_card_masked(id),
                    bank_masked: l.bank_account.clone(),
                    amounts: amounts(l),
                    adjustment_fen: l.adjustment_fen,
                    signoff: l.signoff,
                    image: signature.and_then(|e| e.image).unwrap_or_default(),
                    image_here: false,
                    picture: None,
                })
                .collect(),
            total: amounts(&self.total),
            total_adjustment_fen: self.total.adjustment_fen,
            unapproved: self.unapproved.clone(),
            unpriced: self.unpriced.clone(),
            adjustments: self
                .adjustments
                .iter()
                .map(|a| {
                    let days: Vec<String> = a.days.iter().map(NaiveDate::to_string).collect();
                    format!(
                        "{} {}（{} 至 {} 结账期 {}）：{} 有变化，审批后更正的日期 {}，调整 {}",
                        a.name,
                        a.worker,
                        a.from,
                        a.to,
                        a.period,
                        a.fields.join("、"),
                        days.join("、"),
                        sitesync_core::units::yuan(a.net_fen)
                    )
                })
                .collect(),
        })
    }

    /// As a table: worker, name, work-days, hours, overtime hours, day pay, overtime pay, piece pay,
    /// advances, adjustment, net, bank card, signature status, advances not confirmed by the worker
    /// (last, so the earlier columns stay where they were); the totals row last.
    pub fn table(&self) -> Table {
        let cells = |l: &PayReportLine| {
            vec![
                Cell::Fixed(l.work_days_centi, 2),
                Cell::Fixed(l.hours_min * 100 / 60, 2),
                Cell::Fixed(l.overtime_min * 100 / 60, 2),
                Cell::Fen(l.day_pay_fen),
                Cell::Fen(l.overtime_pay_fen),
                Cell::Fen(l.piece_pay_fen),
                Cell::Fen(l.advances_fen),
                Cell::Fen(l.adjustment_fen),
                Cell::Fen(l.net_fen),
            ]
        };
        let rows = self
            .workers
            .iter()
            .map(|l| {
                let mut row = vec![Cell::Text(l.worker.clone()), Cell::Text(l.name.clone())];
                row.extend(cells(l));
                row.push(Cell::Text(l.bank_account.clone()));
                row.push(Cell::Text(signoff_text(l.signoff).into()));
                row.push(Cell::Fen(l.advances_unconfirmed_fen));
                row
            })
            .collect();
        let mut totals = vec![Cell::Text(self.total.worker.clone()), Cell::Empty];
        totals.extend(cells(&self.total));
        totals.push(Cell::Empty);
        totals.push(Cell::Empty);
        totals.push(Cell::Fen(self.total.advances_unconfirmed_fen));
        Table {
            title: match &self.closed {
                Some(c) => format!(
                    "工资表 {} {} {}~{} 已结 closed {}",
                    self.site, self.crew, self.from, self.to, c.period
                ),
                None => format!("工资表 {} {} {}~{}", self.site, self.crew, self.from, self.to),
            },
            header: [
                "工号 worker",
                "姓名 name",
                "工日 work-days",
                "工时 hours",
                "加班 overtime h",
                "点工工资 day pay ¥",
                "加班工资 overtime pay ¥",
                "包工工资 piece pay ¥",
                "借支 advances ¥",
                "调整 adjustment ¥",
                "实发 net ¥",
                "银行卡 bank card",
                "签字 signature",
                "借支未签认 advances unconfirmed ¥",
            ]
            .map(String::from)
            .to_vec(),
            rows,
            totals: Some(totals),
        }
    }
}
