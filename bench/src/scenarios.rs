//! The server workloads: many devices pushing their day, one-entry pushes to cold and hot documents,
//! paced steady-state pushes, the 7 a.m. rush, and one phone uploading 200 documents.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::future::join_all;
use sitesync_core::Store;
use sitesync_core::ids::DocId;
use sitesync_core::signing::Keypair;
use tokio::sync::Barrier;

use crate::device::{Device, all_synced, edit, new_doc, percentile_ms};
use crate::server::{DataDir, ServerProcess, foreman_of};
use crate::workload::{self, DayDoc, Edits, Fixtures};

/// Figures of one server run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Figures {
    pub name: String,
    /// Devices (connections).
    pub devices: usize,
    pub pushes: usize,
    /// Labor lines (or entries) acknowledged.
    pub lines: usize,
    /// Seconds from the first push to the last acknowledgement.
    pub wall_s: f64,
    /// Pushes per second.
    pub pushes_per_s: f64,
    /// Labor lines per second.
    pub lines_per_s: f64,
    /// Median round trip, ms.
    pub p50_ms: f64,
    /// 99th percentile round trip, ms.
    pub p99_ms: f64,
    /// Median of the server's own push time (a push frame's arrival to its `Ack` sent, from its
    /// `/metrics` histogram, interpolated in its bucket), ms; 0 where not measured.
    pub server_p50_ms: f64,
    /// 99th percentile of the server's own push time, as `server_p50_ms`.
    pub server_p99_ms: f64,
    /// Seconds from the first push until every device held every other device's changes.
    pub drained_s: f64,
    /// Refusals, failures and time-outs.
    pub errors: usize,
    /// Server CPU seconds during the run (every node's, and on PostgreSQL the database server's).
    pub server_cpu_s: f64,
    /// Of which the PostgreSQL server's processes, when the state is there.
    pub database_cpu_s: f64,
    /// Server peak resident memory during the run, MiB.
    pub server_peak_mib: f64,
    /// The most the server's live allocations held during the run, MiB: what its structures need,
    /// where `server_peak_mib` adds what the allocator kept and the code.
    pub server_peak_heap_mib: f64,
    /// Documents (and dashboard events) delivered to devices in live updates, the fan-out.
    pub deliveries: usize,
    /// Seconds from the last acknowledgement until every device held every change.
    pub lag_s: f64,
}

impl Figures {
    /// Server CPU seconds per 1,000 pushes.
    pub fn cpu_per_1000(&self) -> f64 {
        self.server_cpu_s * 1000.0 / self.pushes.max(1) as f64
    }

    /// Deliveries per second, from the first push until every device held every change.
    pub fn deliveries_per_s(&self) -> f64 {
        let span = self.drained_s.max(self.wall_s);
        if span > 0.0 { self.deliveries as f64 / span } else { 0.0 }
    }

    /// Takes the server's own push-time percentiles from its histogram of the run.
    pub(crate) fn server_times(&mut self, times: &crate::server::PushTimes) {
        self.server_p50_ms = times.percentile_ms(50.0);
        self.server_p99_ms = times.percentile_ms(99.0);
    }

    pub(crate) fn finish(&mut self, rtts: &mut [Duration]) {
        rtts.sort();
        self.p50_ms = percentile_ms(rtts, 50.0);
        self.p99_ms = percentile_ms(rtts, 99.0);
        if self.wall_s > 0.0 {
            self.pushes_per_s = self.pushes as f64 / self.wall_s;
            self.lines_per_s = self.lines as f64 / self.wall_s;
        }
    }
}

const SITES: [&str; 3] = ["site-hz-01", "site-sz-02", "site-nb-03"];

/// Assigns `n` devices round-robin to the three sites and gives each a distinct day of its site.
fn assign(docs: &[DayDoc], n: usize) -> Result<Vec<DayDoc>> {
    let mut by_site: HashMap<&str, Vec<&DayDoc>> = HashMap::new();
    for d in docs {
        by_site.entry(d.site.as_str()).or_default().push(d);
    }
    (0..n)
        .map(|i| {
            let site = SITES[i % 3];
            by_site
                .get(site)
                .and_then(|v| v.get(i / 3))
                .map(|d| (*d).clone())
                .with_context(|| format!("not enough days for device {i}"))
        })
        .collect()
}

/// A signing key for each of `n` devices, as each phone's store makes its own.
pub(crate) fn keys(n: usize) -> Vec<Keypair> {
    (0..n).map(|_| Keypair::generate()).collect()
}

/// Connects `tokens.len()` devices, each with its key (at most 100 handshakes at a time), and
/// says hello.
pub(crate) async fn connect_all(server: &ServerProcess, tokens: &[String], keys: &[Keypair]) -> Result<Vec<Device>> {
    let gate = Arc::new(tokio::sync::Semaphore::new(100));
    let tasks = tokens.iter().zip(keys).map(|(t, k)| {
        let (gate, t, k, addr) = (gate.clone(), t.clone(), k.clone(), server.addr);
        tokio::spawn(async move {
            let _permit = gate.acquire().await?;
            let mut d = Device::connect(addr, &t, k).await?;
            d.hello(0).await?;
            anyhow::Ok(d)
        })
    });
    join_all(tasks).await.into_iter().map(|r| r?).collect()
}

/// Scenario 2: `n` devices each push their day at once and receive the days of their site-mates.
/// The devices stay connected and are returned with their documents, for the steady-state run.
pub async fn devices(
    fixtures: &Fixtures,
    docs: &[DayDoc],
    n: usize,
) -> Result<(Figures, DataDir, ServerProcess, Vec<Device>, Vec<DayDoc>)> {
    let data = DataDir::new(fixtures, docs)?;
    let mine = assign(docs, n)?;
    let users: Vec<String> = (0..n).map(|i| foreman_of(SITES[i % 3])).collect();
    let tokens = data.devices(&users)?;
    let server = ServerProcess::start(data.path())?;
    let devices = connect_all(&server, &tokens, &keys(n)).await?;
    // What each site's devices must end up holding.
    let mut site_docs: HashMap<String, HashSet<String>> = HashMap::new();
    for d in &mine {
        site_docs.entry(d.site.clone()).or_default().insert(d.id.to_string());
    }
    let site_docs = Arc::new(site_docs);
    let cpu0 = server.cpu_seconds()?;
    server.reset_peak();
    let barrier = Arc::new(Barrier::new(n + 1));
    let tasks: Vec<_> = devices
        .into_iter()
        .zip(mine.clone())
        .map(|(mut dev, doc)| {
            let (barrier, site_docs) = (barrier.clone(), site_docs.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let (rtt, results) = dev.push(vec![new_doc(&doc)]).await?;
                let ok = all_synced(&results);
                let want = &site_docs[&doc.site];
                let own = doc.id.to_string();
                dev.listen(Duration::from_secs(60), |d| {
                    want.iter().all(|w| *w == own || d.received.contains_key(w))
                })
                .await?;
                let complete = want.iter().all(|w| *w == own || dev.received.contains_key(w));
                let drained = want.iter().filter_map(|w| dev.received.get(w).map(|(_, t)| *t)).max();
                anyhow::Ok((dev, rtt, ok, complete, drained))
            })
        })
        .collect();
    barrier.wait().await;
    let start = Instant::now();
    let mut figures = Figures {
        name: format!("{n} devices push their day"),
        devices: n,
        ..Figures::default()
    };
    let mut rtts = Vec::with_capacity(n);
    let mut last_ack = start;
    let mut drained = start;
    let mut kept = Vec::with_capacity(n);
    for (r, doc) in join_all(tasks).await.into_iter().zip(&mine) {
        match r? {
            Ok((dev, rtt, ok, complete, t)) => {
                if ok {
                    figures.pushes += 1;
                    figures.lines += doc.lines;
                } else {
                    figures.errors += 1;
                }
                if !complete {
                    figures.errors += 1;
                }
                last_ack = last_ack.max(start + rtt);
                if let Some(t) = t {
                    drained = drained.max(t);
                }
                rtts.push(rtt);
                kept.push(dev);
            }
            Err(e) => {
                eprintln!("device failed: {e:#}");
                figures.errors += 1;
            }
        }
    }
    figures.wall_s = (last_ack - start).as_secs_f64();
    figures.drained_s = (drained.max(last_ack) - start).as_secs_f64();
    figures.lag_s = (drained.max(last_ack) - last_ack).as_secs_f64();
    figures.deliveries = kept.iter().map(|d| d.deliveries).sum();
    figures.server_cpu_s = server.cpu_seconds()? - cpu0;
    figures.server_peak_mib = server.peak_rss_mib()?;
    figures.server_peak_heap_mib = server.peak_heap_mib();
    figures.finish(&mut rtts);
    Ok((figures, data, server, kept, mine))
}

/// Steady state: the connected devices each push one-entry edits of their day, paced so that the
/// whole fleet sends `rate` pushes per second for `seconds`.
pub async fn steady(
    server: &ServerProcess,
    devices: Vec<Device>,
    docs: &[DayDoc],
    rate: f64,
    seconds: f64,
) -> Result<Figures> {
    let n = devices.len();
    let per_device = ((rate * seconds) / n as f64).ceil().max(1.0) as usize;
    let interval = Duration::from_secs_f64(n as f64 / rate);
    let chains: Vec<Edits> = docs
        .iter()
        .zip(&devices)
        .enumerate()
        .map(|(i, (d, dev))| workload::edits(d, per_device, i as u64, dev.key()))
        .collect::<Result<_>>()?;
    let cpu0 = server.cpu_seconds()?;
    let times0 = server.push_times()?;
    server.reset_peak();
    let start = Instant::now();
    let tasks: Vec<_> = devices
        .into_iter()
        .zip(chains)
        .map(|(mut dev, chain)| {
            tokio::spawn(async move {
                // Spread the devices over the first interval.
                tokio::time::sleep(interval.mul_f64(fastrand::f64())).await;
                let mut rtts = Vec::with_capacity(per_device);
                let mut errors = 0;
                for k in 0..per_device {
                    let next = tokio::time::Instant::now() + interval;
                    match dev.push(vec![edit(&chain, k)]).await {
                        Ok((rtt, results)) if all_synced(&results) => rtts.push(rtt),
                        _ => errors += 1,
                    }
                    tokio::time::sleep_until(next).await;
                }
                dev.close().await;
                (rtts, errors)
            })
        })
        .collect();
    let figures = Figures {
        name: format!("{n} devices, steady one-entry pushes ({rate:.0}/s offered)"),
        devices: n,
        ..Figures::default()
    };
    let mut figures = tally(figures, tasks, server, cpu0, start).await?;
    figures.server_times(&server.push_times()?.since(&times0));
    Ok(figures)
}

/// One-entry pushes as fast as `conns` devices can send them, one round trip each. Cold: every push
/// goes to a different stored document the server has not touched since it started. Hot: each
/// device edits one document (kept in the server's cache) again and again.
pub async fn one_entry(fixtures: &Fixtures, docs: &[DayDoc], conns: usize, total: usize, hot: bool) -> Result<Figures> {
    one_entry_on(fixtures, docs, conns, total, hot, None, 1).await
}

/// [`one_entry`] with the state in a fresh database of the PostgreSQL server `pg` (SQLite
/// without), served by `nodes` server processes; connection `c` uses node `c % nodes`. The CPU
/// figure is the nodes' plus, on PostgreSQL, the database server's.
pub async fn one_entry_on(
    fixtures: &Fixtures,
    docs: &[DayDoc],
    conns: usize,
    total: usize,
    hot: bool,
    pg: Option<&crate::postgres::Server>,
    nodes: usize,
) -> Result<Figures> {
    let database = match pg {
        Some(pg) => Some(
            pg.fresh_database(&format!("sitesync_bench_{}", std::process::id()))
                .await?,
        ),
        None => None,
    };
    let data = DataDir::on(fixtures, docs, database.clone())?;
    data.preload(docs)?;
    // Connection c is a foreman's phone on site c % 3, editing days of its site.
    let users: Vec<String> = (0..conns).map(|c| foreman_of(SITES[c % 3])).collect();
    let tokens = data.devices(&users)?;
    let keys = keys(conns);
    let mut by_site: HashMap<&str, Vec<&DayDoc>> = HashMap::new();
    for d in docs {
        by_site.entry(d.site.as_str()).or_default().push(d);
    }
    let per_conn = total / conns;
    let work: Vec<Vec<(Edits, usize)>> = (0..conns)
        .map(|c| {
            let site = &by_site[SITES[c % 3]];
            if hot {
                let e = workload::edits(site[c / 3], per_conn, c as u64, &keys[c])?;
                Ok((0..per_conn).map(|k| (clone_edits(&e, k), 0)).collect())
            } else {
                (0..per_conn)
                    .map(|k| {
                        let d = site
                            .get((c / 3) * per_conn + k)
                            .context("not enough documents for the cold pushes")?;
                        Ok((workload::edits(d, 1, k as u64, &keys[c])?, 0))
                    })
                    .collect()
            }
        })
        .collect::<Result<_>>()?;
    let mut servers = Vec::with_capacity(nodes.max(1));
    for n in 0..nodes.max(1) {
        // Each node a data directory of its own: they share the database and nothing else.
        let dir = match database {
            Some(_) => data.path().join(format!("node-{n}")),
            None => data.path().to_path_buf(),
        };
        servers.push(ServerProcess::start_on(&dir, database.as_deref())?);
    }
    let mut devices = Vec::with_capacity(conns);
    for (c, (t, k)) in tokens.iter().zip(&keys).enumerate() {
        let server = &servers[c % servers.len()];
        devices.extend(connect_all(server, std::slice::from_ref(t), std::slice::from_ref(k)).await?);
    }
    // (nodes, database) CPU seconds so far.
    let cpu = |servers: &[ServerProcess]| -> Result<(f64, f64)> {
        let mut nodes = 0.0;
        for s in servers {
            nodes += s.cpu_seconds()?;
        }
        let database = match pg {
            Some(pg) => pg.cpu_seconds()?,
            None => 0.0,
        };
        Ok((nodes, database))
    };
    let cpu0 = cpu(&servers)?;
    for s in &servers {
        s.reset_peak();
    }
    let start = Instant::now();
    let tasks: Vec<_> = devices
        .into_iter()
        .zip(work)
        .map(|(mut dev, pushes)| {
            tokio::spawn(async move {
                let mut rtts = Vec::with_capacity(pushes.len());
                let mut errors = 0;
                for (e, k) in &pushes {
                    match dev.push(vec![edit(e, *k)]).await {
                        Ok((rtt, results)) if all_synced(&results) => rtts.push(rtt),
                        _ => errors += 1,
                    }
                }
                dev.close().await;
                (rtts, errors)
            })
        })
        .collect();
    let engine = match (pg, nodes) {
        (None, _) => String::new(),
        (Some(_), 1) => ", PostgreSQL, 1 node".to_string(),
        (Some(_), n) => format!(", PostgreSQL, {n} nodes"),
    };
    let figures = Figures {
        name: format!(
            "one-entry pushes, {} documents, {conns} connections{engine}",
            if hot { "hot" } else { "cold" }
        ),
        devices: conns,
        ..Figures::default()
    };
    let mut figures = tally(figures, tasks, &servers[0], 0.0, start).await?;
    let cpu1 = cpu(&servers)?;
    figures.database_cpu_s = cpu1.1 - cpu0.1;
    figures.server_cpu_s = cpu1.0 - cpu0.0 + figures.database_cpu_s;
    figures.server_peak_mib = servers
        .iter()
        .map(|s| s.peak_rss_mib().unwrap_or(0.0))
        .fold(0.0, f64::max);
    figures.server_peak_heap_mib = servers.iter().map(ServerProcess::peak_heap_mib).fold(0.0, f64::max);
    Ok(figures)
}

/// Waits for device tasks that each return their round trips and error count, and completes the
/// figures of the run with them and with the server's CPU and memory.
async fn tally(
    mut figures: Figures,
    tasks: Vec<tokio::task::JoinHandle<(Vec<Duration>, usize)>>,
    server: &ServerProcess,
    cpu0: f64,
    start: Instant,
) -> Result<Figures> {
    let mut rtts = Vec::new();
    for r in join_all(tasks).await {
        let (r, e) = r?;
        figures.pushes += r.len();
        figures.lines += r.len();
        figures.errors += e;
        rtts.extend(r);
    }
    figures.wall_s = start.elapsed().as_secs_f64();
    figures.server_cpu_s = server.cpu_seconds()? - cpu0;
    figures.server_peak_mib = server.peak_rss_mib()?;
    figures.server_peak_heap_mib = server.peak_heap_mib();
    figures.finish(&mut rtts);
    Ok(figures)
}

/// Edit `k` of a chain alone (its heads before and after), for a push list.
fn clone_edits(e: &Edits, k: usize) -> Edits {
    Edits {
        id: e.id.clone(),
        heads: vec![e.heads[k].clone(), e.heads[k + 1].clone()],
        changes: vec![e.changes[k].clone()],
        sigs: vec![e.sigs[k].clone()],
    }
}

/// The 7 a.m. rush: `n` devices that each edited `per_device` documents of their site offline all
/// reconnect within `jitter`, push, and take in each other's edits.
pub async fn rush(
    fixtures: &Fixtures,
    docs: &[DayDoc],
    n: usize,
    per_device: usize,
    jitter: Duration,
) -> Result<Figures> {
    let data = DataDir::new(fixtures, docs)?;
    data.preload(docs)?;
    let users: Vec<String> = (0..n).map(|i| foreman_of(SITES[i % 3])).collect();
    let tokens = data.devices(&users)?;
    let keys = keys(n);
    let mut by_site: HashMap<&str, Vec<&DayDoc>> = HashMap::new();
    for d in docs {
        by_site.entry(d.site.as_str()).or_default().push(d);
    }
    // Device i edits `per_device` documents of its site, overlapping with its neighbours' (a foreman
    // and a manager fixing the same days).
    let work: Vec<Vec<Edits>> = (0..n)
        .map(|i| {
            let site = &by_site[SITES[i % 3]];
            (0..per_device)
                .map(|j| {
                    let doc = site[(i / 3 * 7 + j * 13) % site.len()];
                    workload::edits(doc, 1, (i * per_device + j) as u64, &keys[i])
                })
                .collect()
        })
        .collect::<Result<_>>()?;
    let touched: HashMap<String, usize> = work.iter().flatten().fold(HashMap::new(), |mut m, e| {
        *m.entry(e.id.to_string()).or_default() += 1;
        m
    });
    let observer = data.devices(&["u-office-1".to_string()])?.remove(0);
    let server = ServerProcess::start(data.path())?;
    // Every device was up to date before the night: it connected once, took everything in, and
    // kept the cursor.
    let mut cursors = Vec::with_capacity(n);
    for d in connect_all(&server, &tokens, &keys).await? {
        cursors.push(d.cursor);
        d.close().await;
    }
    let cpu0 = server.cpu_seconds()?;
    server.reset_peak();
    let start = Instant::now();
    let addr = server.addr;
    // Each device reports its push when acknowledged, then keeps reading, as a phone does, until
    // every device has reported: a socket nobody reads is one the server stops writing to (and
    // after its idle limit, 90 s, closes as silent), which the full rush's push phase outlasts.
    let (acked_tx, mut acked_rx) = tokio::sync::mpsc::unbounded_channel();
    let (all_acked_tx, all_acked) = tokio::sync::watch::channel(false);
    let tasks: Vec<_> = tokens
        .into_iter()
        .zip(keys)
        .zip(work)
        .zip(cursors)
        .map(|(((token, key), edits), cursor)| {
            let acked_tx = acked_tx.clone();
            let mut all_acked = all_acked.clone();
            tokio::spawn(async move {
                tokio::time::sleep(jitter.mul_f64(fastrand::f64())).await;
                let pushed = async {
                    let mut dev = Device::connect(addr, &token, key).await?;
                    dev.hello(cursor).await?;
                    let (rtt, results) = dev.push(edits.iter().map(|e| edit(e, 0)).collect()).await?;
                    anyhow::Ok((dev, rtt, all_synced(&results), Instant::now()))
                }
                .await;
                match pushed {
                    Ok((mut dev, rtt, ok, acked)) => {
                        let _ = acked_tx.send(Ok((rtt, ok, acked)));
                        // Reported: the collector below stops once every device has.
                        drop(acked_tx);
                        let listened = dev.listen_while(&mut all_acked).await;
                        Some((dev, listened.err().map(|e| format!("{e:#}"))))
                    }
                    Err(e) => {
                        let _ = acked_tx.send(Err(e));
                        None
                    }
                }
            })
        })
        .collect();
    drop(acked_tx);
    let mut figures = Figures {
        name: format!(
            "7 a.m. rush: {n} devices × {per_device} documents, {} s jitter",
            jitter.as_secs_f64()
        ),
        devices: n,
        ..Figures::default()
    };
    let mut rtts = Vec::with_capacity(n);
    let mut last_ack = start;
    // Why devices count as errors, by kind, for the summary line below.
    let mut why: HashMap<String, usize> = HashMap::new();
    while let Some(r) = acked_rx.recv().await {
        match r {
            Ok((rtt, ok, acked)) => {
                if ok {
                    figures.pushes += per_device;
                    figures.lines += per_device;
                } else {
                    *why.entry("push not synced".into()).or_default() += 1;
                    figures.errors += 1;
                }
                rtts.push(rtt);
                last_ack = last_ack.max(acked);
            }
            Err(e) => {
                eprintln!("device failed: {e:#}");
                *why.entry("connect, hello or push failed".into()).or_default() += 1;
                figures.errors += 1;
            }
        }
    }
    let _ = all_acked_tx.send(true);
    let mut live = Vec::with_capacity(n);
    for r in join_all(tasks).await {
        if let Some((dev, lost)) = r? {
            live.push((dev, lost));
        }
    }
    figures.wall_s = (last_ack - start).as_secs_f64();
    // Fan-out: every device ends up with the final heads of every document edited on its site.
    let finals = final_heads(&server, &observer, &touched).await?;
    let finals = Arc::new(finals);
    let tasks: Vec<_> = live
        .into_iter()
        .map(|(mut dev, lost)| {
            let finals = finals.clone();
            tokio::spawn(async move {
                let site_prefix = |doc: &str| doc.split('|').nth(1).map(str::to_string);
                let mine: Vec<String> = dev
                    .received
                    .keys()
                    .filter_map(|k| site_prefix(k))
                    .collect::<HashSet<_>>()
                    .into_iter()
                    .collect();
                let want: Vec<(String, Vec<String>)> = finals
                    .iter()
                    .filter(|(doc, _)| site_prefix(doc).is_some_and(|s| mine.contains(&s)))
                    .map(|(d, h)| (d.clone(), h.clone()))
                    .collect();
                let up_to_date = |d: &Device| {
                    want.iter()
                        .all(|(doc, h)| d.received.get(doc).is_some_and(|(got, _)| same(got, h)))
                };
                let listened = dev.listen(Duration::from_secs(20), up_to_date).await;
                let done = up_to_date(&dev);
                if !done && lost.is_none() && listened.is_ok() {
                    // What a device short of an edit lacks, for the log: how many documents, and
                    // whether it holds them at other heads or not at all.
                    let lacking: Vec<_> = want
                        .iter()
                        .filter(|(doc, h)| !dev.received.get(doc).is_some_and(|(got, _)| same(got, h)))
                        .collect();
                    let stale = lacking.iter().filter(|(doc, _)| dev.received.contains_key(doc)).count();
                    eprintln!(
                        "rush: device at cursor {} lacks {} of {} documents ({stale} at older heads), e.g. {}",
                        dev.cursor,
                        lacking.len(),
                        want.len(),
                        lacking.first().map_or("", |(doc, _)| doc.as_str())
                    );
                }
                let why = (!done).then(|| match (lost, listened) {
                    (Some(e), _) => format!("lost while the others pushed: {e}"),
                    (None, Err(e)) => format!("lost while taking in the fan-out: {e:#}"),
                    (None, Ok(())) => "short of a site-mate's edit after 20 s of quiet".to_string(),
                });
                let at = want
                    .iter()
                    .filter_map(|(doc, _)| dev.received.get(doc).map(|(_, t)| *t))
                    .max();
                let deliveries = dev.deliveries;
                dev.close().await;
                (why, at, deliveries)
            })
        })
        .collect();
    let mut drained = last_ack;
    for r in join_all(tasks).await {
        let (short, at, deliveries) = r?;
        figures.deliveries += deliveries;
        if let Some(short) = short {
            *why.entry(short).or_default() += 1;
            figures.errors += 1;
        }
        if let Some(at) = at {
            drained = drained.max(at);
        }
    }
    figures.drained_s = (drained - start).as_secs_f64();
    figures.lag_s = (drained - last_ack).as_secs_f64();
    figures.server_cpu_s = server.cpu_seconds()? - cpu0;
    figures.server_peak_mib = server.peak_rss_mib()?;
    figures.server_peak_heap_mib = server.peak_heap_mib();
    figures.finish(&mut rtts);
    let mut why: Vec<_> = why.into_iter().collect();
    why.sort_by_key(|w| std::cmp::Reverse(w.1));
    for (kind, count) in why {
        eprintln!("rush: {count} device(s) in error: {kind}");
    }
    Ok(figures)
}

pub(crate) fn same(a: &[String], b: &[String]) -> bool {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort();
    b.sort();
    a == b
}

/// The server's heads of `docs`, as an observer device (head office) starting from nothing sees them.
async fn final_heads(
    server: &ServerProcess,
    token: &str,
    docs: &HashMap<String, usize>,
) -> Result<HashMap<String, Vec<String>>> {
    Ok(final_state(server, token, docs).await?.0)
}

/// [`final_heads`] and the server's change cursor that covers them.
pub(crate) async fn final_state(
    server: &ServerProcess,
    token: &str,
    docs: &HashMap<String, usize>,
) -> Result<(HashMap<String, Vec<String>>, u64)> {
    let mut observer = Device::connect(server.addr, token, Keypair::generate()).await?;
    let cursor = observer.hello(0).await?;
    let out = docs
        .keys()
        .map(|d| {
            let heads = observer.received.get(d).map(|(h, _)| h.clone());
            Ok((d.clone(), heads.with_context(|| format!("{d} missing on the server"))?))
        })
        .collect::<Result<_>>();
    observer.close().await;
    Ok((out?, cursor))
}

/// Scenario: one real phone (a client-core store and its sync client) uploads `docs` documents of
/// `entries` labor lines each, the comparison with automerge-repo's 200 × 50.
pub async fn upload(fixtures: &Fixtures, docs: usize, entries: usize) -> Result<Figures> {
    let data = DataDir::new(fixtures, &[])?;
    let token = data.devices(&["u-office-1".to_string()])?.remove(0);
    let days = fixtures.days_with_entries(docs, entries);
    let phone_dir = tempfile::tempdir()?;
    let mut phone = Store::open(phone_dir.path().join("phone.sqlite3"))?;
    phone.set_user("u-office-1")?;
    phone.import_company(&fixtures.company)?;
    phone.import_logs(&days)?;
    let server = ServerProcess::start(data.path())?;
    phone.bind(&server.url(), &token)?;
    let cpu0 = server.cpu_seconds()?;
    server.reset_peak();
    let start = Instant::now();
    let progress = sitesync_core::sync::client::sync_once(&mut phone).await?;
    let wall = start.elapsed();
    let pending = phone.pending()?.len();
    let mut figures = Figures {
        name: format!("one phone uploads {docs} documents × {entries} lines"),
        devices: 1,
        pushes: docs,
        lines: docs * entries,
        wall_s: wall.as_secs_f64(),
        errors: pending + progress.refused.len(),
        ..Figures::default()
    };
    figures.server_cpu_s = server.cpu_seconds()? - cpu0;
    figures.server_peak_mib = server.peak_rss_mib()?;
    figures.server_peak_heap_mib = server.peak_heap_mib();
    figures.finish(&mut [wall]);
    // Everything is on the server, line for line.
    drop(server);
    let mut check = Store::open(data.path().join("documents.sqlite3"))?;
    for d in &days {
        let id = DocId::Day(d.site.clone(), d.date);
        anyhow::ensure!(!check.heads(&id)?.is_empty(), "{id} missing on the server");
    }
    Ok(figures)
}
