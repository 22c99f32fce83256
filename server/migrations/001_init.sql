-- Server facts: `epoch`, renewed in every backup copy, so phones notice a restore.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- Tenancy and credentials. Documents live in documents.sqlite3 (the same store the phones use).
CREATE TABLE orgs (
    org_id TEXT PRIMARY KEY,
    name   TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE sites (
    site_id TEXT PRIMARY KEY,
    org_id  TEXT NOT NULL REFERENCES orgs(org_id),
    name    TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE users (
    user_id   TEXT PRIMARY KEY,
    org_id    TEXT NOT NULL REFERENCES orgs(org_id),
    name      TEXT NOT NULL,
    role      TEXT NOT NULL CHECK (role IN ('foreman', 'site_manager', 'head_office', 'admin')),
    -- 1: every site of the org, now and later.
    all_sites INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TABLE grants (
    user_id TEXT NOT NULL REFERENCES users(user_id),
    site_id TEXT NOT NULL REFERENCES sites(site_id),
    PRIMARY KEY (user_id, site_id)
) WITHOUT ROWID;

CREATE TABLE devices (
    device_id  TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(user_id),
    -- SHA-256 of the bearer token; the token itself is shown once and never stored.
    token_hash TEXT NOT NULL UNIQUE,
    label      TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    revoked_at TEXT
) WITHOUT ROWID;

-- What the server believes each device holds, to send only what it lacks. Losing a row only costs a
-- larger transfer.
CREATE TABLE device_docs (
    device_id TEXT NOT NULL,
    doc_id    TEXT NOT NULL,
    heads     TEXT NOT NULL,
    PRIMARY KEY (device_id, doc_id)
) WITHOUT ROWID;
