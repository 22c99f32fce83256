-- The credential tables of server/migrations/001..004 (SQLite), for PostgreSQL. Text compares
-- byte-wise (COLLATE "C", as SQLite's BINARY), integers are BIGINT (tokio-postgres reads i64), and
-- booleans are 0/1 integers, so the same statements read the same on both engines.

-- Server facts: `epoch`, renewed after a restore, so phones notice.
CREATE TABLE meta (
    key   TEXT COLLATE "C" PRIMARY KEY,
    value TEXT COLLATE "C" NOT NULL
);

CREATE TABLE orgs (
    org_id TEXT COLLATE "C" PRIMARY KEY,
    name   TEXT COLLATE "C" NOT NULL
);

CREATE TABLE sites (
    site_id TEXT COLLATE "C" PRIMARY KEY,
    org_id  TEXT COLLATE "C" NOT NULL REFERENCES orgs(org_id),
    name    TEXT COLLATE "C" NOT NULL
);

CREATE TABLE users (
    user_id   TEXT COLLATE "C" PRIMARY KEY,
    org_id    TEXT COLLATE "C" NOT NULL REFERENCES orgs(org_id),
    name      TEXT COLLATE "C" NOT NULL,
    role      TEXT COLLATE "C" NOT NULL CHECK (role IN ('foreman', 'site_manager', 'head_office', 'admin')),
    -- 1: every site of the org, now and later.
    all_sites BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE grants (
    user_id TEXT COLLATE "C" NOT NULL REFERENCES users(user_id),
    site_id TEXT COLLATE "C" NOT NULL REFERENCES sites(site_id),
    PRIMARY KEY (user_id, site_id)
);

CREATE TABLE devices (
    device_id  TEXT COLLATE "C" PRIMARY KEY,
    user_id    TEXT COLLATE "C" NOT NULL REFERENCES users(user_id),
    -- SHA-256 of the bearer token; the token itself is shown once and never stored.
    token_hash TEXT COLLATE "C" NOT NULL UNIQUE,
    label      TEXT COLLATE "C" NOT NULL DEFAULT '',
    created_at TEXT COLLATE "C" NOT NULL,
    revoked_at TEXT COLLATE "C"
);
CREATE INDEX devices_user ON devices (user_id);

-- What the server believes each device holds, to send only what it lacks.
CREATE TABLE device_docs (
    device_id TEXT COLLATE "C" NOT NULL,
    doc_id    TEXT COLLATE "C" NOT NULL,
    heads     TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (device_id, doc_id)
);

-- Each phone store's Ed25519 public key, bound to its device forever; the server's under `server`.
CREATE TABLE device_keys (
    key           BYTEA PRIMARY KEY,
    fingerprint   BYTEA NOT NULL,
    device_id     TEXT COLLATE "C" NOT NULL,
    registered_at TEXT COLLATE "C" NOT NULL
);
CREATE INDEX device_keys_fingerprint ON device_keys (fingerprint);
CREATE INDEX device_keys_device ON device_keys (device_id);

-- Automerge actors of older stores, bound to the device that first pushed a signed change under them.
CREATE TABLE actors (
    actor     TEXT COLLATE "C" PRIMARY KEY,
    device_id TEXT COLLATE "C" NOT NULL,
    bound_at  TEXT COLLATE "C" NOT NULL
);

-- Changes the server refused, one row a change.
CREATE TABLE refusals (
    seq       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        TEXT COLLATE "C" NOT NULL,
    org_id    TEXT COLLATE "C" NOT NULL,
    device_id TEXT COLLATE "C" NOT NULL,
    user_id   TEXT COLLATE "C" NOT NULL,
    doc_id    TEXT COLLATE "C" NOT NULL,
    change    TEXT COLLATE "C" NOT NULL,
    rule      TEXT COLLATE "C" NOT NULL,
    reason    TEXT COLLATE "C" NOT NULL
);
CREATE INDEX refusals_org ON refusals (org_id, seq);

-- Dashboard sign-ins; only the session id's SHA-256 is stored. Times in Unix seconds.
CREATE TABLE browser_sessions (
    id_hash    TEXT COLLATE "C" PRIMARY KEY,
    device_id  TEXT COLLATE "C" NOT NULL REFERENCES devices(device_id),
    created_at BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX browser_sessions_by_device ON browser_sessions (device_id);
