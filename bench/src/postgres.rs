//! The PostgreSQL side of the engine runs: a fresh database per run on the server `--database`
//! names, and the CPU time of that server's processes (the postmaster and its children: backends,
//! WAL writer, checkpointer), so that CPU per push counts the database's share too.

use anyhow::{Context, Result};
use tokio_postgres::NoTls;

/// A PostgreSQL server reached through an admin URL (`postgresql://user@host:port/postgres`).
pub struct Server {
    admin: String,
    /// The postmaster's pid, read from its data directory (the bench runs on the same machine).
    postmaster: u32,
}

impl Server {
    /// Connects to the admin URL and finds the server's processes.
    pub async fn new(admin: &str) -> Result<Server> {
        let client = connect(admin).await?;
        let dir: String = client
            .query_one("SELECT setting FROM pg_settings WHERE name = 'data_directory'", &[])
            .await?
            .get(0);
        let pid = std::fs::read_to_string(format!("{dir}/postmaster.pid"))
            .with_context(|| format!("reading {dir}/postmaster.pid (the bench measures a local server)"))?;
        let postmaster = pid.lines().next().unwrap_or_default().trim().parse()?;
        Ok(Server {
            admin: admin.to_string(),
            postmaster,
        })
    }

    /// Creates a fresh database and returns its URL.
    pub async fn fresh_database(&self, name: &str) -> Result<String> {
        let client = connect(&self.admin).await?;
        // Two statements: neither runs inside a transaction, which one query string of both would be.
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await?;
        client.batch_execute(&format!("CREATE DATABASE {name}")).await?;
        let (base, query) = match self.admin.split_once('?') {
            Some((b, q)) => (b, format!("?{q}")),
            None => (self.admin.as_str(), String::new()),
        };
        let (server, _) = base.rsplit_once('/').context("an admin URL ends with /DATABASE")?;
        Ok(format!("{server}/{name}{query}"))
    }

    /// CPU seconds used so far by the postmaster and its children.
    pub fn cpu_seconds(&self) -> Result<f64> {
        let mut total = crate::server::cpu_seconds(self.postmaster)?;
        for entry in std::fs::read_dir("/proc")? {
            let Ok(pid) = entry?.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let parent = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if parent == Some(self.postmaster) {
                // A backend that exited meanwhile takes its time with it: a small undercount.
                total += crate::server::cpu_seconds(pid).unwrap_or(0.0);
            }
        }
        Ok(total)
    }
}

async fn connect(url: &str) -> Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .with_context(|| "connecting to the bench's PostgreSQL".to_string())?;
    tokio::spawn(connection);
    Ok(client)
}
