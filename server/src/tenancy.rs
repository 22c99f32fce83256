//! Whose sites are whose, for the checks that need the credential database: the author of a push
//! (what a pushed key result may be bound to), re-read from `server.sqlite3` every time it is asked.

use sitesync_core::ids::{DocId, OrgId, SiteId};
use sitesync_core::validate::Tenancy;

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
}
