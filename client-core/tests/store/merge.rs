//! Replicas that work offline and then merge.

use sitesync_core::ids::{DocId, LineId};
use sitesync_core::labor::LaborPatch;
use sitesync_core::units::WorkDays;

use crate::common::*;

#[test]
fn two_phones_starting_the_same_day_offline_keep_every_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = phone(&dir, "a", false);
    let mut b = phone(&dir, "b", false);
    // Both phones create the 2026-12-01 log independently, with different workers.
    for wk in ["w-0001", "w-0002", "w-0003"] {
        a.add_labor(&entry("2026-12-01", wk, "site-hz-01/wi-4.1", "1.0"), None)
            .unwrap();
    }
    for wk in ["w-0004", "w-0005"] {
        b.add_labor(&entry("2026-12-01", wk, "site-hz-01/wi-4.1", "0.5"), None)
            .unwrap();
    }
    a.set_day_info(&hz(), d("2026-12-01"), Some("晴"), None, None).unwrap();
    b.set_day_info(&hz(), d("2026-12-01"), None, Some("下午停电两小时"), None)
        .unwrap();
    exchange(&mut a, &mut b);
    let sa = a.day(&hz(), d("2026-12-01")).unwrap();
    let sb = b.day(&hz(), d("2026-12-01")).unwrap();
    assert_eq!(sa, sb);
    assert_eq!(sa.labor.len(), 5, "every line from both phones survives");
    assert_eq!(sa.weather, "晴");
    assert_eq!(sa.note, "下午停电两小时");
    assert_eq!(a.doc_ids().unwrap(), b.doc_ids().unwrap());
}

#[test]
fn same_worker_day_on_two_phones_is_one_line_with_the_conflict_visible() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = phone(&dir, "a", false);
    let mut b = phone(&dir, "b", false);
    let la = a
        .add_labor(&entry("2026-12-02", "w-0001", "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    let lb = b
        .add_labor(&entry("2026-12-02", "w-0001", "site-hz-01/wi-4.1", "0.5"), None)
        .unwrap();
    assert_eq!(la.id, lb.id, "the line id is derived from what the line is");
    exchange(&mut a, &mut b);
    let sa = a.day(&hz(), d("2026-12-02")).unwrap();
    assert_eq!(sa, b.day(&hz(), d("2026-12-02")).unwrap());
    assert_eq!(sa.labor.len(), 1);
    let line = &sa.labor[0];
    let c = line
        .conflicts
        .iter()
        .find(|c| c.field == "work_days_centi")
        .expect("conflict kept for review");
    let values: Vec<i64> = std::iter::once(&c.chosen)
        .chain(&c.others)
        .map(|v| v.parse().unwrap())
        .collect();
    assert!(
        values.contains(&100) && values.contains(&50),
        "both values are visible: {values:?}"
    );
    let hours = line
        .conflicts
        .iter()
        .find(|c| c.field == "hours_min")
        .expect("hours differ too (8 h vs 4 h)");
    assert_eq!(hours.others.len(), 1);
    // Editing another field leaves both conflicts visible.
    a.edit_labor(
        &line.id,
        &LaborPatch {
            note: Some("核对中".into()),
            ..Default::default()
        },
        None,
    )
    .unwrap();
    exchange(&mut a, &mut b);
    let fields: Vec<String> = b
        .labor_line(&la.id)
        .unwrap()
        .2
        .conflicts
        .into_iter()
        .map(|c| c.field)
        .collect();
    assert_eq!(fields, vec!["work_days_centi".to_string(), "hours_min".to_string()]);
    // An edit that sets the conflicting fields, having seen both values, resolves them everywhere.
    let resolve = LaborPatch {
        work_days: Some(WorkDays::parse("1.0").unwrap()),
        hours: Some(sitesync_core::units::Minutes::parse_hours("hours", "8").unwrap()),
        ..Default::default()
    };
    a.edit_labor(&line.id, &resolve, None).unwrap();
    exchange(&mut a, &mut b);
    let line = b.labor_line(&la.id).unwrap().2;
    assert!(line.conflicts.is_empty(), "{:?}", line.conflicts);
    assert_eq!(line.work_days.centi(), 100);
}

#[test]
fn a_line_deleted_on_one_phone_and_edited_on_another_stays_for_review() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = phone(&dir, "a", false);
    let mut b = phone(&dir, "b", false);
    let line = a
        .add_labor(&entry("2026-12-08", "w-0001", "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    exchange(&mut a, &mut b);
    a.delete_labor(&line.id, None).unwrap();
    b.edit_labor(
        &line.id,
        &LaborPatch {
            note: Some("其实来了".into()),
            ..Default::default()
        },
        None,
    )
    .unwrap();
    exchange(&mut a, &mut b);
    for s in [&mut a, &mut b] {
        let sheet = s.day(&hz(), d("2026-12-08")).unwrap();
        assert_eq!(sheet.labor.len(), 1, "the edited line does not vanish silently");
        assert!(sheet.labor[0].conflicts.iter().any(|c| c.field == "deleted"));
        assert_eq!(sheet.labor[0].note, "其实来了");
    }
    // Editing it resolves the conflict: the line is back.
    a.edit_labor(&line.id, &LaborPatch::default(), None).unwrap();
    exchange(&mut a, &mut b);
    let l = b.labor_line(&line.id).unwrap().2;
    assert!(!l.deleted && l.conflicts.is_empty());
}

#[test]
fn weather_set_on_two_phones_keeps_the_other_value_visible() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = phone(&dir, "a", false);
    let mut b = phone(&dir, "b", false);
    a.set_day_info(&hz(), d("2026-12-09"), Some("晴"), None, None).unwrap();
    b.set_day_info(&hz(), d("2026-12-09"), Some("小雨"), None, None)
        .unwrap();
    exchange(&mut a, &mut b);
    let sheet = a.day(&hz(), d("2026-12-09")).unwrap();
    assert_eq!(sheet, b.day(&hz(), d("2026-12-09")).unwrap());
    let c = &sheet.conflicts[0];
    assert_eq!(c.field, "weather");
    let mut all = vec![c.chosen.clone(), c.others[0].clone()];
    all.sort();
    assert_eq!(all, vec!["小雨".to_string(), "晴".to_string()]);
}

#[test]
fn two_handles_on_one_file_never_lose_each_others_writes() {
    let dir = tempfile::tempdir().unwrap();
    drop(phone(&dir, "a", false));
    let path = dir.path().join("a.sqlite3");
    let mut one = sitesync_core::Store::open(&path).unwrap();
    let mut two = sitesync_core::Store::open(&path).unwrap();
    let roster = one.roster(&hz()).unwrap();
    for (i, worker) in roster.workers.iter().take(10).enumerate() {
        let s = if i % 2 == 0 { &mut one } else { &mut two };
        s.add_labor(
            &entry("2026-12-11", worker.id.as_str(), "site-hz-01/wi-4.1", "1.0"),
            None,
        )
        .unwrap();
        // Each handle sees the other's writes at once.
        assert_eq!(s.day(&hz(), d("2026-12-11")).unwrap().labor.len(), i + 1);
    }
    drop((one, two));
    let mut again = sitesync_core::Store::open(&path).unwrap();
    again.verify().unwrap();
    assert_eq!(again.day(&hz(), d("2026-12-11")).unwrap().labor.len(), 10);
    assert_eq!(
        again
            .totals(Some(&hz()), d("2026-12-11"), d("2026-12-11"), None)
            .unwrap()
            .total
            .lines,
        10
    );
}

#[test]
fn concurrent_edits_of_one_field_converge_and_the_loser_stays_visible() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = phone(&dir, "a", true);
    let mut b = phone(&dir, "b", true);
    exchange(&mut a, &mut b);
    let id = LineId::labor(&hz(), d("2026-09-01"), &w("w-0001"), &wi("site-hz-01/wi-4.1"));
    let note = |n: &str| LaborPatch {
        note: Some(n.into()),
        ..Default::default()
    };
    a.edit_labor(&id, &note("下午去了三楼"), None).unwrap();
    b.edit_labor(&id, &note("早退一小时"), None).unwrap();
    exchange(&mut a, &mut b);
    let la = a.labor_line(&id).unwrap().2;
    let lb = b.labor_line(&id).unwrap().2;
    assert_eq!(la, lb, "both replicas show the same value");
    let c = &la.conflicts[0];
    assert_eq!(c.field, "note");
    let mut all = vec![c.chosen.clone(), c.others[0].clone()];
    all.sort();
    assert_eq!(all, vec!["下午去了三楼".to_string(), "早退一小时".to_string()]);
}

#[test]
fn merging_the_same_changes_twice_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = phone(&dir, "a", true);
    let mut b = phone(&dir, "b", false);
    let id = DocId::Day(hz(), d("2026-09-02"));
    let bytes = a.export_changes(&id, &[]).unwrap().unwrap();
    assert!(b.merge_changes(&id, &bytes).unwrap());
    assert!(!b.merge_changes(&id, &bytes).unwrap());
    assert_eq!(
        a.day(&hz(), d("2026-09-02")).unwrap(),
        b.day(&hz(), d("2026-09-02")).unwrap()
    );
    assert_eq!(
        a.day(&hz(), d("2026-09-02")).unwrap(),
        b.day(&hz(), d("2026-09-02")).unwrap()
    );
}

#[test]
fn malformed_or_orphaned_changes_are_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = phone(&dir, "a", false);
    let mut b = phone(&dir, "b", false);
    let first = a
        .add_labor(&entry("2026-12-07", "w-0001", "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    let id = DocId::Day(hz(), d("2026-12-07"));
    let heads = a.heads(&id).unwrap();
    a.add_labor(&entry("2026-12-07", "w-0002", "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    let tail = a.export_changes(&id, &heads).unwrap().unwrap();
    let whole = a.export_changes(&id, &[]).unwrap().unwrap();

    assert!(matches!(
        b.merge_changes(&id, b"not automerge"),
        Err(sitesync_core::Error::BadChanges { .. })
    ));
    assert!(matches!(
        b.merge_changes(&id, &whole[..whole.len() - 5]),
        Err(sitesync_core::Error::BadChanges { .. })
    ));
    let mut flipped = tail.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0xff;
    assert!(
        b.merge_changes(&id, &flipped).is_err(),
        "a corrupted change fails its checksum"
    );
    // Changes whose history is missing are not half-applied.
    assert!(matches!(
        b.merge_changes(&id, &tail),
        Err(sitesync_core::Error::MissingHistory { .. })
    ));
    assert!(b.doc_ids().unwrap().iter().all(|d| d != &id), "nothing was stored");
    // Bytes of another document (a misrouted upload) would collide on every table: refused.
    let other = DocId::Day(hz(), d("2026-12-06"));
    assert!(matches!(
        b.merge_changes(&other, &whole),
        Err(sitesync_core::Error::BadChanges { .. })
    ));
    assert!(b.doc_ids().unwrap().iter().all(|d| d != &other));
    assert!(b.merge_changes(&id, &whole).unwrap());
    assert_eq!(b.day(&hz(), d("2026-12-07")).unwrap().labor.len(), 2);
    assert_eq!(b.labor_line(&first.id).unwrap().2.worker.as_str(), "w-0001");
}

#[test]
fn deleted_lines_stay_deleted_and_refuse_edits() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = phone(&dir, "a", false);
    let line = a
        .add_labor(&entry("2026-12-03", "w-0001", "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    a.delete_labor(&line.id, None).unwrap();
    assert!(a.day(&hz(), d("2026-12-03")).unwrap().labor.is_empty());
    let err = a.edit_labor(&line.id, &LaborPatch::default(), None).unwrap_err();
    assert!(matches!(err, sitesync_core::Error::LineDeleted(_)), "{err}");
    // Logging the worker again brings the line back, with the new values.
    let again = a
        .add_labor(&entry("2026-12-03", "w-0001", "site-hz-01/wi-4.1", "0.5"), None)
        .unwrap();
    assert_eq!(again.id, line.id);
    assert_eq!(a.day(&hz(), d("2026-12-03")).unwrap().labor[0].work_days.centi(), 50);
}

#[test]
fn a_document_that_cannot_be_written_fails_alone_in_a_group_commit() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone_a = phone(&dir, "a", false);
    let mut server = phone(&dir, "server", false);
    phone_a
        .add_labor(&entry("2026-11-10", "w-0001", "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    phone_a
        .add_labor(&entry("2026-11-11", "w-0002", "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    let (bad, good) = (DocId::Day(hz(), d("2026-11-10")), DocId::Day(hz(), d("2026-11-11")));
    let bad_bytes = phone_a.export_changes(&bad, &[]).unwrap().unwrap();
    let good_bytes = phone_a.export_changes(&good, &[]).unwrap().unwrap();
    // The disk refuses one document's rows (what a full disk or a constraint does to one document),
    // through another connection to the same file.
    let sql = rusqlite::Connection::open(dir.path().join("server.sqlite3")).unwrap();
    sql.execute_batch(
        "CREATE TRIGGER refuse BEFORE INSERT ON labor_lines WHEN NEW.doc_id = 'day|site-hz-01|2026-11-10'
         BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
    )
    .unwrap();
    let results = server
        .merge_many(&[(bad.clone(), &bad_bytes[..]), (good.clone(), &good_bytes[..])])
        .unwrap();
    assert!(results[0].is_err(), "{results:?}");
    assert!(matches!(results[1], Ok(true)), "{results:?}");
    // The other document landed, the failed one left nothing: on disk, in projections, in memory.
    assert!(server.heads(&bad).unwrap().is_empty());
    assert_eq!(server.heads(&good).unwrap(), phone_a.heads(&good).unwrap());
    assert_eq!(server.day(&hz(), d("2026-11-11")).unwrap().labor.len(), 1);
    assert!(server.day(&hz(), d("2026-11-10")).unwrap().labor.is_empty());
    // Once the disk takes it again, the same bytes merge whole.
    sql.execute_batch("DROP TRIGGER refuse").unwrap();
    assert!(server.merge_changes(&bad, &bad_bytes).unwrap());
    assert_eq!(server.day(&hz(), d("2026-11-10")).unwrap().labor.len(), 1);
}
