//! Head office: reports, approvals, anomalies, exports and the OpenAPI document, against a real
//! server fed by real phones.

mod approvals;
mod daily_log;
mod demo;
mod fixtures;
mod formulas;
mod metric_access;
mod okr;
mod small;
mod sync_health;

use sitesync_core::Store;
use sitesync_core::ids::{SiteId, WorkItemId, WorkerId, parse_date};
use sitesync_core::labor::LaborEntry;
use sitesync_core::sync::client::sync_once;
use sitesync_core::units::WorkDays;

/// The fixture site most tests use.
pub fn hz() -> SiteId {
    SiteId::new("site-hz-01").unwrap()
}

/// A labor entry on site-hz-01.
pub fn entry(date: &str, worker: &str, item: &str, days: &str) -> LaborEntry {
    sitesync_core::store::entry(
        hz(),
        parse_date(date).unwrap(),
        WorkerId::new(worker).unwrap(),
        WorkItemId::new(item).unwrap(),
        WorkDays::parse(days).unwrap(),
    )
}

/// Syncs and insists it worked.
pub async fn sync(store: &mut Store) {
    sync_once(store)
        .await
        .unwrap_or_else(|e| panic!("sync of {:?} failed: {e}", store.path()));
}
