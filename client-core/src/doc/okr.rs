//! The OKR cycle document: tables `cycle` (one record, `cycle`), `objectives`, `key_results`,
//! `checkins` and `reviews`. Check-ins and reviews have random ids, so any number of people can add
//! them offline at once and every one survives the merge.

use std::collections::BTreeMap;

use automerge::Automerge;
use automerge::transaction::Transaction;
use chrono::{DateTime, Utc};

use crate::doc::{Record, put, read_table, table};
use crate::error::{Error, Result};
use crate::ids::parse_date;
use crate::okr::{CheckIn, Cycle, CycleKind, Direction, KeyResult, KrKind, Objective, Review, Status, Thresholds};

/// Everything in a cycle document.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OkrContent {
    /// The cycle, if it was created.
    pub cycle: Option<Cycle>,
    /// Objectives by id (deleted ones left out).
    pub objectives: BTreeMap<String, Objective>,
    /// Key results by id (deleted ones left out).
    pub key_results: BTreeMap<String, KeyResult>,
    /// Check-ins, oldest value date first.
    pub checkins: Vec<CheckIn>,
    /// Reviews, oldest first.
    pub reviews: Vec<Review>,
    /// Final scores in tenths, by key result or objective id, once closed.
    pub scores: BTreeMap<String, i64>,
    /// Retrospective notes per objective.
    pub retro: BTreeMap<String, String>,
}

fn corrupt(what: &str) -> Error {
    Error::CorruptDocument {
        doc: "okr".into(),
        reason: format!("bad {what}"),
    }
}

fn cycle(r: &Record, org: &str, id: &str) -> Result<Cycle> {
    Ok(Cycle {
        org: org.to_string(),
        id: id.to_string(),
        kind: CycleKind::parse(&r.str("kind")).unwrap_or(CycleKind::Quarter),
        title: r.str("title"),
        team: r.str("team"),
        start: parse_date(&r.str("start")).map_err(|_| corrupt("cycle start"))?,
        end: parse_date(&r.str("end")).map_err(|_| corrupt("cycle end"))?,
        review_every_days: r.int("review_every_days").max(1),
        thresholds: Thresholds {
            green_within: r.int("green_within_tenths") as f64 / 10.0,
            yellow_within: r.int("yellow_within_tenths") as f64 / 10.0,
        },
        retrospective: r.str("retrospective"),
        closed: r.bool("closed", false),
    })
}

/// Reads the cycle document.
pub(crate) fn read(doc: &Automerge, org: &str, cycle_id: &str) -> Result<OkrContent> {
    let info = read_table(doc, &table(doc, "cycle")?, None)?;
    let cycle = match info.get("cycle") {
        Some(r) if !r.str("start").is_empty() => Some(cycle(r, org, cycle_id)?),
        _ => None,
    };
    let mut objectives = BTreeMap::new();
    let mut scores = BTreeMap::new();
    let mut retro = BTreeMap::new();
    for (id, r) in read_table(doc, &table(doc, "objectives")?, None)? {
        if r.bool("deleted", false) {
            continue;
        }
        if r.fields.contains_key("score_tenths") {
            scores.insert(id.clone(), r.int("score_tenths"));
        }
        if !r.str("retro").is_empty() {
            retro.insert(id.clone(), r.str("retro"));
        }
        let parent = r.str("parent");
        objectives.insert(
            id.clone(),
            Objective {
                id,
                title: r.str("title"),
                owner: r.str("owner"),
                team: r.str("team"),
                parent: (!parent.is_empty()).then_some(parent),
            },
        );
    }
    let mut key_results = BTreeMap::new();
    for (id, r) in read_table(doc, &table(doc, "key_results")?, None)? {
        if r.bool("deleted", false) {
            continue;
        }
        if r.fields.contains_key("score_tenths") {
            scores.insert(id.clone(), r.int("score_tenths"));
        }
        let metric = r.str("metric");
        let status_override = Status::parse(&r.str("override_status")).map(|s| (s, r.str("override_note")));
        key_results.insert(
            id.clone(),
            KeyResult {
                id,
                objective: r.str("objective"),
                title: r.str("title"),
                owner: r.str("owner"),
                unit: r.str("unit"),
                start_milli: r.int("start_milli"),
                target_milli: r.int("target_milli"),
                direction: Direction::parse(&r.str("direction")).ok_or_else(|| corrupt("direction"))?,
                kind: KrKind::parse(&r.str("kind")).unwrap_or(KrKind::Baseline),
                weight: r.int("weight").max(1),
                due: parse_date(&r.str("due")).map_err(|_| corrupt("due date"))?,
                metric: if metric.is_empty() {
                    None
                } else {
                    serde_json::from_str(&metric).ok()
                },
                status_override,
            },
        );
    }
    let mut checkins: Vec<CheckIn> = read_table(doc, &table(doc, "checkins")?, None)?
        .into_iter()
        .filter_map(|(id, r)| {
            Some(CheckIn {
                id,
                kr: r.str("kr"),
                value_milli: r.int("value_milli"),
                status: Status::parse(&r.str("status")),
                confidence: r.fields.get("confidence").map(|_| r.int("confidence")),
                note: r.str("note"),
                author: r.str("author"),
                date: parse_date(&r.str("date")).ok()?,
                at: DateTime::parse_from_rfc3339(&r.str("at")).ok()?.with_timezone(&Utc),
            })
        })
        .collect();
    // "The current value is the latest check-in by date"; the record time, then the id, break ties
    // the same way on every replica.
    checkins.sort_by(|a, b| (a.date, a.at, &a.id).cmp(&(b.date, b.at, &b.id)));
    let mut reviews: Vec<Review> = read_table(doc, &table(doc, "reviews")?, None)?
        .into_iter()
        .filter_map(|(id, r)| {
            Some(Review {
                id,
                date: parse_date(&r.str("date")).ok()?,
                by: r.str("by"),
                notes: r.str("notes"),
                values: serde_json::from_str(&r.str("values")).unwrap_or_default(),
            })
        })
        .collect();
    reviews.sort_by(|a, b| (a.date, &a.id).cmp(&(b.date, &b.id)));
    Ok(OkrContent {
        cycle,
        objectives,
        key_results,
        checkins,
        reviews,
        scores,
        retro,
    })
}

/// Writes the cycle record.
pub(crate) fn put_cycle(tx: &mut Transaction<'_>, c: &Cycle) -> Result<()> {
    let t = table(tx, "cycle")?;
    put(tx, &t, "cycle", "kind", c.kind.as_str())?;
    put(tx, &t, "cycle", "title", c.title.as_str())?;
    put(tx, &t, "cycle", "team", c.team.as_str())?;
    put(tx, &t, "cycle", "start", c.start.to_string())?;
    put(tx, &t, "cycle", "end", c.end.to_string())?;
    put(tx, &t, "cycle", "review_every_days", c.review_every_days)?;
    put(
        tx,
        &t,
        "cycle",
        "green_within_tenths",
        (c.thresholds.green_within * 10.0).round() as i64,
    )?;
    put(
        tx,
        &t,
        "cycle",
        "yellow_within_tenths",
        (c.thresholds.yellow_within * 10.0).round() as i64,
    )?;
    put(tx, &t, "cycle", "retrospective", c.retrospective.as_str())?;
    put(tx, &t, "cycle", "closed", c.closed)
}

/// Writes an objective.
pub(crate) fn put_objective(tx: &mut Transaction<'_>, o: &Objective) -> Result<()> {
    let t = table(tx, "objectives")?;
    put(tx, &t, &o.id, "title", o.title.as_str())?;
    put(tx, &t, &o.id, "owner", o.owner.as_str())?;
    put(tx, &t, &o.id, "team", o.team.as_str())?;
    put(tx, &t, &o.id, "parent", o.parent.as_deref().unwrap_or(""))
}

/// Writes a key result.
pub(crate) fn put_key_result(tx: &mut Transaction<'_>, k: &KeyResult) -> Result<()> {
    let t = table(tx, "key_results")?;
    let id = k.id.as_str();
    put(tx, &t, id, "objective", k.objective.as_str())?;
    put(tx, &t, id, "title", k.title.as_str())?;
    put(tx, &t, id, "owner", k.owner.as_str())?;
    put(tx, &t, id, "unit", k.unit.as_str())?;
    put(tx, &t, id, "start_milli", k.start_milli)?;
    put(tx, &t, id, "target_milli", k.target_milli)?;
    put(tx, &t, id, "direction", k.direction.as_str())?;
    put(tx, &t, id, "kind", k.kind.as_str())?;
    put(tx, &t, id, "weight", k.weight)?;
    put(tx, &t, id, "due", k.due.to_string())?;
    let metric = k
        .metric
        .as_ref()
        .map(|m| serde_json::to_string(m).unwrap_or_default())
        .unwrap_or_default();
    put(tx, &t, id, "metric", metric)?;
    let (status, note) = k
        .status_override
        .as_ref()
        .map(|(s, n)| (s.as_str(), n.as_str()))
        .unwrap_or(("", ""));
    put(tx, &t, id, "override_status", status)?;
    put(tx, &t, id, "override_note", note)
}

/// Appends a check-in.
pub(crate) fn put_checkin(tx: &mut Transaction<'_>, c: &CheckIn) -> Result<()> {
    let t = table(tx, "checkins")?;
    let id = c.id.as_str();
    put(tx, &t, id, "kr", c.kr.as_str())?;
    put(tx, &t, id, "value_milli", c.value_milli)?;
    put(tx, &t, id, "status", c.status.map(Status::as_str).unwrap_or(""))?;
    if let Some(conf) = c.confidence {
        put(tx, &t, id, "confidence", conf)?;
    }
    put(tx, &t, id, "note", c.note.as_str())?;
    put(tx, &t, id, "author", c.author.as_str())?;
    put(tx, &t, id, "date", c.date.to_string())?;
    put(tx, &t, id, "at", c.at.to_rfc3339())
}

/// Appends a review.
pub(crate) fn put_review(tx: &mut Transaction<'_>, r: &Review) -> Result<()> {
    let t = table(tx, "reviews")?;
    put(tx, &t, &r.id, "date", r.date.to_string())?;
    put(tx, &t, &r.id, "by", r.by.as_str())?;
    put(tx, &t, &r.id, "notes", r.notes.as_str())?;
    put(
        tx,
        &t,
        &r.id,
        "values",
        serde_json::to_string(&r.values).unwrap_or_default(),
    )
}

/// Writes a final score (tenths) and retrospective note on an objective or key result.
pub(crate) fn put_score(
    tx: &mut Transaction<'_>,
    table_name: &str,
    id: &str,
    tenths: i64,
    retro: Option<&str>,
) -> Result<()> {
    let t = table(tx, table_name)?;
    put(tx, &t, id, "score_tenths", tenths)?;
    if let Some(r) = retro {
        put(tx, &t, id, "retro", r)?;
    }
    Ok(())
}
