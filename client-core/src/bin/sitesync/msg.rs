//! The catalogue: every sentence, column heading and word the CLI prints itself, as one enum with two
//! renderings, English and Chinese, side by side in `text.rs` (words and headings in `words.rs`).
//! Commands build a [`Msg`] and print it; none holds text of its own, so a message is translated (or
//! its plural fixed) in one place. Data (names, notes, ids) and the library's own error text pass
//! through untranslated.

mod text;
mod words;

use std::path::Path;
use std::time::Duration;

use sitesync_core::ids::DocId;
use sitesync_core::labor::{DayStatus, ReviewAction};
use sitesync_core::sync::protocol::Refusal;

pub use words::{Col, Count, Doc, Noun, cols, okr_status, status, transfer, yes_no};

use crate::error::{Candidate, Kind};

/// Every sentence the CLI says, each variant with the values it needs to say it.
pub enum Msg<'a> {
    Imported {
        sites: usize,
        workers: usize,
        days: usize,
        labor_lines: usize,
        progress_lines: usize,
    },
    ApprovedSkipped(usize),
    /// `store` is the path as the user gave it: the next command must name it.
    Bound {
        server: &'a str,
        ca: Option<&'a Path>,
        store: &'a Path,
    },
    Compacted(usize),
    Verified(usize),
    Deleted(&'a str),
    Saved,
    LineSummary {
        site: &'a str,
        date: &'a str,
        worker: &'a str,
        work_item: &'a str,
        work_days: &'a str,
        hours: &'a str,
        overtime: &'a str,
        cost: &'a str,
        deleted: bool,
    },
    Copied {
        lines: usize,
        from: &'a str,
        to: &'a str,
    },
    CopySkipped(&'a str),
    AdvanceRecorded {
        worker: &'a str,
        amount: &'a str,
        date: &'a str,
        id: &'a str,
    },
    PieceRateSet {
        key: &'a str,
        price: &'a str,
    },
    /// Days of a pay period left out because they are not approved, comma-separated.
    PayUnapproved(&'a str),
    PayUnpriced {
        date: &'a str,
        worker: &'a str,
        work_item: &'a str,
    },
    /// A line's work-days changed without `--hours`, and the store moved its default hours along.
    HoursFollow {
        work_days: &'a str,
        from: &'a str,
        to: &'a str,
    },
    /// A line's work-days changed without `--hours`, and the store kept hours set by hand.
    HoursKept {
        work_days: &'a str,
        hours: &'a str,
    },
    DayHeader {
        code: &'a str,
        name: &'a str,
        date: &'a str,
        status: DayStatus,
        weather: &'a str,
    },
    DayNote(&'a str),
    DayTotals {
        lines: usize,
        work_days: &'a str,
        cost: &'a str,
    },
    Delay(&'a str),
    Reviewed {
        at: &'a str,
        action: ReviewAction,
        by: &'a str,
        reason: &'a str,
    },
    Conflict {
        field: &'a str,
        chosen: &'a str,
        others: &'a str,
    },
    DayIs {
        site: &'a str,
        date: &'a str,
        status: DayStatus,
    },
    SignoffRecorded {
        who: &'a str,
        action: sitesync_core::signoff::SignoffAction,
        site: &'a str,
        date: &'a str,
        lines: usize,
        record: &'a str,
    },
    /// A worker's confirmation (or dispute) of an advance, written.
    AdvanceSignoffRecorded {
        who: &'a str,
        disputed: bool,
        advance: &'a str,
        site: &'a str,
        date: &'a str,
        record: &'a str,
    },
    /// One advance of a day and where its worker's confirmation stands.
    AdvanceState {
        id: &'a str,
        worker: &'a str,
        amount: &'a str,
        paid_by: &'a str,
        state: &'a str,
    },
    /// A field of an advance changed since its worker confirmed it.
    AdvanceChanged {
        field: &'a str,
        was: &'a str,
        now: &'a str,
    },
    /// A worker's advances on a pay sheet that he has not confirmed as they stand.
    PayAdvancesUnconfirmed {
        worker: &'a str,
        amount: &'a str,
        count: i64,
    },
    SignoffState {
        who: &'a str,
        when: &'a str,
        state: &'a str,
    },
    NoChanges,
    /// A field of a day holding competing values, before an approval that was not confirmed.
    OpenConflict {
        record: &'a str,
        field: &'a str,
        /// The values, ` / `-separated.
        values: &'a str,
    },
    Total,
    BoardHeader {
        id: &'a str,
        title: &'a str,
        start: &'a str,
        end: &'a str,
        elapsed_pct: f64,
    },
    CheckedIn {
        date: &'a str,
        by: &'a str,
    },
    Note(&'a str),
    Synced {
        pushed: usize,
        received: usize,
    },
    /// One exchange with a peer phone (`peer sync`, `peer listen`).
    PeerExchange {
        device: &'a str,
        user: &'a str,
        sent: usize,
        received: usize,
        refused: usize,
    },
    /// An exchange with a peer that failed.
    PeerFailed {
        peer: &'a str,
        why: &'a str,
    },
    /// `peer listen` is serving.
    PeerListening(&'a str),
    /// What the blob sync moved after the documents.
    BlobsSynced {
        uploaded: usize,
        downloaded: usize,
    },
    /// The blob sync of `sync --watch` could not run (the server unreachable); it tries again.
    FilesFailed(&'a str),
    /// A file the blob sync left for a later run.
    BlobWaiting {
        sha256: &'a str,
        why: &'a str,
    },
    ChangeRefused {
        doc: &'a str,
        hash: &'a str,
        reason: &'a str,
        rule: &'a str,
    },
    StatusServer(Option<&'a str>),
    StatusConnected(bool),
    StatusLastSync(Option<&'a str>),
    StatusLastError(&'a str),
    /// `due` found nothing to do.
    NothingDue,
    /// One thing due.
    Due(&'a sitesync_core::due::Due),
    /// The server's word on this build's protocol version, when it is not up to date.
    StatusUpdate(sitesync_core::sync::UpdateState),
    StatusDocuments {
        delivered: usize,
        pending: usize,
    },
    StatusPending(&'a str),
    StatusRefused(usize),
    AndMore(usize),
    Connected(&'a str),
    Received(&'a DocId),
    Acknowledged(&'a DocId),
    DocRefused(&'a DocId, &'a Refusal),
    Disconnected {
        reason: &'a str,
        retry_in: Duration,
    },
    NothingInStore(&'a str),
    UnknownDevice,
    HistoryEntry {
        hash: &'a str,
        at: &'a str,
        who: &'a str,
        received: Option<&'a str>,
        signed: bool,
    },
    StatusRefusedEntry {
        doc: &'a str,
        hash: &'a str,
        at: &'a str,
        reason: &'a str,
        rule: &'a str,
        wrote: &'a str,
    },
    NoServerKey,
    DoesNotVerify(&'a str),
    /// On stderr: which id a code or name was taken for.
    Chose {
        kind: Kind,
        given: &'a str,
        chosen: &'a Candidate,
    },
    ZeroWorkDays,
    FarAhead {
        date: &'a str,
        today: &'a str,
        days: i64,
    },
    OpeningStore(&'a Path),
    Reading(&'a Path),
    /// The 施工日志 was written to `path`.
    WrotePdf {
        path: &'a Path,
        pages: usize,
    },
    /// Characters the log's font has no glyph for; they print as empty boxes.
    MissingGlyphs(&'a str),
    Error,
    Warning,
}

/// `path` as a shell word: quoted when it holds anything a shell would split or expand.
fn shell_word(path: &Path) -> String {
    let s = path.display().to_string();
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '+' | ':' | '@' | '%' | ','));
    if plain {
        s
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn candidate(c: &Candidate) -> String {
    format!("{} ({})", c.id, c.label)
}

fn listed(candidates: &[Candidate]) -> String {
    candidates.iter().map(candidate).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_shell_words() {
        assert_eq!(shell_word(Path::new("a.sqlite3")), "a.sqlite3");
        assert_eq!(shell_word(Path::new("/tmp/x/b.sqlite3")), "/tmp/x/b.sqlite3");
        assert_eq!(shell_word(Path::new("my store.db")), "'my store.db'");
        assert_eq!(shell_word(Path::new("it's")), r"'it'\''s'");
    }
}
