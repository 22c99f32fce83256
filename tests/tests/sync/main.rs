//! Sync end to end: a real server on loopback, real phone stores, real WebSockets.

mod audit;
mod authz;
mod authz_table;
mod backoff;
mod backup;
mod blobs;
mod convergence;
mod evidence;
mod faults;
mod front_door;
mod hostile;
mod idle_memory;
mod limits;
mod live;
mod mesh;
mod metrics;
mod old_phones;
mod pay;
mod pay_period;
mod pii;
mod sans_io;
mod sessions;
mod signoff;
mod stall;
mod trust;
mod validation;
mod worker_link;
mod workers;

use chrono::NaiveDate;
use sitesync_core::Store;
use sitesync_core::ids::{SiteId, WorkItemId, WorkerId, parse_date};
use sitesync_core::labor::LaborEntry;
use sitesync_core::sync::client::sync_once;
use sitesync_core::units::WorkDays;

/// The fixture site most tests use.
pub fn hz() -> SiteId {
    SiteId::new("site-hz-01").unwrap()
}

/// A calendar date written `YYYY-MM-DD`.
pub fn d(s: &str) -> NaiveDate {
    parse_date(s).unwrap()
}

/// A labor entry on site-hz-01.
pub fn entry(date: &str, worker: &str, item: &str, days: &str) -> LaborEntry {
    sitesync_core::store::entry(
        hz(),
        d(date),
        WorkerId::new(worker).unwrap(),
        WorkItemId::new(item).unwrap(),
        WorkDays::parse(days).unwrap(),
    )
}

/// Syncs and insists it worked.
pub async fn sync(store: &mut Store) -> sitesync_core::sync::Progress {
    sync_once(store)
        .await
        .unwrap_or_else(|e| panic!("sync of {:?} failed: {e}", store.path()))
}
