//! Submission, approval pinned to a version, locking, and audited amendments.

use sitesync_core::labor::{DayStatus, LaborPatch, ReviewAction};
use sitesync_core::units::Minutes;
use sitesync_core::{Error, Store};

use crate::common::*;

#[test]
fn approval_pins_the_version_and_later_changes_are_amendments() {
    let dir = tempfile::tempdir().unwrap();
    let mut foreman = phone(&dir, "foreman", true);
    let mut manager = phone(&dir, "manager", false);
    let date = d("2026-09-03");
    assert_eq!(foreman.day(&hz(), date).unwrap().status, DayStatus::Draft);
    assert!(matches!(
        manager.approve_day(&hz(), date),
        Err(Error::InvalidTransition(_))
    ));
    foreman.submit_day(&hz(), date).unwrap();
    exchange(&mut foreman, &mut manager);
    let sheet = manager.approve_day(&hz(), date).unwrap();
    assert_eq!(sheet.status, DayStatus::Approved);
    let approval = sheet
        .reviews
        .iter()
        .find(|r| r.action == ReviewAction::Approved)
        .unwrap();
    assert!(!approval.heads.is_empty(), "the approval pins the document version");
    exchange(&mut foreman, &mut manager);
    assert_eq!(foreman.day(&hz(), date).unwrap().status, DayStatus::Approved);

    // Approved records are locked: a silent overwrite is refused, and nothing is written.
    let line = foreman.day(&hz(), date).unwrap().labor[0].clone();
    let patch = LaborPatch {
        overtime: Some(Minutes::from_min("overtime", 60).unwrap()),
        ..Default::default()
    };
    let before = foreman.heads(&sitesync_core::ids::DocId::Day(hz(), date)).unwrap();
    assert!(matches!(
        foreman.edit_labor(&line.id, &patch, None),
        Err(Error::DayLocked { .. })
    ));
    assert_eq!(
        foreman.heads(&sitesync_core::ids::DocId::Day(hz(), date)).unwrap(),
        before
    );

    // A correction with a reason is an audited amendment.
    foreman.edit_labor(&line.id, &patch, Some("加班一小时漏记")).unwrap();
    exchange(&mut foreman, &mut manager);
    let sheet = manager.day(&hz(), date).unwrap();
    assert_eq!(sheet.status, DayStatus::AmendedAfterApproval);
    let amended = sheet
        .reviews
        .iter()
        .find(|r| r.action == ReviewAction::Amended)
        .unwrap();
    assert_eq!(amended.reason, "加班一小时漏记");
    assert_eq!(amended.by, "foreman");
    let changes = manager.amendments(&hz(), date).unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].line, line.id.to_string());
    assert_eq!(changes[0].field, "overtime_min");
    assert_eq!(changes[0].approved.as_deref(), Some("0"));
    assert_eq!(changes[0].now.as_deref(), Some("60"));

    // Re-approval accepts the amended version.
    assert_eq!(manager.approve_day(&hz(), date).unwrap().status, DayStatus::Approved);
    assert!(manager.amendments(&hz(), date).unwrap().is_empty());
}

#[test]
fn an_offline_edit_merged_after_approval_marks_the_day_amended() {
    let dir = tempfile::tempdir().unwrap();
    let mut foreman = phone(&dir, "foreman", true);
    let mut manager = phone(&dir, "manager", false);
    let date = d("2026-09-02");
    foreman.submit_day(&hz(), date).unwrap();
    exchange(&mut foreman, &mut manager);
    // The foreman edits offline while the manager approves what they saw.
    let line = foreman.day(&hz(), date).unwrap().labor[1].clone();
    foreman
        .edit_labor(
            &line.id,
            &LaborPatch {
                note: Some("补记".into()),
                ..Default::default()
            },
            None,
        )
        .unwrap();
    manager.approve_day(&hz(), date).unwrap();
    exchange(&mut foreman, &mut manager);
    for s in [&mut foreman, &mut manager] {
        assert_eq!(s.day(&hz(), date).unwrap().status, DayStatus::AmendedAfterApproval);
        let changes = s.amendments(&hz(), date).unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].now.as_deref(), Some("补记"));
    }
}

#[test]
fn rejection_needs_a_reason_and_reaches_the_foreman() {
    let dir = tempfile::tempdir().unwrap();
    let mut foreman = phone(&dir, "foreman", true);
    let mut manager = phone(&dir, "manager", false);
    let date = d("2026-09-01");
    foreman.submit_day(&hz(), date).unwrap();
    exchange(&mut foreman, &mut manager);
    assert!(matches!(
        manager.reject_day(&hz(), date, "  "),
        Err(Error::Invalid { field: "reason", .. })
    ));
    manager.reject_day(&hz(), date, "w-0003 只有半天，请核实").unwrap();
    exchange(&mut foreman, &mut manager);
    let sheet = foreman.day(&hz(), date).unwrap();
    assert_eq!(sheet.status, DayStatus::Rejected);
    assert_eq!(sheet.reviews.last().unwrap().reason, "w-0003 只有半天，请核实");
    // A rejected day is editable again and can be resubmitted.
    let line = sheet.labor[0].clone();
    foreman
        .edit_labor(
            &line.id,
            &LaborPatch {
                note: Some("已核实".into()),
                ..Default::default()
            },
            None,
        )
        .unwrap();
    assert_eq!(foreman.submit_day(&hz(), date).unwrap().status, DayStatus::Submitted);
}

/// Wages are paid from what the manager approved: an amendment moves the approved totals only when
/// it is approved in turn, and until then the summary says what it would change.
#[test]
fn approved_totals_keep_the_approved_version_until_the_amendment_is_approved() {
    use sitesync_core::report::GroupBy;
    use sitesync_core::store::RowFilter;
    use sitesync_core::units::WorkDays;

    let dir = tempfile::tempdir().unwrap();
    let mut foreman = phone(&dir, "foreman", true);
    let mut manager = phone(&dir, "manager", false);
    let date = d("2026-09-03");
    let approved = |s: &Store| {
        let f = RowFilter {
            sites: Some(vec![hz().to_string()]),
            from: Some(date),
            to: Some(date),
            approved_only: true,
        };
        s.summary(&f, Some(GroupBy::Worker)).unwrap()
    };
    assert!(approved(&manager).total.is_zero(), "nothing approved yet");
    foreman.submit_day(&hz(), date).unwrap();
    exchange(&mut foreman, &mut manager);
    manager.approve_day(&hz(), date).unwrap();
    exchange(&mut foreman, &mut manager);
    let as_approved = approved(&manager);
    assert!(as_approved.total.cost_fen > 0);
    assert_eq!(as_approved.pending, None);

    // Half a day less for one worker, after approval.
    let line = foreman.day(&hz(), date).unwrap().labor[0].clone();
    let patch = LaborPatch {
        work_days: Some(WorkDays::from_centi(line.work_days.centi() - 50).unwrap()),
        ..Default::default()
    };
    let now = foreman.edit_labor(&line.id, &patch, Some("下午没来")).unwrap();
    exchange(&mut foreman, &mut manager);
    assert_eq!(
        manager.day(&hz(), date).unwrap().status,
        DayStatus::AmendedAfterApproval
    );
    for s in [&foreman, &manager] {
        let summary = approved(s);
        assert_eq!(summary.total, as_approved.total, "the approved version still counts");
        assert_eq!(summary.rows, as_approved.rows);
        let pending = summary.pending.expect("the amendment is shown");
        assert_eq!(pending.days, 1);
        assert_eq!(pending.difference.work_days_centi, -50);
        assert_eq!(pending.difference.cost_fen, now.cost().fen() - line.cost().fen());
        assert_eq!(pending.difference.lines, 0);
    }
    // The foreman's own view counts the day as it stands.
    let current = foreman.totals(Some(&hz()), date, date, None).unwrap();
    assert_eq!(current.total.work_days_centi, as_approved.total.work_days_centi - 50);

    // Approving the amendment moves the approved totals, and nothing is pending.
    manager.approve_day(&hz(), date).unwrap();
    let summary = approved(&manager);
    assert_eq!(summary.total, current.total);
    assert_eq!(summary.pending, None);

    // A rebuild from the documents alone gives the same projections, pinned versions included.
    exchange(&mut foreman, &mut manager);
    let before = foreman.projection_dump().unwrap();
    assert!(before.iter().any(|r| r.starts_with("labor_lines|")));
    foreman.reindex().unwrap();
    assert_eq!(foreman.projection_dump().unwrap(), before);
}

/// A store made before approved versions were kept (schema 3) gets them when this build opens it:
/// its amended days count as approved, not as nothing.
#[test]
fn an_older_store_learns_the_approved_version_of_its_amended_days() {
    use sitesync_core::store::RowFilter;
    use sitesync_core::units::WorkDays;

    let dir = tempfile::tempdir().unwrap();
    let date = d("2026-09-03");
    let path = {
        let mut s = phone(&dir, "manager", true);
        s.submit_day(&hz(), date).unwrap();
        s.approve_day(&hz(), date).unwrap();
        let line = s.day(&hz(), date).unwrap().labor[0].clone();
        let patch = LaborPatch {
            work_days: Some(WorkDays::from_centi(line.work_days.centi() - 50).unwrap()),
            ..Default::default()
        };
        s.edit_labor(&line.id, &patch, Some("下午没来")).unwrap();
        s.path().to_path_buf()
    };
    let approved = |s: &Store| {
        let f = RowFilter {
            approved_only: true,
            ..RowFilter::default()
        };
        s.summary(&f, None).unwrap().total
    };
    let expected = approved(&Store::open(&path).unwrap());
    assert!(expected.cost_fen > 0);
    // Back to schema 3: snapshots inline in their documents' rows, no pinned lines, no views, no
    // attachment transfers, signature images.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "ALTER TABLE documents ADD COLUMN snapshot BLOB;
         UPDATE documents SET snapshot = (SELECT data FROM snapshots s WHERE s.doc_id = documents.doc_id);
         DROP TABLE snapshots;
         DROP VIEW approved_labor_lines; DROP VIEW approved_progress_lines;
         DROP TABLE pinned_labor_lines; DROP TABLE pinned_progress_lines; DROP TABLE blob_transfers; DROP TABLE signoff_images;
         PRAGMA user_version = 3;",
    )
    .unwrap();
    drop(conn);
    assert_eq!(approved(&Store::open(&path).unwrap()), expected);
}
