//! The checks of [`crate::validate`] applied to what changes did to a document: every record the
//! changes touched must read, strictly, as a record that passes its check. Records the changes did
//! not touch are not judged again — a document may hold older data that today's checks would refuse
//! (it is flagged where it is read, see `doc/day.rs`), and a good change must not be refused for it.
//!
//! The server's per-change gate (`store/screen.rs`) runs this after each change on the records the
//! change wrote ([`written`]); the group commit (`Store::merge_many_checked`) runs it again on the
//! trial copy of each pushed document, on the records its changes moved ([`touched`]), unless the
//! gate already checked that very step (`Store::merge_many_screened`).

use std::collections::{BTreeMap, BTreeSet};

use automerge::{Automerge, ChangeHash, ObjId, ROOT, Value};
use chrono::{DateTime, NaiveDate};

use crate::doc::day::{delay_record, labor_record, progress_record, shown};
use crate::doc::{Record, read_records, table, tables};
use crate::ids::{CrewId, DocId, OrgId, SiteId, WorkItemId, WorkerId, parse_date};
use crate::labor::ReviewAction;
use crate::okr::{CheckIn, Cycle, CycleKind, Direction, KeyResult, KrKind, Metric, Status, Thresholds};
use crate::roster::{Roster, WorkItem, Worker};
use crate::signoff::SignoffAction;
use crate::units::{Fen, Quantity};
use crate::validate::{self, Invalid, Tenancy};

/// The records changes touched, by table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Touched {
    /// Table name to record ids.
    pub records: BTreeMap<&'static str, BTreeSet<String>>,
}

impl Touched {
    /// Whether any record of `table` was touched.
    pub fn any(&self, table: &str) -> bool {
        self.records.get(table).is_some_and(|r| !r.is_empty())
    }
}

fn malformed(field: &'static str, reason: impl Into<String>) -> Invalid {
    Invalid::Malformed {
        field,
        reason: reason.into(),
    }
}

/// The records that the changes from `before` to the document's heads touched. A change to the root
/// (which only the genesis writes) or a record field that holds an object or a counter is refused
/// here: no reader could make sense of it.
pub(crate) fn touched(doc: &Automerge, id: &DocId, before: &[ChangeHash]) -> Result<Touched, Invalid> {
    let mut objs: Vec<(&'static str, ObjId)> = Vec::new();
    for name in tables(id.kind()) {
        let obj = table(doc, name).map_err(|e| Invalid::Layout { reason: e.to_string() })?;
        objs.push((name, obj));
    }
    let mut out = Touched::default();
    for patch in doc.diff(before, &doc.get_heads()) {
        if patch.obj == ROOT {
            return Err(Invalid::Layout {
                reason: "a change writes the document's root".into(),
            });
        }
        let Some((name, _)) = objs.iter().find(|(_, o)| *o == patch.obj) else {
            // Inside an object nobody reads (created where a scalar belongs: refused below).
            continue;
        };
        let key = match patch.action {
            automerge::PatchAction::PutMap { key, value, .. } => {
                if !matches!(value.0, Value::Scalar(_)) {
                    return Err(malformed("record", format!("{key} holds an object, not a value")));
                }
                key
            }
            automerge::PatchAction::DeleteMap { key } => key,
            automerge::PatchAction::Increment { prop, .. } => {
                return Err(malformed("record", format!("{prop:?} is a counter")));
            }
            _ => continue,
        };
        // Keys without a field part are never read.
        if let Some((rec, _)) = key.rsplit_once('.') {
            let (name, rec) = crate::doc::logical(id.kind(), name, rec);
            out.records.entry(name).or_default().insert(rec.to_string());
        }
    }
    Ok(out)
}

/// The records one change's writes name, by table: what the push gate checks after each change it
/// applies. A record's fields move only by writes to its keys, so every record the change moved is
/// among them — as in [`touched`], and also one whose write lost to a concurrent one, which
/// [`touched`] leaves out although the record now reads differently (a conflict on `deleted`
/// decides whether a line is shown). Reading the change's own writes costs nothing the gate has not
/// decoded already, where [`touched`] walks the whole document (3% of the server's CPU on one-entry
/// pushes, 2026-11-30). What [`touched`] refuses — a write to the root, an object or a counter
/// where a value belongs — `changes::decode` has refused before this.
pub(crate) fn written(id: &DocId, writes: &[crate::changes::Write]) -> Touched {
    let mut out = Touched::default();
    for w in writes {
        let added = crate::doc::added_tables(id.kind()).iter().map(|t| &t.name);
        if let Some(name) = tables(id.kind()).iter().chain(added).find(|t| **t == w.table) {
            out.records.entry(*name).or_default().insert(w.record.clone());
        }
    }
    out
}

/// What the checks of a document need besides the document.
pub(crate) struct Context<'a> {
    /// The master data of a day document's site (`None`: the store does not hold it).
    pub roster: Option<&'a Roster>,
    /// Whose sites are whose, and what the author may read.
    pub tenancy: &'a dyn Tenancy,
}

/// Checks every touched record of the document as it reads now.
pub(crate) fn check(doc: &Automerge, id: &DocId, touched: &Touched, cx: &Context<'_>) -> Result<(), Invalid> {
    for (name, records) in &touched.records {
        let (host, _) = crate::doc::physical(id.kind(), name, "");
        let obj = table(doc, host).map_err(|e| Invalid::Layout { reason: e.to_string() })?;
        let stored: Vec<String> = records
            .iter()
            .map(|rec| crate::doc::physical(id.kind(), name, rec).1)
            .collect();
        let all = read_records(doc, &obj, stored.iter().map(String::as_str))
            .map_err(|e| malformed("record", e.to_string()))?;
        for (rec, at) in records.iter().zip(&stored) {
            // Every field deleted: the record is gone, and nothing reads it.
            let Some(r) = all.get(at) else { continue };
            match id {
                DocId::Day(site, date) => day_record(doc, site, *date, name, rec, r, cx)?,
                DocId::Site(site) => site_record(doc, site, name, rec, r, cx)?,
                DocId::Okr(org, _) => okr_record(org, name, rec, r, cx)?,
            }
        }
    }
    Ok(())
}

fn roster<'a>(site: &SiteId, cx: &Context<'a>) -> Result<&'a Roster, Invalid> {
    cx.roster.ok_or_else(|| Invalid::NotOnRoster {
        field: "site",
        id: site.to_string(),
    })
}

/// Fields that, where present, must hold text.
fn texts(r: &Record, fields: &[&'static str]) -> Result<(), Invalid> {
    for f in fields {
        if r.fields.contains_key(*f) {
            r.str_strict(f)?;
        }
    }
    Ok(())
}

fn day_record(
    doc: &Automerge,
    site: &SiteId,
    date: NaiveDate,
    table: &str,
    rec: &str,
    r: &Record,
    cx: &Context<'_>,
) -> Result<(), Invalid> {
    match table {
        "labor" => {
            let line = labor_record(rec, r, true)?;
            // A deleted line counts nowhere and must stay deletable whatever it held.
            if shown(line.deleted, &line.conflicts) {
                validate::labor_line(site, date, &line, roster(site, cx)?)?;
            }
        }
        "progress" => {
            let line = progress_record(rec, r, true)?;
            if shown(line.deleted, &line.conflicts) {
                validate::progress_line(site, date, &line, roster(site, cx)?)?;
            }
        }
        "delays" => {
            if let Some(d) = delay_record(rec, r, true)? {
                validate::delay(site, &d, roster(site, cx)?)?;
            }
        }
        "reviews" => {
            let action = r.str_strict("action")?;
            if let Some(action) = SignoffAction::parse(&action) {
                return signoff_record(doc, site, date, action, r, cx);
            }
            ReviewAction::parse(&action)
                .ok_or_else(|| malformed("action", format!("{action:?} is not a review action")))?;
            let at = r.str_strict("at")?;
            DateTime::parse_from_rfc3339(&at).map_err(|_| malformed("at", format!("{at:?} is not a time")))?;
            texts(r, &["by", "reason", "heads"])?;
        }
        "day" if rec.starts_with(crate::attachments::RECORD_PREFIX) => {
            crate::doc::day::attachment_record(rec, r, true)?;
        }
        "day" if rec.starts_with(crate::pay::ADVANCE_PREFIX) => {
            if let Some(a) = crate::doc::pay::advance_record(rec, r, true)? {
                validate::advance(site, &a, roster(site, cx)?)?;
            }
        }
        _ => texts(r, &["weather", "note"])?,
    }
    Ok(())
}

/// A sign-off record (see `doc/signoff.rs`): every field present as text, the worker or crew on the
/// site's roster, the month the day's, the image hash and the heads hex SHA-256s, a reason where a
/// dispute or an answer needs one; an advance's confirmation or dispute names an advance of this
/// day (as the document reads now) whose worker is the record's worker, and no month.
fn signoff_record(
    doc: &Automerge,
    site: &SiteId,
    date: NaiveDate,
    action: SignoffAction,
    r: &Record,
    cx: &Context<'_>,
) -> Result<(), Invalid> {
    let at = r.str_strict("at")?;
    DateTime::parse_from_rfc3339(&at).map_err(|_| malformed("at", format!("{at:?} is not a time")))?;
    for f in [
        "by", "heads", "worker", "crew", "lines", "month", "image", "device", "reason", "answers",
    ] {
        r.str_strict(f)?;
    }
    let hex64 = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    for h in r.str("heads").split(',').filter(|h| !h.is_empty()) {
        if !hex64(h) {
            return Err(malformed("heads", format!("{h:?} is not a change hash")));
        }
    }
    let image = r.str("image");
    if !(image.is_empty() || hex64(&image)) {
        return Err(malformed("image", "not a SHA-256 in hex"));
    }
    let month = r.str("month");
    if !(month.is_empty() || month == date.format("%Y-%m").to_string()) {
        return Err(malformed("month", format!("{month:?} is not the month of {date}")));
    }
    if r.str("device").is_empty() {
        return Err(malformed("device", "a sign-off names the device it was taken on"));
    }
    for l in r.str("lines").split(',').filter(|l| !l.is_empty()) {
        crate::ids::LineId::new(l).map_err(|e| malformed("lines", e.to_string()))?;
    }
    let roster = roster(site, cx)?;
    let worker = r.str("worker");
    let crew = r.str("crew");
    match action {
        SignoffAction::Signed | SignoffAction::Disputed => {
            if !roster.workers.iter().any(|w| w.id.as_str() == worker) {
                return Err(Invalid::NotOnRoster {
                    field: "worker",
                    id: worker,
                });
            }
        }
        SignoffAction::CrewConfirmed => {
            if !roster.crews.iter().any(|c| c.id.as_str() == crew) {
                return Err(Invalid::NotOnRoster {
                    field: "crew",
                    id: crew,
                });
            }
        }
        SignoffAction::AdvanceConfirmed | SignoffAction::AdvanceDisputed => {
            advance_of_worker(doc, r)?;
        }
        SignoffAction::Answered => {
            if r.str("answers").is_empty() {
                return Err(malformed("answers", "an answer names the dispute it answers"));
            }
        }
    }
    if matches!(
        action,
        SignoffAction::Disputed | SignoffAction::AdvanceDisputed | SignoffAction::Answered
    ) && r.str("reason").trim().is_empty()
    {
        return Err(malformed("reason", "a dispute and its answer need a reason"));
    }
    Ok(())
}

/// The advance an advance's confirmation or dispute names: on this day, not deleted, and received
/// by the worker the record names (a phone cannot have one worker confirm another's advance).
fn advance_of_worker(doc: &Automerge, r: &Record) -> Result<(), Invalid> {
    let id = r.str_strict("advance")?;
    if !r.str("month").is_empty() {
        return Err(malformed(
            "month",
            "an advance is confirmed on its day, not for a month",
        ));
    }
    let advances = crate::doc::pay::advances(doc, None).map_err(|e| malformed("advance", e.to_string()))?;
    let Some(a) = advances.iter().find(|a| a.id == id) else {
        return Err(malformed("advance", format!("{id:?} is not an advance of this day")));
    };
    let worker = r.str("worker");
    if a.worker.as_str() != worker {
        return Err(malformed(
            "worker",
            format!("{worker:?} did not receive advance {id} ({} did)", a.worker),
        ));
    }
    Ok(())
}

fn money(field: &'static str, fen: i64) -> Result<Fen, Invalid> {
    Fen::new(field, fen).map_err(|e| Invalid::Range {
        field,
        reason: e.to_string(),
    })
}

fn plan(field: &'static str, text: &str) -> Result<Option<NaiveDate>, Invalid> {
    if text.is_empty() {
        return Ok(None);
    }
    let d = parse_date(text).map_err(|e| malformed(field, e.to_string()))?;
    validate::plan_date(field, d)?;
    Ok(Some(d))
}

fn site_record(
    doc: &Automerge,
    site: &SiteId,
    table: &str,
    rec: &str,
    r: &Record,
    cx: &Context<'_>,
) -> Result<(), Invalid> {
    let id_err = |field: &'static str| move |e: crate::Error| malformed(field, e.to_string());
    match table {
        "info" if rec.starts_with(crate::pay::PIECE_RATE_PREFIX) => {
            validate::piece_rate(site, &crate::doc::pay::piece_rate_record(rec, r, true)?)
        }
        "info" => {
            if rec == "site" {
                let named = r.str_strict("id")?;
                if named != site.as_str() {
                    return Err(malformed(
                        "site",
                        format!("the master data of {site} names site {named}"),
                    ));
                }
            }
            texts(r, &["code", "name", "timezone"])
        }
        "crews" => {
            CrewId::new(rec).map_err(id_err("crew"))?;
            texts(r, &["name", "leader", "trade"])
        }
        "workers" => {
            texts(r, &["name", "phone", "trade"])?;
            no_clear_number(r, "bank_account")?;
            no_clear_number(r, "id_card")?;
            let w = Worker {
                id: WorkerId::new(rec).map_err(id_err("worker"))?,
                name: r.str("name"),
                phone: r.str("phone"),
                trade: r.str("trade"),
                crew: CrewId::new(r.str_strict("crew")?).map_err(id_err("crew"))?,
                day_rate: money("day_rate", r.int_strict("day_rate_fen")?)?,
                overtime_rate: money("overtime_rate", r.int_strict("overtime_rate_fen")?)?,
                active: r.bool_strict("active")?,
                pending: false,
                bank: crate::bank::BankAccount::from_stored(&crate::doc::site::stored_account(r))?,
            };
            validate::worker(&w)
        }
        "work_items" => {
            texts(r, &["code", "name", "unit"])?;
            let planned = r.int_strict("planned_quantity_milli")?;
            let wi = WorkItem {
                id: WorkItemId::new(rec).map_err(id_err("work_item"))?,
                code: r.str("code"),
                name: r.str("name"),
                unit: r.str("unit"),
                planned_quantity: Quantity::from_milli("planned_quantity", planned).map_err(|e| Invalid::Range {
                    field: "planned_quantity",
                    reason: e.to_string(),
                })?,
                budget: money("budget", r.int_strict("budget_fen")?)?,
                planned_start: plan("planned_start", &r.str_strict("planned_start")?)?,
                planned_end: plan("planned_end", &r.str_strict("planned_end")?)?,
            };
            validate::work_item(&wi)
        }
        "pending_workers" => pending_worker(doc, rec, r, cx.tenancy.pii_secret(site)),
        "rates" => {
            let worker = WorkerId::new(r.str_strict("worker")?).map_err(id_err("worker"))?;
            let from = date("from", &r.str_strict("from")?)?;
            if rec != format!("{worker}@{from}") {
                return Err(Invalid::WrongId {
                    record: rec.to_string(),
                    expected: format!("{worker}@{from}"),
                });
            }
            validate::rate("day_rate", money("day_rate", r.int_strict("day_rate_fen")?)?.fen())?;
            validate::rate(
                "overtime_rate",
                money("overtime_rate", r.int_strict("overtime_rate_fen")?)?.fen(),
            )
        }
        _ => Ok(()),
    }
}

/// A worker added on site: a name, rates in bounds, a crew of the site, a status, and an id derived
/// from the ID card when there is one (else the shape of a fresh id), so a phone cannot claim an
/// existing worker's id or forge one person's identity for another.
fn pending_worker(
    doc: &Automerge,
    rec: &str,
    r: &Record,
    secret: Option<crate::pii::OrgPiiSecret>,
) -> Result<(), Invalid> {
    texts(r, &["phone", "trade", "added_at", "merged_into"])?;
    if r.str_strict("name")?.trim().is_empty() {
        return Err(malformed("name", "a worker needs a name"));
    }
    if r.str_strict("added_by")?.trim().is_empty() {
        return Err(malformed("added_by", "who added the worker must be named"));
    }
    let status = r.str_strict("status")?;
    let Some(status) = crate::roster::PendingStatus::parse(&status) else {
        return Err(malformed(
            "status",
            format!("{status:?} is not pending, confirmed or merged"),
        ));
    };
    if status == crate::roster::PendingStatus::Merged && r.str("merged_into").is_empty() {
        return Err(malformed(
            "merged_into",
            "a merged worker names the worker it was merged into",
        ));
    }
    let crew = r.str_strict("crew")?;
    let crews = table(doc, "crews").map_err(|e| Invalid::Layout { reason: e.to_string() })?;
    let known = read_records(doc, &crews, [crew.as_str()]).map_err(|e| malformed("crew", e.to_string()))?;
    if known.is_empty() {
        return Err(Invalid::NotOnRoster {
            field: "crew",
            id: crew,
        });
    }
    validate::rate("day_rate", money("day_rate", r.int_strict("day_rate_fen")?)?.fen())?;
    validate::rate(
        "overtime_rate",
        money("overtime_rate", r.int_strict("overtime_rate_fen")?)?.fen(),
    )?;
    no_clear_number(r, "id_card")?;
    let optional = |field: &'static str| -> Result<String, Invalid> {
        if r.fields.contains_key(field) {
            r.str_strict(field)
        } else {
            Ok(String::new())
        }
    };
    let sealed = optional("id_card_sealed")?;
    let masked = optional("id_card_masked")?;
    if sealed.is_empty() != masked.is_empty() {
        return Err(malformed(
            "id_card_sealed",
            "a sealed ID card goes with its masked form",
        ));
    }
    if !sealed.is_empty() {
        crate::pii::check_sealed(&sealed).map_err(|e| malformed("id_card_sealed", e.to_string()))?;
        // At most the last four characters shown, the rest as `*`.
        let shown = masked.trim_start_matches('*');
        if !(6..=32).contains(&masked.len()) || shown.len() > 4 || !shown.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(malformed(
                "id_card_masked",
                "a masked ID card shows at most its last four characters",
            ));
        }
    }
    // With or without a card, the id has a fresh id's shape (a keyed digest of the card looks
    // alike), so a phone cannot claim a roster worker's id.
    let id = WorkerId::new(rec).map_err(|e| malformed("worker", e.to_string()))?;
    if let Some(secret) = secret.filter(|_| !sealed.is_empty()) {
        // The checker can open the card: the id must be the one it derives, the mask its mask.
        let card = secret
            .open(&sealed)
            .map_err(|e| malformed("id_card_sealed", e.to_string()))?;
        let card = WorkerId::check_id_card(&card).map_err(|e| malformed("id_card_sealed", e.to_string()))?;
        if masked != crate::ids::mask_id_card(&card) {
            return Err(malformed("id_card_masked", "not the sealed card's mask"));
        }
        let expected = WorkerId::from_id_card_keyed(&card, &secret.public(""))
            .map_err(|e| malformed("id_card_sealed", e.to_string()))?;
        if id != expected {
            return Err(Invalid::WrongId {
                record: rec.to_string(),
                expected: expected.to_string(),
            });
        }
        return Ok(());
    }
    if id.is_fresh_shape() {
        Ok(())
    } else {
        Err(Invalid::WrongId {
            record: rec.to_string(),
            expected: "w- and 16 hex digits".to_string(),
        })
    }
}

/// Refuses a record that writes a personal number in clear into `field` (PIPL: ID-card and
/// account numbers enter a document sealed, see [`crate::pii`]); "" (blanking one written before
/// sealing) passes.
fn no_clear_number(r: &Record, field: &'static str) -> Result<(), Invalid> {
    if r.fields.contains_key(field) && !r.str_strict(field)?.is_empty() {
        return Err(malformed(
            field,
            "a personal number is written sealed (with its masked form), never in clear",
        ));
    }
    Ok(())
}

fn date(field: &'static str, text: &str) -> Result<NaiveDate, Invalid> {
    parse_date(text).map_err(|e| malformed(field, e.to_string()))
}

fn okr_record(org: &OrgId, table: &str, rec: &str, r: &Record, cx: &Context<'_>) -> Result<(), Invalid> {
    if r.fields.contains_key("deleted") && r.bool_strict("deleted")? {
        return Ok(());
    }
    if r.fields.contains_key("score_tenths") && !(0..=10).contains(&r.int_strict("score_tenths")?) {
        return Err(Invalid::Range {
            field: "score",
            reason: "a score is 0.0 to 1.0".into(),
        });
    }
    texts(r, &["retro"])?;
    match table {
        "cycle" if rec == "cycle" => {
            let kind = r.str_strict("kind")?;
            let c = Cycle {
                org: org.to_string(),
                id: String::new(),
                kind: CycleKind::parse(&kind)
                    .ok_or_else(|| malformed("kind", format!("{kind:?} is not a cycle kind")))?,
                title: r.str_strict("title")?,
                team: r.str("team"),
                start: date("start", &r.str_strict("start")?)?,
                end: date("end", &r.str_strict("end")?)?,
                review_every_days: r.int_strict("review_every_days")?,
                thresholds: Thresholds {
                    green_within: r.int_strict("green_within_tenths")? as f64 / 10.0,
                    yellow_within: r.int_strict("yellow_within_tenths")? as f64 / 10.0,
                },
                retrospective: r.str("retrospective"),
                closed: r.bool("closed", false),
            };
            texts(r, &["team", "retrospective"])?;
            validate::cycle(&c)
        }
        "objectives" => texts(r, &["title", "owner", "team", "parent"]),
        "key_results" => {
            let direction = r.str_strict("direction")?;
            let kind = r.str_strict("kind")?;
            let metric = r.str_strict("metric")?;
            let metric: Option<Metric> = if metric.is_empty() {
                None
            } else {
                Some(serde_json::from_str(&metric).map_err(|e| malformed("metric", e.to_string()))?)
            };
            let status = r.str("override_status");
            if !status.is_empty() && Status::parse(&status).is_none() {
                return Err(malformed("override_status", format!("{status:?} is not a status")));
            }
            texts(r, &["objective", "title", "owner", "unit", "override_note"])?;
            let kr = KeyResult {
                id: rec.to_string(),
                objective: r.str("objective"),
                title: r.str("title"),
                owner: r.str("owner"),
                unit: r.str("unit"),
                start_milli: r.int_strict("start_milli")?,
                target_milli: r.int_strict("target_milli")?,
                direction: Direction::parse(&direction)
                    .ok_or_else(|| malformed("direction", format!("{direction:?} is not a direction")))?,
                kind: KrKind::parse(&kind).ok_or_else(|| malformed("kind", format!("{kind:?} is not a kind")))?,
                weight: r.int_strict("weight")?,
                due: date("due", &r.str_strict("due")?)?,
                metric,
                status_override: None,
            };
            validate::key_result(&kr, org, &|s| cx.tenancy.site_org(s))?;
            // The author binds a key result only to a site they may read: otherwise the feed would
            // hand them figures of a site their grants hide.
            if let Some(m) = &kr.metric {
                let site = SiteId::new(validate::metric_site(m)).map_err(|e| malformed("metric", e.to_string()))?;
                if !cx.tenancy.may_read(&site) {
                    return Err(Invalid::Foreign {
                        field: "metric",
                        site: site.to_string(),
                    });
                }
            }
            Ok(())
        }
        "checkins" => {
            let status = r.str("status");
            if !status.is_empty() && Status::parse(&status).is_none() {
                return Err(malformed("status", format!("{status:?} is not a status")));
            }
            let at = r.str_strict("at")?;
            texts(r, &["kr", "note", "author"])?;
            let c = CheckIn {
                id: rec.to_string(),
                kr: r.str_strict("kr")?,
                value_milli: r.int_strict("value_milli")?,
                status: None,
                confidence: match r.fields.contains_key("confidence") {
                    true => Some(r.int_strict("confidence")?),
                    false => None,
                },
                note: r.str("note"),
                author: r.str("author"),
                date: date("date", &r.str_strict("date")?)?,
                at: DateTime::parse_from_rfc3339(&at)
                    .map_err(|_| malformed("at", format!("{at:?} is not a time")))?
                    .with_timezone(&chrono::Utc),
            };
            validate::check_in(&c)
        }
        "reviews" => {
            validate::plan_date("date", date("date", &r.str_strict("date")?)?)?;
            let values = r.str_strict("values")?;
            serde_json::from_str::<Vec<(String, i64)>>(&values).map_err(|e| malformed("values", e.to_string()))?;
            texts(r, &["by", "notes"])
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use automerge::transaction::Transactable;
    use automerge::{ObjType, ReadDoc};

    use super::*;
    use crate::doc::{commit, genesis, put};

    struct Anyone;

    impl Tenancy for Anyone {
        fn site_org(&self, _: &SiteId) -> Option<OrgId> {
            None
        }
        fn may_read(&self, _: &SiteId) -> bool {
            true
        }
    }

    fn day() -> DocId {
        "day|site-hz-01|2026-09-01".parse().unwrap()
    }

    #[test]
    fn only_what_changes_touched_is_judged() {
        let id = day();
        let mut doc = genesis(&id);
        let labor = table(&doc, "labor").unwrap();
        let mut tx = doc.transaction();
        // Older data no check would pass today …
        put(&mut tx, &labor, "Lold", "work_days_centi", -100i64).unwrap();
        commit(tx);
        let before = doc.get_heads();
        // … and a change that only sets the weather.
        let info = table(&doc, "day").unwrap();
        let mut tx = doc.transaction();
        put(&mut tx, &info, "day", "weather", "晴").unwrap();
        commit(tx);
        let t = touched(&doc, &id, &before).unwrap();
        assert_eq!(t.records.keys().copied().collect::<Vec<_>>(), ["day"]);
        let cx = Context {
            roster: None,
            tenancy: &Anyone,
        };
        assert_eq!(check(&doc, &id, &t, &cx), Ok(()));
        // The old line, touched, is judged.
        let before = doc.get_heads();
        let mut tx = doc.transaction();
        put(&mut tx, &labor, "Lold", "note", "x").unwrap();
        commit(tx);
        let t = touched(&doc, &id, &before).unwrap();
        assert!(t.any("labor"));
        assert!(check(&doc, &id, &t, &cx).is_err());
    }

    #[test]
    fn the_layout_and_the_shape_of_records_are_not_for_changes_to_alter() {
        let id = day();
        let g = genesis(&id);
        let mut doc = g.fork();
        let mut tx = doc.transaction();
        tx.put(ROOT, "labor", "gone").unwrap();
        commit(tx);
        assert!(matches!(
            touched(&doc, &id, &g.get_heads()),
            Err(Invalid::Layout { .. })
        ));
        let mut doc = g.fork();
        let labor = table(&doc, "labor").unwrap();
        let mut tx = doc.transaction();
        tx.put_object(&labor, "L1.rate_fen", ObjType::Map).unwrap();
        commit(tx);
        let err = touched(&doc, &id, &g.get_heads()).unwrap_err();
        assert!(err.is_malformed(), "{err:?}");
        assert!(doc.get(&labor, "L1.rate_fen").unwrap().is_some());
    }
}
