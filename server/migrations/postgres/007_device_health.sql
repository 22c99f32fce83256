-- Each device's last sync connection (see the SQLite step 007_device_health.sql).
CREATE TABLE device_health (
    device_id    TEXT COLLATE "C" PRIMARY KEY REFERENCES devices(device_id),
    connected_at TEXT NOT NULL,
    app_version  TEXT NOT NULL DEFAULT '',
    protocol     TEXT NOT NULL DEFAULT '',
    pending      BIGINT
);
