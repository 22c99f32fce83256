//! Sign-off on the store: a worker signs or disputes his day or month on the foreman's phone, a
//! dispute is answered, a crew leader confirms his crew's day, a worker confirms (or disputes) an
//! advance he received; and where each worker, crew and advance stands.
//! The records and why they live where they do: [`crate::signoff`].

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};

use super::Store;
use crate::attachments::{BlobHash, ByteSize};
use crate::doc::{day, read_table, signoff, table};
use crate::error::{Error, Result};
use crate::ids::{CrewId, DocId, LineId, SiteId, WorkerId};
use crate::signoff::{AdvanceSignoff, DaySignoffs, MonthDay, MonthSheet, MonthSignoff, SignoffAction, SignoffEvent};

/// The site master record and field saying whether crews must confirm a day before it is submitted
/// (`required`; anything else: optional). Head office writes it, for every site of an org that wants it.
const POLICY: (&str, &str) = ("site", "crew_confirmation");

/// What a sign-off of a day or of a month is given: the worker, and a signature image or none.
#[derive(Debug, Clone, Copy)]
pub enum Period {
    /// One site-day.
    Day(NaiveDate),
    /// A calendar month (any day of it): every day of it where the worker (or crew) has lines.
    Month(NaiveDate),
}

impl Period {
    fn text(self) -> String {
        match self {
            Period::Day(d) => d.to_string(),
            Period::Month(m) => month_text(m),
        }
    }
}

fn month_text(d: NaiveDate) -> String {
    d.format("%Y-%m").to_string()
}

impl Store {
    /// The device sign-offs are taken on: the enrolled device, or `local` before `init`.
    fn signing_device(&mut self) -> Result<String> {
        self.refresh_author()?;
        Ok(self.author().map_or_else(|| "local".to_string(), |a| a.device.clone()))
    }

    /// The days of `period` to write on, with the lines each has for `who` (a worker's or a crew's).
    fn signoff_days(
        &mut self,
        site: &SiteId,
        period: Period,
        who: &str,
        lines_of: impl Fn(&crate::labor::LaborLine) -> bool,
    ) -> Result<Vec<(NaiveDate, Vec<LineId>)>> {
        let dates = match period {
            Period::Day(d) => vec![d],
            Period::Month(m) => self.site_days_in_month(site, m)?,
        };
        let mut out = Vec::new();
        for date in dates {
            let (content, _) = self.day_content(site, date)?;
            let lines: Vec<LineId> = content
                .labor
                .values()
                .filter(|l| day::shown(l.deleted, &l.conflicts) && lines_of(l))
                .map(|l| l.id.clone())
                .collect();
            if !lines.is_empty() {
                out.push((date, lines));
            }
        }
        if out.is_empty() {
            return Err(Error::NothingToSign {
                who: who.to_string(),
                when: period.text(),
            });
        }
        Ok(out)
    }

    /// Days of the month with any labor line on the site, from the projection.
    fn site_days_in_month(&self, site: &SiteId, month: NaiveDate) -> Result<Vec<NaiveDate>> {
        let (first, next) = month_bounds(month);
        self.db()
            .query(
                "SELECT DISTINCT day FROM labor_lines WHERE site_id = ?1 AND day >= ?2 AND day < ?3 ORDER BY day",
                &[site.as_str().into(), first.to_string().into(), next.to_string().into()],
            )?
            .into_iter()
            .map(|r| crate::ids::parse_date(&r.text(0)?))
            .collect()
    }

    /// Writes one record per day, built by `make` from the day's document and lines; durable together.
    fn write_signoffs(
        &mut self,
        site: &SiteId,
        days: &[(NaiveDate, Vec<LineId>)],
        make: impl Fn(SignoffEvent, Vec<LineId>) -> SignoffEvent,
    ) -> Result<Vec<SignoffEvent>> {
        let ids: Vec<DocId> = days.iter().map(|(d, _)| DocId::Day(site.clone(), *d)).collect();
        let (user, device) = (self.user.clone(), self.signing_device()?);
        let mut events = Vec::new();
        for (id, (date, lines)) in ids.iter().zip(days) {
            let base = self
                .read_doc(id, |doc| {
                    Ok(signoff::new_event(doc, *date, SignoffAction::Signed, &user, &device))
                })?
                .ok_or_else(|| Error::InvalidTransition("nothing has been logged that day".into()))?;
            events.push(make(base, lines.clone()));
        }
        let mut it = events.iter();
        self.change_many(&ids, |_, tx| match it.next() {
            Some(e) => signoff::put_event(tx, e),
            None => Err(Error::invalid("day", "more documents than records")),
        })?;
        Ok(events)
    }

    /// The worker confirms his lines of the day (or of each day of the month), on this device: with a
    /// signature image (PNG or stroke data, kept here by its SHA-256) or, without, a tap of consent.
    pub fn sign_off(
        &mut self,
        site: &SiteId,
        period: Period,
        worker: &WorkerId,
        image: Option<&[u8]>,
    ) -> Result<Vec<SignoffEvent>> {
        self.worker_on_roster(site, worker)?;
        let days = self.signoff_days(site, period, worker.as_str(), |l| &l.worker == worker)?;
        let image = match image {
            Some(bytes) => Some(self.keep_image(bytes)?),
            None => None,
        };
        let month = matches!(period, Period::Month(_));
        let events = self.write_signoffs(site, &days, |mut e, lines| {
            e.worker = Some(worker.clone());
            e.lines = lines;
            e.image = image.as_ref().map(|(h, _)| h.to_string());
            e.month = if month { days_month(&days) } else { None };
            e
        })?;
        // The image goes to the server like a photo, for each day whose record names it: head
        // office and the printed log show it, readers of those days download it.
        if let Some((hash, size)) = &image {
            for (date, _) in &days {
                self.queue_upload(hash, &DocId::Day(site.clone(), *date), *size)?;
            }
        }
        Ok(events)
    }

    /// The worker disputes his lines of the day (or of each day of the month), with a reason: the
    /// day cannot be approved until the dispute is answered.
    pub fn dispute(
        &mut self,
        site: &SiteId,
        period: Period,
        worker: &WorkerId,
        reason: &str,
    ) -> Result<Vec<SignoffEvent>> {
        let reason = nonempty_reason(reason)?;
        self.worker_on_roster(site, worker)?;
        let days = self.signoff_days(site, period, worker.as_str(), |l| &l.worker == worker)?;
        let month = matches!(period, Period::Month(_));
        self.write_signoffs(site, &days, |mut e, lines| {
            e.action = SignoffAction::Disputed;
            e.worker = Some(worker.clone());
            e.lines = lines;
            e.reason = reason.clone();
            e.month = if month { days_month(&days) } else { None };
            e
        })
    }

    /// The worker confirms he received advance `advance` (its id) of the day, on this device: with a
    /// signature image or, without, a tap of consent. Refused, writing nothing, when the day has no
    /// such advance or `worker` did not receive it.
    pub fn confirm_advance(
        &mut self,
        site: &SiteId,
        date: NaiveDate,
        worker: &WorkerId,
        advance: &str,
        image: Option<&[u8]>,
    ) -> Result<SignoffEvent> {
        self.advance_of(site, date, worker, advance)?;
        let image = match image {
            Some(bytes) => Some(self.keep_image(bytes)?),
            None => None,
        };
        let mut out = self.write_signoffs(site, &[(date, Vec::new())], |mut e, _| {
            e.action = SignoffAction::AdvanceConfirmed;
            e.worker = Some(worker.clone());
            e.advance = Some(advance.to_string());
            e.image = image.as_ref().map(|(h, _)| h.to_string());
            e
        })?;
        if let Some((hash, size)) = &image {
            self.queue_upload(hash, &DocId::Day(site.clone(), date), *size)?;
        }
        Ok(out.remove(0))
    }

    /// The worker disputes advance `advance` of the day, with a reason: the day cannot be approved
    /// until the dispute is answered ([`Store::answer_dispute`]).
    pub fn dispute_advance(
        &mut self,
        site: &SiteId,
        date: NaiveDate,
        worker: &WorkerId,
        advance: &str,
        reason: &str,
    ) -> Result<SignoffEvent> {
        let reason = nonempty_reason(reason)?;
        self.advance_of(site, date, worker, advance)?;
        let mut out = self.write_signoffs(site, &[(date, Vec::new())], |mut e, _| {
            e.action = SignoffAction::AdvanceDisputed;
            e.worker = Some(worker.clone());
            e.advance = Some(advance.to_string());
            e.reason = reason.clone();
            e
        })?;
        Ok(out.remove(0))
    }

    /// The day's advances as they stand now, each with its worker's confirmation: confirmed,
    /// changed since (and what changed), disputed, or not confirmed.
    pub fn advance_signoffs(&mut self, site: &SiteId, date: NaiveDate) -> Result<Vec<AdvanceSignoff>> {
        Ok(self
            .read_doc(&DocId::Day(site.clone(), date), |doc| {
                let events = signoff::events(doc, None)?;
                signoff::advances(doc, &events, crate::doc::pay::advances(doc, None)?)
            })?
            .unwrap_or_default())
    }

    /// Refuses an advance the day does not have, or that `worker` did not receive.
    fn advance_of(&mut self, site: &SiteId, date: NaiveDate, worker: &WorkerId, advance: &str) -> Result<()> {
        self.worker_on_roster(site, worker)?;
        let found = self.advances(site, date)?.into_iter().find(|a| a.id == advance);
        match found {
            None => Err(Error::invalid(
                "advance",
                format!("no advance {advance:?} on {site} {date}"),
            )),
            Some(a) if &a.worker != worker => Err(Error::invalid(
                "worker",
                format!("{worker} did not receive advance {advance} ({} did)", a.worker),
            )),
            Some(_) => Ok(()),
        }
    }

    /// Answers a dispute of the day (a correction made, or why the lines stand).
    pub fn answer_dispute(
        &mut self,
        site: &SiteId,
        date: NaiveDate,
        dispute: &str,
        reason: &str,
    ) -> Result<SignoffEvent> {
        let reason = nonempty_reason(reason)?;
        let id = DocId::Day(site.clone(), date);
        let found = self
            .read_doc(&id, |doc| signoff::events(doc, None))?
            .unwrap_or_default()
            .into_iter()
            .find(|e| e.id == dispute && matches!(e.action, SignoffAction::Disputed | SignoffAction::AdvanceDisputed))
            .ok_or_else(|| Error::invalid("dispute", format!("no dispute {dispute:?} on {site} {date}")))?;
        let days = [(date, found.lines.clone())];
        let mut out = self.write_signoffs(site, &days, |mut e, lines| {
            e.action = SignoffAction::Answered;
            e.worker = found.worker.clone();
            e.lines = lines;
            e.reason = reason.clone();
            e.answers = Some(found.id.clone());
            e
        })?;
        Ok(out.remove(0))
    }

    /// The crew leader confirms his crew's lines of the day (or of each day of the month).
    pub fn confirm_crew(&mut self, site: &SiteId, period: Period, crew: &CrewId) -> Result<Vec<SignoffEvent>> {
        let roster = self.roster(site)?;
        if !roster.crews.iter().any(|c| &c.id == crew) {
            return Err(Error::UnknownCrew {
                site: site.to_string(),
                crew: crew.to_string(),
            });
        }
        let members: Vec<WorkerId> = roster
            .workers
            .iter()
            .filter(|w| &w.crew == crew)
            .map(|w| w.id.clone())
            .collect();
        let days = self.signoff_days(site, period, crew.as_str(), |l| members.contains(&l.worker))?;
        let month = matches!(period, Period::Month(_));
        self.write_signoffs(site, &days, |mut e, lines| {
            e.action = SignoffAction::CrewConfirmed;
            e.crew = Some(crew.clone());
            e.lines = lines;
            e.month = if month { days_month(&days) } else { None };
            e
        })
    }

    /// Where every worker and crew of the day stands.
    pub fn day_signoffs(&mut self, site: &SiteId, date: NaiveDate) -> Result<DaySignoffs> {
        let roster = self.roster(site)?;
        let required = self.crew_confirmation_required(site)?;
        let id = DocId::Day(site.clone(), date);
        let found = self.read_doc(&id, |doc| {
            let content = day::read(doc, None)?;
            let events = signoff::events(doc, None)?;
            let workers = signoff::workers(doc, &content, &events)?;
            Ok((content, events, workers))
        })?;
        let Some((content, events, workers)) = found else {
            return Ok(DaySignoffs {
                site: site.clone(),
                date,
                workers: Vec::new(),
                crews: Vec::new(),
                crew_confirmation_required: required,
                events: Vec::new(),
            });
        };
        let mut crews: Vec<CrewId> = content
            .labor
            .values()
            .filter(|l| day::shown(l.deleted, &l.conflicts))
            .filter_map(|l| roster.workers.iter().find(|w| w.id == l.worker).map(|w| w.crew.clone()))
            .collect();
        crews.sort();
        crews.dedup();
        Ok(DaySignoffs {
            site: site.clone(),
            date,
            workers,
            crews: signoff::crews(&events, crews),
            crew_confirmation_required: required,
            events,
        })
    }

    /// The site's attendance sheet for the month of `month`: each worker with lines, the state of
    /// each of his days against his month's confirmation, and who still has to sign or re-sign.
    pub fn month_signoffs(&mut self, site: &SiteId, month: NaiveDate) -> Result<MonthSheet> {
        self.roster(site)?;
        let m = month_text(month);
        let (first, next) = month_bounds(month);
        let rows = self.db().query(
            "SELECT DISTINCT worker_id, day FROM labor_lines
             WHERE site_id = ?1 AND day >= ?2 AND day < ?3 AND deleted = 0 ORDER BY worker_id, day",
            &[site.as_str().into(), first.to_string().into(), next.to_string().into()],
        )?;
        // Each day's document is read once for all of its workers (a site-month is ~30 days of
        // ~50 workers: reading a day per worker was 50 times the work).
        let mut by_day: BTreeMap<NaiveDate, Vec<WorkerId>> = BTreeMap::new();
        for r in rows {
            let worker = WorkerId::new(r.text(0)?)?;
            by_day
                .entry(crate::ids::parse_date(&r.text(1)?)?)
                .or_default()
                .push(worker);
        }
        let mut per_worker: BTreeMap<WorkerId, Vec<MonthDay>> = BTreeMap::new();
        for (date, ids) in by_day {
            let states = self
                .read_doc(&DocId::Day(site.clone(), date), |doc| {
                    let content = day::read(doc, None)?;
                    let events = signoff::events(doc, None)?;
                    ids.iter()
                        .map(|w| signoff::worker_state(doc, &content, &events, w, Some(&m)).map(|s| s.state))
                        .collect::<Result<Vec<_>>>()
                })?
                .unwrap_or_else(|| vec![crate::signoff::SignoffState::Unsigned; ids.len()]);
            for (worker, state) in ids.into_iter().zip(states) {
                per_worker.entry(worker).or_default().push(MonthDay { date, state });
            }
        }
        let mut workers: Vec<MonthSignoff> = per_worker
            .into_iter()
            .map(|(worker, days)| MonthSignoff {
                worker,
                state: crate::signoff::SignoffState::Unsigned,
                days,
            })
            .collect();
        for w in &mut workers {
            w.state = MonthSignoff::fold(&w.days);
        }
        Ok(MonthSheet {
            site: site.clone(),
            month: m,
            workers,
        })
    }

    /// A signature image kept on this store, by its SHA-256 (hex): taken here, or its blob is here.
    pub fn signoff_image(&self, sha256: &str) -> Result<Option<Vec<u8>>> {
        if self.db().dialect() == super::sql::Dialect::Postgres {
            // Only the server keeps documents in PostgreSQL; signature bytes are in its blob
            // storage, which its callers ask.
            return Ok(None);
        }
        if let Some(bytes) = self
            .db()
            .query("SELECT bytes FROM signoff_images WHERE sha256 = ?1", &[sha256.into()])?
            .first()
            .map(|r| r.bytes(0))
            .transpose()?
        {
            return Ok(Some(bytes));
        }
        let Ok(hash) = BlobHash::parse(sha256) else {
            return Ok(None);
        };
        match std::fs::read(self.blob_path(&hash)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether the site requires each crew's confirmation before its day is submitted.
    pub fn crew_confirmation_required(&mut self, site: &SiteId) -> Result<bool> {
        Ok(self
            .read_doc(&DocId::Site(site.clone()), |doc| {
                let info = read_table(doc, &table(doc, "info")?, None)?;
                Ok(info.get(POLICY.0).is_some_and(|r| r.str(POLICY.1) == "required"))
            })?
            .unwrap_or(false))
    }

    /// Sets whether the site requires crew confirmation before submitting (head office's master data:
    /// the server refuses it from anyone else).
    pub fn set_crew_confirmation_required(&mut self, site: &SiteId, required: bool) -> Result<()> {
        self.roster(site)?;
        self.change(&DocId::Site(site.clone()), |tx| {
            let t = table(tx, "info")?;
            crate::doc::put(
                tx,
                &t,
                POLICY.0,
                POLICY.1,
                if required { "required" } else { "optional" },
            )
        })
    }

    /// Refuses to approve a day a worker disputes and no one has answered.
    pub(super) fn check_no_open_dispute(&mut self, site: &SiteId, date: NaiveDate) -> Result<()> {
        let events = self
            .read_doc(&DocId::Day(site.clone(), date), |doc| signoff::events(doc, None))?
            .unwrap_or_default();
        match signoff::open_disputes(&events).first() {
            Some(d) => Err(Error::DisputeOpen {
                site: site.to_string(),
                date,
                worker: d.worker.as_ref().map(|w| w.to_string()).unwrap_or_default(),
                reason: d.reason.clone(),
                dispute: d.id.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Refuses to submit a day whose crews have not all confirmed it, where the site requires it.
    pub(super) fn check_crews_confirmed(&mut self, site: &SiteId, date: NaiveDate) -> Result<()> {
        if !self.crew_confirmation_required(site)? {
            return Ok(());
        }
        let s = self.day_signoffs(site, date)?;
        match s.crews.iter().find(|c| c.confirmation.is_none()) {
            Some(c) => Err(Error::CrewNotConfirmed {
                site: site.to_string(),
                date,
                crew: c.crew.to_string(),
            }),
            None => Ok(()),
        }
    }

    fn worker_on_roster(&mut self, site: &SiteId, worker: &WorkerId) -> Result<()> {
        if self.roster(site)?.workers.iter().any(|w| &w.id == worker) {
            Ok(())
        } else {
            Err(Error::UnknownWorker {
                site: site.to_string(),
                worker: worker.to_string(),
            })
        }
    }

    /// Keeps a signature image by its SHA-256, in the `signoff_images` table and as a blob beside
    /// the store (what the blob sync uploads), and returns the hash and size.
    fn keep_image(&mut self, bytes: &[u8]) -> Result<(BlobHash, ByteSize)> {
        if bytes.is_empty() {
            return Err(Error::invalid("image", "the signature image is empty"));
        }
        if bytes.len() > MAX_IMAGE {
            return Err(Error::invalid(
                "image",
                format!("a signature image is at most {} KiB", MAX_IMAGE / 1024),
            ));
        }
        let hash = BlobHash::of(bytes);
        self.db().exec(
            "INSERT INTO signoff_images (sha256, bytes, added_at) VALUES (?1, ?2, ?3) ON CONFLICT (sha256) DO NOTHING",
            &[
                hash.as_str().into(),
                bytes.to_vec().into(),
                chrono::Utc::now().to_rfc3339().into(),
            ],
        )?;
        self.write_blob(&hash, bytes)?;
        Ok((hash, ByteSize::new(bytes.len() as u64)?))
    }
}

/// The largest signature image kept: a signature PNG or its strokes are a few KiB.
const MAX_IMAGE: usize = 512 * 1024;

fn nonempty_reason(reason: &str) -> Result<String> {
    let r = reason.trim();
    if r.is_empty() {
        return Err(Error::invalid("reason", "a dispute and its answer need a reason"));
    }
    Ok(r.to_string())
}

/// The month (`YYYY-MM`) of days all in one month.
fn days_month(days: &[(NaiveDate, Vec<LineId>)]) -> Option<String> {
    days.first().map(|(d, _)| month_text(*d))
}

/// The first day of the month of `d` and the first of the next.
fn month_bounds(d: NaiveDate) -> (NaiveDate, NaiveDate) {
    let first = d.with_day(1).unwrap_or(d);
    (first, first.checked_add_months(chrono::Months::new(1)).unwrap_or(first))
}
