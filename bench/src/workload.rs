//! The data the benchmarks push: real site-day documents built by the client library from the
//! fixture company, and small one-entry edits made on top of them by other devices.
//!
//! Since protocol v2 every change is signed by the device that made it, and the server checks the
//! signer's rights on each one: a site's days are written by a store of its foreman (its key is
//! registered to a device of that foreman, see `server::DataDir`), and each simulated device makes
//! its edits under its own key and signs each change once, as a phone does.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use automerge::transaction::Transactable;
use automerge::{Automerge, ObjType, ROOT, ReadDoc, Value};
use chrono::Duration;
use sitesync_core::Store;
use sitesync_core::ids::DocId;
use sitesync_core::import::{Company, LogDay, LogLabor};
use sitesync_core::signing::{ChangeSig, Keypair};

/// The fixture company and its 90 days of logs.
pub struct Fixtures {
    /// Sites, crews, workers, work items, users.
    pub company: Company,
    /// One entry per site-day.
    pub days: Vec<LogDay>,
}

impl Fixtures {
    /// Reads `DIR/company.json` and `DIR/logs.json`.
    pub fn read(dir: &Path) -> Result<Fixtures> {
        let company = sitesync_core::import::read_json(&dir.join("company.json"))?;
        let mut days: Vec<LogDay> = sitesync_core::import::read_json(&dir.join("logs.json"))?;
        // Day by day, the sites interleaved, so that any first `n` days cover every site.
        days.sort_by(|a, b| (a.date, a.site.as_str()).cmp(&(b.date, b.site.as_str())));
        Ok(Fixtures { company, days })
    }

    /// `count` distinct site-days: the fixture days in order, then again a year (52 weeks) earlier,
    /// and so on, so that weekdays stay what they were.
    pub fn many_days(&self, count: usize) -> Vec<LogDay> {
        (0..count)
            .map(|k| {
                let mut d = self.days[k % self.days.len()].clone();
                d.date -= Duration::weeks(52 * (k / self.days.len()) as i64);
                d
            })
            .collect()
    }

    /// `count` days of one site, repeating its fixture days a year earlier each round.
    pub fn site_days(&self, site: &str, count: usize) -> Vec<LogDay> {
        let own: Vec<&LogDay> = self.days.iter().filter(|d| d.site.as_str() == site).collect();
        (0..count)
            .map(|k| {
                let mut d = own[k % own.len()].clone();
                d.date -= Duration::weeks(52 * (k / own.len()) as i64);
                d
            })
            .collect()
    }

    /// Site-days with exactly `entries` labor lines each: a fixture day's lines, topped up with other
    /// workers of the site on its first work item (or cut).
    pub fn days_with_entries(&self, count: usize, entries: usize) -> Vec<LogDay> {
        self.many_days(count)
            .into_iter()
            .map(|mut d| {
                let site = self
                    .company
                    .sites
                    .iter()
                    .find(|s| s.id == d.site)
                    .expect("fixture site");
                for w in &site.workers {
                    if d.labor.len() >= entries {
                        break;
                    }
                    if d.labor.iter().any(|l| l.worker == w.id) {
                        continue;
                    }
                    d.labor.push(LogLabor {
                        worker: w.id.clone(),
                        work_item: site.work_items[0].id.clone(),
                        work_days_centi: 100,
                        hours_min: 480,
                        overtime_min: 0,
                        kind: "day_labor".into(),
                        rate_fen: w.day_rate_fen,
                        note: String::new(),
                    });
                }
                d.labor.truncate(entries);
                d
            })
            .collect()
    }
}

/// A phone of the realistic company: the user holding it and the site it works on.
#[derive(Debug, Clone)]
pub struct Phone {
    pub user: String,
    pub site: String,
}

impl Fixtures {
    /// The realistic company of issue #18: the fixture company widened to `sites` sites, each with
    /// `phones` phone users (the site's foreman and crew leaders, each granted that site) and its
    /// first `days` fixture days. Sites past the three fixture ones are copies of fixture site
    /// `k % 3` under the id `site-x{k:03}` (crews, work items and days re-keyed; workers keep their
    /// ids, which are looked up in their site's roster only). Head office (`u-office-1`, every site)
    /// is the fixture's. Returns the company and its phones, site by site.
    pub fn widened(&self, sites: usize, phones: usize, days: usize) -> Result<(Fixtures, Vec<Phone>)> {
        anyhow::ensure!(phones >= 1 && days >= 1, "a site needs a phone and a day");
        let mut company = self.company.clone();
        let fixture_sites = self.company.sites.clone();
        anyhow::ensure!(!fixture_sites.is_empty(), "the fixture company has no site");
        company.sites.truncate(sites);
        let mut all_days = Vec::new();
        let mut out = Vec::new();
        for k in 0..sites {
            let source = &fixture_sites[k % fixture_sites.len()];
            let old = source.id.as_str();
            let new = if k < fixture_sites.len() {
                old.to_string()
            } else {
                format!("site-x{k:03}")
            };
            // Re-keyed through JSON: every id of a site's roster and days starts with the site's.
            let rekey = |json: String| json.replace(&format!("\"{old}"), &format!("\"{new}"));
            if k >= fixture_sites.len() {
                let mut site: sitesync_core::import::CompanySite =
                    serde_json::from_str(&rekey(serde_json::to_string(source)?))?;
                site.code = format!("X-{k:03}");
                site.name = format!("{} {k}", source.name);
                company.sites.push(site);
            }
            let own: Vec<&LogDay> = self.days.iter().filter(|d| d.site.as_str() == old).take(days).collect();
            anyhow::ensure!(own.len() == days, "fixture site {old} has fewer than {days} days");
            for d in own {
                all_days.push(serde_json::from_str::<LogDay>(&rekey(serde_json::to_string(d)?))?);
            }
            let foreman = crate::server::foreman_of(&new);
            for p in 0..phones {
                let user = if p == 0 {
                    foreman.clone()
                } else {
                    format!("u-crew-{}-{p}", new.trim_start_matches("site-"))
                };
                if !company.users.iter().any(|u| u.id == user) {
                    company.users.push(sitesync_core::import::User {
                        id: user.clone(),
                        name: format!("班组长 {k}-{p}"),
                        role: "foreman".into(),
                        sites: sitesync_core::import::SiteGrant::Some(vec![sitesync_core::ids::SiteId::new(&new)?]),
                    });
                }
                out.push(Phone {
                    user,
                    site: new.clone(),
                });
            }
        }
        Ok((
            Fixtures {
                company,
                days: all_days,
            },
            out,
        ))
    }
}

/// One site-day document as a phone would push it the first time.
#[derive(Clone)]
pub struct DayDoc {
    pub id: DocId,
    pub site: String,
    /// Labor lines in it.
    pub lines: usize,
    /// The whole document (`save()`).
    pub bytes: Vec<u8>,
    /// Its heads, hex.
    pub heads: Vec<String>,
    /// A signature for each change, by the site foreman's store that wrote it.
    pub sigs: Vec<ChangeSig>,
}

impl DayDoc {
    /// The key that signed the document: its writer's store's.
    pub fn writer_key(&self) -> Option<[u8; 32]> {
        self.sigs.first().map(|s| s.key)
    }
}

/// Builds the documents of `days` with the client library, each site's days in a scratch store in
/// `dir` that writes as the site's foreman.
pub fn build_days(dir: &Path, fixtures: &Fixtures, days: &[LogDay]) -> Result<Vec<DayDoc>> {
    let mut by_site: HashMap<String, Vec<LogDay>> = HashMap::new();
    for d in days {
        by_site.entry(d.site.to_string()).or_default().push(d.clone());
    }
    let mut built: HashMap<DocId, DayDoc> = HashMap::with_capacity(days.len());
    for (site, site_days) in by_site {
        let path = dir.join(format!("generator-{site}.sqlite3"));
        let mut store = Store::open(&path)?;
        store.set_user(&crate::server::foreman_of(&site))?;
        // Its own site's roster only: a company of a hundred sites would write a hundred rosters
        // into each generator store, and a day document holds nothing of the other sites.
        let mut own = fixtures.company.clone();
        own.sites.retain(|s| s.id.as_str() == site);
        store.import_company(&own)?;
        store.import_logs(&site_days).context("building site-days")?;
        for d in &site_days {
            let id = DocId::Day(d.site.clone(), d.date);
            let (bytes, sigs) = store.export_signed(&id, &[])?.context("generated day missing")?;
            let doc = DayDoc {
                site: site.clone(),
                lines: d.labor.len(),
                heads: store.heads(&id)?,
                id: id.clone(),
                bytes,
                sigs,
            };
            built.insert(id, doc);
        }
        drop(store);
        std::fs::remove_file(&path).ok();
    }
    days.iter()
        .map(|d| {
            built
                .remove(&DocId::Day(d.site.clone(), d.date))
                .context("generated day missing")
        })
        .collect()
}

/// A chain of one-entry edits to one document by one device (its own Automerge actor): each edit
/// changes one labor line's note, as a foreman fixing a line would.
pub struct Edits {
    pub id: DocId,
    /// Heads before each edit, then after the last one (`heads[k]` → `heads[k + 1]` is edit `k`).
    pub heads: Vec<Vec<String>>,
    /// Each edit's change bytes (`save_after` the previous heads).
    pub changes: Vec<Vec<u8>>,
    /// Each edit's signature, by the device that made it.
    pub sigs: Vec<ChangeSig>,
}

/// `count` successive one-entry edits of `doc` made by a new actor of the device holding `key`, each
/// change signed once with it.
pub fn edits(doc: &DayDoc, count: usize, seed: u64, key: &Keypair) -> Result<Edits> {
    let mut am = Automerge::load(&doc.bytes)?;
    am.set_actor(key.new_actor());
    let doc_id = doc.id.to_string();
    let labor = match am.get(ROOT, "labor")? {
        Some((Value::Object(ObjType::Map), id)) => id,
        _ => anyhow::bail!("{} has no labor table", doc.id),
    };
    let notes: Vec<String> = am.keys(&labor).filter(|k| k.ends_with(".note")).collect();
    anyhow::ensure!(!notes.is_empty(), "{} has no labor lines", doc.id);
    let mut heads = vec![hex(&am.get_heads())];
    let mut changes = Vec::with_capacity(count);
    let mut sigs = Vec::with_capacity(count);
    for k in 0..count {
        let before = am.get_heads();
        let note = &notes[(seed as usize + k) % notes.len()];
        let mut tx = am.transaction();
        tx.put(&labor, note.as_str(), format!("补记 {seed}-{k}"))?;
        let (hash, _) = tx.commit();
        sigs.push(key.sign_change(&doc_id, hash.context("an edit makes a change")?.0));
        changes.push(am.save_after(&before));
        heads.push(hex(&am.get_heads()));
    }
    Ok(Edits {
        id: doc.id.clone(),
        heads,
        changes,
        sigs,
    })
}

fn hex(heads: &[automerge::ChangeHash]) -> Vec<String> {
    heads.iter().map(|h| h.to_string()).collect()
}
