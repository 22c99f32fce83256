//! What is due, from the store alone: no server exists in these tests and the store is bound to none.

use sitesync_core::due::Due;
use sitesync_core::okr::{Cycle, CycleKind, Direction, KrKind};
use sitesync_core::store::NewKeyResult;

use crate::common::*;

const ORG: &str = "org-zhuyuan";
const Q4: &str = "2026-Q4";

fn kr(objective: &str, title: &str, owner: &str) -> NewKeyResult {
    NewKeyResult {
        objective: objective.to_string(),
        title: title.to_string(),
        owner: owner.to_string(),
        unit: "%".into(),
        start_milli: 0,
        target_milli: Some(100_000),
        direction: Direction::Increase,
        kind: KrKind::Baseline,
        weight: 1,
        due: Some(d("2026-12-31")),
        metric: None,
    }
}

/// The items about site-hz-01 and the check-ins, in the order `due` gives them.
fn at_hz(items: Vec<Due>) -> Vec<Due> {
    items
        .into_iter()
        .filter(|i| match i {
            Due::LogNotSubmitted { site, .. } | Due::DayRejected { site, .. } | Due::MonthUnsigned { site, .. } => {
                *site == hz()
            }
            Due::CheckInDue { .. } => true,
        })
        .collect()
}

#[test]
fn due_answers_offline_for_unsubmitted_submitted_and_rejected_days_and_check_ins() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = phone(&dir, "付志", false);
    assert!(s.binding().unwrap().is_none(), "no server to ask");
    let today = d("2026-12-10");

    // Nothing written today: the log is due.
    assert_eq!(
        at_hz(s.due(Some(today)).unwrap()),
        vec![Due::LogNotSubmitted {
            site: hz(),
            date: today
        }]
    );
    // A draft is still due; a submitted day is not.
    s.add_labor(&entry("2026-12-10", "w-0001", "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    assert_eq!(at_hz(s.due(Some(today)).unwrap()).len(), 1);
    s.submit_day(&hz(), today).unwrap();
    assert_eq!(at_hz(s.due(Some(today)).unwrap()), vec![]);

    // A rejected day, with the manager's reason; fixed and submitted again, it is gone.
    s.add_labor(&entry("2026-12-09", "w-0001", "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    s.submit_day(&hz(), d("2026-12-09")).unwrap();
    s.reject_day(&hz(), d("2026-12-09"), "工日与考勤不符").unwrap();
    assert_eq!(
        at_hz(s.due(Some(today)).unwrap()),
        vec![Due::DayRejected {
            site: hz(),
            date: d("2026-12-09"),
            reason: "工日与考勤不符".into()
        }]
    );
    s.submit_day(&hz(), d("2026-12-09")).unwrap();
    assert_eq!(at_hz(s.due(Some(today)).unwrap()), vec![]);

    // Last month has a line nobody signed: sign-offs to collect.
    s.add_labor(&entry("2026-11-20", "w-0002", "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    assert_eq!(
        at_hz(s.due(Some(today)).unwrap()),
        vec![Due::MonthUnsigned {
            site: hz(),
            month: "2026-11".into(),
            workers: 1
        }]
    );

    // Check-ins: this user's key result last checked in 9 days ago is due, one checked in 2 days
    // ago is not, and another owner's never is.
    s.put_cycle(&Cycle::new(
        ORG,
        Q4,
        CycleKind::Quarter,
        "2026 第四季度",
        "运营",
        d("2026-11-25"),
    ))
    .unwrap();
    let o = s.add_objective(ORG, Q4, "准时交付", "付志", "运营", None).unwrap();
    let stale = s.add_key_result(ORG, Q4, &kr(&o.id, "按时完工率", "付志")).unwrap();
    let fresh = s.add_key_result(ORG, Q4, &kr(&o.id, "安全检查", "付志")).unwrap();
    s.add_key_result(ORG, Q4, &kr(&o.id, "成本", "别人")).unwrap();
    s.check_in(ORG, Q4, &stale.id, 40_000, None, None, "", d("2026-12-01"))
        .unwrap();
    s.check_in(ORG, Q4, &fresh.id, 40_000, None, None, "", d("2026-12-08"))
        .unwrap();
    let check_ins: Vec<Due> = s
        .due(Some(today))
        .unwrap()
        .into_iter()
        .filter(|i| matches!(i, Due::CheckInDue { .. }))
        .collect();
    assert_eq!(
        check_ins,
        vec![Due::CheckInDue {
            org: ORG.into(),
            cycle: Q4.into(),
            key_result: stale.id.clone(),
            title: "按时完工率".into(),
            last_check_in: Some(d("2026-12-01")),
        }]
    );
    // A week on, both are due.
    let later = s.due(Some(d("2026-12-15"))).unwrap();
    assert_eq!(later.iter().filter(|i| matches!(i, Due::CheckInDue { .. })).count(), 2);
}
