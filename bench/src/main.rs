//! `sitesync-bench`: measures sitesync's bytes on the wire, server throughput and latency for many
//! devices, the phone's cost, and the automerge-repo sync server on the same workloads, and prints
//! the figures as Markdown tables (the body of `BENCHMARKS.md`).
//!
//! ```text
//! cargo run --release -p sitesync-bench --bin sitesync-bench -- --out target/bench.md
//! ```

mod client;
mod device;
mod peer;
mod postgres;
mod scenarios;
mod server;
mod wire;
mod workload;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::scenarios::Figures;
use crate::workload::Fixtures;

/// Benchmarks of sitesync, side by side with the automerge-repo sync server.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Sections to run (default: all): wire, devices, pushes, rush, upload, client, peer, engines
    /// (engines needs --database).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// A PostgreSQL server on this machine, by an admin URL (postgresql://postgres@127.0.0.1:5432/postgres):
    /// the engines section runs the same pushes on SQLite, on PostgreSQL with one node and with two,
    /// each on a fresh database it creates there.
    #[arg(long)]
    database: Option<String>,
    /// Device counts for the many-devices runs.
    #[arg(long, value_delimiter = ',', default_value = "10,100,1000")]
    devices: Vec<usize>,
    /// Devices in the 7 a.m. rush.
    #[arg(long, default_value_t = 1000)]
    rush_devices: usize,
    /// Documents each device pushes in the rush.
    #[arg(long, default_value_t = 20)]
    rush_docs: usize,
    /// Also write the report to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The fixtures folder (company.json, logs.json).
    #[arg(long, default_value_os_t = repo().join("fixtures"))]
    fixtures: PathBuf,
    #[command(subcommand)]
    child: Option<Child>,
}

/// The benchmark's own child processes.
#[derive(Subcommand, Debug)]
enum Child {
    /// Internal: serve a data directory on a free loopback port until stdin closes.
    #[command(hide = true)]
    ServeChild {
        /// The data directory.
        #[arg(long)]
        data: PathBuf,
        /// The PostgreSQL database, if the state lives there.
        #[arg(long)]
        database: Option<String>,
    },
    /// Internal: measure the phone's cost on one store and print JSON.
    #[command(hide = true)]
    ClientChild {
        /// The store file.
        #[arg(long)]
        store: PathBuf,
        /// The site.
        #[arg(long)]
        site: String,
        /// Today.
        #[arg(long)]
        date: chrono::NaiveDate,
    },
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.child {
        Some(Child::ServeChild { data, database }) => return server::serve_child(data, database),
        Some(Child::ClientChild { store, site, date }) => return client::client_child(store, site, date),
        None => {}
    }
    // A thousand devices need a thousand sockets on each side.
    let _ = rlimit::increase_nofile_limit(65_536);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = rt.block_on(run(&cli))?;
    if let Some(out) = &cli.out {
        std::fs::write(out, &report)?;
    }
    Ok(())
}

fn wants(cli: &Cli, section: &str) -> bool {
    cli.only.is_empty() || cli.only.iter().any(|s| s == section)
}

/// Prints a section as soon as it is measured (the whole run takes minutes) and keeps it.
fn emit(report: &mut String, text: &str) {
    print!("{text}");
    report.push_str(text);
}

async fn run(cli: &Cli) -> Result<String> {
    let fixtures = Fixtures::read(&cli.fixtures)?;
    let mut report = String::new();
    emit(&mut report, &machine());
    let scratch = tempfile::tempdir()?;
    let need_docs = cli
        .devices
        .iter()
        .copied()
        .max()
        .unwrap_or(0)
        .max(cli.rush_devices)
        .max(1000)
        + 60;
    let docs = if ["devices", "pushes", "rush", "engines"].iter().any(|s| wants(cli, s)) {
        eprintln!("building {need_docs} site-day documents …");
        workload::build_days(scratch.path(), &fixtures, &fixtures.many_days(need_docs))?
    } else {
        Vec::new()
    };
    let mut server_rows: Vec<Figures> = Vec::new();
    let mut upload_fig = None;

    if wants(cli, "wire") {
        eprintln!("wire …");
        let rows = wire::wire(&fixtures).await?;
        let mut t = String::from(
            "\n## 1. Bytes on the wire (real phone, real server, counted at TCP through a proxy)\n\n\
             | sync | labor lines | phone → server B | server → phone B | B per line, all included | compact JSON B per line | ms |\n\
             |---|---:|---:|---:|---:|---:|---:|\n",
        );
        for w in &rows {
            let _ = writeln!(
                t,
                "| {} | {} | {} | {} | {:.1} | {:.1} | {:.1} |",
                w.name,
                w.lines,
                w.up,
                w.down,
                w.per_line(),
                w.json as f64 / w.lines.max(1) as f64,
                w.ms
            );
        }
        emit(&mut report, &t);
    }

    let header = "| workload | devices | pushes | lines/s | pushes/s | p50 ms | p99 ms | drained s | errors | server CPU s | server peak MiB |\n\
                  |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    let row = |f: &Figures| {
        format!(
            "| {} | {} | {} | {:.0} | {:.0} | {:.2} | {:.2} | {} | {} | {:.2} | {:.0} |\n",
            f.name,
            f.devices,
            f.pushes,
            f.lines_per_s,
            f.pushes_per_s,
            f.p50_ms,
            f.p99_ms,
            if f.drained_s > 0.0 {
                format!("{:.2}", f.drained_s)
            } else {
                "–".into()
            },
            f.errors,
            f.server_cpu_s,
            f.server_peak_mib
        )
    };
    if wants(cli, "devices") || wants(cli, "pushes") || wants(cli, "rush") || wants(cli, "upload") {
        emit(
            &mut report,
            &format!("\n## 2. Server throughput and latency (devices over real WebSockets on loopback)\n\n{header}"),
        );
    }
    if wants(cli, "devices") {
        for &n in &cli.devices {
            eprintln!("{n} devices …");
            let (f, _data, server, devices, mine) = scenarios::devices(&fixtures, &docs, n).await?;
            emit(&mut report, &row(&f));
            server_rows.push(f);
            // Each phone pushes an edit every 10 s on average: a busy morning for a foreman.
            let rate = (n as f64 / 10.0).max(5.0);
            let s = scenarios::steady(&server, devices, &mine, rate, 10.0).await?;
            emit(&mut report, &row(&s));
            server_rows.push(s);
        }
    }
    if wants(cli, "pushes") {
        let cold = &docs[..1000.min(docs.len())];
        eprintln!("one-entry pushes, cold …");
        let f = scenarios::one_entry(&fixtures, &docs, 48, 960, false).await?;
        emit(&mut report, &row(&f));
        eprintln!("one-entry pushes, hot …");
        let f = scenarios::one_entry(&fixtures, cold, 32, 6400, true).await?;
        emit(&mut report, &row(&f));
    }
    if cli.only.iter().any(|s| s == "engines") && cli.database.is_none() {
        anyhow::bail!("the engines section needs --database (a PostgreSQL server's admin URL)");
    }
    if let Some(admin) = cli.database.as_deref().filter(|_| wants(cli, "engines")) {
        let pg = postgres::Server::new(admin).await?;
        let mut t = String::from(
            "\n## 2b. One server on SQLite, one and two on PostgreSQL (one-entry pushes, cold documents, 48 connections)\n\n\
             CPU counts the server processes and, on PostgreSQL, every process of the database server.\n\n\
             | engine | nodes | pushes | pushes/s | p50 ms | p99 ms | errors | CPU s | of which PostgreSQL s | CPU ms per push |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for (engine, nodes) in [("SQLite", 1), ("PostgreSQL", 1), ("PostgreSQL", 2)] {
            eprintln!("engines: {engine} × {nodes} …");
            let on = (engine == "PostgreSQL").then_some(&pg);
            let f = scenarios::one_entry_on(&fixtures, &docs, 48, 960, false, on, nodes).await?;
            let _ = writeln!(
                t,
                "| {engine} | {nodes} | {} | {:.0} | {:.2} | {:.2} | {} | {:.2} | {:.2} | {:.2} |",
                f.pushes,
                f.pushes_per_s,
                f.p50_ms,
                f.p99_ms,
                f.errors,
                f.server_cpu_s,
                f.database_cpu_s,
                f.server_cpu_s * 1000.0 / f.pushes.max(1) as f64
            );
        }
        emit(&mut report, &t);
    }
    if wants(cli, "rush") {
        eprintln!("rush …");
        let f = scenarios::rush(
            &fixtures,
            &docs,
            cli.rush_devices,
            cli.rush_docs,
            Duration::from_secs(2),
        )
        .await?;
        emit(&mut report, &row(&f));
    }
    if wants(cli, "upload") {
        eprintln!("upload 200 × 50 …");
        let f = scenarios::upload(&fixtures, 200, 50).await?;
        emit(&mut report, &row(&f));
        upload_fig = Some(f);
    }

    if wants(cli, "client") {
        eprintln!("phone …");
        let rows = client::client(&fixtures, &[30, 365])?;
        let mut t = String::from(
            "\n## 3. The phone: a store of one site's logs (client-core, SQLite, fsync'd)\n\n\
             | store | labor lines | size on disk MiB | open ms | today's sheet, first ms | today's sheet ms | log one line ms | RSS after open MiB | peak RSS MiB |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for c in &rows {
            let _ = writeln!(
                t,
                "| {} days | {} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} | {:.1} |",
                c.days,
                c.lines,
                c.store_bytes as f64 / (1024.0 * 1024.0),
                c.open_ms,
                c.sheet_first_ms,
                c.sheet_ms,
                c.log_ms,
                c.rss_open_mib,
                c.peak_mib
            );
        }
        emit(&mut report, &t);
    }

    if wants(cli, "peer") {
        emit(&mut report, &peer_section(cli, upload_fig.as_ref(), &server_rows)?);
    }
    Ok(report)
}

/// Scenario 4: the peer on the same workloads, and the ratios.
fn peer_section(cli: &Cli, upload: Option<&Figures>, ours: &[Figures]) -> Result<String> {
    let mut t = String::from(
        "\n## 4. Side by side: the automerge-repo sync server (Node) on the same workloads\n\n\
         | workload | measure | sitesync | automerge-repo | ratio (better is > 1) |\n|---|---|---:|---:|---:|\n",
    );
    let repo = repo();
    let mut line = |w: &str, m: &str, a: f64, b: f64, higher_better: bool| {
        let ratio = if higher_better { a / b } else { b / a };
        let _ = writeln!(t, "| {w} | {m} | {a:.2} | {b:.2} | {ratio:.1}× |");
    };
    eprintln!("peer: upload 200 × 50 …");
    let p = peer::run(&repo, &["upload", "--docs", "200", "--entries", "50"].map(String::from))?;
    if let Some(u) = upload {
        line(
            "200 docs × 50 lines, one client",
            "seconds",
            u.wall_s,
            peer::num(&p, "wall_s"),
            false,
        );
        line("", "server CPU s", u.server_cpu_s, peer::num(&p, "server_cpu_s"), false);
        line(
            "",
            "server peak MiB",
            u.server_peak_mib,
            peer::num(&p, "server_peak_rss_kib") / 1024.0,
            false,
        );
    }
    let mut raw = vec![("upload".to_string(), p)];
    for &n in &cli.devices {
        eprintln!("peer: {n} devices …");
        let p = peer::run(
            &repo,
            &[
                "devices".to_string(),
                "--n".into(),
                n.to_string(),
                "--lines".into(),
                "45".into(),
            ],
        )?;
        if let Some(f) = ours
            .iter()
            .find(|f| f.devices == n && f.name.contains("push their day"))
        {
            let w = format!("{n} devices push their day");
            line(&w, "lines/s", f.lines_per_s, peer::num(&p, "lines_per_s"), true);
            line("", "p50 ms", f.p50_ms, peer::num(&p, "p50_ms"), false);
            line("", "p99 ms", f.p99_ms, peer::num(&p, "p99_ms"), false);
            line("", "drained s", f.drained_s, peer::num(&p, "fanout_drained_s"), false);
            line("", "server CPU s", f.server_cpu_s, peer::num(&p, "server_cpu_s"), false);
            line(
                "",
                "server peak MiB",
                f.server_peak_mib,
                peer::num(&p, "server_peak_rss_kib") / 1024.0,
                false,
            );
        }
        raw.push((format!("devices {n}"), p));
    }
    t.push_str("\nThe peer's own figures, as `bench/peer/run.sh` printed them:\n\n```\n");
    for (w, p) in raw {
        let _ = writeln!(t, "{w}: {p}");
    }
    t.push_str("```\n");
    Ok(t)
}

/// The machine the figures come from.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string())
        })
        .and_then(|k| k.parse::<f64>().ok())
        .map(|k| k / 1024.0 / 1024.0)
        .unwrap_or(0.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "## Machine\n\n{cpu}, {cores} cores, {mem:.0} GiB, Linux {}; run {}.\n",
        kernel.trim(),
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    )
}
