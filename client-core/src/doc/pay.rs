//! Where pay records live in the documents (issue #20).
//!
//! Decision (2026-11-30): the genesis of a document never changes (`doc.rs`), so tables cannot be
//! added to documents that already exist. The `advances` table of the site-day document is therefore
//! the records `adv-{32 hex}` of its `day` table (as attachments are `att-*` there), and the
//! `piece_rates` table of the site document the records `piece-rate:{key}` of its `info` table (as
//! the crew-confirmation policy is a record there). The rules follow from where they live: an
//! advance is written like the day's lines and locked with them once the day is approved; a piece
//! rate is master data, head office's.

use automerge::transaction::Transaction;
use automerge::{Automerge, ChangeHash};
use chrono::{DateTime, NaiveDate, Utc};

use crate::doc::{Record, put, read_table, table};
use crate::error::Result;
use crate::ids::{CrewId, WorkItemId, WorkerId, parse_date};
use crate::pay::{ADVANCE_PREFIX, Advance, PIECE_RATE_PREFIX, PieceRate, PieceScope};
use crate::units::Fen;
use crate::validate::Invalid;

fn malformed(field: &'static str, reason: impl Into<String>) -> Invalid {
    Invalid::Malformed {
        field,
        reason: reason.into(),
    }
}

/// Reads an advance record (`None`: deleted). `strict` is what a pushed record is held to: every
/// field present with its type; otherwise a missing field reads as its default.
pub(crate) fn advance_record(id: &str, r: &Record, strict: bool) -> std::result::Result<Option<Advance>, Invalid> {
    let deleted = if strict {
        r.bool_strict("deleted")?
    } else {
        r.bool("deleted", false)
    };
    if deleted {
        return Ok(None);
    }
    let text = |f: &'static str| if strict { r.str_strict(f) } else { Ok(r.str(f)) };
    let amount = if strict {
        r.int_strict("amount_fen")?
    } else {
        r.int("amount_fen")
    };
    let at = text("at")?;
    Ok(Some(Advance {
        id: id.to_string(),
        worker: WorkerId::new(text("worker")?).map_err(|e| malformed("worker", e.to_string()))?,
        amount: Fen::new("amount", amount).map_err(|e| Invalid::Range {
            field: "amount",
            reason: e.to_string(),
        })?,
        paid_by: text("paid_by")?,
        note: text("note")?,
        entered_by: text("entered_by")?,
        at: DateTime::parse_from_rfc3339(&at)
            .map_err(|_| malformed("at", format!("{at:?} is not a time")))?
            .with_timezone(&Utc),
    }))
}

/// The day's advances, now or as of `heads`, deleted ones and unreadable ones left out, by id.
pub(crate) fn advances(doc: &Automerge, heads: Option<&[ChangeHash]>) -> Result<Vec<Advance>> {
    Ok(read_table(doc, &table(doc, "day")?, heads)?
        .iter()
        .filter(|(id, _)| id.starts_with(ADVANCE_PREFIX))
        .filter_map(|(id, r)| advance_record(id, r, false).ok().flatten())
        .collect())
}

/// Writes an advance (every field: it is written whole).
pub(crate) fn put_advance(tx: &mut Transaction<'_>, a: &Advance, deleted: bool) -> Result<()> {
    let t = table(tx, "day")?;
    let id = a.id.as_str();
    put(tx, &t, id, "worker", a.worker.as_str())?;
    put(tx, &t, id, "amount_fen", a.amount.fen())?;
    put(tx, &t, id, "paid_by", a.paid_by.as_str())?;
    put(tx, &t, id, "note", a.note.as_str())?;
    put(tx, &t, id, "entered_by", a.entered_by.as_str())?;
    put(tx, &t, id, "at", a.at.to_rfc3339())?;
    put(tx, &t, id, "deleted", deleted)
}

/// Reads a piece-rate record of the `info` table whose id is `id`. The record's key must be the
/// one its fields derive ([`PieceRate::key`]), so two records never price the same scope.
pub(crate) fn piece_rate_record(id: &str, r: &Record, strict: bool) -> std::result::Result<PieceRate, Invalid> {
    let text = |f: &'static str| if strict { r.str_strict(f) } else { Ok(r.str(f)) };
    let work_item = WorkItemId::new(text("work_item")?).map_err(|e| malformed("work_item", e.to_string()))?;
    let (crew, worker) = (text("crew")?, text("worker")?);
    let scope = match (crew.is_empty(), worker.is_empty()) {
        (true, true) => PieceScope::Site,
        (false, true) => PieceScope::Crew(CrewId::new(crew).map_err(|e| malformed("crew", e.to_string()))?),
        (true, false) => PieceScope::Worker(WorkerId::new(worker).map_err(|e| malformed("worker", e.to_string()))?),
        (false, false) => return Err(malformed("crew", "a piece rate is for a crew or a worker, not both")),
    };
    let price = if strict {
        r.int_strict("price_fen")?
    } else {
        r.int("price_fen")
    };
    let from = text("from")?;
    let rate = PieceRate {
        work_item,
        scope,
        price: Fen::new("price", price).map_err(|e| Invalid::Range {
            field: "price",
            reason: e.to_string(),
        })?,
        from: match from.as_str() {
            "" => None,
            d => Some(parse_date(d).map_err(|e| malformed("from", e.to_string()))?),
        },
    };
    if id.strip_prefix(PIECE_RATE_PREFIX) != Some(rate.key().as_str()) {
        return Err(malformed(
            "id",
            format!("{id} is not {PIECE_RATE_PREFIX}{}", rate.key()),
        ));
    }
    Ok(rate)
}

/// The site's piece rates, unreadable ones left out, by key.
pub(crate) fn piece_rates(doc: &Automerge) -> Result<Vec<PieceRate>> {
    Ok(read_table(doc, &table(doc, "info")?, None)?
        .iter()
        .filter(|(id, _)| id.starts_with(PIECE_RATE_PREFIX))
        .filter_map(|(id, r)| piece_rate_record(id, r, false).ok())
        .collect())
}

/// Writes a piece rate under its key (replacing the scope's earlier price).
pub(crate) fn put_piece_rate(tx: &mut Transaction<'_>, rate: &PieceRate) -> Result<()> {
    let t = table(tx, "info")?;
    let id = format!("{PIECE_RATE_PREFIX}{}", rate.key());
    let (crew, worker) = match &rate.scope {
        PieceScope::Site => (String::new(), String::new()),
        PieceScope::Crew(c) => (c.to_string(), String::new()),
        PieceScope::Worker(w) => (String::new(), w.to_string()),
    };
    put(tx, &t, &id, "work_item", rate.work_item.as_str())?;
    put(tx, &t, &id, "crew", crew)?;
    put(tx, &t, &id, "worker", worker)?;
    put(tx, &t, &id, "price_fen", rate.price.fen())?;
    put(
        tx,
        &t,
        &id,
        "from",
        rate.from.map(|d: NaiveDate| d.to_string()).unwrap_or_default(),
    )
}
