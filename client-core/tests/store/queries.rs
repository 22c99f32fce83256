//! Offline queries over the fixtures, checked against sums computed independently from logs.json.

use std::collections::HashMap;

use serde_json::Value;
use sitesync_core::Store;
use sitesync_core::ids::CrewId;
use sitesync_core::report::GroupBy;

use crate::common::*;

/// Cost of one fixture line: work-days × rate + overtime × roster overtime rate, half up per line.
fn fixture_cost(line: &Value, ot_rate: i64) -> i64 {
    let num = line["work_days_centi"].as_i64().unwrap() * line["rate_fen"].as_i64().unwrap() * 60
        + line["overtime_min"].as_i64().unwrap() * ot_rate * 100;
    (num + 3000) / 6000
}

#[test]
fn totals_over_the_full_fixtures_match_an_independent_sum() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path().join("all.sqlite3")).unwrap();
    let summary = s.import_dir(&fixtures()).unwrap();
    assert_eq!(summary.sites, 3);
    assert_eq!(summary.days, 262);
    assert_eq!(summary.labor_lines, 11_946);

    let company: Value = serde_json::from_slice(&std::fs::read(fixtures().join("company.json")).unwrap()).unwrap();
    let logs: Value = serde_json::from_slice(&std::fs::read(fixtures().join("logs.json")).unwrap()).unwrap();
    let mut ot = HashMap::new();
    let mut crew_of = HashMap::new();
    for site in company["sites"].as_array().unwrap() {
        for w in site["workers"].as_array().unwrap() {
            ot.insert(
                w["id"].as_str().unwrap().to_string(),
                w["overtime_rate_fen_per_hour"].as_i64().unwrap(),
            );
            crew_of.insert(
                w["id"].as_str().unwrap().to_string(),
                w["crew"].as_str().unwrap().to_string(),
            );
        }
    }
    for site in ["site-hz-01", "site-sz-02", "site-nb-03"] {
        let (mut days, mut hours, mut overtime, mut cost, mut lines) = (0, 0, 0, 0, 0);
        let mut per_crew: HashMap<String, i64> = HashMap::new();
        for day in logs
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["site"] == site && d["date"].as_str().unwrap() < "2026-10-16")
        {
            for l in day["labor"].as_array().unwrap() {
                let worker = l["worker"].as_str().unwrap();
                let c = fixture_cost(l, ot[worker]);
                days += l["work_days_centi"].as_i64().unwrap();
                hours += l["hours_min"].as_i64().unwrap();
                overtime += l["overtime_min"].as_i64().unwrap();
                cost += c;
                lines += 1;
                *per_crew.entry(crew_of[worker].clone()).or_default() += c;
            }
        }
        let site_id = sitesync_core::ids::SiteId::new(site).unwrap();
        let t = s
            .totals(Some(&site_id), d("2026-09-01"), d("2026-10-15"), Some(GroupBy::Crew))
            .unwrap();
        assert_eq!(
            (
                t.total.work_days_centi,
                t.total.hours_min,
                t.total.overtime_min,
                t.total.cost_fen,
                t.total.lines
            ),
            (days, hours, overtime, cost, lines),
            "{site}"
        );
        for row in &t.rows {
            assert_eq!(row.sums.cost_fen, per_crew[&row.key], "{site} {}", row.key);
        }
    }
}

#[test]
fn crew_copy_logs_a_whole_crew_in_one_call() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = phone(&dir, "a", true);
    let crew = CrewId::new("site-hz-01/crew-1").unwrap();
    let roster = s.roster(&hz()).unwrap();
    let from = s.day(&hz(), d("2026-09-03")).unwrap();
    let in_crew: Vec<_> = from
        .labor
        .iter()
        .filter(|l| roster.worker(&l.worker).map(|w| &w.crew) == Some(&crew))
        .collect();
    assert!(!in_crew.is_empty());
    let copy = s.copy_crew_day(&hz(), &crew, d("2026-09-03"), d("2026-09-04")).unwrap();
    assert_eq!(copy.created.len(), in_crew.len());
    let to = s.day(&hz(), d("2026-09-04")).unwrap();
    assert_eq!(to.labor.len(), in_crew.len());
    for (a, b) in in_crew.iter().zip(&to.labor) {
        assert_eq!(
            (&a.worker, &a.work_item, a.work_days, a.overtime),
            (&b.worker, &b.work_item, b.work_days, b.overtime)
        );
    }
    // Copying again skips everyone already logged: exceptions are edited, never doubled.
    let again = s.copy_crew_day(&hz(), &crew, d("2026-09-03"), d("2026-09-04")).unwrap();
    assert!(again.created.is_empty());
    assert_eq!(again.skipped.len(), in_crew.len());
    assert_eq!(s.day(&hz(), d("2026-09-04")).unwrap().labor.len(), in_crew.len());
}

#[test]
fn worker_month_and_progress_to_date() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = phone(&dir, "a", true);
    let m = s.worker_month(&w("w-0001"), d("2026-09-15")).unwrap();
    assert_eq!(m.days.len(), 3);
    assert_eq!(m.total.lines, 3);
    assert_eq!(m.total.cost_fen, m.days.iter().map(|x| x.cost_fen).sum::<i64>());
    let p = s.progress_to_date(&hz(), d("2026-09-03")).unwrap();
    assert_eq!(p.len(), 9);
    let item = wi("site-hz-01/wi-2.1");
    let before = p.iter().find(|x| x.work_item == item).unwrap().quantity_to_date_milli;
    let q = sitesync_core::units::Quantity::parse("quantity", "12.5").unwrap();
    s.set_progress(&hz(), d("2026-09-04"), &item, q, "", None).unwrap();
    let after = s.progress_to_date(&hz(), d("2026-09-04")).unwrap();
    assert_eq!(
        after
            .iter()
            .find(|x| x.work_item == item)
            .unwrap()
            .quantity_to_date_milli,
        before + 12_500
    );
}

/// Editing work-days alone moves hours that were never set by hand (8 h a work-day); hours a person
/// typed stay.
#[test]
fn hours_follow_work_days_unless_set_by_hand() {
    use sitesync_core::labor::LaborPatch;
    use sitesync_core::units::{Minutes, WorkDays};

    let dir = tempfile::tempdir().unwrap();
    let mut s = phone(&dir, "foreman", true);
    let date = d("2026-09-03");
    let lines = s.day(&hz(), date).unwrap().labor;
    let defaulted = lines
        .iter()
        .find(|l| l.hours.minutes() == l.work_days.centi() * 480 / 100)
        .expect("a line with default hours")
        .clone();
    let half = LaborPatch {
        work_days: Some(WorkDays::parse("0.5").unwrap()),
        ..Default::default()
    };
    let edited = s.edit_labor(&defaulted.id, &half, None).unwrap();
    assert_eq!((edited.work_days.centi(), edited.hours.minutes()), (50, 240));

    // Hours typed by hand (9 h on a full day) stay when only the work-days change.
    let other = lines.iter().find(|l| l.id != defaulted.id).unwrap().clone();
    let by_hand = LaborPatch {
        work_days: Some(WorkDays::parse("1.0").unwrap()),
        hours: Some(Minutes::parse_hours("hours", "9").unwrap()),
        ..Default::default()
    };
    s.edit_labor(&other.id, &by_hand, None).unwrap();
    let edited = s.edit_labor(&other.id, &half, None).unwrap();
    assert_eq!((edited.work_days.centi(), edited.hours.minutes()), (50, 540));
}

/// A worker id on two sites' rosters under two names is one group when grouped by worker across
/// sites, labelled with the byte-wise greater name on SQLite and PostgreSQL alike (`MAX(label)`:
/// PostgreSQL refuses a bare label beside `GROUP BY`, and SQLite took it from whichever row its plan
/// happened to read).
#[test]
fn a_worker_named_twice_is_reported_under_the_greater_name() {
    use sitesync_core::ids::{SiteId, WorkItemId, WorkerId};
    use sitesync_core::units::WorkDays;

    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path().join("two.sqlite3")).unwrap();
    let first = tiny_roster();
    let mut second = tiny_roster();
    let crew = CrewId::new("site-u/crew-1").unwrap();
    second.site.id = SiteId::new("site-u").unwrap();
    second.crews[0].id = crew.clone();
    for w in &mut second.workers {
        w.crew = crew.clone();
    }
    for (i, item) in second.work_items.iter_mut().enumerate() {
        item.id = WorkItemId::new(format!("site-u/wi-{}", i + 1)).unwrap();
    }
    // The greater name on the second site: the bare label SQLite chose before was the first site's.
    second.workers[0].name = "工人一".into();
    assert!("工人一".as_bytes() > "工人1".as_bytes());
    s.put_roster(&first).unwrap();
    s.put_roster(&second).unwrap();
    let worker = WorkerId::new("t-1").unwrap();
    for roster in [&first, &second] {
        let line = sitesync_core::store::entry(
            roster.site.id.clone(),
            d("2026-09-01"),
            worker.clone(),
            roster.work_items[0].id.clone(),
            WorkDays::parse("1.0").unwrap(),
        );
        s.add_labor(&line, None).unwrap();
    }
    let t = s
        .totals(None, d("2026-09-01"), d("2026-09-01"), Some(GroupBy::Worker))
        .unwrap();
    assert_eq!(t.rows.len(), 1);
    assert_eq!((t.rows[0].key.as_str(), t.rows[0].label.as_str()), ("t-1", "工人一"));
    assert_eq!(t.rows[0].sums.lines, 2);
}
