//! Sign-off records in the site-day document's `reviews` table (why there: [`crate::signoff`]), and
//! the state of each worker's and crew's day read from them.
//!
//! A record's fields: `action`, `by`, `at`, `heads` (as every review event), and `worker`, `crew`,
//! `lines` (line ids, comma-separated), `month`, `image` (SHA-256 hex), `device`, `reason`, `answers`
//! (the dispute an answer answers); a field that does not apply is "". An advance's confirmation or
//! dispute also has `advance` (the advance's record id); no other record has that field, so records
//! written before advances were confirmed read exactly as they did.

use std::collections::{BTreeMap, BTreeSet};

use automerge::transaction::Transaction;
use automerge::{Automerge, ChangeHash, ReadDoc};
use chrono::{DateTime, NaiveDate, Utc};

use crate::doc::day::{self, DayContent};
use crate::doc::{Record, heads_hex, heads_parse, put, read_table, table};
use crate::error::Result;
use crate::ids::{CrewId, DocId, LineId, WorkerId};
use crate::labor::{Amendment, LaborLine};
use crate::pay::Advance;
use crate::signoff::{AdvanceSignoff, CrewSignoff, SignoffAction, SignoffEvent, SignoffState, WorkerSignoff};

/// Reads a sign-off record; `None` if it is not one (a review event) or does not read as one.
pub(crate) fn record(id: &str, date: NaiveDate, r: &Record) -> Option<SignoffEvent> {
    let action = SignoffAction::parse(&r.str("action"))?;
    let opt = |f: &str| Some(r.str(f)).filter(|s| !s.is_empty());
    Some(SignoffEvent {
        id: id.to_string(),
        action,
        date,
        by: r.str("by"),
        worker: opt("worker").and_then(|w| WorkerId::new(w).ok()),
        crew: opt("crew").and_then(|c| CrewId::new(c).ok()),
        lines: split(&r.str("lines")).filter_map(|l| LineId::new(l).ok()).collect(),
        month: opt("month"),
        image: opt("image"),
        device: r.str("device"),
        at: DateTime::parse_from_rfc3339(&r.str("at")).ok()?.with_timezone(&Utc),
        heads: split(&r.str("heads")).map(str::to_string).collect(),
        reason: r.str("reason"),
        answers: opt("answers"),
        advance: opt("advance"),
    })
}

fn split(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').filter(|s| !s.is_empty())
}

/// Every sign-off record of the day, now or as of `heads`, ordered by clock then id.
pub(crate) fn events(doc: &Automerge, heads: Option<&[ChangeHash]>) -> Result<Vec<SignoffEvent>> {
    let date = match doc.get(automerge::ROOT, "id")?.and_then(|(v, _)| v.into_string().ok()) {
        Some(id) => match id.parse::<DocId>() {
            Ok(DocId::Day(_, date)) => date,
            _ => return Ok(Vec::new()),
        },
        None => return Ok(Vec::new()),
    };
    let mut out: Vec<SignoffEvent> = read_table(doc, &table(doc, "reviews")?, heads)?
        .iter()
        .filter_map(|(id, r)| record(id, date, r))
        .collect();
    out.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
    Ok(out)
}

/// Writes a sign-off record, whole.
pub(crate) fn put_event(tx: &mut Transaction<'_>, e: &SignoffEvent) -> Result<()> {
    let t = table(tx, "reviews")?;
    let id = e.id.as_str();
    let opt = |o: &Option<String>| o.clone().unwrap_or_default();
    put(tx, &t, id, "action", e.action.as_str())?;
    put(tx, &t, id, "by", e.by.as_str())?;
    put(tx, &t, id, "at", e.at.to_rfc3339())?;
    put(tx, &t, id, "heads", e.heads.join(","))?;
    put(
        tx,
        &t,
        id,
        "worker",
        e.worker.as_ref().map(|w| w.as_str()).unwrap_or(""),
    )?;
    put(tx, &t, id, "crew", e.crew.as_ref().map(|c| c.as_str()).unwrap_or(""))?;
    let lines: Vec<&str> = e.lines.iter().map(|l| l.as_str()).collect();
    put(tx, &t, id, "lines", lines.join(","))?;
    put(tx, &t, id, "month", opt(&e.month))?;
    put(tx, &t, id, "image", opt(&e.image))?;
    put(tx, &t, id, "device", e.device.as_str())?;
    put(tx, &t, id, "reason", e.reason.as_str())?;
    put(tx, &t, id, "answers", opt(&e.answers))?;
    match &e.advance {
        Some(a) => put(tx, &t, id, "advance", a.as_str()),
        None => Ok(()),
    }
}

/// A new record of `action` by `by` on `device`, pinning the document as it is now.
pub(crate) fn new_event(
    doc: &Automerge,
    date: NaiveDate,
    action: SignoffAction,
    by: &str,
    device: &str,
) -> SignoffEvent {
    SignoffEvent {
        id: uuid::Uuid::new_v4().simple().to_string(),
        action,
        date,
        by: by.to_string(),
        worker: None,
        crew: None,
        lines: Vec::new(),
        month: None,
        image: None,
        device: device.to_string(),
        at: Utc::now(),
        heads: heads_hex(&doc.get_heads()),
        reason: String::new(),
        answers: None,
        advance: None,
    }
}

/// Disputes (of lines or of an advance) that no answer among `events` answers.
pub(crate) fn open_disputes(events: &[SignoffEvent]) -> Vec<&SignoffEvent> {
    let answered: BTreeSet<&str> = events
        .iter()
        .filter(|e| e.action == SignoffAction::Answered)
        .filter_map(|e| e.answers.as_deref())
        .collect();
    events
        .iter()
        .filter(|e| {
            matches!(e.action, SignoffAction::Disputed | SignoffAction::AdvanceDisputed)
                && !answered.contains(e.id.as_str())
        })
        .collect()
}

/// The labor lines of `worker` shown now, by id.
fn worker_lines<'a>(content: &'a DayContent, worker: &WorkerId) -> BTreeMap<&'a str, &'a LaborLine> {
    content
        .labor
        .iter()
        .filter(|(_, l)| &l.worker == worker && day::shown(l.deleted, &l.conflicts))
        .map(|(id, l)| (id.as_str(), l))
        .collect()
}

/// Where `worker`'s day stands; `month` counts only signatures of that month's confirmation (the
/// attendance sheet), `None` any signature.
pub(crate) fn worker_state(
    doc: &Automerge,
    content: &DayContent,
    events: &[SignoffEvent],
    worker: &WorkerId,
    month: Option<&str>,
) -> Result<WorkerSignoff> {
    let open: Vec<SignoffEvent> = open_disputes(events)
        .into_iter()
        .filter(|e| e.worker.as_ref() == Some(worker))
        .cloned()
        .collect();
    let signature = events
        .iter()
        .rfind(|e| {
            e.action == SignoffAction::Signed
                && e.worker.as_ref() == Some(worker)
                && month.is_none_or(|m| e.month.as_deref() == Some(m))
        })
        .cloned();
    let changes = match &signature {
        Some(s) => changes_since(doc, content, s, worker)?,
        None => Vec::new(),
    };
    let state = if !open.is_empty() {
        SignoffState::Disputed
    } else if signature.is_none() {
        SignoffState::Unsigned
    } else if !changes.is_empty() {
        SignoffState::ChangedSinceSigned
    } else {
        SignoffState::Signed
    };
    Ok(WorkerSignoff {
        worker: worker.clone(),
        state,
        signature,
        changes,
        open_disputes: open,
    })
}

/// What changed in the worker's lines between the version `signed` pinned and now: the lines it
/// covers, and any line of his added since. Empty when that version is not (yet) in this replica.
fn changes_since(
    doc: &Automerge,
    now: &DayContent,
    signed: &SignoffEvent,
    worker: &WorkerId,
) -> Result<Vec<crate::labor::Amendment>> {
    let heads = heads_parse(&signed.heads).unwrap_or_default();
    if heads.is_empty() || !doc.get_missing_deps(&heads).is_empty() {
        return Ok(Vec::new());
    }
    let then = day::read(doc, Some(&heads))?;
    let now_lines = worker_lines(now, worker);
    let ids: BTreeSet<&str> = signed
        .lines
        .iter()
        .map(|l| l.as_str())
        .chain(now_lines.keys().copied())
        .collect();
    Ok(ids
        .into_iter()
        .flat_map(|id| day::labor_line_changes(id, then.labor.get(id), now.labor.get(id)))
        .collect())
}

/// Each of the day's `advances` (as they stand now) with its worker's confirmation and what changed
/// in it since he confirmed it.
pub(crate) fn advances(
    doc: &Automerge,
    events: &[SignoffEvent],
    advances: Vec<Advance>,
) -> Result<Vec<AdvanceSignoff>> {
    let open = open_disputes(events);
    advances
        .into_iter()
        .map(|advance| {
            let about = |e: &&SignoffEvent| {
                e.advance.as_deref() == Some(advance.id.as_str()) && e.worker.as_ref() == Some(&advance.worker)
            };
            let disputes: Vec<SignoffEvent> = open
                .iter()
                .copied()
                .filter(|e| e.action == SignoffAction::AdvanceDisputed)
                .filter(about)
                .cloned()
                .collect();
            let confirmation = events
                .iter()
                .filter(|e| e.action == SignoffAction::AdvanceConfirmed)
                .rfind(about)
                .cloned();
            let changes = match &confirmation {
                Some(c) => advance_changes_since(doc, c, &advance)?,
                None => Vec::new(),
            };
            let state = if !disputes.is_empty() {
                SignoffState::Disputed
            } else if confirmation.is_none() {
                SignoffState::Unsigned
            } else if !changes.is_empty() {
                SignoffState::ChangedSinceSigned
            } else {
                SignoffState::Signed
            };
            Ok(AdvanceSignoff {
                advance,
                state,
                confirmation,
                changes,
                open_disputes: disputes,
            })
        })
        .collect()
}

/// What changed in `now` since the version `confirmed` pinned: each field that differs. Empty when
/// that version is not (yet) in this replica.
fn advance_changes_since(doc: &Automerge, confirmed: &SignoffEvent, now: &Advance) -> Result<Vec<Amendment>> {
    let heads = heads_parse(&confirmed.heads).unwrap_or_default();
    if heads.is_empty() || !doc.get_missing_deps(&heads).is_empty() {
        return Ok(Vec::new());
    }
    let then = crate::doc::pay::advances(doc, Some(&heads))?
        .into_iter()
        .find(|a| a.id == now.id);
    let fields = |a: &Advance| {
        [
            ("worker", a.worker.to_string()),
            ("amount_fen", a.amount.fen().to_string()),
            ("paid_by", a.paid_by.clone()),
            ("note", a.note.clone()),
        ]
    };
    let Some(then) = then else {
        // Confirmed before it was written (or while deleted): everything about it is new.
        return Ok(fields(now)
            .into_iter()
            .map(|(f, v)| Amendment {
                line: now.id.clone(),
                field: f.to_string(),
                approved: None,
                now: Some(v),
            })
            .collect());
    };
    Ok(fields(&then)
        .into_iter()
        .zip(fields(now))
        .filter(|((_, a), (_, b))| a != b)
        .map(|((f, a), (_, b))| Amendment {
            line: now.id.clone(),
            field: f.to_string(),
            approved: Some(a),
            now: Some(b),
        })
        .collect())
}

/// Every worker with a line shown now or a sign-off record, each with his state.
pub(crate) fn workers(doc: &Automerge, content: &DayContent, events: &[SignoffEvent]) -> Result<Vec<WorkerSignoff>> {
    let ids: BTreeSet<&WorkerId> = content
        .labor
        .values()
        .filter(|l| day::shown(l.deleted, &l.conflicts))
        .map(|l| &l.worker)
        // An advance's confirmation says nothing about his day; its dispute holds the day.
        .chain(
            events
                .iter()
                .filter(|e| e.action != SignoffAction::AdvanceConfirmed)
                .filter_map(|e| e.worker.as_ref()),
        )
        .collect();
    ids.into_iter()
        .map(|w| worker_state(doc, content, events, w, None))
        .collect()
}

/// Each crew in `crews` with its last confirmation.
pub(crate) fn crews(events: &[SignoffEvent], crews: impl IntoIterator<Item = CrewId>) -> Vec<CrewSignoff> {
    crews
        .into_iter()
        .map(|crew| CrewSignoff {
            confirmation: events
                .iter()
                .rfind(|e| e.action == SignoffAction::CrewConfirmed && e.crew.as_ref() == Some(&crew))
                .cloned(),
            crew,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::{commit, genesis};
    use crate::ids::{SiteId, WorkItemId, parse_date};
    use crate::labor::LaborKind;
    use crate::units::{Fen, Minutes, WorkDays};

    fn line(site: &SiteId, date: chrono::NaiveDate, days: &str) -> LaborLine {
        let worker = WorkerId::new("w-1").unwrap();
        let item = WorkItemId::new("s/wi-1").unwrap();
        LaborLine {
            id: LineId::labor(site, date, &worker, &item),
            worker,
            work_item: item,
            work_days: WorkDays::parse(days).unwrap(),
            hours: Minutes::from_min("hours", 480).unwrap(),
            overtime: Minutes::default(),
            kind: LaborKind::DayLabor,
            day_rate: Fen::new("rate", 30_000).unwrap(),
            overtime_rate: Fen::new("rate", 0).unwrap(),
            note: String::new(),
            entered_by: "f".into(),
            deleted: false,
            conflicts: Vec::new(),
        }
    }

    #[test]
    fn a_signature_survives_an_edit_and_names_what_changed() {
        let site = SiteId::new("s").unwrap();
        let date = parse_date("2026-12-01").unwrap();
        let mut doc = genesis(&DocId::Day(site.clone(), date));
        let l = line(&site, date, "1.0");
        let mut tx = doc.transaction();
        day::put_labor(&mut tx, &l).unwrap();
        commit(tx);
        let mut sig = new_event(&doc, date, SignoffAction::Signed, "f", "d-1");
        sig.worker = Some(l.worker.clone());
        sig.lines = vec![l.id.clone()];
        let mut tx = doc.transaction();
        put_event(&mut tx, &sig).unwrap();
        commit(tx);
        let state = |doc: &Automerge| {
            let c = day::read(doc, None).unwrap();
            let ev = events(doc, None).unwrap();
            worker_state(doc, &c, &ev, &l.worker, None).unwrap()
        };
        assert_eq!(state(&doc).state, SignoffState::Signed);
        // The review trail does not see it: the day is still a draft.
        let c = day::read(&doc, None).unwrap();
        assert!(c.reviews.is_empty());
        let mut tx = doc.transaction();
        day::put_labor(&mut tx, &line(&site, date, "0.5")).unwrap();
        commit(tx);
        let s = state(&doc);
        assert_eq!(s.state, SignoffState::ChangedSinceSigned);
        assert_eq!(s.signature.as_ref().map(|e| &e.id), Some(&sig.id));
        let fields: Vec<(&str, Option<&str>, Option<&str>)> = s
            .changes
            .iter()
            .map(|c| (c.field.as_str(), c.approved.as_deref(), c.now.as_deref()))
            .collect();
        assert_eq!(fields, [("work_days_centi", Some("100"), Some("50"))]);
    }
}
