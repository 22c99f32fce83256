//! The one error type of `sitesync-core`: every variant is something a caller can act on.

use chrono::NaiveDate;

/// Everything that can go wrong in the client library.
///
/// Validation variants are returned before anything is written: a call that fails changes nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub enum Error {
    /// A field's value is outside what the domain allows (negative money, 25 hours, 4 work-days …).
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field that was rejected, as the API names it.
        field: &'static str,
        /// Why, in a sentence a foreman understands.
        reason: String,
    },
    /// A date string is not a calendar date (`2026-02-30`, `yesterday`).
    #[error("not a calendar date: {0:?} (expected YYYY-MM-DD)")]
    InvalidDate(String),
    /// The site is not in this store (import its master data first).
    #[error("unknown site {0:?}")]
    UnknownSite(String),
    /// The worker is not on the site's roster.
    #[error("worker {worker:?} is not on the roster of site {site:?}")]
    UnknownWorker {
        /// The site whose roster was searched.
        site: String,
        /// The worker that was not found.
        worker: String,
    },
    /// The worker is on the roster but no longer active.
    #[error("worker {0:?} is inactive")]
    InactiveWorker(String),
    /// The work item (部位/分项) is not one of the site's.
    #[error("work item {work_item:?} is not one of site {site:?}")]
    UnknownWorkItem {
        /// The site whose work items were searched.
        site: String,
        /// The work item that was not found.
        work_item: String,
    },
    /// The crew is not one of the site's.
    #[error("crew {crew:?} is not one of site {site:?}")]
    UnknownCrew {
        /// The site whose crews were searched.
        site: String,
        /// The crew that was not found.
        crew: String,
    },
    /// No OKR cycle with this id in this store.
    #[error("unknown OKR cycle {0:?}")]
    UnknownCycle(String),
    /// No objective with this id in the cycle.
    #[error("unknown objective {0:?}")]
    UnknownObjective(String),
    /// No key result with this id in the cycle.
    #[error("unknown key result {0:?}")]
    UnknownKeyResult(String),
    /// No labor or progress line has this id.
    #[error("no line with id {0:?}")]
    UnknownLine(String),
    /// The worker already has a line on this work item that day: edit it instead.
    #[error("{worker} is already logged on {work_item} that day (line {line}); edit that line instead")]
    DuplicateLine {
        /// The existing line.
        line: String,
        worker: String,
        /// The work item.
        work_item: String,
    },
    /// The line was deleted; it can be re-added but not edited.
    #[error("line {0:?} was deleted")]
    LineDeleted(String),
    /// The day is approved: a change must be made as an amendment with a reason.
    #[error("{site} {date} is approved; corrections must be amendments with a reason")]
    DayLocked {
        /// The site of the locked day.
        site: String,
        /// The locked date.
        date: NaiveDate,
    },
    /// The day is not in a state that allows the requested transition (approve a day never submitted…).
    #[error("{0}")]
    InvalidTransition(String),
    /// A worker disputes his lines of the day and no one has answered: the day cannot be approved.
    #[error("{site} {date}: {worker} disputes his lines ({reason}); answer dispute {dispute} before approving")]
    DisputeOpen {
        site: String,
        date: NaiveDate,
        worker: String,
        /// The worker's reason.
        reason: String,
        /// The dispute record, to answer.
        dispute: String,
    },
    /// The site requires the crew leader's confirmation before the day is submitted.
    #[error("{site} {date}: crew {crew} has not confirmed the day; the site requires it before submitting")]
    CrewNotConfirmed {
        site: String,
        date: NaiveDate,
        crew: String,
    },
    /// There is nothing to sign: the worker (or crew) has no line that day (or that month).
    #[error("{who} has no line to sign on {when}")]
    NothingToSign {
        /// The worker or crew.
        who: String,
        /// The date or month.
        when: String,
    },
    /// An input file (fixtures, import) could not be read or has the wrong shape.
    #[error("cannot import {what}: {reason}")]
    Import {
        /// Which file or record.
        what: String,
        /// What was wrong with it.
        reason: String,
    },
    /// A stored document could not be decoded; the store file is damaged or from a newer version.
    #[error("document {doc} is damaged: {reason}")]
    CorruptDocument {
        /// The document's id.
        doc: String,
        /// What the decoder said.
        reason: String,
    },
    /// Changes received from elsewhere are malformed (truncated, bad checksum, not Automerge).
    #[error("changes for {doc} are malformed: {reason}")]
    BadChanges {
        /// The document they were for.
        doc: String,
        /// What the decoder said.
        reason: String,
    },
    /// Changes received from elsewhere would store a record that fails its checks (a worker of another
    /// site, a negative work-day, a line under another document's id …); nothing of them was stored.
    #[error("changes for {doc} are refused: {invalid}")]
    Refused {
        /// The document they were for.
        doc: String,
        /// Why, naming the field.
        invalid: crate::validate::Invalid,
    },
    /// Changes received from elsewhere depend on changes this replica does not have; nothing was
    /// applied. Send the missing history (all changes since the heads this replica has).
    #[error("changes for {doc} depend on history this replica does not have")]
    MissingHistory { doc: String },
    /// The server refused this device's credentials (wrong, unknown or revoked token).
    #[error("not authorized: {0}")]
    Unauthorized(String),
    /// The user's role or grants do not allow this write; the server would refuse it the same way.
    #[error("not allowed ({rule}): {violation}", rule = .violation.rule())]
    NotAuthorized {
        /// The rule the write would break.
        violation: crate::rules::Violation,
    },
    /// The server no longer speaks this app's sync protocol (it is two or more versions newer): the
    /// app must be updated before it syncs again. Local data is intact and writes go on offline.
    #[error("update required: {0}")]
    UpdateRequired(String),
    /// The store is not bound to a server yet (`sitesync init --server URL --token TOKEN`).
    #[error("this store is not bound to a server; run `sitesync init --server URL --token TOKEN`")]
    NotBound,
    /// The TLS connection to the server failed: its certificate does not chain to a trusted root
    /// (or to the CA given at `init`), it is not valid for the server's host, or the server does not
    /// speak TLS. Nothing was sent: there is no fallback to plain text. Sync retries (a renewed
    /// certificate fixes it); a wrong server address or CA needs a new `init`.
    #[error("TLS: {reason}")]
    Tls {
        /// Which, in a sentence.
        reason: String,
    },
    /// The network or the server failed during sync; local data is intact and sync will retry.
    #[error("sync: {0}")]
    Sync(String),
    /// The store was written by a newer sitesync than this one.
    #[error("store schema version {found} is newer than this build understands ({supported})")]
    StoreTooNew {
        /// The version in the file.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// The store file is encrypted and could not be opened with the key given, or a key was given
    /// that this file or build cannot take; nothing was read or written.
    #[error("store {path}: {problem}")]
    StoreKey {
        /// The store file (empty when the key itself was malformed, before any file).
        path: String,
        /// Which case, for the app to act on (ask for the key again, reset the store …).
        problem: crate::store::StoreKeyProblem,
    },
    /// An ID-card or bank-card number was given, but this store has not got its org's
    /// personal-data key yet, so it cannot seal it (numbers never enter a document in clear).
    /// Sync once, then try again; the worker can be added without the number meanwhile.
    #[error(
        "cannot record an ID-card or bank-card number before this phone has synced once (it needs the org's key to seal it); sync, then try again, or leave the number out"
    )]
    PiiKeyMissing,
    /// A personal-data key or sealed value is malformed or does not open with the org's key.
    #[error("personal data: {0}")]
    Pii(#[from] crate::pii::PiiError),
    /// SQLite failed (disk full, file locked, I/O error).
    #[error("storage: {0}")]
    Storage(#[from] rusqlite::Error),
    /// A database other than the phone's SQLite failed (PostgreSQL on the server), or a row did
    /// not hold the type the code expected.
    #[error("database: {0}")]
    Database(String),
    /// Reading or writing a file failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// Automerge rejected an operation; a bug or a damaged document.
    #[error("document engine: {0}")]
    Automerge(#[from] automerge::AutomergeError),
    /// A printable report could not be written (the shipped font would not load, or the PDF
    /// writer refused what was laid out): a bug, not the data.
    #[error("cannot write the report: {0}")]
    Render(String),
}

impl From<crate::validate::Invalid> for Error {
    /// A record refused by [`crate::validate`] on the write path: bad input, naming the field.
    fn from(invalid: crate::validate::Invalid) -> Self {
        Error::Invalid {
            field: invalid.field(),
            reason: invalid.to_string(),
        }
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether the caller's input caused the error (fix the input), as opposed to the disk, the
    /// network or the credentials (retry or escalate).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Error::Invalid { .. }
                | Error::InvalidDate(_)
                | Error::UnknownSite(_)
                | Error::UnknownWorker { .. }
                | Error::InactiveWorker(_)
                | Error::UnknownWorkItem { .. }
                | Error::UnknownCrew { .. }
                | Error::UnknownLine(_)
                | Error::UnknownCycle(_)
                | Error::UnknownObjective(_)
                | Error::UnknownKeyResult(_)
                | Error::DuplicateLine { .. }
                | Error::LineDeleted(_)
                | Error::DayLocked { .. }
                | Error::InvalidTransition(_)
                | Error::DisputeOpen { .. }
                | Error::CrewNotConfirmed { .. }
                | Error::NothingToSign { .. }
                | Error::Import { .. }
                | Error::BadChanges { .. }
                | Error::Refused { .. }
                | Error::MissingHistory { .. }
                | Error::NotAuthorized { .. }
                | Error::StoreKey { .. }
                | Error::PiiKeyMissing
                | Error::Pii(_)
        )
    }

    /// The same failure again, for the other items of a document that failed as a whole (most
    /// variants hold an I/O or SQLite error, which cannot be cloned: those come back as `Sync`,
    /// which a caller treats alike: retry later).
    pub(crate) fn again(&self) -> Error {
        match self {
            Error::CorruptDocument { doc, reason } => Error::CorruptDocument {
                doc: doc.clone(),
                reason: reason.clone(),
            },
            Error::BadChanges { doc, reason } => Error::BadChanges {
                doc: doc.clone(),
                reason: reason.clone(),
            },
            Error::Refused { doc, invalid } => Error::Refused {
                doc: doc.clone(),
                invalid: invalid.clone(),
            },
            Error::MissingHistory { doc } => Error::MissingHistory { doc: doc.clone() },
            other => Error::Sync(other.to_string()),
        }
    }

    /// A validation error on `field`, for callers outside this crate (the CLI's own argument checks).
    pub fn invalid_public(field: &'static str, reason: &str) -> Self {
        Error::Invalid {
            field,
            reason: reason.to_string(),
        }
    }

    /// A validation error on `field`.
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::Invalid {
            field,
            reason: reason.into(),
        }
    }
}
