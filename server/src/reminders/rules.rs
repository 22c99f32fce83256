//! The reminder rules, evaluated for one org as of one moment, each in its site's own time: which
//! reminders are due then, each with a stable key so that it is sent once.
//!
//! The figures come from the same queries the reports read (`Store::labor_rows`, `day_rows`,
//! `review_rows`, `month_signoffs`, `okr_board`): a reminder never says something a report
//! would contradict.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use sitesync_core::Store;
use sitesync_core::ids::{SiteId, WorkerId};
use sitesync_core::labor::{DayStatus, ReviewAction};
use sitesync_core::okr::Status;
use sitesync_core::roster::Roster;
use sitesync_core::signoff::SignoffState;
use sitesync_core::store::RowFilter;

use super::{Reminder, Rule};
use crate::auth::AuthDb;
use crate::error::{Error, Result};

/// The rules' thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Site-local time by which an active site should have logged the day (default 19:00).
    pub log_by: NaiveTime,
    /// Days before today in which a site that logged counts as active (default 14): a finished
    /// site stops being reminded two weeks after its last log.
    pub active_days: i64,
    /// Hours a submitted day may wait for approval (default 24).
    pub approval_hours: i64,
    /// Day of the month by which workers should have signed the month before (default 3).
    pub sign_by_day: u32,
    /// Days without a check-in after which a key result's check-in is due (default 7: weekly).
    pub checkin_every_days: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            log_by: NaiveTime::from_hms_opt(19, 0, 0).unwrap_or(NaiveTime::MIN),
            active_days: 14,
            approval_hours: 24,
            sign_by_day: 3,
            checkin_every_days: 7,
        }
    }
}

/// A site's time zone as its master data names it; Beijing time when it names none we know.
fn zone(roster: &Roster) -> Tz {
    roster.site.timezone.parse().unwrap_or(chrono_tz::Asia::Shanghai)
}

/// The reminders of `org` due at `at` under the rules in `wanted`.
pub fn due(
    auth: &AuthDb,
    store: &mut Store,
    org: &str,
    at: DateTime<Utc>,
    wanted: &[Rule],
    s: &Settings,
) -> Result<Vec<Reminder>> {
    let mut out = Vec::new();
    let mut org_tz = None;
    for site_id in auth.org_sites(org)? {
        let site = SiteId::new(&site_id)?;
        let roster = match store.roster(&site) {
            Ok(r) => r,
            // Registered, but its master data has not arrived: nothing to remind of yet.
            Err(sitesync_core::Error::UnknownSite(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        let tz = zone(&roster);
        org_tz.get_or_insert(tz);
        let local = at.with_timezone(&tz);
        let today = local.date_naive();
        let ctx = SiteCtx {
            org,
            roster: &roster,
            tz,
            today,
        };
        if wanted.contains(&Rule::MissingLog) {
            missing_log(store, &ctx, local.time() >= s.log_by, s, &mut out)?;
        }
        if wanted.contains(&Rule::ApprovalWaiting) {
            approval_waiting(store, &ctx, at, s, &mut out)?;
        }
        if wanted.contains(&Rule::UnsignedMonth) && today.day() >= s.sign_by_day {
            unsigned_month(store, &ctx, &mut out)?;
        }
    }
    if wanted.contains(&Rule::CheckinDue) || wanted.contains(&Rule::KrRed) {
        // An org's OKR cycles run on its sites' calendar (the first site's zone).
        let tz = org_tz.unwrap_or(chrono_tz::Asia::Shanghai);
        okrs(
            auth,
            store,
            org,
            tz,
            at.with_timezone(&tz).date_naive(),
            wanted,
            s,
            &mut out,
        )?;
    }
    Ok(out)
}

/// One site as of the moment.
struct SiteCtx<'a> {
    org: &'a str,
    roster: &'a Roster,
    tz: Tz,
    /// The site's own date at the moment.
    today: NaiveDate,
}

impl SiteCtx<'_> {
    fn reminder(&self, rule: Rule, key: String, subjects: Vec<String>, zh: String, en: String) -> Reminder {
        Reminder {
            rule,
            key,
            org: self.org.to_string(),
            site: Some(self.roster.site.id.to_string()),
            site_name: Some(self.roster.site.name.clone()),
            subjects,
            text_zh: zh,
            text_en: en,
            tz: self.tz,
        }
    }

    fn rows(&self, from: NaiveDate, to: NaiveDate) -> RowFilter {
        RowFilter {
            sites: Some(vec![self.roster.site.id.to_string()]),
            from: Some(from),
            to: Some(to),
            approved_only: false,
        }
    }
}

/// An active site with no labor line for a day: today once it is past `log_by`, and yesterday
/// (so that a reminder held by quiet hours overnight still goes out in the morning).
fn missing_log(
    store: &mut Store,
    c: &SiteCtx<'_>,
    past_log_by: bool,
    s: &Settings,
    out: &mut Vec<Reminder>,
) -> Result<()> {
    let yesterday = c.today - Duration::days(1);
    let last = if past_log_by { c.today } else { yesterday };
    let rows = store.labor_rows(&c.rows(c.today - Duration::days(s.active_days), last))?;
    let mut day = yesterday;
    while day <= last {
        let logged = rows.iter().any(|r| r.date == day);
        // Active: it logged in the days before this one (a finished site stops being reminded).
        let active = rows
            .iter()
            .any(|r| r.date < day && r.date >= day - Duration::days(s.active_days));
        if active && !logged {
            let name = &c.roster.site.name;
            let by = s.log_by.format("%H:%M");
            out.push(c.reminder(
                Rule::MissingLog,
                format!("missing_log/{}/{day}", c.roster.site.id),
                vec![day.to_string()],
                format!("【日志提醒】{name}：{day} 的劳务日志截至 {by} 仍未填写，请工长尽快补记。"),
                format!("{name}: no labor logged for {day} by {by}."),
            ));
        }
        day += Duration::days(1);
    }
    Ok(())
}

/// A submitted day waiting for approval longer than `approval_hours` since it was (last)
/// submitted; a resubmission after a rejection is a new event.
fn approval_waiting(
    store: &mut Store,
    c: &SiteCtx<'_>,
    at: DateTime<Utc>,
    s: &Settings,
    out: &mut Vec<Reminder>,
) -> Result<()> {
    let f = RowFilter {
        sites: Some(vec![c.roster.site.id.to_string()]),
        ..RowFilter::default()
    };
    let waiting: Vec<_> = store
        .day_rows(&f)?
        .into_iter()
        .filter(|d| d.status == DayStatus::Submitted)
        .collect();
    if waiting.is_empty() {
        return Ok(());
    }
    let reviews = store.review_rows(&f)?;
    for d in waiting {
        let Some(submitted) = reviews
            .iter()
            .rfind(|r| r.date == d.date && r.action == ReviewAction::Submitted)
        else {
            continue;
        };
        let Ok(when) = DateTime::parse_from_rfc3339(&submitted.at) else {
            continue;
        };
        let hours = (at - when.with_timezone(&Utc)).num_hours();
        if hours < s.approval_hours {
            continue;
        }
        let name = &c.roster.site.name;
        out.push(c.reminder(
            Rule::ApprovalWaiting,
            format!("approval_waiting/{}/{}/{}", c.roster.site.id, d.date, submitted.at),
            vec![d.date.to_string()],
            format!(
                "【审批提醒】{name}：{} 的日志已提交 {hours} 小时，仍在等待审批。",
                d.date
            ),
            format!("{name}: the log of {} has waited {hours} hours for approval.", d.date),
        ));
    }
    Ok(())
}

/// Workers with lines in the month before who have not signed it (or disputed it, or whose days
/// changed since they signed), as one reminder per site and month naming them.
fn unsigned_month(store: &mut Store, c: &SiteCtx<'_>, out: &mut Vec<Reminder>) -> Result<()> {
    let first = c.today.with_day(1).unwrap_or(c.today);
    let Some(prev) = first.pred_opt().and_then(|d| d.with_day(1)) else {
        return Ok(());
    };
    let sheet = store.month_signoffs(&c.roster.site.id, prev)?;
    let unsigned: Vec<&WorkerId> = sheet
        .workers
        .iter()
        .filter(|w| w.state != SignoffState::Signed)
        .map(|w| &w.worker)
        .collect();
    if unsigned.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = unsigned
        .iter()
        .map(|w| {
            let id = c.roster.resolve_worker(w);
            c.roster.worker(&id).map_or_else(|| w.to_string(), |x| x.name.clone())
        })
        .collect();
    let name = &c.roster.site.name;
    let month = prev.format("%Y-%m");
    let n = names.len();
    out.push(c.reminder(
        Rule::UnsignedMonth,
        format!("unsigned_month/{}/{month}", c.roster.site.id),
        unsigned.iter().map(|w| w.to_string()).collect(),
        format!(
            "【签字提醒】{name}：{}年{}月的考勤还有 {n} 名工人未签字确认：{}。",
            prev.year(),
            prev.month(),
            names.join("、")
        ),
        format!("{name}: {n} workers have not signed {month}: {}.", names.join(", ")),
    ));
    Ok(())
}

/// Key results of the org's open cycles: a check-in due (none for `checkin_every_days`; metric-fed
/// ones are checked in by the server) and a key result red at its latest check-in.
#[allow(clippy::too_many_arguments, reason = "one org's context, passed whole")]
fn okrs(
    auth: &AuthDb,
    store: &mut Store,
    org: &str,
    tz: Tz,
    today: NaiveDate,
    wanted: &[Rule],
    s: &Settings,
    out: &mut Vec<Reminder>,
) -> Result<()> {
    let names = auth.user_names(org)?;
    let owner = |id: &str| names.get(id).map_or(id.to_string(), |(_, n)| n.clone());
    for (o, cycle) in store.okr_cycles()? {
        if o != org {
            continue;
        }
        let board = match store.okr_board(org, &cycle, today) {
            Ok(b) => b,
            Err(sitesync_core::Error::UnknownCycle(_)) => continue,
            Err(e) => return Err(Error::from(e)),
        };
        if board.cycle.closed || today < board.cycle.start || today > board.cycle.end {
            continue;
        }
        let reminder = |rule: Rule, key: String, kr: &str, zh: String, en: String| Reminder {
            rule,
            key,
            org: org.to_string(),
            site: None,
            site_name: None,
            subjects: vec![cycle.clone(), kr.to_string()],
            text_zh: zh,
            text_en: en,
            tz,
        };
        for k in board.objectives.iter().flat_map(|o| &o.key_results) {
            let (title, who) = (&k.kr.title, owner(&k.kr.owner));
            if wanted.contains(&Rule::CheckinDue) && k.kr.metric.is_none() {
                let last = k.last_checkin.as_ref().map_or(board.cycle.start, |c| c.date);
                let days = (today - last).num_days();
                if days >= s.checkin_every_days {
                    // One reminder per week without a check-in.
                    let week = days / s.checkin_every_days;
                    out.push(reminder(
                        Rule::CheckinDue,
                        format!("checkin_due/{org}/{cycle}/{}/{last}/{week}", k.kr.id),
                        &k.kr.id,
                        format!(
                            "【OKR 提醒】关键结果「{title}」（负责人 {who}）已 {days} 天没有更新进展，请本周完成签到。"
                        ),
                        format!("Key result “{title}” ({who}): no check-in for {days} days; a check-in is due."),
                    ));
                }
            }
            if wanted.contains(&Rule::KrRed)
                && k.status == Status::Red
                && let Some(last) = &k.last_checkin
            {
                let (now, target) = (
                    sitesync_core::units::fixed(k.current_milli, 3),
                    sitesync_core::units::fixed(k.kr.target_milli, 3),
                );
                let unit = &k.kr.unit;
                out.push(reminder(
                    Rule::KrRed,
                    format!("kr_red/{org}/{cycle}/{}/{}", k.kr.id, last.id),
                    &k.kr.id,
                    format!("【OKR 预警】关键结果「{title}」（负责人 {who}）已亮红灯：当前 {now} {unit}，目标 {target} {unit}（{} 签到）。", last.date),
                    format!("Key result “{title}” ({who}) is red: {now} {unit} against a target of {target} {unit} (check-in of {}).", last.date),
                ));
            }
        }
    }
    Ok(())
}
