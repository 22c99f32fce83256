//! `pay.json` of the company data set (issue #20): piece rates, the spans of logged lines that were
//! piecework (包工), and advances (借支). Imported after `logs.json`; idempotent like it.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::doc::day;
use crate::error::{Error, Result};
use crate::ids::{CrewId, DocId, SiteId, WorkItemId, WorkerId};
use crate::labor::{DayStatus, LaborKind};
use crate::pay::{ADVANCE_PREFIX, Advance, PieceRate, PieceScope};
use crate::store::Store;
use crate::units::Fen;

/// `pay.json`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[allow(missing_docs, reason = "fields named for what they hold")]
pub struct PayFixtures {
    #[serde(default)]
    pub piece_rates: Vec<FixtureRate>,
    #[serde(default)]
    pub piecework: Vec<PieceworkSpan>,
    #[serde(default)]
    pub advances: Vec<FixtureAdvance>,
}

/// A piece rate: for the whole site, or one crew, or one worker.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[allow(missing_docs, reason = "fields named for what they hold")]
pub struct FixtureRate {
    pub site: SiteId,
    pub work_item: WorkItemId,
    #[serde(default)]
    pub crew: Option<CrewId>,
    #[serde(default)]
    pub worker: Option<WorkerId>,
    /// Fen per unit of the work item.
    pub price_fen: i64,
    #[serde(default)]
    pub from: Option<NaiveDate>,
}

/// The lines of `logs.json` that a crew worked by the piece: its workers' lines on the work item
/// from `from` to `to`, inclusive, become piecework.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[allow(missing_docs, reason = "fields named for what they hold")]
pub struct PieceworkSpan {
    pub site: SiteId,
    pub crew: CrewId,
    pub work_item: WorkItemId,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// An advance handed over on a day.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[allow(missing_docs, reason = "fields named for what they hold")]
pub struct FixtureAdvance {
    pub site: SiteId,
    pub date: NaiveDate,
    pub worker: WorkerId,
    pub amount_fen: i64,
    #[serde(default)]
    pub paid_by: String,
    #[serde(default)]
    pub note: String,
}

/// The id of the `n`th advance of the file: derived from what it is, so a second import writes the
/// same records.
fn advance_id(a: &FixtureAdvance, n: usize) -> String {
    let digest = Sha256::digest(format!(
        "sitesync-fixture-advance:{}|{}|{}|{n}",
        a.site, a.date, a.worker
    ));
    format!("{ADVANCE_PREFIX}{}", &hex::encode(digest)[..32])
}

impl Store {
    /// Imports `pay.json`: rates as head office sets them, piecework spans on days not yet approved,
    /// advances on days not yet approved (approved days change only by amendment).
    pub fn import_pay(&mut self, pay: &PayFixtures) -> Result<()> {
        for r in &pay.piece_rates {
            let scope = match (&r.crew, &r.worker) {
                (None, None) => PieceScope::Site,
                (Some(c), None) => PieceScope::Crew(c.clone()),
                (None, Some(w)) => PieceScope::Worker(w.clone()),
                (Some(_), Some(_)) => {
                    return Err(Error::Import {
                        what: format!("piece rate of {}", r.work_item),
                        reason: "a crew or a worker, not both".into(),
                    });
                }
            };
            let rate = PieceRate {
                work_item: r.work_item.clone(),
                scope,
                price: Fen::new("price_fen", r.price_fen)?,
                from: r.from,
            };
            self.set_piece_rate(&r.site, &rate)?;
        }
        for span in &pay.piecework {
            let roster = self.roster(&span.site)?;
            for date in span.from.iter_days().take_while(|d| *d <= span.to) {
                let (content, status) = self.day_content(&span.site, date)?;
                if matches!(status, DayStatus::Approved | DayStatus::AmendedAfterApproval) {
                    continue;
                }
                let lines: Vec<_> = content
                    .labor
                    .into_values()
                    .filter(|l| {
                        !l.deleted
                            && l.kind != LaborKind::Piecework
                            && l.work_item == span.work_item
                            && roster.worker(&l.worker).is_some_and(|w| w.crew == span.crew)
                    })
                    .map(|mut l| {
                        l.kind = LaborKind::Piecework;
                        l
                    })
                    .collect();
                if !lines.is_empty() {
                    self.change(&DocId::Day(span.site.clone(), date), |tx| {
                        lines.iter().try_for_each(|l| day::put_labor(tx, l))
                    })?;
                }
            }
        }
        let user = self.user().to_string();
        for (n, a) in pay.advances.iter().enumerate() {
            let (_, status) = self.day_content(&a.site, a.date)?;
            if matches!(status, DayStatus::Approved | DayStatus::AmendedAfterApproval) {
                continue;
            }
            let id = advance_id(a, n);
            if self.advances(&a.site, a.date)?.iter().any(|x| x.id == id) {
                continue;
            }
            let advance = Advance {
                id,
                worker: a.worker.clone(),
                amount: Fen::new("amount_fen", a.amount_fen)?,
                paid_by: a.paid_by.clone(),
                note: a.note.clone(),
                entered_by: user.clone(),
                at: chrono::Utc::now(),
            };
            let roster = self.roster(&a.site)?;
            crate::validate::advance(&a.site, &advance, &roster).map_err(|e| Error::Import {
                what: format!("advance {n} ({} {} {})", a.site, a.date, a.worker),
                reason: e.to_string(),
            })?;
            self.change(&DocId::Day(a.site.clone(), a.date), |tx| {
                crate::doc::pay::put_advance(tx, &advance, false)
            })?;
        }
        Ok(())
    }
}
