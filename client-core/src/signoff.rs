//! Sign-off as plain records: a worker's confirmation of his own lines of a day (or of his month), his
//! dispute of them, the answer to a dispute, and a crew leader's confirmation of his crew's day, with
//! the state each worker's day is in.
//!
//! Decision (2026-12-06): sign-off records live in the site-day document's `reviews` table, beside
//! the submission and approval trail, with actions of their own (`signed`, `disputed`, `answered`,
//! `crew_confirmed`). The document's tables are fixed by its genesis change (a new table would change
//! every replica's genesis hash), and the review trail already is what sign-off needs: append-only
//! (a record written once, never edited, enforced by the server's rules), random ids (two phones that
//! take signatures offline merge into both, each once), and pinned heads (the exact version signed).
//! Readers that predate sign-off skip actions they do not know, so a day's status is unchanged by it.
//!
//! A month's confirmation (the attendance sheet the wage rules want signed monthly) is one record in
//! each day document of the month where the worker has lines, each pinning that day's heads and
//! marked with the month: a site-level record could not pin one version of thirty documents, and only
//! head office writes the site's master document. The month's state is read back from those days.
//!
//! An advance (借支) is confirmed the same way (decision 2026-11-30, issue #20): a record of its own
//! action, `advance_confirmed` (or `advance_disputed`, with a reason), in the day document the
//! advance is on, naming the advance (`advance`, its record id) and its worker, pinning the heads,
//! with the image hash, device and time. Actions of their own, not `signed` with one more field, so
//! that no reader of a day's sign-off (older ones included) takes a confirmed advance for signed
//! lines. An answer answers an advance's dispute as it answers a day's, and an open dispute of an
//! advance holds the day's approval like any dispute. An edit of the advance after it was confirmed
//! keeps the confirmation and shows what changed ([`AdvanceSignoff::changes`]).
//!
//! The signature image is not in the document: its SHA-256 is (`image`). The bytes are kept in the
//! store's `signoff_images` table and as a blob beside the store, and go to the server like a photo
//! (the blob sync, `docs/blobs.md`): the server serves them to readers of a day whose sign-off record
//! names the hash, and draws them in the 施工日志.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{CrewId, LineId, SiteId, WorkerId};
use crate::labor::Amendment;

/// What a sign-off record records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SignoffAction {
    /// The worker confirms his lines (of the day, or of the month when the record names one).
    Signed,
    /// The worker disputes his lines, with a reason.
    Disputed,
    /// The foreman or a manager answers a dispute (a correction made, or why the lines stand).
    Answered,
    /// The crew leader (班组长) confirms the crew's day.
    CrewConfirmed,
    /// The worker confirms he received an advance (the record names it).
    AdvanceConfirmed,
    /// The worker disputes an advance, with a reason.
    AdvanceDisputed,
}

impl SignoffAction {
    /// Every sign-off action.
    pub const ALL: [SignoffAction; 6] = [
        SignoffAction::Signed,
        SignoffAction::Disputed,
        SignoffAction::Answered,
        SignoffAction::CrewConfirmed,
        SignoffAction::AdvanceConfirmed,
        SignoffAction::AdvanceDisputed,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            SignoffAction::Signed => "signed",
            SignoffAction::Disputed => "disputed",
            SignoffAction::Answered => "answered",
            SignoffAction::CrewConfirmed => "crew_confirmed",
            SignoffAction::AdvanceConfirmed => "advance_confirmed",
            SignoffAction::AdvanceDisputed => "advance_disputed",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<SignoffAction> {
        SignoffAction::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// One sign-off record as stored in the day document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[allow(missing_docs, reason = "fields named for what they hold")]
pub struct SignoffEvent {
    /// The record's id (random).
    pub id: String,
    pub action: SignoffAction,
    /// The day it is on (the document's date; not a stored field).
    pub date: NaiveDate,
    /// Who wrote it: the user of the device it was taken on (the foreman, whose phone the worker
    /// signs on).
    pub by: String,
    /// The worker who signs or disputes (`None` for a crew confirmation and an answer).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub worker: Option<WorkerId>,
    /// The crew confirmed (`None` unless a crew confirmation).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub crew: Option<CrewId>,
    /// The labor lines the record covers, by id.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub lines: Vec<LineId>,
    /// The month confirmed (`YYYY-MM`), when the record is part of a month's confirmation.
    pub month: Option<String>,
    /// SHA-256 of the signature image, hex; `None` for a tap of consent.
    pub image: Option<String>,
    /// The device it was taken on.
    pub device: String,
    /// When, by that device's clock.
    pub at: DateTime<Utc>,
    /// The document version signed (change hashes, hex).
    pub heads: Vec<String>,
    /// A dispute's or an answer's reason.
    pub reason: String,
    /// The dispute an answer answers.
    pub answers: Option<String>,
    /// The advance (its record id, `adv-…`) an advance's confirmation or dispute is about.
    #[serde(default)]
    pub advance: Option<String>,
}

/// Where one worker's day stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SignoffState {
    /// He has lines and has neither signed nor disputed them.
    Unsigned,
    /// He signed, and his lines are as he signed them.
    Signed,
    /// He signed, and his lines changed since: he has to re-sign.
    ChangedSinceSigned,
    /// He disputes his lines and the dispute is not answered.
    Disputed,
}

impl SignoffState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            SignoffState::Unsigned => "unsigned",
            SignoffState::Signed => "signed",
            SignoffState::ChangedSinceSigned => "changed_since_signed",
            SignoffState::Disputed => "disputed",
        }
    }
}

/// One worker's sign-off on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[allow(missing_docs, reason = "fields named for what they hold")]
pub struct WorkerSignoff {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub worker: WorkerId,
    pub state: SignoffState,
    /// His last signature (a day's or a month's), kept through later edits.
    pub signature: Option<SignoffEvent>,
    /// What changed in his lines between the version he signed and now (empty when signed and
    /// unchanged, or never signed).
    pub changes: Vec<Amendment>,
    /// His disputes not yet answered.
    pub open_disputes: Vec<SignoffEvent>,
}

/// A crew leader's confirmation of his crew's day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[allow(missing_docs, reason = "fields named for what they hold")]
pub struct CrewSignoff {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub crew: CrewId,
    /// The last confirmation, if any.
    pub confirmation: Option<SignoffEvent>,
}

/// The sign-off of one site-day: every worker with lines (or a record), every crew with lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[allow(missing_docs, reason = "fields named for what they hold")]
pub struct DaySignoffs {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub site: SiteId,
    pub date: NaiveDate,
    /// By worker id.
    pub workers: Vec<WorkerSignoff>,
    /// By crew id.
    pub crews: Vec<CrewSignoff>,
    /// Whether the site's master data requires crew confirmation before the day is submitted.
    pub crew_confirmation_required: bool,
    /// Every sign-off record of the day, oldest first.
    pub events: Vec<SignoffEvent>,
}

impl DaySignoffs {
    /// Disputes of the day that no answer answers.
    pub fn open_disputes(&self) -> impl Iterator<Item = &SignoffEvent> {
        self.workers.iter().flat_map(|w| w.open_disputes.iter())
    }
}

/// Where one advance stands against its worker's confirmation: the states of a day's sign-off, read
/// for the advance (`Unsigned`: not confirmed; `ChangedSinceSigned`: edited since he confirmed it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[allow(missing_docs, reason = "fields named for what they hold")]
pub struct AdvanceSignoff {
    /// The advance as it stands now.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub advance: crate::pay::Advance,
    pub state: SignoffState,
    /// His last confirmation of it, kept through later edits.
    pub confirmation: Option<SignoffEvent>,
    /// What changed in the advance between the version he confirmed and now (`line` is the
    /// advance's id; fields `worker`, `amount_fen`, `paid_by`, `note`, `deleted`).
    pub changes: Vec<Amendment>,
    /// His disputes of it not yet answered.
    pub open_disputes: Vec<SignoffEvent>,
}

/// One worker's month: the days he has lines and where each stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[allow(missing_docs, reason = "fields named for what they hold")]
pub struct MonthSignoff {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub worker: WorkerId,
    /// `Unsigned` if any day has no signature, `Disputed` if any day has an open dispute,
    /// `ChangedSinceSigned` if any day changed since he signed it, else `Signed`.
    pub state: SignoffState,
    /// Each day he has lines on, with its state.
    pub days: Vec<MonthDay>,
}

/// One day of a worker's month and where it stands against his month's confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[allow(missing_docs, reason = "fields named for what they hold")]
pub struct MonthDay {
    pub date: NaiveDate,
    pub state: SignoffState,
}

/// The monthly attendance sheet of a site: who still has to sign or re-sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[allow(missing_docs, reason = "fields named for what they hold")]
pub struct MonthSheet {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub site: SiteId,
    /// `YYYY-MM`.
    pub month: String,
    /// By worker id.
    pub workers: Vec<MonthSignoff>,
}

impl MonthSignoff {
    /// The month's state from its days' states: the worst one wins.
    pub(crate) fn fold(days: &[MonthDay]) -> SignoffState {
        let has = |s| days.iter().any(|d| d.state == s);
        if has(SignoffState::Disputed) {
            SignoffState::Disputed
        } else if has(SignoffState::Unsigned) {
            SignoffState::Unsigned
        } else if has(SignoffState::ChangedSinceSigned) {
            SignoffState::ChangedSinceSigned
        } else {
            SignoffState::Signed
        }
    }
}

/// A signature image as the 施工日志 draws it: a JPEG of at most 256 px on white (a signature PNG is
/// usually transparent, which a JPEG would turn black); `None` for bytes that are not an image this
/// build decodes (stroke data), which the log states in words instead.
pub fn signature_picture(bytes: &[u8]) -> Option<Vec<u8>> {
    let img = image::load_from_memory(bytes).ok()?;
    let small = img.thumbnail(256, 256).to_rgba8();
    let mut white = image::RgbImage::from_pixel(small.width(), small.height(), image::Rgb([255, 255, 255]));
    for (x, y, p) in small.enumerate_pixels() {
        let a = u16::from(p.0[3]);
        let over = |c: u8| ((u16::from(c) * a + 255 * (255 - a)) / 255) as u8;
        white.put_pixel(x, y, image::Rgb([over(p.0[0]), over(p.0[1]), over(p.0[2])]));
    }
    let mut out = std::io::Cursor::new(Vec::new());
    white.write_to(&mut out, image::ImageFormat::Jpeg).ok()?;
    Some(out.into_inner())
}
