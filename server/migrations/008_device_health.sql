-- Each device's last sync connection as the server saw it (#21, the devices page): when, and what
-- the app said of itself in the upgrade's headers (`X-Sitesync-App`, `X-Sitesync-Protocol`,
-- `X-Sitesync-Pending`; docs/protocol.md). One row a device, replaced at every connection; a phone
-- that sends no header leaves its text empty and its count NULL.
CREATE TABLE device_health (
    device_id    TEXT PRIMARY KEY REFERENCES devices(device_id),
    -- RFC 3339, UTC.
    connected_at TEXT NOT NULL,
    app_version  TEXT NOT NULL DEFAULT '',
    protocol     TEXT NOT NULL DEFAULT '',
    -- Documents the phone said it held with changes the server had not acknowledged.
    pending      INTEGER
) WITHOUT ROWID;
