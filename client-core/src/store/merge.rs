//! Merging changes made elsewhere: one document's bytes, or a batch of many devices' pushes in one
//! transaction (the server's group commit), each item tried on a copy first so that a bad one fails
//! alone and changes nothing.

use std::collections::HashMap;
use std::sync::Arc;

use automerge::{Automerge, ChangeHash, ReadDoc};

use super::screen::Screen;
use super::{Loaded, Store};
use crate::doc;
use crate::error::{Error, Result};
use crate::ids::{DocId, SiteId};
use crate::roster::Roster;
use crate::validate;

impl Store {
    /// Merges changes made elsewhere (from [`Store::export_changes`] or the server) into the document,
    /// creating it from its genesis if new, and makes the result durable. Applying the same bytes
    /// twice changes nothing. Returns whether the document changed.
    pub fn merge_changes(&mut self, id: &DocId, bytes: &[u8]) -> Result<bool> {
        let mut loaded = self.take_or_new(id)?;
        let before = loaded.doc.get_heads();
        // On any error `loaded` is dropped: memory never keeps what the disk does not have.
        let encoded = doc::apply_bytes(&mut loaded.doc, bytes).map_err(|reason| Error::BadChanges {
            doc: id.to_string(),
            reason,
        })?;
        if !loaded.doc.get_missing_deps(&[]).is_empty() {
            return Err(Error::MissingHistory { doc: id.to_string() });
        }
        doc::check_identity(&loaded.doc, id).map_err(|reason| Error::BadChanges {
            doc: id.to_string(),
            reason,
        })?;
        let changed = loaded.doc.get_heads() != before;
        loaded.encoded = Some((before, loaded.doc.get_heads(), encoded));
        let mut batch = [(id.clone(), loaded)];
        if changed || !batch[0].1.stored {
            self.persist(&mut batch)?;
        }
        let [(id, loaded)] = batch;
        self.put_back(id, loaded);
        Ok(changed)
    }

    /// Merges changes into several documents and makes them durable in one SQLite transaction (one
    /// fsync for all: the server's group commit). Each item succeeds or fails on its own, with the
    /// errors of [`Store::merge_changes`]; the returned results are in the order of `items`. A
    /// document may appear more than once. A document that cannot be written is rolled back alone
    /// (a savepoint per document) and its items fail; the others commit. `Err` only if the
    /// transaction itself failed, in which case nothing was merged.
    pub fn merge_many(&mut self, items: &[(DocId, &[u8])]) -> Result<Vec<Result<bool>>> {
        let items: Vec<Item<'_>> = items.iter().map(|(id, bytes)| (id, *bytes, None)).collect();
        self.merge_batch(&items, None)
    }

    /// [`Store::merge_many`] holding every record the changes touch to [`crate::validate`], as the
    /// server holds what phones push: a document id dated outside the window, a line of a worker
    /// who is not on the site's roster, a negative work-day, a line under an id that is not its own,
    /// a key result bound to a site its author may not read — each fails its item with
    /// [`Error::Refused`] naming the field, and nothing of that item is stored. `tenancy` answers
    /// for the author of each item.
    pub fn merge_many_checked(
        &mut self,
        items: &[(DocId, &[u8], &dyn validate::Tenancy)],
    ) -> Result<Vec<Result<bool>>> {
        let items: Vec<Item<'_>> = items
            .iter()
            .map(|(id, bytes, tenancy)| (id, *bytes, Some(*tenancy)))
            .collect();
        self.merge_batch(&items, None)
    }

    /// [`Store::merge_many_checked`] for changes that `screen` let through (the server's group
    /// commit after its gate): an item whose step the gate already held to the same checks on the
    /// same data is not checked again (see [`Store::screened`]); every other item is, as by
    /// [`Store::merge_many_checked`].
    pub fn merge_many_screened(
        &mut self,
        items: &[(DocId, &[u8], &dyn validate::Tenancy)],
        screen: &Screen,
    ) -> Result<Vec<Result<bool>>> {
        let items: Vec<Item<'_>> = items
            .iter()
            .map(|(id, bytes, tenancy)| (id, *bytes, Some(*tenancy)))
            .collect();
        self.merge_batch(&items, Some(screen))
    }

    /// The checks of [`crate::validate`] on what a trial copy's new changes touched. A day's lines
    /// are checked against the roster of its site: the copy in this batch if the site's master data
    /// is part of it, else the stored one (none if the store does not hold the site).
    fn check_trial(
        &mut self,
        trial: &Automerge,
        id: &DocId,
        before: &[ChangeHash],
        tenancy: &dyn validate::Tenancy,
        taken: &[Taken],
        rosters: &mut HashMap<SiteId, Option<Arc<Roster>>>,
    ) -> Result<()> {
        let refused = |invalid| Error::Refused {
            doc: id.to_string(),
            invalid,
        };
        validate::doc_id(id).map_err(refused)?;
        if trial.get_heads() == before {
            return Ok(());
        }
        let touched = validate::document::touched(trial, id, before).map_err(refused)?;
        let mut roster = None;
        // Sign-off records in `reviews` name a worker or crew of the roster too.
        if let DocId::Day(site, _) = id
            && ["labor", "progress", "delays", "reviews"]
                .iter()
                .any(|t| touched.any(t))
        {
            roster = self.batch_roster(site, taken, rosters)?;
        }
        let cx = validate::document::Context {
            roster: roster.as_deref(),
            tenancy,
        };
        validate::document::check(trial, id, &touched, &cx).map_err(refused)
    }

    /// The roster a day of `site` is checked against in this batch: the copy in this batch if the
    /// site's master data is part of it, else the stored one (none if the store does not hold the
    /// site).
    fn batch_roster(
        &mut self,
        site: &SiteId,
        taken: &[Taken],
        rosters: &mut HashMap<SiteId, Option<Arc<Roster>>>,
    ) -> Result<Option<Arc<Roster>>> {
        let master = DocId::Site(site.clone());
        if let Some(t) = taken.iter().find(|t| t.id == master) {
            return super::screen::roster_at(site, &t.loaded.doc);
        }
        if let Some(r) = rosters.get(site) {
            return Ok(r.clone());
        }
        let r = self.read_doc(&master, |d| super::screen::roster_at(site, d))?.flatten();
        rosters.insert(site.clone(), r.clone());
        Ok(r)
    }

    /// Whether the gate already held this very step — the document at the heads `before` to the
    /// trial's heads, one change it accepted — to the checks [`Store::check_trial`] would run: the
    /// records the change wrote (which include every record the step moved, all that
    /// [`Store::check_trial`] reads) in the same document state, against an equal roster. A day's
    /// and a site's records are checked without the author's tenancy, so that is all the checks
    /// read; a key result's are not, and an OKR document is always checked again, as is a push of
    /// several changes (its step is none the gate took alone). Skipping the repeat was worth +15%
    /// one-entry pushes a second (measured 2026-11).
    fn screened(
        &mut self,
        screen: &Screen,
        trial: &Automerge,
        id: &DocId,
        before: &[ChangeHash],
        taken: &[Taken],
        rosters: &mut HashMap<SiteId, Option<Arc<Roster>>>,
    ) -> bool {
        let Some(checked_with) = screen.checked(id, before, &trial.get_heads()) else {
            return false;
        };
        match id {
            DocId::Site(_) => true,
            DocId::Day(site, _) => {
                self.batch_roster(site, taken, rosters)
                    .is_ok_and(|r| match (r.as_deref(), checked_with) {
                        // Usually the very roster the gate kept: no need to compare it field by field.
                        (Some(a), Some(b)) => std::ptr::eq(a, b) || a == b,
                        (a, b) => a == b,
                    })
            }
            DocId::Okr(..) => false,
        }
    }

    fn merge_batch(&mut self, items: &[Item<'_>], screen: Option<&Screen>) -> Result<Vec<Result<bool>>> {
        let mut taken: Vec<Taken> = Vec::new();
        let mut results = Vec::with_capacity(items.len());
        // Rosters read for checks in this batch, unless the site's master data is part of it.
        let mut rosters: HashMap<SiteId, Option<Arc<Roster>>> = HashMap::new();
        for &(id, bytes, tenancy) in items {
            let slot = match taken.iter().position(|t| t.id == *id) {
                Some(i) => i,
                None => match self.take_or_new(id) {
                    Ok(loaded) => {
                        let before = loaded.doc.get_heads();
                        taken.push(Taken {
                            id: id.clone(),
                            loaded,
                            before,
                            merged: false,
                        });
                        taken.len() - 1
                    }
                    Err(e) => {
                        results.push(Err(e));
                        continue;
                    }
                },
            };
            // Apply to a copy: a bad item must leave nothing of itself in the document.
            let before = taken[slot].loaded.doc.get_heads();
            let mut trial = taken[slot].loaded.doc.fork();
            trial.set_actor(self.actor.clone());
            let mut outcome = merge_trial(&mut trial, id, bytes);
            if let (Ok(_), Some(tenancy)) = (&outcome, tenancy) {
                let held = screen.is_some_and(|s| self.screened(s, &trial, id, &before, &taken, &mut rosters));
                if !held && let Err(e) = self.check_trial(&trial, id, &before, tenancy, &taken, &mut rosters) {
                    outcome = Err(e);
                }
            }
            let t = &mut taken[slot];
            let outcome = outcome.map(|encoded| {
                let changed = trial.get_heads() != before;
                if changed {
                    // The bytes serve as the next chunk when this is the only change since the
                    // last save; a second one in the same batch is encoded again at persist.
                    t.loaded.encoded = match t.loaded.encoded.take() {
                        None => Some((before, trial.get_heads(), encoded)),
                        Some(_) => None,
                    };
                    let encoded = t.loaded.encoded.take();
                    t.loaded.doc = trial;
                    t.loaded.encoded = encoded;
                }
                t.merged = true;
                changed
            });
            results.push(outcome);
        }
        let mut batch: Vec<(DocId, Loaded)> = Vec::with_capacity(taken.len());
        for t in taken {
            // A document this store never held is stored only if something merged into it.
            if t.loaded.doc.get_heads() != t.before || (!t.loaded.stored && t.merged) {
                batch.push((t.id, t.loaded));
            } else if t.loaded.stored {
                self.put_back(t.id, t.loaded);
            }
        }
        let failures = self.persist_each(&mut batch, false)?;
        for ((id, l), failure) in batch.into_iter().zip(failures) {
            match failure {
                // Not on disk: the copy is dropped, and every item of the document fails with why.
                Some(e) => {
                    for (k, (item, ..)) in items.iter().enumerate() {
                        if **item == id && results[k].is_ok() {
                            results[k] = Err(e.again());
                        }
                    }
                }
                None => self.put_back(id, l),
            }
        }
        Ok(results)
    }
}

/// One item of a batch merge: the document, its changes, and who answers for the author if the
/// records must be checked.
type Item<'a> = (&'a DocId, &'a [u8], Option<&'a dyn validate::Tenancy>);

/// A document taken for a batch merge: its copy, its heads before, and whether any item of it
/// merged.
struct Taken {
    id: DocId,
    loaded: Loaded,
    before: Vec<ChangeHash>,
    merged: bool,
}

/// Applies one item's bytes to a trial copy of its document: decodable, complete history, and the
/// document the id names. Returns the new changes as encoded.
fn merge_trial(trial: &mut Automerge, id: &DocId, bytes: &[u8]) -> Result<Vec<u8>> {
    let encoded = doc::apply_bytes(trial, bytes).map_err(|reason| Error::BadChanges {
        doc: id.to_string(),
        reason,
    })?;
    if !trial.get_missing_deps(&[]).is_empty() {
        return Err(Error::MissingHistory { doc: id.to_string() });
    }
    doc::check_identity(trial, id).map_err(|reason| Error::BadChanges {
        doc: id.to_string(),
        reason,
    })?;
    Ok(encoded)
}
