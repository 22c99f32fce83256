//! Administration: organisations, sites, users, grants, devices and company imports. The same
//! functions serve the HTTP admin API and the `sitesync-server admin` subcommands (which may run
//! while the server is serving the same data directory).

use serde::{Deserialize, Serialize};
use sitesync_core::Store;
use sitesync_core::import::{Company, SiteGrant};
use sitesync_core::roster::{Roster, Site};

use crate::auth::{AuthDb, Role};
use crate::error::{Error, Result};

/// The org of the operators' bootstrap admin, who may administer every org.
pub const SYSTEM_ORG: &str = "system";

/// What a company import did.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct ImportReport {
    pub org: String,
    /// Sites created or updated (each with its master-data document).
    pub sites: usize,
    /// Users created or updated.
    pub users: usize,
}

/// Imports a `company.json`: the org, its sites (and their master-data documents, so a newly enrolled
/// phone receives rosters and work items at its first sync), users and grants. Idempotent.
pub fn import_company(auth: &AuthDb, store: &mut Store, company: &Company) -> Result<ImportReport> {
    let org = company.org.id.as_str();
    auth.put_org(org, &company.org.name)?;
    for site in &company.sites {
        auth.put_site(org, &site.id, &site.name)?;
    }
    // Account numbers are sealed to the org as they enter its site documents.
    let key = auth.org_pii_key(org)?;
    store.import_company_sealed(company, Some(&key))?;
    for user in &company.users {
        let role = crate::auth::parse_role(&user.role)?;
        let all = matches!(&user.sites, SiteGrant::All(s) if s == "*");
        if let SiteGrant::All(s) = &user.sites
            && s != "*"
        {
            return Err(Error::BadRequest(format!(
                "user {}: sites must be a list or \"*\"",
                user.id
            )));
        }
        auth.put_user(org, &user.id, &user.name, role, all)?;
        if let SiteGrant::Some(sites) = &user.sites {
            for site in sites {
                auth.grant(&user.id, site.as_str())?;
            }
        }
    }
    Ok(ImportReport {
        org: org.to_string(),
        sites: company.sites.len(),
        users: company.users.len(),
    })
}

/// A new site with an empty roster.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewSite {
    /// The org it belongs to.
    pub org: String,
    /// The site's master data.
    pub site: Site,
}

/// Creates a site and its master-data document.
pub fn add_site(auth: &AuthDb, store: &mut Store, new: &NewSite) -> Result<()> {
    auth.put_site(&new.org, &new.site.id, &new.site.name)?;
    let roster = match store.roster(&new.site.id) {
        Ok(mut r) => {
            r.site = new.site.clone();
            r
        }
        Err(sitesync_core::Error::UnknownSite(_)) => Roster {
            site: new.site.clone(),
            crews: Vec::new(),
            workers: Vec::new(),
            work_items: Vec::new(),
            pending_workers: Vec::new(),
            rates: Vec::new(),
        },
        Err(e) => return Err(e.into()),
    };
    // A roster holding an account written before sealing gets it sealed as it is written back.
    let key = auth.org_pii_key(&new.org)?;
    store.put_roster_sealed(&roster, Some(&key))?;
    Ok(())
}

/// Writes an admin credential when no admin can sign in (a first start, or data imported before
/// the first start); returns the token file's path.
pub fn bootstrap(auth: &AuthDb, dir: &std::path::Path) -> Result<Option<std::path::PathBuf>> {
    if auth.has_admin_device()? {
        return Ok(None);
    }
    auth.put_org(SYSTEM_ORG, "sitesync operators")?;
    auth.put_user(SYSTEM_ORG, "admin", "administrator", Role::Admin, true)?;
    let (_, token) = auth.add_device("admin", "bootstrap admin")?;
    let path = dir.join("admin-token");
    crate::files::write_secret(&path, &format!("{token}\n"))?;
    Ok(Some(path))
}

/// The databases a data directory holds.
pub const DATABASES: &[&str] = &["documents.sqlite3", "server.sqlite3"];

/// Copies a data directory's databases into `out` with SQLite's online backup, consistently, while
/// the server keeps serving; each copy is integrity-checked. `out` is then a data directory a server
/// can be started on (`serve --data OUT`). Refuses to overwrite an existing backup.
pub fn backup(data: &std::path::Path, out: &std::path::Path) -> Result<Vec<std::path::PathBuf>> {
    crate::files::private_dir(out)?;
    let mut written = Vec::new();
    for name in DATABASES {
        let dst_path = out.join(name);
        if dst_path.exists() {
            return Err(Error::Conflict(format!(
                "{} exists; back up into an empty directory",
                dst_path.display()
            )));
        }
        let src = rusqlite::Connection::open_with_flags(data.join(name), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        crate::files::private_database(&dst_path)?;
        let mut dst = rusqlite::Connection::open(&dst_path)?;
        {
            // All pages in one step: the copy is one consistent snapshot of the source. A writer
            // holding the lock for a moment answers Busy; try again briefly.
            let b = rusqlite::backup::Backup::new(&src, &mut dst)?;
            let mut tries = 0;
            loop {
                match b.step(-1)? {
                    rusqlite::backup::StepResult::Done => break,
                    _ if tries < 200 => {
                        tries += 1;
                        std::thread::sleep(std::time::Duration::from_millis(25));
                    }
                    _ => return Err(Error::Internal(format!("{name} stayed locked; try the backup again"))),
                }
            }
        }
        let check: String = dst.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        if check != "ok" {
            return Err(Error::Internal(format!(
                "the copy of {name} fails its integrity check: {check}"
            )));
        }
        written.push(dst_path);
    }
    // The copy is a new epoch: a server started on it tells phones to offer everything again,
    // since changes acknowledged after the backup are not in it.
    let copy = AuthDb::open(out)?;
    copy.renew_epoch()?;
    Ok(written)
}

/// The pay-period actions of `sitesync-server admin pay`: the functions `POST /v1/pay/close`,
/// `POST /v1/pay/paid` and `GET /v1/pay/bank` call, in the name of a head-office user, with the
/// same checks (head office or admin of the site's org).
pub mod pay {
    use chrono::NaiveDate;
    use sitesync_core::Store;
    use sitesync_core::ids::{DocId, SiteId};

    use crate::auth::{Access, AuthDb, Principal, Role};
    use crate::error::{Error, Result};
    use crate::pay::PayReport;
    use crate::pay::period::{self, BankColumn};

    /// A crew's period: the site, the crew and the range.
    #[derive(Debug, Clone)]
    pub struct Range {
        /// The site.
        pub site: String,
        /// The crew's id.
        pub crew: String,
        /// First day, inclusive.
        pub from: NaiveDate,
        /// Last day, inclusive.
        pub to: NaiveDate,
    }

    /// `user` as the acting principal, refused unless head office or an admin able to read `site`.
    fn head_office(auth: &AuthDb, user: &str, site: &str) -> Result<Principal> {
        let who = auth
            .user_principal(user, crate::state::SERVER_DEVICE)?
            .ok_or_else(|| Error::NotFound(format!("no user {user}")))?;
        if !matches!(who.role, Role::HeadOffice | Role::Admin) {
            return Err(Error::Forbidden("pay periods are head office's".into()));
        }
        let doc = DocId::Site(SiteId::new(site).map_err(|e| Error::BadRequest(e.to_string()))?);
        if auth.access(&who, &doc)? == Access::None {
            return Err(Error::Forbidden(format!("no grant for site {site}")));
        }
        Ok(who)
    }

    /// Closes the period (see [`period::close`]); the sheet and whether this call closed it.
    pub fn close(auth: &AuthDb, store: &mut Store, user: &str, r: &Range, force: bool) -> Result<(PayReport, bool)> {
        if r.to < r.from {
            return Err(Error::BadRequest("`to` is before `from`".into()));
        }
        let who = head_office(auth, user, &r.site)?;
        period::close(auth, store, &who, &r.site, &r.crew, r.from, r.to, force)
    }

    /// Marks the closed period paid with `reference` (see [`period::mark_paid`]).
    pub fn paid(auth: &AuthDb, user: &str, r: &Range, reference: &str) -> Result<PayReport> {
        let reference = period::check_reference(reference)?;
        let who = head_office(auth, user, &r.site)?;
        let found = auth
            .pay_period_of(&r.site, &r.crew, &r.from.to_string(), &r.to.to_string())?
            .ok_or_else(|| Error::NotFound("no such closed pay period".into()))?;
        period::mark_paid(auth, &found.period_id, &who, &reference)
    }

    /// The closed period's bank file (代发) as CSV bytes, the columns in the order given.
    pub fn bank(auth: &AuthDb, store: &mut Store, user: &str, r: &Range, columns: &str) -> Result<Vec<u8>> {
        let columns = BankColumn::parse_list(columns)?;
        head_office(auth, user, &r.site)?;
        period::bank_file(auth, store, &r.site, &r.crew, r.from, r.to, &columns)?.to_csv()
    }
}
