-- Closed pay periods (see the SQLite step 006_pay_periods.sql).
CREATE TABLE pay_periods (
    period_id  TEXT COLLATE "C" PRIMARY KEY,
    org_id     TEXT COLLATE "C" NOT NULL,
    site_id    TEXT COLLATE "C" NOT NULL,
    crew_id    TEXT COLLATE "C" NOT NULL,
    from_date  TEXT COLLATE "C" NOT NULL,
    to_date    TEXT COLLATE "C" NOT NULL,
    sheet      TEXT NOT NULL,
    pins       TEXT NOT NULL,
    left_out   TEXT NOT NULL,
    closed_by  TEXT NOT NULL,
    closed_at  BIGINT NOT NULL,
    paid_by    TEXT,
    paid_at    BIGINT,
    paid_reference TEXT,
    UNIQUE (site_id, crew_id, from_date)
);
CREATE INDEX pay_periods_crew ON pay_periods (site_id, crew_id, to_date);
