//! Applying pushes: every pushed change passes the gate, then the group commit stores a batch of
//! pushes from many devices in one transaction and answers each document of each push. Called by the
//! push writer thread (`state.rs`); the sync connections only hand it their pushes.

use std::collections::HashMap;
use std::sync::Arc;

use sitesync_core::Store;
use sitesync_core::ids::DocId;
use sitesync_core::rules::Author;
use sitesync_core::signing::ChangeSig;
use sitesync_core::store::Screen;
use sitesync_core::sync::protocol::{DocResult, DocSync, Refusal, RefusedChange, hashes, hex_heads};
use sitesync_core::validate::Tenancy;
use tokio::sync::broadcast;

use crate::auth::{Access, AuthDb, Principal};
use crate::authorship::{Signers, Vetted, active_signers};
use crate::error::Result;
use crate::state::{Deliveries, EventDoc, PushEvent};
use crate::tenancy::Pusher;

/// Heads in the one order they are compared and stored in.
pub(crate) fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// What to do with one pushed document, decided before anything is written.
enum Plan {
    /// Answered without writing (refused, or nothing new).
    Answer(DocResult),
    /// Answered after the batch's merges (`merge`: the index of its changes among them), with the
    /// changes the gate refused.
    After {
        id: DocId,
        doc: DocSync,
        merge: Option<usize>,
        refused: Vec<RefusedChange>,
    },
}

/// Applies the pushes of several devices with one transaction (one fsync) for all of their
/// documents: the group commit that lets a server on one disk take thousands of pushes a second.
/// Every change first passes the gate (`sitesync_core::store::Screen`): its signature names its
/// author, and the author's role and grants must allow each of its writes; refused changes are left
/// out and named in the answer, the rest is stored. Returns each push's results in order, and sends
/// one [`PushEvent`] with every document changed; `evented` then holds at least the event's cursor.
pub(crate) fn push_batch(
    auth: &AuthDb,
    store: &mut Store,
    pushes: Vec<(Principal, Vec<(DocSync, Vetted)>)>,
    deliveries: &Deliveries,
    events: &broadcast::Sender<Arc<PushEvent>>,
    evented: &std::sync::atomic::AtomicU64,
    metrics: &crate::metrics::Metrics,
) -> Result<Vec<Vec<DocResult>>> {
    metrics.commit_pushes.observe(pushes.len() as f64);
    // 1. Decide per document, reading only.
    let mut before: HashMap<DocId, Vec<String>> = HashMap::new();
    let mut plans: Vec<Vec<Plan>> = Vec::with_capacity(pushes.len());
    let mut merges: Vec<(DocId, Vec<u8>)> = Vec::new();
    // The signatures of each merge's changes, with their signers.
    let mut merge_sigs: Vec<Vec<(ChangeSig, Author)>> = Vec::new();
    // The push each merge came from: its device answers for the checks of its records.
    let mut merge_push: Vec<usize> = Vec::new();
    let mut whos = Vec::with_capacity(pushes.len());
    let mut screen = Screen::new();
    // Devices revoked since their pushes were vetted are refused: one read for the batch.
    let active = match active_signers(auth, pushes.iter().flat_map(|(_, docs)| docs.iter().map(|(_, v)| v))) {
        Ok(a) => Some(a),
        Err(e) => {
            tracing::error!(error = %e, "could not read which signers are active");
            None
        }
    };
    for (who, docs) in pushes {
        let mut plan = Vec::with_capacity(docs.len());
        for (d, vetted) in docs {
            let Ok(id) = d.doc.parse::<DocId>() else {
                plan.push(Plan::Answer(DocResult::Refused {
                    doc: d.doc,
                    reason: Refusal::UnknownDocument,
                }));
                continue;
            };
            let site_org = match &id {
                DocId::Site(site) | DocId::Day(site, _) => auth.site_org(site.as_str())?,
                DocId::Okr(..) => None,
            };
            let access = crate::auth::access_in(&who, &id, site_org.as_deref());
            if access == Access::None {
                crate::audit::event(
                    "sync_refused",
                    Some(&who.device_id),
                    Some(&who.user_id),
                    &format!("no grant for {}", d.doc),
                );
                plan.push(Plan::Answer(DocResult::Refused {
                    doc: d.doc,
                    reason: Refusal::Forbidden,
                }));
                continue;
            }
            if !before.contains_key(&id) {
                before.insert(id.clone(), sorted(store.heads(&id)?));
            }
            // The phone's heads are all known here: it sends nothing new, it only asks.
            let nothing_new = !d.heads.is_empty() && store.knows_all(&id, &hex_heads(&d.heads))?;
            // A device that may only read a document (a foreman and the site's master data) gets
            // its changes refused one by one by the gate, naming the rule, so that a store used
            // before enrolment gets back in step instead of holding the document pending forever.
            if d.changes.is_empty() || nothing_new {
                plan.push(Plan::After {
                    id,
                    doc: d,
                    merge: None,
                    refused: Vec::new(),
                });
                continue;
            }
            let (Some(active), None) = (&active, &vetted.failed) else {
                tracing::error!(doc = %d.doc, "could not check a push: its signers are unknown");
                plan.push(Plan::Answer(DocResult::Refused {
                    doc: d.doc,
                    reason: Refusal::Unavailable,
                }));
                continue;
            };
            let mut signers = Signers::new(&vetted, active);
            let tenancy = Pusher { auth, who: &who };
            let screened = screen.check(store, &id, &d.changes, site_org.as_deref(), &mut signers, &tenancy);
            let screened = match screened {
                Ok(s) => s,
                Err(sitesync_core::Error::MissingHistory { .. }) => {
                    plan.push(Plan::Answer(DocResult::NeedHistory {
                        heads: hashes(&store.heads(&id)?),
                        doc: d.doc,
                    }));
                    continue;
                }
                Err(e @ (sitesync_core::Error::BadChanges { .. } | sitesync_core::Error::CorruptDocument { .. })) => {
                    tracing::warn!(device = %who.device_id, doc = %d.doc, error = %e, "refused malformed changes");
                    plan.push(Plan::Answer(DocResult::Refused {
                        doc: d.doc,
                        reason: Refusal::Malformed,
                    }));
                    continue;
                }
                Err(sitesync_core::Error::Refused { invalid, .. }) => {
                    tracing::warn!(device = %who.device_id, doc = %d.doc, error = %invalid, "refused an invalid document");
                    plan.push(Plan::Answer(DocResult::Refused {
                        doc: d.doc,
                        reason: Refusal::Invalid {
                            field: invalid.field().to_string(),
                            reason: invalid.to_string(),
                        },
                    }));
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let log: Vec<(String, String, String, String)> = screened
                .refused
                .iter()
                .map(|(hash, v)| (d.doc.clone(), hash.clone(), v.rule().to_string(), v.to_string()))
                .collect();
            if let Err(e) = auth.record_refusals(&who, &log) {
                tracing::error!(error = %e, "could not record refusals");
            }
            let refused: Vec<RefusedChange> = screened
                .refused
                .into_iter()
                .map(|(hash, violation)| {
                    crate::audit::event(
                        "change_refused",
                        Some(&who.device_id),
                        Some(&who.user_id),
                        &format!("{} change {hash}: {} ({violation})", d.doc, violation.rule()),
                    );
                    RefusedChange {
                        hash: hashes(std::slice::from_ref(&hash)).pop().unwrap_or([0; 32]),
                        violation,
                    }
                })
                .collect();
            let merge = if screened.accepted.is_empty() {
                None
            } else {
                merges.push((id.clone(), screened.accepted));
                merge_push.push(whos.len());
                merge_sigs.push(
                    screened
                        .accepted_hashes
                        .iter()
                        .filter_map(|h| signers.signed.remove(h))
                        .collect(),
                );
                Some(merges.len() - 1)
            };
            plan.push(Plan::After {
                id,
                doc: d,
                merge,
                refused,
            });
        }
        plans.push(plan);
        whos.push(who);
    }

    // 2. The changes and their signatures in one transaction (one fsync): a change is never stored
    //    without the proof of who made it.
    for (k, (id, _)) in merges.iter().enumerate() {
        let mut by_signer: HashMap<(String, String), Vec<ChangeSig>> = HashMap::new();
        for (sig, author) in &merge_sigs[k] {
            by_signer
                .entry((author.device.clone(), author.user_id.clone()))
                .or_default()
                .push(sig.clone());
        }
        for ((device, user), sigs) in by_signer {
            store.stage_signatures(id, &sigs, &device, &user);
        }
    }
    let cursor_before = store.change_cursor()?;
    let pushers: Vec<Pusher<'_>> = merge_push.iter().map(|&i| Pusher { auth, who: &whos[i] }).collect();
    let items: Vec<(DocId, &[u8], &dyn Tenancy)> = merges
        .iter()
        .zip(&pushers)
        .map(|((id, b), p)| (id.clone(), b.as_slice(), p as &dyn Tenancy))
        .collect();
    metrics.commit_docs.observe(items.len() as f64);
    let merged: Vec<std::result::Result<bool, sitesync_core::Error>> = if items.is_empty() {
        Vec::new()
    } else {
        let started = std::time::Instant::now();
        let merged = store.merge_many_screened(&items, &screen);
        crate::metrics::observe(&metrics.db.commit, started.elapsed());
        match merged {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "could not store a batch of changes");
                items
                    .iter()
                    .map(|(id, ..)| Err(sitesync_core::Error::Sync(format!("{id}: store unavailable"))))
                    .collect()
            }
        }
    };

    // 3. Answer, and tell live connections what changed.
    let mut changed: Vec<DocId> = Vec::new();
    for (k, r) in merged.iter().enumerate() {
        if matches!(r, Ok(true)) && !changed.contains(&merges[k].0) {
            changed.push(merges[k].0.clone());
        }
    }
    // A document changed by exactly one merge: the accepted changes are exactly what a device at the
    // server's earlier heads lacks, no need to export them again.
    let mut exact: HashMap<DocId, usize> = HashMap::new();
    for (id, _) in &merges {
        *exact.entry(id.clone()).or_default() += 1;
    }
    let mut out = Vec::with_capacity(plans.len());
    for (plan, who) in plans.into_iter().zip(&whos) {
        let mut results = Vec::with_capacity(plan.len());
        for p in plan {
            let (id, d, merge, refused) = match p {
                Plan::Answer(r) => {
                    results.push(r);
                    continue;
                }
                Plan::After {
                    id,
                    doc,
                    merge,
                    refused,
                } => (id, doc, merge, refused),
            };
            if let Some(k) = merge {
                let refusal = match &merged[k] {
                    Ok(_) => None,
                    Err(sitesync_core::Error::MissingHistory { .. }) => {
                        results.push(DocResult::NeedHistory {
                            doc: d.doc,
                            heads: hashes(&store.heads(&id)?),
                        });
                        continue;
                    }
                    Err(
                        e @ (sitesync_core::Error::BadChanges { .. } | sitesync_core::Error::CorruptDocument { .. }),
                    ) => {
                        tracing::warn!(device = %who.device_id, doc = %d.doc, error = %e, "refused malformed changes");
                        Some(Refusal::Malformed)
                    }
                    Err(sitesync_core::Error::Refused { invalid, .. }) => {
                        tracing::warn!(device = %who.device_id, doc = %d.doc, error = %invalid, "refused invalid records");
                        Some(Refusal::Invalid {
                            field: invalid.field().to_string(),
                            reason: invalid.to_string(),
                        })
                    }
                    Err(e) => {
                        tracing::error!(doc = %d.doc, error = %e, "could not store changes");
                        Some(Refusal::Unavailable)
                    }
                };
                if let Some(reason) = refusal {
                    results.push(DocResult::Refused { doc: d.doc, reason });
                    continue;
                }
            }
            let answer = answer(store, deliveries, who, &id, d, !refused.is_empty())?;
            results.push(match answer {
                DocResult::Synced(update) if !refused.is_empty() => DocResult::Partial { update, refused },
                other => other,
            });
        }
        for r in &results {
            match r {
                DocResult::Refused { reason, .. } => metrics.refused_document(reason),
                DocResult::Partial { refused, .. } => {
                    for c in refused {
                        metrics.refused_change(c.violation.rule());
                    }
                }
                DocResult::Synced(_) | DocResult::NeedHistory { .. } => {}
            }
        }
        out.push(results);
    }
    if !changed.is_empty() {
        let cursor = store.change_cursor()?;
        // Each stored document moves the cursor by one; any other step means something else was
        // written too, and connections must re-read the store rather than trust this event alone.
        let prev_cursor = if cursor == cursor_before + changed.len() as u64 {
            cursor_before
        } else {
            u64::MAX
        };
        let mut docs = Vec::with_capacity(changed.len());
        for id in changed {
            let base = before.remove(&id).unwrap_or_default();
            let (changes, sigs) = match merges.iter().position(|(m, _)| *m == id) {
                Some(k) if exact.get(&id) == Some(&1) => (
                    std::mem::take(&mut merges[k].1),
                    merge_sigs[k].iter().map(|(s, _)| s.clone()).collect(),
                ),
                _ => store.export_signed(&id, &base)?.unwrap_or_default(),
            };
            docs.push(EventDoc {
                heads: sorted(store.heads(&id)?),
                doc: id,
                base,
                changes,
                sigs,
            });
        }
        let _ = events.send(Arc::new(PushEvent::new(prev_cursor, cursor, docs)));
        // Only what the event covers: a commit of another node numbered after it still wakes
        // connections through the change poll.
        evented.fetch_max(cursor, std::sync::atomic::Ordering::SeqCst);
    }
    Ok(out)
}

/// The `Synced` answer to a pushed document once its changes are stored: the server's heads and
/// what the phone lacks.
fn answer(
    store: &mut Store,
    deliveries: &Deliveries,
    who: &Principal,
    id: &DocId,
    d: DocSync,
    partial: bool,
) -> Result<DocResult> {
    // With refused changes, the phone's heads name changes the server will never hold: what it
    // lacks is counted from the server's own earlier heads instead.
    let phone_heads = if partial {
        d.base.iter().map(hex::encode).collect()
    } else {
        hex_heads(&d.heads)
    };
    let heads = store.heads(id)?;
    if heads.is_empty() {
        // Asked for a document nobody has written yet: nothing to send.
        return Ok(DocResult::Synced(DocSync {
            doc: d.doc,
            base: d.heads.clone(),
            heads: d.heads,
            changes: Vec::new(),
            sigs: Vec::new(),
        }));
    }
    let ((lacks, sigs), has) = if sorted(heads.clone()) == sorted(phone_heads.clone()) {
        ((Vec::new(), Vec::new()), &heads)
    } else {
        // The phone has what it pushed; the rest counts as delivered only once it says so.
        (store.export_signed(id, &phone_heads)?.unwrap_or_default(), &phone_heads)
    };
    if store.knows_all(id, has)? {
        deliveries.record(&who.device_id, &d.doc, has.clone());
    }
    Ok(DocResult::Synced(DocSync {
        doc: d.doc,
        base: d.heads,
        heads: hashes(&heads),
        changes: lacks,
        sigs,
    }))
}
