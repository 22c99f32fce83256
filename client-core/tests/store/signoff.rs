//! Sign-off: signatures taken offline on two phones merge (each once), an edit after signing keeps
//! the signature and shows what changed, a disputed day refuses approval until answered, a month's
//! confirmation and the crew leader's.

use sitesync_core::labor::{DayStatus, LaborPatch};
use sitesync_core::signoff::{SignoffAction, SignoffState};
use sitesync_core::store::Period;
use sitesync_core::units::WorkDays;
use sitesync_core::{Error, Store};

use crate::common::*;

fn state(s: &mut Store, date: &str, worker: &str) -> SignoffState {
    let day = s.day_signoffs(&hz(), d(date)).unwrap();
    day.workers.iter().find(|x| x.worker == w(worker)).unwrap().state
}

#[test]
fn offline_signatures_on_two_phones_merge_each_once_and_an_edit_shows_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = phone(&dir, "a", true);
    let mut b = phone(&dir, "b", false);
    let date = "2026-09-03";
    exchange(&mut a, &mut b);
    let day = a.day(&hz(), d(date)).unwrap();
    let (w1, w2) = (day.labor[0].worker.clone(), day.labor.last().unwrap().worker.clone());
    assert_ne!(w1, w2);
    assert_eq!(state(&mut a, date, w1.as_str()), SignoffState::Unsigned);
    // Offline: w1 signs on phone a with an image, w2 taps consent on phone b.
    let png = b"\x89PNG\r\n\x1a\nsignature strokes";
    let s1 = a.sign_off(&hz(), Period::Day(d(date)), &w1, Some(png)).unwrap();
    let s2 = b.sign_off(&hz(), Period::Day(d(date)), &w2, None).unwrap();
    exchange(&mut a, &mut b);
    exchange(&mut a, &mut b);
    for s in [&mut a, &mut b] {
        let day = s.day_signoffs(&hz(), d(date)).unwrap();
        let signed: Vec<&str> = day
            .events
            .iter()
            .filter(|e| e.action == SignoffAction::Signed)
            .map(|e| e.id.as_str())
            .collect();
        assert_eq!(signed.len(), 2, "each signature once: {signed:?}");
        assert!(signed.contains(&s1[0].id.as_str()) && signed.contains(&s2[0].id.as_str()));
        assert_eq!(state(s, date, w1.as_str()), SignoffState::Signed);
        assert_eq!(state(s, date, w2.as_str()), SignoffState::Signed);
    }
    let sha = s1[0].image.clone().unwrap();
    assert_eq!(a.signoff_image(&sha).unwrap().as_deref(), Some(&png[..]));
    assert!(s2[0].image.is_none(), "a tap of consent has no image");

    // An edit of w1's line keeps the signature and names the change.
    let line = a
        .day(&hz(), d(date))
        .unwrap()
        .labor
        .into_iter()
        .find(|l| l.worker == w1)
        .unwrap();
    let half = if line.work_days == WorkDays::parse("0.5").unwrap() {
        "1.0"
    } else {
        "0.5"
    };
    let patch = LaborPatch {
        work_days: Some(WorkDays::parse(half).unwrap()),
        ..Default::default()
    };
    a.edit_labor(&line.id, &patch, None).unwrap();
    exchange(&mut a, &mut b);
    let day = b.day_signoffs(&hz(), d(date)).unwrap();
    let ws = day.workers.iter().find(|x| x.worker == w1).unwrap();
    assert_eq!(ws.state, SignoffState::ChangedSinceSigned);
    assert_eq!(ws.signature.as_ref().unwrap().id, s1[0].id, "the signature is kept");
    let change = ws.changes.iter().find(|c| c.field == "work_days_centi").unwrap();
    assert_eq!(change.line, line.id.as_str());
    assert_eq!(change.approved, Some(line.work_days.centi().to_string()));
    assert_eq!(change.now, Some(WorkDays::parse(half).unwrap().centi().to_string()));
    assert_eq!(
        state(&mut b, date, w2.as_str()),
        SignoffState::Signed,
        "w2's lines did not change"
    );
}

#[test]
fn a_disputed_day_cannot_be_approved_until_the_dispute_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let mut foreman = phone(&dir, "foreman", true);
    let mut manager = phone(&dir, "manager", false);
    let date = d("2026-09-03");
    let worker = foreman.day(&hz(), date).unwrap().labor[0].worker.clone();
    assert!(matches!(
        foreman.dispute(&hz(), Period::Day(date), &worker, "  "),
        Err(Error::Invalid { field: "reason", .. })
    ));
    let dispute = foreman
        .dispute(&hz(), Period::Day(date), &worker, "I worked the whole day")
        .unwrap()
        .remove(0);
    foreman.submit_day(&hz(), date).unwrap();
    exchange(&mut foreman, &mut manager);
    assert_eq!(
        state(&mut manager, "2026-09-03", worker.as_str()),
        SignoffState::Disputed
    );
    let before = manager.heads(&sitesync_core::ids::DocId::Day(hz(), date)).unwrap();
    match manager.approve_day(&hz(), date) {
        Err(Error::DisputeOpen { dispute: id, .. }) => assert_eq!(id, dispute.id),
        other => panic!("expected a refusal for the open dispute, got {other:?}"),
    }
    assert_eq!(
        manager.heads(&sitesync_core::ids::DocId::Day(hz(), date)).unwrap(),
        before,
        "nothing written"
    );
    assert!(matches!(
        manager.answer_dispute(&hz(), date, "nope", "x"),
        Err(Error::Invalid { field: "dispute", .. })
    ));
    manager
        .answer_dispute(&hz(), date, &dispute.id, "corrected to 1.0 after checking the gate log")
        .unwrap();
    assert_eq!(manager.approve_day(&hz(), date).unwrap().status, DayStatus::Approved);
}

#[test]
fn a_month_is_confirmed_day_by_day_and_the_sheet_names_who_must_sign() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = phone(&dir, "a", true);
    let worker = a.day(&hz(), d("2026-09-03")).unwrap().labor[0].worker.clone();
    let sheet = a.month_signoffs(&hz(), d("2026-09-01")).unwrap();
    let mine = sheet.workers.iter().find(|x| x.worker == worker).unwrap();
    assert_eq!(mine.state, SignoffState::Unsigned);
    let days = mine.days.len();
    let written = a
        .sign_off(&hz(), Period::Month(d("2026-09-15")), &worker, None)
        .unwrap();
    assert_eq!(written.len(), days, "one record on each day he has lines");
    assert!(written.iter().all(|e| e.month.as_deref() == Some("2026-09")));
    let sheet = a.month_signoffs(&hz(), d("2026-09-01")).unwrap();
    let mine = sheet.workers.iter().find(|x| x.worker == worker).unwrap();
    assert_eq!(mine.state, SignoffState::Signed);
    // A day's own signature does not confirm the month for anyone else.
    assert!(
        sheet
            .workers
            .iter()
            .filter(|x| x.worker != worker)
            .all(|x| x.state == SignoffState::Unsigned)
    );
    assert!(matches!(
        a.sign_off(&hz(), Period::Month(d("2030-01-01")), &worker, None),
        Err(Error::NothingToSign { .. })
    ));
}

#[test]
fn a_site_that_requires_crew_confirmation_refuses_to_submit_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = phone(&dir, "a", true);
    let date = d("2026-09-03");
    a.set_crew_confirmation_required(&hz(), true).unwrap();
    let crew = match a.submit_day(&hz(), date) {
        Err(Error::CrewNotConfirmed { crew, .. }) => crew,
        other => panic!("expected CrewNotConfirmed, got {other:?}"),
    };
    let crews: Vec<_> = a.day_signoffs(&hz(), date).unwrap().crews;
    assert!(crews.iter().any(|c| c.crew.as_str() == crew));
    for c in crews {
        a.confirm_crew(&hz(), Period::Day(date), &c.crew).unwrap();
    }
    assert_eq!(a.submit_day(&hz(), date).unwrap().status, DayStatus::Submitted);
}

/// Two handles on one phone's file, as the mobile bindings hold them (sync runs on its own): the
/// first opened before the second learnt from the server who the device is. A signature taken on
/// the first names that device, not `local` (which the server refuses as forged, and the phone
/// then drops with every later change of the day).
#[test]
fn a_handle_opened_before_the_device_was_known_signs_as_that_device() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = phone(&dir, "崔贵", true);
    let mut syncing = Store::open(dir.path().join("崔贵.sqlite3")).unwrap();
    syncing
        .set_author(&sitesync_core::rules::Author {
            device: "d-foreman-phone".into(),
            user_id: "u-foreman-hz-01".into(),
            user_name: "崔贵".into(),
            org: "org-zhuyuan".into(),
            role: sitesync_core::rules::Role::Foreman,
            all_sites: false,
            sites: vec!["site-hz-01".into()],
            system: false,
        })
        .unwrap();
    let date = "2026-09-03";
    let worker = first.day(&hz(), d(date)).unwrap().labor[0].worker.clone();
    let signed = first.sign_off(&hz(), Period::Day(d(date)), &worker, None).unwrap();
    assert_eq!(signed[0].device, "d-foreman-phone");
    assert_eq!(first.author().map(|a| a.user_id.as_str()), Some("u-foreman-hz-01"));
}
