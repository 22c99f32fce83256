//! Sync with the server, once or live, and the sync status.

use std::io::Write;

use anyhow::Result;
use sitesync_core::Store;
use sitesync_core::sync::client::{WatchEvent, sync_once, watch_reporting};
use sitesync_core::sync::engine::RefusedNote;
use sitesync_core::sync::{SyncEvent, UpdateState};

use crate::msg::Msg;
use crate::render::{json_out, say, short_hash};

pub fn sync(store: &mut Store, out: &mut impl Write, watch: bool) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    if watch {
        // Documents on `store`'s live connection, files on a handle of their own beside it (the
        // blob sync makes HTTP requests that may take minutes; the document loop never waits for
        // them). Ctrl-C stops both; the files stop too when the documents end (a refused device).
        let mut files = store.reopen()?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        // A line per event as it happens; a reader that went away ends nothing (the loop keeps the
        // store in sync whether or not anyone reads).
        let on_event = |e: &WatchEvent| {
            let mut out = std::io::stdout().lock();
            let _ = event(&mut out, e);
        };
        let docs = async {
            let r = watch_reporting(
                store,
                std::time::Duration::from_secs(1),
                Default::default(),
                on_event,
                stopped(stop_rx.clone()),
            )
            .await;
            let _ = stop_tx.send(true);
            r
        };
        let signal = async {
            let _ = tokio::signal::ctrl_c().await;
            let _ = stop_tx.send(true);
            std::future::pending::<()>().await
        };
        rt.block_on(async {
            tokio::select! {
                (r, ()) = async { tokio::join!(docs, watch_files(&mut files, stopped(stop_rx.clone()))) } => r,
                () = signal => Ok(()),
            }
        })?;
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
        if store.update_state()? == UpdateState::Available {
            say(out, Msg::StatusUpdate(UpdateState::Available))?;
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

/// How often `sync --watch` looks for files to move.
const FILES_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The files' half of `sync --watch`: every [`FILES_EVERY`] moves what is pending (a file attached
/// or a signature taken meanwhile, one that arrived in a document, one cut off earlier), printing
/// what moved and, once per new reason, what waits; until `stop`.
async fn watch_files(store: &mut Store, stop: impl std::future::Future<Output = ()>) {
    tokio::pin!(stop);
    let mut said: Vec<(String, String)> = Vec::new();
    loop {
        let moved = sitesync_core::sync::blobs::sync_blobs(store, false);
        let result = tokio::select! {
            r = moved => r,
            () = &mut stop => return,
        };
        let mut out = std::io::stdout().lock();
        match result {
            Ok(b) => {
                if b.uploaded + b.downloaded > 0 {
                    let _ = say(
                        &mut out,
                        Msg::BlobsSynced {
                            uploaded: b.uploaded,
                            downloaded: b.downloaded,
                        },
                    );
                }
                for (sha256, why) in b.waiting.iter().filter(|w| !said.contains(w)) {
                    let _ = say(&mut out, Msg::BlobWaiting { sha256, why });
                }
                said = b.waiting;
            }
            Err(e) => {
                let why = e.to_string();
                if !said.iter().any(|(s, w)| s.is_empty() && *w == why) {
                    let _ = say(&mut out, Msg::FilesFailed(&why));
                }
                said = vec![(String::new(), why)];
            }
        }
        drop(out);
        tokio::select! {
            () = tokio::time::sleep(FILES_EVERY) => {}
            () = &mut stop => return,
        }
    }
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
    if s.update != UpdateState::UpToDate {
        say(out, Msg::StatusUpdate(s.update))?;
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
