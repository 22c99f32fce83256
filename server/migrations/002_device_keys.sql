-- Signing keys: each phone store's Ed25519 public key, registered to its device when the store first
-- says hello; the server's own key under the device id `server`. A device may have several (a
-- reinstalled app makes a new store, and a new key); a key belongs to one device forever.
CREATE TABLE device_keys (
    key           BLOB PRIMARY KEY,
    -- The first 8 bytes of SHA-256 of the key: every Automerge actor made under the key starts with them.
    fingerprint   BLOB NOT NULL,
    device_id     TEXT NOT NULL,
    registered_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX device_keys_fingerprint ON device_keys(fingerprint);
CREATE INDEX device_keys_device ON device_keys(device_id);

-- Automerge actors of older stores (random, not made under a key), bound to the device that first
-- pushed a signed change under them: no other device may write under that actor afterwards.
CREATE TABLE actors (
    actor     TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    bound_at  TEXT NOT NULL
) WITHOUT ROWID;
