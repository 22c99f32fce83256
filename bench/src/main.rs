//! `sitesync-bench`: measures sitesync's bytes on the wire, server throughput and latency for many
//! devices, the phone's cost, and the automerge-repo sync server on the same workloads, and prints
//! the figures as Markdown tables (the body of `BENCHMARKS.md`).
//!
//! ```text
//! cargo run --release -p sitesync-bench --bin sitesync-bench -- --out target/bench.md
//! cargo run --release -p sitesync-bench --bin sitesync-bench -- --quick    # CI's regression check
//! ```

mod client;
mod dashboard;
mod device;
mod peer;
mod postgres;
mod quick;
mod realistic;
mod scenarios;
mod server;
mod wire;
mod workload;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::scenarios::Figures;
use crate::workload::Fixtures;

/// Benchmarks of sitesync, side by side with the automerge-repo sync server.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Sections to run (default: all): wire, devices, pushes, rush, upload, realistic, idle, client,
    /// peer, engines (engines needs --database).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// CI's regression check instead of the report (about a minute in release): small cold and
    /// hot one-entry push runs, each compared with Automerge merging the same change in memory in
    /// this process; exits non-zero when a ratio reaches about seven times what it is now, or on any
    /// error. Ignores the other options but --fixtures.
    #[arg(long)]
    quick: bool,
    /// Sites of the realistic company (the fixture's three, then copies of them).
    #[arg(long, default_value_t = 100)]
    sites: usize,
    /// Phones per site in the realistic company.
    #[arg(long, default_value_t = 10)]
    phones_per_site: usize,
    /// Head-office devices syncing every site in the realistic company.
    #[arg(long, default_value_t = 20)]
    office_devices: usize,
    /// Head-office dashboards (`/v1/events` streams) in the realistic company.
    #[arg(long, default_value_t = 5)]
    dashboards: usize,
    /// Seconds of the realistic steady state (each phone one edit every 10 s).
    #[arg(long, default_value_t = 60.0)]
    steady_seconds: f64,
    /// Documents each phone pushes in the realistic rush.
    #[arg(long, default_value_t = 5)]
    realistic_rush_docs: usize,
    /// Devices connected at once, idle, in the idle section.
    #[arg(long, default_value_t = 10_000)]
    idle_devices: usize,
    /// Devices the automerge-repo peer (Node) holds connected in the idle section's comparison,
    /// each a whole Repo in the driver's process; 0 leaves the peer out (it needs node and npm).
    #[arg(long, default_value_t = 1000)]
    peer_idle_devices: usize,
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

/// The server's allocator, as `sitesync-server` runs on (the server under test is this binary's
/// `serve-child`); the bench's own clients run on it too.
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: sitesync_server::Allocator = sitesync_server::Allocator;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.child {
        Some(Child::ServeChild { data, database }) => {
            #[cfg(not(feature = "system-allocator"))]
            sitesync_server::metrics::heap_is_jemalloc();
            return server::serve_child(data, database);
        }
        Some(Child::ClientChild { store, site, date }) => return client::client_child(store, site, date),
        None => {}
    }
    // Ten thousand devices need ten thousand sockets on each side (the server child inherits the
    // raised limit, and raises its own to the hard one besides).
    let _ = rlimit::increase_nofile_limit(65_536);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    if cli.quick {
        return rt.block_on(quick(&cli));
    }
    let report = rt.block_on(run(&cli))?;
    if let Some(out) = &cli.out {
        std::fs::write(out, &report)?;
    }
    Ok(())
}

/// `--quick`: prints the comparisons and fails on the first one over its limit.
async fn quick(cli: &Cli) -> Result<()> {
    let fixtures = Fixtures::read(&cli.fixtures)?;
    let scratch = tempfile::tempdir()?;
    let checks = quick::quick(&fixtures, scratch.path()).await?;
    println!(
        "| run | pushes | errors | server CPU ms per push | Automerge ms per change | ratio | fails at |\n\
         |---|---:|---:|---:|---:|---:|---:|"
    );
    for c in &checks {
        println!(
            "| {} | {} | {} | {:.3} | {:.4} | {:.1} | {:.0} |",
            c.figures.name,
            c.figures.pushes,
            c.figures.errors,
            c.server_s * 1000.0,
            c.reference_s * 1000.0,
            c.ratio(),
            c.limit
        );
    }
    let failures: Vec<String> = checks.iter().filter_map(quick::Check::failure).collect();
    if !failures.is_empty() {
        anyhow::bail!("the quick bench failed:\n{}", failures.join("\n"));
    }
    println!("quick bench: ok");
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

    let header = "| workload | devices | pushes | lines/s | pushes/s | p50 ms | p99 ms | server p50 ms | server p99 ms | drained s | deliveries/s | errors | server CPU s | CPU s per 1,000 pushes | server peak MiB | server peak heap MiB |\n\
                  |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    let row = |f: &Figures| {
        format!(
            "| {} | {} | {} | {:.0} | {:.0} | {:.2} | {:.2} | {} | {} | {} | {} | {} | {:.2} | {:.2} | {:.0} | {:.0} |\n",
            f.name,
            f.devices,
            f.pushes,
            f.lines_per_s,
            f.pushes_per_s,
            f.p50_ms,
            f.p99_ms,
            server_ms(f.server_p50_ms),
            server_ms(f.server_p99_ms),
            if f.drained_s > 0.0 {
                format!("{:.2}", f.drained_s)
            } else {
                "–".into()
            },
            if f.deliveries > 0 {
                format!("{:.0}", f.deliveries_per_s())
            } else {
                "–".into()
            },
            f.errors,
            f.server_cpu_s,
            f.cpu_per_1000(),
            f.server_peak_mib,
            f.server_peak_heap_mib
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

    if wants(cli, "realistic") || wants(cli, "idle") {
        let shape = realistic::Shape {
            sites: cli.sites,
            phones: cli.phones_per_site,
            days: cli.phones_per_site.max(10),
            office: cli.office_devices,
            dashboards: cli.dashboards,
        };
        eprintln!(
            "realistic company: {} sites × {} phones, building {} site-day documents …",
            shape.sites,
            shape.phones,
            shape.sites * shape.days
        );
        let company = realistic::Company::build(&fixtures, scratch.path(), shape)?;
        if wants(cli, "realistic") {
            let mut t = format!(
                "\n## 2c. The realistic company: {} phones over {} sites, {} head-office devices, {} dashboards\n\n\
                 Phones edit their own site's days; head-office devices sync every site; a dashboard is the \
                 head-office page's `/v1/events` stream (server-sent events). \"All hold all\" is when every phone \
                 holds the last heads of every touched day of its site, every head-office device those of every \
                 touched day, and every dashboard has had an event covering the last change; deliveries count \
                 documents in live updates and catch-ups, and dashboard events.\n\n\
                 | workload | devices | pushes | pushes/s | p50 ms | p99 ms | server p50 ms | server p99 ms | CPU s per 1,000 pushes | server peak MiB | server peak heap MiB | deliveries/s | all hold all s | after last ack s | errors |\n\
                 |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
                shape.sites * shape.phones,
                shape.sites,
                shape.office,
                shape.dashboards
            );
            emit(&mut report, &t);
            t.clear();
            // The floor under a durable push's round trip: what the disk takes to sync a write.
            let (sync_p50, sync_p99) = disk_sync(scratch.path())?;
            let runs = realistic::day(
                &company,
                cli.steady_seconds,
                cli.realistic_rush_docs,
                Duration::from_secs(2),
            )
            .await?;
            for f in &runs {
                let line = format!(
                    "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {} | {} | {:.2} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} | {} |\n",
                    f.name,
                    f.devices,
                    f.pushes,
                    f.pushes_per_s,
                    f.p50_ms,
                    f.p99_ms,
                    server_ms(f.server_p50_ms),
                    server_ms(f.server_p99_ms),
                    f.cpu_per_1000(),
                    f.server_peak_mib,
                    f.server_peak_heap_mib,
                    f.deliveries_per_s(),
                    f.drained_s,
                    f.lag_s,
                    f.errors
                );
                emit(&mut report, &line);
            }
            emit(
                &mut report,
                &format!(
                    "\nThe disk under the server's data, just before: a 4 KiB write and its fsync took p50 {sync_p50:.2} ms, \
                     p99 {sync_p99:.2} ms (200 in a row). Every push is acknowledged after its group's commit is synced.\n"
                ),
            );
        }
        if wants(cli, "idle") {
            eprintln!("idle: {} devices …", cli.idle_devices);
            let i = realistic::idle(&company, cli.idle_devices, Duration::from_secs(10)).await?;
            let mut t = format!(
                "\n## 2d. Idle connected devices on one node (WebSocket, hello, then only pings)\n\n\
                 | server | devices | connected | errors | connect s | server CPU s | RSS before MiB | RSS connected MiB | KiB per device | peak MiB |\n\
                 |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n\
                 | sitesync | {} | {} | {} | {:.1} | {:.2} | {:.0} | {:.0} | {:.1} | {:.0} |\n",
                i.devices,
                i.connected,
                i.errors,
                i.connect_s,
                i.cpu_s,
                i.rss_before_mib,
                i.rss_after_mib,
                i.kib_per_device(),
                i.peak_mib
            );
            if cli.peer_idle_devices > 0 {
                eprintln!("peer: idle {} devices …", cli.peer_idle_devices);
                let p = peer::run(
                    &repo(),
                    &["idle".to_string(), "--n".into(), cli.peer_idle_devices.to_string()],
                )?;
                let before = peer::num(&p, "server_rss_before_kib") / 1024.0;
                let after = peer::num(&p, "server_rss_connected_kib") / 1024.0;
                let connected = peer::num(&p, "connected");
                let _ = writeln!(
                    t,
                    "| automerge-repo (Node) | {} | {connected:.0} | {:.0} | {:.1} | {:.2} | {before:.0} | {after:.0} | {:.1} | {:.0} |",
                    cli.peer_idle_devices,
                    peer::num(&p, "errors"),
                    peer::num(&p, "connect_s"),
                    peer::num(&p, "server_cpu_s"),
                    (after - before) * 1024.0 / connected.max(1.0),
                    peer::num(&p, "server_peak_rss_kib") / 1024.0
                );
            }
            emit(&mut report, &t);
        }
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
        if !b.is_finite() {
            // The peer printed no figure: its fan-out did not finish in the driver's time.
            let _ = writeln!(t, "| {w} | {m} | {a:.2} | not reached | – |");
            return;
        }
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

/// A server-side push time for a table: "–" where the workload did not measure it.
fn server_ms(ms: f64) -> String {
    if ms > 0.0 { format!("{ms:.2}") } else { "–".into() }
}

/// Milliseconds a 4 KiB append and its `fsync` take in `dir` (p50, p99 of 200 in a row): what
/// a commit that must be on stable storage waits for at the least.
fn disk_sync(dir: &std::path::Path) -> Result<(f64, f64)> {
    use std::io::Write;
    let path = dir.join("sync-probe");
    let mut file = std::fs::File::create(&path)?;
    let mut ms = Vec::with_capacity(200);
    for _ in 0..200 {
        file.write_all(&[7u8; 4096])?;
        let start = Instant::now();
        file.sync_data()?;
        ms.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    std::fs::remove_file(&path)?;
    ms.sort_by(f64::total_cmp);
    Ok((ms[100], ms[198]))
}
