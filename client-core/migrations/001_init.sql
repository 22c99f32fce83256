-- Documents: a compacted snapshot plus the incremental chunks saved since, so that a write costs in
-- proportion to the change and loading one document never reads another's history.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE documents (
    doc_id         TEXT PRIMARY KEY,
    kind           TEXT NOT NULL,
    site_id        TEXT,
    day            TEXT,
    snapshot       BLOB NOT NULL,
    snapshot_bytes INTEGER NOT NULL,
    chunk_count    INTEGER NOT NULL DEFAULT 0,
    chunk_bytes    INTEGER NOT NULL DEFAULT 0,
    heads          TEXT NOT NULL,
    -- Bumped by every write, so a handle can tell its cached copy is stale.
    version        INTEGER NOT NULL DEFAULT 0,
    -- Store-wide order of the last change: "which documents changed since cursor N" for sync.
    change_seq     INTEGER NOT NULL DEFAULT 0,
    -- Heads the server last acknowledged as durable; NULL until the first successful sync.
    synced_heads   TEXT,
    updated_at     TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX documents_site_day ON documents(site_id, day);
CREATE INDEX documents_change_seq ON documents(change_seq);

CREATE TABLE chunks (
    doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
    seq    INTEGER NOT NULL,
    data   BLOB NOT NULL,
    PRIMARY KEY (doc_id, seq)
) WITHOUT ROWID;

-- Projections of the documents for offline queries; rebuilt from a document whenever it changes.
CREATE TABLE sites (
    site_id  TEXT PRIMARY KEY,
    code     TEXT NOT NULL,
    name     TEXT NOT NULL,
    timezone TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE crews (
    site_id TEXT NOT NULL,
    crew_id TEXT NOT NULL,
    name    TEXT NOT NULL,
    leader  TEXT NOT NULL,
    trade   TEXT NOT NULL,
    PRIMARY KEY (site_id, crew_id)
) WITHOUT ROWID;

CREATE TABLE workers (
    site_id           TEXT NOT NULL,
    worker_id         TEXT NOT NULL,
    name              TEXT NOT NULL,
    phone             TEXT NOT NULL,
    trade             TEXT NOT NULL,
    crew_id           TEXT NOT NULL,
    day_rate_fen      INTEGER NOT NULL,
    overtime_rate_fen INTEGER NOT NULL,
    active            INTEGER NOT NULL,
    PRIMARY KEY (site_id, worker_id)
) WITHOUT ROWID;
CREATE INDEX workers_worker ON workers(worker_id);

CREATE TABLE work_items (
    site_id                TEXT NOT NULL,
    work_item_id           TEXT NOT NULL,
    code                   TEXT NOT NULL,
    name                   TEXT NOT NULL,
    unit                   TEXT NOT NULL,
    planned_quantity_milli INTEGER NOT NULL,
    budget_fen             INTEGER NOT NULL,
    planned_start          TEXT,
    planned_end            TEXT,
    PRIMARY KEY (site_id, work_item_id)
) WITHOUT ROWID;

CREATE TABLE labor_lines (
    line_id           TEXT PRIMARY KEY,
    doc_id            TEXT NOT NULL,
    site_id           TEXT NOT NULL,
    day               TEXT NOT NULL,
    worker_id         TEXT NOT NULL,
    work_item_id      TEXT NOT NULL,
    work_days_centi   INTEGER NOT NULL,
    hours_min         INTEGER NOT NULL,
    overtime_min      INTEGER NOT NULL,
    kind              TEXT NOT NULL,
    rate_fen          INTEGER NOT NULL,
    overtime_rate_fen INTEGER NOT NULL,
    cost_fen          INTEGER NOT NULL,
    note              TEXT NOT NULL,
    entered_by        TEXT NOT NULL,
    deleted           INTEGER NOT NULL,
    conflicts         INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX labor_site_day ON labor_lines(site_id, day);
CREATE INDEX labor_worker_day ON labor_lines(worker_id, day);
CREATE INDEX labor_doc ON labor_lines(doc_id);

CREATE TABLE progress_lines (
    line_id        TEXT PRIMARY KEY,
    doc_id         TEXT NOT NULL,
    site_id        TEXT NOT NULL,
    day            TEXT NOT NULL,
    work_item_id   TEXT NOT NULL,
    quantity_milli INTEGER NOT NULL,
    note           TEXT NOT NULL,
    entered_by     TEXT NOT NULL,
    deleted        INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX progress_site_day ON progress_lines(site_id, day);
CREATE INDEX progress_doc ON progress_lines(doc_id);

CREATE TABLE day_status (
    doc_id  TEXT PRIMARY KEY,
    site_id TEXT NOT NULL,
    day     TEXT NOT NULL,
    status  TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE reviews (
    event_id TEXT NOT NULL,
    doc_id   TEXT NOT NULL,
    site_id  TEXT NOT NULL,
    day      TEXT NOT NULL,
    -- Causal order within the day (0 = first).
    seq      INTEGER NOT NULL,
    action   TEXT NOT NULL,
    by_user  TEXT NOT NULL,
    at       TEXT NOT NULL,
    reason   TEXT NOT NULL,
    heads    TEXT NOT NULL,
    PRIMARY KEY (doc_id, event_id)
) WITHOUT ROWID;
CREATE INDEX reviews_site_day ON reviews(site_id, day);
