//! Saved documents from earlier builds must keep loading, merging and reading the same: the files in
//! `tests/fixtures/` are real documents (the fixture day 2026-09-01 of site-hz-01 with an approval
//! and an amendment), written once by `SITESYNC_WRITE_FIXTURES=1 cargo test regression`.

use std::path::PathBuf;

use sitesync_core::ids::{DocId, LineId};
use sitesync_core::labor::{DayStatus, LaborPatch};

use crate::common::*;

fn saved() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/day-site-hz-01-2026-09-01.automerge")
}

#[test]
fn saved_day_document_still_loads_and_reads_the_same() {
    let id = DocId::Day(hz(), d("2026-09-01"));
    if std::env::var_os("SITESYNC_WRITE_FIXTURES").is_some() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = phone(&dir, "foreman", true);
        s.submit_day(&hz(), d("2026-09-01")).unwrap();
        s.set_user("manager").unwrap();
        s.approve_day(&hz(), d("2026-09-01")).unwrap();
        let line = LineId::labor(&hz(), d("2026-09-01"), &w("w-0003"), &wi("site-hz-01/wi-4.1"));
        let patch = LaborPatch {
            note: Some("下午去三号楼".into()),
            ..Default::default()
        };
        s.edit_labor(&line, &patch, Some("补记部位")).unwrap();
        std::fs::write(saved(), s.export_changes(&id, &[]).unwrap().unwrap()).unwrap();
    }
    let bytes = std::fs::read(saved()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut s = phone(&dir, "reader", false);
    assert!(s.merge_changes(&id, &bytes).unwrap());
    let sheet = s.day(&hz(), d("2026-09-01")).unwrap();
    assert_eq!(sheet.labor.len(), 48);
    assert_eq!(sheet.weather, "多云");
    assert_eq!(sheet.status, DayStatus::AmendedAfterApproval);
    let changes = s.amendments(&hz(), d("2026-09-01")).unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].now.as_deref(), Some("下午去三号楼"));
    assert_eq!(sheet.labor.iter().map(|l| l.work_days.centi()).sum::<i64>(), 4_600);
}
