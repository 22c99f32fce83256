//! Organisations, sites, users, devices and grants, in `server.sqlite3`; device tokens stored hashed.
//!
//! Every sync message re-reads the device from this database (one indexed lookup), so an admin
//! command run in another process — a new device, a revoked one — takes effect at the next message.
//!
//! Why one file: every credential table lives in one database with one migration path; the
//! queries are short and read best next to each other.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sitesync_core::ids::{DocId, SiteId};

use crate::error::{Error, Result};

const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/001_init.sql"),
    include_str!("../migrations/002_device_keys.sql"),
    include_str!("../migrations/003_refusals.sql"),
    include_str!("../migrations/004_browser_sessions.sql"),
];

pub use sitesync_core::rules::Role;

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

/// Whether a principal may read and write a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub enum Access {
    None,
    Read,
    /// Read and write.
    Write,
}

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

/// The credential database.
pub struct AuthDb {
    /// One connection, locked per call (never across calls), so that no caller holds it while it
    /// waits for something else: requests authenticate while a batch of pushes is being stored.
    conn: Mutex<Connection>,
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

impl AuthDb {
    /// The connection, for one call. A panic while it was held leaves nothing half-written (every
    /// write is one statement or one transaction), so a poisoned lock is taken over.
    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Opens (creating) the database in the data directory and migrates it.
    pub fn open(dir: &Path) -> Result<AuthDb> {
        let path = dir.join("server.sqlite3");
        crate::files::private_database(&path)?;
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
        }
        Ok(AuthDb { conn: Mutex::new(conn) })
    }

    /// The server's data epoch, created on first use.
    pub fn epoch(&self) -> Result<String> {
        let found: Option<String> = self
            .conn()
            .query_row("SELECT value FROM meta WHERE key = 'epoch'", [], |r| r.get(0))
            .optional()?;
        match found {
            Some(e) => Ok(e),
            None => self.renew_epoch(),
        }
    }

    /// Starts a new data epoch (done to every backup copy).
    pub fn renew_epoch(&self) -> Result<String> {
        let epoch = random_hex(8)?;
        self.conn().execute(
            "INSERT INTO meta (key, value) VALUES ('epoch', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [&epoch],
        )?;
        Ok(epoch)
    }

    /// Whether no user exists yet (a first start).
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self
            .conn()
            .query_row("SELECT COUNT(*) FROM users", [], |r| r.get::<_, i64>(0))?
            == 0)
    }

    /// Whether any admin has an active device.
    pub fn has_admin_device(&self) -> Result<bool> {
        let n: i64 = self.conn().query_row(
            "SELECT COUNT(*) FROM devices d JOIN users u ON u.user_id = d.user_id
             WHERE u.role = 'admin' AND d.revoked_at IS NULL",
            [],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    /// Creates or renames an org.
    pub fn put_org(&self, org_id: &str, name: &str) -> Result<()> {
        self.conn().execute(
            "INSERT INTO orgs (org_id, name) VALUES (?1, ?2) ON CONFLICT(org_id) DO UPDATE SET name = excluded.name",
            [org_id, name],
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
        self.conn().execute(
            "INSERT INTO sites (site_id, org_id, name) VALUES (?1, ?2, ?3)
             ON CONFLICT(site_id) DO UPDATE SET name = excluded.name",
            params![site_id.as_str(), org_id, name],
        )?;
        Ok(())
    }

    /// The org a site belongs to.
    pub fn site_org(&self, site_id: &str) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row("SELECT org_id FROM sites WHERE site_id = ?1", [site_id], |r| r.get(0))
            .optional()?)
    }

    /// Creates or updates a user.
    pub fn put_user(&self, org_id: &str, user_id: &str, name: &str, role: Role, all_sites: bool) -> Result<()> {
        if user_id.is_empty() || user_id.len() > 100 {
            return Err(Error::BadRequest("a user id has 1 to 100 characters".into()));
        }
        let org: Option<String> = self
            .conn()
            .query_row("SELECT org_id FROM users WHERE user_id = ?1", [user_id], |r| r.get(0))
            .optional()?;
        if org.is_some_and(|o| o != org_id) {
            return Err(Error::Conflict(format!("user {user_id} belongs to another org")));
        }
        self.conn().execute(
            "INSERT INTO users (user_id, org_id, name, role, all_sites) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(user_id) DO UPDATE SET name = excluded.name, role = excluded.role, all_sites = excluded.all_sites",
            params![user_id, org_id, name, role.as_str(), all_sites],
        )?;
        Ok(())
    }

    /// Grants a user a site of their own org.
    pub fn grant(&self, user_id: &str, site_id: &str) -> Result<()> {
        let user_org: Option<String> = self
            .conn()
            .query_row("SELECT org_id FROM users WHERE user_id = ?1", [user_id], |r| r.get(0))
            .optional()?;
        let user_org = user_org.ok_or_else(|| Error::NotFound(format!("user {user_id}")))?;
        let site_org = self
            .site_org(site_id)?
            .ok_or_else(|| Error::NotFound(format!("site {site_id}")))?;
        if user_org != site_org {
            return Err(Error::Forbidden(
                "a user can only be granted sites of their own org".into(),
            ));
        }
        self.conn().execute(
            "INSERT OR IGNORE INTO grants (user_id, site_id) VALUES (?1, ?2)",
            [user_id, site_id],
        )?;
        Ok(())
    }

    /// The org of a user.
    pub fn user_org(&self, user_id: &str) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row("SELECT org_id FROM users WHERE user_id = ?1", [user_id], |r| r.get(0))
            .optional()?)
    }

    /// The org of a device's user.
    pub fn device_org(&self, device_id: &str) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT u.org_id FROM devices d JOIN users u ON u.user_id = d.user_id WHERE d.device_id = ?1",
                [device_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Enrolls a device for a user; returns `(device id, token)`. The token is shown only here.
    pub fn add_device(&self, user_id: &str, label: &str) -> Result<(String, String)> {
        let exists: bool = self
            .conn()
            .query_row("SELECT COUNT(*) FROM users WHERE user_id = ?1", [user_id], |r| {
                r.get::<_, i64>(0)
            })?
            > 0;
        if !exists {
            return Err(Error::NotFound(format!("user {user_id}")));
        }
        let device_id = format!("d-{}", random_hex(6)?);
        let token = format!("sst_{}_{}", &device_id[2..], random_hex(32)?);
        self.conn().execute(
            "INSERT INTO devices (device_id, user_id, token_hash, label, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                device_id,
                user_id,
                token_hash(&token),
                label,
                chrono::Utc::now().to_rfc3339()
            ],
        )?;
        Ok((device_id, token))
    }

    /// Revokes a device: its token is refused from its next message on, and its dashboard sessions
    /// end now.
    pub fn revoke_device(&self, device_id: &str) -> Result<()> {
        let conn = self.conn();
        let tx = conn.unchecked_transaction()?;
        let n = tx.execute(
            "UPDATE devices SET revoked_at = ?2 WHERE device_id = ?1 AND revoked_at IS NULL",
            params![device_id, chrono::Utc::now().to_rfc3339()],
        )?;
        if n == 0 {
            return Err(Error::NotFound(format!("active device {device_id}")));
        }
        tx.execute("DELETE FROM browser_sessions WHERE device_id = ?1", [device_id])?;
        tx.commit()?;
        Ok(())
    }

    /// The principal behind a bearer token, if the token is known and not revoked.
    pub fn authenticate(&self, token: &str) -> Result<Option<Principal>> {
        Ok(self.check_token(token)?.ok())
    }

    /// The principal behind a bearer token, or why the token is refused.
    pub fn check_token(&self, token: &str) -> Result<std::result::Result<Principal, Refusal>> {
        let row: Option<(String, bool)> = self
            .conn()
            .query_row(
                "SELECT device_id, revoked_at IS NOT NULL FROM devices WHERE token_hash = ?1",
                [token_hash(token)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match row {
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
        self.conn().execute(
            "DELETE FROM browser_sessions WHERE expires_at <= ?1 OR last_seen + ?2 <= ?1",
            params![now, idle],
        )?;
        self.conn().execute(
            "INSERT INTO browser_sessions (id_hash, device_id, created_at, last_seen, expires_at)
             VALUES (?1, ?2, ?3, ?3, ?4)",
            params![
                token_hash(&id),
                device_id,
                now,
                now.saturating_add(policy.lifetime.as_secs() as i64)
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
        let row: Option<(String, i64, i64)> = self
            .conn()
            .query_row(
                "SELECT device_id, last_seen, expires_at FROM browser_sessions WHERE id_hash = ?1",
                [&hash],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((device, last_seen, expires_at)) = row else {
            return Ok(Err(Refusal::new("unknown session", None)));
        };
        let idle = policy.idle.as_secs() as i64;
        if now >= expires_at || now >= last_seen.saturating_add(idle) {
            self.conn()
                .execute("DELETE FROM browser_sessions WHERE id_hash = ?1", [&hash])?;
            return Ok(Err(Refusal::new("expired session", Some(device))));
        }
        let Some(who) = self.principal(&device)? else {
            return Ok(Err(Refusal::new("revoked device", Some(device))));
        };
        if now - last_seen >= (idle / 4).clamp(1, 60) {
            self.conn().execute(
                "UPDATE browser_sessions SET last_seen = ?2 WHERE id_hash = ?1",
                params![hash, now],
            )?;
        }
        Ok(Ok(who))
    }

    /// Ends a dashboard session; returns its device, if the session existed.
    pub fn close_browser_session(&self, id: &str) -> Result<Option<String>> {
        let hash = token_hash(id);
        let device: Option<String> = self
            .conn()
            .query_row(
                "DELETE FROM browser_sessions WHERE id_hash = ?1 RETURNING device_id",
                [&hash],
                |r| r.get(0),
            )
            .optional()?;
        Ok(device)
    }

    /// The principal of an active device (re-checked at every sync message).
    pub fn principal(&self, device_id: &str) -> Result<Option<Principal>> {
        let user: Option<String> = self
            .conn()
            .prepare_cached("SELECT user_id FROM devices WHERE device_id = ?1 AND revoked_at IS NULL")?
            .query_row([device_id], |r| r.get(0))
            .optional()?;
        match user {
            Some(user) => self.user_principal(&user, device_id),
            None => Ok(None),
        }
    }

    /// What a user may read and write, as a principal on `device_id` (the grants of the user, not of
    /// a device: "" when no device is involved, as for a key result's owner).
    pub fn user_principal(&self, user_id: &str, device_id: &str) -> Result<Option<Principal>> {
        let row: Option<(String, String, bool, String)> = self
            .conn()
            .prepare_cached("SELECT org_id, role, all_sites, name FROM users WHERE user_id = ?1")?
            .query_row([user_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .optional()?;
        let Some((org_id, role, all, user_name)) = row else {
            return Ok(None);
        };
        let role = parse_role(&role)?;
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT site_id FROM grants WHERE user_id = ?1 ORDER BY site_id")?;
        let sites = stmt
            .query_map([user_id], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
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
        let owner: Option<String> = self
            .conn()
            .prepare_cached("SELECT device_id FROM device_keys WHERE key = ?1")?
            .query_row([&key[..]], |r| r.get(0))
            .optional()?;
        match owner {
            Some(d) if d == device_id => Ok(()),
            Some(_) => Err(Error::Conflict("this signing key belongs to another device".into())),
            None => {
                self.conn().execute(
                    "INSERT INTO device_keys (key, fingerprint, device_id, registered_at) VALUES (?1, ?2, ?3, ?4)",
                    params![
                        &key[..],
                        &sitesync_core::signing::fingerprint(key)[..],
                        device_id,
                        chrono::Utc::now().to_rfc3339()
                    ],
                )?;
                Ok(())
            }
        }
    }

    /// The device a key is registered to.
    pub fn key_device(&self, key: &[u8; 32]) -> Result<Option<String>> {
        Ok(self
            .conn()
            .prepare_cached("SELECT device_id FROM device_keys WHERE key = ?1")?
            .query_row([&key[..]], |r| r.get(0))
            .optional()?)
    }

    /// Whether some registered key has this fingerprint (so an actor starting with it was made under
    /// a known key, and only that key may sign its changes).
    pub fn fingerprint_known(&self, fingerprint: &[u8]) -> Result<bool> {
        Ok(self
            .conn()
            .prepare_cached("SELECT 1 FROM device_keys WHERE fingerprint = ?1 LIMIT 1")?
            .query_row([fingerprint], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// The device an older store's actor is bound to, binding it to `device_id` on first sight.
    pub fn bind_actor(&self, actor: &str, device_id: &str) -> Result<String> {
        // Read first: a write (even one that ignores a conflict) costs a commit, and an actor is
        // bound once and read at every change after.
        let bound: Option<String> = self
            .conn()
            .prepare_cached("SELECT device_id FROM actors WHERE actor = ?1")?
            .query_row([actor], |r| r.get(0))
            .optional()?;
        if let Some(device) = bound {
            return Ok(device);
        }
        self.conn()
            .prepare_cached("INSERT OR IGNORE INTO actors (actor, device_id, bound_at) VALUES (?1, ?2, ?3)")?
            .execute(params![actor, device_id, chrono::Utc::now().to_rfc3339()])?;
        Ok(self
            .conn()
            .prepare_cached("SELECT device_id FROM actors WHERE actor = ?1")?
            .query_row([actor], |r| r.get(0))?)
    }

    /// The devices of an org with their keys (revoked ones included: their past changes still need
    /// names), and the server's own keys, for phones to show authors offline.
    pub fn directory(&self, org_id: &str) -> Result<Vec<sitesync_core::sync::protocol::DirectoryEntry>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT k.key, k.device_id, COALESCE(u.user_id, 'system'), COALESCE(u.name, 'server'), COALESCE(u.role, 'admin')
             FROM device_keys k LEFT JOIN devices d ON d.device_id = k.device_id LEFT JOIN users u ON u.user_id = d.user_id
             WHERE u.org_id = ?1 OR k.device_id = 'server' ORDER BY k.device_id, k.registered_at",
        )?;
        let rows = stmt.query_map([org_id], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (key, device, user_id, user_name, role) = row?;
            let Ok(key) = <[u8; 32]>::try_from(key.as_slice()) else {
                continue;
            };
            out.push(sitesync_core::sync::protocol::DirectoryEntry {
                key,
                device,
                user_id,
                user_name,
                role: parse_role(&role)?,
            });
        }
        Ok(out)
    }

    /// Every user of an org: id → (id, name), for naming authors.
    pub fn user_names(&self, org_id: &str) -> Result<std::collections::HashMap<String, (String, String)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT user_id, name FROM users WHERE org_id = ?1")?;
        let rows = stmt.query_map([org_id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = std::collections::HashMap::new();
        for row in rows {
            let (id, name) = row?;
            out.insert(id.clone(), (id, name));
        }
        Ok(out)
    }

    /// A device's enrolment: its user, label, when it was enrolled and revoked.
    pub fn enrolment(&self, device_id: &str) -> Result<Option<Enrolment>> {
        let found = self
            .conn()
            .prepare_cached(
                "SELECT d.device_id, d.user_id, u.name, u.role, u.org_id, d.label, d.created_at, d.revoked_at
                 FROM devices d JOIN users u ON u.user_id = d.user_id WHERE d.device_id = ?1",
            )?
            .query_row([device_id], |r| {
                Ok(Enrolment {
                    device: r.get(0)?,
                    user_id: r.get(1)?,
                    user_name: r.get(2)?,
                    role: r.get(3)?,
                    org: r.get(4)?,
                    label: r.get(5)?,
                    enrolled_at: r.get(6)?,
                    revoked_at: r.get(7)?,
                    keys: Vec::new(),
                })
            })
            .optional()?;
        // The connection is taken again by `device_keys`: the first statement must have ended.
        Ok(match found {
            Some(mut e) => {
                e.keys = self.device_keys(device_id)?;
                Some(e)
            }
            None => None,
        })
    }

    /// The devices of a user, revoked ones included.
    pub fn user_devices(&self, user_id: &str) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT device_id FROM devices WHERE user_id = ?1 ORDER BY created_at")?;
        let rows = stmt.query_map([user_id], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The keys registered to a device, hex, oldest first.
    pub fn device_keys(&self, device_id: &str) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached("SELECT key FROM device_keys WHERE device_id = ?1 ORDER BY registered_at, key")?;
        let rows = stmt.query_map([device_id], |r| r.get::<_, Vec<u8>>(0))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(hex::encode(row?));
        }
        Ok(out)
    }

    /// Records changes refused from a device: `(document, change hash, rule, reason)`.
    pub fn record_refusals(&self, who: &Principal, rows: &[(String, String, String, String)]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let now = chrono::Utc::now().to_rfc3339();
        let conn = self.conn();
        let tx = conn.unchecked_transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO refusals (at, org_id, device_id, user_id, doc_id, change, rule, reason)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for (doc, change, rule, reason) in rows {
                stmt.execute(params![
                    now,
                    who.org_id,
                    who.device_id,
                    who.user_id,
                    doc,
                    change,
                    rule,
                    reason
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The latest refusals of an org, newest first.
    pub fn refusals(&self, org_id: &str, limit: u32) -> Result<Vec<RefusalRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT at, device_id, user_id, doc_id, change, rule, reason FROM refusals
             WHERE org_id = ?1 ORDER BY seq DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![org_id, limit], |r| {
            Ok(RefusalRow {
                at: r.get(0)?,
                device: r.get(1)?,
                user_id: r.get(2)?,
                doc: r.get(3)?,
                change: r.get(4)?,
                rule: r.get(5)?,
                reason: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The users of an org that a free-text name designates: the user with that id, and every user
    /// with that name.
    pub fn users_named(&self, org_id: &str, name: &str) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT user_id FROM users WHERE org_id = ?1 AND (user_id = ?2 OR name = ?2) ORDER BY user_id",
        )?;
        Ok(stmt
            .query_map([org_id, name], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?)
    }

    /// What a principal may do with a document.
    pub fn access(&self, who: &Principal, doc: &DocId) -> Result<Access> {
        let org = match doc {
            DocId::Site(site) | DocId::Day(site, _) => self.site_org(site.as_str())?,
            DocId::Okr(..) => None,
        };
        Ok(access_in(who, doc, org.as_deref()))
    }

    /// Every site of an org, for head office's document list.
    pub fn org_sites(&self, org_id: &str) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT site_id FROM sites WHERE org_id = ?1 ORDER BY site_id")?;
        Ok(stmt
            .query_map([org_id], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?)
    }

    /// Everything the server believes a device holds: document id to heads.
    pub fn device_docs(&self, device_id: &str) -> Result<std::collections::HashMap<String, Vec<String>>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT doc_id, heads FROM device_docs WHERE device_id = ?1")?;
        let rows = stmt.query_map([device_id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = std::collections::HashMap::new();
        for row in rows {
            let (doc, text) = row?;
            out.insert(
                doc,
                text.split(',').filter(|h| !h.is_empty()).map(str::to_string).collect(),
            );
        }
        Ok(out)
    }

    /// Records, in one transaction, what devices hold: `(device, document, heads)`.
    pub fn set_device_heads_many(&self, rows: &[(String, String, Vec<String>)]) -> Result<()> {
        // Held for the whole transaction: no other call can interleave a statement of its own.
        let conn = self.conn();
        let tx = conn.unchecked_transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO device_docs (device_id, doc_id, heads) VALUES (?1, ?2, ?3)
                 ON CONFLICT(device_id, doc_id) DO UPDATE SET heads = excluded.heads",
            )?;
            for (device, doc, heads) in rows {
                let mut sorted = heads.clone();
                sorted.sort();
                stmt.execute(params![device, doc, sorted.join(",")])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Forgets what the server believed a device holds (it starts from an empty store: a new install
    /// with an old token, a wiped phone).
    pub fn forget_device_docs(&self, device_id: &str) -> Result<()> {
        self.conn()
            .execute("DELETE FROM device_docs WHERE device_id = ?1", [device_id])?;
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
    match doc {
        DocId::Site(site) | DocId::Day(site, _) => {
            if site_org != Some(who.org_id.as_str()) {
                Access::None
            } else if who.all_sites || who.sites.iter().any(|s| s == site.as_str()) {
                // Master data is head office's to change; phones read it.
                match (doc, who.role) {
                    (DocId::Site(_), Role::Foreman | Role::SiteManager) => Access::Read,
                    _ => Access::Write,
                }
            } else {
                Access::None
            }
        }
        DocId::Okr(org, _) => {
            if org.as_str() == who.org_id {
                Access::Write
            } else {
                Access::None
            }
        }
    }
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
        let n: i64 = db
            .conn()
            .query_row("SELECT COUNT(*) FROM browser_sessions", [], |r| r.get(0))
            .unwrap();
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
