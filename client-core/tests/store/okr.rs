//! OKRs: the seed example on two phones offline, statuses and roll-up after merging, SMART
//! validation, reviews and scores.

use std::collections::BTreeMap;

use sitesync_core::Error;
use sitesync_core::okr::{Cycle, CycleKind, Direction, KrKind, Status};
use sitesync_core::store::NewKeyResult;

use crate::common::*;

const ORG: &str = "org-zhuyuan";
const Q4: &str = "2026-Q4";

fn kr(objective: &str, title: &str, unit: &str, start: i64, target: i64, direction: Direction) -> NewKeyResult {
    NewKeyResult {
        objective: objective.to_string(),
        title: title.to_string(),
        owner: "付志".into(),
        unit: unit.to_string(),
        start_milli: start,
        target_milli: Some(target),
        direction,
        kind: KrKind::Baseline,
        weight: 1,
        due: Some(d("2026-12-31")),
        metric: None,
    }
}

#[test]
fn the_seed_example_rolls_up_after_offline_check_ins_on_two_phones() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = phone(&dir, "a", false);
    let mut b = phone(&dir, "b", false);
    let (start, end) = Cycle::period(CycleKind::Quarter, d("2026-11-25"));
    assert_eq!((start, end), (d("2026-10-01"), d("2026-12-31")));
    let cycle = Cycle::new(ORG, Q4, CycleKind::Quarter, "2026 第四季度", "运营", d("2026-11-25"));
    assert_eq!((cycle.start, cycle.end), (start, end));
    a.put_cycle(&cycle).unwrap();
    let o = a
        .add_objective(
            ORG,
            Q4,
            "优化供应链响应 optimise supply chain response",
            "付志",
            "运营",
            None,
        )
        .unwrap();
    let order = a
        .add_key_result(
            ORG,
            Q4,
            &kr(
                &o.id,
                "order-to-stock 7→4 days",
                "days",
                7_000,
                4_000,
                Direction::Decrease,
            ),
        )
        .unwrap();
    let ontime = a
        .add_key_result(
            ORG,
            Q4,
            &kr(&o.id, "supplier on-time ≥95%", "%", 88_000, 95_000, Direction::AtLeast),
        )
        .unwrap();
    let vmi = a
        .add_key_result(
            ORG,
            Q4,
            &kr(&o.id, "VMI covers 80% of SKUs", "%", 0, 80_000, Direction::Increase),
        )
        .unwrap();
    // SMART: measurable and time-bound, or refused.
    let mut vague = kr(&o.id, "improve things", "", 0, 1, Direction::Increase);
    vague.target_milli = None;
    assert!(matches!(
        a.add_key_result(ORG, Q4, &vague),
        Err(Error::Invalid { field: "target", .. })
    ));
    let mut open_ended = kr(&o.id, "someday", "%", 0, 10_000, Direction::Increase);
    open_ended.due = None;
    assert!(matches!(
        a.add_key_result(ORG, Q4, &open_ended),
        Err(Error::Invalid { field: "due", .. })
    ));
    assert!(matches!(
        a.add_key_result(
            ORG,
            Q4,
            &kr(&o.id, "backwards", "days", 7_000, 9_000, Direction::Decrease)
        ),
        Err(Error::Invalid { field: "target", .. })
    ));
    a.review_cycle(ORG, Q4, d("2026-11-10"), "第一次双周回顾").unwrap();
    exchange(&mut a, &mut b);

    // Offline on both phones, including two check-ins on the same key result.
    a.check_in(ORG, Q4, &order.id, 5_500, None, Some(7), "新仓库启用", d("2026-11-20"))
        .unwrap();
    a.check_in(
        ORG,
        Q4,
        &vmi.id,
        35_000,
        Some(Status::Yellow),
        None,
        "",
        d("2026-11-22"),
    )
    .unwrap();
    b.check_in(ORG, Q4, &ontime.id, 96_000, None, None, "", d("2026-11-21"))
        .unwrap();
    b.check_in(ORG, Q4, &vmi.id, 40_000, None, None, "三家供应商上线", d("2026-11-23"))
        .unwrap();
    exchange(&mut a, &mut b);

    let today = d("2026-11-25");
    let board = a.okr_board(ORG, Q4, today).unwrap();
    assert_eq!(board, b.okr_board(ORG, Q4, today).unwrap(), "both phones agree");
    let obj = &board.objectives[0];
    let by_id: BTreeMap<&str, _> = obj.key_results.iter().map(|k| (k.kr.id.as_str(), k)).collect();
    assert_eq!(by_id[order.id.as_str()].current_milli, 5_500);
    assert_eq!(by_id[order.id.as_str()].progress, 0.5);
    assert_eq!(
        by_id[order.id.as_str()].status,
        Status::Yellow,
        "half way at 61 % of the quarter"
    );
    assert_eq!(
        by_id[ontime.id.as_str()].status,
        Status::Green,
        "96 % holds the ≥95 % line"
    );
    assert_eq!(by_id[vmi.id.as_str()].checkins, 2, "both concurrent check-ins survive");
    assert_eq!(
        by_id[vmi.id.as_str()].current_milli,
        40_000,
        "the latest by date is current"
    );
    assert_eq!(by_id[vmi.id.as_str()].status, Status::Yellow);
    assert!(
        (obj.progress - 2.0 / 3.0).abs() < 1e-9,
        "weighted roll-up: {}",
        obj.progress
    );
    assert_eq!(
        obj.status,
        Status::Yellow,
        "an objective is as bad as its worst key result"
    );
    assert_eq!(
        board.warnings.len(),
        1,
        "one objective is fewer than good practice: {:?}",
        board.warnings
    );
    // What changed since the last review.
    let since: BTreeMap<&str, _> = board.since_last_review.iter().map(|c| (c.kr.as_str(), c)).collect();
    assert_eq!(since[order.id.as_str()].at_review_milli, Some(7_000));
    assert_eq!(since[order.id.as_str()].now_milli, 5_500);
    assert_eq!(board.next_review, d("2026-11-24"));

    // The owner overrides a status with a note.
    assert!(b.override_status(ORG, Q4, &order.id, Some((Status::Red, " "))).is_err());
    b.override_status(ORG, Q4, &order.id, Some((Status::Red, "港口罢工")))
        .unwrap();
    exchange(&mut a, &mut b);
    let board = a.okr_board(ORG, Q4, today).unwrap();
    assert_eq!(board.objectives[0].status, Status::Red);

    // End of cycle: scores with one decimal.
    a.check_in(ORG, Q4, &order.id, 4_300, None, None, "", d("2026-12-30"))
        .unwrap();
    let closed = a
        .close_cycle(
            ORG,
            Q4,
            "供应链项目按期推进",
            &BTreeMap::from([(o.id.clone(), "VMI 推进慢".to_string())]),
        )
        .unwrap();
    exchange(&mut a, &mut b);
    let board = b.okr_board(ORG, Q4, d("2026-12-31")).unwrap();
    assert_eq!(board, closed);
    assert!(board.cycle.closed);
    let scores: BTreeMap<&str, Option<f64>> = board.objectives[0]
        .key_results
        .iter()
        .map(|k| (k.kr.id.as_str(), k.score))
        .collect();
    assert_eq!(scores[order.id.as_str()], Some(0.9));
    assert_eq!(scores[ontime.id.as_str()], Some(1.0));
    assert_eq!(scores[vmi.id.as_str()], Some(0.5));
    assert_eq!(board.objectives[0].score, Some(0.8));
    assert_eq!(board.objectives[0].retrospective.as_deref(), Some("VMI 推进慢"));
}
