//! An offline check of a store's database, reading only: every document loads and its recorded
//! heads are its own, every stored signature verifies, and the projections equal a rebuild from
//! the documents (made in a scratch in-memory database, so the checked one is never written).
//! The server's `sitesync-server check` runs it on its documents; it works on any [`Sql`].

use std::collections::BTreeMap;

use super::projection;
use super::sql::Sql;
use crate::doc::heads_hex;
use crate::error::Result;
use crate::ids::DocId;

/// One thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The document it concerns, where one does (a projection row names its own ids in `what`).
    pub doc: Option<String>,
    /// What is wrong, in a sentence.
    pub what: String,
}

/// What a check covered, and what it found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Documents read.
    pub documents: usize,
    /// Signatures verified.
    pub signatures: usize,
    /// Projected rows compared.
    pub rows: usize,
    /// What is wrong; empty for a healthy store.
    pub problems: Vec<Problem>,
}

/// Checks the store in `db` without writing to it. `Err` only when the database cannot be read at
/// all; everything wrong inside it is a [`Problem`].
pub fn check(db: &dyn Sql) -> Result<Report> {
    let mut report = Report::default();
    let mut scratch = rusqlite::Connection::open_in_memory()?;
    super::schema::migrate(&mut scratch)?;
    let documents = db.query("SELECT doc_id, heads FROM documents ORDER BY doc_id", &[])?;
    for row in documents {
        let key = row.text(0)?;
        let recorded = row.text(1)?;
        report.documents += 1;
        let problem = |what: String| Problem {
            doc: Some(key.clone()),
            what,
        };
        let id: DocId = match key.parse() {
            Ok(id) => id,
            Err(e) => {
                report.problems.push(problem(format!("not a document id: {e}")));
                continue;
            }
        };
        let doc = match super::load_from_disk(db, &key) {
            Ok(Some((doc, _))) => doc,
            Ok(None) => continue,
            Err(e) => {
                report.problems.push(problem(format!("does not load: {e}")));
                continue;
            }
        };
        let mut actual = heads_hex(&doc.get_heads());
        actual.sort();
        let mut stored: Vec<&str> = recorded.split(',').filter(|h| !h.is_empty()).collect();
        stored.sort();
        if actual != stored {
            report.problems.push(problem(format!(
                "recorded heads {} are not the document's heads {}",
                stored.join(","),
                actual.join(",")
            )));
        }
        if let Err(e) = projection::project(&scratch, &id, &doc) {
            report.problems.push(problem(format!("cannot be projected: {e}")));
        }
    }
    for row in db.query("SELECT hash, doc_id, key, sig FROM signatures ORDER BY hash", &[])? {
        report.signatures += 1;
        let (hash, doc) = (row.text(0)?, row.text(1)?);
        let sig = (|| {
            Some(crate::signing::ChangeSig {
                hash: hex::decode(&hash).ok()?.try_into().ok()?,
                key: row.bytes(2).ok()?.try_into().ok()?,
                sig: row.bytes(3).ok()?,
            })
        })();
        if !sig.is_some_and(|s| s.verifies(&doc)) {
            report.problems.push(Problem {
                doc: Some(doc),
                what: format!("the signature of change {hash} does not verify"),
            });
        }
    }
    // Rows as multisets: a rebuild may order rows with equal leading columns differently.
    let mut want: BTreeMap<String, i64> = BTreeMap::new();
    for r in projection::dump(&scratch)? {
        *want.entry(r).or_default() += 1;
    }
    for r in projection::dump(db)? {
        report.rows += 1;
        *want.entry(r).or_default() -= 1;
    }
    for (row, n) in want {
        let what = match n {
            0 => continue,
            n if n > 0 => format!("projection row missing (a rebuild has it): {row}"),
            _ => format!("projection row not in a rebuild from the documents: {row}"),
        };
        report.problems.push(Problem { doc: None, what });
    }
    Ok(report)
}
