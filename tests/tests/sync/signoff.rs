//! Sign-off end to end (issue #19): a real server on loopback, real phones and a raw client that
//! skips the phone's checks. A disputed day is refused approval by `POST /v1/approvals` (409,
//! `dispute_open`) and by the gate, also when the approval was made offline while another phone took
//! the dispute; a sign-off claiming another device or a worker of another site is refused; two
//! phones' offline signatures arrive once each.

use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT, ReadDoc, ScalarValue};
use sitesync_core::Store;
use sitesync_core::ids::{DocId, WorkerId};
use sitesync_core::labor::DayStatus;
use sitesync_core::signing::Keypair;
use sitesync_core::signoff::{SignoffAction, SignoffState};
use sitesync_core::store::Period;
use sitesync_core::sync::protocol::{ClientMsg, DocResult, DocSync, Refusal, ServerMsg};
use sitesync_tests::harness::{Api, RawClient, TestServer, phone, sign_changes};

use crate::*;

const DATE: &str = "2026-12-09";

fn w(id: &str) -> WorkerId {
    WorkerId::new(id).unwrap()
}

/// A foreman's phone with one line of w-0001 and one of w-0002 on `DATE`, synced.
async fn foreman_with_day(server: &TestServer, dir: &std::path::Path, name: &str) -> Store {
    let mut p = phone(dir, name, &server.url(), &server.device("u-foreman-hz-01").await);
    sync(&mut p).await;
    p.add_labor(&entry(DATE, "w-0001", "site-hz-01/wi-1.1", "1.0"), None)
        .unwrap();
    p.add_labor(&entry(DATE, "w-0002", "site-hz-01/wi-1.1", "1.0"), None)
        .unwrap();
    sync(&mut p).await;
    p
}

/// The server's sign-off state of `worker` on `DATE`.
async fn server_state(server: &TestServer, worker: &str) -> Option<SignoffState> {
    let worker = w(worker);
    server
        .store(move |s| {
            s.day_signoffs(&hz(), d(DATE))
                .unwrap()
                .workers
                .into_iter()
                .find(|x| x.worker == worker)
                .map(|x| x.state)
        })
        .await
}

async fn server_heads(server: &TestServer, id: &DocId) -> Vec<String> {
    let id = id.clone();
    server.store(move |s| s.heads(&id).unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approving_a_disputed_day_over_rest_answers_409_dispute_open_and_changes_nothing() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut f = foreman_with_day(&server, dir.path(), "f").await;
    let dispute = f
        .dispute(&hz(), Period::Day(d(DATE)), &w("w-0001"), "我干了一整天")
        .unwrap()
        .remove(0);
    f.submit_day(&hz(), d(DATE)).unwrap();
    sync(&mut f).await;
    let id = DocId::Day(hz(), d(DATE));
    let before = server_heads(&server, &id).await;

    let manager = Api::new(&server, &server.device("u-manager-hz-01").await);
    let approve = serde_json::json!({ "decisions": [{ "site": "site-hz-01", "date": DATE, "decision": "approve" }] });
    let (status, results) = manager.post("/v1/approvals", &approve).await;
    assert_eq!(status, 409, "{results}");
    assert_eq!(results[0]["ok"], false);
    assert_eq!(results[0]["code"], "dispute_open", "{results}");
    assert!(results[0]["error"].as_str().unwrap().contains(&dispute.id), "{results}");
    assert_eq!(server_heads(&server, &id).await, before, "nothing written");
    let status_now = server.store(|s| s.day(&hz(), d(DATE)).unwrap().status).await;
    assert_eq!(status_now, DayStatus::Submitted);
    // Head office reads where each worker stands, and the month's sheet.
    let day = manager
        .json("/v1/signoffs", &[("site", "site-hz-01"), ("date", DATE)])
        .await;
    let states: Vec<(&str, &str)> = day["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["worker"].as_str().unwrap(), w["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states, [("w-0001", "disputed"), ("w-0002", "unsigned")], "{day}");
    assert_eq!(day["workers"][0]["open_disputes"][0]["id"], dispute.id.as_str());
    let sheet = manager
        .json("/v1/signoffs/sheet", &[("site", "site-hz-01"), ("month", "2026-12")])
        .await;
    assert_eq!(sheet["workers"][0]["worker"], "w-0001");
    assert_eq!(sheet["workers"][0]["state"], "disputed");
    assert_eq!(sheet["workers"][0]["days"][0]["date"], DATE);
    let (status, _) = manager
        .get("/v1/signoffs/sheet", &[("site", "site-hz-01"), ("month", "2026-13")])
        .await;
    assert_eq!(status, 400);

    // Answered on the foreman's phone, the day can be approved; the code is absent on success.
    f.answer_dispute(&hz(), d(DATE), &dispute.id, "核对门禁记录，已改为 1.0")
        .unwrap();
    sync(&mut f).await;
    let (status, results) = manager.post("/v1/approvals", &approve).await;
    assert_eq!(status, 200, "{results}");
    assert_eq!(results[0]["code"], serde_json::Value::Null);
    server.stop().await;
}

/// A change of the server's copy of `id` written straight into its `reviews` table under an actor
/// of `key`, signed with it: what a tampered app could push, with no phone check on the way.
async fn crafted(
    server: &TestServer,
    id: &DocId,
    key: &Keypair,
    record: &str,
    fields: &[(&str, ScalarValue)],
) -> DocSync {
    let at = id.clone();
    let bytes = server
        .store(move |s| s.export_changes(&at, &[]).unwrap().unwrap())
        .await;
    let mut doc = Automerge::load(&bytes).unwrap().with_actor(key.new_actor());
    let base: Vec<[u8; 32]> = doc.get_heads().iter().map(|h| h.0).collect();
    let (_, reviews) = doc.get(ROOT, "reviews").unwrap().unwrap();
    let mut tx = doc.transaction();
    for (field, value) in fields {
        tx.put(&reviews, format!("{record}.{field}"), value.clone()).unwrap();
    }
    tx.commit();
    let change = doc.get_last_local_change().unwrap().raw_bytes().to_vec();
    DocSync {
        doc: id.to_string(),
        base,
        heads: doc.get_heads().iter().map(|h| h.0).collect(),
        sigs: sign_changes(key, &id.to_string(), &change),
        changes: change,
    }
}

/// Pushes one document; its result.
async fn push(client: &mut RawClient, doc: DocSync) -> DocResult {
    client
        .send(&ClientMsg::Push {
            req: 1,
            docs: vec![doc],
        })
        .await;
    loop {
        match client.recv().await {
            Some(ServerMsg::Ack { results, .. }) => return results.into_iter().next().unwrap(),
            Some(ServerMsg::Changed { .. }) => continue,
            other => panic!("expected an ack, got {other:?}"),
        }
    }
}

/// The rules a result refused changes for.
fn refused_rules(result: &DocResult) -> Vec<&'static str> {
    match result {
        DocResult::Partial { refused, .. } => refused.iter().map(|r| r.violation.rule()).collect(),
        _ => Vec::new(),
    }
}

/// A raw client of a new device of `user`, its key registered at hello; with the device id.
async fn raw(server: &TestServer, user: &str) -> (RawClient, String) {
    let (device, token) = server.device_with_id(user).await;
    let mut client = RawClient::connect_with_key(server.addr, &token, Keypair::generate())
        .await
        .unwrap();
    client.say_hello().await;
    (client, device)
}

fn review(action: &str, by: &str) -> Vec<(&'static str, ScalarValue)> {
    vec![
        ("action", action.into()),
        ("by", by.into()),
        ("at", chrono::Utc::now().to_rfc3339().into()),
        ("reason", "".into()),
        ("heads", "".into()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_refuses_a_raw_approval_of_a_disputed_day_and_forged_sign_offs() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut f = foreman_with_day(&server, dir.path(), "f").await;
    f.dispute(&hz(), Period::Day(d(DATE)), &w("w-0002"), "只干了半天")
        .unwrap();
    f.submit_day(&hz(), d(DATE)).unwrap();
    sync(&mut f).await;
    let id = DocId::Day(hz(), d(DATE));

    // The manager's approval, written without the phone's check, on the day the server holds.
    let (mut manager, _) = raw(&server, "u-manager-hz-01").await;
    let before = server_heads(&server, &id).await;
    let approval = crafted(&server, &id, manager.key(), "ap1", &review("approved", "龙东江")).await;
    let result = push(&mut manager, approval).await;
    assert_eq!(refused_rules(&result), ["review.dispute_open"], "{result:?}");
    assert_eq!(server_heads(&server, &id).await, before, "nothing stored");
    let status = server.store(|s| s.day(&hz(), d(DATE)).unwrap().status).await;
    assert_eq!(status, DayStatus::Submitted);

    // A sign-off of a worker that claims another device than the one signing it.
    let (mut foreman, device) = raw(&server, "u-foreman-hz-01").await;
    let sign = |device: &str, worker: &str| {
        let mut fields = review("signed", "崔贵");
        fields.extend([
            ("worker", ScalarValue::from(worker)),
            ("crew", "".into()),
            ("lines", "".into()),
            ("month", "".into()),
            ("image", "".into()),
            ("device", device.into()),
            ("answers", "".into()),
        ]);
        fields
    };
    let forged = crafted(&server, &id, foreman.key(), "sg1", &sign("d-someone-else", "w-0001")).await;
    assert_eq!(refused_rules(&push(&mut foreman, forged).await), ["author.forged"]);
    // A worker of another site's roster.
    let stranger = crafted(&server, &id, foreman.key(), "sg2", &sign(&device, "w-0054")).await;
    assert_eq!(refused_rules(&push(&mut foreman, stranger).await), ["invalid"]);
    assert_eq!(server_heads(&server, &id).await, before, "nothing stored");
    // A sign-off in a day of a site the foreman has no grant for: the document is refused whole.
    let other = DocId::Day("site-sz-02".parse().unwrap(), d(DATE));
    server
        .store(|s| {
            s.set_day_info(&"site-sz-02".parse().unwrap(), d(DATE), Some("晴"), None, None)
                .unwrap()
        })
        .await;
    let elsewhere = crafted(&server, &other, foreman.key(), "sg3", &sign(&device, "w-0054")).await;
    assert!(
        matches!(
            push(&mut foreman, elsewhere).await,
            DocResult::Refused {
                reason: Refusal::Forbidden,
                ..
            }
        ),
        "another site's day"
    );
    // The honest shape of the same record is taken: the signing device, a worker of the site.
    let honest = crafted(&server, &id, foreman.key(), "sg4", &sign(&device, "w-0001")).await;
    assert!(matches!(push(&mut foreman, honest).await, DocResult::Synced(_)));
    assert_eq!(server_state(&server, "w-0001").await, Some(SignoffState::Signed));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_approval_concurrent_with_a_dispute_that_reached_the_server_first_is_refused() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut f = foreman_with_day(&server, dir.path(), "f").await;
    f.submit_day(&hz(), d(DATE)).unwrap();
    sync(&mut f).await;
    let mut m = phone(dir.path(), "m", &server.url(), &server.device("u-manager-hz-01").await);
    sync(&mut m).await;
    assert_eq!(m.day(&hz(), d(DATE)).unwrap().status, DayStatus::Submitted);

    // Both offline: the worker disputes on the foreman's phone, the manager approves on his (his
    // phone sees no dispute, so its own check lets it through).
    let dispute = f
        .dispute(&hz(), Period::Day(d(DATE)), &w("w-0001"), "我干了一整天")
        .unwrap()
        .remove(0);
    m.approve_day(&hz(), d(DATE)).unwrap();
    let approval = m.heads(&DocId::Day(hz(), d(DATE))).unwrap();

    sync(&mut f).await;
    let progress = sync(&mut m).await;
    let rules: Vec<(&str, &str)> = progress
        .refused_changes
        .iter()
        .map(|n| (n.hash.as_str(), n.rule.as_str()))
        .collect();
    assert_eq!(rules, [(approval[0].as_str(), "review.dispute_open")]);
    let day = server.store(|s| s.day(&hz(), d(DATE)).unwrap()).await;
    assert_eq!(day.status, DayStatus::Submitted, "not approved over an open dispute");
    assert_eq!(server_state(&server, "w-0001").await, Some(SignoffState::Disputed));
    // The manager's phone now holds the server's copy: the dispute, no approval.
    sync(&mut m).await;
    assert_eq!(m.day(&hz(), d(DATE)).unwrap().status, DayStatus::Submitted);
    let open: Vec<String> = m
        .day_signoffs(&hz(), d(DATE))
        .unwrap()
        .open_disputes()
        .map(|e| e.id.clone())
        .collect();
    assert_eq!(open, std::slice::from_ref(&dispute.id));
    // Answered, the approval goes through.
    m.answer_dispute(&hz(), d(DATE), &dispute.id, "已核对").unwrap();
    m.approve_day(&hz(), d(DATE)).unwrap();
    let progress = sync(&mut m).await;
    assert!(progress.refused_changes.is_empty(), "{progress:?}");
    let status = server.store(|s| s.day(&hz(), d(DATE)).unwrap().status).await;
    assert_eq!(status, DayStatus::Approved);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_phones_signatures_taken_offline_reach_the_server_once_each() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut a = foreman_with_day(&server, dir.path(), "a").await;
    let mut b = phone(dir.path(), "b", &server.url(), &server.device("u-foreman-hz-01").await);
    sync(&mut b).await;
    // Offline: w-0001 signs on phone a with his signature, w-0002 taps consent on phone b.
    let s1 = a
        .sign_off(&hz(), Period::Day(d(DATE)), &w("w-0001"), Some(b"\x89PNG strokes"))
        .unwrap()
        .remove(0);
    let s2 = b
        .sign_off(&hz(), Period::Day(d(DATE)), &w("w-0002"), None)
        .unwrap()
        .remove(0);
    for _ in 0..2 {
        sync(&mut a).await;
        sync(&mut b).await;
    }
    let events = server.store(|s| s.day_signoffs(&hz(), d(DATE)).unwrap().events).await;
    let mut signed: Vec<&str> = events
        .iter()
        .filter(|e| e.action == SignoffAction::Signed)
        .map(|e| e.id.as_str())
        .collect();
    signed.sort();
    let mut expected = [s1.id.as_str(), s2.id.as_str()];
    expected.sort();
    assert_eq!(signed, expected, "each signature once");
    assert_ne!(s1.device, s2.device, "each names the phone it was taken on");
    for w in ["w-0001", "w-0002"] {
        assert_eq!(server_state(&server, w).await, Some(SignoffState::Signed), "{w}");
    }
    // The attendance grid's sign-off column is the month's confirmation: w-0001 signs his month on
    // phone a; w-0002's signature of one day does not sign his month.
    a.sign_off(&hz(), Period::Month(d(DATE)), &w("w-0001"), None).unwrap();
    sync(&mut a).await;
    sync(&mut b).await;
    let office = Api::new(&server, &server.device("u-office-1").await);
    let q = [
        ("site", "site-hz-01"),
        ("month", "2026-12"),
        ("include_unapproved", "true"),
    ];
    let grid = office.json("/v1/reports/attendance", &q).await;
    let column: Vec<(&str, &str)> = grid["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["worker"].as_str().unwrap(), r["signoff"].as_str().unwrap()))
        .collect();
    assert_eq!(column, [("w-0001", "signed"), ("w-0002", "unsigned")], "{grid}");
    let (status, csv) = office
        .get("/v1/reports/attendance", &[q[0], q[1], q[2], ("format", "csv")])
        .await;
    assert_eq!(status, 200);
    let csv = String::from_utf8(csv).unwrap();
    assert!(csv.lines().next().unwrap().ends_with("签字 sign-off"), "{csv}");
    assert_eq!(csv.matches("已签 signed").count(), 1, "{csv}");
    assert_eq!(csv.matches("未签 unsigned").count(), 1, "{csv}");
    // Both phones read the same: each record once.
    for p in [&mut a, &mut b] {
        let n = p
            .day_signoffs(&hz(), d(DATE))
            .unwrap()
            .events
            .iter()
            .filter(|e| e.action == SignoffAction::Signed)
            .count();
        assert_eq!(n, 3, "two signatures of the day and one of the month");
    }
    server.stop().await;
}

/// A signature image travels like a photo: the phone that took it uploads it with the blob sync;
/// head office's 施工日志 then has it (the JSON says so, the PDF draws it beside the worker), the
/// site's readers download it, and a foreman of another site is refused it even with its hash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_image_reaches_head_offices_daily_log_and_no_other_site() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut f = foreman_with_day(&server, dir.path(), "f").await;
    let png = crate::blobs::png(48);
    let signed = f
        .sign_off(&hz(), Period::Day(d(DATE)), &w("w-0001"), Some(&png))
        .unwrap()
        .remove(0);
    let sha = signed.image.clone().unwrap();
    f.sign_off(&hz(), Period::Day(d(DATE)), &w("w-0002"), None).unwrap();
    sync(&mut f).await;

    let office = Api::new(&server, &server.device("u-office-1").await);
    let q = [("site", "site-hz-01"), ("date", DATE)];
    let row = |log: &serde_json::Value, worker: &str| {
        log["sign_offs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == worker)
            .unwrap_or_else(|| panic!("{worker} not in {log}"))
            .clone()
    };
    let json = [&q[..], &[("format", "json")]].concat();
    let before = office.json("/v1/reports/daily-log", &json).await;
    assert_eq!(row(&before, "w-0001")["image"], sha.as_str());
    assert_eq!(row(&before, "w-0001")["image_here"], false, "not uploaded yet");
    let (status, pdf) = office.get("/v1/reports/daily-log", &q).await;
    assert_eq!(status, 200);
    assert_eq!(pdf.windows(15).filter(|w| w == b"/Subtype /Image").count(), 0);
    let (status, _) = office.get(&format!("/v1/blobs/{sha}"), &[]).await;
    assert_eq!(
        status, 403,
        "the server holds no bytes yet: the same answer as for a stranger"
    );

    let report = sitesync_core::sync::blobs::sync_blobs(&mut f, false).await.unwrap();
    assert_eq!((report.uploaded, report.waiting.len()), (1, 0), "{report:?}");
    assert!(
        sitesync_core::sync::blobs::sync_blobs(&mut f, false)
            .await
            .unwrap()
            .bytes_sent
            == 0,
        "uploaded once"
    );

    let after = office.json("/v1/reports/daily-log", &json).await;
    assert_eq!(row(&after, "w-0001")["image_here"], true);
    assert_eq!(row(&after, "w-0002")["image"], "", "a tap of consent has no image");
    assert_eq!(row(&after, "w-0002")["image_here"], false);
    let (status, pdf) = office.get("/v1/reports/daily-log", &q).await;
    assert_eq!(status, 200);
    assert_eq!(
        pdf.windows(15).filter(|w| w == b"/Subtype /Image").count(),
        1,
        "the signature is drawn"
    );
    let file = dir.path().join("log.pdf");
    std::fs::write(&file, &pdf).unwrap();
    if let Ok(out) = std::process::Command::new("pdftotext")
        .args([file.to_str().unwrap(), "-"])
        .output()
    {
        let text: String = String::from_utf8(out.stdout).unwrap().split_whitespace().collect();
        assert!(text.contains("签名") && text.contains("点按确认"), "{text}");
        assert!(!text.contains("未收到签名图"), "{text}");
    }

    // Readers of the day download the bytes; a foreman of another site is refused.
    let (status, bytes) = office.get(&format!("/v1/blobs/{sha}"), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(bytes, png);
    let manager = Api::new(&server, &server.device("u-manager-hz-01").await);
    let (status, bytes) = manager.get(&format!("/v1/blobs/{sha}"), &[]).await;
    assert_eq!((status, bytes == png), (200, true));
    let stranger = Api::new(&server, &server.device("u-foreman-sz-02").await);
    for path in [format!("/v1/blobs/{sha}"), format!("/v1/blobs/{sha}/thumbnail")] {
        let (status, _) = stranger.get(&path, &[]).await;
        assert_eq!(status, 403, "{path}");
    }
}

/// An advance of `yuan` handed to `worker` on `DATE`, entered on `p`.
fn advance(p: &mut Store, worker: &str, yuan: &str) -> sitesync_core::pay::Advance {
    p.add_advance(
        &sitesync_core::store::NewAdvance {
            site: hz(),
            date: d(DATE),
            worker: w(worker),
            amount: sitesync_core::units::Fen::parse_yuan("amount", yuan).unwrap(),
            paid_by: String::new(),
            note: "生活费".into(),
        },
        None,
    )
    .unwrap()
}

/// The server's state of each advance of `DATE`, by id.
async fn server_advances(server: &TestServer) -> Vec<sitesync_core::signoff::AdvanceSignoff> {
    server.store(|s| s.advance_signoffs(&hz(), d(DATE)).unwrap()).await
}

/// Head office's pay sheet line of w-0001 over `DATE`'s month.
async fn office_pay_line(office: &Api) -> serde_json::Value {
    let q = [
        ("site", "site-hz-01"),
        ("crew", "site-hz-01/crew-1"),
        ("from", "2026-12-01"),
        ("to", "2026-12-31"),
    ];
    let sheet = office.json("/v1/pay", &q).await;
    sheet["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["worker"] == "w-0001")
        .cloned()
        .unwrap_or_else(|| panic!("w-0001 on {sheet}"))
}

/// A worker confirms an advance on the foreman's phone while it is offline; the confirmation reaches
/// the server with its signature image and shows on head office's pay sheet; an edit of the advance
/// after that keeps the confirmation and shows it changed, and the sheet counts it unconfirmed again
/// until he confirms the new amount.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_advance_confirmed_offline_reaches_head_offices_pay_sheet_and_an_edit_shows_as_changed() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut f = foreman_with_day(&server, dir.path(), "f").await;
    // Offline from here until the sync below.
    let confirmed = advance(&mut f, "w-0001", "300");
    let open = advance(&mut f, "w-0001", "50");
    let other = advance(&mut f, "w-0002", "100");
    // Not his: the phone refuses it, writing nothing.
    let refused = f.confirm_advance(&hz(), d(DATE), &w("w-0001"), &other.id, None);
    assert!(
        matches!(refused, Err(sitesync_core::Error::Invalid { .. })),
        "{refused:?}"
    );
    let sig = b"strokes of w-0001's signature".to_vec();
    let e = f
        .confirm_advance(&hz(), d(DATE), &w("w-0001"), &confirmed.id, Some(&sig))
        .unwrap();
    assert_eq!(e.action, SignoffAction::AdvanceConfirmed);
    assert_eq!(e.advance.as_deref(), Some(confirmed.id.as_str()));
    assert!(!e.heads.is_empty() && e.image.is_some() && !e.device.is_empty());
    let here = f.advance_signoffs(&hz(), d(DATE)).unwrap();
    let state = |list: &[sitesync_core::signoff::AdvanceSignoff], id: &str| {
        list.iter().find(|a| a.advance.id == id).map(|a| a.state)
    };
    assert_eq!(state(&here, &confirmed.id), Some(SignoffState::Signed));
    assert_eq!(state(&here, &open.id), Some(SignoffState::Unsigned));
    // His day's sign-off is not his advance's: the day is still his to sign.
    assert_eq!(
        f.day_signoffs(&hz(), d(DATE)).unwrap().workers[0].state,
        SignoffState::Unsigned
    );
    sync(&mut f).await;
    let report = sitesync_core::sync::blobs::sync_blobs(&mut f, false).await.unwrap();
    assert_eq!((report.uploaded, report.waiting.len()), (1, 0), "{report:?}");

    let on_server = server_advances(&server).await;
    assert_eq!(state(&on_server, &confirmed.id), Some(SignoffState::Signed));
    let image = on_server
        .iter()
        .find(|a| a.advance.id == confirmed.id)
        .and_then(|a| a.confirmation.as_ref())
        .and_then(|c| c.image.clone())
        .unwrap();
    let office = Api::new(&server, &server.device("u-office-1").await);
    let (status, bytes) = office.get(&format!("/v1/blobs/{image}"), &[]).await;
    assert_eq!((status, bytes), (200, sig), "the signature image reached the server");

    // Edited before approval: the confirmation stays, changed since, with what changed.
    f.edit_advance(
        &hz(),
        d(DATE),
        &confirmed.id,
        &sitesync_core::store::AdvanceEdit {
            amount: Some(sitesync_core::units::Fen::parse_yuan("amount", "350").unwrap()),
            ..Default::default()
        },
        None,
    )
    .unwrap();
    sync(&mut f).await;
    let on_server = server_advances(&server).await;
    let edited = on_server.iter().find(|a| a.advance.id == confirmed.id).unwrap();
    assert_eq!(edited.state, SignoffState::ChangedSinceSigned);
    assert_eq!(edited.confirmation.as_ref().map(|c| &c.id), Some(&e.id), "kept");
    let changes: Vec<(&str, Option<&str>, Option<&str>)> = edited
        .changes
        .iter()
        .map(|c| (c.field.as_str(), c.approved.as_deref(), c.now.as_deref()))
        .collect();
    assert_eq!(changes, [("amount_fen", Some("30000"), Some("35000"))]);

    // Approved; head office's sheet counts both of w-0001's advances as lacking his signature.
    f.submit_day(&hz(), d(DATE)).unwrap();
    sync(&mut f).await;
    let manager = Api::new(&server, &server.device("u-manager-hz-01").await);
    let (status, body) = manager
        .post(
            "/v1/approvals",
            &serde_json::json!({ "decisions": [{ "site": "site-hz-01", "date": DATE, "decision": "approve" }] }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let line = office_pay_line(&office).await;
    assert_eq!(line["advances_fen"], 40_000, "{line}");
    assert_eq!(line["advances_unconfirmed_fen"], 40_000, "{line}");
    assert_eq!(line["advances_unconfirmed"], 2, "{line}");

    // He confirms the new amount after the approval (a sign-off is not locked with the lines).
    f.confirm_advance(&hz(), d(DATE), &w("w-0001"), &confirmed.id, None)
        .unwrap();
    sync(&mut f).await;
    let line = office_pay_line(&office).await;
    assert_eq!(line["advances_unconfirmed_fen"], 5_000, "{line}");
    assert_eq!(line["advances_unconfirmed"], 1, "{line}");
    let (status, csv) = office
        .get(
            "/v1/pay",
            &[
                ("site", "site-hz-01"),
                ("crew", "site-hz-01/crew-1"),
                ("from", "2026-12-01"),
                ("to", "2026-12-31"),
                ("format", "csv"),
            ],
        )
        .await;
    assert_eq!(status, 200);
    let csv = String::from_utf8(csv).unwrap();
    assert!(csv.contains("借支未签认 advances unconfirmed"), "{csv}");
    server.stop().await;
}

/// An advance's confirmation written by a client that skips the phone's checks: one that names
/// another worker than the one who received the advance, one that names no advance of the day, one
/// claiming another device, and one on a site the device has no grant for are refused; the honest
/// shape is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_refuses_forged_advance_confirmations() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut f = foreman_with_day(&server, dir.path(), "f").await;
    let adv = advance(&mut f, "w-0001", "300");
    sync(&mut f).await;
    let id = DocId::Day(hz(), d(DATE));
    let (mut foreman, device) = raw(&server, "u-foreman-hz-01").await;
    let confirm = |device: &str, worker: &str, advance: &str| {
        let mut fields = review("advance_confirmed", "崔贵");
        fields.extend([
            ("worker", ScalarValue::from(worker)),
            ("crew", "".into()),
            ("lines", "".into()),
            ("month", "".into()),
            ("image", "".into()),
            ("device", device.into()),
            ("answers", "".into()),
            ("advance", advance.into()),
        ]);
        fields
    };
    let before = server_heads(&server, &id).await;
    // Another worker confirming w-0001's advance.
    let forged = crafted(&server, &id, foreman.key(), "ac1", &confirm(&device, "w-0002", &adv.id)).await;
    assert_eq!(refused_rules(&push(&mut foreman, forged).await), ["invalid"]);
    // An advance this day does not have.
    let missing = "adv-00000000000000000000000000000000";
    let forged = crafted(&server, &id, foreman.key(), "ac2", &confirm(&device, "w-0001", missing)).await;
    assert_eq!(refused_rules(&push(&mut foreman, forged).await), ["invalid"]);
    // Taken on another device than the one signing it.
    let forged = crafted(
        &server,
        &id,
        foreman.key(),
        "ac3",
        &confirm("d-other", "w-0001", &adv.id),
    )
    .await;
    assert_eq!(refused_rules(&push(&mut foreman, forged).await), ["author.forged"]);
    assert_eq!(server_heads(&server, &id).await, before, "nothing stored");
    // On another site's day (the advance's id, a worker of that site): refused whole.
    let other = DocId::Day("site-sz-02".parse().unwrap(), d(DATE));
    server
        .store(|s| {
            s.set_day_info(&"site-sz-02".parse().unwrap(), d(DATE), Some("晴"), None, None)
                .unwrap()
        })
        .await;
    let elsewhere = crafted(
        &server,
        &other,
        foreman.key(),
        "ac4",
        &confirm(&device, "w-0054", &adv.id),
    )
    .await;
    assert!(
        matches!(
            push(&mut foreman, elsewhere).await,
            DocResult::Refused {
                reason: Refusal::Forbidden,
                ..
            }
        ),
        "another site's day"
    );
    assert_eq!(
        server_advances(&server).await[0].state,
        SignoffState::Unsigned,
        "no forged confirmation counts"
    );
    // The honest shape is taken.
    let honest = crafted(&server, &id, foreman.key(), "ac5", &confirm(&device, "w-0001", &adv.id)).await;
    assert!(matches!(push(&mut foreman, honest).await, DocResult::Synced(_)));
    assert_eq!(server_advances(&server).await[0].state, SignoffState::Signed);
    server.stop().await;
}
