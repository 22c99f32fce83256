-- Lines are keyed by their document and their id: a document can no longer collide with another's
-- rows (a day of another org holding a line under one of our ids failed every push of ours on
-- UNIQUE(line_id)). Rows of days dated outside 2000-01-01 ..= 9999-12-31 are dropped: such days are
-- no longer projected (their dates sorted before every real one and hid missing-log anomalies).
DROP INDEX labor_site_day;
DROP INDEX labor_worker_day;
DROP INDEX labor_doc;
DROP INDEX progress_site_day;
DROP INDEX progress_doc;
ALTER TABLE labor_lines RENAME TO labor_lines_v1;
ALTER TABLE progress_lines RENAME TO progress_lines_v1;

CREATE TABLE labor_lines (
    doc_id            TEXT NOT NULL,
    line_id           TEXT NOT NULL,
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
    conflicts         INTEGER NOT NULL,
    PRIMARY KEY (doc_id, line_id)
) WITHOUT ROWID;
CREATE INDEX labor_site_day ON labor_lines(site_id, day);
CREATE INDEX labor_worker_day ON labor_lines(worker_id, day);
CREATE INDEX labor_line ON labor_lines(line_id);

CREATE TABLE progress_lines (
    doc_id         TEXT NOT NULL,
    line_id        TEXT NOT NULL,
    site_id        TEXT NOT NULL,
    day            TEXT NOT NULL,
    work_item_id   TEXT NOT NULL,
    quantity_milli INTEGER NOT NULL,
    note           TEXT NOT NULL,
    entered_by     TEXT NOT NULL,
    deleted        INTEGER NOT NULL,
    PRIMARY KEY (doc_id, line_id)
) WITHOUT ROWID;
CREATE INDEX progress_site_day ON progress_lines(site_id, day);
CREATE INDEX progress_line ON progress_lines(line_id);

INSERT INTO labor_lines (doc_id, line_id, site_id, day, worker_id, work_item_id, work_days_centi, hours_min,
    overtime_min, kind, rate_fen, overtime_rate_fen, cost_fen, note, entered_by, deleted, conflicts)
SELECT doc_id, line_id, site_id, day, worker_id, work_item_id, work_days_centi, hours_min,
    overtime_min, kind, rate_fen, overtime_rate_fen, cost_fen, note, entered_by, deleted, conflicts
FROM labor_lines_v1 WHERE day GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]' AND day >= '2000-01-01';
INSERT INTO progress_lines (doc_id, line_id, site_id, day, work_item_id, quantity_milli, note, entered_by, deleted)
SELECT doc_id, line_id, site_id, day, work_item_id, quantity_milli, note, entered_by, deleted
FROM progress_lines_v1 WHERE day GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]' AND day >= '2000-01-01';
DROP TABLE labor_lines_v1;
DROP TABLE progress_lines_v1;
DELETE FROM day_status WHERE NOT (day GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]' AND day >= '2000-01-01');
DELETE FROM reviews WHERE NOT (day GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]' AND day >= '2000-01-01');

-- Records left out of the projections because they do not read as valid ones (a negative work-day,
-- a cost that overflows, an id that is not the derived one, a date outside the window), shown to
-- people in the anomaly report instead of being summed.
CREATE TABLE invalid_records (
    doc_id    TEXT NOT NULL,
    record_id TEXT NOT NULL,
    site_id   TEXT NOT NULL,
    day       TEXT NOT NULL,
    -- The field that failed, as the API names it.
    field     TEXT NOT NULL,
    reason    TEXT NOT NULL,
    PRIMARY KEY (doc_id, record_id)
) WITHOUT ROWID;
CREATE INDEX invalid_site_day ON invalid_records(site_id, day);
