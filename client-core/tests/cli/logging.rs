//! Logging a day: labor lines, crew copies, totals, and input refused before anything is written.

use std::path::Path;

use crate::common::{json, ok, sitesync};

#[test]
fn a_foreman_logs_a_crew_day_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("phone.sqlite3");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/small");
    let out = ok(&store, &["import", fixtures.to_str().unwrap()]);
    assert!(out.starts_with("imported 1 site, 53 workers, 3 days, "), "{out}");

    let site = ["--site", "site-hz-01"];
    let id = ok(
        &store,
        &[
            "labor",
            "add",
            site[0],
            site[1],
            "--date",
            "2026-09-04",
            "--worker",
            "w-0001",
            "--work-item",
            "site-hz-01/wi-4.1",
            "--work-days",
            "1.0",
            "--hours",
            "8",
            "--overtime",
            "0.5",
            "--note",
            "二层",
        ],
    );
    let id = id.trim().to_string();
    assert!(id.starts_with('L'), "{id}");

    let copy = ok(
        &store,
        &[
            "crew",
            "copy",
            site[0],
            site[1],
            "--crew",
            "site-hz-01/crew-1",
            "--from",
            "2026-09-03",
            "--to",
            "2026-09-04",
        ],
    );
    assert!(copy.starts_with("copied "), "{copy}");

    let day = json(&store, &["day", site[0], site[1], "--date", "2026-09-04", "--json"]);
    let lines = day["labor"].as_array().unwrap();
    let mine = lines.iter().find(|l| l["id"] == id.as_str()).unwrap();
    assert_eq!(mine["work_days_centi"], 100);
    assert_eq!(mine["hours_min"], 480);
    assert_eq!(mine["overtime_min"], 30);
    assert_eq!(mine["rate_fen"], 43_000);
    assert_eq!(mine["cost_fen"], 43_000 + 4_031);
    assert_eq!(mine["note"], "二层");
    // w-0001 was already logged, so the copy skipped them: one line, not two.
    assert_eq!(lines.iter().filter(|l| l["worker"] == "w-0001").count(), 1);
    assert!(ok(&store, &["day", site[0], site[1], "--date", "2026-09-04"]).contains("高平"));

    ok(&store, &["labor", "edit", &id, "--work-days", "0.5", "--overtime", "0"]);
    let t = json(
        &store,
        &[
            "totals",
            site[0],
            site[1],
            "--from",
            "2026-09-04",
            "--to",
            "2026-09-04",
            "--json",
        ],
    );
    let day = json(&store, &["day", site[0], site[1], "--date", "2026-09-04", "--json"]);
    assert_eq!(t["lines"], day["labor"].as_array().unwrap().len());
    assert_eq!(t["cost_fen"], day["totals"]["cost_fen"]);
    let by_crew = json(
        &store,
        &[
            "totals",
            site[0],
            site[1],
            "--from",
            "2026-09-01",
            "--to",
            "2026-09-04",
            "--by",
            "crew",
            "--json",
        ],
    );
    let rows = by_crew["rows"].as_array().unwrap();
    assert_eq!(
        rows.iter().map(|r| r["cost_fen"].as_i64().unwrap()).sum::<i64>(),
        by_crew["cost_fen"].as_i64().unwrap()
    );
    for field in ["work_days_centi", "hours_min", "overtime_min", "cost_fen", "lines"] {
        assert!(rows[0][field].is_i64(), "{field}");
    }
    for by in ["day", "trade", "worker"] {
        ok(
            &store,
            &[
                "totals",
                site[0],
                site[1],
                "--from",
                "2026-09-01",
                "--to",
                "2026-09-04",
                "--by",
                by,
            ],
        );
    }

    ok(&store, &["labor", "rm", &id]);
    let day = json(&store, &["day", site[0], site[1], "--date", "2026-09-04", "--json"]);
    assert!(day["labor"].as_array().unwrap().iter().all(|l| l["id"] != id.as_str()));
}

#[test]
fn bad_input_is_a_clear_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("phone.sqlite3");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/small");
    ok(&store, &["import", fixtures.to_str().unwrap()]);
    let before = ok(
        &store,
        &["day", "--site", "site-hz-01", "--date", "2026-09-01", "--json"],
    );
    let (d, w) = ("2026-09-01", "w-0002");
    for (args, says) in [
        (vec!["--date", d, "--worker", w, "--work-days", "4"], "outside 0–3"),
        (
            vec!["--date", d, "--worker", w, "--work-days", "1", "--hours", "25"],
            "outside 0–24 hours",
        ),
        (
            vec!["--date", "2026-02-30", "--worker", w, "--work-days", "1"],
            "not a calendar date",
        ),
        (vec!["--date", d, "--worker", w, "--work-days", "abc"], "not a number"),
        (
            vec!["--date", d, "--worker", "w-9999", "--work-days", "1"],
            "not on the roster",
        ),
        (
            vec!["--date", d, "--worker", w, "--work-days", "1", "--rate", "-5"],
            "negative",
        ),
        (
            vec!["--date", d, "--worker", w, "--work-days", "1", "--rate", "100000.01"],
            "invalid rate",
        ),
        (
            vec!["--date", "+10000-01-01", "--worker", w, "--work-days", "1"],
            "invalid date",
        ),
        (
            vec!["--date", "1999-12-31", "--worker", w, "--work-days", "1"],
            "invalid date",
        ),
    ] {
        let mut all = vec![
            "labor",
            "add",
            "--site",
            "site-hz-01",
            "--work-item",
            "site-hz-01/wi-4.1",
        ];
        all.extend(args);
        let out = sitesync(&store, &all);
        assert_eq!(out.status.code(), Some(2), "{all:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{all:?}: {err}");
    }
    assert_eq!(
        ok(
            &store,
            &["day", "--site", "site-hz-01", "--date", "2026-09-01", "--json"]
        ),
        before
    );
}
