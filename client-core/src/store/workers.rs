//! Workers added on site and what head office does with them (confirm, merge), and rates with an
//! effective date: the `pending_workers` and `rates` tables of a site's master data.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::Store;
use crate::doc::site;
use crate::error::{Error, Result};
use crate::ids::{CrewId, DocId, SiteId, WorkerId, normalize_id_card};
use crate::pii::OrgPiiKey;
use crate::roster::{PendingStatus, PendingWorker, Rate};
use crate::units::Fen;
use crate::validate;

/// A worker a foreman adds on site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct NewWorker {
    pub site: SiteId,
    pub name: String,
    pub phone: String,
    /// Trade code (工种), e.g. `rebar`.
    pub trade: String,
    pub crew: CrewId,
    /// Pay for one work-day.
    pub day_rate: Fen,
    /// Pay for one hour of overtime.
    pub overtime_rate: Fen,
    /// The ID-card number, if the worker showed it: the worker's id is derived from it (keyed by
    /// the org), and it is stored only sealed and masked.
    pub id_card: Option<String>,
}

/// Where the store keeps its org's personal-data key ([`OrgPiiKey`], JSON).
const PII_KEY: &str = "org_pii_key";

impl Store {
    /// The org's key for sealing ID-card and bank-card numbers, as last given by the server
    /// (`None` before the first sync with a server that gives one).
    pub fn org_pii_key(&self) -> Result<Option<OrgPiiKey>> {
        match self.meta(PII_KEY)? {
            Some(text) if !text.is_empty() => {
                let key: OrgPiiKey =
                    serde_json::from_str(&text).map_err(|_| Error::Pii(crate::pii::PiiError::MalformedKey))?;
                Ok(Some(key))
            }
            _ => Ok(None),
        }
    }

    /// Keeps the org's personal-data key (checked first).
    pub fn set_org_pii_key(&mut self, key: &OrgPiiKey) -> Result<()> {
        key.check()?;
        let text = serde_json::to_string(key).map_err(|e| Error::Sync(e.to_string()))?;
        self.set_meta(PII_KEY, &text)
    }

    /// Adds a worker on site, offline, and returns the worker's id: derived from the ID card when
    /// given (so another phone adding the same card writes the same record), else fresh. The worker
    /// can be logged at once and is pending at head office. Durable before it returns. Adding a
    /// card already added on this site changes nothing and returns its id.
    ///
    /// Errors: an unknown site or crew, an empty name, rates out of bounds, a malformed ID card,
    /// [`Error::PiiKeyMissing`] for an ID card before the store has its org's key (sync once).
    pub fn add_worker(&mut self, w: &NewWorker) -> Result<WorkerId> {
        let roster = self.roster(&w.site)?;
        if roster.crew(&w.crew).is_none() {
            return Err(Error::UnknownCrew {
                site: w.site.to_string(),
                crew: w.crew.to_string(),
            });
        }
        if w.name.trim().is_empty() {
            return Err(Error::invalid("name", "a worker needs a name"));
        }
        validate::rate("day_rate", w.day_rate.fen())?;
        validate::rate("overtime_rate", w.overtime_rate.fen())?;
        let card = w.id_card.as_deref().map(normalize_id_card).unwrap_or_default();
        let (id, id_card_sealed) = if card.is_empty() {
            (WorkerId::fresh(), String::new())
        } else {
            let card = WorkerId::check_id_card(&card)?;
            let key = self.org_pii_key()?.ok_or(Error::PiiKeyMissing)?;
            (WorkerId::from_id_card_keyed(&card, &key)?, key.seal(&card)?)
        };
        if roster.pending_worker(&id).is_some() || roster.workers.iter().any(|x| x.id == id && !x.pending) {
            return Ok(id);
        }
        let p = PendingWorker {
            id: id.clone(),
            name: w.name.trim().to_string(),
            phone: w.phone.trim().to_string(),
            trade: w.trade.trim().to_string(),
            crew: w.crew.clone(),
            day_rate: w.day_rate,
            overtime_rate: w.overtime_rate,
            id_card_masked: crate::ids::mask_id_card(&card),
            id_card_sealed,
            // The server holds `added_by` to the signer's name: use the name it gave this device.
            added_by: self
                .author
                .as_ref()
                .map_or_else(|| self.user.clone(), |a| a.user_name.clone()),
            added_at: chrono::Utc::now().to_rfc3339(),
            status: PendingStatus::Pending,
            merged_into: None,
        };
        self.change(&DocId::Site(w.site.clone()), |tx| site::put_pending_worker(tx, &p))?;
        Ok(id)
    }

    /// Head office takes a pending worker onto the roster: written into `workers`, marked confirmed.
    ///
    /// Errors: an unknown site, a worker that is not pending.
    pub fn confirm_worker(&mut self, site: &SiteId, worker: &WorkerId) -> Result<()> {
        let roster = self.roster(site)?;
        let p = pending(&roster, site, worker)?;
        let mut w = p.as_worker();
        w.pending = false;
        self.change(&DocId::Site(site.clone()), |tx| {
            site::put_worker(tx, &w, None)?;
            site::put_pending_status(tx, worker, PendingStatus::Confirmed, None)
        })
    }

    /// Head office records that pending `worker` is the same person as `into`: every line of
    /// `worker` then counts under `into` ([`crate::roster::Roster::resolve_worker`]); no line is
    /// rewritten, so none is lost or counted twice.
    ///
    /// Errors: an unknown site, a worker that is not pending, a target not on the roster or that
    /// resolves back to `worker`.
    pub fn merge_worker(&mut self, site: &SiteId, worker: &WorkerId, into: &WorkerId) -> Result<()> {
        let roster = self.roster(site)?;
        pending(&roster, site, worker)?;
        let target = roster.resolve_worker(into);
        if &target == worker || roster.worker(&target).is_none() {
            return Err(Error::UnknownWorker {
                site: site.to_string(),
                worker: into.to_string(),
            });
        }
        self.change(&DocId::Site(site.clone()), |tx| {
            site::put_pending_status(tx, worker, PendingStatus::Merged, Some(&target))
        })
    }

    /// Head office sets a worker's rates from `from` on (a line dated on or after takes them).
    ///
    /// Errors: an unknown site or worker, rates out of bounds.
    pub fn set_rate(
        &mut self,
        site: &SiteId,
        worker: &WorkerId,
        from: NaiveDate,
        day: Fen,
        overtime: Fen,
    ) -> Result<()> {
        let roster = self.roster(site)?;
        if roster.worker(worker).is_none() {
            return Err(Error::UnknownWorker {
                site: site.to_string(),
                worker: worker.to_string(),
            });
        }
        validate::rate("day_rate", day.fen())?;
        validate::rate("overtime_rate", overtime.fen())?;
        let rate = Rate {
            worker: worker.clone(),
            from,
            day_rate: day,
            overtime_rate: overtime,
        };
        self.change(&DocId::Site(site.clone()), |tx| site::put_rate(tx, &rate))
    }
}

/// The pending-section record of `worker`, which must still be pending.
fn pending<'a>(roster: &'a crate::roster::Roster, site: &SiteId, worker: &WorkerId) -> Result<&'a PendingWorker> {
    match roster.pending_worker(worker) {
        Some(p) if p.status == PendingStatus::Pending => Ok(p),
        Some(p) => Err(Error::invalid(
            "worker",
            format!("{worker} is already {}", p.status.as_str()),
        )),
        None => Err(Error::UnknownWorker {
            site: site.to_string(),
            worker: worker.to_string(),
        }),
    }
}
