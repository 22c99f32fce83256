-- Which day documents a stored blob was uploaded for (see the SQLite step 005_blob_claims.sql).
CREATE TABLE blob_claims (
    sha256     TEXT COLLATE "C" NOT NULL,
    doc_id     TEXT COLLATE "C" NOT NULL,
    device_id  TEXT COLLATE "C" NOT NULL,
    size_bytes BIGINT NOT NULL,
    claimed_at BIGINT NOT NULL,
    PRIMARY KEY (sha256, doc_id)
);
