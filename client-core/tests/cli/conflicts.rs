//! `approve` of a day whose fields hold competing values from two phones: the conflicts are listed
//! and the day stays unapproved until `--confirm-conflicts` (issue #21).

use sitesync_core::Store;
use sitesync_core::ids::DocId;

use crate::common::{add_line, ok, sitesync, small_store, stderr, stdout};

#[test]
fn approving_a_day_with_open_conflicts_needs_a_confirmation() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (small_store(a_dir.path()), small_store(b_dir.path()));
    // The same worker-day entered on two phones, offline, with different work-days.
    for (store, days) in [(&a, "1.0"), (&b, "0.5")] {
        let out = add_line(store, "site-hz-01", "2026-10-20", "w-0001", days);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let id: DocId = "day|site-hz-01|2026-10-20".parse().unwrap();
    let theirs = Store::open(&b).unwrap().export_changes(&id, &[]).unwrap().unwrap();
    Store::open(&a).unwrap().merge_changes(&id, &theirs).unwrap();
    let day = ["--site", "site-hz-01", "--date", "2026-10-20"];
    ok(&a, &[&["submit"][..], &day].concat());

    let refused = sitesync(&a, &[&["--user", "陈经理", "approve"][..], &day].concat());
    assert!(!refused.status.success(), "approved without confirmation");
    assert!(stderr(&refused).contains("--confirm-conflicts"), "{}", stderr(&refused));
    assert!(
        stdout(&refused).contains("work_days_centi"),
        "the conflict listed: {}",
        stdout(&refused)
    );
    let status = |s: &std::path::Path| {
        Store::open(s)
            .unwrap()
            .day(&"site-hz-01".parse().unwrap(), "2026-10-20".parse().unwrap())
            .unwrap()
            .status
    };
    assert_eq!(status(&a), sitesync_core::labor::DayStatus::Submitted);

    ok(
        &a,
        &[&["--user", "陈经理", "approve", "--confirm-conflicts"][..], &day].concat(),
    );
    assert_eq!(status(&a), sitesync_core::labor::DayStatus::Approved);
}
