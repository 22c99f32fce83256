//! What a person types turned into what the store takes: dates for now.

use anyhow::Result;
use chrono::NaiveDate;
use sitesync_core::Store;
use sitesync_core::ids::{SiteId, parse_date};

/// A date argument: `YYYY-MM-DD`, or `today` in the site's time zone.
pub fn date(store: &mut Store, site: &SiteId, text: &str) -> Result<NaiveDate> {
    Ok(if text == "today" {
        store.today(site)?
    } else {
        parse_date(text)?
    })
}
