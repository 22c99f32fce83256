//! The operator's window into a running server: counters, gauges and histograms, served at
//! `GET /metrics` in the Prometheus (OpenMetrics) text format.
//!
//! `prometheus-client` (the Prometheus project's own Rust client) rather than `metrics` with its
//! exporter: its registry is a value, not a process-wide recorder, so each [`crate::AppState`] has
//! its own and two servers in one process (every test binary) do not count into each other.
//!
//! Cost on the push path: every series a hot path touches is resolved once here, at start, into a
//! handle (an `Arc` of an atomic); counting is one atomic add, never a label lookup. A histogram
//! observation takes its histogram's own lock for the few instructions of one bucket increment.
//! Label lookups (`Family::get_or_create`) remain only on rare paths: refusals and HTTP requests.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use sitesync_core::sync::protocol::{DocResult, Refusal};

/// The content type of [`Metrics::encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Every series the server keeps, registered in one registry.
#[derive(Debug)]
pub struct Metrics {
    /// What `/metrics` encodes.
    registry: Registry,
    /// Sync connections open now (after the upgrade, until the socket is closed).
    pub connections: Gauge,
    /// Pushes answered, by the outcome of their worst document.
    pub pushes: PushOutcomes,
    /// Seconds from receiving a push frame to sending its acknowledgement.
    pub push_seconds: Histogram,
    /// Pushes taken into one group commit.
    pub commit_pushes: Histogram,
    /// Documents merged by one group commit.
    pub commit_docs: Histogram,
    /// Live `Changed` frames sent to devices (fan-out).
    pub changed_frames: Counter,
    /// Refused pushed changes or documents, by the gate's rule (`site.grant`, `signature.invalid` …)
    /// or the document-level refusal (`forbidden`, `malformed` …).
    refusals: Family<Reason, Counter>,
    /// Requests or messages stopped or slowed by a limit.
    pub rate_limited: RateLimits,
    /// Seconds spent in storage calls, by engine and call.
    pub db: DbTimes,
    /// Attachment bytes received by uploads.
    pub blob_bytes_uploaded: Counter,
    /// Attachment bytes sent by downloads.
    pub blob_bytes_downloaded: Counter,
    /// HTTP requests answered, by matched route and status.
    http_requests: Family<HttpLabels, Counter>,
    /// The process's heap, read at each encode; `None` unless the process runs on jemalloc.
    heap: Option<Heap>,
}

/// What the allocator holds, from jemalloc's own statistics.
#[derive(Debug)]
struct Heap {
    /// Bytes in live allocations: what the server's structures hold.
    allocated: Gauge,
    /// Bytes of the heap's pages resident in memory: `allocated`, plus freed memory the allocator
    /// has not handed back yet, plus its own metadata. The process's RSS is this plus code and stacks.
    resident: Gauge,
}

/// Whether this process allocates with jemalloc ([`crate::Allocator`] as its global allocator).
static ON_JEMALLOC: AtomicBool = AtomicBool::new(false);

/// Says that this process's global allocator is [`crate::Allocator`], so that the metrics of every
/// server it then starts report the heap (`sitesync_heap_allocated_bytes`,
/// `sitesync_heap_resident_bytes`). Without it they are left out: jemalloc's figures would only
/// count what went through it explicitly, i.e. nothing.
pub fn heap_is_jemalloc() {
    ON_JEMALLOC.store(true, Ordering::Relaxed);
}

/// The pushes counter's series, one per outcome.
#[derive(Debug, Clone)]
#[allow(missing_docs, reason = "named for the outcome they count")]
pub struct PushOutcomes {
    pub synced: Counter,
    pub partial: Counter,
    pub need_history: Counter,
    pub refused: Counter,
    /// The push failed as a whole (the store was unavailable): the connection was closed.
    pub failed: Counter,
}

impl PushOutcomes {
    /// Counts one push by its results: refused if any document was, else partial if any change was
    /// refused, else need-history, else synced.
    pub fn count(&self, results: &[DocResult]) {
        let worst = results
            .iter()
            .map(|r| match r {
                DocResult::Synced(_) => 0,
                DocResult::NeedHistory { .. } => 1,
                DocResult::Partial { .. } => 2,
                DocResult::Refused { .. } => 3,
            })
            .max()
            .unwrap_or(0);
        [&self.synced, &self.need_history, &self.partial, &self.refused][worst].inc();
    }
}

/// The rate-limit counter's series, one per limit.
#[derive(Debug, Clone)]
pub struct RateLimits {
    /// HTTP API requests over a token's rate (429).
    pub api: Counter,
    /// Sync connection attempts over a device's rate (429).
    pub sync_connect: Counter,
    /// Sync messages read later because the device was over its rate.
    pub sync_messages: Counter,
    /// Connections refused past a device's limit of open connections (429).
    pub connections_per_device: Counter,
    /// Pushes refused for too many documents (per push or per connection).
    pub push_documents: Counter,
}

/// The storage-time histogram's series for this server's engine, one per kind of call.
#[derive(Debug, Clone)]
pub struct DbTimes {
    /// The group commit's merge transaction.
    pub commit: Histogram,
    /// A call on the credential database.
    pub auth: Histogram,
    /// A call holding the document store (the writer's connection).
    pub store: Histogram,
    /// A call on the read-only report connection.
    pub read: Histogram,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Limit {
    limit: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DbCall {
    engine: &'static str,
    call: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Direction {
    direction: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    method: String,
    status: u16,
}

/// Seconds from 0.5 ms to ~16 s, doubling.
fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Seconds from 0.1 ms to ~50 s in steps of a quarter, for push times: a percentile read inside
/// one of these buckets is off by at most a quarter (the doubling buckets of [`seconds`] left the
/// 10 ms target between 8 and 16 ms).
fn push_seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 1.25, 60))
}

/// Sizes 1, 2, 4 … 1024.
fn sizes() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 11))
}

impl Metrics {
    /// Every series at zero; `engine` (`sqlite`, `postgres`) labels the storage times.
    pub fn new(engine: &'static str) -> Metrics {
        let mut registry = Registry::with_prefix("sitesync");
        let connections = Gauge::default();
        registry.register("sync_connections", "Sync connections open now", connections.clone());

        let pushes_family = Family::<Outcome, Counter>::default();
        registry.register(
            "pushes",
            "Pushes answered, by the outcome of their worst document",
            pushes_family.clone(),
        );
        let outcome = |o| pushes_family.get_or_create(&Outcome { outcome: o }).clone();
        let pushes = PushOutcomes {
            synced: outcome("synced"),
            partial: outcome("partial"),
            need_history: outcome("need_history"),
            refused: outcome("refused"),
            failed: outcome("failed"),
        };

        let push_seconds = push_seconds();
        registry.register(
            "push_latency_seconds",
            "Seconds from receiving a push to sending its acknowledgement",
            push_seconds.clone(),
        );
        let commit_pushes = sizes();
        registry.register(
            "group_commit_pushes",
            "Pushes taken into one group commit",
            commit_pushes.clone(),
        );
        let commit_docs = sizes();
        registry.register(
            "group_commit_documents",
            "Documents merged by one group commit",
            commit_docs.clone(),
        );
        let changed_frames = Counter::default();
        registry.register(
            "fanout_frames",
            "Changed frames sent to devices: live updates (fan-out), and the frames after a first sync's welcome",
            changed_frames.clone(),
        );
        let refusals = Family::<Reason, Counter>::default();
        registry.register(
            "refusals",
            "Refused pushed changes (by the gate's rule) or documents (by refusal)",
            refusals.clone(),
        );

        let limits = Family::<Limit, Counter>::default();
        registry.register(
            "rate_limited",
            "Requests or messages stopped or slowed by a limit",
            limits.clone(),
        );
        let limit = |l| limits.get_or_create(&Limit { limit: l }).clone();
        let rate_limited = RateLimits {
            api: limit("api"),
            sync_connect: limit("sync_connect"),
            sync_messages: limit("sync_messages"),
            connections_per_device: limit("connections_per_device"),
            push_documents: limit("push_documents"),
        };

        let db_family = Family::<DbCall, Histogram>::new_with_constructor(seconds as fn() -> Histogram);
        registry.register("db_seconds", "Seconds spent in storage calls", db_family.clone());
        let call = |c| db_family.get_or_create(&DbCall { engine, call: c }).clone();
        let db = DbTimes {
            commit: call("group_commit"),
            auth: call("auth"),
            store: call("store"),
            read: call("read"),
        };

        let blobs = Family::<Direction, Counter>::default();
        registry.register("blob_bytes", "Attachment bytes uploaded and downloaded", blobs.clone());
        let blob_bytes_uploaded = blobs.get_or_create(&Direction { direction: "uploaded" }).clone();
        let blob_bytes_downloaded = blobs
            .get_or_create(&Direction {
                direction: "downloaded",
            })
            .clone();

        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route and status",
            http_requests.clone(),
        );
        let heap = ON_JEMALLOC
            .load(Ordering::Relaxed)
            .then(|| Heap::register(&mut registry));
        Metrics {
            registry,
            connections,
            pushes,
            push_seconds,
            commit_pushes,
            commit_docs,
            changed_frames,
            refusals,
            rate_limited,
            db,
            blob_bytes_uploaded,
            blob_bytes_downloaded,
            http_requests,
            heap,
        }
    }

    /// Counts a refused change (by the gate's rule name).
    pub fn refused_change(&self, rule: &str) {
        self.refusals
            .get_or_create(&Reason {
                reason: rule.to_string(),
            })
            .inc();
    }

    /// Counts a refused document.
    pub fn refused_document(&self, refusal: &Refusal) {
        let reason = match refusal {
            Refusal::Forbidden => "forbidden",
            Refusal::ReadOnly => "read_only",
            Refusal::UnknownDocument => "unknown_document",
            Refusal::Malformed => "malformed",
            Refusal::Unavailable => "unavailable",
            Refusal::Invalid { .. } => "invalid",
        };
        self.refused_change(reason);
    }

    /// Counts an HTTP request answered; `route` is the matched route's pattern (never the path
    /// itself, which may carry a credential or an unbounded number of values).
    pub fn http_request(&self, route: &str, method: &str, status: u16) {
        self.http_requests
            .get_or_create(&HttpLabels {
                route: route.to_string(),
                method: method.to_string(),
                status,
            })
            .inc();
    }

    /// Every series in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        if let Some(heap) = &self.heap {
            heap.read();
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Heap {
    fn register(registry: &mut Registry) -> Heap {
        let heap = Heap {
            allocated: Gauge::default(),
            resident: Gauge::default(),
        };
        registry.register(
            "heap_allocated_bytes",
            "Bytes in the server's live allocations (jemalloc stats.allocated)",
            heap.allocated.clone(),
        );
        registry.register(
            "heap_resident_bytes",
            "Bytes of heap pages resident, freed memory not yet returned included (jemalloc stats.resident)",
            heap.resident.clone(),
        );
        heap
    }

    /// Refreshes jemalloc's statistics (they are cached until the epoch advances) and reads them.
    fn read(&self) {
        use tikv_jemalloc_ctl::{epoch, stats};
        let read = || -> Result<(usize, usize), tikv_jemalloc_ctl::Error> {
            epoch::advance()?;
            Ok((stats::allocated::read()?, stats::resident::read()?))
        };
        match read() {
            Ok((allocated, resident)) => {
                self.allocated.set(i64::try_from(allocated).unwrap_or(i64::MAX));
                self.resident.set(i64::try_from(resident).unwrap_or(i64::MAX));
            }
            Err(e) => tracing::warn!(error = %e, "could not read the allocator's statistics"),
        }
    }
}

/// Records `elapsed` in a seconds histogram.
pub fn observe(h: &Histogram, elapsed: Duration) {
    h.observe(elapsed.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;
    use sitesync_core::sync::protocol::DocSync;

    fn synced() -> DocResult {
        DocResult::Synced(DocSync {
            doc: "d".into(),
            base: vec![],
            heads: vec![],
            changes: vec![],
            sigs: vec![],
        })
    }

    #[test]
    fn a_push_counts_once_by_its_worst_document() {
        let m = Metrics::new("sqlite");
        m.pushes.count(&[synced(), synced()]);
        m.pushes.count(&[
            synced(),
            DocResult::Refused {
                doc: "x".into(),
                reason: Refusal::Forbidden,
            },
            synced(),
        ]);
        assert_eq!(m.pushes.synced.get(), 1);
        assert_eq!(m.pushes.refused.get(), 1);
        let text = m.encode();
        assert!(text.contains("sitesync_pushes_total{outcome=\"refused\"} 1"), "{text}");
        assert!(
            text.contains("sitesync_db_seconds_count{engine=\"sqlite\",call=\"group_commit\"} 0"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
