//! The long form of `kill.rs`: the real `sitesync-server` binary is SIGKILLed again and again while
//! several phones log labor on the same site-days and sync without pause. Afterwards every change a
//! phone saw acknowledged is on the server, every replica converges to the same documents and the
//! same labor lines, and every database passes `PRAGMA integrity_check`.
//!
//! Each phone is a real [`Store`] on its own thread, bound to the server with its own device token
//! (the foremen and site managers of the fixture company, so two to four phones share each site).
//! A phone adds lines on a window of three shared dates that moves every four rounds, edits the line
//! when it already exists (often one another phone added, so edits are concurrent), and calls
//! `sync_once` after every one to three writes. Each time, it records the heads the server
//! acknowledged for each document (`Store::synced_heads`): those came from the server and must be
//! durable there. Meanwhile the test kills the server at a random moment, 50–800 ms after it came
//! up, copies the dead server's files, restarts it on the same data directory and port, and checks
//! the copy (integrity, every acknowledgement recorded before the restart). One round in eight
//! kills it once more 0–40 ms after spawning, while it opens its databases and recovers the WAL
//! the crash left.
//!
//! CI runs 8 rounds with 6 phones; `scripts/crash-loop.sh` runs the long form. Knobs:
//! `SITESYNC_CRASH_ROUNDS`, `SITESYNC_CRASH_PHONES`, and `SITESYNC_CRASH_SEED` to replay a run (the
//! seed fixes the kill times and every phone's choices; thread timing still varies).

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use sitesync_core::ids::{DocId, SiteId, WorkItemId, WorkerId, parse_date};
use sitesync_core::labor::LaborPatch;
use sitesync_core::sync::client::sync_once;
use sitesync_core::units::WorkDays;
use sitesync_core::{Error, Store};
use support::Rng;

/// Workers per site the phones log: few enough that phones keep meeting on the same lines.
const WORKERS: usize = 16;
/// Work items per site the phones log. Four lines of at most 0.75 work-days (6 h) keep every
/// worker-day within the 3-work-day and 24-hour limits, whatever merges.
const ITEMS: usize = 4;
/// Shared dates in the window the phones write to.
const WINDOW: u64 = 3;
/// Rounds before the window moves one day on.
const ROUNDS_PER_DAY: u64 = 4;

/// One acknowledgement a phone saw: the server's heads for a document.
#[derive(Debug, Clone)]
struct Ack {
    /// The phone that saw it, for the failure message.
    phone: usize,
    /// The document.
    doc: DocId,
    /// The heads the server said it holds.
    heads: Vec<String>,
}

/// What the phones and the kill loop share.
#[derive(Debug, Default)]
struct Shared {
    /// Set when the writers are to stop.
    stop: AtomicBool,
    /// The current round: the phones' date window follows it.
    round: AtomicU64,
    /// Every acknowledgement seen, in the order seen.
    acks: Mutex<Vec<Ack>>,
    /// The first unexpected error of any phone: it stops the run.
    failure: Mutex<Option<String>>,
}

impl Shared {
    fn fail(&self, message: String) {
        self.failure.lock().unwrap().get_or_insert(message);
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// One phone: a store bound to the server as a site user.
struct Phone {
    /// Its index, for messages.
    idx: usize,
    /// The site it logs.
    site: SiteId,
    /// Its database file.
    path: PathBuf,
    /// Its store.
    store: Store,
    /// The workers it logs (the site's first active ones).
    workers: Vec<WorkerId>,
    /// The work items it logs.
    items: Vec<WorkItemId>,
}

/// What a phone did.
#[derive(Debug, Default)]
struct Tally {
    /// Lines added, by document.
    written: BTreeMap<DocId, BTreeSet<String>>,
    /// Lines added.
    adds: u64,
    /// Lines edited.
    edits: u64,
    /// Writes the store refused (a worker-day limit after a merge).
    refused: u64,
    /// Exchanges that completed.
    syncs_ok: u64,
    /// Exchanges that could not start: the server was down.
    syncs_down: u64,
    /// Exchanges cut off midway: the server died during them.
    syncs_cut: u64,
    /// Documents the server acknowledged in completed exchanges.
    pushed: u64,
}

fn first_day() -> NaiveDate {
    parse_date("2026-12-01").unwrap()
}

/// One write: add a line, or edit it when it exists.
fn write_one(phone: &mut Phone, rng: &mut Rng, round: u64, tally: &mut Tally) -> Result<(), String> {
    let date = first_day() + chrono::Days::new(round / ROUNDS_PER_DAY + rng.next() % WINDOW);
    let worker = phone.workers[rng.index(phone.workers.len())].clone();
    let item = phone.items[rng.index(phone.items.len())].clone();
    let days = WorkDays::from_centi(25 * rng.range(1, 3) as i64).unwrap();
    let e = sitesync_core::store::entry(phone.site.clone(), date, worker, item, days);
    match phone.store.add_labor(&e, None) {
        Ok(line) => {
            let doc = DocId::Day(phone.site.clone(), date);
            tally.written.entry(doc).or_default().insert(line.id.to_string());
            tally.adds += 1;
            Ok(())
        }
        Err(Error::DuplicateLine { line, .. }) => {
            let patch = LaborPatch {
                work_days: Some(days),
                note: Some(format!("phone {} edit {}", phone.idx, tally.edits)),
                ..LaborPatch::default()
            };
            let id = sitesync_core::ids::LineId::new(line).unwrap();
            match phone.store.edit_labor(&id, &patch, None) {
                Ok(_) => {
                    tally.edits += 1;
                    Ok(())
                }
                Err(Error::Invalid { .. }) => {
                    tally.refused += 1;
                    Ok(())
                }
                Err(e) => Err(format!("edit_labor: {e}")),
            }
        }
        Err(Error::Invalid { .. }) => {
            tally.refused += 1;
            Ok(())
        }
        Err(e) => Err(format!("add_labor: {e}")),
    }
}

/// Records the server's heads the phone now holds as acknowledged, where they changed.
fn record_acks(phone: &Phone, seen: &mut HashMap<DocId, Vec<String>>, shared: &Shared) -> sitesync_core::Result<()> {
    let mut new = Vec::new();
    for doc in phone.store.doc_ids()? {
        let Some(heads) = phone.store.synced_heads(&doc)? else {
            continue;
        };
        if !heads.is_empty() && seen.get(&doc) != Some(&heads) {
            seen.insert(doc.clone(), heads.clone());
            new.push(Ack {
                phone: phone.idx,
                doc,
                heads,
            });
        }
    }
    shared.acks.lock().unwrap().extend(new);
    Ok(())
}

/// A phone's life until the test says stop: write, sync, record what was acknowledged.
fn run_phone(mut phone: Phone, seed: u64, shared: Arc<Shared>) -> (Phone, Tally) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rng = Rng::new(seed ^ (phone.idx as u64 + 1).wrapping_mul(0x0100_0000_01b3));
    let mut tally = Tally::default();
    let mut seen = HashMap::new();
    while !shared.stop.load(Ordering::SeqCst) {
        let round = shared.round.load(Ordering::SeqCst);
        for _ in 0..rng.range(1, 3) {
            if let Err(e) = write_one(&mut phone, &mut rng, round, &mut tally) {
                shared.fail(format!("phone {}: {e}", phone.idx));
                return (phone, tally);
            }
        }
        match rt.block_on(sync_once(&mut phone.store)) {
            Ok(progress) => {
                tally.syncs_ok += 1;
                tally.pushed += progress.pushed as u64;
            }
            // The exchange completed but the server would not store a document: never expected here.
            Err(Error::Sync(e)) if e.contains("document(s) refused") => {
                shared.fail(format!("phone {}: sync_once: {e}", phone.idx));
                return (phone, tally);
            }
            // The server is down, or died mid-exchange: the phone works offline and retries.
            Err(Error::Sync(e)) => {
                if e.starts_with("cannot reach") {
                    tally.syncs_down += 1;
                } else {
                    tally.syncs_cut += 1;
                }
                std::thread::sleep(Duration::from_millis(rng.range(5, 40)));
            }
            Err(e) => {
                shared.fail(format!("phone {}: sync_once: {e}", phone.idx));
                return (phone, tally);
            }
        }
        // Acknowledgements arrive even in an exchange that is cut off later: record them all.
        if let Err(e) = record_acks(&phone, &mut seen, &shared) {
            shared.fail(format!("phone {}: reading sync state: {e}", phone.idx));
            return (phone, tally);
        }
    }
    (phone, tally)
}

/// Syncs until the exchange completes with nothing pending (the server is up: a few tries at most).
fn sync_clean(rt: &tokio::runtime::Runtime, phone: &mut Phone, seed: u64) -> u64 {
    let mut last = String::new();
    for _ in 0..5 {
        match rt.block_on(sync_once(&mut phone.store)) {
            Ok(p) if phone.store.pending().unwrap().is_empty() => return p.pushed as u64,
            Ok(_) => last = format!("still pending: {:?}", phone.store.pending().unwrap()),
            Err(e) => last = e.to_string(),
        }
    }
    panic!(
        "seed {seed}: phone {} does not sync after the last restart: {last}",
        phone.idx
    );
}

/// Checks a copy of a server's databases (`support::copy_databases`): both intact, every document
/// decodes, and every acknowledgement in `acks` is in the document store.
fn check_copy(copy: &Path, acks: &[Ack], context: &str) {
    for db in ["documents.sqlite3", "server.sqlite3"] {
        let check = support::integrity(&copy.join(db));
        assert_eq!(check, "ok", "{context}: {db} after SIGKILL");
    }
    let mut docs = Store::open(copy.join("documents.sqlite3"))
        .unwrap_or_else(|e| panic!("{context}: documents.sqlite3 does not open: {e}"));
    docs.verify().unwrap_or_else(|e| panic!("{context}: {e}"));
    for ack in acks {
        assert!(
            docs.knows_all(&ack.doc, &ack.heads).unwrap(),
            "{context}: phone {} saw {} acknowledged at heads {:?}, which the server lost",
            ack.phone,
            ack.doc,
            ack.heads
        );
    }
}

/// The projected rows before and after rebuilding them from the documents: they must be equal.
fn projection_rebuilds_equal(store: &mut Store, who: &str, seed: u64) {
    let before = store.projection_dump().unwrap();
    store.reindex().unwrap();
    let after = store.projection_dump().unwrap();
    assert!(
        before == after,
        "seed {seed}: {who}'s projection differs from its documents ({} rows, {} rebuilt)",
        before.len(),
        after.len()
    );
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn acknowledged_changes_survive_repeated_server_sigkill_during_multi_device_sync() {
    let rounds = support::env_or("SITESYNC_CRASH_ROUNDS", 8);
    let phones_n = support::env_or("SITESYNC_CRASH_PHONES", 6) as usize;
    let seed = support::seed("SITESYNC_CRASH_SEED");
    eprintln!("crash loop: {rounds} rounds, {phones_n} phones, seed {seed} (replay: SITESYNC_CRASH_SEED={seed})");
    let started = Instant::now();
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    // SQLite whatever the suite's engine: the test copies the killed server's files and checks them.
    let data = support::DataDir::sqlite(dir.path().join("data"));
    let log = dir.path().join("server.log");
    let scratch = dir.path().join("check");
    let scratch_early = dir.path().join("check-early");
    let users: Vec<(&str, &str)> = (0..phones_n).map(|i| support::SITE_USERS[i % 6]).collect();
    let tokens = support::company(&data, &users.iter().map(|(u, _)| *u).collect::<Vec<_>>());
    let addr = support::free_addr();
    let mut server = support::start(&data, addr, &log);
    support::healthy(&mut server, addr, &log, "first start");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut phones = Vec::new();
    for (idx, ((user, site), token)) in users.iter().zip(&tokens).enumerate() {
        let path = dir.path().join(format!("phone-{idx}.sqlite3"));
        let mut store = Store::open(&path).unwrap();
        store.set_user(user).unwrap();
        store.bind(&format!("http://{addr}"), token).unwrap();
        rt.block_on(sync_once(&mut store)).unwrap();
        let site = SiteId::new(*site).unwrap();
        let roster = store.roster(&site).unwrap();
        let workers = roster
            .workers
            .iter()
            .filter(|w| w.active)
            .take(WORKERS)
            .map(|w| w.id.clone())
            .collect();
        let items = roster.work_items.iter().take(ITEMS).map(|w| w.id.clone()).collect();
        phones.push(Phone {
            idx,
            site,
            path,
            store,
            workers,
            items,
        });
    }

    let shared = Arc::new(Shared::default());
    let writers: Vec<_> = phones
        .into_iter()
        .map(|phone| {
            let shared = shared.clone();
            std::thread::spawn(move || run_phone(phone, seed, shared))
        })
        .collect();

    let mut kills = 0;
    let mut early_kills = 0;
    let mut checked = 0;
    let mut down = Duration::ZERO;
    let mut restarting = Duration::ZERO;
    for round in 0..rounds {
        shared.round.store(round, Ordering::SeqCst);
        let context = format!("seed {seed} round {round}");
        std::thread::sleep(Duration::from_millis(rng.range(50, 800)));
        support::sigkill(&mut server);
        let killed = Instant::now();
        kills += 1;
        if let Some(failure) = shared.failure.lock().unwrap().clone() {
            panic!("{context}: {failure}");
        }
        // Every acknowledgement recorded by now came from the server just killed (or an earlier one).
        support::copy_databases(&data, &scratch);
        let acks: Vec<Ack> = shared.acks.lock().unwrap()[checked..].to_vec();
        if rng.index(8) == 0 {
            // Once more while it opens its databases and recovers the WAL of the crash just now.
            let mut starting = support::start(&data, addr, &log);
            std::thread::sleep(Duration::from_millis(rng.range(0, 40)));
            support::sigkill(&mut starting);
            kills += 1;
            early_kills += 1;
            support::copy_databases(&data, &scratch_early);
            check_copy(&scratch_early, &acks, &format!("{context} (killed starting)"));
        }
        let restart = Instant::now();
        server = support::start(&data, addr, &log);
        support::healthy(&mut server, addr, &log, &format!("{context}: restart"));
        restarting += restart.elapsed();
        down += killed.elapsed();
        // Checked while the phones sync with the restarted server, so that most of the run is spent
        // syncing, not checking.
        check_copy(&scratch, &acks, &context);
        checked += acks.len();
    }

    shared.stop.store(true, Ordering::SeqCst);
    let mut phones = Vec::new();
    let mut total = Tally::default();
    for w in writers {
        let (phone, t) = w.join().unwrap();
        for (doc, lines) in t.written {
            total.written.entry(doc).or_default().extend(lines);
        }
        total.adds += t.adds;
        total.edits += t.edits;
        total.refused += t.refused;
        total.syncs_ok += t.syncs_ok;
        total.syncs_down += t.syncs_down;
        total.syncs_cut += t.syncs_cut;
        total.pushed += t.pushed;
        phones.push(phone);
    }
    if let Some(failure) = shared.failure.lock().unwrap().clone() {
        panic!("seed {seed}: {failure}");
    }
    let writing = started.elapsed();

    // Everyone pushes what is left, then everyone takes in everyone else's.
    for _pass in 0..2 {
        for phone in &mut phones {
            total.pushed += sync_clean(&rt, phone, seed);
        }
    }
    support::stop(server);
    let acks = shared.acks.lock().unwrap().len();

    // (c) Every database is intact.
    for db in ["documents.sqlite3", "server.sqlite3"] {
        assert_eq!(support::integrity(&data.join(db)), "ok", "seed {seed}: {db}");
    }
    for phone in &phones {
        assert_eq!(
            support::integrity(&phone.path),
            "ok",
            "seed {seed}: phone {}",
            phone.idx
        );
    }
    let mut server_docs = Store::open(data.join("documents.sqlite3")).unwrap();
    server_docs.verify().unwrap();

    // (a) Every acknowledgement any phone ever saw is on the server.
    support::copy_databases(&data, &scratch);
    check_copy(
        &scratch,
        &shared.acks.lock().unwrap(),
        &format!("seed {seed} at the end"),
    );

    // (b) Every phone holds exactly the server's documents of its site, at the server's heads, with
    // the same day sheets; phones of one site have identical projections.
    let all_docs = server_docs.doc_ids().unwrap();
    let mut dumps: BTreeMap<SiteId, (usize, Vec<String>)> = BTreeMap::new();
    for phone in &mut phones {
        phone.store.verify().unwrap();
        let expected: Vec<DocId> = all_docs
            .iter()
            .filter(|d| d.site().is_none_or(|s| *s == phone.site))
            .cloned()
            .collect();
        assert_eq!(
            phone.store.doc_ids().unwrap(),
            expected,
            "seed {seed}: phone {} holds other documents than the server",
            phone.idx
        );
        for doc in &expected {
            assert_eq!(
                sorted(phone.store.heads(doc).unwrap()),
                sorted(server_docs.heads(doc).unwrap()),
                "seed {seed}: phone {} and the server diverge on {doc}",
                phone.idx
            );
            if let DocId::Day(site, date) = doc {
                assert_eq!(
                    phone.store.day(site, *date).unwrap(),
                    server_docs.day(site, *date).unwrap(),
                    "seed {seed}: phone {} and the server show {doc} differently",
                    phone.idx
                );
            }
        }
        projection_rebuilds_equal(&mut phone.store, &format!("phone {}", phone.idx), seed);
        let dump = phone.store.projection_dump().unwrap();
        match dumps.get(&phone.site) {
            Some((other, theirs)) => assert!(
                *theirs == dump,
                "seed {seed}: phones {other} and {} of {} have different projections",
                phone.idx,
                phone.site
            ),
            None => {
                dumps.insert(phone.site.clone(), (phone.idx, dump));
            }
        }
    }
    projection_rebuilds_equal(&mut server_docs, "the server", seed);

    // (d) Every line any phone added is on the server and on every phone of its site, exactly once:
    // the lines of each day are exactly the lines added to it.
    let mut lines = 0;
    for doc in &all_docs {
        let DocId::Day(site, date) = doc else { continue };
        let on_server: BTreeSet<String> = server_docs
            .day(site, *date)
            .unwrap()
            .labor
            .iter()
            .map(|l| l.id.to_string())
            .collect();
        let written = total.written.get(doc).cloned().unwrap_or_default();
        let lost: Vec<&String> = written.difference(&on_server).collect();
        let extra: Vec<&String> = on_server.difference(&written).collect();
        assert!(
            lost.is_empty() && extra.is_empty(),
            "seed {seed}: {doc}: lines lost {lost:?}, lines nobody added {extra:?}"
        );
        lines += on_server.len();
    }
    assert_eq!(
        lines,
        total.written.values().map(BTreeSet::len).sum::<usize>(),
        "seed {seed}: a written day is missing on the server"
    );

    assert!(
        total.syncs_ok > rounds,
        "seed {seed}: too few syncs completed to mean anything"
    );
    eprintln!(
        "crash loop summary: {rounds} rounds, {kills} kills ({early_kills} while starting), {phones_n} phones, \
         {} syncs ok / {} cut off by a kill / {} while down, {} pushes acknowledged, \
         {acks} acknowledged heads checked, {lines} lines in {} day documents ({} adds, {} edits, {} refused), \
         {:.1} s writing (server down {:.1} s, of which restarting {:.1} s), {:.1} s total, seed {seed}",
        total.syncs_ok,
        total.syncs_cut,
        total.syncs_down,
        total.pushed,
        total.written.len(),
        total.adds,
        total.edits,
        total.refused,
        writing.as_secs_f64(),
        down.as_secs_f64(),
        restarting.as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
}
