//! The projection a store keeps up to date change by change equals a rebuild from the documents
//! alone, after every step of random edits, reviews, amendments and merges between two replicas
//! (concurrent edits leave conflicts, which the rows count). Only the lines a change touched are
//! re-projected where that is safe (`store/projection.rs`), so this is what holds it to the rebuild.

use proptest::prelude::*;
use sitesync_core::Store;
use sitesync_core::ids::{LineId, SiteId, WorkItemId, WorkerId};
use sitesync_core::labor::LaborPatch;
use sitesync_core::units::{Quantity, WorkDays};

use crate::common::*;

#[derive(Debug, Clone)]
enum Op {
    Add {
        r: usize,
        date: usize,
        worker: usize,
        item: usize,
        centi: i64,
    },
    EditDays {
        r: usize,
        date: usize,
        worker: usize,
        item: usize,
        centi: i64,
        amend: bool,
    },
    EditNote {
        r: usize,
        date: usize,
        worker: usize,
        item: usize,
        note: usize,
        amend: bool,
    },
    Delete {
        r: usize,
        date: usize,
        worker: usize,
        item: usize,
        amend: bool,
    },
    Progress {
        r: usize,
        date: usize,
        item: usize,
        milli: i64,
        amend: bool,
    },
    DeleteProgress {
        r: usize,
        date: usize,
        item: usize,
        amend: bool,
    },
    Weather {
        r: usize,
        date: usize,
        weather: usize,
    },
    Submit {
        r: usize,
        date: usize,
    },
    Approve {
        r: usize,
        date: usize,
    },
    Reject {
        r: usize,
        date: usize,
    },
    Sync {
        from: usize,
        to: usize,
    },
}

const NOTES: &[&str] = &["", "下雨提前收工", "搬运材料"];
const WEATHER: &[&str] = &["晴", "小雨"];

fn op() -> impl Strategy<Value = Op> {
    let r = 0..2usize;
    let date = 0..2usize;
    let worker = 0..3usize;
    let item = 0..2usize;
    let centi = prop_oneof![Just(50i64), Just(100), Just(150)];
    let amend = any::<bool>();
    prop_oneof![
        4 => (r.clone(), date.clone(), worker.clone(), item.clone(), centi.clone())
            .prop_map(|(r, date, worker, item, centi)| Op::Add { r, date, worker, item, centi }),
        3 => (r.clone(), date.clone(), worker.clone(), item.clone(), centi, amend)
            .prop_map(|(r, date, worker, item, centi, amend)| Op::EditDays { r, date, worker, item, centi, amend }),
        2 => (r.clone(), date.clone(), worker.clone(), item.clone(), 0..NOTES.len(), amend)
            .prop_map(|(r, date, worker, item, note, amend)| Op::EditNote { r, date, worker, item, note, amend }),
        1 => (r.clone(), date.clone(), worker, item.clone(), amend)
            .prop_map(|(r, date, worker, item, amend)| Op::Delete { r, date, worker, item, amend }),
        2 => (r.clone(), date.clone(), item.clone(), 0..50_000i64, amend)
            .prop_map(|(r, date, item, milli, amend)| Op::Progress { r, date, item, milli, amend }),
        1 => (r.clone(), date.clone(), item, amend)
            .prop_map(|(r, date, item, amend)| Op::DeleteProgress { r, date, item, amend }),
        1 => (r.clone(), date.clone(), 0..WEATHER.len()).prop_map(|(r, date, weather)| Op::Weather { r, date, weather }),
        1 => (r.clone(), date.clone()).prop_map(|(r, date)| Op::Submit { r, date }),
        1 => (r.clone(), date.clone()).prop_map(|(r, date)| Op::Approve { r, date }),
        1 => (r.clone(), date).prop_map(|(r, date)| Op::Reject { r, date }),
        3 => (r.clone(), r).prop_map(|(from, to)| Op::Sync { from, to }),
    ]
}

fn site() -> SiteId {
    SiteId::new("site-t").unwrap()
}

fn date(i: usize) -> chrono::NaiveDate {
    d("2026-12-01") + chrono::Days::new(i as u64)
}

fn line(date_i: usize, worker: usize, item: usize) -> LineId {
    let w = WorkerId::new(format!("t-{}", worker + 1)).unwrap();
    LineId::labor(&site(), date(date_i), &w, &item_id(item))
}

fn item_id(item: usize) -> WorkItemId {
    WorkItemId::new(format!("site-t/wi-{}", item + 1)).unwrap()
}

fn amended(amend: bool) -> Option<&'static str> {
    amend.then_some("补记更正")
}

/// Applies one step; refusals (an unknown line, an approved day edited without a reason …) are
/// part of the game.
fn apply(stores: &mut [Store], op: &Op) {
    match *op {
        Op::Add {
            r,
            date: di,
            worker,
            item,
            centi,
        } => {
            let w = WorkerId::new(format!("t-{}", worker + 1)).unwrap();
            let e =
                sitesync_core::store::entry(site(), date(di), w, item_id(item), WorkDays::from_centi(centi).unwrap());
            let _ = stores[r].add_labor(&e, None);
        }
        Op::EditDays {
            r,
            date: di,
            worker,
            item,
            centi,
            amend,
        } => {
            let patch = LaborPatch {
                work_days: Some(WorkDays::from_centi(centi).unwrap()),
                ..Default::default()
            };
            let _ = stores[r].edit_labor(&line(di, worker, item), &patch, amended(amend));
        }
        Op::EditNote {
            r,
            date: di,
            worker,
            item,
            note,
            amend,
        } => {
            let patch = LaborPatch {
                note: Some(NOTES[note].to_string()),
                ..Default::default()
            };
            let _ = stores[r].edit_labor(&line(di, worker, item), &patch, amended(amend));
        }
        Op::Delete {
            r,
            date: di,
            worker,
            item,
            amend,
        } => {
            let _ = stores[r].delete_labor(&line(di, worker, item), amended(amend));
        }
        Op::Progress {
            r,
            date: di,
            item,
            milli,
            amend,
        } => {
            let q = Quantity::from_milli("q", milli).unwrap();
            let _ = stores[r].set_progress(&site(), date(di), &item_id(item), q, "", amended(amend));
        }
        Op::DeleteProgress {
            r,
            date: di,
            item,
            amend,
        } => {
            let id = LineId::progress(&site(), date(di), &item_id(item));
            let _ = stores[r].delete_progress(&id, amended(amend));
        }
        Op::Weather { r, date: di, weather } => {
            let _ = stores[r].set_day_info(&site(), date(di), Some(WEATHER[weather]), None, None);
        }
        Op::Submit { r, date: di } => {
            let _ = stores[r].submit_day(&site(), date(di));
        }
        Op::Approve { r, date: di } => {
            let _ = stores[r].approve_day(&site(), date(di));
        }
        Op::Reject { r, date: di } => {
            let _ = stores[r].reject_day(&site(), date(di), "数量不对");
        }
        Op::Sync { from, to } => {
            if from != to {
                let (a, b) = stores.split_at_mut(1);
                let (a, b) = (&mut a[0], &mut b[0]);
                if from == 0 { push(a, b) } else { push(b, a) }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn the_kept_projection_is_the_rebuilt_one(ops in proptest::collection::vec(op(), 1..48)) {
        let dir = tempfile::tempdir().unwrap();
        let mut stores: Vec<Store> = (0..2)
            .map(|i| {
                let mut s = Store::open(dir.path().join(format!("r{i}.sqlite3"))).unwrap();
                s.set_user(&format!("r{i}")).unwrap();
                s
            })
            .collect();
        stores[0].put_roster(&tiny_roster()).unwrap();
        apply(&mut stores, &Op::Sync { from: 0, to: 1 });
        for (step, op) in ops.iter().enumerate() {
            apply(&mut stores, op);
            for (r, s) in stores.iter_mut().enumerate() {
                let kept = s.projection_dump().unwrap();
                s.reindex().unwrap();
                prop_assert_eq!(&kept, &s.projection_dump().unwrap(), "replica {} after step {}: {:?}", r, step, op);
            }
        }
    }
}
