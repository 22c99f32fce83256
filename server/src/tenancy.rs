//! Whose sites are whose, for the checks that need the credential database: the author of a push
//! (what a pushed key result may be bound to) and the owner of a key result (what the feed may hand
//! it), both re-read from `server.sqlite3` every time they are asked.

use sitesync_core::ids::{DocId, OrgId, SiteId};
use sitesync_core::okr::{KeyResult, Metric};
use sitesync_core::validate::{self, Invalid, Tenancy};

use crate::auth::{Access, AuthDb, Principal, access_in};

/// A pushing device, as the checks of its documents see it.
pub struct Pusher<'a> {
    /// The credential database.
    pub auth: &'a AuthDb,
    /// The device and its grants, as read for this push.
    pub who: &'a Principal,
}

impl Pusher<'_> {
    fn org(&self, site: &SiteId) -> Option<String> {
        self.auth.site_org(site.as_str()).unwrap_or_else(|e| {
            // Unknown is refused, never allowed: a failing database must not open a door.
            tracing::warn!(error = %e, site = %site, "could not read a site's org");
            None
        })
    }
}

impl Tenancy for Pusher<'_> {
    fn site_org(&self, site: &SiteId) -> Option<OrgId> {
        self.org(site).and_then(|o| OrgId::new(o).ok())
    }

    fn may_read(&self, site: &SiteId) -> bool {
        access_in(self.who, &DocId::Site(site.clone()), self.org(site).as_deref()) != Access::None
    }

    fn pii_secret(&self, site: &SiteId) -> Option<sitesync_core::pii::OrgPiiSecret> {
        let org = self.org(site)?;
        self.auth
            .org_pii_secret(&org)
            .map_err(|e| tracing::warn!(error = %e, org = %org, "could not read the org's personal-data key"))
            .ok()
    }
}

/// Whether a key result of `org` may be fed its metric, asked on every feed: the metric's site must
/// be one of `org`'s, and the key result's owner must be allowed to read it.
///
/// A key result names its owner in free text (`付志`), not by user id. The owner is resolved to a
/// user of the org whose id or name is exactly that text; if no user, or more than one, answers
/// to it, nothing is fed (the board says why), because whose grants apply would be a guess. Who
/// *bound* the metric was checked when it was pushed (the author must read the site, see
/// `validate/document.rs`); the owner is checked here because grants change after the push.
pub fn metric_allowed(auth: &AuthDb, org: &OrgId, kr: &KeyResult, metric: &Metric) -> Result<(), Invalid> {
    let org_of = |s: &SiteId| match auth.site_org(s.as_str()) {
        Ok(o) => o.and_then(|o| OrgId::new(o).ok()),
        Err(e) => {
            tracing::warn!(error = %e, site = %s, "could not read a site's org");
            None
        }
    };
    validate::metric(metric, org, &org_of)?;
    let site = SiteId::new(validate::metric_site(metric)).map_err(|e| Invalid::Malformed {
        field: "metric",
        reason: e.to_string(),
    })?;
    let owner = |reason: String| Invalid::Malformed { field: "owner", reason };
    let users = auth
        .users_named(org.as_str(), kr.owner.trim())
        .map_err(|e| owner(format!("could not look the owner up: {e}")))?;
    let [user] = users.as_slice() else {
        return Err(owner(format!(
            "{:?} names {} users of the org, not one",
            kr.owner,
            users.len()
        )));
    };
    let who = auth
        .user_principal(user, "")
        .map_err(|e| owner(format!("could not look the owner up: {e}")))?
        .ok_or_else(|| owner(format!("{user} is gone")))?;
    match access_in(&who, &DocId::Site(site.clone()), Some(org.as_str())) {
        Access::None => Err(Invalid::Foreign {
            field: "metric",
            site: site.to_string(),
        }),
        _ => Ok(()),
    }
}
