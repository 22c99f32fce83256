//! 施工日志: one site-day as it is printed, with every label resolved. The store fills it
//! ([`crate::Store::daily_log`]); the PDF renderer (`report::pdf`, feature `pdf`), the server's
//! `GET /v1/reports/daily-log` and the CLI's `daily-log` only lay it out.
//!
//! The sign-off section is read from [`Store::day_signoffs`] (every worker with lines and every crew
//! that worked, signed or not, so the page shows who is missing), the attachments from
//! [`Store::attachments`] with a thumbnail for each image whose bytes this store holds.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::error::Result;
use crate::ids::SiteId;
use crate::labor::ReviewAction;
use crate::report::{Sums, WorkItemProgress};
use crate::roster::Roster;
use crate::signoff::{SignoffAction, SignoffState};
use crate::store::Store;

/// One site-day, ready to print.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DailyLog {
    /// The site's id.
    pub site: String,
    /// The site's short code (HZ-01).
    pub site_code: String,
    /// The site's name (工程名称).
    pub site_name: String,
    /// The calendar date of the site.
    pub date: NaiveDate,
    /// Where the day stands in review: `draft`, `submitted`, `approved`, `rejected` or
    /// `amended_after_approval` (the lines below are the day now, not as approved).
    pub status: String,
    /// Weather as the foreman wrote it; empty when not recorded.
    pub weather: String,
    /// The day's note.
    pub note: String,
    /// Crews that worked that day, by crew id: headcount and sums.
    pub crews: Vec<CrewDay>,
    /// Labor lines ordered by crew, worker, then work item.
    pub labor: Vec<LaborRow>,
    /// Sums over every labor line of the day.
    pub total: Sums,
    /// Distinct workers with a line that day.
    pub headcount: i64,
    /// Work items with progress or labor that day, by WBS code, against their plan.
    pub progress: Vec<ProgressRow>,
    /// Delays and blockers.
    pub delays: Vec<DelayRow>,
    /// The review trail, in causal order.
    pub reviews: Vec<ReviewRow>,
    /// The latest approval, if the day was ever approved.
    pub approval: Option<ReviewRow>,
    /// Each worker with lines (by worker id), then each crew that worked (by crew id): where their
    /// sign-off stands, signed or not.
    pub sign_offs: Vec<SignOffRow>,
    /// Photos and files attached to the day, in the order they were added.
    pub attachments: Vec<AttachmentRow>,
}

/// One crew's day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CrewDay {
    /// The crew's id; empty for workers no longer on a crew of the roster.
    pub crew: String,
    /// The crew's name (班组).
    pub name: String,
    /// The crew leader's name (班组长).
    pub leader: String,
    /// Distinct workers of the crew with a line that day.
    pub headcount: i64,
    /// The crew's sums.
    #[serde(flatten)]
    pub sums: Sums,
}

/// One labor line as printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LaborRow {
    /// The line's id.
    pub line: String,
    /// The worker's id.
    pub worker: String,
    /// The worker's name; empty when the worker is no longer on the roster.
    pub worker_name: String,
    /// The worker's crew name.
    pub crew_name: String,
    /// Trade code (工种).
    pub trade: String,
    /// The work item's WBS code.
    pub work_item_code: String,
    /// The work item's name (部位/分项).
    pub work_item_name: String,
    /// `day_labor` (点工) or `piecework` (包工).
    pub kind: String,
    /// Day rate recorded on the line, in fen.
    pub day_rate_fen: i64,
    /// The line's note.
    pub note: String,
    /// The line's quantities; `lines` is 1.
    #[serde(flatten)]
    pub sums: Sums,
}

/// One work item's day against its plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProgressRow {
    /// Quantity installed that day, in thousandths of the unit (0 when only labor was logged).
    pub quantity_today_milli: i64,
    /// The day's progress note.
    pub note: String,
    /// The item to date (that day included, unapproved days included) against its plan.
    #[serde(flatten)]
    pub to_date: WorkItemProgress,
}

/// A delay or blocker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DelayRow {
    /// What held the work up.
    pub text: String,
    /// The work item it held up (code and name), empty when none was named.
    pub work_item: String,
    /// Who recorded it.
    pub entered_by: String,
}

/// One review event, with the person named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReviewRow {
    /// `submitted`, `approved`, `rejected` or `amended`.
    pub action: String,
    /// Who, as recorded (a user id, or a name where the phone had no account yet).
    pub by: String,
    /// Their name from the directory; `by` when the directory does not know them.
    pub by_name: String,
    /// When, by the acting device's clock.
    pub at: DateTime<Utc>,
    /// The reason or comment.
    pub reason: String,
}

/// Where one worker's or one crew's sign-off of the day stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignOffRow {
    /// The worker's or the crew's id.
    pub id: String,
    /// Who signs: the worker's name, or the crew leader's name and the crew's.
    pub who: String,
    /// What they sign as: `worker` or `crew_leader`.
    pub role: String,
    /// A worker: `signed`, `changed_since_signed`, `disputed`, `answered` (his dispute was answered
    /// and he has not signed since) or `unsigned`. A crew leader: `confirmed` or `unconfirmed`.
    pub state: String,
    /// When the record the state rests on was taken, by that device's clock; `None` when there is
    /// none (unsigned, unconfirmed).
    pub at: Option<DateTime<Utc>>,
    /// The device it was taken on; empty when there is no record.
    pub device: String,
    /// SHA-256 of the signature image, hex; empty for a tap of consent or no signature.
    pub image: String,
    /// Whether the signature image's bytes are in this store (on the server: uploaded by the phone
    /// that took it); `false` when there is no image.
    pub image_here: bool,
    /// The signature image as drawn beside the row ([`crate::signoff::signature_picture`]) when
    /// its bytes are here and decode; drawn in the PDF, not part of the JSON.
    #[serde(skip)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub picture: Option<Vec<u8>>,
    /// A dispute's reason and its answer, or what changed since signing (`line field: was → now`).
    pub detail: String,
}

/// A photo or file attached to the day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AttachmentRow {
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
    /// The caption.
    pub caption: String,
    /// Media type (`image/jpeg`, `application/pdf` …).
    pub media_type: String,
    /// The file's size in bytes.
    pub size_bytes: u64,
    /// What it is attached to: `day`, `labor:ID`, `progress:ID`, `delay:ID`.
    pub target: String,
    /// Who attached it: the name from the directory, the recorded user id when it lacks one.
    pub by: String,
    /// When it was attached, by the phone's clock.
    pub at: DateTime<Utc>,
    /// Whether the bytes are in this store (a photo taken on another phone is not until synced).
    pub bytes_here: bool,
    /// A JPEG thumbnail ([`crate::attachments::thumbnail`]) when the bytes are here and are an
    /// image this build decodes; drawn in the PDF, not part of the JSON.
    #[serde(skip)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub thumbnail: Option<Vec<u8>>,
}

impl Store {
    /// The 施工日志 of a site-day. `names` maps the user ids recorded in the review trail to
    /// people's names (the server's users, the phone's directory); an id it lacks prints as itself.
    /// A day nobody logged is an empty draft, as [`Store::day`] reads it.
    pub fn daily_log(&mut self, site: &SiteId, date: NaiveDate, names: &HashMap<String, String>) -> Result<DailyLog> {
        let roster = self.roster(site)?;
        let sheet = self.day(site, date)?;
        let to_date = self.progress(site, date, false)?;

        let crew_of = |id: &crate::ids::CrewId| roster.crews.iter().find(|c| &c.id == id);
        // Rows group by crew id; workers no longer on a crew of the roster come first, under "".
        let entry_key = |crew: Option<&crate::roster::Crew>| crew.map(|c| c.id.to_string()).unwrap_or_default();
        let mut labor = Vec::new();
        // Crew id → (crew, workers seen, sums).
        let mut crews: BTreeMap<String, (Option<&crate::roster::Crew>, Vec<String>, Sums)> = BTreeMap::new();
        let mut total = Sums::default();
        let mut workers = Vec::new();
        for l in sheet.labor.iter().filter(|l| !l.deleted) {
            let worker = roster.worker(&l.worker);
            let crew = worker.and_then(|w| crew_of(&w.crew));
            let item = roster.work_items.iter().find(|w| w.id == l.work_item);
            let sums = Sums {
                work_days_centi: l.work_days.centi(),
                hours_min: l.hours.minutes(),
                overtime_min: l.overtime.minutes(),
                cost_fen: l.cost().fen(),
                lines: 1,
            };
            total.add(&sums);
            let entry = crews
                .entry(entry_key(crew))
                .or_insert((crew, Vec::new(), Sums::default()));
            entry.2.add(&sums);
            if !entry.1.contains(&l.worker.to_string()) {
                entry.1.push(l.worker.to_string());
            }
            if !workers.contains(&l.worker) {
                workers.push(l.worker.clone());
            }
            labor.push((
                entry_key(crew),
                LaborRow {
                    line: l.id.to_string(),
                    worker: l.worker.to_string(),
                    worker_name: worker.map(|w| w.name.clone()).unwrap_or_default(),
                    crew_name: crew.map(|c| c.name.clone()).unwrap_or_default(),
                    trade: worker.map(|w| w.trade.clone()).unwrap_or_default(),
                    work_item_code: item.map(|i| i.code.clone()).unwrap_or_default(),
                    work_item_name: item.map(|i| i.name.clone()).unwrap_or_default(),
                    kind: l.kind.as_str().to_string(),
                    day_rate_fen: l.day_rate.fen(),
                    note: l.note.clone(),
                    sums,
                },
            ));
        }
        labor.sort_by(|(a_crew, a), (b_crew, b)| {
            (a_crew, &a.worker, &a.work_item_code).cmp(&(b_crew, &b.worker, &b.work_item_code))
        });
        let labor = labor.into_iter().map(|(_, row)| row).collect();
        let crews = crews
            .into_iter()
            .map(|(id, (crew, seen, sums))| CrewDay {
                crew: id,
                name: crew.map(|c| c.name.clone()).unwrap_or_default(),
                leader: crew.map(|c| c.leader.clone()).unwrap_or_default(),
                headcount: seen.len() as i64,
                sums,
            })
            .collect();

        let mut progress: Vec<ProgressRow> = to_date
            .into_iter()
            .filter_map(|p| {
                let today = sheet.progress.iter().find(|l| !l.deleted && l.work_item == p.work_item);
                let worked = sheet.labor.iter().any(|l| !l.deleted && l.work_item == p.work_item);
                (today.is_some() || worked).then(|| ProgressRow {
                    quantity_today_milli: today.map_or(0, |l| l.quantity.milli()),
                    note: today.map(|l| l.note.clone()).unwrap_or_default(),
                    to_date: p,
                })
            })
            .collect();
        progress.sort_by(|a, b| a.to_date.code.cmp(&b.to_date.code));

        let delays = sheet
            .delays
            .iter()
            .map(|d| DelayRow {
                text: d.text.clone(),
                work_item: d
                    .work_item
                    .as_ref()
                    .and_then(|id| roster.work_items.iter().find(|w| &w.id == id))
                    .map(|w| format!("{} {}", w.code, w.name))
                    .unwrap_or_default(),
                entered_by: names
                    .get(&d.entered_by)
                    .cloned()
                    .unwrap_or_else(|| d.entered_by.clone()),
            })
            .collect();
        let reviews: Vec<ReviewRow> = sheet
            .reviews
            .iter()
            .map(|r| ReviewRow {
                action: r.action.as_str().to_string(),
                by: r.by.clone(),
                by_name: names.get(&r.by).cloned().unwrap_or_else(|| r.by.clone()),
                at: r.at,
                reason: r.reason.clone(),
            })
            .collect();
        let approval = sheet
            .reviews
            .iter()
            .zip(&reviews)
            .rev()
            .find(|(e, _)| e.action == ReviewAction::Approved)
            .map(|(_, r)| r.clone());

        Ok(DailyLog {
            site: roster.site.id.to_string(),
            site_code: roster.site.code.clone(),
            site_name: roster.site.name.clone(),
            date,
            status: sheet.status.as_str().to_string(),
            weather: sheet.weather.clone(),
            note: sheet.note.clone(),
            crews,
            labor,
            total,
            headcount: workers.len() as i64,
            progress,
            delays,
            reviews,
            approval,
            sign_offs: self.sign_off_rows(site, date, &roster)?,
            attachments: self.attachment_rows(site, date, names)?,
        })
    }

    /// Each worker's and crew's sign-off state of the day, as the log prints it.
    fn sign_off_rows(&mut self, site: &SiteId, date: NaiveDate, roster: &Roster) -> Result<Vec<SignOffRow>> {
        let day = self.day_signoffs(site, date)?;
        let mut rows = Vec::new();
        for w in &day.workers {
            let name = roster
                .worker(&w.worker)
                .map(|x| x.name.clone())
                .unwrap_or_else(|| w.worker.to_string());
            // The last dispute of his that an answer answers, with that answer.
            let answered = day
                .events
                .iter()
                .filter(|e| e.action == SignoffAction::Disputed && e.worker.as_ref() == Some(&w.worker))
                .filter_map(|d| {
                    day.events
                        .iter()
                        .rev()
                        .find(|a| a.action == SignoffAction::Answered && a.answers.as_deref() == Some(&d.id))
                        .map(|a| (d, a))
                })
                .next_back();
            let (state, record, detail) = match (w.state, w.open_disputes.last(), &answered) {
                (SignoffState::Disputed, Some(d), _) => ("disputed", Some(d), format!("异议：{}", d.reason)),
                (SignoffState::Unsigned, _, Some((d, a))) => {
                    ("answered", Some(*a), format!("异议：{}；答复：{}", d.reason, a.reason))
                }
                (SignoffState::ChangedSinceSigned, ..) => (
                    "changed_since_signed",
                    w.signature.as_ref(),
                    w.changes
                        .iter()
                        .map(|c| {
                            format!(
                                "{} {}：{} → {}",
                                c.line,
                                c.field,
                                c.approved.as_deref().unwrap_or("—"),
                                c.now.as_deref().unwrap_or("—")
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("；"),
                ),
                (SignoffState::Signed, ..) => ("signed", w.signature.as_ref(), String::new()),
                (state, ..) => (state.as_str(), None, String::new()),
            };
            rows.push(SignOffRow {
                id: w.worker.to_string(),
                who: name,
                role: "worker".into(),
                state: state.into(),
                at: record.map(|e| e.at),
                device: record.map(|e| e.device.clone()).unwrap_or_default(),
                image: record.and_then(|e| e.image.clone()).unwrap_or_default(),
                image_here: false,
                picture: None,
                detail,
            });
        }
        for c in &day.crews {
            let crew = roster.crews.iter().find(|x| x.id == c.crew);
            let who = match crew {
                Some(x) if !x.leader.is_empty() => format!("{}（{}）", x.leader, x.name),
                Some(x) => x.name.clone(),
                None => c.crew.to_string(),
            };
            let e = c.confirmation.as_ref();
            rows.push(SignOffRow {
                id: c.crew.to_string(),
                who,
                role: "crew_leader".into(),
                state: if e.is_some() { "confirmed" } else { "unconfirmed" }.into(),
                at: e.map(|e| e.at),
                device: e.map(|e| e.device.clone()).unwrap_or_default(),
                image: e.and_then(|e| e.image.clone()).unwrap_or_default(),
                image_here: false,
                picture: None,
                detail: String::new(),
            });
        }
        for r in rows.iter_mut().filter(|r| !r.image.is_empty()) {
            if let Some(bytes) = self.signoff_image(&r.image)? {
                r.image_here = true;
                r.picture = crate::signoff::signature_picture(&bytes);
            }
        }
        Ok(rows)
    }

    /// The day's attachments, each image whose bytes are here with its thumbnail (the cached one,
    /// else made now from the bytes).
    fn attachment_rows(
        &mut self,
        site: &SiteId,
        date: NaiveDate,
        names: &HashMap<String, String>,
    ) -> Result<Vec<AttachmentRow>> {
        let mut rows = Vec::new();
        for s in self.attachments(site, date)? {
            let a = s.attachment;
            let bytes_here = self.has_blob(&a.sha256);
            let thumbnail = if bytes_here && a.media_type.starts_with("image/") {
                match s.thumbnail.and_then(|p| std::fs::read(p).ok()) {
                    Some(jpeg) => Some(jpeg),
                    None => crate::attachments::thumbnail(&std::fs::read(self.blob_path(&a.sha256))?),
                }
            } else {
                None
            };
            rows.push(AttachmentRow {
                sha256: a.sha256.to_string(),
                caption: a.caption,
                media_type: a.media_type,
                size_bytes: a.size.bytes(),
                target: a.target,
                by: names.get(&a.added_by).cloned().unwrap_or(a.added_by),
                at: a.added_at,
                bytes_here,
                thumbnail,
            });
        }
        Ok(rows)
    }
}
