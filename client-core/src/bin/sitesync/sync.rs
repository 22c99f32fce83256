//! Sync with the server, once or live, and the sync status.

use std::io::Write;

use anyhow::Result;
use sitesync_core::Store;
use sitesync_core::sync::SyncEvent;
use sitesync_core::sync::client::{WatchEvent, sync_once, watch_reporting};
use sitesync_core::sync::engine::RefusedNote;

use crate::msg::Msg;
use crate::render::{json_out, say, short_hash};

pub fn sync(store: &mut Store, out: &mut impl Write, watch: bool) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    if watch {
        let stop = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        // A line per event as it happens; a reader that went away ends nothing (the loop keeps the
        // store in sync whether or not anyone reads).
        let on_event = |e: &WatchEvent| {
            let mut out = std::io::stdout().lock();
            let _ = event(&mut out, e);
        };
        rt.block_on(watch_reporting(
            store,
            std::time::Duration::from_secs(1),
            Default::default(),
            on_event,
            stop,
        ))?;
    } else {
        let p = rt.block_on(sync_once(store))?;
        say(
            out,
            Msg::Synced {
                pushed: p.pushed,
                received: p.received,
            },
        )?;
        for r in &p.refused_changes {
            refused(out, r)?;
        }
        // Files after the documents: the day's record never waits for a photo. The CLI runs on
        // networks it cannot tell metered, so it moves files whatever the phone setting says.
        let b = rt.block_on(sitesync_core::sync::blobs::sync_blobs(store, false))?;
        if b.uploaded + b.downloaded > 0 {
            say(
                out,
                Msg::BlobsSynced {
                    uploaded: b.uploaded,
                    downloaded: b.downloaded,
                },
            )?;
        }
        for (sha256, why) in &b.waiting {
            say(out, Msg::BlobWaiting { sha256, why })?;
        }
    }
    Ok(())
}

/// A change head office refused, taken out of this store's copy.
fn refused(out: &mut impl Write, r: &RefusedNote) -> Result<()> {
    say(
        out,
        Msg::ChangeRefused {
            doc: &r.doc,
            hash: short_hash(&r.hash),
            reason: &r.reason,
            rule: &r.rule,
        },
    )
}

/// One line for one event of `sync --watch`.
fn event(out: &mut impl Write, e: &WatchEvent) -> Result<()> {
    match e {
        WatchEvent::Connected { server } => say(out, Msg::Connected(server)),
        WatchEvent::Disconnected { reason, retry_in } => say(
            out,
            Msg::Disconnected {
                reason,
                retry_in: *retry_in,
            },
        ),
        WatchEvent::Sync(SyncEvent::Received(doc)) => say(out, Msg::Received(doc)),
        WatchEvent::Sync(SyncEvent::Acknowledged(doc)) => say(out, Msg::Acknowledged(doc)),
        WatchEvent::Sync(SyncEvent::Refused(doc, why)) => say(out, Msg::DocRefused(doc, why)),
        WatchEvent::Sync(SyncEvent::ChangeRefused(r)) => refused(out, r),
        // Events added to the library later are not worth failing over.
        _ => Ok(()),
    }
}

pub fn status(store: &mut Store, out: &mut impl Write, json: bool) -> Result<()> {
    let s = store.sync_status()?;
    if json {
        return json_out(out, &s);
    }
    say(out, Msg::StatusServer(s.server.as_deref()))?;
    say(out, Msg::StatusConnected(s.connected))?;
    say(out, Msg::StatusLastSync(s.last_sync.as_deref()))?;
    if let Some(e) = &s.last_error {
        say(out, Msg::StatusLastError(e))?;
    }
    let delivered = s.documents.iter().filter(|d| d.at_head_office).count();
    say(
        out,
        Msg::StatusDocuments {
            delivered,
            pending: s.pending.len(),
        },
    )?;
    for p in &s.pending {
        say(out, Msg::StatusPending(p))?;
    }
    let refused = store.refused_changes()?;
    if !refused.is_empty() {
        say(out, Msg::StatusRefused(refused.len()))?;
        for r in &refused {
            let mut wrote: Vec<String> = r
                .writes
                .iter()
                .take(4)
                .map(|w| format!("{}.{}.{}={}", w.table, w.record, w.field, w.value))
                .collect();
            if r.writes.len() > 4 {
                wrote.push(Msg::AndMore(r.writes.len() - 4).to_string());
            }
            say(
                out,
                Msg::StatusRefusedEntry {
                    doc: &r.doc,
                    hash: short_hash(&r.hash),
                    at: &r.refused_at,
                    reason: &r.reason,
                    rule: &r.rule,
                    wrote: &wrote.join(", "),
                },
            )?;
        }
    }
    Ok(())
}
