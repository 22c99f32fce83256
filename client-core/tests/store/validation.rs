//! Bad input gets a typed error and changes nothing.

use sitesync_core::Error;
use sitesync_core::ids::{CrewId, DocId, LineId, SiteId, WorkerId};
use sitesync_core::labor::LaborPatch;
use sitesync_core::units::{Fen, Minutes, WorkDays};

use crate::common::*;

#[test]
fn invalid_entries_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = phone(&dir, "a", false);
    let date = "2026-12-05";
    s.add_labor(&entry(date, "w-0001", "site-hz-01/wi-4.1", "0.5"), None)
        .unwrap();
    let id = DocId::Day(hz(), d(date));
    let before = s.heads(&id).unwrap();

    let unknown_worker = entry(date, "w-9999", "site-hz-01/wi-4.1", "1.0");
    assert!(matches!(
        s.add_labor(&unknown_worker, None),
        Err(Error::UnknownWorker { .. })
    ));
    let unknown_item = entry(date, "w-0002", "site-hz-01/wi-99", "1.0");
    assert!(matches!(
        s.add_labor(&unknown_item, None),
        Err(Error::UnknownWorkItem { .. })
    ));
    let mut other_site = entry(date, "w-0002", "site-hz-01/wi-4.1", "1.0");
    other_site.site = SiteId::new("site-nowhere").unwrap();
    assert!(matches!(s.add_labor(&other_site, None), Err(Error::UnknownSite(_))));

    let mut too_long = entry(date, "w-0002", "site-hz-01/wi-4.1", "1.0");
    too_long.hours = Some(Minutes::from_min("hours", 20 * 60).unwrap());
    too_long.overtime = Minutes::from_min("overtime", 5 * 60).unwrap();
    assert!(matches!(
        s.add_labor(&too_long, None),
        Err(Error::Invalid { field: "hours", .. })
    ));
    // The worker's day across two lines also may not pass 24 hours.
    let mut second = entry(date, "w-0001", "site-hz-01/wi-4.2", "1.0");
    second.hours = Some(Minutes::from_min("hours", 21 * 60).unwrap());
    assert!(matches!(
        s.add_labor(&second, None),
        Err(Error::Invalid { field: "hours", .. })
    ));
    // The same worker on the same item twice is one line: edit it instead.
    assert!(matches!(
        s.add_labor(&entry(date, "w-0001", "site-hz-01/wi-4.1", "1.0"), None),
        Err(Error::DuplicateLine { .. })
    ));
    assert!(matches!(
        s.edit_labor(&LineId::new("Lnope").unwrap(), &LaborPatch::default(), None),
        Err(Error::UnknownLine(_))
    ));
    assert!(matches!(
        s.copy_crew_day(
            &hz(),
            &CrewId::new("site-hz-01/crew-99").unwrap(),
            d("2026-12-04"),
            d(date)
        ),
        Err(Error::UnknownCrew { .. })
    ));
    assert_eq!(s.heads(&id).unwrap(), before, "no refused call wrote anything");
    assert_eq!(s.day(&hz(), d(date)).unwrap().labor.len(), 1);
    // And on disk, not only in this handle's memory.
    let stats = s.storage_stats(&id).unwrap();
    drop(s);
    let mut s = sitesync_core::Store::open(dir.path().join("a.sqlite3")).unwrap();
    assert_eq!(s.heads(&id).unwrap(), before);
    assert_eq!(s.storage_stats(&id).unwrap(), stats);

    // The value types themselves refuse absurd values.
    assert!(WorkDays::parse("3.5").is_err());
    assert!(WorkDays::parse("-1").is_err());
    assert!(Minutes::parse_hours("hours", "25").is_err());
    assert!(Fen::parse_yuan("rate", "-430").is_err());
    assert!(matches!(
        sitesync_core::ids::parse_date("2026-02-30"),
        Err(Error::InvalidDate(_))
    ));
    assert!(WorkerId::new("w 1").is_err());
}

#[test]
fn inactive_workers_cannot_be_logged() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = phone(&dir, "a", false);
    let mut roster = s.roster(&hz()).unwrap();
    roster
        .workers
        .iter_mut()
        .find(|x| x.id.as_str() == "w-0002")
        .unwrap()
        .active = false;
    s.put_roster(&roster).unwrap();
    let err = s
        .add_labor(&entry("2026-12-06", "w-0002", "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap_err();
    assert!(matches!(err, Error::InactiveWorker(_)), "{err}");
}
