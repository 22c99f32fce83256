//! Who wrote a pushed change, decided by the server from the change's signature alone: the device
//! whose registered key signed it, and that device's user. The device that pushes is only the
//! carrier; rules are checked against the signer.
//!
//! An actor made under a registered key (its first bytes are the key's fingerprint, see
//! `sitesync_core::signing`) may only be signed by that key. An older store's random actor is bound
//! to the first device that signs a change under it, in the credential database, and refused to
//! every other device after that. Both survive restarts, restores (the credential database is backed
//! up with the documents) and `reindex` (which reads documents only).
//!
//! Decision (2026-11-30): signatures are verified and signers resolved on the pushing connection's
//! task ([`vet`], on tokio's blocking pool, every core), not on the group-commit writer, which was
//! 86 % of the server's CPU with a quarter of it in this gate; the writer only asks whether each
//! signer's device is still active, once a batch ([`AuthDb::active_devices`]), so a device revoked
//! before its change is stored is still refused.

use std::collections::{HashMap, HashSet};

use sitesync_core::changes::{ChangeInfo, authored};
use sitesync_core::ids::DocId;
use sitesync_core::rules::{Author, Violation};
use sitesync_core::signing::{ChangeSig, actor_fingerprint, fingerprint};
use sitesync_core::store::Authority;
use sitesync_core::sync::protocol::DocSync;

use crate::auth::{AuthDb, Principal};

/// The signers of one pushed document, resolved before the push is queued.
#[derive(Debug, Default)]
pub struct Vetted {
    /// Each signed change's signature and signer, or the rule its signature breaks, by change
    /// hash. A change without an entry came without a signature.
    by_hash: HashMap<[u8; 32], Result<(ChangeSig, Author), Violation>>,
    /// A database failure met while resolving (answered as the store being unavailable).
    pub failed: Option<crate::error::Error>,
}

impl Vetted {
    /// The devices that signed changes of this document.
    fn devices(&self) -> impl Iterator<Item = &str> {
        self.by_hash
            .values()
            .filter_map(|r| r.as_ref().ok().map(|(_, a)| a.device.as_str()))
    }
}

/// Verifies the signature of every change pushed in `docs` by `who` and resolves its signer: the
/// device whose registered key signed it, and that device's user as the database has them now.
/// One [`Vetted`] per document, in order. Blocks on the database; runs before the push is queued.
pub fn vet(auth: &AuthDb, who: &Principal, docs: &[DocSync]) -> Vec<Vetted> {
    // The pusher was read for this very message; other signers once per push.
    let mut authors: HashMap<String, Option<Author>> = HashMap::new();
    authors.insert(who.device_id.clone(), Some(who.author()));
    docs.iter().map(|d| vet_doc(auth, d, &mut authors)).collect()
}

fn vet_doc(auth: &AuthDb, d: &DocSync, authors: &mut HashMap<String, Option<Author>>) -> Vetted {
    let mut out = Vetted::default();
    let Ok(id) = d.doc.parse::<DocId>() else {
        return out;
    };
    if d.changes.is_empty() || d.sigs.is_empty() {
        return out;
    }
    // Bytes that are not changes are refused by the gate itself, with its reason.
    let Ok(changes) = authored(&id, &d.changes) else {
        return out;
    };
    let sigs: HashMap<[u8; 32], &ChangeSig> = d.sigs.iter().map(|s| (s.hash, s)).collect();
    let doc = id.to_string();
    for (hash, actor) in changes {
        let Some(sig) = sigs.get(&hash.0) else {
            continue;
        };
        match resolve(auth, &doc, sig, &actor, authors) {
            Ok(verdict) => {
                out.by_hash.insert(hash.0, verdict.map(|a| ((*sig).clone(), a)));
            }
            Err(e) => {
                tracing::error!(error = %e, "could not resolve a change's signer");
                out.failed = Some(e);
                return out;
            }
        }
    }
    out
}

/// The signer of one change: `Ok(Err(_))` names the rule its signature or actor breaks, `Err` a
/// database failure.
fn resolve(
    auth: &AuthDb,
    doc: &str,
    sig: &ChangeSig,
    actor: &str,
    authors: &mut HashMap<String, Option<Author>>,
) -> crate::error::Result<Result<Author, Violation>> {
    if !sig.verifies(doc) {
        return Ok(Err(Violation::BadSignature));
    }
    let Some(device) = auth.key_device(&sig.key)? else {
        return Ok(Err(Violation::UnknownKey));
    };
    let author = match authors.get(&device) {
        Some(a) => a.clone(),
        None => {
            let a = auth.principal(&device)?.map(|p| p.author());
            authors.insert(device, a.clone());
            a
        }
    };
    let Some(author) = author else {
        return Ok(Err(Violation::UnknownKey));
    };
    let foreign = || Violation::ForeignActor {
        actor: actor.to_string(),
    };
    match actor_fingerprint(actor) {
        Some(fp) if fp == fingerprint(&sig.key) => {}
        Some(fp) if auth.fingerprint_known(&fp)? => return Ok(Err(foreign())),
        _ => {
            if auth.bind_actor(actor, &author.device)? != author.device {
                return Ok(Err(foreign()));
            }
        }
    }
    Ok(Ok(author))
}

/// The devices of a batch's signers that are still active (enrolled, not revoked), read once for
/// the batch on the writer: what a revocation after [`vet`] takes away.
pub fn active_signers<'v>(
    auth: &AuthDb,
    vetted: impl IntoIterator<Item = &'v Vetted>,
) -> crate::error::Result<HashSet<String>> {
    let mut devices: Vec<String> = vetted
        .into_iter()
        .flat_map(Vetted::devices)
        .map(str::to_string)
        .collect();
    devices.sort();
    devices.dedup();
    auth.active_devices(&devices)
}

/// The signers of one pushed document as the gate asks for them on the writer: what [`vet`]
/// resolved, less the devices revoked since.
pub struct Signers<'a> {
    /// What the connection resolved.
    vetted: &'a Vetted,
    /// The devices active when the batch began.
    active: &'a HashSet<String>,
    /// The signer of each change admitted, for keeping its signature.
    pub signed: HashMap<String, (ChangeSig, Author)>,
}

impl<'a> Signers<'a> {
    /// The signers `vetted` resolved, of which only `active` devices still count.
    pub fn new(vetted: &'a Vetted, active: &'a HashSet<String>) -> Signers<'a> {
        Signers {
            vetted,
            active,
            signed: HashMap::new(),
        }
    }
}

impl Authority for Signers<'_> {
    fn author(&mut self, _doc: &DocId, change: &ChangeInfo) -> Result<Author, Violation> {
        let mut hash = [0u8; 32];
        hex::decode_to_slice(&change.hash, &mut hash).map_err(|_| Violation::Unsigned)?;
        let (sig, author) = match self.vetted.by_hash.get(&hash) {
            None => return Err(Violation::Unsigned),
            Some(Err(v)) => return Err(v.clone()),
            Some(Ok(found)) => found,
        };
        if !self.active.contains(&author.device) {
            // Revoked (or removed) after the push was vetted: as if its key were unknown.
            return Err(Violation::UnknownKey);
        }
        self.signed.insert(change.hash.clone(), (sig.clone(), author.clone()));
        Ok(author.clone())
    }
}

#[cfg(test)]
mod tests {
    use automerge::transaction::Transactable;
    use sitesync_core::signing::Keypair;

    use super::*;
    use crate::auth::Role;

    /// A credential database with one head-office device whose key is registered.
    fn enrolled() -> (tempfile::TempDir, AuthDb, Principal, Keypair) {
        let dir = tempfile::tempdir().unwrap();
        let db = AuthDb::open(dir.path()).unwrap();
        db.put_org("o", "org").unwrap();
        db.put_user("o", "u", "user", Role::HeadOffice, true).unwrap();
        let (device, _) = db.add_device("u", "phone").unwrap();
        let key = Keypair::generate();
        db.register_key(&device, &key.public()).unwrap();
        let who = db.principal(&device).unwrap().unwrap();
        (dir, db, who, key)
    }

    /// One change under an actor of `key`, signed by `key` (or unsigned), as pushed for `doc`.
    fn pushed(doc: &str, key: &Keypair, signed: bool) -> (DocSync, ChangeInfo) {
        let mut d = automerge::AutoCommit::new().with_actor(key.new_actor());
        d.put(automerge::ROOT, "note", "x").unwrap();
        let hash = d.commit().unwrap();
        let change = d.get_change_by_hash(&hash).unwrap().clone();
        let info = ChangeInfo {
            hash: hash.to_string(),
            actor: change.actor_id().to_hex_string(),
            seq: change.seq(),
            time_ms: change.timestamp(),
            deps: Vec::new(),
            writes: Vec::new(),
        };
        let sync = DocSync {
            doc: doc.to_string(),
            base: Vec::new(),
            heads: vec![hash.0],
            changes: change.raw_bytes().to_vec(),
            sigs: if signed {
                vec![key.sign_change(doc, hash.0)]
            } else {
                Vec::new()
            },
        };
        (sync, info)
    }

    #[test]
    fn a_signer_revoked_after_its_push_was_vetted_is_refused_on_the_writer() {
        let (_dir, db, who, key) = enrolled();
        let doc = "site|site-a";
        let id: DocId = doc.parse().unwrap();
        let (sync, info) = pushed(doc, &key, true);
        let vetted = vet(&db, &who, std::slice::from_ref(&sync));
        assert!(vetted[0].failed.is_none());

        // Still active when the batch begins: the vetted signer is the author.
        let active = active_signers(&db, &vetted).unwrap();
        let mut signers = Signers::new(&vetted[0], &active);
        assert_eq!(signers.author(&id, &info).unwrap().device, who.device_id);
        assert_eq!(signers.signed.len(), 1);

        // Revoked between vetting and the writer's batch: refused as an unknown key.
        db.revoke_device(&who.device_id).unwrap();
        let active = active_signers(&db, &vetted).unwrap();
        let mut signers = Signers::new(&vetted[0], &active);
        assert_eq!(signers.author(&id, &info), Err(Violation::UnknownKey));
        assert!(signers.signed.is_empty());
    }

    #[test]
    fn unsigned_tampered_and_unknown_signatures_are_named_as_before() {
        let (_dir, db, who, key) = enrolled();
        let doc = "site|site-a";
        let id: DocId = doc.parse().unwrap();
        let verdict = |sync: DocSync, info: &ChangeInfo| {
            let vetted = vet(&db, &who, std::slice::from_ref(&sync));
            let active = active_signers(&db, &vetted).unwrap();
            Signers::new(&vetted[0], &active).author(&id, info)
        };

        let (sync, info) = pushed(doc, &key, false);
        assert_eq!(verdict(sync, &info), Err(Violation::Unsigned));

        let (mut sync, info) = pushed(doc, &key, true);
        sync.sigs[0].sig[7] ^= 0x20;
        assert_eq!(verdict(sync, &info), Err(Violation::BadSignature));

        // Signed for another document: the signature does not verify for this one.
        let (mut sync, info) = pushed(doc, &key, true);
        sync.sigs[0] = key.sign_change("site|site-b", sync.sigs[0].hash);
        assert_eq!(verdict(sync, &info), Err(Violation::BadSignature));

        let stranger = Keypair::generate();
        let (mut sync, info) = pushed(doc, &key, true);
        sync.sigs[0] = stranger.sign_change(doc, sync.sigs[0].hash);
        assert_eq!(verdict(sync, &info), Err(Violation::UnknownKey));
    }
}
