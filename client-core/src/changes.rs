//! Automerge changes as people and rules read them: who made one (its actor), when (the phone's own
//! clock), on top of what (its dependencies), and each write — record, field, value.
//!
//! Every document's tables are made by its genesis change (see [`crate::doc`]), so a write is an
//! operation whose object is one of those tables and whose key is `"{record}.{field}"`. Anything
//! else in a change (a nested object, a list, text, an operation on the document root) is not
//! something sitesync writes, and is reported as a structure violation rather than interpreted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use automerge::legacy::{Key, ObjectId, OpId, OpType};
use automerge::{ActorId, Change, ChangeHash, ReadDoc, ScalarValue};
use serde::{Deserialize, Serialize};

use crate::doc::{self, ChunkKind};
use crate::ids::DocId;
use crate::rules::Violation;

/// A value written to a field, or its deletion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "value")]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub enum Value {
    Str(String),
    /// An integer (fen, hundredths of a work-day, minutes, thousandths …).
    Int(i64),
    Bool(bool),
    /// The field was deleted.
    Deleted,
    /// Any other scalar (sitesync writes none), as text.
    Other(String),
}

impl Value {
    pub(crate) fn from_scalar(v: &ScalarValue) -> Value {
        match v {
            ScalarValue::Str(s) => Value::Str(s.to_string()),
            ScalarValue::Int(i) => Value::Int(*i),
            ScalarValue::Uint(u) => i64::try_from(*u).map_or_else(|_| Value::Other(u.to_string()), Value::Int),
            ScalarValue::Boolean(b) => Value::Bool(*b),
            other => Value::Other(other.to_string()),
        }
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Deleted => f.write_str("(deleted)"),
            Value::Other(o) => f.write_str(o),
        }
    }
}

/// One field set (or deleted) by a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct Write {
    /// The table (`labor`, `reviews`, `checkins` …).
    pub table: String,
    /// The record's id within the table.
    pub record: String,
    pub field: String,
    /// What it was set to.
    pub value: Value,
}

/// A change, decoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeInfo {
    /// The change hash, hex.
    pub hash: String,
    /// The Automerge actor that made it, hex.
    pub actor: String,
    /// Its sequence number among the actor's changes.
    pub seq: u64,
    /// The making device's clock, milliseconds since the epoch (0 for the genesis).
    pub time_ms: i64,
    /// The changes it builds on, hex.
    pub deps: Vec<String>,
    /// Its writes, in order.
    pub writes: Vec<Write>,
}

/// The tables of one document by the object id its genesis gave them.
#[derive(Debug, Clone)]
pub(crate) struct Tables {
    by_op: HashMap<(u64, ActorId), String>,
    genesis: ChangeHash,
    /// The kind of document, which says which tables live inside others ([`doc::added_tables`]).
    kind: crate::ids::DocKind,
}

impl Tables {
    /// The tables of `id`, read from its genesis change (kept, see [`genesis`]).
    pub(crate) fn of(id: &DocId) -> Tables {
        genesis(id).1.clone()
    }

    /// Builds the tables from a freshly made genesis.
    fn read(g: &automerge::Automerge, kind: crate::ids::DocKind) -> Tables {
        let change = g.get_changes(&[]).into_iter().next().expect("a genesis has one change");
        let genesis = change.hash();
        let expanded = change.decode();
        let start = expanded.start_op.get();
        let mut by_op = HashMap::new();
        for (i, op) in expanded.operations.iter().enumerate() {
            if let (OpType::Make(_), Key::Map(name)) = (&op.action, &op.key) {
                by_op.insert((start + i as u64, expanded.actor_id.clone()), name.to_string());
            }
        }
        Tables { by_op, genesis, kind }
    }

    /// The names of the tables.
    pub(crate) fn names(&self) -> Vec<String> {
        let mut n: Vec<String> = self.by_op.values().cloned().collect();
        n.sort();
        n
    }

    /// The hash of the document's genesis change.
    pub(crate) fn genesis(&self) -> ChangeHash {
        self.genesis
    }

    /// The table an object id names.
    pub(crate) fn table(&self, obj: &ObjectId) -> Option<&str> {
        match obj {
            ObjectId::Id(OpId(counter, actor)) => self.by_op.get(&(*counter, actor.clone())).map(String::as_str),
            ObjectId::Root => None,
        }
    }
}

/// Genesis documents and their tables, by document, for the documents seen lately.
///
/// Decision (2026-11-30): the server made the genesis of every pushed document again for each
/// batch (its tables name what a change writes, and a new document starts from it): SHA-256, an
/// Automerge commit and decoding it, 7.8 % of the push writer's CPU on hot one-entry pushes. A
/// genesis depends on the document id alone and never changes, so it is kept; the map is
/// emptied when it reaches [`GENESES_KEPT`], which bounds it (a few KiB a document).
static GENESES: Mutex<Option<HashMap<DocId, Genesis>>> = Mutex::new(None);

/// A genesis document and its tables.
type Genesis = Arc<(automerge::Automerge, Tables)>;

/// Documents whose genesis is kept at most.
const GENESES_KEPT: usize = 4096;

/// The genesis document of `id` with its tables, made once and kept.
pub(crate) fn genesis(id: &DocId) -> Genesis {
    let found = GENESES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(|m| m.get(id).cloned());
    if let Some(g) = found {
        return g;
    }
    // Made outside the lock: two threads may both make it, and either copy is the same.
    let doc = doc::genesis(id);
    let tables = Tables::read(&doc, id.kind());
    let made = Arc::new((doc, tables));
    let mut m = GENESES.lock().unwrap_or_else(|e| e.into_inner());
    let m = m.get_or_insert_with(HashMap::new);
    if m.len() >= GENESES_KEPT {
        m.clear();
    }
    m.insert(id.clone(), made.clone());
    made
}

/// The changes in pushed `bytes` whose author the gate asks for (every change but the genesis of
/// `id`, which no one signs), as (hash, actor hex): what a server can resolve before it holds the
/// document. The same split as [`crate::store::Screen::check`] makes, so the same changes.
///
/// Errors: bytes that are not Automerge changes, as text.
pub fn authored(id: &DocId, bytes: &[u8]) -> Result<Vec<(ChangeHash, String)>, String> {
    let genesis = genesis(id).1.genesis;
    Ok(split(bytes)?
        .iter()
        .filter(|c| c.hash() != genesis)
        .map(|c| (c.hash(), c.actor_id().to_hex_string()))
        .collect())
}

/// Decodes a change into what it writes; the genesis writes nothing a rule looks at.
pub(crate) fn decode(tables: &Tables, change: &Change) -> Result<ChangeInfo, Violation> {
    let mut info = ChangeInfo {
        hash: change.hash().to_string(),
        actor: change.actor_id().to_hex_string(),
        seq: change.seq(),
        time_ms: change.timestamp(),
        deps: change.deps().iter().map(|d| d.to_string()).collect(),
        writes: Vec::new(),
    };
    if change.hash() == tables.genesis {
        return Ok(info);
    }
    let expanded = change.decode();
    for op in &expanded.operations {
        let structure = |what: &str| Violation::Structure { what: what.to_string() };
        let table = tables
            .table(&op.obj)
            .ok_or_else(|| structure("an operation outside the tables"))?;
        let Key::Map(key) = &op.key else {
            return Err(structure("a list operation"));
        };
        if op.insert {
            return Err(structure("an insertion"));
        }
        let Some((record, field)) = key.rsplit_once('.') else {
            return Err(structure("a key that is not record.field"));
        };
        let value = match &op.action {
            OpType::Put(v) => Value::from_scalar(v),
            OpType::Delete => Value::Deleted,
            OpType::Make(_) => return Err(structure("a nested object")),
            OpType::Increment(_) => return Err(structure("a counter increment")),
            OpType::MarkBegin(..) | OpType::MarkEnd(_) => return Err(structure("a text mark")),
        };
        let (table, record) = doc::logical(tables.kind, table, record);
        info.writes.push(Write {
            table: table.to_string(),
            record: record.to_string(),
            field: field.to_string(),
            value,
        });
    }
    Ok(info)
}

/// Splits Automerge bytes (changes, or a saved document) into single changes, each verified against
/// its checksum; a saved document is expanded into its changes in causal order.
pub(crate) fn split(bytes: &[u8]) -> Result<Vec<Change>, String> {
    let run = std::panic::AssertUnwindSafe(|| split_unguarded(bytes));
    std::panic::catch_unwind(run).unwrap_or_else(|_| Err("the Automerge decoder failed on these bytes".into()))
}

fn split_unguarded(bytes: &[u8]) -> Result<Vec<Change>, String> {
    let mut out = Vec::new();
    for (kind, chunk) in doc::split_chunks(bytes)? {
        match kind {
            ChunkKind::Change => {
                let change = Change::from_bytes(chunk.to_vec()).map_err(|e| e.to_string())?;
                if change.hash().0[..4] != chunk[4..8] {
                    return Err("a change fails its checksum".into());
                }
                out.push(change);
            }
            ChunkKind::Document => {
                let d = automerge::Automerge::load_with_options(
                    chunk,
                    automerge::LoadOptions::new().on_partial_load(automerge::OnPartialLoad::Error),
                )
                .map_err(|e| e.to_string())?;
                out.extend(d.get_changes(&[]));
            }
        }
    }
    Ok(out)
}

/// Reads fields of records as a document held them at some heads (what an author saw).
pub(crate) struct AtHeads<'a> {
    /// The document (holding at least `heads`).
    pub doc: &'a automerge::Automerge,
    /// The heads to read at.
    pub heads: Vec<ChangeHash>,
    /// The kind of document, which says where added tables live.
    pub kind: crate::ids::DocKind,
}

impl crate::rules::Before for AtHeads<'_> {
    fn get(&self, table: &str, record: &str, field: &str) -> Option<Value> {
        let (table, record) = doc::physical(self.kind, table, record);
        let obj = doc::table(self.doc, table).ok()?;
        let key = format!("{record}.{field}");
        let (value, _) = self.doc.get_at(&obj, key.as_str(), &self.heads).ok()??;
        value.as_scalar().map(Value::from_scalar)
    }

    fn get_now(&self, table: &str, record: &str, field: &str) -> Option<Value> {
        let (table, record) = doc::physical(self.kind, table, record);
        let obj = doc::table(self.doc, table).ok()?;
        let (value, _) = self.doc.get(&obj, format!("{record}.{field}").as_str()).ok()??;
        value.as_scalar().map(Value::from_scalar)
    }

    /// Open as the author saw it, or open in the document as held: on the server that is its copy
    /// with what this batch accepted, so an approval made offline while another phone took a dispute
    /// (which reached the server first) is refused too, not merged into an approved, disputed day.
    fn open_dispute(&self) -> Option<String> {
        if self.heads.is_empty() {
            return None;
        }
        let open = |heads: Option<&[ChangeHash]>| {
            let events = crate::doc::signoff::events(self.doc, heads).ok()?;
            crate::doc::signoff::open_disputes(&events)
                .first()
                .map(|e| e.id.clone())
        };
        open(Some(&self.heads)).or_else(|| open(None))
    }

    fn day_approved(&self) -> bool {
        if self.heads.is_empty() {
            return false;
        }
        // Most days the author saw were never approved: one look at the review actions settles it
        // without reading the whole day as it was.
        let Ok(reviews) = doc::table(self.doc, "reviews") else {
            return false;
        };
        let approved_once = self
            .doc
            .map_range_at(&reviews, .., &self.heads)
            .any(|item| item.key.ends_with(".action") && item.value.clone().into_value().as_str() == Some("approved"));
        if !approved_once {
            return false;
        }
        crate::doc::day::read(self.doc, Some(&self.heads))
            .and_then(|content| crate::doc::day::status(self.doc, &content).map(|s| (content, s)))
            .is_ok_and(|(content, _)| {
                // The last decision (an amendment is not one) says whether the day is locked.
                content
                    .reviews
                    .iter()
                    .rev()
                    .find(|e| e.action != crate::labor::ReviewAction::Amended)
                    .is_some_and(|e| e.action == crate::labor::ReviewAction::Approved)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{SiteId, parse_date};

    #[test]
    fn writes_are_decoded_by_table_record_and_field() {
        let id = DocId::Day(SiteId::new("s").unwrap(), parse_date("2026-12-01").unwrap());
        let tables = Tables::of(&id);
        let mut d = doc::genesis(&id);
        let labor = doc::table(&d, "labor").unwrap();
        let mut tx = d.transaction();
        doc::put(&mut tx, &labor, "L1", "work_days_centi", 100i64).unwrap();
        doc::put(&mut tx, &labor, "L1", "entered_by", "崔贵").unwrap();
        doc::commit(tx);
        let changes = d.get_changes(&[]);
        assert_eq!(changes.len(), 2);
        assert!(decode(&tables, &changes[0]).unwrap().writes.is_empty());
        let info = decode(&tables, &changes[1]).unwrap();
        assert_eq!(
            info.writes,
            vec![
                Write {
                    table: "labor".into(),
                    record: "L1".into(),
                    field: "work_days_centi".into(),
                    value: Value::Int(100)
                },
                Write {
                    table: "labor".into(),
                    record: "L1".into(),
                    field: "entered_by".into(),
                    value: Value::Str("崔贵".into())
                },
            ]
        );
        // A write on the document root (rewriting its id) is not a record write.
        let mut tx = d.transaction();
        automerge::transaction::Transactable::put(&mut tx, automerge::ROOT, "id", "day|x|2026-12-01").unwrap();
        doc::commit(tx);
        let last = d.get_changes(&[]).pop().unwrap();
        assert!(matches!(decode(&tables, &last), Err(Violation::Structure { .. })));
        let bytes = d.save();
        assert_eq!(split(&bytes).unwrap().len(), 3);
    }
}
