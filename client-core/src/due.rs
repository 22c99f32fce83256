//! What is due on this phone, answered from the local store alone, so an app can raise a local
//! notification with no network (issue 21, *Reminders*): today's log not submitted, a rejected day
//! to fix, a key-result check-in due, a month's sign-offs to collect.
//!
//! Decision (2026-11-30): the server's reminders (WeCom, DingTalk …) and this list answer the same
//! questions, but this one reads only what the phone holds: it can be behind the server (a day
//! approved at head office since the last sync still shows as submitted, never as due), and it
//! never says something is due that the phone's own records show done.

use chrono::{Datelike, Months, NaiveDate};
use serde::Serialize;

use crate::error::Result;
use crate::ids::{DocId, SiteId};
use crate::labor::{DayStatus, ReviewAction};
use crate::rules::Role;
use crate::signoff::SignoffState;
use crate::store::Store;

/// A check-in is due once a key result's owner has not checked in for this many days (weekly, the
/// server's default rule).
pub const CHECK_IN_EVERY_DAYS: i64 = 7;

/// One thing the phone's user should do, with what the app needs to say it and open the right page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[allow(missing_docs, reason = "fields named for what they hold")]
pub enum Due {
    /// The site's log for its today is not submitted (a draft, or nothing written yet).
    LogNotSubmitted {
        site: SiteId,
        /// The site's today (its own time zone), or the `at` date asked for.
        date: NaiveDate,
    },
    /// A manager sent the day back: fix it and submit again.
    DayRejected {
        site: SiteId,
        date: NaiveDate,
        /// The manager's reason, as written.
        reason: String,
    },
    /// A key result this user owns has had no check-in for [`CHECK_IN_EVERY_DAYS`] days.
    CheckInDue {
        org: String,
        cycle: String,
        /// The key result's id.
        key_result: String,
        title: String,
        /// The latest check-in's date (`None`: never checked in this cycle).
        last_check_in: Option<NaiveDate>,
    },
    /// Workers whose month (the one before today's) still needs their signature.
    MonthUnsigned {
        site: SiteId,
        /// `YYYY-MM`.
        month: String,
        /// How many workers have a day unsigned, or changed since they signed it.
        workers: usize,
    },
}

impl Store {
    /// What is due for this store's user, as of `at` (every site's and the org's date), or as of
    /// each site's own today (the OKR check-ins: China's, the default zone) when `at` is `None`.
    /// Reads nothing but the store. Logs and sign-offs are a foreman's or site manager's, for the
    /// sites they are granted (every site in the store before the first sync says who they are);
    /// check-ins are due to whoever owns the key result.
    pub fn due(&mut self, at: Option<NaiveDate>) -> Result<Vec<Due>> {
        let author = self.author().cloned();
        let writes_logs = author
            .as_ref()
            .is_none_or(|a| matches!(a.role, Role::Foreman | Role::SiteManager));
        let mut sites: Vec<SiteId> = self.sites()?.into_iter().map(|s| s.id).collect();
        if let Some(a) = author.as_ref().filter(|a| !a.all_sites) {
            sites.retain(|s| a.sites.iter().any(|g| g == s.as_str()));
        }
        let mut out = Vec::new();
        if writes_logs {
            for site in &sites {
                let today = match at {
                    Some(d) => d,
                    None => self.today(site)?,
                };
                let (_, status) = self.day_content(site, today)?;
                if status == DayStatus::Draft {
                    out.push(Due::LogNotSubmitted {
                        site: site.clone(),
                        date: today,
                    });
                }
            }
            out.extend(self.rejected_days(&sites)?);
            for site in &sites {
                let today = match at {
                    Some(d) => d,
                    None => self.today(site)?,
                };
                out.extend(self.month_unsigned(site, today)?);
            }
        }
        let today = at.unwrap_or_else(|| {
            chrono::Utc::now()
                .with_timezone(&chrono_tz::Asia::Shanghai)
                .date_naive()
        });
        let me: Vec<String> = match &author {
            Some(a) => vec![a.user_id.clone(), a.user_name.clone()],
            None => vec![self.user().to_string()],
        };
        out.extend(self.check_ins_due(&me, today)?);
        Ok(out)
    }

    /// Rejected days of `sites`, each with the reason of its latest rejection.
    fn rejected_days(&mut self, sites: &[SiteId]) -> Result<Vec<Due>> {
        let rows = self.db().query(
            "SELECT site_id, day FROM day_status WHERE status = ?1 ORDER BY day, site_id",
            &[DayStatus::Rejected.as_str().into()],
        )?;
        let mut out = Vec::new();
        for r in rows {
            let Ok(site) = SiteId::new(&r.text(0)?) else { continue };
            let Ok(date) = crate::ids::parse_date(&r.text(1)?) else {
                continue;
            };
            if !sites.contains(&site) {
                continue;
            }
            let day = self.day(&site, date)?;
            let reason = day
                .reviews
                .iter()
                .rev()
                .find(|e| e.action == ReviewAction::Rejected)
                .map(|e| e.reason.clone())
                .unwrap_or_default();
            out.push(Due::DayRejected { site, date, reason });
        }
        Ok(out)
    }

    /// The month before `today`'s at `site`, if a worker has a day there he has not signed (or that
    /// changed since he did). A site whose master data is not here yet has nothing to collect.
    fn month_unsigned(&mut self, site: &SiteId, today: NaiveDate) -> Result<Option<Due>> {
        let Some(last_month) = today.with_day(1).and_then(|d| d.checked_sub_months(Months::new(1))) else {
            return Ok(None);
        };
        let in_month = |d: &DocId| {
            matches!(d, DocId::Day(s, day) if s == site
                && day.year() == last_month.year() && day.month() == last_month.month())
        };
        if !self.doc_ids()?.iter().any(in_month) {
            return Ok(None);
        }
        let sheet = self.month_signoffs(site, last_month)?;
        let workers = sheet
            .workers
            .iter()
            .filter(|w| matches!(w.state, SignoffState::Unsigned | SignoffState::ChangedSinceSigned))
            .count();
        Ok((workers > 0).then(|| Due::MonthUnsigned {
            site: site.clone(),
            month: sheet.month,
            workers,
        }))
    }

    /// Key results owned by one of `me` (the user's id or name), in open cycles running on `today`,
    /// not fed by a metric, with no check-in in the last [`CHECK_IN_EVERY_DAYS`] days (counted from
    /// the cycle's start when there is none).
    fn check_ins_due(&mut self, me: &[String], today: NaiveDate) -> Result<Vec<Due>> {
        let mut out = Vec::new();
        for (org, cycle) in self.okr_cycles()? {
            let board = self.okr_board(&org, &cycle, today)?;
            if board.cycle.closed || today < board.cycle.start || today > board.cycle.end {
                continue;
            }
            for kr in board.objectives.iter().flat_map(|o| &o.key_results) {
                if kr.kr.metric.is_some() || !me.iter().any(|m| m == &kr.kr.owner) {
                    continue;
                }
                let last = kr.last_checkin.as_ref().map(|c| c.date);
                let since = last.unwrap_or(board.cycle.start).max(board.cycle.start);
                if (today - since).num_days() >= CHECK_IN_EVERY_DAYS {
                    out.push(Due::CheckInDue {
                        org: org.clone(),
                        cycle: cycle.clone(),
                        key_result: kr.kr.id.clone(),
                        title: kr.kr.title.clone(),
                        last_check_in: last,
                    });
                }
            }
        }
        Ok(out)
    }
}
