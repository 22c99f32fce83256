//! Writing the day: labor and progress lines, crew-day copies, weather and notes, delays, and the
//! submit / approve / reject / amend trail. Every call validates first and writes nothing on error.
//!
//! Why one file: every write of the day passes the same lock and amendment checks (`check_unlocked`,
//! `change_day`); split by record kind, those checks would be spread over five files.

use chrono::NaiveDate;
use serde::Serialize;

use super::Store;
use crate::doc::{day, site};
use crate::error::{Error, Result};
use crate::ids::{CrewId, DocId, LineId, SiteId, WorkItemId, WorkerId};
use crate::labor::{
    Amendment, DaySheet, DayStatus, Delay, LaborEntry, LaborKind, LaborLine, LaborPatch, ProgressLine, ReviewAction,
};
use crate::roster::{Roster, Site};
use crate::units::{Minutes, Quantity, WorkDays};
use crate::validate;

/// What a crew-day copy did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CrewCopy {
    /// The lines created on the target date.
    pub created: Vec<LineId>,
    /// Workers not copied because they already had a line that day or are no longer active.
    pub skipped: Vec<WorkerId>,
}

/// Hours assumed for a line entered without hours: 8 per work-day.
fn default_hours(work_days: WorkDays) -> Minutes {
    Minutes::from_min("hours", (work_days.centi() * 480 / 100).min(Minutes::DAY.minutes())).unwrap_or(Minutes::DAY)
}

/// The patch to write: one that changes work-days alone, on a line whose hours are still the default
/// for its work-days, moves the hours to the new default too (1.00 → 0.50 work-days: 8 h → 4 h), so a
/// crew never reads 188 work-days against 1,508 hours. Hours a person set by hand stay as they are.
fn hours_follow_work_days(line: &LaborLine, patch: &LaborPatch) -> LaborPatch {
    let mut patch = patch.clone();
    if let Some(work_days) = patch.work_days
        && patch.hours.is_none()
        && line.hours == default_hours(line.work_days)
    {
        patch.hours = Some(default_hours(work_days));
    }
    patch
}

impl Store {
    /// The master data of a site.
    pub fn roster(&mut self, site: &SiteId) -> Result<Roster> {
        self.read_doc(&DocId::Site(site.clone()), site::read)?
            .flatten()
            .ok_or_else(|| Error::UnknownSite(site.to_string()))
    }

    /// Creates or updates a site's master data (only what differs is written), refusing rates,
    /// budgets and plans out of bounds (see [`crate::validate::roster`]). Account numbers typed
    /// in are sealed with the store's org key ([`Store::org_pii_key`]); without one, a roster
    /// holding a new number is [`crate::Error::PiiKeyMissing`].
    pub fn put_roster(&mut self, roster: &Roster) -> Result<()> {
        let key = self.org_pii_key()?;
        self.put_roster_sealed(roster, key.as_ref())
    }

    /// [`Store::put_roster`] with the org's key given: what the server does for the org it imports
    /// (its document store serves many orgs, so holds no one key).
    pub fn put_roster_sealed(&mut self, roster: &Roster, key: Option<&crate::pii::OrgPiiKey>) -> Result<()> {
        validate::roster(&roster.site.id, roster)?;
        self.change(&DocId::Site(roster.site.id.clone()), |tx| {
            site::put_roster(tx, roster, key)
        })
    }

    /// Every site in the store: [`super::queries::sites`] on this store.
    pub fn sites(&self) -> Result<Vec<Site>> {
        super::queries::sites(self.db())
    }

    /// Today's date at a site, in the site's own time zone.
    pub fn today(&mut self, site: &SiteId) -> Result<NaiveDate> {
        let tz: chrono_tz::Tz = self
            .roster(site)?
            .site
            .timezone
            .parse()
            .unwrap_or(chrono_tz::Asia::Shanghai);
        Ok(chrono::Utc::now().with_timezone(&tz).date_naive())
    }

    /// The day's content as stored now (empty if never written).
    pub(crate) fn day_content(&mut self, site: &SiteId, date: NaiveDate) -> Result<(day::DayContent, DayStatus)> {
        let found = self.read_doc(&DocId::Day(site.clone(), date), |doc| {
            let c = day::read(doc, None)?;
            let s = day::status(doc, &c)?;
            Ok((c, s))
        })?;
        Ok(found.unwrap_or_else(|| {
            (
                day::DayContent {
                    weather: String::new(),
                    note: String::new(),
                    info_conflicts: Vec::new(),
                    labor: Default::default(),
                    progress: Default::default(),
                    delays: Vec::new(),
                    reviews: Vec::new(),
                    flagged: Vec::new(),
                    attachments: Vec::new(),
                },
                DayStatus::Draft,
            )
        }))
    }

    /// Refuses to change an approved day unless the change is an amendment with a reason.
    pub(super) fn check_unlocked(
        site: &SiteId,
        date: NaiveDate,
        status: DayStatus,
        amend: Option<&str>,
    ) -> Result<Option<String>> {
        match status {
            DayStatus::Approved | DayStatus::AmendedAfterApproval => match amend.map(str::trim) {
                Some(reason) if !reason.is_empty() => Ok(Some(reason.to_string())),
                _ => Err(Error::DayLocked {
                    site: site.to_string(),
                    date,
                }),
            },
            _ => Ok(amend.map(str::trim).filter(|r| !r.is_empty()).map(str::to_string)),
        }
    }

    /// Writes `f` to the day's document, adding an `amended` review event when `amend` is set.
    pub(super) fn change_day<T>(
        &mut self,
        site: &SiteId,
        date: NaiveDate,
        amend: Option<String>,
        f: impl FnOnce(&mut automerge::transaction::Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        let id = DocId::Day(site.clone(), date);
        let user = self.user.clone();
        let event = match amend {
            Some(reason) => self.read_doc(&id, |doc| {
                Ok(day::review_event(doc, ReviewAction::Amended, &user, &reason))
            })?,
            None => None,
        };
        self.change(&id, |tx| {
            let out = f(tx)?;
            if let Some(e) = &event {
                day::put_review(tx, e)?;
            }
            Ok(out)
        })
    }

    /// Checks a worker's whole day (all their lines, this one replacing `id`) stays within 24 hours
    /// and 3 work-days.
    fn check_worker_day(content: &day::DayContent, line: &LaborLine) -> Result<()> {
        let others = content
            .labor
            .values()
            .filter(|l| !l.deleted && l.worker == line.worker && l.id != line.id);
        let (mut minutes, mut centi) = (line.hours.minutes() + line.overtime.minutes(), line.work_days.centi());
        for l in others {
            minutes += l.hours.minutes() + l.overtime.minutes();
            centi += l.work_days.centi();
        }
        if minutes > Minutes::DAY.minutes() {
            return Err(Error::invalid(
                "hours",
                format!(
                    "{} would work {:.1} hours that day, more than 24",
                    line.worker,
                    minutes as f64 / 60.0
                ),
            ));
        }
        if centi > WorkDays::MAX.centi() {
            return Err(Error::invalid(
                "work_days",
                format!("{} would have more than 3 work-days that day", line.worker),
            ));
        }
        Ok(())
    }

    /// Logs one worker on one work item for one day and returns the line as stored. On an approved
    /// day `amend` must give the reason for the correction.
    pub fn add_labor(&mut self, e: &LaborEntry, amend: Option<&str>) -> Result<LaborLine> {
        let roster = self.roster(&e.site)?;
        let worker = roster.worker(&e.worker).ok_or_else(|| Error::UnknownWorker {
            site: e.site.to_string(),
            worker: e.worker.to_string(),
        })?;
        if !worker.active {
            return Err(Error::InactiveWorker(e.worker.to_string()));
        }
        if roster.work_item(&e.work_item).is_none() {
            return Err(Error::UnknownWorkItem {
                site: e.site.to_string(),
                work_item: e.work_item.to_string(),
            });
        }
        let line = LaborLine {
            id: LineId::labor(&e.site, e.date, &e.worker, &e.work_item),
            worker: e.worker.clone(),
            work_item: e.work_item.clone(),
            work_days: e.work_days,
            hours: e.hours.unwrap_or_else(|| default_hours(e.work_days)),
            overtime: e.overtime,
            kind: e.kind,
            // The rates in force on the line's date, unless the foreman gives the day rate.
            day_rate: e.day_rate.unwrap_or(roster.rate_on(&e.worker, e.date).0),
            overtime_rate: roster.rate_on(&e.worker, e.date).1,
            note: e.note.clone(),
            entered_by: self.user.clone(),
            deleted: false,
            conflicts: Vec::new(),
        };
        validate::labor_line(&e.site, e.date, &line, &roster)?;
        let (content, status) = self.day_content(&e.site, e.date)?;
        if let Some(existing) = content.labor.get(line.id.as_str()).filter(|l| !l.deleted) {
            return Err(Error::DuplicateLine {
                line: existing.id.to_string(),
                worker: e.worker.to_string(),
                work_item: e.work_item.to_string(),
            });
        }
        Self::check_worker_day(&content, &line)?;
        let amend = Self::check_unlocked(&e.site, e.date, status, amend)?;
        self.change_day(&e.site, e.date, amend, |tx| day::put_labor(tx, &line))?;
        Ok(line)
    }

    /// Where a line lives: its site and date, from the projection. Two documents may hold a line
    /// under the same id (rows are keyed by document); a line's id is derived from its site and
    /// date, so its own document is the one whose site and date derive it.
    fn locate(&self, id: &LineId) -> Result<(SiteId, NaiveDate)> {
        let sql = if id.is_progress() {
            "SELECT site_id, day, '', work_item_id FROM progress_lines WHERE line_id = ?1 ORDER BY doc_id"
        } else {
            "SELECT site_id, day, worker_id, work_item_id FROM labor_lines WHERE line_id = ?1 ORDER BY doc_id"
        };
        for row in self.db().query(sql, &[id.as_str().into()])? {
            let (site, date, worker, item) = (row.text(0)?, row.text(1)?, row.text(2)?, row.text(3)?);
            let (Ok(site), Ok(date), Ok(item)) =
                (SiteId::new(site), crate::ids::parse_date(&date), WorkItemId::new(item))
            else {
                continue;
            };
            let derived = if id.is_progress() {
                LineId::progress(&site, date, &item)
            } else {
                match WorkerId::new(worker) {
                    Ok(w) => LineId::labor(&site, date, &w, &item),
                    Err(_) => continue,
                }
            };
            if &derived == id {
                return Ok((site, date));
            }
        }
        Err(Error::UnknownLine(id.to_string()))
    }

    /// One labor line with its site and date.
    pub fn labor_line(&mut self, id: &LineId) -> Result<(SiteId, NaiveDate, LaborLine)> {
        let (site, date) = self.locate(id)?;
        let (content, _) = self.day_content(&site, date)?;
        let line = content
            .labor
            .get(id.as_str())
            .cloned()
            .ok_or_else(|| Error::UnknownLine(id.to_string()))?;
        Ok((site, date, line))
    }

    /// Edits a labor line. On an approved day `amend` must give the reason for the correction.
    pub fn edit_labor(&mut self, id: &LineId, patch: &LaborPatch, amend: Option<&str>) -> Result<LaborLine> {
        let (site, date, mut line) = self.labor_line(id)?;
        // A line deleted on one phone while edited on another shows with a conflict on `deleted`;
        // editing it is how a person resolves that (the edit writes `deleted = false`).
        if line.deleted && !day::shown(line.deleted, &line.conflicts) {
            return Err(Error::LineDeleted(id.to_string()));
        }
        let patch = &hours_follow_work_days(&line, patch);
        if let Some(v) = patch.work_days {
            line.work_days = v;
        }
        if let Some(v) = patch.hours {
            line.hours = v;
        }
        if let Some(v) = patch.overtime {
            line.overtime = v;
        }
        if let Some(v) = patch.kind {
            line.kind = v;
        }
        if let Some(v) = patch.day_rate {
            line.day_rate = v;
        }
        if let Some(v) = &patch.note {
            line.note = v.clone();
        }
        validate::labor_line(&site, date, &line, &self.roster(&site)?)?;
        let (content, status) = self.day_content(&site, date)?;
        Self::check_worker_day(&content, &line)?;
        let amend = Self::check_unlocked(&site, date, status, amend)?;
        self.change_day(&site, date, amend, |tx| day::patch_labor(tx, id, patch))?;
        Ok(self.labor_line(id)?.2)
    }

    /// Deletes a labor line (a tombstone stays, so an offline edit cannot silently bring it back).
    pub fn delete_labor(&mut self, id: &LineId, amend: Option<&str>) -> Result<()> {
        let (site, date, mut line) = self.labor_line(id)?;
        if !day::shown(line.deleted, &line.conflicts) {
            return Err(Error::LineDeleted(id.to_string()));
        }
        let (_, status) = self.day_content(&site, date)?;
        let amend = Self::check_unlocked(&site, date, status, amend)?;
        line.deleted = true;
        self.change_day(&site, date, amend, |tx| day::put_labor(tx, &line))
    }

    /// Logs a crew for `to` like it was logged on `from`, in one call and one change: same work items,
    /// work-days, hours and overtime; today's roster rates; notes left empty. Workers who already have
    /// a line on `to`, or are no longer active or no longer in the crew, are skipped.
    pub fn copy_crew_day(&mut self, site: &SiteId, crew: &CrewId, from: NaiveDate, to: NaiveDate) -> Result<CrewCopy> {
        let roster = self.roster(site)?;
        if roster.crew(crew).is_none() {
            return Err(Error::UnknownCrew {
                site: site.to_string(),
                crew: crew.to_string(),
            });
        }
        if from == to {
            return Err(Error::invalid("to", "the target date must differ from the source date"));
        }
        let (source, _) = self.day_content(site, from)?;
        let (mut target, status) = self.day_content(site, to)?;
        let amend = Self::check_unlocked(site, to, status, None)?;
        let mut copy = CrewCopy {
            created: Vec::new(),
            skipped: Vec::new(),
        };
        let mut lines = Vec::new();
        for l in source.labor.values().filter(|l| !l.deleted) {
            let Some(worker) = roster.worker(&l.worker).filter(|w| &w.crew == crew) else {
                continue;
            };
            let busy = target
                .labor
                .values()
                .any(|t| !t.deleted && t.worker == l.worker && !lines.iter().any(|n: &LaborLine| n.id == t.id));
            if !worker.active || busy || roster.work_item(&l.work_item).is_none() {
                if !copy.skipped.contains(&l.worker) {
                    copy.skipped.push(l.worker.clone());
                }
                continue;
            }
            let line = LaborLine {
                id: LineId::labor(site, to, &l.worker, &l.work_item),
                worker: l.worker.clone(),
                work_item: l.work_item.clone(),
                work_days: l.work_days,
                hours: l.hours,
                overtime: l.overtime,
                kind: l.kind,
                day_rate: roster.rate_on(&worker.id, to).0,
                overtime_rate: roster.rate_on(&worker.id, to).1,
                note: String::new(),
                entered_by: self.user.clone(),
                deleted: false,
                conflicts: Vec::new(),
            };
            validate::labor_line(site, to, &line, &roster)?;
            target.labor.insert(line.id.to_string(), line.clone());
            copy.created.push(line.id.clone());
            lines.push(line);
        }
        if !lines.is_empty() {
            self.change_day(site, to, amend, |tx| {
                lines.iter().try_for_each(|l| day::put_labor(tx, l))
            })?;
        }
        Ok(copy)
    }

    /// Records the quantity installed on a work item that day (one progress line per item per day;
    /// setting it again replaces the figure).
    pub fn set_progress(
        &mut self,
        site: &SiteId,
        date: NaiveDate,
        work_item: &WorkItemId,
        quantity: Quantity,
        note: &str,
        amend: Option<&str>,
    ) -> Result<ProgressLine> {
        let roster = self.roster(site)?;
        if roster.work_item(work_item).is_none() {
            return Err(Error::UnknownWorkItem {
                site: site.to_string(),
                work_item: work_item.to_string(),
            });
        }
        let (_, status) = self.day_content(site, date)?;
        let amend = Self::check_unlocked(site, date, status, amend)?;
        let line = ProgressLine {
            id: LineId::progress(site, date, work_item),
            work_item: work_item.clone(),
            quantity,
            note: note.to_string(),
            entered_by: self.user.clone(),
            deleted: false,
            conflicts: Vec::new(),
        };
        validate::progress_line(site, date, &line, &roster)?;
        self.change_day(site, date, amend, |tx| day::put_progress(tx, &line))?;
        Ok(line)
    }

    /// Deletes a progress line.
    pub fn delete_progress(&mut self, id: &LineId, amend: Option<&str>) -> Result<()> {
        let (site, date) = self.locate(id)?;
        let (content, status) = self.day_content(&site, date)?;
        let mut line = content
            .progress
            .get(id.as_str())
            .cloned()
            .ok_or_else(|| Error::UnknownLine(id.to_string()))?;
        if line.deleted {
            return Err(Error::LineDeleted(id.to_string()));
        }
        let amend = Self::check_unlocked(&site, date, status, amend)?;
        line.deleted = true;
        self.change_day(&site, date, amend, |tx| day::put_progress(tx, &line))
    }

    /// Sets the day's weather and/or note.
    pub fn set_day_info(
        &mut self,
        site: &SiteId,
        date: NaiveDate,
        weather: Option<&str>,
        note: Option<&str>,
        amend: Option<&str>,
    ) -> Result<()> {
        self.roster(site)?;
        validate::day_date(date)?;
        let (_, status) = self.day_content(site, date)?;
        let amend = Self::check_unlocked(site, date, status, amend)?;
        self.change_day(site, date, amend, |tx| day::put_info(tx, weather, note))
    }

    /// Records a delay or blocker; returns its id. On an approved day `amend` must give the reason.
    pub fn add_delay(
        &mut self,
        site: &SiteId,
        date: NaiveDate,
        text: &str,
        work_item: Option<&WorkItemId>,
        amend: Option<&str>,
    ) -> Result<String> {
        let roster = self.roster(site)?;
        if text.trim().is_empty() {
            return Err(Error::invalid("text", "say what held the work up"));
        }
        if let Some(wi) = work_item
            && roster.work_item(wi).is_none()
        {
            return Err(Error::UnknownWorkItem {
                site: site.to_string(),
                work_item: wi.to_string(),
            });
        }
        let (_, status) = self.day_content(site, date)?;
        let amend = Self::check_unlocked(site, date, status, amend)?;
        let delay = Delay {
            id: uuid::Uuid::new_v4().simple().to_string(),
            text: text.trim().to_string(),
            work_item: work_item.cloned(),
            entered_by: self.user.clone(),
        };
        validate::day_date(date)?;
        validate::delay(site, &delay, &roster)?;
        self.change_day(site, date, amend, |tx| day::put_delay(tx, &delay))?;
        Ok(delay.id)
    }

    /// Records a review action by `by` (a manager acting through the server), pinning the document
    /// version it saw.
    pub fn review_as(
        &mut self,
        site: &SiteId,
        date: NaiveDate,
        action: ReviewAction,
        reason: &str,
        by: &str,
    ) -> Result<DaySheet> {
        let user = std::mem::replace(&mut self.user, by.to_string());
        let out = self.review(site, date, action, reason);
        self.user = user;
        out
    }

    /// Records a review action, pinning the document version it saw.
    fn review(&mut self, site: &SiteId, date: NaiveDate, action: ReviewAction, reason: &str) -> Result<DaySheet> {
        self.roster(site)?;
        let (_, status) = self.day_content(site, date)?;
        let allowed = match action {
            ReviewAction::Submitted => matches!(status, DayStatus::Draft | DayStatus::Rejected | DayStatus::Submitted),
            ReviewAction::Approved => matches!(status, DayStatus::Submitted | DayStatus::AmendedAfterApproval),
            ReviewAction::Rejected => matches!(status, DayStatus::Submitted | DayStatus::AmendedAfterApproval),
            ReviewAction::Amended => false,
        };
        if !allowed {
            return Err(Error::InvalidTransition(format!(
                "cannot mark a {status:?} day as {}",
                action.as_str()
            )));
        }
        match action {
            ReviewAction::Approved => self.check_no_open_dispute(site, date)?,
            ReviewAction::Submitted => self.check_crews_confirmed(site, date)?,
            _ => {}
        }
        if action == ReviewAction::Rejected && reason.trim().is_empty() {
            return Err(Error::invalid("reason", "a rejection needs a reason"));
        }
        let id = DocId::Day(site.clone(), date);
        let user = self.user.clone();
        let event = self
            .read_doc(&id, |doc| Ok(day::review_event(doc, action, &user, reason.trim())))?
            .ok_or_else(|| Error::InvalidTransition("nothing has been logged that day".into()))?;
        self.change(&id, |tx| day::put_review(tx, &event))?;
        self.day(site, date)
    }

    /// The foreman submits the day for approval.
    pub fn submit_day(&mut self, site: &SiteId, date: NaiveDate) -> Result<DaySheet> {
        self.review(site, date, ReviewAction::Submitted, "")
    }

    /// A manager approves the day as it is now; the exact version is pinned.
    pub fn approve_day(&mut self, site: &SiteId, date: NaiveDate) -> Result<DaySheet> {
        self.review(site, date, ReviewAction::Approved, "")
    }

    /// A manager sends the day back with a reason.
    pub fn reject_day(&mut self, site: &SiteId, date: NaiveDate, reason: &str) -> Result<DaySheet> {
        self.review(site, date, ReviewAction::Rejected, reason)
    }

    /// Today's sheet: the site-day with its lines, status and review trail.
    pub fn day(&mut self, site: &SiteId, date: NaiveDate) -> Result<DaySheet> {
        self.roster(site)?;
        let (c, status) = self.day_content(site, date)?;
        let mut labor: Vec<LaborLine> = c
            .labor
            .into_values()
            .filter(|l| day::shown(l.deleted, &l.conflicts))
            .collect();
        labor.sort_by(|a, b| (&a.worker, &a.work_item).cmp(&(&b.worker, &b.work_item)));
        let mut progress: Vec<ProgressLine> = c
            .progress
            .into_values()
            .filter(|l| day::shown(l.deleted, &l.conflicts))
            .collect();
        progress.sort_by(|a, b| a.work_item.cmp(&b.work_item));
        Ok(DaySheet {
            site: site.clone(),
            date,
            status,
            weather: c.weather,
            note: c.note,
            conflicts: c.info_conflicts,
            labor,
            progress,
            delays: c.delays,
            reviews: c.reviews,
        })
    }

    /// What changed since the day's last approval (empty if unchanged or never approved).
    pub fn amendments(&mut self, site: &SiteId, date: NaiveDate) -> Result<Vec<Amendment>> {
        Ok(self
            .read_doc(&DocId::Day(site.clone(), date), |doc| {
                let c = day::read(doc, None)?;
                day::amendments(doc, &c)
            })?
            .unwrap_or_default())
    }
}

/// Builds a [`LaborEntry`] with the common defaults: day labor, no overtime, roster rate, no note.
pub fn entry(
    site: SiteId,
    date: NaiveDate,
    worker: WorkerId,
    work_item: WorkItemId,
    work_days: WorkDays,
) -> LaborEntry {
    LaborEntry {
        site,
        date,
        worker,
        work_item,
        work_days,
        hours: None,
        overtime: Minutes::default(),
        kind: LaborKind::DayLabor,
        day_rate: None,
        note: String::new(),
    }
}
