//! Device certificates for the site mesh (issue #22): each org has an Ed25519 key, made on first use
//! and kept in `meta` (`org_key:<org>`, the secret half, hex) on both engines — as the worker-link
//! key is, so every node of the server signs with the same key and no table was needed — and it
//! signs what head office vouches for about a device, the org's revocation list, and receipts for
//! the heads of documents the server holds.

use sitesync_core::Store;
use sitesync_core::ids::DocId;
use sitesync_core::mesh::cert::{Certificate, Credentials, DeviceCert, Revocations, SignedRevocations, VALIDITY_MS};
use sitesync_core::mesh::receipt::{Receipt, SignedReceipt};
use sitesync_core::rules::Access;
use sitesync_core::signing::Keypair;

use super::{AuthDb, Principal, random_hex};
use crate::error::{Error, Result};

impl AuthDb {
    /// The org's certificate key, created on first use. Two nodes creating it at once agree: the
    /// first insert wins and both read it back.
    pub fn org_key(&self, org_id: &str) -> Result<Keypair> {
        let name = format!("org_key:{org_id}");
        let read = |db: &AuthDb| -> Result<Option<Keypair>> {
            Ok(db
                .text("SELECT value FROM meta WHERE key = ?1", &[name.as_str().into()])?
                .and_then(|s| Keypair::from_secret_hex(&s)))
        };
        if let Some(k) = read(self)? {
            return Ok(k);
        }
        self.exec(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
            &[name.as_str().into(), random_hex(32)?.into()],
        )?;
        read(self)?.ok_or_else(|| Error::Internal("the org key was not stored".into()))
    }

    /// The org's revoked devices and their registered keys. Revocation is never undone, so the
    /// number of revoked devices is the list's sequence number: a later list is a longer one.
    pub fn org_revocations(&self, org_id: &str) -> Result<Revocations> {
        let devices = self.rows(
            "SELECT d.device_id FROM devices d JOIN users u ON u.user_id = d.user_id
             WHERE u.org_id = ?1 AND d.revoked_at IS NOT NULL ORDER BY d.device_id",
            &[org_id.into()],
        )?;
        let keys = self.rows(
            "SELECT k.key FROM device_keys k JOIN devices d ON d.device_id = k.device_id
             JOIN users u ON u.user_id = d.user_id
             WHERE u.org_id = ?1 AND d.revoked_at IS NOT NULL ORDER BY k.key",
            &[org_id.into()],
        )?;
        let devices: Vec<String> = devices
            .iter()
            .map(|r| r.text(0))
            .collect::<sitesync_core::Result<_>>()?;
        let mut out = Vec::with_capacity(keys.len());
        for r in keys {
            if let Ok(k) = <[u8; 32]>::try_from(r.bytes(0)?.as_slice()) {
                out.push(k);
            }
        }
        Ok(Revocations {
            org: org_id.to_string(),
            seq: devices.len() as u64,
            devices,
            keys: out,
        })
    }

    /// What `who`'s credentials say apart from their times and key, as 16 hex digits: the sync
    /// upgrade sends it ([`sitesync_core::sync::protocol::CREDENTIALS_HEADER`]), so a phone asks
    /// for credentials only when they would differ from the ones it holds. It covers the
    /// certificate's device, user, role, sites and org, and the org's revocation list by its
    /// sequence number (revocation is never undone, so the count of revoked devices names the
    /// list). One count, not the list: it is asked at every sync connection.
    pub fn credentials_tag(&self, who: &Principal) -> Result<String> {
        use sha2::{Digest, Sha256};
        let revoked = self
            .text(
                "SELECT CAST(COUNT(*) AS TEXT) FROM devices d JOIN users u ON u.user_id = d.user_id
                 WHERE u.org_id = ?1 AND d.revoked_at IS NOT NULL",
                &[who.org_id.as_str().into()],
            )?
            .unwrap_or_default();
        let mut hash = Sha256::new();
        for part in [
            who.device_id.as_str(),
            who.user_id.as_str(),
            who.user_name.as_str(),
            who.org_id.as_str(),
            who.role.as_str(),
            if who.all_sites { "all" } else { "granted" },
            revoked.as_str(),
        ]
        .into_iter()
        .chain(who.sites.iter().map(String::as_str))
        {
            // Lengths first, so no two lists of parts hash alike.
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part.as_bytes());
        }
        Ok(hex::encode(&hash.finalize()[..8]))
    }

    /// The credentials of `who`'s device for its store key `key`, issued now for [`VALIDITY_MS`].
    /// The key is registered to the device as a sync hello registers it (normally it already is);
    /// a key registered to another device is [`Error::Conflict`].
    pub fn issue_credentials(&self, who: &Principal, key: &[u8; 32], now_ms: i64) -> Result<Credentials> {
        self.register_key(&who.device_id, key)?;
        let org_key = self.org_key(&who.org_id)?;
        let cert = DeviceCert {
            device: who.device_id.clone(),
            key: *key,
            user_id: who.user_id.clone(),
            user_name: who.user_name.clone(),
            role: who.role,
            all_sites: who.all_sites,
            sites: who.sites.clone(),
            org: who.org_id.clone(),
            issued_ms: now_ms,
            expires_ms: now_ms + VALIDITY_MS,
        };
        Ok(Credentials {
            org_key: org_key.public(),
            cert: Certificate::issue(&org_key, cert),
            revocations: SignedRevocations::issue(&org_key, self.org_revocations(&who.org_id)?),
        })
    }
}

impl AuthDb {
    /// Receipts, signed with `who`'s org key at `now_ms`, for the documents of `docs` that `who`
    /// may read and `store` holds, with `store`'s heads of each; the others are left out, so the
    /// answer says nothing of documents the caller may not read.
    pub fn issue_receipts(
        &self,
        who: &Principal,
        docs: &[DocId],
        store: &mut Store,
        now_ms: i64,
    ) -> Result<Vec<SignedReceipt>> {
        let mut out = Vec::new();
        let mut org_key = None;
        for id in docs {
            if self.access(who, id)? == Access::None {
                continue;
            }
            let heads = store.heads(id)?;
            if heads.is_empty() {
                continue;
            }
            let key = match &org_key {
                Some(k) => k,
                None => org_key.insert(self.org_key(&who.org_id)?),
            };
            out.push(SignedReceipt::issue(
                key,
                Receipt {
                    org: who.org_id.clone(),
                    doc: id.to_string(),
                    heads,
                    issued_ms: now_ms,
                },
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    #[test]
    fn credentials_name_the_device_and_list_revocations() {
        let dir = tempfile::tempdir().unwrap();
        let db = AuthDb::open(dir.path()).unwrap();
        db.put_org("o", "org").unwrap();
        db.put_user("o", "u", "Cui", Role::Foreman, false).unwrap();
        let (device, _) = db.add_device("u", "phone").unwrap();
        let (gone, _) = db.add_device("u", "lost").unwrap();
        let key = Keypair::generate().public();
        let gone_key = Keypair::generate().public();
        db.register_key(&gone, &gone_key).unwrap();
        let who = db.principal(&device).unwrap().unwrap();
        assert!(
            matches!(db.issue_credentials(&who, &gone_key, 0), Err(Error::Conflict(_))),
            "another device's key"
        );
        // A key first seen here is registered to the device, as at a sync hello.
        let c = db.issue_credentials(&who, &key, 1000).unwrap();
        assert_eq!(db.key_device(&key).unwrap().as_deref(), Some(device.as_str()));
        assert_eq!(c.org_key, db.org_key("o").unwrap().public(), "one key per org, kept");
        Credentials::from_bytes(&c.to_bytes(), &key).unwrap();
        assert_eq!(
            (c.cert.cert.role, c.cert.cert.expires_ms),
            (Role::Foreman, 1000 + VALIDITY_MS)
        );
        assert_eq!(c.revocations.list.seq, 0);
        db.revoke_device(&gone).unwrap();
        let c = db.issue_credentials(&who, &key, 1000).unwrap();
        assert_eq!(c.revocations.list.seq, 1);
        assert!(c.revocations.list.revokes(&gone, &gone_key));
        assert_ne!(db.org_key("o").unwrap().public(), db.org_key("p").unwrap().public());
    }
}
