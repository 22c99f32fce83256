//! A phone process is SIGKILLed again and again in the middle of a sync with the real
//! `sitesync-server`, and restarted on the same store: nothing it wrote or saw acknowledged is
//! lost, no line is doubled, its store stays intact, and once it syncs it converges with the server
//! and another phone.
//!
//! (`client-core/tests/store/crash.rs` kills a phone while it writes, offline; this kills it while
//! it pushes and merges.) The phone is this test binary run again as a child (the ignored
//! `phone_process` test): it logs labor lines on the shared site-days and syncs in a loop, and says
//! on stdout what it does — `intent` before each write, `wrote` once the write returned, `sync`
//! before each exchange, `acked` with the heads the server acknowledged, `synced` or `failed`
//! after. The parent kills it at a random moment of its 1st to 4th exchange (0–1.5 times the
//! average time an exchange takes), then reopens the store and checks it. Between rounds a second
//! phone, in the parent, logs other workers and edits notes on the child's lines, so every exchange
//! of the child also takes in changes.
//!
//! Knobs: `SITESYNC_CLIENT_CRASH_ROUNDS` (default 24), `SITESYNC_CLIENT_CRASH_SEED` to replay.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use sitesync_core::ids::{DocId, LineId, SiteId, WorkItemId, WorkerId, parse_date};
use sitesync_core::labor::LaborPatch;
use sitesync_core::sync::client::sync_once;
use sitesync_core::units::WorkDays;
use sitesync_core::{Error, Store};
use support::Rng;

/// Workers the two phones log (the child the even ones, the parent's phone the odd ones).
const WORKERS: usize = 16;
/// Work items: four lines of at most 0.75 work-days keep a worker-day within its limits.
const ITEMS: usize = 4;
/// Rounds before the three-day window the phones write to moves one day on.
const ROUNDS_PER_DAY: u64 = 4;

fn site() -> SiteId {
    SiteId::new("site-hz-01").unwrap()
}

fn first_day() -> NaiveDate {
    parse_date("2026-12-01").unwrap()
}

/// A date in the round's window.
fn date_in(round: u64, rng: &mut Rng) -> NaiveDate {
    first_day() + chrono::Days::new(round / ROUNDS_PER_DAY + rng.next() % 3)
}

/// The workers (every other one, from `parity`) and work items a phone logs.
fn roster_slice(store: &mut Store, parity: usize) -> (Vec<WorkerId>, Vec<WorkItemId>) {
    let roster = store.roster(&site()).unwrap();
    let workers = roster
        .workers
        .iter()
        .filter(|w| w.active)
        .take(WORKERS)
        .skip(parity)
        .step_by(2)
        .map(|w| w.id.clone())
        .collect();
    let items = roster.work_items.iter().take(ITEMS).map(|w| w.id.clone()).collect();
    (workers, items)
}

#[test]
#[ignore = "the phone process of acknowledged_changes_survive_phone_sigkill_mid_sync"]
fn phone_process() {
    let Ok(path) = std::env::var("SITESYNC_PHONE_STORE") else {
        return;
    };
    let seed: u64 = std::env::var("SITESYNC_PHONE_SEED").unwrap().parse().unwrap();
    let round: u64 = std::env::var("SITESYNC_PHONE_ROUND").unwrap().parse().unwrap();
    let mut rng = Rng::new(seed ^ round.wrapping_mul(0x9e37_79b9));
    let mut store = Store::open(&path).unwrap();
    let (workers, items) = roster_slice(&mut store, 0);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut out = std::io::stdout().lock();
    let mut say = |line: String| {
        writeln!(out, "{line}").unwrap();
        out.flush().unwrap();
    };
    // An orphan (its parent panicked) does not run for ever.
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        for _ in 0..rng.range(1, 3) {
            let date = date_in(round, &mut rng);
            let worker = workers[rng.index(workers.len())].clone();
            let item = items[rng.index(items.len())].clone();
            let days = WorkDays::from_centi(25 * rng.range(1, 3) as i64).unwrap();
            let id = LineId::labor(&site(), date, &worker, &item);
            let doc = DocId::Day(site(), date);
            say(format!("intent {id} {doc} {}", days.centi()));
            let e = sitesync_core::store::entry(site(), date, worker, item, days);
            let result = match store.add_labor(&e, None) {
                Err(Error::DuplicateLine { .. }) => {
                    let patch = LaborPatch {
                        work_days: Some(days),
                        ..LaborPatch::default()
                    };
                    store.edit_labor(&id, &patch, None)
                }
                other => other,
            };
            match result {
                Ok(_) => say(format!("wrote {id} {doc} {}", days.centi())),
                Err(e) => {
                    say(format!("error {e}"));
                    return;
                }
            }
        }
        say("sync".into());
        let result = rt.block_on(sync_once(&mut store));
        for doc in store.doc_ids().unwrap() {
            if let Some(heads) = store.synced_heads(&doc).unwrap().filter(|h| !h.is_empty()) {
                say(format!("acked {doc} {}", heads.join(",")));
            }
        }
        match result {
            Ok(_) => say("synced".into()),
            Err(Error::Sync(e)) => say(format!("failed {e}")),
            Err(e) => {
                say(format!("error {e}"));
                return;
            }
        }
    }
}

/// What the child said, line by line.
#[derive(Debug)]
enum Said {
    Intent(String, DocId, i64),
    Wrote(String, DocId, i64),
    Sync,
    Acked(DocId, Vec<String>),
    Synced,
    Failed(String),
    Error(String),
}

fn parse(line: &str) -> Said {
    let mut parts = line.splitn(4, ' ');
    let word = parts.next().unwrap();
    let mut next = || parts.next().unwrap().to_string();
    match word {
        "intent" | "wrote" => {
            let (id, doc, centi) = (next(), next().parse().unwrap(), next().parse().unwrap());
            if word == "intent" {
                Said::Intent(id, doc, centi)
            } else {
                Said::Wrote(id, doc, centi)
            }
        }
        "sync" => Said::Sync,
        "acked" => {
            let doc = next().parse().unwrap();
            Said::Acked(doc, next().split(',').map(str::to_string).collect())
        }
        "synced" => Said::Synced,
        "failed" => Said::Failed(line["failed ".len()..].to_string()),
        _ => Said::Error(line.to_string()),
    }
}

/// The parent's phone: one to three writes, then a sync that must succeed (the server stays up).
fn other_phone_round(
    rt: &tokio::runtime::Runtime,
    other: &mut Store,
    slice: &(Vec<WorkerId>, Vec<WorkItemId>),
    round: u64,
    rng: &mut Rng,
    written: &mut BTreeMap<DocId, BTreeSet<String>>,
    seed: u64,
) {
    for _ in 0..rng.range(1, 3) {
        let date = date_in(round, rng);
        let doc = DocId::Day(site(), date);
        let sheet = other.day(&site(), date).unwrap();
        if rng.index(2) == 0 && !sheet.labor.is_empty() {
            // A note on any line, the child's included: concurrent with the child's edits, never
            // on the same field.
            let line = &sheet.labor[rng.index(sheet.labor.len())];
            let patch = LaborPatch {
                note: Some(format!("checked in round {round}")),
                ..LaborPatch::default()
            };
            other.edit_labor(&line.id, &patch, None).unwrap();
        } else {
            let worker = slice.0[rng.index(slice.0.len())].clone();
            let item = slice.1[rng.index(slice.1.len())].clone();
            let e = sitesync_core::store::entry(site(), date, worker, item, WorkDays::parse("0.5").unwrap());
            match other.add_labor(&e, None) {
                Ok(line) => {
                    written.entry(doc).or_default().insert(line.id.to_string());
                }
                Err(Error::DuplicateLine { .. }) => {}
                Err(e) => panic!("seed {seed} round {round}: the parent's phone: {e}"),
            }
        }
    }
    rt.block_on(sync_once(other))
        .unwrap_or_else(|e| panic!("seed {seed} round {round}: the parent's phone does not sync: {e}"));
}

/// Syncs until the exchange completes with nothing pending.
fn sync_clean(rt: &tokio::runtime::Runtime, store: &mut Store, who: &str, seed: u64) {
    let mut last = String::new();
    for _ in 0..5 {
        match rt.block_on(sync_once(store)) {
            Ok(_) if store.pending().unwrap().is_empty() => return,
            Ok(_) => last = format!("still pending: {:?}", store.pending().unwrap()),
            Err(e) => last = e.to_string(),
        }
    }
    panic!("seed {seed}: {who} does not sync: {last}");
}

/// The day sheets' labor line ids of every day document in the store; panics on a doubled line or
/// a projection that differs from the documents.
fn lines_by_day(store: &mut Store, context: &str) -> BTreeMap<DocId, BTreeSet<String>> {
    let before = store.projection_dump().unwrap();
    store.reindex().unwrap();
    assert!(
        before == store.projection_dump().unwrap(),
        "{context}: the projection differs from the documents"
    );
    let mut out = BTreeMap::new();
    for doc in store.doc_ids().unwrap() {
        let DocId::Day(site, date) = &doc else { continue };
        let sheet = store.day(site, *date).unwrap();
        let ids: BTreeSet<String> = sheet.labor.iter().map(|l| l.id.to_string()).collect();
        assert_eq!(ids.len(), sheet.labor.len(), "{context}: {doc} shows a line twice");
        out.insert(doc, ids);
    }
    out
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn work_days(store: &mut Store, id: &str) -> Option<i64> {
    store
        .labor_line(&LineId::new(id).unwrap())
        .ok()
        .map(|(_, _, l)| l.work_days.centi())
}

#[test]
fn acknowledged_changes_survive_phone_sigkill_mid_sync() {
    let rounds = support::env_or("SITESYNC_CLIENT_CRASH_ROUNDS", 24);
    let seed = support::seed("SITESYNC_CLIENT_CRASH_SEED");
    eprintln!("client crash: {rounds} rounds, seed {seed} (replay: SITESYNC_CLIENT_CRASH_SEED={seed})");
    let started = Instant::now();
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let data = support::DataDir::new(dir.path().join("data"));
    let log = dir.path().join("server.log");
    let tokens = support::company(&data, &["u-foreman-hz-01", "u-manager-hz-01"]);
    let addr = support::free_addr();
    let mut server = support::start(&data, addr, &log);
    support::healthy(&mut server, addr, &log, "start");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let path = dir.path().join("phone.sqlite3");
    {
        let mut phone = Store::open(&path).unwrap();
        phone.set_user("u-foreman-hz-01").unwrap();
        phone.bind(&format!("http://{addr}"), &tokens[0]).unwrap();
        rt.block_on(sync_once(&mut phone)).unwrap();
    }
    let mut other = Store::open(dir.path().join("other.sqlite3")).unwrap();
    other.set_user("u-manager-hz-01").unwrap();
    other.bind(&format!("http://{addr}"), &tokens[1]).unwrap();
    rt.block_on(sync_once(&mut other)).unwrap();
    let other_slice = roster_slice(&mut other, 1);

    // The child's lines and their last work-days; the other phone's lines; what the server acked.
    let mut mine: BTreeMap<String, (DocId, i64)> = BTreeMap::new();
    let mut theirs: BTreeMap<DocId, BTreeSet<String>> = BTreeMap::new();
    let mut acks: BTreeSet<(DocId, Vec<String>)> = BTreeSet::new();
    let (mut mid_sync, mut mid_write, mut syncs_ok) = (0, 0, 0);
    let exe = std::env::current_exe().unwrap();
    // How long an exchange of the phone takes, as the parent sees it (a running average).
    let mut exchange = Duration::from_millis(20);
    for round in 0..rounds {
        let context = format!("seed {seed} round {round}");
        other_phone_round(&rt, &mut other, &other_slice, round, &mut rng, &mut theirs, seed);
        let mut child = support::Process(
            Command::new(&exe)
                .args([
                    "phone_process",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("SITESYNC_PHONE_STORE", &path)
                .env("SITESYNC_PHONE_SEED", seed.to_string())
                .env("SITESYNC_PHONE_ROUND", round.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let stdout = child.0.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // The test harness prints its own lines around the test's.
                if line.starts_with("running ") || line.starts_with("test ") || line.is_empty() {
                    continue;
                }
                if tx.send(parse(&line)).is_err() {
                    break;
                }
            }
        });
        // Kill it a random moment after its 1st to 4th sync began: while it pushes, waits for the
        // acknowledgement, merges what it receives, or records the new acknowledged heads.
        // The window scales with how long an exchange takes here (debug or release, loaded or not).
        let wanted = rng.range(1, 4);
        let mut said = Vec::new();
        let mut syncs = 0;
        let mut began = Instant::now();
        while syncs < wanted {
            let s = rx
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("{context}: the phone stalled or exited: {said:?}"));
            match s {
                Said::Sync => {
                    syncs += 1;
                    began = Instant::now();
                }
                Said::Synced => exchange = (exchange * 3 + began.elapsed()) / 4,
                _ => {}
            }
            said.push(s);
        }
        let window = exchange.as_micros() as u64 * 3 / 2;
        std::thread::sleep(Duration::from_micros(rng.range(0, window)));
        support::sigkill(&mut child);
        reader.join().unwrap();
        said.extend(rx.try_iter());

        let mut intent = None;
        for s in &said {
            match s {
                Said::Intent(id, doc, centi) => intent = Some((id.clone(), doc.clone(), *centi)),
                Said::Wrote(id, doc, centi) => {
                    mine.insert(id.clone(), (doc.clone(), *centi));
                    intent = None;
                }
                Said::Acked(doc, heads) => {
                    acks.insert((doc.clone(), heads.clone()));
                }
                Said::Synced => syncs_ok += 1,
                Said::Failed(e) => panic!("{context}: the phone's sync failed with the server up: {e}"),
                Said::Error(e) => panic!("{context}: the phone failed: {e}"),
                Said::Sync => {}
            }
        }
        match said.last() {
            Some(Said::Sync) => mid_sync += 1,
            Some(Said::Intent(..)) => mid_write += 1,
            _ => {}
        }

        // The store opens, is intact, and holds every line the phone wrote, with its last value
        // (or, for the write the kill interrupted, either value).
        // Opened the way the app reopens it (recovering the write-ahead log), then checked.
        let mut phone =
            Store::open(&path).unwrap_or_else(|e| panic!("{context}: the phone's store does not open: {e}"));
        assert_eq!(support::integrity(&path), "ok", "{context}: phone store after SIGKILL");
        phone.verify().unwrap_or_else(|e| panic!("{context}: {e}"));
        if let Some((id, doc, centi)) = intent {
            let now = work_days(&mut phone, &id);
            let before = mine.get(&id).map(|(_, c)| *c);
            assert!(
                now == before || now == Some(centi),
                "{context}: interrupted write of {id}: {now:?}, neither {before:?} nor {centi}"
            );
            if let Some(now) = now {
                mine.insert(id, (doc, now));
            }
        }
        for (id, (_, centi)) in &mine {
            let now = work_days(&mut phone, id);
            assert_eq!(now, Some(*centi), "{context}: line {id} written by the phone");
        }
        let shown = lines_by_day(&mut phone, &context);
        for (id, (doc, _)) in &mine {
            assert!(
                shown.get(doc).is_some_and(|s| s.contains(id)),
                "{context}: {id} not on {doc}"
            );
        }
        for (doc, ids) in &shown {
            for id in ids {
                assert!(
                    mine.contains_key(id) || theirs.get(doc).is_some_and(|t| t.contains(id)),
                    "{context}: {doc} shows {id}, which no phone added"
                );
            }
        }
    }

    // The phone comes back for good: it pushes what is left, the other phone takes it in, and the
    // phone takes in the other phone's last changes.
    let mut phone = Store::open(&path).unwrap();
    sync_clean(&rt, &mut phone, "the phone", seed);
    sync_clean(&rt, &mut other, "the other phone", seed);
    sync_clean(&rt, &mut phone, "the phone", seed);
    assert!(
        server.0.try_wait().unwrap().is_none(),
        "seed {seed}: the server died:\n{}",
        support::tail(&log)
    );
    support::stop(server);

    let mut files = vec![
        ("the phone", path.clone()),
        ("the other phone", dir.path().join("other.sqlite3")),
    ];
    // The server's own files, when its state is in them (PostgreSQL checks its own).
    if data.postgres().is_none() {
        files.push(("documents.sqlite3", data.join("documents.sqlite3")));
        files.push(("server.sqlite3", data.join("server.sqlite3")));
    }
    for (db, file) in files {
        assert_eq!(support::integrity(&file), "ok", "seed {seed}: {db}");
    }
    let mut docs = data.documents();
    docs.verify().unwrap();
    for (doc, heads) in &acks {
        assert!(
            docs.knows_all(doc, heads).unwrap(),
            "seed {seed}: the phone saw {doc} acknowledged at {heads:?}, which the server lacks"
        );
    }
    let on_server = lines_by_day(&mut docs, &format!("seed {seed}: the server"));
    // Both phones hold exactly the server's documents of their site.
    let of_site: Vec<DocId> = docs
        .doc_ids()
        .unwrap()
        .into_iter()
        .filter(|d| d.site().is_none_or(|s| *s == site()))
        .collect();
    for (store, who) in [(&mut phone, "the phone"), (&mut other, "the other phone")] {
        let context = format!("seed {seed}: {who}");
        assert_eq!(
            lines_by_day(store, &context),
            on_server,
            "{context}: lines differ from the server's"
        );
        assert_eq!(store.doc_ids().unwrap(), of_site, "{context}: documents");
        for doc in &of_site {
            assert_eq!(
                sorted(store.heads(doc).unwrap()),
                sorted(docs.heads(doc).unwrap()),
                "{context}: diverges on {doc}"
            );
            if let DocId::Day(site, date) = doc {
                assert_eq!(
                    store.day(site, *date).unwrap(),
                    docs.day(site, *date).unwrap(),
                    "{context}: {doc}"
                );
            }
        }
    }
    // Every line either phone added is on the server exactly once, with the phone's last value.
    let mut expected = theirs.clone();
    for (id, (doc, _)) in &mine {
        expected.entry(doc.clone()).or_default().insert(id.clone());
    }
    assert_eq!(on_server, expected, "seed {seed}: the server's lines");
    for (id, (_, centi)) in &mine {
        assert_eq!(
            work_days(&mut docs, id),
            Some(*centi),
            "seed {seed}: {id} on the server"
        );
    }
    assert!(!acks.is_empty(), "seed {seed}: the phone never saw an acknowledgement");
    assert!(
        mid_sync * 3 >= rounds,
        "seed {seed}: only {mid_sync} of {rounds} kills hit a sync"
    );
    let lines: usize = on_server.values().map(BTreeSet::len).sum();
    eprintln!(
        "client crash summary: {rounds} kills ({mid_sync} mid-sync, {mid_write} mid-write), {syncs_ok} syncs \
         completed, {} acknowledged heads checked, {lines} lines ({} by the killed \
         phone), {:.1} s, seed {seed}",
        acks.len(),
        mine.len(),
        started.elapsed().as_secs_f64()
    );
}
