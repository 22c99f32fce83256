//! The words of the catalogue: counted nouns, column headings, status words, documents by name.

use std::fmt;

use sitesync_core::ids::DocId;
use sitesync_core::labor::{DayStatus, ReviewAction};
use sitesync_core::okr::Status;

use crate::locale::{Lang, lang};

/// Things counted in messages; English needs the plural, Chinese a measure word.
#[derive(Debug, Clone, Copy)]
pub enum Noun {
    Site,
    Worker,
    Day,
    LaborLine,
    ProgressLine,
    Line,
    Document,
    Change,
}

/// `n` things, as a person writes it: "1 line", "2 lines", "2 条".
pub struct Count(pub usize, pub Noun);

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Count(n, noun) = *self;
        let (one, many, zh) = match noun {
            Noun::Site => ("site", "sites", "个工地"),
            Noun::Worker => ("worker", "workers", "名工人"),
            Noun::Day => ("day", "days", "天"),
            Noun::LaborLine => ("labor line", "labor lines", "条用工记录"),
            Noun::ProgressLine => ("progress line", "progress lines", "条进度记录"),
            Noun::Line => ("line", "lines", "条记录"),
            Noun::Document => ("document", "documents", "个文档"),
            Noun::Change => ("change", "changes", "处修改"),
        };
        match lang() {
            Lang::En => write!(f, "{n} {}", if n == 1 { one } else { many }),
            Lang::Zh => write!(f, "{n} {zh}"),
        }
    }
}

/// Column headings of the tables.
#[derive(Debug, Clone, Copy)]
pub enum Col {
    Id,
    Code,
    Name,
    Timezone,
    Crew,
    Leader,
    Trade,
    Worker,
    DayRate,
    OvertimeRate,
    Active,
    WorkItem,
    Unit,
    Planned,
    Budget,
    WorkDays,
    Hours,
    Overtime,
    OvertimeHours,
    Cost,
    Note,
    Conflicts,
    Quantity,
    ToDate,
    Percent,
    LaborCost,
    Line,
    Field,
    Approved,
    Now,
    Key,
    Lines,
    Date,
    Site,
    KeyResult,
    Title,
    Current,
    Target,
    Progress,
    Status,
    LastCheckIn,
    Sha256,
    Bytes,
    MediaType,
    Caption,
    DayPay,
    OvertimePay,
    PiecePay,
    Advances,
    Net,
}

impl Col {
    pub fn label(self) -> &'static str {
        let (en, zh) = match self {
            Col::Id => ("id", "编号"),
            Col::Code => ("code", "代码"),
            Col::Name => ("name", "名称"),
            Col::Timezone => ("timezone", "时区"),
            Col::Crew => ("crew", "班组"),
            Col::Leader => ("leader", "班组长"),
            Col::Trade => ("trade", "工种"),
            Col::Worker => ("worker", "工人"),
            Col::DayRate => ("day rate", "日工资"),
            Col::OvertimeRate => ("ot rate/h", "加班费/时"),
            Col::Active => ("active", "在岗"),
            Col::WorkItem => ("work item", "分项"),
            Col::Unit => ("unit", "单位"),
            Col::Planned => ("planned", "计划量"),
            Col::Budget => ("budget", "预算"),
            Col::WorkDays => ("work-days", "工日"),
            Col::Hours => ("hours", "工时"),
            Col::Overtime => ("overtime", "加班"),
            Col::OvertimeHours => ("overtime h", "加班工时"),
            Col::Cost => ("cost", "费用"),
            Col::Note => ("note", "备注"),
            Col::Conflicts => ("conflicts", "冲突"),
            Col::Quantity => ("quantity", "完成量"),
            Col::ToDate => ("to date", "累计"),
            Col::Percent => ("%", "%"),
            Col::LaborCost => ("labor cost", "人工费"),
            Col::Line => ("line", "记录"),
            Col::Field => ("field", "字段"),
            Col::Approved => ("approved", "批准时"),
            Col::Now => ("now", "现在"),
            Col::Key => ("key", "分组"),
            Col::Lines => ("lines", "条数"),
            Col::Date => ("date", "日期"),
            Col::Site => ("site", "工地"),
            Col::KeyResult => ("kr", "关键结果"),
            Col::Title => ("title", "标题"),
            Col::Current => ("current", "当前值"),
            Col::Target => ("target", "目标值"),
            Col::Progress => ("progress", "进度"),
            Col::Status => ("status", "状态"),
            Col::LastCheckIn => ("last check-in", "最近更新"),
            Col::Sha256 => ("sha256", "SHA-256"),
            Col::Bytes => ("bytes", "字节"),
            Col::MediaType => ("type", "类型"),
            Col::Caption => ("caption", "说明"),
            Col::DayPay => ("day pay", "点工工资"),
            Col::OvertimePay => ("ot pay", "加班工资"),
            Col::PiecePay => ("piece pay", "包工工资"),
            Col::Advances => ("advances", "借支"),
            Col::Net => ("net", "实发"),
        };
        pick(en, zh)
    }
}

/// The headings of a table, in the user's language.
pub fn cols(cols: &[Col]) -> Vec<&'static str> {
    cols.iter().map(|c| c.label()).collect()
}

pub(super) fn pick(en: &'static str, zh: &'static str) -> &'static str {
    match lang() {
        Lang::En => en,
        Lang::Zh => zh,
    }
}

/// A day's review state. English keeps the API's names (`amended_after_approval`), which scripts
/// and the README match on.
pub fn status(s: DayStatus) -> &'static str {
    match s {
        DayStatus::Draft => pick("draft", "草稿"),
        DayStatus::Submitted => pick("submitted", "已提交"),
        DayStatus::Approved => pick("approved", "已批准"),
        DayStatus::Rejected => pick("rejected", "已退回"),
        DayStatus::AmendedAfterApproval => pick("amended_after_approval", "批准后已修改"),
    }
}

pub(super) fn action(a: ReviewAction) -> &'static str {
    match a {
        ReviewAction::Submitted => pick("submitted", "提交"),
        ReviewAction::Approved => pick("approved", "批准"),
        ReviewAction::Rejected => pick("rejected", "退回"),
        ReviewAction::Amended => pick("amended", "修改"),
    }
}

/// A document as a person names it: "site-hz-01 2026-11-30" rather than `day|site-hz-01|2026-11-30`.
pub struct Doc<'a>(pub &'a DocId);

impl fmt::Display for Doc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0, lang()) {
            (DocId::Day(s, d), _) => write!(f, "{s} {d}"),
            (DocId::Site(s), Lang::En) => write!(f, "{s} roster"),
            (DocId::Site(s), Lang::Zh) => write!(f, "{s} 基础资料"),
            (DocId::Okr(o, c), _) => write!(f, "OKR {o} {c}"),
        }
    }
}

/// An OKR status word.
pub fn okr_status(s: Status) -> &'static str {
    match s {
        Status::Green => pick("green", "绿"),
        Status::Yellow => pick("yellow", "黄"),
        Status::Red => pick("red", "红"),
    }
}

/// Yes or no, for a table cell.
pub fn yes_no(b: bool) -> &'static str {
    if b { pick("yes", "是") } else { pick("no", "否") }
}

/// Where an attachment's bytes are, in the user's language.
pub fn transfer(t: &sitesync_core::attachments::Transfer, size: sitesync_core::attachments::ByteSize) -> String {
    use sitesync_core::attachments::Transfer;
    let pct = |n: u64| (n.saturating_mul(100) / size.bytes().max(1)).min(100);
    match t {
        Transfer::Queued => pick("queued", "待上传").to_string(),
        Transfer::Sending { sent } => format!("{} {}%", pick("sending", "上传中"), pct(*sent)),
        Transfer::OnServer => pick("on the server", "已上传").to_string(),
        Transfer::Missing => pick("not downloaded", "未下载").to_string(),
        Transfer::Receiving { received } => format!("{} {}%", pick("receiving", "下载中"), pct(*received)),
        Transfer::Downloaded => pick("downloaded", "已下载").to_string(),
    }
}
