//! Money owed from the command line (issue #20), exactly as the issue names the commands: an
//! advance, a piece rate, and the pay sheet, as a table, as JSON and printed (`--pdf`).

use std::path::Path;

use crate::common::{json, ok, sitesync, stderr};

#[test]
fn advance_piece_rate_and_pay_as_the_issue_names_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("office.sqlite3");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/small");
    ok(&store, &["import", fixtures.to_str().unwrap()]);
    let site = ["--site", "site-hz-01"];
    let out = ok(
        &store,
        &[
            "advance",
            site[0],
            site[1],
            "--worker",
            "w-0001",
            "--date",
            "2026-09-01",
            "--amount",
            "300.50",
            "--note",
            "生活费",
        ],
    );
    assert!(out.contains("w-0001") && out.contains("300.50"), "{out}");
    // A piecework line and its price: the day's progress on the item pays it.
    ok(
        &store,
        &["labor", "edit", &line(&store, "w-0001"), "--kind", "piecework"],
    );
    let out = ok(
        &store,
        &[
            "piece-rate",
            site[0],
            site[1],
            "--work-item",
            "site-hz-01/wi-4.1",
            "--price",
            "12.5",
            "--crew",
            "site-hz-01/crew-1",
        ],
    );
    assert!(out.contains("site-hz-01/wi-4.1@site-hz-01/crew-1"), "{out}");
    let pay = [
        "pay",
        site[0],
        site[1],
        "--crew",
        "site-hz-01/crew-1",
        "--from",
        "2026-09-01",
        "--to",
        "2026-09-30",
    ];
    // Nothing approved yet: the days are listed, nothing is counted.
    let sheet = json(&store, &[&pay[..], &["--json"]].concat());
    assert_eq!(sheet["workers"], serde_json::json!([]), "{sheet}");
    assert!(sheet["unapproved"].as_array().unwrap().contains(&"2026-09-01".into()));
    ok(&store, &["submit", site[0], site[1], "--date", "2026-09-01"]);
    ok(&store, &["approve", site[0], site[1], "--date", "2026-09-01"]);
    let sheet = json(&store, &[&pay[..], &["--json"]].concat());
    let w1 = sheet["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["worker"] == "w-0001")
        .unwrap()
        .clone();
    for field in [
        "work_days_centi",
        "day_pay_fen",
        "piece_pay_fen",
        "advances_fen",
        "net_fen",
    ] {
        assert!(w1[field].is_i64(), "{field}: {w1}");
    }
    assert_eq!(w1["advances_fen"], 30_050);
    assert_eq!(w1["day_pay_fen"], 0, "a piecework line is paid by the piece: {w1}");
    assert!(w1["piece_pay_fen"].as_i64().unwrap() > 0, "{w1}");
    assert_eq!(
        w1["net_fen"].as_i64().unwrap(),
        w1["piece_pay_fen"].as_i64().unwrap() + w1["overtime_pay_fen"].as_i64().unwrap() - 30_050
    );
    let table = ok(&store, &pay);
    assert!(table.contains("w-0001") && table.contains("advances"), "{table}");
    // Printed: the JSON's figures on the worker's row (read back with poppler where installed).
    let pdf = dir.path().join("pay.pdf");
    let out = ok(&store, &[&pay[..], &["--pdf", pdf.to_str().unwrap()]].concat());
    assert!(out.contains("pay.pdf"), "{out}");
    let bytes = std::fs::read(&pdf).unwrap();
    assert!(bytes.starts_with(b"%PDF-"));
    match std::process::Command::new("pdftotext")
        .args(["-layout", pdf.to_str().unwrap(), "-"])
        .output()
    {
        Ok(text) => {
            let text = String::from_utf8(text.stdout).unwrap();
            let row = text
                .lines()
                .find(|l| l.contains(w1["name"].as_str().unwrap()))
                .unwrap_or_else(|| panic!("{text}"));
            for field in ["piece_pay_fen", "advances_fen", "net_fen"] {
                let want = sitesync_core::units::yuan(w1[field].as_i64().unwrap());
                assert!(row.contains(&want), "{field} {want}: {row}");
            }
            assert!(row.contains("未签字"), "{row}");
        }
        Err(e) => assert!(
            std::env::var_os("SITESYNC_REQUIRE_POPPLER").is_none(),
            "pdftotext: {e} (install poppler-utils)"
        ),
    }
    // A negative amount and a zero one are refused, naming the amount.
    for amount in ["--amount=-5", "--amount=0"] {
        let out = sitesync(
            &store,
            &[
                "advance",
                site[0],
                site[1],
                "--worker",
                "w-0002",
                "--date",
                "2026-09-02",
                amount,
            ],
        );
        assert!(!out.status.success(), "{amount}");
        assert!(stderr(&out).contains("amount"), "{}", stderr(&out));
    }
}

/// The id of the worker's line on 2026-09-01 at wi-4.1, from the day's JSON.
fn line(store: &Path, worker: &str) -> String {
    let day = json(
        store,
        &["day", "--site", "site-hz-01", "--date", "2026-09-01", "--json"],
    );
    day["labor"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["worker"] == worker && l["work_item"] == "site-hz-01/wi-4.1")
        .map(|l| l["id"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("no line of {worker}: {day}"))
}
