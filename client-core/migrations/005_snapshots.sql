-- Snapshots in a table of their own: a write appends a chunk and updates the small `documents` row
-- (heads, counters), which used to carry the snapshot inline, so every one-entry write rewrote the
-- snapshot's overflow pages (17.5% of the server's CPU on one-entry pushes, 2026-11-30). Only
-- compaction writes a snapshot. A rowid table: SQLite advises against WITHOUT ROWID for large rows.
CREATE TABLE snapshots (
    doc_id TEXT PRIMARY KEY REFERENCES documents(doc_id) ON DELETE CASCADE,
    data   BLOB NOT NULL
);
INSERT INTO snapshots (doc_id, data) SELECT doc_id, snapshot FROM documents;
ALTER TABLE documents DROP COLUMN snapshot;
