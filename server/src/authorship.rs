//! Who wrote a pushed change, decided by the server from the change's signature alone: the device
//! whose registered key signed it, and that device's user. The device that pushes is only the
//! carrier; rules are checked against the signer.
//!
//! An actor made under a registered key (its first bytes are the key's fingerprint, see
//! `sitesync_core::signing`) may only be signed by that key. An older store's random actor is bound
//! to the first device that signs a change under it, in the credential database, and refused to
//! every other device after that. Both survive restarts, restores (the credential database is backed
//! up with the documents) and `reindex` (which reads documents only).

use std::collections::HashMap;

use sitesync_core::changes::ChangeInfo;
use sitesync_core::ids::DocId;
use sitesync_core::rules::{Author, Violation};
use sitesync_core::signing::{ChangeSig, actor_fingerprint, fingerprint};
use sitesync_core::store::Authority;

use crate::auth::AuthDb;

/// The signers of one batch of pushes, resolved against the credential database.
pub struct Signers<'a> {
    /// Where keys, devices and actor bindings live.
    auth: &'a AuthDb,
    /// The signatures that came with the push, by change hash.
    sigs: HashMap<[u8; 32], ChangeSig>,
    /// Authors already resolved in this batch, by key (`None`: unknown or revoked).
    keys: HashMap<[u8; 32], Option<Author>>,
    /// The signer of each change admitted, for keeping its signature.
    pub signed: HashMap<String, (ChangeSig, Author)>,
    /// A database failure met while resolving (answered as the store being unavailable).
    pub failed: Option<crate::error::Error>,
}

impl<'a> Signers<'a> {
    /// Resolves signers for one pushed document's signatures.
    pub fn new(auth: &'a AuthDb, sigs: &[ChangeSig]) -> Signers<'a> {
        Signers {
            auth,
            sigs: sigs.iter().map(|s| (s.hash, s.clone())).collect(),
            keys: HashMap::new(),
            signed: HashMap::new(),
            failed: None,
        }
    }

    fn key_author(&mut self, key: &[u8; 32]) -> Result<Option<Author>, crate::error::Error> {
        if let Some(a) = self.keys.get(key) {
            return Ok(a.clone());
        }
        let author = match self.auth.key_device(key)? {
            Some(device) => self.auth.principal(&device)?.map(|p| p.author()),
            None => None,
        };
        self.keys.insert(*key, author.clone());
        Ok(author)
    }

    fn resolve(&mut self, doc: &DocId, change: &ChangeInfo) -> Result<Author, Violation> {
        let mut hash = [0u8; 32];
        hex::decode_to_slice(&change.hash, &mut hash).map_err(|_| Violation::Unsigned)?;
        let sig = self.sigs.get(&hash).cloned().ok_or(Violation::Unsigned)?;
        if !sig.verifies(&doc.to_string()) {
            return Err(Violation::BadSignature);
        }
        let author = match self.key_author(&sig.key) {
            Ok(Some(a)) => a,
            Ok(None) => return Err(Violation::UnknownKey),
            Err(e) => return Err(self.fail(e)),
        };
        let foreign = || Violation::ForeignActor {
            actor: change.actor.clone(),
        };
        match actor_fingerprint(&change.actor) {
            Some(fp) if fp == fingerprint(&sig.key) => {}
            Some(fp) if self.auth.fingerprint_known(&fp).map_err(|e| self.fail(e))? => return Err(foreign()),
            _ => {
                let owner = self
                    .auth
                    .bind_actor(&change.actor, &author.device)
                    .map_err(|e| self.fail(e))?;
                if owner != author.device {
                    return Err(foreign());
                }
            }
        }
        self.signed.insert(change.hash.clone(), (sig, author.clone()));
        Ok(author)
    }

    fn fail(&mut self, e: crate::error::Error) -> Violation {
        tracing::error!(error = %e, "could not resolve a change's signer");
        self.failed = Some(e);
        Violation::UnknownKey
    }
}

impl Authority for Signers<'_> {
    fn author(&mut self, doc: &DocId, change: &ChangeInfo) -> Result<Author, Violation> {
        self.resolve(doc, change)
    }
}
