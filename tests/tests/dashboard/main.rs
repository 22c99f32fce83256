//! The head-office dashboard in a real headless Chromium: sign in, see a foreman's fresh entry
//! appear live, approve a day, download the Excel file. Screenshots of each page are kept in
//! `target/screenshots/`. Needs Debian's `chromium` and `chromium-driver` (installed by `.ci/run`):
//! `cargo test -p sitesync-tests --test dashboard -- --ignored`.

use std::path::PathBuf;

use sitesync_core::ids::{SiteId, WorkItemId, WorkerId};
use sitesync_core::sync::client::sync_once;
use sitesync_core::units::WorkDays;
use sitesync_tests::browser::Browser;
use sitesync_tests::harness::{Api, TestServer, phone};

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
    browser.goto(&server.url()).await;
    browser.wait_text("#signin-title", "登录").await;
    // The page runs under its content security policy (no inline script or style): every violation
    // from here on is recorded, and there must be none.
    browser
        .run_async(
            "const done = arguments[arguments.length - 1];
             window.cspViolations = [];
             document.addEventListener('securitypolicyviolation', (e) => window.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
             done(true);",
        )
        .await;
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
