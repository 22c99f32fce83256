//! The 工资表 ([`PaySheetPrint`]) as a printable PDF in the 施工日志's style: the same font, table
//! layout, footer and signature drawing ([`super::signature_cell`]), on A4 landscape (thirteen
//! columns do not fit a portrait page at a readable size), one crew's sheet starting a page.
//!
//! What is printed is what the caller computed: the server's `GET /v1/pay` (with the masked bank
//! card, adjustments and the closed period's record it alone knows) or the phone's
//! [`crate::Store::pay_sheet`]; this module only lays it out, so the PDF's figures are the JSON's.

use chrono::{DateTime, NaiveDate, Utc};

use super::{Align, Col, Layout, MARGIN, Metrics, Pdf, Picture, render, signature_cell, signoff_state_zh};
use crate::error::Result;
use crate::pay::PayAmounts;
use crate::signoff::SignoffState;
use crate::units::{fixed, hours, yuan};

/// A4 landscape, in points.
const LANDSCAPE: (f32, f32) = (841.89, 595.28);
/// A pay-sheet table's text size, in points: thirteen columns across the landscape page.
const SHEET_BODY: f32 = 8.0;

/// One crew's pay sheet as printed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PaySheetPrint {
    /// The company (the organisation's name); "" when not known (the phone does not hold it).
    pub company: String,
    /// The site's code and name.
    pub site_code: String,
    /// The site's name.
    pub site_name: String,
    /// The crew's name and its leader ("" when none).
    pub crew_name: String,
    /// The crew leader's name.
    pub crew_leader: String,
    /// First day, inclusive.
    pub from: NaiveDate,
    /// Last day, inclusive.
    pub to: NaiveDate,
    /// Set when this is a closed period's stored sheet.
    pub closed: Option<ClosedPrint>,
    /// One line per worker.
    pub lines: Vec<PayPrintLine>,
    /// The column sums (`net_fen` includes the adjustments).
    pub total: PayAmounts,
    /// The adjustments' sum, in fen.
    pub total_adjustment_fen: i64,
    /// Days of the range not approved: not counted.
    pub unapproved: Vec<NaiveDate>,
    /// Piecework lines without a piece rate (`date worker work_item`): counted for time, not paid.
    pub unpriced: Vec<String>,
    /// Corrections to closed earlier periods carried on this sheet, one sentence each.
    pub adjustments: Vec<String>,
}

/// The record that makes a sheet a closed period's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedPrint {
    /// The period's id.
    pub period: String,
    /// Who closed it and when.
    pub closed_by: String,
    /// When.
    pub closed_at: DateTime<Utc>,
    /// The payment as (who, when, reference), once recorded.
    pub paid: Option<(String, DateTime<Utc>, String)>,
}

/// One worker's printed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayPrintLine {
    /// The worker's id.
    pub worker: String,
    /// His name.
    pub name: String,
    /// His ID-card number masked ("" when none is on record).
    pub id_card_masked: String,
    /// His bank card masked ("" when none is on record).
    pub bank_masked: String,
    /// His figures; `net_fen` includes `adjustment_fen`.
    pub amounts: PayAmounts,
    /// Corrections to closed periods carried here, in fen.
    pub adjustment_fen: i64,
    /// His month sign-off over the range (the worst month's).
    pub signoff: SignoffState,
    /// The SHA-256 (hex) of his latest month sign-off's signature image; "" when he signed by tap
    /// or has not signed.
    pub image: String,
    /// Whether the image's bytes are where the sheet was made.
    pub image_here: bool,
    /// The image as drawn ([`crate::signoff::signature_picture`]), when here and decodable.
    pub picture: Option<Vec<u8>>,
}

/// Writes the pay sheets given, each starting a page.
pub fn pay_sheets(sheets: &[PaySheetPrint]) -> Result<Pdf> {
    let metrics = Metrics::new()?;
    let mut l = Layout::with_page(&metrics, LANDSCAPE, SHEET_BODY);
    for (i, sheet) in sheets.iter().enumerate() {
        if i > 0 {
            l.pages.push(Vec::new());
            l.y = MARGIN;
        }
        one_sheet(&mut l, sheet);
    }
    let missing = l.missing.iter().copied().collect();
    let title = match sheets {
        [one] => format!("工资表 {} {} {}~{}", one.site_name, one.crew_name, one.from, one.to),
        _ => "工资表".to_string(),
    };
    let (bytes, pages) = render(l.pages, l.size, &title)?;
    Ok(Pdf { bytes, pages, missing })
}

fn one_sheet(l: &mut Layout<'_>, s: &PaySheetPrint) {
    let title = "工资表";
    let w = l.width(title, 20.0);
    l.text((l.size.0 - w) / 2.0, l.y + 20.0, 20.0, title);
    l.y += 20.0 * super::LEADING + 6.0;
    if !s.company.is_empty() {
        l.paragraph(&format!("单位：{}", s.company), 10.5);
    }
    l.paragraph(&format!("工程名称：{}（{}）", s.site_name, s.site_code), 10.5);
    let leader = if s.crew_leader.is_empty() {
        String::new()
    } else {
        format!("　　班组长：{}", s.crew_leader)
    };
    l.paragraph(
        &format!("班组：{}{leader}　　工资期间：{} 至 {}", s.crew_name, s.from, s.to),
        10.5,
    );
    let state = match &s.closed {
        Some(c) => {
            let paid = match &c.paid {
                Some((by, at, reference)) => format!(
                    "；已发放：{by} {}，付款凭证 {reference}",
                    at.format("%Y-%m-%d %H:%M UTC")
                ),
                None => "；未发放".into(),
            };
            format!(
                "状态：已结账（{}，{} 于 {} 结账{paid}）",
                c.period,
                c.closed_by,
                c.closed_at.format("%Y-%m-%d %H:%M UTC")
            )
        }
        None => "状态：未结账（按已审批日志计算，结账前可能变化）".into(),
    };
    l.paragraph(&state, 10.5);
    if !s.unapproved.is_empty() {
        let days: Vec<String> = s.unapproved.iter().map(NaiveDate::to_string).collect();
        l.paragraph(&format!("未审批、未计入的日期：{}", days.join("、")), 9.0);
    }
    l.y += 4.0;
    let cols = [
        Col("姓名", 1.5, Align::Left),
        Col("身份证号", 2.6, Align::Left),
        Col("银行卡号", 2.7, Align::Left),
        Col("工日", 1.0, Align::Right),
        Col("工时", 1.2, Align::Right),
        Col("加班", 1.0, Align::Right),
        Col("点工工资", 1.6, Align::Right),
        Col("加班工资", 1.4, Align::Right),
        Col("包工工资", 1.6, Align::Right),
        Col("借支", 1.4, Align::Right),
        Col("调整", 1.3, Align::Right),
        Col("实发", 1.6, Align::Right),
        Col("签认", 1.3, Align::Left),
        Col("签字", 2.3, Align::Left),
    ];
    let figures = |a: &PayAmounts, adjustment: i64| {
        vec![
            fixed(a.work_days_centi, 2),
            hours(a.hours_min),
            hours(a.overtime_min),
            yuan(a.day_pay_fen),
            yuan(a.overtime_pay_fen),
            yuan(a.piece_pay_fen),
            yuan(a.advances_fen),
            yuan(adjustment),
            yuan(a.net_fen),
        ]
    };
    let mut pictures: Vec<Option<Picture>> = Vec::new();
    let mut rows: Vec<Vec<String>> = Vec::new();
    for line in &s.lines {
        let cell = signature_cell(&line.image, line.image_here, line.picture.as_deref());
        // Why there is no picture: not signed (its state says so), signed by a tap, or the image
        // is not here or not printable.
        let said = match line.signoff {
            SignoffState::Unsigned => "未签字".to_string(),
            _ if cell.picture.is_some() => String::new(),
            // A tap of consent: there is no image to draw.
            _ if line.image.is_empty() => cell.how.clone(),
            _ => cell.said.to_string(),
        };
        let mut row = vec![
            if line.name.is_empty() {
                line.worker.clone()
            } else {
                line.name.clone()
            },
            line.id_card_masked.clone(),
            line.bank_masked.clone(),
        ];
        row.extend(figures(&line.amounts, line.adjustment_fen));
        row.push(signoff_state_zh(line.signoff.as_str()).to_string());
        row.push(said);
        rows.push(row);
        pictures.push(match line.signoff {
            SignoffState::Unsigned => None,
            _ => cell.picture,
        });
    }
    let mut totals = vec!["合计".to_string(), format!("{} 人", s.lines.len()), String::new()];
    totals.extend(figures(&s.total, s.total_adjustment_fen));
    totals.extend([String::new(), String::new()]);
    rows.push(totals);
    l.table_with_pictures(&cols, &rows, &pictures);
    let unconfirmed: Vec<String> = s
        .lines
        .iter()
        .filter(|x| x.amounts.advances_unconfirmed > 0)
        .map(|x| {
            let name = if x.name.is_empty() { &x.worker } else { &x.name };
            format!(
                "{name} {}（{} 笔）",
                yuan(x.amounts.advances_unconfirmed_fen),
                x.amounts.advances_unconfirmed
            )
        })
        .collect();
    if !unconfirmed.is_empty() {
        // Below the table: a deduction without the worker's signature is payroll's to chase.
        l.heading("未经本人签认的借支（未签认、签认后有修改或有异议）");
        l.paragraph(&unconfirmed.join("；"), 9.0);
    }
    if !s.adjustments.is_empty() {
        l.heading("往期结账后的更正（计入本期调整）");
        for (i, a) in s.adjustments.iter().enumerate() {
            l.paragraph(&format!("{}. {a}", i + 1), 9.0);
        }
    }
    if !s.unpriced.is_empty() {
        l.heading("未定包工单价的包工记录（计工时，未计工资）");
        l.paragraph(&s.unpriced.join("；"), 9.0);
    }
    l.y += 8.0;
    l.paragraph("制表人：　　　　　　　　审核人：　　　　　　　　项目负责人：", 10.0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::pdf::Op;

    fn line(i: usize, signoff: SignoffState, image: &str, picture: Option<Vec<u8>>) -> PayPrintLine {
        PayPrintLine {
            worker: format!("w-{i:04}"),
            name: format!("工人{i}"),
            id_card_masked: "**************1234".into(),
            bank_masked: "6222 **** **** 1234".into(),
            amounts: PayAmounts {
                work_days_centi: 2_250,
                hours_min: 10_800,
                overtime_min: 600,
                day_pay_fen: 9_675_000,
                overtime_pay_fen: 60_000,
                piece_pay_fen: 1_234_567,
                advances_fen: 200_000,
                advances_unconfirmed_fen: 0,
                advances_unconfirmed: 0,
                net_fen: 10_769_567,
            },
            adjustment_fen: 0,
            signoff,
            image_here: picture.is_some(),
            image: image.into(),
            picture,
        }
    }

    fn texts(l: &Layout<'_>) -> Vec<String> {
        l.pages
            .iter()
            .flatten()
            .filter_map(|op| match op {
                Op::Text { text, .. } => Some(text.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn every_figure_fits_its_cell_on_one_line_and_a_missing_signature_is_said() {
        let strokes = image::RgbaImage::from_fn(400, 120, |x, y| {
            image::Rgba([0, 0, 0, if (x / 4 + y) % 37 == 0 { 255 } else { 0 }])
        });
        let mut png = std::io::Cursor::new(Vec::new());
        strokes.write_to(&mut png, image::ImageFormat::Png).unwrap();
        let picture = crate::signoff::signature_picture(png.get_ref()).unwrap();
        let sheet = PaySheetPrint {
            site_name: "杭州滨江商业综合体".into(),
            crew_name: "周长班组".into(),
            from: NaiveDate::from_ymd_opt(2026, 9, 1).unwrap(),
            to: NaiveDate::from_ymd_opt(2026, 9, 30).unwrap(),
            lines: vec![
                line(0, SignoffState::Signed, &"a".repeat(64), Some(picture)),
                line(1, SignoffState::Signed, "", None),
                line(2, SignoffState::Signed, &"b".repeat(64), None),
                line(3, SignoffState::Unsigned, "", None),
            ],
            ..PaySheetPrint::default()
        };
        let metrics = Metrics::new().unwrap();
        let mut l = Layout::with_page(&metrics, LANDSCAPE, SHEET_BODY);
        one_sheet(&mut l, &sheet);
        let t = texts(&l);
        for figure in [
            "¥96,750.00",
            "¥12,345.67",
            "¥107,695.67",
            "**************1234",
            "6222 **** **** 1234",
        ] {
            assert_eq!(
                t.iter().filter(|x| x.as_str() == figure).count(),
                4,
                "{figure} printed whole once per worker: {t:?}"
            );
        }
        assert!(t.iter().any(|x| x == "点按确认"));
        assert!(t.iter().any(|x| x == "未收到签名图"));
        assert!(t.iter().any(|x| x == "未签字"));
        let images = l
            .pages
            .iter()
            .flatten()
            .filter(|op| matches!(op, Op::Image { .. }))
            .count();
        assert_eq!(images, 1, "only the signature whose image is here is drawn");
        assert_eq!(l.pages.len(), 1);
        assert!(
            pay_sheets(&[sheet.clone(), sheet]).unwrap().pages == 2,
            "a crew's sheet starts a page"
        );
    }
}
