//! The errors the CLI finds itself, before the library is asked: a store that is not there, a name
//! that matches nothing or several things, a date written another way. Their text is in `msg`, in
//! the user's language; the library's own errors pass through as they are.

use std::path::PathBuf;

/// What a name on the command line was meant to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Site,
    Worker,
}

/// One thing a name could mean: its id and what a person recognises it by (code, name, crew).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: String,
    pub label: String,
}

/// What a field with a fixed set of values accepts, for [`CliError::Invalid`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// green, yellow or red.
    Status,
    /// quarter, month or year.
    CycleKind,
    /// increase, decrease, at_least or at_most.
    Direction,
    /// baseline or stretch.
    KrKind,
    /// A metric as JSON; the parser's complaint.
    Metric(String),
    /// A server key: 64 hex digits.
    HexKey,
}

#[derive(Debug)]
pub enum CliError {
    /// The command reads or writes a store, and there is no file at the path: a typo would
    /// otherwise create an empty store and fail later with a misleading "unknown site".
    NoStore(PathBuf),
    /// Nothing by that id, code or name; `nearest` is the closest spelling, if any is close.
    Unknown {
        kind: Kind,
        given: String,
        /// The site whose roster was searched (workers), or none (sites, or every roster).
        scope: Option<String>,
        nearest: Option<Candidate>,
    },
    /// More than one thing by that code or name: the user must say which, by id.
    Ambiguous {
        kind: Kind,
        given: String,
        candidates: Vec<Candidate>,
    },
    /// A date not written YYYY-MM-DD (`2026-12-1`); `padded` is what was probably meant.
    DateFormat { given: String, padded: Option<String> },
    /// A month not written YYYY-MM.
    MonthFormat { given: String },
    /// A field outside its fixed set of values.
    Invalid { field: &'static str, expected: Expected },
    /// `--user` names someone else than the user the server bound this store to.
    NotYours { name: String, id: String, user: String },
    /// An OKR command without `--org` on a store that has no company imported.
    NeedOrg,
    /// `history` needs `--site` with `--date`, or `--cycle` with `--org`.
    HistoryArgs,
    /// The evidence file failed its check (what failed is printed before).
    DoesNotVerify(PathBuf),
}

impl CliError {
    /// 2 for what the user typed (like clap's usage errors), 1 for a file that fails its check.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::DoesNotVerify(_) => 1,
            _ => 2,
        }
    }
}

impl std::error::Error for CliError {}
