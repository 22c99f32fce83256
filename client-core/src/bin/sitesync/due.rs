//! `sitesync due`: what is due for this store's user, from the store alone (no network).

use std::io::Write;

use anyhow::Result;
use sitesync_core::Store;

use crate::input;
use crate::msg::Msg;
use crate::render::{json_out, say};

/// Prints what is due as of `at` (every site's and the org's date), or as of each site's today.
pub fn due(store: &mut Store, out: &mut impl Write, json: bool, at: Option<&str>) -> Result<()> {
    let at = at.map(input::day).transpose()?;
    let items = store.due(at)?;
    if json {
        return json_out(out, &items);
    }
    if items.is_empty() {
        return say(out, Msg::NothingDue);
    }
    for item in &items {
        say(out, Msg::Due(item))?;
    }
    Ok(())
}
