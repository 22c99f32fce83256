//! Organisations, sites, users, devices and grants, in `server.sqlite3`; device tokens stored hashed.
//!
//! Every sync message re-reads the device from this database (one indexed lookup), so an admin
//! command run in another process — a new device, a revoked one — takes effect at the next message.
//!
//! Why one file: every credential table lives in one database with one migration path; the
//! queries are short and read best next to each other.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sitesync_core::ids::{DocId, SiteId};
use sitesync_core::store::sql::{Dialect, Row, Sql, Value, transaction};

use crate::error::{Error, Result};
use crate::storage::{self, Database, SqliteDatabase};

/// `server.sqlite3`'s schema steps; `PRAGMA user_version` counts those applied.
const SQLITE_MIGRATIONS: &[&str] = &[
    include_str!("../migrations/001_init.sql"),
    include_str!("../migrations/002_device_keys.sql"),
    include_str!("../migrations/003_refusals.sql"),
    include_str!("../migrations/004_browser_sessions.sql"),
    include_str!("../migrations/005_blob_claims.sql"),
    include_str!("../migrations/006_pay_periods.sql"),
    include_str!("../migrations/007_notify.sql"),
    include_str!("../migrations/008_device_health.sql"),
];

pub use sitesync_core::rules::Role;

mod certificates;
mod device_health;
mod notify;
mod pay_periods;
mod pii_keys;
pub use device_health::{DeviceHealth, Reported};
pub use notify::{Attempt, ChannelRow};
pub use pay_periods::{Paid, Stored, StoredPeriod};

/// Keys whose device [`AuthDb`] keeps in memory at most (emptied when full; 10,000 devices with a
/// key or two each fit).
const KEY_DEVICES_KEPT: usize = 65_536;

/// Parses a role name as the API and the CLI take it.
pub fn parse_role(s: &str) -> Result<Role> {
    Role::parse(s).ok_or_else(|| Error::BadRequest(format!("unknown role {s:?}")))
}

/// An authenticated device: who it is and where it may go.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct Principal {
    pub device_id: String,
    pub user_id: String,
    /// The user's name, as documents and reports show it.
    pub user_name: String,
    /// The user's org.
    pub org_id: String,
    /// The user's role.
    pub role: Role,
    /// Every site of the org (head office, admin, or an all-sites grant).
    pub all_sites: bool,
    /// Sites granted one by one.
    pub sites: Vec<String>,
}

impl Principal {
    /// The principal as the author of changes, for the write rules.
    pub fn author(&self) -> sitesync_core::rules::Author {
        sitesync_core::rules::Author {
            device: self.device_id.clone(),
            user_id: self.user_id.clone(),
            user_name: self.user_name.clone(),
            org: self.org_id.clone(),
            role: self.role,
            all_sites: self.all_sites,
            sites: self.sites.clone(),
            system: false,
        }
    }
}

/// A change the server refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct RefusalRow {
    /// When (RFC 3339).
    pub at: String,
    /// The device that pushed it.
    pub device: String,
    pub user_id: String,
    pub doc: String,
    /// The change hash.
    pub change: String,
    /// The rule's stable name.
    pub rule: String,
    /// Why, in words.
    pub reason: String,
}

/// A device as enrolled, for evidence files: who it belongs to and which keys sign for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct Enrolment {
    pub device: String,
    pub user_id: String,
    /// The user's name.
    pub user_name: String,
    /// The user's role.
    pub role: String,
    /// The user's org.
    pub org: String,
    /// The label given at enrolment.
    pub label: String,
    /// When it was enrolled (RFC 3339).
    pub enrolled_at: String,
    /// When it was revoked, if it was.
    pub revoked_at: Option<String>,
    /// Its registered public keys, hex.
    pub keys: Vec<String>,
}

/// Whether a principal may read and write a document (the rule lives in client-core, where phones
/// decide what they exchange with a peer by it).
pub use sitesync_core::rules::Access;

/// Why a credential was refused, and the device when it is known: for the audit trail (a caller
/// learns only "unauthorized").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What was wrong, in a few words.
    pub reason: &'static str,
    /// The device the credential belongs to or names, if it exists.
    pub device: Option<String>,
}

impl Refusal {
    fn new(reason: &'static str, device: Option<String>) -> Refusal {
        Refusal { reason, device }
    }
}

/// How long a dashboard sign-in lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrowserSessions {
    /// Ended after this long without a request.
    pub idle: std::time::Duration,
    /// Ended this long after signing in, however busy.
    pub lifetime: std::time::Duration,
}

impl Default for BrowserSessions {
    fn default() -> Self {
        BrowserSessions {
            idle: std::time::Duration::from_secs(12 * 3600),
            lifetime: std::time::Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// The credential database: SQLite's `server.sqlite3` or the shared PostgreSQL database.
pub struct AuthDb {
    /// Connections handed out per call (never across calls), so that no caller holds one while it
    /// waits for something else: requests authenticate while a batch of pushes is being stored.
    db: Arc<dyn Database>,
    /// The device of each key seen registered: a key belongs to one device forever
    /// ([`AuthDb::register_key`]), so a key found once is never read again. Only keys found are kept.
    key_devices: std::sync::Mutex<std::collections::HashMap<[u8; 32], String>>,
    /// Where org personal-data keys are kept when not in `meta` (`--pii-key-file`).
    pii_key_file: std::sync::OnceLock<PathBuf>,
}

impl std::fmt::Debug for AuthDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthDb")
    }
}

/// SHA-256 of a token, hex: what is stored and looked up.
fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// `n` random bytes from the OS, hex.
fn random_hex(n: usize) -> Result<String> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).map_err(|e| Error::Internal(format!("random: {e}")))?;
    Ok(hex::encode(buf))
}

/// The first column of every row, as text.
fn texts(rows: Vec<Row>) -> sitesync_core::Result<Vec<String>> {
    rows.iter().map(|r| r.text(0)).collect()
}

impl AuthDb {
    /// Opens (creating) `server.sqlite3` in the data directory and migrates it.
    pub fn open(dir: &Path) -> Result<AuthDb> {
        let path = dir.join("server.sqlite3");
        crate::files::private_database(&path)?;
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        for (i, sql) in SQLITE_MIGRATIONS.iter().enumerate().skip(found as usize) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
        }
        Ok(AuthDb::on(Arc::new(SqliteDatabase::new(conn))))
    }

    /// The credential store on a database whose schema is already migrated (PostgreSQL migrates
    /// once for every node, in [`crate::storage`]).
    pub fn on(db: Arc<dyn Database>) -> AuthDb {
        AuthDb {
            db,
            key_devices: Default::default(),
            pii_key_file: Default::default(),
        }
    }

    /// Runs `f` on one connection.
    fn with<T>(&self, f: impl FnOnce(&dyn Sql) -> sitesync_core::Result<T>) -> Result<T> {
        Ok(storage::with(&*self.db, f)?)
    }

    /// Runs one statement; returns the rows it changed.
    fn exec(&self, sql: &str, params: &[Value]) -> Result<u64> {
        self.with(|db| db.exec(sql, params))
    }

    /// The first row of a query, if any.
    fn first(&self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        self.with(|db| db.first(sql, params))
    }

    /// Every row of a query.
    fn rows(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        self.with(|db| db.query(sql, params))
    }

    /// The first column of the first row, as text, if there is a row.
    fn text(&self, sql: &str, params: &[Value]) -> Result<Option<String>> {
        Ok(self.first(sql, params)?.map(|r| r.text(0)).transpose()?)
    }

    /// A `COUNT(*)`.
    fn count(&self, sql: &str, params: &[Value]) -> Result<i64> {
        self.with(|db| db.one(sql, params)?.int(0))
    }

    /// The server's data epoch, created on first use. Two nodes starting at once agree: the first
    /// insert wins and both read it back.
    pub fn epoch(&self) -> Result<String> {
        // Read first: the epoch is read at every hello and written once.
        if let Some(epoch) = self.text("SELECT value FROM meta WHERE key = 'epoch'", &[])? {
            return Ok(epoch);
        }
        self.exec(
            "INSERT INTO meta (key, value) VALUES ('epoch', ?1) ON CONFLICT (key) DO NOTHING",
            &[random_hex(8)?.into()],
        )?;
        self.text("SELECT value FROM meta WHERE key = 'epoch'", &[])?
            .ok_or_else(|| Error::Internal("the epoch was not stored".into()))
    }

    /// Starts a new data epoch (done to every backup copy).
    pub fn renew_epoch(&self) -> Result<String> {
        let epoch = random_hex(8)?;
        self.exec(
            "INSERT INTO meta (key, value) VALUES ('epoch', ?1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[epoch.as_str().into()],
        )?;
        Ok(epoch)
    }

    /// The key worker links are signed with (32 random bytes, hex), created on first use in `meta`
    /// like the epoch: every node of the server reads the same key, and it never leaves the database.
    pub fn worker_link_key(&self) -> Result<String> {
        const KEY: &str = "worker_link_key";
        if let Some(key) = self.text("SELECT value FROM meta WHERE key = ?1", &[KEY.into()])? {
            return Ok(key);
        }
        self.exec(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
            &[KEY.into(), random_hex(32)?.into()],
        )?;
        self.text("SELECT value FROM meta WHERE key = ?1", &[KEY.into()])?
            .ok_or_else(|| Error::Internal("the worker link key was not stored".into()))
    }

    /// The generation of a worker's links (0 until first revoked): a link names the generation it
    /// was made in and works only while it is still the current one.
    pub fn worker_link_generation(&self, site: &str, worker: &str) -> Result<u64> {
        let key = format!("worker_link_gen:{site}:{worker}");
        Ok(self
            .text("SELECT value FROM meta WHERE key = ?1", &[key.into()])?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// Revokes every link made so far for a worker of a site; returns the new generation.
    pub fn revoke_worker_links(&self, site: &str, worker: &str) -> Result<u64> {
        let next = self.worker_link_generation(site, worker)?.saturating_add(1);
        self.exec(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[
                format!("worker_link_gen:{site}:{worker}").into(),
                next.to_string().into(),
            ],
        )?;
        Ok(next)
    }

    /// Whether no user exists yet (a first start).
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.count("SELECT COUNT(*) FROM users", &[])? == 0)
    }

    /// Whether any admin has an active device.
    pub fn has_admin_device(&self) -> Result<bool> {
        let n = self.count(
            "SELECT COUNT(*) FROM devices d JOIN users u ON u.user_id = d.user_id
             WHERE u.role = 'admin' AND d.revoked_at IS NULL",
            &[],
        )?;
        Ok(n > 0)
    }

    /// Creates or renames an org.
    pub fn put_org(&self, org_id: &str, name: &str) -> Result<()> {
        self.exec(
            "INSERT INTO orgs (org_id, name) VALUES (?1, ?2) ON CONFLICT (org_id) DO UPDATE SET name = excluded.name",
            &[org_id.into(), name.into()],
        )?;
        Ok(())
    }

    /// Creates or updates a site of an org; a site never moves between orgs.
    pub fn put_site(&self, org_id: &str, site_id: &SiteId, name: &str) -> Result<()> {
        if let Some(existing) = self.site_org(site_id.as_str())?
            && existing != org_id
        {
            return Err(Error::Conflict(format!("site {site_id} belongs to another org")));
        }
        self.exec(
            "INSERT INTO sites (site_id, org_id, name) VALUES (?1, ?2, ?3)
             ON CONFLICT (site_id) DO UPDATE SET name = excluded.name",
            &[site_id.as_str().into(), org_id.into(), name.into()],
        )?;
        Ok(())
    }

    /// An org's name (what a printed pay sheet names as the company).
    pub fn org_name(&self, org_id: &str) -> Result<Option<String>> {
        self.text("SELECT name FROM orgs WHERE org_id = ?1", &[org_id.into()])
    }

    /// The org a site belongs to.
    pub fn site_org(&self, site_id: &str) -> Result<Option<String>> {
        self.text("SELECT org_id FROM sites WHERE site_id = ?1", &[site_id.into()])
    }

    /// Creates or updates a user.
    pub fn put_user(&self, org_id: &str, user_id: &str, name: &str, role: Role, all_sites: bool) -> Result<()> {
        if user_id.is_empty() || user_id.len() > 100 {
            return Err(Error::BadRequest("a user id has 1 to 100 characters".into()));
        }
        if self.user_org(user_id)?.is_some_and(|o| o != org_id) {
            return Err(Error::Conflict(format!("user {user_id} belongs to another org")));
        }
        self.exec(
            "INSERT INTO users (user_id, org_id, name, role, all_sites) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (user_id) DO UPDATE SET name = excluded.name, role = excluded.role, all_sites = excluded.all_sites",
            &[
                user_id.into(),
                org_id.into(),
                name.into(),
                role.as_str().into(),
                all_sites.into(),
            ],
        )?;
        Ok(())
    }

    /// Grants a user a site of their own org.
    pub fn grant(&self, user_id: &str, site_id: &str) -> Result<()> {
        let user_org = self
            .user_org(user_id)?
            .ok_or_else(|| Error::NotFound(format!("user {user_id}")))?;
        let site_org = self
            .site_org(site_id)?
            .ok_or_else(|| Error::NotFound(format!("site {site_id}")))?;
        if user_org != site_org {
            return Err(Error::Forbidden(
                "a user can only be granted sites of their own org".into(),
            ));
        }
        self.exec(
            "INSERT INTO grants (user_id, site_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            &[user_id.into(), site_id.into()],
        )?;
        Ok(())
    }

    /// The org of a user.
    pub fn user_org(&self, user_id: &str) -> Result<Option<String>> {
        self.text("SELECT org_id FROM users WHERE user_id = ?1", &[user_id.into()])
    }

    /// The org of a device's user.
    pub fn device_org(&self, device_id: &str) -> Result<Option<String>> {
        self.text(
            "SELECT u.org_id FROM devices d JOIN users u ON u.user_id = d.user_id WHERE d.device_id = ?1",
            &[device_id.into()],
        )
    }

    /// Enrolls a device for a user; returns `(device id, token)`. The token is shown only here.
    pub fn add_device(&self, user_id: &str, label: &str) -> Result<(String, String)> {
        if self.user_org(user_id)?.is_none() {
            return Err(Error::NotFound(format!("user {user_id}")));
        }
        let device_id = format!("d-{}", random_hex(6)?);
        let token = format!("sst_{}_{}", &device_id[2..], random_hex(32)?);
        self.exec(
            "INSERT INTO devices (device_id, user_id, token_hash, label, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            &[
                device_id.as_str().into(),
                user_id.into(),
                token_hash(&token).into(),
                label.into(),
                chrono::Utc::now().to_rfc3339().into(),
            ],
        )?;
        Ok((device_id, token))
    }

    /// Revokes a device: its token is refused from its next message on, and its dashboard sessions
    /// end now.
    pub fn revoke_device(&self, device_id: &str) -> Result<()> {
        let revoked = self.with(|db| {
            transaction(db, true, |tx| {
                let n = tx.exec(
                    "UPDATE devices SET revoked_at = ?2 WHERE device_id = ?1 AND revoked_at IS NULL",
                    &[device_id.into(), chrono::Utc::now().to_rfc3339().into()],
                )?;
                tx.exec("DELETE FROM browser_sessions WHERE device_id = ?1", &[device_id.into()])?;
                if n > 0 && tx.dialect() == Dialect::Postgres {
                    // Every node closes the device's live connections (delivered at commit).
                    tx.exec("SELECT pg_notify('sitesync_revoked', ?1)", &[device_id.into()])?;
                }
                Ok(n > 0)
            })
        })?;
        if !revoked {
            return Err(Error::NotFound(format!("active device {device_id}")));
        }
        Ok(())
    }

    /// Devices revoked at or after `since` (RFC 3339, as `revoked_at` is written): what a node that
    /// was not listening for revocations may have missed.
    pub fn revoked_since(&self, since: &str) -> Result<Vec<String>> {
        let rows = self.rows(
            "SELECT device_id FROM devices WHERE revoked_at >= ?1 ORDER BY device_id",
            &[since.into()],
        )?;
        Ok(rows.iter().map(|r| r.text(0)).collect::<sitesync_core::Result<_>>()?)
    }

    /// The principal behind a bearer token, if the token is known and not revoked.
    pub fn authenticate(&self, token: &str) -> Result<Option<Principal>> {
        Ok(self.check_token(token)?.ok())
    }

    /// The principal behind a bearer token, or why the token is refused.
    pub fn check_token(&self, token: &str) -> Result<std::result::Result<Principal, Refusal>> {
        let row = self.first(
            "SELECT device_id, CASE WHEN revoked_at IS NULL THEN 0 ELSE 1 END FROM devices WHERE token_hash = ?1",
            &[token_hash(token).into()],
        )?;
        let row = row.map(|r| Ok::<_, sitesync_core::Error>((r.text(0)?, r.int(1)? != 0)));
        match row.transpose()? {
            Some((device, true)) => Ok(Err(Refusal::new("revoked device", Some(device)))),
            Some((device, false)) => Ok(self
                .principal(&device)?
                .ok_or_else(|| Refusal::new("revoked device", Some(device)))),
            None => {
                // A token names its device (`sst_<id>_<secret>`): say which, if it exists.
                let named = named_device(token);
                let known = match &named {
                    Some(d) => self.device_org(d)?.is_some(),
                    None => false,
                };
                Ok(Err(if known {
                    Refusal::new("wrong token for the device", named)
                } else {
                    Refusal::new("unknown token", None)
                }))
            }
        }
    }

    /// Starts a dashboard session for an active device; returns the session id (64 hex digits) for
    /// the cookie. Only its hash is stored. Ended sessions are cleared out on the way.
    pub fn open_browser_session(&self, device_id: &str, now: i64, policy: BrowserSessions) -> Result<String> {
        let id = random_hex(32)?;
        let idle = policy.idle.as_secs() as i64;
        self.exec(
            "DELETE FROM browser_sessions WHERE expires_at <= ?1 OR last_seen + ?2 <= ?1",
            &[now.into(), idle.into()],
        )?;
        self.exec(
            "INSERT INTO browser_sessions (id_hash, device_id, created_at, last_seen, expires_at)
             VALUES (?1, ?2, ?3, ?3, ?4)",
            &[
                token_hash(&id).into(),
                device_id.into(),
                now.into(),
                now.saturating_add(policy.lifetime.as_secs() as i64).into(),
            ],
        )?;
        Ok(id)
    }

    /// The principal of a dashboard session, or why it is refused (unknown, ended, its device
    /// revoked). A session in use has its idle clock reset (written at most once a minute).
    pub fn check_browser_session(
        &self,
        id: &str,
        now: i64,
        policy: BrowserSessions,
    ) -> Result<std::result::Result<Principal, Refusal>> {
        let hash = token_hash(id);
        let row = self.first(
            "SELECT device_id, last_seen, expires_at FROM browser_sessions WHERE id_hash = ?1",
            &[hash.as_str().into()],
        )?;
        let Some(row) = row else {
            return Ok(Err(Refusal::new("unknown session", None)));
        };
        let (device, last_seen, expires_at) = (row.text(0)?, row.int(1)?, row.int(2)?);
        let idle = policy.idle.as_secs() as i64;
        if now >= expires_at || now >= last_seen.saturating_add(idle) {
            self.exec("DELETE FROM browser_sessions WHERE id_hash = ?1", &[hash.into()])?;
            return Ok(Err(Refusal::new("expired session", Some(device))));
        }
        let Some(who) = self.principal(&device)? else {
            return Ok(Err(Refusal::new("revoked device", Some(device))));
        };
        if now - last_seen >= (idle / 4).clamp(1, 60) {
            self.exec(
                "UPDATE browser_sessions SET last_seen = ?2 WHERE id_hash = ?1",
                &[hash.into(), now.into()],
            )?;
        }
        Ok(Ok(who))
    }

    /// Ends a dashboard session; returns its device, if the session existed.
    pub fn close_browser_session(&self, id: &str) -> Result<Option<String>> {
        self.text(
            "DELETE FROM browser_sessions WHERE id_hash = ?1 RETURNING device_id",
            &[token_hash(id).into()],
        )
    }

    /// The principal of an active device (re-checked at every sync message).
    pub fn principal(&self, device_id: &str) -> Result<Option<Principal>> {
        let user = self.text(
            "SELECT user_id FROM devices WHERE device_id = ?1 AND revoked_at IS NULL",
            &[device_id.into()],
        )?;
        match user {
            Some(user) => self.user_principal(&user, device_id),
            None => Ok(None),
        }
    }

    /// What a user may read and write, as a principal on `device_id` (the grants of the user, not of
    /// a device: "" when no device is involved, as for a key result's owner).
    pub fn user_principal(&self, user_id: &str, device_id: &str) -> Result<Option<Principal>> {
        let found = self.with(|db| {
            let Some(user) = db.first(
                "SELECT org_id, role, all_sites, name FROM users WHERE user_id = ?1",
                &[user_id.into()],
            )?
            else {
                return Ok(None);
            };
            let sites = texts(db.query(
                "SELECT site_id FROM grants WHERE user_id = ?1 ORDER BY site_id",
                &[user_id.into()],
            )?)?;
            Ok(Some((
                user.text(0)?,
                user.text(1)?,
                user.int(2)? != 0,
                user.text(3)?,
                sites,
            )))
        })?;
        let Some((org_id, role, all, user_name, sites)) = found else {
            return Ok(None);
        };
        let role = parse_role(&role)?;
        Ok(Some(Principal {
            device_id: device_id.to_string(),
            user_id: user_id.to_string(),
            user_name,
            org_id,
            all_sites: all || matches!(role, Role::HeadOffice | Role::Admin),
            role,
            sites,
        }))
    }

    /// Registers a store's public key to a device. A key already registered to another device is
    /// refused: one key, one device, forever.
    pub fn register_key(&self, device_id: &str, key: &[u8; 32]) -> Result<()> {
        if self.key_device(key)?.is_none() {
            // Two nodes registering one key at once: the first insert wins, the check below sees it.
            self.exec(
                "INSERT INTO device_keys (key, fingerprint, device_id, registered_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (key) DO NOTHING",
                &[
                    key[..].into(),
                    sitesync_core::signing::fingerprint(key)[..].into(),
                    device_id.into(),
                    chrono::Utc::now().to_rfc3339().into(),
                ],
            )?;
        }
        match self.key_device(key)? {
            Some(d) if d == device_id => Ok(()),
            Some(_) => Err(Error::Conflict("this signing key belongs to another device".into())),
            None => Err(Error::Internal("a registered key was not stored".into())),
        }
    }

    /// The device a key is registered to.
    pub fn key_device(&self, key: &[u8; 32]) -> Result<Option<String>> {
        if let Some(device) = self.key_devices.lock().unwrap_or_else(|e| e.into_inner()).get(key) {
            return Ok(Some(device.clone()));
        }
        let device = self.text("SELECT device_id FROM device_keys WHERE key = ?1", &[key[..].into()])?;
        if let Some(d) = &device {
            let mut m = self.key_devices.lock().unwrap_or_else(|e| e.into_inner());
            if m.len() >= KEY_DEVICES_KEPT {
                m.clear();
            }
            m.insert(*key, d.clone());
        }
        Ok(device)
    }

    /// Which of `devices` are active now: enrolled to a user that exists, not revoked (what
    /// [`AuthDb::principal`] answers for). One query per 500 devices.
    pub fn active_devices(&self, devices: &[String]) -> Result<std::collections::HashSet<String>> {
        let mut out = std::collections::HashSet::new();
        for chunk in devices.chunks(500) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("?{i}")).collect();
            let sql = format!(
                "SELECT d.device_id FROM devices d JOIN users u ON u.user_id = d.user_id
                 WHERE d.revoked_at IS NULL AND d.device_id IN ({})",
                marks.join(", ")
            );
            let params: Vec<Value> = chunk.iter().map(|d| d.as_str().into()).collect();
            for row in self.rows(&sql, &params)? {
                out.insert(row.text(0)?);
            }
        }
        Ok(out)
    }

    /// Whether some registered key has this fingerprint (so an actor starting with it was made under
    /// a known key, and only that key may sign its changes).
    pub fn fingerprint_known(&self, fingerprint: &[u8]) -> Result<bool> {
        Ok(self
            .first(
                "SELECT 1 FROM device_keys WHERE fingerprint = ?1 LIMIT 1",
                &[fingerprint.into()],
            )?
            .is_some())
    }

    /// The device an older store's actor is bound to, binding it to `device_id` on first sight.
    pub fn bind_actor(&self, actor: &str, device_id: &str) -> Result<String> {
        // Read first: a write (even one that ignores a conflict) costs a commit, and an actor is
        // bound once and read at every change after.
        let bound = self.text("SELECT device_id FROM actors WHERE actor = ?1", &[actor.into()])?;
        if let Some(device) = bound {
            return Ok(device);
        }
        self.exec(
            "INSERT INTO actors (actor, device_id, bound_at) VALUES (?1, ?2, ?3) ON CONFLICT (actor) DO NOTHING",
            &[actor.into(), device_id.into(), chrono::Utc::now().to_rfc3339().into()],
        )?;
        self.text("SELECT device_id FROM actors WHERE actor = ?1", &[actor.into()])?
            .ok_or_else(|| Error::Internal("a bound actor was not stored".into()))
    }

    /// The signing keys a device needs to name the authors of what it may read: every device of
    /// its org for one that reads every site; otherwise the devices of its own user, of users who
    /// share a site with it, and of head office and admins, who write everywhere. Always the
    /// server's own keys. Revoked devices stay: their past changes still need names.
    ///
    /// Decision (2026-11-30): the whole org's directory used to go to every device in its
    /// `Welcome`. With 10,000 devices that is 6,500 keys, about 650 KB a hello and 21 ms of server
    /// CPU, and the socket kept a buffer that size for every idle device (316 KiB each). A
    /// foreman's phone holds its sites' days and the org's OKRs, so what it lacks is only the
    /// names of other sites' users who check in on a key result; their changes still verify,
    /// and `history` shows them by device.
    pub fn directory(&self, who: &Principal) -> Result<Vec<sitesync_core::sync::protocol::DirectoryEntry>> {
        let everyone = i64::from(who.all_sites);
        let rows = self.rows(
            "SELECT k.key, k.device_id, u.user_id, u.name, u.role, k.registered_at
             FROM users u JOIN devices d ON d.user_id = u.user_id JOIN device_keys k ON k.device_id = d.device_id
             WHERE u.org_id = ?1 AND (?3 = 1 OR u.user_id = ?2 OR u.all_sites = 1
                 OR u.role IN ('head_office', 'admin')
                 OR EXISTS (SELECT 1 FROM grants mine JOIN grants theirs ON theirs.site_id = mine.site_id
                            WHERE mine.user_id = ?2 AND theirs.user_id = u.user_id))
             UNION ALL
             SELECT key, device_id, 'system', 'server', 'admin', registered_at FROM device_keys
             WHERE device_id = 'server'
             ORDER BY 2, 6",
            &[who.org_id.as_str().into(), who.user_id.as_str().into(), everyone.into()],
        )?;
        let mut out = Vec::new();
        for row in rows {
            let Ok(key) = <[u8; 32]>::try_from(row.bytes(0)?.as_slice()) else {
                continue;
            };
            out.push(sitesync_core::sync::protocol::DirectoryEntry {
                key,
                device: row.text(1)?,
                user_id: row.text(2)?,
                user_name: row.text(3)?,
                role: parse_role(&row.text(4)?)?,
            });
        }
        Ok(out)
    }

    /// Every user of an org: id → (id, name), for naming authors.
    pub fn user_names(&self, org_id: &str) -> Result<std::collections::HashMap<String, (String, String)>> {
        let rows = self.rows("SELECT user_id, name FROM users WHERE org_id = ?1", &[org_id.into()])?;
        let mut out = std::collections::HashMap::new();
        for row in rows {
            let id = row.text(0)?;
            out.insert(id.clone(), (id, row.text(1)?));
        }
        Ok(out)
    }

    /// A device's enrolment: its user, label, when it was enrolled and revoked.
    pub fn enrolment(&self, device_id: &str) -> Result<Option<Enrolment>> {
        let row = self.first(
            "SELECT d.device_id, d.user_id, u.name, u.role, u.org_id, d.label, d.created_at, d.revoked_at
             FROM devices d JOIN users u ON u.user_id = d.user_id WHERE d.device_id = ?1",
            &[device_id.into()],
        )?;
        let Some(r) = row else {
            return Ok(None);
        };
        Ok(Some(Enrolment {
            device: r.text(0)?,
            user_id: r.text(1)?,
            user_name: r.text(2)?,
            role: r.text(3)?,
            org: r.text(4)?,
            label: r.text(5)?,
            enrolled_at: r.text(6)?,
            revoked_at: r.opt_text(7)?,
            keys: self.device_keys(device_id)?,
        }))
    }

    /// The devices of a user, revoked ones included.
    pub fn user_devices(&self, user_id: &str) -> Result<Vec<String>> {
        let rows = self.rows(
            "SELECT device_id FROM devices WHERE user_id = ?1 ORDER BY created_at",
            &[user_id.into()],
        )?;
        Ok(texts(rows)?)
    }

    /// The keys registered to a device, hex, oldest first.
    pub fn device_keys(&self, device_id: &str) -> Result<Vec<String>> {
        let rows = self.rows(
            "SELECT key FROM device_keys WHERE device_id = ?1 ORDER BY registered_at, key",
            &[device_id.into()],
        )?;
        let mut out = Vec::new();
        for row in rows {
            out.push(hex::encode(row.bytes(0)?));
        }
        Ok(out)
    }

    /// Records changes refused from a device: `(document, change hash, rule, reason)`.
    pub fn record_refusals(&self, who: &Principal, rows: &[(String, String, String, String)]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let now = chrono::Utc::now().to_rfc3339();
        self.with(|db| {
            transaction(db, true, |tx| {
                for (doc, change, rule, reason) in rows {
                    tx.exec(
                        "INSERT INTO refusals (at, org_id, device_id, user_id, doc_id, change, rule, reason)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                        &[
                            now.as_str().into(),
                            who.org_id.as_str().into(),
                            who.device_id.as_str().into(),
                            who.user_id.as_str().into(),
                            doc.into(),
                            change.into(),
                            rule.into(),
                            reason.into(),
                        ],
                    )?;
                }
                Ok(())
            })
        })
    }

    /// The latest refusals of an org, newest first.
    pub fn refusals(&self, org_id: &str, limit: u32) -> Result<Vec<RefusalRow>> {
        let rows = self.rows(
            "SELECT at, device_id, user_id, doc_id, change, rule, reason FROM refusals
             WHERE org_id = ?1 ORDER BY seq DESC LIMIT ?2",
            &[org_id.into(), i64::from(limit).into()],
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(RefusalRow {
                at: r.text(0)?,
                device: r.text(1)?,
                user_id: r.text(2)?,
                doc: r.text(3)?,
                change: r.text(4)?,
                rule: r.text(5)?,
                reason: r.text(6)?,
            });
        }
        Ok(out)
    }

    /// The users of an org that a free-text name designates: the user with that id, and every user
    /// with that name.
    pub fn users_named(&self, org_id: &str, name: &str) -> Result<Vec<String>> {
        let rows = self.rows(
            "SELECT user_id FROM users WHERE org_id = ?1 AND (user_id = ?2 OR name = ?2) ORDER BY user_id",
            &[org_id.into(), name.into()],
        )?;
        Ok(texts(rows)?)
    }

    /// What a principal may do with a document.
    pub fn access(&self, who: &Principal, doc: &DocId) -> Result<Access> {
        let org = match doc {
            DocId::Site(site) | DocId::Day(site, _) => self.site_org(site.as_str())?,
            DocId::Okr(..) => None,
        };
        Ok(access_in(who, doc, org.as_deref()))
    }

    /// Records that `device` uploaded the whole of blob `sha256` for document `doc` (a second
    /// upload for the same document changes nothing).
    pub fn claim_blob(&self, sha256: &str, doc: &str, device: &str, size: u64) -> Result<()> {
        self.exec(
            "INSERT INTO blob_claims (sha256, doc_id, device_id, size_bytes, claimed_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (sha256, doc_id) DO NOTHING",
            &[
                sha256.into(),
                doc.into(),
                device.into(),
                i64::try_from(size).unwrap_or(i64::MAX).into(),
                chrono::Utc::now().timestamp_millis().into(),
            ],
        )?;
        Ok(())
    }

    /// The documents a blob was uploaded for.
    pub fn blob_claims(&self, sha256: &str) -> Result<Vec<String>> {
        let rows = self.rows(
            "SELECT doc_id FROM blob_claims WHERE sha256 = ?1 ORDER BY doc_id",
            &[sha256.into()],
        )?;
        Ok(texts(rows)?)
    }

    /// Every site of an org, for head office's document list.
    pub fn org_sites(&self, org_id: &str) -> Result<Vec<String>> {
        let rows = self.rows(
            "SELECT site_id FROM sites WHERE org_id = ?1 ORDER BY site_id",
            &[org_id.into()],
        )?;
        Ok(texts(rows)?)
    }

    /// Everything the server believes a device holds: document id to heads.
    pub fn device_docs(&self, device_id: &str) -> Result<std::collections::HashMap<String, Vec<String>>> {
        let rows = self.rows(
            "SELECT doc_id, heads FROM device_docs WHERE device_id = ?1",
            &[device_id.into()],
        )?;
        let mut out = std::collections::HashMap::new();
        for row in rows {
            let text = row.text(1)?;
            out.insert(
                row.text(0)?,
                text.split(',').filter(|h| !h.is_empty()).map(str::to_string).collect(),
            );
        }
        Ok(out)
    }

    /// Records, in one transaction, what devices hold: `(device, document, heads)`.
    pub fn set_device_heads_many(&self, rows: &[(String, String, Vec<String>)]) -> Result<()> {
        self.with(|db| {
            transaction(db, true, |tx| {
                for (device, doc, heads) in rows {
                    let mut sorted = heads.clone();
                    sorted.sort();
                    tx.exec(
                        "INSERT INTO device_docs (device_id, doc_id, heads) VALUES (?1, ?2, ?3)
                         ON CONFLICT (device_id, doc_id) DO UPDATE SET heads = excluded.heads",
                        &[device.into(), doc.into(), sorted.join(",").into()],
                    )?;
                }
                Ok(())
            })
        })
    }

    /// Forgets what the server believed a device holds (it starts from an empty store: a new install
    /// with an old token, a wiped phone).
    pub fn forget_device_docs(&self, device_id: &str) -> Result<()> {
        self.exec("DELETE FROM device_docs WHERE device_id = ?1", &[device_id.into()])?;
        Ok(())
    }
}

/// The device id a token names (`sst_<12 hex>_<secret>`), if it has that shape.
fn named_device(token: &str) -> Option<String> {
    let mut parts = token.split('_');
    let (Some("sst"), Some(id), Some(_)) = (parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    (id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| format!("d-{id}"))
}

/// What a principal may do with a document, given the org of the document's site (`None` for an
/// unknown site; ignored for OKR documents, which name their org).
pub fn access_in(who: &Principal, doc: &DocId, site_org: Option<&str>) -> Access {
    sitesync_core::rules::access(&who.org_id, who.role, who.all_sites, &who.sites, doc, site_org)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db_with_device() -> (tempfile::TempDir, AuthDb, String, String) {
        let dir = tempfile::tempdir().unwrap();
        let db = AuthDb::open(dir.path()).unwrap();
        db.put_org("o", "org").unwrap();
        db.put_user("o", "u", "user", Role::HeadOffice, true).unwrap();
        let (device, token) = db.add_device("u", "test").unwrap();
        (dir, db, device, token)
    }

    const POLICY: BrowserSessions = BrowserSessions {
        idle: std::time::Duration::from_secs(600),
        lifetime: std::time::Duration::from_secs(3600),
    };

    #[test]
    fn a_browser_session_ends_when_idle_at_its_lifetime_at_sign_out_and_at_revocation() {
        let (_dir, db, device, _) = db_with_device();
        let check = |id: &str, now| db.check_browser_session(id, now, POLICY).unwrap();

        // Idle: in use every 9 minutes it lives on; 10 minutes unused end it.
        let id = db.open_browser_session(&device, 1_000, POLICY).unwrap();
        assert_eq!(id.len(), 64);
        for now in [1_540, 2_080, 2_620] {
            assert_eq!(check(&id, now).unwrap().device_id, device);
        }
        let refused = check(&id, 3_220).unwrap_err();
        assert_eq!(refused, Refusal::new("expired session", Some(device.clone())));
        assert_eq!(
            check(&id, 3_221).unwrap_err().reason,
            "unknown session",
            "an ended session is gone"
        );

        // The lifetime: however busy, an hour after signing in.
        let id = db.open_browser_session(&device, 10_000, POLICY).unwrap();
        let mut now = 10_000;
        while now + 300 < 13_600 {
            now += 300;
            assert!(check(&id, now).is_ok(), "{now}");
        }
        assert_eq!(check(&id, 13_600).unwrap_err().reason, "expired session");

        // Sign-out.
        let id = db.open_browser_session(&device, 20_000, POLICY).unwrap();
        assert_eq!(db.close_browser_session(&id).unwrap(), Some(device.clone()));
        assert_eq!(check(&id, 20_001).unwrap_err().reason, "unknown session");

        // Revocation deletes the device's sessions.
        let id = db.open_browser_session(&device, 30_000, POLICY).unwrap();
        db.revoke_device(&device).unwrap();
        assert_eq!(check(&id, 30_001).unwrap_err().reason, "unknown session");
        let n = db.count("SELECT COUNT(*) FROM browser_sessions", &[]).unwrap();
        assert_eq!(n, 0);
    }

    #[test]
    fn a_refused_token_names_its_device_only_when_it_exists() {
        let (_dir, db, device, token) = db_with_device();
        assert_eq!(db.check_token(&token).unwrap().unwrap().device_id, device);
        let secret_changed = format!("{}0", &token[..token.len() - 1]);
        let wrong = if secret_changed == token {
            format!("{}1", &token[..token.len() - 1])
        } else {
            secret_changed
        };
        assert_eq!(
            db.check_token(&wrong).unwrap().unwrap_err(),
            Refusal::new("wrong token for the device", Some(device.clone()))
        );
        let stranger = "sst_0badc0ffee00_00";
        assert_eq!(
            db.check_token(stranger).unwrap().unwrap_err(),
            Refusal::new("unknown token", None)
        );
        db.revoke_device(&device).unwrap();
        assert_eq!(
            db.check_token(&token).unwrap().unwrap_err(),
            Refusal::new("revoked device", Some(device))
        );
    }
}
