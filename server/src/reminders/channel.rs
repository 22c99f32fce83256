//! Where an org's reminders go: a chat bot's incoming webhook (WeCom, DingTalk, Feishu/Lark) or a
//! generic JSON webhook, the rules it receives, whom it @-mentions per rule, and its quiet hours.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveTime;
use serde::{Deserialize, Serialize};

use super::Rule;
use crate::auth::ChannelRow;
use crate::error::{Error, Result};

/// The platform a channel posts to; each expects its own body and signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// 企业微信 group bot (`qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…`); no signature.
    Wecom,
    /// 钉钉 custom robot; with a secret, its URL is signed per request.
    Dingtalk,
    /// 飞书/Lark custom bot; with a secret, its body carries a signature.
    Feishu,
    /// Any HTTPS endpoint taking sitesync's own JSON body; with a secret, an HMAC header.
    Webhook,
}

impl Kind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Wecom => "wecom",
            Kind::Dingtalk => "dingtalk",
            Kind::Feishu => "feishu",
            Kind::Webhook => "webhook",
        }
    }
}

impl FromStr for Kind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Kind> {
        [Kind::Wecom, Kind::Dingtalk, Kind::Feishu, Kind::Webhook]
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                Error::BadRequest(format!(
                    "unknown channel kind {s:?}: wecom, dingtalk, feishu or webhook"
                ))
            })
    }
}

/// Whom a message @-mentions: a mobile number for WeCom and DingTalk, a user or open id for
/// Feishu, passed through in the generic webhook's `at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Mention {
    /// Only for this rule's reminders (`None`: every rule's).
    #[serde(default)]
    pub rule: Option<Rule>,
    /// The mobile number or id.
    pub to: String,
}

impl FromStr for Mention {
    type Err = Error;
    /// `TO` (every rule) or `RULE=TO`.
    fn from_str(s: &str) -> Result<Mention> {
        let (rule, to) = match s.split_once('=') {
            Some((rule, to)) => (Some(rule.parse()?), to),
            None => (None, s),
        };
        let to = to.trim();
        if to.is_empty() || to.len() > 64 || to.chars().any(|c| c.is_control() || c == ',') {
            return Err(Error::BadRequest(format!("mention {s:?}: a mobile number or an id")));
        }
        Ok(Mention {
            rule,
            to: to.to_string(),
        })
    }
}

/// Hours in which nothing is sent, in each site's own time; a span past midnight (22:00–07:00)
/// wraps. A reminder due in them is sent at the first evaluation after they end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    /// First quiet minute.
    pub from: NaiveTime,
    /// First minute no longer quiet.
    pub to: NaiveTime,
}

impl QuietHours {
    /// Whether `t` (site-local) is quiet.
    pub fn holds(self, t: NaiveTime) -> bool {
        if self.from <= self.to {
            self.from <= t && t < self.to
        } else {
            t >= self.from || t < self.to
        }
    }
}

impl FromStr for QuietHours {
    type Err = Error;
    /// `HH:MM-HH:MM`.
    fn from_str(s: &str) -> Result<QuietHours> {
        let bad = || Error::BadRequest(format!("quiet hours {s:?}: HH:MM-HH:MM, e.g. 22:00-07:00"));
        let (from, to) = s.split_once('-').ok_or_else(bad)?;
        let time = |t: &str| NaiveTime::parse_from_str(t.trim(), "%H:%M").map_err(|_| bad());
        let q = QuietHours {
            from: time(from)?,
            to: time(to)?,
        };
        if q.from == q.to {
            return Err(bad());
        }
        Ok(q)
    }
}

impl fmt::Display for QuietHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.from.format("%H:%M"), self.to.format("%H:%M"))
    }
}

/// A channel, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    /// `nc-…`.
    pub id: String,
    /// The org whose reminders it receives.
    pub org: String,
    /// The platform.
    pub kind: Kind,
    /// The webhook URL (a bot's URL holds its access token: it is shown to the org admin only).
    pub url: String,
    /// The signing secret.
    pub secret: Option<String>,
    /// The rules it receives (never empty).
    pub rules: Vec<Rule>,
    /// Whom its messages @-mention.
    pub mentions: Vec<Mention>,
    /// When it stays silent.
    pub quiet: Option<QuietHours>,
}

/// A channel to add, as the CLI and the API take it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct NewChannel {
    /// The org whose reminders it receives.
    pub org: String,
    /// The platform.
    pub kind: Kind,
    /// The webhook URL (http or https).
    pub url: String,
    /// The signing secret (DingTalk's `SEC…`, Feishu's, or the generic webhook's HMAC key).
    #[serde(default)]
    pub secret: Option<String>,
    /// The rules it receives (default: every rule).
    #[serde(default)]
    pub rules: Option<Vec<Rule>>,
    /// Whom its messages @-mention, per rule or for all.
    #[serde(default)]
    pub mentions: Vec<Mention>,
    /// Quiet hours in each site's own time, `HH:MM-HH:MM`.
    #[serde(default)]
    pub quiet: Option<String>,
}

impl NewChannel {
    /// Checks it and makes the row to store (nothing is stored for a bad channel).
    pub fn row(&self) -> Result<ChannelRow> {
        let url = reqwest::Url::parse(&self.url).map_err(|e| Error::BadRequest(format!("url: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(Error::BadRequest("url: an http or https address".into()));
        }
        if let Some(s) = &self.secret
            && (s.is_empty() || s.len() > 256)
        {
            return Err(Error::BadRequest("secret: 1 to 256 characters".into()));
        }
        let rules = match &self.rules {
            Some(r) if r.is_empty() => return Err(Error::BadRequest("rules: at least one".into())),
            Some(r) => r.clone(),
            None => Rule::ALL.to_vec(),
        };
        let quiet = self.quiet.as_deref().map(QuietHours::from_str).transpose()?;
        let (quiet_from, quiet_to) = match quiet {
            Some(q) => (
                Some(q.from.format("%H:%M").to_string()),
                Some(q.to.format("%H:%M").to_string()),
            ),
            None => (None, None),
        };
        Ok(ChannelRow {
            channel_id: String::new(),
            org_id: self.org.clone(),
            kind: self.kind.as_str().to_string(),
            url: self.url.clone(),
            secret: self.secret.clone(),
            rules: rules.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(","),
            mentions: serde_json::to_string(&self.mentions).map_err(|e| Error::Internal(e.to_string()))?,
            quiet_from,
            quiet_to,
            created_at: 0,
        })
    }
}

impl TryFrom<&ChannelRow> for Channel {
    type Error = Error;
    fn try_from(r: &ChannelRow) -> Result<Channel> {
        let bad = |what: &str| Error::Internal(format!("channel {}: stored {what} unreadable", r.channel_id));
        let quiet = match (&r.quiet_from, &r.quiet_to) {
            (Some(from), Some(to)) => Some(format!("{from}-{to}").parse().map_err(|_| bad("quiet hours"))?),
            _ => None,
        };
        Ok(Channel {
            id: r.channel_id.clone(),
            org: r.org_id.clone(),
            kind: r.kind.parse().map_err(|_| bad("kind"))?,
            url: r.url.clone(),
            secret: r.secret.clone(),
            rules: r
                .rules
                .split(',')
                .map(Rule::from_str)
                .collect::<Result<_>>()
                .map_err(|_| bad("rules"))?,
            mentions: serde_json::from_str(&r.mentions).map_err(|_| bad("mentions"))?,
            quiet,
        })
    }
}

impl Channel {
    /// Whom a reminder of `rule` mentions here.
    pub fn mentions_for(&self, rule: Rule) -> Vec<String> {
        self.mentions
            .iter()
            .filter(|m| m.rule.is_none_or(|r| r == rule))
            .map(|m| m.to.clone())
            .collect()
    }

    /// The channel as listed to its org admin: the secret is never shown again.
    pub fn view(&self) -> ChannelView {
        ChannelView {
            id: self.id.clone(),
            org: self.org.clone(),
            kind: self.kind,
            url: self.url.clone(),
            signed: self.secret.is_some(),
            rules: self.rules.clone(),
            mentions: self.mentions.clone(),
            quiet: self.quiet.map(|q| q.to_string()),
        }
    }
}

/// A channel as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ChannelView {
    /// `nc-…`, for `notify rm`.
    pub id: String,
    /// The org.
    pub org: String,
    /// The platform.
    pub kind: Kind,
    /// The webhook URL.
    pub url: String,
    /// Whether it has a signing secret (the secret itself is not shown).
    pub signed: bool,
    /// The rules it receives.
    pub rules: Vec<Rule>,
    /// Whom it mentions.
    pub mentions: Vec<Mention>,
    /// Quiet hours, `HH:MM-HH:MM`, site-local.
    pub quiet: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_hours_wrap_past_midnight() {
        let q: QuietHours = "22:00-07:00".parse().unwrap();
        let t = |s| NaiveTime::parse_from_str(s, "%H:%M").unwrap();
        assert!(q.holds(t("23:30")) && q.holds(t("06:59")) && q.holds(t("22:00")));
        assert!(!q.holds(t("07:00")) && !q.holds(t("19:30")));
        let day: QuietHours = "12:00-13:30".parse().unwrap();
        assert!(day.holds(t("12:45")) && !day.holds(t("13:30")) && !day.holds(t("11:59")));
        assert!("22:00".parse::<QuietHours>().is_err() && "07:00-07:00".parse::<QuietHours>().is_err());
    }

    #[test]
    fn a_bad_channel_is_refused_before_anything_is_stored() {
        let ok = NewChannel {
            org: "o".into(),
            kind: Kind::Wecom,
            url: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k".into(),
            secret: None,
            rules: None,
            mentions: vec!["missing_log=13800000000".parse().unwrap()],
            quiet: Some("22:00-07:00".into()),
        };
        let row = ok.row().unwrap();
        assert_eq!(
            row.rules,
            "missing_log,approval_waiting,unsigned_month,checkin_due,kr_red"
        );
        let ch = Channel::try_from(&row).unwrap();
        assert_eq!(ch.mentions_for(Rule::MissingLog), vec!["13800000000".to_string()]);
        assert!(ch.mentions_for(Rule::KrRed).is_empty());
        for bad in [
            NewChannel {
                url: "ftp://x".into(),
                ..ok.clone()
            },
            NewChannel {
                url: "not a url".into(),
                ..ok.clone()
            },
            NewChannel {
                rules: Some(vec![]),
                ..ok.clone()
            },
            NewChannel {
                quiet: Some("25:00-01:00".into()),
                ..ok.clone()
            },
            NewChannel {
                secret: Some(String::new()),
                ..ok.clone()
            },
        ] {
            assert!(matches!(bad.row(), Err(Error::BadRequest(_))), "{bad:?}");
        }
        assert!("nope=1".parse::<Mention>().is_err() && "".parse::<Mention>().is_err());
    }
}
