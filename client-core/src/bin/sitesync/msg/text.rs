//! The two renderings of every message, side by side: each arm takes its message apart once and
//! gives the English and the Chinese text over the same names, so that neither can lack a message
//! or a value the other has.

use std::fmt;

use super::words::{action, pick};
use super::{Count, Doc, Msg, Noun, candidate, listed, shell_word, status};
use crate::error::{CliError, Expected, Kind};
use crate::locale::{Lang, lang};
use sitesync_core::due::Due;
use sitesync_core::sync::UpdateState;

/// Writes the English or the Chinese format string, whichever the user reads; both name the
/// values in scope.
macro_rules! tr {
    ($f:expr, $en:literal, $zh:literal) => {
        match lang() {
            Lang::En => write!($f, $en),
            Lang::Zh => write!($f, $zh),
        }
    };
}

fn kind(k: Kind) -> &'static str {
    match (k, lang()) {
        (Kind::Site, Lang::En) => "site",
        (Kind::Worker, Lang::En) => "worker",
        (Kind::Site, Lang::Zh) => "工地",
        (Kind::Worker, Lang::Zh) => "工人",
    }
}

impl fmt::Display for Msg<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Noun::*;
        match self {
            Msg::Imported {
                sites,
                workers,
                days,
                labor_lines,
                progress_lines,
            } => {
                let (s, w, d) = (Count(*sites, Site), Count(*workers, Worker), Count(*days, Day));
                let (l, p) = (Count(*labor_lines, LaborLine), Count(*progress_lines, ProgressLine));
                tr!(f, "imported {s}, {w}, {d}, {l}, {p}", "已导入 {s}、{w}、{d}、{l}、{p}")
            }
            Msg::ApprovedSkipped(n) => {
                let n = Count(*n, Day);
                tr!(
                    f,
                    "left {n} approved untouched (correct them with --amend)",
                    "已批准的 {n} 未改动（更正请用 --amend）"
                )
            }
            Msg::Bound { server, ca, store } => {
                tr!(f, "bound to {server}", "已绑定到 {server}")?;
                if let Some(ca) = ca.map(|c| c.display()) {
                    tr!(f, " (trusting only the CA in {ca})", "（只信任 {ca} 中的 CA）")?;
                }
                let store = shell_word(store);
                tr!(
                    f,
                    "; run `sitesync --store {store} sync` to sync",
                    "；同步请运行 `sitesync --store {store} sync`"
                )
            }
            Msg::Compacted(n) => {
                let n = Count(*n, Document);
                tr!(f, "compacted {n}", "已压缩 {n}")
            }
            Msg::Verified(n) => {
                let n = Count(*n, Document);
                tr!(
                    f,
                    "ok: {n} decode, integrity check passed",
                    "正常：{n} 均可解码，完整性检查通过"
                )
            }
            Msg::Deleted(id) => tr!(f, "deleted {id}", "已删除 {id}"),
            Msg::Saved => tr!(f, "saved", "已保存"),
            Msg::LineSummary {
                site,
                date,
                worker,
                work_item,
                work_days,
                hours,
                overtime,
                cost,
                deleted,
            } => {
                let line = format!("{site} {date} {worker} {work_item} {work_days}");
                let state = if *deleted {
                    pick("deleted", "已删除")
                } else {
                    pick("active", "有效")
                };
                tr!(
                    f,
                    "{line} work-days, {hours} + {overtime} overtime, {cost} ({state})",
                    "{line} 工日，{hours} + 加班 {overtime}，{cost}（{state}）"
                )
            }
            Msg::Copied { lines, from, to } => {
                let n = Count(*lines, Line);
                tr!(f, "copied {n} from {from} to {to}", "已从 {from} 复制 {n} 到 {to}")
            }
            Msg::AdvanceRecorded {
                worker,
                amount,
                date,
                id,
            } => tr!(
                f,
                "advance of {amount} to {worker} on {date} recorded ({id})",
                "已记录 {worker} {date} 借支 {amount}（{id}）"
            ),
            Msg::PieceRateSet { key, price } => tr!(
                f,
                "piece rate {key}: {price} per unit",
                "包工单价 {key}：每单位 {price}"
            ),
            Msg::PayUnapproved(days) => tr!(f, "not counted, not approved: {days}", "以下日期未审批，未计入：{days}"),
            Msg::PayUnpriced {
                date,
                worker,
                work_item,
            } => tr!(
                f,
                "no piece rate for {worker} on {work_item} on {date}: that share is unpaid",
                "{date} {worker} 在 {work_item} 的包工没有单价，该部分未计工资"
            ),
            Msg::CopySkipped(names) => tr!(
                f,
                "skipped (already logged that day or inactive): {names}",
                "已跳过（当天已记录或不在岗）：{names}"
            ),
            Msg::HoursFollow { work_days, from, to } => tr!(
                f,
                "hours {from} → {to} to match {work_days} work-days (8 h a work-day); give --hours to set others",
                "工时 {from} → {to}，与 {work_days} 工日一致（每工日 8 小时）；如需其他工时请用 --hours"
            ),
            Msg::HoursKept { work_days, hours } => tr!(
                f,
                "hours stay {hours}, set by hand, at {work_days} work-days; give --hours to change them",
                "工时保持手工填写的 {hours}（现为 {work_days} 工日）；如需修改请用 --hours"
            ),
            Msg::DayHeader {
                code,
                name,
                date,
                status: s,
                weather,
            } => {
                let s = status(*s);
                tr!(
                    f,
                    "{code} {name} {date}  status: {s}  weather: {weather}",
                    "{code} {name} {date}  状态：{s}  天气：{weather}"
                )
            }
            Msg::DayNote(n) => tr!(f, "note: {n}", "备注：{n}"),
            Msg::DayTotals { lines, work_days, cost } => {
                let n = Count(*lines, Line);
                tr!(f, "{n}, {work_days} work-days, {cost}", "{n}，{work_days} 工日，{cost}")
            }
            Msg::Delay(t) => tr!(f, "delay: {t}", "延误：{t}"),
            Msg::Reviewed {
                at,
                action: a,
                by,
                reason,
            } => {
                let a = action(*a);
                tr!(f, "{at} {a} by {by} {reason}", "{at} {by} {a} {reason}")
            }
            Msg::Conflict { field, chosen, others } => {
                tr!(f, "{field}: {chosen} vs {others}", "{field}：{chosen}，另有 {others}")
            }
            Msg::DayIs { site, date, status: s } => {
                let s = status(*s);
                tr!(f, "{site} {date}: {s}", "{site} {date}：{s}")
            }
            Msg::SignoffRecorded {
                who,
                action,
                site,
                date,
                lines,
                record,
            } => {
                use sitesync_core::signoff::SignoffAction as A;
                let (en, zh) = match action {
                    A::Signed => ("signed", "已签字"),
                    A::Disputed => ("disputed", "有异议"),
                    A::Answered => ("answered the dispute of", "已答复异议"),
                    A::CrewConfirmed => ("confirmed", "班组长已确认"),
                    A::AdvanceConfirmed => ("confirmed an advance on", "已签认借支"),
                    A::AdvanceDisputed => ("disputed an advance on", "对借支有异议"),
                };
                tr!(
                    f,
                    "{who} {en} {site} {date} ({lines} lines, record {record})",
                    "{who} {zh} {site} {date}（{lines} 条，记录 {record}）"
                )
            }
            Msg::AdvanceSignoffRecorded {
                who,
                disputed,
                advance,
                site,
                date,
                record,
            } => match disputed {
                false => tr!(
                    f,
                    "{who} confirmed advance {advance} of {site} {date} (record {record})",
                    "{who} 已签认 {site} {date} 的借支 {advance}（记录 {record}）"
                ),
                true => tr!(
                    f,
                    "{who} disputed advance {advance} of {site} {date} (record {record})",
                    "{who} 对 {site} {date} 的借支 {advance} 有异议（记录 {record}）"
                ),
            },
            Msg::AdvanceState {
                id,
                worker,
                amount,
                paid_by,
                state,
            } => tr!(
                f,
                "{id} {worker} {amount} paid by {paid_by}: {state}",
                "{id} {worker} {amount}（{paid_by} 付）：{state}"
            ),
            Msg::AdvanceChanged { field, was, now } => tr!(
                f,
                "  changed since confirmed: {field} {was} → {now}",
                "  签认后已修改：{field} {was} → {now}"
            ),
            Msg::PayAdvancesUnconfirmed { worker, amount, count } => tr!(
                f,
                "{worker}: {count} advance(s), {amount}, not confirmed by the worker as they stand",
                "{worker}：{count} 笔借支共 {amount} 未经本人签认（或签认后有修改、有异议）"
            ),
            Msg::SignoffState { who, when, state } => tr!(f, "{who} {when}: {state}", "{who} {when}：{state}"),
            Msg::NoChanges => tr!(f, "no changes since approval", "批准后没有修改"),
            Msg::OpenConflict { record, field, values } => tr!(
                f,
                "conflict: {record} {field}: {values}",
                "冲突：{record} {field}：{values}"
            ),
            Msg::Total => tr!(f, "total", "合计"),
            Msg::BoardHeader {
                id,
                title,
                start,
                end,
                elapsed_pct,
            } => tr!(
                f,
                "{id} {title} ({start} – {end}), {elapsed_pct:.0}% elapsed",
                "{id} {title}（{start} – {end}），已过 {elapsed_pct:.0}%"
            ),
            Msg::CheckedIn { date, by } => tr!(f, "{date} by {by}", "{date} {by}"),
            Msg::Note(n) => tr!(f, "note: {n}", "提示：{n}"),
            Msg::Synced { pushed, received } => {
                let n = Count(*pushed, Document);
                tr!(
                    f,
                    "synced: {n} pushed, {received} received",
                    "已同步：推送 {n}，收到 {received} 个"
                )
            }
            Msg::PeerExchange {
                device,
                user,
                sent,
                received,
                refused,
            } => tr!(
                f,
                "peer {device} ({user}): {sent} documents sent, {received} received, {refused} changes refused",
                "对端 {device}（{user}）：发送 {sent} 个文档，收到 {received} 个，拒绝 {refused} 个修改"
            ),
            Msg::PeerFailed { peer, why } => tr!(f, "peer {peer}: {why}", "对端 {peer}：{why}"),
            Msg::PeerListening(addr) => tr!(f, "listening for peers on {addr}", "正在 {addr} 等待对端"),
            Msg::BlobsSynced { uploaded, downloaded } => tr!(
                f,
                "files: {uploaded} uploaded, {downloaded} downloaded",
                "附件：上传 {uploaded} 个，下载 {downloaded} 个"
            ),
            Msg::FilesFailed(why) => tr!(f, "files not moved, trying again: {why}", "附件未传输，稍后重试：{why}"),
            Msg::BlobWaiting { sha256, why } => tr!(f, "file {sha256} waits: {why}", "附件 {sha256} 暂未传输：{why}"),
            Msg::ChangeRefused {
                doc,
                hash,
                reason,
                rule,
            } => tr!(
                f,
                "refused by head office: {doc} change {hash}: {reason} ({rule}); not kept in this store",
                "总部拒收：{doc} 的修改 {hash}：{reason}（{rule}）；本机已不保留"
            ),
            Msg::StatusServer(Some(s)) => tr!(f, "server:     {s}", "服务器：  {s}"),
            Msg::StatusServer(None) => tr!(
                f,
                "server:     (not bound; run `sitesync init`)",
                "服务器：  （未绑定；请运行 `sitesync init`）"
            ),
            Msg::StatusConnected(true) => tr!(f, "connected:  yes", "已连接：  是"),
            Msg::StatusConnected(false) => tr!(f, "connected:  no", "已连接：  否"),
            Msg::StatusLastSync(Some(s)) => tr!(f, "last sync:  {s}", "上次同步：{s}"),
            Msg::StatusLastSync(None) => tr!(f, "last sync:  never", "上次同步：从未"),
            Msg::StatusLastError(e) => tr!(f, "last error: {e}", "上次错误：{e}"),
            Msg::NothingDue => tr!(f, "nothing due", "没有待办"),
            Msg::Due(Due::LogNotSubmitted { site, date }) => {
                tr!(f, "log not submitted: {site} {date}", "日志未提交：{site} {date}")
            }
            Msg::Due(Due::DayRejected { site, date, reason }) => tr!(
                f,
                "day rejected, fix and submit again: {site} {date}: {reason}",
                "日志被退回，请修改后重新提交：{site} {date}：{reason}"
            ),
            Msg::Due(Due::CheckInDue {
                cycle,
                key_result,
                title,
                last_check_in,
                ..
            }) => match last_check_in {
                Some(last) => tr!(
                    f,
                    "check-in due: {cycle} {key_result} {title} (last {last})",
                    "该更新关键结果：{cycle} {key_result} {title}（上次 {last}）"
                ),
                None => tr!(
                    f,
                    "check-in due: {cycle} {key_result} {title} (none yet)",
                    "该更新关键结果：{cycle} {key_result} {title}（尚无更新）"
                ),
            },
            Msg::Due(Due::MonthUnsigned { site, month, workers }) => tr!(
                f,
                "sign-offs to collect: {site} {month}: {workers} worker(s)",
                "待收集签字：{site} {month}：{workers} 名工人"
            ),
            Msg::StatusUpdate(UpdateState::UpToDate) => tr!(f, "update:     none needed", "更新：    无需更新"),
            Msg::StatusUpdate(UpdateState::Available) => tr!(
                f,
                "update:     available (the server speaks a newer sync protocol; this version still syncs)",
                "更新：    有新版本（服务器已使用更新的同步协议；本版本仍可同步）"
            ),
            Msg::StatusUpdate(UpdateState::Required) => tr!(
                f,
                "update:     required (the server no longer speaks this version's sync protocol; update to sync)",
                "更新：    必须更新（服务器不再支持本版本的同步协议；更新后才能同步）"
            ),
            Msg::StatusDocuments { delivered, pending } => tr!(
                f,
                "documents:  {delivered} at head office, {pending} pending",
                "文档：    总部已有 {delivered} 个，待推送 {pending} 个"
            ),
            Msg::StatusPending(p) => tr!(f, "  pending {p}", "  待推送 {p}"),
            Msg::StatusRefused(n) => {
                let n = Count(*n, Change);
                tr!(
                    f,
                    "refused:    {n} head office did not accept",
                    "被拒收：  总部未接受 {n}"
                )
            }
            Msg::StatusRefusedEntry {
                doc,
                hash,
                at,
                reason,
                rule,
                wrote,
            } => tr!(
                f,
                "  {doc} {hash} at {at}: {reason} ({rule})\n    wrote {wrote}",
                "  {doc} {hash} 于 {at}：{reason}（{rule}）\n    写入了 {wrote}"
            ),
            Msg::AndMore(n) => tr!(f, "and {n} more", "另有 {n} 处"),
            Msg::Connected(server) => tr!(f, "connected to {server}", "已连接到 {server}"),
            Msg::Received(doc) => {
                let doc = Doc(doc);
                tr!(f, "received {doc}", "收到 {doc}")
            }
            Msg::Acknowledged(doc) => {
                let doc = Doc(doc);
                tr!(f, "pushed {doc}: head office has it", "已推送 {doc}：总部已收到")
            }
            Msg::DocRefused(doc, why) => {
                let doc = Doc(doc);
                tr!(
                    f,
                    "refused by head office: {doc} ({why:?}); trying again later",
                    "总部拒收：{doc}（{why:?}）；稍后重试"
                )
            }
            Msg::Disconnected { reason, retry_in } => {
                let s = retry_in.as_secs_f64();
                tr!(
                    f,
                    "disconnected: {reason}; reconnecting in {s:.1} s",
                    "连接断开：{reason}；{s:.1} 秒后重连"
                )
            }
            Msg::NothingInStore(id) => tr!(f, "{id}: nothing in this store", "{id}：本机没有记录"),
            Msg::UnknownDevice => tr!(f, "unknown device", "未知设备"),
            Msg::HistoryEntry {
                hash,
                at,
                who,
                received,
                signed,
            } => {
                tr!(f, "{hash} {at} by {who}", "{hash} {at} {who} 写入")?;
                if let Some(r) = received {
                    tr!(f, ", received {r}", "，收到于 {r}")?;
                }
                if !signed {
                    tr!(f, " [unsigned]", " [未签名]")?;
                }
                Ok(())
            }
            Msg::NoServerKey => tr!(
                f,
                "note: no server key to compare with; check the fingerprint above against your server's",
                "提示：没有可比对的服务器公钥；请将上面的指纹与服务器的核对"
            ),
            Msg::DoesNotVerify(e) => tr!(f, "DOES NOT VERIFY: {e}", "验证失败：{e}"),
            Msg::Chose { kind: k, given, chosen } => {
                let (k, c) = (kind(*k), candidate(chosen));
                tr!(f, "{k} {given}: using {c}", "{k} {given}：使用 {c}")
            }
            Msg::ZeroWorkDays => tr!(
                f,
                "0 work-days: the line costs nothing and counts no attendance (was 1.0 or 0.5 meant?)",
                "0 工日：这条记录不计费用也不计出勤（是否应为 1.0 或 0.5？）"
            ),
            Msg::FarAhead { date, today, days } => tr!(
                f,
                "{date} is {days} days after today at the site ({today}): is the date right?",
                "{date} 比工地今天（{today}）晚 {days} 天：日期是否正确？"
            ),
            Msg::OpeningStore(p) => {
                let p = p.display();
                tr!(f, "opening store {p}", "打开数据文件 {p}")
            }
            Msg::Reading(p) => {
                let p = p.display();
                tr!(f, "reading {p}", "读取 {p}")
            }
            Msg::WrotePdf { path, pages } => {
                let path = path.display();
                tr!(f, "wrote {path}, pages: {pages}", "已写入 {path}，共 {pages} 页")
            }
            Msg::MissingGlyphs(chars) => tr!(
                f,
                "the PDF's font has no glyph for {chars}: they print as empty boxes",
                "PDF 字体缺少这些字：{chars}，打印为空框"
            ),
            Msg::Error => tr!(f, "error: ", "错误："),
            Msg::Warning => tr!(f, "warning: ", "警告："),
        }
    }
}

fn expected(f: &mut fmt::Formatter<'_>, e: &Expected) -> fmt::Result {
    match e {
        Expected::Status => tr!(f, "green, yellow or red", "应为 green、yellow 或 red"),
        Expected::CycleKind => tr!(f, "quarter, month or year", "应为 quarter、month 或 year"),
        Expected::Direction => tr!(
            f,
            "increase, decrease, at_least or at_most",
            "应为 increase、decrease、at_least 或 at_most"
        ),
        Expected::KrKind => tr!(f, "baseline or stretch", "应为 baseline 或 stretch"),
        Expected::Metric(why) => tr!(f, "{why}", "JSON 有误：{why}"),
        Expected::HexKey => tr!(f, "64 hex digits", "应为 64 位十六进制数"),
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::NoStore(p) => {
                let p = p.display();
                tr!(
                    f,
                    "no store at {p}: give the --store you imported into or bound with `sitesync init` \
                     (only `sitesync import` and `sitesync init` make a new store)",
                    "{p} 处没有数据文件：请用导入或 `sitesync init` 时的 --store（只有 `sitesync import` 和 \
                     `sitesync init` 会新建数据文件）"
                )
            }
            CliError::Unknown {
                kind: k,
                given,
                scope,
                nearest,
            } => {
                match (k, scope) {
                    (Kind::Worker, Some(site)) => tr!(
                        f,
                        "worker {given:?} is not on the roster of {site}",
                        "工人 {given:?} 不在 {site} 的花名册上"
                    )?,
                    (Kind::Worker, None) => tr!(
                        f,
                        "worker {given:?} is not on the roster of any site",
                        "工人 {given:?} 不在任何工地的花名册上"
                    )?,
                    (Kind::Site, _) => tr!(
                        f,
                        "unknown site {given:?} (not an id, code or name in this store)",
                        "没有工地 {given:?}（本机既无此编号，也无此代码或名称）"
                    )?,
                }
                match nearest.as_ref().map(candidate) {
                    Some(c) => tr!(f, "; did you mean {c}?", "；是否是 {c}？"),
                    None => Ok(()),
                }
            }
            CliError::Ambiguous {
                kind: k,
                given,
                candidates,
            } => {
                let (k, all) = (kind(*k), listed(candidates));
                tr!(
                    f,
                    "{k} {given:?} could be any of: {all}; give the id",
                    "{k} {given:?} 有多个：{all}；请用编号"
                )
            }
            CliError::DateFormat { given, padded } => {
                tr!(
                    f,
                    "invalid date {given:?}: write dates as YYYY-MM-DD",
                    "日期 {given:?} 无效：请写成 YYYY-MM-DD"
                )?;
                match padded {
                    Some(p) => tr!(f, " ({p}?)", "（是否是 {p}？）"),
                    None => tr!(f, ", e.g. 2026-12-01", "，例如 2026-12-01"),
                }
            }
            CliError::MonthFormat { given } => tr!(
                f,
                "invalid month {given:?}: write months as YYYY-MM, e.g. 2026-09",
                "月份 {given:?} 无效：请写成 YYYY-MM，例如 2026-09"
            ),
            CliError::Invalid { field, expected: e } => {
                tr!(f, "invalid {field}: ", "{field} 无效：")?;
                expected(f, e)
            }
            CliError::NotYours { name, id, user } => tr!(
                f,
                "invalid user: this store belongs to {name} ({id}); it cannot write as {user}",
                "用户无效：此数据文件属于 {name}（{id}），不能以 {user} 的名义写入"
            ),
            CliError::NeedOrg => tr!(f, "say which org with --org", "请用 --org 指明组织"),
            CliError::HistoryArgs => tr!(
                f,
                "give --site and --date, or --cycle and --org",
                "请给出 --site 和 --date，或 --cycle 和 --org"
            ),
            CliError::DoesNotVerify(p) => {
                let p = p.display();
                tr!(f, "{p} does not verify", "{p} 验证失败")
            }
        }
    }
}
