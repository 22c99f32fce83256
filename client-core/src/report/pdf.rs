//! The 施工日志 ([`DailyLog`]) as a printable PDF: A4 portrait, in Chinese, one page or more per
//! site-day, each page numbered "第 i 页 共 n 页".
//!
//! The text is set in `client-core/fonts/NotoSansSC-GB2312.otf`, compiled into the binary so a
//! machine with no CJK fonts prints the same page. It is Noto Sans CJK SC (SIL OFL 1.1) cut down to
//! GB 2312 and the punctuation and symbols of a site log by `scripts/cjk-font.sh` (3.0 MB, from
//! 19 MB), and krilla embeds only the glyphs a page uses (a one-page log is ~60 KB). A character
//! the font lacks prints as an empty box; [`Pdf::missing`] names such characters so the caller can
//! say so rather than print a wrong name silently.
//!
//! Layout is two passes: [`Layout`] places text and rules on pages (measuring with the font's own
//! advances, wrapping cells, repeating a table's header on each page it spans), then [`render`]
//! writes them, once the page count is known. Each section of the log is one function of the
//! layout. Photo thumbnails are JPEGs the store made ([`crate::attachments::thumbnail`]), drawn
//! after the attachment table, each with its caption under it; a signature image
//! ([`crate::signoff::signature_picture`]) is drawn in the last cell of its sign-off row. The
//! 工资表 ([`pay_sheets`]) is laid out by the same [`Layout`] on landscape pages.

use std::collections::BTreeSet;

use krilla::geom::{PathBuilder, Point};
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::text::{Font, TextDirection};
use krilla::{Data, Document};
use skrifa::MetadataProvider;
use skrifa::instance::{LocationRef, Size};

use crate::error::{Error, Result};
use crate::report::DailyLog;
use crate::units::{fixed, hours, yuan};

mod pay_sheet;
pub use pay_sheet::{ClosedPrint, PayPrintLine, PaySheetPrint, pay_sheets};

/// The shipped font (see the module doc for how it was made).
static FONT: &[u8] = include_bytes!("../../fonts/NotoSansSC-GB2312.otf");

/// A4 in points.
const PAGE_W: f32 = 595.28;
const PAGE_H: f32 = 841.89;
/// Page margin, in points; the footer sits inside the bottom one.
const MARGIN: f32 = 42.0;
/// Body text size, in points.
const BODY: f32 = 9.0;
/// Line height as a multiple of the text size.
const LEADING: f32 = 1.45;
/// Space between a cell's rule and its text, in points.
const PAD: f32 = 3.0;

/// A written report.
#[derive(Debug, Clone)]
pub struct Pdf {
    /// The PDF file.
    pub bytes: Vec<u8>,
    /// How many pages it has.
    pub pages: usize,
    /// Characters of the log the font has no glyph for (printed as empty boxes), in code point order.
    pub missing: Vec<char>,
}

/// Writes the 施工日志 of one site-day.
pub fn daily_log(log: &DailyLog) -> Result<Pdf> {
    let metrics = Metrics::new()?;
    let mut l = Layout::new(&metrics);
    header(&mut l, log);
    crews(&mut l, log);
    labor(&mut l, log);
    progress(&mut l, log);
    delays(&mut l, log);
    note(&mut l, log);
    sign_offs(&mut l, log);
    attachments(&mut l, log);
    approval(&mut l, log);
    let missing = l.missing.iter().copied().collect();
    let (bytes, pages) = render(l.pages, l.size, &format!("施工日志 {} {}", log.site_name, log.date))?;
    Ok(Pdf { bytes, pages, missing })
}

/// The font's character map and advances.
struct Metrics {
    font: skrifa::FontRef<'static>,
}

impl Metrics {
    fn new() -> Result<Metrics> {
        let font = skrifa::FontRef::new(FONT).map_err(|e| Error::Render(format!("the shipped font: {e}")))?;
        Ok(Metrics { font })
    }

    /// The advance of `c` at `size`, or `None` when the font has no glyph for it.
    fn advance(&self, c: char, size: f32) -> Option<f32> {
        let gid = self.font.charmap().map(c)?;
        self.font
            .glyph_metrics(Size::new(size), LocationRef::default())
            .advance_width(gid)
    }
}

/// What is drawn on a page, in points from its top left corner; text at its baseline.
#[derive(Debug, Clone, PartialEq)]
enum Op {
    Text {
        x: f32,
        y: f32,
        size: f32,
        text: String,
    },
    Rule {
        x1: f32,
        y1: f32,
        x2: f32,
        y2: f32,
    },
    /// A JPEG drawn into the box whose top left corner is `x`, `y`.
    Image {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        jpeg: Vec<u8>,
    },
}

/// The box a photo thumbnail is fitted into, in points (a thumbnail's 256 pixels at about 180 dpi).
const THUMB_PT: f32 = 120.0;
/// Space between thumbnails, in points.
const THUMB_GAP: f32 = 12.0;

/// The box a signature image is fitted into, in the last column of its sign-off row, in points
/// (that column is about 73 pt wide less its padding).
const SIGNATURE_PT: (f32, f32) = (64.0, 32.0);

/// A picture in a table cell: its size in points and the JPEG.
struct Picture {
    w: f32,
    h: f32,
    jpeg: Vec<u8>,
}

/// How a column's text sits in its cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Right,
}

/// A table column: its heading, share of the text width, and alignment.
struct Col(&'static str, f32, Align);

/// Places text on pages, top to bottom, starting a page where the next block does not fit.
struct Layout<'m> {
    metrics: &'m Metrics,
    /// The page's width and height in points (A4 portrait for the log, landscape for the pay sheet).
    size: (f32, f32),
    /// The size of a table's text, in points.
    body: f32,
    pages: Vec<Vec<Op>>,
    /// The top of the free space on the last page.
    y: f32,
    /// Characters without a glyph, as met.
    missing: BTreeSet<char>,
}

impl<'m> Layout<'m> {
    fn new(metrics: &'m Metrics) -> Layout<'m> {
        Layout::with_page(metrics, (PAGE_W, PAGE_H), BODY)
    }

    /// A layout on pages of `size` points whose tables are set at `body` points.
    fn with_page(metrics: &'m Metrics, size: (f32, f32), body: f32) -> Layout<'m> {
        Layout {
            metrics,
            size,
            body,
            pages: vec![Vec::new()],
            y: MARGIN,
            missing: BTreeSet::new(),
        }
    }

    fn width(&mut self, text: &str, size: f32) -> f32 {
        text.chars()
            .map(|c| match self.metrics.advance(c, size) {
                Some(w) => w,
                None => {
                    if !c.is_control() {
                        self.missing.insert(c);
                    }
                    size
                }
            })
            .sum()
    }

    /// `text` broken into lines no wider than `width` (anywhere: Chinese has no spaces to wait for).
    fn wrap(&mut self, text: &str, size: f32, width: f32) -> Vec<String> {
        let mut lines = Vec::new();
        for para in text.split('\n') {
            let mut line = String::new();
            let mut w = 0.0;
            for c in para.chars() {
                let cw = self.width(c.encode_utf8(&mut [0; 4]), size);
                if w + cw > width && !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                    w = 0.0;
                }
                line.push(c);
                w += cw;
            }
            lines.push(line);
        }
        lines
    }

    fn page(&mut self) -> &mut Vec<Op> {
        self.pages.last_mut().expect("a layout always has a page")
    }

    /// Starts a new page unless `height` still fits on this one.
    fn room(&mut self, height: f32) -> bool {
        if self.y + height > self.size.1 - MARGIN && self.y > MARGIN {
            self.pages.push(Vec::new());
            self.y = MARGIN;
            true
        } else {
            false
        }
    }

    fn text(&mut self, x: f32, y: f32, size: f32, text: &str) {
        if !text.is_empty() {
            self.width(text, size);
            self.page().push(Op::Text {
                x,
                y,
                size,
                text: text.to_string(),
            });
        }
    }

    fn rule(&mut self, x1: f32, y1: f32, x2: f32, y2: f32) {
        self.page().push(Op::Rule { x1, y1, x2, y2 });
    }

    /// A paragraph across the text width.
    fn paragraph(&mut self, text: &str, size: f32) {
        for line in self.wrap(text, size, self.size.0 - 2.0 * MARGIN) {
            self.room(size * LEADING);
            self.text(MARGIN, self.y + size, size, &line);
            self.y += size * LEADING;
        }
    }

    /// A section heading, kept on the page of what follows it.
    fn heading(&mut self, text: &str) {
        self.y += 6.0;
        self.room(11.0 * LEADING + 3.0 * self.body * LEADING);
        self.text(MARGIN, self.y + 11.0, 11.0, text);
        self.y += 11.0 * LEADING + 2.0;
    }

    /// A table with ruled cells; its header repeats on every page it spans.
    fn table(&mut self, cols: &[Col], rows: &[Vec<String>]) {
        self.table_with_pictures(cols, rows, &[]);
    }

    /// A table whose rows may each carry a picture drawn in the last column (`pictures[i]` of
    /// `rows[i]`: its size in points and the JPEG), the row made tall enough to hold it.
    fn table_with_pictures(&mut self, cols: &[Col], rows: &[Vec<String>], pictures: &[Option<Picture>]) {
        let total: f32 = cols.iter().map(|c| c.1).sum();
        let text_w = self.size.0 - 2.0 * MARGIN;
        let widths: Vec<f32> = cols.iter().map(|c| c.1 / total * text_w).collect();
        let header: Vec<String> = cols.iter().map(|c| c.0.to_string()).collect();
        let head_aligns: Vec<Align> = cols.iter().map(|_| Align::Left).collect();
        let aligns: Vec<Align> = cols.iter().map(|c| c.2).collect();
        let head = self.cells(&widths, &header);
        self.room(head.0 + self.body * LEADING + 2.0 * PAD);
        self.row(&widths, &head_aligns, &head);
        for (i, r) in rows.iter().enumerate() {
            let mut cells = self.cells(&widths, r);
            let picture = pictures.get(i).and_then(Option::as_ref);
            if let Some(p) = picture {
                cells.0 = cells.0.max(p.h + 2.0 * PAD);
            }
            if self.room(cells.0) {
                self.row(&widths, &head_aligns, &head);
            }
            let top = self.y;
            self.row(&widths, &aligns, &cells);
            if let (Some(p), Some(last)) = (picture, widths.last()) {
                let x = self.size.0 - MARGIN - last + PAD;
                self.page().push(Op::Image {
                    x,
                    y: top + PAD,
                    w: p.w,
                    h: p.h,
                    jpeg: p.jpeg.clone(),
                });
            }
        }
    }

    /// A row's height and each cell's lines.
    fn cells(&mut self, widths: &[f32], row: &[String]) -> (f32, Vec<Vec<String>>) {
        let lines: Vec<Vec<String>> = widths
            .iter()
            .zip(row)
            .map(|(w, t)| self.wrap(t, self.body, w - 2.0 * PAD))
            .collect();
        let n = lines.iter().map(Vec::len).max().unwrap_or(1).max(1);
        (n as f32 * self.body * LEADING + 2.0 * PAD, lines)
    }

    fn row(&mut self, widths: &[f32], aligns: &[Align], (height, cells): &(f32, Vec<Vec<String>>)) {
        let (top, bottom) = (self.y, self.y + height);
        let mut x = MARGIN;
        self.rule(x, top, self.size.0 - MARGIN, top);
        self.rule(x, bottom, self.size.0 - MARGIN, bottom);
        for ((w, lines), align) in widths.iter().zip(cells).zip(aligns) {
            self.rule(x, top, x, bottom);
            for (i, line) in lines.iter().enumerate() {
                let baseline = top + PAD + self.body + i as f32 * self.body * LEADING;
                let tx = match align {
                    Align::Left => x + PAD,
                    Align::Right => x + w - PAD - self.width(line, self.body),
                };
                self.text(tx, baseline, self.body, line);
            }
            x += w;
        }
        self.rule(self.size.0 - MARGIN, top, self.size.0 - MARGIN, bottom);
        self.y = bottom;
    }
}

/// Chinese for a day's review status.
fn status_zh(status: &str) -> &str {
    match status {
        "draft" => "草稿（未提交）",
        "submitted" => "已提交，待审批",
        "approved" => "已审批",
        "rejected" => "已退回",
        "amended_after_approval" => "审批后有修改，待重新审批",
        other => other,
    }
}

/// Chinese for a review action.
fn action_zh(action: &str) -> &str {
    match action {
        "submitted" => "提交",
        "approved" => "审批通过",
        "rejected" => "退回",
        "amended" => "修改",
        other => other,
    }
}

fn weekday_zh(date: chrono::NaiveDate) -> &'static str {
    use chrono::Datelike;
    ["星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日"]
        [date.weekday().num_days_from_monday() as usize]
}

/// Thousandths of a unit as people read them: `12.5`, `3`.
fn quantity(milli: i64) -> String {
    let s = fixed(milli, 3);
    match s.contains('.') {
        true => s.trim_end_matches('0').trim_end_matches('.').to_string(),
        false => s,
    }
}

fn header(l: &mut Layout<'_>, log: &DailyLog) {
    use chrono::Datelike;
    let title = "施工日志";
    let w = l.width(title, 20.0);
    l.text((PAGE_W - w) / 2.0, l.y + 20.0, 20.0, title);
    l.y += 20.0 * LEADING + 6.0;
    l.paragraph(&format!("工程名称：{}（{}）", log.site_name, log.site_code), 10.5);
    let date = format!(
        "日期：{}年{}月{}日 {}",
        log.date.year(),
        log.date.month(),
        log.date.day(),
        weekday_zh(log.date)
    );
    let weather = if log.weather.trim().is_empty() {
        "未记录"
    } else {
        log.weather.as_str()
    };
    l.paragraph(
        &format!("{date}　　天气：{weather}　　状态：{}", status_zh(&log.status)),
        10.5,
    );
    l.paragraph(
        &format!(
            "出勤：{} 人　　工日：{}　　工时：{} 小时（加班 {} 小时）　　人工费：{}",
            log.headcount,
            fixed(log.total.work_days_centi, 2),
            hours(log.total.hours_min),
            hours(log.total.overtime_min),
            yuan(log.total.cost_fen)
        ),
        10.5,
    );
}

fn crews(l: &mut Layout<'_>, log: &DailyLog) {
    l.heading("一、班组与出勤人数");
    if log.crews.is_empty() {
        l.paragraph("无", BODY);
        return;
    }
    let cols = [
        Col("班组", 3.0, Align::Left),
        Col("班组长", 2.0, Align::Left),
        Col("人数", 1.2, Align::Right),
        Col("工日", 1.5, Align::Right),
        Col("工时", 1.5, Align::Right),
        Col("人工费", 2.2, Align::Right),
    ];
    let mut rows: Vec<Vec<String>> = log
        .crews
        .iter()
        .map(|c| {
            vec![
                if c.name.is_empty() {
                    "（不在花名册）".into()
                } else {
                    c.name.clone()
                },
                c.leader.clone(),
                c.headcount.to_string(),
                fixed(c.sums.work_days_centi, 2),
                hours(c.sums.hours_min),
                yuan(c.sums.cost_fen),
            ]
        })
        .collect();
    rows.push(vec![
        "合计".into(),
        String::new(),
        log.headcount.to_string(),
        fixed(log.total.work_days_centi, 2),
        hours(log.total.hours_min),
        yuan(log.total.cost_fen),
    ]);
    l.table(&cols, &rows);
}

fn labor(l: &mut Layout<'_>, log: &DailyLog) {
    l.heading("二、用工明细");
    if log.labor.is_empty() {
        l.paragraph("无", BODY);
        return;
    }
    let cols = [
        Col("工人", 1.6, Align::Left),
        Col("班组", 2.0, Align::Left),
        Col("部位/分项", 3.0, Align::Left),
        Col("类别", 0.9, Align::Left),
        Col("工日", 1.1, Align::Right),
        Col("工时", 1.2, Align::Right),
        Col("加班", 1.0, Align::Right),
        Col("日工资", 1.5, Align::Right),
        Col("金额", 1.7, Align::Right),
        Col("备注", 1.5, Align::Left),
    ];
    let mut rows: Vec<Vec<String>> = log
        .labor
        .iter()
        .map(|r| {
            vec![
                if r.worker_name.is_empty() {
                    r.worker.clone()
                } else {
                    r.worker_name.clone()
                },
                r.crew_name.clone(),
                format!("{} {}", r.work_item_code, r.work_item_name).trim().to_string(),
                match r.kind.as_str() {
                    "piecework" => "包工".into(),
                    _ => "点工".into(),
                },
                fixed(r.sums.work_days_centi, 2),
                hours(r.sums.hours_min),
                hours(r.sums.overtime_min),
                yuan(r.day_rate_fen),
                yuan(r.sums.cost_fen),
                r.note.clone(),
            ]
        })
        .collect();
    rows.push(vec![
        "合计".into(),
        format!("{} 人", log.headcount),
        String::new(),
        String::new(),
        fixed(log.total.work_days_centi, 2),
        hours(log.total.hours_min),
        hours(log.total.overtime_min),
        String::new(),
        yuan(log.total.cost_fen),
        String::new(),
    ]);
    l.table(&cols, &rows);
}

fn progress(l: &mut Layout<'_>, log: &DailyLog) {
    l.heading("三、施工进度（对照计划）");
    if log.progress.is_empty() {
        l.paragraph("无", BODY);
        return;
    }
    let cols = [
        Col("编码", 0.8, Align::Left),
        Col("分项", 2.6, Align::Left),
        Col("单位", 0.7, Align::Left),
        Col("今日完成", 1.4, Align::Right),
        Col("累计完成", 1.4, Align::Right),
        Col("计划量", 1.4, Align::Right),
        Col("完成率", 1.1, Align::Right),
        Col("计划工期", 3.4, Align::Left),
        Col("说明", 1.4, Align::Left),
    ];
    let rows: Vec<Vec<String>> = log
        .progress
        .iter()
        .map(|p| {
            let t = &p.to_date;
            let plan = match (t.planned_start, t.planned_end) {
                (Some(a), Some(b)) => format!("{a} 至 {b}"),
                (Some(a), None) => format!("{a} 起"),
                (None, Some(b)) => format!("至 {b}"),
                (None, None) => String::new(),
            };
            vec![
                t.code.clone(),
                t.name.clone(),
                t.unit.clone(),
                quantity(p.quantity_today_milli),
                quantity(t.quantity_to_date_milli),
                quantity(t.planned_quantity_milli),
                format!("{:.1}%", t.percent_complete),
                plan,
                p.note.clone(),
            ]
        })
        .collect();
    l.table(&cols, &rows);
}

fn delays(l: &mut Layout<'_>, log: &DailyLog) {
    l.heading("四、延误与问题");
    if log.delays.is_empty() {
        l.paragraph("无", BODY);
        return;
    }
    for (i, d) in log.delays.iter().enumerate() {
        let item = if d.work_item.is_empty() {
            String::new()
        } else {
            format!("（{}）", d.work_item)
        };
        l.paragraph(&format!("{}. {}{item}　记录人：{}", i + 1, d.text, d.entered_by), BODY);
    }
}

fn note(l: &mut Layout<'_>, log: &DailyLog) {
    l.heading("五、备注");
    l.paragraph(if log.note.trim().is_empty() { "无" } else { &log.note }, BODY);
}

fn sign_offs(l: &mut Layout<'_>, log: &DailyLog) {
    l.heading("六、签认");
    if log.sign_offs.is_empty() {
        l.paragraph("无", BODY);
        return;
    }
    let cols = [
        Col("签认人", 2.0, Align::Left),
        Col("身份", 1.0, Align::Left),
        Col("状态", 1.6, Align::Left),
        Col("时间", 2.4, Align::Left),
        Col("设备", 1.3, Align::Left),
        Col("说明", 3.1, Align::Left),
        Col("签名", 1.9, Align::Left),
    ];
    let cells: Vec<SignatureCell> = log
        .sign_offs
        .iter()
        .map(|s| signature_cell(&s.image, s.image_here, s.picture.as_deref()))
        .collect();
    let rows: Vec<Vec<String>> = log
        .sign_offs
        .iter()
        .zip(&cells)
        .map(|(s, cell)| {
            let mut detail = s.detail.clone();
            let mut signature = String::new();
            if matches!(s.state.as_str(), "signed" | "changed_since_signed" | "confirmed") {
                signature = cell.said.to_string();
                detail = if detail.is_empty() {
                    cell.how.clone()
                } else {
                    format!("{}；{detail}", cell.how)
                };
            }
            vec![
                s.who.clone(),
                match s.role.as_str() {
                    "crew_leader" => "班组长".into(),
                    "worker" => "工人".into(),
                    other => other.into(),
                },
                signoff_state_zh(&s.state).to_string(),
                s.at.map(|at| at.format("%Y-%m-%d %H:%M UTC").to_string())
                    .unwrap_or_default(),
                s.device.clone(),
                detail,
                signature,
            ]
        })
        .collect();
    let pictures: Vec<Option<Picture>> = cells.into_iter().map(|c| c.picture).collect();
    l.table_with_pictures(&cols, &rows, &pictures);
}

/// Chinese for a sign-off state (a worker's, or a crew leader's confirmation).
fn signoff_state_zh(state: &str) -> &str {
    match state {
        "signed" => "已签认",
        "disputed" => "有异议",
        "answered" => "异议已答复",
        "changed_since_signed" => "签认后有修改",
        "unsigned" => "未签认",
        "confirmed" => "已确认",
        "unconfirmed" => "未确认",
        other => other,
    }
}

/// How a signature prints in its cell: the sign-off log's and the pay sheet's signature column.
struct SignatureCell {
    /// The picture, fitted into [`SIGNATURE_PT`], when its bytes are here and decode.
    picture: Option<Picture>,
    /// What the cell says instead of a picture ("" when there is one, or no image was taken).
    said: &'static str,
    /// How it was signed: `签名图` and the image's hash prefix, or `点按确认` (a tap, no image).
    how: String,
}

/// The signature cell of a record naming signature image `image` (SHA-256 hex, "" for none), whose
/// bytes are here or not, and its JPEG ([`crate::signoff::signature_picture`]) when it decoded.
fn signature_cell(image: &str, image_here: bool, jpeg: Option<&[u8]>) -> SignatureCell {
    let picture = jpeg.and_then(|jpeg| {
        let (w, h) = fitted(jpeg, SIGNATURE_PT)?;
        Some(Picture {
            w,
            h,
            jpeg: jpeg.to_vec(),
        })
    });
    let (said, how) = match image.get(..12) {
        Some(short) => (
            match (&picture, image_here) {
                (Some(_), _) => "",
                (None, true) => "签名为笔迹数据，未印",
                (None, false) => "未收到签名图",
            },
            format!("签名图 {short}"),
        ),
        None => ("", "点按确认".to_string()),
    };
    SignatureCell { picture, said, how }
}

fn attachments(l: &mut Layout<'_>, log: &DailyLog) {
    l.heading("七、照片与附件");
    if log.attachments.is_empty() {
        l.paragraph("无", BODY);
        return;
    }
    let cols = [
        Col("说明", 3.4, Align::Left),
        Col("类型", 1.8, Align::Left),
        Col("上传人", 1.3, Align::Left),
        Col("时间", 2.6, Align::Left),
        Col("SHA-256", 1.7, Align::Left),
        Col("图", 1.8, Align::Left),
    ];
    // Each thumbnail that decodes, with its size in points fitted to the thumbnail box.
    let thumbs: Vec<Option<(f32, f32)>> = log
        .attachments
        .iter()
        .map(|a| a.thumbnail.as_deref().and_then(thumb_size))
        .collect();
    let rows: Vec<Vec<String>> = log
        .attachments
        .iter()
        .zip(&thumbs)
        .map(|(a, t)| {
            let picture = match (t, a.bytes_here, a.media_type.starts_with("image/")) {
                (Some(_), ..) => "见下图",
                (None, false, true) => "未收到原图，未印",
                (None, true, true) => "无法解码，未印",
                (None, ..) => "—",
            };
            vec![
                a.caption.clone(),
                a.media_type.clone(),
                a.by.clone(),
                a.at.format("%Y-%m-%d %H:%M UTC").to_string(),
                a.sha256.get(..12).unwrap_or(&a.sha256).to_string(),
                picture.to_string(),
            ]
        })
        .collect();
    l.table(&cols, &rows);
    // The thumbnails, left to right, a row at a time; each with its caption under it.
    let caption_h = 2.0 * BODY * LEADING;
    let mut x = MARGIN;
    let mut first = true;
    for (a, t) in log.attachments.iter().zip(&thumbs) {
        let (Some((w, h)), Some(jpeg)) = (t, &a.thumbnail) else {
            continue;
        };
        if first {
            l.y += THUMB_GAP / 2.0;
            first = false;
        } else if x + THUMB_PT > PAGE_W - MARGIN {
            x = MARGIN;
            l.y += THUMB_PT + caption_h + THUMB_GAP;
        }
        if l.room(THUMB_PT + caption_h) {
            x = MARGIN;
        }
        let top = l.y + (THUMB_PT - h) / 2.0;
        let left = x + (THUMB_PT - w) / 2.0;
        l.page().push(Op::Image {
            x: left,
            y: top,
            w: *w,
            h: *h,
            jpeg: jpeg.clone(),
        });
        let label = format!("{} {}", a.sha256.get(..8).unwrap_or(&a.sha256), a.caption);
        for (i, line) in l.wrap(&label, BODY, THUMB_PT).into_iter().take(2).enumerate() {
            l.text(x, l.y + THUMB_PT + BODY + i as f32 * BODY * LEADING, BODY, &line);
        }
        x += THUMB_PT + THUMB_GAP;
    }
    if !first {
        l.y += THUMB_PT + caption_h + THUMB_GAP / 2.0;
    }
}

/// A thumbnail's size in points, fitted into [`THUMB_PT`] square; `None` when the bytes are not a
/// JPEG whose size can be read or that krilla refuses (a damaged cache file prints as no picture, not as a failed log).
fn thumb_size(jpeg: &[u8]) -> Option<(f32, f32)> {
    fitted(jpeg, (THUMB_PT, THUMB_PT))
}

/// A JPEG's size in points fitted into the box `(w, h)`, keeping its proportions; `None` as for
/// [`thumb_size`].
fn fitted(jpeg: &[u8], (box_w, box_h): (f32, f32)) -> Option<(f32, f32)> {
    let (w, h) = image::ImageReader::with_format(std::io::Cursor::new(jpeg), image::ImageFormat::Jpeg)
        .into_dimensions()
        .ok()?;
    if w == 0 || h == 0 || krilla::image::Image::from_jpeg(Data::from(jpeg.to_vec()), true).is_err() {
        return None;
    }
    let scale = (box_w / w as f32).min(box_h / h as f32);
    Some((w as f32 * scale, h as f32 * scale))
}

fn approval(l: &mut Layout<'_>, log: &DailyLog) {
    l.heading("八、审批");
    match &log.approval {
        Some(a) => l.paragraph(
            &format!(
                "审批人：{}　　审批时间：{}",
                a.by_name,
                a.at.format("%Y-%m-%d %H:%M UTC")
            ),
            10.0,
        ),
        None => l.paragraph("未审批", 10.0),
    }
    if log.reviews.is_empty() {
        return;
    }
    let cols = [
        Col("时间", 2.6, Align::Left),
        Col("操作", 1.6, Align::Left),
        Col("操作人", 2.0, Align::Left),
        Col("说明", 5.0, Align::Left),
    ];
    let rows: Vec<Vec<String>> = log
        .reviews
        .iter()
        .map(|r| {
            vec![
                r.at.format("%Y-%m-%d %H:%M UTC").to_string(),
                action_zh(&r.action).to_string(),
                r.by_name.clone(),
                r.reason.clone(),
            ]
        })
        .collect();
    l.table(&cols, &rows);
}

/// Writes the laid-out pages, each with its footer; returns the file and its page count.
fn render(pages: Vec<Vec<Op>>, (page_w, page_h): (f32, f32), title: &str) -> Result<(Vec<u8>, usize)> {
    let font = Font::new(Data::from(FONT), 0).ok_or_else(|| Error::Render("the shipped font would not load".into()))?;
    let metrics = Metrics::new()?;
    let n = pages.len();
    let mut doc = Document::new();
    doc.set_metadata(krilla::metadata::Metadata::new().title(title.to_string()));
    let settings = PageSettings::from_wh(page_w, page_h).ok_or_else(|| Error::Render("page size".into()))?;
    for (i, mut ops) in pages.into_iter().enumerate() {
        let footer = format!("第 {} 页　共 {n} 页", i + 1);
        let w: f32 = footer.chars().filter_map(|c| metrics.advance(c, 8.0)).sum();
        ops.push(Op::Text {
            x: (page_w - w) / 2.0,
            y: page_h - MARGIN / 2.0,
            size: 8.0,
            text: footer,
        });
        let mut page = doc.start_page_with(settings.clone());
        let mut s = page.surface();
        for op in ops {
            match op {
                Op::Text { x, y, size, text } => {
                    s.set_stroke(None);
                    s.set_fill(Some(Fill::default()));
                    s.draw_text(
                        Point::from_xy(x, y),
                        font.clone(),
                        size,
                        &text,
                        false,
                        TextDirection::Auto,
                    );
                }
                Op::Image { x, y, w, h, jpeg } => {
                    // The layout placed only thumbnails this same call accepts ([`thumb_size`]).
                    let image = krilla::image::Image::from_jpeg(Data::from(jpeg), true).ok();
                    if let (Some(image), Some(size)) = (image, krilla::geom::Size::from_wh(w, h)) {
                        s.push_transform(&krilla::geom::Transform::from_translate(x, y));
                        s.draw_image(image, size);
                        s.pop();
                    }
                }
                Op::Rule { x1, y1, x2, y2 } => {
                    let mut p = PathBuilder::new();
                    p.move_to(x1, y1);
                    p.line_to(x2, y2);
                    if let Some(path) = p.finish() {
                        s.set_fill(None);
                        s.set_stroke(Some(Stroke {
                            width: 0.5,
                            ..Stroke::default()
                        }));
                        s.draw_path(&path);
                    }
                }
            }
        }
        s.finish();
        page.finish();
    }
    let bytes = doc.finish().map_err(|e| Error::Render(format!("{e:?}")))?;
    Ok((bytes, n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{LaborRow, Sums};

    fn log_with(workers: &[&str]) -> DailyLog {
        let labor: Vec<LaborRow> = workers
            .iter()
            .enumerate()
            .map(|(i, name)| LaborRow {
                line: format!("l{i}"),
                worker: format!("w-{i:04}"),
                worker_name: name.to_string(),
                crew_name: "周长班组".into(),
                trade: "plumber".into(),
                work_item_code: "4.1".into(),
                work_item_name: "给排水管道安装".into(),
                kind: "day_labor".into(),
                day_rate_fen: 43_000,
                note: String::new(),
                sums: Sums {
                    work_days_centi: 100,
                    hours_min: 480,
                    overtime_min: 0,
                    cost_fen: 43_000,
                    lines: 1,
                },
            })
            .collect();
        DailyLog {
            site: "site-hz-01".into(),
            site_code: "HZ-01".into(),
            site_name: "杭州滨江商业综合体".into(),
            date: chrono::NaiveDate::from_ymd_opt(2026, 9, 2).unwrap(),
            status: "draft".into(),
            weather: "晴".into(),
            note: String::new(),
            crews: Vec::new(),
            headcount: labor.len() as i64,
            total: Sums::default(),
            labor,
            progress: Vec::new(),
            delays: Vec::new(),
            reviews: Vec::new(),
            approval: None,
            sign_offs: Vec::new(),
            attachments: Vec::new(),
        }
    }

    #[test]
    fn a_character_outside_the_font_is_named_not_dropped_silently() {
        let pdf = daily_log(&log_with(&["高平", "王龘"])).unwrap();
        assert_eq!(pdf.missing, vec!['龘'], "U+9F98 is not in GB 2312");
        assert_eq!(pdf.pages, 1);
        assert!(pdf.bytes.starts_with(b"%PDF-"));
        let ok = daily_log(&log_with(&["高平", "鑫淼"])).unwrap();
        assert!(ok.missing.is_empty(), "level-2 hanzi are in: {:?}", ok.missing);
    }

    #[test]
    fn a_table_over_pages_repeats_its_header_on_each() {
        let names: Vec<String> = (0..150).map(|i| format!("工人{i}")).collect();
        let log = log_with(&names.iter().map(String::as_str).collect::<Vec<_>>());
        let metrics = Metrics::new().unwrap();
        let mut l = Layout::new(&metrics);
        labor(&mut l, &log);
        assert!(l.pages.len() >= 3, "{} pages", l.pages.len());
        for (i, page) in l.pages.iter().enumerate() {
            assert!(
                page.iter()
                    .any(|op| matches!(op, Op::Text { text, .. } if text == "部位/分项")),
                "page {} has no header",
                i + 1
            );
            let lowest = page
                .iter()
                .map(|op| match op {
                    Op::Text { y, .. } => *y,
                    Op::Rule { y1, y2, .. } => y1.max(*y2),
                    Op::Image { y, h, .. } => y + h,
                })
                .fold(0.0, f32::max);
            assert!(
                lowest <= PAGE_H - MARGIN,
                "page {} runs into the margin: {lowest}",
                i + 1
            );
        }
        let rows = l
            .pages
            .iter()
            .flatten()
            .filter(|op| matches!(op, Op::Text { text, .. } if text.starts_with("工人") && text != "工人"))
            .count();
        assert_eq!(rows, 150, "every line printed once");
    }

    #[test]
    fn thumbnails_stay_inside_the_margins_and_a_damaged_one_is_said_not_drawn() {
        let photo = image::RgbImage::from_fn(300, 200, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 0]));
        let mut png = std::io::Cursor::new(Vec::new());
        photo.write_to(&mut png, image::ImageFormat::Png).unwrap();
        let jpeg = crate::attachments::thumbnail(png.get_ref()).unwrap();
        let mut log = log_with(&["高平"]);
        log.attachments = (0..20)
            .map(|i| crate::report::AttachmentRow {
                sha256: format!("{i:064x}"),
                caption: format!("照片{i}"),
                media_type: "image/jpeg".into(),
                size_bytes: 1000,
                target: "day".into(),
                by: "foreman".into(),
                at: chrono::Utc::now(),
                bytes_here: true,
                // The last one's cached thumbnail is damaged.
                thumbnail: Some(if i == 19 { b"not a jpeg".to_vec() } else { jpeg.clone() }),
            })
            .collect();
        let metrics = Metrics::new().unwrap();
        let mut l = Layout::new(&metrics);
        attachments(&mut l, &log);
        let images: Vec<(f32, f32, f32, f32)> = l
            .pages
            .iter()
            .flatten()
            .filter_map(|op| match op {
                Op::Image { x, y, w, h, .. } => Some((*x, *y, *w, *h)),
                _ => None,
            })
            .collect();
        assert_eq!(images.len(), 19);
        assert!(l.pages.len() >= 2, "19 thumbnails take more than a page");
        for (x, y, w, h) in images {
            assert!(x >= MARGIN && x + w <= PAGE_W - MARGIN && y >= MARGIN && y + h <= PAGE_H - MARGIN);
            assert!((w - THUMB_PT).abs() < 0.01 && (h - THUMB_PT * 2.0 / 3.0).abs() < 0.5);
        }
        let said = l
            .pages
            .iter()
            .flatten()
            .any(|op| matches!(op, Op::Text { text, .. } if text.starts_with("无法解码")));
        assert!(said, "the damaged thumbnail's row says why there is no picture");
        assert!(daily_log(&log).unwrap().bytes.starts_with(b"%PDF-"));
    }

    #[test]
    fn a_signature_image_is_drawn_in_its_row_and_a_missing_one_is_said() {
        // A transparent PNG of black strokes, as a signature pad makes: drawn on white.
        let strokes = image::RgbaImage::from_fn(400, 120, |x, y| {
            if (x / 4 + y) % 37 == 0 {
                image::Rgba([0, 0, 0, 255])
            } else {
                image::Rgba([0, 0, 0, 0])
            }
        });
        let mut png = std::io::Cursor::new(Vec::new());
        strokes.write_to(&mut png, image::ImageFormat::Png).unwrap();
        let picture = crate::signoff::signature_picture(png.get_ref()).unwrap();
        let decoded = image::load_from_memory(&picture).unwrap().to_rgb8();
        assert!(
            decoded.get_pixel(1, 1).0.iter().all(|c| *c > 200),
            "the transparent background is white"
        );
        assert!(crate::signoff::signature_picture(b"stroke data, not an image").is_none());

        let row = |who: &str, image: &str, image_here: bool, picture: Option<Vec<u8>>| crate::report::SignOffRow {
            id: who.into(),
            who: who.into(),
            role: "worker".into(),
            state: "signed".into(),
            at: Some(chrono::Utc::now()),
            device: "d-1".into(),
            image: image.into(),
            image_here,
            picture,
            detail: String::new(),
        };
        let mut log = log_with(&["高平"]);
        log.sign_offs = vec![
            row("高平", &"a".repeat(64), true, Some(picture)),
            row("王强", &"b".repeat(64), false, None),
            row("李明", &"c".repeat(64), true, None),
            row("赵六", "", false, None),
        ];
        let metrics = Metrics::new().unwrap();
        let mut l = Layout::new(&metrics);
        sign_offs(&mut l, &log);
        let ops: Vec<&Op> = l.pages.iter().flatten().collect();
        let images: Vec<(f32, f32, f32, f32)> = ops
            .iter()
            .filter_map(|op| match op {
                Op::Image { x, y, w, h, .. } => Some((*x, *y, *w, *h)),
                _ => None,
            })
            .collect();
        assert_eq!(images.len(), 1, "only the signature whose bytes are here is drawn");
        let (x, y, w, h) = images[0];
        assert!(w <= SIGNATURE_PT.0 + 0.01 && h <= SIGNATURE_PT.1 + 0.01 && x + w <= PAGE_W - MARGIN);
        // Beside 高平: the picture's top is level with his row's text.
        let name_y = ops
            .iter()
            .find_map(|op| match op {
                Op::Text { text, y, .. } if text == "高平" => Some(*y),
                _ => None,
            })
            .unwrap();
        assert!(
            y < name_y && name_y < y + h + PAD,
            "image at {y}..{}, name at {name_y}",
            y + h
        );
        let said = |what: &str| {
            ops.iter()
                .any(|op| matches!(op, Op::Text { text, .. } if text.contains(what)))
        };
        assert!(said("未收到签名图") && said("未印") && said("点按确认"));
        assert!(daily_log(&log).unwrap().bytes.starts_with(b"%PDF-"));
    }
}
