-- Changes the server refused, for the org admin to see who tried to write what: one row a change.
CREATE TABLE refusals (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    at        TEXT NOT NULL,
    org_id    TEXT NOT NULL,
    device_id TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    doc_id    TEXT NOT NULL,
    change    TEXT NOT NULL,
    rule      TEXT NOT NULL,
    reason    TEXT NOT NULL
);
CREATE INDEX refusals_org ON refusals(org_id, seq);
