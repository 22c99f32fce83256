//! What is due on the phone, from its store alone (issue #21): what an app raises a local
//! notification for with no network. The items of `sitesync_core::due`.

use sitesync_core::due::Due;

use crate::{Result, SiteSync, date};

/// What kind of thing is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum DueKind {
    /// The site's log for `date` (its today) is not submitted.
    LogNotSubmitted,
    /// A manager rejected the day at `date`: fix it and submit again (`reason` says why).
    DayRejected,
    /// A key result this user owns has had no check-in for 7 days.
    CheckInDue,
    /// Last month's sign-offs at `site` still lack `workers` workers' signatures.
    MonthUnsigned,
}

/// One thing due. Fields a kind does not use are empty (`""`, `None`, 0).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
#[allow(missing_docs, reason = "fields named for what they hold")]
pub struct DueRecord {
    pub kind: DueKind,
    /// The site (logs, rejections, sign-offs).
    pub site: String,
    /// `YYYY-MM-DD` (logs, rejections), `YYYY-MM` (sign-offs).
    pub date: String,
    /// The manager's reason for a rejection.
    pub reason: String,
    /// The OKR cycle of a check-in.
    pub cycle: String,
    /// The key result's id and title of a check-in.
    pub key_result: String,
    pub title: String,
    /// The latest check-in's date, `YYYY-MM-DD` (`None`: none this cycle).
    pub last_check_in: Option<String>,
    /// Workers still to sign (sign-offs).
    pub workers: u32,
}

impl From<&Due> for DueRecord {
    fn from(d: &Due) -> Self {
        let mut r = DueRecord {
            kind: DueKind::LogNotSubmitted,
            site: String::new(),
            date: String::new(),
            reason: String::new(),
            cycle: String::new(),
            key_result: String::new(),
            title: String::new(),
            last_check_in: None,
            workers: 0,
        };
        match d {
            Due::LogNotSubmitted { site, date } => {
                r.site = site.to_string();
                r.date = date.to_string();
            }
            Due::DayRejected { site, date, reason } => {
                r.kind = DueKind::DayRejected;
                r.site = site.to_string();
                r.date = date.to_string();
                r.reason = reason.clone();
            }
            Due::CheckInDue {
                cycle,
                key_result,
                title,
                last_check_in,
                ..
            } => {
                r.kind = DueKind::CheckInDue;
                r.cycle = cycle.clone();
                r.key_result = key_result.clone();
                r.title = title.clone();
                r.last_check_in = last_check_in.map(|d| d.to_string());
            }
            Due::MonthUnsigned { site, month, workers } => {
                r.kind = DueKind::MonthUnsigned;
                r.site = site.to_string();
                r.date = month.clone();
                r.workers = u32::try_from(*workers).unwrap_or(u32::MAX);
            }
        }
        r
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl SiteSync {
    /// What is due for this phone's user, from the store alone (works offline): as of `at`
    /// (`YYYY-MM-DD`) at every site, or each site's own today when `None`.
    pub async fn due(&self, at: Option<String>) -> Result<Vec<DueRecord>> {
        let at = at.map(|t| date("at", &t)).transpose()?;
        self.with_store(move |s| Ok(s.due(at)?.iter().map(DueRecord::from).collect()))
            .await
    }
}
