-- Signatures of Automerge changes: a phone keeps those it made and those the server sent with other
-- devices' changes (so it can hand any change on with its proof); the server keeps every one it
-- verified, with the device that signed and when it arrived: the history and the evidence files.
CREATE TABLE signatures (
    hash        TEXT PRIMARY KEY,
    doc_id      TEXT NOT NULL,
    -- Ed25519 public key of the signer, and the 64-byte signature.
    key         BLOB NOT NULL,
    sig         BLOB NOT NULL,
    -- Known on the server: the signing device, its user, and when the change was received (RFC 3339).
    device      TEXT,
    user_id     TEXT,
    received_at TEXT
) WITHOUT ROWID;
CREATE INDEX signatures_doc ON signatures(doc_id);

-- Changes the server refused, kept on the phone to show the user what did not reach head office and
-- why (they are no longer in the document).
CREATE TABLE refused_changes (
    hash       TEXT PRIMARY KEY,
    doc_id     TEXT NOT NULL,
    rule       TEXT NOT NULL,
    reason     TEXT NOT NULL,
    -- The writes, as JSON, so the user sees what was refused.
    writes     TEXT NOT NULL,
    refused_at TEXT NOT NULL
) WITHOUT ROWID;

-- Devices of the org as the server last described them (key → device → user), so a phone shows who
-- wrote each value while offline.
CREATE TABLE directory (
    key       BLOB PRIMARY KEY,
    device    TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    user_name TEXT NOT NULL,
    role      TEXT NOT NULL
) WITHOUT ROWID;
