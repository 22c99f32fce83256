//! Helpers shared by the store tests.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use sitesync_core::Store;
use sitesync_core::ids::{CrewId, SiteId, WorkItemId, WorkerId, parse_date};
use sitesync_core::labor::LaborEntry;
use sitesync_core::roster::{Crew, Roster, Site, WorkItem, Worker};
use sitesync_core::units::{Fen, Quantity, WorkDays};

/// The repository's fixtures folder.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// A fresh store in a temp dir with the small fixture slice's master data (and its 3 days of logs
/// when `logs`).
pub fn phone(dir: &tempfile::TempDir, name: &str, logs: bool) -> Store {
    let mut s = Store::open(dir.path().join(format!("{name}.sqlite3"))).unwrap();
    s.set_user(name).unwrap();
    if logs {
        s.import_dir(&fixtures().join("small")).unwrap();
    } else {
        let company = sitesync_core::import::read_json(&fixtures().join("small/company.json")).unwrap();
        s.import_company(&company).unwrap();
    }
    s
}

/// The fixture site.
pub fn hz() -> SiteId {
    SiteId::new("site-hz-01").unwrap()
}

/// A date.
pub fn d(s: &str) -> NaiveDate {
    parse_date(s).unwrap()
}

/// A worker id.
pub fn w(s: &str) -> WorkerId {
    WorkerId::new(s).unwrap()
}

/// A work item id.
pub fn wi(s: &str) -> WorkItemId {
    WorkItemId::new(s).unwrap()
}

/// An entry on the fixture site.
pub fn entry(date: &str, worker: &str, item: &str, days: &str) -> LaborEntry {
    sitesync_core::store::entry(hz(), d(date), w(worker), wi(item), WorkDays::parse(days).unwrap())
}

/// Sends every document each store has to the other, both ways.
pub fn exchange(a: &mut Store, b: &mut Store) {
    push(a, b);
    push(b, a);
}

/// Sends every document `from` has to `to`: what `to` lacks, as a sync would.
pub fn push(from: &mut Store, to: &mut Store) {
    for id in from.doc_ids().unwrap() {
        let since = to.heads(&id).unwrap();
        let bytes = from.export_changes(&id, &since).unwrap().unwrap();
        to.merge_changes(&id, &bytes).unwrap();
    }
}

/// A tiny roster for fast property tests: one crew, three workers, two work items.
pub fn tiny_roster() -> Roster {
    let site = SiteId::new("site-t").unwrap();
    let crew = CrewId::new("site-t/crew-1").unwrap();
    Roster {
        site: Site {
            id: site,
            code: "T".into(),
            name: "测试工地".into(),
            timezone: "Asia/Shanghai".into(),
        },
        crews: vec![Crew {
            id: crew.clone(),
            name: "甲班组".into(),
            leader: "甲".into(),
            trade: "mason".into(),
        }],
        workers: (1..=3)
            .map(|i| Worker {
                id: WorkerId::new(format!("t-{i}")).unwrap(),
                name: format!("工人{i}"),
                phone: String::new(),
                trade: "mason".into(),
                crew: crew.clone(),
                day_rate: Fen::new("r", 40_000 + i * 1_000).unwrap(),
                overtime_rate: Fen::new("r", 7_500).unwrap(),
                active: true,
                pending: false,
                bank: Default::default(),
            })
            .collect(),
        work_items: (1..=2)
            .map(|i| WorkItem {
                id: WorkItemId::new(format!("site-t/wi-{i}")).unwrap(),
                code: format!("{i}"),
                name: format!("部位{i}"),
                unit: "m³".into(),
                planned_quantity: Quantity::from_milli("q", 1_000_000).unwrap(),
                budget: Fen::new("b", 10_000_000).unwrap(),
                planned_start: None,
                planned_end: None,
            })
            .collect(),
        pending_workers: Vec::new(),
        rates: Vec::new(),
    }
}
