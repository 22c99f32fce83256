//! Photos and files attached to a day (`attach`, `attachments`); `sync` moves their bytes.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use sitesync_core::Store;
use sitesync_core::attachments::Target;
use sitesync_core::ids::LineId;
use sitesync_core::store::attachments::AttachRequest;

use crate::input::SiteDay;
use crate::msg::{Col, cols, transfer};
use crate::render::{json_out, table};

#[derive(Args, Debug)]
pub struct AttachArgs {
    #[command(flatten)]
    pub day: SiteDay,
    /// The file (a photo, a delivery note as PDF …); kept in the store's `.blobs` folder.
    pub file: PathBuf,
    /// What it shows.
    #[arg(long, default_value = "")]
    pub caption: String,
    /// Attach it to this labor or progress line (its id, from `day`), or `delay:ID`; without it,
    /// to the day.
    #[arg(long)]
    pub line: Option<String>,
    /// On an approved day: the reason for the amendment.
    #[arg(long)]
    pub amend: Option<String>,
}

/// Attaches a file and prints its SHA-256 (hex), the address it is stored and synced under.
pub fn attach(store: &mut Store, out: &mut impl Write, args: AttachArgs) -> Result<()> {
    let (site, date) = args.day.write(store)?;
    let bytes = std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let target = match &args.line {
        None => Target::Day,
        Some(given) if given.contains(':') => Target::parse(given)?,
        Some(given) => {
            // A line id names a labor or a progress line: whichever the day holds.
            let id = LineId::new(given)?;
            let sheet = store.day(&site, date)?;
            if sheet.progress.iter().any(|p| p.id == id) {
                Target::Progress(id)
            } else {
                Target::Labor(id)
            }
        }
    };
    let name = args.file.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let a = store.attach(&AttachRequest {
        site,
        date,
        bytes: &bytes,
        file_name: name,
        caption: &args.caption,
        target,
        gps: None,
        amend: args.amend.as_deref(),
    })?;
    writeln!(out, "{}", a.sha256)?;
    Ok(())
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    pub day: SiteDay,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Lists the day's attachments with where their bytes are.
pub fn list(store: &mut Store, out: &mut impl Write, args: ListArgs) -> Result<()> {
    let (site, date) = args.day.read(store)?;
    let list = store.attachments(&site, date)?;
    if args.json {
        return json_out(out, &list);
    }
    table(
        out,
        &cols(&[
            Col::Sha256,
            Col::Line,
            Col::MediaType,
            Col::Bytes,
            Col::Status,
            Col::Caption,
        ]),
        list.iter().map(|s| {
            let a = &s.attachment;
            vec![
                a.sha256.as_str()[..12].to_string(),
                a.target.clone(),
                a.media_type.clone(),
                a.size.bytes().to_string(),
                transfer(&s.transfer, a.size),
                a.caption.clone(),
            ]
        }),
    )
}
