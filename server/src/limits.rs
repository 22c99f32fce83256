//! Limits that keep one device (a buggy app, a stolen token) from taking the server from everyone
//! else: documents per push and per connection, live connections per device, and request rates per
//! token. Frame size is limited by the protocol itself (`MAX_FRAME`, checked by the WebSocket layer
//! and the decoder).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// The numbers; the defaults are generous for a phone (which pushes at most 64 documents a frame
/// and a few frames a second) and tight enough to stop a runaway client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Documents in one push message.
    pub docs_per_push: usize,
    /// Distinct documents one connection may push (a phone works on a few hundred).
    pub docs_per_connection: usize,
    /// Sync connections open at once per device.
    pub connections_per_device: usize,
    /// HTTP API requests per second per token, sustained.
    pub api_per_second: u32,
    /// HTTP API requests a token may make in a burst.
    pub api_burst: u32,
    /// Sync messages (hello, push) per second per device, sustained; beyond it the server reads
    /// the device's next message later instead of refusing it.
    pub sync_per_second: u32,
    /// Sync messages a device may send in a burst.
    pub sync_burst: u32,
    /// Live updates a connection may have sent that its device has not confirmed (`Applied`);
    /// past it, or past `unconfirmed_bytes`, the connection queues nothing more for a device that
    /// reads slowly: it drops what is waiting and, once the device confirms, catches up from the
    /// store. What a slow reader holds in memory is then bounded by this window, not by how far
    /// behind it is.
    pub unconfirmed_updates: usize,
    /// Bytes of changes a connection may have sent unconfirmed (see `unconfirmed_updates`).
    pub unconfirmed_bytes: usize,
    /// Bytes of changes in one update frame before the rest goes in the next (a larger document
    /// still goes alone, whole): small enough that many connections building frames at once stay
    /// small, large enough that a first sync is a few dozen frames, not thousands.
    pub frame_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            docs_per_push: 256,
            docs_per_connection: 20_000,
            connections_per_device: 4,
            api_per_second: 20,
            api_burst: 100,
            sync_per_second: 50,
            sync_burst: 200,
            // A phone confirms every update as it applies it: a window of 64 updates or 256 KiB
            // (four full frames) never holds back a device that keeps up (256 KiB in flight is
            // 1.3 MB/s at a 200 ms round trip, more than a site's mobile link), and 1,000 devices
            // each owed a site's morning at once hold 1,000 windows, not every update they are
            // owed. A window is what a reader slower than the server pins in memory: at 1 MiB the
            // worst-case rush peaked at 2 GB of heap (2026-12-01).
            unconfirmed_updates: 64,
            unconfirmed_bytes: 256 * 1024,
            frame_bytes: 64 * 1024,
        }
    }
}

fn quota(per_second: u32, burst: u32) -> Quota {
    let rate = NonZeroU32::new(per_second.max(1)).expect("at least one");
    Quota::per_second(rate).allow_burst(NonZeroU32::new(burst.max(1)).expect("at least one"))
}

/// The limits in force and their running counts; cheap to clone.
#[derive(Clone)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct Guard {
    limits: Limits,
    /// Token buckets for HTTP API requests, by device.
    api: Arc<DefaultKeyedRateLimiter<String>>,
    /// Token buckets for sync messages, by device.
    sync: Arc<DefaultKeyedRateLimiter<String>>,
    /// Open sync connections, by device.
    connections: Arc<Mutex<HashMap<String, usize>>>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Guard {
    /// Fresh counters for `limits`.
    pub fn new(limits: Limits) -> Guard {
        Guard {
            limits,
            api: Arc::new(RateLimiter::keyed(quota(limits.api_per_second, limits.api_burst))),
            sync: Arc::new(RateLimiter::keyed(quota(limits.sync_per_second, limits.sync_burst))),
            connections: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The limits this guard enforces, as configured at start.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Takes one API request from the device's bucket; `Err` says how long until the next one fits.
    pub fn api_request(&self, device: &str) -> Result<(), Duration> {
        let key = device.to_string();
        self.api
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Takes one sync message (a connection attempt) from the device's bucket, without waiting.
    pub fn sync_attempt(&self, device: &str) -> Result<(), Duration> {
        let key = device.to_string();
        self.sync
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Waits until the device may send another sync message; whether it had to wait (it was over
    /// its rate).
    pub async fn sync_message(&self, device: &str) -> bool {
        let key = device.to_string();
        if self.sync.check_key(&key).is_ok() {
            return false;
        }
        self.sync.until_key_ready(&key).await;
        true
    }

    /// Opens a sync connection for the device, if it has fewer than the limit open; the connection
    /// counts until the returned ticket is dropped.
    pub fn open_connection(&self, device: &str) -> Option<ConnectionTicket> {
        let mut open = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(device.to_string()).or_default();
        if *n >= self.limits.connections_per_device {
            return None;
        }
        *n += 1;
        Some(ConnectionTicket {
            device: device.to_string(),
            connections: self.connections.clone(),
        })
    }

    /// Forgets buckets of devices idle long enough to be full again (keeps memory bounded).
    pub fn tidy(&self) {
        self.api.retain_recent();
        self.sync.retain_recent();
    }
}

/// One open sync connection of a device, counted until dropped.
#[derive(Debug)]
pub struct ConnectionTicket {
    device: String,
    /// The shared counts.
    connections: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for ConnectionTicket {
    fn drop(&mut self) {
        let mut open = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.device) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.device);
            }
        }
    }
}

/// Limits of the front door, for every client before it is known: a server on the internet gets
/// clients that never finish a request (slow-loris), floods of connections, and huge bodies.
///
/// Found 2026-11-30, before these existed: 300 connections each sending half a request header, with
/// a 256-descriptor limit, made `/healthz` time out for 30 s while the log filled with `accept
/// error: Too many open files` — a full outage for phones and the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections served at once (sync WebSockets and event streams included); one more is closed
    /// as soon as it is accepted, so it fails fast instead of waiting in a queue. Lowered at start to
    /// fit the open-file limit.
    pub max_connections: usize,
    /// Time a client has to complete the TLS handshake, and then each request's header (also how
    /// long an idle keep-alive connection stays open).
    pub header_timeout: Duration,
    /// Largest request body on every route but the company import (typed 413 beyond it).
    pub body_bytes: usize,
    /// Largest company import (`POST /v1/admin/import`).
    pub import_bytes: usize,
    /// Largest attachment a device may upload (`PUT /v1/blobs/{sha256}/upload`): a declared size
    /// over it is a typed 413 and nothing is stored.
    pub blob_bytes: usize,
    /// How long a partial upload may sit untouched in the staging area before it is deleted (at
    /// start and then periodically): a phone that gave up on a file, or was wiped, never resumes it.
    pub staging_max_age: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            // Room for 10,000 idle phones on one node (about 12 KB each, 2026-11-30); lowered at
            // start to what the open-file limit allows.
            max_connections: 16_384,
            header_timeout: Duration::from_secs(10),
            body_bytes: 1024 * 1024,
            import_bytes: 16 * 1024 * 1024,
            // A phone photo is 2-8 MB; a scanned delivery note as PDF a few MB.
            blob_bytes: 25 * 1024 * 1024,
            // A week: a foreman off the network over a long weekend still resumes his photos.
            staging_max_age: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// Descriptors kept free of connections: databases and their logs, the listener, standard streams,
/// files SQLite and the runtime open now and then.
pub const RESERVED_FILES: u64 = 64;

/// Raises the soft open-file limit to the hard one where the system allows; returns the soft limit in
/// force afterwards (`None` where it cannot be read).
pub fn raise_open_files() -> Option<u64> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        if let (Some(current), Some(hard)) = (limit.current, limit.maximum)
            && current < hard
        {
            let raised = rustix::process::Rlimit {
                current: Some(hard),
                maximum: Some(hard),
            };
            if let Err(e) = setrlimit(Resource::Nofile, raised) {
                tracing::warn!(error = %e, soft = current, hard, "could not raise the open-file limit");
            }
        }
        getrlimit(Resource::Nofile).current
    }
    #[cfg(not(unix))]
    None
}

/// The connection cap that fits `open_files` descriptors (one per connection, `RESERVED_FILES`
/// kept for the rest), never above `wanted` nor below 1.
pub fn fit_connections(wanted: usize, open_files: Option<u64>) -> usize {
    match open_files {
        Some(n) => wanted.min(n.saturating_sub(RESERVED_FILES).max(1) as usize),
        None => wanted,
    }
}
