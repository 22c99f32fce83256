//! Pay periods (issue #20) through a real server on loopback, on the engine the run is set to:
//! closing refused while days are unapproved and allowed with `force` (the days left out listed), a
//! closed sheet unchanged after an amendment is approved and the amendment carried once as an
//! adjustment of the exact difference by the next period, a period paid once, the bank file with
//! the columns asked for and the whole account number while the sheet masks it, and foremen and
//! site managers refused; from a raw client, an account in clear, a malformed sealed one or a
//! foreman's refused by the gate.

use serde_json::json;
use sitesync_core::bank::BankAccount;
use sitesync_core::ids::{DocId, DocKind};
use sitesync_core::store::NewAdvance;
use sitesync_core::sync::protocol::DocResult;
use sitesync_core::units::Fen;
use sitesync_tests::crafted::Crafted;
use sitesync_tests::harness::{Api, RawClient, TestServer, phone};

use crate::*;

const CREW: &str = "site-hz-01/crew-1";

fn close_body(from: &str, to: &str, force: bool) -> serde_json::Value {
    json!({ "site": "site-hz-01", "crew": CREW, "from": from, "to": to, "force": force })
}

fn range<'a>(from: &'a str, to: &'a str) -> [(&'static str, &'a str); 4] {
    [("site", "site-hz-01"), ("crew", CREW), ("from", from), ("to", to)]
}

fn line<'a>(sheet: &'a serde_json::Value, worker: &str) -> &'a serde_json::Value {
    sheet["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["worker"] == worker)
        .unwrap_or_else(|| panic!("no line for {worker}: {sheet}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periods_close_stay_closed_carry_corrections_once_and_are_paid_once() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let token = server.device("u-foreman-hz-01").await;
    let mut f = phone(dir.path(), "f", &server.url(), &token);
    f.set_user("崔贵").unwrap();
    sync(&mut f).await;
    let office_token = server.device("u-office-1").await;
    let mut o = phone(dir.path(), "o", &server.url(), &office_token);
    sync(&mut o).await;
    // Head office puts w-0001's bank account on the roster (through the gate).
    let mut roster = o.roster(&hz()).unwrap();
    let w = roster.workers.iter_mut().find(|w| w.id.as_str() == "w-0001").unwrap();
    w.bank = BankAccount::new("6222 0212 3456 1234", "工商银行杭州分行").unwrap();
    o.put_roster(&roster).unwrap();
    sync(&mut o).await;

    let office = Api::new(&server, &office_token);
    let manager = Api::new(&server, &server.device("u-manager-hz-01").await);
    let foreman = Api::new(&server, &token);
    let approve =
        |date: &'static str| json!({ "decisions": [{ "site": "site-hz-01", "date": date, "decision": "approve" }] });
    // Period A, 11-16..11-22: the 20th approved, the 21st only submitted.
    for date in ["2026-11-20", "2026-11-21", "2026-11-24"] {
        f.add_labor(&entry(date, "w-0001", "site-hz-01/wi-4.1", "1.0"), None)
            .unwrap();
        f.submit_day(&hz(), d(date)).unwrap();
    }
    sync(&mut f).await;
    for date in ["2026-11-20", "2026-11-24"] {
        let (status, body) = manager.post("/v1/approvals", &approve(date)).await;
        assert_eq!(status, 200, "{body}");
    }

    // Head office only: a foreman and the site's manager are refused.
    for api in [&foreman, &manager] {
        let (status, body) = api
            .post("/v1/pay/close", &close_body("2026-11-16", "2026-11-22", true))
            .await;
        assert_eq!(status, 403, "{body}");
    }
    let (status, body) = office
        .post("/v1/pay/close", &close_body("2026-11-16", "2026-11-22", false))
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "unapproved_days");
    assert_eq!(body["dates"], json!(["2026-11-21"]));
    let (status, a) = office
        .post("/v1/pay/close", &close_body("2026-11-16", "2026-11-22", true))
        .await;
    assert_eq!(status, 201, "{a}");
    let period_a = a["closed"]["period"].as_str().unwrap().to_string();
    assert_eq!(a["closed"]["left_out"], json!(["2026-11-21"]));
    assert_eq!(a["closed"]["closed_by"].as_str().map(str::is_empty), Some(false));
    assert_eq!(a["closed"]["pins"][0]["date"], "2026-11-20");
    let net_a = line(&a, "w-0001")["net_fen"].as_i64().unwrap();
    assert_eq!(line(&a, "w-0001")["work_days_centi"], 100);
    assert_eq!(line(&a, "w-0001")["bank_account"], "6222 **** **** 1234");
    // Closing again answers the same period; an overlapping range is refused.
    let (status, again) = office
        .post("/v1/pay/close", &close_body("2026-11-16", "2026-11-22", true))
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["closed"]["period"], period_a.as_str());
    let (status, body) = office
        .post("/v1/pay/close", &close_body("2026-11-22", "2026-11-28", true))
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "overlaps_closed_period");

    // An advance entered on the 20th after the close, as an amendment, then approved.
    f.add_advance(
        &NewAdvance {
            site: hz(),
            date: d("2026-11-20"),
            worker: WorkerId::new("w-0001").unwrap(),
            amount: Fen::parse_yuan("amount", "123.45").unwrap(),
            paid_by: String::new(),
            note: "补录 entered late".into(),
        },
        Some("补录借支"),
    )
    .unwrap();
    sync(&mut f).await;
    let (status, body) = manager.post("/v1/approvals", &approve("2026-11-20")).await;
    assert_eq!(status, 200, "{body}");

    // The closed sheet is as it was closed.
    let still = office.json("/v1/pay", &range("2026-11-16", "2026-11-22")).await;
    assert_eq!(still, a, "the closed sheet changed");
    // The next period carries the exact difference, with what changed.
    let b = office.json("/v1/pay", &range("2026-11-23", "2026-11-29")).await;
    assert_eq!(b["adjustments"].as_array().unwrap().len(), 1, "{b}");
    let adj = &b["adjustments"][0];
    assert_eq!(adj["period"], period_a.as_str());
    assert_eq!(adj["worker"], "w-0001");
    assert_eq!(adj["advances_fen"], 12_345);
    assert_eq!(adj["net_fen"], -12_345);
    assert_eq!(adj["day_pay_fen"], 0);
    assert_eq!(adj["fields"], json!(["advances_fen", "net_fen"]));
    assert_eq!(adj["days"], json!(["2026-11-20"]));
    let lb = line(&b, "w-0001");
    assert_eq!(lb["adjustment_fen"], -12_345);
    assert_eq!(
        lb["net_fen"].as_i64().unwrap(),
        lb["day_pay_fen"].as_i64().unwrap() + lb["overtime_pay_fen"].as_i64().unwrap() - 12_345
    );
    assert_eq!(b["total"]["adjustment_fen"], -12_345);
    assert_eq!(line(&still, "w-0001")["net_fen"].as_i64().unwrap(), net_a);
    // Once B is closed carrying it, the adjustment is not carried again.
    let (status, closed_b) = office
        .post("/v1/pay/close", &close_body("2026-11-23", "2026-11-29", false))
        .await;
    assert_eq!(status, 201, "{closed_b}");
    assert_eq!(closed_b["adjustments"], b["adjustments"]);
    let c = office.json("/v1/pay", &range("2026-11-30", "2026-11-30")).await;
    assert_eq!(c["adjustments"], json!([]), "{c}");

    // Paid once: the same reference again answers the payment, another is refused.
    let paid = json!({ "period": period_a, "reference": "ICBC-20261201-001" });
    for api in [&foreman, &manager] {
        assert_eq!(api.post("/v1/pay/paid", &paid).await.0, 403);
    }
    let (status, p) = office.post("/v1/pay/paid", &paid).await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["closed"]["paid"]["reference"], "ICBC-20261201-001");
    assert_eq!(office.post("/v1/pay/paid", &paid).await.0, 200);
    let (status, body) = office
        .post(
            "/v1/pay/paid",
            &json!({ "site": "site-hz-01", "crew": CREW, "from": "2026-11-16", "to": "2026-11-22", "reference": "OTHER" }),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "already_paid");
    let (status, _) = office
        .post("/v1/pay/paid", &json!({ "period": "pp-nope", "reference": "X" }))
        .await;
    assert_eq!(status, 404);

    // The bank file: the columns asked for, in order; the whole number; closed periods only.
    let mut q = range("2026-11-23", "2026-11-29").to_vec();
    q.push(("columns", "account,name,amount,remark"));
    let (status, csv) = office.get("/v1/pay/bank", &q).await;
    assert_eq!(status, 200);
    let csv = String::from_utf8(csv).unwrap();
    let rows: Vec<&str> = csv.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(rows[0], "账号 account,户名 name,金额 amount,用途 remark", "{csv}");
    let net_b = line(&closed_b, "w-0001")["net_fen"].as_i64().unwrap();
    let name = line(&closed_b, "w-0001")["name"].as_str().unwrap().to_string();
    assert_eq!(
        rows[1],
        format!(
            "6222021234561234,{name},{}.{:02},工资 2026-11-23~2026-11-29",
            net_b / 100,
            net_b % 100
        ),
        "{csv}"
    );
    assert_eq!(rows.len(), 2, "{csv}");
    for api in [&foreman, &manager] {
        assert_eq!(api.get("/v1/pay/bank", &q).await.0, 403);
    }
    let mut open = range("2026-11-30", "2026-11-30").to_vec();
    open.push(("columns", "name"));
    let (status, body) = office.get("/v1/pay/bank", &open).await;
    assert_eq!(status, 409, "{}", String::from_utf8_lossy(&body));
    let mut bad = range("2026-11-23", "2026-11-29").to_vec();
    bad.push(("columns", "name,password"));
    assert_eq!(office.get("/v1/pay/bank", &bad).await.0, 400);
    // The sheet's CSV masks the number.
    let mut q = range("2026-11-23", "2026-11-29").to_vec();
    q.push(("format", "csv"));
    let csv = String::from_utf8(office.get("/v1/pay", &q).await.1).unwrap();
    assert!(
        csv.contains("6222 **** **** 1234") && !csv.contains("6222021234561234"),
        "{csv}"
    );
}

/// A site document writing w-0001's whole record with the account fields given.
fn bank_doc(account: &[(&str, &str)]) -> (String, Vec<u8>) {
    let site = DocId::Site(hz()).to_string();
    let w = "w-0001";
    let mut doc = Crafted::new(&site, DocKind::Site);
    doc.put("workers", w, "name", "高平")
        .put("workers", w, "phone", "")
        .put("workers", w, "trade", "rebar")
        .put("workers", w, "crew", CREW)
        .put("workers", w, "day_rate_fen", 43_000i64)
        .put("workers", w, "overtime_rate_fen", 8_062i64)
        .put("workers", w, "active", true)
        .put("workers", w, "bank_name", "农业银行");
    for (field, value) in account {
        doc.put("workers", w, field, *value);
    }
    (site, doc.bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_refuses_a_clear_malformed_or_foremans_bank_account_from_a_raw_client() {
    let server = TestServer::start().await;
    let raw = |user: &'static str| {
        let server = &server;
        async move {
            let mut c = RawClient::connect(server.addr, &server.device(user).await)
                .await
                .unwrap();
            c.say_hello().await;
            c
        }
    };
    let secret = server.state.auth(|a| a.org_pii_secret("org-zhuyuan")).await.unwrap();
    let key = secret.public("org-zhuyuan");
    let sealed = key.seal("62284800123456789").unwrap();
    let honest = [
        ("bank_account_sealed", sealed.as_str()),
        ("bank_account_masked", "6228 **** **** **** 6789"),
    ];
    let mut office = raw("u-office-1").await;
    let bad: [&[(&str, &str)]; 5] = [
        // In clear, even well formed and from head office (PIPL: sealed only).
        &[("bank_account", "6222021234561234")],
        &[honest[0], honest[1], ("bank_account", "62284800123456789")],
        // A seal that is not one, a mask that shows the whole number, a seal without a mask.
        &[("bank_account_sealed", "6222-ABCD-1234"), honest[1]],
        &[honest[0], ("bank_account_masked", "62284800123456789")],
        &[honest[0]],
    ];
    for fields in bad {
        let results = office.push(vec![bank_doc(fields)]).await;
        assert!(
            !matches!(&results[0], DocResult::Synced(_)),
            "{fields:?} was stored: {results:?}"
        );
    }
    let mut foreman = raw("u-foreman-hz-01").await;
    let results = foreman.push(vec![bank_doc(&honest)]).await;
    assert!(!matches!(&results[0], DocResult::Synced(_)), "{results:?}");
    let held = || {
        server.store(|s| {
            s.roster(&hz())
                .unwrap()
                .worker(&WorkerId::new("w-0001").unwrap())
                .unwrap()
                .bank_account()
                .clone()
        })
    };
    assert!(held().await.is_empty(), "{:?}", held().await);
    // Head office's honest one is stored sealed: masked to every reader, whole to the org's key.
    let results = office.push(vec![bank_doc(&honest)]).await;
    assert!(matches!(&results[0], DocResult::Synced(_)), "{results:?}");
    let held = held().await;
    assert_eq!(held.number(), None, "not held in clear");
    assert_eq!(held.open(&secret).unwrap(), "62284800123456789");
    assert_eq!(held.masked(), "6228 **** **** **** 6789");
}

/// `sitesync-server admin pay close|paid|bank` run these, with the checks of the HTTP handlers: a
/// foreman or an unknown user is refused, a close is answered once and then as closed, a bad
/// reference is refused before anything is recorded, a period is paid once, and the bank file is
/// the closed period's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_cli_closes_pays_and_pays_out_with_the_handlers_checks() {
    use sitesync_server::admin::pay::{Range, bank, close, paid};
    use sitesync_server::error::Error;
    let server = TestServer::start().await;
    let r = Range {
        site: "site-hz-01".into(),
        crew: CREW.into(),
        from: d("2026-10-01"),
        to: d("2026-10-31"),
    };
    let both = |user: &'static str, force: bool| {
        let r = r.clone();
        server.state.both(move |a, s| close(a, s, user, &r, force))
    };
    assert!(matches!(both("u-foreman-hz-01", true).await, Err(Error::Forbidden(_))));
    assert!(matches!(both("u-nobody", true).await, Err(Error::NotFound(_))));
    let (sheet, created) = both("u-office-1", true).await.unwrap();
    assert!(created && sheet.closed.is_some());
    let (again, created) = both("u-office-1", true).await.unwrap();
    assert!(!created);
    assert_eq!(
        again.closed.as_ref().unwrap().period,
        sheet.closed.as_ref().unwrap().period
    );

    let pay = |reference: &'static str| {
        let r = r.clone();
        server.state.auth(move |a| paid(a, "u-office-1", &r, reference))
    };
    assert!(matches!(pay(" ").await, Err(Error::BadRequest(_))));
    let done = pay("BANK-2026-10").await.unwrap();
    assert_eq!(done.closed.unwrap().paid.unwrap().reference, "BANK-2026-10");
    assert!(pay("BANK-OTHER").await.is_err(), "paid once");

    let r2 = r.clone();
    let csv = server
        .state
        .both(move |a, s| bank(a, s, "u-office-1", &r2, "name,amount"))
        .await
        .unwrap();
    let csv = String::from_utf8(csv).unwrap();
    assert!(csv.lines().next().unwrap().contains("amount"), "{csv}");
    let r3 = Range {
        to: d("2026-10-30"),
        ..r
    };
    let not_closed = server
        .state
        .both(move |a, s| bank(a, s, "u-office-1", &r3, "name,amount"))
        .await;
    assert!(not_closed.is_err(), "the bank file is a closed period's");
}
