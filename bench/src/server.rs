//! The server under test, in its own process (this binary re-run as `serve-child`), so that its CPU
//! time and peak memory are its own; and the data directory it serves, prepared beforehand.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result};
use sitesync_core::Store;
use sitesync_server::AppState;

use crate::workload::{DayDoc, Fixtures};

/// A data directory with the fixture company, devices enrolled for it, and optionally documents.
pub struct DataDir {
    /// The directory (removed on drop).
    pub dir: tempfile::TempDir,
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
        let dir = tempfile::Builder::new().prefix("sitesync-bench-").tempdir()?;
        // What `AppState::open` does, without a runtime: the bench may be inside one.
        let auth = sitesync_server::auth::AuthDb::open(dir.path())?;
        let mut store = Store::open(dir.path().join("documents.sqlite3"))?;
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
        Ok(DataDir { dir, writers })
    }

    /// Enrolls one device per user in `users`; returns their tokens in order.
    pub fn devices(&self, users: &[String]) -> Result<Vec<String>> {
        let auth = sitesync_server::auth::AuthDb::open(self.dir.path())?;
        users
            .iter()
            .enumerate()
            .map(|(i, u)| Ok(auth.add_device(u, &format!("bench-{i}"))?.1))
            .collect()
    }

    /// Stores documents on the server beforehand, with their signatures, as if phones had pushed
    /// them earlier.
    pub fn preload(&self, docs: &[DayDoc]) -> Result<()> {
        let mut store = Store::open(self.dir.path().join("documents.sqlite3"))?;
        for d in docs {
            if let Some((device, user)) = d.writer_key().and_then(|k| self.writers.get(&k)) {
                store.keep_signatures(&d.id, &d.sigs, Some((device, user)))?;
            }
            store.merge_changes(&d.id, &d.bytes)?;
        }
        Ok(())
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
}

impl ServerProcess {
    /// Starts `sitesync-bench serve-child --data DIR` and waits until it listens.
    pub fn start(data: &Path) -> Result<ServerProcess> {
        let exe = std::env::current_exe()?;
        let mut child = Command::new(exe)
            .arg("serve-child")
            .arg("--data")
            .arg(data)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the server process")?;
        let stdout = child.stdout.take().context("server stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .with_context(|| format!("server said {line:?}"))?
            .parse()?;
        Ok(ServerProcess { child, addr })
    }

    /// The process's CPU time so far (user + system), in seconds.
    pub fn cpu_seconds(&self) -> Result<f64> {
        cpu_seconds(self.child.id())
    }

    /// The process's peak resident memory since the last [`ServerProcess::reset_peak`], in MiB.
    pub fn peak_rss_mib(&self) -> Result<f64> {
        peak_rss_mib(self.child.id())
    }

    /// Starts a new peak-memory measurement (Linux `clear_refs` 5).
    pub fn reset_peak(&self) {
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5");
    }

    /// The server's base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
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
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .context("no VmHWM")?
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

/// The child's side: serve `data` on a free loopback port until stdin closes.
pub fn serve_child(data: PathBuf) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let state = AppState::open(&data)?;
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
