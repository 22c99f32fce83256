-- Signature images of sign-offs, by SHA-256 (hex): the day document holds only the hash (see
-- src/signoff.rs). A PNG or stroke data of a few KiB, kept on the phone that took it; the blob store
-- for photos is where uploading them belongs.
CREATE TABLE signoff_images (
    sha256   TEXT PRIMARY KEY,
    bytes    BLOB NOT NULL,
    added_at TEXT NOT NULL
);
