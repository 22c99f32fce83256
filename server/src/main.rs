//! `sitesync-server`: run the relay and head-office service, or administer its data directory.

use sitesync_server::limits::{ConnectionLimits, Limits};
use sitesync_server::tls::Tls;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use sitesync_core::import::Company;
use sitesync_server::logs::LogFormat;
use sitesync_server::storage::Location;
use sitesync_server::{AppState, admin};

/// jemalloc, for memory that a burst freed to go back to the system (see [`sitesync_server::Allocator`]).
#[global_allocator]
static ALLOCATOR: sitesync_server::Allocator = sitesync_server::Allocator;

/// How long the demo's loader holds its lease: longer than loading takes, so a second server
/// started beside it does not load the demo again.
const DEMO_LEASE: std::time::Duration = std::time::Duration::from_secs(600);

/// The sitesync relay and head-office service.
#[derive(Parser, Debug)]
#[command(name = "sitesync-server", version, about)]
struct Cli {
    /// How log lines are written on stderr: `text` (key=value) or `json` (one object a line, with
    /// the request id or the sync connection's id and device on every line of a request or
    /// connection).
    #[arg(long, env = "SITESYNC_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve sync and the head-office API. A first start on an empty data directory writes an admin
    /// token to DATA/admin-token.
    Serve {
        /// Data directory (SQLite databases, admin token).
        #[arg(long, env = "SITESYNC_DATA", default_value = "./sitesync-data")]
        data: PathBuf,
        #[command(flatten)]
        database: DatabaseArgs,
        /// Address to listen on.
        #[arg(long, env = "SITESYNC_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// On an empty data directory, load the demo company (3 sites, 156 workers, 90 days of work up to
        /// today, generated from a fixed seed) and write a device token per demo user to
        /// DATA/demo-tokens.txt.
        #[arg(long)]
        demo: bool,
        /// HTTP API requests per second allowed per device token, sustained (beyond it: 429).
        #[arg(long, env = "SITESYNC_API_RATE", default_value_t = Limits::default().api_per_second)]
        api_rate: u32,
        /// HTTP API requests a device token may make in a burst.
        #[arg(long, env = "SITESYNC_API_BURST", default_value_t = Limits::default().api_burst)]
        api_burst: u32,
        /// Serve HTTPS with this certificate chain (PEM, leaf first); needs --tls-key. The files are
        /// read again on SIGHUP, so a renewed certificate needs no restart.
        #[arg(long, env = "SITESYNC_TLS_CERT", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
        #[arg(long, env = "SITESYNC_TLS_KEY", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Connections served at once (sync, API, dashboard); one more is closed at once. Lowered at
        /// start to fit the open-file limit (which is raised to the system's hard limit first).
        #[arg(long, env = "SITESYNC_MAX_CONNECTIONS", default_value_t = ConnectionLimits::default().max_connections)]
        max_connections: usize,
        /// Seconds a client has for the TLS handshake and for each request header (also how long an
        /// idle keep-alive connection stays open).
        #[arg(long, env = "SITESYNC_HEADER_TIMEOUT", default_value_t = ConnectionLimits::default().header_timeout.as_secs_f64())]
        header_timeout: f64,
        /// The largest attachment a device may upload, in bytes (a photo, a delivery note as PDF);
        /// a larger one is refused with 413 and nothing is stored.
        #[arg(long, env = "SITESYNC_MAX_BLOB_BYTES", default_value_t = ConnectionLimits::default().blob_bytes)]
        max_blob_bytes: usize,
        /// Hours a partial upload may sit untouched in DATA/blobs/staging before it is deleted
        /// (checked at start, then hourly); a device that comes back later sends that file again.
        #[arg(long, env = "SITESYNC_STAGING_MAX_AGE_HOURS", default_value_t = ConnectionLimits::default().staging_max_age.as_secs() / 3600,
            value_parser = clap::value_parser!(u64).range(1..))]
        staging_max_age_hours: u64,
        #[command(flatten)]
        blob_store: BlobStoreArgs,
        /// A file holding the operators' token for GET /metrics (besides any admin's device token);
        /// at least 16 characters, surrounding whitespace ignored.
        #[arg(long, env = "SITESYNC_METRICS_TOKEN_FILE")]
        metrics_token_file: Option<PathBuf>,
        /// Also serve GET /metrics on this address, in plain HTTP and to anyone who reaches it: bind
        /// it to a private interface (127.0.0.1, the scrape network), never a public one.
        #[arg(long, env = "SITESYNC_METRICS_LISTEN")]
        metrics_listen: Option<SocketAddr>,
    },
    /// Check a data directory (or a PostgreSQL database) offline, reading only: the SQLite files'
    /// integrity, that every document loads with the heads recorded for it, that every stored
    /// signature verifies, and that the report tables equal a rebuild from the documents. Prints
    /// each problem (document, what is wrong) and exits non-zero if there is any.
    Check {
        /// Data directory.
        #[arg(long, env = "SITESYNC_DATA", default_value = "./sitesync-data")]
        data: PathBuf,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Administer a data directory (or a PostgreSQL database); works while the server runs on it.
    Admin {
        /// Data directory.
        #[arg(long, env = "SITESYNC_DATA", default_value = "./sitesync-data")]
        data: PathBuf,
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(subcommand)]
        command: AdminCommand,
    },
}

/// Where the documents and credentials live.
#[derive(clap::Args, Debug, Clone)]
struct DatabaseArgs {
    /// Keep documents and credentials in this PostgreSQL database (postgres://USER@HOST:PORT/DB)
    /// instead of SQLite files in --data. Any number of servers may share one database; --data then
    /// holds only the admin token of a first start and demo tokens. The schema is created or
    /// migrated at start, once however many servers start together.
    #[arg(long, env = "SITESYNC_DATABASE", global = true)]
    database: Option<String>,
    /// PostgreSQL connections pooled for credentials and reports (the documents' writer, reader
    /// and jobs hold three more, and listening for other servers one).
    #[arg(long, env = "SITESYNC_DB_CONNECTIONS", default_value_t = 8, global = true)]
    db_connections: usize,
    /// Keep each org's personal-data key (which opens the sealed ID-card and bank-card numbers)
    /// in this file (created 0600, one line per org) instead of in the database, so that a copy
    /// of --data or of the database holds no key to open them with. Every server sharing a
    /// database needs the same file; losing it loses every sealed number. Default: the database.
    #[arg(long, env = "SITESYNC_PII_KEY_FILE", global = true)]
    pii_key_file: Option<PathBuf>,
}

/// `--pii-key-file`, set once from the command line before any state is opened.
static PII_KEY_FILE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Where attachment bytes (photos, files) live.
#[derive(clap::Args, Debug, Clone)]
struct BlobStoreArgs {
    /// Where verified attachment bytes are kept: `fs` (files under DATA/blobs) or `s3` (an
    /// S3-compatible bucket, --s3-*; credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY,
    /// and AWS_SESSION_TOKEN if set). Without it: `fs` on SQLite, and on PostgreSQL the database
    /// itself, so that nodes keep nothing of their own. Uploads in progress are staged in
    /// DATA/blobs/staging on SQLite and in the database on PostgreSQL, whichever the store.
    #[arg(long, env = "SITESYNC_BLOB_STORE", value_enum)]
    blob_store: Option<BlobStoreKind>,
    /// The S3 service's URL (http://127.0.0.1:9000 for MinIO or moto); without it, AWS by region.
    #[arg(long, env = "SITESYNC_S3_ENDPOINT")]
    s3_endpoint: Option<String>,
    /// The bucket (it must exist); required with --blob-store s3.
    #[arg(long, env = "SITESYNC_S3_BUCKET", required_if_eq("blob_store", "s3"))]
    s3_bucket: Option<String>,
    /// The region requests are signed for.
    #[arg(long, env = "SITESYNC_S3_REGION", default_value = "us-east-1")]
    s3_region: String,
    /// The key prefix blobs are stored under (PREFIX/aa/SHA256), so the bucket may hold other things.
    #[arg(long, env = "SITESYNC_S3_PREFIX", default_value = "blobs")]
    s3_prefix: String,
}

/// The kinds of blob storage.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum BlobStoreKind {
    /// Files in the data directory.
    Fs,
    /// An S3-compatible object store.
    S3,
}

impl BlobStoreArgs {
    /// The store asked for, connected and checked; `None` for the engine's own default.
    async fn open(&self, data: &Path) -> Result<Option<Arc<dyn sitesync_server::blobs::BlobStore>>> {
        match self.blob_store {
            None => return Ok(None),
            Some(BlobStoreKind::Fs) => {
                let store = sitesync_server::blobs::FsBlobStore::open(&data.join("blobs"))?;
                return Ok(Some(Arc::new(store)));
            }
            Some(BlobStoreKind::S3) => {}
        }
        let mut config = sitesync_server::blobs::s3::S3Config::new(
            self.s3_endpoint.clone(),
            self.s3_bucket.as_deref().unwrap_or_default(),
            &self.s3_region,
        );
        config.prefix = self.s3_prefix.clone();
        let store = tokio::task::spawn_blocking(move || sitesync_server::blobs::s3::S3BlobStore::open(&config))
            .await?
            .context("opening the S3 blob store")?;
        Ok(Some(Arc::new(store)))
    }
}

impl DatabaseArgs {
    fn location(&self) -> Location {
        match &self.database {
            None => Location::Sqlite,
            Some(url) => Location::Postgres {
                url: url.clone(),
                connections: self.db_connections,
            },
        }
    }
}

/// Opens the state on a blocking thread (PostgreSQL's client blocks while it connects and migrates).
async fn open_state(data: &Path, location: Location) -> Result<AppState> {
    let dir = data.to_path_buf();
    let what = match &location {
        Location::Sqlite => data.display().to_string(),
        Location::Postgres { .. } => "the PostgreSQL database".to_string(),
    };
    let state = tokio::task::spawn_blocking(move || AppState::open_at(&dir, &location))
        .await?
        .with_context(|| format!("opening {what}"))?;
    if let Some(path) = PII_KEY_FILE.get().cloned() {
        state.auth(move |a| a.use_pii_key_file(path)).await?;
    }
    Ok(state)
}

#[derive(Subcommand, Debug)]
enum AdminCommand {
    /// Import a company.json: org, sites with their master data, users with roles and site grants.
    Import {
        /// The company.json file.
        file: PathBuf,
    },
    /// Create or rename an organisation.
    Org {
        /// Org id.
        id: String,
        /// Name.
        name: String,
    },
    /// Create a site (with an empty roster) in an org.
    Site {
        /// Org id.
        #[arg(long)]
        org: String,
        /// Site id.
        #[arg(long)]
        id: String,
        /// Short code.
        #[arg(long, default_value = "")]
        code: String,
        /// Name.
        #[arg(long)]
        name: String,
        /// IANA time zone.
        #[arg(long, default_value = "Asia/Shanghai")]
        timezone: String,
    },
    /// Create or update a user.
    User {
        /// Org id.
        #[arg(long)]
        org: String,
        /// User id.
        #[arg(long)]
        id: String,
        /// Name.
        #[arg(long)]
        name: String,
        /// foreman, site_manager, head_office or admin.
        #[arg(long)]
        role: String,
        /// Grant every site of the org.
        #[arg(long)]
        all_sites: bool,
    },
    /// Grant a user a site.
    Grant {
        /// User id.
        #[arg(long)]
        user: String,
        /// Site id.
        #[arg(long)]
        site: String,
    },
    /// Enroll or revoke devices.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Rebuild the report tables from the documents alone.
    Reindex,
    /// Copy the databases consistently while the server runs (SQLite online backup). Restore by
    /// starting a server on the copy: `serve --data OUT`. On PostgreSQL use pg_dump, then
    /// `renew-epoch` on the restored database.
    Backup {
        /// An empty directory for the copy.
        out: PathBuf,
    },
    /// Start a new data epoch, so phones offer everything again: run it on a database restored
    /// from a dump (changes acknowledged after the dump are not in it).
    RenewEpoch,
    /// Pay periods, as head office: close a crew's period, mark it paid, write its bank file (the
    /// same code as POST /v1/pay/close, POST /v1/pay/paid and GET /v1/pay/bank).
    #[command(subcommand)]
    Pay(PayCommand),
    /// Reminder channels: WeCom, DingTalk or Feishu bots, or a generic JSON webhook.
    #[command(subcommand)]
    Notify(NotifyCommand),
    /// Evaluate the reminder rules and deliver what is due.
    #[command(subcommand)]
    Reminders(RemindersCommand),
}

#[derive(Subcommand, Debug)]
enum NotifyCommand {
    /// Add a channel to an org and print its id.
    Add {
        /// Org id.
        #[arg(long)]
        org: String,
        /// The platform.
        #[arg(long, value_enum)]
        kind: sitesync_server::reminders::channel::Kind,
        /// The bot's webhook URL (or the generic webhook's endpoint).
        #[arg(long)]
        url: String,
        /// The signing secret: DingTalk's SEC…, Feishu's, or the HMAC key of the generic webhook's
        /// X-Sitesync-Signature.
        #[arg(long)]
        secret: Option<String>,
        /// The rules it receives, comma-separated (default all): missing_log, approval_waiting,
        /// unsigned_month, checkin_due, kr_red.
        #[arg(long, value_delimiter = ',')]
        rules: Option<Vec<String>>,
        /// Whom to @-mention: a mobile number (WeCom, DingTalk) or user id (Feishu), for every
        /// rule, or RULE=MOBILE for one rule's reminders. Repeatable.
        #[arg(long = "mention")]
        mentions: Vec<String>,
        /// Quiet hours in each site's own time, HH:MM-HH:MM (e.g. 22:00-07:00): reminders due then
        /// are sent when they end.
        #[arg(long)]
        quiet: Option<String>,
    },
    /// List channels (of one org, or all).
    List {
        /// Org id.
        #[arg(long)]
        org: Option<String>,
    },
    /// Remove a channel.
    Rm {
        /// Channel id (nc-…).
        id: String,
    },
}

#[derive(Subcommand, Debug)]
enum RemindersCommand {
    /// Evaluate every rule as of a moment and deliver what is due and not delivered before: what the
    /// server's scheduler does every minute. Prints each reminder and what became of it.
    Run {
        /// The moment, RFC 3339 (2026-12-10T19:30:00+08:00); default now.
        #[arg(long)]
        at: Option<chrono::DateTime<chrono::FixedOffset>>,
    },
}

/// A crew's pay period and who acts on it.
#[derive(clap::Args, Debug)]
struct PayRange {
    /// The head-office (or admin) user acting: recorded as who closed or paid.
    #[arg(long = "as", value_name = "USER")]
    user: String,
    /// Site id.
    #[arg(long)]
    site: String,
    /// Crew id.
    #[arg(long)]
    crew: String,
    /// First day (YYYY-MM-DD), inclusive.
    #[arg(long)]
    from: chrono::NaiveDate,
    /// Last day (YYYY-MM-DD), inclusive.
    #[arg(long)]
    to: chrono::NaiveDate,
}

#[derive(Subcommand, Debug)]
enum PayCommand {
    /// Close the period and print its sheet as JSON; refused while days are unapproved unless
    /// --force (they are then left out and listed).
    Close {
        #[command(flatten)]
        range: PayRange,
        /// Close even though days of the range are not approved.
        #[arg(long)]
        force: bool,
    },
    /// Record the closed period's payment (once) and print its sheet as JSON.
    Paid {
        #[command(flatten)]
        range: PayRange,
        /// The bank's or payroll's payment reference.
        #[arg(long)]
        reference: String,
    },
    /// Write the closed period's bank payment file (代发, CSV, the whole account numbers).
    Bank {
        #[command(flatten)]
        range: PayRange,
        /// Columns, in order, from name, account, bank, amount, remark, worker.
        #[arg(long, default_value = "name,account,amount,remark")]
        columns: String,
        /// The CSV file to write.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum DeviceCommand {
    /// Enroll a device for a user and print its token (shown only once).
    Add {
        /// User id.
        #[arg(long)]
        user: String,
        /// A label, e.g. the phone's model.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Revoke a device: it is cut off at its next message.
    Revoke {
        /// Device id (d-…).
        device: String,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    sitesync_server::metrics::heap_is_jemalloc();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line, the causes after colons, whatever RUST_BACKTRACE says: anyhow's `Debug`
            // (what returning the error from `main` prints) adds a backtrace dump when it is set.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<()> {
    let cli = Cli::parse();
    sitesync_server::logs::init(cli.log_format);
    let (Command::Serve { database, .. } | Command::Check { database, .. } | Command::Admin { database, .. }) =
        &cli.command;
    if let Some(path) = &database.pii_key_file {
        let _ = PII_KEY_FILE.set(path.clone());
    }
    // Everything the server writes (databases, logs, backups, tokens) is for its own user only.
    sitesync_server::files::restrict_umask();
    match cli.command {
        Command::Serve {
            data,
            database,
            listen,
            demo,
            api_rate,
            api_burst,
            tls_cert,
            tls_key,
            max_connections,
            header_timeout,
            max_blob_bytes,
            staging_max_age_hours,
            blob_store,
            metrics_token_file,
            metrics_listen,
        } => {
            let metrics_token = match metrics_token_file {
                None => None,
                Some(file) => {
                    let token = std::fs::read_to_string(&file)
                        .with_context(|| format!("reading the metrics token {}", file.display()))?;
                    let token = token.trim().to_string();
                    if token.len() < 16 {
                        anyhow::bail!("the metrics token in {} is shorter than 16 characters", file.display());
                    }
                    Some(token)
                }
            };
            // Bound before anything is initialised, like the main listener.
            let metrics_listener = match metrics_listen {
                None => None,
                Some(addr) => Some(
                    tokio::net::TcpListener::bind(addr)
                        .await
                        .with_context(|| format!("listening for metrics on {addr}"))?,
                ),
            };
            let limits = Limits {
                api_per_second: api_rate,
                api_burst,
                ..Limits::default()
            };
            if !(header_timeout.is_finite() && header_timeout > 0.0) {
                anyhow::bail!("--header-timeout must be a positive number of seconds");
            }
            let open_files = sitesync_server::limits::raise_open_files();
            let fitted = sitesync_server::limits::fit_connections(max_connections, open_files);
            if fitted < max_connections {
                tracing::warn!(
                    open_files,
                    wanted = max_connections,
                    max_connections = fitted,
                    "the open-file limit allows fewer connections than asked"
                );
            }
            tracing::info!(open_files, max_connections = fitted, "limits");
            let front = ConnectionLimits {
                max_connections: fitted,
                header_timeout: std::time::Duration::from_secs_f64(header_timeout),
                blob_bytes: max_blob_bytes,
                staging_max_age: std::time::Duration::from_secs(staging_max_age_hours.saturating_mul(3600)),
                ..ConnectionLimits::default()
            };
            let tls = match (tls_cert, tls_key) {
                (Some(cert), Some(key)) => Some(Arc::new(Tls::load(&cert, &key)?)),
                _ => None,
            };
            let blobs = blob_store.open(&data).await?;
            let tune = move |state: AppState| {
                let state = state.with_limits(limits).with_connection_limits(front);
                let state = match &metrics_token {
                    Some(token) => state.with_metrics_token(token),
                    None => state,
                };
                match blobs {
                    Some(blobs) => state.with_blob_store(blobs),
                    None => state,
                }
            };
            serve(&data, database.location(), listen, demo, tls, metrics_listener, tune).await
        }
        Command::Check { data, database } => check(data, database.location()).await,
        Command::Admin {
            data,
            database,
            command,
        } => admin_command(&data, database.location(), command).await,
    }
}

async fn serve(
    data: &Path,
    location: Location,
    listen: SocketAddr,
    demo: bool,
    tls: Option<Arc<Tls>>,
    metrics_listener: Option<tokio::net::TcpListener>,
    // The limits and blob storage of the command line, set on the opened state.
    tune: impl FnOnce(AppState) -> AppState,
) -> Result<()> {
    // Bound before anything is initialised: with the address taken, nothing is written.
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let state = tune(open_state(data, location).await?);
    // Servers sharing a database that start together load the demo once: the lease's holder.
    let fresh = state.auth(|a| a.is_empty()).await? && (!demo || state.lease("demo", DEMO_LEASE).await?);
    let dir = data.to_path_buf();
    if let Some(path) = state.auth(move |a| admin::bootstrap(a, &dir)).await? {
        // On stdout, whatever the log level: the operator needs it to do anything at all.
        println!("first start: admin token written to {}", path.display());
    }
    if demo && fresh {
        load_demo(&state).await?;
    } else if demo {
        tracing::info!("--demo ignored: {} already holds data", data.display());
    }
    if let Some(listener) = metrics_listener {
        tracing::info!("metrics (no token) on http://{}/metrics", listener.local_addr()?);
        let state = state.clone();
        tokio::spawn(async move {
            if let Err(e) = sitesync_server::run_metrics(listener, state, shutdown_signal()).await {
                tracing::error!(error = %e, "the metrics listener stopped");
            }
        });
    }
    match tls {
        None => {
            tracing::info!("sitesync-server listening on http://{}", listener.local_addr()?);
            sitesync_server::run(listener, state, shutdown_signal()).await?;
        }
        Some(tls) => {
            tracing::info!(
                certificate = %tls.fingerprint()?,
                "sitesync-server listening on https://{}",
                listener.local_addr()?
            );
            reload_on_sighup(tls.clone());
            sitesync_server::run_tls(listener, state, tls, shutdown_signal()).await?;
        }
    }
    tracing::info!("stopped");
    Ok(())
}

async fn check(data: PathBuf, location: Location) -> Result<()> {
    if location == Location::Sqlite && !data.join("documents.sqlite3").exists() {
        anyhow::bail!("{} holds no sitesync databases", data.display());
    }
    let report = tokio::task::spawn_blocking(move || sitesync_server::check::check(&data, &location))
        .await?
        .context("checking")?;
    for p in &report.problems {
        println!("{}: {}", p.doc.as_deref().unwrap_or("-"), p.what);
    }
    if !report.problems.is_empty() {
        anyhow::bail!("{} problems found", report.problems.len());
    }
    println!(
        "ok: {} documents, {} signatures, {} report rows checked",
        report.documents, report.signatures, report.rows
    );
    Ok(())
}

async fn load_demo(state: &AppState) -> Result<()> {
    let loaded = sitesync_server::demo::load(state, sitesync_server::demo::SEED, chrono::Utc::now()).await?;
    println!("{loaded}");
    Ok(())
}

/// Reads the certificate and key again at every SIGHUP (a renewal); a bad pair is logged and the
/// certificate in force stays.
fn reload_on_sighup(tls: Arc<Tls>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP: the certificate is read at start only");
            return;
        };
        while hup.recv().await.is_some() {
            match tls.reload() {
                Ok(fingerprint) => tracing::info!(certificate = %fingerprint, "TLS certificate reloaded"),
                Err(e) => tracing::error!(error = %e, "TLS certificate not reloaded; the previous one stays"),
            }
        }
    });
    #[cfg(not(unix))]
    let _ = tls;
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}

async fn admin_command(data: &Path, location: Location, command: AdminCommand) -> Result<()> {
    let postgres = location != Location::Sqlite;
    let state = open_state(data, location).await?;
    // The audit line names the command and its arguments (none of which is a secret; a channel's
    // URL and secret are credentials of a bot, so they are left out).
    let action = match &command {
        AdminCommand::Notify(NotifyCommand::Add { org, kind, .. }) => {
            format!("admin subcommand notify add --org {org} --kind {}", kind.as_str())
        }
        _ => format!("admin subcommand {command:?}"),
    };
    match command {
        AdminCommand::Import { file } => {
            let company: Company = sitesync_core::import::read_json(&file)?;
            let r = state
                .both(move |auth, store| admin::import_company(auth, store, &company))
                .await?;
            println!("imported org {}: {} sites, {} users", r.org, r.sites, r.users);
        }
        AdminCommand::Org { id, name } => {
            state.auth(move |a| a.put_org(&id, &name)).await?;
            println!("ok");
        }
        AdminCommand::Site {
            org,
            id,
            code,
            name,
            timezone,
        } => {
            let site = sitesync_core::roster::Site {
                id: id.parse()?,
                code,
                name,
                timezone,
            };
            let new = admin::NewSite { org, site };
            state
                .both(move |auth, store| admin::add_site(auth, store, &new))
                .await?;
            println!("ok");
        }
        AdminCommand::User {
            org,
            id,
            name,
            role,
            all_sites,
        } => {
            let role = sitesync_server::auth::parse_role(&role)?;
            state
                .auth(move |a| a.put_user(&org, &id, &name, role, all_sites))
                .await?;
            println!("ok");
        }
        AdminCommand::Grant { user, site } => {
            state.auth(move |a| a.grant(&user, &site)).await?;
            println!("ok");
        }
        AdminCommand::Device(DeviceCommand::Add { user, label }) => {
            let u = user.clone();
            let (device, token) = state.auth(move |a| a.add_device(&u, &label)).await?;
            sitesync_server::audit::event("admin", Some(&device), Some(&user), &action);
            eprintln!("device {device} enrolled; its token (shown once):");
            println!("{token}");
            return Ok(());
        }
        AdminCommand::Backup { .. } if postgres => {
            anyhow::bail!(
                "the state is in PostgreSQL: back it up with pg_dump, and run `admin renew-epoch` after a restore"
            );
        }
        AdminCommand::RenewEpoch => {
            let epoch = state.auth(|a| a.renew_epoch()).await?;
            println!("epoch {epoch}");
        }
        AdminCommand::Backup { out } => {
            for path in admin::backup(data, &out)? {
                println!("{}", path.display());
            }
        }
        AdminCommand::Pay(cmd) => {
            let range = |r: PayRange| {
                let user = r.user;
                let range = admin::pay::Range {
                    site: r.site,
                    crew: r.crew,
                    from: r.from,
                    to: r.to,
                };
                (user, range)
            };
            match cmd {
                PayCommand::Close { range: r, force } => {
                    let (user, r) = range(r);
                    let (sheet, _) = state
                        .both(move |a, store| admin::pay::close(a, store, &user, &r, force))
                        .await?;
                    println!("{}", serde_json::to_string_pretty(&sheet)?);
                }
                PayCommand::Paid { range: r, reference } => {
                    let (user, r) = range(r);
                    let sheet = state.auth(move |a| admin::pay::paid(a, &user, &r, &reference)).await?;
                    println!("{}", serde_json::to_string_pretty(&sheet)?);
                }
                PayCommand::Bank { range: r, columns, out } => {
                    let (user, r) = range(r);
                    let csv = state
                        .both(move |a, store| admin::pay::bank(a, store, &user, &r, &columns))
                        .await?;
                    std::fs::write(&out, csv).with_context(|| out.display().to_string())?;
                    println!("wrote {}", out.display());
                }
            }
        }
        AdminCommand::Reindex => {
            let n = state.both(|_, store| Ok(store.reindex()?)).await?;
            println!("reindexed {n} documents");
        }
        AdminCommand::Notify(NotifyCommand::Add {
            org,
            kind,
            url,
            secret,
            rules,
            mentions,
            quiet,
        }) => {
            use sitesync_server::reminders::{Rule, channel::NewChannel};
            let rules = rules
                .map(|r| r.iter().map(|r| r.parse::<Rule>()).collect::<Result<Vec<_>, _>>())
                .transpose()?;
            let mentions = mentions.iter().map(|m| m.parse()).collect::<Result<Vec<_>, _>>()?;
            let new = NewChannel {
                org,
                kind,
                url,
                secret,
                rules,
                mentions,
                quiet,
            };
            let row = new.row()?;
            let stored = state
                .auth(move |a| {
                    if !a.org_exists(&row.org_id)? {
                        return Err(sitesync_server::Error::NotFound(format!("org {}", row.org_id)));
                    }
                    a.add_channel(&row)
                })
                .await?;
            println!("{}", stored.channel_id);
        }
        AdminCommand::Notify(NotifyCommand::List { org }) => {
            let rows = state.auth(move |a| a.channels(org.as_deref())).await?;
            for row in &rows {
                let c = sitesync_server::reminders::channel::Channel::try_from(row)?;
                let rules: Vec<&str> = c.rules.iter().map(|r| r.as_str()).collect();
                println!(
                    "{}\t{}\t{}\t{}\t{}{}{}",
                    c.id,
                    c.org,
                    c.kind.as_str(),
                    rules.join(","),
                    c.url,
                    if c.secret.is_some() { "\tsigned" } else { "" },
                    c.quiet.map(|q| format!("\tquiet {q}")).unwrap_or_default(),
                );
            }
            return Ok(());
        }
        AdminCommand::Notify(NotifyCommand::Rm { id }) => {
            let i = id.clone();
            if !state.auth(move |a| a.remove_channel(&i)).await? {
                anyhow::bail!("no reminder channel {id}");
            }
            println!("removed");
        }
        AdminCommand::Reminders(RemindersCommand::Run { at }) => {
            let at = at.map_or_else(chrono::Utc::now, |t| t.with_timezone(&chrono::Utc));
            let opts = sitesync_server::reminders::Options::default();
            let done = sitesync_server::reminders::run(&state, at, &opts).await?;
            let mut delivered = 0;
            for o in &done {
                if o.status == "delivered" {
                    delivered += 1;
                }
                println!("{}\t{}\t{}\t{}", o.status, o.channel, o.key, o.text);
            }
            println!("{delivered} delivered");
            if done.iter().any(|o| o.status == "failed") {
                anyhow::bail!("some reminders were not delivered; see `GET /v1/admin/notify/log`");
            }
        }
        AdminCommand::Device(DeviceCommand::Revoke { device }) => {
            let d = device.clone();
            state.auth(move |a| a.revoke_device(&d)).await?;
            sitesync_server::audit::event("revoke", Some(&device), None, &action);
            println!("revoked");
            return Ok(());
        }
    }
    sitesync_server::audit::event("admin", None, None, &action);
    Ok(())
}
