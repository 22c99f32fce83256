//! Sign-off on the foreman's phone, and what a site manager does on site (issue #19): a worker signs
//! his day or month with a signature image or a tap of consent, or disputes it; a dispute is
//! answered; a crew leader confirms his crew's day; where each worker stands; the days waiting for a
//! decision, and the decision itself, offline (the server checks the manager's role when it syncs).

use sitesync_core::ids::{CrewId, DocId, SiteId, WorkerId};
use sitesync_core::signoff::{DaySignoffs, MonthSheet, SignoffEvent, SignoffState, WorkerSignoff};
use sitesync_core::store::{Period, RowFilter};

use crate::{DaySheetRecord, DayStatusRecord, Result, SiteSync, SiteSyncError, date, month_start};

/// What a sign-off covers: one site-day, or a month (one record on each day of it with lines).
#[derive(Debug, Clone, uniffi::Enum)]
pub enum SignoffPeriod {
    /// One site-day.
    Day {
        /// `YYYY-MM-DD`.
        date: String,
    },
    /// A calendar month.
    Month {
        /// `YYYY-MM`.
        month: String,
    },
}

impl SignoffPeriod {
    fn read(&self) -> Result<Period> {
        Ok(match self {
            SignoffPeriod::Day { date: d } => Period::Day(date("date", d)?),
            SignoffPeriod::Month { month } => Period::Month(month_start(month)?),
        })
    }
}

/// Where one worker's day (or month) stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum SignoffStateRecord {
    /// He has lines and has neither signed nor disputed them.
    Unsigned,
    /// He signed and his lines are as he signed them.
    Signed,
    /// He signed and his lines changed since: he has to sign again.
    ChangedSinceSigned,
    /// He disputes his lines and no one has answered.
    Disputed,
}

impl From<SignoffState> for SignoffStateRecord {
    fn from(s: SignoffState) -> Self {
        match s {
            SignoffState::Unsigned => SignoffStateRecord::Unsigned,
            SignoffState::Signed => SignoffStateRecord::Signed,
            SignoffState::ChangedSinceSigned => SignoffStateRecord::ChangedSinceSigned,
            SignoffState::Disputed => SignoffStateRecord::Disputed,
        }
    }
}

/// One sign-off record.
#[derive(Debug, Clone, uniffi::Record)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct SignoffRecord {
    /// The record's id (a dispute's is what an answer names).
    pub id: String,
    /// signed, disputed, answered, crew_confirmed, advance_confirmed or advance_disputed.
    pub action: String,
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Who wrote it (the phone's user).
    pub by: String,
    pub worker: Option<String>,
    pub crew: Option<String>,
    /// The labor lines it covers.
    pub lines: Vec<String>,
    /// `YYYY-MM` for a month's confirmation.
    pub month: Option<String>,
    /// SHA-256 (hex) of the signature image; none for a tap of consent.
    pub image_sha256: Option<String>,
    /// The device it was taken on.
    pub device: String,
    /// When (RFC 3339, the device's clock).
    pub at: String,
    /// A dispute's or an answer's reason.
    pub reason: String,
    /// The dispute an answer answers.
    pub answers: Option<String>,
    /// The advance (`adv-…`) an advance's confirmation or dispute is about.
    pub advance: Option<String>,
}

impl From<&SignoffEvent> for SignoffRecord {
    fn from(e: &SignoffEvent) -> Self {
        SignoffRecord {
            id: e.id.clone(),
            action: e.action.as_str().into(),
            date: e.date.to_string(),
            by: e.by.clone(),
            worker: e.worker.as_ref().map(|w| w.to_string()),
            crew: e.crew.as_ref().map(|c| c.to_string()),
            lines: e.lines.iter().map(|l| l.to_string()).collect(),
            month: e.month.clone(),
            image_sha256: e.image.clone(),
            device: e.device.clone(),
            at: e.at.to_rfc3339(),
            reason: e.reason.clone(),
            answers: e.answers.clone(),
            advance: e.advance.clone(),
        }
    }
}

/// One difference in a worker's lines between the version he signed and now.
#[derive(Debug, Clone, uniffi::Record)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct SignoffChangeRecord {
    pub line: String,
    pub field: String,
    /// The value signed (none: the line did not exist).
    pub signed: Option<String>,
    /// The value now (none: the line is gone).
    pub now: Option<String>,
}

impl From<&sitesync_core::labor::Amendment> for SignoffChangeRecord {
    fn from(c: &sitesync_core::labor::Amendment) -> Self {
        SignoffChangeRecord {
            line: c.line.clone(),
            field: c.field.clone(),
            signed: c.approved.clone(),
            now: c.now.clone(),
        }
    }
}

/// One worker's sign-off of a day.
#[derive(Debug, Clone, uniffi::Record)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct WorkerSignoffRecord {
    pub worker: String,
    pub state: SignoffStateRecord,
    /// His last signature, kept through later edits.
    pub signature: Option<SignoffRecord>,
    /// What changed since he signed.
    pub changes: Vec<SignoffChangeRecord>,
    /// His disputes not yet answered.
    pub open_disputes: Vec<SignoffRecord>,
}

impl From<&WorkerSignoff> for WorkerSignoffRecord {
    fn from(w: &WorkerSignoff) -> Self {
        WorkerSignoffRecord {
            worker: w.worker.to_string(),
            state: w.state.into(),
            signature: w.signature.as_ref().map(Into::into),
            changes: w.changes.iter().map(SignoffChangeRecord::from).collect(),
            open_disputes: w.open_disputes.iter().map(Into::into).collect(),
        }
    }
}

/// A crew's confirmation of the day.
#[derive(Debug, Clone, uniffi::Record)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct CrewSignoffRecord {
    pub crew: String,
    pub confirmation: Option<SignoffRecord>,
}

/// A site-day's sign-off.
#[derive(Debug, Clone, uniffi::Record)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct DaySignoffsRecord {
    pub site: String,
    pub date: String,
    pub workers: Vec<WorkerSignoffRecord>,
    pub crews: Vec<CrewSignoffRecord>,
    /// Whether the site requires every crew's confirmation before the day is submitted.
    pub crew_confirmation_required: bool,
    /// Every sign-off record of the day, oldest first.
    pub records: Vec<SignoffRecord>,
}

impl From<&DaySignoffs> for DaySignoffsRecord {
    fn from(d: &DaySignoffs) -> Self {
        DaySignoffsRecord {
            site: d.site.to_string(),
            date: d.date.to_string(),
            workers: d.workers.iter().map(Into::into).collect(),
            crews: d
                .crews
                .iter()
                .map(|c| CrewSignoffRecord {
                    crew: c.crew.to_string(),
                    confirmation: c.confirmation.as_ref().map(Into::into),
                })
                .collect(),
            crew_confirmation_required: d.crew_confirmation_required,
            records: d.events.iter().map(Into::into).collect(),
        }
    }
}

/// One day of a worker's month.
#[derive(Debug, Clone, uniffi::Record)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct MonthDaySignoffRecord {
    pub date: String,
    pub state: SignoffStateRecord,
}

/// One worker's month on the sheet.
#[derive(Debug, Clone, uniffi::Record)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct MonthWorkerSignoffRecord {
    pub worker: String,
    /// The worst of his days: who still has to sign or re-sign.
    pub state: SignoffStateRecord,
    pub days: Vec<MonthDaySignoffRecord>,
}

/// A site's monthly attendance sheet.
#[derive(Debug, Clone, uniffi::Record)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct MonthSheetRecord {
    pub site: String,
    /// `YYYY-MM`.
    pub month: String,
    pub workers: Vec<MonthWorkerSignoffRecord>,
}

impl From<&MonthSheet> for MonthSheetRecord {
    fn from(m: &MonthSheet) -> Self {
        MonthSheetRecord {
            site: m.site.to_string(),
            month: m.month.clone(),
            workers: m
                .workers
                .iter()
                .map(|w| MonthWorkerSignoffRecord {
                    worker: w.worker.to_string(),
                    state: w.state.into(),
                    days: w
                        .days
                        .iter()
                        .map(|d| MonthDaySignoffRecord {
                            date: d.date.to_string(),
                            state: d.state.into(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

/// A day waiting for a manager's decision.
#[derive(Debug, Clone, uniffi::Record)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct ReviewQueueRecord {
    pub site: String,
    pub date: String,
    /// Submitted, or amended after approval.
    pub status: DayStatusRecord,
    /// Disputes of the day no one has answered: approving it is refused until they are.
    pub open_disputes: u32,
}

fn records(events: &[SignoffEvent]) -> Vec<SignoffRecord> {
    events.iter().map(Into::into).collect()
}

#[uniffi::export(async_runtime = "tokio")]
impl SiteSync {
    /// The worker signs his lines of the day or month on this phone: `image` is the signature (PNG
    /// or stroke data, kept on the phone by its SHA-256), none for a tap of consent. One record per
    /// day signed.
    pub async fn sign(
        &self,
        site: String,
        period: SignoffPeriod,
        worker: String,
        image: Option<Vec<u8>>,
    ) -> Result<Vec<SignoffRecord>> {
        self.write(move |s| {
            let events = s.sign_off(
                &SiteId::new(site)?,
                period.read()?,
                &WorkerId::new(worker)?,
                image.as_deref(),
            )?;
            Ok(records(&events))
        })
        .await
    }

    /// The worker disputes his lines of the day or month, with a reason: the day cannot be approved
    /// until the dispute is answered.
    pub async fn dispute(
        &self,
        site: String,
        period: SignoffPeriod,
        worker: String,
        reason: String,
    ) -> Result<Vec<SignoffRecord>> {
        self.write(move |s| {
            let events = s.dispute(&SiteId::new(site)?, period.read()?, &WorkerId::new(worker)?, &reason)?;
            Ok(records(&events))
        })
        .await
    }

    /// Answers the dispute `dispute` (its record id) of the day: what was corrected, or why the
    /// lines stand.
    pub async fn answer_dispute(
        &self,
        site: String,
        date_iso: String,
        dispute: String,
        reason: String,
    ) -> Result<SignoffRecord> {
        self.write(move |s| {
            let e = s.answer_dispute(&SiteId::new(site)?, date("date", &date_iso)?, &dispute, &reason)?;
            Ok((&e).into())
        })
        .await
    }

    /// The crew leader confirms his crew's day or month.
    pub async fn confirm_crew(&self, site: String, period: SignoffPeriod, crew: String) -> Result<Vec<SignoffRecord>> {
        self.write(move |s| {
            let events = s.confirm_crew(&SiteId::new(site)?, period.read()?, &CrewId::new(crew)?)?;
            Ok(records(&events))
        })
        .await
    }

    /// Where every worker and crew of the day stands, with the day's sign-off records.
    pub async fn day_signoffs(&self, site: String, date_iso: String) -> Result<DaySignoffsRecord> {
        self.with_store(move |s| Ok((&s.day_signoffs(&SiteId::new(site)?, date("date", &date_iso)?)?).into()))
            .await
    }

    /// The site's sheet for the month (`YYYY-MM`): who still has to sign or re-sign.
    pub async fn month_signoffs(&self, site: String, month: String) -> Result<MonthSheetRecord> {
        self.with_store(move |s| Ok((&s.month_signoffs(&SiteId::new(site)?, month_start(&month)?)?).into()))
            .await
    }

    /// The days of `site` in this phone's copy waiting for a manager's decision, with their open
    /// disputes, oldest first.
    pub async fn review_queue(&self, site: String) -> Result<Vec<ReviewQueueRecord>> {
        self.with_store(move |s| {
            let site = SiteId::new(site)?;
            let filter = RowFilter {
                sites: Some(vec![site.to_string()]),
                ..RowFilter::default()
            };
            let days: Vec<_> = s
                .day_rows(&filter)?
                .into_iter()
                .filter(|d| d.status.awaits_review())
                .collect();
            days.into_iter()
                .map(|d| {
                    let open = s.day_signoffs(&site, d.date)?.open_disputes().count();
                    Ok(ReviewQueueRecord {
                        site: d.site,
                        date: d.date.to_string(),
                        status: d.status.into(),
                        open_disputes: u32::try_from(open).unwrap_or(u32::MAX),
                    })
                })
                .collect()
        })
        .await
    }

    /// Approves a submitted day on this phone, offline (a site manager's; the server checks the
    /// role when it syncs). Refused with [`SiteSyncError::DisputeOpen`] while a dispute is open.
    /// Refused with [`SiteSyncError::OpenConflicts`] while fields of the day hold competing values
    /// (as head office's approval and the CLI's are): the manager looks at them
    /// ([`SiteSync::open_conflicts`]) and confirms with [`SiteSync::approve_day_despite_conflicts`].
    pub async fn approve_day(&self, site: String, date_iso: String) -> Result<DaySheetRecord> {
        self.approve(site, date_iso, false).await
    }

    /// Approves a submitted day although fields of it hold competing values: the manager has seen
    /// them ([`SiteSync::open_conflicts`]) and accepts the values shown.
    pub async fn approve_day_despite_conflicts(&self, site: String, date_iso: String) -> Result<DaySheetRecord> {
        self.approve(site, date_iso, true).await
    }

    /// The fields of a site-day that phones wrote differently offline, each distinct value once with
    /// the change that wrote it, the value shown first; empty when there is nothing to choose.
    pub async fn open_conflicts(&self, site: String, date_iso: String) -> Result<Vec<OpenConflictRecord>> {
        self.with_store(move |s| {
            let id = DocId::Day(SiteId::new(site)?, date("date", &date_iso)?);
            Ok(s.open_conflicts(&id)?
                .into_iter()
                .map(OpenConflictRecord::from)
                .collect())
        })
        .await
    }

    /// Sends a submitted day back with a reason, offline.
    pub async fn reject_day(&self, site: String, date_iso: String, reason: String) -> Result<DaySheetRecord> {
        self.write(move |s| Ok((&s.reject_day(&SiteId::new(site)?, date("date", &date_iso)?, &reason)?).into()))
            .await
    }
}

impl SiteSync {
    async fn approve(&self, site: String, date_iso: String, despite_conflicts: bool) -> Result<DaySheetRecord> {
        self.write(move |s| {
            let (site, day) = (SiteId::new(site)?, date("date", &date_iso)?);
            let open = s.open_conflicts(&DocId::Day(site.clone(), day))?.len();
            if open > 0 && !despite_conflicts {
                return Err(SiteSyncError::OpenConflicts {
                    count: u32::try_from(open).unwrap_or(u32::MAX),
                });
            }
            Ok((&s.approve_day(&site, day)?).into())
        })
        .await
    }
}

/// One field of a day that holds competing values.
#[derive(Debug, Clone, uniffi::Record)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct OpenConflictRecord {
    /// The day document's table (`labor`, `progress` …) and record id.
    pub table: String,
    pub record: String,
    pub field: String,
    /// Each distinct value, the one shown first.
    pub values: Vec<OpenConflictValueRecord>,
}

/// A competing value and the change that wrote it.
#[derive(Debug, Clone, uniffi::Record)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct OpenConflictValueRecord {
    /// As written (text in quotes, numbers in the field's unit).
    pub value: String,
    pub change_hash: String,
}

impl From<sitesync_core::store::FieldValues> for OpenConflictRecord {
    fn from(f: sitesync_core::store::FieldValues) -> Self {
        OpenConflictRecord {
            table: f.table,
            record: f.record,
            field: f.field,
            values: f
                .values
                .into_iter()
                .map(|(v, hash)| OpenConflictValueRecord {
                    value: v.to_string(),
                    change_hash: hash,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SiteSyncError, runtime};

    /// A day two phones wrote differently offline: `approve_day` refuses it with a typed error, the
    /// app lists the competing values, and the manager's confirmation approves it.
    #[test]
    fn a_day_with_open_conflicts_is_approved_only_once_confirmed() {
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/small");
        runtime().block_on(async {
            let (site, day) = ("site-hz-01".to_string(), "2026-10-20".to_string());
            let mut phones = Vec::new();
            for (dir, work_days_centi) in dirs.iter().zip([100, 50]) {
                let path = dir.path().join("phone.sqlite3").display().to_string();
                let phone = SiteSync::open(path, None, None, Some("陈经理".into()), None)
                    .await
                    .unwrap();
                let fixture = fixture.clone();
                phone
                    .with_store(move |s| Ok(s.import_dir(&fixture).map(|_| ())?))
                    .await
                    .unwrap();
                phone
                    .add_labor(
                        crate::LaborInput {
                            site: site.clone(),
                            date: day.clone(),
                            worker: "w-0001".into(),
                            work_item: "site-hz-01/wi-4.1".into(),
                            work_days_centi,
                            hours_min: None,
                            overtime_min: 0,
                            kind: crate::LaborKindRecord::DayLabor,
                            rate_fen: None,
                            note: String::new(),
                        },
                        None,
                    )
                    .await
                    .unwrap();
                phones.push(phone);
            }
            let id: DocId = format!("day|{site}|{day}").parse().unwrap();
            let (b, a) = (phones.pop().unwrap(), phones.pop().unwrap());
            let theirs = {
                let id = id.clone();
                b.with_store(move |s| Ok(s.export_changes(&id, &[])?.unwrap()))
                    .await
                    .unwrap()
            };
            a.with_store(move |s| Ok(s.merge_changes(&id, &theirs).map(|_| ())?))
                .await
                .unwrap();
            assert!(b.open_conflicts(site.clone(), day.clone()).await.unwrap().is_empty());
            a.submit_day(site.clone(), day.clone()).await.unwrap();

            let refused = a.approve_day(site.clone(), day.clone()).await;
            let Err(SiteSyncError::OpenConflicts { count }) = refused else {
                panic!("approved over open conflicts: {refused:?}");
            };
            let open = a.open_conflicts(site.clone(), day.clone()).await.unwrap();
            assert_eq!(open.len(), usize::try_from(count).unwrap());
            let days = open
                .iter()
                .find(|c| c.field == "work_days_centi")
                .expect("work-days contested");
            let mut values: Vec<&str> = days.values.iter().map(|v| v.value.as_str()).collect();
            values.sort_unstable();
            assert_eq!(values, ["100", "50"]);
            assert!(days.values.iter().all(|v| v.change_hash.len() == 64));
            assert_eq!(a.review_queue(site.clone()).await.unwrap().len(), 1, "still waiting");

            let approved = a
                .approve_day_despite_conflicts(site.clone(), day.clone())
                .await
                .unwrap();
            assert_eq!(approved.status, DayStatusRecord::Approved);
        });
    }

    /// The calls an app makes on site, against the small company's first day: a signature, a
    /// dispute that blocks approval with a typed error naming it, the answer, the approval.
    #[test]
    fn sign_dispute_answer_and_approve_through_the_bindings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("phone.sqlite3").display().to_string();
        let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/small");
        runtime().block_on(async {
            let phone = SiteSync::open(path, None, None, Some("崔贵".into()), None)
                .await
                .unwrap();
            phone
                .with_store(move |s| Ok(s.import_dir(&fixture).map(|_| ())?))
                .await
                .unwrap();
            let (site, day) = ("site-hz-01".to_string(), "2026-09-01".to_string());
            let on_day = || SignoffPeriod::Day { date: day.clone() };
            let signed = phone
                .sign(site.clone(), on_day(), "w-0001".into(), Some(b"strokes".to_vec()))
                .await
                .unwrap();
            assert_eq!(signed.len(), 1);
            assert_eq!(signed[0].image_sha256.as_ref().map(String::len), Some(64));
            let bad = phone
                .sign(
                    site.clone(),
                    SignoffPeriod::Month { month: "2026-9".into() },
                    "w-0001".into(),
                    None,
                )
                .await;
            assert!(
                matches!(bad, Err(SiteSyncError::Validation { ref field, .. }) if field == "month"),
                "{bad:?}"
            );
            let nothing = phone
                .sign(
                    site.clone(),
                    SignoffPeriod::Month {
                        month: "2030-01".into(),
                    },
                    "w-0001".into(),
                    None,
                )
                .await;
            assert!(matches!(nothing, Err(SiteSyncError::Validation { .. })), "{nothing:?}");

            let dispute = phone
                .dispute(site.clone(), on_day(), "w-0003".into(), "只干了半天".into())
                .await
                .unwrap()
                .remove(0);
            phone.submit_day(site.clone(), day.clone()).await.unwrap();
            let queue = phone.review_queue(site.clone()).await.unwrap();
            let waiting = queue.iter().find(|q| q.date == day).unwrap();
            assert_eq!((waiting.status, waiting.open_disputes), (DayStatusRecord::Submitted, 1));
            match phone.approve_day(site.clone(), day.clone()).await {
                Err(SiteSyncError::DisputeOpen { dispute: id }) => assert_eq!(id, dispute.id),
                other => panic!("expected DisputeOpen, got {other:?}"),
            }
            let states = phone.day_signoffs(site.clone(), day.clone()).await.unwrap();
            let state = |w: &str| states.workers.iter().find(|x| x.worker == w).unwrap().state;
            assert_eq!(state("w-0001"), SignoffStateRecord::Signed);
            assert_eq!(state("w-0003"), SignoffStateRecord::Disputed);
            phone
                .answer_dispute(site.clone(), day.clone(), dispute.id.clone(), "已核对".into())
                .await
                .unwrap();
            let sheet = phone.approve_day(site.clone(), day.clone()).await.unwrap();
            assert_eq!(sheet.status, DayStatusRecord::Approved);
            let month = phone.month_signoffs(site, "2026-09".into()).await.unwrap();
            assert!(month.workers.iter().all(|w| w.state == SignoffStateRecord::Unsigned));
        });
    }
}
