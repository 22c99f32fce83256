//! Reminders end to end: the fixture company with a site that has not logged today, a day waiting
//! for approval, a month nobody signed and an OKR key result that is red and unchecked, delivered to
//! a real HTTP receiver on loopback that plays WeCom, DingTalk, Feishu and a generic webhook: it
//! checks each platform's message shape, recomputes each signature on its own, answers as the
//! platform would (an error code in a 200 for a bad signature), and counts what arrived.
//!
//! The moment evaluated is the 10th of the month after next at 19:30 Beijing time, and every date in
//! the data is placed relative to it, so the test means the same whatever day it runs.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use sitesync_core::ids::SiteId;
use sitesync_core::import::{Company, LogDay};
use sitesync_core::okr::{Cycle, CycleKind, Direction, KrKind};
use sitesync_core::store::NewKeyResult;
use sitesync_server::AppState;
use sitesync_server::reminders::delivery::Backoff;
use sitesync_server::reminders::{Options, Outcome, run};
use sitesync_server::storage::Location;
use support::DataDir;

const ORG: &str = "org-zhuyuan";
const SITE: &str = "site-hz-01";
const SITE_NAME: &str = "杭州滨江商业综合体";
const SECRET: &str = "SEC-test-secret";

/// What the receiver got: the platform, the body, and whether shape and signature were right.
#[derive(Debug, Clone)]
struct Got {
    kind: String,
    body: Value,
    /// Why the message was refused ("" when it was accepted).
    wrong: String,
}

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Got>>>,
    /// Calls to each flaky path so far.
    flaky: Arc<Mutex<HashMap<String, usize>>>,
}

fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// Checks a message as the platform `kind` would; `Err` says what is wrong.
fn check(kind: &str, q: &HashMap<String, String>, headers: &HeaderMap, body: &Value, raw: &[u8]) -> Result<(), String> {
    let text = |v: &Value| v.as_str().map(str::to_string).ok_or("no text");
    match kind {
        "wecom" => {
            if body["msgtype"] != "text" {
                return Err("msgtype".into());
            }
            text(&body["text"]["content"])?;
            if !body["text"]["mentioned_mobile_list"].is_array() {
                return Err("mentioned_mobile_list".into());
            }
        }
        "dingtalk" => {
            let ts: i64 = q
                .get("timestamp")
                .ok_or("no timestamp")?
                .parse()
                .map_err(|_| "timestamp")?;
            let now = Utc::now().timestamp_millis();
            if (now - ts).abs() > 3_600_000 {
                return Err("stale timestamp".into());
            }
            let want = b64(&hmac(SECRET.as_bytes(), format!("{ts}\n{SECRET}").as_bytes()));
            if q.get("sign") != Some(&want) || q.get("access_token").map(String::as_str) != Some("tok") {
                return Err("sign".into());
            }
            if body["msgtype"] != "text" || !body["at"]["atMobiles"].is_array() {
                return Err("shape".into());
            }
            text(&body["text"]["content"])?;
        }
        "feishu" => {
            let ts: i64 = text(&body["timestamp"])?.parse().map_err(|_| "timestamp")?;
            let want = b64(&hmac(format!("{ts}\n{SECRET}").as_bytes(), b""));
            if body["sign"] != want.as_str() {
                return Err("sign".into());
            }
            if body["msg_type"] != "text" {
                return Err("msg_type".into());
            }
            text(&body["content"]["text"])?;
        }
        _ => {
            let sig = headers
                .get("x-sitesync-signature")
                .and_then(|v| v.to_str().ok())
                .ok_or("no signature")?;
            if sig != format!("sha256={}", hex::encode(hmac(SECRET.as_bytes(), raw))) {
                return Err("signature".into());
            }
            for field in ["rule", "key", "org"] {
                text(&body[field])?;
            }
            text(&body["text"]["zh"])?;
            text(&body["text"]["en"])?;
            if !body["subjects"].is_array() || !body["at"].is_array() {
                return Err("subjects/at".into());
            }
        }
    }
    Ok(())
}

/// `POST /{kind}` (and `/flaky-{kind}`, which fails twice before it works).
async fn receive(
    State(r): State<Receiver>,
    Path(path): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    raw: Bytes,
) -> (StatusCode, String) {
    let kind = path.trim_start_matches("flaky-").to_string();
    if path.starts_with("flaky-") {
        let mut calls = r.flaky.lock().unwrap();
        let n = calls.entry(path.clone()).or_default();
        *n += 1;
        if *n <= 2 {
            // The first a 500, the second a 200 with an error code: both are failures.
            return if *n == 1 {
                (StatusCode::INTERNAL_SERVER_ERROR, "down".into())
            } else {
                (
                    StatusCode::OK,
                    json!({ "errcode": 45009, "errmsg": "api freq out of limit" }).to_string(),
                )
            };
        }
    }
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    let verdict = check(&kind, &q, &headers, &body, &raw);
    r.got.lock().unwrap().push(Got {
        kind: kind.clone(),
        body,
        wrong: verdict.clone().err().unwrap_or_default(),
    });
    let (ok, bad) = match kind.as_str() {
        "feishu" => (
            json!({ "code": 0, "msg": "success" }),
            json!({ "code": 19021, "msg": "sign match fail" }),
        ),
        "webhook" => (json!({}), json!({})),
        _ => (
            json!({ "errcode": 0, "errmsg": "ok" }),
            json!({ "errcode": 310000, "errmsg": "sign not match" }),
        ),
    };
    match (verdict, kind.as_str()) {
        (Ok(()), _) => (StatusCode::OK, ok.to_string()),
        (Err(_), "webhook") => (StatusCode::UNAUTHORIZED, String::new()),
        (Err(_), _) => (StatusCode::OK, bad.to_string()),
    }
}

impl Receiver {
    async fn start() -> (Receiver, String) {
        let r = Receiver::default();
        let app = axum::Router::new()
            .route("/{path}", axum::routing::post(receive))
            .with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (r, base)
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }
}

/// The moment evaluated: the 10th of the month after next, 19:30 Beijing time.
fn moment() -> DateTime<Utc> {
    let now = Utc::now().date_naive();
    let months = now.year() * 12 + now.month0() as i32 + 2;
    let day = NaiveDate::from_ymd_opt(months.div_euclid(12), months.rem_euclid(12) as u32 + 1, 10).unwrap();
    chrono_tz::Asia::Shanghai
        .from_local_datetime(&day.and_hms_opt(19, 30, 0).unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

/// The site's calendar date of a moment.
fn local(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&chrono_tz::Asia::Shanghai).date_naive()
}

fn line(worker: &str) -> Value {
    json!({ "worker": worker, "work_item": "site-hz-01/wi-1.1", "work_days_centi": 100, "hours_min": 480,
            "overtime_min": 0, "kind": "day_labor", "rate_fen": 43000, "note": "" })
}

/// The fixture company on the suite's engine, with, as of [`moment`] (day M, month X):
/// - lines on the 1st to the 9th of X and none on M: today's log is missing;
/// - a day of the month before, submitted (now, weeks before M) and not approved; its two workers
///   have not signed that month;
/// - an OKR cycle with a key result red and unchecked for 20 days (9 when the quarter began on the
///   1st of X), and a green one checked in yesterday.
fn seed(data: &DataDir) -> AppState {
    let state = open(data);
    let at = moment();
    let m = local(at);
    let first = m.with_day(1).unwrap();
    let prev15 = first.pred_opt().unwrap().with_day(15).unwrap();
    let company: Company = sitesync_core::import::read_json(&support::fixtures().join("small/company.json")).unwrap();
    let mut days: Vec<Value> = (1..10)
        .map(|d| json!({ "site": SITE, "date": first.with_day(d).unwrap(), "labor": [line("w-0001")] }))
        .collect();
    days.push(json!({ "site": SITE, "date": prev15, "labor": [line("w-0001"), line("w-0002")] }));
    let days: Vec<LogDay> = serde_json::from_value(Value::Array(days)).unwrap();
    block(state.both(move |auth, store| {
        sitesync_server::admin::import_company(auth, store, &company)?;
        store.import_logs(&days)?;
        store.submit_day(&SiteId::new(SITE)?, prev15)?;
        let cycle = Cycle::new(ORG, "okr-q", CycleKind::Quarter, "质量与进度", "", m);
        store.put_cycle(&cycle)?;
        let o = store.add_objective(ORG, "okr-q", "工程按期交付", "u-office-1", "", None)?;
        let kr = |title: &str| NewKeyResult {
            objective: o.id.clone(),
            title: title.into(),
            owner: "u-office-1".into(),
            unit: "%".into(),
            start_milli: 0,
            target_milli: Some(100_000),
            direction: Direction::AtLeast,
            kind: KrKind::Baseline,
            weight: 1,
            due: Some(cycle.end),
            metric: None,
        };
        let red = store.add_key_result(ORG, "okr-q", &kr("一次验收合格率"))?;
        let green = store.add_key_result(ORG, "okr-q", &kr("安全交底覆盖率"))?;
        let long_ago = (m - Duration::days(20)).max(cycle.start);
        store.check_in(ORG, "okr-q", &red.id, 50_000, None, None, "", long_ago)?;
        store.check_in(ORG, "okr-q", &green.id, 100_000, None, None, "", m - Duration::days(1))?;
        Ok(())
    }))
    .unwrap();
    state
}

fn open(data: &DataDir) -> AppState {
    let location = match data.postgres() {
        None => Location::Sqlite,
        Some(db) => Location::Postgres {
            url: db.url().to_string(),
            connections: 2,
        },
    };
    // PostgreSQL's client blocks on a runtime of its own: not on one of the test's workers.
    tokio::task::block_in_place(|| AppState::open_at(data.path(), &location).unwrap())
}

/// Drops a state where blocking is allowed (PostgreSQL's pools stop their own runtime).
fn close(state: AppState) {
    tokio::task::block_in_place(|| drop(state));
}

/// Waits for a future from synchronous test code inside the runtime.
fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

/// Adds a channel through the same call the CLI and API make.
async fn channel(
    state: &AppState,
    kind: &str,
    url: String,
    secret: bool,
    rules: Option<&[&str]>,
    quiet: Option<&str>,
) -> String {
    let new: sitesync_server::reminders::channel::NewChannel = serde_json::from_value(json!({
        "org": ORG, "kind": kind, "url": url,
        "secret": secret.then_some(SECRET),
        "rules": rules,
        "mentions": [{ "to": "13800000000" }, { "rule": "missing_log", "to": "13900000000" }],
        "quiet": quiet,
    }))
    .unwrap();
    let row = new.row().unwrap();
    state.auth(move |a| a.add_channel(&row)).await.unwrap().channel_id
}

fn fast() -> Options {
    Options {
        backoff: Backoff {
            attempts: 4,
            first: std::time::Duration::from_millis(20),
        },
        ..Options::default()
    }
}

fn delivered(done: &[Outcome]) -> usize {
    done.iter().filter(|o| o.status == "delivered").count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_reminder_reaches_each_platform_once_in_its_shape() {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::new(dir.path());
    let state = seed(&data);
    let (receiver, base) = Receiver::start().await;
    channel(&state, "wecom", format!("{base}/wecom?key=k"), false, None, None).await;
    channel(
        &state,
        "dingtalk",
        format!("{base}/dingtalk?access_token=tok"),
        true,
        None,
        None,
    )
    .await;
    channel(&state, "feishu", format!("{base}/feishu"), true, None, None).await;
    channel(&state, "webhook", format!("{base}/webhook"), true, None, None).await;

    let at = moment();
    let done = run(&state, at, &fast()).await.unwrap();
    let got = receiver.got();
    let wrong: Vec<_> = got.iter().filter(|g| !g.wrong.is_empty()).collect();
    assert!(wrong.is_empty(), "refused by the receiver: {wrong:#?}");
    assert_eq!(delivered(&done), 20, "5 reminders × 4 channels: {done:#?}");
    assert_eq!(got.len(), 20);

    // The generic webhook names each rule once, with the subjects and both languages.
    let hooks: Vec<&Got> = got.iter().filter(|g| g.kind == "webhook").collect();
    let mut rules: Vec<&str> = hooks.iter().map(|g| g.body["rule"].as_str().unwrap()).collect();
    rules.sort();
    assert_eq!(
        rules,
        [
            "approval_waiting",
            "checkin_due",
            "kr_red",
            "missing_log",
            "unsigned_month"
        ]
    );
    let by_rule = |rule: &str| hooks.iter().find(|g| g.body["rule"] == rule).unwrap().body.clone();
    let m = local(at);
    let missing = by_rule("missing_log");
    assert_eq!(missing["key"], format!("missing_log/{SITE}/{m}"));
    assert_eq!(missing["site_name"], SITE_NAME);
    assert_eq!(missing["at"], json!(["13800000000", "13900000000"]));
    let unsigned = by_rule("unsigned_month");
    assert_eq!(unsigned["subjects"], json!(["w-0001", "w-0002"]));
    assert_eq!(by_rule("kr_red")["at"], json!(["13800000000"]));
    // Messages are in Chinese with names, not ids.
    let zh = |g: &Value| g["text"]["zh"].as_str().unwrap().to_string();
    assert!(
        zh(&missing).contains(SITE_NAME) && !zh(&missing).contains(SITE),
        "{}",
        zh(&missing)
    );
    let signers = zh(&unsigned);
    assert!(signers.contains('、') && !signers.contains("w-000"), "{signers}");
    assert!(zh(&by_rule("checkin_due")).contains("一次验收合格率") && zh(&by_rule("checkin_due")).contains("付志"));
    assert!(
        !zh(&by_rule("checkin_due")).contains("安全交底覆盖率"),
        "the green, checked key result is not due"
    );

    // Each platform got the same five, the mentions where it puts them.
    for kind in ["wecom", "dingtalk", "feishu"] {
        assert_eq!(got.iter().filter(|g| g.kind == kind).count(), 5, "{kind}");
    }
    let wecom_missing = got
        .iter()
        .find(|g| g.kind == "wecom" && g.body["text"]["content"].as_str().unwrap().contains("日志提醒"))
        .unwrap();
    assert_eq!(
        wecom_missing.body["text"]["mentioned_mobile_list"],
        json!(["13800000000", "13900000000"])
    );
    let ding = got.iter().find(|g| g.kind == "dingtalk").unwrap();
    assert!(ding.body["text"]["content"].as_str().unwrap().contains("@13800000000"));

    // Once: the same moment again, a later minute, and a restarted server send nothing new.
    let again = run(&state, at, &fast()).await.unwrap();
    assert_eq!(delivered(&again), 0, "{again:#?}");
    assert!(again.iter().all(|o| o.status == "done"));
    close(state);
    let state = open(&data);
    let later = run(&state, at + Duration::minutes(1), &fast()).await.unwrap();
    assert_eq!(delivered(&later), 0, "{later:#?}");
    assert_eq!(receiver.got().len(), 20);
    close(state);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_hours_hold_a_reminder_until_they_end() {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::new(dir.path());
    let state = seed(&data);
    let (receiver, base) = Receiver::start().await;
    channel(
        &state,
        "wecom",
        format!("{base}/wecom?key=k"),
        false,
        Some(&["missing_log"]),
        Some("19:00-21:00"),
    )
    .await;
    let at = moment();
    let held = run(&state, at, &fast()).await.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].status, "quiet");
    assert!(receiver.got().is_empty());
    let after = run(&state, at + Duration::minutes(95), &fast()).await.unwrap();
    assert_eq!(delivered(&after), 1, "{after:#?}");
    assert_eq!(receiver.got().len(), 1);
    close(state);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_receiver_gets_it_after_retries_and_the_admin_sees_each_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::new(dir.path());
    let state = seed(&data);
    let (receiver, base) = Receiver::start().await;
    let id = channel(
        &state,
        "wecom",
        format!("{base}/flaky-wecom?key=k"),
        false,
        Some(&["kr_red"]),
        None,
    )
    .await;
    let done = run(&state, moment(), &fast()).await.unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!((done[0].status, done[0].attempts), ("delivered", 3), "{done:#?}");
    assert_eq!(receiver.got().len(), 1);

    // The log, through the API: the org admin reads it; anyone else is refused.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = state.clone();
    tokio::spawn(async move { sitesync_server::run(listener, serving, std::future::pending()).await });
    let (_, admin) = state.auth(|a| a.add_device("u-admin", "test")).await.unwrap();
    let (_, office) = state.auth(|a| a.add_device("u-office-1", "test")).await.unwrap();
    let client = reqwest::Client::new();
    let get = |path: &str, token: &str| client.get(format!("http://{addr}{path}")).bearer_auth(token).send();
    let log: Vec<Value> = get("/v1/admin/notify/log", &admin).await.unwrap().json().await.unwrap();
    let statuses: Vec<(i64, &str, Option<i64>)> = log
        .iter()
        .rev()
        .map(|a| {
            (
                a["attempt"].as_i64().unwrap(),
                a["status"].as_str().unwrap(),
                a["http_status"].as_i64(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [(1, "error", Some(500)), (2, "error", Some(200)), (3, "ok", Some(200))]
    );
    assert!(
        log.iter()
            .all(|a| a["channel"] == id.as_str() && a["event"].as_str().unwrap().starts_with("kr_red/"))
    );
    assert!(log[1]["error"].as_str().unwrap().contains("45009"), "{log:#?}");
    let listed: Vec<Value> = get("/v1/admin/notify", &admin).await.unwrap().json().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["signed"], false);
    for path in ["/v1/admin/notify", "/v1/admin/notify/log"] {
        assert_eq!(get(path, &office).await.unwrap().status(), 403, "{path}");
    }
    let add = json!({ "org": ORG, "kind": "webhook", "url": format!("{base}/webhook") });
    let post = |token: &str| {
        client
            .post(format!("http://{addr}/v1/admin/notify"))
            .bearer_auth(token)
            .json(&add)
            .send()
    };
    assert_eq!(post(&office).await.unwrap().status(), 403);
    let del = |token: &str| {
        client
            .delete(format!("http://{addr}/v1/admin/notify/{id}"))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(del(&office).await.unwrap().status(), 403);
    // Bad input changes nothing.
    let bad = json!({ "org": ORG, "kind": "telegram", "url": "http://x" });
    let r = client
        .post(format!("http://{addr}/v1/admin/notify"))
        .bearer_auth(&admin)
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = post(&admin).await.unwrap();
    assert_eq!(r.status(), 200);
    let added: Value = r.json().await.unwrap();
    assert!(added["id"].as_str().unwrap().starts_with("nc-"));
    assert_eq!(del(&admin).await.unwrap().status(), 200);
    // Gone: to an org admin an unknown id reads as another org's (403), telling them nothing.
    assert_eq!(del(&admin).await.unwrap().status(), 403);
    let listed: Vec<Value> = get("/v1/admin/notify", &admin).await.unwrap().json().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], added["id"]);
    close(state);
}

/// The commands as the README writes them: add prints the id, list shows it, `reminders run` twice
/// for the same moment delivers once, rm removes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_commands_add_list_run_and_remove() {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::new(dir.path());
    close(seed(&data));
    let (receiver, base) = Receiver::start().await;
    let url = format!("{base}/dingtalk?access_token=tok");
    let admin = |args: &[&str]| {
        let (data, args) = (data.clone(), args.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        tokio::task::block_in_place(move || support::admin(&data, &args.iter().map(String::as_str).collect::<Vec<_>>()))
    };
    let id = admin(&[
        "notify",
        "add",
        "--org",
        ORG,
        "--kind",
        "dingtalk",
        "--url",
        &url,
        "--secret",
        SECRET,
        "--rules",
        "missing_log,kr_red",
    ]);
    assert!(id.starts_with("nc-"), "{id}");
    let listed = admin(&["notify", "list", "--org", ORG]);
    assert!(
        listed.contains(&id) && listed.contains("missing_log,kr_red") && listed.contains("signed"),
        "{listed}"
    );
    assert!(!listed.contains(SECRET));
    let at = moment()
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap())
        .to_rfc3339();
    let first = admin(&["reminders", "run", "--at", &at]);
    assert!(first.ends_with("2 delivered"), "{first}");
    assert!(first.contains(SITE_NAME), "{first}");
    let second = admin(&["reminders", "run", "--at", &at]);
    assert!(second.ends_with("0 delivered"), "{second}");
    assert_eq!(receiver.got().len(), 2);
    assert!(receiver.got().iter().all(|g| g.wrong.is_empty()));
    assert_eq!(admin(&["notify", "rm", &id]), "removed");
    assert_eq!(admin(&["notify", "list"]), "");
}

/// Two nodes (two states on one database, as two servers on one PostgreSQL) evaluating the same
/// moment at once: the claim decides, so each event reaches each channel once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_at_once_deliver_each_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::new(dir.path());
    let a = seed(&data);
    let b = open(&data);
    let (receiver, base) = Receiver::start().await;
    channel(&a, "feishu", format!("{base}/feishu"), true, None, None).await;
    channel(&a, "webhook", format!("{base}/webhook"), true, None, None).await;
    let at = moment();
    let (fa, fb) = (fast(), fast());
    let (on_a, on_b) = tokio::join!(run(&a, at, &fa), run(&b, at, &fb));
    let (on_a, on_b) = (on_a.unwrap(), on_b.unwrap());
    assert_eq!(delivered(&on_a) + delivered(&on_b), 10, "{on_a:#?} {on_b:#?}");
    let got = receiver.got();
    assert_eq!(got.len(), 10);
    let mut keys: Vec<String> = got
        .iter()
        .filter(|g| g.kind == "webhook")
        .map(|g| g.body["key"].as_str().unwrap().to_string())
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 5);
    close(a);
    close(b);
}
