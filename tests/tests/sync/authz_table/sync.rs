//! The sync table: every kind of document of the sync protocol, in every place, against every kind
//! of caller: what its `Welcome` holds, and what becomes of an edit it pushes.

use std::collections::BTreeSet;

use sitesync_core::ids::{DocId, SiteId};
use sitesync_core::okr::{Cycle, CycleKind};
use sitesync_core::rules::Violation;
use sitesync_core::sync::protocol::{ClientMsg, DocResult, DocSync, Refusal, ServerMsg};
use sitesync_tests::harness::{RawClient, TestServer, store_push};

use super::secrets::{assert_no_secret_leaks, logs};
use super::world::*;
use crate::d;

/// What a push of one document must come back as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Push {
    /// No connection: the upgrade is refused with 401.
    NoConnection,
    /// `Synced`: stored.
    Synced,
    /// `Partial`: the document is writable, but the edit breaks a rule of who may write what
    /// (`sitesync_core::rules`) and is refused alone, so nothing new is stored.
    Partial,
    /// `Refused { Forbidden }`: not even readable.
    Forbidden,
    /// `Partial`, the edit refused for `site.head_office_only`: a device that reads the site's
    /// master data may not write it.
    MasterData,
}

pub(super) const NC: Push = Push::NoConnection;
pub(super) const SY: Push = Push::Synced;
pub(super) const PT: Push = Push::Partial;
pub(super) const FB: Push = Push::Forbidden;
pub(super) const MD: Push = Push::MasterData;

/// The columns of the sync table: the sites a caller aims at are the rows here.
pub(super) const SYNC_CALLERS: [Who; 10] = [
    Anonymous,
    BadToken,
    Revoked,
    ForemanOwn,
    ManagerOwn,
    Office,
    Admin,
    Operator,
    OtherForeman,
    OtherAdmin,
];

/// Kinds of document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Day,
    Site,
    Okr,
}

/// Where a document belongs, as seen from our foreman and site manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Place {
    /// site-hz-01, granted to them.
    Granted,
    /// Another site of our org (or our org's OKRs).
    OurOrg,
    /// The other org's site (or its OKRs).
    OtherOrg,
}

/// The sync table: a row per kind of document and place, a column per caller (`SYNC_CALLERS`). A
/// caller may read exactly the documents of the rows it is not `FB` (or `NC`) on: its `Welcome`
/// must hold exactly those.
#[rustfmt::skip]
pub(super) const SYNC: [(Kind, Place, [Push; 10]); 8] = [
    // Columns: anonymous, bad token, revoked, the foreman of hz-01, its site manager, head office, our
    // admin, the operators' admin, the other org's foreman and admin.
    //                             an  bad rev for mgr off adm op  xf  xa
    (Kind::Day,  Place::Granted,  [NC, NC, NC, SY, SY, SY, SY, FB, FB, FB]),
    (Kind::Day,  Place::OurOrg,   [NC, NC, NC, FB, FB, SY, SY, FB, FB, FB]),
    (Kind::Day,  Place::OtherOrg, [NC, NC, NC, FB, FB, FB, FB, FB, SY, SY]),
    // Master data is head office's to change; phones read it.
    (Kind::Site, Place::Granted,  [NC, NC, NC, MD, MD, SY, SY, FB, FB, FB]),
    (Kind::Site, Place::OurOrg,   [NC, NC, NC, FB, FB, SY, SY, FB, FB, FB]),
    (Kind::Site, Place::OtherOrg, [NC, NC, NC, FB, FB, FB, FB, FB, MD, SY]),
    // Every member of an org reads and writes its OKR documents, but only head office shapes a
    // cycle: the foreman's and site manager's edit of the cycle is refused change by change
    // (`okr.head_office_only`; this was a FINDING until the per-change rules of protocol v2).
    (Kind::Okr,  Place::OurOrg,   [NC, NC, NC, PT, PT, SY, SY, FB, FB, FB]),
    (Kind::Okr,  Place::OtherOrg, [NC, NC, NC, FB, FB, FB, FB, FB, PT, SY]),
];

/// The row of a document.
pub(super) fn place_of(doc: &DocId) -> (Kind, Place) {
    let of_site = |s: &SiteId| match s.as_str() {
        OWN_SITE => Place::Granted,
        OTHER_ORG_SITE => Place::OtherOrg,
        _ => Place::OurOrg,
    };
    match doc {
        DocId::Day(s, _) => (Kind::Day, of_site(s)),
        DocId::Site(s) => (Kind::Site, of_site(s)),
        DocId::Okr(o, _) if o.as_str() == ORG => (Kind::Okr, Place::OurOrg),
        DocId::Okr(..) => (Kind::Okr, Place::OtherOrg),
    }
}

/// The document a row pushes to.
pub(super) fn doc_of(kind: Kind, place: Place) -> DocId {
    let site: SiteId = match place {
        Place::Granted => OWN_SITE,
        Place::OurOrg => OTHER_SITE,
        Place::OtherOrg => OTHER_ORG_SITE,
    }
    .parse()
    .unwrap();
    let org = if place == Place::OtherOrg { OTHER_ORG } else { ORG };
    match kind {
        Kind::Day => DocId::Day(site, d(SEED_DAY)),
        Kind::Site => DocId::Site(site),
        Kind::Okr => DocId::Okr(org.parse().unwrap(), CYCLE.into()),
    }
}

/// A push of `doc` as the server holds it plus one edit made on the caller's scratch store `s`, so
/// that the edit is new to the server and applies on top of what it has; the store signs it.
pub(super) async fn edited(server: &TestServer, s: &mut sitesync_core::Store, doc: &DocId, note: &str) -> DocSync {
    let id = doc.clone();
    let (roster, bytes) = server
        .store(move |s| {
            let roster = id
                .site()
                .and_then(|site| s.export_changes(&DocId::Site(site.clone()), &[]).unwrap());
            (roster, s.export_changes(&id, &[]).unwrap())
        })
        .await;
    if let (Some(site), Some(b)) = (doc.site(), roster) {
        s.merge_changes(&DocId::Site(site.clone()), &b).unwrap();
    }
    if let Some(b) = bytes {
        s.merge_changes(doc, &b).unwrap();
    }
    match doc {
        DocId::Day(site, date) => s.set_day_info(site, *date, Some(note), None, None).unwrap(),
        DocId::Site(site) => {
            let mut r = s.roster(site).unwrap();
            r.site.name = format!("{} {note}", r.site.name);
            s.put_roster(&r).unwrap();
        }
        DocId::Okr(org, cycle) => {
            let c = Cycle::new(org.as_str(), cycle, CycleKind::Quarter, note, "", d("2026-10-15"));
            s.put_cycle(&c).unwrap();
        }
    }
    store_push(s, doc)
}

/// The next `Ack`, noting the documents of the live updates the server interleaves.
pub(super) async fn ack(client: &mut RawClient, live: &mut BTreeSet<String>) -> Vec<DocResult> {
    loop {
        match client.recv().await {
            Some(ServerMsg::Ack { results, .. }) => return results,
            Some(ServerMsg::Changed { docs, .. }) => live.extend(docs.into_iter().map(|d| d.doc)),
            other => panic!("expected an ack, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
pub(super) async fn sync_reads_and_writes_follow_grants_for_every_caller() {
    let w = World::new().await;
    let mut wrong = Vec::new();
    for (col, who) in SYNC_CALLERS.into_iter().enumerate() {
        let may_read = |doc: &DocId| {
            let at = place_of(doc);
            let (_, _, expect) = SYNC.iter().find(|(k, p, _)| (*k, *p) == at).unwrap();
            matches!(expect[col], SY | MD | PT)
        };
        let cred = match w.token(who) {
            None => Cred::Nothing,
            Some(t) => Cred::Bearer(t.to_string()),
        };
        if SYNC.iter().all(|(_, _, e)| e[col] == NC) {
            match RawClient::connect_with_headers(w.server.addr, &cred.headers()).await {
                Err(401) => {}
                Err(s) => wrong.push(format!("{who:?}: connecting answered {s}, expected 401")),
                Ok(_) => wrong.push(format!("{who:?}: connected, expected 401")),
            }
            continue;
        }
        // Welcome: exactly the documents the table says the caller reads, of all the server holds.
        let held: Vec<DocId> = w.server.store(|s| s.doc_ids().unwrap()).await;
        let readable: BTreeSet<String> = held.iter().filter(|d| may_read(d)).map(|d| d.to_string()).collect();
        // The caller's edits are made on a scratch store whose key its `Hello` registers: the rules
        // judge them as the caller's own.
        let dir = tempfile::tempdir().unwrap();
        let mut scratch = sitesync_core::Store::open(dir.path().join("scratch.sqlite3")).unwrap();
        let mut client = RawClient::connect_as(w.server.addr, w.token(who).unwrap(), &scratch)
            .await
            .unwrap();
        let welcomed: BTreeSet<String> = match client.welcome(0).await {
            Some(ServerMsg::Welcome { docs, more: false, .. }) => docs.into_iter().map(|d| d.doc).collect(),
            other => panic!("{who:?}: expected a whole welcome, got {other:?}"),
        };
        if welcomed != readable {
            wrong.push(format!(
                "{who:?}: welcomed with {:?} it may not read, without {:?} it may",
                welcomed.difference(&readable).collect::<Vec<_>>(),
                readable.difference(&welcomed).collect::<Vec<_>>()
            ));
        }
        // Pushes: an edit of a document of every kind and place.
        let mut live = BTreeSet::new();
        for (req, (kind, place, expect)) in SYNC.iter().enumerate() {
            let doc = doc_of(*kind, *place);
            let push = edited(&w.server, &mut scratch, &doc, &format!("{who:?}")).await;
            let id = doc.clone();
            let before = w.server.store(move |s| s.heads(&id).unwrap()).await;
            client
                .send(&ClientMsg::Push {
                    req: req as u64,
                    docs: vec![push],
                })
                .await;
            let result = ack(&mut client, &mut live).await.remove(0);
            let seen = match &result {
                DocResult::Synced(_) => Some(SY),
                // Exactly the edit, refused for the rule the row names.
                DocResult::Partial { refused, .. }
                    if matches!(
                        &refused[..],
                        [r] if matches!(r.violation, Violation::OkrStructure { .. })
                    ) =>
                {
                    Some(PT)
                }
                DocResult::Partial { refused, .. } if matches!(&refused[..], [r] if matches!(r.violation, Violation::MasterData)) => {
                    Some(MD)
                }
                DocResult::Refused {
                    reason: Refusal::Forbidden,
                    ..
                } => Some(FB),
                _ => None,
            };
            if seen != Some(expect[col]) {
                let got = match &result {
                    DocResult::Synced(_) => "Synced".to_string(),
                    DocResult::Partial { refused, .. } => format!(
                        "Partial({:?})",
                        refused.iter().map(|r| r.violation.rule()).collect::<Vec<_>>()
                    ),
                    DocResult::NeedHistory { .. } => "NeedHistory".to_string(),
                    DocResult::Refused { reason, .. } => format!("Refused({reason:?})"),
                };
                wrong.push(format!("{who:?} pushing {doc}: expected {:?}, got {got}", expect[col]));
            }
            let id = doc.clone();
            let after = w.server.store(move |s| s.heads(&id).unwrap()).await;
            if (after != before) != (expect[col] == SY) {
                wrong.push(format!("{who:?} pushing {doc}: stored {}", after != before));
            }
        }
        let unreadable: Vec<&String> = live
            .iter()
            .filter(|d| !d.parse::<DocId>().is_ok_and(|d| may_read(&d)))
            .collect();
        if !unreadable.is_empty() {
            wrong.push(format!("{who:?}: live updates of {unreadable:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} differ from the table:\n{}",
        wrong.len(),
        wrong.join("\n")
    );

    // A refused malformed push is logged with its device: the capture sees the sync path.
    let token = w.token(ForemanOwn).unwrap().to_string();
    let mut client = RawClient::connect(w.server.addr, &token).await.unwrap();
    assert!(matches!(client.welcome(0).await, Some(ServerMsg::Welcome { .. })));
    let junk = client.signed(&doc_of(Kind::Day, Place::Granted).to_string(), vec![1, 2, 3]);
    client
        .send(&ClientMsg::Push {
            req: 99,
            docs: vec![junk],
        })
        .await;
    let result = ack(&mut client, &mut BTreeSet::new()).await.remove(0);
    assert!(
        matches!(
            result,
            DocResult::Refused {
                reason: Refusal::Malformed,
                ..
            }
        ),
        "{result:?}"
    );
    let logged = String::from_utf8_lossy(&logs().lock().unwrap()).into_owned();
    assert!(
        logged
            .lines()
            .any(|l| l.contains("refused malformed changes") && l.contains(&w.devices[&ForemanOwn])),
        "the malformed push is logged with its device"
    );
    assert_no_secret_leaks(&w).await;
    w.server.stop().await;
}
