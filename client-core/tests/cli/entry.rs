//! What the CLI checks while a day is entered: dates written one way, warnings that do not stop the
//! entry, hours that follow work-days.

use chrono::Days;

use crate::common::{add_line, json, sitesync, small_store, stderr};

fn add(store: &std::path::Path, date: &str, worker: &str, work_days: &str) -> std::process::Output {
    add_line(store, "site-hz-01", date, worker, work_days)
}

#[test]
fn a_date_not_written_yyyy_mm_dd_is_refused_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let store = small_store(dir.path());
    for (date, hint) in [
        ("2026-12-1", "(2026-12-01?)"),
        ("2026-9-03", "(2026-09-03?)"),
        ("20260903", "e.g. 2026-12-01"),
        ("03.09.2026", "e.g. 2026-12-01"),
    ] {
        let out = add(&store, date, "w-0001", "1.0");
        assert_eq!(out.status.code(), Some(2), "{date}");
        let err = stderr(&out);
        assert!(err.contains("YYYY-MM-DD") && err.contains(hint), "{date}: {err}");
    }
    let day = json(
        &store,
        &["day", "--site", "site-hz-01", "--date", "2026-12-01", "--json"],
    );
    assert!(day["labor"].as_array().unwrap().is_empty());

    let out = sitesync(&store, &["month", "--worker", "w-0001", "--month", "2026-9"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("YYYY-MM"), "{}", stderr(&out));
    let out = sitesync(&store, &["history", "--site", "site-hz-01", "--date", "2026-9-3"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn zero_work_days_and_dates_far_ahead_are_warned_of_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = small_store(dir.path());

    let out = add(&store, "2026-09-05", "w-0001", "0");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).starts_with("warning: 0 work-days"), "{}", stderr(&out));

    // A month ahead of today at the site (Asia/Shanghai): a typo more often than a plan.
    let ahead = chrono::Utc::now().date_naive().checked_add_days(Days::new(30)).unwrap();
    let out = add(&store, &ahead.to_string(), "w-0002", "1.0");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.starts_with("warning: ") && err.contains("days after today at the site"),
        "{err}"
    );

    // Today, and an ordinary entry: nothing to say.
    let out = add(&store, "today", "w-0003", "1.0");
    assert!(out.status.success() && stderr(&out).is_empty(), "{}", stderr(&out));

    // Both were kept.
    for (date, worker) in [("2026-09-05".to_string(), "w-0001"), (ahead.to_string(), "w-0002")] {
        let day = json(&store, &["day", "--site", "site-hz-01", "--date", &date, "--json"]);
        assert_eq!(day["labor"][0]["worker"], worker, "{date}");
    }
}

#[test]
fn editing_work_days_brings_default_hours_along_and_says_what_became_of_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = small_store(dir.path());
    let out = add(&store, "2026-09-05", "w-0001", "1.0");
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let line = || json(&store, &["labor", "show", &id, "--json"])["line"].clone();
    assert_eq!(line()["hours_min"], 480);

    // Default hours follow the work-days: 1.00 → 0.50 is 8 h → 4 h, and stderr says so.
    let out = sitesync(&store, &["labor", "edit", &id, "--work-days", "0.5"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("hours 8h → 4h to match 0.50 work-days"),
        "{}",
        stderr(&out)
    );
    assert_eq!(line()["work_days_centi"], 50);
    assert_eq!(line()["hours_min"], 240);
    let t = json(
        &store,
        &[
            "totals",
            "--site",
            "site-hz-01",
            "--from",
            "2026-09-05",
            "--to",
            "2026-09-05",
            "--json",
        ],
    );
    assert_eq!(
        (t["work_days_centi"].clone(), t["hours_min"].clone()),
        (50.into(), 240.into())
    );

    // Hours given: they win, and there is nothing to explain.
    let out = sitesync(&store, &["labor", "edit", &id, "--work-days", "1.0", "--hours", "7.5"]);
    assert!(out.status.success() && stderr(&out).is_empty(), "{}", stderr(&out));
    assert_eq!(line()["hours_min"], 450);

    // An edit that leaves work-days alone leaves hours alone, silently.
    let out = sitesync(&store, &["labor", "edit", &id, "--note", "二层"]);
    assert!(out.status.success() && stderr(&out).is_empty(), "{}", stderr(&out));
    assert_eq!(line()["hours_min"], 450);

    // Hours set by hand stay when the work-days change, and stderr says that too.
    let out = sitesync(&store, &["labor", "edit", &id, "--work-days", "0.5"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("hours stay 7h30, set by hand"),
        "{}",
        stderr(&out)
    );
    assert_eq!(line()["hours_min"], 450);
}
