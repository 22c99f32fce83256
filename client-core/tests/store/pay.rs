//! Pay sheets (issue #20): the fixture company's September for one crew recomputed independently
//! from logs.json, pay.json and company.json; advances refused, locked and amended like lines.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;
use sitesync_core::Error;
use sitesync_core::Store;
use sitesync_core::ids::CrewId;
use sitesync_core::pay::{PieceRate, PieceScope};
use sitesync_core::store::NewAdvance;
use sitesync_core::units::Fen;

use crate::common::*;

fn read(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixtures().join(name)).unwrap()).unwrap()
}

/// Per worker: [work-days, hours, overtime, day pay, overtime pay, piece pay, advances, net].
type Figures = BTreeMap<String, [i64; 8]>;

/// The crew's September sheet, computed from the JSON files alone with the rules the module doc
/// states: day pay = work-days × rate half up, overtime pay = line cost − day pay; piece pay per
/// progress line = its quantity shared over that day's piecework lines by work-days, each share at
/// its worker's rate (worker, else crew, else site), rounded once for the line, largest remainder.
fn expected(crew: &str) -> Figures {
    let (company, logs, pay) = (read("company.json"), read("logs.json"), read("pay.json"));
    let site = company["sites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "site-hz-01")
        .unwrap();
    let mut crew_of = HashMap::new();
    let mut ot_rate = HashMap::new();
    for w in site["workers"].as_array().unwrap() {
        let id = w["id"].as_str().unwrap().to_string();
        crew_of.insert(id.clone(), w["crew"].as_str().unwrap().to_string());
        ot_rate.insert(id, w["overtime_rate_fen_per_hour"].as_i64().unwrap());
    }
    let piecework = |c: &str, item: &str, date: &str| {
        pay["piecework"].as_array().unwrap().iter().any(|s| {
            s["site"] == "site-hz-01"
                && s["crew"] == c
                && s["work_item"] == item
                && s["from"].as_str().unwrap() <= date
                && date <= s["to"].as_str().unwrap()
        })
    };
    let price = |worker: &str, item: &str, date: &str| -> i64 {
        let rates = pay["piece_rates"].as_array().unwrap();
        let find = |key: &str, value: &str| {
            rates.iter().find(|r| {
                r["work_item"] == item
                    && match key {
                        "" => r.get("crew").is_none() && r.get("worker").is_none(),
                        k => r.get(k).and_then(Value::as_str) == Some(value),
                    }
                    && r.get("from").and_then(Value::as_str).is_none_or(|f| f <= date)
            })
        };
        find("worker", worker)
            .or_else(|| find("crew", &crew_of[worker]))
            .or_else(|| find("", ""))
            .map_or(0, |r| r["price_fen"].as_i64().unwrap())
    };
    let mut out = Figures::new();
    for day in logs.as_array().unwrap() {
        let date = day["date"].as_str().unwrap();
        if day["site"] != "site-hz-01" || !date.starts_with("2026-09") {
            continue;
        }
        let lines = day["labor"].as_array().unwrap();
        for l in lines {
            let worker = l["worker"].as_str().unwrap();
            if crew_of[worker] != crew {
                continue;
            }
            let item = l["work_item"].as_str().unwrap();
            let (wd, rate, ot) = (
                l["work_days_centi"].as_i64().unwrap(),
                l["rate_fen"].as_i64().unwrap(),
                l["overtime_min"].as_i64().unwrap(),
            );
            let f = out.entry(worker.to_string()).or_default();
            f[0] += wd;
            f[1] += l["hours_min"].as_i64().unwrap();
            f[2] += ot;
            if !piecework(crew, item, date) {
                let day_pay = (wd * rate + 50) / 100;
                let cost = (wd * rate * 60 + ot * ot_rate[worker] * 100 + 3000) / 6000;
                f[3] += day_pay;
                f[4] += cost - day_pay;
            }
        }
        for p in day["progress"].as_array().unwrap() {
            let item = p["work_item"].as_str().unwrap();
            let q = i128::from(p["quantity_milli"].as_i64().unwrap());
            // (line id order = worker order: one line per worker and item a day)
            let mut shares: Vec<(String, i128, i128)> = lines
                .iter()
                .filter(|l| {
                    let w = l["worker"].as_str().unwrap();
                    l["work_item"] == item && piecework(&crew_of[w], item, date)
                })
                .map(|l| {
                    let w = l["worker"].as_str().unwrap().to_string();
                    let p = i128::from(price(&w, item, date));
                    (w, i128::from(l["work_days_centi"].as_i64().unwrap()), p)
                })
                .collect();
            if shares.is_empty() {
                continue;
            }
            shares.sort();
            let total_wd: i128 = shares.iter().map(|s| s.1).sum();
            let den = 1000 * total_wd;
            let nums: Vec<i128> = shares.iter().map(|(_, wd, p)| q * wd * p).collect();
            let exact: i128 = nums.iter().sum();
            let rounded = (2 * exact + den) / (2 * den);
            let mut fen: Vec<i128> = nums.iter().map(|n| n / den).collect();
            let mut order: Vec<usize> = (0..nums.len()).collect();
            order.sort_by_key(|i| (std::cmp::Reverse(nums[*i] % den), *i));
            let left = rounded - fen.iter().sum::<i128>();
            for i in order.into_iter().take(left as usize) {
                fen[i] += 1;
            }
            for ((w, ..), f) in shares.iter().zip(fen) {
                if crew_of[w] == crew {
                    out.entry(w.clone()).or_default()[5] += f as i64;
                }
            }
        }
    }
    for a in pay["advances"].as_array().unwrap() {
        let (w, date) = (a["worker"].as_str().unwrap(), a["date"].as_str().unwrap());
        if a["site"] == "site-hz-01" && date.starts_with("2026-09") && crew_of[w] == crew {
            out.entry(w.to_string()).or_default()[6] += a["amount_fen"].as_i64().unwrap();
        }
    }
    for f in out.values_mut() {
        f[7] = f[3] + f[4] + f[5] - f[6];
    }
    out
}

/// The full fixtures in a store, with hz-01's September submitted and approved.
fn september() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path().join("office.sqlite3")).unwrap();
    s.set_user("u-office").unwrap();
    s.import_dir(&fixtures()).unwrap();
    for date in d("2026-09-01").iter_days().take_while(|x| *x <= d("2026-09-30")) {
        if s.day(&hz(), date).unwrap().labor.is_empty() {
            continue;
        }
        s.submit_day(&hz(), date).unwrap();
        s.approve_day(&hz(), date).unwrap();
    }
    (dir, s)
}

#[test]
fn a_crews_september_pay_sheet_equals_an_independent_recomputation() {
    let (_dir, mut s) = september();
    for crew in ["site-hz-01/crew-3", "site-hz-01/crew-2", "site-hz-01/crew-1"] {
        let sheet = s
            .pay_sheet(&hz(), &CrewId::new(crew).unwrap(), d("2026-09-01"), d("2026-09-30"))
            .unwrap();
        assert!(sheet.unapproved.is_empty(), "{:?}", sheet.unapproved);
        assert!(sheet.unpriced.is_empty(), "{:?}", sheet.unpriced);
        let got: Figures = sheet
            .workers
            .iter()
            .map(|l| {
                let p = &l.pay;
                (
                    l.worker.to_string(),
                    [
                        p.work_days_centi,
                        p.hours_min,
                        p.overtime_min,
                        p.day_pay_fen,
                        p.overtime_pay_fen,
                        p.piece_pay_fen,
                        p.advances_fen,
                        p.net_fen,
                    ],
                )
            })
            .collect();
        let want = expected(crew);
        assert_eq!(got, want, "{crew}");
        let sum = |i: usize| want.values().map(|f| f[i]).sum::<i64>();
        assert_eq!(sheet.total.net_fen, sum(7), "{crew}");
        assert_eq!(sheet.total.piece_pay_fen, sum(5), "{crew}");
        if crew != "site-hz-01/crew-1" {
            // The fixtures make this crew's scaffolding piecework and hand it advances: the test
            // compares figures that exist.
            assert!(sheet.total.piece_pay_fen > 0 && sheet.total.day_pay_fen > 0, "{crew}");
            assert!(sheet.total.advances_fen > 0, "{crew}");
        }
    }
}

#[test]
fn piece_pay_by_work_item_is_the_sheets_piece_pay() {
    let (_dir, mut s) = september();
    let mut sheets = 0;
    for crew in ["site-hz-01/crew-2", "site-hz-01/crew-3"] {
        sheets += s
            .pay_sheet(&hz(), &CrewId::new(crew).unwrap(), d("2026-09-01"), d("2026-09-30"))
            .unwrap()
            .total
            .piece_pay_fen;
    }
    let approved = s.piece_pay_by_item(&hz(), d("2026-09-30"), true).unwrap();
    assert_eq!(
        approved.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
        ["site-hz-01/wi-3.2"]
    );
    assert_eq!(approved.values().sum::<i64>(), sheets);
    // Cost against budget books exactly this piecework on the item, beside its labor.
    let piece = sitesync_core::report::cost::piece_costs(&mut s, &hz(), d("2026-09-30"), true).unwrap();
    assert_eq!(piece, approved);
    let item = s
        .progress(&hz(), d("2026-09-30"), true)
        .unwrap()
        .into_iter()
        .find(|i| i.work_item.as_str() == "site-hz-01/wi-3.2")
        .unwrap();
    let cost = sitesync_core::report::cost::CostPerformance::of_item(&item, piece[&item.work_item]);
    assert_eq!(cost.piece_cost_fen, sheets);
    assert_eq!(cost.cost_fen, item.labor_cost_fen + sheets);
    // The item's labor cost is its day-labor lines alone: the piecework lines (all of September's
    // on wi-3.2 for crews 2 and 3) are paid by the piece above, not by the day as well.
    let rows = s
        .labor_rows(&sitesync_core::store::RowFilter {
            sites: Some(vec!["site-hz-01".into()]),
            from: None,
            to: Some(d("2026-09-30")),
            approved_only: true,
        })
        .unwrap();
    let on_item = |kind: &str| -> i64 {
        rows.iter()
            .filter(|l| l.work_item == "site-hz-01/wi-3.2" && l.kind == kind)
            .map(|l| l.cost_fen)
            .sum()
    };
    assert!(on_item("piecework") > 0, "September's piecework lines on wi-3.2");
    let day_labor = on_item("day_labor");
    assert_eq!(item.labor_cost_fen, day_labor);
    // As the days stand, the September days read the same (nothing changed since approval).
    assert_eq!(s.piece_pay_by_item(&hz(), d("2026-09-30"), false).unwrap(), approved);
    // Up to a date before any piecework: nothing.
    assert!(s.piece_pay_by_item(&hz(), d("2026-08-31"), true).unwrap().is_empty());
}

#[test]
fn piece_pay_adds_up_to_each_progress_lines_pay() {
    // One price site-wide: every progress line's pay, shared over both crews, sums to quantity ×
    // price rounded once.
    let (_dir, mut s) = september();
    let rate = PieceRate {
        work_item: wi("site-hz-01/wi-3.2"),
        scope: PieceScope::Site,
        price: Fen::new("price", 777).unwrap(),
        from: None,
    };
    for r in s.piece_rates(&hz()).unwrap() {
        // Narrower prices are replaced by the same price so only the site's applies.
        s.set_piece_rate(&hz(), &PieceRate { price: rate.price, ..r }).unwrap();
    }
    let logs = read("logs.json");
    let expected: i64 = logs
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["site"] == "site-hz-01" && d["date"].as_str().unwrap().starts_with("2026-09"))
        .flat_map(|d| d["progress"].as_array().unwrap().clone())
        .filter(|p| p["work_item"] == "site-hz-01/wi-3.2")
        .map(|p| (p["quantity_milli"].as_i64().unwrap() * 777 + 500) / 1000)
        .sum();
    let mut got = 0;
    for crew in ["site-hz-01/crew-2", "site-hz-01/crew-3"] {
        got += s
            .pay_sheet(&hz(), &CrewId::new(crew).unwrap(), d("2026-09-01"), d("2026-09-30"))
            .unwrap()
            .total
            .piece_pay_fen;
    }
    assert_eq!(got, expected);
}

#[test]
fn advances_are_checked_written_and_locked_with_the_day() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = phone(&dir, "崔贵", true);
    let new = |amount: i64, worker: &str| NewAdvance {
        site: hz(),
        date: d("2026-09-01"),
        worker: w(worker),
        amount: Fen::new("amount", amount).unwrap(),
        paid_by: String::new(),
        note: "生活费".into(),
    };
    assert!(matches!(
        s.add_advance(&new(0, "w-0001"), None),
        Err(Error::Invalid { field: "amount", .. })
    ));
    assert!(matches!(
        s.add_advance(&new(100, "w-9999"), None),
        Err(Error::UnknownWorker { .. })
    ));
    assert!(s.advances(&hz(), d("2026-09-01")).unwrap().is_empty());
    let a = s.add_advance(&new(50_000, "w-0001"), None).unwrap();
    assert_eq!(a.entered_by, "崔贵");
    assert_eq!(a.paid_by, "崔贵");
    assert_eq!(s.advances(&hz(), d("2026-09-01")).unwrap(), vec![a.clone()]);
    // Durable: a store opened again reads it.
    drop(s);
    let mut s = Store::open(dir.path().join("崔贵.sqlite3")).unwrap();
    assert_eq!(s.advances(&hz(), d("2026-09-01")).unwrap(), vec![a.clone()]);
    // Not approved yet: the sheet lists the day and counts nothing of it.
    let crew = s.roster(&hz()).unwrap().worker(&w("w-0001")).unwrap().crew.clone();
    let sheet = s.pay_sheet(&hz(), &crew, d("2026-09-01"), d("2026-09-30")).unwrap();
    assert!(sheet.unapproved.contains(&d("2026-09-01")));
    assert!(sheet.workers.iter().all(|l| l.pay.advances_fen == 0));
    s.submit_day(&hz(), d("2026-09-01")).unwrap();
    s.approve_day(&hz(), d("2026-09-01")).unwrap();
    let sheet = s.pay_sheet(&hz(), &crew, d("2026-09-01"), d("2026-09-01")).unwrap();
    let line = sheet.workers.iter().find(|l| l.worker == w("w-0001")).unwrap();
    assert_eq!(line.pay.advances_fen, 50_000);
    assert_eq!(
        line.pay.net_fen,
        line.pay.day_pay_fen + line.pay.overtime_pay_fen + line.pay.piece_pay_fen - 50_000
    );
    // Approved: locked like the lines; an amendment goes in, but the sheet keeps the approved version.
    assert!(matches!(
        s.add_advance(&new(10_000, "w-0001"), None),
        Err(Error::DayLocked { .. })
    ));
    s.add_advance(&new(10_000, "w-0001"), Some("forgot the second one"))
        .unwrap();
    let again = s.pay_sheet(&hz(), &crew, d("2026-09-01"), d("2026-09-01")).unwrap();
    assert_eq!(
        again
            .workers
            .iter()
            .find(|l| l.worker == w("w-0001"))
            .unwrap()
            .pay
            .advances_fen,
        50_000
    );
    // A range longer than a year is refused, a crew of no site too.
    assert!(s.pay_sheet(&hz(), &crew, d("2025-01-01"), d("2026-09-01")).is_err());
    assert!(matches!(
        s.pay_sheet(
            &hz(),
            &CrewId::new("site-hz-01/crew-99").unwrap(),
            d("2026-09-01"),
            d("2026-09-02")
        ),
        Err(Error::UnknownCrew { .. })
    ));
}
