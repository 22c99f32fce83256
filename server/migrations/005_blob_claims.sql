-- Which day documents a stored blob was uploaded for: a device that may write the document sent
-- the whole file and it hashed to `sha256` (proof that it holds the bytes; knowing a hash is not
-- enough to be let read a blob). A download is allowed to whoever may read one of these documents,
-- if the document (as the server holds it) references the blob. The bytes are in the blob storage
-- (`blobs.rs`), not here.
CREATE TABLE blob_claims (
    sha256     TEXT NOT NULL,
    doc_id     TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    -- Unix milliseconds.
    claimed_at INTEGER NOT NULL,
    PRIMARY KEY (sha256, doc_id)
) WITHOUT ROWID;
