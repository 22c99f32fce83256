//! Photos and small files attached to a site-day, a labor line, a progress line or a delay.
//!
//! Decision (2026-11-30): the day document holds only the *metadata* (content hash, size, media
//! type, caption, who, when, optional GPS) as records of its `day` table, keyed `att-{id}`; the bytes
//! live outside Automerge, addressed by their SHA-256, on the phone beside its store and on the
//! server in its blob storage. A table of its own was not possible: every table is made by the
//! document's genesis, which must never change (`doc::genesis_is_stable`). Records in the `day`
//! table follow the day's rules as they are: a foreman of the site may add them, an approved day is
//! locked (an attachment added after approval is an amendment with a reason), and the approval's
//! pinned heads pin the attachment list with every other line (`doc::day::amendments` shows an
//! attachment added or removed since).
//!
//! The record id is derived from the target and the hash, so the same photo attached to the same
//! line on two phones offline is one record after the merge, and attaching it to another line is
//! another record.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::ids::LineId;

/// The largest attachment a day document may reference: 64 MiB. The server may enforce a lower
/// limit on uploads (`--max-blob-bytes`); this bound is what every replica holds the document to.
pub const MAX_ATTACHMENT_BYTES: u64 = 64 * 1024 * 1024;

/// The prefix of attachment records in the day table.
pub(crate) const RECORD_PREFIX: &str = "att-";

/// A file's SHA-256, 64 lowercase hex digits: the blob's address everywhere.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BlobHash(String);

impl BlobHash {
    /// The hash of `bytes`.
    pub fn of(bytes: &[u8]) -> BlobHash {
        BlobHash(hex::encode(Sha256::digest(bytes)))
    }

    /// Parses 64 hex digits (upper case is folded to lower case).
    pub fn parse(text: &str) -> Result<BlobHash> {
        let t = text.trim().to_ascii_lowercase();
        if t.len() != 64 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::invalid("sha256", format!("{text:?} is not 64 hex digits")));
        }
        Ok(BlobHash(t))
    }

    /// The hex text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for BlobHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for BlobHash {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        BlobHash::parse(&s)
    }
}

impl From<BlobHash> for String {
    fn from(h: BlobHash) -> String {
        h.0
    }
}

/// A size in bytes, at most [`MAX_ATTACHMENT_BYTES`] and never zero (an empty file is no evidence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ByteSize(u64);

impl ByteSize {
    /// `bytes`, refused when zero or over [`MAX_ATTACHMENT_BYTES`].
    pub fn new(bytes: u64) -> Result<ByteSize> {
        if bytes == 0 {
            return Err(Error::invalid("size", "the file is empty"));
        }
        if bytes > MAX_ATTACHMENT_BYTES {
            return Err(Error::invalid(
                "size",
                format!("{bytes} bytes is more than an attachment may hold ({MAX_ATTACHMENT_BYTES})"),
            ));
        }
        Ok(ByteSize(bytes))
    }

    /// The number of bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }
}

/// What an attachment belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// The site-day as a whole.
    Day,
    /// A labor line.
    Labor(LineId),
    /// A progress line.
    Progress(LineId),
    /// A delay (its record id).
    Delay(String),
}

impl Target {
    /// The stored text: `day`, `labor:ID`, `progress:ID`, `delay:ID`.
    pub fn as_text(&self) -> String {
        match self {
            Target::Day => "day".into(),
            Target::Labor(id) => format!("labor:{id}"),
            Target::Progress(id) => format!("progress:{id}"),
            Target::Delay(id) => format!("delay:{id}"),
        }
    }

    /// Parses the stored text.
    pub fn parse(text: &str) -> Result<Target> {
        let bad = || {
            Error::invalid(
                "target",
                format!("{text:?} is not day, labor:ID, progress:ID or delay:ID"),
            )
        };
        if text == "day" {
            return Ok(Target::Day);
        }
        let (kind, id) = text.split_once(':').ok_or_else(bad)?;
        match kind {
            "labor" => Ok(Target::Labor(LineId::new(id)?)),
            "progress" => Ok(Target::Progress(LineId::new(id)?)),
            "delay" if !id.is_empty() && id.len() <= 64 && !id.contains('.') => Ok(Target::Delay(id.to_string())),
            _ => Err(bad()),
        }
    }
}

/// Where a photo was taken, in millionths of a degree (WGS-84), as the app's location API gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gps {
    /// Latitude, -90,000,000 to 90,000,000.
    pub lat_micro: i64,
    /// Longitude, -180,000,000 to 180,000,000.
    pub lon_micro: i64,
}

impl Gps {
    /// A position, refused outside the globe.
    pub fn new(lat_micro: i64, lon_micro: i64) -> Result<Gps> {
        if !(-90_000_000..=90_000_000).contains(&lat_micro) || !(-180_000_000..=180_000_000).contains(&lon_micro) {
            return Err(Error::invalid("gps", "latitude or longitude outside the globe"));
        }
        Ok(Gps { lat_micro, lon_micro })
    }
}

/// One attachment as the day document holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attachment {
    /// The record id (derived from target and hash).
    pub id: String,
    /// The content's address.
    pub sha256: BlobHash,
    /// The file's size.
    pub size: ByteSize,
    /// `image/jpeg`, `application/pdf` …
    pub media_type: String,
    /// What the photo shows, as the foreman wrote it.
    pub caption: String,
    /// What it is attached to, as stored (`day`, `labor:ID` …).
    pub target: String,
    /// Who attached it.
    pub added_by: String,
    /// When it was attached (the phone's clock).
    pub added_at: DateTime<Utc>,
    /// Where, if the app gave a position.
    pub gps: Option<Gps>,
}

/// The longest caption kept, in characters.
pub const MAX_CAPTION_CHARS: usize = 1000;

/// The record id of `hash` attached to `target`.
pub(crate) fn record_id(target: &Target, hash: &BlobHash) -> String {
    let digest = Sha256::digest(format!("{}\0{}", target.as_text(), hash).as_bytes());
    format!("{RECORD_PREFIX}{}", &hex::encode(digest)[..32])
}

/// The media type of a file, from its name's extension (phones name photos `.jpg`); anything not
/// known is `application/octet-stream`.
pub fn media_type_of(file_name: &str) -> &'static str {
    let ext = file_name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "heic" => "image/heic",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        _ => "application/octet-stream",
    }
}

/// Checks a media type's shape: `type/subtype`, printable ASCII, at most 100 characters.
pub(crate) fn check_media_type(m: &str) -> std::result::Result<(), String> {
    let ok = m.len() <= 100
        && m.split_once('/')
            .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty() && !b.contains('/'))
        && m.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(format!("{m:?} is not a media type"))
    }
}

/// Where one attachment's bytes are, as this phone sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum Transfer {
    /// Here, waiting to be uploaded.
    Queued,
    /// Uploading: `sent` of the file's bytes are on the server.
    Sending {
        /// Bytes the server holds.
        sent: u64,
    },
    /// The server holds it (and this phone does).
    OnServer,
    /// Not on this phone yet; the next blob sync fetches it.
    Missing,
    /// Downloading: `received` bytes are here.
    Receiving {
        /// Bytes this phone holds.
        received: u64,
    },
    /// Here, and received from the server.
    Downloaded,
}

impl Transfer {
    /// A few words for a person: `queued`, `sending 42%`, `on the server` …
    pub fn describe(&self, size: ByteSize) -> String {
        let pct = |n: u64| (n.saturating_mul(100) / size.bytes().max(1)).min(100);
        match self {
            Transfer::Queued => "queued".into(),
            Transfer::Sending { sent } => format!("sending {}%", pct(*sent)),
            Transfer::OnServer => "on the server".into(),
            Transfer::Missing => "not downloaded".into(),
            Transfer::Receiving { received } => format!("receiving {}%", pct(*received)),
            Transfer::Downloaded => "downloaded".into(),
        }
    }
}

/// An attachment with its transfer state, as the phone lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttachmentStatus {
    /// The attachment.
    #[serde(flatten)]
    pub attachment: Attachment,
    /// Where its bytes are.
    pub transfer: Transfer,
    /// `transfer` in words.
    pub status: String,
    /// Whether it is part of the version the last approval pinned.
    pub approved: bool,
    /// The cached thumbnail (JPEG), when the bytes are here and are an image.
    pub thumbnail: Option<std::path::PathBuf>,
}

/// The longest side of a thumbnail, in pixels: enough for a list row or a dashboard tile.
pub const THUMBNAIL_PX: u32 = 256;

/// A JPEG thumbnail of an image (JPEG or PNG), at most [`THUMBNAIL_PX`] on its longest side; `None`
/// when the bytes are not an image this build decodes (a PDF, a HEIC photo). Generated once per blob
/// and cached by the caller (beside the blob on the phone, in the blob storage on the server).
pub fn thumbnail(bytes: &[u8]) -> Option<Vec<u8>> {
    let img = image::load_from_memory(bytes).ok()?;
    let small = img.thumbnail(THUMBNAIL_PX, THUMBNAIL_PX).to_rgb8();
    let mut out = std::io::Cursor::new(Vec::new());
    small.write_to(&mut out, image::ImageFormat::Jpeg).ok()?;
    Some(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_parse_and_targets_round_trip() {
        let h = BlobHash::of(b"photo");
        assert_eq!(BlobHash::parse(&h.as_str().to_uppercase()).unwrap(), h);
        assert!(BlobHash::parse("abc").is_err());
        assert!(BlobHash::parse(&"g".repeat(64)).is_err());
        for t in ["day", "labor:l-1", "progress:p-2", "delay:abc"] {
            assert_eq!(Target::parse(t).unwrap().as_text(), t);
        }
        assert!(Target::parse("worker:w-1").is_err());
        assert!(ByteSize::new(0).is_err());
        assert!(ByteSize::new(MAX_ATTACHMENT_BYTES + 1).is_err());
        assert!(Gps::new(90_000_001, 0).is_err());
        // The same file on the same target is one record on every phone.
        assert_eq!(record_id(&Target::Day, &h), record_id(&Target::Day, &h));
        assert_ne!(
            record_id(&Target::Day, &h),
            record_id(&Target::parse("labor:l-1").unwrap(), &h)
        );
    }
}
