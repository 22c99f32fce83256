//! Scenario 3, the phone's cost: a store holding a year of one site's logs; open it, render today's
//! sheet, log one line. Measured in a child process (this binary as `client-child`) so that its peak
//! memory is the store's alone; a store holding a month is measured the same way, to show memory
//! follows the documents in use, not the documents stored.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::NaiveDate;
use sitesync_core::Store;
use sitesync_core::ids::SiteId;
use sitesync_core::units::WorkDays;

use crate::workload::Fixtures;

/// What the phone side cost.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ClientCost {
    /// Site-days in the store.
    pub days: usize,
    /// Labor lines in the store.
    pub lines: usize,
    /// Store size on disk (database and WAL), bytes.
    pub store_bytes: u64,
    /// Opening the store, ms (median of 5).
    pub open_ms: f64,
    /// Today's sheet right after opening (the document loaded from disk), ms.
    pub sheet_first_ms: f64,
    /// Today's sheet again (median of 20), ms.
    pub sheet_ms: f64,
    /// Logging one line, durable, ms (median of 5).
    pub log_ms: f64,
    /// Resident memory after opening, MiB.
    pub rss_open_mib: f64,
    /// Peak resident memory of the whole run, MiB.
    pub peak_mib: f64,
}

/// Builds stores of `days` days of one site and measures each in a child process.
pub fn client(fixtures: &Fixtures, sizes: &[usize]) -> Result<Vec<ClientCost>> {
    let site = "site-hz-01";
    let mut out = Vec::new();
    for &days in sizes {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("phone.sqlite3");
        let logs = fixtures.site_days(site, days);
        let today = logs.iter().map(|d| d.date).max().context("no days")?;
        let lines = logs.iter().map(|d| d.labor.len()).sum();
        {
            let mut s = Store::open(&path)?;
            s.set_user("u-foreman-hz-01")?;
            s.import_company(&fixtures.company)?;
            s.import_logs(&logs)?;
        }
        let output = Command::new(std::env::current_exe()?)
            .args(["client-child", "--store"])
            .arg(&path)
            .args(["--site", site, "--date", &today.to_string()])
            .output()?;
        anyhow::ensure!(
            output.status.success(),
            "client child failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut cost: ClientCost = serde_json::from_slice(&output.stdout)?;
        cost.days = days;
        cost.lines = lines;
        cost.store_bytes = disk_size(dir.path())?;
        out.push(cost);
    }
    Ok(out)
}

fn disk_size(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for e in std::fs::read_dir(dir)? {
        total += e?.metadata()?.len();
    }
    Ok(total)
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1000.0
}

fn rss_mib() -> Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .context("no VmRSS")?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kib / 1024.0)
}

/// The child's side: the measurements on one store, printed as JSON.
pub fn client_child(store: PathBuf, site: String, date: NaiveDate) -> Result<()> {
    let site = SiteId::new(site)?;
    let mut opens = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let s = Store::open(&store)?;
        opens.push(t.elapsed());
        drop(s);
    }
    let mut s = Store::open(&store)?;
    let rss_open_mib = rss_mib()?;
    let t = Instant::now();
    let sheet = s.day(&site, date)?;
    let sheet_first = t.elapsed();
    anyhow::ensure!(!sheet.labor.is_empty(), "today's sheet is empty");
    let mut sheets = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        std::hint::black_box(s.day(&site, date)?);
        sheets.push(t.elapsed());
    }
    // Log lines for workers not on today's sheet yet.
    let roster = s.roster(&site)?;
    let item = roster.work_items.first().context("no work items")?.id.clone();
    let free: Vec<_> = roster
        .workers
        .iter()
        .filter(|w| !sheet.labor.iter().any(|l| l.worker == w.id && l.work_item == item))
        .take(5)
        .map(|w| w.id.clone())
        .collect();
    let mut logs = Vec::new();
    for w in free {
        let e = sitesync_core::store::entry(site.clone(), date, w, item.clone(), WorkDays::from_centi(100)?);
        let t = Instant::now();
        s.add_labor(&e, None)?;
        logs.push(t.elapsed());
    }
    let peak = crate::server::peak_rss_mib(std::process::id())?;
    let cost = ClientCost {
        open_ms: median(opens),
        sheet_first_ms: sheet_first.as_secs_f64() * 1000.0,
        sheet_ms: median(sheets),
        log_ms: median(logs),
        rss_open_mib,
        peak_mib: peak,
        ..ClientCost::default()
    };
    println!("{}", serde_json::to_string(&cost)?);
    Ok(())
}
