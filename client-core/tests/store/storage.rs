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

#[test]
fn a_signed_export_is_what_save_after_gives_with_a_signature_per_change() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = phone(&dir, "a", true);
    let id = DocId::Day(hz(), d("2026-09-01"));
    let since = s.heads(&id).unwrap();
    for worker in ["w-0002", "w-0003"] {
        s.add_labor(&entry("2026-09-01", worker, "site-hz-01/wi-4.2", "0.5"), None)
            .unwrap();
    }
    let whole = automerge::Automerge::load(&s.export_changes(&id, &[]).unwrap().unwrap()).unwrap();
    let since_hashes: Vec<automerge::ChangeHash> = since.iter().map(|h| h.parse().unwrap()).collect();
    let expected: Vec<[u8; 32]> = whole.get_changes(&since_hashes).iter().map(|c| c.hash().0).collect();
    assert_eq!(expected.len(), 2);
    // Twice: the second comes from the cache and must be the same.
    for _ in 0..2 {
        let (bytes, sigs) = s.export_signed(&id, &since).unwrap().unwrap();
        assert_eq!(bytes, whole.save_after(&since_hashes), "the bytes a phone loads");
        assert_eq!(bytes, s.export_changes(&id, &since).unwrap().unwrap());
        assert_eq!(sigs.iter().map(|g| g.hash).collect::<Vec<_>>(), expected);
        assert!(sigs.iter().all(|g| g.verifies(&id.to_string())));
    }
    // From nothing: the whole document, and a signature for each change this store made.
    let (bytes, sigs) = s.export_signed(&id, &[]).unwrap().unwrap();
    assert_eq!(
        automerge::Automerge::load(&bytes).unwrap().get_heads(),
        whole.get_heads()
    );
    assert!(sigs.len() >= 2, "{}", sigs.len());
    // A write since makes the cached export stale.
    s.add_labor(&entry("2026-09-01", "w-0004", "site-hz-01/wi-4.2", "0.5"), None)
        .unwrap();
    let (_, sigs) = s.export_signed(&id, &since).unwrap().unwrap();
    assert_eq!(sigs.len(), 3);
}
