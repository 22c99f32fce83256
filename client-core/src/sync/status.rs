//! What the app shows about sync: bound or not, pending changes, last success and error, and per
//! document whether head office has it (the delivery receipt a foreman can show).

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::Serialize;

use crate::error::Result;
use crate::ids::DocId;
use crate::store::Store;
use crate::sync::engine::keys;

/// Store metadata keys of the server binding.
pub(crate) mod binding {
    /// The server's base URL.
    pub const SERVER: &str = "sync.server";
    /// The device token.
    pub const TOKEN: &str = "sync.token";
    /// "1" while a `sync --watch` (or the app's sync loop) holds a connection, else "0".
    pub const CONNECTED: &str = "sync.connected";
    /// The company CA the server's certificate must chain to (PEM), or "" for the platform's roots.
    pub const CA_CERT: &str = "sync.ca_cert";
}

/// Where this store syncs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The server's base URL, e.g. `https://hq.example.com` (plain `http://` only to loopback).
    pub server: String,
    /// The device's bearer token.
    pub token: String,
    /// The company CA (PEM) the server's certificate must chain to; `None` trusts the platform's
    /// roots (see `sync::tls`).
    pub ca_cert: Option<String>,
}

/// One document's delivery state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocStatus {
    /// The document id.
    pub doc: String,
    /// Whether the server has acknowledged every change this phone holds.
    pub at_head_office: bool,
}

/// Sync status for the app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncStatus {
    /// The server this store is bound to.
    pub server: Option<String>,
    /// Whether a sync loop reports a live connection.
    pub connected: bool,
    /// Documents with changes head office does not have yet.
    pub pending: Vec<String>,
    /// When the last sync completed (RFC 3339).
    pub last_sync: Option<String>,
    /// The last sync error, if the last attempt failed.
    pub last_error: Option<String>,
    /// The server change cursor applied.
    pub cursor: u64,
    /// Every document with its delivery receipt.
    pub documents: Vec<DocStatus>,
    /// Changes of this phone's head office refused and the phone took out of its copy, all told
    /// (`sitesync status` lists them): what the user entered there is not in the records.
    pub refused_changes: usize,
    /// The latest of those refusals, newest first, at most [`LATEST_REFUSALS`]: what an app shows.
    pub latest_refusals: Vec<crate::sync::engine::RefusedNote>,
    /// Whether the app needs an update to keep syncing.
    pub update: UpdateState,
}

/// Whether this app's sync protocol is still the server's, as the server last said (the app shows a
/// banner for `Available` and blocks sync with a message for `Required`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateState {
    /// The server speaks this app's version as its current one (or has not said otherwise yet).
    #[default]
    UpToDate,
    /// The server speaks a newer version; this app still syncs, and should be updated.
    Available,
    /// The server no longer speaks this app's version: nothing syncs until the app is updated.
    Required,
}

impl UpdateState {
    /// As the CLI and logs say it.
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateState::UpToDate => "up_to_date",
            UpdateState::Available => "available",
            UpdateState::Required => "required",
        }
    }
}

/// How many refusals [`SyncStatus::latest_refusals`] carries.
pub const LATEST_REFUSALS: usize = 5;

impl Store {
    /// Binds the store to a server and device token, trusting the platform's roots (replacing any
    /// previous binding).
    pub fn bind(&mut self, server: &str, token: &str) -> Result<()> {
        self.bind_with_ca(server, token, None)
    }

    /// Binds the store to a server and device token; with `ca_cert` (PEM), the server's certificate
    /// must chain to that CA (a company's own), else to the platform's roots. Replaces any previous
    /// binding. `https://` is required unless the server is on this machine (loopback), where plain
    /// `http://` is allowed for development.
    pub fn bind_with_ca(&mut self, server: &str, token: &str, ca_cert: Option<&str>) -> Result<()> {
        let server = server.trim().trim_end_matches('/');
        if !(server.starts_with("http://") || server.starts_with("https://")) {
            return Err(crate::Error::invalid(
                "server",
                "the server URL starts with https:// (or http:// for a server on this machine)",
            ));
        }
        if server.starts_with("http://") && !is_loopback_http(server) {
            return Err(crate::Error::invalid(
                "server",
                "plain http:// would send the token and the wages in clear text: use https:// (http:// \
                 only for a server on this machine)",
            ));
        }
        if token.trim().is_empty() {
            return Err(crate::Error::invalid("token", "the device token is empty"));
        }
        if let Some(pem) = ca_cert {
            ca_certificates(pem)?;
        }
        if self.meta(binding::TOKEN)?.is_some_and(|old| old != token.trim()) {
            // Another device token: the server registers a key to one device forever, so this
            // store signs from now on with a new key (and may belong to another user).
            self.rotate_key()?;
        }
        self.set_meta(binding::SERVER, server)?;
        self.set_meta(binding::TOKEN, token.trim())?;
        self.set_meta(binding::CA_CERT, ca_cert.unwrap_or(""))
    }

    /// Records what the server said of this app's protocol version.
    pub(crate) fn set_update(&mut self, state: UpdateState) -> Result<()> {
        let value = match state {
            UpdateState::UpToDate => "",
            other => other.as_str(),
        };
        self.set_meta(keys::UPDATE, value)
    }

    /// What the server last said of this app's protocol version (offline: from the store).
    pub fn update_state(&self) -> Result<UpdateState> {
        Ok(match self.meta(keys::UPDATE)?.as_deref() {
            Some("available") => UpdateState::Available,
            Some("required") => UpdateState::Required,
            _ => UpdateState::UpToDate,
        })
    }

    /// The server binding, if any.
    pub fn binding(&self) -> Result<Option<Binding>> {
        Ok(match (self.meta(binding::SERVER)?, self.meta(binding::TOKEN)?) {
            (Some(server), Some(token)) => Some(Binding {
                server,
                token,
                ca_cert: self.meta(binding::CA_CERT)?.filter(|p| !p.is_empty()),
            }),
            _ => None,
        })
    }

    /// The sync status, from the store alone (works offline).
    pub fn sync_status(&self) -> Result<SyncStatus> {
        let pending: Vec<DocId> = self.pending()?;
        let documents = self
            .doc_ids()?
            .into_iter()
            .map(|d| DocStatus {
                at_head_office: !pending.contains(&d),
                doc: d.to_string(),
            })
            .collect();
        Ok(SyncStatus {
            server: self.meta(binding::SERVER)?,
            connected: self.meta(binding::CONNECTED)?.as_deref() == Some("1"),
            pending: pending.iter().map(ToString::to_string).collect(),
            last_sync: self.meta(keys::LAST_OK)?.filter(|s| !s.is_empty()),
            last_error: self.meta(keys::LAST_ERROR)?.filter(|s| !s.is_empty()),
            cursor: self.meta(keys::CURSOR)?.and_then(|c| c.parse().ok()).unwrap_or(0),
            documents,
            refused_changes: self
                .db()
                .query("SELECT COUNT(*) FROM refused_changes", &[])?
                .first()
                .map(|r| r.int(0))
                .transpose()?
                .unwrap_or(0) as usize,
            latest_refusals: self
                .db()
                .query(
                    "SELECT doc_id, hash, rule, reason FROM refused_changes ORDER BY refused_at DESC, hash LIMIT ?1",
                    &[(LATEST_REFUSALS as i64).into()],
                )?
                .iter()
                .map(|r| {
                    Ok(crate::sync::engine::RefusedNote {
                        doc: r.text(0)?,
                        hash: r.text(1)?,
                        rule: r.text(2)?,
                        reason: r.text(3)?,
                    })
                })
                .collect::<Result<_>>()?,
            update: self.update_state()?,
        })
    }
}

/// The certificates of a PEM text; an error unless there is at least one.
pub(crate) fn ca_certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| crate::Error::invalid("ca_cert", format!("not a PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(crate::Error::invalid(
            "ca_cert",
            "no certificate found (expected PEM: -----BEGIN CERTIFICATE-----)",
        ));
    }
    Ok(certs)
}

/// The host of a server URL, as its certificate must name it.
pub(crate) fn host_of(server: &str) -> &str {
    let rest = server.split_once("://").map_or(server, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    }
}

/// Whether a server URL is plain `http://` to this machine (the only plain text allowed).
pub(crate) fn is_loopback_http(server: &str) -> bool {
    if !server.starts_with("http://") {
        return false;
    }
    let host = host_of(server);
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_for_this_machine_only() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://127.0.0.2",
            "http://localhost:1/x",
            "http://[::1]:8080",
            "http://LOCALHOST",
        ] {
            assert!(is_loopback_http(ok), "{ok}");
        }
        for no in [
            "http://192.168.1.5:8080",
            "http://example.com",
            "http://127.0.0.1.example.com",
            "http://[::2]:1",
            "https://127.0.0.1",
        ] {
            assert!(!is_loopback_http(no), "{no}");
        }
        assert_eq!(host_of("https://hq.example.com:8443/x"), "hq.example.com");
        assert_eq!(host_of("https://[::1]:8443"), "::1");
        assert_eq!(host_of("https://127.0.0.1"), "127.0.0.1");
    }

    #[test]
    fn a_binding_keeps_its_ca_and_refuses_clear_text_to_another_host() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path().join("s.sqlite3")).unwrap();
        let err = store.bind("http://hq.example.com", "t").unwrap_err();
        assert!(matches!(err, crate::Error::Invalid { field: "server", .. }), "{err}");
        let err = store
            .bind_with_ca("https://hq.example.com", "t", Some("not pem"))
            .unwrap_err();
        assert!(matches!(err, crate::Error::Invalid { field: "ca_cert", .. }), "{err}");
        assert_eq!(store.binding().unwrap(), None, "a refused binding writes nothing");

        let pem = "-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n";
        store.bind_with_ca("https://hq.example.com/", "t", Some(pem)).unwrap();
        let b = store.binding().unwrap().unwrap();
        assert_eq!(
            (b.server.as_str(), b.ca_cert.as_deref()),
            ("https://hq.example.com", Some(pem))
        );
        store.bind("http://127.0.0.1:8080", "t").unwrap();
        assert_eq!(
            store.binding().unwrap().unwrap().ca_cert,
            None,
            "a new binding replaces the CA"
        );
    }

    #[test]
    fn a_ca_file_must_hold_a_certificate() {
        assert!(matches!(
            ca_certificates("hello"),
            Err(crate::Error::Invalid { field: "ca_cert", .. })
        ));
        let bad = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            ca_certificates(bad),
            Err(crate::Error::Invalid { field: "ca_cert", .. })
        ));
    }
}
