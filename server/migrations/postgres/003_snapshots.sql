-- Snapshots in a table of their own, as client-core/migrations/005: a write updates the small
-- `documents` row and appends a chunk; only compaction writes a snapshot.
CREATE TABLE snapshots (
    doc_id TEXT COLLATE "C" PRIMARY KEY REFERENCES documents (doc_id) ON DELETE CASCADE,
    data   BYTEA NOT NULL
);
INSERT INTO snapshots (doc_id, data) SELECT doc_id, snapshot FROM documents;
ALTER TABLE documents DROP COLUMN snapshot;
