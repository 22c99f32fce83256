//! The fuzz corpus on stable: every file in `fuzz/corpus/` and seeded mutations of them go through
//! the fuzz targets' own checks (`fuzz/src/lib.rs`, included below), so CI catches a regression the
//! fuzzers once found without nightly or cargo-fuzz. `scripts/fuzz.sh` grows and minimizes the
//! corpus; `write_seeds` (ignored) writes the hand-made seeds it starts from.

#[path = "../../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod checks;

use std::path::{Path, PathBuf};

use sitesync_core::Store;
use sitesync_core::ids::{DocId, LineId, SiteId, WorkItemId, WorkerId, parse_date};
use sitesync_core::rules::{Author, Role, Violation};
use sitesync_core::signing::ChangeSig;
use sitesync_core::sync::protocol::{
    self, ClientMsg, DirectoryEntry, DocResult, DocSync, ErrorCode, Hash, MAX_FRAME, Refusal, RefusedChange, ServerMsg,
    VERSION,
};
use sitesync_core::units::WorkDays;

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

/// Every corpus file of a target, in name order (so mutations are the same on every machine).
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{} holds only {} inputs", dir.display(), files.len());
    files
}

/// A small deterministic generator (xorshift64*): the same mutations on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One to four of libFuzzer's simpler mutations, applied from byte `from` on (to keep a header).
fn mutate(rng: &mut Rng, input: &[u8], other: &[u8], from: usize) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = out.len();
        let at = from.min(len) + rng.below(len.saturating_sub(from) + 1);
        match rng.below(9) {
            0 if at < len => out[at] ^= 1 << rng.below(8),
            1 if at < len => out[at] = rng.next() as u8,
            2 if at < len => out[at] = [0, 0x7f, 0x80, 0xff][rng.below(4)],
            3 => out.insert(at, rng.next() as u8),
            4 if at < len => {
                let n = 1 + rng.below((len - at).min(16));
                out.drain(at..at + n);
            }
            5 if at < len => {
                let n = 1 + rng.below((len - at).min(64));
                let copy = out[at..at + n].to_vec();
                let to = at + rng.below(len - at + 1);
                out.splice(to..to, copy);
            }
            6 => out.truncate(at),
            7 if !other.is_empty() => {
                // Splice a piece of another input in: chunks and messages of other shapes.
                let start = rng.below(other.len());
                let n = 1 + rng.below((other.len() - start).min(256));
                out.splice(at..at, other[start..start + n].iter().copied());
            }
            _ if at < len => {
                // A LEB128/varint length or count made huge or zero.
                let b = if rng.below(2) == 0 { 0xff } else { 0x00 };
                let n = 1 + rng.below(len - at).min(9);
                out[at..at + n].fill(b);
            }
            _ => out.push(rng.next() as u8),
        }
    }
    out
}

/// Saves a failing input where `cargo fuzz run TARGET FILE` and a corpus can take it.
fn save_failure(target: &str, input: &[u8]) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/artifacts")
        .join(target);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("stable-{:016x}", {
        let mut h = Rng(0x9e37_79b9_7f4a_7c15);
        input
            .iter()
            .fold(0u64, |acc, b| acc.rotate_left(5) ^ u64::from(*b) ^ h.next())
    }));
    std::fs::write(&path, input).unwrap();
    path.display().to_string()
}

/// A deflated frame as the same frame stored plain, so mutations reach the message itself.
fn plain(frame: &[u8]) -> Vec<u8> {
    match frame {
        [VERSION, 1, body @ ..] => match miniz_oxide::inflate::decompress_to_vec_with_limit(body, MAX_FRAME) {
            Ok(inflated) => [&[VERSION, 0][..], &inflated].concat(),
            Err(_) => frame.to_vec(),
        },
        _ => frame.to_vec(),
    }
}

#[test]
fn every_frame_in_the_corpus_decodes_to_a_typed_result_and_round_trips() {
    let corpus = corpus("frame_decode");
    let mut decoded = 0;
    for (name, bytes) in &corpus {
        let result = std::panic::catch_unwind(|| checks::check_frame(bytes));
        assert!(result.is_ok(), "frame_decode/{name}");
        decoded += usize::from(protocol::decode::<ClientMsg>(bytes).is_ok());
    }
    assert!(decoded >= 3, "the corpus has too few valid phone messages ({decoded})");
}

#[test]
fn mutated_frames_decode_to_a_typed_result_and_round_trip() {
    let corpus = corpus("frame_decode");
    let mut rng = Rng(0x5173_5eed);
    for i in 0..6000 {
        let (name, bytes) = &corpus[rng.below(corpus.len())];
        let (_, other) = &corpus[rng.below(corpus.len())];
        let base = if i % 2 == 0 { plain(bytes) } else { bytes.clone() };
        let input = mutate(&mut rng, &base, &plain(other), 2);
        let result = std::panic::catch_unwind(|| checks::check_frame(&input));
        if result.is_err() {
            panic!(
                "mutation {i} of frame_decode/{name}: {}",
                save_failure("frame_decode", &input)
            );
        }
    }
}

#[test]
fn every_change_in_the_corpus_merges_or_is_refused_leaving_the_store_as_it_was() {
    let corpus = corpus("doc_changes");
    let mut target = checks::DocTarget::new();
    let (mut merged, mut refused) = (0, 0);
    for (name, bytes) in &corpus {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| target.check(bytes)));
        match result {
            Ok(Ok(_)) => merged += 1,
            Ok(Err(e)) => {
                refused += 1;
                // Inputs that once made Automerge panic (stored with their checksums right).
                if name.starts_with("regression-") {
                    assert!(
                        matches!(e, sitesync_core::Error::BadChanges { .. }),
                        "doc_changes/{name}: {e}"
                    );
                }
            }
            Err(_) => panic!("doc_changes/{name}"),
        }
        let fixed = checks::fix_checksums(bytes);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| target.check(&fixed)));
        assert!(result.is_ok(), "doc_changes/{name} with its checksums fixed");
    }
    assert!(merged >= 3 && refused >= 3, "{merged} merged, {refused} refused");
}

#[test]
fn mutated_changes_merge_or_are_refused_leaving_the_store_as_it_was() {
    let corpus = corpus("doc_changes");
    let mut target = checks::DocTarget::new();
    let mut rng = Rng(0xd0c5_eed5);
    // Fewer than the frames: a refused merge makes the store reload the day from disk, which takes
    // milliseconds in a debug build (SHA-256 of every change).
    for i in 0..500 {
        let (name, bytes) = &corpus[rng.below(corpus.len())];
        let (_, other) = &corpus[rng.below(corpus.len())];
        let input = mutate(&mut rng, bytes, other, 0);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| target.check_both(&input)));
        if result.is_err() {
            panic!(
                "mutation {i} of doc_changes/{name}: {}",
                save_failure("doc_changes", &input)
            );
        }
    }
}

/// Writes the hand-made seeds both targets start from:
/// `cargo test -p sitesync-core --test fuzz_corpus -- --ignored write_seeds`.
#[test]
#[ignore = "writes fuzz/corpus; run by hand when the protocol or the documents change"]
fn write_seeds() {
    let frames = corpus_dir("frame_decode");
    let changes = corpus_dir("doc_changes");
    std::fs::create_dir_all(&frames).unwrap();
    std::fs::create_dir_all(&changes).unwrap();
    let seeds = DaySeeds::make();
    for (name, bytes) in seeds.changes() {
        std::fs::write(changes.join(format!("seed-{name}")), bytes).unwrap();
    }
    for (name, frame) in frame_seeds(&seeds) {
        std::fs::write(frames.join(format!("seed-{name}")), frame).unwrap();
    }
}

/// The user the seeds' changes are written as (the base day's own changes are older, written as
/// `foreman` and `manager`): the fixture site manager of site-hz-01, who may make every one of them,
/// so that a test pushing the seeds as that user's device sees them pass the server's rules and
/// only the damage it does to them decides.
const SEED_USER: &str = "u-manager-hz-01";

/// Real Automerge bytes of the fixture day, as phones produce them.
struct DaySeeds {
    /// The saved fixture day (`tests/fixtures/`).
    base: Vec<u8>,
    /// Heads of the base.
    base_heads: Vec<String>,
    /// Two amendments made on top of the base, one after the other: change chunks since the base.
    amended: Vec<u8>,
    /// Their signatures, by the amending store's key.
    amended_sigs: Vec<ChangeSig>,
    /// The second amendment alone (depends on the first).
    second_only: Vec<u8>,
    /// Its signatures.
    second_sigs: Vec<ChangeSig>,
    /// The same day logged independently on another phone (the small fixture's import): a whole
    /// document concurrent with the base.
    concurrent: Vec<u8>,
    /// Its signatures (the genesis is nobody's and is not signed).
    concurrent_sigs: Vec<ChangeSig>,
    /// The amending store's public key.
    key: [u8; 32],
    /// Another day's document (refused as the wrong document).
    other_day: Vec<u8>,
    /// The site's master-data document (refused as the wrong document).
    site: Vec<u8>,
}

impl DaySeeds {
    fn make() -> DaySeeds {
        let site = SiteId::new("site-hz-01").unwrap();
        let date = parse_date("2026-09-01").unwrap();
        let id = DocId::Day(site.clone(), date);
        let small = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/small");
        let base = checks::BASE_DAY.to_vec();

        let dir = tempfile::tempdir().unwrap();
        let mut a = Store::open(dir.path().join("a.sqlite3")).unwrap();
        a.set_user(SEED_USER).unwrap();
        let company = sitesync_core::import::read_json(&small.join("company.json")).unwrap();
        a.import_company(&company).unwrap();
        a.merge_changes(&id, &base).unwrap();
        let base_heads = a.heads(&id).unwrap();
        let mut entry = sitesync_core::store::entry(
            site.clone(),
            date,
            WorkerId::new("w-0002").unwrap(),
            WorkItemId::new("site-hz-01/wi-4.1").unwrap(),
            WorkDays::parse("0.5").unwrap(),
        );
        entry.note = "补记 late entry".into();
        a.add_labor(&entry, Some("补记")).unwrap();
        let middle = a.heads(&id).unwrap();
        let line = LineId::labor(
            &site,
            date,
            &WorkerId::new("w-0001").unwrap(),
            &WorkItemId::new("site-hz-01/wi-4.1").unwrap(),
        );
        a.delete_labor(&line, Some("记错人")).unwrap();
        a.set_day_info(&site, date, Some("大雨"), Some("下午停工"), Some("天气更正"))
            .unwrap();
        let (amended, amended_sigs) = a.export_signed(&id, &base_heads).unwrap().unwrap();
        let (second_only, second_sigs) = a.export_signed(&id, &middle).unwrap().unwrap();
        let site_doc = a.export_changes(&DocId::Site(site.clone()), &[]).unwrap().unwrap();

        let mut b = Store::open(dir.path().join("b.sqlite3")).unwrap();
        b.set_user(SEED_USER).unwrap();
        b.import_dir(&small).unwrap();
        let (concurrent, concurrent_sigs) = b.export_signed(&id, &[]).unwrap().unwrap();
        let other = DocId::Day(site, parse_date("2026-09-02").unwrap());
        let other_day = b.export_changes(&other, &[]).unwrap().unwrap();
        DaySeeds {
            base,
            base_heads,
            key: a.public_key(),
            amended,
            amended_sigs,
            second_only,
            second_sigs,
            concurrent,
            concurrent_sigs,
            other_day,
            site: site_doc,
        }
    }

    fn changes(&self) -> Vec<(&'static str, Vec<u8>)> {
        vec![
            ("empty", Vec::new()),
            ("base-document", self.base.clone()),
            ("amendments-since-base", self.amended.clone()),
            ("second-amendment-alone", self.second_only.clone()),
            ("concurrent-document", self.concurrent.clone()),
            ("document-then-changes", [&self.concurrent[..], &self.amended].concat()),
            ("other-day", self.other_day.clone()),
            ("site-document", self.site.clone()),
        ]
    }
}

fn frame_seeds(seeds: &DaySeeds) -> Vec<(String, Vec<u8>)> {
    let doc = |changes: &[u8], sigs: &[ChangeSig], base: Vec<Hash>| DocSync {
        doc: checks::DAY_DOC.into(),
        base,
        heads: vec![[7; 32], [9; 32]],
        changes: changes.to_vec(),
        sigs: sigs.to_vec(),
    };
    let second_sigs = &seeds.second_sigs;
    let base = protocol::hashes(&seeds.base_heads);
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let mut client = |name: &str, m: ClientMsg| out.push((format!("client-{name}"), protocol::encode(&m)));
    client(
        "hello-new",
        ClientMsg::Hello {
            cursor: 0,
            key: seeds.key,
        },
    );
    client(
        "hello-max",
        ClientMsg::Hello {
            cursor: u64::MAX,
            key: [0xff; 32],
        },
    );
    client("applied", ClientMsg::Applied { cursor: 300 });
    client("push-empty", ClientMsg::Push { req: 0, docs: vec![] });
    client(
        "push-document",
        ClientMsg::Push {
            req: 1,
            docs: vec![doc(&seeds.concurrent, &seeds.concurrent_sigs, vec![])],
        },
    );
    client(
        "push-changes",
        ClientMsg::Push {
            req: 2,
            docs: vec![
                doc(&seeds.amended, &seeds.amended_sigs, base.clone()),
                doc(&[], &[], base.clone()),
            ],
        },
    );
    client(
        "push-many",
        ClientMsg::Push {
            req: u64::MAX,
            docs: vec![
                doc(&seeds.second_only, second_sigs, base.clone()),
                DocSync {
                    doc: "not a doc".into(),
                    base: vec![],
                    heads: vec![],
                    changes: vec![1, 2, 3],
                    sigs: vec![],
                },
                DocSync {
                    doc: "site|site-hz-01".into(),
                    base: vec![],
                    heads: vec![],
                    changes: seeds.site.clone(),
                    sigs: vec![],
                },
            ],
        },
    );
    let you = Author {
        device: "d-0123456789ab".into(),
        user_id: SEED_USER.into(),
        user_name: "龙东江".into(),
        org: "org-hz".into(),
        role: Role::SiteManager,
        all_sites: false,
        sites: vec!["site-hz-01".into()],
        system: false,
    };
    let directory = vec![
        DirectoryEntry {
            key: seeds.key,
            device: you.device.clone(),
            user_id: you.user_id.clone(),
            user_name: you.user_name.clone(),
            role: you.role,
        },
        DirectoryEntry {
            key: [5; 32],
            device: "server".into(),
            user_id: "system".into(),
            user_name: "server".into(),
            role: Role::Admin,
        },
    ];
    let mut server = |name: &str, m: ServerMsg| out.push((format!("server-{name}"), protocol::encode(&m)));
    server(
        "welcome",
        ServerMsg::Welcome {
            epoch: "e-2026".into(),
            cursor: 12,
            docs: vec![doc(&seeds.amended, &seeds.amended_sigs, base.clone())],
            more: true,
            you: you.clone(),
            directory,
            update: protocol::UpdateNotice::UpToDate,
        },
    );
    server(
        "welcome-empty",
        ServerMsg::Welcome {
            epoch: String::new(),
            cursor: 0,
            docs: vec![],
            more: false,
            you,
            directory: vec![],
            update: protocol::UpdateNotice::Available { latest: 3 },
        },
    );
    server(
        "changed",
        ServerMsg::Changed {
            cursor: 13,
            docs: vec![doc(&seeds.second_only, second_sigs, base.clone())],
        },
    );
    let refusals = [
        Refusal::Forbidden,
        Refusal::ReadOnly,
        Refusal::UnknownDocument,
        Refusal::Malformed,
        Refusal::Unavailable,
    ];
    let refused = |violation: Violation| RefusedChange {
        hash: [3; 32],
        violation,
    };
    let mut results = vec![
        DocResult::Synced(doc(&[], &[], base.clone())),
        DocResult::Partial {
            update: doc(&seeds.second_only, second_sigs, base.clone()),
            refused: vec![
                refused(Violation::ReviewNotAllowed {
                    action: "approved".into(),
                }),
                refused(Violation::ForgedAuthor {
                    field: "entered_by".into(),
                    claimed: "经理".into(),
                    actual: "崔贵".into(),
                }),
                refused(Violation::DependsOnRefused { hash: "03".repeat(32) }),
                refused(Violation::Unsigned),
            ],
        },
        DocResult::NeedHistory {
            doc: checks::DAY_DOC.into(),
            heads: base.clone(),
        },
    ];
    results.extend(refusals.map(|reason| DocResult::Refused {
        doc: checks::DAY_DOC.into(),
        reason,
    }));
    server("ack", ServerMsg::Ack { req: 2, results });
    for code in [
        ErrorCode::Malformed,
        ErrorCode::TooLarge,
        ErrorCode::Version,
        ErrorCode::Unauthorized,
        ErrorCode::RateLimited,
        ErrorCode::Internal,
    ] {
        server(
            &format!("error-{code:?}").to_lowercase(),
            ServerMsg::Error {
                code,
                message: "出错 error".into(),
            },
        );
    }
    // The large push stored plain (a sender may skip deflating), and frames that must be refused.
    let deflated = out.iter().find(|(n, _)| n == "client-push-document").unwrap().1.clone();
    out.push(("client-push-document-plain".into(), plain(&deflated)));
    out.push(("header-only".into(), vec![VERSION, 0]));
    out.push(("other-version".into(), vec![VERSION + 1, 0, 0, 0]));
    out.push(("unknown-flags".into(), vec![VERSION, 0x80, 0]));
    out.push(("bad-deflate".into(), vec![VERSION, 1, 0xff, 0xff, 0xff]));
    out
}
