//! The callers of the authorization table and the server they call: our org (the fixture company)
//! and a second one made through the admin API, a device for every kind of caller, and how each
//! presents its credential.

use std::collections::BTreeMap;

use chrono::{Days, NaiveDate};
use serde_json::{Value, json};
use sitesync_core::ids::SiteId;
use sitesync_core::labor::DayStatus;
use sitesync_core::okr::{Cycle, CycleKind};
use sitesync_core::units::WorkDays;
use sitesync_server::admin;
use sitesync_server::http::session::SESSION_COOKIE;
use sitesync_tests::harness::{Api, ServerDb, TestServer};

use super::secrets::logs;
use crate::d;

/// Our org (the fixture company) and the sites the callers aim at.
pub(super) const ORG: &str = "org-zhuyuan";
pub(super) const ORG_NAME: &str = "筑远建设集团有限公司";
/// Granted to the fixture foreman and site manager of hz-01.
pub(super) const OWN_SITE: &str = "site-hz-01";
/// Another site of our org, granted to neither.
pub(super) const OTHER_SITE: &str = "site-sz-02";
/// The third site of our org (readable by head office and admins only).
pub(super) const THIRD_SITE: &str = "site-nb-03";
/// The other org, made through the admin API by the operators' admin.
pub(super) const OTHER_ORG: &str = "org-authz-other";
pub(super) const OTHER_ORG_NAME: &str = "别家建设有限公司";
pub(super) const OTHER_ORG_SITE: &str = "site-authz-other-01";
pub(super) const OTHER_FOREMAN: &str = "u-authz-other-foreman";
pub(super) const OTHER_ADMIN: &str = "u-authz-other-admin";
/// A user of our org with no grant, for the admin rows to change freely.
pub(super) const TEMP_USER: &str = "u-authz-temp";
/// The OKR cycle both orgs have, and the day every site has a log for.
pub(super) const CYCLE: &str = "2026-Q4";
pub(super) const SEED_DAY: &str = "2026-11-02";
/// The right shape, never issued.
pub(super) const BAD_TOKEN: &str = "sst_0badc0ffee00_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
/// A session id of the right shape, never issued.
pub(super) const BAD_SESSION: &str = "5e5510000badc0ffee0123456789abcdef0123456789abcdef0123456789abcd";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Who {
    /// No credential at all.
    Anonymous,
    /// A token of the right shape that the server never issued.
    BadToken,
    /// A device of the fixture foreman that our org's admin revoked.
    Revoked,
    /// `u-foreman-hz-01` (granted site-hz-01) aiming at site-hz-01.
    ForemanOwn,
    /// The same foreman aiming at site-sz-02.
    ForemanOther,
    /// `u-manager-hz-01` (site manager, granted site-hz-01) aiming at site-hz-01.
    ManagerOwn,
    /// The same site manager aiming at site-sz-02.
    ManagerOther,
    /// `u-office-1`, head office: every site of the org.
    Office,
    /// `u-admin`, our org's admin.
    Admin,
    /// The operators' admin (org `system`, written by the first start), who administers every org.
    Operator,
    /// A foreman of the other org (granted its site) aiming at our site and org.
    OtherForeman,
    /// The other org's admin aiming at our site and org.
    OtherAdmin,
}

pub(super) use Who::*;

/// The columns of the route table, in order.
pub(super) const CALLERS: [Who; 12] = [
    Anonymous,
    BadToken,
    Revoked,
    ForemanOwn,
    ForemanOther,
    ManagerOwn,
    ManagerOther,
    Office,
    Admin,
    Operator,
    OtherForeman,
    OtherAdmin,
];

impl Who {
    /// The site the caller aims at (our org's, always).
    pub(super) fn site(self) -> &'static str {
        match self {
            ForemanOther | ManagerOther => OTHER_SITE,
            _ => OWN_SITE,
        }
    }
}

/// A credential as presented.
#[derive(Debug, Clone)]
pub(super) enum Cred {
    Nothing,
    Bearer(String),
    /// A session id in the cookie, with the `Origin` the page sends (if any).
    Cookie {
        session: String,
        origin: Option<String>,
    },
    /// No credential, from a page of another origin.
    Origin(String),
}

impl Cred {
    pub(super) fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            Cred::Nothing => Vec::new(),
            Cred::Bearer(t) => vec![("authorization", format!("Bearer {t}"))],
            Cred::Cookie { session, origin } => {
                let mut h = vec![("cookie", format!("{SESSION_COOKIE}={session}"))];
                h.extend(origin.iter().map(|o| ("origin", o.clone())));
                h
            }
            Cred::Origin(o) => vec![("origin", o.clone())],
        }
    }
}

/// A server with the fixture company, a second org, and a device for every caller.
pub(super) struct World {
    /// The real server, on loopback.
    pub(super) server: TestServer,
    /// The harness's client with no credential of its own: every call sets the one it presents.
    pub(super) api: Api,
    /// Each caller's token (none for `Anonymous`).
    pub(super) tokens: BTreeMap<Who, String>,
    /// Each caller's device id.
    pub(super) devices: BTreeMap<Who, String>,
    /// Every token this test saw: presented, issued, or answered; none may be stored or logged.
    pub(super) seen: Vec<String>,
    /// Each caller's dashboard session id (a never-issued one for `BadToken`; the revoked device's
    /// from before its revocation).
    pub(super) sessions: BTreeMap<Who, String>,
    /// Sessions made to be signed out.
    pub(super) signed_out: Vec<String>,
    /// The records of the sites callers aim at, for the admin API.
    pub(super) site_records: BTreeMap<&'static str, Value>,
    /// Days made for approvals so far.
    pub(super) days_made: u64,
    /// A photo (SHA-256 hex, bytes) attached to `SEED_DAY` of `OWN_SITE` and of `OTHER_SITE` and
    /// uploaded by head office's phone, for the blob routes.
    pub(super) blobs: BTreeMap<&'static str, (String, Vec<u8>)>,
    /// Head office's phone store, which attached the photos.
    _phone_dir: tempfile::TempDir,
}

impl World {
    pub(super) async fn new() -> World {
        logs();
        let server = TestServer::start().await;
        let dir = server.dir.path().to_path_buf();
        let file = server
            .state
            .auth(move |a| admin::bootstrap(a, &dir))
            .await
            .unwrap()
            .expect("no admin has a device yet, so the first start writes one");
        let operator = std::fs::read_to_string(file).unwrap().trim().to_string();
        let mut w = World {
            api: Api::anonymous(&server),
            server,
            tokens: BTreeMap::new(),
            devices: BTreeMap::new(),
            seen: vec![operator.clone(), BAD_TOKEN.to_string()],
            sessions: BTreeMap::from([(BadToken, BAD_SESSION.to_string())]),
            signed_out: Vec::new(),
            site_records: BTreeMap::new(),
            days_made: 0,
            blobs: BTreeMap::new(),
            _phone_dir: tempfile::tempdir().unwrap(),
        };
        w.tokens.insert(Operator, operator.clone());
        w.devices.insert(Operator, device_of(&operator));
        w.tokens.insert(BadToken, BAD_TOKEN.into());

        // The other org, made through the admin API by the operators' admin.
        let op = operator.as_str();
        w.admin_ok(op, "/v1/admin/orgs", json!({ "id": OTHER_ORG, "name": OTHER_ORG_NAME }))
            .await;
        let other_site =
            json!({ "id": OTHER_ORG_SITE, "code": "OT-01", "name": "别家工地", "timezone": "Asia/Shanghai" });
        w.admin_ok(op, "/v1/admin/sites", json!({ "org": OTHER_ORG, "site": other_site }))
            .await;
        for (id, role) in [(OTHER_FOREMAN, "foreman"), (OTHER_ADMIN, "admin")] {
            w.admin_ok(
                op,
                "/v1/admin/users",
                json!({ "org": OTHER_ORG, "id": id, "name": id, "role": role }),
            )
            .await;
        }
        w.admin_ok(
            op,
            "/v1/admin/grants",
            json!({ "user": OTHER_FOREMAN, "site": OTHER_ORG_SITE }),
        )
        .await;
        w.enroll(op, OTHER_FOREMAN, &[OtherForeman]).await;
        w.enroll(op, OTHER_ADMIN, &[OtherAdmin]).await;

        // Our org's admin, enrolled by the operators; our other devices by our admin.
        w.enroll(op, "u-admin", &[Admin]).await;
        let admin = w.tokens[&Admin].clone();
        w.enroll(&admin, "u-foreman-hz-01", &[ForemanOwn, ForemanOther]).await;
        w.enroll(&admin, "u-manager-hz-01", &[ManagerOwn, ManagerOther]).await;
        w.enroll(&admin, "u-office-1", &[Office]).await;
        w.enroll(&admin, "u-foreman-hz-01", &[Revoked]).await;
        for who in CALLERS {
            if let Some(token) = w.tokens.get(&who).filter(|_| who != BadToken).cloned() {
                let session = w.sign_in(&token).await;
                w.sessions.insert(who, session);
            }
        }
        let revoked = w.devices[&Revoked].clone();
        w.admin_ok(&admin, &format!("/v1/admin/devices/{revoked}/revoke"), json!({}))
            .await;
        w.admin_ok(
            &admin,
            "/v1/admin/users",
            json!({ "org": ORG, "id": TEMP_USER, "name": "临时工长", "role": "foreman" }),
        )
        .await;

        // Something to read everywhere: an OKR cycle per org, and a logged day on every site.
        let records = w
            .server
            .store(|s| {
                for org in [ORG, OTHER_ORG] {
                    let cycle = Cycle::new(org, CYCLE, CycleKind::Quarter, "2026 Q4", "", d("2026-10-15"));
                    s.put_cycle(&cycle).unwrap();
                }
                for site in [OWN_SITE, OTHER_SITE, THIRD_SITE, OTHER_ORG_SITE] {
                    let id: SiteId = site.parse().unwrap();
                    s.set_day_info(&id, d(SEED_DAY), Some("晴"), None, None).unwrap();
                    let roster = s.roster(&id).unwrap();
                    if let (Some(worker), Some(item)) =
                        (roster.workers.iter().find(|w| w.active), roster.work_items.first())
                    {
                        let e = sitesync_core::store::entry(
                            id.clone(),
                            d(SEED_DAY),
                            worker.id.clone(),
                            item.id.clone(),
                            WorkDays::parse("1.0").unwrap(),
                        );
                        s.add_labor(&e, None).unwrap();
                    }
                }
                [OWN_SITE, OTHER_SITE].map(|site| {
                    let roster = s.roster(&site.parse().unwrap()).unwrap();
                    (site, serde_json::to_value(roster.site).unwrap())
                })
            })
            .await;
        w.site_records.extend(records);
        w.server.state.notify_changes().await.unwrap();
        w.attach_photos().await;
        w
    }

    /// Head office's phone attaches a photo to `SEED_DAY` of our two sites, syncs the days and
    /// uploads the photos, as a phone does.
    async fn attach_photos(&mut self) {
        use sitesync_core::attachments::Target;
        use sitesync_core::store::attachments::AttachRequest;
        let office = self.tokens[&Office].clone();
        let mut phone =
            sitesync_tests::harness::phone(self._phone_dir.path(), "u-office-1", &self.server.url(), &office);
        sitesync_core::sync::client::sync_once(&mut phone).await.unwrap();
        for (i, site) in [OWN_SITE, OTHER_SITE].into_iter().enumerate() {
            let png = crate::blobs::png(16 + i as u32);
            let a = phone
                .attach(&AttachRequest {
                    site: site.parse().unwrap(),
                    date: d(SEED_DAY),
                    bytes: &png,
                    file_name: "photo.png",
                    caption: "authz",
                    target: Target::Day,
                    gps: None,
                    amend: None,
                })
                .unwrap();
            self.blobs.insert(site, (a.sha256.to_string(), png));
        }
        sitesync_core::sync::client::sync_once(&mut phone).await.unwrap();
        let report = sitesync_core::sync::blobs::sync_blobs(&mut phone, false).await.unwrap();
        assert_eq!(report.uploaded, 2, "{report:?}");
    }

    pub(super) fn token(&self, who: Who) -> Option<&str> {
        self.tokens.get(&who).map(String::as_str)
    }

    /// Whether a session id still signs in its holder (from the dashboard's own page).
    pub(super) async fn session_works(&self, session: &str) -> bool {
        let resp = self
            .api
            .request(reqwest::Method::GET, "/v1/session")
            .header("cookie", format!("{SESSION_COOKIE}={session}"))
            .send()
            .await
            .unwrap();
        resp.status() == 200
    }

    /// Signs in to the dashboard with a token, as its page does; returns the session id the cookie
    /// is set to, after checking the cookie's attributes.
    pub(super) async fn sign_in(&self, token: &str) -> String {
        let resp = self
            .api
            .request(reqwest::Method::POST, "/v1/session")
            .json(&json!({ "token": token }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "signing in");
        let cookie = resp.headers().get("set-cookie").unwrap().to_str().unwrap().to_string();
        let (pair, attributes) = cookie.split_once(';').unwrap();
        let session = pair.strip_prefix(&format!("{SESSION_COOKIE}=")).unwrap().to_string();
        assert!(
            session.len() == 64 && session.bytes().all(|b| b.is_ascii_hexdigit()) && !token.contains(&session),
            "a session id of 256 random bits, not the token: {session}"
        );
        for a in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
            assert!(attributes.contains(a), "{a} in {cookie}");
        }
        assert!(!attributes.contains("Secure"), "not Secure over plain HTTP: {cookie}");
        session
    }

    /// POSTs to the admin API and insists on 200.
    pub(super) async fn admin_ok(&self, token: &str, path: &str, body: Value) -> Value {
        let (status, answer) = Api::new(&self.server, token).post(path, &body).await;
        assert_eq!(status, 200, "POST {path} {body}: {answer}");
        answer
    }

    /// Enrolls a device for `user` through the admin API, as the callers `who`.
    pub(super) async fn enroll(&mut self, admin: &str, user: &str, who: &[Who]) {
        let answer = self
            .admin_ok(admin, "/v1/admin/devices", json!({ "user": user, "label": "authz" }))
            .await;
        let token = answer["token"].as_str().unwrap().to_string();
        let device = answer["device_id"].as_str().unwrap().to_string();
        assert_token_shape(&token);
        assert_eq!(device_of(&token), device);
        self.seen.push(token.clone());
        for w in who {
            self.tokens.insert(*w, token.clone());
            self.devices.insert(*w, device.clone());
        }
    }

    /// A fresh submitted day on `site`, for an approval.
    pub(super) async fn submitted_day(&mut self, site: &str) -> NaiveDate {
        self.days_made += 1;
        // Three transports, twelve callers, three routes: the first months of the year hold them all,
        // clear of the seeded November days.
        let date = d("2026-01-01").checked_add_days(Days::new(self.days_made)).unwrap();
        let id: SiteId = site.parse().unwrap();
        self.server
            .store(move |s| {
                s.set_day_info(&id, date, Some("阴"), None, None).unwrap();
                s.submit_day(&id, date).unwrap();
            })
            .await;
        date
    }

    /// A fresh worker added on site `site` (pending at head office, so confirmed or merged once), and
    /// a worker of the site's roster to merge it into.
    pub(super) async fn pending_worker(&mut self, site: &str) -> (String, String) {
        let id: SiteId = site.parse().unwrap();
        let made = self
            .server
            .store(move |s| {
                let roster = s.roster(&id).ok()?;
                let crew = roster.crews.first()?.id.clone();
                let into = roster.workers.iter().find(|w| !w.pending)?.id.to_string();
                let worker = s
                    .add_worker(&sitesync_core::store::NewWorker {
                        site: id,
                        name: "临时工".into(),
                        phone: String::new(),
                        trade: "labor".into(),
                        crew,
                        day_rate: sitesync_core::units::Fen::new("r", 30_000).unwrap(),
                        overtime_rate: sitesync_core::units::Fen::default(),
                        id_card: None,
                    })
                    .ok()?;
                Some((worker.to_string(), into))
            })
            .await;
        // A site without crews or workers: the call is refused before the worker is looked up.
        made.unwrap_or_else(|| ("w-0000000000000000".into(), "w-0001".into()))
    }

    /// Whether `worker` added on `site` is still pending (true for one that never existed).
    pub(super) async fn still_pending(&self, site: &str, worker: &str) -> bool {
        let (id, worker): (SiteId, String) = (site.parse().unwrap(), worker.to_string());
        self.server
            .store(move |s| {
                let Ok(roster) = s.roster(&id) else { return true };
                roster
                    .pending_workers
                    .iter()
                    .find(|p| p.id.as_str() == worker)
                    .is_none_or(|p| p.status == sitesync_core::roster::PendingStatus::Pending)
            })
            .await
    }

    pub(super) async fn day_status(&self, site: &str, date: NaiveDate) -> DayStatus {
        let id: SiteId = site.parse().unwrap();
        self.server.store(move |s| s.day(&id, date).unwrap().status).await
    }

    /// A fresh device of `TEMP_USER`, for a revocation.
    pub(super) async fn spare_device(&mut self) -> String {
        let (device, token) = self.server.device_with_id(TEMP_USER).await;
        self.seen.push(token);
        device
    }

    /// The credential database's tenancy and devices, to show a refused request changed nothing.
    pub(super) async fn credentials(&self) -> Vec<String> {
        self.server
            .sql(ServerDb::Credentials, |sql| {
                let mut out = Vec::new();
                for table in ["orgs", "sites", "users", "grants", "devices"] {
                    for row in sql.query(&format!("SELECT * FROM {table} ORDER BY 1, 2"), &[])? {
                        let values: Vec<String> = row.0.iter().map(|v| format!("{v:?}")).collect();
                        out.push(format!("{table}: {}", values.join(" | ")));
                    }
                }
                Ok(out)
            })
            .await
    }
}

/// The device id a token names (`sst_<device>_<secret>`).
pub(super) fn device_of(token: &str) -> String {
    format!("d-{}", token.split('_').nth(1).unwrap())
}

/// The random part of a token.
pub(super) fn secret_of(token: &str) -> &str {
    token.rsplit('_').next().unwrap()
}

/// `sst_<12 hex>_<64 hex>`: 256 random bits behind a device id.
pub(super) fn assert_token_shape(token: &str) {
    let parts: Vec<&str> = token.split('_').collect();
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    assert!(
        parts.len() == 3 && parts[0] == "sst" && hex(parts[1], 12) && hex(parts[2], 64),
        "unexpected token shape {token:?}"
    );
}
