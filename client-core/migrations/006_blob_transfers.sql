-- The phone's queue of attachment transfers, beside the document sync: one row per blob and
-- direction. The bytes themselves are files beside the store (`<store>.blobs/<sha256>`), not rows:
-- a photo of several MB would pass through the WAL twice, and a resumed download would rewrite it.
-- `doc_id` is the day document that references the blob (an upload names it so that the server
-- lets the device's site read it); `done_bytes` is what the other side confirmed holding.
CREATE TABLE blob_transfers (
    sha256 TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('up', 'down')),
    size_bytes INTEGER NOT NULL CHECK (size_bytes > 0),
    done_bytes INTEGER NOT NULL DEFAULT 0 CHECK (done_bytes >= 0),
    done INTEGER NOT NULL DEFAULT 0 CHECK (done IN (0, 1)),
    error TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (sha256, doc_id, direction)
);
