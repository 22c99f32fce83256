//! The demo company `serve --demo` loads: the roster of `fixtures/company.json` (org, sites, crews,
//! workers, users) with 90 days of work generated around today by a seeded program, so that a
//! newcomer finds a company in the middle of a quarter, not a pile of drafts.
//!
//! What it holds, as of today in each site's time zone: days older than a week approved by the site
//! manager; the last week submitted and waiting; today's lines entered so far (a draft, the first
//! crew not yet entered); per site a day rejected with a reason, a day amended after approval and
//! waiting for a new decision, a day rejected, fixed and approved, and a day amended and approved
//! again; work items planned so that progress follows time and labor follows progress (see
//! `demo/plan.rs`); last quarter's OKR cycle closed with scores and this quarter's under way with
//! check-ins and key results fed from field data (see `demo/okr.rs`).
//!
//! Decision (2026-11-30): the generator lives in the server, not in client-core: only `serve --demo`
//! uses it, and phones get the demo as they get real data, by syncing. Every write is made the way
//! the server writes for people (`POST /v1/approvals`): the server's store writes in the user's
//! name and signs the change with its own key on that user's behalf (`sign_own_changes(doc,
//! "server", user)`), one user's step at a time. Lines, submissions and corrections are the site
//! foreman's; approvals and rejections its site manager's; cycles, objectives, key results and
//! reviews head office's; check-ins each key result's owner's; fed values `system`'s. So
//! `/v1/history` names who did what, and every change passes the push gate's rules as its signer
//! (`tests/tests/headoffice/demo.rs` replays them all through the gate). Loading took 12 s in a
//! debug build on 2026-11-30 (270 days, about 6,000 lines; a third of it the imports, the rest one
//! transaction per review step and per signing).
//!
//! Length: about 450 lines of code; the rest is its unit tests, which check the story the demo tells.

mod okr;
mod plan;

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sitesync_core::Store;
use sitesync_core::ids::{DocId, LineId, OrgId};
use sitesync_core::import::{Company, LogDay};
use sitesync_core::labor::{DayStatus, LaborPatch, ReviewAction};
use sitesync_core::store::{NewKeyResult, RowFilter};
use sitesync_core::units::{Minutes, WorkDays};

pub use okr::{CyclePlan, Event, KrPlan, ObjectivePlan};
pub use plan::{DAYS, PlannedDay, SitePlan, Step, UserRef, WAITING_DAYS, quarter_id};

use crate::admin::{self, ImportReport};
use crate::auth::AuthDb;
use crate::state::{AppState, SERVER_DEVICE};

/// The seed `serve --demo` uses: every start on the same date makes the same company.
pub const SEED: u64 = 20_261_130;

/// The roster the demo is built on, compiled in so a newcomer needs nothing else.
const COMPANY: &[u8] = include_bytes!("../../fixtures/company.json");

/// The user id the server's own computed writes are signed for.
const SYSTEM: &str = "system";

/// Why the demo could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub enum Error {
    /// The company has nobody in a role the demo's story needs.
    #[error("the demo company has no {role} for {site}")]
    Staff {
        /// The site (or "the org").
        site: String,
        /// The role missing.
        role: &'static str,
    },
    /// The roster cannot carry the plan (too few workers, too few days).
    #[error("the demo roster cannot be planned: {0}")]
    Roster(String),
    /// A site's time zone is not an IANA name.
    #[error("site {site}: unknown time zone {timezone:?}")]
    TimeZone {
        site: String,
        /// What it says.
        timezone: String,
    },
    /// The compiled-in company file does not parse.
    #[error("the demo company file: {0}")]
    Company(#[from] serde_json::Error),
    /// A value the plan made is out of bounds.
    #[error("the demo plan: {0}")]
    Plan(#[from] sitesync_core::Error),
    /// Writing it failed.
    #[error("loading the demo: {0}")]
    Server(#[from] crate::Error),
}

/// Everything the demo writes, made before anything is written.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The company with its work items planned around today.
    pub company: Company,
    /// Who owns the OKR structure.
    pub head_office: UserRef,
    /// Who runs each site, and what is under way there.
    pub sites: Vec<SitePlan>,
    /// Every site-day, oldest first per site.
    pub days: Vec<PlannedDay>,
    /// Last quarter's cycle and this one's.
    pub okr: Vec<CyclePlan>,
}

impl Plan {
    /// The roster shipped in `fixtures/company.json`.
    pub fn company() -> Result<Company, Error> {
        Ok(serde_json::from_slice(COMPANY)?)
    }

    /// Plans the demo of `company` for the moment `now`: each site's days end on its own today.
    pub fn generate(company: &Company, seed: u64, now: DateTime<Utc>) -> Result<Plan, Error> {
        let head_office = plan::staff(company, "head_office", None)?;
        let mut planned = company.clone();
        let mut sites = Vec::new();
        let mut days = Vec::new();
        for (i, site) in company.sites.iter().enumerate() {
            let tz: chrono_tz::Tz = site.timezone.parse().map_err(|_| Error::TimeZone {
                site: site.id.to_string(),
                timezone: site.timezone.clone(),
            })?;
            let today = now.with_timezone(&tz).date_naive();
            // A stream per site: the sites do not shift each other's draws.
            let mut rng = plan::Rng::new(seed ^ (i as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407));
            let p = plan::site(company, site, today, &mut rng)?;
            planned.sites[i] = p.site;
            sites.push(p.plan);
            days.extend(p.days);
        }
        let today = sites.first().map_or_else(|| now.date_naive(), |s| s.today);
        let okr = okr::cycles(company.org.id.as_str(), &head_office, &sites, &planned.sites, today);
        Ok(Plan {
            company: planned,
            head_office,
            sites,
            days,
            okr,
        })
    }

    /// The plan of a site.
    pub fn site(&self, site: &str) -> Option<&SitePlan> {
        self.sites.iter().find(|s| s.site.as_str() == site)
    }
}

/// Site-days by status after loading, as the store reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DayCounts {
    /// Approved (including those amended and approved again).
    pub approved: usize,
    /// Submitted, waiting for a decision.
    pub submitted: usize,
    /// Drafts (today's).
    pub draft: usize,
    /// Amended after approval, waiting for a new decision.
    pub amended: usize,
    /// Sent back with a reason.
    pub rejected: usize,
}

/// What `load` made, for the start-up line.
#[derive(Debug, Clone)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct Loaded {
    pub org: String,
    pub sites: usize,
    /// Users imported, each with a demo device.
    pub users: usize,
    /// The org's today (its first site's).
    pub today: NaiveDate,
    /// Days by status.
    pub days: DayCounts,
    /// Where the demo devices' tokens are.
    pub tokens: PathBuf,
}

impl std::fmt::Display for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = &self.days;
        write!(
            f,
            "demo company {} loaded as of {}: {} sites, {} users, {} days ({} approved, {} submitted, {} draft, \
             {} amended after approval, {} rejected); device tokens in {}",
            self.org,
            self.today,
            self.sites,
            self.users,
            d.approved + d.submitted + d.draft + d.amended + d.rejected,
            d.approved,
            d.submitted,
            d.draft,
            d.amended,
            d.rejected,
            self.tokens.display()
        )
    }
}

/// Loads the demo planned for `now` into a fresh data directory, enrolls a device per demo user and
/// writes their tokens to `DATA/demo-tokens.txt` (`user<TAB>device<TAB>token` per line).
pub async fn load(state: &AppState, seed: u64, now: DateTime<Utc>) -> Result<Loaded, Error> {
    let company = Plan::company()?;
    let plan = Plan::generate(&company, seed, now)?;
    let users: Vec<String> = plan.company.users.iter().map(|u| u.id.clone()).collect();
    let today = plan.sites.first().map_or_else(|| now.date_naive(), |s| s.today);
    let (report, days) = state.both(move |auth, store| write(auth, store, &plan)).await?;
    let mut lines = Vec::new();
    for user in users {
        let u = user.clone();
        let (device, token) = state.auth(move |a| a.add_device(&u, "demo")).await?;
        lines.push(format!("{user}\t{device}\t{token}"));
    }
    let tokens = state.data_dir().join("demo-tokens.txt");
    crate::files::write_secret(&tokens, &(lines.join("\n") + "\n"))?;
    Ok(Loaded {
        org: report.org,
        sites: report.sites,
        users: report.users,
        today,
        days,
        tokens,
    })
}

/// Runs `f` with the store writing in `who`'s name (the `entered_by`, `by` and `author` of what it
/// writes), then gives the store its own name back, whatever `f` did.
fn as_user<T>(
    store: &mut Store,
    who: &UserRef,
    f: impl FnOnce(&mut Store) -> sitesync_core::Result<T>,
) -> crate::Result<T> {
    let own = store.user().to_string();
    store.set_user(&who.name)?;
    let out = f(store);
    store.set_user(&own)?;
    Ok(out?)
}

/// Signs the store's unsigned changes of `doc` as made for `user_id` (one user's step at a time, so
/// each change is signed for the one who made it).
fn sign(store: &mut Store, doc: &DocId, user_id: &str) -> crate::Result<()> {
    store.sign_own_changes(doc, SERVER_DEVICE, user_id)?;
    Ok(())
}

fn write(auth: &AuthDb, store: &mut Store, plan: &Plan) -> crate::Result<(ImportReport, DayCounts)> {
    let report = admin::import_company(auth, store, &plan.company)?;
    for site in &plan.company.sites {
        sign(store, &DocId::Site(site.id.clone()), SYSTEM)?;
    }
    for site in &plan.sites {
        let days: Vec<&PlannedDay> = plan.days.iter().filter(|d| d.log.site == site.site).collect();
        let logs: Vec<LogDay> = days.iter().map(|d| d.log.clone()).collect();
        as_user(store, &site.foreman, |s| {
            s.import_logs(&logs)?;
            for d in days.iter().filter(|d| d.delay.is_some()) {
                s.add_delay(
                    &site.site,
                    d.log.date,
                    d.delay.as_deref().unwrap_or_default(),
                    None,
                    None,
                )?;
            }
            Ok(())
        })?;
        for d in &days {
            // The foreman entered the lines; each run of steps by one user is signed for them.
            let doc = DocId::Day(site.site.clone(), d.log.date);
            let mut by = &site.foreman;
            for step in &d.trail {
                let next = actor(site, step);
                if next != by {
                    sign(store, &doc, &by.id)?;
                    by = next;
                }
                act(store, site, d.log.date, step)?;
            }
            sign(store, &doc, &by.id)?;
        }
    }
    let org = plan.company.org.id.as_str();
    for c in &plan.okr {
        write_cycle(store, org, &plan.head_office, c)?;
    }
    // The server's feed, as it runs after every change: fed key results get their values now.
    let today = plan.sites.first().map_or_else(|| Utc::now().date_naive(), |s| s.today);
    store.refresh_metrics(Some(today), &|org, kr, metric| {
        crate::tenancy::metric_allowed(auth, org, kr, metric)
    })?;
    let org_id = OrgId::new(org)?;
    for c in &plan.okr {
        sign(store, &DocId::Okr(org_id.clone(), c.cycle.id.clone()), SYSTEM)?;
    }
    let mut counts = DayCounts::default();
    for d in store.day_rows(&RowFilter::default())? {
        *match d.status {
            DayStatus::Approved => &mut counts.approved,
            DayStatus::Submitted => &mut counts.submitted,
            DayStatus::Draft => &mut counts.draft,
            DayStatus::AmendedAfterApproval => &mut counts.amended,
            DayStatus::Rejected => &mut counts.rejected,
        } += 1;
    }
    Ok((report, counts))
}

/// Whose step it is: corrections and submissions are the foreman's, decisions the site manager's.
fn actor<'a>(site: &'a SitePlan, step: &Step) -> &'a UserRef {
    match step {
        Step::Submit | Step::Correct { .. } => &site.foreman,
        Step::Approve | Step::Reject { .. } => &site.manager,
    }
}

/// One review step on a day, written in the name of [`actor`] (and left for the caller to sign).
fn act(store: &mut Store, site: &SitePlan, date: NaiveDate, step: &Step) -> crate::Result<()> {
    let id = &site.site;
    match step {
        // As the foreman's phone records it: in the foreman's name.
        Step::Submit => {
            store.review_as(id, date, ReviewAction::Submitted, "", &site.foreman.name)?;
        }
        // As `POST /v1/approvals` records a decision: in the deciding user's id.
        Step::Approve => {
            store.review_as(id, date, ReviewAction::Approved, "", &site.manager.id)?;
        }
        Step::Reject { reason } => {
            store.review_as(id, date, ReviewAction::Rejected, reason, &site.manager.id)?;
        }
        Step::Correct {
            worker,
            work_item,
            work_days_centi,
            hours_min,
            overtime_min,
            reason,
        } => {
            let patch = LaborPatch {
                work_days: Some(WorkDays::from_centi(*work_days_centi)?),
                hours: Some(Minutes::from_min("hours", *hours_min)?),
                overtime: Some(Minutes::from_min("overtime", *overtime_min)?),
                ..LaborPatch::default()
            };
            let line = LineId::labor(id, date, worker, work_item);
            as_user(store, &site.foreman, |s| s.edit_labor(&line, &patch, reason.as_deref()))?;
        }
    }
    Ok(())
}

/// A cycle: its structure by head office, then its events by their owners, then its closing.
fn write_cycle(store: &mut Store, org: &str, head: &UserRef, c: &CyclePlan) -> crate::Result<()> {
    let cycle = c.cycle.id.as_str();
    let doc = DocId::Okr(OrgId::new(org)?, cycle.to_string());
    // Objective ids and their key results' ids, by plan index (ids are made when written).
    let mut ids: Vec<(String, Vec<String>)> = Vec::new();
    as_user(store, head, |s| {
        s.put_cycle(&c.cycle)?;
        for o in &c.objectives {
            let parent = o.parent.and_then(|p| ids.get(p)).map(|p| p.0.clone());
            let objective = s.add_objective(org, cycle, &o.title, &o.owner.name, &o.team, parent.as_deref())?;
            let mut krs = Vec::new();
            for k in &o.key_results {
                let new = NewKeyResult {
                    objective: objective.id.clone(),
                    title: k.kr.title.clone(),
                    owner: k.kr.owner.clone(),
                    unit: k.kr.unit.clone(),
                    start_milli: k.kr.start_milli,
                    target_milli: Some(k.kr.target_milli),
                    direction: k.kr.direction,
                    kind: k.kr.kind,
                    weight: k.kr.weight,
                    due: Some(k.kr.due),
                    metric: k.kr.metric.clone(),
                };
                krs.push(s.add_key_result(org, cycle, &new)?.id);
            }
            ids.push((objective.id, krs));
        }
        Ok(())
    })?;
    sign(store, &doc, &head.id)?;
    let kr = |o: usize, k: usize| -> crate::Result<(&UserRef, String)> {
        let owner = &c.objectives[o].key_results[k].owner;
        let id = ids
            .get(o)
            .and_then(|(_, krs)| krs.get(k))
            .ok_or_else(|| crate::Error::Internal(format!("the demo plan names key result {o}.{k}, not in it")))?;
        Ok((owner, id.clone()))
    };
    for e in &c.events {
        let by = match e {
            Event::CheckIn {
                objective,
                kr: k,
                date,
                value_milli,
                status,
                confidence,
                note,
            } => {
                let (owner, id) = kr(*objective, *k)?;
                as_user(store, owner, |s| {
                    s.check_in(
                        org,
                        cycle,
                        &id,
                        *value_milli,
                        Some(*status),
                        Some(*confidence),
                        note,
                        *date,
                    )
                })?;
                owner
            }
            Event::Review { date, notes } => {
                as_user(store, head, |s| s.review_cycle(org, cycle, *date, notes))?;
                head
            }
            Event::Override {
                objective,
                kr: k,
                status,
                note,
            } => {
                let (owner, id) = kr(*objective, *k)?;
                as_user(store, owner, |s| {
                    s.override_status(org, cycle, &id, Some((*status, note)))
                })?;
                owner
            }
        };
        sign(store, &doc, &by.id)?;
    }
    if let Some(retrospective) = &c.retrospective {
        as_user(store, head, |s| {
            s.close_cycle(org, cycle, retrospective, &BTreeMap::new())
        })?;
        sign(store, &doc, &head.id)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::TimeZone;
    use sitesync_core::okr::Status;
    use sitesync_core::units::{Fen, Minutes, WorkDays, line_cost};

    use super::*;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 4, 0, 0).unwrap()
    }

    fn plan(now: DateTime<Utc>) -> Plan {
        Plan::generate(&Plan::company().unwrap(), SEED, now).unwrap()
    }

    #[test]
    fn the_same_seed_and_date_make_the_same_demo() {
        let a = serde_json::to_value(plan(at(2026, 11, 30))).unwrap();
        assert_eq!(a, serde_json::to_value(plan(at(2026, 11, 30))).unwrap());
        let other = Plan::generate(&Plan::company().unwrap(), SEED + 1, at(2026, 11, 30)).unwrap();
        assert_ne!(a, serde_json::to_value(other).unwrap(), "the seed decides");
        let later = plan(at(2026, 12, 1));
        assert_eq!(later.sites[0].today, NaiveDate::from_ymd_opt(2026, 12, 1).unwrap());
    }

    /// What a day's trail leaves it as, read the way the store reads it.
    fn status(trail: &[Step]) -> &'static str {
        match trail.last() {
            None => "draft",
            Some(Step::Submit) => "submitted",
            Some(Step::Approve) => "approved",
            Some(Step::Reject { .. }) => "rejected",
            Some(Step::Correct { reason: Some(_), .. }) => "amended_after_approval",
            Some(Step::Correct { reason: None, .. }) => "draft",
        }
    }

    #[test]
    fn every_date_of_a_year_makes_a_company_mid_quarter() {
        let mut ratios = Vec::new();
        for offset in (0..366).step_by(5) {
            let now = at(2026, 1, 1) + chrono::Days::new(offset);
            let p = plan(now);
            for site in &p.sites {
                let days: Vec<&PlannedDay> = p.days.iter().filter(|d| d.log.site == site.site).collect();
                assert_eq!(days.len() as i64, DAYS);
                assert_eq!(days.last().unwrap().log.date, site.today);
                let mut by_status: BTreeMap<&str, usize> = BTreeMap::new();
                for d in &days {
                    let age = (site.today - d.log.date).num_days();
                    let s = status(&d.trail);
                    *by_status.entry(s).or_default() += 1;
                    match s {
                        "draft" => assert_eq!(age, 0, "{now}: only today is a draft"),
                        "submitted" => assert!((1..=WAITING_DAYS).contains(&age), "{now}: {age} days old and waiting"),
                        "approved" => assert!(age > WAITING_DAYS),
                        _ => {}
                    }
                }
                assert_eq!(by_status["rejected"], 1, "{now} {}", site.code);
                assert_eq!(by_status["amended_after_approval"], 1, "{now} {}", site.code);
                // Today's lines are being entered: the first crew's not yet, so the README can.
                let today = days.last().unwrap();
                assert!(!today.log.labor.is_empty() && today.log.progress.is_empty());
                assert!(today.log.labor.iter().all(|l| !site.not_yet_today.contains(&l.worker)));

                let roster = p.company.sites.iter().find(|s| s.id == site.site).unwrap();
                let rate: BTreeMap<_, _> = roster
                    .workers
                    .iter()
                    .map(|w| (&w.id, w.overtime_rate_fen_per_hour))
                    .collect();
                for wi in &roster.work_items {
                    let lines: Vec<_> = days
                        .iter()
                        .flat_map(|d| &d.log.labor)
                        .filter(|l| l.work_item == wi.id)
                        .collect();
                    let built: i64 = days
                        .iter()
                        .flat_map(|d| &d.log.progress)
                        .filter(|l| l.work_item == wi.id)
                        .map(|l| l.quantity_milli)
                        .sum();
                    let started = wi.planned_start.unwrap() < site.today;
                    assert_eq!(
                        !lines.is_empty(),
                        started,
                        "{now} {}: labor exactly where work started",
                        wi.id
                    );
                    assert_eq!(
                        built > 0,
                        started,
                        "{now} {}: progress exactly where work started",
                        wi.id
                    );
                    assert!(wi.budget_fen >= 100_000, "{now} {}: a budget of whole thousands", wi.id);
                    assert!(built <= wi.planned_quantity_milli, "{now} {}: not past the plan", wi.id);
                    let cost: i64 = lines
                        .iter()
                        .map(|l| {
                            line_cost(
                                WorkDays::from_centi(l.work_days_centi).unwrap(),
                                Fen::new("rate", l.rate_fen).unwrap(),
                                Minutes::from_min("ot", l.overtime_min).unwrap(),
                                Fen::new("ot", rate[&l.worker]).unwrap(),
                            )
                            .fen()
                        })
                        .sum();
                    let done = built as f64 / wi.planned_quantity_milli as f64;
                    if done >= 0.1 {
                        ratios.push((cost as f64 / (wi.budget_fen as f64 * done), now, wi.id.clone()));
                    }
                }
            }
            let current = &p.okr[1];
            assert!(!current.cycle.closed && current.retrospective.is_none());
            assert!(p.okr[0].retrospective.is_some(), "last quarter is closed");
            let intended: Vec<Status> = current
                .objectives
                .iter()
                .flat_map(|o| &o.key_results)
                .filter_map(|k| k.intended)
                .collect();
            for s in [Status::Green, Status::Yellow, Status::Red] {
                assert!(intended.contains(&s), "{now}: a key result {s:?}");
            }
            let fed: Vec<_> = current
                .objectives
                .iter()
                .flat_map(|o| &o.key_results)
                .filter_map(|k| k.kr.metric.as_ref())
                .collect();
            assert!(fed.len() >= 3, "{now}: key results fed from field data");
            for m in fed {
                // A fed progress key result has approved progress to show from the first day on.
                if let sitesync_core::okr::Metric::ProgressPercent { site, work_item } = m {
                    let today = p.site(site).unwrap().today;
                    let approved = p.days.iter().filter(|d| (today - d.log.date).num_days() > WAITING_DAYS);
                    assert!(
                        approved
                            .flat_map(|d| &d.log.progress)
                            .any(|l| l.work_item.as_str() == work_item),
                        "{now}: {work_item} has no approved progress"
                    );
                }
            }
        }
        // Labor cost against the budget earned so far (budget × share built): within the 4–12 %
        // margin give or take the day-to-day noise, and the lagging item's 1 / 0.78 per unit built.
        // Measured 2026-11-30 over 2,000 items of 74 dates: 0.90 ..= 1.17.
        for (r, now, item) in &ratios {
            assert!(
                (0.85..=1.25).contains(r),
                "{now} {item}: labor {r:.2} × the budget earned"
            );
        }
    }
}
