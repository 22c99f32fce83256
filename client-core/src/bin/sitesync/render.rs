//! Output shared by every command group: aligned tables, pretty JSON, fixed-point figures.

use std::io::Write;

use anyhow::Result;
use unicode_width::UnicodeWidthStr;

/// `value / scale` with `decimals` decimals, for tables.
pub fn fixed(value: i64, scale: i64, decimals: u32) -> String {
    let f = value as f64 / scale as f64;
    format!("{f:.*}", decimals as usize)
}

pub fn json_out(out: &mut impl Write, v: &impl serde::Serialize) -> Result<()> {
    serde_json::to_writer_pretty(&mut *out, v)?;
    writeln!(out)?;
    Ok(())
}

/// Prints rows as columns aligned by display width (CJK names are two columns wide).
pub fn table(out: &mut impl Write, header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> Result<()> {
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
