//! `sitesync-core`: the client library of sitesync, offline-first labor and progress logging for
//! construction sites.
//!
//! A [`Store`] is one SQLite file on the phone. It holds three kinds of Automerge document — a site's
//! master data, one log per site per calendar day, and OKR cycles — and answers the app's queries
//! from them with no network. Every write is durable before the call returns; documents from other
//! phones merge without conflicts dialogs, and values that lost a concurrent edit stay visible as
//! [`labor::Conflict`]s. Callers never see Automerge types.
//!
//! ```
//! use sitesync_core::{Store, labor::LaborEntry, ids::*, units::*};
//! # fn main() -> Result<(), sitesync_core::Error> {
//! let dir = tempfile::tempdir().unwrap();
//! let mut store = Store::open(dir.path().join("phone.sqlite3"))?;
//! store.import_dir(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/small")))?;
//!
//! let site = SiteId::new("site-hz-01")?;
//! let date = parse_date("2026-12-01")?;
//! let mut entry = sitesync_core::store::entry(site.clone(), date, WorkerId::new("w-0001")?,
//!     WorkItemId::new("site-hz-01/wi-4.1")?, WorkDays::parse("1.0")?);
//! entry.overtime = Minutes::parse_hours("overtime", "0.5")?;
//! let line = store.add_labor(&entry, None)?;
//!
//! let sheet = store.day(&site, date)?;
//! assert_eq!(sheet.labor.len(), 1);
//! assert_eq!(line.cost().fen(), 43_000 + 4_031); // a day at ¥430 + 30 min at ¥80.62/h, rounded
//! # Ok(()) }
//! ```

pub mod attachments;
pub mod bank;
pub mod changes;
pub(crate) mod doc;
pub mod due;
pub mod error;
pub mod evidence;
pub mod ids;
pub mod import;
pub mod labor;
pub mod mesh;
pub mod okr;
pub mod pay;
pub mod pii;
pub mod report;
pub mod roster;
pub mod rules;
pub mod signing;
pub mod signoff;
pub mod store;
pub mod sync;
pub mod units;
pub mod validate;

pub use error::{Error, Result};
pub use store::Store;
