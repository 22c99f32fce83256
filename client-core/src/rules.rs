//! Who may write what, decided per change: one set of rules that the honest phone runs before it
//! writes and the server runs on every change a device pushes.
//!
//! Decision (2026-11-30): access used to be decided per document, so any device that could write a
//! site-day could write anything into it — an approval of its own day, someone else's name in
//! `entered_by`. A change is now judged by its *writes* (table, record, field, value, decoded from
//! the Automerge change by [`crate::changes`]) against its author's role and grants, and against the
//! document *as the author saw it* (the change's dependencies), not as the server happens to hold it:
//! an edit made offline while another phone deleted the line is not the author's fault.
//!
//! | document | table / write | who may write it |
//! |---|---|---|
//! | site-day | `labor`, `progress`, `delays`, `day` | foreman, site manager or head office with a grant for the site |
//! | site-day | `reviews`, action `submitted` or `amended` | the same |
//! | site-day | `reviews`, action `approved` or `rejected` | a site manager of that site, head office, admin |
//! | site-day | `reviews`, action `signed`, `disputed`, `answered`, `crew_confirmed` (sign-off) | the same as `submitted`; `device` must be the writing device, `answers` a dispute the author saw |
//! | site-day | `reviews`, action `advance_confirmed`, `advance_disputed` (an advance's sign-off) | as `signed`; `advance` must be an advance of that day received by the record's `worker` (checked with the document, `validate/document.rs`) |
//! | site-day | `reviews`, action `approved` while a dispute the author saw, or one the server holds, is unanswered | nobody |
//! | site-day | an existing review record | nobody (the trail is append-only) |
//! | site-day | a line deleted in the author's view | nobody, unless the change restores it (`deleted = false`) |
//! | site-day | `day` records `adv-*` (advances, #20) | as `labor`: locked once the day is approved; `entered_by` names the writer |
//! | site master | `pending_workers`, status `pending`, `added_by` the writer | foreman, site manager with a grant for the site; head office |
//! | site master | a `pending_workers` record head office confirmed or merged | head office, admin, the server |
//! | site master | everything else (`info` with piece rates `piece-rate:*`, `crews`, `workers`, `work_items`, `rates`) | head office, admin, the server |
//! | OKR cycle | `cycle`, `objectives`, `key_results`, `reviews` | head office, admin of the cycle's org |
//! | OKR cycle | a key result's `override_status`/`override_note` | its owner, head office |
//! | OKR cycle | `checkins` | the key result's owner, head office; author `system` only the server |
//! | any | `entered_by`, `by`, `author`, an attachment's `added_by` | must name the writer (user id or name) |
//! | site master | a pending worker's `added_by` | must name the writer, by id or name ("" and `local` are refused too) |

use serde::{Deserialize, Serialize};

use crate::changes::{Value, Write};
use crate::ids::DocId;

/// What a user may do, as head office's credential database says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Logs labor and progress on granted sites.
    Foreman,
    /// Runs granted sites: logs and approves.
    SiteManager,
    /// Reads and approves every site of the org, shapes OKR cycles, owns master data.
    HeadOffice,
    /// Everything, including the admin API.
    Admin,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Foreman => "foreman",
            Role::SiteManager => "site_manager",
            Role::HeadOffice => "head_office",
            Role::Admin => "admin",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "foreman" => Role::Foreman,
            "site_manager" => Role::SiteManager,
            "head_office" => Role::HeadOffice,
            "admin" => Role::Admin,
            _ => return None,
        })
    }

    /// Head office and admins act on every site of their org.
    pub fn is_head_office(self) -> bool {
        matches!(self, Role::HeadOffice | Role::Admin)
    }
}

/// What a device may do with a whole document (reading it at all is decided here; each change it
/// writes is then judged by [`check`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs, reason = "variants named for what they allow")]
pub enum Access {
    None,
    Read,
    /// Read and write.
    Write,
}

/// What a user of `org` with `role` and these grants may do with `doc`, given the org of the
/// document's site (`None` for an unknown site; ignored for OKR documents, which name their org).
/// The server decides every sync and API read with it; phones decide what they exchange with a peer.
pub fn access(org: &str, role: Role, all_sites: bool, sites: &[String], doc: &DocId, site_org: Option<&str>) -> Access {
    match doc {
        DocId::Site(site) | DocId::Day(site, _) => {
            if site_org != Some(org) {
                Access::None
            } else if all_sites || sites.iter().any(|s| s == site.as_str()) {
                // Master data is head office's to change; phones read it.
                match (doc, role) {
                    (DocId::Site(_), Role::Foreman | Role::SiteManager) => Access::Read,
                    _ => Access::Write,
                }
            } else {
                Access::None
            }
        }
        DocId::Okr(doc_org, _) => {
            if doc_org.as_str() == org {
                Access::Write
            } else {
                Access::None
            }
        }
    }
}

/// Who wrote a change: the user behind the device whose key signed it (or the server itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Author {
    /// The device that signed (`server` for the server's own writes).
    pub device: String,
    /// The user's id (`u-foreman-hz-01`), or `system`.
    pub user_id: String,
    /// The user's name as people know them (`崔贵`).
    pub user_name: String,
    /// The user's org.
    pub org: String,
    /// The user's role.
    pub role: Role,
    /// Every site of the org (head office, admin, or an all-sites grant).
    pub all_sites: bool,
    /// Sites granted one by one.
    pub sites: Vec<String>,
    /// The server writing for itself (metric check-ins, imports), not for a user.
    pub system: bool,
}

impl Author {
    /// The server acting for itself in `org`.
    pub fn system(org: &str) -> Author {
        Author {
            device: "server".into(),
            user_id: "system".into(),
            user_name: "system".into(),
            org: org.to_string(),
            role: Role::Admin,
            all_sites: true,
            sites: Vec::new(),
            system: true,
        }
    }

    /// Whether `name` names this author (a record's `entered_by`, `by`, `author`).
    pub fn is_named(&self, name: &str) -> bool {
        name == self.user_id || name == self.user_name
    }

    /// Whether the author may act on a site whose org is `site_org` (`None`: unknown here, as on a
    /// phone, where the grants it was given are the whole truth).
    pub fn reaches(&self, site: &str, site_org: Option<&str>) -> bool {
        if site_org.is_some_and(|o| o != self.org) {
            return false;
        }
        self.system || self.all_sites || self.role.is_head_office() || self.sites.iter().any(|s| s == site)
    }
}

/// A rule a change broke: sent to the phone, logged, and shown to the org admin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub enum Violation {
    /// Approvals and rejections are a manager's.
    #[error("only a site manager of this site or head office may mark a day {action}")]
    ReviewNotAllowed {
        /// The review action attempted.
        action: String,
    },
    /// A worker disputes the day and the dispute is not answered.
    #[error("a worker disputes the day (dispute {dispute}); answer it before approving")]
    DisputeOpen {
        /// The dispute record.
        dispute: String,
    },
    /// The review trail is append-only.
    #[error("review record {record} was already written and cannot be changed")]
    ReviewImmutable {
        /// The review event's id.
        record: String,
    },
    /// Master data is head office's.
    #[error("only head office writes a site's master data")]
    MasterData,
    /// The author has no grant for the document's site.
    #[error("the author has no grant for site {site}")]
    SiteNotGranted { site: String },
    /// The document belongs to another org than the author's.
    #[error("the document belongs to another organisation")]
    OtherOrg,
    /// Cycles, objectives, key results and reviews are head office's.
    #[error("only head office shapes and reviews an OKR cycle ({table})")]
    OkrStructure {
        /// The table written.
        table: String,
    },
    /// Check-ins are the key result owner's or head office's.
    #[error("only the owner of key result {kr} or head office may check in or override it")]
    NotOwner {
        /// The key result.
        kr: String,
    },
    /// Metric check-ins are the server's.
    #[error("only the server writes check-ins as `system`")]
    SystemOnly,
    /// A deleted line is edited without being restored.
    #[error("line {line} was deleted; restore it before editing")]
    DeletedLine { line: String },
    /// An approved day is changed without an audited amendment.
    #[error("the day is approved; a correction must be an amendment with a reason")]
    DayLocked,
    /// A name field names someone other than the writer.
    #[error("{field} says {claimed:?}, but the change was written by {actual:?}")]
    ForgedAuthor {
        /// The field (`entered_by`, `by`, `author`).
        field: String,
        /// What it says.
        claimed: String,
        /// Who wrote it.
        actual: String,
    },
    /// The change does something other than set fields of records in the document's tables.
    #[error("the change writes outside the document's records: {what}")]
    Structure {
        /// What it did.
        what: String,
    },
    /// The change carries no signature.
    #[error("the change is not signed")]
    Unsigned,
    /// The signature does not verify with the key it names.
    #[error("the signature does not verify")]
    BadSignature,
    /// The key is not registered to an active device.
    #[error("the signing key is not registered to an active device")]
    UnknownKey,
    /// The change's actor belongs to another device than the signer.
    #[error("actor {actor} belongs to another device")]
    ForeignActor {
        /// The actor, hex.
        actor: String,
    },
    /// A change this one builds on was refused, so this one cannot be stored either.
    #[error("builds on refused change {hash}")]
    DependsOnRefused {
        /// The refused change, hex.
        hash: String,
    },
    /// A value is out of range, off the roster, or an id not derived as it must be.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field, as the API names it.
        field: String,
        reason: String,
    },
}

impl Violation {
    /// A stable name of the rule, for logs, the API and tests.
    pub fn rule(&self) -> &'static str {
        match self {
            Violation::ReviewNotAllowed { .. } => "review.manager_only",
            Violation::ReviewImmutable { .. } => "review.append_only",
            Violation::DisputeOpen { .. } => "review.dispute_open",
            Violation::MasterData => "site.head_office_only",
            Violation::SiteNotGranted { .. } => "site.grant",
            Violation::OtherOrg => "org",
            Violation::OkrStructure { .. } => "okr.head_office_only",
            Violation::NotOwner { .. } => "okr.owner_only",
            Violation::SystemOnly => "okr.system_only",
            Violation::DeletedLine { .. } => "line.deleted",
            Violation::DayLocked => "day.locked",
            Violation::ForgedAuthor { .. } => "author.forged",
            Violation::Structure { .. } => "structure",
            Violation::Unsigned => "signature.missing",
            Violation::BadSignature => "signature.invalid",
            Violation::UnknownKey => "signature.unknown_key",
            Violation::ForeignActor { .. } => "author.foreign_actor",
            Violation::DependsOnRefused { .. } => "depends_on_refused",
            Violation::Invalid { .. } => "invalid",
        }
    }
}

/// What a rule needs to know of the document as the author saw it.
pub trait Before {
    /// A field of a record in a table, as the author saw it (`None`: absent). A field in conflict
    /// reads as its winning value.
    fn get(&self, table: &str, record: &str, field: &str) -> Option<Value>;

    /// A field as the copy the change would join holds it (on the server: with what was accepted
    /// before it), for decisions that must not be undone by a change made without seeing them.
    fn get_now(&self, _table: &str, _record: &str, _field: &str) -> Option<Value> {
        None
    }

    /// Whether the day was approved (and not amended or re-opened since) as the author saw it.
    fn day_approved(&self) -> bool {
        false
    }

    /// A worker's dispute of the day that no answer answers, as the author saw it or in the copy the
    /// change would join (its record id): an approval concurrent with a dispute is refused wherever the
    /// dispute arrived first.
    fn open_dispute(&self) -> Option<String> {
        None
    }
}

/// Fields that name who wrote a record: they must name the writer.
fn author_field(table: &str, field: &str) -> bool {
    matches!(
        (table, field),
        ("labor" | "progress" | "delays", "entered_by")
            | ("reviews", "by")
            | ("checkins", "author")
            | ("day", "added_by" | "entered_by")
            | ("pending_workers", "added_by")
    )
}

/// Checks every write of one change against its author's rights. `site_org` is the org of the
/// document's site where the caller knows it (the server always does).
pub fn check(
    doc: &DocId,
    site_org: Option<&str>,
    author: &Author,
    writes: &[Write],
    before: &dyn Before,
) -> Result<(), Violation> {
    // What the author may write at all comes first: a foreman's forged approval is refused as an
    // approval, not merely as a wrong name.
    match doc {
        DocId::Site(site) => {
            if !author.reaches(site.as_str(), site_org) {
                return Err(Violation::SiteNotGranted { site: site.to_string() });
            }
            if !(author.system || author.role.is_head_office()) {
                check_pending_workers(author, writes, before)?;
            }
        }
        DocId::Day(site, _) => {
            if !author.reaches(site.as_str(), site_org) {
                return Err(Violation::SiteNotGranted { site: site.to_string() });
            }
            check_day(author, writes, before)?;
        }
        DocId::Okr(org, _) => {
            if org.as_str() != author.org {
                return Err(Violation::OtherOrg);
            }
            check_okr(author, writes, before)?;
        }
    }
    for w in writes {
        // A sign-off is taken on the device that writes it: it cannot claim another.
        if matches!(doc, DocId::Day(..))
            && w.table == "reviews"
            && w.field == "device"
            && let Value::Str(device) = &w.value
            && !(author.system || *device == author.device)
        {
            return Err(Violation::ForgedAuthor {
                field: "device".into(),
                claimed: device.clone(),
                actual: author.device.clone(),
            });
        }
        if author_field(&w.table, &w.field)
            && let Value::Str(name) = &w.value
        {
            // "" and `local` name nobody (a store that did not yet know its user writes `local`):
            // the signature says who wrote it.
            let allowed =
                author.is_named(name) || name.is_empty() || name == "local" || (author.system && name == "system");
            // A check-in in the system's name is the server's: `check_okr` refuses it to others.
            if !(allowed || (w.table == "checkins" && name == "system")) {
                return Err(Violation::ForgedAuthor {
                    field: w.field.clone(),
                    claimed: name.clone(),
                    actual: author.user_name.clone(),
                });
            }
        }
    }
    Ok(())
}

/// A foreman's or site manager's change to a site's master data: it may only add or edit workers
/// in `pending_workers`, as pending, in their own name; what head office decided is head office's.
fn check_pending_workers(author: &Author, writes: &[Write], before: &dyn Before) -> Result<(), Violation> {
    for w in writes {
        if w.table != "pending_workers" {
            return Err(Violation::MasterData);
        }
        // Head office's decision stands whether the author saw it or made the change offline
        // beside it (a concurrent `pending` could otherwise win the merge and undo it).
        let was = before.get("pending_workers", &w.record, "status");
        let now = before.get_now("pending_workers", &w.record, "status");
        let pending = Value::Str("pending".into());
        if was.iter().chain(now.iter()).any(|s| *s != pending) {
            return Err(Violation::MasterData);
        }
        match (w.field.as_str(), &w.value) {
            ("status", Value::Str(s)) if s == "pending" => {}
            ("status", _) => return Err(Violation::MasterData),
            ("merged_into", Value::Str(s)) if s.is_empty() => {}
            ("merged_into", _) => return Err(Violation::MasterData),
            ("added_by", Value::Str(name)) if author.is_named(name) => {}
            ("added_by", v) => {
                return Err(Violation::ForgedAuthor {
                    field: "added_by".into(),
                    claimed: v.to_string(),
                    actual: author.user_name.clone(),
                });
            }
            _ => {}
        }
        // A new record says who added it.
        if was.is_none()
            && !writes
                .iter()
                .any(|o| o.table == w.table && o.record == w.record && o.field == "added_by")
        {
            return Err(Violation::ForgedAuthor {
                field: "added_by".into(),
                claimed: String::new(),
                actual: author.user_name.clone(),
            });
        }
    }
    Ok(())
}

fn check_day(author: &Author, writes: &[Write], before: &dyn Before) -> Result<(), Violation> {
    let edits_log = writes
        .iter()
        .any(|w| matches!(w.table.as_str(), "labor" | "progress" | "delays" | "day"));
    let amends = writes
        .iter()
        .any(|w| w.table == "reviews" && w.field == "action" && w.value == Value::Str("amended".into()));
    if edits_log && !amends && before.day_approved() {
        return Err(Violation::DayLocked);
    }
    // Each record is looked up as the author saw it once, whatever number of its fields are written
    // (reading a document at past heads is the costly part of the check).
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for w in writes {
        if seen.contains(&(w.table.as_str(), w.record.as_str())) {
            if w.table == "reviews" && w.field == "action" {
                // Falls through to the action check below.
            } else {
                continue;
            }
        } else {
            seen.push((w.table.as_str(), w.record.as_str()));
        }
        match w.table.as_str() {
            "labor" | "progress" => {
                let was_deleted = before.get(&w.table, &w.record, "deleted") == Some(Value::Bool(true));
                let restores = writes.iter().any(|o| {
                    o.table == w.table && o.record == w.record && o.field == "deleted" && o.value == Value::Bool(false)
                });
                if was_deleted && !restores {
                    return Err(Violation::DeletedLine { line: w.record.clone() });
                }
            }
            "delays" | "day" => {}
            "reviews" => {
                // A review record is written once, whole.
                if before.get("reviews", &w.record, "action").is_some() {
                    return Err(Violation::ReviewImmutable {
                        record: w.record.clone(),
                    });
                }
                if w.field == "action" {
                    let action = match &w.value {
                        Value::Str(a) => a.as_str(),
                        _ => "",
                    };
                    match action {
                        "submitted" | "amended" | "signed" | "disputed" | "crew_confirmed" | "advance_confirmed"
                        | "advance_disputed" => {}
                        "answered" => {
                            let answers = writes
                                .iter()
                                .find(|o| o.table == "reviews" && o.record == w.record && o.field == "answers")
                                .map(|o| o.value.clone());
                            let disputed = match &answers {
                                Some(Value::Str(d)) => matches!(
                                    before.get("reviews", d, "action"),
                                    Some(Value::Str(a)) if a == "disputed" || a == "advance_disputed"
                                ),
                                _ => false,
                            };
                            if !disputed {
                                return Err(Violation::Invalid {
                                    field: "reviews.answers".into(),
                                    reason: "an answer must name a dispute of this day".into(),
                                });
                            }
                        }
                        "approved" | "rejected" => {
                            if !(author.system || author.role.is_head_office() || author.role == Role::SiteManager) {
                                return Err(Violation::ReviewNotAllowed {
                                    action: action.to_string(),
                                });
                            }
                            if action == "approved"
                                && let Some(dispute) = before.open_dispute()
                            {
                                return Err(Violation::DisputeOpen { dispute });
                            }
                        }
                        other => {
                            return Err(Violation::Invalid {
                                field: "reviews.action".into(),
                                reason: format!("{other:?} is not a review action"),
                            });
                        }
                    }
                } else if !writes
                    .iter()
                    .any(|o| o.table == "reviews" && o.record == w.record && o.field == "action")
                {
                    return Err(Violation::Invalid {
                        field: "reviews.action".into(),
                        reason: "a review event without an action".into(),
                    });
                }
            }
            other => {
                return Err(Violation::Structure {
                    what: format!("table {other:?} of a site-day"),
                });
            }
        }
    }
    Ok(())
}

fn check_okr(author: &Author, writes: &[Write], before: &dyn Before) -> Result<(), Violation> {
    let head_office = author.system || author.role.is_head_office();
    let owner_of = |kr: &str| match before.get("key_results", kr, "owner") {
        Some(Value::Str(owner)) => author.is_named(&owner),
        _ => false,
    };
    for w in writes {
        match w.table.as_str() {
            "cycle" | "objectives" | "reviews" => {
                if !head_office {
                    return Err(Violation::OkrStructure { table: w.table.clone() });
                }
            }
            "key_results" => {
                let override_field = matches!(w.field.as_str(), "override_status" | "override_note");
                if !(head_office || (override_field && owner_of(&w.record))) {
                    return Err(if override_field {
                        Violation::NotOwner { kr: w.record.clone() }
                    } else {
                        Violation::OkrStructure { table: w.table.clone() }
                    });
                }
            }
            "checkins" => {
                let field = |name: &str| {
                    writes
                        .iter()
                        .find(|o| o.table == "checkins" && o.record == w.record && o.field == name)
                        .map(|o| o.value.clone())
                        .or_else(|| before.get("checkins", &w.record, name))
                };
                if let Some(Value::Str(a)) = field("author")
                    && a == "system"
                    && !author.system
                {
                    return Err(Violation::SystemOnly);
                }
                let kr = match field("kr") {
                    Some(Value::Str(kr)) => kr,
                    _ => String::new(),
                };
                if !(head_office || owner_of(&kr)) {
                    return Err(Violation::NotOwner { kr });
                }
            }
            other => {
                return Err(Violation::Structure {
                    what: format!("table {other:?} of an OKR cycle"),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::ids::{SiteId, parse_date};

    struct Doc(HashMap<(String, String, String), Value>);

    impl Before for Doc {
        fn get(&self, table: &str, record: &str, field: &str) -> Option<Value> {
            self.0.get(&(table.into(), record.into(), field.into())).cloned()
        }
    }

    struct Approved;

    impl Before for Approved {
        fn get(&self, _: &str, _: &str, _: &str) -> Option<Value> {
            None
        }

        fn day_approved(&self) -> bool {
            true
        }
    }

    #[test]
    fn an_approved_day_changes_only_by_amendment() {
        let foreman = who(Role::Foreman, &["s1"]);
        let edit = [w("labor", "L1", "work_days_centi", Value::Int(50))];
        assert_eq!(
            check(&day(), None, &foreman, &edit, &Approved),
            Err(Violation::DayLocked)
        );
        let amend = [
            w("labor", "L1", "work_days_centi", Value::Int(50)),
            w("reviews", "e9", "action", Value::Str("amended".into())),
            w("reviews", "e9", "by", Value::Str("崔贵".into())),
        ];
        check(&day(), None, &foreman, &amend, &Approved).unwrap();
    }

    fn who(role: Role, sites: &[&str]) -> Author {
        Author {
            device: "d-1".into(),
            user_id: "u-1".into(),
            user_name: "崔贵".into(),
            org: "org-a".into(),
            role,
            all_sites: false,
            sites: sites.iter().map(|s| s.to_string()).collect(),
            system: false,
        }
    }

    fn w(table: &str, record: &str, field: &str, value: Value) -> Write {
        Write {
            table: table.into(),
            record: record.into(),
            field: field.into(),
            value,
        }
    }

    fn day() -> DocId {
        DocId::Day(SiteId::new("s1").unwrap(), parse_date("2026-12-05").unwrap())
    }

    #[test]
    fn a_foreman_cannot_approve_but_a_site_manager_can() {
        let empty = Doc(HashMap::new());
        let approve = [
            w("reviews", "e1", "action", Value::Str("approved".into())),
            w("reviews", "e1", "by", Value::Str("崔贵".into())),
        ];
        let foreman = who(Role::Foreman, &["s1"]);
        assert!(matches!(
            check(&day(), Some("org-a"), &foreman, &approve, &empty),
            Err(Violation::ReviewNotAllowed { .. })
        ));
        let manager = who(Role::SiteManager, &["s1"]);
        check(&day(), Some("org-a"), &manager, &approve, &empty).unwrap();
        let elsewhere = who(Role::SiteManager, &["s2"]);
        assert!(matches!(
            check(&day(), Some("org-a"), &elsewhere, &approve, &empty),
            Err(Violation::SiteNotGranted { .. })
        ));
        assert!(matches!(
            check(&day(), Some("org-b"), &manager, &approve, &empty),
            Err(Violation::SiteNotGranted { .. })
        ));
    }

    #[test]
    fn names_must_be_the_writers_and_deleted_lines_stay_deleted() {
        let foreman = who(Role::Foreman, &["s1"]);
        let empty = Doc(HashMap::new());
        let forged = [w("labor", "L1", "entered_by", Value::Str("经理".into()))];
        assert!(matches!(
            check(&day(), None, &foreman, &forged, &empty),
            Err(Violation::ForgedAuthor { .. })
        ));
        let deleted = Doc(HashMap::from([(
            ("labor".into(), "L1".into(), "deleted".into()),
            Value::Bool(true),
        )]));
        let edit = [w("labor", "L1", "note", Value::Str("x".into()))];
        assert!(matches!(
            check(&day(), None, &foreman, &edit, &deleted),
            Err(Violation::DeletedLine { .. })
        ));
        let restore = [
            w("labor", "L1", "note", Value::Str("x".into())),
            w("labor", "L1", "deleted", Value::Bool(false)),
        ];
        check(&day(), None, &foreman, &restore, &deleted).unwrap();
    }

    struct Disputed;

    impl Before for Disputed {
        fn get(&self, _: &str, record: &str, field: &str) -> Option<Value> {
            (record == "d1" && field == "action").then(|| Value::Str("disputed".into()))
        }

        fn open_dispute(&self) -> Option<String> {
            Some("d1".into())
        }
    }

    #[test]
    fn an_open_dispute_blocks_approval_and_a_sign_off_names_its_own_device() {
        let manager = who(Role::SiteManager, &["s1"]);
        let approve = [w("reviews", "e1", "action", Value::Str("approved".into()))];
        assert_eq!(
            check(&day(), None, &manager, &approve, &Disputed),
            Err(Violation::DisputeOpen { dispute: "d1".into() })
        );
        let foreman = who(Role::Foreman, &["s1"]);
        let sign = |device: &str| {
            [
                w("reviews", "s9", "action", Value::Str("signed".into())),
                w("reviews", "s9", "device", Value::Str(device.into())),
            ]
        };
        check(&day(), None, &foreman, &sign("d-1"), &Doc(HashMap::new())).unwrap();
        assert!(matches!(
            check(&day(), None, &foreman, &sign("d-other"), &Doc(HashMap::new())),
            Err(Violation::ForgedAuthor { .. })
        ));
        let answer = |of: &str| {
            [
                w("reviews", "a1", "action", Value::Str("answered".into())),
                w("reviews", "a1", "answers", Value::Str(of.into())),
            ]
        };
        check(&day(), None, &foreman, &answer("d1"), &Disputed).unwrap();
        assert!(matches!(
            check(&day(), None, &foreman, &answer("zz"), &Disputed),
            Err(Violation::Invalid { .. })
        ));
        // An existing sign-off record cannot be edited.
        let edit = [w("reviews", "d1", "reason", Value::Str("changed".into()))];
        assert!(matches!(
            check(&day(), None, &foreman, &edit, &Disputed),
            Err(Violation::ReviewImmutable { .. })
        ));
    }

    #[test]
    fn a_foreman_writes_only_pending_workers_as_pending_in_their_own_name() {
        let site = DocId::Site(SiteId::new("s1").unwrap());
        let foreman = who(Role::Foreman, &["s1"]);
        let empty = Doc(HashMap::new());
        let add = |status: &str, by: &str| {
            [
                w("pending_workers", "w-1", "name", Value::Str("王五".into())),
                w("pending_workers", "w-1", "status", Value::Str(status.into())),
                w("pending_workers", "w-1", "added_by", Value::Str(by.into())),
            ]
        };
        check(&site, Some("org-a"), &foreman, &add("pending", "崔贵"), &empty).unwrap();
        assert_eq!(
            check(&site, Some("org-a"), &foreman, &add("confirmed", "崔贵"), &empty),
            Err(Violation::MasterData)
        );
        assert!(matches!(
            check(&site, Some("org-a"), &foreman, &add("pending", "经理"), &empty),
            Err(Violation::ForgedAuthor { .. })
        ));
        assert!(matches!(
            check(&site, Some("org-a"), &foreman, &add("pending", ""), &empty),
            Err(Violation::ForgedAuthor { .. })
        ));
        let worker = [w("workers", "w-1", "day_rate_fen", Value::Int(1))];
        assert_eq!(
            check(&site, Some("org-a"), &foreman, &worker, &empty),
            Err(Violation::MasterData)
        );
        let confirmed = Doc(HashMap::from([(
            ("pending_workers".into(), "w-1".into(), "status".into()),
            Value::Str("confirmed".into()),
        )]));
        let edit = [w("pending_workers", "w-1", "phone", Value::Str("1".into()))];
        assert_eq!(
            check(&site, Some("org-a"), &foreman, &edit, &confirmed),
            Err(Violation::MasterData)
        );
        check(&site, Some("org-a"), &who(Role::HeadOffice, &[]), &edit, &confirmed).unwrap();
        assert!(matches!(
            check(
                &site,
                Some("org-a"),
                &who(Role::Foreman, &["s2"]),
                &add("pending", "崔贵"),
                &empty
            ),
            Err(Violation::SiteNotGranted { .. })
        ));
    }

    #[test]
    fn okr_rights() {
        let cycle = DocId::Okr(crate::ids::OrgId::new("org-a").unwrap(), "2026-Q4".into());
        let kr = Doc(HashMap::from([(
            ("key_results".into(), "k1".into(), "owner".into()),
            Value::Str("崔贵".into()),
        )]));
        let foreman = who(Role::Foreman, &[]);
        let checkin = [
            w("checkins", "c1", "kr", Value::Str("k1".into())),
            w("checkins", "c1", "author", Value::Str("崔贵".into())),
        ];
        check(&cycle, None, &foreman, &checkin, &kr).unwrap();
        let system = [
            w("checkins", "c1", "kr", Value::Str("k1".into())),
            w("checkins", "c1", "author", Value::Str("system".into())),
        ];
        assert_eq!(check(&cycle, None, &foreman, &system, &kr), Err(Violation::SystemOnly));
        check(&cycle, None, &Author::system("org-a"), &system, &kr).unwrap();
        let shape = [w("objectives", "o1", "title", Value::Str("x".into()))];
        assert!(matches!(
            check(&cycle, None, &foreman, &shape, &kr),
            Err(Violation::OkrStructure { .. })
        ));
        let other = DocId::Okr(crate::ids::OrgId::new("org-b").unwrap(), "2026-Q4".into());
        assert_eq!(
            check(&other, None, &who(Role::HeadOffice, &[]), &shape, &kr),
            Err(Violation::OtherOrg)
        );
    }
}
