//! What the fuzz targets check, in one place: the cargo-fuzz targets in `fuzz_targets/` call these,
//! and the stable replay test (`client-core/tests/fuzz_corpus.rs`, which includes this file as a
//! module) runs every corpus entry and seeded mutations of them through the same functions, so a
//! corpus file means the same thing on nightly under libFuzzer and in CI on stable.
//!
//! Every check panics on a violation; a malformed input must come back as a typed error.

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sitesync_core::Store;
use sitesync_core::ids::DocId;
use sitesync_core::sync::protocol::{self, ClientMsg, ServerMsg};

/// The document every `doc_changes` input is pushed as.
pub const DAY_DOC: &str = "day|site-hz-01|2026-09-01";

/// The saved fixture day (48 labor lines, approved, amended): the store's content before each input.
pub const BASE_DAY: &[u8] = include_bytes!("../../client-core/tests/fixtures/day-site-hz-01-2026-09-01.automerge");

/// The sync frame decoder never panics, and a frame that decodes re-encodes to a frame that decodes
/// to the same message, both as a phone's message and as the server's.
pub fn check_frame(bytes: &[u8]) {
    round_trip::<ClientMsg>(bytes);
    round_trip::<ServerMsg>(bytes);
}

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(bytes: &[u8]) {
    let Ok(msg) = protocol::decode::<T>(bytes) else {
        return;
    };
    let again = protocol::encode(&msg);
    match protocol::decode::<T>(&again) {
        Ok(back) => assert_eq!(back, msg, "a decoded frame re-encodes to another message"),
        Err(e) => panic!("{msg:?} decoded, but its re-encoding does not: {e}"),
    }
}

/// What a store looks like from outside, to prove a refused merge left it as it was.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    heads: Vec<String>,
    cursor: u64,
    docs: Vec<String>,
    rows: Vec<String>,
}

fn snapshot(store: &mut Store, id: &DocId) -> Snapshot {
    Snapshot {
        heads: store.heads(id).expect("heads"),
        cursor: store.change_cursor().expect("change cursor"),
        docs: store
            .doc_ids()
            .expect("doc ids")
            .iter()
            .map(ToString::to_string)
            .collect(),
        rows: store.projection_dump().expect("projection dump"),
    }
}

/// The bytes with every Automerge chunk's checksum recomputed, as far as they parse as chunks.
///
/// A mutated chunk almost always fails its checksum, which would stop every mutation at the first
/// check; with the checksum made right again, mutations reach the decoders behind it.
pub fn fix_checksums(bytes: &[u8]) -> Vec<u8> {
    const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
    let mut out = bytes.to_vec();
    let mut at = 0;
    loop {
        let rest = &out[at..];
        if rest.len() < 10 || rest[..4] != MAGIC {
            return out;
        }
        let (mut len, mut shift, mut i) = (0u64, 0u32, 9usize);
        loop {
            let Some(&b) = rest.get(i) else { return out };
            len |= u64::from(b & 0x7f) << shift;
            i += 1;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 56 {
                return out;
            }
        }
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| l.checked_add(i))
            .filter(|&e| e <= rest.len());
        let Some(end) = end else { return out };
        let data = &rest[i..end];
        let sum = match rest[8] {
            // Document, change, bundle: the checksum covers the type, the length and the data.
            0 | 1 | 3 => Some(checksum(rest[8], data)),
            // Deflated change: it covers the change as if it were stored uncompressed.
            2 => miniz_oxide::inflate::decompress_to_vec_with_limit(data, 1 << 22)
                .ok()
                .map(|plain| checksum(1, &plain)),
            _ => None,
        };
        if let Some(sum) = sum {
            out[at + 4..at + 8].copy_from_slice(&sum);
        }
        at += end;
    }
}

/// Automerge's chunk checksum: the first four bytes of SHA-256 over type, LEB128 length and data.
fn checksum(kind: u8, data: &[u8]) -> [u8; 4] {
    use sha2::Digest;
    let mut header = vec![kind];
    let mut n = data.len() as u64;
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            header.push(b);
            break;
        }
        header.push(b | 0x80);
    }
    let digest = sha2::Sha256::new().chain_update(&header).chain_update(data).finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// The document-change path: bytes pushed as [`DAY_DOC`] into an in-memory store holding
/// [`BASE_DAY`].
///
/// The store is kept between inputs and rebuilt only after one changed it: a refused merge must
/// leave the store exactly as it was, which [`DocTarget::check`] asserts, so every input still
/// starts from the same state (and a crash reproduces from its input alone).
pub struct DocTarget {
    /// The document the bytes are merged into.
    id: DocId,
    /// The store with the base day; `None` after an input changed it.
    store: Option<Store>,
}

impl Default for DocTarget {
    fn default() -> Self {
        Self::new()
    }
}

impl DocTarget {
    /// A target whose store is built at the first input.
    pub fn new() -> DocTarget {
        DocTarget {
            id: DAY_DOC.parse().expect("a day document id"),
            store: None,
        }
    }

    fn fresh(&self) -> Store {
        let mut store = Store::open(":memory:").expect("an in-memory store");
        assert!(store.merge_changes(&self.id, BASE_DAY).expect("the fixture day merges"));
        store
    }

    /// Checks `bytes` as they are, then with their checksums made right (when that differs).
    pub fn check_both(&mut self, bytes: &[u8]) {
        let _ = self.check(bytes);
        let fixed = fix_checksums(bytes);
        if fixed != bytes {
            let _ = self.check(&fixed);
        }
    }

    /// Merges `bytes` and checks the outcome: `Ok`, or a typed error that changed nothing.
    ///
    /// On `Ok`: merging the same bytes again changes nothing; the document reloads from disk with
    /// the same heads; the projections equal a rebuild from the documents alone.
    pub fn check(&mut self, bytes: &[u8]) -> Result<bool, sitesync_core::Error> {
        let id = self.id.clone();
        let mut store = match self.store.take() {
            Some(s) => s,
            None => self.fresh(),
        };
        let before = snapshot(&mut store, &id);
        match store.merge_changes(&id, bytes) {
            Err(e) => {
                assert!(
                    matches!(
                        e,
                        sitesync_core::Error::BadChanges { .. }
                            | sitesync_core::Error::MissingHistory { .. }
                            | sitesync_core::Error::CorruptDocument { .. }
                    ),
                    "malformed changes must be refused as such, not as {e:?}"
                );
                assert_eq!(
                    snapshot(&mut store, &id),
                    before,
                    "a refused merge changed the store ({e})"
                );
                self.store = Some(store);
                Err(e)
            }
            Ok(changed) => {
                let after = snapshot(&mut store, &id);
                assert_eq!(
                    changed,
                    after.heads != before.heads,
                    "merge_changes misreports a change"
                );
                assert_eq!(
                    store.merge_changes(&id, bytes).map_err(|e| e.to_string()),
                    Ok(false),
                    "merging the same bytes twice changed the document"
                );
                store.verify().expect("a merged document reloads from disk");
                assert_eq!(store.heads(&id).expect("heads"), after.heads, "reloaded heads differ");
                store.reindex().expect("reindex");
                assert_eq!(
                    store.projection_dump().expect("projection dump"),
                    after.rows,
                    "projections differ from a rebuild"
                );
                if !changed {
                    self.store = Some(store);
                }
                Ok(changed)
            }
        }
    }
}
