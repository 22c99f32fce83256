//! The sync wire protocol: binary, versioned, bounded frames over a WebSocket (`/v1/sync`).
//!
//! A frame is `[version: u8][flags: u8][body]`, where the body is a postcard-encoded [`ClientMsg`] or
//! [`ServerMsg`], deflated when flag bit 0 is set. See `docs/protocol.md` for the exchange.
//!
//! Decision (2026-11-25): the phone keeps, per document, the heads the server last acknowledged as
//! durable; a push carries those, its current heads and the changes since; the server applies them
//! (idempotent: Automerge changes are content-addressed), persists, and answers with what the phone
//! lacks plus its own heads. One round trip per push, any number of documents per frame.

use serde::{Deserialize, Serialize};

use crate::rules::{Author, Role, Violation};
pub use crate::signing::ChangeSig;

/// The protocol version this build speaks (the first byte of every frame). Version 2 (2026-11-30)
/// signs every change, registers the device's key at hello, and refuses single changes; version 3
/// (2026-11-30) adds [`ServerMsg::Welcome`]'s `update`, so a phone a version behind is told in-band.
pub const VERSION: u8 = 3;
/// The oldest version a server of this build still speaks: the one before [`VERSION`]. A phone that
/// speaks it syncs normally (`v2` holds how its messages differ) and is told an update is
/// available; an older or unknown version is refused with `Error { code: Version }`.
pub const OLDEST: u8 = 2;
/// Request header of the upgrade to `/v1/sync` in which a phone (from version 3) says the protocol
/// version it speaks, so a server that no longer speaks it answers HTTP 426 before any frame.
pub const VERSION_HEADER: &str = "x-sitesync-protocol";
/// Response header of the upgrade: `available` when the server speaks a newer version than the
/// phone (said in its request header, or no header: a phone from before version 3), `required` on
/// a 426. The one notice a phone of version 2 can be given: none of its messages has room for it.
pub const UPDATE_HEADER: &str = "x-sitesync-update";
/// Response header of the upgrade: 16 hex digits that change whenever the device's site-mesh
/// credentials would (its user, role or sites, the org's revocation list), so a phone asks for them
/// only then (`sitesync_core::mesh::credentials_due`), not after every sync. Absent from an older
/// server: the phone asks every time.
pub const CREDENTIALS_HEADER: &str = "x-sitesync-credentials";

pub mod v2;
/// Frames larger than this are refused by both sides, compressed or not.
pub const MAX_FRAME: usize = 16 * 1024 * 1024;
/// Bodies at least this large are deflated.
const DEFLATE_FROM: usize = 1024;
/// Flag bit: the body is deflated.
const FLAG_DEFLATE: u8 = 1;

/// A change hash, as Automerge makes it.
pub type Hash = [u8; 32];

/// One document's part of a push or a server update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocSync {
    /// The document id (`day|site-hz-01|2026-09-01`).
    pub doc: String,
    /// Heads the receiver is known to have (the server's last acknowledgement, for a push); the
    /// changes are everything after them. Empty: the changes are the whole document.
    pub base: Vec<Hash>,
    /// The sender's heads once `changes` are applied.
    pub heads: Vec<Hash>,
    /// Automerge changes (or a whole saved document), possibly empty.
    #[serde(with = "serde_bytes")]
    pub changes: Vec<u8>,
    /// A signature for every change in `changes` that the receiver may lack: in a push, the server
    /// refuses a change without one; in an update, the phone keeps them to hand changes on.
    pub sigs: Vec<ChangeSig>,
}

/// What a phone sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub enum ClientMsg {
    /// First message on a connection: the last change cursor this device has applied.
    Hello {
        /// Server change sequence number seen so far (0 for a new phone).
        cursor: u64,
        /// The store's Ed25519 public key, registered to the device on first sight: every change
        /// the store pushes is signed with it.
        key: [u8; 32],
    },
    /// Changes for any number of documents; also asks for what the phone lacks of them.
    Push {
        /// Echoed in the [`ServerMsg::Ack`].
        req: u64,
        docs: Vec<DocSync>,
    },
    /// Acknowledges a [`ServerMsg::Changed`] up to `cursor` (the phone applied and stored it).
    Applied {
        /// The cursor of the update that was applied.
        cursor: u64,
    },
}

/// Why a document was refused; the rest of the batch is unaffected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    /// The device has no grant for the document's site (or org).
    Forbidden,
    /// The device may read but not write the document.
    ReadOnly,
    /// The document id is not one this server knows how to hold.
    UnknownDocument,
    /// The changes are malformed, or belong to another document.
    Malformed,
    /// The server could not store it (disk); retry later.
    Unavailable,
    /// A record the changes touch fails the server's checks (`sitesync_core::validate`): a worker
    /// not on the site's roster, a negative work-day, a rate past the bound, a line under another
    /// document's id, a date outside the window. Nothing of the document's changes was stored.
    Invalid {
        /// The field, as the API names it.
        field: String,
        /// Why, in a sentence.
        reason: String,
    },
}

/// The outcome for one document of a push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub enum DocResult {
    /// Stored durably. `update.heads` are the server's heads (the phone's new acknowledged heads);
    /// `update.changes` is what the phone lacks.
    Synced(DocSync),
    /// The server lacks history the changes depend on (e.g. restored from a backup): send the whole
    /// document. `heads` are what the server has.
    NeedHistory {
        doc: String,
        /// The server's heads.
        heads: Vec<Hash>,
    },
    /// Stored, except the changes listed: each broke a rule (or builds on one that did) and is not
    /// stored. `update` is as in `Synced`; the phone takes the refused changes out of its copy.
    Partial {
        /// The server's heads and what the phone lacks.
        update: DocSync,
        /// The changes not stored, each with the rule it broke.
        refused: Vec<RefusedChange>,
    },
    Refused {
        doc: String,
        reason: Refusal,
    },
}

/// One change the server did not store, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedChange {
    /// The change hash.
    pub hash: Hash,
    /// The rule it broke.
    pub violation: Violation,
}

/// A device of the org, for showing authors while offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct DirectoryEntry {
    /// The device's public key.
    pub key: [u8; 32],
    pub device: String,
    pub user_id: String,
    /// The user's name.
    pub user_name: String,
    /// The user's role.
    pub role: Role,
}

/// Connection-level errors; the server closes the connection after sending one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    /// The frame could not be decoded.
    Malformed,
    /// The frame is larger than [`MAX_FRAME`].
    TooLarge,
    /// The peer speaks another protocol version.
    Version,
    /// The device's token is revoked or unknown.
    Unauthorized,
    /// Too many messages or documents.
    RateLimited,
    /// Something failed on the server.
    Internal,
}

/// What the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub enum ServerMsg {
    /// Answer to `Hello`: the documents the device may read that changed since its cursor, with
    /// what it lacks of them, and the cursor to store once they are applied.
    Welcome {
        /// The server's data epoch: a new one after a restore from backup, telling phones that the
        /// server may have lost changes they saw acknowledged, so they must offer everything again.
        epoch: String,
        /// The server's change cursor covered by `docs`.
        cursor: u64,
        /// The documents, each with `base` = what the server believes the device has.
        docs: Vec<DocSync>,
        /// More updates follow in `Changed` messages (a large first sync is split).
        more: bool,
        /// Who this device is to the server: the phone checks its own writes against the same
        /// rules before making them.
        you: Author,
        /// The org's devices and their keys (the server's own included).
        directory: Vec<DirectoryEntry>,
        /// Whether a newer protocol (so a newer app) exists than the one this phone speaks.
        update: UpdateNotice,
    },
    /// Answer to a `Push`, one result per document in the same order.
    Ack {
        /// The push's `req`.
        req: u64,
        results: Vec<DocResult>,
    },
    /// Live: documents the device may read changed elsewhere.
    Changed {
        /// The server cursor covered.
        cursor: u64,
        /// The documents with what the device lacks.
        docs: Vec<DocSync>,
    },
    /// The connection is being closed for this reason.
    Error {
        /// What went wrong.
        code: ErrorCode,
        /// A message for logs (no secrets, no personal data).
        message: String,
    },
}

/// What a server tells a phone, in its `Welcome`, of the protocol versions it speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UpdateNotice {
    /// The phone speaks the server's current version.
    UpToDate,
    /// The server speaks a newer version (`latest`); this one still works, until the server after
    /// next. The app says an update is available.
    Available {
        /// The server's current version.
        latest: u8,
    },
}

impl UpdateNotice {
    /// What a server of this build tells a phone speaking `version`.
    pub fn for_version(version: u8) -> UpdateNotice {
        if version < VERSION {
            UpdateNotice::Available { latest: VERSION }
        } else {
            UpdateNotice::UpToDate
        }
    }
}

/// Whether a server of this build speaks `version` (a frame's first byte, or a phone's
/// [`VERSION_HEADER`]).
pub fn speaks(version: u8) -> bool {
    (OLDEST..=VERSION).contains(&version)
}

/// The readable reason a phone speaking `version` is refused: what `Error { code: Version }` and
/// the HTTP 426 say.
pub fn refusal_text(version: u8) -> String {
    if version < OLDEST {
        format!(
            "this app speaks sync protocol {version}, which this server no longer speaks (it speaks {OLDEST} \
             to {VERSION}): update the app to sync"
        )
    } else {
        format!("sync protocol {version} is unknown to this server (it speaks {OLDEST} to {VERSION})")
    }
}

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Shorter than the header, or a body that does not decode.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// A protocol version the decoder does not speak.
    #[error("protocol version {0} is not spoken here")]
    Version(u8),
    /// Over [`MAX_FRAME`] (before or after inflating).
    #[error("frame larger than {MAX_FRAME} bytes")]
    TooLarge,
}

impl FrameError {
    /// The error code the server answers with.
    pub fn code(&self) -> ErrorCode {
        match self {
            FrameError::Malformed(_) => ErrorCode::Malformed,
            FrameError::Version(_) => ErrorCode::Version,
            FrameError::TooLarge => ErrorCode::TooLarge,
        }
    }
}

/// Encodes a message as a frame of the current version, deflating bodies worth it.
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    encode_as(VERSION, msg)
}

/// Encodes `msg` as a frame whose first byte is `version`; the body is `msg`'s postcard encoding
/// whatever the version, so `msg` must be the type of that version's message.
fn encode_as<T: Serialize>(version: u8, msg: &T) -> Vec<u8> {
    let body = postcard::to_allocvec(msg).expect("protocol messages always serialize");
    let mut out = Vec::with_capacity(body.len() + 2);
    out.push(version);
    if body.len() >= DEFLATE_FROM {
        // Level 1: most of a frame is Automerge's own compressed columns; the fast level keeps nearly
        // all of the saving at a fraction of the CPU a server pays per device it updates.
        let packed = miniz_oxide::deflate::compress_to_vec(&body, 1);
        if packed.len() < body.len() {
            out.push(FLAG_DEFLATE);
            out.extend_from_slice(&packed);
            return out;
        }
    }
    out.push(0);
    out.extend_from_slice(&body);
    out
}

/// Decodes a frame of the current version, refusing oversize input before and after inflating.
pub fn decode<T: for<'de> Deserialize<'de>>(frame: &[u8]) -> Result<T, FrameError> {
    match version_of(frame)? {
        VERSION => decode_body(frame),
        other => Err(FrameError::Version(other)),
    }
}

/// A phone's frame in any version a server of this build speaks, as the current version's message,
/// with the version it came in (to answer in): the server's decode shim.
pub fn decode_client(frame: &[u8]) -> Result<(u8, ClientMsg), FrameError> {
    match version_of(frame)? {
        VERSION => Ok((VERSION, decode_body(frame)?)),
        v2::VERSION => Ok((v2::VERSION, decode_body::<v2::ClientMsg>(frame)?.into())),
        other => Err(FrameError::Version(other)),
    }
}

/// A server message as a frame of `version`, for a phone that speaks it: the current version's
/// message is turned into that version's (what it has no room for is left out). A refusal
/// (`Error`) is framed in any version at all, the phone's own: `Error` has been the fourth message
/// with the same fields since version 1, so even a phone the server no longer speaks reads why.
pub fn encode_server(version: u8, msg: &ServerMsg) -> Vec<u8> {
    match version {
        VERSION => encode(msg),
        v2::VERSION => encode_as(v2::VERSION, &v2::ServerMsg::from(msg.clone())),
        other => match msg {
            ServerMsg::Error { .. } => encode_as(other, msg),
            _ => encode(msg),
        },
    }
}

/// The version byte of a frame, refusing oversize input.
fn version_of(frame: &[u8]) -> Result<u8, FrameError> {
    if frame.len() > MAX_FRAME {
        return Err(FrameError::TooLarge);
    }
    match frame.first() {
        Some(v) if frame.len() >= 2 => Ok(*v),
        _ => Err(FrameError::Malformed("shorter than the header".into())),
    }
}

/// The body of a frame whose version was checked, inflated and decoded as `T`.
fn decode_body<T: for<'de> Deserialize<'de>>(frame: &[u8]) -> Result<T, FrameError> {
    let [_, flags, body @ ..] = frame else {
        return Err(FrameError::Malformed("shorter than the header".into()));
    };
    let inflated;
    let body = match *flags {
        0 => body,
        FLAG_DEFLATE => {
            inflated =
                miniz_oxide::inflate::decompress_to_vec_with_limit(body, MAX_FRAME).map_err(|e| match e.status {
                    miniz_oxide::inflate::TINFLStatus::HasMoreOutput => FrameError::TooLarge,
                    _ => FrameError::Malformed("bad deflate stream".into()),
                })?;
            &inflated[..]
        }
        f => return Err(FrameError::Malformed(format!("unknown flags {f:#x}"))),
    };
    let (msg, rest) = postcard::take_from_bytes(body).map_err(|e| FrameError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(FrameError::Malformed("trailing bytes".into()));
    }
    Ok(msg)
}

/// Converts hex heads (as the store keeps them) to wire hashes.
pub fn hashes(hex_heads: &[String]) -> Vec<Hash> {
    hex_heads
        .iter()
        .filter_map(|h| {
            let mut out = [0u8; 32];
            hex::decode_to_slice(h, &mut out).ok().map(|()| out)
        })
        .collect()
}

/// Converts wire hashes to hex heads.
pub fn hex_heads(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(hex::encode).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ClientMsg {
        ClientMsg::Push {
            req: 7,
            docs: vec![DocSync {
                doc: "day|s|2026-09-01".into(),
                base: vec![[1; 32]],
                heads: vec![[2; 32]],
                changes: vec![9; 1000],
                sigs: Vec::new(),
            }],
        }
    }

    #[test]
    fn frames_round_trip_and_compress() {
        let frame = encode(&sample());
        assert_eq!(frame[0], VERSION);
        assert_eq!(frame[1], FLAG_DEFLATE);
        assert!(frame.len() < 200, "{}", frame.len());
        assert_eq!(decode::<ClientMsg>(&frame).unwrap(), sample());
        let small = encode(&ClientMsg::Hello {
            cursor: 42,
            key: [3; 32],
        });
        assert_eq!(small[1], 0);
        assert_eq!(
            decode::<ClientMsg>(&small).unwrap(),
            ClientMsg::Hello {
                cursor: 42,
                key: [3; 32]
            }
        );
    }

    #[test]
    fn bad_frames_are_typed_errors() {
        assert!(matches!(decode::<ClientMsg>(&[]), Err(FrameError::Malformed(_))));
        assert!(matches!(decode::<ClientMsg>(&[9, 0, 0]), Err(FrameError::Version(9))));
        assert!(matches!(
            decode::<ClientMsg>(&[VERSION, 0, 0xff, 0xff]),
            Err(FrameError::Malformed(_))
        ));
        assert!(matches!(
            decode::<ClientMsg>(&[VERSION, 4, 0]),
            Err(FrameError::Malformed(_))
        ));
        assert!(matches!(
            decode::<ClientMsg>(&[VERSION, FLAG_DEFLATE, 1, 2, 3]),
            Err(FrameError::Malformed(_))
        ));
        let mut trailing = encode(&ClientMsg::Hello {
            cursor: 1,
            key: [3; 32],
        });
        trailing.push(0);
        assert!(decode::<ClientMsg>(&trailing).is_err());
        // A deflate bomb: small on the wire, over the limit inflated.
        let bomb = miniz_oxide::deflate::compress_to_vec(&vec![0u8; MAX_FRAME + 10], 9);
        let mut frame = vec![VERSION, FLAG_DEFLATE];
        frame.extend(bomb);
        assert_eq!(decode::<ClientMsg>(&frame), Err(FrameError::TooLarge));
    }

    #[test]
    fn the_previous_version_goes_through_the_shim() {
        let key = [1; 32];
        let hello = v2::ClientMsg::Hello { cursor: 4, key };
        let frame = encode_as(v2::VERSION, &hello);
        assert_eq!(decode_client(&frame), Ok((2, ClientMsg::Hello { cursor: 4, key })));
        // A phone speaks only the current version.
        assert_eq!(decode::<ClientMsg>(&frame), Err(FrameError::Version(2)));
        for old in [0, 1, VERSION + 1, 99] {
            assert_eq!(decode_client(&encode_as(old, &hello)), Err(FrameError::Version(old)));
            assert!(!speaks(old));
        }
        let welcome = ServerMsg::Welcome {
            epoch: "e".into(),
            cursor: 9,
            docs: Vec::new(),
            more: false,
            you: Author::system("o"),
            directory: Vec::new(),
            update: UpdateNotice::for_version(2),
        };
        assert_eq!(
            UpdateNotice::for_version(2),
            UpdateNotice::Available { latest: VERSION }
        );
        assert_eq!(UpdateNotice::for_version(VERSION), UpdateNotice::UpToDate);
        let old = encode_server(2, &welcome);
        assert_eq!(old[0], 2);
        assert!(matches!(
            decode_body::<v2::ServerMsg>(&old),
            Ok(v2::ServerMsg::Welcome { cursor: 9, .. })
        ));
        assert_eq!(decode::<ServerMsg>(&encode_server(VERSION, &welcome)), Ok(welcome));
    }

    /// A refusal is framed in the phone's own version and decodes with that version's types: the
    /// `Error` message has kept its place and fields since version 1.
    #[test]
    fn a_refusal_reads_in_any_version() {
        let refusal = ServerMsg::Error {
            code: ErrorCode::Version,
            message: refusal_text(1),
        };
        for version in [0, 1, 2, 99] {
            let frame = encode_server(version, &refusal);
            assert_eq!(frame[0], version);
            assert_eq!(
                decode_body::<v2::ServerMsg>(&frame),
                Ok(v2::ServerMsg::Error {
                    code: ErrorCode::Version,
                    message: refusal_text(1)
                })
            );
        }
        assert!(refusal_text(1).contains("update the app"), "{}", refusal_text(1));
        assert!(refusal_text(99).contains("unknown"));
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = decode::<ClientMsg>(&bytes);
            let _ = decode::<ServerMsg>(&bytes);
            let _ = decode_client(&bytes);
        }

        /// Behind a valid header (plain or deflated), whatever body decodes re-encodes to the same
        /// message. The cargo-fuzz target `frame_decode` checks the same on any bytes.
        #[test]
        fn decoded_bodies_round_trip(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            deflate in proptest::prelude::any::<bool>(),
        ) {
            let mut frame = vec![VERSION, 0];
            if deflate {
                frame[1] = FLAG_DEFLATE;
                frame.extend(miniz_oxide::deflate::compress_to_vec(&body, 1));
            } else {
                frame.extend(&body);
            }
            if let Ok(msg) = decode::<ClientMsg>(&frame) {
                proptest::prop_assert_eq!(decode::<ClientMsg>(&encode(&msg)), Ok(msg));
            }
            if let Ok(msg) = decode::<ServerMsg>(&frame) {
                proptest::prop_assert_eq!(decode::<ServerMsg>(&encode(&msg)), Ok(msg));
            }
        }
    }
}
