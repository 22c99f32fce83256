//! Workers see their own record (issue #20): a signed, expiring link head office sends a worker by
//! WeChat or SMS opens a read-only page, in Chinese, of his days, pay, advances and sign-offs. No
//! account: the link is the credential.
//!
//! Decisions (2026-11-30):
//! - The token is `payload.mac`, both base64url: the payload names the site, the worker, the expiry
//!   (Unix seconds) and the worker's link generation; the MAC is HMAC-SHA256 over the payload with a
//!   key made on first use and kept in the credential database's `meta` (`AuthDb::worker_link_key`),
//!   so every node checks every link and the key never leaves the server.
//! - Revoking a worker's links moves his generation on: every link made before stops working, and a
//!   link made after works. Nothing per link is stored.
//! - The page shows only approved days, as approved, and figures computed by `crate::pay::pay_report`
//!   for his crew and month: the same numbers `GET /v1/pay` shows head office for him.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{Datelike, Months, NaiveDate};
use sha2::{Digest, Sha256};
use sitesync_core::Store;
use sitesync_core::ids::{SiteId, WorkerId};
use sitesync_core::signoff::SignoffState;

use crate::error::{Error, Result};
use crate::pay::PayReportLine;

/// The longest a link may be made valid for, in days.
pub const MAX_DAYS_VALID: u32 = 366;

/// How many months the page shows, ending with the month asked for.
pub const MONTHS_SHOWN: u32 = 3;

/// What a valid token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkClaims {
    /// The site.
    pub site: String,
    /// The worker.
    pub worker: String,
    /// When the link stops working, Unix seconds.
    pub expires: i64,
    /// The worker's link generation it was made in.
    pub generation: u64,
}

/// Why a link is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkRefusal {
    /// Not a token this server made (malformed or altered).
    #[error("invalid link")]
    Invalid,
    /// Past its expiry.
    #[error("expired link")]
    Expired,
    /// Made before the worker's links were revoked.
    #[error("revoked link")]
    Revoked,
    /// The worker is no longer on the site's roster.
    #[error("unknown worker")]
    UnknownWorker,
}

/// HMAC-SHA256 (RFC 2104) of `msg` under `key`.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| block.map(|k| k ^ b);
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(msg).finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// Equality in time independent of where the bytes differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The MAC of a payload, domain-separated from anything else the key could sign.
fn mac(key: &[u8], payload_b64: &str) -> [u8; 32] {
    hmac_sha256(key, format!("sitesync-worker-link:v1:{payload_b64}").as_bytes())
}

/// The key as stored (hex) as bytes.
fn key_bytes(key_hex: &str) -> Result<Vec<u8>> {
    hex::decode(key_hex).map_err(|e| Error::Internal(format!("worker link key: {e}")))
}

/// A token for `claims` under the key (hex, as `AuthDb::worker_link_key` keeps it).
pub fn sign(key_hex: &str, claims: &LinkClaims) -> Result<String> {
    let payload = format!(
        "{}\n{}\n{}\n{}",
        claims.site, claims.worker, claims.expires, claims.generation
    );
    let payload = URL_SAFE_NO_PAD.encode(payload);
    let mac = URL_SAFE_NO_PAD.encode(mac(&key_bytes(key_hex)?, &payload));
    Ok(format!("{payload}.{mac}"))
}

/// What a token names, if this key made it and it has not expired at `now` (Unix seconds). The
/// generation is checked by the caller, against the database.
pub fn verify(key_hex: &str, token: &str, now: i64) -> Result<std::result::Result<LinkClaims, LinkRefusal>> {
    let key = key_bytes(key_hex)?;
    let Some((payload, given)) = token.split_once('.') else {
        return Ok(Err(LinkRefusal::Invalid));
    };
    let Ok(given) = URL_SAFE_NO_PAD.decode(given) else {
        return Ok(Err(LinkRefusal::Invalid));
    };
    if !same(&given, &mac(&key, payload)) {
        return Ok(Err(LinkRefusal::Invalid));
    }
    let Some(text) = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
    else {
        return Ok(Err(LinkRefusal::Invalid));
    };
    let parts: Vec<&str> = text.split('\n').collect();
    let [site, worker, expires, generation] = parts[..] else {
        return Ok(Err(LinkRefusal::Invalid));
    };
    let (Ok(expires), Ok(generation)) = (expires.parse::<i64>(), generation.parse::<u64>()) else {
        return Ok(Err(LinkRefusal::Invalid));
    };
    if now >= expires {
        return Ok(Err(LinkRefusal::Expired));
    }
    Ok(Ok(LinkClaims {
        site: site.into(),
        worker: worker.into(),
        expires,
        generation,
    }))
}

/// One labor line of the worker on an approved day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayLine {
    /// The day.
    pub date: NaiveDate,
    /// The work item's code and name.
    pub work_item: String,
    /// Work-days in hundredths.
    pub work_days_centi: i64,
    /// Hours worked, in minutes.
    pub hours_min: i64,
    /// Overtime, in minutes.
    pub overtime_min: i64,
    /// Whether it is piecework (paid by quantity).
    pub piecework: bool,
}

/// One month of the worker's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthRecord {
    /// The first day of the month.
    pub month: NaiveDate,
    /// His lines on the month's approved days, by date.
    pub days: Vec<DayLine>,
    /// His advances on the month's approved days: (date, fen).
    pub advances: Vec<(NaiveDate, i64)>,
    /// His line of the crew's pay sheet for the month (zeros if he has none).
    pub pay: PayReportLine,
    /// Days of the month not approved yet (not counted).
    pub unapproved: usize,
}

/// The worker's record over the months the page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerRecord {
    /// The site's name.
    pub site_name: String,
    /// The worker's name.
    pub worker_name: String,
    /// Newest month first.
    pub months: Vec<MonthRecord>,
}

/// The record of `worker` on `site` for the [`MONTHS_SHOWN`] months ending with `last` (any day of
/// it); `None` if the worker is not on the site's roster.
pub fn worker_record(store: &mut Store, site: &str, worker: &str, last: NaiveDate) -> Result<Option<WorkerRecord>> {
    let site_id = SiteId::new(site).map_err(|e| Error::BadRequest(e.to_string()))?;
    let worker_id = WorkerId::new(worker).map_err(|e| Error::BadRequest(e.to_string()))?;
    let roster = store.roster(&site_id)?;
    let Some(w) = roster.worker(&worker_id).cloned() else {
        return Ok(None);
    };
    let crew = w.crew.to_string();
    let last = last.with_day(1).unwrap_or(last);
    let mut months = Vec::new();
    for back in 0..MONTHS_SHOWN {
        let Some(month) = last.checked_sub_months(Months::new(back)) else {
            break;
        };
        let end = month
            .checked_add_months(Months::new(1))
            .and_then(|m| m.pred_opt())
            .unwrap_or(month);
        let sheet = crate::pay::pay_report(store, site, &crew, month, end)?;
        let pay = sheet
            .workers
            .into_iter()
            .find(|l| l.worker == worker)
            .unwrap_or_else(|| PayReportLine {
                worker: worker.into(),
                name: w.name.clone(),
                work_days_centi: 0,
                hours_min: 0,
                overtime_min: 0,
                day_pay_fen: 0,
                overtime_pay_fen: 0,
                piece_pay_fen: 0,
                advances_fen: 0,
                advances_unconfirmed_fen: 0,
                advances_unconfirmed: 0,
                adjustment_fen: 0,
                net_fen: 0,
                bank_account: String::new(),
                signoff: SignoffState::Unsigned,
            });
        let (approved, unapproved) = store.approved_days(&site_id, month, end)?;
        let mut days = Vec::new();
        let mut advances = Vec::new();
        for day in &approved {
            for l in day.labor.iter().filter(|l| l.worker == worker_id) {
                days.push(DayLine {
                    date: day.date,
                    work_item: roster
                        .work_item(&l.work_item)
                        .map_or_else(|| l.work_item.to_string(), |i| format!("{} {}", i.code, i.name)),
                    work_days_centi: l.work_days.centi(),
                    hours_min: l.hours.minutes(),
                    overtime_min: l.overtime.minutes(),
                    piecework: l.kind == sitesync_core::labor::LaborKind::Piecework,
                });
            }
            for a in day.advances.iter().filter(|a| a.worker == worker_id) {
                advances.push((day.date, a.amount.fen()));
            }
        }
        months.push(MonthRecord {
            month,
            days,
            advances,
            pay,
            unapproved: unapproved.len(),
        });
    }
    Ok(Some(WorkerRecord {
        site_name: roster.site.name.clone(),
        worker_name: w.name,
        months,
    }))
}

/// `s` safe inside HTML text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Fen as yuan, `¥1,234.50` (negative with a minus sign).
pub fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    let whole = (abs / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}¥{grouped}.{:02}", abs % 100)
}

/// Hundredths as a decimal, `1.50`.
fn centi(n: i64) -> String {
    format!("{}{}.{:02}", if n < 0 { "-" } else { "" }, n.abs() / 100, n.abs() % 100)
}

/// Minutes as hours, `8.5` (to the hundredth, trailing zeros dropped).
fn hours(min: i64) -> String {
    let c = centi(min * 100 / 60);
    c.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The sign-off state in Chinese.
fn signoff_zh(s: SignoffState) -> &'static str {
    match s {
        SignoffState::Signed => "已签字确认",
        SignoffState::Unsigned => "未签字",
        SignoffState::ChangedSinceSigned => "签字后有改动，需重新确认",
        SignoffState::Disputed => "有异议",
    }
}

/// The page's frame: phone-width, the stylesheet at `/w.css` (the content security policy allows no
/// inline style), no script.
fn frame(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\">\
         <title>{}</title><link rel=\"stylesheet\" href=\"/w.css\"></head><body>{body}</body></html>\n",
        escape(title)
    )
}

/// The worker's page. `earlier` is the `month` query that shows the months before these.
pub fn render(record: &WorkerRecord, earlier: &str) -> String {
    let mut b = String::new();
    b.push_str(&format!(
        "<header><h1>{} 的记工记录</h1><p>{}</p><p class=\"note\">只显示已审批的工日与借支，金额按审批时的记录计算；\
         未审批的日子不计入。本页只读，如有出入请联系工长或公司。</p></header>",
        escape(&record.worker_name),
        escape(&record.site_name)
    ));
    for m in &record.months {
        let p = &m.pay;
        b.push_str(&format!(
            "<section><h2>{}年{}月</h2><p class=\"signoff\">签字状态：{}</p>",
            m.month.year(),
            m.month.month(),
            signoff_zh(p.signoff)
        ));
        if m.unapproved > 0 {
            b.push_str(&format!(
                "<p class=\"note\">本月还有 {} 天未审批，未计入。</p>",
                m.unapproved
            ));
        }
        b.push_str("<table class=\"pay\"><tbody>");
        for (label, value) in [
            ("工日", centi(p.work_days_centi)),
            ("工时（小时）", hours(p.hours_min)),
            ("加班（小时）", hours(p.overtime_min)),
            ("点工工资", yuan(p.day_pay_fen)),
            ("加班工资", yuan(p.overtime_pay_fen)),
            ("包工工资", yuan(p.piece_pay_fen)),
            ("借支", yuan(p.advances_fen)),
        ] {
            b.push_str(&format!("<tr><th>{label}</th><td>{value}</td></tr>"));
        }
        b.push_str(&format!(
            "<tr class=\"net\"><th>实发</th><td>{}</td></tr></tbody></table>",
            yuan(p.net_fen)
        ));
        if m.days.is_empty() {
            b.push_str("<p>本月没有已审批的工日。</p>");
        } else {
            b.push_str(
                "<table class=\"days\"><thead><tr><th>日期</th><th>工作内容</th><th>工日</th>\
                 <th>工时</th><th>加班</th></tr></thead><tbody>",
            );
            for d in &m.days {
                b.push_str(&format!(
                    "<tr><td>{}</td><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    d.date.format("%m-%d"),
                    escape(&d.work_item),
                    if d.piecework { "（包工）" } else { "" },
                    centi(d.work_days_centi),
                    hours(d.hours_min),
                    hours(d.overtime_min)
                ));
            }
            b.push_str("</tbody></table>");
        }
        if !m.advances.is_empty() {
            b.push_str("<h3>借支</h3><ul class=\"advances\">");
            for (date, fen) in &m.advances {
                b.push_str(&format!("<li>{} {}</li>", date, yuan(*fen)));
            }
            b.push_str("</ul>");
        }
        b.push_str("</section>");
    }
    b.push_str(&format!(
        "<nav><a href=\"?month={}\">更早的月份</a></nav>",
        escape(earlier)
    ));
    frame(&format!("{} 的记工记录", record.worker_name), &b)
}

/// The page shown for a refused link: what happened and what to do, nothing else.
pub fn render_refusal(why: LinkRefusal) -> String {
    let (title, text) = match why {
        LinkRefusal::Invalid => ("链接无效", "这个链接不完整或被改动过，无法打开。请向公司索取新的链接。"),
        LinkRefusal::Expired => ("链接已过期", "这个链接已经过了有效期。请向公司索取新的链接。"),
        LinkRefusal::Revoked => ("链接已作废", "公司已经作废了这个链接。请向公司索取新的链接。"),
        LinkRefusal::UnknownWorker => ("无法显示", "名册上已没有这位工人。请联系公司。"),
    };
    frame(title, &format!("<header><h1>{title}</h1></header><p>{text}</p>"))
}

/// The page's stylesheet: readable on a phone, tables scroll sideways rather than overflow.
pub const STYLE: &str = "body{font-family:system-ui,-apple-system,\"PingFang SC\",\"Microsoft YaHei\",sans-serif;\
margin:0 auto;max-width:40rem;padding:.75rem;font-size:16px;line-height:1.5;color:#222}\
h1{font-size:1.3rem;margin:.2rem 0}h2{font-size:1.15rem;border-bottom:2px solid #2a6;padding-bottom:.2rem}\
h3{font-size:1rem}.note{color:#666;font-size:.9rem}.signoff{font-weight:bold}\
table{border-collapse:collapse;width:100%;margin:.5rem 0;display:block;overflow-x:auto}\
th,td{border-bottom:1px solid #ddd;padding:.3rem .4rem;text-align:left;white-space:nowrap}\
table.pay td{text-align:right;width:100%}tr.net th,tr.net td{font-weight:bold;font-size:1.1rem}\
nav{margin:1rem 0}section{margin-bottom:1.5rem}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_token_verifies_and_an_altered_one_does_not() {
        let key = "11".repeat(32);
        let claims = LinkClaims {
            site: "site-a".into(),
            worker: "site-a/w-1".into(),
            expires: 2_000,
            generation: 3,
        };
        let token = sign(&key, &claims).unwrap();
        assert_eq!(verify(&key, &token, 1_000).unwrap(), Ok(claims.clone()));
        assert_eq!(verify(&key, &token, 2_000).unwrap(), Err(LinkRefusal::Expired));
        assert_eq!(
            verify(&"22".repeat(32), &token, 1_000).unwrap(),
            Err(LinkRefusal::Invalid)
        );
        let other = sign(
            &key,
            &LinkClaims {
                worker: "site-a/w-2".into(),
                ..claims
            },
        )
        .unwrap();
        let (payload, _) = other.split_once('.').unwrap();
        let (_, mac) = token.split_once('.').unwrap();
        assert_eq!(
            verify(&key, &format!("{payload}.{mac}"), 1_000).unwrap(),
            Err(LinkRefusal::Invalid)
        );
        assert_eq!(verify(&key, "garbage", 1_000).unwrap(), Err(LinkRefusal::Invalid));
    }

    #[test]
    fn names_are_escaped() {
        assert_eq!(escape("<script>\"&'"), "&lt;script&gt;&quot;&amp;&#39;");
        assert_eq!(yuan(12_345_678), "¥123,456.78");
        assert_eq!(yuan(-5), "-¥0.05");
        assert_eq!(hours(510), "8.5");
    }
}
