//! Sync with the server, once or live, and the sync status.

use std::io::Write;

use anyhow::Result;
use sitesync_core::Store;

use crate::render::json_out;

pub fn sync(store: &mut Store, out: &mut impl Write, watch: bool) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    if watch {
        let stop = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        rt.block_on(sitesync_core::sync::client::watch(
            store,
            std::time::Duration::from_secs(1),
            Default::default(),
            stop,
        ))?;
    } else {
        let p = rt.block_on(sitesync_core::sync::client::sync_once(store))?;
        writeln!(out, "synced: {} documents pushed, {} received", p.pushed, p.received)?;
        for r in &p.refused_changes {
            writeln!(
                out,
                "refused by head office: {} change {}: {} ({}); not kept in this store",
                r.doc,
                &r.hash[..12],
                r.reason,
                r.rule
            )?;
        }
    }
    Ok(())
}

pub fn status(store: &mut Store, out: &mut impl Write, json: bool) -> Result<()> {
    let s = store.sync_status()?;
    if json {
        json_out(out, &s)?;
    } else {
        writeln!(
            out,
            "server:     {}",
            s.server.as_deref().unwrap_or("(not bound; run `sitesync init`)")
        )?;
        writeln!(out, "connected:  {}", if s.connected { "yes" } else { "no" })?;
        writeln!(out, "last sync:  {}", s.last_sync.as_deref().unwrap_or("never"))?;
        if let Some(e) = &s.last_error {
            writeln!(out, "last error: {e}")?;
        }
        let delivered = s.documents.iter().filter(|d| d.at_head_office).count();
        writeln!(
            out,
            "documents:  {} at head office, {} pending",
            delivered,
            s.pending.len()
        )?;
        for p in &s.pending {
            writeln!(out, "  pending {p}")?;
        }
        let refused = store.refused_changes()?;
        if !refused.is_empty() {
            writeln!(
                out,
                "refused:    {} change(s) head office did not accept",
                refused.len()
            )?;
            for r in &refused {
                let mut what: Vec<String> = r
                    .writes
                    .iter()
                    .take(4)
                    .map(|w| format!("{}.{}.{}={}", w.table, w.record, w.field, w.value))
                    .collect();
                if r.writes.len() > 4 {
                    what.push(format!("and {} more", r.writes.len() - 4));
                }
                writeln!(
                    out,
                    "  {} {} at {}: {} ({})\n    wrote {}",
                    r.doc,
                    &r.hash[..12],
                    r.refused_at,
                    r.reason,
                    r.rule,
                    what.join(", ")
                )?;
            }
        }
    }
    Ok(())
}
