//! Personal data at rest (#20, PIPL): after head office imports a roster with bank accounts, two
//! offline phones add the same worker with his ID card, and head office sets another account from
//! its phone, no ID-card or account number is anywhere in the server's storage in clear — not in
//! any file of its data directory (databases and their write-ahead logs), not in any row of its
//! PostgreSQL schemas, not in any value of any document's history — while head office still gets
//! the whole numbers and a foreman only masked ones. A phone that never synced cannot take a card;
//! a hostile phone pushing a clear card is refused and nothing of it is stored.

use std::path::Path;

use sitesync_core::Error;
use sitesync_core::ids::{DocId, DocKind, WorkerId};
use sitesync_core::import::Company;
use sitesync_core::store::NewWorker;
use sitesync_core::sync::protocol::DocResult;
use sitesync_core::units::Fen;
use sitesync_server::admin::import_company;
use sitesync_tests::crafted::Crafted;
use sitesync_tests::harness::{Api, RawClient, ServerDb, TestServer, fixtures, phone};

use crate::*;

const CARD: &str = "33010619900101123X";
/// Imported with the roster, on w-0001.
const IMPORTED_ACCOUNT: &str = "6222021234561234";
/// Set by head office from its phone, on w-0002.
const SET_ACCOUNT: &str = "6228480012345678901";
/// What a hostile phone pushes in clear.
const HOSTILE_CARD: &str = "11010119800101999X";

/// Every number that must not be stored in clear, as typed and lowercased.
fn needles() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for n in [CARD, IMPORTED_ACCOUNT, SET_ACCOUNT, HOSTILE_CARD] {
        out.push(n.as_bytes().to_vec());
        out.push(n.to_lowercase().into_bytes());
    }
    out
}

fn holds(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The files under `dir` (recursively) whose raw bytes hold one of `needles`, and how many files
/// were read.
fn files_holding(dir: &Path, needles: &[Vec<u8>]) -> (Vec<String>, usize) {
    let mut found = Vec::new();
    let mut read = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let Ok(bytes) = std::fs::read(&p) else { continue };
            read += 1;
            for n in needles {
                if holds(&bytes, n) {
                    found.push(format!("{} holds {}", p.display(), String::from_utf8_lossy(n)));
                }
            }
        }
    }
    (found, read)
}

/// Every text value ever written into any of the server's documents, whole history included
/// (document bytes may be deflated, so the raw scan alone could miss a value).
async fn every_value_ever(server: &TestServer) -> Vec<String> {
    server
        .store(|s| {
            let mut out = Vec::new();
            for id in s.doc_ids().unwrap() {
                let Some(bytes) = s.export_changes(&id, &[]).unwrap() else {
                    continue;
                };
                let doc = automerge::Automerge::load(&bytes).unwrap();
                for change in doc.get_changes(&[]) {
                    for op in change.decode().operations {
                        if let automerge::legacy::OpType::Put(v) = &op.action {
                            out.push(v.to_string());
                        }
                    }
                }
            }
            out
        })
        .await
}

/// Every row of every table of one of the server's databases, as text (for PostgreSQL: a dump of
/// the schema; byte columns are decoded from their hex).
async fn every_row(server: &TestServer, db: ServerDb) -> Vec<u8> {
    server
        .sql(db, |sql| {
            let tables = match sql.dialect() {
                sitesync_core::store::sql::Dialect::Postgres => sql.query(
                    "SELECT table_name::text FROM information_schema.tables
                     WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
                    &[],
                )?,
                _ => sql.query("SELECT name FROM sqlite_master WHERE type = 'table'", &[])?,
            };
            let mut out = Vec::new();
            for t in tables {
                let name = t.text(0)?;
                for row in sql.query(&format!("SELECT * FROM \"{name}\""), &[])? {
                    for v in row.0 {
                        use sitesync_core::store::sql::Value;
                        match v {
                            Value::Text(s) => out.extend(s.into_bytes()),
                            Value::Bytes(b) => out.extend(b),
                            Value::Int(i) => out.extend(i.to_string().into_bytes()),
                            _ => {}
                        }
                        out.push(0);
                    }
                }
            }
            Ok(out)
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_id_card_or_account_number_is_stored_in_clear_yet_head_office_reads_them_whole() {
    let server = TestServer::start().await;
    // Head office's roster import, with accounts: sealed as it enters the site document.
    let mut company: Company = read_json_fixture("company.json");
    let w1 = company.sites[0]
        .workers
        .iter_mut()
        .find(|w| w.id.as_str() == "w-0001")
        .unwrap();
    w1.bank_account = IMPORTED_ACCOUNT.into();
    w1.bank_name = "工商银行杭州分行".into();
    server
        .state
        .both(move |auth, store| import_company(auth, store, &company))
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let foreman_token = server.device("u-foreman-hz-01").await;
    let new = |phone: &str, card: &str| NewWorker {
        site: hz(),
        name: "李四".into(),
        phone: phone.into(),
        trade: "rebar".into(),
        crew: "site-hz-01/crew-1".parse().unwrap(),
        day_rate: Fen::new("r", 35_000).unwrap(),
        overtime_rate: Fen::new("r", 5_000).unwrap(),
        id_card: Some(card.into()),
    };
    // A phone that never synced has no org key: the card is refused with what to do.
    let mut fresh = phone(dir.path(), "fresh", &server.url(), &foreman_token);
    let company: Company = read_json_fixture("company.json");
    fresh.import_company(&company).unwrap();
    assert!(matches!(
        fresh.add_worker(&new("13900001111", CARD)),
        Err(Error::PiiKeyMissing)
    ));

    // Two phones that synced once add the same card offline: one worker.
    let mut a = phone(dir.path(), "a", &server.url(), &foreman_token);
    let mut b = phone(dir.path(), "b", &server.url(), &server.device("u-foreman-hz-01").await);
    a.set_user("崔贵").unwrap();
    b.set_user("崔贵").unwrap();
    sync(&mut a).await;
    sync(&mut b).await;
    let wa = a.add_worker(&new("13900001111", CARD)).unwrap();
    let wb = b.add_worker(&new("139 0000 2222", "330106 19900101123x")).unwrap();
    assert_eq!(wa, wb, "the same card, one worker");
    for p in [&mut a, &mut b] {
        let progress = sync(p).await;
        assert!(
            progress.refused.is_empty() && progress.refused_changes.is_empty(),
            "{progress:?}"
        );
    }
    let roster = server.store(|s| s.roster(&hz()).unwrap()).await;
    let added: Vec<_> = roster.pending_workers.iter().filter(|p| p.id == wa).collect();
    assert_eq!(added.len(), 1);
    assert_eq!(added[0].id_card_masked, "**************123X");

    // Head office sets w-0002's account from its phone.
    let office_token = server.device("u-office-1").await;
    let mut o = phone(dir.path(), "o", &server.url(), &office_token);
    sync(&mut o).await;
    let mut r = o.roster(&hz()).unwrap();
    let w2 = r.workers.iter_mut().find(|w| w.id.as_str() == "w-0002").unwrap();
    w2.bank = sitesync_core::bank::BankAccount::new(SET_ACCOUNT, "农业银行").unwrap();
    o.put_roster(&r).unwrap();
    let progress = sync(&mut o).await;
    assert!(
        progress.refused.is_empty() && progress.refused_changes.is_empty(),
        "{progress:?}"
    );

    // A hostile phone pushes a card in clear: refused, nothing stored.
    let mut raw = RawClient::connect(server.addr, &foreman_token).await.unwrap();
    raw.say_hello().await;
    let site = DocId::Site(hz()).to_string();
    let rec = format!("pending_workers:{}", WorkerId::fresh());
    let mut doc = Crafted::new(&site, DocKind::Site);
    for (field, value) in [
        ("name", "王五"),
        ("phone", "13900003333"),
        ("trade", "rebar"),
        ("crew", "site-hz-01/crew-1"),
        ("id_card", HOSTILE_CARD),
        ("added_by", "崔贵"),
        ("added_at", "2026-12-01T08:00:00+08:00"),
        ("status", "pending"),
        ("merged_into", ""),
    ] {
        doc.put("info", &rec, field, value);
    }
    doc.put("info", &rec, "day_rate_fen", 35_000i64)
        .put("info", &rec, "overtime_rate_fen", 5_000i64);
    let results = raw.push(vec![(site, doc.bytes())]).await;
    assert!(!matches!(&results[0], DocResult::Synced(_)), "{results:?}");
    let pending = server.store(|s| s.roster(&hz()).unwrap().pending_workers.len()).await;
    assert_eq!(pending, 1, "the hostile worker was not stored");

    // Nothing in clear: no value in any document's history ...
    let values = every_value_ever(&server).await;
    assert!(
        values.iter().any(|v| v.contains("李四")),
        "the history scan reads values"
    );
    let needles = needles();
    for v in &values {
        for n in &needles {
            assert!(!holds(v.as_bytes(), n), "a document holds {v:?}");
        }
    }
    // ... no row of either database (on PostgreSQL, its dump) ...
    let mut rows = every_row(&server, ServerDb::Documents).await;
    rows.extend(every_row(&server, ServerDb::Credentials).await);
    assert!(holds(&rows, "高平".as_bytes()), "the row scan reads the roster");
    for n in &needles {
        assert!(!holds(&rows, n), "a row holds {}", String::from_utf8_lossy(n));
    }
    // ... and no byte of any file of the data directory (SQLite databases with their logs; on
    // PostgreSQL it holds no database, and the rows above were the dump).
    let (found, read) = files_holding(server.data_dir(), &needles);
    let sqlite = server.data_dir().join("documents.sqlite3").exists();
    assert!(!sqlite || read >= 2, "{read} files read");
    assert!(found.is_empty(), "{found:?}");

    // Head office reads the whole numbers; a foreman's phone shows them masked.
    let office = Api::new(&server, &office_token);
    let listed = office
        .json("/v1/workers/pending", &[("site", "site-hz-01"), ("whole", "true")])
        .await;
    assert_eq!(listed["workers"][0]["id_card"], CARD, "{listed}");
    let listed = office.json("/v1/workers/pending", &[("site", "site-hz-01")]).await;
    assert!(listed["workers"][0].get("id_card").is_none(), "{listed}");
    assert_eq!(listed["workers"][0]["id_card_masked"], "**************123X");
    let secret = server.state.auth(|a| a.org_pii_secret("org-zhuyuan")).await.unwrap();
    let held = server.store(|s| s.roster(&hz()).unwrap()).await;
    let account = |id: &str| held.worker(&WorkerId::new(id).unwrap()).unwrap().bank_account().clone();
    assert_eq!(account("w-0001").open(&secret).unwrap(), IMPORTED_ACCOUNT);
    assert_eq!(account("w-0002").open(&secret).unwrap(), SET_ACCOUNT);
    sync(&mut a).await;
    let seen = a.roster(&hz()).unwrap();
    let on_phone = |id: &str| seen.worker(&WorkerId::new(id).unwrap()).unwrap().bank_account().clone();
    assert_eq!(on_phone("w-0001").number(), None);
    assert_eq!(on_phone("w-0001").masked(), "6222 **** **** 1234");
    assert_eq!(on_phone("w-0002").masked(), "6228 **** **** **** 8901");
    assert_eq!(seen.id_card_masked(&wa), "**************123X");
    let printed = serde_json::to_string(&seen).unwrap();
    for n in [CARD, IMPORTED_ACCOUNT, SET_ACCOUNT] {
        assert!(!printed.contains(n), "{printed}");
    }
}

fn read_json_fixture(name: &str) -> Company {
    sitesync_core::import::read_json(&fixtures().join(name)).unwrap()
}
