//! Storage cost: a write appends a chunk the size of the change, not of the document, and chunks
//! are folded into the snapshot before they outgrow it.

use sitesync_core::ids::DocId;
use sitesync_core::store::COMPACT_AFTER_CHUNKS;

use crate::common::*;

#[test]
fn a_write_costs_the_change_not_the_document() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = phone(&dir, "a", true);
    let id = DocId::Day(hz(), d("2026-09-01"));
    let before = s.storage_stats(&id).unwrap().unwrap();
    assert_eq!(before.chunk_count, 0, "an imported day is one snapshot");
    assert!(before.snapshot_bytes > 2_000, "{before:?}");
    // One more line on a day of ~50 lines appends a small chunk.
    s.add_labor(&entry("2026-09-01", "w-0002", "site-hz-01/wi-4.2", "0.5"), None)
        .unwrap();
    let after = s.storage_stats(&id).unwrap().unwrap();
    assert_eq!(after.snapshot_bytes, before.snapshot_bytes);
    assert_eq!(after.chunk_count, 1);
    assert!(after.chunk_bytes < 600, "one line costs {} bytes", after.chunk_bytes);
}

#[test]
fn chunks_are_compacted_and_reload_identically() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = phone(&dir, "a", false);
    let roster = s.roster(&hz()).unwrap();
    let id = DocId::Day(hz(), d("2026-12-10"));
    let (mut max_chunks, mut compactions, mut last) = (0, 0, 0);
    for worker in &roster.workers {
        s.add_labor(
            &entry("2026-12-10", worker.id.as_str(), "site-hz-01/wi-4.1", "1.0"),
            None,
        )
        .unwrap();
        let now = s.storage_stats(&id).unwrap().unwrap().chunk_count;
        if now < last {
            compactions += 1;
        }
        (max_chunks, last) = (max_chunks.max(now), now);
    }
    assert!(
        compactions >= 1,
        "53 one-line writes were never folded into the snapshot"
    );
    assert!(max_chunks < COMPACT_AFTER_CHUNKS);
    let stats = s.storage_stats(&id).unwrap().unwrap();
    assert!(stats.chunk_bytes <= stats.snapshot_bytes, "{stats:?}");
    let sheet = s.day(&hz(), d("2026-12-10")).unwrap();
    drop(s);
    let mut reopened = sitesync_core::Store::open(dir.path().join("a.sqlite3")).unwrap();
    assert_eq!(reopened.day(&hz(), d("2026-12-10")).unwrap(), sheet);
    reopened.compact().unwrap();
    assert_eq!(reopened.storage_stats(&id).unwrap().unwrap().chunk_count, 0);
    assert_eq!(reopened.day(&hz(), d("2026-12-10")).unwrap(), sheet);
}

/// A phone's store holds its device token: a new store file, and the write-ahead log beside it,
/// are readable by the owner only, whatever the umask.
#[cfg(unix)]
#[test]
fn a_new_store_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.sqlite3");
    let mut s = sitesync_core::Store::open(&path).unwrap();
    s.bind("http://127.0.0.1:8080", "sst_0_secret").unwrap();
    for p in [path.clone(), dir.path().join("phone.sqlite3-wal")] {
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", p.display());
    }
}
