-- Closed pay periods (#20): a crew's pay sheet over a range as head office closed it. The figures
-- never change once stored; a later correction to one of its days is carried as an adjustment by
-- the next sheet of the same site and crew (`adjustments` of the period that carried it).
CREATE TABLE pay_periods (
    -- `pp-` and 32 hex digits.
    period_id  TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL,
    site_id    TEXT NOT NULL,
    crew_id    TEXT NOT NULL,
    -- Site calendar dates, YYYY-MM-DD, inclusive.
    from_date  TEXT NOT NULL,
    to_date    TEXT NOT NULL,
    -- The closed sheet as JSON (`server::pay::PayReport`, adjustments included).
    sheet      TEXT NOT NULL,
    -- JSON list of {date, heads}: each counted day's approved version.
    pins       TEXT NOT NULL,
    -- JSON list of dates left out unapproved by a forced close.
    left_out   TEXT NOT NULL,
    closed_by  TEXT NOT NULL,
    -- Unix milliseconds.
    closed_at  INTEGER NOT NULL,
    paid_by    TEXT,
    paid_at    INTEGER,
    paid_reference TEXT,
    UNIQUE (site_id, crew_id, from_date)
);
CREATE INDEX pay_periods_crew ON pay_periods (site_id, crew_id, to_date);
