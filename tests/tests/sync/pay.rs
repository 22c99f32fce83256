//! Money owed and paid (issue #20) through a real server: the gate refuses, from a crafted client
//! that skips the phone's checks, a foreman's piece rate, a negative or forged advance and an
//! advance on another site; an honest advance reaches the pay sheet of `GET /v1/pay` once its day is
//! approved, which head office and the site's managers read and foremen do not; the sheet printed
//! (`format=pdf`, and the phone's) reads back with the JSON's figures and the signature image.

use serde_json::json;
use sitesync_core::ids::{CrewId, DocId, DocKind};
use sitesync_core::pay::{PieceRate, PieceScope};
use sitesync_core::rules::Violation;
use sitesync_core::store::NewAdvance;
use sitesync_core::sync::protocol::{DocResult, Refusal};
use sitesync_core::units::Fen;
use sitesync_tests::crafted::Crafted;
use sitesync_tests::harness::{Api, RawClient, TestServer, phone};

use crate::*;

const DATE: &str = "2026-11-20";

/// A raw client of a new device of `user`, welcomed.
async fn raw(server: &TestServer, user: &str) -> RawClient {
    let mut c = RawClient::connect(server.addr, &server.device(user).await)
        .await
        .unwrap();
    c.say_hello().await;
    c
}

/// A day document of `site` holding one advance record written field by field.
fn advance_doc(site: &str, amount_fen: i64, entered_by: &str) -> (String, Vec<u8>) {
    let id = DocId::Day(site.parse().unwrap(), d(DATE));
    let rec = "adv-0123456789abcdef0123456789abcdef";
    let bytes = Crafted::day(&id)
        .put("day", rec, "worker", "w-0001")
        .put("day", rec, "amount_fen", amount_fen)
        .put("day", rec, "paid_by", "崔贵")
        .put("day", rec, "note", "")
        .put("day", rec, "entered_by", entered_by)
        .put("day", rec, "at", "2026-11-20T08:00:00+08:00")
        .put("day", rec, "deleted", false)
        .bytes();
    (id.to_string(), bytes)
}

fn refused_for(result: &DocResult) -> Vec<&'static str> {
    match result {
        DocResult::Partial { refused, .. } => refused.iter().map(|r| r.violation.rule()).collect(),
        DocResult::Refused {
            reason: Refusal::Invalid { .. },
            ..
        } => vec!["invalid"],
        _ => Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_refuses_forged_piece_rates_and_bad_advances_from_a_raw_client() {
    let server = TestServer::start().await;
    let mut foreman = raw(&server, "u-foreman-hz-01").await;

    // A piece rate is master data: a foreman's is refused as such.
    let site = DocId::Site(hz()).to_string();
    let rec = "piece-rate:site-hz-01/wi-4.1";
    // (A fresh actor each time: an actor is bound to the first device that pushes under it.)
    let rate = || {
        Crafted::new(&site, DocKind::Site)
            .put("info", rec, "work_item", "site-hz-01/wi-4.1")
            .put("info", rec, "crew", "")
            .put("info", rec, "worker", "")
            .put("info", rec, "price_fen", 99_999i64)
            .put("info", rec, "from", "")
            .bytes()
    };
    let results = foreman.push(vec![(site.clone(), rate())]).await;
    assert_eq!(refused_for(&results[0]), ["site.head_office_only"]);
    let rates = server.store(|s| s.piece_rates(&hz()).unwrap()).await;
    assert!(rates.is_empty(), "{rates:?}");
    // Head office's own is stored (the same record, from a head-office device).
    let mut office = raw(&server, "u-office-1").await;
    let results = office.push(vec![(site.clone(), rate())]).await;
    assert!(
        matches!(&results[0], DocResult::Synced(_)),
        "{:?}",
        refused_for(&results[0])
    );
    let rates = server.store(|s| s.piece_rates(&hz()).unwrap()).await;
    assert_eq!(rates.len(), 1);
    assert_eq!(rates[0].price.fen(), 99_999);

    // A negative advance, and one in another person's name, are refused; nothing of them is kept.
    let results = foreman.push(vec![advance_doc("site-hz-01", -500, "")]).await;
    assert_eq!(refused_for(&results[0]), ["invalid"]);
    let results = foreman.push(vec![advance_doc("site-hz-01", 50_000, "龙东江")]).await;
    assert_eq!(refused_for(&results[0]), ["author.forged"]);
    let held = server.store(|s| s.advances(&hz(), d(DATE)).unwrap()).await;
    assert!(held.is_empty(), "{held:?}");
    // An advance on a site the foreman has no grant for: the document is refused whole.
    let results = foreman.push(vec![advance_doc("site-sz-02", 50_000, "")]).await;
    assert!(
        matches!(
            &results[0],
            DocResult::Refused {
                reason: Refusal::Forbidden,
                ..
            }
        ),
        "{results:?}"
    );
    // The same advance, honest, on his own site, is stored.
    let results = foreman.push(vec![advance_doc("site-hz-01", 50_000, "崔贵")]).await;
    assert!(
        matches!(&results[0], DocResult::Synced(_)),
        "{:?}",
        refused_for(&results[0])
    );
    let held = server.store(|s| s.advances(&hz(), d(DATE)).unwrap()).await;
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].amount.fen(), 50_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_advance_and_piece_pay_reach_the_pay_sheet_head_office_reads() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let token = server.device("u-foreman-hz-01").await;
    let mut f = phone(dir.path(), "f", &server.url(), &token);
    f.set_user("崔贵").unwrap();
    sync(&mut f).await;
    let crew = CrewId::new("site-hz-01/crew-1").unwrap();
    f.add_labor(&entry(DATE, "w-0001", "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    let advance = f
        .add_advance(
            &NewAdvance {
                site: hz(),
                date: d(DATE),
                worker: WorkerId::new("w-0001").unwrap(),
                amount: Fen::parse_yuan("amount", "300").unwrap(),
                paid_by: String::new(),
                note: "生活费".into(),
            },
            None,
        )
        .unwrap();
    // The phone runs the server's rules before it writes: a foreman's piece rate never leaves it.
    let refused = f.set_piece_rate(
        &hz(),
        &PieceRate {
            work_item: WorkItemId::new("site-hz-01/wi-4.1").unwrap(),
            scope: PieceScope::Crew(crew.clone()),
            price: Fen::new("price", 1).unwrap(),
            from: None,
        },
    );
    assert!(
        matches!(
            refused,
            Err(sitesync_core::Error::NotAuthorized {
                violation: Violation::MasterData
            })
        ),
        "{refused:?}"
    );
    f.submit_day(&hz(), d(DATE)).unwrap();
    sync(&mut f).await;
    assert!(server.store(|s| s.piece_rates(&hz()).unwrap()).await.is_empty());

    let office = Api::new(&server, &server.device("u-office-1").await);
    let manager = Api::new(&server, &server.device("u-manager-hz-01").await);
    let foreman = Api::new(&server, &token);
    let q = [
        ("site", "site-hz-01"),
        ("crew", "site-hz-01/crew-1"),
        ("from", "2026-11-01"),
        ("to", "2026-11-30"),
    ];
    // Submitted, not approved: listed, not counted.
    let sheet = office.json("/v1/pay", &q).await;
    assert_eq!(sheet["unapproved"], json!([DATE]), "{sheet}");
    assert_eq!(sheet["workers"], json!([]), "{sheet}");
    let (status, body) = manager
        .post(
            "/v1/approvals",
            &json!({ "decisions": [{ "site": "site-hz-01", "date": DATE, "decision": "approve" }] }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    for api in [&office, &manager] {
        let sheet = api.json("/v1/pay", &q).await;
        assert_eq!(sheet["unapproved"], json!([]), "{sheet}");
        let line = &sheet["workers"][0];
        assert_eq!(line["worker"], "w-0001", "{sheet}");
        assert_eq!(line["work_days_centi"], 100);
        assert_eq!(line["advances_fen"], advance.amount.fen());
        assert_eq!(line["piece_pay_fen"], 0);
        let day_pay = line["day_pay_fen"].as_i64().unwrap();
        assert!(day_pay > 0);
        assert_eq!(line["net_fen"], day_pay - 30_000);
        assert_eq!(line["signoff"], "unsigned");
        assert_eq!(sheet["total"]["net_fen"], line["net_fen"]);
    }
    let (status, csv) = office
        .get("/v1/pay", &[q[0], q[1], q[2], q[3], ("format", "csv")])
        .await;
    assert_eq!(status, 200);
    let csv = String::from_utf8(csv).unwrap();
    assert!(
        csv.contains("借支 advances") && csv.contains("300.00") && csv.contains("未签 unsigned"),
        "{csv}"
    );
    let (status, xlsx) = office
        .get("/v1/pay", &[q[0], q[1], q[2], q[3], ("format", "xlsx")])
        .await;
    assert_eq!(status, 200);
    assert!(xlsx.starts_with(b"PK"));
    // Foremen do not read pay from the server; nobody reads another org's or an unknown crew's.
    assert_eq!(foreman.get("/v1/pay", &q).await.0, 403);
    let (status, _) = office
        .get("/v1/pay", &[q[0], ("crew", "site-hz-01/crew-99"), q[2], q[3]])
        .await;
    assert_eq!(status, 400);
}

/// Runs a poppler tool on `pdf`, or `None` where poppler is not installed (a failure where
/// `SITESYNC_REQUIRE_POPPLER` is set, as `.ci/run` sets it).
fn poppler(tool: &str, args: &[&str], pdf: &[u8]) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sheet.pdf");
    std::fs::write(&file, pdf).unwrap();
    let mut command = std::process::Command::new(tool);
    command.args(args).arg(&file);
    if tool == "pdftotext" {
        command.arg("-");
    }
    match command.output() {
        Ok(out) => {
            assert!(out.status.success(), "{tool}: {}", String::from_utf8_lossy(&out.stderr));
            Some(String::from_utf8(out.stdout).unwrap())
        }
        Err(e) => {
            assert!(
                std::env::var_os("SITESYNC_REQUIRE_POPPLER").is_none(),
                "{tool}: {e} (install poppler-utils)"
            );
            eprintln!("poppler-utils is not installed: the PDF is not read back");
            None
        }
    }
}

/// The printed sheet (`format=pdf`, and the phone's `pay --pdf`) carries the JSON sheet's figures
/// on each worker's row, the masked bank card, the CJK font embedded, and the month signature
/// image of the worker who signed his month with one (and "未签字" for the one who did not).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_printed_pay_sheet_has_the_json_figures_and_the_signature_image() {
    use sitesync_core::bank::BankAccount;
    use sitesync_core::store::Period;
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let token = server.device("u-foreman-hz-01").await;
    let mut f = phone(dir.path(), "f", &server.url(), &token);
    f.set_user("崔贵").unwrap();
    sync(&mut f).await;
    let office_token = server.device("u-office-1").await;
    let mut o = phone(dir.path(), "o", &server.url(), &office_token);
    sync(&mut o).await;
    let mut roster = o.roster(&hz()).unwrap();
    let w1 = roster.workers.iter_mut().find(|w| w.id.as_str() == "w-0001").unwrap();
    w1.bank = BankAccount::new("6222 0212 3456 1234", "工商银行杭州分行").unwrap();
    o.put_roster(&roster).unwrap();
    sync(&mut o).await;
    sync(&mut f).await;

    f.add_labor(&entry(DATE, "w-0001", "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    f.add_labor(&entry(DATE, "w-0002", "site-hz-01/wi-4.1", "0.5"), None)
        .unwrap();
    f.add_advance(
        &NewAdvance {
            site: hz(),
            date: d(DATE),
            worker: WorkerId::new("w-0001").unwrap(),
            amount: Fen::parse_yuan("amount", "300").unwrap(),
            paid_by: String::new(),
            note: String::new(),
        },
        None,
    )
    .unwrap();
    let png = crate::blobs::png(48);
    f.sign_off(
        &hz(),
        Period::Month(d(DATE)),
        &WorkerId::new("w-0001").unwrap(),
        Some(&png),
    )
    .unwrap();
    f.submit_day(&hz(), d(DATE)).unwrap();
    sync(&mut f).await;
    sitesync_core::sync::blobs::sync_blobs(&mut f, false).await.unwrap();
    let manager = Api::new(&server, &server.device("u-manager-hz-01").await);
    let (status, body) = manager
        .post(
            "/v1/approvals",
            &json!({ "decisions": [{ "site": "site-hz-01", "date": DATE, "decision": "approve" }] }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    sync(&mut f).await;

    let office = Api::new(&server, &office_token);
    let q = [
        ("site", "site-hz-01"),
        ("crew", "site-hz-01/crew-1"),
        ("from", "2026-11-01"),
        ("to", "2026-11-30"),
    ];
    let sheet = office.json("/v1/pay", &q).await;
    let (status, pdf) = office
        .get("/v1/pay", &[q[0], q[1], q[2], q[3], ("format", "pdf")])
        .await;
    assert_eq!(status, 200);
    assert!(pdf.starts_with(b"%PDF-"));
    assert_eq!(
        pdf.windows(15).filter(|w| w == b"/Subtype /Image").count(),
        1,
        "w-0001's month signature is drawn, w-0002 has none"
    );
    // The phone prints the same figures from its own approved days (no bank card: head office's).
    let phone_print = f
        .pay_sheet_print(
            &hz(),
            &CrewId::new("site-hz-01/crew-1").unwrap(),
            d("2026-11-01"),
            d("2026-11-30"),
        )
        .unwrap();
    let phone_pdf = sitesync_core::report::pdf::pay_sheets(&[phone_print]).unwrap();
    assert_eq!(phone_pdf.pages, 1);
    assert_eq!(
        phone_pdf.bytes.windows(15).filter(|w| w == b"/Subtype /Image").count(),
        1,
        "the signing phone holds the image"
    );

    let yuan = |v: &serde_json::Value| sitesync_core::units::yuan(v.as_i64().unwrap());
    for (bytes, from_server) in [(&pdf, true), (&phone_pdf.bytes, false)] {
        let Some(text) = poppler("pdftotext", &["-layout"], bytes) else {
            return;
        };
        assert!(text.contains("工资表") && text.contains("未结账"), "{text}");
        let workers = sheet["workers"].as_array().unwrap();
        assert_eq!(workers.len(), 2, "{sheet}");
        for w in workers {
            let name = w["name"].as_str().unwrap();
            let row = text
                .lines()
                .find(|l| l.contains(name))
                .unwrap_or_else(|| panic!("{name} not in {text}"));
            for field in [
                "day_pay_fen",
                "overtime_pay_fen",
                "piece_pay_fen",
                "advances_fen",
                "net_fen",
            ] {
                assert!(row.contains(&yuan(&w[field])), "{field} of {name}: {row}");
            }
            let days = sitesync_core::units::fixed(w["work_days_centi"].as_i64().unwrap(), 2);
            assert!(row.contains(&days), "{row}");
            if from_server && w["worker"] == "w-0001" {
                assert!(
                    row.contains("6222 **** **** 1234") && !text.contains("6222021234561234"),
                    "{row}"
                );
            }
            if w["worker"] == "w-0002" {
                assert!(row.contains("未签字"), "{row}");
            }
        }
        let total = text.lines().find(|l| l.contains("合计")).unwrap();
        assert!(total.contains(&yuan(&sheet["total"]["net_fen"])), "{total}");
        // Nobody confirmed the advance: payroll sees the deduction lacks the signature.
        assert!(sheet["total"]["advances_unconfirmed"].as_i64().unwrap() > 0, "{sheet}");
        assert!(
            text.contains("未经本人签认的借支") && text.contains(&yuan(&sheet["total"]["advances_unconfirmed_fen"])),
            "{text}"
        );
        let fonts = poppler("pdffonts", &[], bytes).unwrap();
        let cjk = fonts
            .lines()
            .find(|l| l.contains("NotoSansCJKsc"))
            .unwrap_or_else(|| panic!("{fonts}"));
        assert!(
            cjk.contains("yes yes yes"),
            "embedded, subset, with a Unicode map: {fonts}"
        );
    }
    // The format is head office's and the managers' like the JSON; a foreman is refused.
    let foreman = Api::new(&server, &token);
    assert_eq!(
        foreman
            .get("/v1/pay", &[q[0], q[1], q[2], q[3], ("format", "pdf")])
            .await
            .0,
        403
    );
}
