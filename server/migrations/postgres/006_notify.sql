-- Reminders: channels, claimed events, delivery attempts (see the SQLite step 007_notify.sql).
CREATE TABLE notify_channels (
    channel_id TEXT COLLATE "C" PRIMARY KEY,
    org_id     TEXT COLLATE "C" NOT NULL,
    kind       TEXT NOT NULL,
    url        TEXT NOT NULL,
    secret     TEXT,
    rules      TEXT NOT NULL,
    mentions   TEXT NOT NULL,
    quiet_from TEXT,
    quiet_to   TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX notify_channels_org ON notify_channels (org_id);
CREATE TABLE notify_events (
    channel_id TEXT COLLATE "C" NOT NULL,
    event_key  TEXT COLLATE "C" NOT NULL,
    org_id     TEXT COLLATE "C" NOT NULL,
    status     TEXT NOT NULL,
    rounds     BIGINT NOT NULL,
    claimed_by TEXT NOT NULL,
    claimed_at BIGINT NOT NULL,
    PRIMARY KEY (channel_id, event_key)
);
CREATE TABLE notify_log (
    attempt_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id     TEXT COLLATE "C" NOT NULL,
    channel_id TEXT COLLATE "C" NOT NULL,
    event_key  TEXT COLLATE "C" NOT NULL,
    attempt    BIGINT NOT NULL,
    status     TEXT NOT NULL,
    http_status BIGINT,
    error      TEXT NOT NULL,
    at         BIGINT NOT NULL
);
CREATE INDEX notify_log_org ON notify_log (org_id, attempt_id);
