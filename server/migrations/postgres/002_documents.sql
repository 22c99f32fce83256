-- The document store on PostgreSQL: client-core/migrations/001..004 as they stand after 004, without
-- what only a phone keeps (acknowledged heads, refused changes, the directory). Text compares
-- byte-wise (COLLATE "C"), integers are BIGINT, booleans 0/1, blobs BYTEA.

-- Store facts: the signing key of the server's documents (`identity.signing_key`), `user`.
CREATE TABLE meta (
    key   TEXT COLLATE "C" PRIMARY KEY,
    value TEXT COLLATE "C" NOT NULL
);

CREATE TABLE documents (
    doc_id         TEXT COLLATE "C" PRIMARY KEY,
    kind           TEXT COLLATE "C" NOT NULL,
    site_id        TEXT COLLATE "C",
    day            TEXT COLLATE "C",
    snapshot       BYTEA NOT NULL,
    snapshot_bytes BIGINT NOT NULL,
    chunk_count    BIGINT NOT NULL DEFAULT 0,
    chunk_bytes    BIGINT NOT NULL DEFAULT 0,
    heads          TEXT COLLATE "C" NOT NULL,
    -- Bumped by every write, so a node can tell its cached copy is stale.
    version        BIGINT NOT NULL DEFAULT 0,
    -- Order of the last change, taken from `change_cursor` last in the writing transaction.
    change_seq     BIGINT NOT NULL DEFAULT 0,
    updated_at     TEXT COLLATE "C" NOT NULL
);
CREATE INDEX documents_site_day ON documents (site_id, day);
CREATE INDEX documents_change_seq ON documents (change_seq);

-- One row: the last change_seq handed out. A transaction updates it last, just before COMMIT, so a
-- second writer waits on the row until the first has committed: numbers are given in commit order
-- and a reader that sees N sees every number below N.
CREATE TABLE change_cursor (
    id     BIGINT PRIMARY KEY CHECK (id = 1),
    cursor BIGINT NOT NULL
);
INSERT INTO change_cursor (id, cursor) VALUES (1, 0);

CREATE TABLE chunks (
    doc_id TEXT COLLATE "C" NOT NULL REFERENCES documents (doc_id) ON DELETE CASCADE,
    seq    BIGINT NOT NULL,
    data   BYTEA NOT NULL,
    PRIMARY KEY (doc_id, seq)
);

CREATE TABLE sites (
    site_id  TEXT COLLATE "C" PRIMARY KEY,
    code     TEXT COLLATE "C" NOT NULL,
    name     TEXT COLLATE "C" NOT NULL,
    timezone TEXT COLLATE "C" NOT NULL
);

CREATE TABLE crews (
    site_id TEXT COLLATE "C" NOT NULL,
    crew_id TEXT COLLATE "C" NOT NULL,
    name    TEXT COLLATE "C" NOT NULL,
    leader  TEXT COLLATE "C" NOT NULL,
    trade   TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (site_id, crew_id)
);

CREATE TABLE workers (
    site_id           TEXT COLLATE "C" NOT NULL,
    worker_id         TEXT COLLATE "C" NOT NULL,
    name              TEXT COLLATE "C" NOT NULL,
    phone             TEXT COLLATE "C" NOT NULL,
    trade             TEXT COLLATE "C" NOT NULL,
    crew_id           TEXT COLLATE "C" NOT NULL,
    day_rate_fen      BIGINT NOT NULL,
    overtime_rate_fen BIGINT NOT NULL,
    active            BIGINT NOT NULL,
    PRIMARY KEY (site_id, worker_id)
);
CREATE INDEX workers_worker ON workers (worker_id);

CREATE TABLE work_items (
    site_id                TEXT COLLATE "C" NOT NULL,
    work_item_id           TEXT COLLATE "C" NOT NULL,
    code                   TEXT COLLATE "C" NOT NULL,
    name                   TEXT COLLATE "C" NOT NULL,
    unit                   TEXT COLLATE "C" NOT NULL,
    planned_quantity_milli BIGINT NOT NULL,
    budget_fen             BIGINT NOT NULL,
    planned_start          TEXT COLLATE "C",
    planned_end            TEXT COLLATE "C",
    PRIMARY KEY (site_id, work_item_id)
);

CREATE TABLE labor_lines (
    doc_id            TEXT COLLATE "C" NOT NULL,
    line_id           TEXT COLLATE "C" NOT NULL,
    site_id           TEXT COLLATE "C" NOT NULL,
    day               TEXT COLLATE "C" NOT NULL,
    worker_id         TEXT COLLATE "C" NOT NULL,
    work_item_id      TEXT COLLATE "C" NOT NULL,
    work_days_centi   BIGINT NOT NULL,
    hours_min         BIGINT NOT NULL,
    overtime_min      BIGINT NOT NULL,
    kind              TEXT COLLATE "C" NOT NULL,
    rate_fen          BIGINT NOT NULL,
    overtime_rate_fen BIGINT NOT NULL,
    cost_fen          BIGINT NOT NULL,
    note              TEXT COLLATE "C" NOT NULL,
    entered_by        TEXT COLLATE "C" NOT NULL,
    deleted           BIGINT NOT NULL,
    conflicts         BIGINT NOT NULL,
    PRIMARY KEY (doc_id, line_id)
);
CREATE INDEX labor_site_day ON labor_lines (site_id, day);
CREATE INDEX labor_worker_day ON labor_lines (worker_id, day);
CREATE INDEX labor_line ON labor_lines (line_id);

CREATE TABLE progress_lines (
    doc_id         TEXT COLLATE "C" NOT NULL,
    line_id        TEXT COLLATE "C" NOT NULL,
    site_id        TEXT COLLATE "C" NOT NULL,
    day            TEXT COLLATE "C" NOT NULL,
    work_item_id   TEXT COLLATE "C" NOT NULL,
    quantity_milli BIGINT NOT NULL,
    note           TEXT COLLATE "C" NOT NULL,
    entered_by     TEXT COLLATE "C" NOT NULL,
    deleted        BIGINT NOT NULL,
    PRIMARY KEY (doc_id, line_id)
);
CREATE INDEX progress_site_day ON progress_lines (site_id, day);
CREATE INDEX progress_line ON progress_lines (line_id);

CREATE TABLE day_status (
    doc_id  TEXT COLLATE "C" PRIMARY KEY,
    site_id TEXT COLLATE "C" NOT NULL,
    day     TEXT COLLATE "C" NOT NULL,
    status  TEXT COLLATE "C" NOT NULL
);

CREATE TABLE reviews (
    event_id TEXT COLLATE "C" NOT NULL,
    doc_id   TEXT COLLATE "C" NOT NULL,
    site_id  TEXT COLLATE "C" NOT NULL,
    day      TEXT COLLATE "C" NOT NULL,
    seq      BIGINT NOT NULL,
    action   TEXT COLLATE "C" NOT NULL,
    by_user  TEXT COLLATE "C" NOT NULL,
    at       TEXT COLLATE "C" NOT NULL,
    reason   TEXT COLLATE "C" NOT NULL,
    heads    TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (doc_id, event_id)
);
CREATE INDEX reviews_site_day ON reviews (site_id, day);

CREATE TABLE invalid_records (
    doc_id    TEXT COLLATE "C" NOT NULL,
    record_id TEXT COLLATE "C" NOT NULL,
    site_id   TEXT COLLATE "C" NOT NULL,
    day       TEXT COLLATE "C" NOT NULL,
    field     TEXT COLLATE "C" NOT NULL,
    reason    TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (doc_id, record_id)
);
CREATE INDEX invalid_site_day ON invalid_records (site_id, day);

CREATE TABLE signatures (
    hash        TEXT COLLATE "C" PRIMARY KEY,
    doc_id      TEXT COLLATE "C" NOT NULL,
    key         BYTEA NOT NULL,
    sig         BYTEA NOT NULL,
    device      TEXT COLLATE "C",
    user_id     TEXT COLLATE "C",
    received_at TEXT COLLATE "C"
);
CREATE INDEX signatures_doc ON signatures (doc_id);

CREATE TABLE pinned_labor_lines (
    doc_id            TEXT COLLATE "C" NOT NULL,
    line_id           TEXT COLLATE "C" NOT NULL,
    site_id           TEXT COLLATE "C" NOT NULL,
    day               TEXT COLLATE "C" NOT NULL,
    worker_id         TEXT COLLATE "C" NOT NULL,
    work_item_id      TEXT COLLATE "C" NOT NULL,
    work_days_centi   BIGINT NOT NULL,
    hours_min         BIGINT NOT NULL,
    overtime_min      BIGINT NOT NULL,
    kind              TEXT COLLATE "C" NOT NULL,
    rate_fen          BIGINT NOT NULL,
    overtime_rate_fen BIGINT NOT NULL,
    cost_fen          BIGINT NOT NULL,
    note              TEXT COLLATE "C" NOT NULL,
    entered_by        TEXT COLLATE "C" NOT NULL,
    deleted           BIGINT NOT NULL,
    conflicts         BIGINT NOT NULL,
    PRIMARY KEY (doc_id, line_id)
);
CREATE INDEX pinned_labor_site_day ON pinned_labor_lines (site_id, day);

CREATE TABLE pinned_progress_lines (
    doc_id         TEXT COLLATE "C" NOT NULL,
    line_id        TEXT COLLATE "C" NOT NULL,
    site_id        TEXT COLLATE "C" NOT NULL,
    day            TEXT COLLATE "C" NOT NULL,
    work_item_id   TEXT COLLATE "C" NOT NULL,
    quantity_milli BIGINT NOT NULL,
    note           TEXT COLLATE "C" NOT NULL,
    entered_by     TEXT COLLATE "C" NOT NULL,
    deleted        BIGINT NOT NULL,
    PRIMARY KEY (doc_id, line_id)
);
CREATE INDEX pinned_progress_site_day ON pinned_progress_lines (site_id, day);

CREATE VIEW approved_labor_lines AS
SELECT l.doc_id, l.line_id, l.site_id, l.day, l.worker_id, l.work_item_id, l.work_days_centi, l.hours_min,
       l.overtime_min, l.kind, l.rate_fen, l.overtime_rate_fen, l.cost_fen, l.note, l.entered_by, l.deleted,
       l.conflicts
FROM labor_lines l JOIN day_status s ON s.doc_id = l.doc_id AND s.status = 'approved'
UNION ALL
SELECT doc_id, line_id, site_id, day, worker_id, work_item_id, work_days_centi, hours_min, overtime_min, kind,
       rate_fen, overtime_rate_fen, cost_fen, note, entered_by, deleted, conflicts
FROM pinned_labor_lines;

CREATE VIEW approved_progress_lines AS
SELECT p.doc_id, p.line_id, p.site_id, p.day, p.work_item_id, p.quantity_milli, p.note, p.entered_by, p.deleted
FROM progress_lines p JOIN day_status s ON s.doc_id = p.doc_id AND s.status = 'approved'
UNION ALL
SELECT doc_id, line_id, site_id, day, work_item_id, quantity_milli, note, entered_by, deleted
FROM pinned_progress_lines;

-- Once-per-company jobs (the OKR feeder, the demo loader): the node holding the lease runs them.
CREATE TABLE jobs (
    name     TEXT COLLATE "C" PRIMARY KEY,
    holder   TEXT COLLATE "C" NOT NULL,
    until_ms BIGINT NOT NULL
);
