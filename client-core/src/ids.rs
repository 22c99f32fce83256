//! Identifiers: of records (sites, crews, workers, work items, lines) and of documents.
//!
//! Document ids are derived from what a document *is* — the log of site S on date D is `day|S|D`
//! wherever it is first created — so two phones that start the same day offline create the same
//! document, not two.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Checks an externally supplied id: printable, no spaces, short enough to key on.
fn check_id(field: &'static str, id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 100 {
        return Err(Error::invalid(field, "an id must have 1 to 100 characters"));
    }
    if id.chars().any(|c| c.is_whitespace() || c.is_control() || c == '|') {
        return Err(Error::invalid(
            field,
            format!("{id:?} contains a space, control character or '|'"),
        ));
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps an id.
            pub fn new(id: impl Into<String>) -> Result<Self> {
                let id = id.into();
                check_id($field, &id)?;
                Ok(Self(id))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(s: String) -> Result<Self> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

id_type!(
    /// An organisation (company) id, e.g. `org-zhuyuan`.
    OrgId, "org"
);
id_type!(
    /// A site (工地) id, e.g. `site-hz-01`.
    SiteId, "site"
);
id_type!(
    /// A crew (班组) id, e.g. `site-hz-01/crew-1`.
    CrewId, "crew"
);
id_type!(
    /// A worker id, e.g. `w-0001`.
    WorkerId, "worker"
);
id_type!(
    /// A work item (部位/分项) id, e.g. `site-hz-01/wi-1.1`.
    WorkItemId, "work_item"
);
id_type!(
    /// A labor or progress line's id: derived from what the line is, so that the same worker on the
    /// same work item on the same day is one line on every phone.
    LineId, "line"
);

/// Hex of the first 8 bytes of SHA-256 over the parts, separated so that no two part lists collide.
fn short_hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    hex::encode(&h.finalize()[..8])
}

/// An ID-card number as workers are identified by it: uppercase, without spaces.
pub fn normalize_id_card(card: &str) -> String {
    card.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_uppercase)
        .collect()
}

/// An ID-card number as everyone but head office sees it (PIPL): every character but the last four
/// as `*`, so a person can still be told apart from another on a list.
pub fn mask_id_card(card: &str) -> String {
    let n = card.chars().count();
    card.chars()
        .enumerate()
        .map(|(i, c)| if i + 4 < n { '*' } else { c })
        .collect()
}

impl WorkerId {
    /// The normalized ID-card number `card`, checked: 6 to 32 letters and digits.
    pub fn check_id_card(card: &str) -> Result<String> {
        let n = normalize_id_card(card);
        if !(6..=32).contains(&n.len()) || !n.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(Error::invalid(
                "id_card",
                "an ID-card number has 6 to 32 letters and digits",
            ));
        }
        Ok(n)
    }

    /// The id of the worker holding ID card `card`: `w-` and the org-keyed digest of the
    /// normalized number ([`crate::pii::OrgPiiKey::digest`]), so two phones of the org adding the
    /// same person offline write the same record, while the id tells no one without the org's
    /// key whose card it is. Errors: a number that is not 6 to 32 letters and digits.
    pub fn from_id_card_keyed(card: &str, key: &crate::pii::OrgPiiKey) -> Result<WorkerId> {
        let n = Self::check_id_card(card)?;
        Ok(WorkerId(format!("w-{}", key.digest(crate::pii::purpose::WORKER, &n)?)))
    }

    /// A fresh random id (`w-` and 16 hex digits) for a worker added without an ID card.
    pub fn fresh() -> WorkerId {
        WorkerId(format!("w-{}", &uuid::Uuid::new_v4().simple().to_string()[..16]))
    }

    /// Whether the id has the shape [`WorkerId::fresh`] gives: what a worker added on site without
    /// an ID card must be named.
    pub fn is_fresh_shape(&self) -> bool {
        self.0
            .strip_prefix("w-")
            .is_some_and(|h| h.len() == 16 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    }
}

impl LineId {
    /// The id of the labor line of `worker` on `work_item` in the log of `site` on `date`.
    pub fn labor(site: &SiteId, date: NaiveDate, worker: &WorkerId, work_item: &WorkItemId) -> LineId {
        let d = date.to_string();
        LineId(format!(
            "L{}",
            short_hash(&["labor", site.as_str(), &d, worker.as_str(), work_item.as_str()])
        ))
    }

    /// The id of the progress line of `work_item` in the log of `site` on `date`.
    pub fn progress(site: &SiteId, date: NaiveDate, work_item: &WorkItemId) -> LineId {
        let d = date.to_string();
        LineId(format!(
            "P{}",
            short_hash(&["progress", site.as_str(), &d, work_item.as_str()])
        ))
    }

    /// Whether this is a progress line id (labor line ids start with `L`).
    pub fn is_progress(&self) -> bool {
        self.0.starts_with('P')
    }
}

/// An OKR cycle's id within an org, e.g. `2026-Q4`.
pub type CycleId = String;

/// The identity of one Automerge document.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DocId {
    /// A site's master data: the site, its crews, workers and work items.
    Site(SiteId),
    /// The log of one site on one calendar date of the site.
    Day(SiteId, NaiveDate),
    /// One OKR cycle of an org.
    Okr(OrgId, CycleId),
}

impl DocId {
    /// The kind of document, as stored.
    pub fn kind(&self) -> DocKind {
        match self {
            DocId::Site(_) => DocKind::Site,
            DocId::Day(..) => DocKind::Day,
            DocId::Okr(..) => DocKind::Okr,
        }
    }

    /// The site the document belongs to, if it belongs to one.
    pub fn site(&self) -> Option<&SiteId> {
        match self {
            DocId::Site(s) | DocId::Day(s, _) => Some(s),
            DocId::Okr(..) => None,
        }
    }
}

/// The three kinds of document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocKind {
    /// Site master data.
    Site,
    /// A site-day log.
    Day,
    /// An OKR cycle.
    Okr,
}

impl DocKind {
    /// The kind's name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            DocKind::Site => "site",
            DocKind::Day => "day",
            DocKind::Okr => "okr",
        }
    }
}

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DocId::Site(s) => write!(f, "site|{s}"),
            DocId::Day(s, d) => write!(f, "day|{s}|{d}"),
            DocId::Okr(o, c) => write!(f, "okr|{o}|{c}"),
        }
    }
}

impl FromStr for DocId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::invalid("doc_id", format!("{s:?} is not a document id"));
        let mut parts = s.split('|');
        let id = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("site"), Some(site), None, None) => DocId::Site(SiteId::new(site)?),
            (Some("day"), Some(site), Some(date), None) => DocId::Day(SiteId::new(site)?, parse_date(date)?),
            (Some("okr"), Some(org), Some(cycle), None) => {
                check_id("cycle", cycle)?;
                DocId::Okr(OrgId::new(org)?, cycle.to_string())
            }
            _ => return Err(bad()),
        };
        Ok(id)
    }
}

/// Checks an OKR cycle id (`2026-Q4`).
pub fn check_cycle(id: &str) -> Result<()> {
    check_id("cycle", id)
}

/// Parses a calendar date `YYYY-MM-DD`, refusing impossible ones like `2026-02-30`.
pub fn parse_date(text: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| Error::InvalidDate(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_id_from_an_id_card_is_keyed_by_the_org() {
        assert_eq!(mask_id_card("33010619900101123X"), "**************123X");
        assert_eq!(mask_id_card("123"), "123");
        assert_eq!(mask_id_card(""), "");
        let a = crate::pii::OrgPiiSecret::generate().unwrap().public("a");
        let b = crate::pii::OrgPiiSecret::generate().unwrap().public("b");
        let id = WorkerId::from_id_card_keyed("330106 19900101123x", &a).unwrap();
        assert_eq!(id, WorkerId::from_id_card_keyed("33010619900101123X", &a).unwrap());
        assert_ne!(id, WorkerId::from_id_card_keyed("33010619900101123X", &b).unwrap());
        assert!(id.is_fresh_shape(), "the same shape as a random id: it tells nothing");
        assert!(WorkerId::from_id_card_keyed("12-34", &a).is_err());
    }

    #[test]
    fn doc_ids_round_trip() {
        let site = SiteId::new("site-hz-01").unwrap();
        let d = parse_date("2026-09-01").unwrap();
        for id in [
            DocId::Site(site.clone()),
            DocId::Day(site, d),
            DocId::Okr(OrgId::new("org-a").unwrap(), "2026-Q4".into()),
        ] {
            assert_eq!(id.to_string().parse::<DocId>().unwrap(), id);
        }
        assert!("day|x|2026-02-30".parse::<DocId>().is_err());
        assert!("nope".parse::<DocId>().is_err());
    }

    #[test]
    fn line_ids_are_derived_from_what_the_line_is() {
        let s = SiteId::new("site-hz-01").unwrap();
        let d = parse_date("2026-09-01").unwrap();
        let w = WorkerId::new("w-0001").unwrap();
        let i = WorkItemId::new("site-hz-01/wi-4.1").unwrap();
        assert_eq!(LineId::labor(&s, d, &w, &i), LineId::labor(&s, d, &w, &i));
        assert_ne!(
            LineId::labor(&s, d, &w, &i),
            LineId::labor(&s, d.succ_opt().unwrap(), &w, &i)
        );
        assert!(LineId::progress(&s, d, &i).is_progress());
    }

    #[test]
    fn ids_refuse_junk() {
        assert!(WorkerId::new("").is_err());
        assert!(WorkerId::new("a b").is_err());
        assert!(WorkerId::new("a|b").is_err());
        assert!(parse_date("2026-13-01").is_err());
    }
}
