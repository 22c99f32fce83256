-- Reminders (#21): where an org's reminders go, which events were claimed for delivery, and every
-- delivery attempt. Kept with the credentials: a channel's URL and secret are credentials of a bot.
CREATE TABLE notify_channels (
    -- `nc-` and 16 hex digits.
    channel_id TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL,
    -- wecom, dingtalk, feishu or webhook.
    kind       TEXT NOT NULL,
    url        TEXT NOT NULL,
    -- The signing secret (DingTalk, Feishu, webhook), if any.
    secret     TEXT,
    -- The rules it receives, comma-separated stable names.
    rules      TEXT NOT NULL,
    -- JSON list of {rule (null: every rule), to}: whom a message @-mentions.
    mentions   TEXT NOT NULL,
    -- Quiet hours in each site's own time, `HH:MM`; both or neither.
    quiet_from TEXT,
    quiet_to   TEXT,
    -- Unix milliseconds.
    created_at INTEGER NOT NULL
);
CREATE INDEX notify_channels_org ON notify_channels (org_id);
-- One row per channel and reminder event, inserted before sending: whoever inserts it (or takes
-- over a failed or abandoned claim) delivers; everyone else skips it.
CREATE TABLE notify_events (
    channel_id TEXT NOT NULL,
    -- The event's stable key: rule, subjects and period (`missing_log/site-a/2026-12-10`).
    event_key  TEXT NOT NULL,
    org_id     TEXT NOT NULL,
    -- sending, delivered or failed.
    status     TEXT NOT NULL,
    -- Delivery rounds claimed so far (each round retries with backoff).
    rounds     INTEGER NOT NULL,
    claimed_by TEXT NOT NULL,
    -- Unix milliseconds.
    claimed_at INTEGER NOT NULL,
    PRIMARY KEY (channel_id, event_key)
);
-- Every delivery attempt, for the org admin.
CREATE TABLE notify_log (
    attempt_id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id     TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    event_key  TEXT NOT NULL,
    -- 1, 2, … within its round.
    attempt    INTEGER NOT NULL,
    -- ok or error.
    status     TEXT NOT NULL,
    -- The HTTP status answered, if any.
    http_status INTEGER,
    -- Why it failed ("" when it did not).
    error      TEXT NOT NULL,
    -- Unix milliseconds.
    at         INTEGER NOT NULL
);
CREATE INDEX notify_log_org ON notify_log (org_id, attempt_id);
