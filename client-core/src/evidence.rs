//! Evidence files: a site-day (or a worker's month) as one self-contained file that anyone can
//! check offline, with no server — every change of the documents, the signature each device made
//! over each change, the devices' enrolment records and keys, and a signature by the server over
//! all of it.
//!
//! A device's signature proves the device made the change (who entered every value, who approved);
//! the server's signature proves the enrolment records (which user a device belonged to) and that
//! nothing was added, removed or altered since the server wrote the file. The file is JSON with no
//! free whitespace outside the signed part, so that a byte changed anywhere either breaks the JSON,
//! names an unknown field or version, or fails a signature.
//!
//! Length: a quarter of the file is its tests, which flip every byte of a sealed file.

use std::collections::{BTreeMap, HashMap};

use automerge::{Automerge, ChangeHash, ObjId, ReadDoc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::changes::{Tables, Value};
use crate::doc;
use crate::ids::DocId;
use crate::signing::{ChangeSig, actor_fingerprint, fingerprint, verify};

/// The file format version this build writes and reads.
pub const FORMAT: u32 = 1;

/// What the file is evidence of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub enum Subject {
    /// One site's log of one day.
    SiteDay { site: String, date: String },
    /// Every line of one worker in one month.
    WorkerMonth {
        worker: String,
        /// `YYYY-MM`.
        month: String,
    },
}

/// A device as the server enrolled it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct Device {
    /// The device (`server` for the server itself).
    pub device: String,
    pub user_id: String,
    /// The user's name.
    pub user_name: String,
    /// The user's role.
    pub role: String,
    /// When it was enrolled (RFC 3339).
    pub enrolled_at: String,
    /// When it was revoked, if it was.
    pub revoked_at: Option<String>,
    /// Its public keys, hex.
    pub keys: Vec<String>,
}

/// One change's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// The change hash, hex.
    pub hash: String,
    /// The signer's public key, hex.
    pub key: String,
    /// The signature, hex.
    pub sig: String,
    /// For changes the server made for a signed-in user: that user.
    pub for_user: Option<String>,
    /// When the server received the change (RFC 3339), if recorded.
    pub received_at: Option<String>,
}

/// One document and all its changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    /// The document id.
    pub doc: String,
    /// Every change, hex of its bytes, in causal order.
    pub changes: Vec<String>,
    /// A signature for every change but the genesis.
    pub signatures: Vec<Signature>,
}

/// The signed part of the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct Payload {
    /// What it is evidence of.
    pub subject: Subject,
    /// When the server wrote it (RFC 3339).
    pub generated_at: String,
    /// The server's public key, hex (also the key of the outer signature).
    pub server_key: String,
    /// Every device whose key signed a change in the file, and the server.
    pub devices: Vec<Device>,
    pub documents: Vec<Document>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<'a> {
    sitesync_evidence: u32,
    #[serde(borrow)]
    payload: &'a RawValue,
    signature: String,
}

/// Why a file does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EvidenceError {
    /// Not an evidence file (or one damaged so that it no longer reads as one).
    #[error("not a sitesync evidence file: {0}")]
    Malformed(String),
    /// A format this build does not know.
    #[error("evidence format {0} is not {FORMAT}")]
    Version(u32),
    /// The server's signature over the file does not verify: something in it was changed.
    #[error("the server's signature over the file does not verify: the file was changed after the server wrote it")]
    ServerSignature,
    /// The server key is not the one the reader trusts.
    #[error("the file was signed by server key {found}, not the expected {expected}")]
    WrongServer {
        /// Fingerprint of the key in the file.
        found: String,
        /// Fingerprint of the expected key.
        expected: String,
    },
    /// Things inside that do not verify, each said exactly.
    #[error("{} problem(s): {}", .0.len(), .0.join("; "))]
    Problems(Vec<String>),
}

/// Writes a payload as an evidence file, signed by `sign` (the server's key).
pub fn seal(payload: &Payload, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let body = serde_json::to_string(payload).expect("evidence payloads always serialize");
    let signature = hex::encode(sign(body.as_bytes()));
    format!("{{\"sitesync_evidence\":{FORMAT},\"payload\":{body},\"signature\":\"{signature}\"}}\n")
}

/// Who entered one value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct FieldAuthor {
    pub field: String,
    /// Its value as the document holds it.
    pub value: String,
    /// Who wrote that value: user name, user id and device.
    pub by: String,
    /// The writing device's clock when it wrote it (RFC 3339).
    pub at: String,
}

/// One line and who entered each of its values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct LineReport {
    pub doc: String,
    /// `labor` or `progress`.
    pub table: String,
    /// The line id.
    pub line: String,
    /// Each field with its author.
    pub fields: Vec<FieldAuthor>,
}

/// A review event and who made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct ReviewReport {
    pub doc: String,
    /// `submitted`, `approved`, `rejected`, `amended`.
    pub action: String,
    /// Who, as proven by the signature.
    pub by: String,
    /// When, by the signing device's clock.
    pub at: String,
}

/// What a verified file shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct Report {
    /// What it is evidence of.
    pub subject: Subject,
    /// Fingerprint of the server key that signed it (compare it with the server's own).
    pub server_key: String,
    pub changes: usize,
    /// Every line (of the worker, for a worker's month).
    pub lines: Vec<LineReport>,
    /// The review trail of each day.
    pub reviews: Vec<ReviewReport>,
}

fn unhex32(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok().map(|()| out)
}

/// Checks an evidence file offline and says who entered and who approved every value, or exactly
/// what does not verify. `server_key`: the key the reader trusts, if it knows one.
pub fn verify_file(text: &str, server_key: Option<[u8; 32]>) -> Result<Report, EvidenceError> {
    let env: Envelope<'_> = serde_json::from_str(text).map_err(|e| EvidenceError::Malformed(e.to_string()))?;
    if env.sitesync_evidence != FORMAT {
        return Err(EvidenceError::Version(env.sitesync_evidence));
    }
    let payload: Payload =
        serde_json::from_str(env.payload.get()).map_err(|e| EvidenceError::Malformed(e.to_string()))?;
    let key = unhex32(&payload.server_key)
        .ok_or_else(|| EvidenceError::Malformed("server key is not 32 bytes of hex".into()))?;
    let sig = hex::decode(&env.signature).map_err(|_| EvidenceError::ServerSignature)?;
    if !verify(&key, env.payload.get().as_bytes(), &sig) {
        return Err(EvidenceError::ServerSignature);
    }
    if let Some(expected) = server_key
        && expected != key
    {
        return Err(EvidenceError::WrongServer {
            found: hex::encode(fingerprint(&key)),
            expected: hex::encode(fingerprint(&expected)),
        });
    }
    check_payload(&payload, key)
}

/// The signer of each change, as proven: (user name, user id, device).
struct Signer {
    name: String,
    user: String,
    device: String,
}

/// A change of one actor: the operation counters it holds (`start..end`), its signer and its time
/// (ms). Values are attributed by change, not by actor: the server writes under one actor for
/// every user it writes for (an import, the foreman's lines, the manager's approval).
type Made = (u64, u64, Signer, i64);

fn check_payload(p: &Payload, server_key: [u8; 32]) -> Result<Report, EvidenceError> {
    let mut problems = Vec::new();
    let mut keys: HashMap<[u8; 32], &Device> = HashMap::new();
    for d in &p.devices {
        for k in &d.keys {
            match unhex32(k) {
                Some(k) => {
                    keys.insert(k, d);
                }
                None => problems.push(format!("device {}: key {k:?} is not 32 bytes of hex", d.device)),
            }
        }
    }
    let mut report = Report {
        subject: p.subject.clone(),
        server_key: hex::encode(fingerprint(&server_key)),
        changes: 0,
        lines: Vec::new(),
        reviews: Vec::new(),
    };
    for d in &p.documents {
        let Ok(id) = d.doc.parse::<DocId>() else {
            problems.push(format!("{:?} is not a document id", d.doc));
            continue;
        };
        let mut doc = Automerge::new();
        let mut bytes = Vec::new();
        for (i, c) in d.changes.iter().enumerate() {
            match hex::decode(c) {
                Ok(b) => bytes.extend(b),
                Err(_) => problems.push(format!("{}: change {i} is not hex", d.doc)),
            }
        }
        if let Err(e) = doc::apply_bytes(&mut doc, &bytes) {
            problems.push(format!("{}: the changes do not load: {e}", d.doc));
            continue;
        }
        if !doc.get_missing_deps(&[]).is_empty() {
            problems.push(format!("{}: changes are missing from the file", d.doc));
        }
        if let Err(e) = doc::check_identity(&doc, &id) {
            problems.push(format!("{}: {e}", d.doc));
            continue;
        }
        let tables = Tables::of(&id);
        let sigs: HashMap<&str, &Signature> = d.signatures.iter().map(|s| (s.hash.as_str(), s)).collect();
        // Actor → its changes with their signers; an actor's changes are all signed by one device.
        let mut made: HashMap<String, Vec<Made>> = HashMap::new();
        for change in doc.get_changes(&[]) {
            report.changes += 1;
            let hash = change.hash();
            if hash == tables.genesis() {
                continue;
            }
            let actor = change.actor_id().to_hex_string();
            let label = format!("{}: change {}", d.doc, &hash.to_string()[..12]);
            let Some(s) = sigs.get(hash.to_string().as_str()) else {
                problems.push(format!("{label} has no signature"));
                continue;
            };
            let (Some(k), Ok(sig)) = (unhex32(&s.key), hex::decode(&s.sig)) else {
                problems.push(format!("{label}: the signature is not hex"));
                continue;
            };
            let cs = ChangeSig {
                hash: hash.0,
                key: k,
                sig,
            };
            if !cs.verifies(&d.doc) {
                problems.push(format!("{label}: the signature does not verify"));
                continue;
            }
            if let Some(fp) = actor_fingerprint(&actor)
                && fp != fingerprint(&k)
                && keys.keys().any(|known| fingerprint(known) == fp)
            {
                problems.push(format!("{label} was made under another device's actor"));
                continue;
            }
            let signer = if k == server_key {
                let user = s.for_user.clone().unwrap_or_else(|| "system".into());
                let name = p
                    .devices
                    .iter()
                    .find(|d| d.user_id == user)
                    .map(|d| d.user_name.clone())
                    .unwrap_or_else(|| user.clone());
                Signer {
                    name,
                    user,
                    device: "server".into(),
                }
            } else if let Some(dev) = keys.get(&k) {
                Signer {
                    name: dev.user_name.clone(),
                    user: dev.user_id.clone(),
                    device: dev.device.clone(),
                }
            } else {
                problems.push(format!("{label} was signed by a key of no enrolled device"));
                continue;
            };
            let changes = made.entry(actor.clone()).or_default();
            if changes.iter().any(|(_, _, prev, _)| prev.device != signer.device) {
                problems.push(format!("{label}: actor {actor} signed by two devices"));
                continue;
            }
            let start = change.start_op().get();
            changes.push((start, start + change.len() as u64, signer, change.timestamp()));
        }
        read_authors(&doc, &d.doc, &p.subject, &made, &mut report, &mut problems);
    }
    if problems.is_empty() {
        Ok(report)
    } else {
        Err(EvidenceError::Problems(problems))
    }
}

fn read_authors(
    doc: &Automerge,
    doc_name: &str,
    subject: &Subject,
    made: &HashMap<String, Vec<Made>>,
    report: &mut Report,
    problems: &mut Vec<String>,
) {
    let who = |obj: &ObjId, key: &str| -> Option<(String, String, String)> {
        let (value, at) = doc.get(obj, key).ok()??;
        let value = value
            .as_scalar()
            .map(|v| Value::from_scalar(v).to_string())
            .unwrap_or_default();
        let (counter, actor) = match &at {
            ObjId::Id(counter, actor, _) => (*counter, actor.to_hex_string()),
            ObjId::Root => return None,
        };
        let change = made.get(&actor).and_then(|changes| {
            changes
                .iter()
                .find(|(start, end, ..)| (*start..*end).contains(&counter))
        });
        let (by, when) = match change {
            Some((_, _, s, time)) => (
                format!("{} ({}, device {})", s.name, s.user, s.device),
                chrono::DateTime::from_timestamp_millis(*time)
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default(),
            ),
            None => ("(unsigned)".to_string(), String::new()),
        };
        Some((value, by, when))
    };
    for table in ["labor", "progress"] {
        let Ok(obj) = doc::table(doc, table) else {
            problems.push(format!("{doc_name}: table {table} is missing"));
            continue;
        };
        let mut records: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for item in doc.map_range(&obj, ..) {
            if let Some((rec, field)) = item.key.rsplit_once('.') {
                records.entry(rec.to_string()).or_default().push(field.to_string());
            }
        }
        for (rec, fields) in records {
            if let Subject::WorkerMonth { worker, .. } = subject {
                let w = who(&obj, &format!("{rec}.worker")).map(|x| x.0);
                if w.as_deref() != Some(&format!("{worker:?}")) {
                    continue;
                }
            }
            let mut line = LineReport {
                doc: doc_name.to_string(),
                table: table.to_string(),
                line: rec.clone(),
                fields: Vec::new(),
            };
            for f in fields {
                if let Some((value, by, at)) = who(&obj, &format!("{rec}.{f}")) {
                    line.fields.push(FieldAuthor {
                        field: f,
                        value,
                        by,
                        at,
                    });
                }
            }
            report.lines.push(line);
        }
    }
    if let Ok(obj) = doc::table(doc, "reviews") {
        let mut events: BTreeMap<String, ()> = BTreeMap::new();
        for item in doc.map_range(&obj, ..) {
            if let Some((rec, _)) = item.key.rsplit_once('.') {
                events.insert(rec.to_string(), ());
            }
        }
        for rec in events.keys() {
            if let Some((action, by, at)) = who(&obj, &format!("{rec}.action")) {
                report.reviews.push(ReviewReport {
                    doc: doc_name.to_string(),
                    action: action.trim_matches('"').to_string(),
                    by,
                    at,
                });
            }
        }
        report.reviews.sort_by(|a, b| (&a.doc, &a.at).cmp(&(&b.doc, &b.at)));
    }
}

/// The changes of a document as an evidence file lists them (hex, causal order), with `ChangeHash`es.
pub(crate) fn document_changes(doc: &Automerge) -> Vec<(ChangeHash, String, String)> {
    doc.get_changes(&[])
        .into_iter()
        .map(|c| (c.hash(), c.actor_id().to_hex_string(), hex::encode(c.raw_bytes())))
        .collect()
}

impl Report {
    /// The report as a person reads it.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let subject = match &self.subject {
            Subject::SiteDay { site, date } => format!("site {site}, {date}"),
            Subject::WorkerMonth { worker, month } => format!("worker {worker}, {month}"),
        };
        out.push_str(&format!(
            "verified: {subject}; {} changes, every one signed; server key {}\n",
            self.changes, self.server_key
        ));
        for l in &self.lines {
            out.push_str(&format!("{} {} {}\n", l.doc, l.table, l.line));
            for f in &l.fields {
                out.push_str(&format!(
                    "  {:<18} {:<24} entered by {} at {}\n",
                    f.field, f.value, f.by, f.at
                ));
            }
        }
        for r in &self.reviews {
            out.push_str(&format!("{} {} by {} at {}\n", r.doc, r.action, r.by, r.at));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::Keypair;
    use crate::store::Store;

    /// The small fixture in `store`, and one line logged by 崔贵 on site-hz-01 on 2026-12-05.
    fn log_a_line(store: &mut Store) -> DocId {
        store
            .import_dir(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/small"))
            .unwrap();
        store.set_user("崔贵").unwrap();
        let site = crate::ids::SiteId::new("site-hz-01").unwrap();
        let date = crate::ids::parse_date("2026-12-05").unwrap();
        let e = crate::store::entry(
            site.clone(),
            date,
            crate::ids::WorkerId::new("w-0001").unwrap(),
            crate::ids::WorkItemId::new("site-hz-01/wi-4.1").unwrap(),
            crate::units::WorkDays::parse("1.0").unwrap(),
        );
        store.add_labor(&e, None).unwrap();
        DocId::Day(site, date)
    }

    /// A day logged on a phone, as an evidence file signed by a stand-in server key.
    fn file() -> (String, Keypair) {
        let dir = tempfile::tempdir().unwrap();
        let mut phone = Store::open(dir.path().join("p.sqlite3")).unwrap();
        let id = log_a_line(&mut phone);
        let (_, sigs) = phone.export_signed(&id, &[]).unwrap().unwrap();
        phone.keep_signatures(&id, &sigs, None).unwrap();
        let doc = phone.evidence_document(&id, "phone").unwrap().unwrap();
        let server = Keypair::generate();
        let payload = Payload {
            subject: Subject::SiteDay {
                site: "site-hz-01".into(),
                date: "2026-12-05".into(),
            },
            generated_at: "2026-12-05T20:00:00+00:00".into(),
            server_key: hex::encode(server.public()),
            devices: vec![Device {
                device: "d-phone".into(),
                user_id: "u-foreman-hz-01".into(),
                user_name: "崔贵".into(),
                role: "foreman".into(),
                enrolled_at: "2026-12-01T08:00:00+00:00".into(),
                revoked_at: None,
                keys: vec![hex::encode(phone.public_key())],
            }],
            documents: vec![doc],
        };
        (seal(&payload, |m| server.sign(m)), server)
    }

    #[test]
    fn a_sealed_file_verifies_and_names_the_author() {
        let (text, server) = file();
        let report = verify_file(&text, Some(server.public())).unwrap();
        assert_eq!(report.lines.len(), 1);
        assert!(
            report.lines[0]
                .fields
                .iter()
                .all(|f| f.by.starts_with("崔贵 (u-foreman-hz-01, device d-phone)")),
            "{report:?}"
        );
        let other = Keypair::generate();
        assert!(matches!(
            verify_file(&text, Some(other.public())),
            Err(EvidenceError::WrongServer { .. })
        ));
    }

    /// The server writes under one actor for everyone it writes for: each value is still its own
    /// change's signer's.
    #[test]
    fn values_the_server_wrote_for_several_users_name_each_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Store::open(dir.path().join("s.sqlite3")).unwrap();
        let id = log_a_line(&mut server);
        let DocId::Day(site, date) = id.clone() else {
            unreachable!("a site-day")
        };
        server.submit_day(&site, date).unwrap();
        server.sign_own_changes(&id, "server", "u-foreman-hz-01").unwrap();
        server
            .review_as(&site, date, crate::labor::ReviewAction::Approved, "", "u-manager-hz-01")
            .unwrap();
        server.sign_own_changes(&id, "server", "u-manager-hz-01").unwrap();
        let doc = server.evidence_document(&id, "server").unwrap().unwrap();
        let device = |user: &str, name: &str, role: &str| Device {
            device: format!("d-{user}"),
            user_id: user.into(),
            user_name: name.into(),
            role: role.into(),
            enrolled_at: "2026-12-01T08:00:00+00:00".into(),
            revoked_at: None,
            keys: Vec::new(),
        };
        let payload = Payload {
            subject: Subject::SiteDay {
                site: "site-hz-01".into(),
                date: "2026-12-05".into(),
            },
            generated_at: "2026-12-05T20:00:00+00:00".into(),
            server_key: hex::encode(server.public_key()),
            devices: vec![
                device("u-foreman-hz-01", "崔贵", "foreman"),
                device("u-manager-hz-01", "龙东江", "site_manager"),
            ],
            documents: vec![doc],
        };
        let text = seal(&payload, |m| server.sign(m));
        let report = verify_file(&text, Some(server.public_key())).unwrap();
        assert!(
            report.lines[0]
                .fields
                .iter()
                .all(|f| f.by == "崔贵 (u-foreman-hz-01, device server)"),
            "{report:?}"
        );
        let reviews: BTreeMap<&str, &str> = report
            .reviews
            .iter()
            .map(|r| (r.action.as_str(), r.by.as_str()))
            .collect();
        assert_eq!(
            reviews,
            BTreeMap::from([
                ("approved", "龙东江 (u-manager-hz-01, device server)"),
                ("submitted", "崔贵 (u-foreman-hz-01, device server)"),
            ])
        );
    }

    #[test]
    fn every_byte_changed_anywhere_is_caught() {
        let (text, server) = file();
        let bytes = text.as_bytes();
        let mut caught = 0;
        for i in 0..bytes.len() {
            let mut changed = bytes.to_vec();
            // Another printable byte, so that the change is one a person could make in an editor.
            changed[i] = if changed[i] == b'0' { b'1' } else { b'0' };
            let Ok(s) = String::from_utf8(changed) else {
                caught += 1;
                continue;
            };
            assert!(
                verify_file(&s, Some(server.public())).is_err(),
                "a change at byte {i} ({:?}) went unnoticed",
                &text[i.saturating_sub(20)..(i + 20).min(text.len())]
            );
            caught += 1;
        }
        assert_eq!(caught, bytes.len());
    }
}
