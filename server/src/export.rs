//! Reports as tables, written as CSV or Excel (.xlsx): numbers as numbers, dates as dates, money in
//! yuan with two decimals, Chinese text intact, a header row and a totals row.
//!
//! Formula injection (found 2026-11-30): text in a CSV cell that starts with `=`, `+`, `-` or `@`
//! becomes a formula when a clerk opens the file in Excel, WPS or LibreOffice — an OKR titled
//! `=cmd|' /C calc'!A0` ran a program on old Excel, `=HYPERLINK(…)` leaks data on current ones.
//! Anyone who can name a worker, a work item or a key result on a phone can write such text. In CSV
//! every text cell starting with one of those characters, a tab or a carriage return gets a leading
//! `'` (OWASP's advice), so it shows as text; numbers and dates are ours and written as they are.
//! The Excel export writes text as text cells, which are never evaluated.

use chrono::{Datelike, NaiveDate};
use rust_xlsxwriter::{ExcelDateTime, Format, FormatAlign, Workbook};

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub enum Cell {
    Text(String),
    /// A whole number.
    Int(i64),
    /// A fixed-point number: `value / 10^scale`, shown with `scale` decimals (work-days, hours).
    Fixed(i64, u32),
    /// Money in fen, shown as yuan.
    Fen(i64),
    /// A percentage with one decimal, as a number (12.5 means 12.5 %).
    Percent(f64),
    /// A calendar date.
    Date(NaiveDate),
    Empty,
}

/// A report as a table.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct Table {
    /// Sheet name and file name stem.
    pub title: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
    /// The totals row, if the report has one.
    pub totals: Option<Vec<Cell>>,
}

fn fixed_text(v: i64, scale: u32) -> String {
    let div = 10i64.pow(scale);
    let sign = if v < 0 { "-" } else { "" };
    let (w, f) = (v.abs() / div, v.abs() % div);
    if scale == 0 {
        format!("{sign}{w}")
    } else {
        format!("{sign}{w}.{f:0width$}", width = scale as usize)
    }
}

pub use sitesync_core::units::yuan;

/// Text a spreadsheet program would read as the start of a formula.
fn formula_like(text: &str) -> bool {
    text.starts_with(['=', '+', '-', '@', '\t', '\r'])
}

/// Text as a CSV cell: with a leading `'` where it would otherwise become a formula.
pub fn csv_text(text: &str) -> String {
    if formula_like(text) {
        format!("'{text}")
    } else {
        text.to_string()
    }
}

impl Cell {
    fn text(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Int(i) => i.to_string(),
            Cell::Fixed(v, s) => fixed_text(*v, *s),
            Cell::Fen(f) => fixed_text(*f, 2),
            Cell::Percent(p) => format!("{p:.1}"),
            Cell::Date(d) => d.to_string(),
            Cell::Empty => String::new(),
        }
    }
}

impl Table {
    /// CSV with a UTF-8 byte-order mark, so spreadsheet programs read the Chinese text right.
    pub fn to_csv(&self) -> Result<Vec<u8>> {
        let mut w = csv::Writer::from_writer(vec![0xef, 0xbb, 0xbf]);
        let io = |e: csv::Error| Error::Internal(format!("csv: {e}"));
        w.write_record(self.header.iter().map(|h| csv_text(h))).map_err(io)?;
        for row in self.rows.iter().chain(self.totals.iter()) {
            w.write_record(row.iter().map(|c| match c {
                Cell::Text(s) => csv_text(s),
                other => other.text(),
            }))
            .map_err(io)?;
        }
        w.into_inner().map_err(|e| Error::Internal(format!("csv: {e}")))
    }

    /// An Excel workbook with one sheet.
    pub fn to_xlsx(&self) -> Result<Vec<u8>> {
        let x = |e: rust_xlsxwriter::XlsxError| Error::Internal(format!("xlsx: {e}"));
        let mut book = Workbook::new();
        let sheet = book.add_worksheet();
        // Sheet names are at most 31 characters and may not contain []:*?/\.
        let name: String = self
            .title
            .chars()
            .filter(|c| !"[]:*?/\\".contains(*c))
            .take(31)
            .collect();
        sheet.set_name(name).map_err(x)?;
        let bold = Format::new().set_bold().set_align(FormatAlign::Center);
        let date = Format::new().set_num_format("yyyy-mm-dd");
        let money = Format::new().set_num_format("¥#,##0.00");
        let pct = Format::new().set_num_format("0.0");
        let decimals = |s: u32| {
            Format::new().set_num_format(if s == 0 {
                "0".to_string()
            } else {
                format!("0.{}", "0".repeat(s as usize))
            })
        };
        for (c, h) in self.header.iter().enumerate() {
            sheet.write_string_with_format(0, c as u16, h, &bold).map_err(x)?;
            sheet
                .set_column_width(c as u16, (h.chars().count() as f64 * 2.0).max(10.0))
                .map_err(x)?;
        }
        sheet.set_freeze_panes(1, 0).map_err(x)?;
        let total_fmt = |f: Format| f.set_bold();
        for (r, row) in self.rows.iter().chain(self.totals.iter()).enumerate() {
            let is_total = self.totals.is_some() && r == self.rows.len();
            let r = (r + 1) as u32;
            for (c, cell) in row.iter().enumerate() {
                let c = c as u16;
                let styled = |f: Format| if is_total { total_fmt(f) } else { f };
                match cell {
                    Cell::Text(s) => sheet
                        .write_string_with_format(r, c, s, &styled(Format::new()))
                        .map(|_| ()),
                    Cell::Int(i) => sheet
                        .write_number_with_format(r, c, *i as f64, &styled(Format::new()))
                        .map(|_| ()),
                    Cell::Fixed(v, s) => sheet
                        .write_number_with_format(r, c, *v as f64 / 10f64.powi(*s as i32), &styled(decimals(*s)))
                        .map(|_| ()),
                    Cell::Fen(f) => sheet
                        .write_number_with_format(r, c, *f as f64 / 100.0, &styled(money.clone()))
                        .map(|_| ()),
                    Cell::Percent(p) => sheet
                        .write_number_with_format(r, c, *p, &styled(pct.clone()))
                        .map(|_| ()),
                    Cell::Date(d) => {
                        let dt = ExcelDateTime::from_ymd(d.year() as u16, d.month() as u8, d.day() as u8).map_err(x)?;
                        sheet
                            .write_datetime_with_format(r, c, &dt, &styled(date.clone()))
                            .map(|_| ())
                    }
                    Cell::Empty => Ok(()),
                }
                .map_err(x)?;
            }
        }
        book.save_to_buffer().map_err(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_reads_like_money() {
        assert_eq!(yuan(58_710_654), "¥587,106.54");
        assert_eq!(yuan(5), "¥0.05");
        assert_eq!(yuan(100_000), "¥1,000.00");
        assert_eq!(fixed_text(150, 2), "1.50");
    }

    #[test]
    fn csv_text_that_would_be_a_formula_is_written_as_text() {
        let table = Table {
            title: "t".into(),
            header: vec!["=HEADER()".into(), "b".into()],
            rows: [
                "=2*21",
                "=cmd|' /C calc'!A0",
                "+1",
                "-1+1",
                "@SUM(A1)",
                "\t=1",
                "\r=1",
                "a=1",
                "５",
                "≡",
            ]
            .iter()
            .map(|t| vec![Cell::Text(t.to_string()), Cell::Int(-5)])
            .collect(),
            totals: Some(vec![Cell::Text("合计".into()), Cell::Fen(-150)]),
        };
        let csv = String::from_utf8(table.to_csv().unwrap()[3..].to_vec()).unwrap();
        let cells: Vec<Vec<String>> = csv::Reader::from_reader(csv.as_bytes())
            .records()
            .map(|r| r.unwrap().iter().map(str::to_string).collect())
            .collect();
        let firsts: Vec<&str> = cells.iter().map(|r| r[0].as_str()).collect();
        assert_eq!(
            firsts,
            [
                "'=2*21",
                "'=cmd|' /C calc'!A0",
                "'+1",
                "'-1+1",
                "'@SUM(A1)",
                "'\t=1",
                "'\r=1",
                "a=1",
                "５",
                "≡",
                "合计"
            ]
        );
        // Numbers stay numbers, negative ones included.
        assert!(cells.iter().take(10).all(|r| r[1] == "-5"));
        assert_eq!(cells[10][1], "-1.50");
        assert!(csv.starts_with("'=HEADER(),b"), "{csv}");
    }
}
