//! The server under test, in its own process (this binary re-run as `serve-child`), so that its CPU
//! time and peak memory are its own; and the data directory it serves, prepared beforehand.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use anyhow::{Context, Result};
use sitesync_core::Store;
use sitesync_server::AppState;

use crate::workload::{DayDoc, Fixtures};

/// A data directory with the fixture company, devices enrolled for it, and optionally documents;
/// with `database`, the documents and credentials are in that PostgreSQL database instead.
pub struct DataDir {
    /// The directory (removed on drop).
    pub dir: tempfile::TempDir,
    /// The PostgreSQL database's URL, when the state lives there.
    pub database: Option<String>,
    /// The devices whose stores wrote the generated documents, by their key: (device, user), to
    /// keep the documents' signatures as the server would have when it received them.
    writers: HashMap<[u8; 32], (String, String)>,
}

/// The fixture user who uses a device on `site` (its foreman).
pub fn foreman_of(site: &str) -> String {
    format!("u-foreman-{}", site.trim_start_matches("site-"))
}

impl DataDir {
    /// A fresh server data directory with the fixture company imported, and the stores that wrote
    /// `docs` enrolled as devices of their sites' foremen with their keys registered, as if those
    /// phones had said hello: the server takes their signatures.
    pub fn new(fixtures: &Fixtures, docs: &[DayDoc]) -> Result<DataDir> {
        DataDir::on(fixtures, docs, None)
    }

    /// [`DataDir::new`] with the state in the PostgreSQL database at `database` (a fresh one).
    pub fn on(fixtures: &Fixtures, docs: &[DayDoc], database: Option<String>) -> Result<DataDir> {
        let dir = tempfile::Builder::new().prefix("sitesync-bench-").tempdir()?;
        let mut data = DataDir {
            dir,
            database,
            writers: HashMap::new(),
        };
        // Off the runtime: the PostgreSQL engine blocks on a runtime of its own.
        std::thread::scope(|s| s.spawn(|| data.import(fixtures, docs)).join())
            .map_err(|_| anyhow::anyhow!("preparing the data panicked"))??;
        Ok(data)
    }

    /// The credential store and the document store, as `AppState::open_at` opens them.
    fn open(&self) -> Result<(sitesync_server::auth::AuthDb, Store)> {
        Ok(match &self.database {
            None => (
                sitesync_server::auth::AuthDb::open(self.dir.path())?,
                Store::open(self.dir.path().join("documents.sqlite3"))?,
            ),
            Some(url) => {
                let pg = sitesync_server::storage::open_postgres(url, 2)?;
                let store = Store::open_on(Box::new(pg.docs.dedicated()?), "postgres")?;
                (sitesync_server::auth::AuthDb::on(pg.auth), store)
            }
        })
    }

    fn import(&mut self, fixtures: &Fixtures, docs: &[DayDoc]) -> Result<()> {
        let (auth, mut store) = self.open()?;
        store.set_user("server")?;
        sitesync_server::admin::import_company(&auth, &mut store, &fixtures.company)?;
        let mut writers = HashMap::new();
        for d in docs {
            let Some(key) = d.writer_key() else { continue };
            if let std::collections::hash_map::Entry::Vacant(e) = writers.entry(key) {
                let user = foreman_of(&d.site);
                let (device, _) = auth.add_device(&user, &format!("bench-writer-{}", d.site))?;
                auth.register_key(&device, &key)?;
                e.insert((device, user));
            }
        }
        self.writers = writers;
        Ok(())
    }

    /// Enrolls one device per user in `users`; returns their tokens in order.
    pub fn devices(&self, users: &[String]) -> Result<Vec<String>> {
        let enroll = || -> Result<Vec<String>> {
            let (auth, _) = self.open()?;
            users
                .iter()
                .enumerate()
                .map(|(i, u)| Ok(auth.add_device(u, &format!("bench-{i}"))?.1))
                .collect()
        };
        std::thread::scope(|s| s.spawn(enroll).join()).map_err(|_| anyhow::anyhow!("enrolling panicked"))?
    }

    /// Stores documents on the server beforehand, with their signatures, as if phones had pushed
    /// them earlier.
    pub fn preload(&self, docs: &[DayDoc]) -> Result<()> {
        let load = || -> Result<()> {
            let (_, mut store) = self.open()?;
            for d in docs {
                if let Some((device, user)) = d.writer_key().and_then(|k| self.writers.get(&k)) {
                    store.keep_signatures(&d.id, &d.sigs, Some((device, user)))?;
                }
                store.merge_changes(&d.id, &d.bytes)?;
            }
            Ok(())
        };
        std::thread::scope(|s| s.spawn(load).join()).map_err(|_| anyhow::anyhow!("preloading panicked"))?
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// A server process serving a data directory on loopback; stopped on drop.
pub struct ServerProcess {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Where it serves its `/metrics` without a token (`serve --metrics-listen`), for the server's
    /// own push times.
    metrics: SocketAddr,
    /// The most bytes the server's live allocations held since the last reset
    /// (`sitesync_heap_allocated_bytes`, read every [`HEAP_EVERY`] by a thread of the bench's).
    peak_heap: Arc<AtomicU64>,
    /// Set when the process is dropped, to stop that thread.
    stopped: Arc<AtomicBool>,
}

/// How often the bench reads the server's heap: often enough to catch a burst's peak, rarely
/// enough (a metrics request of a few KiB) not to weigh on the server.
const HEAP_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

impl ServerProcess {
    /// Starts `sitesync-bench serve-child --data DIR` and waits until it listens.
    pub fn start(data: &Path) -> Result<ServerProcess> {
        ServerProcess::start_on(data, None)
    }

    /// [`ServerProcess::start`] on a PostgreSQL database (a node of several, when started again).
    pub fn start_on(data: &Path, database: Option<&str>) -> Result<ServerProcess> {
        let exe = std::env::current_exe()?;
        // A profiler around the server only (`SITESYNC_BENCH_SERVER_WRAPPER="heaptrack -o /tmp/h"`):
        // the bench's own clients stay out of the profile. The server's CPU and peak memory in the
        // report are then the wrapper's: read them from the profile.
        let wrapper = std::env::var("SITESYNC_BENCH_SERVER_WRAPPER").unwrap_or_default();
        let mut words = wrapper.split_whitespace();
        let mut command = match words.next() {
            Some(program) => {
                let mut c = Command::new(program);
                c.args(words).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        command.arg("serve-child").arg("--data").arg(data);
        if let Some(url) = database {
            command.arg("--database").arg(url);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the server process")?;
        let stdout = child.stdout.take().context("server stdout")?;
        // A wrapper may print lines of its own before the server's.
        let mut lines = BufReader::new(stdout).lines();
        let mut metrics = None;
        let addr = loop {
            let line = lines.next().context("the server process exited before it listened")??;
            if let Some(addr) = line.trim().strip_prefix("metrics ") {
                metrics = Some(addr.parse()?);
            }
            if let Some(addr) = line.trim().strip_prefix("listening ") {
                break addr.parse()?;
            }
        };
        // The rest is drained, so that a wrapper's last words at exit find their pipe open.
        std::thread::spawn(move || lines.for_each(drop));
        let metrics = metrics.context("the server process named no metrics address")?;
        let (peak_heap, stopped) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        {
            let (peak, stopped) = (peak_heap.clone(), stopped.clone());
            std::thread::spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    if let Ok(Some(bytes)) = scrape(metrics).map(|t| heap_allocated(&t)) {
                        peak.fetch_max(bytes, Ordering::Relaxed);
                    }
                    std::thread::sleep(HEAP_EVERY);
                }
            });
        }
        Ok(ServerProcess {
            child,
            addr,
            metrics,
            peak_heap,
            stopped,
        })
    }

    /// The most the server's live allocations held since the last [`ServerProcess::reset_peak`],
    /// in MiB (sampled every 100 ms; 0 when the server reports no heap).
    pub fn peak_heap_mib(&self) -> f64 {
        self.peak_heap.load(Ordering::Relaxed) as f64 / (1024.0 * 1024.0)
    }

    /// The process's CPU time so far (user + system), in seconds.
    pub fn cpu_seconds(&self) -> Result<f64> {
        cpu_seconds(self.child.id())
    }

    /// The process's peak resident memory since the last [`ServerProcess::reset_peak`], in MiB.
    pub fn peak_rss_mib(&self) -> Result<f64> {
        peak_rss_mib(self.child.id())
    }

    /// The process's resident memory now, in MiB.
    pub fn rss_mib(&self) -> Result<f64> {
        status_mib(self.child.id(), "VmRSS:")
    }

    /// Starts a new peak-memory measurement (Linux `clear_refs` 5).
    pub fn reset_peak(&self) {
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5");
        self.peak_heap.store(0, Ordering::Relaxed);
    }

    /// The server's own push times so far: its `sitesync_push_latency_seconds` histogram (from a
    /// push frame's arrival to its `Ack` sent), read from its metrics listener.
    pub fn push_times(&self) -> Result<PushTimes> {
        PushTimes::parse(&scrape(self.metrics)?)
    }

    /// The server's base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// The server's `/metrics` text, from its metrics listener.
fn scrape(metrics: SocketAddr) -> Result<String> {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(metrics)?;
    conn.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    write!(conn, "GET /metrics HTTP/1.0\r\nHost: {metrics}\r\n\r\n")?;
    let mut text = String::new();
    conn.read_to_string(&mut text)?;
    Ok(text)
}

/// `sitesync_heap_allocated_bytes` of a `/metrics` text, if the server reports its heap.
fn heap_allocated(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("sitesync_heap_allocated_bytes "))
        .and_then(|v| v.trim().parse().ok())
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::Relaxed);
        // Closing stdin asks the child to stop; kill it if it does not.
        drop(self.child.stdin.take());
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A snapshot of the server's push-time histogram: cumulative counts by upper bound (seconds),
/// ascending, the last one `+Inf`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PushTimes(Vec<(f64, u64)>);

impl PushTimes {
    /// The `sitesync_push_latency_seconds_bucket` lines of an OpenMetrics text.
    fn parse(text: &str) -> Result<PushTimes> {
        let mut buckets = Vec::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("sitesync_push_latency_seconds_bucket{le=\"") else {
                continue;
            };
            let (le, count) = rest.split_once("\"} ").context("odd histogram line")?;
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse()? };
            buckets.push((le, count.trim().parse()?));
        }
        anyhow::ensure!(!buckets.is_empty(), "no push-time histogram in the server's metrics");
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        Ok(PushTimes(buckets))
    }

    /// The pushes answered since `before`, as the same histogram.
    pub fn since(&self, before: &PushTimes) -> PushTimes {
        PushTimes(
            self.0
                .iter()
                .map(|&(le, n)| {
                    let was = before.0.iter().find(|(b, _)| *b == le).map_or(0, |(_, c)| *c);
                    (le, n.saturating_sub(was))
                })
                .collect(),
        )
    }

    /// The `p`th percentile in milliseconds, interpolated linearly inside its bucket (the lowest
    /// bucket from 0); the last finite bound when it falls in `+Inf`; 0 when nothing was counted.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        let total = self.0.last().map_or(0, |(_, n)| *n);
        if total == 0 {
            return 0.0;
        }
        let rank = (p / 100.0 * total as f64).max(1.0);
        let (mut lower, mut below) = (0.0, 0u64);
        for &(le, n) in &self.0 {
            if n as f64 >= rank {
                if le.is_infinite() {
                    return lower * 1000.0;
                }
                let share = (rank - below as f64) / (n - below).max(1) as f64;
                return (lower + (le - lower) * share) * 1000.0;
            }
            (lower, below) = (le, n);
        }
        lower * 1000.0
    }
}

/// CPU seconds (user + system) of a process, from `/proc/PID/stat`.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').context("odd /proc stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    Ok(ticks as f64 / clock_ticks())
}

/// Peak resident memory (VmHWM) of a process, in MiB.
pub fn peak_rss_mib(pid: u32) -> Result<f64> {
    status_mib(pid, "VmHWM:")
}

/// A memory field (`VmRSS:`, `VmHWM:`) of `/proc/PID/status`, in MiB.
fn status_mib(pid: u32, field: &str) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .with_context(|| format!("no {field} in /proc/{pid}/status"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kib / 1024.0)
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The server's connection cap in the bench: above the largest run (10,000 idle devices, plus
/// the few the bench opens besides), below what the open-file limit allows on this machine
/// (hard limit 20,000).
const MAX_CONNECTIONS: usize = 12_000;

/// The child's side: serve `data` on a free loopback port until stdin closes.
pub fn serve_child(data: PathBuf, database: Option<String>) -> Result<()> {
    // The server's log on the bench's stderr, filtered as `RUST_LOG` filters (none unless set: a
    // thousand devices' connection lines would bury the report's progress lines).
    if std::env::var_os("RUST_LOG").is_some() {
        sitesync_server::logs::init(sitesync_server::logs::LogFormat::Text);
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let location = match database {
            None => sitesync_server::storage::Location::Sqlite,
            Some(url) => sitesync_server::storage::Location::Postgres { url, connections: 8 },
        };
        let state = tokio::task::spawn_blocking(move || AppState::open_at(&data, &location)).await??;
        // As `sitesync-server serve` does: the open-file limit raised to the hard one, and the
        // connection cap fitted to it (the default cap, 1,024, would refuse the realistic company's
        // 1,025 devices and the 10,000 idle ones).
        let open_files = sitesync_server::limits::raise_open_files();
        let max_connections = sitesync_server::limits::fit_connections(MAX_CONNECTIONS, open_files);
        let state = state.with_connection_limits(sitesync_server::limits::ConnectionLimits {
            max_connections,
            ..sitesync_server::limits::ConnectionLimits::default()
        });
        // The metrics on a second loopback port, as `serve --metrics-listen` serves them; it ends
        // with the process.
        let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("metrics {}", metrics.local_addr()?);
        tokio::spawn(sitesync_server::run_metrics(
            metrics,
            state.clone(),
            std::future::pending(),
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("listening {}", listener.local_addr()?);
        let stop = async {
            // The parent holds our stdin; EOF (or its death) means stop.
            let _ = tokio::task::spawn_blocking(|| {
                let mut sink = String::new();
                while std::io::stdin().read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {}
            })
            .await;
        };
        sitesync_server::run(listener, state, stop).await?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::PushTimes;

    #[test]
    fn percentiles_are_read_inside_their_bucket() {
        let text = "# TYPE sitesync_push_latency_seconds histogram\n\
            sitesync_push_latency_seconds_bucket{le=\"0.001\"} 50\n\
            sitesync_push_latency_seconds_bucket{le=\"0.002\"} 90\n\
            sitesync_push_latency_seconds_bucket{le=\"0.004\"} 100\n\
            sitesync_push_latency_seconds_bucket{le=\"+Inf\"} 100\n";
        let t = PushTimes::parse(text).unwrap();
        assert!((t.percentile_ms(50.0) - 1.0).abs() < 1e-9);
        assert!((t.percentile_ms(99.0) - 3.8).abs() < 1e-9);
        let before = PushTimes::parse(&text.replace("} 100", "} 90")).unwrap();
        let since = t.since(&before);
        assert!((since.percentile_ms(50.0) - 3.0).abs() < 1e-9, "{since:?}");
        assert_eq!(PushTimes::default().percentile_ms(99.0), 0.0);
    }
}
