//! How records live inside Automerge documents.
//!
//! Decision (2026-11-25): every record is stored *flat*, as scalar values under keys
//! `"{record id}.{field}"` in one of a few top-level maps ("tables") that every replica shares. Two
//! phones that enter the same line offline therefore write the same keys of the same map: Automerge
//! merges them field by field, keeps a deterministic winner everywhere, and keeps the losing values
//! readable (`get_all`) so the API can show them as conflicts. Nested per-record maps would not do:
//! two concurrent `put_object`s on one key leave two maps, and the loser's fields vanish from view.
//!
//! The tables themselves are created by a *genesis change* that is byte-identical on every device:
//! made by an actor derived from the document id, at time 0, with no dependencies. Its hash is the
//! same everywhere, so every replica of "the log of site S on date D" shares the same table objects
//! no matter who created the document first. The genesis must never change: `genesis_is_stable`
//! pins its hash.

pub(crate) mod day;
pub(crate) mod okr;
pub(crate) mod pay;
pub(crate) mod signoff;
pub(crate) mod site;

use std::collections::BTreeMap;

use automerge::transaction::{CommitOptions, Transactable, Transaction};
use automerge::{ActorId, AutoCommit, Automerge, ChangeHash, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::ids::{DocId, DocKind};
use crate::validate::Invalid;

/// The document layout version written in every genesis.
const SCHEMA: i64 = 1;

/// The tables each kind of document holds, created once in the genesis change.
pub(crate) fn tables(kind: DocKind) -> &'static [&'static str] {
    match kind {
        DocKind::Site => &["info", "crews", "workers", "work_items"],
        DocKind::Day => &["day", "labor", "progress", "delays", "reviews"],
        DocKind::Okr => &["cycle", "objectives", "key_results", "checkins", "reviews"],
    }
}

/// A table added after the genesis was pinned. The genesis can never gain a table (its hash is the
/// document's identity), and a table object made later by two phones at once would be two objects,
/// one of them lost from view; so an added table lives inside a genesis table, its `host`, as
/// records whose ids start with `"{name}:"`. [`crate::changes`] names such writes by the added
/// table, so rules and checks see `pending_workers`, never `info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AddedTable {
    /// The table's name, as rules and checks see it.
    pub name: &'static str,
    /// The genesis table its records live in.
    pub host: &'static str,
}

/// The tables added to each kind of document after its genesis.
pub(crate) fn added_tables(kind: DocKind) -> &'static [AddedTable] {
    match kind {
        DocKind::Site => &[
            AddedTable {
                name: "pending_workers",
                host: "info",
            },
            AddedTable {
                name: "rates",
                host: "info",
            },
        ],
        DocKind::Day | DocKind::Okr => &[],
    }
}

/// The (table, record) a write names, given the genesis table it was made in and its record id:
/// a record of an added table is named by that table and its own id.
pub(crate) fn logical<'h, 'r>(kind: DocKind, host: &'h str, record: &'r str) -> (&'h str, &'r str) {
    for t in added_tables(kind) {
        if t.host == host
            && let Some(rest) = record.strip_prefix(t.name).and_then(|r| r.strip_prefix(':'))
        {
            return (t.name, rest);
        }
    }
    (host, record)
}

/// The genesis table and record id where `record` of `table` is stored (the inverse of [`logical`]).
pub(crate) fn physical(kind: DocKind, table: &str, record: &str) -> (&'static str, String) {
    if let Some(t) = added_tables(kind).iter().find(|t| t.name == table) {
        return (t.host, format!("{}:{record}", t.name));
    }
    match tables(kind).iter().find(|t| **t == table) {
        Some(t) => (t, record.to_string()),
        None => ("", record.to_string()),
    }
}

/// Every record of an added table as it is now, by its own id.
pub(crate) fn read_added(doc: &Automerge, kind: DocKind, name: &str) -> Result<BTreeMap<String, Record>> {
    let (host, _) = physical(kind, name, "");
    let obj = table(doc, host)?;
    let prefix = format!("{name}:");
    let mut out = BTreeMap::new();
    for (id, r) in read_table(doc, &obj, None)? {
        if let Some(own) = id.strip_prefix(&prefix) {
            out.insert(own.to_string(), r);
        }
    }
    Ok(out)
}

/// The deterministic genesis of `id`: the same bytes on every device, forever.
pub(crate) fn genesis(id: &DocId) -> Automerge {
    let digest = Sha256::digest(format!("sitesync genesis v1\0{id}").as_bytes());
    let mut doc = AutoCommit::new().with_actor(ActorId::from(&digest[..16]));
    doc.put(ROOT, "schema", SCHEMA).expect("put on a fresh document");
    doc.put(ROOT, "kind", id.kind().as_str())
        .expect("put on a fresh document");
    doc.put(ROOT, "id", id.to_string()).expect("put on a fresh document");
    for table in tables(id.kind()) {
        doc.put_object(ROOT, *table, ObjType::Map)
            .expect("put on a fresh document");
    }
    doc.commit_with(CommitOptions::default().with_time(0));
    doc.document().clone()
}

/// The object id of a table, which every genesis creates.
pub(crate) fn table(doc: &impl ReadDoc, name: &str) -> Result<ObjId> {
    match doc.get(ROOT, name)? {
        Some((Value::Object(ObjType::Map), id)) => Ok(id),
        _ => Err(Error::CorruptDocument {
            doc: format!("{:?}", doc.get(ROOT, "id").ok().flatten().map(|v| v.0.to_string())),
            reason: format!("table {name} is missing"),
        }),
    }
}

/// Commits `tx` stamped with the wall clock (milliseconds), the convention other Automerge clients use.
pub(crate) fn commit(tx: Transaction<'_>) -> Option<ChangeHash> {
    let now = chrono::Utc::now().timestamp_millis();
    tx.commit_with(CommitOptions::default().with_time(now)).0
}

/// One field of a record: the value every replica agrees on, plus concurrent values that lost.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Field {
    /// The winning value.
    pub value: ScalarValue,
    /// Distinct concurrent values that lost, kept for review.
    pub others: Vec<ScalarValue>,
}

/// A record read from a table: its fields by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Record {
    /// Fields by name.
    pub fields: BTreeMap<String, Field>,
}

impl Record {
    /// A text field, or "" when absent.
    pub fn str(&self, field: &str) -> String {
        match self.fields.get(field).map(|f| &f.value) {
            Some(ScalarValue::Str(s)) => s.to_string(),
            _ => String::new(),
        }
    }

    /// An integer field, or 0 when absent.
    pub fn int(&self, field: &str) -> i64 {
        match self.fields.get(field).map(|f| &f.value) {
            Some(ScalarValue::Int(i)) => *i,
            Some(ScalarValue::Uint(u)) => i64::try_from(*u).unwrap_or(i64::MAX),
            _ => 0,
        }
    }

    /// A boolean field, or `default` when absent.
    pub fn bool(&self, field: &str, default: bool) -> bool {
        match self.fields.get(field).map(|f| &f.value) {
            Some(ScalarValue::Boolean(b)) => *b,
            _ => default,
        }
    }

    /// An integer field that must be present and hold an integer (what a pushed record is held to).
    pub fn int_strict(&self, field: &'static str) -> std::result::Result<i64, Invalid> {
        match self.fields.get(field).map(|f| &f.value) {
            Some(ScalarValue::Int(i)) => Ok(*i),
            Some(ScalarValue::Uint(u)) => i64::try_from(*u).map_err(|_| Invalid::Overflow { field }),
            Some(other) => Err(malformed(field, format!("{other} is not an integer"))),
            None => Err(malformed(field, "missing".into())),
        }
    }

    /// A text field that must be present and hold text.
    pub fn str_strict(&self, field: &'static str) -> std::result::Result<String, Invalid> {
        match self.fields.get(field).map(|f| &f.value) {
            Some(ScalarValue::Str(s)) => Ok(s.to_string()),
            Some(other) => Err(malformed(field, format!("{other} is not text"))),
            None => Err(malformed(field, "missing".into())),
        }
    }

    /// A boolean field that must be present and hold a boolean.
    pub fn bool_strict(&self, field: &'static str) -> std::result::Result<bool, Invalid> {
        match self.fields.get(field).map(|f| &f.value) {
            Some(ScalarValue::Boolean(b)) => Ok(*b),
            Some(other) => Err(malformed(field, format!("{other} is not true or false"))),
            None => Err(malformed(field, "missing".into())),
        }
    }

    /// Fields with concurrent losing values, as (field, chosen, others) text.
    pub fn conflicts(&self, fields: &[&str]) -> Vec<crate::labor::Conflict> {
        fields
            .iter()
            .filter_map(|name| {
                let f = self.fields.get(*name)?;
                (!f.others.is_empty()).then(|| crate::labor::Conflict {
                    field: (*name).to_string(),
                    chosen: scalar_text(&f.value),
                    others: f.others.iter().map(scalar_text).collect(),
                })
            })
            .collect()
    }
}

fn malformed(field: &'static str, reason: String) -> Invalid {
    Invalid::Malformed { field, reason }
}

/// A scalar as a person reads it.
pub(crate) fn scalar_text(v: &ScalarValue) -> String {
    match v {
        ScalarValue::Str(s) => s.to_string(),
        ScalarValue::Int(i) => i.to_string(),
        ScalarValue::Uint(u) => u.to_string(),
        ScalarValue::Boolean(b) => b.to_string(),
        other => other.to_string(),
    }
}

/// Reads every record of a table, now or as of `heads`.
pub(crate) fn read_table(
    doc: &Automerge,
    obj: &ObjId,
    heads: Option<&[ChangeHash]>,
) -> Result<BTreeMap<String, Record>> {
    let mut out: BTreeMap<String, Record> = BTreeMap::new();
    let items: Vec<_> = match heads {
        Some(h) => doc
            .map_range_at(obj, .., h)
            .map(|i| (i.key.into_owned(), i.value.into_value(), i.conflict))
            .collect(),
        None => doc
            .map_range(obj, ..)
            .map(|i| (i.key.into_owned(), i.value.into_value(), i.conflict))
            .collect(),
    };
    for (key, value, conflict) in items {
        add_field(doc, obj, heads, &mut out, key, value, conflict)?;
    }
    Ok(out)
}

/// Reads only the named records of a table as they are now, exactly as [`read_table`] reads them
/// (a record with no field is absent). A record's keys are one contiguous run of the map, so this
/// costs the records read rather than the table: the push gate reads the one line a change wrote
/// instead of the day's hundreds (`read_table` was 7.5% of the server's CPU on one-entry pushes,
/// 2026-11-30).
pub(crate) fn read_records<'a>(
    doc: &Automerge,
    obj: &ObjId,
    records: impl IntoIterator<Item = &'a str>,
) -> Result<BTreeMap<String, Record>> {
    let mut out: BTreeMap<String, Record> = BTreeMap::new();
    for rec in records {
        // Every key of `rec` starts with "rec." and so sorts in ["rec.", "rec/"); keys of a record
        // whose id extends this one ("rec.x.field") sort there too and are left to their own record.
        let items: Vec<_> = doc
            .map_range(obj, format!("{rec}.")..format!("{rec}/"))
            .filter(|i| i.key.rsplit_once('.').is_some_and(|(r, _)| r == rec))
            .map(|i| (i.key.into_owned(), i.value.into_value(), i.conflict))
            .collect();
        for (key, value, conflict) in items {
            add_field(doc, obj, None, &mut out, key, value, conflict)?;
        }
    }
    Ok(out)
}

/// Adds one map entry to the record it belongs to, with the distinct concurrent values that lost.
fn add_field(
    doc: &Automerge,
    obj: &ObjId,
    heads: Option<&[ChangeHash]>,
    out: &mut BTreeMap<String, Record>,
    key: String,
    value: Value<'_>,
    conflict: bool,
) -> Result<()> {
    let Some((rec, field)) = key.rsplit_once('.') else {
        return Ok(());
    };
    let Some(value) = value.as_scalar().cloned() else {
        return Ok(());
    };
    let mut others = Vec::new();
    if conflict {
        let all = match heads {
            Some(h) => doc.get_all_at(obj, key.as_str(), h)?,
            None => doc.get_all(obj, key.as_str())?,
        };
        for (v, _) in all {
            if let Some(s) = v.as_scalar()
                && *s != value
                && !others.contains(s)
            {
                others.push(s.clone());
            }
        }
    }
    out.entry(rec.to_string())
        .or_default()
        .fields
        .insert(field.to_string(), Field { value, others });
    Ok(())
}

/// Writes a field unless it already holds exactly that value with no conflict, so that re-importing or
/// re-saving unchanged data creates no operations (and no spurious conflicts on other replicas).
pub(crate) fn put(
    tx: &mut Transaction<'_>,
    obj: &ObjId,
    rec: &str,
    field: &str,
    value: impl Into<ScalarValue>,
) -> Result<()> {
    let key = format!("{rec}.{field}");
    let value = value.into();
    let current = tx.get_all(obj, key.as_str())?;
    let same = current.len() == 1 && current[0].0.as_scalar() == Some(&value);
    if !same {
        tx.put(obj, key, value)?;
    }
    Ok(())
}

/// The kinds of chunk in Automerge's binary format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChunkKind {
    /// A whole compressed document (`save()`).
    Document,
    /// One change, plain or deflated (`save_after()` is a run of these).
    Change,
}

/// Splits Automerge bytes into their chunks by the chunk header (magic, checksum, type, LEB128
/// length), refusing anything truncated or unknown, so that a malformed upload is rejected whole
/// instead of being half applied (Automerge's own incremental loader stops silently at bad bytes).
pub(crate) fn split_chunks(mut bytes: &[u8]) -> std::result::Result<Vec<(ChunkKind, &[u8])>, String> {
    const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
    let mut out = Vec::new();
    while !bytes.is_empty() {
        if bytes.len() < 10 || bytes[..4] != MAGIC {
            return Err("not an Automerge chunk".into());
        }
        let kind = match bytes[8] {
            0 => ChunkKind::Document,
            1 | 2 => ChunkKind::Change,
            t => return Err(format!("unsupported chunk type {t}")),
        };
        let (mut len, mut shift, mut i) = (0u64, 0u32, 9usize);
        loop {
            let b = *bytes.get(i).ok_or("truncated chunk header")?;
            len |= u64::from(b & 0x7f).checked_shl(shift).ok_or("chunk length overflows")?;
            i += 1;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 56 {
                return Err("chunk length overflows".into());
            }
        }
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| l.checked_add(i))
            .filter(|&e| e <= bytes.len());
        let end = end.ok_or("truncated chunk")?;
        out.push((kind, &bytes[..end]));
        bytes = &bytes[end..];
    }
    Ok(out)
}

/// Applies Automerge bytes (a saved document, or a run of changes) to `doc`, all or nothing as far
/// as validation goes: every chunk is decoded and checksummed before any is applied (Automerge itself
/// checks only documents' checksums).
///
/// Automerge asserts on some malformed input instead of returning an error (fuzzing found a
/// document that passes its checksum and panics in `Document::reconstruct`, and changes that apply
/// but panic when encoded again); such a panic is caught and answered as malformed bytes, so a
/// hostile peer cannot take down the task that merges. After an `Err`, `doc` may hold part of the
/// bytes: callers drop it and reload from disk.
/// Returns the new changes as Automerge encodes them (`save_after` the heads before), which is what
/// the store writes next: encoding them here, where a panic is caught, also refuses the changes that
/// Automerge takes in but cannot encode again.
pub(crate) fn apply_bytes(doc: &mut Automerge, bytes: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let apply = std::panic::AssertUnwindSafe(|| apply_bytes_unguarded(doc, bytes));
    std::panic::catch_unwind(apply).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(format!("the Automerge decoder failed on these bytes: {what}"))
    })
}

fn apply_bytes_unguarded(doc: &mut Automerge, bytes: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let mut changes = Vec::new();
    let mut docs = Vec::new();
    for (kind, chunk) in split_chunks(bytes)? {
        match kind {
            ChunkKind::Change => {
                let change = automerge::Change::from_bytes(chunk.to_vec()).map_err(|e| e.to_string())?;
                // Automerge verifies a document's checksum when it loads one, but not a change's:
                // a change damaged in a way that still parses would be applied as another change.
                if change.hash().0[..4] != chunk[4..8] {
                    return Err("a change fails its checksum".into());
                }
                changes.push(change)
            }
            ChunkKind::Document => docs.push(
                Automerge::load_with_options(
                    chunk,
                    automerge::LoadOptions::new().on_partial_load(automerge::OnPartialLoad::Error),
                )
                .map_err(|e| e.to_string())?,
            ),
        }
    }
    let before = doc.get_heads();
    for mut other in docs {
        doc.merge(&mut other).map_err(|e| e.to_string())?;
    }
    doc.apply_changes(changes).map_err(|e| e.to_string())?;
    // Automerge takes in some malformed changes that it then cannot encode again: saving them
    // panics (fuzzing found one that `save_after` trips on, in `ChangeCollector`). The store saves
    // exactly this after every merge, so encode the new changes now, where a panic is caught, and
    // hand the bytes to the store so that it does not encode them twice.
    Ok(doc.save_after(&before))
}

/// Checks that a document is the one `id` names: its genesis wrote `id`, and no other genesis was
/// merged in (bytes of another document would collide on every table).
pub(crate) fn check_identity(doc: &Automerge, id: &DocId) -> std::result::Result<(), String> {
    let want = id.to_string();
    let ids = doc.get_all(ROOT, "id").map_err(|e| e.to_string())?;
    match ids.as_slice() {
        [(v, _)] if v.as_str() == Some(want.as_str()) => Ok(()),
        _ => Err(format!("the changes belong to another document than {want}")),
    }
}

/// Writes `false` to a boolean field as a real operation even when it already is `false`.
///
/// Automerge skips a put of the value a key already holds, so an edit that "writes" `deleted = false`
/// on a live line would leave no trace, and a concurrent delete would win without a conflict.
/// Writing `true` then `false` in the same change leaves one visible `false` that supersedes what
/// this replica had seen, and therefore conflicts with a concurrent `true`.
pub(crate) fn assert_false(tx: &mut Transaction<'_>, obj: &ObjId, rec: &str, field: &str) -> Result<()> {
    let key = format!("{rec}.{field}");
    tx.put(obj, key.as_str(), true)?;
    tx.put(obj, key, false)?;
    Ok(())
}

/// Encodes heads as hex strings.
pub(crate) fn heads_hex(heads: &[ChangeHash]) -> Vec<String> {
    heads.iter().map(|h| h.to_string()).collect()
}

/// Decodes hex heads; `None` if any is malformed.
pub(crate) fn heads_parse(hex: &[String]) -> Option<Vec<ChangeHash>> {
    hex.iter().map(|h| h.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{SiteId, parse_date};

    fn day() -> DocId {
        DocId::Day(SiteId::new("site-hz-01").unwrap(), parse_date("2026-09-01").unwrap())
    }

    #[test]
    fn genesis_is_stable() {
        // If this hash changes, documents created by older builds no longer share their tables with
        // new ones: never change the genesis.
        let heads = genesis(&day()).get_heads();
        assert_eq!(
            heads_hex(&heads),
            vec!["76633e8c17cc47a46171470661bc3e90698755d4e7cf3c67e6bdfb913c469604".to_string()]
        );
    }

    #[test]
    fn changes_that_fail_their_checksum_are_refused() {
        let g = genesis(&day());
        let mut doc = g.fork();
        let labor = table(&doc, "labor").unwrap();
        let mut tx = doc.transaction();
        put(&mut tx, &labor, "L1", "note", "abcdefgh").unwrap();
        commit(tx);
        let chunk = doc.save_after(&g.get_heads());
        let mut target = g.fork();
        apply_bytes(&mut target, &chunk).unwrap();
        assert_eq!(target.get_heads(), doc.get_heads());
        // The note's text, changed in transit: it still parses, as a change nobody made.
        let at = chunk.windows(8).position(|w| w == b"abcdefgh").unwrap();
        let mut damaged = chunk.clone();
        damaged[at] = b'x';
        let mut target = g.fork();
        let err = apply_bytes(&mut target, &damaged).unwrap_err();
        assert!(err.contains("checksum"), "{err}");
        assert_eq!(target.get_heads(), g.get_heads());
        let mut bad_sum = chunk;
        bad_sum[4] ^= 1;
        assert!(apply_bytes(&mut g.fork(), &bad_sum).is_err());
    }

    #[test]
    fn concurrent_records_merge_field_by_field_and_keep_losers() {
        let g = genesis(&day());
        let mut a = g.fork();
        let mut b = g.fork();
        for (doc, v) in [(&mut a, 100i64), (&mut b, 50)] {
            let labor = table(doc, "labor").unwrap();
            let mut tx = doc.transaction();
            put(&mut tx, &labor, "L1", "work_days_centi", v).unwrap();
            put(&mut tx, &labor, "L1", "note", if v == 100 { "a" } else { "" }).unwrap();
            commit(tx);
        }
        a.merge(&mut b).unwrap();
        b.merge(&mut a.clone()).unwrap();
        let labor = table(&a, "labor").unwrap();
        let ra = read_table(&a, &labor, None).unwrap();
        let rb = read_table(&b, &table(&b, "labor").unwrap(), None).unwrap();
        assert_eq!(ra, rb);
        let rec = &ra["L1"];
        assert_eq!(rec.fields["work_days_centi"].others.len(), 1);
        assert_eq!(rec.conflicts(&["work_days_centi", "note"]).len(), 2);
    }

    #[test]
    fn named_records_read_as_the_whole_table_reads_them() {
        let g = genesis(&day());
        let mut a = g.fork();
        let mut b = g.fork();
        // Ids that share prefixes, contain the separator, or sort next to it.
        let ids = ["L", "L1", "L1.x", "L1-", "L10", "L/", "M", "中"];
        for (doc, v) in [(&mut a, 1i64), (&mut b, 2)] {
            let labor = table(doc, "labor").unwrap();
            let mut tx = doc.transaction();
            for id in ids {
                put(&mut tx, &labor, id, "work_days_centi", v).unwrap();
                put(&mut tx, &labor, id, "note", id).unwrap();
            }
            commit(tx);
        }
        a.merge(&mut b).unwrap();
        let labor = table(&a, "labor").unwrap();
        let all = read_table(&a, &labor, None).unwrap();
        for id in ids.into_iter().chain(["absent", "L1."]) {
            let one = read_records(&a, &labor, [id]).unwrap();
            assert_eq!(one.get(id), all.get(id), "{id}");
            assert!(one.len() <= 1, "{id}: {one:?}");
        }
        assert_eq!(read_records(&a, &labor, ids).unwrap(), all);
    }
}
