//! Trust (protocol v2): every pushed change is judged on its own, by the rights of the device whose
//! key signed it, against a real server on loopback. The writers here skip the phone's own checks
//! (scratch stores that were never told who they are, raw protocol clients): they do what a
//! tampered app could, and only the server stands between them and head office's data.
//!
//! Length: one test per write kind × role, each short; the table is easier to check whole.

use std::collections::BTreeSet;

use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use chrono::NaiveDate;
use sitesync_core::Store;
use sitesync_core::ids::{DocId, LineId, SiteId};
use sitesync_core::labor::DayStatus;
use sitesync_core::okr::{Cycle, CycleKind, Direction, KrKind};
use sitesync_core::rules::Violation;
use sitesync_core::signing::{Keypair, fingerprint};
use sitesync_core::store::NewKeyResult;
use sitesync_core::sync::protocol::{ClientMsg, DocResult, DocSync, Refusal, ServerMsg};
use sitesync_core::units::{Minutes, WorkDays};
use sitesync_tests::harness::{Api, RawClient, TestServer, store_push};

use crate::*;

/// The fixture org.
const ORG: &str = "org-zhuyuan";

/// Another site of the org, granted to neither hz-01 user.
fn sz() -> SiteId {
    SiteId::new("site-sz-02").unwrap()
}

/// A scratch store that holds the server's master data of `sites` and writes as `name`, and a raw
/// client of a new device of `user` that registered the store's key at hello: its pushes are
/// signed by the store, judged as that user's, and never checked by the store itself.
struct Writer {
    store: Store,
    client: RawClient,
    _dir: tempfile::TempDir,
}

impl Writer {
    async fn new(server: &TestServer, user: &str, name: &str, sites: &[SiteId]) -> Writer {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path().join("writer.sqlite3")).unwrap();
        for site in sites {
            server.copy_master_data(&mut store, site).await;
        }
        store.set_user(name).unwrap();
        let mut client = RawClient::connect_as(server.addr, &server.device(user).await, &store)
            .await
            .unwrap();
        assert!(matches!(client.welcome(0).await, Some(ServerMsg::Welcome { .. })));
        Writer {
            store,
            client,
            _dir: dir,
        }
    }

    /// Logs one day of the `k`-th worker of `site`'s roster on its first work item; returns the change.
    fn line(&mut self, site: &SiteId, date: NaiveDate, k: usize) -> String {
        let roster = self.store.roster(site).unwrap();
        let e = sitesync_core::store::entry(
            site.clone(),
            date,
            roster.workers[k].id.clone(),
            roster.work_items[0].id.clone(),
            WorkDays::parse("1.0").unwrap(),
        );
        self.store.add_labor(&e, None).unwrap();
        head(&mut self.store, &DocId::Day(site.clone(), date))
    }
}

/// The one head of a document a single store wrote in a line: its last change.
fn head(store: &mut Store, id: &DocId) -> String {
    let heads = store.heads(id).unwrap();
    assert_eq!(heads.len(), 1, "{id}: {heads:?}");
    heads[0].clone()
}

/// Pushes documents; the results, in order.
async fn push(client: &mut RawClient, docs: Vec<DocSync>) -> Vec<DocResult> {
    client.send(&ClientMsg::Push { req: 1, docs }).await;
    loop {
        match client.recv().await {
            Some(ServerMsg::Ack { results, .. }) => return results,
            Some(ServerMsg::Changed { .. }) => continue,
            other => panic!("expected an ack, got {other:?}"),
        }
    }
}

/// The changes a result refused, with the rule each broke.
fn refusals(result: &DocResult) -> Vec<(String, &'static str)> {
    match result {
        DocResult::Partial { refused, .. } => refused
            .iter()
            .map(|r| {
                (
                    sitesync_core::sync::protocol::hex_heads(&[r.hash]).remove(0),
                    r.violation.rule(),
                )
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// A result as a failure message shows it.
fn summary(result: &DocResult) -> String {
    match result {
        DocResult::Synced(_) => "Synced".into(),
        DocResult::Partial { .. } => format!("Partial({:?})", refusals(result)),
        DocResult::NeedHistory { .. } => "NeedHistory".into(),
        DocResult::Refused { reason, .. } => format!("Refused({reason:?})"),
    }
}

/// Whether the server holds change `hash` of `id`.
async fn server_has(server: &TestServer, id: &DocId, hash: &str) -> bool {
    let (id, hash) = (id.clone(), hash.to_string());
    server.store(move |s| s.knows_all(&id, &[hash]).unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foremans_own_approval_is_refused_and_the_rest_of_his_day_is_stored() {
    let server = TestServer::start().await;
    let mut w = Writer::new(&server, "u-foreman-hz-01", "崔贵", &[hz()]).await;
    let date = d("2026-12-05");
    let id = DocId::Day(hz(), date);
    let line = w.line(&hz(), date, 0);
    w.store.submit_day(&hz(), date).unwrap();
    let submitted = head(&mut w.store, &id);
    // The phone's own check would refuse this; this client skips it.
    w.store.approve_day(&hz(), date).unwrap();
    let approval = head(&mut w.store, &id);

    let results = push(&mut w.client, vec![store_push(&mut w.store, &id)]).await;
    let [DocResult::Partial { refused, .. }] = &results[..] else {
        panic!("{results:?}")
    };
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(
        refused[0].violation,
        Violation::ReviewNotAllowed {
            action: "approved".into()
        }
    );
    assert_eq!(refusals(&results[0]), [(approval.clone(), "review.manager_only")]);

    // The line and the submission are head office's to see; the approval is nowhere.
    for (hash, held) in [(&line, true), (&submitted, true), (&approval, false)] {
        assert_eq!(server_has(&server, &id, hash).await, held, "{hash}");
    }
    let sheet = server.store(move |s| s.day(&hz(), date).unwrap()).await;
    assert_eq!(sheet.status, DayStatus::Submitted);
    assert_eq!(sheet.labor.len(), 1);
    assert_eq!(sheet.labor[0].entered_by, "崔贵");
    // The day waits in the approval queue for a manager.
    let office = Api::new(&server, &server.device("u-office-1").await);
    let queue = office.json("/v1/approvals", &[]).await;
    assert!(
        queue
            .as_array()
            .unwrap()
            .iter()
            .any(|q| q["site"] == "site-hz-01" && q["date"] == "2026-12-05" && q["status"] == "submitted"),
        "{queue}"
    );
    server.stop().await;
}

/// The issue's case with the real phone: a store used before it was enrolled, where its user logged
/// an inflated day, approved it himself and wrote a line in the manager's name. Enrolled as the
/// foreman's phone, it syncs: what the foreman may write reaches head office, the rest is refused
/// change by change, taken out of the phone and shown there with its rule, and is not offered again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_used_before_enrolment_delivers_only_what_its_user_may_write() {
    let server = TestServer::start().await;
    let token = server.device("u-foreman-hz-01").await;
    let dir = tempfile::tempdir().unwrap();
    let mut p = Store::open(dir.path().join("phone.sqlite3")).unwrap();
    // The site's master data handed over as a synced phone holds it; no server has told this store
    // who it is yet, so nothing checks its writes.
    let site = DocId::Site(hz());
    let roster = server
        .store(|s| s.export_changes(&DocId::Site(hz()), &[]).unwrap().unwrap())
        .await;
    p.merge_changes(&site, &roster).unwrap();
    let (inflated, other) = (d("2026-12-05"), d("2026-12-06"));
    let (day, next) = (DocId::Day(hz(), inflated), DocId::Day(hz(), other));
    p.set_user("崔贵").unwrap();
    let mut e = entry("2026-12-05", "w-0001", "site-hz-01/wi-4.1", "3.0");
    e.hours = Some(Minutes::from_min("hours_min", 20 * 60).unwrap());
    p.add_labor(&e, None).unwrap();
    p.submit_day(&hz(), inflated).unwrap();
    p.approve_day(&hz(), inflated).unwrap();
    let approval = head(&mut p, &day);
    p.add_labor(&entry("2026-12-06", "w-0002", "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    let honest = head(&mut p, &next);
    p.set_user("经理").unwrap();
    p.add_labor(&entry("2026-12-06", "w-0003", "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    let forged = head(&mut p, &next);

    p.bind(&server.url(), &token).unwrap();
    let progress = sync(&mut p).await;
    let noted: BTreeSet<(String, String)> = progress
        .refused_changes
        .iter()
        .map(|n| (n.hash.clone(), n.rule.clone()))
        .collect();
    assert_eq!(
        noted,
        BTreeSet::from([
            (approval.clone(), "review.manager_only".to_string()),
            (forged.clone(), "author.forged".to_string()),
        ])
    );
    assert!(progress.refused.is_empty(), "{progress:?}");

    // Head office: the inflated day submitted for a manager to look at, the foreman's own line of the
    // next day, nothing of the approval nor of the line in the manager's name.
    let sheet = server.store(move |s| s.day(&hz(), inflated).unwrap()).await;
    assert_eq!(sheet.status, DayStatus::Submitted);
    assert_eq!(
        sheet
            .labor
            .iter()
            .map(|l| (l.work_days.centi(), l.hours.minutes()))
            .collect::<Vec<_>>(),
        [(300, 1200)]
    );
    let sheet = server.store(move |s| s.day(&hz(), other).unwrap()).await;
    assert_eq!(
        sheet.labor.iter().map(|l| l.entered_by.as_str()).collect::<Vec<_>>(),
        ["崔贵"]
    );
    assert!(server_has(&server, &next, &honest).await);
    assert!(!server_has(&server, &day, &approval).await);
    assert!(!server_has(&server, &next, &forged).await);

    // The phone: its copy is head office's, and it says what did not get there and why.
    assert_eq!(p.day(&hz(), inflated).unwrap().status, DayStatus::Submitted);
    assert_eq!(p.day(&hz(), other).unwrap().labor.len(), 1);
    assert_eq!(
        sorted(p.heads(&day).unwrap()),
        sorted(server_heads(&server, &day).await)
    );
    assert_eq!(
        sorted(p.heads(&next).unwrap()),
        sorted(server_heads(&server, &next).await)
    );
    let rows = p.refused_changes().unwrap();
    let shown: BTreeSet<(String, String, String)> = rows
        .iter()
        .map(|r| (r.hash.clone(), r.doc.clone(), r.rule.clone()))
        .collect();
    assert_eq!(
        shown,
        BTreeSet::from([
            (approval.clone(), day.to_string(), "review.manager_only".to_string()),
            (forged.clone(), next.to_string(), "author.forged".to_string()),
        ])
    );
    let approval_row = rows.iter().find(|r| r.hash == approval).unwrap();
    assert!(
        approval_row
            .writes
            .iter()
            .any(|w| w.table == "reviews" && w.field == "action"),
        "{approval_row:?}"
    );
    assert!(p.pending().unwrap().is_empty(), "{:?}", p.pending().unwrap());
    // The sync status an app shows (the mobile bindings' SyncStatusRecord) counts them and names
    // the latest with why.
    let status = p.sync_status().unwrap();
    assert_eq!(status.refused_changes, 2);
    let latest: BTreeSet<(String, String, String)> = status
        .latest_refusals
        .iter()
        .map(|r| (r.hash.clone(), r.doc.clone(), r.rule.clone()))
        .collect();
    assert_eq!(latest, shown);
    assert!(
        status.latest_refusals.iter().all(|r| !r.reason.is_empty()),
        "{status:?}"
    );

    // The next sync is clean: nothing refused is offered again, nothing is pushed.
    let cursor = server.store(|s| s.change_cursor().unwrap()).await;
    let again = sync(&mut p).await;
    assert_eq!((again.pushed, again.refused_changes.len()), (0, 0), "{again:?}");
    assert_eq!(server.store(|s| s.change_cursor().unwrap()).await, cursor);
    // And from now on the phone knows who it is: a line in another's name is not even written.
    p.set_user("经理").unwrap();
    let err = p
        .add_labor(&entry("2026-12-07", "w-0001", "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap_err();
    assert!(
        matches!(
            &err,
            sitesync_core::Error::NotAuthorized {
                violation: Violation::ForgedAuthor { .. }
            }
        ),
        "{err}"
    );
    server.stop().await;
}

/// A document of the phone's own whose every change is refused: the server stores nothing of it, and
/// the phone is left with nothing to offer again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_document_refused_whole_leaves_nothing_pending() {
    let server = TestServer::start().await;
    let token = server.device("u-foreman-hz-01").await;
    let dir = tempfile::tempdir().unwrap();
    let mut p = Store::open(dir.path().join("phone.sqlite3")).unwrap();
    let roster = server
        .store(|s| s.export_changes(&DocId::Site(hz()), &[]).unwrap().unwrap())
        .await;
    p.merge_changes(&DocId::Site(hz()), &roster).unwrap();
    p.set_user("经理").unwrap();
    p.add_labor(&entry("2026-12-08", "w-0001", "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    let day = DocId::Day(hz(), d("2026-12-08"));
    let forged = head(&mut p, &day);
    p.bind(&server.url(), &token).unwrap();
    let progress = sync(&mut p).await;
    assert_eq!(
        progress
            .refused_changes
            .iter()
            .map(|n| (n.hash.as_str(), n.rule.as_str()))
            .collect::<Vec<_>>(),
        [(forged.as_str(), "author.forged")]
    );
    assert!(!server_has(&server, &day, &forged).await);
    assert!(p.day(&hz(), d("2026-12-08")).unwrap().labor.is_empty());
    assert!(p.pending().unwrap().is_empty(), "{:?}", p.pending().unwrap());
    let again = sync(&mut p).await;
    assert_eq!((again.pushed, again.refused_changes.len()), (0, 0), "{again:?}");
    server.stop().await;
}

async fn server_heads(server: &TestServer, id: &DocId) -> Vec<String> {
    let id = id.clone();
    server.store(move |s| s.heads(&id).unwrap()).await
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// A kind of write a tampered app could push.
#[derive(Debug, Clone, Copy)]
enum Write {
    /// Approves the day the writer logged and submitted.
    OwnApproval,
    /// A labor line whose `entered_by` names another user of the site.
    ForgedName,
    /// A key result check-in with author `system` (the server's metric check-ins).
    SystemCheckIn,
    /// A change of a worker's day rate in the site's master data.
    MasterData,
    /// A line on another site's day, pushed by the writer.
    OtherSite,
    /// The writer's signed line on another site's day, carried by a head office device that may
    /// write that day.
    CarriedOtherSite,
    /// A note on a line deleted in the writer's view.
    DeletedLine,
    /// Another device's change, under that device's actor, signed by the writer.
    ForeignActor,
    /// A change without its signature.
    Unsigned,
    /// A change whose signature was altered.
    TamperedSignature,
    /// A change signed by a key registered to no device.
    UnknownKey,
}

#[derive(Debug, Clone, Copy)]
enum Who {
    Foreman,
    Manager,
    Office,
}

impl Who {
    fn user(self) -> &'static str {
        match self {
            Who::Foreman => "u-foreman-hz-01",
            Who::Manager => "u-manager-hz-01",
            Who::Office => "u-office-1",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Who::Foreman => "崔贵",
            Who::Manager => "龙东江",
            Who::Office => "付志",
        }
    }
}

/// What the server makes of the push.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// Every change stored.
    Stored,
    /// The write's change refused alone for this rule; the allowed change before it stored.
    Refused(&'static str),
    /// The write's whole document refused before any rule is read (the device may not write it at
    /// all); the allowed document of the same push stored.
    Document(Refusal),
}

use Outcome::{Document, Refused, Stored};

/// Write kind × role → what the server does. Each push holds the write and an allowed change of the
/// same writer before it (in the same document, or in another one of the same push).
#[rustfmt::skip]
const TABLE: [(Write, Who, Outcome); 14] = [
    (Write::OwnApproval,       Who::Foreman, Refused("review.manager_only")),
    (Write::OwnApproval,       Who::Manager, Stored),
    (Write::ForgedName,        Who::Foreman, Refused("author.forged")),
    (Write::ForgedName,        Who::Manager, Refused("author.forged")),
    (Write::SystemCheckIn,     Who::Office,  Refused("okr.system_only")),
    (Write::MasterData,        Who::Foreman, Refused("site.head_office_only")),
    (Write::MasterData,        Who::Office,  Stored),
    (Write::OtherSite,         Who::Foreman, Document(Refusal::Forbidden)),
    (Write::CarriedOtherSite,  Who::Foreman, Refused("site.grant")),
    (Write::DeletedLine,       Who::Foreman, Refused("line.deleted")),
    (Write::ForeignActor,      Who::Foreman, Refused("author.foreign_actor")),
    (Write::Unsigned,          Who::Foreman, Refused("signature.missing")),
    (Write::TamperedSignature, Who::Foreman, Refused("signature.invalid")),
    (Write::UnknownKey,        Who::Foreman, Refused("signature.unknown_key")),
];

/// A push built for a row: who sends it, the documents, the write's change and the allowed ones.
struct Case {
    pusher: RawClient,
    docs: Vec<DocSync>,
    /// The write under test: its document and change.
    write: (DocId, String),
    /// Changes the server must store whatever the write comes to.
    allowed: Vec<(DocId, String)>,
}

/// Builds the push of one row, on its own day.
async fn case(server: &TestServer, write: Write, who: Who, date: NaiveDate) -> Case {
    let day = DocId::Day(hz(), date);
    let mut w = Writer::new(server, who.user(), who.name(), &[hz(), sz()]).await;
    match write {
        Write::OwnApproval => {
            let line = w.line(&hz(), date, 0);
            w.store.submit_day(&hz(), date).unwrap();
            let submitted = head(&mut w.store, &day);
            w.store.approve_day(&hz(), date).unwrap();
            Case {
                write: (day.clone(), head(&mut w.store, &day)),
                allowed: vec![(day.clone(), line), (day.clone(), submitted)],
                docs: vec![store_push(&mut w.store, &day)],
                pusher: w.client,
            }
        }
        Write::ForgedName => {
            let line = w.line(&hz(), date, 0);
            let other = match who {
                Who::Foreman => Who::Manager,
                _ => Who::Foreman,
            };
            w.store.set_user(other.name()).unwrap();
            Case {
                write: (day.clone(), w.line(&hz(), date, 1)),
                allowed: vec![(day.clone(), line)],
                docs: vec![store_push(&mut w.store, &day)],
                pusher: w.client,
            }
        }
        Write::SystemCheckIn => {
            let okr = DocId::Okr(ORG.parse().unwrap(), "2026-Q4".into());
            let cycle = Cycle::new(ORG, "2026-Q4", CycleKind::Quarter, "四季度", "", date);
            w.store.put_cycle(&cycle).unwrap();
            let o = w
                .store
                .add_objective(ORG, "2026-Q4", "控制人工成本", who.name(), "成本", None)
                .unwrap();
            let new = NewKeyResult {
                objective: o.id,
                title: "人工成本".into(),
                owner: who.name().into(),
                unit: "¥".into(),
                start_milli: 0,
                target_milli: Some(1_000_000),
                direction: Direction::AtMost,
                kind: KrKind::Baseline,
                weight: 1,
                due: Some(d("2026-12-31")),
                metric: None,
            };
            let kr = w.store.add_key_result(ORG, "2026-Q4", &new).unwrap();
            let shaped = head(&mut w.store, &okr);
            w.store.set_user("system").unwrap();
            w.store
                .check_in(ORG, "2026-Q4", &kr.id, 500_000, None, None, "", date)
                .unwrap();
            Case {
                write: (okr.clone(), head(&mut w.store, &okr)),
                allowed: vec![(okr.clone(), shaped)],
                docs: vec![store_push(&mut w.store, &okr)],
                pusher: w.client,
            }
        }
        Write::MasterData => {
            let line = w.line(&hz(), date, 0);
            let site = DocId::Site(hz());
            let before = w.store.heads(&site).unwrap();
            let mut roster = w.store.roster(&hz()).unwrap();
            roster.workers[0].day_rate = sitesync_core::units::Fen::new("r", 99_900).unwrap();
            w.store.put_roster(&roster).unwrap();
            let change = w.store.heads(&site).unwrap().into_iter().find(|h| !before.contains(h));
            Case {
                write: (site.clone(), change.unwrap()),
                allowed: vec![(day.clone(), line)],
                docs: vec![store_push(&mut w.store, &site), store_push(&mut w.store, &day)],
                pusher: w.client,
            }
        }
        Write::OtherSite => {
            let line = w.line(&hz(), date, 0);
            let theirs = DocId::Day(sz(), date);
            Case {
                write: (theirs.clone(), w.line(&sz(), date, 0)),
                allowed: vec![(day.clone(), line)],
                docs: vec![store_push(&mut w.store, &theirs), store_push(&mut w.store, &day)],
                pusher: w.client,
            }
        }
        Write::CarriedOtherSite => {
            // Head office's own line of that day is allowed; the writer's, signed by the writer's
            // registered key, is judged as the writer's whoever carries it.
            let theirs = DocId::Day(sz(), date);
            let line = w.line(&sz(), date, 0);
            let mut office = Writer::new(server, "u-office-1", "付志", &[sz()]).await;
            let own = office.line(&sz(), date, 1);
            let mut carried = store_push(&mut office.store, &theirs);
            let writers = store_push(&mut w.store, &theirs);
            carried.changes.extend_from_slice(&writers.changes);
            carried.sigs.extend(writers.sigs);
            Case {
                write: (theirs.clone(), line),
                allowed: vec![(theirs.clone(), own)],
                docs: vec![carried],
                pusher: office.client,
            }
        }
        Write::DeletedLine => {
            let roster = w.store.roster(&hz()).unwrap();
            let deleted = LineId::labor(&hz(), date, &roster.workers[0].id, &roster.work_items[0].id);
            w.line(&hz(), date, 0);
            let results = push(&mut w.client, vec![store_push(&mut w.store, &day)]).await;
            assert!(matches!(results[..], [DocResult::Synced(_)]), "{results:?}");
            w.store.delete_labor(&deleted, None).unwrap();
            let results = push(&mut w.client, vec![store_push(&mut w.store, &day)]).await;
            assert!(matches!(results[..], [DocResult::Synced(_)]), "{results:?}");
            let line = w.line(&hz(), date, 1);
            // The store's API refuses to edit a deleted line: the edit is made by hand.
            let edit = by_hand(
                &mut w.store,
                &day,
                &[("labor", format!("{deleted}.note"), "改过".into())],
            );
            Case {
                write: (day.clone(), edit),
                allowed: vec![(day.clone(), line)],
                docs: vec![store_push(&mut w.store, &day)],
                pusher: w.client,
            }
        }
        Write::ForeignActor => {
            // The writer's line, under its own actor; another device of the same user signs it
            // with its own registered key and pushes it beside a change of its own.
            let foreign = w.line(&hz(), date, 0);
            let bytes = w.store.export_changes(&day, &[]).unwrap().unwrap();
            let mut other = RawClient::connect(server.addr, &server.device(who.user()).await)
                .await
                .unwrap();
            assert!(matches!(other.welcome(0).await, Some(ServerMsg::Welcome { .. })));
            let (own_bytes, own) = hand_change(
                &genesis_of(&bytes),
                other.key().new_actor(),
                &[("day", "day.weather".into(), "晴".into())],
            );
            let mut changes = bytes;
            changes.extend_from_slice(&own_bytes);
            let doc = other.signed(&day.to_string(), changes);
            Case {
                write: (day.clone(), foreign),
                allowed: vec![(day.clone(), own)],
                docs: vec![doc],
                pusher: other,
            }
        }
        Write::Unsigned | Write::TamperedSignature | Write::UnknownKey => {
            let line = w.line(&hz(), date, 0);
            let change = w.line(&hz(), date, 1);
            let mut doc = store_push(&mut w.store, &day);
            let hash = sitesync_core::sync::protocol::hashes(std::slice::from_ref(&change))[0];
            let at = doc.sigs.iter().position(|s| s.hash == hash).unwrap();
            match write {
                Write::Unsigned => {
                    doc.sigs.remove(at);
                }
                Write::TamperedSignature => doc.sigs[at].sig[7] ^= 0x20,
                _ => doc.sigs[at] = Keypair::generate().sign_change(&day.to_string(), hash),
            }
            Case {
                write: (day.clone(), change),
                allowed: vec![(day.clone(), line)],
                docs: vec![doc],
                pusher: w.client,
            }
        }
    }
}

/// A change made by hand on top of `base` (Automerge bytes) under `actor`: writes
/// `(table, "record.field", value)` that no store API makes. Returns its bytes and hash.
fn hand_change(base: &[u8], actor: ActorId, writes: &[(&str, String, ScalarValue)]) -> (Vec<u8>, String) {
    let mut doc = Automerge::load(base).unwrap();
    doc.set_actor(actor);
    let before = doc.get_heads();
    let mut tx = doc.transaction();
    for (table, key, value) in writes {
        let Some((Value::Object(ObjType::Map), obj)) = tx.get(ROOT, *table).unwrap() else {
            panic!("no table {table}")
        };
        tx.put(&obj, key.as_str(), value.clone()).unwrap();
    }
    let (hash, _) = tx.commit();
    (doc.save_after(&before), hash.unwrap().to_string())
}

/// One change of `id` made by hand on what `store` holds, under an actor of the store's key, and
/// merged into it (so the store signs it as its own): a write the store's API refuses to make.
fn by_hand(store: &mut Store, id: &DocId, writes: &[(&str, String, ScalarValue)]) -> String {
    let base = store.export_changes(id, &[]).unwrap().unwrap();
    let mut actor = fingerprint(&store.public_key()).to_vec();
    actor.extend_from_slice(&Keypair::generate().public()[..8]);
    let (bytes, hash) = hand_change(&base, ActorId::from(actor), writes);
    store.merge_changes(id, &bytes).unwrap();
    hash
}

/// A document holding only the genesis of the document saved in `bytes` (its first change, the same
/// on every device).
fn genesis_of(bytes: &[u8]) -> Vec<u8> {
    let doc = Automerge::load(bytes).unwrap();
    let genesis = doc.get_changes(&[]).into_iter().find(|c| c.deps().is_empty()).unwrap();
    let mut only = Automerge::new();
    only.apply_changes([genesis]).unwrap();
    only.save()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_change_is_judged_by_its_signers_rights_and_only_the_refused_one_is_left_out() {
    let server = TestServer::start().await;
    let mut wrong = Vec::new();
    for (i, (write, who, outcome)) in TABLE.into_iter().enumerate() {
        let date = d("2026-12-10") + chrono::Days::new(i as u64);
        let mut c = case(&server, write, who, date).await;
        let results = push(&mut c.pusher, c.docs.clone()).await;
        let row = format!("{write:?} by {who:?}");
        let (doc, change) = &c.write;
        let at = c.docs.iter().position(|d| d.doc == doc.to_string()).unwrap();
        let seen = match &results[at] {
            DocResult::Synced(_) => Some(Stored),
            DocResult::Refused { reason, .. } => Some(Document(reason.clone())),
            r @ DocResult::Partial { .. } => match &refusals(r)[..] {
                [(hash, rule)] if hash == change => Some(Refused(rule)),
                _ => None,
            },
            _ => None,
        };
        if seen.as_ref() != Some(&outcome) {
            wrong.push(format!("{row}: expected {outcome:?}, got {}", summary(&results[at])));
        }
        for (k, r) in results.iter().enumerate() {
            if k != at && !matches!(r, DocResult::Synced(_)) {
                wrong.push(format!(
                    "{row}: the allowed document {} came back {}",
                    c.docs[k].doc,
                    summary(r)
                ));
            }
        }
        // What the server holds: every allowed change, and the write only where it was allowed.
        for (id, hash) in &c.allowed {
            if !server_has(&server, id, hash).await {
                wrong.push(format!("{row}: the allowed change {hash} of {id} is missing"));
            }
        }
        if server_has(&server, doc, change).await != (outcome == Stored) {
            wrong.push(format!("{row}: the server holds the write: {}", outcome != Stored));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} differ from the table:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    server.stop().await;
}

/// A phone re-enrolled with a new device token keeps syncing: the store starts signing with a new
/// key (a key belongs to one device forever), still signs what it made under the old one, and
/// learns who it is again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_bound_to_a_new_device_token_signs_with_a_new_key_and_keeps_syncing() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let first = server.device("u-foreman-hz-01").await;
    let mut phone = sitesync_tests::harness::phone(dir.path(), "崔贵", &server.url(), &first);
    sync(&mut phone).await;
    let old_key = phone.public_key();
    // Offline, under the first device's key; then the phone is enrolled again.
    phone
        .add_labor(&entry("2026-12-07", "w-0001", "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    let second = server.device("u-foreman-hz-01").await;
    phone.bind(&server.url(), &second).unwrap();
    assert_ne!(phone.public_key(), old_key, "a new device token means a new key");
    phone
        .add_labor(&entry("2026-12-07", "w-0002", "site-hz-01/wi-4.1", "1.0"), None)
        .unwrap();
    let progress = sync(&mut phone).await;
    assert!(progress.refused_changes.is_empty(), "{progress:?}");
    let lines = server
        .store(|s| s.day(&hz(), d("2026-12-07")).unwrap().labor.len())
        .await;
    assert_eq!(lines, 2, "both lines, made under either key, reached head office");
    assert_eq!(phone.author().map(|a| a.user_id.as_str()), Some("u-foreman-hz-01"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_signed_by_a_revoked_device_is_refused_whoever_carries_it() {
    // Signers are resolved before a push is queued; a device revoked by then is refused even when
    // another, active device hands its change on.
    let server = TestServer::start().await;
    let (user, name) = (Who::Foreman.user(), Who::Foreman.name());
    let day = DocId::Day(hz(), d("2026-12-01"));
    let mut author = Writer::new(&server, user, name, &[hz()]).await;
    let change = author.line(&hz(), d("2026-12-01"), 0);
    let doc = store_push(&mut author.store, &day);
    let key = author.store.public_key();
    let device = server
        .state
        .auth(move |a| a.key_device(&key))
        .await
        .unwrap()
        .expect("the author's key was registered at hello");
    server.state.auth(move |a| a.revoke_device(&device)).await.unwrap();

    let mut carrier = Writer::new(&server, user, name, &[hz()]).await;
    let results = push(&mut carrier.client, vec![doc]).await;
    assert_eq!(
        refusals(&results[0]),
        vec![(change, "signature.unknown_key")],
        "{}",
        summary(&results[0])
    );
}
