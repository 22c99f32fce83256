//! Reminder channels, claimed events and the delivery log in the server's own database (tables
//! `notify_channels`, `notify_events`, `notify_log`; migration 007 / PostgreSQL 006). The typed
//! view of a channel is `crate::reminders::channel`; rows here keep its columns as stored.

use sitesync_core::store::sql::{Row, Value};

use super::{AuthDb, random_hex};
use crate::error::Result;

/// A channel as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs, reason = "fields named as the table's columns")]
pub struct ChannelRow {
    pub channel_id: String,
    pub org_id: String,
    pub kind: String,
    pub url: String,
    pub secret: Option<String>,
    /// Comma-separated rule names.
    pub rules: String,
    /// JSON list of mentions.
    pub mentions: String,
    pub quiet_from: Option<String>,
    pub quiet_to: Option<String>,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// One delivery attempt as logged.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Attempt {
    /// The channel it went to.
    pub channel: String,
    /// The reminder event's key.
    pub event: String,
    /// 1, 2, … within its delivery round.
    pub attempt: i64,
    /// `ok` or `error`.
    pub status: String,
    /// The HTTP status the receiver answered, if it answered.
    pub http_status: Option<i64>,
    /// Why it failed ("" when it did not).
    pub error: String,
    /// When (RFC 3339).
    pub at: String,
}

const COLUMNS: &str = "channel_id, org_id, kind, url, secret, rules, mentions, quiet_from, quiet_to, created_at";

fn channel(r: &Row) -> sitesync_core::Result<ChannelRow> {
    Ok(ChannelRow {
        channel_id: r.text(0)?,
        org_id: r.text(1)?,
        kind: r.text(2)?,
        url: r.text(3)?,
        secret: r.opt_text(4)?,
        rules: r.text(5)?,
        mentions: r.text(6)?,
        quiet_from: r.opt_text(7)?,
        quiet_to: r.opt_text(8)?,
        created_at: r.int(9)?,
    })
}

fn opt(v: &Option<String>) -> Value {
    v.as_deref().map_or(Value::Null, Value::from)
}

/// How long a claim may stay `sending` before another run takes it over: longer than a delivery
/// round with all its retries, so only a claim whose node died is taken over.
pub const ABANDONED_AFTER_MS: i64 = 10 * 60 * 1000;

/// Delivery rounds an event gets before it is given up (each round retries with backoff).
pub const MAX_ROUNDS: i64 = 3;

impl AuthDb {
    /// Whether the org exists (a channel is added to an existing org only).
    pub fn org_exists(&self, org: &str) -> Result<bool> {
        Ok(self.count("SELECT COUNT(*) FROM orgs WHERE org_id = ?1", &[org.into()])? > 0)
    }

    /// Stores a new channel (its `channel_id` and `created_at` are made here) and answers it.
    pub fn add_channel(&self, c: &ChannelRow) -> Result<ChannelRow> {
        let stored = ChannelRow {
            channel_id: format!("nc-{}", random_hex(8)?),
            created_at: chrono::Utc::now().timestamp_millis(),
            ..c.clone()
        };
        self.exec(
            &format!("INSERT INTO notify_channels ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
            &[
                stored.channel_id.as_str().into(),
                stored.org_id.as_str().into(),
                stored.kind.as_str().into(),
                stored.url.as_str().into(),
                opt(&stored.secret),
                stored.rules.as_str().into(),
                stored.mentions.as_str().into(),
                opt(&stored.quiet_from),
                opt(&stored.quiet_to),
                stored.created_at.into(),
            ],
        )?;
        Ok(stored)
    }

    /// The channels of `org` (every org's with `None`), oldest first.
    pub fn channels(&self, org: Option<&str>) -> Result<Vec<ChannelRow>> {
        let rows = match org {
            Some(org) => self.rows(
                &format!("SELECT {COLUMNS} FROM notify_channels WHERE org_id = ?1 ORDER BY created_at, channel_id"),
                &[org.into()],
            )?,
            None => self.rows(
                &format!("SELECT {COLUMNS} FROM notify_channels ORDER BY org_id, created_at, channel_id"),
                &[],
            )?,
        };
        Ok(rows.iter().map(channel).collect::<sitesync_core::Result<_>>()?)
    }

    /// The channel with this id.
    pub fn channel(&self, id: &str) -> Result<Option<ChannelRow>> {
        let row = self.first(
            &format!("SELECT {COLUMNS} FROM notify_channels WHERE channel_id = ?1"),
            &[id.into()],
        )?;
        Ok(row.as_ref().map(channel).transpose()?)
    }

    /// Removes a channel; whether it existed. Its claimed events and log stay (the log is history).
    pub fn remove_channel(&self, id: &str) -> Result<bool> {
        Ok(self.exec("DELETE FROM notify_channels WHERE channel_id = ?1", &[id.into()])? > 0)
    }

    /// Claims `event` for delivery to `channel` by `node` at `now_ms`: whether this caller now
    /// delivers it. The row's primary key decides between nodes (and between the scheduler and an
    /// admin command): a new event is claimed by whoever inserts it; an existing one only when its
    /// last round failed (up to [`MAX_ROUNDS`]) or its claim was abandoned (a node died while
    /// sending, [`ABANDONED_AFTER_MS`]). A delivered event is never claimed again.
    pub fn claim_event(&self, channel: &str, event: &str, org: &str, node: &str, now_ms: i64) -> Result<bool> {
        let row = self.first(
            "INSERT INTO notify_events (channel_id, event_key, org_id, status, rounds, claimed_by, claimed_at)
             VALUES (?1, ?2, ?3, 'sending', 1, ?4, ?5)
             ON CONFLICT (channel_id, event_key) DO UPDATE
                SET status = 'sending', rounds = notify_events.rounds + 1,
                    claimed_by = excluded.claimed_by, claimed_at = excluded.claimed_at
             WHERE notify_events.rounds < ?6
               AND (notify_events.status = 'failed'
                    OR (notify_events.status = 'sending' AND notify_events.claimed_at < ?7))
             RETURNING channel_id",
            &[
                channel.into(),
                event.into(),
                org.into(),
                node.into(),
                now_ms.into(),
                MAX_ROUNDS.into(),
                now_ms.saturating_sub(ABANDONED_AFTER_MS).into(),
            ],
        )?;
        Ok(row.is_some())
    }

    /// Records how a claimed event's round ended: `delivered` or `failed`.
    pub fn finish_event(&self, channel: &str, event: &str, delivered: bool) -> Result<()> {
        self.exec(
            "UPDATE notify_events SET status = ?3 WHERE channel_id = ?1 AND event_key = ?2",
            &[
                channel.into(),
                event.into(),
                if delivered { "delivered" } else { "failed" }.into(),
            ],
        )?;
        Ok(())
    }

    /// Whether `event` was delivered to `channel`.
    pub fn event_delivered(&self, channel: &str, event: &str) -> Result<bool> {
        Ok(self.count(
            "SELECT COUNT(*) FROM notify_events WHERE channel_id = ?1 AND event_key = ?2 AND status = 'delivered'",
            &[channel.into(), event.into()],
        )? > 0)
    }

    /// Logs one delivery attempt of `org`'s event.
    pub fn log_attempt(&self, org: &str, a: &Attempt, at_ms: i64) -> Result<()> {
        self.exec(
            "INSERT INTO notify_log (org_id, channel_id, event_key, attempt, status, http_status, error, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            &[
                org.into(),
                a.channel.as_str().into(),
                a.event.as_str().into(),
                a.attempt.into(),
                a.status.as_str().into(),
                a.http_status.map_or(Value::Null, Value::Int),
                a.error.as_str().into(),
                at_ms.into(),
            ],
        )?;
        Ok(())
    }

    /// The last `limit` delivery attempts of `org`, newest first.
    pub fn delivery_log(&self, org: &str, limit: i64) -> Result<Vec<Attempt>> {
        let rows = self.rows(
            "SELECT channel_id, event_key, attempt, status, http_status, error, at FROM notify_log
             WHERE org_id = ?1 ORDER BY attempt_id DESC LIMIT ?2",
            &[org.into(), limit.into()],
        )?;
        rows.iter()
            .map(|r| {
                let at = r.int(6)?;
                Ok(Attempt {
                    channel: r.text(0)?,
                    event: r.text(1)?,
                    attempt: r.int(2)?,
                    status: r.text(3)?,
                    http_status: r.opt_int(4)?,
                    error: r.text(5)?,
                    at: chrono::DateTime::from_timestamp_millis(at)
                        .unwrap_or_default()
                        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                })
            })
            .collect::<sitesync_core::Result<_>>()
            .map_err(Into::into)
    }
}
