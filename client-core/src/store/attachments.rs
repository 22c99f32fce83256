//! Attaching files to a day and the phone's side of their transfer: the bytes as content-addressed
//! files beside the store (`<store>.blobs/<sha256>`, see `migrations/006_blob_transfers.sql` for
//! why files), thumbnails cached beside them, and the `blob_transfers` queue the blob sync works
//! through (`sync::blobs`).
//!
//! A blob file is written whole before it is named (`.part`, fsync, rename), so a file under its
//! hash always holds exactly those bytes; a download resumes by appending to its `.part`.

use std::io::Write;
use std::path::PathBuf;

use chrono::{NaiveDate, Utc};

use super::Store;
use crate::attachments::{
    Attachment, AttachmentStatus, BlobHash, ByteSize, Gps, MAX_CAPTION_CHARS, Target, Transfer, media_type_of,
    record_id,
};
use crate::doc::day;
use crate::error::{Error, Result};
use crate::ids::{DocId, SiteId};
use crate::validate;

/// What to attach.
#[derive(Debug, Clone)]
pub struct AttachRequest<'a> {
    /// The site of the day.
    pub site: SiteId,
    /// The site's calendar date.
    pub date: NaiveDate,
    /// The file's bytes.
    pub bytes: &'a [u8],
    /// The file's name, for its media type (`IMG_0001.jpg`).
    pub file_name: &'a str,
    /// What it shows.
    pub caption: &'a str,
    /// What it belongs to.
    pub target: Target,
    /// Where it was taken, if the app knows.
    pub gps: Option<Gps>,
    /// On an approved day: the reason for the amendment.
    pub amend: Option<&'a str>,
}

/// One transfer the blob sync has to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingTransfer {
    /// The blob.
    pub sha256: BlobHash,
    /// The day document that references it.
    pub doc: DocId,
    /// Upload (`true`) or download.
    pub upload: bool,
    /// The blob's size.
    pub size: ByteSize,
}

impl Store {
    /// The directory of this store's blobs: beside the store file.
    pub fn blob_dir(&self) -> PathBuf {
        let mut p = self.path().as_os_str().to_owned();
        p.push(".blobs");
        PathBuf::from(p)
    }

    /// The file of a blob, whether or not it is here.
    pub fn blob_path(&self, hash: &BlobHash) -> PathBuf {
        self.blob_dir().join(hash.as_str())
    }

    /// The partial file of a blob being downloaded.
    pub(crate) fn blob_part_path(&self, hash: &BlobHash) -> PathBuf {
        self.blob_dir().join(format!("{hash}.part"))
    }

    /// The cached thumbnail of a blob.
    pub fn thumbnail_path(&self, hash: &BlobHash) -> PathBuf {
        self.blob_dir().join(format!("{hash}.thumb.jpg"))
    }

    /// Whether the blob's bytes are here.
    pub fn has_blob(&self, hash: &BlobHash) -> bool {
        self.blob_path(hash).is_file()
    }

    /// Names a complete `.part` file as its blob after checking its hash, and makes its thumbnail.
    #[cfg(feature = "net")]
    pub(crate) fn finish_blob(&self, hash: &BlobHash) -> Result<()> {
        let part = self.blob_part_path(hash);
        let bytes = std::fs::read(&part)?;
        if BlobHash::of(&bytes) != *hash {
            std::fs::remove_file(&part)?;
            return Err(Error::Sync(format!("the server sent other bytes than blob {hash}")));
        }
        std::fs::rename(&part, self.blob_path(hash))?;
        self.make_thumbnail(hash, &bytes);
        Ok(())
    }

    /// Writes a blob's bytes under its hash (no-op when already here).
    pub(crate) fn write_blob(&self, hash: &BlobHash, bytes: &[u8]) -> Result<()> {
        if self.has_blob(hash) {
            return Ok(());
        }
        std::fs::create_dir_all(self.blob_dir())?;
        let part = self.blob_part_path(hash);
        let mut f = std::fs::File::create(&part)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&part, self.blob_path(hash))?;
        self.make_thumbnail(hash, bytes);
        Ok(())
    }

    /// Caches the thumbnail of an image blob; other files have none (and a failure to write one
    /// only costs the list its picture).
    fn make_thumbnail(&self, hash: &BlobHash, bytes: &[u8]) {
        if let Some(jpeg) = crate::attachments::thumbnail(bytes) {
            let _ = std::fs::write(self.thumbnail_path(hash), jpeg);
        }
    }

    /// Attaches a file to a day or one of its lines, offline: the bytes are kept here under their
    /// hash, the day document gets the metadata, and the upload is queued. Returns the attachment.
    pub fn attach(&mut self, req: &AttachRequest<'_>) -> Result<Attachment> {
        self.roster(&req.site)?;
        validate::day_date(req.date)?;
        let size = ByteSize::new(req.bytes.len() as u64)?;
        if req.caption.chars().count() > MAX_CAPTION_CHARS {
            return Err(Error::invalid("caption", "a caption is at most 1000 characters"));
        }
        let (content, status) = self.day_content(&req.site, req.date)?;
        let exists = match &req.target {
            Target::Day => true,
            Target::Labor(id) => content.labor.get(id.as_str()).is_some_and(|l| !l.deleted),
            Target::Progress(id) => content.progress.get(id.as_str()).is_some_and(|l| !l.deleted),
            Target::Delay(id) => content.delays.iter().any(|d| &d.id == id),
        };
        if !exists {
            return Err(Error::UnknownLine(req.target.as_text()));
        }
        let amend = Self::check_unlocked(&req.site, req.date, status, req.amend)?;
        let hash = BlobHash::of(req.bytes);
        let attachment = Attachment {
            id: record_id(&req.target, &hash),
            sha256: hash.clone(),
            size,
            media_type: media_type_of(req.file_name).to_string(),
            caption: req.caption.trim().to_string(),
            target: req.target.as_text(),
            added_by: self.user().to_string(),
            added_at: Utc::now(),
            gps: req.gps,
        };
        // The bytes first: a document naming a blob this phone does not hold could never upload it.
        self.write_blob(&hash, req.bytes)?;
        self.change_day(&req.site, req.date, amend, |tx| day::put_attachment(tx, &attachment))?;
        self.queue_upload(&hash, &DocId::Day(req.site.clone(), req.date), size)?;
        Ok(attachment)
    }

    /// Queues the upload of a blob held here for the day document that references it (once per
    /// blob and day): attachments and sign-off signature images alike.
    pub(crate) fn queue_upload(&self, hash: &BlobHash, doc: &DocId, size: ByteSize) -> Result<()> {
        self.db().exec(
            "INSERT INTO blob_transfers (sha256, doc_id, direction, size_bytes) VALUES (?1, ?2, 'up', ?3)
             ON CONFLICT (sha256, doc_id, direction) DO NOTHING",
            &[
                hash.as_str().into(),
                doc.to_string().as_str().into(),
                (size.bytes() as i64).into(),
            ],
        )?;
        Ok(())
    }

    /// The day's attachments with where their bytes are, in the order they were added.
    pub fn attachments(&mut self, site: &SiteId, date: NaiveDate) -> Result<Vec<AttachmentStatus>> {
        self.roster(site)?;
        let id = DocId::Day(site.clone(), date);
        let found = self.read_doc(&id, |doc| {
            let now = day::read(doc, None)?;
            let approved = day::approved_version(doc, &now)?;
            Ok((now, approved))
        })?;
        let Some((now, approved)) = found else {
            return Ok(Vec::new());
        };
        let doc = id.to_string();
        let mut out = Vec::new();
        for a in now.attachments {
            let transfer = self.transfer_of(&a, &doc)?;
            let thumb = self.thumbnail_path(&a.sha256);
            out.push(AttachmentStatus {
                status: transfer.describe(a.size),
                transfer,
                approved: approved
                    .as_ref()
                    .is_some_and(|c| c.attachments.iter().any(|x| x.id == a.id && x.sha256 == a.sha256)),
                thumbnail: thumb.is_file().then_some(thumb),
                attachment: a,
            });
        }
        out.sort_by(|x, y| (x.attachment.added_at, &x.attachment.id).cmp(&(y.attachment.added_at, &y.attachment.id)));
        Ok(out)
    }

    /// Where one attachment's bytes are.
    fn transfer_of(&self, a: &Attachment, doc: &str) -> Result<Transfer> {
        let here = self.has_blob(&a.sha256);
        if self.db().dialect() == super::sql::Dialect::Postgres {
            // Only the server keeps documents in PostgreSQL, and it has no transfer queue (that is
            // a phone's): its bytes are in the server's blob storage, which its callers ask.
            return Ok(if here { Transfer::Downloaded } else { Transfer::Missing });
        }
        let rows = self.db().query(
            "SELECT direction, done_bytes, done FROM blob_transfers WHERE sha256 = ?1 AND doc_id = ?2",
            &[a.sha256.as_str().into(), doc.into()],
        )?;
        let mut up = None;
        let mut down = None;
        for r in rows {
            let state = (r.int(1)? as u64, r.int(2)? == 1);
            if r.text(0)? == "up" {
                up = Some(state);
            } else {
                down = Some(state);
            }
        }
        Ok(match (here, up, down) {
            (true, Some((_, true)), _) => Transfer::OnServer,
            (true, Some((0, false)), _) => Transfer::Queued,
            (true, Some((n, false)), _) => Transfer::Sending { sent: n },
            (true, None, _) => Transfer::Downloaded,
            (false, _, Some((n, false))) if n > 0 => Transfer::Receiving { received: n },
            (false, _, _) => Transfer::Missing,
        })
    }

    /// Every transfer the blob sync has to make: uploads not confirmed yet, and downloads of blobs
    /// that day documents here reference and this phone does not hold.
    pub fn pending_transfers(&mut self) -> Result<Vec<PendingTransfer>> {
        let mut out = Vec::new();
        let rows = self.db().query(
            "SELECT sha256, doc_id, size_bytes FROM blob_transfers WHERE direction = 'up' AND done = 0
             ORDER BY rowid",
            &[],
        )?;
        for r in rows {
            let (Ok(sha256), Ok(doc)) = (BlobHash::parse(&r.text(0)?), r.text(1)?.parse::<DocId>()) else {
                continue;
            };
            out.push(PendingTransfer {
                sha256,
                doc,
                upload: true,
                size: ByteSize::new(r.int(2)? as u64)?,
            });
        }
        for doc in self.doc_ids()? {
            if !matches!(doc, DocId::Day(..)) {
                continue;
            }
            let attachments = self
                .read_doc(&doc, |d| Ok(day::read(d, None)?.attachments))?
                .unwrap_or_default();
            for a in attachments {
                let queued = out.iter().any(|p| p.sha256 == a.sha256);
                if !queued && !self.has_blob(&a.sha256) {
                    out.push(PendingTransfer {
                        sha256: a.sha256,
                        doc: doc.clone(),
                        upload: false,
                        size: a.size,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Records how many bytes of a transfer the other side holds, and whether it is complete.
    pub fn set_transfer(&mut self, t: &PendingTransfer, done_bytes: u64, done: bool) -> Result<()> {
        self.db().exec(
            "INSERT INTO blob_transfers (sha256, doc_id, direction, size_bytes, done_bytes, done)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (sha256, doc_id, direction)
             DO UPDATE SET done_bytes = excluded.done_bytes, done = excluded.done, error = ''",
            &[
                t.sha256.as_str().into(),
                t.doc.to_string().as_str().into(),
                if t.upload { "up" } else { "down" }.into(),
                (t.size.bytes() as i64).into(),
                (done_bytes as i64).into(),
                done.into(),
            ],
        )?;
        Ok(())
    }

    /// Whether the blob sync may run on a metered network (mobile data): the app's setting,
    /// `true` unless it chose unmetered networks only.
    pub fn blobs_on_metered(&self) -> Result<bool> {
        Ok(self.meta(BLOBS_UNMETERED_ONLY)?.as_deref() != Some("1"))
    }

    /// Limits the blob sync to unmetered networks (Wi-Fi), or lifts the limit. Documents still sync
    /// on any network: they are small and the day's record must not wait for Wi-Fi.
    pub fn set_blobs_unmetered_only(&mut self, only: bool) -> Result<()> {
        self.set_meta(BLOBS_UNMETERED_ONLY, if only { "1" } else { "0" })
    }
}

/// The meta key of the unmetered-only setting.
const BLOBS_UNMETERED_ONLY: &str = "blobs_unmetered_only";

impl Store {
    /// Whether a day document references a blob: an attachment now or in the version its last
    /// approval pinned (a photo removed after the approval is still evidence of what was approved),
    /// or the signature image of any sign-off record (records are append-only: a signature stays
    /// evidence of what was signed). What the server asks before it serves a blob.
    pub fn references_blob(&mut self, doc: &DocId, hash: &BlobHash) -> Result<bool> {
        if !matches!(doc, DocId::Day(..)) {
            return Ok(false);
        }
        Ok(self
            .read_doc(doc, |d| {
                let now = day::read(d, None)?;
                if now.attachments.iter().any(|a| a.sha256 == *hash) {
                    return Ok(true);
                }
                if day::approved_version(d, &now)?.is_some_and(|c| c.attachments.iter().any(|a| a.sha256 == *hash)) {
                    return Ok(true);
                }
                Ok(crate::doc::signoff::events(d, None)?.iter().any(|e| {
                    e.image
                        .as_deref()
                        .is_some_and(|i| i.eq_ignore_ascii_case(hash.as_str()))
                }))
            })?
            .unwrap_or(false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{WorkItemId, WorkerId, parse_date};
    use crate::units::WorkDays;

    fn req<'a>(bytes: &'a [u8], target: Target, amend: Option<&'a str>) -> AttachRequest<'a> {
        AttachRequest {
            site: SiteId::new("site-hz-01").unwrap(),
            date: parse_date("2026-12-01").unwrap(),
            bytes,
            file_name: "IMG_1.jpg",
            caption: "rebar before the pour",
            target,
            gps: Some(Gps::new(30_274_000, 120_155_000).unwrap()),
            amend,
        }
    }

    #[test]
    fn an_approval_pins_the_photos_and_one_added_after_it_is_an_amendment() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path().join("phone.sqlite3")).unwrap();
        store
            .import_dir(std::path::Path::new(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../fixtures/small"
            )))
            .unwrap();
        let (site, date) = (SiteId::new("site-hz-01").unwrap(), parse_date("2026-12-01").unwrap());
        let line = store
            .add_labor(
                &crate::store::entry(
                    site.clone(),
                    date,
                    WorkerId::new("w-0001").unwrap(),
                    WorkItemId::new("site-hz-01/wi-4.1").unwrap(),
                    WorkDays::parse("1.0").unwrap(),
                ),
                None,
            )
            .unwrap();
        // A line that is not the day's is refused, and nothing is written.
        let missing = req(
            b"x",
            Target::Labor(crate::ids::LineId::new("no-such-line").unwrap()),
            None,
        );
        assert!(matches!(store.attach(&missing), Err(Error::UnknownLine(_))));
        assert!(store.attachments(&site, date).unwrap().is_empty());

        let before = store
            .attach(&req(b"photo one", Target::Labor(line.id.clone()), None))
            .unwrap();
        assert_eq!(before.sha256, BlobHash::of(b"photo one"));
        assert_eq!(std::fs::read(store.blob_path(&before.sha256)).unwrap(), b"photo one");
        store.submit_day(&site, date).unwrap();
        store.approve_day(&site, date).unwrap();

        // Approved: a photo added now must say why, and then shows as a change to review.
        assert!(matches!(
            store.attach(&req(b"photo two", Target::Day, None)),
            Err(Error::DayLocked { .. })
        ));
        let after = store
            .attach(&req(b"photo two", Target::Day, Some("the pour, photographed late")))
            .unwrap();
        let listed = store.attachments(&site, date).unwrap();
        let approved: Vec<(&BlobHash, bool)> = listed.iter().map(|a| (&a.attachment.sha256, a.approved)).collect();
        assert_eq!(approved, [(&before.sha256, true), (&after.sha256, false)]);
        assert!(listed.iter().all(|a| a.transfer == Transfer::Queued));
        let changed = store.amendments(&site, date).unwrap();
        assert!(
            changed
                .iter()
                .any(|c| c.line == after.id && c.field == "sha256" && c.now.as_deref() == Some(after.sha256.as_str())),
            "{changed:?}"
        );
        assert_eq!(
            listed[0].attachment.gps,
            Some(Gps::new(30_274_000, 120_155_000).unwrap())
        );
    }
}
