//! Workers added on site: identity from the ID card across offline phones, possible duplicates,
//! head office's confirm and merge, and rates with an effective date.

use sitesync_core::Error;
use sitesync_core::ids::{CrewId, WorkerId};
use sitesync_core::pii::{OrgPiiKey, OrgPiiSecret};
use sitesync_core::roster::PendingStatus;
use sitesync_core::store::NewWorker;
use sitesync_core::units::Fen;

use crate::common::*;

fn new(name: &str, phone: &str, card: Option<&str>) -> NewWorker {
    NewWorker {
        site: hz(),
        name: name.into(),
        phone: phone.into(),
        trade: "rebar".into(),
        crew: CrewId::new("site-hz-01/crew-1").unwrap(),
        day_rate: Fen::new("r", 35_000).unwrap(),
        overtime_rate: Fen::new("r", 5_000).unwrap(),
        id_card: card.map(str::to_string),
    }
}

/// The org's personal-data key, as both phones got it from the server at a sync.
fn org_key() -> OrgPiiKey {
    OrgPiiSecret::generate().unwrap().public("org-zhuyuan")
}

#[test]
fn the_same_id_card_added_on_two_phones_offline_is_one_worker() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = phone(&dir, "a", false);
    let mut b = phone(&dir, "b", false);
    let key = org_key();
    a.set_org_pii_key(&key).unwrap();
    b.set_org_pii_key(&key).unwrap();
    let wa = a
        .add_worker(&new("李四", "13900001111", Some("33010619900101123x")))
        .unwrap();
    // The other phone types it with a space and a capital X, and another phone number.
    let wb = b
        .add_worker(&new("李四", "139 0000 2222", Some("330106 19900101123X")))
        .unwrap();
    assert_eq!(wa, wb);
    assert_eq!(wa, WorkerId::from_id_card_keyed("33010619900101123X", &key).unwrap());
    // Usable at once on each phone, before any sync.
    a.add_labor(&entry("2026-12-01", wa.as_str(), "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    b.add_labor(&entry("2026-12-02", wb.as_str(), "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    exchange(&mut a, &mut b);
    let (ra, rb) = (a.roster(&hz()).unwrap(), b.roster(&hz()).unwrap());
    assert_eq!(ra, rb);
    assert_eq!(ra.pending_workers.len(), 1, "{:?}", ra.pending_workers);
    // Held sealed and masked; every printed form shows the mask only.
    let p = &ra.pending_workers[0];
    assert_eq!(p.id_card_masked, "**************123X");
    assert!(!p.id_card_sealed.is_empty() && !p.id_card_sealed.contains("19900101"));
    let json = serde_json::to_string(&ra).unwrap();
    assert!(
        !json.contains("19900101") && json.contains("**************123X"),
        "{json}"
    );
    let on_roster: Vec<_> = ra.workers.iter().filter(|w| w.id == wa).collect();
    assert_eq!(on_roster.len(), 1);
    assert!(on_roster[0].pending);
    assert!(ra.possible_duplicates().is_empty());
}

#[test]
fn same_name_and_phone_without_a_card_are_two_workers_flagged_as_a_pair() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = phone(&dir, "a", false);
    let mut b = phone(&dir, "b", false);
    b.set_org_pii_key(&org_key()).unwrap();
    let wa = a.add_worker(&new("王五", "13900003333", None)).unwrap();
    let wb = b
        .add_worker(&new("王五", "139-0000-3333", Some("110101199001011234")))
        .unwrap();
    assert_ne!(wa, wb);
    assert!(wa.is_fresh_shape());
    exchange(&mut a, &mut b);
    let r = a.roster(&hz()).unwrap();
    assert_eq!(r.workers.iter().filter(|w| w.pending).count(), 2);
    let pairs = r.possible_duplicates();
    assert_eq!(pairs.len(), 1, "{pairs:?}");
    let pair = [pairs[0].worker.clone(), pairs[0].other.clone()];
    assert!(pair.contains(&wa) && pair.contains(&wb));
    // A pending worker with the name and phone of a worker on the roster is flagged too.
    let on_roster = r.worker(&w("w-0001")).unwrap().clone();
    let dup = a.add_worker(&new(&on_roster.name, &on_roster.phone, None)).unwrap();
    let pairs = a.roster(&hz()).unwrap().possible_duplicates();
    assert!(
        pairs.iter().any(|p| p.worker == dup && p.other == on_roster.id),
        "{pairs:?}"
    );
}

#[test]
fn an_added_worker_is_durable_and_bad_input_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = phone(&dir, "a", false);
    let id = a.add_worker(&new("赵六", "13900004444", None)).unwrap();
    drop(a);
    let mut a = sitesync_core::Store::open(dir.path().join("a.sqlite3")).unwrap();
    let before = a.roster(&hz()).unwrap();
    let p = before.pending_worker(&id).unwrap();
    assert_eq!((p.status, p.added_by.as_str()), (PendingStatus::Pending, "a"));
    let mut unknown_crew = new("x", "1", None);
    unknown_crew.crew = CrewId::new("site-hz-01/crew-99").unwrap();
    assert!(matches!(a.add_worker(&unknown_crew), Err(Error::UnknownCrew { .. })));
    assert!(matches!(
        a.add_worker(&new("  ", "1", None)),
        Err(Error::Invalid { field: "name", .. })
    ));
    // A card before the phone has its org's key (never synced): refused with what to do; the
    // worker can still be added without it.
    assert!(matches!(
        a.add_worker(&new("x", "1", Some("110101199001011234"))),
        Err(Error::PiiKeyMissing)
    ));
    a.set_org_pii_key(&org_key()).unwrap();
    assert!(matches!(
        a.add_worker(&new("x", "1", Some("12-34"))),
        Err(Error::Invalid { field: "id_card", .. })
    ));
    let mut dear = new("x", "1", None);
    dear.day_rate = Fen::new("r", i64::MAX / 2).unwrap();
    assert!(a.add_worker(&dear).is_err());
    assert_eq!(a.roster(&hz()).unwrap(), before);
}

#[test]
fn confirm_puts_a_worker_on_the_roster_and_merge_repoints_his_lines() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = phone(&dir, "a", false);
    let new_one = a.add_worker(&new("孙七", "13900005555", None)).unwrap();
    let same = a.add_worker(&new("高平", "13866665714", None)).unwrap();
    a.add_labor(&entry("2026-12-01", same.as_str(), "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    a.add_labor(&entry("2026-12-02", "w-0001", "site-hz-01/wi-4.1", "0.5"), None)
        .unwrap();
    let totals_before = a.totals(Some(&hz()), d("2026-12-01"), d("2026-12-31"), None).unwrap();

    a.confirm_worker(&hz(), &new_one).unwrap();
    let r = a.roster(&hz()).unwrap();
    assert!(!r.worker(&new_one).unwrap().pending);
    assert_eq!(r.pending_worker(&new_one).unwrap().status, PendingStatus::Confirmed);
    assert!(a.confirm_worker(&hz(), &new_one).is_err(), "confirmed once");

    // Merging into itself or an unknown worker is refused and changes nothing.
    assert!(a.merge_worker(&hz(), &same, &same).is_err());
    assert!(a.merge_worker(&hz(), &same, &w("w-9999")).is_err());
    a.merge_worker(&hz(), &same, &w("w-0001")).unwrap();
    let r = a.roster(&hz()).unwrap();
    assert_eq!(r.resolve_worker(&same), w("w-0001"));
    assert!(r.worker(&same).is_none(), "a merged worker leaves the roster");
    assert!(r.possible_duplicates().is_empty());
    // The merged worker's line is still there, still valid, and counted once.
    let day = a.day(&hz(), d("2026-12-01")).unwrap();
    assert_eq!(day.labor.iter().filter(|l| l.worker == same).count(), 1);
    let totals_after = a.totals(Some(&hz()), d("2026-12-01"), d("2026-12-31"), None).unwrap();
    assert_eq!(totals_before.total, totals_after.total);
}

#[test]
fn a_line_takes_the_rate_in_force_on_its_date() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = phone(&dir, "a", false);
    let worker = w("w-0001");
    let own = a.roster(&hz()).unwrap().worker(&worker).unwrap().day_rate;
    let raise = Fen::new("r", own.fen() + 2_000).unwrap();
    let later = Fen::new("r", own.fen() + 5_000).unwrap();
    a.set_rate(&hz(), &worker, d("2026-12-10"), raise, Fen::new("r", 9_000).unwrap())
        .unwrap();
    a.set_rate(&hz(), &worker, d("2026-12-20"), later, Fen::new("r", 9_500).unwrap())
        .unwrap();
    let r = a.roster(&hz()).unwrap();
    assert_eq!(r.rate_on(&worker, d("2026-12-09")).0, own);
    assert_eq!(r.rate_on(&worker, d("2026-12-10")).0, raise);
    assert_eq!(
        r.rate_on(&worker, d("2026-12-19")),
        (raise, Fen::new("r", 9_000).unwrap())
    );
    assert_eq!(r.rate_on(&worker, d("2026-12-25")).0, later);
    for (date, rate) in [("2026-12-09", own), ("2026-12-10", raise), ("2026-12-21", later)] {
        let line = a
            .add_labor(&entry(date, "w-0001", "site-hz-01/wi-4.1", "1.0"), None)
            .unwrap();
        assert_eq!(line.day_rate, rate, "{date}");
    }
    assert!(a.set_rate(&hz(), &w("w-9999"), d("2026-12-01"), raise, raise).is_err());
}

#[test]
fn summaries_by_crew_and_trade_count_a_merged_workers_lines_under_the_surviving_worker() {
    use sitesync_core::report::GroupBy;
    let dir = tempfile::tempdir().unwrap();
    let mut a = phone(&dir, "a", false);
    // Added on site in another crew and trade than 高平 (w-0001: 周长班组, plumber), then merged into him.
    let mut other = new("高平", "13866665714", None);
    other.crew = CrewId::new("site-hz-01/crew-2").unwrap();
    other.trade = "rebar".into();
    let same = a.add_worker(&other).unwrap();
    a.add_labor(&entry("2026-12-01", same.as_str(), "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    a.add_labor(&entry("2026-12-02", "w-0001", "site-hz-01/wi-4.1", "0.5"), None)
        .unwrap();
    let group = |a: &sitesync_core::Store, by: GroupBy, key: &str| {
        a.totals(Some(&hz()), d("2026-12-01"), d("2026-12-31"), Some(by))
            .unwrap()
            .rows
            .into_iter()
            .find(|r| r.key == key)
            .map(|r| (r.sums.work_days_centi, r.sums.lines))
    };
    assert_eq!(group(&a, GroupBy::Crew, "site-hz-01/crew-2"), Some((100, 1)));
    assert_eq!(group(&a, GroupBy::Trade, "rebar"), Some((100, 1)));

    a.merge_worker(&hz(), &same, &w("w-0001")).unwrap();
    let total = a
        .totals(Some(&hz()), d("2026-12-01"), d("2026-12-31"), None)
        .unwrap()
        .total;
    for by in [GroupBy::Crew, GroupBy::Trade] {
        let rows = a
            .totals(Some(&hz()), d("2026-12-01"), d("2026-12-31"), Some(by))
            .unwrap()
            .rows;
        assert_eq!(rows.len(), 1, "{by:?}: one group, the surviving worker's: {rows:?}");
        assert_eq!(rows[0].sums, total, "{by:?}: every line counted there, once");
    }
    assert_eq!(group(&a, GroupBy::Crew, "site-hz-01/crew-1"), Some((150, 2)));
    assert_eq!(group(&a, GroupBy::Trade, "plumber"), Some((150, 2)));
}
