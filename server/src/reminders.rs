//! Reminders to the chat tools site teams use (企业微信 WeCom, 钉钉 DingTalk, 飞书 Feishu/Lark, or a
//! generic JSON webhook): a log not written by 19:00, a day waiting for approval, a month not
//! signed, an OKR check-in due, a key result gone red.
//!
//! [`run`] is the whole of it: evaluate every rule of every org that has a channel as of a moment
//! ([`rules::due`]), then deliver each reminder due to each channel that receives its rule. The
//! server's scheduler calls it every minute with the clock; `sitesync-server admin reminders run
//! --at T` calls it once with `T`. Nothing else sends.
//!
//! Once per event (decided 2026-11-30): every reminder has a stable key (rule, subjects, period:
//! `missing_log/site-a/2026-12-10`). Before sending, the key is claimed for the channel by
//! inserting a row under a primary key (`AuthDb::claim_event`); only the inserter sends, so two
//! runs for the same moment, a restart, or several nodes on one PostgreSQL never send it twice.
//! A round that fails after its retries leaves the claim `failed`, and a later evaluation that
//! still finds the event due claims it again (up to three rounds); a claim left `sending` by a node
//! that died is taken over after ten minutes. So: at most once while delivery works and the node
//! stays up; at least once (bounded) when the receiver fails; possibly twice only when a node dies
//! after the platform accepted a message and before it wrote that down (RELIABILITY.md).
//!
//! Quiet hours hold a reminder without claiming it: the first evaluation after they end sends it.

pub mod channel;
pub mod delivery;
pub mod rules;

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::auth::Attempt;
use crate::error::{Error, Result};
use crate::state::AppState;
use channel::Channel;
use delivery::Backoff;

/// A reminder rule, by its stable name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// An active site with no labor logged for the day by 19:00 site time.
    MissingLog,
    /// A submitted day waiting for approval more than 24 hours.
    ApprovalWaiting,
    /// Workers who have not signed the month before by the 3rd.
    UnsignedMonth,
    /// A key result with no check-in for a week.
    CheckinDue,
    /// A key result red at its latest check-in.
    KrRed,
}

impl Rule {
    /// Every rule: what a channel receives unless told otherwise.
    pub const ALL: [Rule; 5] = [
        Rule::MissingLog,
        Rule::ApprovalWaiting,
        Rule::UnsignedMonth,
        Rule::CheckinDue,
        Rule::KrRed,
    ];

    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::MissingLog => "missing_log",
            Rule::ApprovalWaiting => "approval_waiting",
            Rule::UnsignedMonth => "unsigned_month",
            Rule::CheckinDue => "checkin_due",
            Rule::KrRed => "kr_red",
        }
    }
}

impl FromStr for Rule {
    type Err = Error;
    fn from_str(s: &str) -> Result<Rule> {
        Rule::ALL.into_iter().find(|r| r.as_str() == s.trim()).ok_or_else(|| {
            Error::BadRequest(format!(
                "unknown rule {s:?}: missing_log, approval_waiting, unsigned_month, checkin_due or kr_red"
            ))
        })
    }
}

/// One reminder due: what it is about and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reminder {
    /// The rule that found it.
    pub rule: Rule,
    /// Stable across evaluations: the same event always has the same key.
    pub key: String,
    /// The org.
    pub org: String,
    /// The site, for site rules.
    pub site: Option<String>,
    /// The site's name.
    pub site_name: Option<String>,
    /// Ids of what it is about: the date, the workers, the cycle and key result.
    pub subjects: Vec<String>,
    /// The message, in Chinese, naming sites and people by name.
    pub text_zh: String,
    /// The message in English (the generic webhook carries both).
    pub text_en: String,
    /// The zone quiet hours are read in: the site's, or the org's for OKR rules.
    pub tz: chrono_tz::Tz,
}

/// How a run evaluates and delivers.
#[derive(Debug, Clone)]
pub struct Options {
    /// The rules' thresholds.
    pub settings: rules::Settings,
    /// Retries within a delivery round.
    pub backoff: Backoff,
    /// Who claims (for the claim's row: which node or command sent it).
    pub node: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            settings: rules::Settings::default(),
            backoff: Backoff::default(),
            node: format!("{}-{}", hostname(), std::process::id()),
        }
    }
}

/// This machine's name, for claims ("" when unknown).
fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// What became of one reminder on one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// The channel.
    pub channel: String,
    /// The event's key.
    pub key: String,
    /// The rule.
    pub rule: Rule,
    /// `delivered`, `failed` (every attempt of the round failed), `quiet` (held by quiet hours)
    /// or `done` (delivered or being delivered before: nothing sent now).
    pub status: &'static str,
    /// Attempts made now.
    pub attempts: u32,
    /// The message.
    pub text: String,
}

/// Evaluates every rule of every org with a channel as of `at` and delivers what is due and not
/// delivered before. The scheduler and `admin reminders run` both call this.
pub async fn run(state: &AppState, at: DateTime<Utc>, opts: &Options) -> Result<Vec<Outcome>> {
    let rows = state.auth(|a| a.channels(None)).await?;
    let mut by_org: BTreeMap<String, Vec<Channel>> = BTreeMap::new();
    for row in &rows {
        match Channel::try_from(row) {
            Ok(c) => by_org.entry(c.org.clone()).or_default().push(c),
            Err(e) => tracing::warn!(channel = %row.channel_id, error = %e, "reminder channel skipped"),
        }
    }
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| Error::Internal(format!("HTTP client: {e}")))?;
    let mut out = Vec::new();
    for (org, channels) in by_org {
        let mut wanted: Vec<Rule> = channels.iter().flat_map(|c| c.rules.iter().copied()).collect();
        wanted.sort();
        wanted.dedup();
        let (o, settings) = (org.clone(), opts.settings);
        let due = state
            .read(move |auth, store| rules::due(auth, store, &o, at, &wanted, &settings))
            .await?;
        for r in &due {
            for c in channels.iter().filter(|c| c.rules.contains(&r.rule)) {
                out.push(deliver(state, &client, c, r, at, opts).await?);
            }
        }
    }
    Ok(out)
}

/// Delivers `r` to `c` unless quiet hours hold it or it was claimed before.
async fn deliver(
    state: &AppState,
    client: &reqwest::Client,
    c: &Channel,
    r: &Reminder,
    at: DateTime<Utc>,
    opts: &Options,
) -> Result<Outcome> {
    let mut outcome = Outcome {
        channel: c.id.clone(),
        key: r.key.clone(),
        rule: r.rule,
        status: "done",
        attempts: 0,
        text: r.text_zh.clone(),
    };
    if c.quiet.is_some_and(|q| q.holds(at.with_timezone(&r.tz).time())) {
        outcome.status = "quiet";
        return Ok(outcome);
    }
    let (id, key, org, node) = (c.id.clone(), r.key.clone(), r.org.clone(), opts.node.clone());
    let now = Utc::now().timestamp_millis();
    if !state.auth(move |a| a.claim_event(&id, &key, &org, &node, now)).await? {
        return Ok(outcome);
    }
    let attempts = opts.backoff.attempts.max(1);
    let mut delivered = false;
    for n in 1..=attempts {
        let now = Utc::now().timestamp_millis();
        let tried = match delivery::request(c, r, now) {
            Ok(req) => delivery::attempt(client, c.kind, &req).await,
            Err(e) => delivery::Tried {
                http_status: None,
                error: Some(format!("not built: {e}")),
            },
        };
        outcome.attempts = n;
        let logged = Attempt {
            channel: c.id.clone(),
            event: r.key.clone(),
            attempt: i64::from(n),
            status: if tried.error.is_none() { "ok" } else { "error" }.into(),
            http_status: tried.http_status.map(i64::from),
            error: tried.error.clone().unwrap_or_default(),
            at: String::new(),
        };
        let org = r.org.clone();
        state.auth(move |a| a.log_attempt(&org, &logged, now)).await?;
        if tried.error.is_none() {
            delivered = true;
            break;
        }
        tracing::warn!(channel = %c.id, event = %r.key, attempt = n, error = ?tried.error, "reminder not delivered");
        if n < attempts {
            tokio::time::sleep(opts.backoff.wait(n)).await;
        }
    }
    let (id, key) = (c.id.clone(), r.key.clone());
    state.auth(move |a| a.finish_event(&id, &key, delivered)).await?;
    outcome.status = if delivered { "delivered" } else { "failed" };
    Ok(outcome)
}

/// How often the server's scheduler evaluates.
pub const EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// The server's scheduler: [`run`] with the clock every minute, on the one node holding the
/// `reminders` lease (claims keep it once per event even if two nodes ran it).
pub async fn schedule(state: AppState) {
    let opts = Options::default();
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match state.lease("reminders", EVERY * 3).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "the reminders' lease could not be read");
                continue;
            }
        }
        match run(&state, Utc::now(), &opts).await {
            Ok(done) => {
                let sent = done.iter().filter(|o| o.status == "delivered").count();
                if sent > 0 {
                    tracing::info!(sent, "reminders delivered");
                }
            }
            Err(e) => tracing::warn!(error = %e, "evaluating reminders failed"),
        }
    }
}
