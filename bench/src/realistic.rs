//! The realistic company of issue #18, beside the three-site worst case: 1,000 phones over 100 sites
//! (10 a site, each editing its own site's days), 20 head-office devices that sync every site, and
//! 5 head-office dashboards. A dashboard is what the head-office browser opens: the page's
//! `/v1/events` stream (server-sent events, one "change" with the change cursor at most twice a
//! second), not a sync connection; see `dashboard.rs`.
//!
//! Two phases on one server, as a working day has them: the steady state (every phone one
//! one-entry edit every 10 s, each phone its own site-day so that no simulated phone pushes on a
//! base it has not merged), then the morning rush (every phone, offline overnight, reconnects within
//! a jitter and pushes edits of several of its site's days, overlapping with its site-mates').
//! Each phase ends when every phone holds the final heads of every touched day of its site, every
//! head-office device those of every touched day, and every dashboard has had an event covering
//! the last change: that moment is the fan-out's "all hold all".
//!
//! The 10,000 idle devices: connected, said hello, and then only answering pings; the server's
//! resident memory per connected device is the figure.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::future::join_all;
use sitesync_core::signing::Keypair;
use sitesync_core::sync::protocol::DocSync;
use tokio::sync::{mpsc, watch};

use crate::dashboard::Dashboard;
use crate::device::{Device, all_synced, edit};
use crate::scenarios::{Figures, connect_all, final_state, keys, same};
use crate::server::{DataDir, ServerProcess};
use crate::workload::{self, DayDoc, Fixtures, Phone};

/// The fixture user whose devices are head office's (every site).
const OFFICE: &str = "u-office-1";

/// The company's shape.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub sites: usize,
    /// Phones per site.
    pub phones: usize,
    /// Site-days on the server per site (each phone's steady edits go to its own one of them).
    pub days: usize,
    /// Head-office devices syncing every site.
    pub office: usize,
    /// Dashboards following every site.
    pub dashboards: usize,
}

/// The widened company and its documents, built once for the phases and the idle run.
pub struct Company {
    pub shape: Shape,
    pub fixtures: Fixtures,
    pub phones: Vec<Phone>,
    /// Every site's days, as their foremen's stores wrote them.
    pub docs: Vec<DayDoc>,
}

impl Company {
    /// Widens the fixture company to `shape` and builds its documents in `scratch`.
    pub fn build(fixtures: &Fixtures, scratch: &std::path::Path, shape: Shape) -> Result<Company> {
        anyhow::ensure!(shape.phones <= shape.days, "each phone edits a day of its own");
        let (fixtures, phones) = fixtures.widened(shape.sites, shape.phones, shape.days)?;
        let docs = workload::build_days(scratch, &fixtures, &fixtures.days)?;
        Ok(Company {
            shape,
            fixtures,
            phones,
            docs,
        })
    }

    fn site_docs(&self) -> HashMap<&str, Vec<&DayDoc>> {
        let mut by_site: HashMap<&str, Vec<&DayDoc>> = HashMap::new();
        for d in &self.docs {
            by_site.entry(d.site.as_str()).or_default().push(d);
        }
        by_site
    }
}

/// The site of a document id (`day|SITE|DATE`).
fn site_of(doc: &str) -> Option<&str> {
    doc.split('|').nth(1)
}

/// What a phase's devices must end up holding: the final heads of each touched document, and the
/// server's change cursor covering them.
struct Finals {
    heads: HashMap<String, Vec<String>>,
    cursor: u64,
}

/// A phone at the start of a phase.
enum Slot {
    /// Connected (the steady state's phones were all connected beforehand).
    Online(Box<Device>),
    /// Offline with the cursor it kept, reconnecting at its plan's `connect_at`.
    Offline(u64),
}

/// A phone's part in a phase: pushes at given offsets from the start.
struct Plan {
    /// When the phone (re)connects, if it is not connected at the start.
    connect_at: Option<Duration>,
    /// Each push: when, and its documents.
    pushes: Vec<(Duration, Vec<DocSync>)>,
}

/// How a phase ended for one phone: its round trips and errors, sent as soon as its pushes are done.
struct Pushed {
    rtts: Vec<Duration>,
    pushes: usize,
    errors: usize,
    last_ack: Instant,
}

/// Connected head-office devices and phones between phases, with the cursor each holds.
struct Fleet {
    server: ServerProcess,
    /// Keeps the server's directory until the server is gone.
    _data: DataDir,
    phone_tokens: Vec<String>,
    phone_keys: Vec<Keypair>,
    office_tokens: Vec<String>,
    office_keys: Vec<Keypair>,
    /// For the observer that reads the final heads and for the dashboards.
    observer: String,
    dashboard_tokens: Vec<String>,
}

/// The realistic company's steady state for `seconds`, then its rush of `rush_docs` documents a
/// phone within `jitter`, on one server. Returns the two phases' figures.
pub async fn day(company: &Company, seconds: f64, rush_docs: usize, jitter: Duration) -> Result<Vec<Figures>> {
    let shape = company.shape;
    let data = DataDir::new(&company.fixtures, &company.docs)?;
    data.preload(&company.docs)?;
    let users: Vec<String> = company.phones.iter().map(|p| p.user.clone()).collect();
    let phone_tokens = data.devices(&users)?;
    let office_users = vec![OFFICE.to_string(); shape.office + shape.dashboards + 1];
    let mut office_tokens = data.devices(&office_users)?;
    let observer = office_tokens.pop().context("an observer")?;
    let dashboard_tokens = office_tokens.split_off(shape.office);
    let server = ServerProcess::start(data.path())?;
    let fleet = Fleet {
        server,
        _data: data,
        phone_keys: keys(phone_tokens.len()),
        phone_tokens,
        office_keys: keys(office_tokens.len()),
        office_tokens,
        observer,
        dashboard_tokens,
    };
    eprintln!(
        "realistic: {} phones and {} head-office devices connect …",
        fleet.phone_tokens.len(),
        fleet.office_tokens.len()
    );
    let phones = connect_all(&fleet.server, &fleet.phone_tokens, &fleet.phone_keys).await?;
    let office = connect_all(&fleet.server, &fleet.office_tokens, &fleet.office_keys).await?;

    // Steady: phone i pushes one-entry edits of its own day every 10 s, starting at a random moment
    // of the first 10 s.
    let interval = Duration::from_secs(10);
    let per_phone = (seconds / interval.as_secs_f64()).ceil().max(1.0) as usize;
    let by_site = company.site_docs();
    let mut seen_per_site: HashMap<&str, usize> = HashMap::new();
    let mut plans = Vec::with_capacity(phones.len());
    for (p, dev) in company.phones.iter().zip(&phones) {
        let j = seen_per_site.entry(p.site.as_str()).or_default();
        let doc = by_site[p.site.as_str()][*j];
        *j += 1;
        let chain = workload::edits(doc, per_phone, *j as u64, dev.key())?;
        let offset = interval.mul_f64(fastrand::f64());
        plans.push(Plan {
            connect_at: None,
            pushes: (0..per_phone)
                .map(|k| (offset + interval * k as u32, vec![edit(&chain, k)]))
                .collect(),
        });
    }
    eprintln!("realistic: steady state, {seconds:.0} s …");
    let name = format!(
        "realistic steady: {} phones × 1 edit / 10 s, {} sites, {} head-office devices, {} dashboards",
        phones.len(),
        shape.sites,
        shape.office,
        shape.dashboards
    );
    let (steady, phones, office) = phase(
        &fleet,
        name,
        company,
        phones.into_iter().map(|d| Slot::Online(Box::new(d))).collect(),
        office,
        plans,
    )
    .await?;
    let mut slots = Vec::with_capacity(phones.len());
    for p in phones {
        slots.push(Slot::Offline(p.as_ref().map_or(0, |d| d.cursor)));
        if let Some(d) = p {
            d.close().await;
        }
    }

    // Overnight every phone went offline with its cursor; in the morning it reconnects within the
    // jitter and pushes `rush_docs` edits of its site's days (overlapping with its site-mates').
    let mut plans = Vec::with_capacity(company.phones.len());
    let mut index_in_site: HashMap<&str, usize> = HashMap::new();
    for (i, p) in company.phones.iter().enumerate() {
        let j = index_in_site.entry(p.site.as_str()).or_default();
        let site = &by_site[p.site.as_str()];
        let edits = (0..rush_docs)
            .map(|r| {
                let doc = site[(*j * 3 + r) % site.len()];
                workload::edits(doc, 1, (i * rush_docs + r) as u64 + 1_000_000, &fleet.phone_keys[i])
                    .map(|e| edit(&e, 0))
            })
            .collect::<Result<Vec<_>>>()?;
        *j += 1;
        plans.push(Plan {
            connect_at: Some(jitter.mul_f64(fastrand::f64())),
            pushes: vec![(Duration::ZERO, edits)],
        });
    }
    eprintln!("realistic: rush …");
    let name = format!(
        "realistic rush: {} phones × {rush_docs} documents, {} s jitter, {} sites",
        company.phones.len(),
        jitter.as_secs_f64(),
        shape.sites
    );
    let (rush, _, office) = phase(&fleet, name, company, slots, office, plans).await?;
    for d in office {
        d.close().await;
    }
    Ok(vec![steady, rush])
}

/// One phase: phones carry out their plans (connecting first when offline, with the cursor the
/// phone kept), head office and dashboards follow; ends when every device holds every change.
/// Returns the figures, the phones (by index; `None` for one that failed) and the head-office
/// devices still connected.
async fn phase(
    fleet: &Fleet,
    name: String,
    company: &Company,
    phones: Vec<Slot>,
    office: Vec<Device>,
    plans: Vec<Plan>,
) -> Result<(Figures, Vec<Option<Device>>, Vec<Device>)> {
    let server = &fleet.server;
    let n = plans.len();
    let (finals_tx, finals_rx) = watch::channel(None::<Arc<Finals>>);
    let (pushed_tx, mut pushed_rx) = mpsc::unbounded_channel::<Pushed>();
    let touched: HashMap<String, usize> = plans
        .iter()
        .flat_map(|p| {
            p.pushes
                .iter()
                .flat_map(|(_, docs)| docs.iter().map(|d| (d.doc.clone(), 1)))
        })
        .collect();
    let mut dashboards = Vec::with_capacity(fleet.dashboard_tokens.len());
    for t in &fleet.dashboard_tokens {
        dashboards.push(Dashboard::open(server.addr, t).await?);
    }
    let cpu0 = server.cpu_seconds()?;
    let times0 = server.push_times()?;
    server.reset_peak();
    let start = Instant::now();
    let at = move |d: Duration| tokio::time::Instant::from_std(start + d);

    let mut tasks = Vec::with_capacity(n + office.len());
    for (i, (dev, plan)) in phones.into_iter().zip(plans).enumerate() {
        let (token, key, addr) = (fleet.phone_tokens[i].clone(), fleet.phone_keys[i].clone(), server.addr);
        let (pushed_tx, finals_rx) = (pushed_tx.clone(), finals_rx.clone());
        let site = company.phones[i].site.clone();
        tasks.push(tokio::spawn(async move {
            let mut dev = match dev {
                Slot::Online(d) => *d,
                Slot::Offline(cursor) => {
                    tokio::time::sleep_until(at(plan.connect_at.unwrap_or_default())).await;
                    let mut d = Device::connect(addr, &token, key).await?;
                    d.hello(cursor).await?;
                    d
                }
            };
            dev.deliveries = 0;
            let mut done = Pushed {
                rtts: Vec::new(),
                pushes: 0,
                errors: 0,
                last_ack: start,
            };
            for (when, docs) in plan.pushes {
                dev.listen_until(at(when)).await?;
                let count = docs.len();
                match dev.push(docs).await {
                    Ok((rtt, results)) if all_synced(&results) => {
                        done.rtts.push(rtt);
                        done.pushes += count;
                    }
                    _ => done.errors += 1,
                }
                done.last_ack = Instant::now();
            }
            let _ = pushed_tx.send(done);
            // The phase's pushes are over when every phone has sent (or failed): the channel closes.
            drop(pushed_tx);
            let held = follow(&mut dev, finals_rx, |doc| site_of(doc) == Some(site.as_str())).await?;
            anyhow::Ok((dev, held))
        }));
    }
    drop(pushed_tx);
    let phone_tasks = tasks;
    let mut office_tasks = Vec::with_capacity(office.len());
    for mut dev in office {
        let finals_rx = finals_rx.clone();
        office_tasks.push(tokio::spawn(async move {
            dev.deliveries = 0;
            let held = follow(&mut dev, finals_rx, |_| true).await?;
            anyhow::Ok((dev, held))
        }));
    }
    let dashboard_tasks: Vec<_> = dashboards
        .into_iter()
        .map(|mut d| {
            let mut finals_rx = finals_rx.clone();
            tokio::spawn(async move {
                // Read as the page does (whatever comes), until the final cursor is known.
                loop {
                    let target = finals_rx.borrow_and_update().as_ref().map(|f| f.cursor);
                    if let Some(target) = target {
                        let ok = d.until(target, FOLLOW_LIMIT).await?;
                        return anyhow::Ok((ok, d.cursor.map(|(_, t)| t), d.events));
                    }
                    d.until(u64::MAX, Duration::from_millis(250)).await?;
                }
            })
        })
        .collect();

    let mut figures = Figures {
        name,
        devices: n + fleet.office_tokens.len() + fleet.dashboard_tokens.len(),
        ..Figures::default()
    };
    let mut rtts = Vec::new();
    let mut last_ack = start;
    while let Some(p) = pushed_rx.recv().await {
        figures.pushes += p.pushes;
        figures.lines += p.pushes;
        figures.errors += p.errors;
        rtts.extend(p.rtts);
        last_ack = last_ack.max(p.last_ack);
    }
    figures.wall_s = (last_ack - start).as_secs_f64();
    let (heads, cursor) = final_state(server, &fleet.observer, &touched).await?;
    let _ = finals_tx.send(Some(Arc::new(Finals { heads, cursor })));

    let mut drained = last_ack;
    let mut phones = Vec::with_capacity(n);
    let mut office = Vec::new();

    let results = join_all(phone_tasks)
        .await
        .into_iter()
        .chain(join_all(office_tasks).await);
    for (i, r) in results.enumerate() {
        let dev = match r? {
            Ok((dev, (held, when))) => {
                figures.deliveries += dev.deliveries;
                if !held {
                    figures.errors += 1;
                }
                if let Some(t) = when {
                    drained = drained.max(t);
                }
                Some(dev)
            }
            Err(e) => {
                eprintln!("device failed: {e:#}");
                figures.errors += 1;
                None
            }
        };
        if i < n {
            phones.push(dev);
        } else if let Some(d) = dev {
            office.push(d);
        }
    }

    for r in join_all(dashboard_tasks).await {
        match r? {
            Ok((ok, when, events)) => {
                figures.deliveries += events;
                if !ok {
                    figures.errors += 1;
                }
                if let Some(t) = when {
                    drained = drained.max(t);
                }
            }
            Err(e) => {
                eprintln!("dashboard failed: {e:#}");
                figures.errors += 1;
            }
        }
    }
    figures.drained_s = (drained - start).as_secs_f64();
    figures.lag_s = (drained - last_ack).as_secs_f64();
    figures.server_cpu_s = server.cpu_seconds()? - cpu0;
    figures.server_peak_mib = server.peak_rss_mib()?;
    figures.server_peak_heap_mib = server.peak_heap_mib();
    figures.server_times(&server.push_times()?.since(&times0));
    figures.finish(&mut rtts);
    Ok((figures, phones, office))
}

/// How long a device may wait, once the final heads are known, for the changes still missing.
const FOLLOW_LIMIT: Duration = Duration::from_secs(60);

/// Takes in live updates until the phase's final heads are known, then until the device holds those
/// of every document `wanted` says it follows (or [`FOLLOW_LIMIT`] passes). Returns whether it did
/// and when the last of them came.
async fn follow(
    dev: &mut Device,
    mut finals: watch::Receiver<Option<Arc<Finals>>>,
    wanted: impl Fn(&str) -> bool,
) -> Result<(bool, Option<Instant>)> {
    let finals = loop {
        if let Some(f) = finals.borrow_and_update().clone() {
            break f;
        }
        dev.listen_until(tokio::time::Instant::now() + Duration::from_millis(250))
            .await?;
    };
    let want: Vec<(&String, &Vec<String>)> = finals.heads.iter().filter(|(d, _)| wanted(d)).collect();
    let holds = |d: &Device| {
        want.iter()
            .all(|(doc, h)| d.received.get(*doc).is_some_and(|(got, _)| same(got, h)))
    };
    dev.listen(FOLLOW_LIMIT, holds).await?;
    let when = want
        .iter()
        .filter_map(|(doc, _)| dev.received.get(*doc).map(|(_, t)| *t))
        .max();
    Ok((holds(dev), when))
}

/// What the idle run measured.
#[derive(Debug, Clone, Default)]
pub struct Idle {
    /// Devices asked to connect.
    pub devices: usize,
    /// Connected and welcomed.
    pub connected: usize,
    /// Failed to connect, or dropped while idle.
    pub errors: usize,
    /// Seconds to connect them all (at most 100 handshakes at a time).
    pub connect_s: f64,
    /// The server's resident memory before the first connection and with all connected, MiB.
    pub rss_before_mib: f64,
    pub rss_after_mib: f64,
    /// The server's peak resident memory over the run, MiB.
    pub peak_mib: f64,
    /// Server CPU seconds spent connecting them.
    pub cpu_s: f64,
}

impl Idle {
    /// The server's resident memory per connected device, KiB.
    pub fn kib_per_device(&self) -> f64 {
        (self.rss_after_mib - self.rss_before_mib) * 1024.0 / self.connected.max(1) as f64
    }
}

/// `n` devices of the company's phone users (round-robin) connect, say hello, and stay idle for
/// `idle`, answering pings; the server's memory is read with all of them connected.
pub async fn idle(company: &Company, n: usize, idle: Duration) -> Result<Idle> {
    // The rosters only: the welcome is what an up-to-date phone gets, its site's master data.
    let data = DataDir::new(&company.fixtures, &[])?;
    let users: Vec<String> = (0..n)
        .map(|i| company.phones[i % company.phones.len()].user.clone())
        .collect();
    eprintln!("idle: enrolling {n} devices …");
    let tokens = data.devices(&users)?;
    let server = ServerProcess::start(data.path())?;
    // Settle the server's start-up before the baseline.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut out = Idle {
        devices: n,
        rss_before_mib: server.rss_mib()?,
        ..Idle::default()
    };
    let cpu0 = server.cpu_seconds()?;
    server.reset_peak();
    eprintln!("idle: connecting {n} devices …");
    let start = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(100));
    let until = tokio::time::Instant::now() + Duration::from_secs(3600);
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<bool>();
    let (stop_tx, stop_rx) = watch::channel(false);
    let tasks: Vec<_> = tokens
        .into_iter()
        .map(|t| {
            let (gate, addr, ready_tx, mut stop_rx) = (gate.clone(), server.addr, ready_tx.clone(), stop_rx.clone());
            tokio::spawn(async move {
                let connected = async {
                    let _permit = gate.acquire().await?;
                    let mut d = Device::connect(addr, &t, Keypair::generate()).await?;
                    d.hello(0).await?;
                    anyhow::Ok(d)
                }
                .await;
                let mut dev = match connected {
                    Ok(d) => {
                        let _ = ready_tx.send(true);
                        d
                    }
                    Err(e) => {
                        eprintln!("idle device could not connect: {e:#}");
                        let _ = ready_tx.send(false);
                        return anyhow::Ok(());
                    }
                };
                // Idle: read (answering the server's pings) until told to stop.
                tokio::select! {
                    r = dev.listen_until(until) => r?,
                    _ = stop_rx.changed() => {}
                }
                dev.close().await;
                anyhow::Ok(())
            })
        })
        .collect();
    drop(ready_tx);
    // One report per device (its task keeps its sender while it idles).
    for _ in 0..n {
        match ready_rx.recv().await {
            Some(true) => out.connected += 1,
            Some(false) => out.errors += 1,
            None => break,
        }
    }
    out.connect_s = start.elapsed().as_secs_f64();
    out.cpu_s = server.cpu_seconds()? - cpu0;
    tokio::time::sleep(idle).await;
    out.rss_after_mib = server.rss_mib()?;
    out.peak_mib = server.peak_rss_mib()?;
    let _ = stop_tx.send(true);
    // Failed connections were counted as they failed; a connection lost while idle counts here.
    for r in join_all(tasks).await {
        if let Err(e) = r? {
            eprintln!("idle device dropped: {e:#}");
            out.errors += 1;
        }
    }
    Ok(out)
}
