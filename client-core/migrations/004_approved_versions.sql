-- The approved version of a day that was amended after its approval: wages are paid from what the
-- manager approved, so until the amendment is approved in turn, the approved totals read the lines at
-- the approval's pinned heads, not the amended ones. Only amended days have rows here; an approved,
-- unchanged day's approved version is its current one.
CREATE TABLE pinned_labor_lines (
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
CREATE INDEX pinned_labor_site_day ON pinned_labor_lines(site_id, day);

CREATE TABLE pinned_progress_lines (
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
CREATE INDEX pinned_progress_site_day ON pinned_progress_lines(site_id, day);

-- What wages are paid from: approved days as they stand, amended days as they were approved.
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
