//! The company data set's file shapes (`company.json`, `logs.json`) and importing them into a store.

mod pay;

use std::collections::HashMap;
use std::path::Path;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::doc::day;
use crate::error::{Error, Result};
use crate::ids::{CrewId, DocId, LineId, OrgId, SiteId, WorkItemId, WorkerId};
use crate::labor::{DayStatus, LaborKind, LaborLine, ProgressLine};
use crate::roster::{Crew, Roster, Site, WorkItem, Worker};
use crate::store::Store;
use crate::units::{Fen, Minutes, Quantity, WorkDays};

pub use pay::{FixtureAdvance, FixtureRate, PayFixtures, PieceworkSpan};

/// `company.json`: the org, its trades, sites with rosters and work items, and users.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct Company {
    pub org: Org,
    /// Trade codes and names.
    #[serde(default)]
    pub trades: Vec<Trade>,
    /// Sites with their master data.
    pub sites: Vec<CompanySite>,
    /// Users with roles and site grants.
    #[serde(default)]
    pub users: Vec<User>,
}

/// The organisation record.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct Org {
    pub id: OrgId,
    pub name: String,
    #[serde(default)]
    pub name_en: String,
}

/// A trade (工种).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct Trade {
    /// Code, e.g. `rebar`.
    pub code: String,
    /// Chinese name, e.g. `钢筋工`.
    pub name: String,
    #[serde(default)]
    pub name_en: String,
}

/// A user and where they may work.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct User {
    pub id: String,
    pub name: String,
    /// `foreman`, `site_manager`, `head_office` or `admin`.
    pub role: String,
    /// Site ids, or `"*"` for all of the org's sites.
    pub sites: SiteGrant,
}

/// The sites a user is granted.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum SiteGrant {
    /// `"*"`: every site of the org.
    All(String),
    /// Only these sites.
    Some(Vec<SiteId>),
}

/// A site as written in `company.json`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct CompanySite {
    pub id: SiteId,
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub name_en: String,
    /// IANA time zone.
    pub timezone: String,
    pub crews: Vec<CompanyCrew>,
    pub workers: Vec<CompanyWorker>,
    pub work_items: Vec<CompanyWorkItem>,
}

/// A crew as written in `company.json`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct CompanyCrew {
    pub id: CrewId,
    pub name: String,
    pub leader: String,
    pub trade: String,
}

/// A worker as written in `company.json`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct CompanyWorker {
    pub id: WorkerId,
    pub name: String,
    pub trade: String,
    pub crew: CrewId,
    #[serde(default)]
    pub phone: String,
    /// Day rate in fen.
    pub day_rate_fen: i64,
    /// Overtime rate per hour in fen.
    pub overtime_rate_fen_per_hour: i64,
    /// Whether still on site (absent means active).
    #[serde(default = "yes")]
    pub active: bool,
    /// The account his pay is sent to (digits; spaces allowed), or absent.
    #[serde(default)]
    pub bank_account: String,
    /// The bank's name, or absent.
    #[serde(default)]
    pub bank_name: String,
}

fn yes() -> bool {
    true
}

/// A work item as written in `company.json`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct CompanyWorkItem {
    pub id: WorkItemId,
    pub code: String,
    pub name: String,
    pub unit: String,
    /// Planned quantity in thousandths.
    pub planned_quantity_milli: i64,
    /// Budget in fen.
    pub budget_fen: i64,
    pub planned_start: Option<NaiveDate>,
    pub planned_end: Option<NaiveDate>,
}

/// One site-day in `logs.json`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct LogDay {
    pub site: SiteId,
    pub date: NaiveDate,
    #[serde(default)]
    pub weather: String,
    pub labor: Vec<LogLabor>,
    #[serde(default)]
    pub progress: Vec<LogProgress>,
    #[serde(default)]
    pub note: String,
}

/// A labor line in `logs.json`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct LogLabor {
    pub worker: WorkerId,
    /// Work item id.
    pub work_item: WorkItemId,
    /// Work-days in hundredths.
    pub work_days_centi: i64,
    /// Hours in minutes.
    pub hours_min: i64,
    /// Overtime in minutes.
    pub overtime_min: i64,
    /// `day_labor` or `piecework`.
    pub kind: String,
    /// Day rate in fen.
    pub rate_fen: i64,
    #[serde(default)]
    pub note: String,
}

/// A progress line in `logs.json`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct LogProgress {
    /// Work item id.
    pub work_item: WorkItemId,
    /// Quantity installed that day, thousandths.
    pub quantity_milli: i64,
    /// Running total in the source system (recomputed here, not imported).
    #[serde(default)]
    pub cumulative_milli: i64,
    #[serde(default)]
    pub note: String,
}

/// Reads and parses a JSON file.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| Error::Import {
        what: path.display().to_string(),
        reason: e.to_string(),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Import {
        what: path.display().to_string(),
        reason: e.to_string(),
    })
}

impl CompanySite {
    /// The site's roster in the model's types, validated.
    pub fn roster(&self) -> Result<Roster> {
        Ok(Roster {
            site: Site {
                id: self.id.clone(),
                code: self.code.clone(),
                name: self.name.clone(),
                timezone: self.timezone.clone(),
            },
            crews: self
                .crews
                .iter()
                .map(|c| Crew {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    leader: c.leader.clone(),
                    trade: c.trade.clone(),
                })
                .collect(),
            workers: self
                .workers
                .iter()
                .map(|w| {
                    Ok(Worker {
                        id: w.id.clone(),
                        name: w.name.clone(),
                        phone: w.phone.clone(),
                        trade: w.trade.clone(),
                        crew: w.crew.clone(),
                        day_rate: Fen::new("day_rate_fen", w.day_rate_fen)?,
                        overtime_rate: Fen::new("overtime_rate_fen_per_hour", w.overtime_rate_fen_per_hour)?,
                        active: w.active,
                        pending: false,
                        bank: crate::bank::BankAccount::new(&w.bank_account, &w.bank_name)
                            .map_err(crate::error::Error::from)?,
                    })
                })
                .collect::<Result<_>>()?,
            work_items: self
                .work_items
                .iter()
                .map(|wi| {
                    Ok(WorkItem {
                        id: wi.id.clone(),
                        code: wi.code.clone(),
                        name: wi.name.clone(),
                        unit: wi.unit.clone(),
                        planned_quantity: Quantity::from_milli("planned_quantity_milli", wi.planned_quantity_milli)?,
                        budget: Fen::new("budget_fen", wi.budget_fen)?,
                        planned_start: wi.planned_start,
                        planned_end: wi.planned_end,
                    })
                })
                .collect::<Result<_>>()?,
            pending_workers: Vec::new(),
            rates: Vec::new(),
        })
    }
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct ImportSummary {
    pub sites: usize,
    /// Workers on their rosters.
    pub workers: usize,
    /// Site-day documents written.
    pub days: usize,
    /// Labor lines written.
    pub labor_lines: usize,
    /// Progress lines written.
    pub progress_lines: usize,
    /// Site-days left untouched because they are approved.
    pub approved_skipped: usize,
}

/// Site-days imported per SQLite transaction: large enough to amortise fsync, small enough to bound
/// memory and the work lost to an interrupted import (which resumes idempotently when re-run).
const IMPORT_BATCH: usize = 32;

impl Store {
    /// Imports a company's master data: one site document per site. Idempotent. Account numbers
    /// are sealed with the store's org key (see [`Store::import_company_sealed`]).
    pub fn import_company(&mut self, company: &Company) -> Result<ImportSummary> {
        let key = self.org_pii_key()?;
        self.import_company_sealed(company, key.as_ref())
    }

    /// [`Store::import_company`] sealing account numbers to `key` (the server's import, which
    /// knows the org's key). Errors: [`Error::PiiKeyMissing`] for an account without a key.
    pub fn import_company_sealed(
        &mut self,
        company: &Company,
        key: Option<&crate::pii::OrgPiiKey>,
    ) -> Result<ImportSummary> {
        let mut summary = ImportSummary::default();
        let rosters: Vec<Roster> = company.sites.iter().map(CompanySite::roster).collect::<Result<_>>()?;
        self.set_meta("org", company.org.id.as_str())?;
        for r in &rosters {
            self.put_roster_sealed(r, key)?;
            summary.sites += 1;
            summary.workers += r.workers.len();
        }
        Ok(summary)
    }

    /// Imports site-day logs: labor lines keep their recorded day rate and take the worker's roster
    /// overtime rate. Idempotent: importing the same file twice changes nothing.
    pub fn import_logs(&mut self, days: &[LogDay]) -> Result<ImportSummary> {
        let mut rosters: HashMap<SiteId, Roster> = HashMap::new();
        let mut prepared = Vec::with_capacity(days.len());
        let mut summary = ImportSummary::default();
        let user = self.user().to_string();
        let mut seen_days = std::collections::HashSet::new();
        for d in days {
            let what = |reason: String| Error::Import {
                what: format!("{} {}", d.site, d.date),
                reason,
            };
            if !seen_days.insert((d.site.clone(), d.date)) {
                return Err(what("the site-day appears twice".into()));
            }
            let (_, status) = self.day_content(&d.site, d.date)?;
            if matches!(status, DayStatus::Approved | DayStatus::AmendedAfterApproval) {
                // Approved days change only by audited amendment, never by a bulk import.
                summary.approved_skipped += 1;
                continue;
            }
            if !rosters.contains_key(&d.site) {
                rosters.insert(d.site.clone(), self.roster(&d.site)?);
            }
            let roster = &rosters[&d.site];
            let what = |reason: String| Error::Import {
                what: format!("{} {}", d.site, d.date),
                reason,
            };
            crate::validate::day_date(d.date).map_err(|e| what(e.to_string()))?;
            let mut labor = Vec::with_capacity(d.labor.len());
            for l in &d.labor {
                let worker = roster
                    .worker(&l.worker)
                    .ok_or_else(|| what(format!("unknown worker {}", l.worker)))?;
                if roster.work_item(&l.work_item).is_none() {
                    return Err(what(format!("unknown work item {}", l.work_item)));
                }
                let line = LaborLine {
                    id: LineId::labor(&d.site, d.date, &l.worker, &l.work_item),
                    worker: l.worker.clone(),
                    work_item: l.work_item.clone(),
                    work_days: WorkDays::from_centi(l.work_days_centi)?,
                    hours: Minutes::from_min("hours_min", l.hours_min)?,
                    overtime: Minutes::from_min("overtime_min", l.overtime_min)?,
                    kind: LaborKind::parse(&l.kind).ok_or_else(|| what(format!("unknown kind {}", l.kind)))?,
                    day_rate: Fen::new("rate_fen", l.rate_fen)?,
                    overtime_rate: worker.overtime_rate,
                    note: l.note.clone(),
                    entered_by: user.clone(),
                    deleted: false,
                    conflicts: Vec::new(),
                };
                crate::validate::labor_line(&d.site, d.date, &line, roster).map_err(|e| what(e.to_string()))?;
                labor.push(line);
            }
            let mut progress = Vec::with_capacity(d.progress.len());
            let mut seen_items = std::collections::HashSet::new();
            for p in &d.progress {
                if !seen_items.insert(&p.work_item) {
                    return Err(what(format!("progress on {} appears twice", p.work_item)));
                }
                if roster.work_item(&p.work_item).is_none() {
                    return Err(what(format!("unknown work item {}", p.work_item)));
                }
                let line = ProgressLine {
                    id: LineId::progress(&d.site, d.date, &p.work_item),
                    work_item: p.work_item.clone(),
                    quantity: Quantity::from_milli("quantity_milli", p.quantity_milli)?,
                    note: p.note.clone(),
                    entered_by: user.clone(),
                    deleted: false,
                    conflicts: Vec::new(),
                };
                crate::validate::progress_line(&d.site, d.date, &line, roster).map_err(|e| what(e.to_string()))?;
                progress.push(line);
            }
            summary.labor_lines += labor.len();
            summary.progress_lines += progress.len();
            prepared.push((DocId::Day(d.site.clone(), d.date), d, labor, progress));
        }
        for batch in prepared.chunks(IMPORT_BATCH) {
            let ids: Vec<DocId> = batch.iter().map(|(id, ..)| id.clone()).collect();
            let mut i = 0;
            self.change_many(&ids, |_, tx| {
                let (_, d, labor, progress) = &batch[i];
                i += 1;
                day::put_info(tx, Some(&d.weather), Some(&d.note))?;
                labor.iter().try_for_each(|l| day::put_labor(tx, l))?;
                progress.iter().try_for_each(|p| day::put_progress(tx, p))
            })?;
            summary.days += batch.len();
        }
        Ok(summary)
    }

    /// Imports `DIR/company.json` and, if present, `DIR/logs.json` and then `DIR/pay.json`.
    pub fn import_dir(&mut self, dir: &Path) -> Result<ImportSummary> {
        let company: Company = read_json(&dir.join("company.json"))?;
        let mut summary = self.import_company(&company)?;
        let logs = dir.join("logs.json");
        if logs.exists() {
            let days: Vec<LogDay> = read_json(&logs)?;
            let s = self.import_logs(&days)?;
            summary.days = s.days;
            summary.labor_lines = s.labor_lines;
            summary.progress_lines = s.progress_lines;
            summary.approved_skipped = s.approved_skipped;
        }
        let pay = dir.join("pay.json");
        if pay.exists() {
            self.import_pay(&read_json(&pay)?)?;
        }
        Ok(summary)
    }
}
