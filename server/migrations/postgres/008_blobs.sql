-- Attachment bytes in the shared database (server/src/blobs/db.rs), so nodes keep nothing of their
-- own: a blob is its pieces and, written after them in one transaction, its object row.
CREATE TABLE blob_objects (
    sha256     TEXT COLLATE "C" PRIMARY KEY,
    size_bytes BIGINT NOT NULL
);
CREATE TABLE blob_pieces (
    sha256   TEXT COLLATE "C" NOT NULL,
    at_bytes BIGINT NOT NULL,
    bytes    BYTEA NOT NULL,
    PRIMARY KEY (sha256, at_bytes)
);
CREATE TABLE blob_thumbnails (
    sha256 TEXT COLLATE "C" PRIMARY KEY,
    jpeg   BYTEA NOT NULL
);
-- Uploads in progress (server/src/blobs/staging.rs): any node resumes what another received.
CREATE TABLE blob_uploads (
    device_id  TEXT COLLATE "C" NOT NULL,
    sha256     TEXT COLLATE "C" NOT NULL,
    size_bytes BIGINT NOT NULL,
    touched_ms BIGINT NOT NULL,
    PRIMARY KEY (device_id, sha256)
);
CREATE TABLE blob_upload_pieces (
    device_id TEXT COLLATE "C" NOT NULL,
    sha256    TEXT COLLATE "C" NOT NULL,
    at_bytes  BIGINT NOT NULL,
    bytes     BYTEA NOT NULL,
    PRIMARY KEY (device_id, sha256, at_bytes)
);
