//! The phone's store encrypted at rest (SQLCipher): a wrong, missing or misplaced key is a typed
//! error, and no file of an encrypted store holds a worker's ID-card number or name in clear, the
//! write-ahead log included.

use std::path::Path;

use sitesync_core::ids::CrewId;
use sitesync_core::store::{NewWorker, StoreKey, StoreKeyProblem, cipher};
use sitesync_core::units::Fen;
use sitesync_core::{Error, Store};

use crate::common::*;

const CARD: &str = "33010619900101123X";
const NAME: &str = "王秘密";

fn key(b: u8) -> StoreKey {
    StoreKey::from_bytes([b; 32])
}

/// A store at `path` (encrypted with `k` when given) holding the fixture company and a worker
/// added with an ID card.
fn store_with_card(path: &Path, k: Option<&StoreKey>) -> Store {
    let mut s = Store::open_keyed(path, k).unwrap();
    s.set_user("foreman").unwrap();
    let company = sitesync_core::import::read_json(&fixtures().join("small/company.json")).unwrap();
    s.import_company(&company).unwrap();
    // As the first sync leaves it: the org's key, to seal the card with.
    s.set_org_pii_key(&sitesync_core::pii::OrgPiiSecret::generate().unwrap().public("org"))
        .unwrap();
    s.add_worker(&NewWorker {
        site: hz(),
        name: NAME.into(),
        phone: "13900001111".into(),
        trade: "rebar".into(),
        crew: CrewId::new("site-hz-01/crew-1").unwrap(),
        day_rate: Fen::new("r", 35_000).unwrap(),
        overtime_rate: Fen::new("r", 5_000).unwrap(),
        id_card: Some(CARD.into()),
    })
    .unwrap();
    s
}

/// Which of `needles` appear in the raw bytes of any file in `dir`, and the files scanned.
fn found_in(dir: &Path, needles: &[&[u8]]) -> (Vec<String>, Vec<String>) {
    let mut found = Vec::new();
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if !p.is_file() {
            continue;
        }
        let bytes = std::fs::read(&p).unwrap();
        files.push(p.file_name().unwrap().to_string_lossy().into_owned());
        for n in needles {
            if bytes.windows(n.len()).any(|w| w == *n) {
                found.push(format!("{} in {}", String::from_utf8_lossy(n), p.display()));
            }
        }
    }
    (found, files)
}

fn problem(r: Result<Store, Error>) -> StoreKeyProblem {
    match r {
        Err(Error::StoreKey { problem, .. }) => problem,
        other => panic!("expected a store-key error, got {other:?}"),
    }
}

#[test]
fn a_build_with_the_feature_links_sqlcipher() {
    if cfg!(feature = "sqlcipher") {
        assert!(cipher::available());
    }
}

#[test]
fn wrong_missing_and_misplaced_keys_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.sqlite3");
    if !cipher::available() {
        // Without SQLCipher a key is refused, never ignored into a clear file.
        assert_eq!(
            problem(Store::open_keyed(&path, Some(&key(1)))),
            StoreKeyProblem::Unavailable
        );
        return;
    }
    drop(store_with_card(&path, Some(&key(1))));
    assert_eq!(problem(Store::open_keyed(&path, Some(&key(2)))), StoreKeyProblem::Wrong);
    assert_eq!(problem(Store::open(&path)), StoreKeyProblem::Required);
    let mut s = Store::open_keyed(&path, Some(&key(1))).unwrap();
    assert!(s.roster(&hz()).unwrap().workers.iter().any(|w| w.name == NAME));
    // A second handle (the file sync beside the document sync) opens with the same key.
    drop(s.reopen().unwrap());

    let clear = dir.path().join("clear.sqlite3");
    drop(Store::open(&clear).unwrap());
    assert_eq!(
        problem(Store::open_keyed(&clear, Some(&key(1)))),
        StoreKeyProblem::NotEncrypted
    );
}

#[test]
fn no_file_of_an_encrypted_store_holds_the_id_card_or_name_in_clear() {
    if !cipher::available() {
        return;
    }
    let needles: [&[u8]; 2] = [CARD.as_bytes(), NAME.as_bytes()];
    // The control: a clear store does hold them, so the scan below can find them.
    let clear = tempfile::tempdir().unwrap();
    let s = store_with_card(&clear.path().join("phone.sqlite3"), None);
    let (found, _) = found_in(clear.path(), &needles);
    assert!(!found.is_empty(), "the scan finds nothing even in a clear store");
    drop(s);

    let dir = tempfile::tempdir().unwrap();
    let s = store_with_card(&dir.path().join("phone.sqlite3"), Some(&key(1)));
    // While open, the latest writes are in the -wal file.
    let (found, files) = found_in(dir.path(), &needles);
    assert!(files.iter().any(|f| f.ends_with("-wal")), "{files:?}");
    assert!(found.is_empty(), "{found:?}");
    drop(s);
    let (found, _) = found_in(dir.path(), &needles);
    assert!(found.is_empty(), "{found:?}");
}
