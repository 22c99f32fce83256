//! Failover: eight phones push rounds of labor lines through one proxy in front of node A; at a
//! random moment A is SIGKILLed and the proxy sent to node B, and the rounds go on there. Nothing
//! acknowledged through A is lost, every phone gets everything through, and all end up holding what
//! the database holds.

use std::sync::Arc;

use sitesync_core::ids::LineId;
use tokio::sync::watch;

use super::*;
use crate::proxy::{FaultProxy, Faults};

/// Rounds each phone pushes; `LINES` lines each (one day document a round).
const ROUNDS: u64 = 10;
const LINES: usize = 2;

/// The phones' users: every site person of the fixture company, and a second device for the
/// foremen of the two largest sites.
const USERS: [&str; 8] = [
    "u-foreman-hz-01",
    "u-manager-hz-01",
    "u-foreman-hz-01",
    "u-foreman-sz-02",
    "u-manager-sz-02",
    "u-foreman-nb-03",
    "u-manager-nb-03",
    "u-foreman-nb-03",
];

/// One phone and what it has done.
struct Pusher {
    name: String,
    store: Store,
    site: SiteId,
    /// The workers only this phone writes for (so no two phones log the same line).
    workers: Vec<WorkerId>,
    /// Every line added, in order.
    added: Vec<LineId>,
    /// How many of `added` a successful sync acknowledged.
    acked: usize,
    /// When each sync began, and whether it succeeded.
    syncs: Vec<(Instant, bool)>,
}

/// The first day logged.
fn first_day() -> NaiveDate {
    d("2026-11-02")
}

/// Adds the round's lines and syncs; tells `done` when the round is over.
async fn push_rounds(mut p: Pusher, done: Arc<watch::Sender<u64>>) -> Pusher {
    let item = WorkItemId::new(format!("{}/wi-1.1", p.site)).unwrap();
    for round in 0..ROUNDS {
        let date = first_day() + chrono::Days::new(round);
        for k in 0..LINES {
            let worker = p.workers[(round as usize * LINES + k) % p.workers.len()].clone();
            let e = entry(
                p.site.clone(),
                date,
                worker,
                item.clone(),
                WorkDays::parse("1.0").unwrap(),
            );
            p.added.push(p.store.add_labor(&e, None).unwrap().id);
        }
        let began = Instant::now();
        let ok = sync_once(&mut p.store).await.is_ok();
        if ok {
            p.acked = p.added.len();
        }
        p.syncs.push((began, ok));
        done.send_modify(|n| *n += 1);
    }
    p
}

/// Syncs until one exchange succeeds (a few tries: the proxy now points at a live node).
async fn sync_through(p: &mut Pusher) {
    for attempt in 1..=5 {
        match sync_once(&mut p.store).await {
            Ok(_) => return,
            Err(e) if attempt < 5 => println!("{}: final sync {attempt}: {e}", p.name),
            Err(e) => panic!("{}: no sync got through B: {e}", p.name),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_node_a_while_eight_phones_push_through_it() {
    let Some(mut cluster) = Cluster::start().await else {
        return;
    };
    let seed = support::seed("SITESYNC_FAILOVER_SEED");
    println!("seed {seed} (replay with SITESYNC_FAILOVER_SEED={seed})");
    let mut rng = support::Rng::new(seed);
    let proxy = Arc::new(FaultProxy::start(cluster.a.addr, Faults::default()).await.unwrap());

    let mut pushers = Vec::new();
    for (i, user) in USERS.iter().enumerate() {
        let site = site(site_of(user));
        let token = cluster.device(user).await;
        let mut store = cluster.phone(&format!("phone-{i}"), proxy.addr(), &token);
        sync_once(&mut store).await.unwrap();
        // The phones of one site share its workers out: phone `slot` of `n` takes every n-th.
        let same_site: Vec<usize> = (0..USERS.len())
            .filter(|&j| site_of(USERS[j]) == site_of(user))
            .collect();
        let slot = same_site.iter().position(|&j| j == i).unwrap();
        let workers = workers(&mut store, &site)
            .into_iter()
            .skip(slot)
            .step_by(same_site.len())
            .collect();
        pushers.push(Pusher {
            name: format!("phone-{i} ({user})"),
            store,
            site,
            workers,
            added: Vec::new(),
            acked: 0,
            syncs: Vec::new(),
        });
    }

    // The kill comes after a random number of rounds (at most half of them) and a random pause.
    let total = USERS.len() as u64 * ROUNDS;
    let (kill_after, pause) = (rng.range(1, total / 2), Duration::from_millis(rng.range(0, 150)));
    let rounds = Arc::new(watch::channel(0u64).0);
    let killer = {
        let (mut rounds, proxy) = (rounds.subscribe(), proxy.clone());
        let (pid, b) = (cluster.a.process.0.id(), cluster.b.addr);
        tokio::spawn(async move {
            rounds.wait_for(|n| *n >= kill_after).await.unwrap();
            tokio::time::sleep(pause).await;
            // SIGKILL, as a crash or the OOM killer does it.
            let killed = Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
            assert!(killed.success());
            let at = Instant::now();
            proxy.set_upstream(b);
            proxy.cut_all();
            at
        })
    };
    let started = Instant::now();
    let tasks: Vec<_> = pushers
        .into_iter()
        .map(|p| tokio::spawn(push_rounds(p, rounds.clone())))
        .collect();
    let mut pushers = Vec::new();
    for task in tasks {
        pushers.push(task.await.unwrap());
    }
    let killed = killer.await.unwrap();
    support::sigkill(&mut cluster.a.process);
    let syncs: Vec<(Instant, bool)> = pushers.iter().flat_map(|p| p.syncs.clone()).collect();
    let (before, after): (Vec<_>, Vec<_>) = syncs.iter().partition(|(at, _)| *at < killed);
    let ok = |s: &[&(Instant, bool)]| s.iter().filter(|(_, ok)| *ok).count();
    println!(
        "A killed after {kill_after} rounds and {pause:?}, {:?} in: {} of {} syncs through A succeeded, {} of {} after",
        killed - started,
        ok(&before),
        before.len(),
        ok(&after),
        after.len()
    );
    assert!(ok(&after) > 0, "the rounds went on through B (seed {seed})");

    // Everything still pending goes through B, then every phone takes in the others' lines.
    for p in &mut pushers {
        sync_through(p).await;
        assert!(
            p.store.pending().unwrap().is_empty(),
            "{}: pending after a sync (seed {seed})",
            p.name
        );
    }
    for p in &mut pushers {
        sync_through(p).await;
    }

    // Head office, on a fresh phone through B, finds every acknowledged line, and every line.
    let office = cluster.device("u-office-1").await;
    let mut hq = cluster.phone("hq", cluster.b.addr, &office);
    sync_once(&mut hq).await.unwrap();
    for p in &pushers {
        for id in &p.added[..p.acked] {
            hq.labor_line(id)
                .unwrap_or_else(|e| panic!("{}: acknowledged {id} lost (seed {seed}): {e}", p.name));
        }
    }
    let lines: usize = pushers.iter().map(|p| p.added.len()).sum();
    let last = first_day() + chrono::Days::new(ROUNDS - 1);
    let report = labor_report(&cluster.b, &office, first_day(), last).await;
    assert_eq!(report["total"]["lines"], lines, "seed {seed}: {report}");

    // Every phone holds each of its day documents as the database does.
    let db = cluster.db.connect();
    let mut holders: Vec<(&str, &mut Store)> = pushers.iter_mut().map(|p| (p.name.as_str(), &mut p.store)).collect();
    holders.push(("head office", &mut hq));
    for (name, store) in holders {
        for doc in store.doc_ids().unwrap() {
            if matches!(doc, DocId::Day(..)) {
                assert_eq!(
                    heads(store, &doc),
                    server_heads(&db, &doc),
                    "{name}: {doc} (seed {seed})"
                );
            }
        }
    }

    // The projections rebuilt from the documents alone say the same.
    admin(&cluster.db, cluster.dir.path(), &["reindex"]).await;
    let again = labor_report(&cluster.b, &office, first_day(), last).await;
    assert_eq!(again, report, "seed {seed}: reindexing changed the report");
}

/// The site of a fixture user.
fn site_of(user: &str) -> &'static str {
    support::SITE_USERS.iter().find(|(u, _)| *u == user).unwrap().1
}
