//! A crafted client: documents whose records are written straight into their Automerge tables,
//! skipping every check an honest phone makes, the way a buggy or hostile client would send them.
//! The genesis is rebuilt here from its definition (`client-core/src/doc.rs`), not borrowed from the
//! library, as another implementation would have to; [`genesis`] is checked against the hash the
//! library pins.

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutoCommit, Automerge, ObjType, ROOT, ReadDoc, ScalarValue};
use sha2::{Digest, Sha256};
use sitesync_core::ids::{DocId, DocKind};

/// The tables of each kind of document, as every genesis creates them.
fn tables(kind: DocKind) -> &'static [&'static str] {
    match kind {
        DocKind::Site => &["info", "crews", "workers", "work_items"],
        DocKind::Day => &["day", "labor", "progress", "delays", "reviews"],
        DocKind::Okr => &["cycle", "objectives", "key_results", "checkins", "reviews"],
    }
}

/// The genesis of `id`: the same bytes a phone makes, whatever the id holds (a date in the year
/// 10,000 included).
pub fn genesis(id: &str, kind: DocKind) -> Automerge {
    let digest = Sha256::digest(format!("sitesync genesis v1\0{id}").as_bytes());
    let mut doc = AutoCommit::new().with_actor(ActorId::from(&digest[..16]));
    doc.put(ROOT, "schema", 1).unwrap();
    doc.put(ROOT, "kind", kind.as_str()).unwrap();
    doc.put(ROOT, "id", id).unwrap();
    for table in tables(kind) {
        doc.put_object(ROOT, *table, ObjType::Map).unwrap();
    }
    doc.commit_with(CommitOptions::default().with_time(0));
    doc.document().clone()
}

/// A document being crafted.
pub struct Crafted {
    doc: AutoCommit,
}

impl Crafted {
    /// A new document `id` (any text, as the wire carries it), from its genesis.
    pub fn new(id: &str, kind: DocKind) -> Crafted {
        Crafted {
            doc: AutoCommit::load(&genesis(id, kind).save()).unwrap(),
        }
    }

    /// A new day document.
    pub fn day(id: &DocId) -> Crafted {
        Crafted::new(&id.to_string(), id.kind())
    }

    /// Writes one field of one record, as the library lays records out (`"{record}.{field}"`).
    pub fn put(&mut self, table: &str, record: &str, field: &str, value: impl Into<ScalarValue>) -> &mut Self {
        let obj = match self.doc.get(ROOT, table).unwrap() {
            Some((_, obj)) => obj,
            None => panic!("no table {table}"),
        };
        self.doc.put(&obj, format!("{record}.{field}"), value.into()).unwrap();
        self
    }

    /// Writes a whole labor line, every field the phone writes, with the values given.
    pub fn labor(&mut self, line: &Line) -> &mut Self {
        let id = line.id.as_str();
        self.put("labor", id, "worker", line.worker.as_str())
            .put("labor", id, "work_item", line.work_item.as_str())
            .put("labor", id, "work_days_centi", line.work_days_centi)
            .put("labor", id, "hours_min", line.hours_min)
            .put("labor", id, "overtime_min", 0i64)
            .put("labor", id, "kind", "day_labor")
            .put("labor", id, "rate_fen", line.rate_fen)
            .put("labor", id, "overtime_rate_fen", line.overtime_rate_fen)
            .put("labor", id, "note", "")
            // No name: who wrote the line is the device whose key signs it, and a name that is not
            // that device's user's would be refused as forged before the values are read.
            .put("labor", id, "entered_by", "")
            .put("labor", id, "deleted", false)
    }

    /// Everything, as one saved document (what a first push carries).
    pub fn bytes(&mut self) -> Vec<u8> {
        self.doc.commit();
        self.doc.save()
    }
}

/// A labor line as a crafted client writes it.
#[derive(Debug, Clone)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct Line {
    /// The record id.
    pub id: String,
    pub worker: String,
    /// Work item id.
    pub work_item: String,
    /// Work-days in hundredths.
    pub work_days_centi: i64,
    /// Hours in minutes.
    pub hours_min: i64,
    /// Day rate in fen.
    pub rate_fen: i64,
    /// Overtime rate in fen.
    pub overtime_rate_fen: i64,
}

impl Line {
    /// An honest-looking line of `worker` on `work_item` in the day `id`, under its derived id: a
    /// day at ¥430 and 8 hours.
    pub fn of(id: &DocId, worker: &str, work_item: &str) -> Line {
        let DocId::Day(site, date) = id else {
            panic!("{id} is not a day")
        };
        let line =
            sitesync_core::ids::LineId::labor(site, *date, &worker.parse().unwrap(), &work_item.parse().unwrap());
        Line {
            id: line.to_string(),
            worker: worker.into(),
            work_item: work_item.into(),
            work_days_centi: 100,
            hours_min: 480,
            rate_fen: 43_000,
            overtime_rate_fen: 8_062,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crafted_genesis_is_the_phones() {
        // The hash `client-core/src/doc.rs` pins in `genesis_is_stable`.
        let heads = genesis("day|site-hz-01|2026-09-01", DocKind::Day).get_heads();
        assert_eq!(
            heads[0].to_string(),
            "76633e8c17cc47a46171470661bc3e90698755d4e7cf3c67e6bdfb913c469604"
        );
    }
}
