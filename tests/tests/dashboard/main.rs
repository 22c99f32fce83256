//! The head-office dashboard in a real headless Chromium: sign in, see a foreman's fresh entry
//! appear live, approve a day, download the Excel file; a day's sign-off states, open disputes, the
//! month's workers still to sign and the day's photo thumbnails, in both languages; conflicts settled
//! with "keep this one", an approval that warns about them, the devices page, and every tab with no
//! untranslated enum word. Screenshots of each page are kept in
//! `target/screenshots/`. Needs Debian's `chromium` and `chromium-driver` (installed by `.ci/run`):
//! `cargo test -p sitesync-tests --test dashboard -- --ignored`.

use std::path::PathBuf;

use chrono::Datelike;

use sitesync_core::ids::{SiteId, WorkItemId, WorkerId};
use sitesync_core::sync::client::sync_once;
use sitesync_core::units::WorkDays;
use sitesync_tests::browser::Browser;
use sitesync_tests::harness::{Api, TestServer, phone};

/// Opens the sign-in page and records every content-security-policy violation from then on in
/// `window.cspViolations` (the page allows no inline script or style: there must be none).
async fn watch_csp(browser: &Browser, url: &str) {
    browser.goto(url).await;
    browser.wait_text("#signin-title", "登录").await;
    browser
        .run_async(
            "const done = arguments[arguments.length - 1];
             window.cspViolations = [];
             document.addEventListener('securitypolicyviolation', (e) => window.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
             done(true);",
        )
        .await;
}

/// A browser signed in as head office (u-office-1), on the labor page, watching the CSP.
async fn office_signed_in(server: &TestServer) -> Browser {
    let browser = Browser::start().await;
    watch_csp(&browser, &server.url()).await;
    browser.type_into("#token", &server.device("u-office-1").await).await;
    browser.click("#signin-btn").await;
    browser.wait_text("[data-testid=labor-table]", "合计").await;
    browser
}

fn shots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Debian chromium and chromium-driver; run by .ci/run"]
async fn head_office_signs_in_sees_live_entries_approves_and_downloads() {
    assert!(
        Browser::available(),
        "install chromium and chromium-driver (Debian packages)"
    );
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut foreman = phone(
        dir.path(),
        "崔贵",
        &server.url(),
        &server.device("u-foreman-hz-01").await,
    );
    sync_once(&mut foreman).await.unwrap();
    // Data dated today, which the dashboard shows by default (the month so far).
    let today = chrono::Utc::now().date_naive();
    let site = SiteId::new("site-hz-01").unwrap();
    let item = WorkItemId::new("site-hz-01/wi-4.1").unwrap();
    let log = |store: &mut sitesync_core::Store, worker: &str| {
        let e = sitesync_core::store::entry(
            site.clone(),
            today,
            WorkerId::new(worker).unwrap(),
            item.clone(),
            WorkDays::parse("1.0").unwrap(),
        );
        store.add_labor(&e, None).unwrap();
    };
    log(&mut foreman, "w-0001");
    log(&mut foreman, "w-0002");
    foreman.submit_day(&site, today).unwrap();
    sync_once(&mut foreman).await.unwrap();

    let office_token = server.device("u-office-1").await;
    let browser = Browser::start().await;
    watch_csp(&browser, &server.url()).await;
    browser.screenshot(&shots().join("0-sign-in.png")).await;
    browser.type_into("#token", "wrong").await;
    browser.click("#signin-btn").await;
    browser.wait_text("#signin-error", "凭证无效").await;
    browser.type_into("#token", &office_token).await;
    browser.click("#signin-btn").await;

    // The day-labor summary, with today's two lines.
    let table = browser.wait_text("[data-testid=labor-table]", "合计").await;
    assert!(table.contains("site-hz-01"), "{table}");
    browser.wait_text("[data-testid=labor-table] tr.total", "¥").await;
    let total = browser.wait_text("[data-testid=labor-table] tr.total", "").await;
    assert!(total.trim_end().ends_with('2'), "two lines: {total}");
    browser.wait_text("[data-testid=attendance]", "高平").await;
    browser.screenshot(&shots().join("1-labor.png")).await;

    // A fresh entry from the foreman's phone appears without reloading.
    log(&mut foreman, "w-0003");
    sync_once(&mut foreman).await.unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let total = browser.wait_text("[data-testid=labor-table] tr.total", "").await;
        if total.trim_end().ends_with('3') {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the fresh entry never appeared: {total}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    browser.wait_text("[data-testid=attendance]", "李建生").await;

    // The Excel download is a real workbook.
    let got = browser
        .run_async(
            "const done = arguments[arguments.length - 1];
             const a = document.querySelector('[data-testid=xlsx]');
             fetch(a.href).then(r => r.arrayBuffer().then(b => done([r.status, r.headers.get('content-type'), Array.from(new Uint8Array(b).slice(0, 2))])));",
        )
        .await;
    assert_eq!(got[0], 200, "{got}");
    assert!(got[1].as_str().unwrap().contains("spreadsheetml"), "{got}");
    assert_eq!(got[2], serde_json::json!([80, 75]), "PK: an xlsx is a zip");

    // Approve the submitted day from the queue.
    browser.click("[data-view=approvals]").await;
    // Dates are written the Chinese way: 2026/11/25.
    browser
        .wait_text("[data-testid=queue]", &today.format("%Y/%m/%d").to_string())
        .await;
    browser.screenshot(&shots().join("2-approvals.png")).await;
    browser.click("#pick-all").await;
    browser.click("#approve").await;
    browser.wait_text("#decision-msg", "1/1").await;
    let status = server
        .store(move |s| s.day(&SiteId::new("site-hz-01").unwrap(), today).unwrap().status)
        .await;
    assert_eq!(status, sitesync_core::labor::DayStatus::Approved);
    sync_once(&mut foreman).await.unwrap();
    assert_eq!(
        foreman.day(&site, today).unwrap().status,
        sitesync_core::labor::DayStatus::Approved
    );

    // A day of labor on 5.1, whose whole budget is ¥202: over budget, and red on the progress page.
    let yesterday = today.pred_opt().unwrap();
    let e = sitesync_core::store::entry(
        site.clone(),
        yesterday,
        WorkerId::new("w-0004").unwrap(),
        WorkItemId::new("site-hz-01/wi-5.1").unwrap(),
        WorkDays::parse("1.0").unwrap(),
    );
    foreman.add_labor(&e, None).unwrap();
    sync_once(&mut foreman).await.unwrap();

    // The other pages render, in English too.
    browser.click("[data-view=progress]").await;
    browser.wait_text("[data-testid=progress]", "1.1").await;
    let over = browser.wait_text("[data-testid=overrun]", "5.1").await;
    assert!(over.contains("超支"), "{over}");
    let colors = browser
        .run_async(
            "const done = arguments[arguments.length - 1];
             const rows = [...document.querySelectorAll('[data-testid=progress] tbody tr')];
             document.querySelector('[data-testid=overrun]').scrollIntoView({ block: 'center' });
             done(rows.map(r => [r.cells[0].textContent, getComputedStyle(r.querySelector('td.num:nth-child(8)')).color]));",
        )
        .await;
    for row in colors.as_array().unwrap() {
        let red = row[1] == "rgb(207, 34, 46)";
        // Only 5.1 and the site's total (which its overrun does not sink) may be red.
        assert_eq!(red, row[0] == "5.1", "{colors}");
    }
    browser.screenshot(&shots().join("3-progress.png")).await;
    browser.click("[data-view=anomalies]").await;
    browser.wait_text("#view h2", "异常").await;
    browser.screenshot(&shots().join("4-anomalies.png")).await;
    browser.click("#lang").await;
    browser.wait_text("h1", "sitesync head office").await;
    browser.click("[data-view=okr]").await;
    browser.wait_text("#view h2", "OKR").await;
    browser.screenshot(&shots().join("5-okr-en.png")).await;
    let api = Api::new(&server, &office_token);
    assert_eq!(api.get("/", &[]).await.0, 200);
    let violations = browser
        .run_async("arguments[arguments.length - 1](window.cspViolations);")
        .await;
    assert_eq!(violations, serde_json::json!([]), "content security policy violations");

    // Signing out from the page (the server ending the session is tested in tests/sync/sessions.rs).
    let kept = browser
        .run_async(
            "const done = arguments[arguments.length - 1];
             fetch('/v1/session').then((r) => done(r.status));",
        )
        .await;
    assert_eq!(kept, 200);
    browser.click("#signout").await;
    browser.wait_text("#signin-title", "Sign in").await;
    let after = browser
        .run_async(
            "const done = arguments[arguments.length - 1];
             fetch('/v1/session').then((r) => done(r.status));",
        )
        .await;
    assert_eq!(after, 401, "signed out");
    let left = browser.close();
    assert!(left.is_empty(), "the browser outlived its test: {left:?}");
    server.stop().await;
}

/// A PNG of `px` × `px` pixels (a real image, so the server can make a thumbnail of it).
fn png(px: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(px, px, |x, y| image::Rgb([(x * 7) as u8, (y * 13) as u8, 90]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// The sign-off page: five workers of today in each of the five states a worker's day can be in
/// (signed, disputed, dispute answered, changed since signed, unsigned), the open dispute with its
/// reason, the month's list of who still has to sign (the one who signed his month is not on it), an uploaded
/// photo drawn from the server's thumbnail and a file not uploaded yet; a signature taken on the
/// phone while the page is open appears without reloading; every label in Chinese and in English.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Debian chromium and chromium-driver; run by .ci/run"]
async fn head_office_sees_the_days_sign_off_disputes_and_photos() {
    use sitesync_core::attachments::Target;
    use sitesync_core::labor::LaborPatch;
    use sitesync_core::store::Period;
    use sitesync_core::store::attachments::AttachRequest;
    use sitesync_core::sync::blobs::sync_blobs;

    assert!(
        Browser::available(),
        "install chromium and chromium-driver (Debian packages)"
    );
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut foreman = phone(
        dir.path(),
        "崔贵",
        &server.url(),
        &server.device("u-foreman-hz-01").await,
    );
    sync_once(&mut foreman).await.unwrap();
    let today = chrono::Utc::now().date_naive();
    let site = SiteId::new("site-hz-01").unwrap();
    let item = WorkItemId::new("site-hz-01/wi-4.1").unwrap();
    let w = |id: &str| WorkerId::new(id).unwrap();
    let mut lines = Vec::new();
    for worker in ["w-0001", "w-0002", "w-0003", "w-0004", "w-0005"] {
        let e = sitesync_core::store::entry(
            site.clone(),
            today,
            w(worker),
            item.clone(),
            WorkDays::parse("1.0").unwrap(),
        );
        lines.push(foreman.add_labor(&e, None).unwrap());
    }
    let on_day = || Period::Day(today);
    foreman
        .sign_off(&site, on_day(), &w("w-0001"), Some(b"\x89PNG strokes"))
        .unwrap();
    // The attendance sheet asks for the month's signature (the wage rules' monthly one): w-0001 gives
    // it, the others have not.
    foreman
        .sign_off(&site, Period::Month(today), &w("w-0001"), None)
        .unwrap();
    foreman.dispute(&site, on_day(), &w("w-0002"), "只干了半天").unwrap();
    let answered = foreman
        .dispute(&site, on_day(), &w("w-0003"), "少记了加班")
        .unwrap()
        .remove(0);
    foreman
        .answer_dispute(&site, today, &answered.id, "已补记加班两小时")
        .unwrap();
    foreman.sign_off(&site, on_day(), &w("w-0004"), None).unwrap();
    let patch = LaborPatch {
        work_days: Some(WorkDays::parse("0.5").unwrap()),
        ..LaborPatch::default()
    };
    foreman.edit_labor(&lines[3].id, &patch, None).unwrap();
    let attach = |store: &mut sitesync_core::Store, bytes: &[u8], name: &str, caption: &str| {
        store
            .attach(&AttachRequest {
                site: site.clone(),
                date: today,
                bytes,
                file_name: name,
                caption,
                target: Target::Day,
                gps: None,
                amend: None,
            })
            .unwrap()
            .sha256
    };
    let photo = attach(&mut foreman, &png(400), "IMG_0001.png", "钢筋绑扎");
    sync_once(&mut foreman).await.unwrap();
    // The photo and w-0001's signature image (signature images travel like photos).
    assert_eq!(sync_blobs(&mut foreman, false).await.unwrap().uploaded, 2);
    let pending = attach(&mut foreman, b"delivery note", "note.txt", "送货单");
    sync_once(&mut foreman).await.unwrap();

    let browser = office_signed_in(&server).await;
    browser.click("[data-view=signoffs]").await;

    // Each worker's state, by worker id, as the page shows it.
    let states = || async {
        browser
            .run_async(
                "const done = arguments[arguments.length - 1];
                 done(Object.fromEntries([...document.querySelectorAll('[data-testid=signoffs] tr[data-id^=w-]')]
                   .map((r) => [r.dataset.id, r.querySelector('[data-state]').textContent])));",
            )
            .await
    };
    browser.wait_text("[data-testid=signoffs]", "未签字").await;
    assert_eq!(
        states().await,
        serde_json::json!({
            "w-0001": "已签字", "w-0002": "有异议", "w-0003": "异议已答复",
            "w-0004": "签字后有改动", "w-0005": "未签字",
        })
    );
    let table = browser.wait_text("[data-testid=signoffs]", "班组长").await;
    assert!(
        table.contains("异议: 少记了加班; 答复: 已补记加班两小时"),
        "the answered dispute with its answer: {table}"
    );
    assert!(
        table.contains("工日: 1.00 → 0.50"),
        "what changed since signing, in words: {table}"
    );
    let disputes = browser.wait_text("[data-testid=disputes]", "只干了半天").await;
    assert!(
        !disputes.contains("少记了加班"),
        "an answered dispute is not open: {disputes}"
    );
    let to_sign = browser
        .run_async(
            "const done = arguments[arguments.length - 1];
             done([...document.querySelectorAll('[data-testid=to-sign] tr[data-worker]')].map((r) => r.dataset.worker));",
        )
        .await;
    assert_eq!(to_sign, serde_json::json!(["w-0002", "w-0003", "w-0004", "w-0005"]));

    // The uploaded photo is drawn from the server's thumbnail (at most 256 px); the file whose bytes
    // are still on the phone is listed as not uploaded.
    let photos = browser.wait_text("[data-testid=photos]", "钢筋绑扎").await;
    assert!(photos.contains("送货单") && photos.contains("尚未上传"), "{photos}");
    let drawn = browser
        .run_async(&format!(
            "const done = arguments[arguments.length - 1];
             const img = document.querySelector('[data-sha256=\"{photo}\"] img');
             const check = () => img.complete ? done([img.naturalWidth, img.getAttribute('src')]) : setTimeout(check, 50);
             check();"
        ))
        .await;
    assert_eq!(drawn[0], 256, "the thumbnail was drawn: {drawn}");
    assert_eq!(drawn[1], format!("/v1/blobs/{photo}/thumbnail"));
    let none = browser
        .run_async(&format!(
            "arguments[arguments.length - 1](document.querySelectorAll('[data-sha256=\"{pending}\"] img').length);"
        ))
        .await;
    assert_eq!(none, 0, "no picture for bytes the server lacks");
    browser.screenshot(&shots().join("6-signoffs.png")).await;

    // A signature taken on the phone now reaches the open page live.
    foreman.sign_off(&site, on_day(), &w("w-0005"), None).unwrap();
    sync_once(&mut foreman).await.unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while states().await["w-0005"] != "已签字" {
        assert!(tokio::time::Instant::now() < deadline, "the signature never appeared");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // Every label has its English, and no key is shown untranslated in either language.
    let untranslated = "const done = arguments[arguments.length - 1];
         const keys = new Set(Object.keys(T.zh));
         const missing = [...keys].filter((k) => !(k in T.en)).concat(Object.keys(T.en).filter((k) => !keys.has(k)));
         const raw = (document.querySelector('#view').innerText.match(/[a-z]+_[a-z_]+/g) || []).filter((w) => keys.has(w) || /^(st|role)_/.test(w));
         done({ missing, raw });";
    assert_eq!(
        browser.run_async(untranslated).await,
        serde_json::json!({ "missing": [], "raw": [] })
    );
    browser.click("#lang").await;
    browser.wait_text("#view h2", "Sign-off & photos").await;
    let to_sign = browser.wait_text("[data-testid=to-sign]", "Unsigned").await;
    assert!(to_sign.contains("Disputed"), "{to_sign}");
    assert_eq!(
        states().await,
        serde_json::json!({
            "w-0001": "Signed", "w-0002": "Disputed", "w-0003": "Dispute answered",
            "w-0004": "Changed since signed", "w-0005": "Signed",
        })
    );
    let page = browser.wait_text("#view", "Open disputes").await;
    for label in [
        "The day's sign-off",
        "Crew leader",
        "Still to sign or re-sign this month",
        "Photos and files",
        "Not uploaded yet",
        "Dispute: 只干了半天",
        "Answer: 已补记加班两小时",
    ] {
        assert!(page.contains(label), "{label:?} missing: {page}");
    }
    assert_eq!(
        browser.run_async(untranslated).await,
        serde_json::json!({ "missing": [], "raw": [] })
    );
    browser.screenshot(&shots().join("7-signoffs-en.png")).await;
    let violations = browser
        .run_async("arguments[arguments.length - 1](window.cspViolations);")
        .await;
    assert_eq!(violations, serde_json::json!([]), "content security policy violations");
    let left = browser.close();
    assert!(left.is_empty(), "the browser outlived its test: {left:?}");
    server.stop().await;
}

/// Every enum value the API can return, which must never show as it is under 中文: anomaly kinds
/// (`server::report::AnomalyKind`), day statuses (`DayStatus::ALL`), review actions, OKR statuses,
/// roles, sign-off states, refusal rules (`Violation::rule`), labor kinds, day-log tables and
/// fields, and the names `system` and `local`.
fn enum_words() -> Vec<String> {
    let mut words: Vec<String> = [
        "over_work_days",
        "over_hours",
        "missing_log",
        "amended_after_approval",
        "rate_mismatch",
        "not_on_roster",
        "invalid_line",
        "cost_overrun",
        "submitted",
        "approved",
        "rejected",
        "amended",
        "green",
        "yellow",
        "red",
        "foreman",
        "site_manager",
        "head_office",
        "admin",
        "signed",
        "disputed",
        "answered",
        "changed_since_signed",
        "unsigned",
        "confirmed",
        "unconfirmed",
        "crew_confirmed",
        "crew_leader",
        "worker",
        "day_labor",
        "piecework",
        "labor",
        "progress",
        "delays",
        "reviews",
        "work_days_centi",
        "hours_min",
        "overtime_min",
        "rate_fen",
        "overtime_rate_fen",
        "quantity_milli",
        "deleted",
        "note",
        "weather",
        "system",
        "local",
        "true",
        "false",
        "review.manager_only",
        "review.append_only",
        "review.dispute_open",
        "site.head_office_only",
        "site.grant",
        "okr.head_office_only",
        "okr.owner_only",
        "okr.system_only",
        "line.deleted",
        "day.locked",
        "author.forged",
        "structure",
        "signature.missing",
        "signature.invalid",
        "signature.unknown_key",
        "author.foreign_actor",
        "depends_on_refused",
        "invalid",
    ]
    .map(String::from)
    .to_vec();
    words.extend(sitesync_core::labor::DayStatus::ALL.map(|s| s.as_str().to_string()));
    words
}

/// The view's visible words that are enum values (under 中文), or raw snake_case or dotted rule
/// names (under English).
async fn untranslated(browser: &Browser, zh: bool) -> Vec<String> {
    let words = serde_json::to_string(&enum_words()).unwrap();
    let got = browser
        .run_async(&format!(
            "const done = arguments[arguments.length - 1];
             const words = new Set({words});
             const text = document.querySelector('#view').innerText;
             const tokens = (text.match(/[A-Za-z_][A-Za-z0-9_.]*/g) || []).map((w) => w.replace(/\\.+$/, ''));
             done({zh} ? tokens.filter((w) => words.has(w))
                       : tokens.filter((w) => /^[a-z0-9]+(_[a-z0-9]+)+$/.test(w) || (w.includes('.') && words.has(w))));"
        ))
        .await;
    serde_json::from_value(got).unwrap()
}

/// Every tab in both languages with no untranslated enum word; the devices page with each device's
/// user, role, app version and a silent device; the conflicts page, where "keep this one" settles a
/// conflict as head office and the day then holds one value; an approval of days with open
/// conflicts shows them and needs a confirmation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Debian chromium and chromium-driver; run by .ci/run"]
async fn head_office_settles_conflicts_sees_devices_and_reads_every_tab_in_its_language() {
    assert!(
        Browser::available(),
        "install chromium and chromium-driver (Debian packages)"
    );
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut foreman = phone(
        dir.path(),
        "崔贵",
        &server.url(),
        &server.device("u-foreman-hz-01").await,
    );
    let mut manager = phone(
        dir.path(),
        "龙东江",
        &server.url(),
        &server.device("u-manager-hz-01").await,
    );
    sync_once(&mut foreman).await.unwrap();
    sync_once(&mut manager).await.unwrap();
    let today = chrono::Utc::now().date_naive();
    let yesterday = today.pred_opt().unwrap();
    let site = SiteId::new("site-hz-01").unwrap();
    let item = WorkItemId::new("site-hz-01/wi-4.1").unwrap();
    let log_on = |store: &mut sitesync_core::Store, date, worker: &str, item: &WorkItemId, days: &str| {
        let e = sitesync_core::store::entry(
            site.clone(),
            date,
            WorkerId::new(worker).unwrap(),
            item.clone(),
            WorkDays::parse(days).unwrap(),
        );
        store.add_labor(&e, None).unwrap();
    };
    let log =
        |store: &mut sitesync_core::Store, date, worker: &str, days: &str| log_on(store, date, worker, &item, days);
    // One worker on two work items today, 1.5 work-days in all: an anomaly.
    log(&mut foreman, today, "w-0001", "1.0");
    log_on(
        &mut foreman,
        today,
        "w-0001",
        &WorkItemId::new("site-hz-01/wi-3.2").unwrap(),
        "0.5",
    );
    // The same worker-day on two phones, with different work-days: a conflict on each of two days.
    for date in [yesterday, today] {
        log(&mut foreman, date, "w-0040", "1.0");
        log(&mut manager, date, "w-0040", "0.5");
    }
    sync_once(&mut foreman).await.unwrap();
    sync_once(&mut manager).await.unwrap();
    sync_once(&mut foreman).await.unwrap();
    for date in [yesterday, today] {
        foreman.submit_day(&site, date).unwrap();
    }
    sync_once(&mut foreman).await.unwrap();

    // This quarter's OKR cycle, checked in from head office's phone before it knew its user: the
    // check-in's author is `local`, and its signature says who it was.
    let office_token = server.device("u-office-1").await;
    let mut office = sitesync_core::Store::open(dir.path().join("office.sqlite3")).unwrap();
    office.bind(&server.url(), &office_token).unwrap();
    sync_once(&mut office).await.unwrap();
    let cycle_id = format!("{}-Q{}", today.year(), today.month0() / 3 + 1);
    let org = "org-zhuyuan";
    use sitesync_core::okr::{CycleKind, Direction, KrKind};
    let cycle = sitesync_core::okr::Cycle::new(org, &cycle_id, CycleKind::Quarter, "本季度", "", today);
    let end = cycle.end;
    office.put_cycle(&cycle).unwrap();
    let o = office
        .add_objective(org, &cycle_id, "按期完成主体结构", "付志", "进度", None)
        .unwrap();
    let kr = office
        .add_key_result(
            org,
            &cycle_id,
            &sitesync_core::store::NewKeyResult {
                objective: o.id.clone(),
                title: "主体结构完成率".into(),
                owner: "付志".into(),
                unit: "%".into(),
                start_milli: 0,
                target_milli: Some(100_000),
                direction: Direction::Increase,
                kind: KrKind::Baseline,
                weight: 1,
                due: Some(end),
                metric: None,
            },
        )
        .unwrap();
    office
        .check_in(org, &cycle_id, &kr.id, 10_000, None, None, "", today)
        .unwrap();
    sync_once(&mut office).await.unwrap();

    let browser = office_signed_in(&server).await;

    // The OKR board: statuses in words, the `local` check-in named by its signer.
    browser.click("[data-view=okr]").await;
    let board = browser.wait_text("[data-testid=objective]", "主体结构完成率").await;
    assert!(
        ["正常", "有风险", "落后"].iter().any(|s| board.contains(s)),
        "a status in words: {board}"
    );
    assert!(board.contains("付志") && !board.contains("local"), "{board}");
    browser.screenshot(&shots().join("13-okr.png")).await;

    // An approval of the two days: neither has been recorded, and the page shows the conflicts.
    browser.click("[data-view=approvals]").await;
    browser
        .wait_text("[data-testid=queue]", &today.format("%Y/%m/%d").to_string())
        .await;
    let queue = browser.wait_text("[data-testid=queue]", "已提交").await;
    assert!(
        queue.contains("杭州滨江商业综合体") && !queue.contains("submitted"),
        "{queue}"
    );
    browser.click("#pick-all").await;
    browser.click("#approve").await;
    let warning = browser.wait_text("[data-testid=conflict-warning]", "仍然批准").await;
    assert!(
        warning.contains("龙东江") && warning.contains("崔贵") && warning.contains("工日"),
        "{warning}"
    );
    browser.screenshot(&shots().join("8-approve-conflicts.png")).await;
    let status = |date| server.store(move |s| s.day(&SiteId::new("site-hz-01").unwrap(), date).unwrap().status);
    assert_eq!(
        status(today).await,
        sitesync_core::labor::DayStatus::Submitted,
        "not approved unconfirmed"
    );

    // The conflicts page: both days, each value with its author; keep the manager's 0.5 of today.
    browser.click("[data-view=conflicts]").await;
    browser.wait_text("#view h2", "冲突").await;
    let table = browser.wait_text("[data-testid=conflicts]", "龙东江").await;
    assert!(
        table.contains("崔贵") && table.contains("保留此值") && table.contains("工日"),
        "{table}"
    );
    let rows = browser
        .run_async(
            "const done = arguments[arguments.length - 1];
             done([...document.querySelectorAll('[data-testid=conflicts] tbody tr')].map((r) => r.innerText));",
        )
        .await;
    // Work-days and, following them, hours: two fields on each of two days, two values each.
    assert_eq!(rows.as_array().unwrap().len(), 8, "{rows}");
    assert_eq!(untranslated(&browser, true).await, Vec::<String>::new());
    browser.screenshot(&shots().join("9-conflicts.png")).await;
    let iso_today = today.format("%Y/%m/%d").to_string();
    // Keep the manager's values of today, one field at a time, as a clerk clicks.
    let count = || async {
        browser
            .run_async(
                "arguments[arguments.length - 1](document.querySelectorAll('[data-testid=conflicts] tbody tr').length);",
            )
            .await
    };
    for left in [6, 4] {
        let clicked = browser
            .run_async(&format!(
                "const done = arguments[arguments.length - 1];
                 const rows = [...document.querySelectorAll('[data-testid=conflicts] tbody tr')];
                 let day = '';
                 for (const r of rows) {{
                   const t = r.querySelector('time'); if (t) day = t.textContent;
                   if (day === '{iso_today}' && r.innerText.includes('龙东江')) {{ r.querySelector('[data-testid=keep]').click(); return done(true); }}
                 }}
                 done(false);"
            ))
            .await;
        assert_eq!(clicked, true, "a keep button for the manager's value of today");
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        while count().await != left {
            assert!(tokio::time::Instant::now() < deadline, "the settled conflict stayed");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    browser.wait_text("#view", "已保留").await;
    // The day holds one value, on the server and on both phones after their next sync.
    let line = |sheet: sitesync_core::labor::DaySheet| {
        sheet.labor.into_iter().find(|l| l.worker.as_str() == "w-0040").unwrap()
    };
    let kept = line(
        server
            .store(move |s| s.day(&SiteId::new("site-hz-01").unwrap(), today).unwrap())
            .await,
    );
    assert_eq!(
        (kept.work_days.centi(), kept.hours.minutes(), kept.conflicts.len()),
        (50, 240, 0),
        "{kept:?}"
    );
    for p in [&mut foreman, &mut manager] {
        sync_once(p).await.unwrap();
        let l = line(p.day(&site, today).unwrap());
        assert_eq!((l.work_days.centi(), l.conflicts.len()), (50, 0), "{:?}", p.path());
        assert_eq!(l.hours.minutes(), 240, "{:?}", p.path());
    }

    // Approving again: today goes through, yesterday still warns, and is approved once confirmed.
    // The clerk clicks the tab while a live update's render of the conflicts page is still waiting
    // for the server (held 1.5 s here): the tab clicked stays, the late render is dropped.
    browser
        .run_async(
            "const done = arguments[arguments.length - 1];
             const f = window.fetch;
             window.fetch = (p, o) => String(p).startsWith('/v1/conflicts')
               ? new Promise((r) => setTimeout(r, 1500)).then(() => f(p, o)) : f(p, o);
             window.unslow = () => { window.fetch = f; };
             render();
             done(true);",
        )
        .await;
    browser.click("[data-view=approvals]").await;
    browser
        .wait_text("[data-testid=queue]", &yesterday.format("%Y/%m/%d").to_string())
        .await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert!(
        browser.find("[data-testid=queue]").await.is_some(),
        "the late render of the conflicts page replaced the approvals queue"
    );
    browser
        .run_async("window.unslow(); arguments[arguments.length - 1](true);")
        .await;
    browser.click("#pick-all").await;
    browser.click("#approve").await;
    let warning = browser.wait_text("[data-testid=conflict-warning]", "仍然批准").await;
    assert!(
        warning.contains(&yesterday.format("%Y/%m/%d").to_string()) && !warning.contains(&iso_today),
        "{warning}"
    );
    assert_eq!(status(today).await, sitesync_core::labor::DayStatus::Approved);
    assert_eq!(status(yesterday).await, sitesync_core::labor::DayStatus::Submitted);
    browser.click("#confirm-approve").await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while status(yesterday).await != sitesync_core::labor::DayStatus::Approved {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the confirmed approval was not recorded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // The devices page: each phone's user and role, what its app reported, and head office's own
    // browser device, which never synced while sites of its logged nothing yesterday: silent.
    browser.click("[data-view=devices]").await;
    let devices = browser.wait_text("[data-testid=devices]", "崔贵").await;
    for want in [
        "工长",
        "项目经理",
        "龙东江",
        "sitesync-core/",
        "从未",
        "失联",
        "苏州工业园区厂房二期",
    ] {
        assert!(devices.contains(want), "{want:?} missing: {devices}");
    }
    browser.screenshot(&shots().join("10-devices.png")).await;

    // Every tab, in both languages: no enum word shown as the API writes it.
    let tabs = [
        ("labor", "点工汇总", "Day labor"),
        ("approvals", "待审批", "Waiting for approval"),
        ("signoffs", "签字与照片", "Sign-off & photos"),
        ("progress", "进度", "Progress"),
        ("anomalies", "异常", "Anomalies"),
        ("okr", "OKR", "OKR"),
        ("history", "记录", "Who entered what"),
        ("conflicts", "冲突", "Conflicts"),
        ("devices", "设备", "Devices"),
    ];
    for zh in [true, false] {
        if !zh {
            browser.click("#lang").await;
            browser.wait_text("h1", "sitesync head office").await;
        }
        for (view, title_zh, title_en) in tabs {
            browser.click(&format!("[data-view={view}]")).await;
            browser
                .wait_text("#view h2", if zh { title_zh } else { title_en })
                .await;
            // A render of the previous tab still in flight cannot land after this one's.
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            browser
                .wait_text("#view h2", if zh { title_zh } else { title_en })
                .await;
            let raw = untranslated(&browser, zh).await;
            assert!(
                raw.is_empty(),
                "{view} ({}) shows {raw:?}",
                if zh { "中文" } else { "English" }
            );
        }
        browser.click("[data-view=anomalies]").await;
        let anomalies = browser
            .wait_text(
                "[data-testid=anomalies]",
                if zh { "工日超限" } else { "Too many work-days" },
            )
            .await;
        assert!(
            anomalies.contains(if zh {
                "一天共 1.50 工日"
            } else {
                "1.50 work-days in the day"
            }),
            "{anomalies}"
        );
        assert!(anomalies.contains("高平"), "workers by name: {anomalies}");
        assert!(anomalies.contains("杭州滨江商业综合体"), "sites by name: {anomalies}");
        browser
            .screenshot(&shots().join(if zh {
                "11-anomalies-zh.png"
            } else {
                "12-anomalies-en.png"
            }))
            .await;
    }
    let violations = browser
        .run_async("arguments[arguments.length - 1](window.cspViolations);")
        .await;
    assert_eq!(violations, serde_json::json!([]), "content security policy violations");
    let left = browser.close();
    assert!(left.is_empty(), "the browser outlived its test: {left:?}");
    server.stop().await;
}
