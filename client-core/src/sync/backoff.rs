//! Waiting before trying again: reconnects, and documents the server refused.
//!
//! A refused document is not pushed again on the same connection ([`Engine`] keeps it out); the sync
//! loop lets it go again after an exponential backoff of its own, so a server that answers
//! `Unavailable` (or refuses a document for good) sees one push per document per backoff, not the
//! ~50 a second a phone once sent, and the rest of the phone's documents are unaffected. Plain
//! `Instant`s in and out: the loop supplies the clock, the tests too.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::ids::DocId;
use crate::sync::engine::Engine;

/// Backoff after `attempt` failures: doubling from half a second to a minute, with ±50 % jitter so
/// a thousand phones coming back at 7 a.m. do not retry in lockstep.
pub fn backoff(attempt: u32) -> Duration {
    let base = 500u64.saturating_mul(1 << attempt.min(7)).min(60_000);
    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) * base / 255; // 0..=base
    Duration::from_millis(base / 2 + jitter / 2 + jitter / 4)
}

/// One refused document's wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Wait {
    /// Refusals so far, in a row.
    attempts: u32,
    /// Not pushed again before this.
    until: Instant,
    /// Whether the engine was told it may push it again (a new refusal then counts as another).
    released: bool,
}

/// The documents refused and waiting, across the connections of one sync loop.
#[derive(Debug, Default)]
pub struct Refusals {
    /// Waits by document.
    waits: HashMap<DocId, Wait>,
}

impl Refusals {
    /// Takes in what the engine refused by `now`: a document refused for the first time, or again
    /// after it was released, waits [`backoff`] of its refusals in a row.
    pub fn note(&mut self, engine: &Engine, now: Instant) {
        for (id, _) in engine.refusals() {
            match self.waits.get_mut(id) {
                Some(w) if !w.released => {}
                Some(w) => {
                    w.attempts = w.attempts.saturating_add(1);
                    w.until = now + backoff(w.attempts);
                    w.released = false;
                }
                None => {
                    self.waits.insert(
                        id.clone(),
                        Wait {
                            attempts: 1,
                            until: now + backoff(1),
                            released: false,
                        },
                    );
                }
            }
        }
    }

    /// Lets the engine push again every document whose wait is over by `now`.
    pub fn release_due(&mut self, engine: &mut Engine, now: Instant) {
        for (id, w) in &mut self.waits {
            if !w.released && w.until <= now {
                engine.release(id);
                w.released = true;
            }
        }
    }

    /// Holds back, in the engine of a new connection, every document still waiting at `now`.
    pub fn hold(&mut self, engine: &mut Engine, now: Instant) {
        for (id, w) in &mut self.waits {
            if w.until > now {
                engine.hold(id.clone());
                w.released = false;
            } else {
                w.released = true;
            }
        }
    }

    /// Forgets the documents no longer pending (the server took them since): their next refusal
    /// starts from the first backoff again.
    pub fn forget_done(&mut self, pending: &[DocId]) {
        self.waits.retain(|id, _| pending.contains(id));
    }

    /// How many documents are waiting or were refused.
    pub fn len(&self) -> usize {
        self.waits.len()
    }

    /// Whether no document waits.
    pub fn is_empty(&self) -> bool {
        self.waits.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::protocol::{ClientMsg, DocResult, Refusal, ServerMsg};

    #[test]
    fn backoff_doubles_to_a_minute_with_jitter() {
        for attempt in 0..20 {
            let base = Duration::from_millis((500u64 << attempt.min(7)).min(60_000));
            let d = backoff(attempt);
            assert!(d >= base / 2 && d <= base * 3 / 2, "{attempt}: {d:?}");
        }
    }

    /// Pushes what is pending and answers the push with `Unavailable` for `id`.
    fn refuse(engine: &mut Engine, store: &mut crate::Store, id: &DocId) {
        let pushes = engine.push(store).unwrap();
        let [ClientMsg::Push { req, .. }] = pushes[..] else {
            panic!("expected one push, got {pushes:?}");
        };
        let results = vec![DocResult::Refused {
            doc: id.to_string(),
            reason: Refusal::Unavailable,
        }];
        engine.receive(store, ServerMsg::Ack { req, results }).unwrap();
    }

    #[test]
    fn a_refused_document_waits_longer_each_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = crate::Store::open(dir.path().join("s.sqlite3")).unwrap();
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/small");
        store.import_dir(std::path::Path::new(fixtures)).unwrap();
        let (site, date) = (
            "site-hz-01".parse().unwrap(),
            crate::ids::parse_date("2026-09-01").unwrap(),
        );
        store.set_day_info(&site, date, Some("晴"), None, None).unwrap();
        let id = DocId::Day(site, date);
        // Only the day is pushed here: the rest was imported and is held out of the test.
        let others: Vec<DocId> = store.pending().unwrap().into_iter().filter(|d| *d != id).collect();
        let mut engine = Engine::new();
        for d in others {
            engine.hold(d);
        }
        let mut refusals = Refusals::default();
        let mut now = Instant::now();
        let mut waits = Vec::new();
        for _ in 0..4 {
            refuse(&mut engine, &mut store, &id);
            // Refused: not pushed again on this connection until released.
            assert!(engine.push(&mut store).unwrap().is_empty());
            refusals.note(&engine, now);
            let until = refusals.waits[&id].until;
            waits.push(until - now);
            refusals.release_due(&mut engine, until - Duration::from_millis(1));
            assert!(engine.push(&mut store).unwrap().is_empty(), "not before its time");
            now = until;
            refusals.release_due(&mut engine, now);
            assert!(engine.pending(&store).unwrap().contains(&id), "and then again");
        }
        let bases = [1000, 2000, 4000, 8000].map(Duration::from_millis);
        for (w, base) in waits.iter().zip(bases) {
            assert!(*w >= base / 2 && *w <= base * 3 / 2, "{waits:?}");
        }
        // Refused once more: a new connection holds it back while it waits.
        refuse(&mut engine, &mut store, &id);
        refusals.note(&engine, now);
        let mut fresh = Engine::new();
        refusals.hold(&mut fresh, now);
        assert!(!fresh.pending(&store).unwrap().contains(&id));
        refusals.release_due(&mut fresh, now + Duration::from_secs(60));
        assert!(fresh.pending(&store).unwrap().contains(&id));
        // Once the server takes it, it is forgotten: the next refusal starts from the first backoff.
        assert_eq!(refusals.len(), 1);
        refusals.forget_done(&[]);
        assert!(refusals.is_empty());
    }
}
