//! Reports: totals and a worker's month, printed as people read them.

use sitesync_core::units::yuan;

use crate::common::{json, ok, small_store};

/// The last cell of the table's last row (the total row of `totals` and `month`).
fn total_cost(table: &str) -> String {
    let last = table.lines().last().unwrap();
    last.split("  ")
        .map(str::trim)
        .filter(|c| c.starts_with('¥'))
        .last()
        .unwrap()
        .to_string()
}

#[test]
fn money_in_tables_prints_like_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let store = small_store(dir.path());
    let range = ["--site", "site-hz-01", "--from", "2026-09-01", "--to", "2026-09-04"];

    let t = json(&store, &[&["totals"][..], &range, &["--json"]].concat());
    let cost = t["cost_fen"].as_i64().unwrap();
    assert!(
        cost > 100_000,
        "the range must cost over ¥1,000 to show a separator: {cost}"
    );
    let table = ok(&store, &[&["totals"][..], &range, &["--by", "crew"]].concat());
    assert_eq!(total_cost(&table), yuan(cost), "{table}");
    assert!(total_cost(&table).contains(','), "{table}");

    let m = json(&store, &["month", "--worker", "w-0001", "--month", "2026-09", "--json"]);
    let table = ok(&store, &["month", "--worker", "w-0001", "--month", "2026-09"]);
    let last = table.lines().last().unwrap();
    assert!(last.starts_with("total"), "{table}");
    assert!(last.ends_with(&yuan(m["cost_fen"].as_i64().unwrap())), "{table}");

    // Budgets run to millions: ¥7,346,436.00, not 7346436.00.
    let progress = ok(
        &store,
        &["progress", "list", "--site", "site-hz-01", "--date", "2026-09-04"],
    );
    let items = json(
        &store,
        &[
            "progress",
            "list",
            "--site",
            "site-hz-01",
            "--date",
            "2026-09-04",
            "--json",
        ],
    );
    let first = &items[0];
    let row = progress.lines().nth(1).unwrap();
    assert!(
        row.ends_with(&yuan(first["budget_fen"].as_i64().unwrap())),
        "{progress}"
    );
}
