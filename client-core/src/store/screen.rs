//! The gate every pushed change passes on the server, and the same rules applied to the phone's own
//! writes before they are made.
//!
//! The server hands [`Screen::check`] a device's pushed bytes; each change in them is taken in
//! causal order, attributed to its author (the server's [`Authority`] verifies its signature and
//! actor), checked against the rules of [`crate::rules`] as the author saw the document, and
//! applied to a trial copy. What comes out is the accepted changes, ready to merge, and the refused
//! ones with the rule each broke; a change that builds on a refused one is refused with it, and
//! changes that do not are stored.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use automerge::{Automerge, Change, ChangeHash, ReadDoc};

use crate::changes::{self, AtHeads, ChangeInfo, Tables};
use crate::doc::{self, site};
use crate::error::{Error, Result};
use crate::ids::{DocId, SiteId};
use crate::roster::Roster;
use crate::rules::{self, Author, Violation};
use crate::store::Store;
use crate::validate;

/// Says who wrote a change, or which rule its signature or actor breaks.
pub trait Authority {
    /// The author of `change` in `doc`: the user of the device whose key signed it.
    fn author(&mut self, doc: &DocId, change: &ChangeInfo) -> std::result::Result<Author, Violation>;
}

/// What the gate made of one pushed document.
#[derive(Debug, Default)]
pub struct Screened {
    /// The accepted changes the store lacked, as Automerge bytes to merge (empty: nothing new).
    pub accepted: Vec<u8>,
    /// Their hashes, hex, in the order of `accepted`.
    pub accepted_hashes: Vec<String>,
    /// The refused changes (hex hash) with the rule each broke.
    pub refused: Vec<(String, Violation)>,
}

/// Trial copies of the documents of one group commit, so that two pushes of one document in the
/// same batch see each other's accepted changes.
#[derive(Default)]
pub struct Screen {
    trials: HashMap<DocId, (Automerge, Tables, Vec<Change>)>,
    /// Rosters read for checking day logs in this batch (`None`: the store does not hold the site).
    rosters: HashMap<SiteId, Option<Arc<Roster>>>,
    /// The steps of site and day documents whose touched records passed the checks of
    /// [`validate::document`]: the heads before one accepted change and after it. The group commit
    /// does not check such a step again ([`Store::merge_many_screened`]).
    verified: HashSet<(DocId, Vec<ChangeHash>, Vec<ChangeHash>)>,
}

impl std::fmt::Debug for Screen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Screen").field("docs", &self.trials.len()).finish()
    }
}

impl Screen {
    /// An empty screen for one batch.
    pub fn new() -> Screen {
        Screen::default()
    }

    /// The roster the step of `id` from the heads `before` to `after` had its touched records checked
    /// against, if this screen checked that very step (one change): `Some(None)` for a site's
    /// master data, which no roster checks, and for a day of a site the store does not hold.
    pub(crate) fn checked(&self, id: &DocId, before: &[ChangeHash], after: &[ChangeHash]) -> Option<Option<&Roster>> {
        if !self.verified.contains(&(id.clone(), before.to_vec(), after.to_vec())) {
            return None;
        }
        match id {
            DocId::Day(site, _) => Some(self.rosters.get(site)?.as_deref()),
            DocId::Site(_) => Some(None),
            DocId::Okr(..) => None,
        }
    }

    /// Screens the pushed `bytes` of document `id`. `site_org` is the org of the document's site.
    ///
    /// Errors: [`Error::BadChanges`] for bytes that are not Automerge changes of this document,
    /// [`Error::MissingHistory`] when changes depend on history the server lacks.
    pub fn check(
        &mut self,
        store: &mut Store,
        id: &DocId,
        bytes: &[u8],
        site_org: Option<&str>,
        authority: &mut dyn Authority,
        tenancy: &dyn validate::Tenancy,
    ) -> Result<Screened> {
        let bad = |reason: String| Error::BadChanges {
            doc: id.to_string(),
            reason,
        };
        let roster = match id {
            DocId::Day(site, _) => {
                // A site's master data pushed earlier in this batch (a worker added on site, then
                // logged) is what this day is checked against, with what of it was accepted.
                if let Some((trial, _, taken)) = self.trials.get(&DocId::Site(site.clone()))
                    && !taken.is_empty()
                {
                    let r = roster_at(site, trial)?;
                    self.rosters.insert(site.clone(), r);
                }
                if !self.rosters.contains_key(site) {
                    let r = store
                        .read_doc(&DocId::Site(site.clone()), |d| roster_at(site, d))?
                        .flatten();
                    self.rosters.insert(site.clone(), r);
                }
                self.rosters[site].clone()
            }
            _ => None,
        };
        validate::doc_id(id).map_err(|invalid| Error::Refused {
            doc: id.to_string(),
            invalid,
        })?;
        let pending = changes::split(bytes).map_err(bad)?;
        if !self.trials.contains_key(id) {
            let doc = store
                .read_doc(id, |d| Ok(d.clone()))?
                .unwrap_or_else(|| changes::genesis(id).0.clone());
            self.trials.insert(id.clone(), (doc, Tables::of(id), Vec::new()));
        }
        let (trial, tables, taken) = self.trials.get_mut(id).expect("inserted above");
        let mut out = Screened::default();
        let mut refused: HashMap<ChangeHash, ()> = HashMap::new();
        let mut pending = pending;
        loop {
            let mut waiting = Vec::new();
            let mut moved = false;
            for change in pending {
                let hash = change.hash();
                if trial.get_change_by_hash(&hash).is_some() || refused.contains_key(&hash) {
                    moved = true;
                    continue;
                }
                if let Some(dep) = change.deps().iter().find(|d| refused.contains_key(d)) {
                    refused.insert(hash, ());
                    out.refused
                        .push((hash.to_string(), Violation::DependsOnRefused { hash: dep.to_string() }));
                    moved = true;
                    continue;
                }
                if !trial.get_missing_deps(change.deps()).is_empty() {
                    waiting.push(change);
                    continue;
                }
                moved = true;
                let verdict = match admit(trial, tables, id, site_org, &change, authority) {
                    Err(v) => Err(v),
                    Ok(info) => {
                        // What the change leaves its records as must be valid. Applied in place and
                        // checked there; the rare failure rebuilds the copy without it (cheaper than
                        // copying the document for every change).
                        let before = trial.get_heads();
                        let cx = validate::document::Context {
                            roster: roster.as_deref(),
                            tenancy,
                        };
                        let verdict = apply(trial, &change)
                            .map_err(|reason| Violation::Structure { what: reason })
                            .and_then(|()| {
                                let written = validate::document::written(id, &info.writes);
                                validate::document::check(trial, id, &written, &cx).map_err(|invalid| {
                                    Violation::Invalid {
                                        field: invalid.field().to_string(),
                                        reason: invalid.to_string(),
                                    }
                                })
                            });
                        if verdict.is_ok() && matches!(id, DocId::Day(..) | DocId::Site(_)) {
                            self.verified.insert((id.clone(), before, trial.get_heads()));
                        } else if verdict.is_err() && trial.get_heads() != before {
                            let mut fresh = store
                                .read_doc(id, |d| Ok(d.clone()))?
                                .unwrap_or_else(|| changes::genesis(id).0.clone());
                            for c in taken.iter() {
                                apply(&mut fresh, c).map_err(bad)?;
                            }
                            *trial = fresh;
                        }
                        verdict
                    }
                };
                match verdict {
                    Ok(()) => {
                        out.accepted.extend_from_slice(change.raw_bytes());
                        out.accepted_hashes.push(hash.to_string());
                        taken.push(change);
                    }
                    Err(v) => {
                        refused.insert(hash, ());
                        out.refused.push((hash.to_string(), v));
                    }
                }
            }
            if waiting.is_empty() {
                break;
            }
            if !moved {
                return Err(Error::MissingHistory { doc: id.to_string() });
            }
            pending = waiting;
        }
        doc::check_identity(trial, id).map_err(bad)?;
        Ok(out)
    }
}

/// Rosters decoded lately, by site and the heads of its master data they were read at.
///
/// Decision (2026-11-30): each group commit decoded the roster of every site it checked a day of
/// (7.7 % of the push writer's CPU on hot one-entry pushes, where a batch holds a few pushes). A
/// roster is what the site document says at its heads, so at the same heads it is the same
/// roster: only the heads are compared. One entry a site; emptied at [`ROSTERS_KEPT`] sites.
static ROSTERS: Mutex<Option<HashMap<SiteId, KeptRoster>>> = Mutex::new(None);

/// A site's heads and its roster at them.
type KeptRoster = (Vec<ChangeHash>, Arc<Roster>);

/// Sites whose roster is kept at most.
const ROSTERS_KEPT: usize = 1024;

/// The roster `site_doc` holds (`None`: it holds no site), decoded once for its heads.
pub(super) fn roster_at(site: &SiteId, site_doc: &Automerge) -> Result<Option<Arc<Roster>>> {
    let heads = site_doc.get_heads();
    let kept = ROSTERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(|m| m.get(site))
        .filter(|(at, _)| *at == heads)
        .map(|(_, r)| r.clone());
    if kept.is_some() {
        return Ok(kept);
    }
    let Some(roster) = site::read(site_doc)? else {
        return Ok(None);
    };
    let roster = Arc::new(roster);
    let mut m = ROSTERS.lock().unwrap_or_else(|e| e.into_inner());
    let m = m.get_or_insert_with(HashMap::new);
    if m.len() >= ROSTERS_KEPT && !m.contains_key(site) {
        m.clear();
    }
    m.insert(site.clone(), (heads, roster.clone()));
    Ok(Some(roster))
}

/// Whether one change may be stored: its structure, its author, the rules. Returns the change
/// decoded.
fn admit(
    trial: &Automerge,
    tables: &Tables,
    id: &DocId,
    site_org: Option<&str>,
    change: &Change,
    authority: &mut dyn Authority,
) -> std::result::Result<ChangeInfo, Violation> {
    let info = changes::decode(tables, change)?;
    if change.hash() == tables.genesis() {
        return Ok(info);
    }
    let author = authority.author(id, &info)?;
    let before = AtHeads {
        doc: trial,
        heads: change.deps().to_vec(),
        kind: id.kind(),
    };
    rules::check(id, site_org, &author, &info.writes, &before)?;
    Ok(info)
}

/// Applies one change to a trial copy; Automerge's asserts on malformed input become an error.
fn apply(trial: &mut Automerge, change: &Change) -> std::result::Result<(), String> {
    let run = std::panic::AssertUnwindSafe(|| trial.apply_changes([change.clone()]));
    match std::panic::catch_unwind(run) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the Automerge decoder failed on a change".into()),
    }
}

/// Checks a change this store just made against its own author's rights (the honest phone's check,
/// the same code the server runs).
pub(super) fn check_own(
    doc: &Automerge,
    id: &DocId,
    hash: ChangeHash,
    author: &Author,
) -> std::result::Result<(), Violation> {
    let Some(change) = doc.get_change_by_hash(&hash) else {
        return Ok(());
    };
    let tables = Tables::of(id);
    let info = changes::decode(&tables, &change)?;
    let before = AtHeads {
        doc,
        heads: change.deps().to_vec(),
        kind: id.kind(),
    };
    rules::check(id, None, author, &info.writes, &before)
}
