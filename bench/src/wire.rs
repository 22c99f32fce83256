//! Scenario 1, bytes on the wire: a real phone (client-core store and sync client) syncing through a
//! byte-counting TCP proxy, so every byte counts: the HTTP upgrade, WebSocket framing, every message.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};
use sitesync_core::Store;

use crate::server::{DataDir, ServerProcess, foreman_of};
use crate::workload::{self, Fixtures};

/// A TCP proxy on loopback that counts the bytes each way.
pub struct CountingProxy {
    /// Where phones connect.
    pub addr: std::net::SocketAddr,
    /// Bytes from the phone to the server.
    up: Arc<AtomicU64>,
    /// Bytes from the server to the phone.
    down: Arc<AtomicU64>,
    /// The accept loop.
    task: tokio::task::JoinHandle<()>,
}

impl CountingProxy {
    /// Starts a proxy to `upstream`.
    pub async fn start(upstream: std::net::SocketAddr) -> Result<CountingProxy> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (up, down) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (u, d) = (up.clone(), down.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut phone, _)) = listener.accept().await {
                let (u, d) = (u.clone(), d.clone());
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    if let Ok((a, b)) = tokio::io::copy_bidirectional(&mut phone, &mut server).await {
                        u.fetch_add(a, Ordering::SeqCst);
                        d.fetch_add(b, Ordering::SeqCst);
                    }
                });
            }
        });
        Ok(CountingProxy { addr, up, down, task })
    }

    /// Bytes counted so far (up, down), and resets the counters.
    pub fn take(&self) -> (u64, u64) {
        (self.up.swap(0, Ordering::SeqCst), self.down.swap(0, Ordering::SeqCst))
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What one sync cost on the wire.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Wire {
    pub name: String,
    /// Labor lines carried.
    pub lines: usize,
    /// Bytes phone → server (TCP payload).
    pub up: u64,
    /// Bytes server → phone.
    pub down: u64,
    /// The same lines as compact JSON, bytes.
    pub json: usize,
    /// Wall time of the sync, ms.
    pub ms: f64,
}

impl Wire {
    /// Bytes on the wire per labor line, both ways, all included.
    pub fn per_line(&self) -> f64 {
        (self.up + self.down) as f64 / self.lines.max(1) as f64
    }
}

/// Waits until the proxy has seen both sides of the connection close.
async fn settle() {
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
}

/// A day's ~30 lines from a phone the server already knows; a fresh phone's first sync of a site
/// with 90 days of history.
pub async fn wire(fixtures: &Fixtures) -> Result<Vec<Wire>> {
    let site = "site-hz-01";
    let history = fixtures.site_days(site, 90);
    // The logged day: the site's fixture day closest to 30 lines, a year later, cut to 30 lines.
    let mut today = history
        .iter()
        .min_by_key(|d| d.labor.len().abs_diff(30))
        .context("no days")?
        .clone();
    today.date += chrono::Duration::weeks(52);
    today.labor.truncate(30);
    let scratch = tempfile::tempdir()?;
    let docs = workload::build_days(scratch.path(), fixtures, &history)?;
    let data = DataDir::new(fixtures, &docs)?;
    data.preload(&docs)?;
    let tokens = data.devices(&[foreman_of(site)])?;
    let server = ServerProcess::start(data.path())?;
    let proxy = CountingProxy::start(server.addr).await?;
    let url = format!("http://{}", proxy.addr);
    let mut out = Vec::new();

    // A fresh phone takes in the site: master data and 90 days.
    let mut fresh = Store::open(scratch.path().join("fresh.sqlite3"))?;
    fresh.set_user(&foreman_of(site))?;
    fresh.bind(&url, &tokens[0])?;
    let start = Instant::now();
    sitesync_core::sync::client::sync_once(&mut fresh).await?;
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    settle().await;
    let (up, down) = proxy.take();
    let lines: usize = history.iter().map(|d| d.labor.len()).sum();
    let json: usize = history.iter().map(|d| compact_json(&d.labor)).sum::<Result<usize>>()?;
    out.push(Wire {
        name: "fresh phone, first sync: site + 90 days".into(),
        lines,
        up,
        down,
        json,
        ms,
    });

    // That phone, now known to the server, logs a day and syncs it.
    fresh.import_logs(std::slice::from_ref(&today))?;
    let start = Instant::now();
    sitesync_core::sync::client::sync_once(&mut fresh).await?;
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    settle().await;
    let (up, down) = proxy.take();
    anyhow::ensure!(fresh.pending()?.is_empty(), "the day was not acknowledged");
    out.push(Wire {
        name: format!("known phone pushes a day of {} lines", today.labor.len()),
        lines: today.labor.len(),
        up,
        down,
        json: compact_json(&today.labor)?,
        ms,
    });
    Ok(out)
}

fn compact_json<T: serde::Serialize>(v: &T) -> Result<usize> {
    Ok(serde_json::to_vec(v)?.len())
}
