//! Property tests: random interleavings of operations on three replicas, synced at random moments and
//! finally merged in a random order, always converge to one state, with one line per worker-day.

use std::collections::BTreeSet;

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
    },
    EditNote {
        r: usize,
        date: usize,
        worker: usize,
        item: usize,
        note: usize,
    },
    Delete {
        r: usize,
        date: usize,
        worker: usize,
        item: usize,
    },
    Weather {
        r: usize,
        date: usize,
        weather: usize,
    },
    Progress {
        r: usize,
        date: usize,
        item: usize,
        milli: i64,
    },
    Submit {
        r: usize,
        date: usize,
    },
    Sync {
        from: usize,
        to: usize,
    },
}

const NOTES: &[&str] = &["", "下雨提前收工", "搬运材料", "补记"];
const WEATHER: &[&str] = &["晴", "多云", "小雨"];

fn op() -> impl Strategy<Value = Op> {
    let r = 0..3usize;
    let date = 0..2usize;
    let worker = 0..3usize;
    let item = 0..2usize;
    let centi = prop_oneof![Just(25i64), Just(50), Just(100), Just(150)];
    prop_oneof![
        4 => (r.clone(), date.clone(), worker.clone(), item.clone(), centi.clone())
            .prop_map(|(r, date, worker, item, centi)| Op::Add { r, date, worker, item, centi }),
        2 => (r.clone(), date.clone(), worker.clone(), item.clone(), centi)
            .prop_map(|(r, date, worker, item, centi)| Op::EditDays { r, date, worker, item, centi }),
        2 => (r.clone(), date.clone(), worker.clone(), item.clone(), 0..NOTES.len())
            .prop_map(|(r, date, worker, item, note)| Op::EditNote { r, date, worker, item, note }),
        1 => (r.clone(), date.clone(), worker.clone(), item.clone())
            .prop_map(|(r, date, worker, item)| Op::Delete { r, date, worker, item }),
        1 => (r.clone(), date.clone(), 0..WEATHER.len()).prop_map(|(r, date, weather)| Op::Weather { r, date, weather }),
        1 => (r.clone(), date.clone(), item, 0..50_000i64).prop_map(|(r, date, item, milli)| Op::Progress { r, date, item, milli }),
        1 => (r.clone(), date).prop_map(|(r, date)| Op::Submit { r, date }),
        2 => (r.clone(), r).prop_map(|(from, to)| Op::Sync { from, to }),
    ]
}

fn site() -> SiteId {
    SiteId::new("site-t").unwrap()
}

fn date(i: usize) -> chrono::NaiveDate {
    d("2026-12-01") + chrono::Days::new(i as u64)
}

fn ids(worker: usize, item: usize) -> (WorkerId, WorkItemId) {
    (
        WorkerId::new(format!("t-{}", worker + 1)).unwrap(),
        WorkItemId::new(format!("site-t/wi-{}", item + 1)).unwrap(),
    )
}

/// One-way sync: everything `from` has that `to` lacks.
fn push(stores: &mut [Store], from: usize, to: usize) {
    if from == to {
        return;
    }
    let (lo, hi) = stores.split_at_mut(from.max(to));
    let (a, b) = if from < to {
        (&mut lo[from], &mut hi[0])
    } else {
        (&mut hi[0], &mut lo[to])
    };
    crate::common::push(a, b);
}

fn apply(stores: &mut [Store], op: &Op) {
    let patch_line = |s: &mut Store, date_i: usize, worker: usize, item: usize, patch: LaborPatch| {
        let (w, i) = ids(worker, item);
        let id = LineId::labor(&site(), date(date_i), &w, &i);
        let doc = sitesync_core::ids::DocId::Day(site(), date(date_i));
        let before = s.heads(&doc).unwrap();
        // Refusals (unknown line, deleted line, over 24 h) are part of the game; they must not write.
        if s.edit_labor(&id, &patch, None).is_err() {
            assert_eq!(s.heads(&doc).unwrap(), before);
        }
    };
    match *op {
        Op::Add {
            r,
            date: di,
            worker,
            item,
            centi,
        } => {
            let (w, i) = ids(worker, item);
            let e = sitesync_core::store::entry(site(), date(di), w, i, WorkDays::from_centi(centi).unwrap());
            let _ = stores[r].add_labor(&e, None);
        }
        Op::EditDays {
            r,
            date: di,
            worker,
            item,
            centi,
        } => {
            let patch = LaborPatch {
                work_days: Some(WorkDays::from_centi(centi).unwrap()),
                ..Default::default()
            };
            patch_line(&mut stores[r], di, worker, item, patch);
        }
        Op::EditNote {
            r,
            date: di,
            worker,
            item,
            note,
        } => {
            let patch = LaborPatch {
                note: Some(NOTES[note].to_string()),
                ..Default::default()
            };
            patch_line(&mut stores[r], di, worker, item, patch);
        }
        Op::Delete {
            r,
            date: di,
            worker,
            item,
        } => {
            let (w, i) = ids(worker, item);
            let _ = stores[r].delete_labor(&LineId::labor(&site(), date(di), &w, &i), None);
        }
        Op::Weather { r, date: di, weather } => {
            let _ = stores[r].set_day_info(&site(), date(di), Some(WEATHER[weather]), None, None);
        }
        Op::Progress {
            r,
            date: di,
            item,
            milli,
        } => {
            let (_, i) = ids(0, item);
            let q = Quantity::from_milli("q", milli).unwrap();
            let _ = stores[r].set_progress(&site(), date(di), &i, q, "", None);
        }
        Op::Submit { r, date: di } => {
            let _ = stores[r].submit_day(&site(), date(di));
        }
        Op::Sync { from, to } => push(stores, from, to),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn three_replicas_converge(ops in proptest::collection::vec(op(), 1..40), order in Just([0usize, 1, 2]).prop_shuffle()) {
        let dir = tempfile::tempdir().unwrap();
        let mut stores: Vec<Store> = (0..3)
            .map(|i| {
                let mut s = Store::open(dir.path().join(format!("r{i}.sqlite3"))).unwrap();
                s.set_user(&format!("r{i}")).unwrap();
                s
            })
            .collect();
        stores[0].put_roster(&tiny_roster()).unwrap();
        push(&mut stores, 0, 1);
        push(&mut stores, 0, 2);
        for op in &ops {
            apply(&mut stores, op);
        }
        // Merge everything in a random order: a ring twice reaches every replica.
        for _ in 0..2 {
            for k in 0..3 {
                push(&mut stores, order[k], order[(k + 1) % 3]);
            }
        }
        for di in 0..2 {
            let sheets: Vec<_> = stores.iter_mut().map(|s| s.day(&site(), date(di)).unwrap()).collect();
            prop_assert_eq!(&sheets[0], &sheets[1]);
            prop_assert_eq!(&sheets[1], &sheets[2]);
            let keys: BTreeSet<_> = sheets[0].labor.iter().map(|l| (l.worker.clone(), l.work_item.clone())).collect();
            prop_assert_eq!(keys.len(), sheets[0].labor.len(), "one line per worker, work item and day");
        }
        let totals: Vec<_> = stores.iter().map(|s| s.totals(Some(&site()), date(0), date(1), None).unwrap()).collect();
        prop_assert_eq!(&totals[0], &totals[1]);
        prop_assert_eq!(&totals[1], &totals[2]);
    }
}
