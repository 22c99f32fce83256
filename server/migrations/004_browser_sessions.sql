-- Dashboard sign-ins: the browser holds a random session id in its cookie, never the device token.
-- Only the id's SHA-256 is stored. A session ends at sign-out, when its device is revoked, after
-- `idle` without a request, or at `expires_at` whatever happens (limits in `auth::BrowserSessions`).
CREATE TABLE browser_sessions (
    id_hash    TEXT PRIMARY KEY,
    device_id  TEXT NOT NULL REFERENCES devices(device_id),
    -- Unix seconds.
    created_at INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX browser_sessions_by_device ON browser_sessions (device_id);
