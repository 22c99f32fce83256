//! Output shared by every command group: aligned tables, pretty JSON, and the line printed for a
//! message. Figures are formatted by `sitesync_core::units` (`fixed`, `hours`, `yuan`), the same
//! functions the API uses; words come from `msg`.

use std::io::Write;

use anyhow::Result;
use unicode_width::UnicodeWidthStr;

use crate::msg::Msg;

pub fn json_out(out: &mut impl Write, v: &impl serde::Serialize) -> Result<()> {
    serde_json::to_writer_pretty(&mut *out, v)?;
    writeln!(out)?;
    Ok(())
}

/// Prints rows as columns aligned by display width (CJK names and headings are two columns wide).
/// The headings come from `msg::cols`, in the user's language.
pub fn table(out: &mut impl Write, header: &[impl AsRef<str>], rows: impl Iterator<Item = Vec<String>>) -> Result<()> {
    let header: Vec<&str> = header.iter().map(AsRef::as_ref).collect();
    let rows: Vec<Vec<String>> = rows.collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.width()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.width());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            s.push_str(c);
            if i + 1 < cells.len() {
                s.push_str(&" ".repeat(w - c.width() + 2));
            }
        }
        s.trim_end().to_string()
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for r in &rows {
        writeln!(out, "{}", line(r.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

/// Prints one message of the catalogue as a line.
pub fn say(out: &mut impl Write, m: Msg<'_>) -> Result<()> {
    writeln!(out, "{m}")?;
    Ok(())
}

/// The first 12 hex digits of a change hash, as people quote them (the whole of a shorter one).
pub fn short_hash(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}
