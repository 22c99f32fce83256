//! What the server knows of each device's sync health (table `device_health`, migration 008 /
//! PostgreSQL 007, and the `refusals` it already keeps), for the devices page (`GET /v1/devices`).

use sitesync_core::store::sql::Value;

use super::AuthDb;
use crate::error::Result;

/// What a phone says of itself when it opens a sync connection (the upgrade's `X-Sitesync-*`
/// headers, docs/protocol.md). Claims, not facts: shown as reported, never trusted for access.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reported {
    /// `X-Sitesync-App`: the app's version, at most 64 characters; empty when not sent.
    pub app_version: String,
    /// `X-Sitesync-Protocol`: the sync protocol version the app speaks; empty when not sent.
    pub protocol: String,
    /// `X-Sitesync-Pending`: documents the phone holds with changes the server has not
    /// acknowledged, as the phone counted them when it connected.
    pub pending: Option<u32>,
}

/// One device of an org with its user and its last connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs, reason = "fields named as the columns they come from")]
pub struct DeviceHealth {
    pub device_id: String,
    pub label: String,
    pub user_id: String,
    pub user_name: String,
    pub role: String,
    /// The user sees every site of the org.
    pub all_sites: bool,
    /// Sites granted one by one.
    pub sites: Vec<String>,
    pub revoked: bool,
    /// RFC 3339; `None` for a device that never opened a sync connection.
    pub connected_at: Option<String>,
    pub reported: Reported,
    /// Changes of this device the server refused, all told.
    pub refused: i64,
    /// The latest refusals' `(at, rule, reason)`, newest first, at most three.
    pub latest_refusals: Vec<(String, String, String)>,
}

/// How many of a device's refusals the page shows.
const LATEST: i64 = 3;

impl AuthDb {
    /// Records a sync connection of `device_id` at `at` (RFC 3339), replacing the previous one.
    pub fn record_connection(&self, device_id: &str, at: &str, reported: &Reported) -> Result<()> {
        self.exec(
            "INSERT INTO device_health (device_id, connected_at, app_version, protocol, pending)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (device_id) DO UPDATE SET connected_at = excluded.connected_at,
               app_version = excluded.app_version, protocol = excluded.protocol, pending = excluded.pending",
            &[
                device_id.into(),
                at.into(),
                reported.app_version.as_str().into(),
                reported.protocol.as_str().into(),
                reported.pending.map_or(Value::Null, |n| i64::from(n).into()),
            ],
        )?;
        Ok(())
    }

    /// Every device of an org, revoked ones included, by user then enrolment.
    pub fn device_health(&self, org_id: &str) -> Result<Vec<DeviceHealth>> {
        let rows = self.rows(
            "SELECT d.device_id, d.label, u.user_id, u.name, u.role, u.all_sites, d.revoked_at,
                    h.connected_at, h.app_version, h.protocol, h.pending,
                    (SELECT COUNT(*) FROM refusals r WHERE r.device_id = d.device_id)
             FROM devices d JOIN users u ON u.user_id = d.user_id
             LEFT JOIN device_health h ON h.device_id = d.device_id
             WHERE u.org_id = ?1 ORDER BY u.name, u.user_id, d.created_at, d.device_id",
            &[org_id.into()],
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let device_id = r.text(0)?;
            let user_id = r.text(2)?;
            let refused = r.int(11)?;
            let latest_refusals = if refused == 0 {
                Vec::new()
            } else {
                self.rows(
                    "SELECT at, rule, reason FROM refusals WHERE device_id = ?1 ORDER BY seq DESC LIMIT ?2",
                    &[device_id.as_str().into(), LATEST.into()],
                )?
                .iter()
                .map(|x| Ok((x.text(0)?, x.text(1)?, x.text(2)?)))
                .collect::<sitesync_core::Result<_>>()?
            };
            let sites = super::texts(self.rows(
                "SELECT site_id FROM grants WHERE user_id = ?1 ORDER BY site_id",
                &[user_id.as_str().into()],
            )?)?;
            out.push(DeviceHealth {
                label: r.text(1)?,
                user_name: r.text(3)?,
                role: r.text(4)?,
                all_sites: r.int(5)? != 0,
                revoked: r.opt_text(6)?.is_some(),
                connected_at: r.opt_text(7)?,
                reported: Reported {
                    app_version: r.opt_text(8)?.unwrap_or_default(),
                    protocol: r.opt_text(9)?.unwrap_or_default(),
                    pending: r.opt_int(10)?.and_then(|n| u32::try_from(n).ok()),
                },
                refused,
                latest_refusals,
                sites,
                device_id,
                user_id,
            });
        }
        Ok(out)
    }
}
