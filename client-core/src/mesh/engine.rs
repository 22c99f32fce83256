//! One peer exchange as a state machine: it reads and writes the [`Store`] but does no I/O, so the
//! protocol is tested with two stores and no sockets.
//!
//! Both sides run the same machine: [`PeerEngine::start`] gives the `Hello`; each message received
//! gives the replies to send. The exchange is over when [`PeerEngine::done`]; an `Err` from
//! [`PeerEngine::receive`] ends it (the shell sends [`PeerEngine::refusal`] first, if any).

use std::collections::{HashMap, HashSet};

use automerge::ReadDoc;
use serde::Serialize;

use super::cert::{Certificate, Credentials, Revocations, SignedRevocations};
use super::protocol::{PeerMsg, proof_message};
use super::receipt::SignedReceipt;
use super::{
    PeerError, carried_cert, credentials, keep_cert, keep_revocations, note_carried, receipt, revocations, take_receipt,
};
use crate::changes::ChangeInfo;
use crate::ids::{DocId, OrgId, SiteId};
use crate::rules::{self, Access, Author, Role, Violation};
use crate::signing::{ChangeSig, actor_fingerprint, fingerprint, verify};
use crate::store::{Authority, Screen, Store};
use crate::sync::engine::RefusedNote;
use crate::sync::protocol::{DocSync, hashes, hex_heads};
use crate::validate::Tenancy;

/// What one exchange did, for the command's line and the app.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PeerReport {
    /// The peer's device, once its certificate was checked.
    pub peer_device: String,
    /// The peer's user.
    pub peer_user: String,
    /// Documents this phone sent changes of.
    pub sent: usize,
    /// Documents that took changes from the peer.
    pub received: usize,
    /// Changes sent (each with its signature), over all documents.
    pub changes_sent: usize,
    /// Changes of the peer's that passed the gate and were merged (some may have been here already).
    pub changes_accepted: usize,
    /// Documents of the peer's refused whole (not readable by both, malformed, history missing):
    /// (document, why).
    pub refused_docs: Vec<(String, String)>,
    /// Changes refused, each with the rule it broke; not applied.
    pub refused_changes: Vec<RefusedNote>,
    /// Documents the peer's receipts showed at head office (pending here until then).
    pub receipted: usize,
}

/// The peer machine for one connection.
#[derive(Debug)]
pub struct PeerEngine {
    /// This device's certificate and its org's key.
    creds: Credentials,
    /// The newest revocation list known, updated from the peer's.
    revoked: SignedRevocations,
    /// The challenge this side sent.
    nonce: [u8; 32],
    /// Now, Unix milliseconds (certificates expire).
    now_ms: i64,
    /// The peer's certificate, once checked.
    peer: Option<Certificate>,
    /// Whether the peer proved it holds its certificate's key.
    proven: bool,
    /// Whether this side sent its documents.
    sent: bool,
    /// Whether the peer's documents were taken in.
    received: bool,
    /// A refusal for the peer, set when this side rejects it.
    refusal: Option<String>,
    /// What happened.
    report: PeerReport,
}

impl PeerEngine {
    /// A machine for a new connection and the `Hello` to send. Fails with
    /// [`PeerError::NoCertificate`] before head office issued this phone a certificate.
    pub fn start(store: &Store, now_ms: i64) -> Result<(PeerEngine, PeerMsg), PeerError> {
        let creds = credentials(store)?.ok_or(PeerError::NoCertificate)?;
        let revoked = revocations(store)?
            .filter(|r| r.check(&creds.org_key, &creds.cert.cert.org).is_ok())
            .unwrap_or_else(|| creds.revocations.clone());
        let mut nonce = [0u8; 32];
        getrandom::fill(&mut nonce).map_err(|e| PeerError::Io(std::io::Error::other(e.to_string())))?;
        let hello = PeerMsg::Hello {
            cert: Box::new(creds.cert.clone()),
            revocations: Box::new(revoked.clone()),
            nonce,
        };
        let engine = PeerEngine {
            creds,
            revoked,
            nonce,
            now_ms,
            peer: None,
            proven: false,
            sent: false,
            received: false,
            refusal: None,
            report: PeerReport::default(),
        };
        Ok((engine, hello))
    }

    /// Whether both sides have sent their documents.
    pub fn done(&self) -> bool {
        self.sent && self.received
    }

    /// What happened so far.
    pub fn report(&self) -> &PeerReport {
        &self.report
    }

    /// The message telling the peer it was refused, once this side refused it.
    pub fn refusal(&self) -> Option<PeerMsg> {
        self.refusal.clone().map(|reason| PeerMsg::Refused { reason })
    }

    fn org(&self) -> &str {
        &self.creds.cert.cert.org
    }

    fn reject(&mut self, reason: String) -> PeerError {
        self.refusal = Some(reason.clone());
        PeerError::Rejected(reason)
    }

    /// Takes one message from the peer; returns the replies.
    pub fn receive(&mut self, store: &mut Store, msg: PeerMsg) -> Result<Vec<PeerMsg>, PeerError> {
        match msg {
            PeerMsg::Hello {
                cert,
                revocations,
                nonce,
            } => {
                if self.peer.is_some() {
                    return Err(PeerError::Protocol("a second hello".into()));
                }
                let (cert, revocations) = (*cert, *revocations);
                let org_key = self.creds.org_key;
                // A newer list from the peer, if head office signed it, counts before its own
                // certificate is judged: a revoked phone cannot hide its revocation.
                if revocations.check(&org_key, self.org()).is_ok() && revocations.list.seq > self.revoked.list.seq {
                    keep_revocations(store, &revocations)?;
                    self.revoked = revocations;
                }
                if let Err(e) = cert.check(&org_key, self.org(), self.now_ms, &self.revoked.list) {
                    return Err(self.reject(e.to_string()));
                }
                keep_cert(store, &cert)?;
                self.report.peer_device = cert.cert.device.clone();
                self.report.peer_user = cert.cert.user_id.clone();
                self.peer = Some(cert);
                let sig = store.sign(&proof_message(&nonce, &store.public_key()));
                Ok(vec![PeerMsg::Proof { sig }])
            }
            PeerMsg::Proof { sig } => {
                let peer = self
                    .peer
                    .as_ref()
                    .ok_or_else(|| PeerError::Protocol("proof before hello".into()))?;
                let key = peer.cert.key;
                if self.proven || !verify(&key, &proof_message(&self.nonce, &key), &sig) {
                    return Err(self.reject("the peer did not prove it holds its certificate's key".into()));
                }
                self.proven = true;
                Ok(vec![self.offer(store)?])
            }
            PeerMsg::Offer { docs } => {
                if !self.proven || self.sent {
                    return Err(PeerError::Protocol("an offer out of turn".into()));
                }
                let msg = self.send_docs(store, docs)?;
                self.sent = true;
                Ok(vec![msg])
            }
            PeerMsg::Docs { docs, certs, receipts } => {
                if !self.proven || self.received {
                    return Err(PeerError::Protocol("documents out of turn".into()));
                }
                self.take_docs(store, docs, certs)?;
                self.take_receipts(store, receipts)?;
                self.received = true;
                Ok(Vec::new())
            }
            PeerMsg::Refused { reason } => Err(PeerError::RefusedBy(reason)),
        }
    }

    /// Whether both this device and the peer may read `id`.
    fn both_read(&self, id: &DocId) -> bool {
        let Some(peer) = &self.peer else { return false };
        let org = Some(self.org());
        [&self.creds.cert.cert, &peer.cert]
            .iter()
            .all(|c| rules::access(&c.org, c.role, c.all_sites, &c.sites, id, org) != Access::None)
    }

    /// The documents both may read that this phone holds, with its heads.
    fn offer(&self, store: &mut Store) -> Result<PeerMsg, PeerError> {
        let mut docs = Vec::new();
        for id in store.doc_ids()? {
            if self.both_read(&id) {
                docs.push((id.to_string(), hashes(&store.heads(&id)?)));
            }
        }
        Ok(PeerMsg::Offer { docs })
    }

    /// What the peer lacks of every document both may read, with signatures and authors'
    /// certificates. Master data goes first, so the receiver checks day logs against the roster.
    fn send_docs(&mut self, store: &mut Store, offered: Vec<(String, Vec<[u8; 32]>)>) -> Result<PeerMsg, PeerError> {
        let theirs: HashMap<String, Vec<String>> = offered.into_iter().map(|(d, h)| (d, hex_heads(&h))).collect();
        let mut ids: Vec<DocId> = store.doc_ids()?.into_iter().filter(|id| self.both_read(id)).collect();
        ids.sort_by_key(|id| !matches!(id, DocId::Site(_)));
        let mut docs = Vec::new();
        let mut keys: HashSet<[u8; 32]> = HashSet::new();
        let mut receipts = Vec::new();
        for id in ids {
            if let Some(r) = receipt(store, &id.to_string())? {
                receipts.push(r);
            }
            let mine = store.heads(&id)?;
            let their = theirs.get(&id.to_string()).cloned().unwrap_or_default();
            let (mut a, mut b) = (mine.clone(), their.clone());
            a.sort();
            b.sort();
            if a == b {
                continue;
            }
            // Only heads this phone knows bound what the peer lacks; with none known, the whole
            // document goes (the receiver takes what it lacks of it).
            let known: Vec<String> = store
                .read_doc(&id, |d| {
                    Ok(their
                        .iter()
                        .filter(|h| {
                            h.parse::<automerge::ChangeHash>()
                                .is_ok_and(|h| d.get_change_by_hash(&h).is_some())
                        })
                        .cloned()
                        .collect())
                })?
                .unwrap_or_default();
            let Some((changes, sigs)) = store.export_signed(&id, &known)? else {
                continue;
            };
            if changes.is_empty() {
                continue;
            }
            keys.extend(sigs.iter().map(|s| s.key));
            docs.push(DocSync {
                doc: id.to_string(),
                base: hashes(&known),
                heads: hashes(&mine),
                changes,
                sigs,
            });
        }
        let mut certs = vec![self.creds.cert.clone()];
        for key in keys {
            if key == self.creds.cert.cert.key {
                continue;
            }
            if let Some(c) = carried_cert(store, &key)? {
                certs.push(c);
            }
        }
        self.report.sent = docs.len();
        self.report.changes_sent = docs.iter().map(|d| d.sigs.len()).sum();
        Ok(PeerMsg::Docs { docs, certs, receipts })
    }

    /// Takes in the peer's receipts (after its documents, so they count against the heads merged):
    /// each must be signed by the org key of this phone's own credentials, for its org and a
    /// document both may read; see [`take_receipt`] for what a good one does. One per document (the
    /// sender holds one): a peer cannot make this phone check a flood of them.
    fn take_receipts(&mut self, store: &mut Store, receipts: Vec<SignedReceipt>) -> Result<(), PeerError> {
        let mut seen: HashSet<String> = HashSet::new();
        for r in receipts {
            if !seen.insert(r.receipt.doc.clone()) {
                continue;
            }
            let readable = r.receipt.doc.parse::<DocId>().is_ok_and(|id| self.both_read(&id));
            if readable && take_receipt(store, &self.creds, &r)? {
                self.report.receipted += 1;
            }
        }
        Ok(())
    }

    /// Takes in the peer's documents through the gate: each change must be signed by a device of
    /// the org whose certificate (or head office's directory) this phone holds, and its author's
    /// role must allow its writes. Refused changes and what builds on them are not applied.
    fn take_docs(&mut self, store: &mut Store, docs: Vec<DocSync>, certs: Vec<Certificate>) -> Result<(), PeerError> {
        let peer = self
            .peer
            .clone()
            .ok_or_else(|| PeerError::Protocol("documents before hello".into()))?;
        let mut authors: HashMap<[u8; 32], (Certificate, Author)> = HashMap::new();
        for c in certs.into_iter().chain([peer.clone()]) {
            if c.check_author(&self.creds.org_key, self.org(), &self.revoked.list)
                .is_ok()
            {
                let a = c.cert.author();
                authors.insert(c.cert.key, (c, a));
            }
        }
        let mut directory: HashMap<[u8; 32], Author> = HashMap::new();
        for e in store.directory()? {
            // Head office's, admins' and the server's keys come from head office itself; they read
            // and write every site of the org, so the entry is all their certificate would say.
            if e.device == "server" {
                directory.insert(e.key, Author::system(self.org()));
            } else if matches!(e.role, Role::HeadOffice | Role::Admin) {
                directory.insert(
                    e.key,
                    Author {
                        device: e.device,
                        user_id: e.user_id,
                        user_name: e.user_name,
                        org: self.org().to_string(),
                        role: e.role,
                        all_sites: true,
                        sites: Vec::new(),
                        system: false,
                    },
                );
            }
        }
        let org = self.org().to_string();
        let tenancy = PeerTenancy {
            org: OrgId::new(&org).ok(),
            peer: peer.cert.author(),
            own: self.creds.cert.cert.author(),
        };
        let mut screen = Screen::new();
        let mut ordered = docs;
        ordered.sort_by_key(|d| !d.doc.starts_with("site|"));
        for d in ordered {
            let id = match d.doc.parse::<DocId>() {
                Ok(id) if self.both_read(&id) => id,
                Ok(_) => {
                    self.report
                        .refused_docs
                        .push((d.doc.clone(), "not a document both phones may read".into()));
                    continue;
                }
                Err(_) => {
                    self.report
                        .refused_docs
                        .push((d.doc.clone(), "not a document id".into()));
                    continue;
                }
            };
            let mut auth = PeerAuthority {
                sigs: d.sigs.iter().map(|s| (s.hash, s.clone())).collect(),
                authors: &mut authors,
                directory: &directory,
                store_certs: HashMap::new(),
                revoked: &self.revoked.list,
                org_key: self.creds.org_key,
                org: &org,
                used: Vec::new(),
            };
            for s in &d.sigs {
                // Authors met on earlier exchanges, not carried in this one.
                if !auth.authors.contains_key(&s.key)
                    && !auth.store_certs.contains_key(&s.key)
                    && let Some(c) = carried_cert(store, &s.key)?
                {
                    auth.store_certs.insert(s.key, c);
                }
            }
            let screened = match screen.check(store, &id, &d.changes, Some(&org), &mut auth, &tenancy) {
                Ok(s) => s,
                Err(
                    e @ (crate::Error::BadChanges { .. }
                    | crate::Error::MissingHistory { .. }
                    | crate::Error::Refused { .. }),
                ) => {
                    self.report.refused_docs.push((d.doc.clone(), e.to_string()));
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let used = std::mem::take(&mut auth.used);
            for (hash, v) in screened.refused {
                self.report.refused_changes.push(RefusedNote {
                    doc: d.doc.clone(),
                    hash,
                    rule: v.rule().to_string(),
                    reason: v.to_string(),
                });
            }
            if screened.accepted.is_empty() {
                continue;
            }
            let accepted: HashSet<&str> = screened.accepted_hashes.iter().map(String::as_str).collect();
            let sigs: Vec<ChangeSig> = d
                .sigs
                .iter()
                .filter(|s| accepted.contains(hex::encode(s.hash).as_str()))
                .cloned()
                .collect();
            store.keep_signatures(&id, &sigs, None)?;
            store.merge_changes(&id, &screened.accepted)?;
            // Pending here now: the next server sync asks head office for a receipt to hand back.
            note_carried(store, &d.doc)?;
            self.report.changes_accepted += screened.accepted_hashes.len();
            for c in used {
                keep_cert(store, &c)?;
            }
            self.report.received += 1;
        }
        Ok(())
    }
}

/// The authors of a peer's changes: the signer's certificate (carried, or kept from an earlier
/// exchange), or head office's directory for head office, admins and the server.
struct PeerAuthority<'a> {
    /// The document's signatures by change hash.
    sigs: HashMap<[u8; 32], ChangeSig>,
    /// Checked certificates carried in this exchange, by key.
    authors: &'a mut HashMap<[u8; 32], (Certificate, Author)>,
    /// Keys head office listed for its own, admins' and the server's devices.
    directory: &'a HashMap<[u8; 32], Author>,
    /// Certificates kept in the store, not yet checked.
    store_certs: HashMap<[u8; 32], Certificate>,
    /// The newest revocations.
    revoked: &'a Revocations,
    /// The org's key.
    org_key: [u8; 32],
    /// The org.
    org: &'a str,
    /// Certificates that named the author of an accepted change, to keep for relaying.
    used: Vec<Certificate>,
}

impl Authority for PeerAuthority<'_> {
    fn author(&mut self, doc: &DocId, change: &ChangeInfo) -> Result<Author, Violation> {
        let mut hash = [0u8; 32];
        hex::decode_to_slice(&change.hash, &mut hash).map_err(|_| Violation::Unsigned)?;
        let sig = self.sigs.get(&hash).ok_or(Violation::Unsigned)?;
        if !sig.verifies(&doc.to_string()) {
            return Err(Violation::BadSignature);
        }
        if actor_fingerprint(&change.actor) != Some(fingerprint(&sig.key)) {
            // An older store's random actor is bound to its device by head office alone.
            return Err(Violation::ForeignActor {
                actor: change.actor.clone(),
            });
        }
        if let Some(c) = self.store_certs.remove(&sig.key)
            && c.check_author(&self.org_key, self.org, self.revoked).is_ok()
        {
            let a = c.cert.author();
            self.authors.insert(sig.key, (c, a));
        }
        if let Some((c, a)) = self.authors.get(&sig.key) {
            if !self.used.iter().any(|u| u.cert.key == c.cert.key) {
                self.used.push(c.clone());
            }
            return Ok(a.clone());
        }
        if let Some(a) = self.directory.get(&sig.key) {
            if self.revoked.revokes(&a.device, &sig.key) {
                return Err(Violation::UnknownKey);
            }
            return Ok(a.clone());
        }
        Err(Violation::UnknownKey)
    }
}

/// Which sites are whose, as two phones of one org see it: every site either reaches is the org's;
/// a key result may be bound to a site the sending peer may read.
struct PeerTenancy {
    org: Option<OrgId>,
    peer: Author,
    own: Author,
}

impl Tenancy for PeerTenancy {
    fn site_org(&self, site: &SiteId) -> Option<OrgId> {
        let reached = self.peer.reaches(site.as_str(), None) || self.own.reaches(site.as_str(), None);
        if reached { self.org.clone() } else { None }
    }

    fn may_read(&self, site: &SiteId) -> bool {
        self.peer.reaches(site.as_str(), None)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;
    use crate::ids::{SiteId, WorkItemId, WorkerId, parse_date};
    use crate::mesh::cert::{DeviceCert, VALIDITY_MS};
    use crate::mesh::store_credentials;
    use crate::signing::Keypair;
    use crate::sync::protocol::{self, DirectoryEntry};
    use crate::units::WorkDays;

    const SITE: &str = "site-hz-01";
    const ORG: &str = "org-zhuyuan";

    fn now() -> i64 {
        chrono::Utc::now().timestamp_millis()
    }

    /// Head office: its org key and a store holding the company (master data and three days), as
    /// phones receive it from the server, signed with head office's key.
    struct Office {
        org_key: Keypair,
        store: Store,
        _dir: tempfile::TempDir,
    }

    fn office() -> Office {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path().join("office.sqlite3")).unwrap();
        store
            .import_dir(std::path::Path::new(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../fixtures/small"
            )))
            .unwrap();
        Office {
            org_key: Keypair::generate(),
            store,
            _dir: dir,
        }
    }

    fn revocations(office: &Office, seq: u64, devices: &[&str]) -> SignedRevocations {
        SignedRevocations::issue(
            &office.org_key,
            Revocations {
                org: ORG.into(),
                seq,
                devices: devices.iter().map(|d| d.to_string()).collect(),
                keys: Vec::new(),
            },
        )
    }

    /// A phone of `device`'s user with `role` on `sites`: the office's documents (if it reads the
    /// site), its directory, and a certificate good until `expires_ms`.
    fn phone(
        office: &mut Office,
        device: &str,
        role: Role,
        sites: &[&str],
        expires_ms: i64,
        honest: bool,
    ) -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path().join("phone.sqlite3")).unwrap();
        let cert = DeviceCert {
            device: device.into(),
            key: store.public_key(),
            user_id: format!("u-{device}"),
            user_name: format!("user {device}"),
            role,
            all_sites: false,
            sites: sites.iter().map(|s| s.to_string()).collect(),
            org: ORG.into(),
            issued_ms: now(),
            expires_ms,
        };
        if honest {
            store.set_author(&cert.author()).unwrap();
        }
        store
            .set_directory(&[DirectoryEntry {
                key: office.store.public_key(),
                device: "d-office".into(),
                user_id: "u-office".into(),
                user_name: "office".into(),
                role: Role::HeadOffice,
            }])
            .unwrap();
        if sites.contains(&SITE) {
            for id in office.store.doc_ids().unwrap() {
                let (bytes, sigs) = office.store.export_signed(&id, &[]).unwrap().unwrap();
                store.keep_signatures(&id, &sigs, None).unwrap();
                store.merge_changes(&id, &bytes).unwrap();
            }
        }
        let creds = Credentials {
            org_key: office.org_key.public(),
            cert: Certificate::issue(&office.org_key, cert),
            revocations: revocations(office, 0, &[]),
        };
        store_credentials(&mut store, &creds.to_bytes()).unwrap();
        (store, dir)
    }

    type Outcome = Result<PeerReport, PeerError>;

    /// Runs an exchange between two stores, every message through the wire encoding; `tamper`
    /// sees (and may change) each message on its way from `a` to `b`.
    fn pump(a: &mut Store, b: &mut Store, mut tamper: impl FnMut(&mut PeerMsg)) -> (Outcome, Outcome) {
        let (mut ea, ha) = PeerEngine::start(a, now()).unwrap();
        let (mut eb, hb) = PeerEngine::start(b, now()).unwrap();
        let (mut to_a, mut to_b) = (VecDeque::from([hb]), VecDeque::from([ha]));
        let (mut ra, mut rb): (Option<Outcome>, Option<Outcome>) = (None, None);
        fn deliver(
            e: &mut PeerEngine,
            s: &mut Store,
            m: PeerMsg,
            out: &mut VecDeque<PeerMsg>,
            r: &mut Option<Outcome>,
        ) {
            if r.is_some() {
                return;
            }
            let m: PeerMsg = protocol::decode(&protocol::encode(&m)).unwrap();
            match e.receive(s, m) {
                Ok(replies) => out.extend(replies),
                Err(err) => {
                    out.extend(e.refusal());
                    *r = Some(Err(err));
                }
            }
            if r.is_none() && e.done() {
                *r = Some(Ok(e.report().clone()));
            }
        }
        while !to_a.is_empty() || !to_b.is_empty() {
            if let Some(mut m) = to_b.pop_front() {
                tamper(&mut m);
                deliver(&mut eb, b, m, &mut to_a, &mut rb);
            }
            if let Some(m) = to_a.pop_front() {
                deliver(&mut ea, a, m, &mut to_b, &mut ra);
            }
        }
        let unfinished = || Err(PeerError::Protocol("unfinished".into()));
        (ra.unwrap_or_else(unfinished), rb.unwrap_or_else(unfinished))
    }

    fn log_a_line(store: &mut Store) -> DocId {
        let date = parse_date("2026-12-01").unwrap();
        let entry = crate::store::entry(
            SiteId::new(SITE).unwrap(),
            date,
            WorkerId::new("w-0001").unwrap(),
            WorkItemId::new("site-hz-01/wi-4.1").unwrap(),
            WorkDays::parse("1.0").unwrap(),
        );
        store.add_labor(&entry, None).unwrap();
        DocId::Day(SiteId::new(SITE).unwrap(), date)
    }

    fn lines(store: &mut Store) -> usize {
        store
            .day(&SiteId::new(SITE).unwrap(), parse_date("2026-12-01").unwrap())
            .map(|d| d.labor.len())
            .unwrap_or(0)
    }

    #[test]
    fn phones_of_a_site_exchange_signed_work_and_carry_it_on() {
        let mut o = office();
        let (mut a, _da) = phone(&mut o, "dA", Role::Foreman, &[SITE], now() + VALIDITY_MS, true);
        let (mut b, _db) = phone(&mut o, "dB", Role::SiteManager, &[SITE], now() + VALIDITY_MS, true);
        let (mut c, _dc) = phone(&mut o, "dC", Role::Foreman, &[SITE], now() + VALIDITY_MS, true);
        let day = log_a_line(&mut a);
        let (ra, rb) = pump(&mut a, &mut b, |_| {});
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert_eq!((ra.sent, ra.received), (1, 0), "{ra:?}");
        assert_eq!((rb.sent, rb.received), (0, 1), "{rb:?}");
        assert_eq!(rb.peer_device, "dA");
        assert!(rb.refused_changes.is_empty() && rb.refused_docs.is_empty(), "{rb:?}");
        assert_eq!(lines(&mut b), 1);
        assert_eq!(a.heads(&day).unwrap(), b.heads(&day).unwrap());
        // Pending for B's next server sync, with A's signatures to prove it.
        assert!(b.pending().unwrap().contains(&day));
        let (_, sigs) = b.export_signed(&day, &[]).unwrap().unwrap();
        assert!(sigs.iter().any(|s| s.key == a.public_key()));

        // B hands A's line on to C, who never met A: A's certificate travels with it.
        let (_, rc) = pump(&mut b, &mut c, |_| {});
        let rc = rc.unwrap();
        assert_eq!(rc.received, 1, "{rc:?}");
        assert!(rc.refused_changes.is_empty(), "{rc:?}");
        assert_eq!(lines(&mut c), 1);
        // Once in step, a second exchange sends nothing.
        let (ra, rb) = pump(&mut a, &mut b, |_| {});
        assert_eq!((ra.unwrap().sent, rb.unwrap().sent), (0, 0));
    }

    /// A receipt of the office's org key, for `org`, of `store`'s heads of `day`.
    fn receipt_for(o: &Office, store: &mut Store, day: &DocId, org: &str) -> SignedReceipt {
        SignedReceipt::issue(
            &o.org_key,
            crate::mesh::receipt::Receipt {
                org: org.into(),
                doc: day.to_string(),
                heads: store.heads(day).unwrap(),
                issued_ms: now(),
            },
        )
    }

    #[test]
    fn receipts_from_head_office_travel_back_and_forged_ones_are_ignored() {
        let mut o = office();
        let (mut a, _da) = phone(&mut o, "dA", Role::Foreman, &[SITE], now() + VALIDITY_MS, true);
        let (mut b, _db) = phone(&mut o, "dB", Role::SiteManager, &[SITE], now() + VALIDITY_MS, true);
        let day = log_a_line(&mut a);
        pump(&mut a, &mut b, |_| {}).1.unwrap();
        assert_eq!(crate::mesh::carried(&b).unwrap(), [day.to_string()]);
        // B reached head office: its receipt marks the day there and ends B's carrying it.
        let good = receipt_for(&o, &mut b, &day, ORG);
        let creds = credentials(&b).unwrap().unwrap();
        assert!(take_receipt(&mut b, &creds, &good).unwrap());
        assert!(!b.pending().unwrap().contains(&day));
        assert!(crate::mesh::carried(&b).unwrap().is_empty());

        // Forged on the way to A: another key, altered heads, another org. None marks A's day.
        let other = Keypair::generate();
        type Forge<'a> = Box<dyn Fn(&mut SignedReceipt) + 'a>;
        let forgeries: Vec<Forge<'_>> = vec![
            Box::new(|r| r.sig = other.sign(b"anything")),
            Box::new(|r| r.receipt.heads = vec!["00".repeat(32)]),
            Box::new(|r| r.receipt.doc = "day|site-hz-01|2026-12-02".into()),
        ];
        for forge in &forgeries {
            let (_, ra) = pump(&mut b, &mut a, |m| {
                if let PeerMsg::Docs { receipts, .. } = m {
                    assert_eq!(receipts.len(), 1, "B hands on its receipt");
                    forge(&mut receipts[0]);
                }
            });
            assert_eq!(ra.unwrap().receipted, 0);
            assert!(a.pending().unwrap().contains(&day), "a bad receipt marks nothing");
        }
        // Signed by the org key, but for other heads than A's (an earlier one, re-signed).
        let (_, ra) = pump(&mut b, &mut a, |m| {
            if let PeerMsg::Docs { receipts, .. } = m {
                let mut r = receipts[0].receipt.clone();
                r.heads = vec!["ab".repeat(32)];
                r.issued_ms -= 1;
                receipts[0] = SignedReceipt::issue(&o.org_key, r);
            }
        });
        assert_eq!(ra.unwrap().receipted, 0);
        assert!(a.pending().unwrap().contains(&day));
        // Another org's receipt, signed by this org's key, is not this org's word.
        let foreign = receipt_for(&o, &mut b, &day, "org-other");
        let (_, ra) = pump(&mut b, &mut a, |m| {
            if let PeerMsg::Docs { receipts, .. } = m {
                receipts[0] = foreign.clone();
            }
        });
        assert_eq!(ra.unwrap().receipted, 0);
        assert!(a.pending().unwrap().contains(&day));

        // The receipt as head office signed it: A's day is at head office, though A never got there.
        let (_, ra) = pump(&mut b, &mut a, |_| {});
        assert_eq!(ra.unwrap().receipted, 1);
        assert!(!a.pending().unwrap().contains(&day));
        assert_eq!(crate::mesh::receipt(&a, &day.to_string()).unwrap(), Some(good));
    }

    #[test]
    fn another_sites_phone_receives_nothing() {
        let mut o = office();
        let (mut a, _da) = phone(&mut o, "dA", Role::Foreman, &[SITE], now() + VALIDITY_MS, true);
        let (mut x, _dx) = phone(&mut o, "dX", Role::Foreman, &["site-sh-02"], now() + VALIDITY_MS, true);
        log_a_line(&mut a);
        let mut offered = None;
        let (ra, rx) = pump(&mut a, &mut x, |m| {
            if let PeerMsg::Offer { docs } = m {
                offered = Some(docs.len());
            }
        });
        assert_eq!(ra.unwrap().sent, 0);
        assert_eq!(rx.unwrap().received, 0);
        assert_eq!(offered, Some(0), "A offers nothing of its site to X");
        assert!(x.doc_ids().unwrap().is_empty());
    }

    #[test]
    fn expired_and_revoked_certificates_are_refused() {
        let mut o = office();
        let (mut a, _da) = phone(&mut o, "dA", Role::Foreman, &[SITE], now() + VALIDITY_MS, true);
        let (mut old, _do) = phone(&mut o, "dOld", Role::Foreman, &[SITE], now() - 1, true);
        log_a_line(&mut a);
        let (ra, rold) = pump(&mut a, &mut old, |_| {});
        assert!(
            matches!(ra, Err(PeerError::Rejected(ref r)) if r.contains("expired")),
            "{ra:?}"
        );
        assert!(matches!(rold, Err(PeerError::RefusedBy(_))), "{rold:?}");
        assert_eq!(lines(&mut old), 0);

        // B heard of dR's revocation at head office; A learns it from B, then refuses dR itself.
        let (mut b, _db) = phone(&mut o, "dB", Role::SiteManager, &[SITE], now() + VALIDITY_MS, true);
        let (mut r, _dr) = phone(&mut o, "dR", Role::Foreman, &[SITE], now() + VALIDITY_MS, true);
        let list = revocations(&o, 1, &["dR"]);
        keep_revocations(&mut b, &list).unwrap();
        let (rb, rr) = pump(&mut b, &mut r, |_| {});
        assert!(
            matches!(rb, Err(PeerError::Rejected(ref m)) if m.contains("revoked")),
            "{rb:?}"
        );
        assert!(rr.is_err());
        pump(&mut b, &mut a, |_| {}).0.unwrap();
        assert_eq!(super::revocations(&a).unwrap().unwrap().list.seq, 1);
        let (ra, _) = pump(&mut a, &mut r, |_| {});
        assert!(
            matches!(ra, Err(PeerError::Rejected(ref m)) if m.contains("revoked")),
            "{ra:?}"
        );
        // A forged newer list (not signed by the org key) is ignored.
        let mut forged = list.clone();
        forged.list.seq = 7;
        forged.list.devices = vec!["dB".into()];
        keep_revocations(&mut r, &forged).unwrap();
        let (rb, _) = pump(&mut b, &mut r, |_| {});
        assert!(matches!(rb, Err(PeerError::Rejected(ref m)) if m.contains("revoked")));
    }

    #[test]
    fn a_certificate_replayed_without_its_key_is_refused() {
        let mut o = office();
        let (mut a, _da) = phone(&mut o, "dA", Role::Foreman, &[SITE], now() + VALIDITY_MS, true);
        let (mut m, _dm) = phone(&mut o, "dM", Role::Foreman, &[SITE], now() + VALIDITY_MS, true);
        // M presents A's certificate (seen on the air) as its own.
        let a_cert = credentials(&a).unwrap().unwrap().cert;
        let (rm, _) = pump(&mut a, &mut m, |_| {});
        rm.unwrap();
        // A saw its own certificate but the proof was made with M's key.
        let (_, ra) = pump(&mut m, &mut a, |msg| {
            if let PeerMsg::Hello { cert, .. } = msg {
                **cert = a_cert.clone();
            }
        });
        assert!(
            matches!(ra, Err(PeerError::Rejected(ref r)) if r.contains("prove")),
            "{ra:?}"
        );
    }

    #[test]
    fn altered_carried_changes_and_forbidden_writes_are_refused() {
        let mut o = office();
        let (mut a, _da) = phone(&mut o, "dA", Role::Foreman, &[SITE], now() + VALIDITY_MS, true);
        let (mut m, _dm) = phone(&mut o, "dM", Role::Foreman, &[SITE], now() + VALIDITY_MS, true);
        let (mut b, _db) = phone(&mut o, "dB", Role::SiteManager, &[SITE], now() + VALIDITY_MS, true);
        log_a_line(&mut a);
        pump(&mut a, &mut m, |_| {}).1.unwrap();
        let mkey = Keypair::generate();
        // M re-signs A's change with a key of its own: the actor is still A's.
        let (_, rb) = pump(&mut m, &mut b, |msg| {
            if let PeerMsg::Docs { docs, .. } = msg {
                for d in docs {
                    for s in &mut d.sigs {
                        *s = mkey.sign_change(&d.doc, s.hash);
                    }
                }
            }
        });
        let rb = rb.unwrap();
        assert_eq!(lines(&mut b), 0);
        assert!(
            rb.refused_changes
                .iter()
                .any(|r| r.rule == Violation::ForeignActor { actor: String::new() }.rule()),
            "{rb:?}"
        );
        // M edits the bytes of the carried change: its hash no longer matches any signature.
        let (_, rb) = pump(&mut m, &mut b, |msg| {
            if let PeerMsg::Docs { docs, .. } = msg {
                for d in docs {
                    let at = d.changes.len() / 2;
                    d.changes[at] ^= 0x55;
                }
            }
        });
        let rb = rb.unwrap();
        assert_eq!(lines(&mut b), 0);
        assert!(!rb.refused_docs.is_empty() || !rb.refused_changes.is_empty(), "{rb:?}");

        // A foreman's store that skips its own checks approves a day: B takes the line, not the
        // approval.
        let (mut f, _df) = phone(&mut o, "dF", Role::Foreman, &[SITE], now() + VALIDITY_MS, false);
        let day = log_a_line(&mut f);
        let DocId::Day(site, date) = &day else { unreachable!() };
        f.submit_day(site, *date).unwrap();
        f.approve_day(site, *date).unwrap();
        let (mut b2, _db2) = phone(&mut o, "dB2", Role::SiteManager, &[SITE], now() + VALIDITY_MS, true);
        let (_, rb) = pump(&mut f, &mut b2, |_| {});
        let rb = rb.unwrap();
        assert_eq!(lines(&mut b2), 1, "{rb:?}");
        assert!(
            rb.refused_changes.iter().any(|r| r.rule == "review.manager_only"),
            "{rb:?}"
        );
    }
}
